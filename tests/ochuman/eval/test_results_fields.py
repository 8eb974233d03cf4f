"""Results and ground truth beyond the detector's usual shape, against pycocotools: polygon
masks in results files (segm), keypoint counts other than 17 (with ``kpt_sigmas``),
annotations of categories the file does not list."""
from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from ochuman.errors import OCHumanWarning
from ochuman.eval.run import evaluate_results

from ..workloads import run_pycocotools

FEW = settings(max_examples=8, deadline=None, database=None, derandomize=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _ours(gt_path, results, iou_type: str, **options) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        report = evaluate_results(results, gt=gt_path, iou_type=iou_type, subsets=["all"], **options)
    row = report.rows()[0]
    return np.array([row[k] for k in report.stat_names])


def _polygon_results(gt: dict, seed: int, with_bbox: bool) -> list:
    """Detections whose masks are polygons: the ground truth's moved by a few pixels (some split
    in two, some far off), scores drawn; bboxes the polygons' extent when ``with_bbox``."""
    rnd = random.Random(seed)
    results = []
    for a in gt["annotations"]:
        if not isinstance(a["segmentation"], list) or rnd.random() < 0.2:
            continue
        dx, dy = rnd.uniform(-8, 8), rnd.uniform(-8, 8)
        polygons = [[v + (dx if k % 2 == 0 else dy) + rnd.uniform(-2, 2) for k, v in enumerate(p)]
                    for p in a["segmentation"]]
        if rnd.random() < 0.3:
            polygons.append([10, 10, 30.5, 12, 20, 40.25])
        record = {"image_id": a["image_id"], "category_id": a["category_id"], "score": rnd.random(),
                  "segmentation": polygons}
        if with_bbox:
            xs = [v for p in polygons for v in p[0::2]]
            ys = [v for p in polygons for v in p[1::2]]
            record["bbox"] = [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        results.append(record)
    return results


@pytest.mark.differential
@FEW
@given(seed=st.integers(0, 2 ** 16))
def test_polygon_results_are_scored_as_pycocotools(coco_sample, tmp_path, seed):
    """segm evaluation of polygon results equals pycocotools loadRes + COCOeval (it rasterises
    each record's polygons at its image's size, annToRLE); bbox evaluation of the same file too."""
    gt = json.loads(coco_sample.read_text())
    results = _polygon_results(gt, seed, with_bbox=True)
    path = tmp_path / "polygons.json"
    path.write_text(json.dumps(results))
    for iou_type in ("segm", "bbox"):
        oracle = run_pycocotools(gt, json.loads(path.read_text()), iou_type)[0]
        assert np.abs(_ours(coco_sample, str(path), iou_type) - oracle).max() < 1e-12, iou_type


def test_polygon_results_without_bbox_take_the_masks_area_and_box(coco_sample, tmp_path):
    """Without a bbox pycocotools' loadRes fails on polygons (maskUtils.area takes RLEs only);
    ours scores them as it scores RLE masks: area and box of the rasterised mask."""
    gt = json.loads(coco_sample.read_text())
    polygons = _polygon_results(gt, 3, with_bbox=False)
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    as_rle = []
    for r in polygons:
        rle = mask_utils.merge(mask_utils.frPyObjects(r["segmentation"], *sizes[r["image_id"]]))
        as_rle.append(dict(r, segmentation={"size": rle["size"], "counts": rle["counts"].decode()}))
    path = tmp_path / "polygons.json"
    path.write_text(json.dumps(polygons))
    for iou_type in ("segm", "bbox"):
        assert _ours(coco_sample, str(path), iou_type).tolist() == run_pycocotools(gt, as_rle, iou_type)[0].tolist()


def _with_unlisted_category(gt: dict) -> dict:
    """``gt`` plus a copy of every third annotation under category 99, which it does not list
    (moved a little, so that they would match detections if they were evaluated)."""
    extra = [dict(a, id=10_000 + k, category_id=99, bbox=[a["bbox"][0] + 3, *a["bbox"][1:]])
             for k, a in enumerate(gt["annotations"][::3])]
    return dict(gt, annotations=gt["annotations"] + extra)


def _detections(gt: dict, seed: int) -> list:
    rnd = random.Random(seed)
    return [{"image_id": a["image_id"], "category_id": 1, "score": rnd.random(),
             "bbox": [v + rnd.uniform(-4, 4) for v in a["bbox"]]} for a in gt["annotations"]]


@pytest.mark.differential
@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
def test_annotations_of_unlisted_categories_are_left_out_as_pycocotools(coco_sample, tmp_path, iou_type):
    """pycocotools loads annotations whose category the file does not list, and COCOeval never
    evaluates them (its catIds are getCatIds()'s); ours leaves them out with a warning naming
    the file and the count."""
    gt = _with_unlisted_category(json.loads(coco_sample.read_text()))
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    results = _detections(gt, 1)
    if iou_type == "keypoints":
        results = [dict(r, keypoints=a["keypoints"]) for r, a in zip(results, gt["annotations"])]
    oracle = run_pycocotools(gt, json.loads(json.dumps(results)), iou_type)[0]
    with pytest.warns(OCHumanWarning, match=r"gt\.json: 5 annotations of categories the file does not list "
                                            r"\(category_id 99\) are left out"):
        report = evaluate_results(results, gt=path, iou_type=iou_type, subsets=["all"])
    row = report.rows()[0]
    assert np.abs(np.array([row[k] for k in report.stat_names]) - oracle).max() < 1e-12


def test_cli_warns_about_unlisted_categories(coco_sample, tmp_path):
    from click.testing import CliRunner

    from cli.ochuman_cmd import main

    gt = _with_unlisted_category(json.loads(coco_sample.read_text()))
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(_detections(gt, 2)))
    outcome = CliRunner().invoke(main, ["eval", "--gt", str(tmp_path / "gt.json"), "--results",
                                        str(tmp_path / "res.json"), "--iou-type", "bbox", "--format", "json"])
    assert outcome.exit_code == 0, outcome.output
    assert "annotations of categories the file does not list (category_id 99)" in outcome.output


def _k_joint_file(gt: dict, k: int) -> dict:
    """``gt`` with K joints per person: COCO's first K (K <= 17) or COCO's 17 and copies of the
    first joints moved by 5 px (K > 17); the category lists K names."""
    def joints(values: list) -> list:
        points = [values[3 * j:3 * j + 3] for j in range(17)]
        points = points[:k] + [[x + 5, y + 5, v] for x, y, v in points[:max(k - 17, 0)]]
        return [v for p in points for v in p]
    categories = [dict(c, keypoints=[f"joint{j}" for j in range(k)]) for c in gt["categories"]]
    annotations = [dict(a, keypoints=joints(a["keypoints"]),
                        num_keypoints=sum(1 for v in joints(a["keypoints"])[2::3] if v > 0)) for a in gt["annotations"]]
    return dict(gt, categories=categories, annotations=annotations)


def _keypoint_results(gt: dict, seed: int) -> list:
    rnd = random.Random(seed)
    out = []
    for a in gt["annotations"]:
        values = a["keypoints"]
        moved = [v + rnd.gauss(0, 6) if j % 3 < 2 else rnd.random() for j, v in enumerate(values)]
        out.append({"image_id": a["image_id"], "category_id": a["category_id"], "score": rnd.random(),
                    "bbox": a["bbox"], "keypoints": moved})
    return out


@pytest.mark.differential
@FEW
@given(k=st.sampled_from([1, 5, 16, 19, 24]), seed=st.integers(0, 2 ** 16))
def test_other_keypoint_counts_are_scored_as_pycocotools_with_their_sigmas(coco_sample, tmp_path, k, seed):
    """A file whose persons have K != 17 joints: keypoints evaluation with K sigmas equals
    pycocotools with ``params.kpt_oks_sigmas`` set to them; bbox needs no sigmas."""
    gt = _k_joint_file(json.loads(coco_sample.read_text()), k)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    sigmas = [round(random.Random(seed).uniform(0.02, 0.12), 3) for _ in range(k)]
    results = _keypoint_results(gt, seed)
    oracle = run_pycocotools(gt, json.loads(json.dumps(results)), "keypoints", {"kpt_oks_sigmas": np.array(sigmas)})[0]
    assert np.abs(_ours(path, results, "keypoints", kpt_sigmas=sigmas) - oracle).max() < 1e-12
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    assert np.abs(_ours(path, str(results_file), "keypoints", kpt_sigmas=sigmas) - oracle).max() < 1e-12
    oracle = run_pycocotools(gt, json.loads(json.dumps(results)), "bbox")[0]
    assert np.abs(_ours(path, results, "bbox") - oracle).max() < 1e-12


def test_other_keypoint_counts_need_as_many_sigmas(coco_sample, tmp_path):
    from ochuman.errors import OCHumanError

    gt = _k_joint_file(json.loads(coco_sample.read_text()), 5)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    results = _keypoint_results(gt, 0)
    with pytest.raises(OCHumanError, match=r"gt\.json: its keypoints have 5 joints, but COCO's OKS sigmas are for 17: "
                                           r"pass --kpt-sigmas with 5 values$"):
        _ours(path, results, "keypoints")
    with pytest.raises(OCHumanError, match=r"gt\.json: its keypoints have 5 joints, but 4 OKS sigmas were given"):
        _ours(path, results, "keypoints", kpt_sigmas=[0.1] * 4)
    bad = [dict(r, keypoints=r["keypoints"] + [1, 1, 1]) for r in results]
    with pytest.raises(Exception, match=r"record 0 \(image_id \d+\): keypoints: expected 15 numbers, got 18"):
        _ours(path, bad, "keypoints", kpt_sigmas=[0.1] * 5)


def test_cli_kpt_sigmas_as_a_list_and_as_a_file(coco_sample, tmp_path):
    from click.testing import CliRunner

    from cli.ochuman_cmd import main

    gt = _k_joint_file(json.loads(coco_sample.read_text()), 3)
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(_keypoint_results(gt, 4)))
    (tmp_path / "sigmas.json").write_text("[0.026, 0.025, 0.025]")
    base = ["eval", "--gt", str(tmp_path / "gt.json"), "--results", str(tmp_path / "res.json"),
            "--iou-type", "keypoints", "--format", "json"]
    as_list = CliRunner().invoke(main, base + ["--kpt-sigmas", "0.026,0.025,0.025"])
    as_file = CliRunner().invoke(main, base + ["--kpt-sigmas", str(tmp_path / "sigmas.json")])
    assert as_list.exit_code == 0 and as_file.exit_code == 0, (as_list.output, as_file.output)
    assert as_list.stdout == as_file.stdout
    refused = CliRunner().invoke(main, base)
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"Error: {tmp_path / 'gt.json'}: its keypoints have 3 joints, but COCO's OKS sigmas are for 17: "
        "pass --kpt-sigmas with 3 values"]
    missing = CliRunner().invoke(main, base + ["--kpt-sigmas", str(tmp_path / "nope.txt")])
    assert missing.exit_code == 1 and "nope.txt: cannot read OKS sigmas" in missing.output


@settings(max_examples=60, deadline=None, database=None, derandomize=True)
@given(seed=st.integers(0, 2 ** 32 - 1), empty=st.booleans())
def test_mask_boxes_from_the_compiled_core_are_pycocotools_boxes(seed, empty):
    """Where a derived mask box is not used for an IoU (segm, keypoints) it comes from the
    compiled core's pixel box: pycocotools' toBbox for every mask its encoder writes (runs that
    span columns, single pixels, empty masks, masks touching the image's edges)."""
    from ochuman.eval.results import _derived_area_and_box
    from ochuman.rle import MaskTable

    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    masks = []
    for _ in range(12):
        mask = rng.random((h, w)) < rng.choice([0.0, 0.02, 0.3, 0.9, 1.0])
        if empty:
            mask[:] = False
        masks.append(mask_utils.encode(np.asfortranarray(mask.astype(np.uint8))))
    table = MaskTable.from_strings([m["counts"] for m in masks], np.array([[h, w]] * len(masks)))
    no_box, given = np.zeros((len(masks), 4)), np.zeros(len(masks), dtype=bool)
    area, boxes = _derived_area_and_box(False, True, no_box, table, None, given, exact_boxes=False)
    np.testing.assert_array_equal(boxes, mask_utils.toBbox(masks))
    np.testing.assert_array_equal(area, mask_utils.area(masks))


@pytest.mark.parametrize("scanned", [True, False])
def test_keypoint_boxes_beyond_float64_are_inf_without_a_numpy_warning(scanned):
    """A keypoints-only record whose joints span more than float64 holds: its derived box and
    area are pycocotools' (inf, and nan where inf - inf), and reading it warns nothing."""
    from ochuman.eval.results import detections_from_bytes, detections_from_records, parse_results

    joints = [-1e308, 1.0, 2, 1e308, 1e308, 2] + [5.0, 5.0, 2] * 15
    records = [{"image_id": 1, "category_id": 1, "score": 0.5, "keypoints": joints}]
    data = json.dumps(records).encode()
    args = (np.array([1]), np.array([[100, 100]]), None, "keypoints", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        detections = (detections_from_bytes(data, "r.json", *args) if scanned
                      else detections_from_records(parse_results(records, "r.json"), "r.json", *args))
        with np.errstate(all="ignore"):
            x, y = np.array(joints[0::3]), np.array(joints[1::3])
            area = (x.max() - x.min()) * (y.max() - y.min())  # pycocotools' loadRes
    assert np.isinf(detections.area[0]) and detections.area[0] == area
    assert detections.bbox[0].tolist() == [-1e308, 1.0, float("inf"), 1e308 - 1.0]

