"""Keypoint AP by visibility class (``--by-visibility``): OKS restricted to one class against a
per-class reference written from the definition, and evaluations equal to pycocotools on a
ground truth rewritten with the other classes' joints at v = 0 (hypothesis: COCO files; the
native sample with its own three classes)."""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ochuman
from ochuman.errors import OCHumanError, OCHumanWarning
from ochuman.eval.iou import oks_pairs
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.run import evaluate_results
from ochuman.eval.visibility import restricted_annotations
from ochuman.keypoints import COCO_KEYPOINT_NAMES, COCO_OKS_SIGMAS, OCHUMAN_TO_COCO_VISIBILITY

from ..workloads import assert_matches_oracle, coco_workloads, describe, run_pycocotools, to_annotations

SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def restricted_oks_reference(dt: np.ndarray, gt: np.ndarray, codes: np.ndarray, code: int, box, area: float) -> float:
    """OKS of one (detection, person) pair over the person's joints of class ``code`` only,
    straight from the definition (module doc of ochuman.eval.visibility): the mean of
    exp(-d^2 / (2 s^2 (2 sigma)^2)) over the joints whose code is ``code`` (and labelled); with
    none, pycocotools' box rule over every joint (the person is then an ignore region)."""
    variances = (2 * COCO_OKS_SIGMAS) ** 2
    joints = [k for k in range(17) if codes[k] == code and gt[3 * k + 2] > 0]
    terms = []
    for k in (joints or range(17)):
        xd, yd = dt[3 * k], dt[3 * k + 1]
        if joints:
            dx, dy = xd - gt[3 * k], yd - gt[3 * k + 1]
        else:
            x, y, w, h = box
            dx = max(0.0, x - w - xd) + max(0.0, xd - (x + 2 * w))
            dy = max(0.0, y - h - yd) + max(0.0, yd - (y + 2 * h))
        terms.append(np.exp(-(dx * dx + dy * dy) / variances[k] / (area + np.spacing(1)) / 2))
    return sum(terms) / len(terms)


@settings(max_examples=60, **SETTINGS)
@given(seed=st.integers(0, 2 ** 32 - 1), native=st.booleans(), code=st.integers(1, 3),
       n=st.integers(1, 6), m=st.integers(1, 6))
def test_restricted_oks_equals_the_reference(seed, native, code, n, m):
    """The compiled OKS on the masked visibility array = the per-class definition, pair by pair."""
    rng = np.random.default_rng(seed)
    boxes = np.c_[rng.uniform(0, 200, (n, 2)), rng.uniform(5, 100, (n, 2))]
    gt_kpts = np.zeros((n, 51))
    gt_kpts[:, 0::3] = boxes[:, :1] + rng.uniform(0, 1, (n, 17)) * boxes[:, 2:3]
    gt_kpts[:, 1::3] = boxes[:, 1:2] + rng.uniform(0, 1, (n, 17)) * boxes[:, 3:4]
    codes = rng.integers(0, 4 if native else 3, (n, 17)) * (rng.uniform(size=(n, 1)) < 0.9)
    gt_kpts[:, 2::3] = OCHUMAN_TO_COCO_VISIBILITY[codes] if native else codes
    if not native:
        code = min(code, 2)
    area = boxes[:, 2] * boxes[:, 3] * rng.uniform(0.3, 1, n)
    dt_kpts = gt_kpts[rng.integers(0, n, m)] + np.where(
        np.arange(51) % 3 == 2, 0, rng.normal(0, rng.choice([1, 10, 60]), (m, 51)))
    gt = to_annotations([{"image_id": 1, "category_id": 1, "id": i + 1, "bbox": boxes[i].tolist(), "area": area[i],
                          "iscrowd": 0, "keypoints": gt_kpts[i].tolist(),
                          "num_keypoints": int((gt_kpts[i, 2::3] > 0).sum())} for i in range(n)],
                        "keypoints", [{"id": 1, "width": 400, "height": 400}], is_gt=True)
    restricted = restricted_annotations(gt, codes, code)
    d, g = np.repeat(np.arange(m), n), np.tile(np.arange(n), m)
    ours = oks_pairs(dt_kpts, restricted.keypoints, gt.bbox, gt.area, d, g, COCO_OKS_SIGMAS)
    expected = [restricted_oks_reference(dt_kpts[i], gt_kpts[j], codes[j], code, boxes[j], area[j])
                for i, j in zip(d, g)]
    np.testing.assert_allclose(ours, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(restricted.num_keypoints, [(codes[j] == code).sum() * (gt_kpts[j, 2::3] > 0).any()
                                                             for j in range(n)])


def _rewritten(gt: dict, codes_of, code) -> dict:
    """The ground truth with the joints of the other classes at v = 0 and num_keypoints the
    joints left (0 where it was 0): what pycocotools must score as the class's AP."""
    out = copy.deepcopy(gt)
    for ann in out["annotations"]:
        codes = codes_of(ann)
        kpts = ann["keypoints"]
        for k in range(17):
            if codes[k] != code:
                kpts[3 * k + 2] = 0
        ann["num_keypoints"] = 0 if ann["num_keypoints"] == 0 else sum(v > 0 for v in kpts[2::3])
    return out


@pytest.mark.differential  # drawn workloads against pycocotools: make test, not make test-fast
@settings(max_examples=60, **SETTINGS)
@given(workload=coco_workloads("keypoints", max_images=6, person_file=True))
def test_coco_file_classes_equal_pycocotools_on_the_rewritten_file(tmp_path_factory, workload):
    folder = tmp_path_factory.mktemp("vis")
    gt_path, results_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(json.dumps(workload["gt"]))
    results_path.write_text(json.dumps(workload["results"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        report = evaluate_results(str(results_path), gt=gt_path, iou_type="keypoints", subsets=["all"],
                                  by_visibility=True)
    assert [ev.keys["visibility"] for ev in report.evaluations] == ["all", "v=2", "v=1"]
    assert_matches_oracle(report.evaluations[0].subsets["all"],
                          run_pycocotools(workload["gt"], workload["results"], "keypoints"), describe(workload))
    for evaluation, code in zip(report.evaluations[1:], (2, 1)):
        rewritten = _rewritten(workload["gt"], lambda ann: ann["keypoints"][2::3], code)
        oracle = run_pycocotools(rewritten, workload["results"], "keypoints")
        assert_matches_oracle(evaluation.subsets["all"], oracle, f"v={code}: {describe(workload)}")


# ---------------------------------------------------------------------------------------------
# the native sample: its three classes


def _native_codes(native_sample) -> list:
    """Per person of the official val file (in its order), the native code of each COCO joint,
    read straight from the JSON (persons with keypoints and mask, MaxIoU below 1, file order)."""
    doc = json.loads(native_sample.read_text())
    names = doc["keypoint_names"]
    index = [names.index(name) for name in COCO_KEYPOINT_NAMES]
    out = []
    for image in doc["images"]:
        for person in image["annotations"]:
            if person["keypoints"] is not None and person["segms"] is not None and person["max_iou"] < 1:
                out.append([int(person["keypoints"][3 * i + 2]) for i in index])
    return out


def _native_results(official: dict, seed: int) -> list:
    """Detections of the official persons, joints jittered by various amounts."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in official["annotations"]:
        kpts = np.array(ann["keypoints"], dtype=float)
        noise = rng.choice([2.0, 8.0, 20.0], 17)
        kpts[0::3] += rng.normal(0, 1, 17) * noise
        kpts[1::3] += rng.normal(0, 1, 17) * noise
        kpts[2::3] = 1
        out.append({"image_id": ann["image_id"], "category_id": 1, "keypoints": kpts.tolist(),
                    "score": float(rng.uniform(0.1, 1))})
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_native_classes_equal_pycocotools_on_the_rewritten_official_file(native_sample, seed):
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    codes = _native_codes(native_sample)
    assert len(codes) == len(official["annotations"])
    by_id = {ann["id"]: c for ann, c in zip(official["annotations"], codes)}
    results = _native_results(official, seed)
    report = evaluate_results(results, gt=native_sample, iou_type="keypoints", by_visibility=True,
                              subsets=["all", "moderate"])
    assert [ev.keys["visibility"] for ev in report.evaluations] == [
        "all", "visible", "self-occluded", "occluded-by-other"]
    distinct = set()
    for evaluation, code in zip(report.evaluations[1:], (1, 2, 3)):
        oracle = run_pycocotools(_rewritten(official, lambda ann: by_id[ann["id"]], code), results, "keypoints")
        assert_matches_oracle(evaluation.subsets["all"], oracle, f"native code {code}")
        distinct.add(round(float(oracle[0][0]), 9))
    assert len(distinct) > 1  # the classes differ: not one number three times


def test_native_codes_map_to_the_ground_truth_visibility(native_sample):
    ground = resolve_ground_truth(gt=native_sample, split="val", masks=False)
    assert ground.keypoint_codes.shape == (len(ground.annotations), 17)
    np.testing.assert_array_equal(OCHUMAN_TO_COCO_VISIBILITY[ground.keypoint_codes],
                                  ground.annotations.keypoints[:, 2::3])
    assert set(np.unique(ground.keypoint_codes)) == {0, 1, 2, 3}


# ---------------------------------------------------------------------------------------------
# named cases


def _coco_file(tmp_path, persons: list) -> str:
    """One 400x400 image; persons: (box, 17 visibilities, keypoints (17, 2))."""
    anns = []
    for i, (box, vis, xy) in enumerate(persons):
        kpts = np.c_[xy, vis].ravel().tolist()
        anns.append({"id": i + 1, "image_id": 1, "category_id": 1, "bbox": box, "area": box[2] * box[3],
                     "iscrowd": 0, "keypoints": kpts, "num_keypoints": int(np.count_nonzero(vis))})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"images": [{"id": 1, "width": 400, "height": 400, "file_name": "1.jpg"}],
                                "annotations": anns,
                                "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINT_NAMES)}]}))
    return str(path)


def _grid(x0, y0):
    return np.c_[x0 + 10 * (np.arange(17) % 4), y0 + 12 * (np.arange(17) // 4)].astype(float)


def _detection(xy, score):
    return {"image_id": 1, "category_id": 1, "score": score, "keypoints": np.c_[xy, np.ones(17)].ravel().tolist()}


def _ap(report):
    return {ev.keys["visibility"]: ev.subsets["all"].stats[0] for ev in report.evaluations}


def test_a_detection_exact_on_the_visible_joints_only(tmp_path):
    """Visible joints exact, the others 40 px off: AP 1 on v=2, 0 on v=1, between on all joints."""
    vis = np.where(np.arange(17) < 9, 2, 1)
    xy = _grid(50, 50)
    moved = xy + np.where(vis[:, None] == 1, 40.0, 0.0)
    gt = _coco_file(tmp_path, [([40, 40, 60, 80], vis, xy)])
    ap = _ap(evaluate_results([_detection(moved, 0.9)], gt=gt, iou_type="keypoints", subsets=["all"],
                              by_visibility=True))
    assert ap["v=2"] == pytest.approx(1.0) and ap["v=1"] == 0.0 and 0.01 < ap["all"] < 0.99


def test_a_person_without_a_joint_of_the_class_is_an_ignore_region(tmp_path):
    """Person A has visible joints only. For v=1 it is ignored: the detection of A (scored
    highest) is neither a true nor a false positive, so v=1 AP stays 1 (it would be 0.5 if A
    were absent: a false positive first) and only B counts."""
    a, b = _grid(20, 20), _grid(220, 220)
    gt = _coco_file(tmp_path, [([10, 10, 60, 80], np.full(17, 2), a),
                               ([210, 210, 60, 80], np.where(np.arange(17) % 2, 1, 2), b)])
    report = evaluate_results([_detection(a, 0.9), _detection(b, 0.5)], gt=gt, iou_type="keypoints",
                              subsets=["all"], by_visibility=True)
    assert _ap(report) == pytest.approx({"all": 1.0, "v=2": 1.0, "v=1": 1.0})
    assert [ev.subsets["all"].persons for ev in report.evaluations] == [2, 2, 1]


def test_rows_and_refusals(native_sample):
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    results = _native_results(official, 0)
    plain = evaluate_results(results, gt=native_sample, iou_type="keypoints").rows()
    assert all("visibility" not in row for row in plain)
    rows = evaluate_results(results, gt=native_sample, iou_type="keypoints", by_visibility=True,
                            image_set=["fully-labelled", "all"]).rows()
    assert [(r["image_set"], r["visibility"]) for r in rows[::3]] == [
        (s, v) for s in ("fully-labelled", "all") for v in ("all", "visible", "self-occluded", "occluded-by-other")]
    assert [{k: v for k, v in r.items() if k not in ("image_set", "visibility")} for r in rows[12:15]] == plain
    with pytest.raises(OCHumanError, match="--by-visibility needs --iou-type keypoints"):
        evaluate_results(results, gt=native_sample, iou_type="bbox", by_visibility=True)


def test_perfect_detections_can_score_below_one_on_a_class(tmp_path):
    """The documented consequence of pycocotools' rules on the restricted ground truth: X has no
    v=1 joint, so for v=1 it is an ignore region and the detection of X (scored highest) may
    match Y, whose only v=1 joint lies on X's; Y's own detection then finds neither Y (taken) nor
    X (its box OKS is low) and is a false positive before Z's true positive. Exactly what
    pycocotools scores on the rewritten file; every joint together scores 1."""
    x = _grid(100, 100) * 0.2 + 80
    y = np.c_[60 + 12 * np.arange(17), 60 + 18 * np.arange(17)].astype(float)
    y[0] = x[0] + 1
    z = _grid(300, 60)
    y_vis = np.full(17, 2)
    y_vis[0] = 1
    gt = _coco_file(tmp_path, [([96, 96, 20, 20], np.full(17, 2), x), ([55, 55, 210, 310], y_vis, y),
                               ([290, 50, 60, 80], np.where(np.arange(17) % 2, 1, 2), z)])
    results = [_detection(x, 0.9), _detection(y, 0.8), _detection(z, 0.7)]
    report = evaluate_results(results, gt=gt, iou_type="keypoints", subsets=["all"], by_visibility=True)
    ap = _ap(report)
    assert ap["all"] == pytest.approx(1.0) and ap["v=2"] == pytest.approx(1.0) and ap["v=1"] < 0.9
    doc = json.loads(open(gt).read())
    oracle = run_pycocotools(_rewritten(doc, lambda ann: ann["keypoints"][2::3], 1), results, "keypoints")
    assert_matches_oracle(report.evaluations[2].subsets["all"], oracle, "v=1")
