"""``ochuman eval`` on a COCO file with one value of another type or an odd number ("0", null,
booleans, 0.5, -1, 256, NaN, 2 ** 70, lists, objects) in a field pycocotools reads: the
numbers pycocotools gives, or one ``Error:`` line and exit 1 (the command takes only what its
format allows; pycocotools reads the rest by Python's rules)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.ochuman_cmd import main
from tests.cli.one_line_errors import RUNNER_KWARGS
from tests.cli.test_eval_cmd import STATS, _pycocotools_stats, _stats
from tests.cli.test_out_of_range_values import _assert_evaluated_or_one_line_error
from tests.ochuman.test_compat_odd_values import odd_value_scenes


@pytest.mark.differential
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pycocotools' own, on inf - inf
@pytest.mark.filterwarnings("ignore::ochuman.errors.OCHumanWarning")
@settings(max_examples=150, deadline=None, derandomize=True, database=None)  # (~40 compared)
@given(scene=odd_value_scenes(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]))
def test_an_odd_value_gives_pycocotools_numbers_or_one_line(scene, iou_type, tmp_path_factory):
    gt, results = scene
    folder = tmp_path_factory.mktemp("odd")
    gt_file, results_file = folder / "gt.json", folder / "results.json"
    gt_file.write_text(json.dumps(gt))
    results_file.write_text(json.dumps(results))
    result = CliRunner(**RUNNER_KWARGS).invoke(main, [
        "eval", "--gt", str(gt_file), "--results", str(results_file), "--iou-type", iou_type, "--subset", "all",
        "--format", "json"])
    _assert_evaluated_or_one_line_error(result)
    if result.exit_code != 0:
        return
    try:
        expected = _pycocotools_stats(gt_file, results_file, iou_type)
    except Exception:  # noqa: BLE001 - pycocotools raises on the value: the command's numbers stand alone
        return
    ours = np.array(_stats(json.loads(result.stdout)[0], iou_type))
    assert len(ours) == len(STATS[iou_type]) == len(expected)
    assert all(math.isclose(a, b, abs_tol=1e-12) or (math.isnan(a) and math.isnan(b)) for a, b in zip(ours, expected)), \
        (ours, expected)


@pytest.mark.parametrize("value", [0, 0.0, -0.0, 0.5, -0.5, 1e-320, -1, 17, None])
def test_num_keypoints_ignores_a_person_where_pycocotools_does(value, tmp_path):
    """pycocotools ignores a person whose num_keypoints == 0 (0.5 or -1 count; null: the
    command counts the labelled joints, as for a file without the field)."""
    from tests.ochuman.test_compat_odd_values import _scene

    gt, results = _scene()
    gt["annotations"][0]["num_keypoints"] = value
    gt_file, results_file = tmp_path / "gt.json", tmp_path / "results.json"
    gt_file.write_text(json.dumps(gt))
    results_file.write_text(json.dumps(results))
    result = CliRunner(**RUNNER_KWARGS).invoke(main, [
        "eval", "--gt", str(gt_file), "--results", str(results_file), "--iou-type", "keypoints", "--subset", "all",
        "--format", "json"])
    assert result.exit_code == 0, result.stderr
    ours = json.loads(result.stdout)[0]["AP"]
    if value is None:
        assert ours > 0
        return
    assert ours == pytest.approx(_pycocotools_stats(gt_file, results_file, "keypoints")[0], abs=1e-12)
    assert ours == -1.0 if value == 0 else ours > 0


_FLOAT_FIELDS = [("annotations", "id"), ("annotations", "image_id"), ("annotations", "category_id"),
                 ("annotations", "iscrowd"), ("images", "id"), ("images", "width"), ("images", "height"),
                 ("categories", "id"), ("results", "image_id"), ("results", "category_id")]


@pytest.mark.parametrize("iou_type", ["bbox", "segm", "keypoints"])
@pytest.mark.parametrize("part, field", _FLOAT_FIELDS)
def test_ids_and_sizes_written_as_floats(part, field, iou_type, tmp_path):
    """pandas writes ints as 1.0; pycocotools' dicts read 1.0 as 1: the same numbers as the ints
    give (and as pycocotools gives); 1.5 is no integer, or (image ids, a result's ids, which may
    be any key) names no image or category: one line naming the record."""
    from tests.ochuman.test_compat_odd_values import _scene

    gt, results = _scene()
    record = results[0] if part == "results" else gt[part][0]
    gt_file, results_file = tmp_path / "gt.json", tmp_path / "results.json"

    def evaluate(value):
        record[field] = value
        gt_file.write_text(json.dumps(gt))
        results_file.write_text(json.dumps(results))
        return CliRunner(**RUNNER_KWARGS).invoke(main, [
            "eval", "--gt", str(gt_file), "--results", str(results_file), "--iou-type", iou_type, "--subset", "all",
            "--format", "json"])

    written = record[field]
    as_int = evaluate(written)
    as_float = evaluate(float(written))
    assert as_float.exit_code == 0, as_float.stderr
    assert _stats(json.loads(as_float.stdout)[0], iou_type) == _stats(json.loads(as_int.stdout)[0], iou_type)
    expected = _pycocotools_stats(gt_file, results_file, iou_type)
    np.testing.assert_allclose(_stats(json.loads(as_float.stdout)[0], iou_type), expected, rtol=0, atol=1e-12)
    refused = evaluate(written + 0.5)
    _assert_evaluated_or_one_line_error(refused)
    assert refused.exit_code == 1
    assert "is no integer" in refused.stderr or "image_id" in field and "unknown image_id" in refused.stderr or \
        part == "images" and field == "id" and "unknown image_id" in refused.stderr or \
        part == "results" and "unknown category_id" in refused.stderr, refused.stderr
