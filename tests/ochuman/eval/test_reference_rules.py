"""One named test per COCO matching / accumulation rule, each on a tiny hand-built case, so that a
broken rule names itself within seconds.

Each case is a COCO ground truth and a results list (boxes, or keypoints), scored three ways:

- pycocotools (the oracle), ``evaluate(); accumulate()``;
- the pure-Python reference :mod:`ochuman.eval.reference` on the same annotations (its own IoU /
  OKS, loops written after pycocotools' ``evaluateImg`` and ``accumulate``): it must equal
  pycocotools exactly;
- the compiled engine through :func:`ochuman.eval.accumulation.evaluate` (the ``ignore`` mode through
  :func:`ochuman.eval.evaluate_results`): it must equal the reference (precision, recall
  and scores, to 1e-12).

Each test also asserts the cell that shows its rule at work, so that a case which stopped
exercising its rule fails too. A hypothesis test ends the file: reference vs engine on random
tiny workloads.
"""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.cocoeval import Params

from ochuman.eval import evaluate_results
from ochuman.errors import OCHumanWarning
from ochuman.eval import reference

from ..workloads import load_results, run_engine, run_pycocotools

ATOL = 1e-12
FAR = [200.0, 200.0, 10.0, 10.0]  # a box that overlaps none of the cases' ground truths


# --------------------------------------------------------------------------------------------
# cases

def gt(box, id, image=1, cat=1, crowd=0, area=None, keypoints=None, num_keypoints=17, max_iou=None) -> dict:
    """A ground-truth annotation; area defaults to the box's."""
    ann = {"id": id, "image_id": image, "category_id": cat, "bbox": [float(v) for v in box], "iscrowd": crowd,
           "area": float(box[2] * box[3] if area is None else area)}
    if keypoints is not None:
        ann["keypoints"], ann["num_keypoints"] = keypoints, num_keypoints
    if max_iou is not None:
        ann["max_iou"] = max_iou
    return ann


def det(box, score, image=1, cat=1, keypoints=None) -> dict:
    result = {"image_id": image, "category_id": cat, "score": score}
    if keypoints is None:
        result["bbox"] = [float(v) for v in box]
    else:
        result["keypoints"] = keypoints
    return result


def case(gts, dets, images=(1,), cats=(1,), iou_type="bbox") -> dict:
    gt_dict = {"images": [{"id": i, "width": 400, "height": 400, "file_name": f"{i}.jpg"} for i in images],
               "annotations": gts, "categories": [{"id": c, "name": "person" if c == 1 else f"c{c}"} for c in cats]}
    return {"gt": gt_dict, "results": dets, "iou_type": iou_type}


def params(iou_type: str, overrides: dict | None) -> Params:
    """pycocotools' Params with the overrides, as both pycocotools and the reference use them."""
    p = Params(iouType=iou_type)
    for name, value in (overrides or {}).items():
        setattr(p, name, np.asarray(value, dtype=float) if name in ("iouThrs", "recThrs") else copy.deepcopy(value))
    return p


def run_reference(work: dict, overrides: dict | None = None, in_subset=None):
    """The reference on the case: (precision, recall, scores). in_subset: {gt id: bool} scores
    the ``ignore`` mode's subset of those persons."""
    gt_dict, iou_type = work["gt"], work["iou_type"]
    p = params(iou_type, overrides)
    img_ids = sorted(im["id"] for im in gt_dict["images"])
    cat_ids = sorted(c["id"] for c in gt_dict["categories"])
    dts = load_results(gt_dict, work["results"])
    blocks = reference.blocks_from_coco(gt_dict["annotations"], dts, img_ids, cat_ids, iou_type,
                                        getattr(p, "kpt_oks_sigmas", None))
    if in_subset is not None:
        blocks = {key: reference.ignore_mode(block, [in_subset[i] for i in block.gt_id])
                  for key, block in blocks.items()}
    return reference.evaluate(blocks, len(cat_ids), len(img_ids), p.iouThrs, p.recThrs, p.maxDets, p.areaRng)


def assert_engine_equals_reference(engine, ref) -> None:
    engine_arrays = (engine.precision, engine.recall, engine.scores)
    for name, mine, theirs in zip(("precision", "recall", "scores"), engine_arrays, ref):
        assert mine.shape == theirs.shape, f"engine {name} shape {mine.shape} != reference {theirs.shape}"
        bad = ~np.isclose(mine, theirs, rtol=0, atol=ATOL)
        assert not bad.any(), (f"engine != reference: {name} at {np.argwhere(bad)[:5].tolist()}: "
                               f"engine {mine[bad][:5]}, reference {theirs[bad][:5]}")


def check(work: dict, overrides: dict | None = None):
    """reference == pycocotools (exactly) and engine == reference; returns the reference's
    (precision, recall, scores)."""
    ref = run_reference(work, overrides)
    _, precision, recall = run_pycocotools(work["gt"], work["results"], work["iou_type"], overrides)
    for name, mine, oracle in (("precision", ref[0], precision), ("recall", ref[1], recall)):
        assert np.array_equal(mine, oracle), f"reference != pycocotools ({name}):\n{mine.ravel()}\n{oracle.ravel()}"
    assert_engine_equals_reference(run_engine(work["gt"], work["results"], work["iou_type"], overrides), ref)
    return ref


def box_keypoints(box, v=2) -> list:
    """17 keypoints spread over the box, visibility v."""
    x, y, w, h = box
    k = np.zeros((17, 3))
    k[:, 0] = np.linspace(x, x + w, 17)
    k[:, 1] = np.linspace(y, y + h, 17)
    k[:, 2] = v
    return k.ravel().tolist()


# Indices into precision (T, R, K, A, M) / recall (T, K, A, M): the first threshold (0.5), the
# last recall threshold (1.0), category 0, area range "all", the largest maxDets.
T50, R100, ALL, LAST = 0, -1, 0, -1


# --------------------------------------------------------------------------------------------
# order of detections

def test_score_ties_keep_results_file_order():
    """Equal scores: a stable sort (mergesort), so the results file's order decides. The false
    positive listed first goes first (AP 0.5); listed second, it goes after the hit (AP 1)."""
    hit, miss = det([0, 0, 10, 10], 0.5), det(FAR, 0.5)
    first = check(case([gt([0, 0, 10, 10], id=1)], [miss, hit]))
    second = check(case([gt([0, 0, 10, 10], id=1)], [hit, miss]))
    assert first[0][T50, R100, 0, ALL, LAST] == pytest.approx(0.5)
    assert second[0][T50, R100, 0, ALL, LAST] == pytest.approx(1.0)


def test_higher_score_matches_first():
    """The higher-score detection (IoU 0.6) takes the person although a lower-score one listed
    before it in the file fits better (IoU 1.0): the first detection by score is a hit."""
    work = case([gt([0, 0, 10, 10], id=1)],
                [det([0, 0, 10, 10], 0.3), det([0, 0, 10, 6], 0.9), det(FAR, 0.6)])
    precision = check(work)[0]
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(1.0)  # 1/3 if the 0.3 one matched first


def test_max_dets_cut_per_image_after_the_stable_score_sort():
    """maxDets [1, 2, 3]: at most 3 detections per image, the highest scores, ties in file order,
    cut before matching (the hit ranked 4th on image 1 never matches); image 2's only detection
    counts whatever the other image holds."""
    work = case([gt([0, 0, 10, 10], id=1, image=1), gt([0, 0, 10, 10], id=2, image=2)],
                [det(FAR, 0.9, image=1), det(FAR, 0.8, image=1), det(FAR, 0.7, image=1),
                 det([0, 0, 10, 10], 0.7, image=1), det([0, 0, 10, 10], 0.1, image=2)], images=(1, 2))
    _, recall, _ = check(work, {"maxDets": [1, 2, 3]})
    assert recall[T50, 0, ALL, :].tolist() == [0.5, 0.5, 0.5]


# --------------------------------------------------------------------------------------------
# which ground truth a detection takes

def test_detection_takes_the_best_iou_ground_truth():
    """The first detection reaches both persons (IoU 0.54 and 0.82) and takes the better one,
    leaving the first person to the second detection (which reaches only it): recall 1."""
    work = case([gt([0, 0, 10, 10], id=1), gt([4, 0, 10, 10], id=2)],
                [det([3, 0, 10, 10], 0.9), det([0, 0, 10, 10], 0.8)])
    ious = reference.bbox_ious([[3, 0, 10, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [4, 0, 10, 10]], [0, 0])
    assert 0.5 < ious[0, 0] < ious[0, 1] and ious[1, 1] < 0.5
    recall = check(work)[1]
    assert recall[T50, 0, ALL, LAST] == 1.0


def test_equal_iou_goes_to_the_later_ground_truth():
    """Two identical persons: a detection reaching both equally takes the later one (an IoU equal
    to the best so far replaces it). Seen through the id-0 rule: the later person has id 0, so the
    match reads as none and recall is 0 (0.5 had it taken the first)."""
    work = case([gt([0, 0, 10, 10], id=5), gt([0, 0, 10, 10], id=0)], [det([0, 0, 10, 10], 0.9)])
    recall = check(work)[1]
    assert recall[T50, 0, ALL, LAST] == 0.0


def test_match_to_ground_truth_id_0_reads_as_unmatched():
    """pycocotools records a match by the person's id: id 0 reads as no match (a false positive,
    the person missed)."""
    work = case([gt([0, 0, 10, 10], id=0), gt([50, 0, 10, 10], id=3)],
                [det([0, 0, 10, 10], 0.9), det([50, 0, 10, 10], 0.8)])
    precision, recall, _ = check(work)
    assert recall[T50, 0, ALL, LAST] == 0.5
    assert precision[T50, R100, 0, ALL, LAST] == 0.0  # recall 1.0 never reached


def test_regular_ground_truth_tried_before_ignored():
    """A crowd region listed first fits the detection perfectly (crowd IoU 1.0), a regular person
    listed second less (0.8): regular persons are tried first, and once the detection holds one it
    stops at the first ignored one. A hit (recall 1), not an ignored detection (recall 0)."""
    work = case([gt([0, 0, 10, 10], id=1, crowd=1), gt([0, 0, 10, 8], id=2)], [det([0, 0, 10, 10], 0.9)])
    recall = check(work)[1]
    assert recall[T50, 0, ALL, LAST] == 1.0


def test_detection_matched_to_ignored_ground_truth_is_ignored():
    """In the "small" area range a person of area 5000 is ignored: the detection matching it is
    ignored there (not a false positive) although its own area (100) is in range."""
    work = case([gt([0, 0, 10, 10], id=1, area=5000), gt([50, 0, 10, 10], id=2)],
                [det([0, 0, 10, 10], 0.9), det([50, 0, 10, 10], 0.8)])
    precision = check(work)[0]
    small = 1
    assert precision[T50, R100, 0, small, LAST] == pytest.approx(1.0)
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(1.0)  # both hits in "all"


def test_ignored_non_crowd_ground_truth_matched_once():
    """An ignored person that is not a crowd region (here: area out of the "small" range) takes
    one detection; a second one on it is a false positive there (precision 0.5 at recall 1)."""
    work = case([gt([0, 0, 10, 10], id=1, area=5000), gt([50, 0, 10, 10], id=2)],
                [det([0, 0, 10, 10], 0.9), det([0, 0, 10, 10], 0.85), det([50, 0, 10, 10], 0.8)])
    precision = check(work)[0]
    small = 1
    assert precision[T50, R100, 0, small, LAST] == pytest.approx(0.5)


def test_crowd_region_matched_many_times():
    """Three detections inside one crowd region all match it (each ignored): precision 1 for the
    hit that follows them, not 0.25."""
    work = case([gt([0, 0, 40, 40], id=1, crowd=1), gt([100, 0, 10, 10], id=2)],
                [det([0, 0, 10, 10], 0.9), det([20, 0, 10, 10], 0.85), det([0, 20, 10, 10], 0.8),
                 det([100, 0, 10, 10], 0.7)])
    precision = check(work)[0]
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(1.0)


def test_crowd_iou_is_over_the_detection_area():
    """A small detection inside a large crowd region: its crowd IoU is intersection over its own
    area (1.0, not 100/1600), so it matches the region and is ignored."""
    assert reference.bbox_ious([[5, 5, 10, 10]], [[0, 0, 40, 40]], [1])[0, 0] == 1.0
    assert reference.bbox_ious([[5, 5, 10, 10]], [[0, 0, 40, 40]], [0])[0, 0] == 100 / 1600
    work = case([gt([0, 0, 40, 40], id=1, crowd=1), gt([100, 0, 10, 10], id=2)],
                [det([5, 5, 10, 10], 0.9), det([100, 0, 10, 10], 0.7)])
    precision = check(work)[0]
    assert precision[:, R100, 0, ALL, LAST].tolist() == pytest.approx([1.0] * 10)


# --------------------------------------------------------------------------------------------
# thresholds

def test_iou_exactly_at_the_threshold_matches():
    """IoU 0.5 and 0.75 exactly (half and three quarters of the box): matched at 0.5 and at 0.75
    respectively (IoU >= threshold), not above."""
    work = case([gt([0, 0, 10, 10], id=1), gt([50, 0, 10, 10], id=2)],
                [det([0, 0, 10, 5], 0.9), det([50, 0, 10, 7.5], 0.8)])
    ious = reference.bbox_ious([[0, 0, 10, 5], [50, 0, 10, 7.5]], [[0, 0, 10, 10], [50, 0, 10, 10]], [0, 0])
    assert ious.max(1).tolist() == [0.5, 0.75]
    recall = check(work)[1]
    assert recall[:, 0, ALL, LAST].tolist() == [1.0] + [0.5] * 5 + [0.0] * 4


def test_threshold_capped_at_one_minus_1e_10():
    """A threshold of 1.0 matches at 1 - 1e-10: an IoU just below 1 (1 - 5e-11) reaches it."""
    box = [0, 0, 10, 10 * (1 - 5e-11)]
    iou = reference.bbox_ious([box], [[0, 0, 10, 10]], [0])[0, 0]
    assert 1 - 1e-10 <= iou < 1.0
    work = case([gt([0, 0, 10, 10], id=1)], [det(box, 0.9)])
    recall = check(work, {"iouThrs": [0.5, 1.0]})[1]
    assert recall[:, 0, ALL, LAST].tolist() == [1.0, 1.0]


# --------------------------------------------------------------------------------------------
# area ranges

def test_area_range_bounds_are_inclusive():
    """A person of area exactly 32**2 is in "small" [0, 1024] and in "medium" [1024, 9216]."""
    work = case([gt([0, 0, 32, 32], id=1)], [det([0, 0, 32, 32], 0.9)])
    recall = check(work)[1]
    assert recall[T50, 0, :, LAST].tolist() == [1.0, 1.0, 1.0, -1.0]  # "large": nobody counts


def test_ground_truth_outside_the_area_range_is_ignored():
    """A missed person of area 5000 costs recall in "all" and "medium" but not in "small"."""
    work = case([gt([0, 0, 10, 10], id=1), gt([50, 0, 10, 10], id=2, area=5000)], [det([0, 0, 10, 10], 0.9)])
    recall = check(work)[1]
    assert recall[T50, 0, :, LAST].tolist() == [0.5, 1.0, 0.0, -1.0]


def test_unmatched_detection_outside_the_area_range_is_ignored():
    """An unmatched 50x50 detection is a false positive in "all" but ignored in "small"; a matched
    detection counts whatever its own area (the 50x50 hit on a person whose file area is 500)."""
    work = case([gt([0, 0, 10, 10], id=1), gt([100, 0, 50, 50], id=2, area=500)],
                [det([200, 200, 50, 50], 0.9), det([0, 0, 10, 10], 0.8), det([100, 0, 50, 50], 0.7)])
    precision = check(work)[0]
    small = 1
    assert precision[T50, R100, 0, small, LAST] == pytest.approx(1.0)
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(2 / 3)


# --------------------------------------------------------------------------------------------
# images and categories

def test_detections_on_an_image_without_ground_truth_are_false_positives():
    work = case([gt([0, 0, 10, 10], id=1, image=1)], [det([0, 0, 10, 10], 0.9, image=1), det(FAR, 0.95, image=2)],
                images=(1, 2))
    precision = check(work)[0]
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(0.5)


def test_ground_truth_on_an_image_without_detections_is_missed():
    work = case([gt([0, 0, 10, 10], id=1, image=1), gt([0, 0, 10, 10], id=2, image=2)],
                [det([0, 0, 10, 10], 0.9, image=1)], images=(1, 2))
    recall = check(work)[1]
    assert recall[T50, 0, ALL, LAST] == 0.5


def test_category_without_ground_truth_is_minus_one():
    """A category with detections but no ground truth: -1 everywhere (no person counts), the other
    category scored as usual."""
    work = case([gt([0, 0, 10, 10], id=1, cat=1)], [det([0, 0, 10, 10], 0.9, cat=1), det([0, 0, 10, 10], 0.9, cat=2)],
                cats=(1, 2))
    precision, recall, _ = check(work)
    assert (precision[:, :, 1] == -1).all() and (recall[:, 1] == -1).all()
    assert recall[T50, 0, ALL, LAST] == 1.0


def test_cross_image_score_ties_go_in_image_order():
    """Equal scores on two images: the merged list keeps image order (ids sorted), whatever the
    results file's order: the false positive of image 1 goes before the hit of image 2."""
    work = case([gt([0, 0, 10, 10], id=1, image=2)], [det([0, 0, 10, 10], 0.5, image=2), det(FAR, 0.5, image=1)],
                images=(1, 2))
    precision = check(work)[0]
    assert precision[T50, R100, 0, ALL, LAST] == pytest.approx(0.5)


# --------------------------------------------------------------------------------------------
# accumulation

def test_precision_envelope_and_recall_thresholds():
    """Hit, miss, hit, hit for 4 persons: recall .25 .25 .5 .75, precision 1 .5 .67 .75, made
    monotone from the right (1 .75 .75 .75). Read with searchsorted left: at recall 0.25 the
    first detection reaching it (1.0, not .75), at 0.5 the envelope (.75, not .67), past the last
    recall reached 0."""
    persons = [gt([50 * i, 0, 10, 10], id=i + 1) for i in range(4)]
    dets = [det([0, 0, 10, 10], 0.9), det(FAR, 0.8), det([50, 0, 10, 10], 0.7), det([100, 0, 10, 10], 0.6)]
    precision, recall, scores = check(case(persons, dets), {"recThrs": [0.0, 0.25, 0.5, 0.6, 1.0]})
    assert precision[T50, :, 0, ALL, LAST].tolist() == pytest.approx([1.0, 1.0, 0.75, 0.75, 0.0])
    assert scores[T50, :, 0, ALL, LAST].tolist() == [0.9, 0.9, 0.7, 0.6, 0.0]
    assert recall[T50, 0, ALL, LAST] == 0.75


# --------------------------------------------------------------------------------------------
# keypoints

def test_keypoints_person_with_num_keypoints_0_is_ignored():
    """A person with num_keypoints 0 is ignored (whatever its keypoints say): missing it costs no
    recall."""
    a, b = [0, 0, 30, 60], [100, 0, 30, 60]
    work = case([gt(a, id=1, keypoints=box_keypoints(a)), gt(b, id=2, keypoints=box_keypoints(b), num_keypoints=0)],
                [det(None, 0.9, keypoints=box_keypoints(a, v=1))], iou_type="keypoints")
    recall = check(work)[1]
    assert recall[T50, 0, ALL, LAST] == 1.0


def test_oks_of_person_without_labelled_keypoints_uses_its_box_doubled():
    """A person with no labelled keypoint: OKS measures the distance to its box enlarged 2x (0
    inside), so a detection within it has OKS 1, matches the (ignored) person and is ignored;
    without that rule it would be a false positive ahead of the hit."""
    a, b = [0, 0, 30, 60], [100, 0, 30, 60]
    inside = box_keypoints([75, -40, 80, 140], v=1)  # within [70, 160] x [-60, 120]
    sigmas = Params("keypoints").kpt_oks_sigmas
    assert reference.oks([inside], [box_keypoints(b, v=0)], [b], [1800.0], sigmas)[0, 0] == 1.0
    unlabelled = gt(b, id=2, keypoints=box_keypoints(b, v=0), num_keypoints=0)
    work = case([gt(a, id=1, keypoints=box_keypoints(a)), unlabelled],
                [det(None, 0.95, keypoints=inside), det(None, 0.9, keypoints=box_keypoints(a, v=1))],
                iou_type="keypoints")
    precision = check(work)[0]
    assert precision[:, R100, 0, ALL, LAST].tolist() == pytest.approx([1.0] * 10)


# --------------------------------------------------------------------------------------------
# the ignore mode's nearest-person rule (the project's, README "Two subset modes")

def test_ignore_mode_unmatched_detection_follows_its_nearest_person(tmp_path):
    """Subset "hard" holds person 1 (MaxIoU 0.8), not person 2 (0.2, an ignore region, listed
    first). Unmatched detections: one nearest person 2 is ignored, one nearest person 1 and one
    overlapping nobody are false positives; the detection matching person 2 is ignored. Hit
    last: precision 1/3 (1/4 without the rule, 1/2 if overlapping nobody read as near the first
    person).

    pycocotools has no such mode; the same rule is its area-range rule when the areas line up:
    persons in the subset of area 100, others 1600, range [50, 400], and each unmatched
    detection's area (dt: its box) in range exactly when its nearest person is in the subset."""
    persons = [gt([100, 0, 40, 40], id=2, max_iou=0.2), gt([0, 0, 10, 10], id=1, max_iou=0.8)]
    dets = [det([130, 0, 40, 40], 0.9),  # nearest person 2 (IoU 0.14), area 1600
            det([7, 0, 10, 10], 0.8),  # nearest person 1 (IoU 0.18), area 100
            det([50, 50, 10, 10], 0.7),  # overlaps nobody (all IoUs 0, the first person's too), area 100
            det([100, 0, 40, 40], 0.6),  # matches person 2
            det([0, 0, 10, 10], 0.5)]  # matches person 1
    work = case(persons, dets)
    ref = run_reference(work, in_subset={1: True, 2: False})
    assert ref[0][T50, R100, 0, ALL, LAST] == pytest.approx(1 / 3)

    area_rule = {"areaRng": [[0, 1e10], [50, 400]], "areaRngLbl": ["all", "subset"]}
    by_area = run_reference(work, area_rule)
    _, precision, recall = run_pycocotools(work["gt"], work["results"], "bbox", area_rule)
    assert np.array_equal(by_area[0], precision) and np.array_equal(by_area[1], recall)
    assert np.array_equal(ref[0][..., :1, :], precision[..., 1:2, :])
    assert np.array_equal(ref[1][..., :1, :], recall[..., 1:2, :])

    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(work["gt"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        report = evaluate_results(work["results"], gt=gt_path, iou_type="bbox", subsets=["hard"], mode="ignore")
    assert_engine_equals_reference(report.evaluations[0].subsets["hard"], ref)


def test_ignore_mode_nearest_person_tie_goes_to_the_first(tmp_path):
    """An unmatched detection overlapping two persons equally (IoU 0.2 each) is near the first one
    in file order: ignored when that one is outside the subset, a false positive when inside."""
    persons = [gt([0, 0, 10, 10], id=1, max_iou=0.8), gt([12, 0, 10, 10], id=2, max_iou=0.8),
               gt([40, 0, 10, 10], id=3, max_iou=0.8)]
    between = [7, 0, 8, 10]  # 3x10 of each: IoU 30 / 150 with both
    ious = reference.bbox_ious([between], [p["bbox"] for p in persons], [0, 0, 0])[0]
    assert ious[0] == ious[1] > 0
    dets = [det(between, 0.9), det([40, 0, 10, 10], 0.5)]
    for first_in_subset in (True, False):
        work = case(copy.deepcopy(persons), dets)
        work["gt"]["annotations"][0]["max_iou"] = 0.8 if first_in_subset else 0.2
        ref = run_reference(work, in_subset={1: first_in_subset, 2: True, 3: True})
        gt_path = tmp_path / "gt.json"
        gt_path.write_text(json.dumps(work["gt"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OCHumanWarning)
            report = evaluate_results(work["results"], gt=gt_path, iou_type="bbox", subsets=["hard"], mode="ignore")
        assert_engine_equals_reference(report.evaluations[0].subsets["hard"], ref)
        expected = 0.5 if first_in_subset else 1.0  # the tie's detection goes before the hit
        assert ref[0][T50, 0, 0, ALL, LAST] == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# differential: reference vs engine on random tiny workloads

AREAS = (None, 500.0, 1024.0, 5000.0, 20000.0)  # None: the box's; the others straddle the ranges' bounds
SIZES = (5.0, 10.0, 20.0, 40.0)
MAX_DETS = ([1, 10, 100], [1, 2, 3], [2, 3, 4])
IOU_THRS = ([0.25, 0.5, 1.0], [0.1, 0.75], [1 / 3, 0.5])


@st.composite
def tiny_workloads(draw, max_cats: int = 2, far_p: float = 0.1) -> tuple[dict, dict]:
    """1-3 images, 1-2 categories (at most max_cats), 0-6 persons on a coarse grid (equal IoUs,
    IoUs exactly at a threshold), a crowd region in 4, an id 0 in 6, file areas across the range
    bounds; 0-9 detections: far from everyone (probability far_p), else mostly on a person's box
    shifted 0-10 pixels; scores with ties; maxDets and thresholds varied. Geometry from a drawn
    seed (numpy), as in tests/ochuman/workloads.py."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    images = list(range(1, int(rng.integers(1, 4)) + 1))
    cats = [1, 2] if max_cats == 2 and rng.random() < 0.4 else [1]

    def pick(values):
        return values[int(rng.integers(len(values)))]

    def box():
        return [10.0 * int(rng.integers(0, 5)), 10.0 * int(rng.integers(0, 5)), pick(SIZES), pick(SIZES)]

    gts = [gt(box(), id=0 if rng.random() < 1 / 6 else n + 1, image=pick(images), cat=pick(cats),
              crowd=int(rng.random() < 0.25), area=pick(AREAS)) for n in range(int(rng.integers(0, 7)))]
    dets = []
    for _ in range(int(rng.integers(0, 10))):
        score = pick((0.2, 0.5, 0.5, 0.9))
        if rng.random() < far_p:
            dets.append(det([300.0, 300.0, 10.0, 10.0], score, image=pick(images), cat=pick(cats)))
        elif gts and rng.random() < 0.7:
            person = pick(gts)
            x, y, w, h = person["bbox"]
            dets.append(det([x + pick((0, 0, 2, 5, 10)), y + pick((0, 0, 2, 5)), w, h], score,
                            image=person["image_id"], cat=person["category_id"]))
        else:
            dets.append(det(box(), score, image=pick(images), cat=pick(cats)))
    overrides = {}
    if rng.random() < 0.5:
        overrides["maxDets"] = pick(MAX_DETS)
    if rng.random() < 0.5:
        overrides["iouThrs"] = pick(IOU_THRS)
    return case(gts, dets, images=images, cats=cats), overrides


@settings(max_examples=50, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(tiny_workloads())
def test_reference_equals_engine_on_random_tiny_workloads(drawn):
    work, overrides = drawn
    assert_engine_equals_reference(run_engine(work["gt"], work["results"], "bbox", overrides),
                                   run_reference(work, overrides))


@settings(max_examples=30, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(tiny_workloads(max_cats=1, far_p=0.3), st.data())
def test_reference_equals_engine_in_ignore_mode_on_random_tiny_workloads(tmp_path, drawn, data):
    """The ``ignore`` mode on one category (what ``ochuman eval --gt FILE --mode ignore`` scores):
    each person in subset "hard" or not by its drawn MaxIoU."""
    work, _ = drawn
    annotations = work["gt"]["annotations"]
    for n, ann in enumerate(annotations):
        ann["id"], ann["max_iou"] = n + 1, data.draw(st.sampled_from([0.2, 0.5, 0.75, 1.0]), label=f"max_iou {n + 1}")
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(work["gt"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        report = evaluate_results(work["results"], gt=gt_path, iou_type="bbox", subsets=["hard"], mode="ignore")
    in_subset = {a["id"]: a["max_iou"] >= 0.75 for a in annotations}
    assert_engine_equals_reference(report.evaluations[0].subsets["hard"], run_reference(work, in_subset=in_subset))
