"""The evaluation engine equals pycocotools (the oracle): ``stats`` to 1e-12 and the
``precision`` / ``recall`` arrays cell by cell (atol 1e-12), for segm, bbox and keypoints.

Property tests draw COCO workloads (tests/ochuman/workloads.py); plain tests pin the quirks
(a ground truth with id 0, use_cats=False, custom parameters, a restricted image list) and run
the real COCO samples against detections derived from their own ground truth.

Where the engine deliberately differs from pycocotools: keypoints with use_cats=False, where
pycocotools' computeOks looks up ``_gts[img, -1]`` (always empty) and so matches nothing;
see :func:`test_keypoints_use_cats_false_is_a_pycocotools_bug`.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from ochuman.eval.accumulation import evaluate
from ochuman.eval.params import EvalParams

from ..workloads import (
    assert_matches_oracle, build_workload, coco_from_dict, coco_workloads, describe, load_results,
    run_engine, run_pycocotools, to_annotations,
)

pytestmark = pytest.mark.differential  # the engine against pycocotools: make test, not make test-fast

IOU_TYPES = ("segm", "bbox", "keypoints")
EXAMPLES = {"segm": 400, "bbox": 400, "keypoints": 300}
PARAM_EXAMPLES = 200

ORACLE_SETTINGS = dict(
    deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


def _check(workload: dict, params_overrides: dict | None = None) -> None:
    gt, results, iou_type = workload["gt"], workload["results"], workload["iou_type"]
    oracle = run_pycocotools(gt, results, iou_type, params_overrides)
    ours = run_engine(gt, results, iou_type, params_overrides)
    assert_matches_oracle(ours, oracle, f"{describe(workload)}; params {params_overrides}")


# --------------------------------------------------------------------------------------------
# properties

def _run_property(iou_type: str, examples: int) -> int:
    seen = []

    @settings(max_examples=examples, **ORACLE_SETTINGS)
    @given(workload=coco_workloads(iou_type))
    def check(workload):
        seen.append(1)
        _check(workload)

    check()
    return len(seen)


@pytest.mark.differential
@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_engine_equals_pycocotools_on_random_workloads(iou_type):
    ran = _run_property(iou_type, EXAMPLES[iou_type])
    assert ran >= EXAMPLES[iou_type], f"only {ran} workloads ran"


@st.composite
def _params(draw, iou_type: str) -> dict:
    """pycocotools Params overrides: thresholds (1.0 included: capped at 1 - 1e-10), maxDets
    (without 100 / 20 the summary's hard-coded values select nothing), area ranges with or
    without the standard labels, use_cats=False (not for keypoints, see the module doc)."""
    overrides = {}
    if draw(st.booleans()):
        thresholds = draw(st.lists(st.sampled_from([0.05, 0.3, 0.5, 0.6, 0.75, 0.9, 0.99, 1.0]),
                                   min_size=1, max_size=5, unique=True))
        overrides["iouThrs"] = np.array(sorted(thresholds))
    if draw(st.booleans()):
        overrides["recThrs"] = np.array(sorted(draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8, 1.0]),
                                                             min_size=1, max_size=4, unique=True))))
    if draw(st.booleans()):
        if iou_type == "keypoints":
            overrides["maxDets"] = draw(st.sampled_from([[20], [5], [1, 20], [3, 20, 40]]))
        else:
            overrides["maxDets"] = draw(st.sampled_from([[1, 5, 50], [2, 10, 100], [1, 10, 100, 120], [100, 1, 10]]))
    if draw(st.booleans()):
        lo, hi = sorted(draw(st.lists(st.integers(0, 4000), min_size=2, max_size=2)))
        labels = draw(st.sampled_from([["all", "small", "medium", "large"], ["all", "a", "b", "c"]]))
        ranges = [[0, 1e10], [0, lo], [lo, hi], [hi, 1e10]]
        if iou_type == "keypoints":
            ranges, labels = [ranges[0], ranges[2], ranges[3]], [labels[0], labels[2], labels[3]]
        overrides["areaRng"], overrides["areaRngLbl"] = ranges, labels
    if iou_type != "keypoints" and draw(st.booleans()):
        overrides["useCats"] = 0
    return overrides


@pytest.mark.differential
def test_engine_equals_pycocotools_with_drawn_params():
    seen = []

    @settings(max_examples=PARAM_EXAMPLES, **ORACLE_SETTINGS)
    @given(data=st.data(), iou_type=st.sampled_from(IOU_TYPES))
    def check(data, iou_type):
        workload = data.draw(coco_workloads(iou_type, max_images=5), label="workload")
        overrides = data.draw(_params(iou_type), label="params")
        seen.append(1)
        _check(workload, overrides)

    check()
    assert len(seen) >= PARAM_EXAMPLES


# --------------------------------------------------------------------------------------------
# plain cases

def _one_image(iou_type: str, gt_boxes, dets, ids=None, cats=None, det_cats=None) -> dict:
    """A 40x40 image; rectangular gts (x, y, w, h) and detections (box, score)."""
    anns, results = [], []
    for i, (x, y, w, h) in enumerate(gt_boxes):
        m = np.zeros((40, 40), np.uint8)
        m[y:y + h, x:x + w] = 1
        rle = mask_utils.encode(np.asfortranarray(m))
        rle = {"size": [40, 40], "counts": rle["counts"].decode()}
        kpts = np.zeros((17, 3))
        kpts[:, 0] = np.linspace(x, x + w - 1, 17)
        kpts[:, 1] = np.linspace(y, y + h - 1, 17)
        kpts[:, 2] = 2
        anns.append({"id": ids[i] if ids else i + 1, "image_id": 1, "category_id": cats[i] if cats else 1,
                     "segmentation": rle, "area": float(w * h), "bbox": [float(x), float(y), float(w), float(h)],
                     "iscrowd": 0, "keypoints": kpts.reshape(-1).tolist(), "num_keypoints": 17})
    for j, ((x, y, w, h), score) in enumerate(dets):
        result = {"image_id": 1, "category_id": det_cats[j] if det_cats else 1, "score": score}
        if iou_type == "bbox":
            result["bbox"] = [float(x), float(y), float(w), float(h)]
        elif iou_type == "segm":
            m = np.zeros((40, 40), np.uint8)
            m[y:y + h, x:x + w] = 1
            result["segmentation"] = {"size": [40, 40], "counts": mask_utils.encode(np.asfortranarray(m))["counts"].decode()}
        else:
            k = np.zeros((17, 3))
            k[:, 0] = np.linspace(x, x + w - 1, 17)
            k[:, 1] = np.linspace(y, y + h - 1, 17)
            k[:, 2] = 1
            result["keypoints"] = k.reshape(-1).tolist()
        results.append(result)
    categories = [{"id": c, "name": f"c{c}"} for c in sorted(set((cats or [1]) + (det_cats or [1])))]
    gt = {"images": [{"id": 1, "width": 40, "height": 40, "file_name": "1.jpg"}], "annotations": anns,
          "categories": categories}
    return {"gt": gt, "results": results, "iou_type": iou_type}


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_ground_truth_with_id_zero(iou_type):
    """pycocotools records matches by id: the match of a gt whose id is 0 reads as unmatched
    (the detection is a false positive, the gt stays missed). The engine keeps the quirk."""
    workload = _one_image(iou_type, [(2, 2, 10, 12), (20, 20, 12, 10)],
                          [((2, 2, 10, 12), 0.9), ((20, 20, 12, 10), 0.8)], ids=[0, 7])
    oracle = run_pycocotools(workload["gt"], workload["results"], iou_type)
    assert_matches_oracle(run_engine(workload["gt"], workload["results"], iou_type), oracle, "gt id 0")
    recall = oracle[2]
    assert recall[0, 0, 0, -1] == pytest.approx(0.5)  # the id-0 gt counts as missed
    for seed in range(6):  # and among other annotations
        _check(build_workload(iou_type, seed, id_zero=True, per_image=((5, 8), (3, 4), (0, 2))))


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
def test_use_cats_false(iou_type):
    """With use_cats=False pycocotools lists an image's annotations category by category, so
    detections with tied scores are ordered by category first: here the cat-1 detection
    (IoU 0.9) goes before the cat-2 one (IoU ~0.6) that precedes it in the results file."""
    workload = _one_image(iou_type, [(0, 0, 20, 20)], [((0, 0, 20, 12), 0.5), ((0, 0, 20, 18), 0.5)],
                          cats=[1], det_cats=[2, 1])
    overrides = {"useCats": 0}
    _check(workload, overrides)
    stats = run_pycocotools(workload["gt"], workload["results"], iou_type, overrides)[0]
    in_file_order = copy.deepcopy(workload)
    for result in in_file_order["results"]:
        result["category_id"] = 1
    assert stats[0] != run_pycocotools(in_file_order["gt"], in_file_order["results"], iou_type, overrides)[0][0]
    for seed in range(8):
        _check(build_workload(iou_type, seed, cat_ids=(1, 2), own_cat_p=0.6, scores=(0.5, 0.7),
                              per_image=((4, 10), (2, 6), (3, 0), (0, 3)), heavy=seed % 2 == 0), overrides)


def test_keypoints_use_cats_false_is_a_pycocotools_bug():
    """pycocotools' computeOks ignores useCats=0 (it reads ``_gts[img, -1]``): no OKS, nothing
    matched, AP 0 even for perfect detections. The engine evaluates them (AP 1)."""
    workload = _one_image("keypoints", [(2, 2, 30, 30)], [((2, 2, 30, 30), 0.9)])
    oracle_stats = run_pycocotools(workload["gt"], workload["results"], "keypoints", {"useCats": 0})[0]
    ours = run_engine(workload["gt"], workload["results"], "keypoints", {"useCats": 0})
    assert oracle_stats[0] == 0 and ours.stats[0] == pytest.approx(1.0)
    with_cats = run_pycocotools(workload["gt"], workload["results"], "keypoints")[0]
    assert ours.stats == pytest.approx(with_cats, abs=1e-12)


CUSTOM_PARAMS = [
    {"iouThrs": np.array([0.3, 0.5, 0.75, 0.99, 1.0])},
    {"recThrs": np.array([0.0, 0.2, 0.5, 0.9])},
    {"maxDets": [1, 5, 50]},  # stats[0] is -1 in pycocotools: its summary asks for maxDets=100
    {"maxDets": [2, 10, 100, 150]},
    {"maxDets": [100, 1, 10]},  # pycocotools sorts them
    {"areaRng": [[0, 1e10], [0, 150], [150, 600], [600, 1e10]]},
    {"areaRng": [[0, 1e10], [10, 400], [400, 1e10]], "areaRngLbl": ["all", "mid", "big"]},
    {"iouThrs": np.array([0.1, 0.5, 0.75]), "maxDets": [1, 3, 100], "areaRng": [[0, 1e10], [0, 300], [300, 900], [900, 1e10]]},
]
KEYPOINT_PARAMS = [
    {"iouThrs": np.array([0.3, 0.5, 0.75, 0.99, 1.0])},
    {"maxDets": [5]},  # every stat is -1 in pycocotools: its summary asks for maxDets=20
    {"maxDets": [1, 20, 40]},
    {"areaRng": [[0, 1e10], [100, 600], [600, 1e10]]},
    {"areaRng": [[0, 1e10], [100, 600], [600, 1e10]], "areaRngLbl": ["all", "m", "l"], "iouThrs": np.array([0.5, 0.9])},
]


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_custom_params(iou_type):
    for overrides in KEYPOINT_PARAMS if iou_type == "keypoints" else CUSTOM_PARAMS:
        for seed in range(4):
            workload = build_workload(iou_type, 100 + seed, cat_ids=(1, 2), area_mode="mixed", large_p=0.4,
                                      per_image=((4, 9), (6, 14), (0, 3), (2, 0)), heavy=seed == 0)
            _check(workload, overrides)


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_restricted_image_list(iou_type):
    """EvalParams.img_ids vs cocoEval.params.imgIds: other images' detections do not count."""
    workload = build_workload(iou_type, 7, per_image=((3, 6), (2, 5), (0, 4), (4, 8), (1, 0)), crowd_p=0.2)
    ids = [im["id"] for im in workload["gt"]["images"]]
    for subset in ([ids[0]], [ids[2]], [ids[1], ids[3]], [ids[3], ids[0], ids[2]], [ids[4]]):
        _check(workload, {"imgIds": subset})
    # the same through EvalParams directly
    gt_dict = workload["gt"]
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, workload["results"]), iou_type, gt_dict["images"], is_gt=False)
    ours = evaluate(gt, dt, EvalParams(iou_type=iou_type, img_ids=[ids[1], ids[3]]))
    assert_matches_oracle(ours, run_pycocotools(gt_dict, workload["results"], iou_type, {"imgIds": [ids[1], ids[3]]}),
                          "img_ids")


# --------------------------------------------------------------------------------------------
# the real samples, against detections derived from their own ground truth

def _derived_results(gt_dict: dict, iou_type: str, seed: int) -> list:
    """Per ground truth 0..3 detections (jittered box / keypoints, the gt mask shifted with
    pixels flipped), plus false positives on random images; scores on a 0.05 grid (ties)."""
    rng = np.random.default_rng(seed)
    coco = coco_from_dict(gt_dict)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt_dict["images"]}
    results = []

    def score():
        return float(np.round(rng.integers(1, 21) * 0.05, 2))

    def mask_result(ann, image_id):
        m = mask_utils.decode(coco.annToRLE(ann)).astype(bool)
        h, w = m.shape
        dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
        m = np.roll(np.roll(m, dy, axis=0), dx, axis=1)
        x, y, bw, bh = (int(v) for v in ann["bbox"])
        region = np.zeros_like(m)
        region[max(0, y - 4):y + bh + 4, max(0, x - 4):x + bw + 4] = True
        m ^= region & (rng.random(m.shape) < rng.choice([0.01, 0.05, 0.2]))
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        return {"size": [h, w], "counts": rle["counts"].decode()}

    def result_for(ann, image_id):
        result = {"image_id": image_id, "category_id": 1, "score": score()}
        x, y, w, h = ann["bbox"]
        if iou_type == "bbox":
            s = rng.choice([0.0, 0.03, 0.1, 0.3])
            result["bbox"] = [x + rng.normal(0, s * w), y + rng.normal(0, s * h),
                              w * float(np.exp(rng.normal(0, s))), h * float(np.exp(rng.normal(0, s)))]
        elif iou_type == "segm":
            result["segmentation"] = mask_result(ann, image_id)
        else:
            k = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
            unlabelled = k[:, 2] == 0
            k[unlabelled, 0] = x + rng.random(unlabelled.sum()) * w
            k[unlabelled, 1] = y + rng.random(unlabelled.sum()) * h
            spread = np.sqrt(max(ann["area"], 1.0)) * rng.choice([0.0, 0.01, 0.03, 0.08, 0.2])
            k[:, :2] += rng.normal(0, spread, (17, 2))
            k[:, 2] = 1
            result["keypoints"] = k.reshape(-1).tolist()
        return result

    for ann in gt_dict["annotations"]:
        for _ in range(int(rng.choice([0, 1, 1, 1, 2, 3]))):
            results.append(result_for(ann, ann["image_id"]))
    # false positives: another image's annotation placed on a random image
    image_ids = [im["id"] for im in gt_dict["images"]]
    for _ in range(len(gt_dict["annotations"]) // 3 + 2):
        ann = gt_dict["annotations"][int(rng.integers(len(gt_dict["annotations"])))]
        target = image_ids[int(rng.integers(len(image_ids)))]
        if iou_type == "segm" and sizes[target] != sizes[ann["image_id"]]:
            target = ann["image_id"]
        results.append(result_for(ann, target))
    rng.shuffle(results)
    return results


def _real_sample_check(path, iou_type: str, seed: int) -> None:
    gt_dict = json.loads(path.read_text())
    results = _derived_results(gt_dict, iou_type, seed)
    oracle = run_pycocotools(gt_dict, results, iou_type)
    workload = {"gt": gt_dict, "results": results, "iou_type": iou_type}
    assert_matches_oracle(run_engine(gt_dict, results, iou_type), oracle, f"{path.name}: {describe(workload)}")
    # the engine's own defaults (categories: the annotated ones, here the file's one category)
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, results), iou_type, gt_dict["images"], is_gt=False)
    assert_matches_oracle(evaluate(gt, dt, EvalParams(iou_type=iou_type)), oracle, f"{path.name} (defaults)")
    assert 0 < oracle[0][0] < 1  # a real evaluation: some matches, some misses


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_coco_sample(coco_sample, iou_type):
    for seed in range(3):
        _real_sample_check(coco_sample, iou_type, seed)


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_coco_mini(coco_mini, iou_type):
    gt_dict = json.loads(coco_mini.read_text())
    assert sum(a["iscrowd"] for a in gt_dict["annotations"]) == 5
    for seed in range(2):
        _real_sample_check(coco_mini, iou_type, seed)


# --------------------------------------------------------------------------------------------
# the command's path: evaluate_results on a COCO ground-truth file, results read from a file

FILE_EXAMPLES = {"segm": 60, "bbox": 60, "keypoints": 60}


def _check_file_level(workload: dict, folder) -> None:
    """``evaluate_results(gt=<file>, subset="all")`` (what ``ochuman eval --gt`` runs) equals
    pycocotools ``COCO(file)`` + ``loadRes`` + ``COCOeval`` on the same files."""
    import warnings

    from ochuman.eval.run import evaluate_results
    from ochuman.errors import OCHumanWarning

    gt_path, results_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(json.dumps(workload["gt"]))
    results_path.write_text(json.dumps(workload["results"]))
    iou_type = workload["iou_type"]
    oracle = run_pycocotools(workload["gt"], workload["results"], iou_type)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)  # empty files, boxes as masks: said, then scored
        report = evaluate_results(str(results_path), gt=gt_path, iou_type=iou_type, subsets=["all"])
    assert_matches_oracle(report.evaluations[0].subsets["all"], oracle, f"evaluate_results: {describe(workload)}")


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_evaluate_results_on_a_coco_file_equals_pycocotools(iou_type, tmp_path):
    seen = []

    @settings(max_examples=FILE_EXAMPLES[iou_type], **ORACLE_SETTINGS)
    @given(workload=coco_workloads(iou_type, max_images=6, person_file=True))
    def check(workload):
        seen.append(1)
        _check_file_level(workload, tmp_path)

    check()
    assert len(seen) >= FILE_EXAMPLES[iou_type]


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_evaluate_results_counts_detections_on_images_without_ground_truth(iou_type, tmp_path):
    """Two images, a perfect detection on the annotated one and one on the empty one:
    pycocotools counts the second as a false positive (AP 0.5, not 1.0)."""
    workload = _one_image(iou_type, [(2, 2, 20, 30)], [((2, 2, 20, 30), 0.9)])
    workload["gt"]["categories"] = [{"id": 1, "name": "person"}]
    workload["gt"]["images"].append({"id": 2, "width": 40, "height": 40, "file_name": "2.jpg"})
    workload["results"].append({**copy.deepcopy(workload["results"][0]), "image_id": 2, "score": 0.95})
    oracle = run_pycocotools(workload["gt"], workload["results"], iou_type)
    assert oracle[0][0] == pytest.approx(0.5)
    _check_file_level(workload, tmp_path)
    # ignore mode: on a COCO file every person counts in "all", the empty image's detection too
    from ochuman.eval.run import evaluate_results

    ignore = evaluate_results(workload["results"], gt=tmp_path / "gt.json", iou_type=iou_type, subsets=["all"],
                              mode="ignore")
    assert_matches_oracle(ignore.evaluations[0].subsets["all"], oracle, "ignore mode")


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_evaluate_results_on_a_file_without_annotations(iou_type, tmp_path):
    """No annotation at all: pycocotools gives -1 everywhere; so does evaluate_results, with a
    warning saying why."""
    from ochuman.eval.run import evaluate_results
    from ochuman.errors import OCHumanWarning

    workload = _one_image(iou_type, [], [((2, 2, 20, 30), 0.9)])
    workload["gt"]["categories"] = [{"id": 1, "name": "person"}]
    assert (run_pycocotools(workload["gt"], workload["results"], iou_type)[0] == -1).all()
    _check_file_level(workload, tmp_path)
    with pytest.warns(OCHumanWarning, match="no ground-truth person"):
        evaluate_results(workload["results"], gt=tmp_path / "gt.json", iou_type=iou_type, subsets=["all"])


def test_keypoints_person_with_num_keypoints_0_is_ignored(tmp_path):
    """pycocotools ignores a ground truth whose ``num_keypoints`` is 0 in keypoints evaluation,
    whatever its keypoints say: missing it costs no recall."""
    workload = _one_image("keypoints", [(2, 2, 15, 30), (20, 2, 15, 30)], [((2, 2, 15, 30), 0.9)])
    workload["gt"]["categories"] = [{"id": 1, "name": "person"}]
    workload["gt"]["annotations"][1]["num_keypoints"] = 0  # its 17 keypoints stay labelled
    stats = run_pycocotools(workload["gt"], workload["results"], "keypoints")[0]
    assert stats[0] == pytest.approx(1.0) and stats[5] == pytest.approx(1.0)  # one person, found
    _check_file_level(workload, tmp_path)
