"""``ochuman.compat`` against pycocotools on generated inputs (hypothesis).

Scenes: several categories, images without ground truth or without detections, polygon,
compressed and uncompressed RLE ground truth, crowd regions, keypoints of 17, 14 or 5 joints
with custom sigmas, results whose records carry different fields, ids as numpy integers, and
changed params. Every run goes through pycocotools and the facade, in one call or in
torchvision's batched ``evaluate()``/merge pattern; either both give the same ``evalImgs``,
``ious``, ``eval`` arrays and ``stats``, or both raise, ours an ``OCHumanError`` that is also
the exception type pycocotools raised, at the same step.
"""
from __future__ import annotations

import copy
import math
import pickle
from typing import Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from ochuman import compat
from ochuman.compat import quietly
from ochuman.errors import OCHumanError

from .test_compat import _pooled_oks

PYCOCOTOOLS = (PyCOCO, PyCOCOeval)
OURS = (compat.COCO, compat.COCOeval)
SCORES = (0.1, 0.3, 0.5, 0.5, 0.7, 0.9)


# --------------------------------------------------------------------------------------------
# scenes

def _polygon(rng, x, y, w, h) -> list:
    n = int(rng.integers(3, 7))
    return np.round(np.stack([x + rng.random(n) * w, y + rng.random(n) * h], axis=1), 1).ravel().tolist()


def _uncompressed(mask: np.ndarray) -> list:
    """COCO's uncompressed RLE counts of a mask (column-major runs, zeros first)."""
    flat = mask.flatten(order="F").astype(np.int64)
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.r_[0, changes, len(flat)]
    runs = np.diff(edges).tolist()
    return ([0] + runs) if flat[0] == 1 else runs


@st.composite
def scenes(draw):
    n_cats = draw(st.integers(1, 6))  # more than two per worker: accumulation by category
    cat_ids = draw(st.lists(st.integers(1, 90), min_size=n_cats, max_size=n_cats, unique=True))
    joints = draw(st.sampled_from([17, 14, 5]))
    sigmas = np.array(draw(st.lists(st.sampled_from([0.025, 0.035, 0.062, 0.079, 0.107]), min_size=joints,
                                    max_size=joints)))
    image_ids = draw(st.lists(st.integers(1, 500), min_size=1, max_size=4, unique=True))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))  # coordinates: cheap to draw and shrink
    images, annotations, results = [], [], []
    ann_id = -1  # a ground truth may have id 0 (pycocotools records matches by id: 0 reads as none)
    kinds = draw(st.sampled_from(["bbox", "segm", "keypoints", "mixed"]))
    for image_id in image_ids:
        h, w = draw(st.integers(12, 40)), draw(st.integers(12, 40))
        images.append({"id": image_id, "height": h, "width": w, "file_name": f"{image_id}.jpg"})
        persons = []
        for _ in range(draw(st.integers(0, 4))):
            ann_id += draw(st.integers(1, 3))
            x, y = draw(st.integers(0, w - 4)), draw(st.integers(0, h - 4))
            bw, bh = draw(st.integers(2, w - x)), draw(st.integers(2, h - y))
            crowd = draw(st.integers(0, 6)) == 0
            poly = _polygon(rng, x, y, bw, bh)
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], h, w))
            form = "uncompressed" if crowd else draw(st.sampled_from(["polygon", "rle"]))
            segmentation = ([poly] if form == "polygon" else
                            {"size": [h, w], "counts": rle["counts"].decode("ascii")} if form == "rle" else
                            {"size": [h, w], "counts": _uncompressed(mask_utils.decode(rle))})
            k = np.zeros((joints, 3))
            k[:, 0] = np.round(x + rng.random(joints) * bw, 2)
            k[:, 1] = np.round(y + rng.random(joints) * bh, 2)
            k[:, 2] = rng.choice([0, 0, 1, 2], joints)
            k[k[:, 2] == 0, :2] = 0
            area = draw(st.sampled_from([float(mask_utils.area(rle)), float(bw * bh), 0.5 * bw * bh]))
            ann = {"id": ann_id, "image_id": image_id, "category_id": draw(st.sampled_from(cat_ids)),
                   "bbox": [x, y, bw, bh], "area": area, "iscrowd": int(crowd), "segmentation": segmentation,
                   "keypoints": k.ravel().tolist(), "num_keypoints": int((k[:, 2] > 0).sum())}
            annotations.append(ann)
            persons.append((ann, rle, k))
        for _ in range(draw(st.integers(0 if image_id != image_ids[0] else 1, 6))):
            if persons and draw(st.integers(0, 3)):
                ann, rle, k = draw(st.sampled_from(persons))
                bx, by, bw, bh = ann["bbox"]
                jitter = draw(st.sampled_from([0, 0, 1, 2, 4]))
                box = [bx + draw(st.integers(-jitter, jitter)), by + draw(st.integers(-jitter, jitter)), bw, bh]
                kpts = k.copy()
                kpts[:, :2] += draw(st.sampled_from([0.0, 0.5, 2.0]))
                mask = rle
                category = ann["category_id"] if draw(st.integers(0, 4)) else draw(st.sampled_from(cat_ids))
            else:
                x, y = draw(st.integers(0, w - 3)), draw(st.integers(0, h - 3))
                box = [x, y, draw(st.integers(1, w - x)), draw(st.integers(1, h - y))]
                mask = mask_utils.merge(mask_utils.frPyObjects([_polygon(rng, *box)], h, w))
                kpts = np.ones((joints, 3))
                kpts[:, 0] = box[0] + rng.random(joints) * box[2]
                kpts[:, 1] = box[1] + rng.random(joints) * box[3]
                category = draw(st.sampled_from(cat_ids))
            record = {"image_id": image_id, "category_id": category, "score": draw(st.sampled_from(SCORES))}
            fields = {"bbox": ["bbox"], "segm": ["segmentation"], "keypoints": ["keypoints"],
                      "mixed": draw(st.sampled_from([["bbox", "segmentation"], ["segmentation"], ["bbox"],
                                                     ["keypoints"], ["bbox", "keypoints"]]))}[kinds]
            if "bbox" in fields:
                record["bbox"] = box
            if "segmentation" in fields:
                record["segmentation"] = {"size": [h, w], "counts": mask["counts"].decode("ascii")}
            if "keypoints" in fields:
                record["keypoints"] = kpts.ravel().tolist()
            results.append(record)
    if draw(st.booleans()):  # ids as numpy integers, as a torch/numpy pipeline writes them
        for record in results:
            record["image_id"] = np.int64(record["image_id"])
            record["category_id"] = np.int64(record["category_id"])
    gt = {"info": {}, "images": images, "annotations": annotations,
          "categories": [{"id": c, "name": f"c{c}", "supercategory": "x"} for c in cat_ids]}
    return gt, results, sigmas


@st.composite
def param_changes(draw, gt, iou_type, sigmas=None):
    changes = {}
    image_ids = [im["id"] for im in gt["images"]]
    cat_ids = [c["id"] for c in gt["categories"]]
    if draw(st.booleans()):
        changes["imgIds"] = [np.int64(i) for i in draw(st.lists(st.sampled_from(image_ids), min_size=1, unique=True))]
    if draw(st.booleans()):
        changes["catIds"] = draw(st.lists(st.sampled_from(cat_ids), min_size=1, unique=True))
    if draw(st.integers(0, 3)) == 0:
        changes["useCats"] = 0
    if draw(st.booleans()):
        changes["maxDets"] = [1, 2, 20] if iou_type != "keypoints" else [2, 20]
    if draw(st.integers(0, 3)) == 0:  # other lengths (pycocotools' summary reads three for boxes)
        changes["maxDets"] = draw(st.lists(st.sampled_from([0, 1, 2, 3, 20, 100]), min_size=1, max_size=4))
    if "maxDets" in changes and draw(st.integers(0, 3)) == 0:  # a value of another type
        at = draw(st.integers(0, len(changes["maxDets"]) - 1))
        changes["maxDets"][at] = draw(st.sampled_from([np.int64(3), True, 20.0, np.float64(2)]))
    if draw(st.integers(0, 3)) == 0:
        thresholds = draw(st.lists(st.sampled_from([0.0, 0.3, 0.5, 0.75, 0.9, 1.0, 1.5, math.nan]), min_size=1, max_size=5))
        changes["iouThrs"] = thresholds if draw(st.integers(0, 3)) == 0 else np.array(thresholds)
    if draw(st.integers(0, 3)) == 0:  # unsorted and NaN too: pycocotools searchsorts each
        changes["recThrs"] = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0, math.nan]), min_size=1, max_size=5)))
    if draw(st.integers(0, 3)) == 0:
        ranges = (("all", [0, 1e10]), ("small", [0, 32 ** 2]), ("medium", [32 ** 2, 96 ** 2]), ("large", [96 ** 2, 1e10]),
                  ("odd", [500, 400]), ("all", [0, 60]))
        chosen = draw(st.lists(st.sampled_from(ranges), min_size=1, max_size=4))
        changes["areaRngLbl"], changes["areaRng"] = [label for label, _ in chosen], [list(r) for _, r in chosen]
    if iou_type == "keypoints" and sigmas is not None and draw(st.integers(0, 5)) == 0:
        changes["kpt_oks_sigmas"] = list(sigmas)  # (pycocotools raises TypeError where it computes OKS)
    return changes


# --------------------------------------------------------------------------------------------
# runs

def _evaluation(lib, gt_dict, results, iou_type, sigmas, params, batches=None, gt_file=None, results_file=None,
                after_evaluate=None):
    """-> (step, exception) if a step raised, else the COCOeval after summarize(). gt_file: the
    ground truth read from this file (the drop-in's file paths) instead of set as a dict;
    results_file: the results read from this file (loadRes(path)) instead of the list;
    after_evaluate: E = after_evaluate(E) between evaluate() and accumulate() (see :func:`copied`)."""
    coco_cls, eval_cls = lib
    step = "load"
    try:
        with quietly():
            if gt_file is not None:
                gt = coco_cls(str(gt_file))
            else:
                gt = coco_cls()
                gt.dataset = copy.deepcopy(gt_dict)
                gt.createIndex()
            step = "loadRes"
            records = copy.deepcopy(results)
            dt = gt.loadRes(str(results_file) if results_file is not None else records) if batches is None else None
            step = "evaluate"
            E = eval_cls(gt, dt, iou_type)
            if lib is PYCOCOTOOLS:
                _pooled_oks(E)
            if iou_type == "keypoints":
                E.params.kpt_oks_sigmas = sigmas
            for name, value in params.items():
                setattr(E.params, name, copy.deepcopy(value))
            if batches is None:
                E.evaluate()
            else:
                _torchvision_batches(lib, gt, E, records, batches)
            if after_evaluate is not None:
                E = after_evaluate(E)
            step = "accumulate"
            E.accumulate()
            step = "summarize"
            E.summarize()
        return E
    except Exception as err:  # noqa: BLE001 - compared with the other library's outcome
        return step, err


def copied(how: str) -> Callable:
    """An ``after_evaluate`` that copies the COCOeval ("deepcopy" or "pickle")."""
    def copy_of(E):
        E.__dict__.pop("computeOks", None)  # (the oracle's pooling, done with; no pickle)
        return copy.deepcopy(E) if how == "deepcopy" else pickle.loads(pickle.dumps(E))

    return copy_of


def _torchvision_batches(lib, gt, E, records, batches):
    """torchvision's reference CocoEvaluator: per batch loadRes (an empty COCO() when the batch
    has no results), params.imgIds = the batch, evaluate(), evalImgs reshaped (K, A, I); the
    batches of two "processes" merged along images, deduplicated with np.unique, set back."""
    coco_cls = lib[0]
    img_ids, eval_imgs = [], []
    for batch in batches:
        ids = list(np.unique(batch))
        chosen = [copy.deepcopy(r) for r in records if r["image_id"] in set(ids)]  # fresh per batch
        E.cocoDt = coco_cls.loadRes(gt, chosen) if chosen else coco_cls()
        E.params.imgIds = list(ids)
        E.evaluate()
        img_ids.extend(E.params.imgIds)
        eval_imgs.append(np.asarray(E.evalImgs).reshape(-1, len(E.params.areaRng), len(E.params.imgIds)))
    merged_ids, index = np.unique(np.array(img_ids), return_index=True)
    merged = np.concatenate(eval_imgs, 2)[..., index]
    E.evalImgs = list(merged.flatten())
    E.params.imgIds = list(merged_ids)
    E._paramsEval = copy.deepcopy(E.params)


def assert_same_eval_imgs(ours, theirs) -> None:
    assert len(ours) == len(theirs)
    for n, (mine, oracle) in enumerate(zip(ours, theirs)):
        if oracle is None:
            assert mine is None, n
            continue
        assert mine is not None and set(mine) == set(oracle), n
        for key, value in oracle.items():
            got = mine[key]
            if isinstance(value, np.ndarray):
                assert isinstance(got, np.ndarray) and got.dtype == value.dtype and got.shape == value.shape, (n, key)
                assert np.array_equal(got, value), (n, key, got, value)
            else:
                assert got == value and type(got) is type(value) or _equal_with_nan(got, value), (n, key, got, value)


def _equal_with_nan(got, value) -> bool:
    """Lists of numbers equal item by item, NaN equal to NaN (a NaN score is pycocotools' too)."""
    try:
        return type(got) is type(value) and np.array_equal(np.asarray(got, dtype=float), np.asarray(value, dtype=float),
                                                           equal_nan=True)
    except (TypeError, ValueError):
        return np.array_equal(got, value)


def _plain(value):
    """A value of an index, comparable with ==: types kept, NaN equal to NaN, key order kept."""
    if isinstance(value, dict):
        return ("dict", [(key, _plain(item)) for key, item in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [_plain(item) for item in value])
    if isinstance(value, np.ndarray):
        return ("ndarray", str(value.dtype), value.shape, _plain(value.tolist()))
    if isinstance(value, (float, np.floating)) and value != value:
        return (type(value).__name__, "nan")
    return (type(value).__name__, value)


def assert_same_indexes(ours, oracle) -> None:
    """The annotations of both indexes as pycocotools' evaluate() leaves them (masks written as
    RLE by segm, ``ignore`` and ``_ignore`` written into the ground truth's)."""
    for side in ("cocoGt", "cocoDt"):
        mine, theirs = getattr(ours, side), getattr(oracle, side)
        assert list(mine.anns) == list(theirs.anns), side
        for key, ann in theirs.anns.items():
            assert _plain(mine.anns[key]) == _plain(ann), (side, key, mine.anns[key], ann)


def assert_same_outcome(ours, oracle, compare_internals=True) -> None:
    if isinstance(oracle, tuple):
        step, err = oracle
        assert isinstance(ours, tuple), f"pycocotools raised {err!r} at {step}, ours did not"
        assert ours[0] == step, (ours, oracle)
        # numpy's own errors (UFuncTypeError) by their Python type
        expected = next(kind for kind in type(err).__mro__ if kind.__module__ == "builtins")
        assert isinstance(ours[1], OCHumanError) and isinstance(ours[1], expected), (ours, oracle)
        assert "\n" not in str(ours[1])
        return
    assert not isinstance(ours, tuple), f"ours raised {ours!r}, pycocotools gave numbers"
    assert_same_indexes(ours, oracle)  # (first: reading evalImgs below runs pycocotools' _prepare)
    np.testing.assert_array_equal(ours.stats, oracle.stats)
    for name in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(ours.eval[name], oracle.eval[name], err_msg=name)
    assert ours.eval["counts"] == oracle.eval["counts"]
    assert list(ours.params.catIds) == list(oracle.params.catIds)
    if compare_internals:
        assert_same_eval_imgs(ours.evalImgs, oracle.evalImgs)
        for name in ("_gts", "_dts"):  # the keys pycocotools' reads add too
            assert list(getattr(ours, name)) == list(getattr(oracle, name)), name
        assert set(ours.ious) == set(oracle.ious)
        for key, value in oracle.ious.items():
            np.testing.assert_allclose(ours.ious[key], value, rtol=0, atol=1e-15, err_msg=str(key))


# --------------------------------------------------------------------------------------------
# tests

COMMON = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.mark.differential
@COMMON
@given(data=st.data(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]))
def test_evaluation_equals_pycocotools(data, iou_type):
    gt, results, sigmas = data.draw(scenes())
    params = data.draw(param_changes(gt, iou_type, sigmas))
    how = data.draw(st.sampled_from([None, None, "deepcopy", "pickle"]))
    after = copied(how) if how else None
    ours = _evaluation(OURS, gt, results, iou_type, sigmas, params, after_evaluate=after)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, sigmas, params, after_evaluate=after)
    # pycocotools' ious under useCats=0 keypoints are its unpooled ones (see _pooled_oks)
    pooled = iou_type == "keypoints" and params.get("useCats") == 0
    assert_same_outcome(ours, oracle, compare_internals=not pooled)


@pytest.mark.differential
@COMMON
@given(data=st.data(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]))
def test_ground_truth_files_equal_pycocotools(data, iou_type):
    """The ground truth read from a JSON file (the drop-in takes its columns from the compiled
    scanner where it can: polygons, compressed and uncompressed RLE)."""
    import json
    import tempfile

    gt, results, sigmas = data.draw(scenes())
    params = data.draw(param_changes(gt, iou_type))
    if iou_type != "keypoints" and len(sigmas) != 17:  # unread; leaves the file in the scanner's shape
        for ann in gt["annotations"]:
            del ann["keypoints"], ann["num_keypoints"]
    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/gt.json"
        with open(path, "w") as handle:
            json.dump(gt, handle, default=int)  # numpy integer ids as JSON integers
        ours = _evaluation(OURS, gt, results, iou_type, sigmas, params, gt_file=path)
        oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, sigmas, params, gt_file=path)
    pooled = iou_type == "keypoints" and params.get("useCats") == 0
    assert_same_outcome(ours, oracle, compare_internals=not pooled)


@pytest.mark.differential
@COMMON
@given(data=st.data(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]))
def test_torchvision_batches_equal_pycocotools(data, iou_type):
    gt, results, sigmas = data.draw(scenes())
    image_ids = [im["id"] for im in gt["images"]]
    order = data.draw(st.permutations(image_ids))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(order)), max_size=3)))
    batches = [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)]) if b > a]
    if data.draw(st.booleans()):  # two processes that both saw one image
        batches.append(order[:1])
    ours = _evaluation(OURS, gt, results, iou_type, sigmas, {}, batches)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, sigmas, {}, batches)
    assert_same_outcome(ours, oracle)
    if not isinstance(oracle, tuple):  # batched = one evaluation of every image
        whole = _evaluation(PYCOCOTOOLS, gt, results, iou_type, sigmas, {})
        if not isinstance(whole, tuple):
            np.testing.assert_array_equal(ours.stats, whole.stats)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_eval_imgs_read_then_accumulate_is_exact(coco_mini, iou_type):
    """Reading evalImgs (or editing params after evaluate()) makes accumulate() read the dicts;
    the numbers stay pycocotools'."""
    from .test_compat import make_results, run_pycocotools

    results = make_results(coco_mini, iou_type, seed=3)
    oracle, _ = run_pycocotools(coco_mini, results, iou_type)
    gt = compat.COCO(str(coco_mini))
    E = compat.COCOeval(gt, gt.loadRes(copy.deepcopy(results)), iou_type)
    E.evaluate()
    assert_same_eval_imgs(E.evalImgs, oracle.evalImgs)
    E.accumulate()
    with quietly():
        E.summarize()
    assert_same_outcome(E, oracle)


HUGE = 1e308  # finite, but w * h overflows: IoUs of inf / inf = NaN
NAN_BOXES = ([0, 0, 10, 10], [2, 1, 10, 9], [0, 0, HUGE, HUGE], [5, 5, HUGE, HUGE], [0, 0, 20, HUGE])


@st.composite
def nan_iou_scenes(draw):
    """Boxes whose IoU is NaN (overflowing areas) among ordinary ones, crowd regions included."""
    images, annotations, results = [], [], []
    for image_id in range(1, draw(st.integers(1, 3)) + 1):
        images.append({"id": image_id, "height": 50, "width": 50, "file_name": f"{image_id}.jpg"})
        for _ in range(draw(st.integers(0, 5))):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": list(draw(st.sampled_from(NAN_BOXES))), "iscrowd": int(draw(st.integers(0, 4)) == 0),
                                "area": draw(st.sampled_from([100.0, 5000.0, 1e10]))})
        for _ in range(draw(st.integers(0, 6))):
            results.append({"image_id": image_id, "category_id": 1, "bbox": list(draw(st.sampled_from(NAN_BOXES))),
                            "score": draw(st.sampled_from(SCORES))})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "c1", "supercategory": "x"}]}
    return gt, results


@pytest.mark.differential
@COMMON
@given(scene=nan_iou_scenes(), max_dets=st.sampled_from([None, [1, 2, 3]]))
def test_nan_ious_match_as_pycocotools(scene, max_dets):
    """pycocotools' `iou < best` is false for a NaN IoU: that detection takes it, and every
    available ground truth after it in the scan replaces it. Matched the same way here."""
    gt, results = scene
    params = {"maxDets": max_dets} if max_dets else {}
    ours = _evaluation(OURS, gt, results, "bbox", None, params)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, params)
    assert_same_outcome(ours, oracle)


EXTREMES = (0.0, -0.0, 1.0, 5.0, 10.0, 20.0, HUGE, math.inf, -math.inf, math.nan)


@st.composite
def extreme_box_scenes(draw):
    """Boxes, areas and scores of NaN, infinities, signed zeros and overflowing sizes, in the
    ground truth and the results (pycocotools reads them all; so does the drop-in)."""
    images, annotations, results = [], [], []
    value = st.sampled_from(EXTREMES)
    for image_id in (1, 2):
        images.append({"id": image_id, "height": 50, "width": 50, "file_name": f"{image_id}.jpg"})
        for _ in range(draw(st.integers(0, 4))):
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [draw(value) for _ in range(4)], "iscrowd": int(draw(st.integers(0, 4)) == 0),
                                "area": draw(st.sampled_from([100.0, 5000.0, math.inf, math.nan]))})
        for _ in range(draw(st.integers(0, 5))):
            results.append({"image_id": image_id, "category_id": 1, "bbox": [draw(value) for _ in range(4)],
                            "score": draw(st.sampled_from([0.1, 0.5, 0.9, math.nan, math.inf]))})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "c1", "supercategory": "x"}]}
    return gt, results


@pytest.mark.differential
@COMMON
@given(scene=extreme_box_scenes())
def test_extreme_boxes_areas_and_scores_equal_pycocotools(scene):
    gt, results = scene
    ours = _evaluation(OURS, gt, results, "bbox", None, {})
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {})
    assert_same_outcome(ours, oracle)


@st.composite
def extreme_keypoint_scenes(draw):
    """Keypoints, boxes and areas of NaN, infinities, signed zeros, 1e308 and 1e-300 (OKS of NaN,
    zero-area persons), ground truth and results."""
    value = st.sampled_from((*EXTREMES, 1e-300))
    images, annotations, results = [], [], []
    for image_id in (1, 2):
        images.append({"id": image_id, "height": 50, "width": 50, "file_name": f"{image_id}.jpg"})
        for _ in range(draw(st.integers(0, 3))):
            kpts = [x for _ in range(17) for x in (draw(value), draw(value), draw(st.sampled_from([0, 1, 2])))]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                "bbox": [draw(value) for _ in range(4)], "iscrowd": int(draw(st.integers(0, 4)) == 0),
                                "area": draw(st.sampled_from([100.0, 0.0, math.inf, math.nan])), "keypoints": kpts,
                                "num_keypoints": sum(v > 0 for v in kpts[2::3])})
        for _ in range(draw(st.integers(0, 4))):
            kpts = [x for _ in range(17) for x in (draw(value), draw(value), draw(st.sampled_from([1, 0.5, math.nan])))]
            results.append({"image_id": image_id, "category_id": 1, "keypoints": kpts,
                            "score": draw(st.sampled_from([0.1, 0.5, 0.9]))})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person", "supercategory": "x"}]}
    return gt, results


@pytest.mark.differential
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pycocotools' own, on inf - inf
@COMMON
@given(scene=extreme_keypoint_scenes())
def test_extreme_keypoints_equal_pycocotools(scene):
    from pycocotools.cocoeval import Params

    gt, results = scene
    sigmas = Params("keypoints").kpt_oks_sigmas
    ours = _evaluation(OURS, gt, results, "keypoints", sigmas, {})
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "keypoints", sigmas, {})
    assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("x", [0.0, 5.0])
@pytest.mark.parametrize("crowd", [0, 1])
def test_a_nan_detection_coordinate_beside_a_ground_truth_without_labelled_keypoints(x, crowd):
    """pycocotools measures such a detection by its distance outside the enlarged gt box,
    ``np.max((0, d))`` per joint, which keeps a NaN: the OKS is NaN (and NaN < t never skips the
    pair, so it matches at every threshold); a NaN taken as 0 gives a number instead."""
    from pycocotools.cocoeval import Params

    gt = {"images": [{"id": 1, "height": 50, "width": 50, "file_name": "1.jpg"}],
          "categories": [{"id": 1, "name": "person", "supercategory": "x"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": [0.0, 0.0, 0.0, 0.0], "iscrowd": crowd,
                           "area": 100.0, "keypoints": [0.0] * 51, "num_keypoints": 0} for i in range(2)]}
    keypoints = [0.0, 0.0, 1] * 16 + [x, math.nan, 1]
    results = [{"image_id": 1, "category_id": 1, "keypoints": keypoints, "score": 0.1}]
    sigmas = Params("keypoints").kpt_oks_sigmas
    ours = _evaluation(OURS, gt, results, "keypoints", sigmas, {})
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "keypoints", sigmas, {})
    assert np.isnan(oracle.ious[1, 1]).all()
    assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("iou_type, max_dets", [("bbox", [0, 0, 0]), ("keypoints", [0]), ("keypoints", [False])])
def test_max_dets_of_zero_keep_the_dicts_of_images_with_detections_only(iou_type, max_dets):
    """pycocotools' evaluateImg returns None only where an image and category hold neither
    ground truth nor detections, asked before it cuts the detections to maxDets[-1]: with a
    maxDets[-1] of 0, an image holding only detections gets a dict without ids."""
    from pycocotools.cocoeval import Params

    gt = {"images": [{"id": i, "height": 12, "width": 12, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
          "categories": [{"id": 1, "name": "c1", "supercategory": "x"}, {"id": 2, "name": "c2", "supercategory": "x"}],
          "annotations": [{"id": 1, "image_id": 2, "category_id": 2, "bbox": [0, 0, 2, 2], "area": 4.0, "iscrowd": 0,
                           "keypoints": [1.0, 1.0, 2] * 17, "num_keypoints": 17}]}
    results = [{"image_id": image, "category_id": cat, "score": 0.1, "bbox": [0, 0, 1, 1],
                "keypoints": [1.0, 1.0, 1] * 17} for image, cat in ((1, 1), (2, 2), (1, 2))]
    sigmas = Params("keypoints").kpt_oks_sigmas
    ours = _evaluation(OURS, gt, results, iou_type, sigmas, {"maxDets": max_dets})
    oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, sigmas, {"maxDets": max_dets})
    assert sum(e is not None and not e["dtIds"] and not e["gtIds"] for e in oracle.evalImgs) > 0
    assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("use_cats", [1, 0])
@pytest.mark.parametrize("crowded_first", [True, False])
def test_the_first_image_pycocotools_visits_decides_which_problem_is_raised(use_cats, crowded_first):
    """A float maxDets[-1] cannot slice the 6 detections of one image; detections without
    keypoints meet a ground truth in the other. pycocotools raises the problem of the image
    it visits first (imgIds order): TypeError in the crowded one, KeyError in the other."""
    from pycocotools.cocoeval import Params

    crowded, lone = (1, 2) if crowded_first else (2, 1)
    gt = {"images": [{"id": i, "height": 12, "width": 12, "file_name": f"{i}.jpg"} for i in (1, 2, 3)],
          "categories": [{"id": 1, "name": "c1", "supercategory": "x"}],
          "annotations": [{"id": 1, "image_id": lone, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4.0,
                           "iscrowd": 0, "keypoints": [1.0, 1.0, 2] * 17, "num_keypoints": 17}]}
    results = [{"image_id": image, "category_id": 1, "score": 0.1, "bbox": [0, 0, 1, 1]}
               for image in [crowded] * 6 + [lone]]
    sigmas = Params("keypoints").kpt_oks_sigmas
    params = {"useCats": use_cats, "maxDets": [2, np.float64(2.0)]}
    ours = _evaluation(OURS, gt, results, "keypoints", sigmas, params)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "keypoints", sigmas, params)
    assert oracle[0] == "evaluate" and type(oracle[1]) is (TypeError if crowded_first else KeyError), oracle
    assert_same_outcome(ours, oracle)


def test_a_nan_iou_takes_the_last_available_ground_truth():
    gt = {"images": [{"id": 1, "height": 50, "width": 50, "file_name": "1.jpg"}],
          "categories": [{"id": 1, "name": "c1", "supercategory": "x"}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": box, "iscrowd": 0, "area": 100.0}
                          for i, box in enumerate(([0, 0, 10, 10], [0, 0, HUGE, HUGE], [30, 30, 10, 10]))]}
    results = [{"image_id": 1, "category_id": 1, "bbox": box, "score": s}
               for box, s in (([0, 0, HUGE, HUGE], 0.9), ([0, 0, 10, 10], 0.8), ([30, 30, 10, 10], 0.6))]
    ours = _evaluation(OURS, gt, results, "bbox", None, {})
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {})
    assert_same_outcome(ours, oracle)
    assert oracle.evalImgs[0]["dtMatches"][0].tolist() == [3, 1, 0]  # NaN row: gt 3 (IoU 0), after gt 2 (NaN)
