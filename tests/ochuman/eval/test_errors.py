"""Error classes at one IoU threshold (ochuman.eval.errors): each class on hand-built cases,
counts and dAP against a slow reference (pycocotools' evaluateImg read by plain loops, each
oracle fix applied to the inputs and pycocotools run again), the subset and MaxIoU-bin split
(the reference on each official range file), keypoints, the report, the CLI."""
from __future__ import annotations

import copy
from dataclasses import replace
import itertools
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import COCOeval

from ochuman.compat import quietly
from ochuman.eval.errors import ERROR_CLASSES, KEYPOINT_ERROR_CLASSES, _union_area
from ochuman.eval.run import evaluate_results
from ochuman.subsets import HARD, MODERATE
from ochuman.eval.subsets import MAX_IOU_BINS

from ..workloads import build_workload, coco_from_dict, load_results_coco

# random workloads hold files without persons and keypoints outside their images: warned, and beside the point here
pytestmark = pytest.mark.filterwarnings("ignore::ochuman.errors.OCHumanWarning")

H, W = 40, 60


def _rle(rows, cols, height=H, width=W):
    bitmap = np.zeros((height, width), np.uint8)
    bitmap[rows[0]:rows[1], cols[0]:cols[1]] = 1
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    rle["counts"] = rle["counts"].decode()
    return rle


def _person(ann_id, image_id, rows, cols, **extra):
    rle = _rle(rows, cols)
    box = [float(v) for v in mask_utils.toBbox(rle)]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0, "bbox": box,
            "area": box[2] * box[3], "segmentation": rle, **extra}


def _gt_file(tmp_path, annotations, images=(1, 2)):
    gt = {"images": [{"id": i, "file_name": f"{i}.jpg", "height": H, "width": W} for i in images],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return gt, path


# One image with five persons: A and B side by side (their boxes touch), C, E, F; a second
# image with D, whom nothing detects.
PERSONS = {"A": (1, (0, 20), (0, 10)), "B": (1, (0, 20), (10, 20)), "C": (1, (25, 40), (30, 50)),
           "E": (1, (0, 20), (40, 60)), "F": (1, (25, 40), (0, 20)), "D": (2, (5, 30), (5, 30))}
# (score, rows, cols, the class at IoU 0.75)
DETECTIONS = [
    (0.95, (25, 40), (30, 50), None),  # C exactly: a true positive
    (0.90, (26, 40), (30, 50), "duplicate"),  # C again (IoU 0.93)
    (0.85, (0, 20), (0, 20), "merged"),  # one mask over A and B: IoU 0.5 with each, 1.0 with both
    (0.80, (25, 32), (0, 10), "partial"),  # a fragment of F: IoU 0.23, all of it inside F
    (0.70, (10, 25), (40, 60), "localization"),  # E's lower half and below: IoU 0.4, 2/3 inside
    (0.50, (20, 25), (0, 10), "background"),  # between A and F: IoU 0
]


def _hand_built(tmp_path):
    annotations = [_person(k + 1, image, rows, cols) for k, (image, rows, cols) in enumerate(PERSONS.values())]
    gt, path = _gt_file(tmp_path, annotations)
    results = [{"image_id": 1, "category_id": 1, "score": s, "segmentation": _rle(rows, cols)}
               for s, rows, cols, _ in DETECTIONS]
    return gt, path, results


def test_each_class_on_hand_built_persons(tmp_path):
    gt, path, results = _hand_built(tmp_path)
    report = evaluate_results(results, gt=path, subsets=["all"], errors=True, errors_iou=0.75)
    errors = report.rows()[0]["errors"]
    assert list(errors) == list(ERROR_CLASSES)
    expected = {name: sum(cls == name for *_, cls in DETECTIONS) for name in ERROR_CLASSES}
    expected["missed"] = 5  # A, B, D, E, F: only C is matched
    assert {name: value["count"] for name, value in errors.items()} == expected
    assert all(value["dAP"] >= 0 for value in errors.values())
    # the merged mask, fixed, takes A (the first of its two best persons): AP rises
    assert errors["merged"]["dAP"] > 0 and errors["missed"]["dAP"] > 0
    assert errors == _reference(gt, results, "segm", 0.75)


def test_person_rows_say_which_error_aimed_at_each_missed_person(tmp_path):
    gt, path, results = _hand_built(tmp_path)
    report = evaluate_results(results, gt=path, subsets=["all"], errors=True, errors_iou=0.75, per_person=True)
    by_person = {name: row["error"] for name in PERSONS for row in report.persons()
                 if row["person_id"] == list(PERSONS).index(name) + 1}
    # the merged mask aims at A (the first of its two best persons) only; nothing aims at B or D
    assert by_person == {"A": "merged", "B": "missed", "C": None, "D": "missed", "E": "localization",
                         "F": "partial"}
    plain = evaluate_results(results, gt=path, subsets=["all"], per_person=True).persons()
    assert all("error" not in row for row in plain)


def test_a_mask_over_two_persons_at_half_is_a_match_not_merged(tmp_path):
    """At IoU 0.5 a union of two persons reaches 0.5 with the larger one (its area is at least
    half the union): a true positive; a mask covering 60% of each is merged (IoU 0.375 with each,
    0.6 with their union)."""
    annotations = [_person(1, 1, (0, 20), (0, 10)), _person(2, 1, (0, 20), (10, 20))]
    gt, path = _gt_file(tmp_path, annotations, images=(1,))
    union = {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": _rle((0, 20), (0, 20))}
    report = evaluate_results([union], gt=path, subsets=["all"], errors=True)
    assert report.rows()[0]["errors"]["merged"]["count"] == 0 and report.rows()[0]["AP50"] > 0
    # columns 4..15: 120 pixels of A and 120 of B (60% of each)
    half = {"image_id": 1, "category_id": 1, "score": 0.9, "segmentation": _rle((0, 20), (4, 16))}
    errors = evaluate_results([half], gt=path, subsets=["all"], errors=True).rows()[0]["errors"]
    assert errors["merged"]["count"] == 1
    assert errors == _reference(gt, [half], "segm", 0.5)


def test_best_gt_match_pool_fixes_only_the_highest_scoring_error_per_person(tmp_path):
    """Two near misses of one person: fixing localization matches the higher-scoring one and
    removes the other (TIDE's BestGTMatch); a near miss of a matched person is removed."""
    annotations = [_person(1, 1, (0, 20), (0, 20)), _person(2, 1, (25, 40), (30, 50))]
    gt, path = _gt_file(tmp_path, annotations, images=(1,))
    results = [{"image_id": 1, "category_id": 1, "score": s, "segmentation": _rle(rows, cols)}
               for s, rows, cols in [(0.9, (25, 40), (30, 50)), (0.8, (25, 40), (38, 58)),
                                     (0.7, (10, 30), (0, 20)), (0.6, (8, 28), (0, 20))]]
    errors = evaluate_results(results, gt=path, subsets=["all"], errors=True).rows()[0]["errors"]
    assert errors["localization"]["count"] == 3 and errors["missed"]["count"] == 1
    assert errors == _reference(gt, results, "segm", 0.5)


def test_union_of_boxes_against_inclusion_exclusion():
    rng = np.random.default_rng(3)
    for _ in range(200):
        boxes = np.round(rng.uniform(0, 20, size=(int(rng.integers(1, 5)), 4)), 1)
        expected = 0.0
        for k in range(1, len(boxes) + 1):
            for chosen in itertools.combinations(boxes, k):
                chosen = np.array(chosen)
                w = (chosen[:, 0] + chosen[:, 2]).min() - chosen[:, 0].max()
                h = (chosen[:, 1] + chosen[:, 3]).min() - chosen[:, 1].max()
                expected += (-1) ** (k + 1) * max(w, 0) * max(h, 0)
        assert abs(_union_area(boxes) - expected) < 1e-9


# --------------------------------------------------------------------------------------------
# the slow reference: pycocotools' evaluateImg read by loops, each fix applied to the inputs

def _pycocotools(gt: dict, results: list, iou_type: str, threshold: float) -> COCOeval:
    coco_gt = coco_from_dict(gt)
    with quietly():
        E = COCOeval(coco_gt, load_results_coco(coco_gt, results), iou_type)
        E.params.iouThrs = np.array([threshold])
        E.params.areaRng, E.params.areaRngLbl = [[0, 1e5 ** 2]], ["all"]
        E.evaluate()
        E.accumulate()
    return E


def _ap_per_category(E: COCOeval) -> np.ndarray:
    cells = E.eval["precision"][0, :, :, 0, -1]  # (R, K)
    return np.array([cells[:, k].mean() if (cells[:, k] > -1).all() else -1.0 for k in range(cells.shape[1])])


def _shape_of(ann: dict, iou_type: str, size) -> object:
    """A mask as pycocotools' annToRLE makes it, or the box."""
    if iou_type != "segm":
        return ann["bbox"]
    segmentation = ann["segmentation"]
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, *size))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, *size)
    return segmentation


def _intersection(a, b, iou_type: str) -> float:
    if iou_type == "segm":
        return float(mask_utils.area(mask_utils.merge([a, b], intersect=True)))
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    return max(w, 0) * max(h, 0)


def _area(shape, iou_type: str) -> float:
    return float(mask_utils.area(shape)) if iou_type == "segm" else shape[2] * shape[3]


def _union_iou(detection, persons: list, iou_type: str) -> float:
    """IoU of a detection with the union of persons: masks merged; boxes by inclusion-exclusion."""
    if iou_type == "segm":
        return float(mask_utils.iou([detection], [mask_utils.merge(persons, intersect=False)], [0])[0][0])

    def union_area(boxes):
        total = 0.0
        for k in range(1, len(boxes) + 1):
            for chosen in itertools.combinations(boxes, k):
                w = min(b[0] + b[2] for b in chosen) - max(b[0] for b in chosen)
                h = min(b[1] + b[3] for b in chosen) - max(b[1] for b in chosen)
                total += (-1) ** (k + 1) * max(w, 0) * max(h, 0)
        return total

    clipped = []
    for p in persons:
        x0, y0 = max(detection[0], p[0]), max(detection[1], p[1])
        x1, y1 = min(detection[0] + detection[2], p[0] + p[2]), min(detection[1] + detection[3], p[1] + p[3])
        clipped.append([x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)])
    inter = union_area(clipped)
    union = detection[2] * detection[3] + union_area(persons) - inter
    return inter / union if union > 0 else 0.0


def _reference(gt: dict, results: list, iou_type: str, threshold: float) -> dict:
    """{class: {"count", "dAP"}} by loops over pycocotools' evalImgs, every fix applied to the
    ground truth and results and pycocotools run again."""
    E = _pycocotools(gt, results, iou_type, threshold)
    dts = {d["id"]: d for d in E.cocoDt.dataset["annotations"]}
    gts = {g["id"]: g for g in gt["annotations"]}
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    cap = min(threshold, 1 - 1e-10)
    classes = KEYPOINT_ERROR_CLASSES if iou_type == "keypoints" else ERROR_CLASSES
    found = {name: [] for name in classes}  # detection ids (missed: person ids)
    target = {}
    with_persons = {e["category_id"] for e in E.evalImgs if e is not None and not all(e["gtIgnore"])}
    for e in E.evalImgs:
        if e is None or e["category_id"] not in with_persons:  # AP never looks at those detections
            continue
        counted = [g for g, ignored in zip(e["gtIds"], e["gtIgnore"]) if not ignored]
        found["missed"] += [g for g, m in zip(e["gtIds"], e["gtMatches"][0]) if g in counted and m == 0]
        ious = np.asarray(E.ious[(e["image_id"], e["category_id"])])
        columns = [g["id"] for g in E._gts[e["image_id"], e["category_id"]]]
        for row, (d, m, ignored) in enumerate(zip(e["dtIds"], e["dtMatches"][0], e["dtIgnore"][0])):
            if m != 0 or ignored:
                continue
            iou = [ious[row, columns.index(g)] for g in counted]
            best = max(iou, default=0.0)
            aim = counted[int(np.argmax(iou))] if iou else None
            if best >= cap:
                found["duplicate"].append(d)
                continue
            if iou_type != "keypoints":
                size = sizes[e["image_id"]]
                shape = _shape_of(dts[d], iou_type, size)
                persons = [_shape_of(gts[g], iou_type, size) for g in counted]
                inter = [_intersection(shape, p, iou_type) for p in persons]
                covered = [p for p, i in zip(persons, inter) if _area(p, iou_type) > 0 and i / _area(p, iou_type) >= 0.5]
                if len(covered) >= 2 and _union_iou(shape, covered, iou_type) >= cap:
                    found["merged"].append(d)
                    target[d] = aim
                    continue
                inside = [i / _area(shape, iou_type) if _area(shape, iou_type) > 0 else 0.0 for i in inter]
                if max(inside, default=0.0) >= 0.8:
                    found["partial"].append(d)
                    target[d] = counted[int(np.argmax(inside))]
                    continue
            if best >= 0.1:
                found["localization"].append(d)
                target[d] = aim
            else:
                found["background"].append(d)
    matched = {int(m) for e in E.evalImgs if e is not None for m in e["dtMatches"][0] if m}
    fixer = {}  # person -> the highest-scoring error aiming at it (ties: the earlier in the file)
    for d in sorted(target, key=lambda d: (-dts[d]["score"], d)):
        if target[d] not in matched:
            fixer.setdefault(target[d], d)
    base = _ap_per_category(E)
    valid = base > -1
    out = {}
    for name in classes:
        fixed_gt, fixed_results = copy.deepcopy(gt), []
        for d in sorted(dts):  # loadRes numbers the results 1, 2, ... in file order
            detection = copy.deepcopy(results[d - 1])
            if d in found[name] and name != "missed":
                person = gts[target[d]] if d in target and fixer.get(target[d]) == d else None
                if person is None:
                    continue  # removed
                field = {"segm": "segmentation", "bbox": "bbox", "keypoints": "keypoints"}[iou_type]
                detection[field] = copy.deepcopy(person[field])
            fixed_results.append(detection)
        if name == "missed":
            fixed_gt["annotations"] = [g for g in gt["annotations"] if g["id"] not in found["missed"]]
        fixed = _ap_per_category(_pycocotools(fixed_gt, fixed_results, iou_type, threshold))
        fixed = np.where(fixed > -1, fixed, 0.0)
        d_ap = float(fixed[valid].mean() - base[valid].mean()) if valid.any() else 0.0
        out[name] = {"count": len(found[name]), "dAP": d_ap}
    return out


def _assert_close(ours: dict, reference: dict, context: str) -> None:
    assert list(ours) == list(reference), context
    for name in reference:
        assert ours[name]["dAP"] >= 0, f"{context}: {name}: a fix lowered AP: {ours}"
        assert ours[name]["count"] == reference[name]["count"], f"{context}: {name}: {ours} vs {reference}"
        assert abs(ours[name]["dAP"] - reference[name]["dAP"]) < 1e-12, f"{context}: {name}: {ours} vs {reference}"


def _workload(iou_type: str, seed: int) -> dict:
    """A random workload plus, per image, detections over two of its persons at once (the union
    of their masks, the box around both): merged errors, or matches at a low threshold."""
    rng = np.random.default_rng(seed)
    per_image = tuple((int(rng.integers(0, 6)), int(rng.integers(0, 12))) for _ in range(int(rng.integers(1, 6))))
    workload = build_workload(iou_type, seed, per_image=per_image, occluding_p=0.5,
                              cat_ids=(1, 2) if seed % 3 == 0 else (1,), crowd_p=0.1, heavy=False, id_zero=False,
                              zero_kp_p=0.1)
    if iou_type == "keypoints":
        return workload
    sizes = {im["id"]: (im["height"], im["width"]) for im in workload["gt"]["images"]}
    for image_id in sizes:
        persons = [a for a in workload["gt"]["annotations"] if a["image_id"] == image_id and not a["iscrowd"]]
        for _ in range(min(len(persons) - 1, 3) if len(persons) > 1 else 0):
            a, b = (persons[k] for k in rng.choice(len(persons), size=2, replace=False))
            result = {"image_id": image_id, "category_id": a["category_id"], "score": float(rng.choice([0.2, 0.6, 0.95]))}
            if iou_type == "segm":
                union = mask_utils.merge([_shape_of(p, "segm", sizes[image_id]) for p in (a, b)], intersect=False)
                result["segmentation"] = {"size": union["size"], "counts": union["counts"].decode()}
            else:
                x0, y0 = min(a["bbox"][0], b["bbox"][0]), min(a["bbox"][1], b["bbox"][1])
                x1 = max(a["bbox"][0] + a["bbox"][2], b["bbox"][0] + b["bbox"][2])
                y1 = max(a["bbox"][1] + a["bbox"][3], b["bbox"][1] + b["bbox"][3])
                result["bbox"] = [x0, y0, x1 - x0, y1 - y0]
            workload["results"].append(result)
    return workload


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("threshold", [0.5, 0.75])
def test_counts_and_dap_equal_the_slow_reference_on_random_workloads(tmp_path, iou_type, threshold):
    for seed in range(12):
        workload = _workload(iou_type, seed)
        path = tmp_path / f"gt{seed}.json"
        path.write_text(json.dumps(workload["gt"]))
        report = evaluate_results(workload["results"], gt=path, iou_type=iou_type, subsets=["all"],
                                  errors=True, errors_iou=threshold)
        ours = report.rows()[0]["errors"]
        _assert_close(ours, _reference(workload["gt"], workload["results"], iou_type, threshold),
                      f"{iou_type} seed {seed} T {threshold}")


def test_unfixed_ap_at_the_threshold_is_pycocotools_ap50(tmp_path):
    workload = _workload("segm", 4)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(workload["gt"]))
    report = evaluate_results(workload["results"], gt=path, subsets=["all"], errors=True)
    analysis = report.evaluations[0].errors["all"]
    assert abs(analysis.ap[analysis.ap > -1].mean() - report.rows()[0]["AP50"]) < 1e-12


def _range_file(gt: dict, results: list, rng) -> tuple[dict, list]:
    """The official range file of a COCO ground truth with stored max_iou, and the results on
    its images (what pycocotools evaluates for that subset)."""
    persons = [a for a in gt["annotations"] if not a["iscrowd"] and rng.lo <= a["max_iou"] < rng.hi]
    images = {a["image_id"] for a in persons}
    crowds = [a for a in gt["annotations"] if a["iscrowd"] and a["image_id"] in images]
    return ({**gt, "images": [im for im in gt["images"] if im["id"] in images], "annotations": persons + crowds},
            [r for r in results if r["image_id"] in images])


@pytest.mark.parametrize("iou_type", ["segm", "keypoints"])
def test_subsets_and_max_iou_bins_are_the_reference_on_each_range_file(tmp_path, iou_type):
    rng = np.random.default_rng(7)
    for seed in range(4):
        workload = build_workload(iou_type, 100 + seed, per_image=((4, 8), (5, 9), (3, 6), (4, 7)), occluding_p=0.6,
                                  heavy=False, id_zero=False)
        gt = workload["gt"]
        for ann in gt["annotations"]:  # stored MaxIoU, so that every subset and bin holds persons
            ann["max_iou"] = float(rng.choice([0.2, 0.52, 0.6, 0.7, 0.78, 0.9]))
        path = tmp_path / f"gt{seed}.json"
        path.write_text(json.dumps(gt))
        report = evaluate_results(workload["results"], gt=path, iou_type=iou_type, by_max_iou=True,
                                  errors=True)
        for row in report.rows():
            subset = {"moderate": MODERATE, "hard": HARD}.get(row["subset"])
            part_gt, part_results = (gt, workload["results"]) if subset is None else _range_file(
                gt, workload["results"], subset)
            if part_gt["annotations"]:
                _assert_close(row["errors"], _reference(part_gt, part_results, iou_type, 0.5),
                              f"{iou_type} seed {seed} {row['subset']}")
        bins = report.ap_by_max_iou()
        assert len(bins) == len(MAX_IOU_BINS) and all("errors" in row for row in bins)
        for row, rng_bin in zip(bins, MAX_IOU_BINS):
            part_gt, part_results = _range_file(gt, workload["results"], rng_bin)
            if part_gt["annotations"]:
                _assert_close(row["errors"], _reference(part_gt, part_results, iou_type, 0.5),
                              f"{iou_type} seed {seed} bin {rng_bin.name}")
            else:
                assert all(v == {"count": 0, "dAP": 0.0} for v in row["errors"].values())


def test_keypoints_have_no_merged_or_partial(tmp_path):
    workload = _workload("keypoints", 2)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(workload["gt"]))
    report = evaluate_results(workload["results"], gt=path, iou_type="keypoints", errors=True)
    assert list(report.rows()[0]["errors"]) == list(KEYPOINT_ERROR_CLASSES)


def test_rows_have_errors_only_when_asked_and_the_frame(tmp_path):
    gt, path, results = _hand_built(tmp_path)
    plain = evaluate_results(results, gt=path)
    assert all("errors" not in row for row in plain.rows()) and "errors_iou" not in plain.to_dict()
    assert plain.errors_frame().empty
    report = evaluate_results(results, gt=path, errors=True, errors_iou=0.75, by_max_iou=True)
    frame = report.errors_frame()
    assert list(frame.columns) == ["results", "subset", "max_iou_lo", "max_iou_hi", "class", "count", "dAP"]
    assert len(frame) == (3 + len(MAX_IOU_BINS)) * len(ERROR_CLASSES)
    merged = frame[(frame["subset"] == "all") & (frame["class"] == "merged")].iloc[0]
    assert merged["count"] == 1 and merged["dAP"] == report.rows()[0]["errors"]["merged"]["dAP"]
    assert report.to_dict()["errors_iou"] == 0.75


def test_errors_iou_out_of_range_is_refused(tmp_path):
    from ochuman.errors import OCHumanError

    _, path, results = _hand_built(tmp_path)
    with pytest.raises(OCHumanError, match="errors IoU threshold"):
        evaluate_results(results, gt=path, errors=True, errors_iou=1.5)


def test_per_category_rows_are_the_reference_on_each_category(tmp_path):
    workload = _workload("segm", 3)  # two categories
    gt, results = workload["gt"], workload["results"]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    report = evaluate_results(results, gt=path, subsets=["all"], per_category=True, errors=True, errors_iou=0.75)
    rows = {row["category"]: row["errors"] for row in report.rows()}
    assert set(rows) == {"all", "c1", "c2"}
    for cat_id in (1, 2):
        only = {**gt, "annotations": [a for a in gt["annotations"] if a["category_id"] == cat_id]}
        _assert_close(rows[f"c{cat_id}"], _reference(only, [r for r in results if r["category_id"] == cat_id],
                                                     "segm", 0.75), f"category {cat_id}")
    for name in ERROR_CLASSES:
        assert rows["all"][name]["count"] == rows["c1"][name]["count"] + rows["c2"][name]["count"]


# --------------------------------------------------------------------------------------------
# ignore mode: the slow reference on ochuman.eval.reference's blocks (bbox and keypoints)

def _reference_ignore_mode(gt: dict, results: list, iou_type: str, threshold: float, subset) -> dict:
    """As :func:`_reference`, for ``--mode ignore`` on ``subset``: the blocks of
    ochuman.eval.reference with persons outside the subset as ignore regions (closed-top
    ranges), each fix applied to the blocks (a removed detection leaves its block, a fixed one
    gets IoU 1 with its person and 0 with the others, a missed person becomes an ignore region)."""
    from ochuman.eval import reference
    from ochuman.keypoints import COCO_OKS_SIGMAS

    dts = load_results_coco(coco_from_dict(gt), results).dataset["annotations"]
    img_ids = sorted(im["id"] for im in gt["images"])
    cat_ids = sorted(c["id"] for c in gt["categories"])
    blocks = reference.blocks_from_coco(gt["annotations"], dts, img_ids, cat_ids, iou_type, COCO_OKS_SIGMAS)
    cap = min(threshold, 1 - 1e-10)
    classes = KEYPOINT_ERROR_CLASSES if iou_type == "keypoints" else ERROR_CLASSES
    max_det = 20 if iou_type == "keypoints" else 100
    found = {name: [] for name in classes}  # (block key, detection index in the block [, person])
    target, score = {}, {}
    subset_blocks = {}
    for key, block in blocks.items():
        k, i = key
        gts = [a for a in gt["annotations"] if a["image_id"] == img_ids[i] and a["category_id"] == cat_ids[k]]
        boxes = [d["bbox"] for d in dts if d["image_id"] == img_ids[i] and d["category_id"] == cat_ids[k]]
        # (a crowd region is an ignore region anyway; its max_iou field decides, as in the engine,
        # whether a detection nearest to it is scored)
        in_subset = np.array([subset.contains(np.array([a["max_iou"]]), "closed-top")[0] for a in gts], dtype=bool)
        block = reference.ignore_mode(block, in_subset)
        subset_blocks[key] = (block, [a["bbox"] for a in gts], boxes)
    with_persons = {k for (k, _), (b, _, _) in subset_blocks.items() if (~b.gt_ignore).any()}
    taken = set()
    for key, (block, gt_boxes, dt_boxes) in subset_blocks.items():
        result = reference.evaluate_block(block, [0, 1e5 ** 2], max_det, [threshold])
        counted = [g for g in range(len(block.gt_id)) if not result.gt_ignore[g]]
        matched = {int(m) for m in result.dt_match[0] if m}
        taken |= {(key, g) for g in counted if int(block.gt_id[g]) in matched}
        found["missed"] += [(key, g) for g in counted if int(block.gt_id[g]) not in matched]
        if key[0] not in with_persons:
            continue
        for j, d in enumerate(reference.by_score(block.dt_score)[:max_det]):
            if result.dt_match[0, j] or result.dt_ignore[0, j]:
                continue
            iou = [block.ious[d, g] for g in counted]
            best = max(iou, default=0.0)
            aim = (key, counted[int(np.argmax(iou))]) if iou else None
            score[key, d] = block.dt_score[d]
            if best >= cap:
                found["duplicate"].append((key, d))
                continue
            if iou_type == "bbox":
                persons = [gt_boxes[g] for g in counted]
                inter = [_intersection(dt_boxes[d], p, "bbox") for p in persons]
                covered = [p for p, x in zip(persons, inter) if _area(p, "bbox") > 0 and x / _area(p, "bbox") >= 0.5]
                if len(covered) >= 2 and _union_iou(dt_boxes[d], covered, "bbox") >= cap:
                    found["merged"].append((key, d))
                    target[key, d] = aim
                    continue
                inside = [x / _area(dt_boxes[d], "bbox") if _area(dt_boxes[d], "bbox") > 0 else 0.0 for x in inter]
                if max(inside, default=0.0) >= 0.8:
                    found["partial"].append((key, d))
                    target[key, d] = (key, counted[int(np.argmax(inside))])
                    continue
            if best >= 0.1:
                found["localization"].append((key, d))
                target[key, d] = aim
            else:
                found["background"].append((key, d))
    fixer = {}
    for error in sorted(target, key=lambda e: (-score[e], e)):  # same block: ties in block order
        if target[error] not in taken:
            fixer.setdefault(target[error], error)

    def ap(fixed_blocks):
        results_per = [[[reference.evaluate_block(fixed_blocks[k, i], [0, 1e5 ** 2], max_det, [threshold])
                         if (k, i) in fixed_blocks else None for i in range(len(img_ids))]] for k in range(len(cat_ids))]
        precision = reference.accumulate(results_per, [threshold], np.linspace(0, 1, 101), [max_det])[0]
        cells = precision[0, :, :, 0, -1]
        return np.array([cells[:, k].mean() if (cells[:, k] > -1).all() else -1.0 for k in range(len(cat_ids))])

    plain = {key: b for key, (b, _, _) in subset_blocks.items()}
    base = ap(plain)
    valid = base > -1
    out = {}
    for name in classes:
        fixed_blocks = dict(plain)
        if name == "missed":
            for key, g in found["missed"]:
                b = fixed_blocks[key]
                ignore = b.gt_ignore.copy()
                ignore[g] = True
                fixed_blocks[key] = replace(b, gt_ignore=ignore)
        else:
            for key in {key for key, _ in found[name]}:
                b = fixed_blocks[key]
                keep = np.ones(len(b.dt_score), dtype=bool)
                ious = b.ious.copy()
                for error_key, d in found[name]:
                    if error_key != key:
                        continue
                    if fixer.get(target.get((key, d))) == (key, d):
                        ious[d] = 0.0
                        ious[d, target[key, d][1]] = 1.0
                    else:
                        keep[d] = False
                fixed_blocks[key] = replace(b, ious=ious[keep], dt_score=b.dt_score[keep], dt_area=b.dt_area[keep],
                                            dt_unmatched_ignored=b.dt_unmatched_ignored[keep])
        fixed = ap(fixed_blocks)
        fixed = np.where(fixed > -1, fixed, 0.0)
        out[name] = {"count": len(found[name]),
                     "dAP": float(fixed[valid].mean() - base[valid].mean()) if valid.any() else 0.0}
    return out


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
@pytest.mark.parametrize("threshold", [0.5, 0.75])
def test_ignore_mode_subsets_equal_the_reference_blocks(tmp_path, iou_type, threshold):
    rng = np.random.default_rng(11)
    bins = (MAX_IOU_BINS[0], MAX_IOU_BINS[3])
    for seed in range(6):
        workload = _workload(iou_type, 200 + seed)
        gt = workload["gt"]
        for ann in gt["annotations"]:
            ann["max_iou"] = float(rng.choice([0.2, 0.52, 0.6, 0.66, 0.78, 1.0]))
        path = tmp_path / f"gt{seed}.json"
        path.write_text(json.dumps(gt))
        report = evaluate_results(workload["results"], gt=path, iou_type=iou_type, mode="ignore",
                                  subsets=["moderate", "hard", *(b.name for b in bins)], errors=True,
                                  errors_iou=threshold)
        for row, subset in zip(report.rows(), (MODERATE, HARD, *bins)):
            _assert_close(row["errors"], _reference_ignore_mode(gt, workload["results"], iou_type, threshold, subset),
                          f"{iou_type} seed {seed} ignore {row['subset']}")
