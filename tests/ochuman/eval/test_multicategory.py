"""``ochuman eval --gt`` on COCO files of several categories (issue 16), against pycocotools.

- the row over the categories is pycocotools with ``useCats=1`` on the file as it is; a chosen
  category (``category=``) and each per-category row are pycocotools with ``params.catIds``
  set to that category;
- MaxIoU is the paper's definition within a category: an object's largest box IoU (inclusive
  pixel corners) with another non-crowd object of its category in its image; the oracle
  computes it here from the file's boxes, pair by pair;
- an official-mode subset is pycocotools on its range file: the objects (every category) of
  the range, the crowd regions of the images kept, the images holding such an object, and the
  detections on those images.
"""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from pycocotools import mask as mask_utils

from cli.ochuman_cmd import main
from ochuman.errors import OCHumanError, OCHumanWarning
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.run import evaluate_results
from ochuman.subsets import HARD, MODERATE, MaxIoURange

from ..workloads import coco_workloads, describe, run_pycocotools

ORACLE_SETTINGS = dict(deadline=None, derandomize=True, database=None, print_blob=True,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _rle(x, y, w, h, height=60, width=80):
    bitmap = np.zeros((height, width), np.uint8)
    bitmap[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    rle["counts"] = rle["counts"].decode()
    return rle


def _object(ann_id, image_id, category_id, box, iscrowd=0):
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": iscrowd, "bbox": list(box),
            "area": box[2] * box[3], "segmentation": _rle(*box)}


def _oracle_max_iou(gt: dict) -> dict:
    """{annotation id: MaxIoU} of every non-crowd object, by the paper's definition within a
    category: largest IoU of its box (corners x, x + w taken as inclusive pixel ranges) with
    another non-crowd object's box of the same image and category; 0.0 alone."""
    objects = [a for a in gt["annotations"] if not a["iscrowd"]]
    result = {}
    for a in objects:
        best = 0.0
        x1, y1, x2, y2 = a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]
        for b in objects:
            if b is a or b["image_id"] != a["image_id"] or b["category_id"] != a["category_id"]:
                continue
            u1, v1, u2, v2 = b["bbox"][0], b["bbox"][1], b["bbox"][0] + b["bbox"][2], b["bbox"][1] + b["bbox"][3]
            iw = max(0.0, min(x2, u2) - max(x1, u1) + 1)
            ih = max(0.0, min(y2, v2) - max(y1, v1) + 1)
            inter = iw * ih
            union = (x2 - x1 + 1) * (y2 - y1 + 1) + (u2 - u1 + 1) * (v2 - v1 + 1) - inter
            best = max(best, inter / union if union > 0 else 0.0)
        result[a["id"]] = best
    return result


def _range_file(gt: dict, results: list, rng: MaxIoURange) -> tuple[dict, list]:
    """The range file of ``rng`` (official rule) and the results on its images."""
    max_iou = _oracle_max_iou(gt)
    kept = [a for a in gt["annotations"]
            if not a["iscrowd"] and rng.contains(np.array([max_iou[a["id"]]]), "official")[0]]
    images = {a["image_id"] for a in kept}
    kept += [a for a in gt["annotations"] if a["iscrowd"] and a["image_id"] in images]
    range_file = dict(gt, images=[im for im in gt["images"] if im["id"] in images], annotations=kept)
    return range_file, [r for r in results if r["image_id"] in images]


def _stats(row: dict, names) -> np.ndarray:
    return np.array([row[k] for k in names])


def _check_multicategory(workload: dict, folder) -> None:
    gt, results, iou_type = workload["gt"], workload["results"], workload["iou_type"]
    gt_path = folder / "gt.json"
    gt_path.write_text(json.dumps(gt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        report = evaluate_results(copy.deepcopy(results), gt=gt_path, iou_type=iou_type,
                                  subsets=["all", "moderate", "hard"], per_category=True)
    ground = resolve_ground_truth(gt=gt_path, masks=False)
    expected = _oracle_max_iou(gt)
    objects = ~ground.annotations.iscrowd
    ours = dict(zip(ground.annotations.ann_id[objects].tolist(), ground.max_iou[objects].tolist()))
    assert ours.keys() == expected.keys() and all(abs(ours[k] - expected[k]) < 1e-12 for k in ours), describe(workload)
    names = {str(c["name"]): c["id"] for c in gt["categories"]}
    for row in report.rows():
        subset, category = row["subset"], row["category"]
        source, scored = (gt, results) if subset == "all" else _range_file(
            gt, results, {"moderate": MODERATE, "hard": HARD}[subset])
        overrides = None if category == "all" or len(names) == 1 else {"catIds": [names[category]]}
        oracle = run_pycocotools(source, scored, iou_type, overrides)[0]
        diff = np.abs(_stats(row, report.stat_names) - oracle)
        assert (diff < 1e-12).all(), (f"{describe(workload)}; {subset} {category}\n"
                                      f" ours {_stats(row, report.stat_names)}\n pycocotools {oracle}")


@pytest.mark.differential
@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_multicategory_files_equal_pycocotools_per_category_and_on_range_files(iou_type, tmp_path):
    seen = []

    @settings(max_examples=40, **ORACLE_SETTINGS)
    @given(workload=coco_workloads(iou_type, max_images=6, occluded=True))
    def check(workload):
        seen.append(len(workload["gt"]["categories"]))
        _check_multicategory(workload, tmp_path)

    check()
    assert max(seen) > 1  # several categories were drawn


# --------------------------------------------------------------------------------------------
# named cases

def _two_category_file(tmp_path):
    """Image 1: persons 1 and 2 (box IoU 0.6 between them) and a dog (3) lying on person 1
    (IoU 0.9 with it); image 2: only dogs (4, 5), far apart."""
    annotations = [_object(1, 1, 1, (2, 2, 20, 30)), _object(2, 1, 1, (7, 2, 20, 30)),
                   _object(3, 1, 2, (3, 3, 19, 29)), _object(4, 2, 2, (5, 5, 20, 20)),
                   _object(5, 2, 2, (40, 30, 20, 20))]
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": 60, "width": 80},
                     {"id": 2, "file_name": "b.jpg", "height": 60, "width": 80}],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return gt, path


def test_max_iou_ignores_overlapping_objects_of_another_category(tmp_path):
    gt, path = _two_category_file(tmp_path)
    ground = resolve_ground_truth(gt=path, masks=False)
    max_iou = dict(zip(ground.annotations.ann_id.tolist(), ground.max_iou.tolist()))
    expected = _oracle_max_iou(gt)
    assert max_iou == pytest.approx(expected, abs=1e-12)
    assert 0.5 <= max_iou[1] < 0.75 and max_iou[1] == max_iou[2]  # the persons see each other only
    assert max_iou[3] == 0.0  # the dog on person 1 is alone in its category
    assert ground.max_iou_source == "box"
    # Moderate holds both persons; Hard nobody (the dog's overlap with person 1 is not counted)
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
               {"image_id": 1, "category_id": 2, "score": 0.8, "bbox": [3, 3, 19, 29]}]
    rows = evaluate_results(results, gt=path, iou_type="bbox", category="person").rows()
    by_subset = {row["subset"]: row for row in rows}
    assert [row["category"] for row in rows] == ["person"] * 3
    assert by_subset["hard"]["AP"] == -1.0
    range_file, scored = _range_file(gt, results, MODERATE)
    assert {a["id"] for a in range_file["annotations"]} == {1, 2}
    oracle = run_pycocotools(range_file, scored, "bbox", {"catIds": [1]})[0]
    assert _stats(by_subset["moderate"], ("AP", "AR100")) == pytest.approx(oracle[[0, 8]], abs=1e-12)


def test_an_image_with_only_another_categorys_objects(tmp_path):
    """Image 2 holds dogs only: a person detection there is a false positive of the person
    category (pycocotools with catIds=[1] evaluates every image), the dogs found there count."""
    gt, path = _two_category_file(tmp_path)
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
               {"image_id": 2, "category_id": 1, "score": 0.95, "bbox": [5, 5, 20, 20]},
               {"image_id": 2, "category_id": 2, "score": 0.7, "bbox": [5, 5, 20, 20]},
               {"image_id": 1, "category_id": 2, "score": 0.6, "bbox": [3, 3, 19, 29]}]
    rows = evaluate_results(results, gt=path, iou_type="bbox", subsets=["all"], per_category=True).rows()
    assert [row["category"] for row in rows] == ["all", "person", "dog"]
    for row, overrides in zip(rows, (None, {"catIds": [1]}, {"catIds": [2]})):
        oracle = run_pycocotools(gt, results, "bbox", overrides)[0]
        assert _stats(row, ("AP", "AP50", "AR1", "AR100")) == pytest.approx(oracle[[0, 1, 6, 8]], abs=1e-12)
    assert rows[1]["AP"] < 0.5  # the false positive on the dogs' image outranks the true one
    chosen = evaluate_results(results, gt=path, iou_type="bbox", subsets=["all"], category=2).rows()
    assert chosen[0]["category"] == "dog" and chosen[0]["AP"] == rows[2]["AP"]


def test_results_of_a_category_the_ground_truth_lacks_are_not_scored(tmp_path):
    """pycocotools' loadRes takes them and evaluate never looks at them: the same numbers as
    without them, and a warning naming the first."""
    gt, path = _two_category_file(tmp_path)
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
               {"image_id": 1, "category_id": 9, "score": 0.95, "bbox": [2, 2, 20, 30]},
               {"image_id": 2, "category_id": 2, "score": 0.7, "bbox": [5, 5, 20, 20]}]
    with pytest.warns(OCHumanWarning, match=r"record 1 \(image_id 1, category_id 9\) has a category the ground "
                                            r"truth does not list: not scored"):
        row = evaluate_results(results, gt=path, iou_type="bbox", subsets=["all"]).rows()[0]
    oracle = run_pycocotools(gt, results, "bbox")[0]
    assert _stats(row, ("AP", "AR100")) == pytest.approx(oracle[[0, 8]], abs=1e-12)
    assert oracle[0] == run_pycocotools(gt, [results[0], results[2]], "bbox")[0][0]


def test_a_category_the_ground_truth_lacks_is_refused(tmp_path):
    _, path = _two_category_file(tmp_path)
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]}]
    with pytest.raises(OCHumanError, match=r"category 'cat': not a category of the ground truth \(its categories: "
                                           r"1 \(person\), 2 \(dog\)\)"):
        evaluate_results(results, gt=path, iou_type="bbox", category="cat")


def test_cli_per_category_rows_and_by_max_iou(tmp_path):
    gt, path = _two_category_file(tmp_path)
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
                                   {"image_id": 2, "category_id": 2, "score": 0.7, "bbox": [5, 5, 20, 20]}]))
    result = CliRunner().invoke(main, ["eval", "--gt", str(path), "--results", str(results), "--iou-type", "bbox",
                                       "--per-category", "--by-max-iou", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(row["subset"], row["category"]) for row in rows] == [
        (subset, category) for subset in ("all", "moderate", "hard") for category in ("all", "person", "dog")]
    one = CliRunner().invoke(main, ["eval", "--gt", str(path), "--results", str(results), "--iou-type", "bbox",
                                    "--category", "dog", "--subset", "all", "--format", "json"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout)[0]["AP"] == rows[2]["AP"]
    by_id = CliRunner().invoke(main, ["eval", "--gt", str(path), "--results", str(results), "--iou-type", "bbox",
                                      "--category", "2", "--subset", "all", "--format", "json"])
    assert by_id.exit_code == 0, by_id.output
    assert json.loads(by_id.stdout) == json.loads(one.stdout)


def test_curves_average_the_categories_as_the_summary_does(tmp_path):
    """The plotted precision of a file of several categories is the mean over the categories
    with ground truth of pycocotools' precision (area all, maxDets 100), not one category's."""
    gt, path = _two_category_file(tmp_path)
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
               {"image_id": 1, "category_id": 1, "score": 0.7, "bbox": [30, 30, 10, 10]},
               {"image_id": 2, "category_id": 2, "score": 0.8, "bbox": [5, 5, 20, 20]},
               {"image_id": 2, "category_id": 2, "score": 0.95, "bbox": [60, 2, 10, 10]}]
    report = evaluate_results(results, gt=path, iou_type="bbox", subsets=["all"])
    recall_points, precision = report.curves()[(report.evaluations[0].name, "all")]
    oracle = run_pycocotools(gt, copy.deepcopy(results), "bbox")[1][:, :, :, 0, -1]  # (T, R, K)
    assert np.all(oracle > -1)
    assert precision == pytest.approx(oracle.mean(axis=2), abs=1e-12)
    assert not np.allclose(oracle[..., 0], oracle[..., 1])  # the categories differ: a real mean


def test_person_rows_name_their_category(tmp_path):
    gt, path = _two_category_file(tmp_path)
    results = [{"image_id": 1, "category_id": 2, "score": 0.9, "bbox": [3, 3, 19, 29]}]
    rows = evaluate_results(results, gt=path, iou_type="bbox", per_person=True).persons()
    assert {row["person_id"]: row["category_id"] for row in rows} == {a["id"]: a["category_id"] for a in gt["annotations"]}
    assert [row["matched_50"] for row in rows if row["person_id"] == 3] == [True]
