"""Any value anywhere: a small COCO ground truth or results file with one value replaced by one
out of range or of another type (ints beyond int64, huge floats, strings, null, lists, objects)
or one member left out is evaluated, or refused with one ``Error:`` line and exit 1, never a
traceback (``ochuman eval`` for every IoU type, ``ochuman stats`` for the ground truth)."""
from __future__ import annotations

import copy
import json

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.ochuman_cmd import main
from tests.cli.one_line_errors import RUNNER_KWARGS

GT = {
    "images": [{"id": 1, "width": 20, "height": 20, "file_name": "a.jpg"},
               {"id": 2, "width": 30, "height": 10, "file_name": "b.jpg"}],
    "annotations": [
        {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0,
         "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]], "keypoints": [1, 1, 2] * 17, "num_keypoints": 17},
        {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0,
         "segmentation": {"size": [10, 30], "counts": [11, 4, 285]}, "keypoints": [2, 2, 1] * 17, "num_keypoints": 17}],
    "categories": [{"id": 1, "name": "person"}]}
RESULTS = [
    {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 4], "score": 0.9, "keypoints": [1, 1, 1] * 17,
     "segmentation": {"size": [20, 20], "counts": "02000"}},
    {"image_id": 2, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.5, "keypoints": [2, 2, 1] * 17,
     "segmentation": {"size": [10, 30], "counts": "b0400"}}]
VALUES = [2 ** 70, -2 ** 70, 2 ** 63, -2 ** 63 - 1, 1e308, -1e308, 1e-320, -0.0, 0, -1, 1.5, 10 ** 6, "x", "", None,
          True, [], {}, [1, 2], [[1, 2, 3]], [5, 2 ** 70], [2 ** 64], [1e308] * 4, [-1, -1, 5, 5],
          {"size": [1, 1], "counts": "0"}, {"a": 1}]


def _paths(value, prefix=()):
    """Every member and list item (the first six of a list) below ``value``."""
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for k, item in enumerate(value[:6]):
            yield from _paths(item, prefix + (k,))


GT_PATHS, RESULT_PATHS = list(_paths(GT)), list(_paths(RESULTS))


def _changed(document, path, value):
    document = copy.deepcopy(document)
    at = document
    for key in path[:-1]:
        at = at[key]
    if value is _LEFT_OUT:
        del at[path[-1]]
    else:
        at[path[-1]] = copy.deepcopy(value)
    return document


_LEFT_OUT = object()


def _assert_evaluated_or_one_line_error(result) -> None:
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"uncaught {result.exc_info[0].__name__}: {result.exception}")
    text = result.stdout + result.stderr
    assert "Traceback" not in text
    if result.exit_code != 0:
        assert result.exit_code == 1 and result.stdout == "", text
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


@pytest.mark.differential
@pytest.mark.filterwarnings("ignore::ochuman.errors.OCHumanWarning")
@settings(max_examples=120, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(in_gt=st.booleans(), which=st.integers(0, 10 ** 6), value=st.sampled_from([*VALUES, _LEFT_OUT]),
       iou_type=st.sampled_from(["bbox", "segm", "keypoints"]), subset=st.sampled_from(["all", "levels"]))
def test_a_value_out_of_range_anywhere_is_evaluated_or_refused_in_one_line(tmp_path, in_gt, which, value, iou_type,
                                                                         subset):
    paths = GT_PATHS if in_gt else RESULT_PATHS
    path = paths[which % len(paths)]
    gt, results = (_changed(GT, path, value), RESULTS) if in_gt else (GT, _changed(RESULTS, path, value))
    gt_file, results_file = tmp_path / "gt.json", tmp_path / "results.json"
    gt_file.write_text(json.dumps(gt))
    results_file.write_text(json.dumps(results))
    runner = CliRunner(**RUNNER_KWARGS)
    _assert_evaluated_or_one_line_error(runner.invoke(main, [
        "eval", "--gt", str(gt_file), "--results", str(results_file), "--iou-type", iou_type, "--subset", subset,
        "--format", "csv"]))
    if in_gt:
        _assert_evaluated_or_one_line_error(runner.invoke(main, ["stats", str(gt_file), "--format", "json"]))


@pytest.mark.parametrize("coordinate", [1e308, -1e308, 2 ** 70, 1e30, -5e8])
@pytest.mark.parametrize("command", ["eval", "stats"])
def test_a_polygon_coordinate_pycocotools_cannot_draw_is_one_line(tmp_path, coordinate, command):
    """pycocotools draws a polygon at 5 times its scale as C ints: past +-429496729 its walk along
    the edge spans ~2^31 points and never finishes (both commands hung here before)."""
    gt = _changed(GT, ("annotations", 0, "segmentation", 0, 3), coordinate)
    gt_file, results_file = tmp_path / "gt.json", tmp_path / "results.json"
    gt_file.write_text(json.dumps(gt))
    results_file.write_text(json.dumps(RESULTS))
    arguments = (["eval", "--gt", str(gt_file), "--results", str(results_file), "--iou-type", "segm"]
                 if command == "eval" else ["stats", str(gt_file)])
    result = CliRunner(**RUNNER_KWARGS).invoke(main, arguments)
    _assert_evaluated_or_one_line_error(result)
    assert result.exit_code == 1 and "annotations[0] (id 1)" in result.stderr and "rasteriser" in result.stderr
