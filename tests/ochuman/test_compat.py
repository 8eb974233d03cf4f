"""``ochuman.compat.COCO`` / ``COCOeval`` against pycocotools on the real COCO samples.

Detections are the samples' ground truths jittered (plus false positives), written to a results
file. Every number must equal pycocotools' to 1e-12: ``stats``, ``eval["precision"]``,
``eval["recall"]``, with default and changed ``params``; ``summarize()`` prints the same lines.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from ochuman.compat import COCO, COCOeval, quietly
from ochuman.errors import ResultsError

IOU_TYPES = ("segm", "bbox", "keypoints")
SCORES = (0.2, 0.35, 0.5, 0.5, 0.65, 0.8, 0.9, 0.95)


# --------------------------------------------------------------------------------------------
# data

def _shift(m: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    src = m[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def _encode(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _jitter_box(rng, box) -> list:
    x, y, w, h = (float(v) for v in box)
    if rng.random() < 0.15:
        return [x, y, w, h]
    s = float(rng.choice([0.02, 0.08, 0.2, 0.5]))
    out = [x + rng.normal(0, s * max(w, 1)), y + rng.normal(0, s * max(h, 1)),
           w * float(np.exp(rng.normal(0, s))), h * float(np.exp(rng.normal(0, s)))]
    return [round(v, 2) for v in out] if rng.random() < 0.5 else out


def _random_box(rng, w, h) -> list:
    bw, bh = rng.uniform(4, w / 2), rng.uniform(4, h / 2)
    return [rng.uniform(0, w - bw), rng.uniform(0, h - bh), bw, bh]


def make_results(gt_path, iou_type: str, seed: int, categories=(1,)) -> list:
    """Every ground truth jittered 0-2 times (crowd regions too), false positives on every
    image, tied scores, some detections in a category other than their source's."""
    rng = np.random.default_rng(seed)
    with quietly():
        coco = PyCOCO(str(gt_path))
    results = []
    for ann in coco.dataset["annotations"]:
        for _ in range(int(rng.choice([0, 1, 1, 2]))):
            category = ann["category_id"] if rng.random() < 0.85 else int(rng.choice(categories))
            result = {"image_id": ann["image_id"], "category_id": category, "score": float(rng.choice(SCORES))}
            if iou_type == "segm":
                m = coco.annToMask(ann).astype(bool)
                if rng.random() > 0.15:
                    m = _shift(m, int(rng.integers(-6, 7)), int(rng.integers(-6, 7)))
                    if rng.random() < 0.5:
                        grown = m | _shift(m, 2, 0) | _shift(m, 0, 2)
                        m = grown if rng.random() < 0.5 else m & _shift(m, 2, 2)
                result["segmentation"] = _encode(m)
            elif iou_type == "bbox":
                result["bbox"] = _jitter_box(rng, ann["bbox"])
            else:
                k = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)
                x, y, w, h = ann["bbox"]
                if ann["num_keypoints"] == 0 or rng.random() < 0.1:
                    k[:, 0] = x + rng.random(17) * w
                    k[:, 1] = y + rng.random(17) * h
                elif rng.random() > 0.1:
                    k[:, :2] += rng.normal(0, np.sqrt(max(ann["area"], 1)) * rng.choice([0.02, 0.05, 0.1, 0.3]), (17, 2))
                k[:, 2] = 1
                result["keypoints"] = k.ravel().tolist()
            results.append(result)
    for image in coco.dataset["images"]:
        h, w = image["height"], image["width"]
        for _ in range(int(rng.integers(0, 3))):
            result = {"image_id": image["id"], "category_id": int(rng.choice(categories)),
                      "score": float(rng.choice(SCORES))}
            box = _random_box(rng, w, h)
            if iou_type == "segm":
                result["segmentation"] = mask_utils.frPyObjects(
                    [[box[0], box[1], box[0] + box[2], box[1], box[0] + box[2], box[1] + box[3]]], h, w)[0]
                result["segmentation"]["counts"] = result["segmentation"]["counts"].decode("ascii")
            elif iou_type == "bbox":
                result["bbox"] = box
            else:
                k = np.ones((17, 3))
                k[:, 0] = box[0] + rng.random(17) * box[2]
                k[:, 1] = box[1] + rng.random(17) * box[3]
                result["keypoints"] = k.ravel().tolist()
            results.append(result)
    order = rng.permutation(len(results))
    return [results[i] for i in order]


def two_category_gt(path, out_path) -> None:
    """The file with every third annotation moved to a second category (id 3)."""
    data = json.loads(path.read_bytes())
    extra = copy.deepcopy(data["categories"][0])
    extra.update(id=3, name="other")
    data["categories"].append(extra)
    for n, ann in enumerate(data["annotations"]):
        if n % 3 == 0:
            ann["category_id"] = 3
    out_path.write_text(json.dumps(data))


@pytest.fixture(scope="module", params=["coco_sample", "coco_mini", "two_categories"])
def gt_file(request, tmp_path_factory):
    if request.param == "two_categories":
        path = tmp_path_factory.mktemp("gt") / "two_categories.json"
        two_category_gt(request.getfixturevalue("coco_mini"), path)
        return path, (1, 3)
    return request.getfixturevalue(request.param), (1,)


_RESULTS = {}


def results_file(gt, iou_type, tmp_path_factory, seed=0):
    path, categories = gt
    key = (str(path), iou_type, seed)
    if key not in _RESULTS:
        out = tmp_path_factory.mktemp("results") / f"{iou_type}_{seed}.json"
        out.write_text(json.dumps(make_results(path, iou_type, seed, categories)))
        _RESULTS[key] = out
    return _RESULTS[key]


# --------------------------------------------------------------------------------------------
# runs

def _pooled_oks(E):
    """pycocotools' ``computeOks`` ignores ``useCats=0`` (it reads the (image, -1) cell, which is
    empty, so every keypoints AP is 0); ours pools the categories as ``computeIoU`` does. The
    oracle for that case is pycocotools with ``computeOks`` pooling the same way."""
    original = E.computeOks

    def computeOks(imgId, catId):  # noqa: N802,N803
        if E.params.useCats:
            return original(imgId, catId)
        key = (imgId, catId)
        E._gts[key] = [g for c in E.params.catIds for g in E._gts[imgId, c]]
        E._dts[key] = [d for c in E.params.catIds for d in E._dts[imgId, c]]
        try:
            return original(imgId, catId)
        finally:
            del E._gts[key], E._dts[key]

    E.computeOks = computeOks


def run_pycocotools(gt_path, res, iou_type, params=None):
    """-> (COCOeval, printed summary lines)."""
    with quietly():
        gt = PyCOCO(str(gt_path))
        dt = gt.loadRes(str(res) if not isinstance(res, list) else copy.deepcopy(res))
        E = PyCOCOeval(gt, dt, iou_type)
        _pooled_oks(E)
        for name, value in (params or {}).items():
            setattr(E.params, name, copy.deepcopy(value))
        E.evaluate()
        E.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        E.summarize()
    return E, out.getvalue().splitlines()


def run_compat(gt_path, res, iou_type, params=None):
    gt = COCO(str(gt_path))
    dt = gt.loadRes(str(res) if not isinstance(res, list) else copy.deepcopy(res))
    E = COCOeval(gt, dt, iou_type)
    for name, value in (params or {}).items():
        setattr(E.params, name, copy.deepcopy(value))
    E.evaluate()
    E.accumulate()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        E.summarize()
    return E, out.getvalue().splitlines()


def assert_same_eval(ours, oracle, atol=1e-12) -> None:
    np.set_printoptions(precision=17, linewidth=200)
    header = f"\n ours:        {np.asarray(ours.stats)}\n pycocotools: {np.asarray(oracle.stats)}"
    assert np.asarray(ours.stats).shape == np.asarray(oracle.stats).shape, header
    assert np.allclose(ours.stats, oracle.stats, rtol=0, atol=atol), header
    for name in ("precision", "recall", "scores"):
        mine, theirs = ours.eval[name], oracle.eval[name]
        assert mine.shape == theirs.shape, f"{name}: {mine.shape} != {theirs.shape}"
        diff = np.abs(mine - theirs)
        assert (diff <= atol).all(), f"{name}: max |diff| {diff.max()} in {int((diff > atol).sum())} cells" + header
    assert ours.eval["counts"] == oracle.eval["counts"]


# --------------------------------------------------------------------------------------------
# tests

@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_default_params_equal_pycocotools(gt_file, iou_type, tmp_path_factory):
    res = results_file(gt_file, iou_type, tmp_path_factory)
    ours, our_lines = run_compat(gt_file[0], res, iou_type)
    oracle, oracle_lines = run_pycocotools(gt_file[0], res, iou_type)
    assert_same_eval(ours, oracle)
    assert our_lines == oracle_lines
    assert len(our_lines) == (10 if iou_type == "keypoints" else 12)
    assert 0 < ours.stats[0] < 1  # a real evaluation, not all-or-nothing


def _params_cases(gt_path, iou_type):
    data = json.loads(gt_path.read_bytes())
    image_ids = sorted(im["id"] for im in data["images"])
    annotated = sorted({a["image_id"] for a in data["annotations"]})
    cats = sorted(c["id"] for c in data["categories"])
    area_rng = ([[0, 1e10], [40 ** 2, 120 ** 2], [120 ** 2, 1e10]] if iou_type == "keypoints" else
                [[0, 1e10], [0, 50 ** 2], [50 ** 2, 150 ** 2], [150 ** 2, 1e10]])
    return {
        "catIds": {"catIds": cats[-1:]},
        "imgIds": {"imgIds": annotated[::2] + [i for i in image_ids if i not in annotated][:2]},
        "maxDets": {"maxDets": [1, 5, 20] if iou_type != "keypoints" else [3]},
        "maxDets_default_top": {"maxDets": [2, 4, 100] if iou_type != "keypoints" else [5, 20]},
        "maxDets_unsorted": {"maxDets": [100, 1, 10] if iou_type != "keypoints" else [20, 2]},
        "areaRng": {"areaRng": area_rng},
        "useCats0": {"useCats": 0},
        "useCats0_catIds_reversed": {"useCats": 0, "catIds": cats[::-1]},
        "useCats0_one_category": {"useCats": 0, "catIds": cats[-1:]},
        "iouThrs": {"iouThrs": np.array([0.3, 0.5, 0.75, 0.9])},
        "all": {"useCats": 0, "imgIds": annotated[1::2], "maxDets": [2, 10, 30] if iou_type != "keypoints" else [20],
                "areaRng": area_rng},
    }


@pytest.mark.parametrize("iou_type", IOU_TYPES)
@pytest.mark.parametrize("case", ["catIds", "imgIds", "maxDets", "maxDets_default_top", "maxDets_unsorted",
                                  "areaRng", "useCats0", "useCats0_catIds_reversed", "useCats0_one_category",
                                  "iouThrs", "all"])
def test_params_changes_are_honoured(gt_file, iou_type, case, tmp_path_factory):
    res = results_file(gt_file, iou_type, tmp_path_factory)
    params = _params_cases(gt_file[0], iou_type)[case]
    ours, our_lines = run_compat(gt_file[0], res, iou_type, params)
    oracle, oracle_lines = run_pycocotools(gt_file[0], res, iou_type, params)
    assert_same_eval(ours, oracle)
    assert our_lines == oracle_lines


def test_params_change_changes_numbers(coco_mini, tmp_path_factory):
    """The oracle comparison above would also pass if params were ignored on both sides of a
    trivial case: check that changed params do change our numbers."""
    gt = (coco_mini, (1,))
    res = results_file(gt, "segm", tmp_path_factory)
    base, _ = run_compat(coco_mini, res, "segm")
    data = json.loads(coco_mini.read_bytes())
    subset = sorted({a["image_id"] for a in data["annotations"]})[::2]
    for params in ({"imgIds": subset}, {"maxDets": [1, 2, 100]}, {"iouThrs": np.array([0.5])}):
        changed, _ = run_compat(coco_mini, res, "segm", params)
        assert (changed.eval["precision"].shape != base.eval["precision"].shape
                or not np.allclose(changed.stats, base.stats)), params


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_load_res_from_list_equals_from_path(coco_sample, iou_type, tmp_path_factory):
    gt = (coco_sample, (1,))
    res = results_file(gt, iou_type, tmp_path_factory)
    records = json.loads(res.read_bytes())
    from_path, lines_path = run_compat(coco_sample, res, iou_type)
    from_list, lines_list = run_compat(coco_sample, records, iou_type)
    oracle, _ = run_pycocotools(coco_sample, records, iou_type)
    assert_same_eval(from_list, oracle)
    np.testing.assert_array_equal(from_list.eval["precision"], from_path.eval["precision"])
    np.testing.assert_array_equal(from_list.stats, from_path.stats)
    assert lines_path == lines_list
    # loadRes leaves the caller's list alone and indexes the results like pycocotools
    assert records == json.loads(res.read_bytes())
    dt = COCO(str(coco_sample)).loadRes(records)
    assert sorted(dt.getImgIds()) == sorted(COCO(str(coco_sample)).getImgIds())
    assert len(dt.getAnnIds()) == len(records)


def test_summarize_prints_pycocotools_lines(coco_sample, tmp_path_factory):
    res = results_file((coco_sample, (1,)), "segm", tmp_path_factory)
    ours, _ = run_compat(coco_sample, res, "segm")
    printed = []
    ours.print_function = printed.append
    ours.summarize()
    _, oracle_lines = run_pycocotools(coco_sample, res, "segm")
    assert printed == oracle_lines
    assert printed[0].startswith(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = ")


def test_unknown_results_image_id_raises(coco_sample, tmp_path):
    gt = COCO(str(coco_sample))
    known = gt.getImgIds()[0]
    records = [{"image_id": known, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5},
               {"image_id": 999_999_999, "category_id": 1, "bbox": [1, 2, 3, 4], "score": 0.5}]
    with pytest.raises(ResultsError, match="999999999"):
        gt.loadRes(records)
    path = tmp_path / "res.json"
    path.write_text(json.dumps(records))
    with pytest.raises(ResultsError, match="999999999"):
        gt.loadRes(str(path))


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_params_copy_is_a_deep_copy(iou_type):
    """``_paramsEval`` is copied as deepcopy would: equal values, nothing shared that can change."""
    from pycocotools.cocoeval import Params

    from ochuman.compat import _params_copy

    p = Params(iouType=iou_type)
    p.imgIds, p.catIds = [3, np.int64(1), 2], [1, 7.5, True, np.float32(2)]  # True: deep-copied
    p.extra = {"nested": [[1, 2], np.arange(3)]}
    copied, reference = _params_copy(p), copy.deepcopy(p)
    assert type(copied) is Params and vars(copied).keys() == vars(reference).keys()
    for name, value in vars(reference).items():
        ours = getattr(copied, name)
        assert type(ours) is type(value)
        assert repr(ours) == repr(value), name
        if isinstance(value, (list, dict, np.ndarray)):
            assert ours is not getattr(p, name), name
    assert copied.extra["nested"][0] is not p.extra["nested"][0]
    p.imgIds.append(9)
    p.areaRng[0][0] = -5
    assert copied.imgIds == [3, 1, 2] and type(copied.imgIds[1]) is np.int64 and copied.areaRng[0][0] == 0
