"""Oracle tests for the occlusion subsets of :func:`ochuman.eval.run.evaluate_results`.

The oracle is pycocotools, set up as each mode's definition says (module docstring of
``ochuman/eval/run.py``):

- ``official``: pycocotools on the official *range file* of the subset
  (``to_coco(ds, "val", MaxIoURange(lo, hi))``), the results re-keyed to that file's image ids by
  file name and the detections on images the range file lacks dropped. The results given to
  both contain no detection on an image the full official file lacks (one whose persons all
  have MaxIoU 1.0): pycocotools' ``loadRes`` refuses those, and so does official mode.
- ``ignore``: pycocotools on every person our ground truth uses (benchmark persons of the split
  in file order, then the other persons of those images, box as mask where they have none), with
  ``_ignore`` forced per person after ``_prepare`` (iscrowd stays 0) for persons outside the
  subset (closed top: Hard includes 1.0) and for every non-benchmark person.
  pycocotools has no notion of "an unmatched detection counts in a subset only if the person it
  overlaps most is in it", so for this comparison that rule is switched off in our engine by
  monkeypatching ``ochuman.eval.run.nearest_gt`` to return -1 (overlaps nobody) for every
  detection; the rule itself is tested on hand-built cases with exact expected AP.

Datasets are native OCHuman dicts drawn by hypothesis (small images, 1..5 persons each, box-only,
keypoint-only and mask-only persons, MaxIoU at and around the subset boundaries) and the real
native sample.
"""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import ochuman
import ochuman.eval.run
from ochuman.compat import quietly
from ochuman.eval.run import evaluate_results
from ochuman.keypoints import OCHUMAN_KEYPOINT_NAMES
from ochuman.subsets import MaxIoURange

SUBSETS = {"all": (0.0, 1.0), "moderate": (0.5, 0.75), "hard": (0.75, 1.0)}
# OCHuman index of each COCO joint and the official visibility map (spec section 2).
COCO_FROM_OCHUMAN = [16, 18, 17, 15, 14, 3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8]
VISIBILITY = {0: 0, 1: 2, 2: 2, 3: 1}
# Boundary values of every subset, twice as likely as the others.
BOUNDARY_MAX_IOU = (0.5, 0.75, 1.0, 0.5, 0.75, 1.0, 0.3, 0.4999999, 0.7499999, 0.9999999)
KINDS = ("bench", "bench", "bench", "bench", "box", "box", "kpt", "segm")
SCORE_SETS = ((0.5,), (0.25, 0.5, 0.75), (0.1, 0.3, 0.5, 0.7, 0.9, 1.0), (0.05, 0.35, 0.55, 0.8, 0.95))
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# --------------------------------------------------------------------------------------------
# native datasets

@st.composite
def native_datasets(draw, max_images: int = 5):
    """A native ochuman.json dict with at least one benchmark person (keypoints and mask)."""
    n_images = draw(st.integers(1, max_images))
    people = []
    for _ in range(n_images):
        kinds = draw(st.lists(st.sampled_from(KINDS), min_size=0 if draw(st.integers(0, 9)) == 0 else 1, max_size=5))
        people.append([(kind, draw(st.one_of(st.sampled_from(BOUNDARY_MAX_IOU), st.floats(0.3, 1.0))))
                       for kind in kinds])
    if not any(kind == "bench" for persons in people for kind, _ in persons):
        k = draw(st.integers(0, n_images - 1))
        people[k] = [("bench", draw(st.sampled_from(BOUNDARY_MAX_IOU)))] + people[k]
    big = draw(st.integers(0, 3)) == 0  # one image over 96 x 96 (COCO's large area range)
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    images = []
    for k, persons in enumerate(people):
        w, h = (int(rng.integers(100, 131)), int(rng.integers(100, 131))) if big and k == 0 else (
            int(rng.integers(30, 61)), int(rng.integers(30, 61)))
        cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h  # persons crowd around here
        annotations = []
        for kind, max_iou in persons:
            annotations.append(_native_person(rng, kind, max_iou, w, h, cx, cy))
        images.append({"file_name": f"{k + 1:06d}.jpg", "image_id": f"{k + 1:06d}", "width": w, "height": h,
                       "annotations": annotations})
    return {"images": images, "keypoint_names": list(OCHUMAN_KEYPOINT_NAMES),
            "keypoint_visible": {"missing": 0, "vis": 1, "self_occluded": 2, "others_occluded": 3}}


def _native_person(rng, kind, max_iou, w, h, cx, cy) -> dict:
    bw, bh = int(rng.integers(3, max(4, int(w * 0.8)))), int(rng.integers(3, max(4, int(h * 0.8))))
    x1 = int(np.clip(round(cx - bw / 2 + rng.normal(0, w / 6)), 0, w - bw))
    y1 = int(np.clip(round(cy - bh / 2 + rng.normal(0, h / 6)), 0, h - bh))
    x2, y2 = x1 + bw, y1 + bh
    keypoints = segms = None
    if kind in ("bench", "kpt"):
        codes = rng.choice([0, 1, 2, 3], size=19, p=[0.2, 0.4, 0.2, 0.2])
        if rng.random() < 0.05:  # only head and neck: num_keypoints 0 in COCO format
            codes[:] = 0
            codes[[12, 13]] = 1
        xs = rng.uniform(x1, x2, 19)
        ys = rng.uniform(y1, y2, 19)
        if rng.random() < 0.5:
            xs, ys = np.round(xs), np.round(ys)
        kp = np.stack([np.where(codes > 0, xs, 0), np.where(codes > 0, ys, 0), codes], axis=1)
        keypoints = [float(v) if not float(v).is_integer() else int(v) for v in kp.ravel()]
    if kind in ("bench", "segm"):
        outer = [_polygon(rng, x1, y1, x2, y2) for _ in range(1 if rng.random() < 0.6 else int(rng.integers(2, 4)))]
        inner = []
        if rng.random() < 0.2:
            mx, my = (x1 + x2) / 2, (y1 + y2) / 2
            inner = [[mx - 1, my - 1, mx + 1.5, my - 1, mx + 1.5, my + 1.5, mx - 1, my + 1.5]]
        segms = {"outer": outer, "inner": inner, "height": h, "width": w}
    return {"bbox": [x1, y1, x2, y2], "max_iou": float(max_iou), "keypoints": keypoints, "segms": segms,
            "links": {"kpts": None, "segms": None}}


def _polygon(rng, x1, y1, x2, y2) -> list:
    if rng.random() < 0.3:  # the box itself
        return [float(x1), float(y1), float(x2), float(y1), float(x2), float(y2), float(x1), float(y2)]
    n = int(rng.integers(5, 11))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    cx, cy = rng.uniform(x1, x2), rng.uniform(y1, y2)
    rx, ry = rng.uniform(0.3, 0.7) * (x2 - x1), rng.uniform(0.3, 0.7) * (y2 - y1)
    xs = np.clip(cx + rx * np.cos(angles) * rng.uniform(0.6, 1.0, n), x1, x2)
    ys = np.clip(cy + ry * np.sin(angles) * rng.uniform(0.6, 1.0, n), y1, y2)
    return [round(float(v), 2) for xy in zip(xs, ys) for v in xy]


def _is_bench(person: dict) -> bool:
    return bool(person["keypoints"]) and bool(person["segms"])


def _person_mask(person: dict, h: int, w: int) -> np.ndarray:
    """OCHumanApi Poly2Mask (outer minus inner), or the box where the person has no mask."""
    if person["segms"]:
        outer = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(person["segms"]["outer"], h, w)))
        if person["segms"]["inner"]:
            inner = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(person["segms"]["inner"], h, w)))
            outer = outer & (1 - inner)
        return outer.astype(bool)
    x, y, bw, bh = _xywh(person)
    box = mask_utils.frPyObjects([[x, y, x, y + bh, x + bw, y + bh, x + bw, y]], h, w)
    return mask_utils.decode(mask_utils.merge(box)).astype(bool)


def _xywh(person: dict) -> list:
    x1, y1, x2, y2 = person["bbox"]
    return [x1, y1, x2 - x1, y2 - y1]


def _coco_keypoints(person: dict) -> list:
    if not person["keypoints"]:
        return [0] * 51
    k = np.asarray(person["keypoints"], dtype=float).reshape(19, 3)
    out = []
    for j in COCO_FROM_OCHUMAN:
        out += [k[j, 0], k[j, 1], VISIBILITY[int(k[j, 2])]]
    return out


def _encode(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _benchmark_images(native: dict) -> list:
    """Benchmark images (a person with keypoints and mask) in file order; all val here."""
    return [im for im in native["images"] if any(_is_bench(p) for p in im["annotations"])]


def _engine_image_ids(native: dict) -> dict:
    """file_name -> the image id our ground truth uses: the official val file's (1, 2, ... over
    images with a person with MaxIoU < 1), then the remaining benchmark images."""
    ids = {im["file_name"]: im["id"] for im in ochuman.to_coco(ochuman.parse(native), "val")["images"]}
    for im in _benchmark_images(native):
        if im["file_name"] not in ids:
            ids[im["file_name"]] = len(ids) + 1
    return ids


# --------------------------------------------------------------------------------------------
# detections

def _shift(m: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    src = m[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def _jitter_mask(rng, m: np.ndarray) -> np.ndarray:
    mode = rng.random()
    if mode < 0.15:
        return m.copy()
    out = _shift(m, int(rng.integers(-3, 4)), int(rng.integers(-3, 4)))
    if mode < 0.7:
        return out ^ (rng.random(m.shape) < rng.choice([0.01, 0.05, 0.15]))
    grown = out | _shift(out, 1, 0) | _shift(out, -1, 0) | _shift(out, 0, 1) | _shift(out, 0, -1)
    return grown if rng.random() < 0.5 else out & _shift(out, 1, 1)


def _random_mask(rng, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    bw, bh = int(rng.integers(1, w // 2 + 2)), int(rng.integers(1, h // 2 + 2))
    x, y = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
    m[y:y + bh, x:x + bw] = True
    return m


def _jitter_box(rng, box) -> list:
    x, y, w, h = (float(v) for v in box)
    if rng.random() < 0.15:
        return [x, y, w, h]
    s = float(rng.choice([0.02, 0.08, 0.2, 0.5]))
    return [x + rng.normal(0, s * max(w, 1)), y + rng.normal(0, s * max(h, 1)),
            w * float(np.exp(rng.normal(0, s))), h * float(np.exp(rng.normal(0, s)))]


def _random_box(rng, w: int, h: int) -> list:
    bw, bh = rng.uniform(1, w), rng.uniform(1, h)
    return [rng.uniform(-2, w - bw + 2), rng.uniform(-2, h - bh + 2), bw, bh]


def _jitter_keypoints(rng, person: dict) -> list:
    x, y, bw, bh = _xywh(person)
    k = np.asarray(_coco_keypoints(person), dtype=float).reshape(17, 3)
    mode = rng.random()
    if not person["keypoints"] or mode < 0.15:  # anywhere around the box
        out = np.zeros_like(k)
        out[:, 0] = x - bw / 2 + rng.random(17) * 2 * bw
        out[:, 1] = y - bh / 2 + rng.random(17) * 2 * bh
    elif mode < 0.25:
        out = k.copy()
    else:
        out = k.copy()
        out[:, :2] += rng.normal(0, np.sqrt(max(bw * bh, 1.0)) * rng.choice([0.01, 0.05, 0.1, 0.3]), (17, 2))
    out[:, 2] = rng.choice([1.0, 2.0])
    return out.ravel().tolist()


def _detection(rng, iou_type, person, h, w) -> dict:
    if iou_type == "segm":
        base = _person_mask(person, h, w) if person is not None else _random_mask(rng, h, w)
        return {"segmentation": _encode(_jitter_mask(rng, base) if person is not None else base)}
    if iou_type == "bbox":
        return {"bbox": _jitter_box(rng, _xywh(person)) if person is not None else _random_box(rng, w, h)}
    if person is not None:
        return {"keypoints": _jitter_keypoints(rng, person)}
    box = _random_box(rng, w, h)
    k = np.zeros((17, 3))
    k[:, 0] = box[0] + rng.random(17) * box[2]
    k[:, 1] = box[1] + rng.random(17) * box[3]
    k[:, 2] = 1
    return {"keypoints": k.ravel().tolist()}


def make_results(native: dict, iou_type: str, seed: int, heavy: bool = False, by_name_p: float = 0.1) -> list:
    """Detections on every benchmark image: from persons of every kind (jittered), false
    positives, keyed by our image ids (now and then by file name). ``heavy``: more detections
    than maxDets on the first image (keypoints: 20)."""
    rng = np.random.default_rng(seed)
    ids = _engine_image_ids(native)
    scores = SCORE_SETS[int(rng.integers(len(SCORE_SETS)))]
    results = []
    for n, im in enumerate(_benchmark_images(native)):
        h, w = im["height"], im["width"]
        key = im["file_name"] if rng.random() < by_name_p else ids[im["file_name"]]
        sources = [p for p in im["annotations"] for _ in range(int(rng.choice([0, 1, 1, 1, 2])))]
        sources += [None] * int(rng.integers(0, 4))
        if heavy and n == 0:
            sources += [None] * (25 if iou_type == "keypoints" else 105)
        for person in sources:
            result = {"image_id": key, "category_id": 1, "score": float(rng.choice(scores))}
            result.update(_detection(rng, iou_type, person, h, w))
            results.append(result)
    order = rng.permutation(len(results)) if rng.random() < 0.5 else np.arange(len(results))
    return [results[i] for i in order]


# --------------------------------------------------------------------------------------------
# pycocotools oracles

def pycocotools_eval(gt_dict: dict, results: list, iou_type: str, ignore_ids=None):
    """pycocotools evaluate/accumulate/summarize -> (stats, precision, recall). ignore_ids:
    annotation ids whose ``ignore`` is set to 1 after ``_prepare`` (iscrowd stays 0)."""
    with quietly():
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt_dict)
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        else:  # loadRes cannot take an empty list
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt_dict["images"]), "annotations": [],
                               "categories": copy.deepcopy(gt_dict["categories"])}
            coco_dt.createIndex()
        E = COCOeval(coco_gt, coco_dt, iou_type)
        if ignore_ids is not None:
            original = E._prepare

            def _prepare():
                original()
                for anns in E._gts.values():
                    for g in anns:
                        if g["id"] in ignore_ids:
                            g["ignore"] = 1

            E._prepare = _prepare
        E.evaluate()
        E.accumulate()
        E.summarize()
    return np.asarray(E.stats, dtype=float), E.eval["precision"], E.eval["recall"]


def official_oracle(native: dict, results: list, iou_type: str, subset: str):
    """pycocotools on the official range file, results re-keyed to its ids by file name."""
    ds = ochuman.parse(native)
    range_file = ochuman.to_coco(ds, "val", MaxIoURange(*SUBSETS[subset]))
    name_of = {v: k for k, v in _engine_image_ids(native).items()}
    range_id = {im["file_name"]: im["id"] for im in range_file["images"]}
    remapped = []
    for r in results:
        name = r["image_id"] if isinstance(r["image_id"], str) else name_of[r["image_id"]]
        if name in range_id:
            remapped.append({**r, "image_id": range_id[name]})
    return pycocotools_eval(range_file, remapped, iou_type)


def ignore_oracle_gt(native: dict) -> tuple[dict, dict]:
    """The persons our ground truth uses, as a COCO dict (benchmark persons of the val images
    in file order, then the other persons of those images), and ann id -> (MaxIoU, is benchmark)."""
    ids = _engine_image_ids(native)
    bench_images = _benchmark_images(native)
    images = [{"id": ids[im["file_name"]], "file_name": im["file_name"], "width": im["width"],
               "height": im["height"]} for im in bench_images]
    ordered = ([(im, p) for im in bench_images for p in im["annotations"] if _is_bench(p)]
               + [(im, p) for im in bench_images for p in im["annotations"] if not _is_bench(p)])
    annotations, facts = [], {}
    for n, (im, person) in enumerate(ordered, start=1):
        h, w = im["height"], im["width"]
        kpts = _coco_keypoints(person)
        x, y, bw, bh = _xywh(person)
        if person["segms"]:
            segmentation = _encode(_person_mask(person, h, w))
        else:
            segmentation = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]
        annotations.append({
            "id": n, "image_id": ids[im["file_name"]], "category_id": 1, "iscrowd": 0,
            "bbox": [x, y, bw, bh], "area": bw * bh, "segmentation": segmentation, "keypoints": kpts,
            "num_keypoints": int(np.count_nonzero(np.asarray(kpts[2::3]) > 0)),
        })
        facts[n] = (person["max_iou"], _is_bench(person))
    categories = [{"id": 1, "name": "person", "supercategory": "person"}]
    return {"info": {}, "images": images, "annotations": annotations, "categories": categories}, facts


def ignore_oracle(gt_dict: dict, facts: dict, results: list, iou_type: str, subset: str):
    """pycocotools on every person, ``ignore`` set for persons outside the subset (closed top)
    and for non-benchmark persons; results keyed by file name re-keyed to ids."""
    ids = {im["file_name"]: im["id"] for im in gt_dict["images"]}
    results = [{**r, "image_id": ids[r["image_id"]]} if isinstance(r["image_id"], str) else r for r in results]
    lo, hi = SUBSETS[subset]
    ignore = {n for n, (v, bench) in facts.items()
              if not bench or not (lo <= v < hi or (hi == 1.0 and v == 1.0))}
    return pycocotools_eval(gt_dict, results, iou_type, ignore)


def _no_nearest(blocks, crowd):
    return np.full(len(blocks.dt_order), -1, dtype=np.int64)


# --------------------------------------------------------------------------------------------
# comparisons

def assert_same(ours, oracle, context: str, atol: float = 1e-12) -> None:
    stats, precision, recall = oracle
    np.set_printoptions(precision=17, linewidth=200)
    header = f"{context}\n ours:        {np.asarray(ours.stats)}\n pycocotools: {stats}\n"
    assert np.asarray(ours.stats).shape == stats.shape, header
    assert np.allclose(ours.stats, stats, rtol=0, atol=atol), header + " stats differ"
    for name, mine, theirs in (("precision", ours.precision, precision), ("recall", ours.recall, recall)):
        assert mine.shape == theirs.shape, header + f" {name} shape {mine.shape} != {theirs.shape}"
        diff = np.abs(mine - theirs)
        assert (diff <= atol).all(), header + f" {name} differs, max |diff| {diff.max()} ({int((diff > atol).sum())} cells)"


def _evaluate(native_or_ds, results, iou_type, mode, subsets=("all", "moderate", "hard")):
    ds = native_or_ds if isinstance(native_or_ds, ochuman.Dataset) else ochuman.parse(native_or_ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = evaluate_results(list(results), gt=ds, subsets=list(subsets), mode=mode, iou_type=iou_type)
    return report.evaluations[0].subsets


def _describe(native: dict, results: list) -> str:
    persons = [(("B" if _is_bench(p) else "x") + f"{p['max_iou']:.4g}") for im in native["images"]
               for p in im["annotations"]]
    return f"{len(native['images'])} images, persons {persons}, {len(results)} detections"


def in_official_file(native: dict, results: list) -> list:
    """The results on images of the official val file: what pycocotools on it accepts."""
    ids = _engine_image_ids(native)
    names = {im["file_name"] for im in ochuman.to_coco(ochuman.parse(native), "val")["images"]}
    listed = {ids[name] for name in names} | names
    return [r for r in results if r["image_id"] in listed]


def check_official(native: dict, results: list, iou_type: str) -> None:
    results = in_official_file(native, results)
    ours = _evaluate(native, results, iou_type, "official")
    for subset in SUBSETS:
        assert_same(ours[subset], official_oracle(native, results, iou_type, subset),
                    f"official {iou_type} {subset}: {_describe(native, results)}")


def check_ignore(native: dict, results: list, iou_type: str, monkeypatch) -> None:
    monkeypatch.setattr(ochuman.eval.run, "nearest_gt", _no_nearest)
    ours = _evaluate(native, results, iou_type, "ignore")
    gt_dict, facts = ignore_oracle_gt(native)
    for subset in SUBSETS:
        assert_same(ours[subset], ignore_oracle(gt_dict, facts, results, iou_type, subset),
                    f"ignore {iou_type} {subset}: {_describe(native, results)}")


# --------------------------------------------------------------------------------------------
# 1. official mode = pycocotools on the range files

@pytest.mark.differential
@settings(max_examples=200, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1), heavy=st.integers(0, 9))
def test_official_segm_equals_pycocotools_on_range_files(native, seed, heavy):
    check_official(native, make_results(native, "segm", seed, heavy=heavy == 0), "segm")


@pytest.mark.differential
@settings(max_examples=30, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1))
def test_official_bbox_equals_pycocotools_on_range_files(native, seed):
    check_official(native, make_results(native, "bbox", seed), "bbox")


@pytest.mark.differential
@settings(max_examples=30, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1), heavy=st.integers(0, 3))
def test_official_keypoints_equals_pycocotools_on_range_files(native, seed, heavy):
    check_official(native, make_results(native, "keypoints", seed, heavy=heavy == 0), "keypoints")


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("seed", [0, 1])
def test_official_on_real_sample(native_sample, iou_type, seed):
    native = json.loads(native_sample.read_bytes())
    check_official(native, make_results(native, iou_type, seed, by_name_p=0.3), iou_type)


def test_boundary_values_fall_where_the_official_converter_puts_them():
    """0.5 -> moderate, 0.75 -> hard, 1.0 -> no subset (official half-open ranges)."""
    native = {"images": [{"file_name": "a.jpg", "image_id": "1", "width": 40, "height": 50, "annotations": [
        _square_person(0, 0, 9, 0.5), _square_person(20, 0, 9, 0.75), _square_person(0, 20, 9, 1.0)]}]}
    ids = _engine_image_ids(native)
    results = [{"image_id": ids["a.jpg"], "category_id": 1, "score": s,
                "segmentation": _encode(_person_mask(p, 50, 40))}
               for s, p in zip((0.9, 0.8, 0.7), native["images"][0]["annotations"])]
    ours = _evaluate(native, results, "segm", "official")
    # all: 2 persons; the detection of the 1.0 person (score 0.7, last) is a false positive.
    assert ours["all"].persons == 2 and ours["all"].stats[0] == pytest.approx(1.0, abs=1e-12)
    # moderate: only the 0.5 person; the 0.75 detection (score 0.8) is a false positive.
    assert ours["moderate"].persons == 1 and ours["moderate"].stats[0] == pytest.approx(1.0, abs=1e-12)
    assert ours["hard"].persons == 1
    # hard: 0.9 detection (FP) ranks before the 0.8 one (TP): precision 0.5 everywhere.
    assert ours["hard"].stats[0] == pytest.approx(0.5, abs=1e-12)
    check_official(native, results, "segm")


# --------------------------------------------------------------------------------------------
# 2. ignore mode = pycocotools with _ignore per person (nearest-person rule off)

@pytest.mark.differential
@settings(max_examples=150, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1))
def test_ignore_segm_equals_pycocotools_with_ignore_flags(native, seed):
    with pytest.MonkeyPatch.context() as mp:
        check_ignore(native, make_results(native, "segm", seed), "segm", mp)


@pytest.mark.differential
@settings(max_examples=30, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1))
def test_ignore_bbox_equals_pycocotools_with_ignore_flags(native, seed):
    with pytest.MonkeyPatch.context() as mp:
        check_ignore(native, make_results(native, "bbox", seed), "bbox", mp)


@pytest.mark.differential
@settings(max_examples=30, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1))
def test_ignore_keypoints_equals_pycocotools_with_ignore_flags(native, seed):
    with pytest.MonkeyPatch.context() as mp:
        check_ignore(native, make_results(native, "keypoints", seed), "keypoints", mp)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_ignore_on_real_sample(native_sample, iou_type, monkeypatch):
    native = json.loads(native_sample.read_bytes())
    check_ignore(native, make_results(native, iou_type, 7, by_name_p=0.3), iou_type, monkeypatch)


# --------------------------------------------------------------------------------------------
# 2b. the nearest-person rule of ignore mode, by hand

def _square_person(x, y, size, max_iou, kind="bench") -> dict:
    box = [x, y, x + size, y + size]
    person = {"bbox": box, "max_iou": max_iou, "keypoints": None, "segms": None,
              "links": {"kpts": None, "segms": None}}
    if kind == "bench":
        person["keypoints"] = [x + 1, y + 1, 1] * 19
        person["segms"] = {"outer": [[x, y, x + size, y, x + size, y + size, x, y + size]], "inner": []}
    return person


def _square(x, y, size, h=50, w=40) -> dict:
    m = np.zeros((h, w), dtype=bool)
    m[y:y + size, x:x + size] = True
    return _encode(m)


# One 40 x 50 image: A moderate (0.6) at (0, 0), B hard (0.8) at (20, 0), C box-only at (0, 30),
# each 10 x 10 (box area 100: "small"). Detections by hand, IoUs exact on the pixel grid:
# - a: A's mask exactly (IoU 1 with A);
# - b: 10 x 10 at (25, 0): IoU 50/150 = 1/3 with B, 0 with A: never matched, nearest B (hard);
# - c: 10 x 10 at (0, 35): IoU 1/3 with C (box-only): never matched, nearest C;
# - z: 5 x 5 at (30, 40): overlaps nobody.
A_MASK, B_NEAR, C_NEAR, NOBODY = _square(0, 0, 10), _square(25, 0, 10), _square(0, 35, 10), _square(30, 40, 5)


def _hand_native():
    return {"images": [{"file_name": "a.jpg", "image_id": "1", "width": 40, "height": 50, "annotations": [
        _square_person(0, 0, 10, 0.6), _square_person(20, 0, 10, 0.8), _square_person(0, 30, 10, 0.0, kind="box")]}]}


def _hand_results(*dets):
    return [{"image_id": 1, "category_id": 1, "score": s, "segmentation": m} for m, s in dets]


@pytest.mark.parametrize("dets, expected", [
    # b (0.9) before a (0.8). moderate: b's nearest person is hard -> ignored, a TP: AP 1.
    # hard: b FP, a matches A (an ignore region) -> ignored; B never found: AP 0.
    # all: b FP then a TP, 2 persons: precision 1/2 up to recall 1/2: AP 51 * 0.5 / 101.
    ([(B_NEAR, 0.9), (A_MASK, 0.8)], {"moderate": 1.0, "hard": 0.0, "all": 25.5 / 101}),
    # z overlaps nobody: a false positive everywhere. moderate: z FP, a TP: AP 0.5.
    # all: z, b FP, a TP: precision 1/3 up to recall 1/2: AP 51 / 3 / 101.
    ([(NOBODY, 0.95), (B_NEAR, 0.9), (A_MASK, 0.8)], {"moderate": 0.5, "hard": 0.0, "all": 17 / 101}),
    # c's nearest person is box-only (in no subset): ignored everywhere.
    ([(C_NEAR, 0.9), (A_MASK, 0.8)], {"moderate": 1.0, "hard": 0.0, "all": 51 / 101}),
])
def test_nearest_person_rule(dets, expected):
    ours = _evaluate(_hand_native(), _hand_results(*dets), "segm", "ignore")
    for subset, ap in expected.items():
        # AP at every IoU threshold is the same here: AP, AP50, AP75 and APs (all persons small).
        for k in (0, 1, 2, 3):
            assert ours[subset].stats[k] == pytest.approx(ap, abs=1e-12), (subset, k, ours[subset].stats)
        assert ours[subset].stats[4] == -1 and ours[subset].stats[5] == -1  # nobody medium / large


def test_nearest_person_rule_off_is_plain_pycocotools(monkeypatch):
    """The same first case without the rule: b is a false positive in moderate too (AP 0.5)."""
    monkeypatch.setattr(ochuman.eval.run, "nearest_gt", _no_nearest)
    ours = _evaluate(_hand_native(), _hand_results((B_NEAR, 0.9), (A_MASK, 0.8)), "segm", "ignore")
    assert ours["moderate"].stats[0] == pytest.approx(0.5, abs=1e-12)
    assert ours["hard"].stats[0] == pytest.approx(0.0, abs=1e-12)
    assert ours["all"].stats[0] == pytest.approx(25.5 / 101, abs=1e-12)


def test_official_mode_on_the_hand_case():
    """official: B is dropped from moderate, so b is a false positive there (AP 0.5)."""
    ours = _evaluate(_hand_native(), _hand_results((B_NEAR, 0.9), (A_MASK, 0.8)), "segm", "official")
    assert ours["moderate"].stats[0] == pytest.approx(0.5, abs=1e-12)
    assert ours["hard"].stats[0] == pytest.approx(0.0, abs=1e-12)
    assert ours["all"].stats[0] == pytest.approx(25.5 / 101, abs=1e-12)


# --------------------------------------------------------------------------------------------
# 3. one call with three subsets == three calls

def _same_acc(a, b) -> None:
    np.testing.assert_array_equal(a.stats, b.stats)
    np.testing.assert_array_equal(a.precision, b.precision)
    np.testing.assert_array_equal(a.recall, b.recall)
    assert a.persons == b.persons


@pytest.mark.differential
@settings(max_examples=25, **SETTINGS)
@given(native=native_datasets(), seed=st.integers(0, 2 ** 32 - 1),
       iou_type=st.sampled_from(["segm", "bbox", "keypoints"]), mode=st.sampled_from(["official", "ignore"]))
def test_one_call_equals_separate_calls(native, seed, iou_type, mode):
    results = make_results(native, iou_type, seed)
    if mode == "official":
        results = in_official_file(native, results)
    together = _evaluate(native, results, iou_type, mode)
    for subset in SUBSETS:
        alone = _evaluate(native, results, iou_type, mode, subsets=[subset])
        _same_acc(together[subset], alone[subset])


def test_one_call_equals_separate_calls_on_real_sample(native_sample):
    ds = ochuman.load(native_sample)
    native = json.loads(native_sample.read_bytes())
    results = make_results(native, "segm", 3)
    for mode in ("official", "ignore"):
        together = _evaluate(ds, results, "segm", mode)
        for subset in SUBSETS:
            _same_acc(together[subset], _evaluate(ds, results, "segm", mode, subsets=[subset])[subset])


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ignore_mode_takes_no_crowd_region_for_the_person_a_detection_overlaps_most(tmp_path, iou_type):
    """A crowd region is no person of any subset: an unmatched detection that overlaps only a
    crowd region is a false positive, as pycocotools counts it, and "all" in ignore mode scores a
    COCO file without box-only persons as official mode (pycocotools) does."""
    def polygon(x, y, w, h):
        return [[x, y, x + w, y, x + w, y + h, x, y + h]]

    crowd = np.zeros((100, 100), np.uint8)
    crowd[50:90, 50:90] = 1
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    gt = {"images": [{"id": 1, "width": 100, "height": 100, "file_name": "a.jpg"}],
          "categories": [{"id": 1, "name": "person"}],
          "annotations": [
              {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [5, 5, 30, 30], "area": 900,
               "segmentation": polygon(5, 5, 30, 30)},
              {"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [50, 50, 40, 40], "area": 1600,
               "segmentation": {"size": [100, 100], "counts": crowd_rle["counts"].decode()}}]}
    results = [  # the person found; a detection mostly outside the crowd region (IoU over its area 0.25)
        {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [5, 5, 30, 30], "segmentation": polygon(5, 5, 30, 30)},
        {"image_id": 1, "category_id": 1, "score": 0.95, "bbox": [70, 70, 40, 40],
         "segmentation": polygon(70, 70, 30, 30)}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "results.json").write_text(json.dumps(results))
    rows = {mode: ochuman.eval.run.evaluate_results(str(tmp_path / "results.json"), gt=str(tmp_path / "gt.json"),
                                                    iou_type=iou_type, subsets=("all",), mode=mode).rows()[0]
            for mode in ("official", "ignore")}
    stats = [k for k in rows["official"] if k.startswith(("AP", "AR"))]
    assert [rows["ignore"][k] for k in stats] == [rows["official"][k] for k in stats]
    assert 0 < rows["official"]["AP"] < 1  # the crowd region's neighbour is a false positive before the person
