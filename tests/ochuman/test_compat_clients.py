"""``ochuman.compat`` driven as real pycocotools clients drive it, against pycocotools.

Each client's call sequence is modelled from its public source (torchvision's reference
``CocoEvaluator``, detectron2's ``_evaluate_predictions_on_coco`` and ``_derive_coco_results``,
mmdet's ``CocoMetric``, mmpose's keypoint evaluation, and older scripts that call
pycocotools' internals) and run once with pycocotools' classes and once with the facade's;
every stat and every array the client reads must be equal.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

from ochuman import compat
from ochuman.compat import quietly

from .test_compat import make_results, two_category_gt
from .test_compat_differential import assert_same_eval_imgs

pytestmark = pytest.mark.differential  # real clients' call sequences against pycocotools: make test, not make test-fast

PYCOCOTOOLS = (PyCOCO, PyCOCOeval)
OURS = (compat.COCO, compat.COCOeval)
CROWDPOSE_SIGMAS = np.array([.79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89, .79, .79]) / 10.0


@pytest.fixture(scope="module", params=["coco_mini", "two_categories"])
def gt_file(request, tmp_path_factory):
    if request.param == "two_categories":
        path = tmp_path_factory.mktemp("gt") / "two_categories.json"
        two_category_gt(request.getfixturevalue("coco_mini"), path)
        return path, (1, 3)
    return request.getfixturevalue(request.param), (1,)


def _load(lib, path):
    with quietly():
        return lib[0](str(path))


def _quiet(function, *args):
    with quietly():
        return function(*args)


def assert_same_arrays(ours: dict, theirs: dict) -> None:
    assert set(ours) == set(theirs)
    for key, value in theirs.items():
        np.testing.assert_array_equal(np.asarray(ours[key], dtype=float), np.asarray(value, dtype=float), err_msg=str(key))


# --------------------------------------------------------------------------------------------
# torchvision references/detection/coco_eval.py

class TorchvisionCocoEvaluator:
    """torchvision's reference evaluator: per batch loadRes (``COCO()`` when the batch has no
    results), ``params.imgIds`` = the batch's images, ``evaluate()``, ``evalImgs`` reshaped
    (catIds, areaRng, imgIds); at the end the processes' arrays are concatenated along images,
    deduplicated with np.unique and set back with ``_paramsEval``, then accumulate, summarize."""

    def __init__(self, lib, coco_gt, iou_types):
        self.lib = lib
        self.coco_gt = copy.deepcopy(coco_gt)
        self.iou_types = iou_types
        self.coco_eval = {t: lib[1](self.coco_gt, iouType=t) for t in iou_types}
        self.img_ids, self.eval_imgs = [], {t: [] for t in iou_types}

    def update(self, predictions: dict) -> None:
        """predictions: {image_id: {iou_type: [records]}}, one batch."""
        img_ids = list(np.unique(list(predictions.keys())))
        self.img_ids.extend(img_ids)
        for iou_type in self.iou_types:
            results = [copy.deepcopy(r) for i in img_ids for r in predictions[i][iou_type]]
            coco_dt = _quiet(self.lib[0].loadRes, self.coco_gt, results) if results else self.lib[0]()
            coco_eval = self.coco_eval[iou_type]
            coco_eval.cocoDt = coco_dt
            coco_eval.params.imgIds = list(img_ids)
            _quiet(coco_eval.evaluate)
            self.eval_imgs[iou_type].append(
                np.asarray(coco_eval.evalImgs).reshape(-1, len(coco_eval.params.areaRng), len(coco_eval.params.imgIds)))

    def synchronize(self, other: "TorchvisionCocoEvaluator") -> None:
        """all_gather of two processes (self and other), then create_common_coco_eval."""
        for iou_type in self.iou_types:
            gathered = [np.concatenate(e.eval_imgs[iou_type], 2) for e in (self, other)]
            img_ids = np.array(self.img_ids + other.img_ids)
            merged = np.concatenate(gathered, 2)
            img_ids, index = np.unique(img_ids, return_index=True)
            merged = merged[..., index]
            coco_eval = self.coco_eval[iou_type]
            coco_eval.evalImgs = list(merged.flatten())
            coco_eval.params.imgIds = list(img_ids)
            coco_eval._paramsEval = copy.deepcopy(coco_eval.params)

    def accumulate_and_summarize(self) -> dict:
        out = {}
        for iou_type, coco_eval in self.coco_eval.items():
            _quiet(coco_eval.accumulate)
            _quiet(coco_eval.summarize)
            out[iou_type] = coco_eval
        return out


def _torchvision_run(lib, gt_path, results: dict, batch_size: int) -> dict:
    coco_gt = _load(lib, gt_path)
    image_ids = sorted(coco_gt.getImgIds())
    shares = [image_ids[0::2], image_ids[1::2] + image_ids[:1]]  # DistributedSampler pads with a repeat
    processes = []
    for share in shares:
        evaluator = TorchvisionCocoEvaluator(lib, coco_gt, list(results))
        for start in range(0, len(share), batch_size):
            batch = share[start:start + batch_size]
            evaluator.update({i: {t: [r for r in results[t] if r["image_id"] == i] for t in results} for i in batch})
        processes.append(evaluator)
    processes[0].synchronize(processes[1])
    return processes[0].accumulate_and_summarize()


@pytest.mark.parametrize("batch_size", [1, 4])
def test_torchvision_coco_evaluator(gt_file, batch_size):
    path, categories = gt_file
    results = {t: make_results(path, t, seed=11, categories=categories) for t in ("bbox", "segm", "keypoints")}
    drop = sorted({r["image_id"] for r in results["bbox"]})[::5]  # batches without any result
    results = {t: [r for r in records if r["image_id"] not in drop] for t, records in results.items()}
    ours = _torchvision_run(OURS, path, results, batch_size)
    oracle = _torchvision_run(PYCOCOTOOLS, path, results, batch_size)
    for iou_type in results:
        o, p = ours[iou_type], oracle[iou_type]
        np.testing.assert_array_equal(o.stats, p.stats, err_msg=iou_type)
        assert_same_arrays({k: o.eval[k] for k in ("precision", "recall", "scores")},
                           {k: p.eval[k] for k in ("precision", "recall", "scores")})
        assert 0 < o.stats[0] < 1
        # the batched evaluation is one evaluation of every image
        gt = _load(PYCOCOTOOLS, path)
        whole = PyCOCOeval(gt, _quiet(gt.loadRes, copy.deepcopy(results[iou_type])), iou_type)
        for step in (whole.evaluate, whole.accumulate, whole.summarize):
            _quiet(step)
        np.testing.assert_array_equal(o.stats, whole.stats, err_msg=iou_type)


# --------------------------------------------------------------------------------------------
# detectron2 evaluation/coco_evaluation.py

def _detectron2_run(lib, gt_path, coco_results, iou_type, kpt_oks_sigmas=None, img_ids=None):
    """``_evaluate_predictions_on_coco`` then ``_derive_coco_results``' reads."""
    coco_gt = _load(lib, gt_path)
    coco_results = copy.deepcopy(coco_results)
    if iou_type == "segm":  # detectron2 drops bbox so that mask AP uses the mask area
        for c in coco_results:
            c.pop("bbox", None)
    coco_dt = _quiet(coco_gt.loadRes, coco_results)
    coco_eval = lib[1](coco_gt, coco_dt, iou_type)
    if iou_type != "keypoints":
        coco_eval.params.maxDets = [1, 10, 100]
    if img_ids is not None:
        coco_eval.params.imgIds = img_ids
    if iou_type == "keypoints":
        if kpt_oks_sigmas is not None:
            coco_eval.params.kpt_oks_sigmas = np.array(kpt_oks_sigmas)
        num_keypoints_dt = len(coco_results[0]["keypoints"]) // 3
        num_keypoints_gt = len(next(iter(coco_gt.anns.values()))["keypoints"]) // 3
        assert len(coco_eval.params.kpt_oks_sigmas) == num_keypoints_dt == num_keypoints_gt
    for step in (coco_eval.evaluate, coco_eval.accumulate, coco_eval.summarize):
        _quiet(step)
    metrics = {"bbox": ["AP", "AP50", "AP75", "APs", "APm", "APl"], "segm": ["AP", "AP50", "AP75", "APs", "APm", "APl"],
               "keypoints": ["AP", "AP50", "AP75", "APm", "APl"]}[iou_type]
    derived = {metric: float(coco_eval.stats[i] * 100 if coco_eval.stats[i] >= 0 else "nan") for i, metric in enumerate(metrics)}
    precisions = coco_eval.eval["precision"]
    class_names = [c["name"] for c in coco_gt.loadCats(sorted(coco_gt.getCatIds()))]
    assert len(class_names) == precisions.shape[2]
    for idx, name in enumerate(class_names):
        precision = precisions[:, :, idx, 0, -1]
        precision = precision[precision > -1]
        derived["AP-" + name] = float(np.mean(precision) * 100) if precision.size else float("nan")
    return derived, coco_eval


def _with_boxes(results: list, iou_type: str) -> list:
    """detectron2 writes a bbox in every record (segm: the instance box; keypoints: too)."""
    out = copy.deepcopy(results)
    for r in out:
        if iou_type == "segm":
            r["bbox"] = mask_utils.toBbox(r["segmentation"]).tolist()
        elif iou_type == "keypoints":
            k = np.asarray(r["keypoints"]).reshape(-1, 3)
            r["bbox"] = [float(k[:, 0].min()), float(k[:, 1].min()), float(np.ptp(k[:, 0])), float(np.ptp(k[:, 1]))]
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_detectron2_evaluate_predictions_on_coco(gt_file, iou_type):
    path, categories = gt_file
    results = _with_boxes(make_results(path, iou_type, seed=5, categories=categories), iou_type)
    image_ids = sorted({r["image_id"] for r in results})[1::2]
    for img_ids in (None, image_ids):
        ours, ours_eval = _detectron2_run(OURS, path, results, iou_type, img_ids=img_ids)
        oracle, oracle_eval = _detectron2_run(PYCOCOTOOLS, path, results, iou_type, img_ids=img_ids)
        np.testing.assert_equal(ours, oracle)
        np.testing.assert_array_equal(ours_eval.eval["precision"], oracle_eval.eval["precision"])
        assert 0 < ours["AP"] < 100


# --------------------------------------------------------------------------------------------
# mmdet evaluation/metrics/coco_metric.py

def _mmdet_run(lib, gt_path, predictions, metric):
    """CocoMetric.compute_metrics for one metric: params set from the metric's settings;
    proposal runs with useCats=0 and reads AR; bbox/segm read stats and the classwise table."""
    coco_api = _load(lib, gt_path)
    cat_ids = coco_api.getCatIds()
    img_ids = coco_api.getImgIds()
    iou_thrs = np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True)
    proposal_nums = (100, 300, 1000)
    predictions = copy.deepcopy(predictions)
    if metric == "segm":
        for x in predictions:
            x.pop("bbox")
    coco_dt = _quiet(coco_api.loadRes, predictions)
    coco_eval = lib[1](coco_api, coco_dt, "bbox" if metric == "proposal" else metric)
    coco_eval.params.catIds = cat_ids
    coco_eval.params.imgIds = img_ids
    coco_eval.params.maxDets = list(proposal_nums)
    coco_eval.params.iouThrs = iou_thrs
    read = {}
    if metric == "proposal":
        coco_eval.params.useCats = 0
        for step in (coco_eval.evaluate, coco_eval.accumulate, coco_eval.summarize):
            _quiet(step)
        for i, item in enumerate(["AR@100", "AR@300", "AR@1000", "AR_s@1000", "AR_m@1000", "AR_l@1000"]):
            read[item] = float(f"{coco_eval.stats[i + 6]:.3f}")
        read["catIds"] = list(coco_eval.params.catIds)
        return read, coco_eval
    for step in (coco_eval.evaluate, coco_eval.accumulate, coco_eval.summarize):
        _quiet(step)
    precisions = coco_eval.eval["precision"]
    assert len(cat_ids) == precisions.shape[2]
    for idx, cat_id in enumerate(cat_ids):
        name = coco_api.loadCats(cat_id)[0]["name"]
        row = []
        for sel in ((slice(None), idx, 0), (0, idx, 0), (5, idx, 0), (slice(None), idx, 1), (slice(None), idx, 2),
                    (slice(None), idx, 3)):
            t, k, a = sel
            precision = precisions[t, :, k, a, -1]
            precision = precision[precision > -1]
            row.append(round(float(np.mean(precision)), 3) if precision.size else float("nan"))
        read[name] = row
    for i, item in enumerate(["mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"]):
        read[item] = float(f"{round(coco_eval.stats[i], 3)}")
    return read, coco_eval


@pytest.mark.parametrize("metric", ["proposal", "bbox", "segm"])
def test_mmdet_coco_metric(gt_file, metric):
    path, categories = gt_file
    iou_type = "segm" if metric == "segm" else "bbox"
    predictions = _with_boxes(make_results(path, iou_type, seed=8, categories=categories), iou_type)
    ours, ours_eval = _mmdet_run(OURS, path, predictions, metric)
    oracle, oracle_eval = _mmdet_run(PYCOCOTOOLS, path, predictions, metric)
    np.testing.assert_equal(ours, oracle)
    np.testing.assert_array_equal(ours_eval.stats, oracle_eval.stats)
    assert_same_arrays({k: ours_eval.eval[k] for k in ("precision", "recall")},
                       {k: oracle_eval.eval[k] for k in ("precision", "recall")})
    if metric == "proposal":
        assert ours["catIds"] == [-1]  # accumulate() under useCats=0, as pycocotools
        assert ours["AR@100"] > 0


# --------------------------------------------------------------------------------------------
# mmpose: keypoints, COCO's 17 joints and CrowdPose's 14 with their sigmas

def _fourteen_joint_files(path, tmp_path, seed=2):
    """The ground truth with its first 14 joints (num_keypoints recounted) and results made from it."""
    data = json.loads(path.read_bytes())
    for ann in data["annotations"]:
        k = np.asarray(ann["keypoints"], dtype=float).reshape(17, 3)[:14]
        ann["keypoints"] = k.ravel().tolist()
        ann["num_keypoints"] = int((k[:, 2] > 0).sum())
    data["categories"][0]["keypoints"] = data["categories"][0]["keypoints"][:14]
    gt_path = tmp_path / "crowdpose_like.json"
    gt_path.write_text(json.dumps(data))
    rng = np.random.default_rng(seed)
    results = []
    for ann in data["annotations"]:
        k = np.asarray(ann["keypoints"], dtype=float).reshape(14, 3)
        if ann["num_keypoints"] == 0:
            continue
        for _ in range(int(rng.integers(0, 3))):
            d = k.copy()
            d[:, :2] += rng.normal(0, np.sqrt(max(ann["area"], 1)) * rng.choice([0.02, 0.05, 0.2]), (14, 2))
            d[:, 2] = rng.random(14)
            results.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": d.ravel().tolist(),
                            "score": float(rng.choice([0.3, 0.5, 0.9]))})
    return gt_path, results


def _mmpose_run(lib, gt_path, results, sigmas):
    coco = _load(lib, gt_path)
    coco_det = _quiet(coco.loadRes, copy.deepcopy(results))
    coco_eval = lib[1](coco, coco_det, "keypoints")
    coco_eval.params.useSegm = None
    if sigmas is not None:
        coco_eval.params.kpt_oks_sigmas = sigmas
    for step in (coco_eval.evaluate, coco_eval.accumulate, coco_eval.summarize):
        _quiet(step)
    names = ["AP", "AP .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)"]
    return dict(zip(names, coco_eval.stats)), coco_eval


@pytest.mark.parametrize("joints", [17, 14])
def test_mmpose_keypoint_eval(coco_mini, tmp_path, joints):
    if joints == 17:
        gt_path, results, sigmas = coco_mini, make_results(coco_mini, "keypoints", seed=4), None
    else:
        (gt_path, results), sigmas = _fourteen_joint_files(coco_mini, tmp_path), CROWDPOSE_SIGMAS
    ours, ours_eval = _mmpose_run(OURS, gt_path, results, sigmas)
    oracle, oracle_eval = _mmpose_run(PYCOCOTOOLS, gt_path, results, sigmas)
    np.testing.assert_equal(ours, oracle)
    assert_same_arrays({k: ours_eval.eval[k] for k in ("precision", "recall", "scores")},
                       {k: oracle_eval.eval[k] for k in ("precision", "recall", "scores")})
    assert 0 < ours["AP"] < 1


def test_fourteen_joints_with_seventeen_sigmas_is_one_clear_error(coco_mini, tmp_path):
    gt_path, results = _fourteen_joint_files(coco_mini, tmp_path)
    with pytest.raises(ValueError):  # numpy's broadcasting error in pycocotools
        _mmpose_run(PYCOCOTOOLS, gt_path, results, None)
    with pytest.raises(compat.KeypointCountError, match=r"14 joints|42 numbers") as caught:
        _mmpose_run(OURS, gt_path, results, None)
    assert isinstance(caught.value, ValueError) and "\n" not in str(caught.value)


# --------------------------------------------------------------------------------------------
# older clients: pycocotools' internals

@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_internals_after_evaluate_equal_pycocotools(gt_file, iou_type):
    path, categories = gt_file
    results = make_results(path, iou_type, seed=6, categories=categories)
    runs = []
    for lib in (OURS, PYCOCOTOOLS):
        gt = _load(lib, path)
        E = lib[1](gt, _quiet(gt.loadRes, copy.deepcopy(results)), iou_type)
        _quiet(E.evaluate)
        runs.append(E)
    ours, oracle = runs
    assert_same_eval_imgs(ours.evalImgs, oracle.evalImgs)
    assert set(ours.ious) == set(oracle.ious)
    for key, value in oracle.ious.items():
        np.testing.assert_array_equal(ours.ious[key], value, err_msg=str(key))
    for name in ("imgIds", "catIds", "useCats", "iouThrs", "recThrs", "areaRng", "maxDets", "iouType"):
        np.testing.assert_equal(getattr(ours._paramsEval, name), getattr(oracle._paramsEval, name))
    for mine, theirs in ((ours._gts, oracle._gts), (ours._dts, oracle._dts)):
        assert {k: [a["id"] for a in v] for k, v in mine.items() if v} == {k: [a["id"] for a in v] for k, v in theirs.items() if v}
    # pycocotools' per-image functions, called by hand on the prepared state
    img, cat = max(oracle.ious, key=lambda key: np.size(oracle.ious[key]))
    compute = "computeOks" if iou_type == "keypoints" else "computeIoU"
    np.testing.assert_array_equal(getattr(ours, compute)(img, cat), getattr(oracle, compute)(img, cat))
    for a_rng in oracle.params.areaRng:
        assert_same_eval_imgs([ours.evaluateImg(img, cat, a_rng, 100)], [oracle.evaluateImg(img, cat, a_rng, 100)])


def test_old_client_drives_prepare_and_evaluate_img(coco_mini):
    """A script that reimplements evaluate() with the internals, then accumulate()."""
    results = make_results(coco_mini, "segm", seed=9)
    outcome = []
    for lib in (OURS, PYCOCOTOOLS):
        gt = _load(lib, coco_mini)
        E = lib[1](gt, _quiet(gt.loadRes, copy.deepcopy(results)), "segm")
        p = E.params
        p.imgIds = list(np.unique(p.imgIds))
        p.catIds = list(np.unique(p.catIds))
        E._prepare()
        E.ious = {(i, c): E.computeIoU(i, c) for i in p.imgIds for c in p.catIds}
        E.evalImgs = [E.evaluateImg(i, c, a, p.maxDets[-1]) for c in p.catIds for a in p.areaRng for i in p.imgIds]
        E._paramsEval = copy.deepcopy(p)
        _quiet(E.accumulate)
        _quiet(E.summarize)
        outcome.append(E)
    np.testing.assert_array_equal(outcome[0].stats, outcome[1].stats)
    np.testing.assert_array_equal(outcome[0].eval["precision"], outcome[1].eval["precision"])


def test_accumulate_reads_params_changed_after_evaluate(coco_mini):
    """accumulate() reads params (maxDets, areaRng, recThrs) against _paramsEval as pycocotools."""
    results = make_results(coco_mini, "bbox", seed=10)
    for change in ({"maxDets": [1, 100]}, {"areaRng": [[0, 1e10], [0, 32 ** 2]], "areaRngLbl": ["all", "small"]},
                   {"recThrs": np.linspace(0, 1, 11)}):
        outcome = []
        for lib in (OURS, PYCOCOTOOLS):
            gt = _load(lib, coco_mini)
            E = lib[1](gt, _quiet(gt.loadRes, copy.deepcopy(results)), "bbox")
            _quiet(E.evaluate)
            for name, value in change.items():
                setattr(E.params, name, value)
            _quiet(E.accumulate)
            outcome.append(E.eval)
        assert_same_arrays({k: outcome[0][k] for k in ("precision", "recall", "scores")},
                           {k: outcome[1][k] for k in ("precision", "recall", "scores")})


# --------------------------------------------------------------------------------------------
# single behaviours

def test_keypoints_without_keypoint_annotations_give_minus_ones(coco_sample):
    """Images whose persons have no keypoints (and an image without any person): -1s, as pycocotools."""
    data = json.loads(coco_sample.read_bytes())
    empty = {"id": 424242, "height": 100, "width": 100, "file_name": "none.jpg"}
    data["images"].append(empty)
    results = [{"image_id": 424242, "category_id": 1, "keypoints": [10.0, 10.0, 1.0] * 17, "score": 0.9}]
    stats = []
    for lib in (OURS, PYCOCOTOOLS):
        gt = lib[0]()
        gt.dataset = copy.deepcopy(data)
        _quiet(gt.createIndex)
        E = lib[1](gt, _quiet(gt.loadRes, copy.deepcopy(results)), "keypoints")
        E.params.imgIds = [424242]
        for step in (E.evaluate, E.accumulate, E.summarize):
            _quiet(step)
        stats.append(E.stats)
        assert (E.eval["precision"] == -1).all()
    np.testing.assert_array_equal(stats[0], stats[1])
    assert (stats[0] == -1).all()


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_load_res_accepts_numpy_ids(coco_sample, iou_type):
    results = make_results(coco_sample, iou_type, seed=1)
    as_numpy = copy.deepcopy(results)
    for r in as_numpy:
        r["image_id"], r["category_id"], r["score"] = np.int64(r["image_id"]), np.int64(r["category_id"]), np.float64(r["score"])
    outcome = []
    for lib, records in ((OURS, as_numpy), (PYCOCOTOOLS, results)):
        gt = _load(lib, coco_sample)
        E = lib[1](gt, _quiet(gt.loadRes, records), iou_type)
        for step in (E.evaluate, E.accumulate, E.summarize):
            _quiet(step)
        outcome.append(E)
    np.testing.assert_array_equal(outcome[0].stats, outcome[1].stats)
    assert outcome[0].stats[0] > 0


def test_use_cats_0_sets_cat_ids_minus_one(coco_mini):
    results = make_results(coco_mini, "bbox", seed=2)
    for lib in (OURS, PYCOCOTOOLS):
        gt = _load(lib, coco_mini)
        E = lib[1](gt, _quiet(gt.loadRes, copy.deepcopy(results)), "bbox")
        E.params.useCats = 0
        _quiet(E.evaluate)
        assert list(E.params.catIds) == [1]
        _quiet(E.accumulate)
        assert E.params.catIds == [-1] and E.eval["params"].catIds == [-1]
