"""`ochuman eval --errors`: the error classes in every output format, the figure, bad
thresholds; on the native sample, the "all" row equals the slow reference on the official val file."""
from __future__ import annotations

import csv
import io
import json

import pytest

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.eval.errors import ERROR_CLASSES, KEYPOINT_ERROR_CLASSES

from ..ochuman.eval.test_errors import _assert_close, _reference
from .test_eval_cmd import _jittered, _perfect, _rows, _run, _write


@pytest.fixture(scope="module")
def official_val() -> dict:
    """The official COCO-format val file rebuilt from the sample."""
    return ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")


@pytest.fixture(scope="module")
def files(official_val, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("errors")
    return {"perfect": _write(folder / "perfect.json", _perfect(official_val)),
            "jittered": _write(folder / "jittered.json", _jittered(official_val))}


@pytest.mark.parametrize("iou_type, classes", [("segm", ERROR_CLASSES), ("bbox", ERROR_CLASSES),
                                               ("keypoints", KEYPOINT_ERROR_CLASSES)])
def test_json_rows_gain_errors_per_class(files, official_val, iou_type, classes):
    rows = _rows("--results", str(files["jittered"]), "--iou-type", iou_type, "--errors")
    assert [row["subset"] for row in rows] == ["all", "moderate", "hard"]
    for row in rows:
        assert list(row["errors"]) == list(classes)
        assert all(set(v) == {"count", "dAP"} and isinstance(v["count"], int) and isinstance(v["dAP"], float)
                   and v["dAP"] >= 0 for v in row["errors"].values())
    _assert_close(rows[0]["errors"], _reference(official_val, json.loads(files["jittered"].read_text()), iou_type, 0.5),
                  f"sample {iou_type}")


def test_no_errors_key_unless_asked(files):
    assert all("errors" not in row for row in _rows("--results", str(files["jittered"])))


def test_out_file_bins_and_threshold(files, tmp_path):
    out = tmp_path / "report.json"
    result = _run("--results", str(files["jittered"]), "--errors", "--errors-iou", "0.75", "--by-max-iou",
                  "--out", str(out), "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["errors_iou"] == 0.75
    assert len(report["ap_by_max_iou"]) == 10 and all(list(r["errors"]) == list(ERROR_CLASSES)
                                                      for r in report["ap_by_max_iou"])
    printed = json.loads(result.stdout)
    assert [row.pop("protocol") for row in printed] == report["protocols"]  # each printed row has its card
    assert report["rows"] == printed


def test_errors_iou_alone_implies_errors(files):
    rows = _rows("--results", str(files["jittered"]), "--errors-iou", "0.75")
    assert all(list(row["errors"]) == list(ERROR_CLASSES) for row in rows)
    assert rows[0]["errors"] != _rows("--results", str(files["jittered"]), "--errors")[0]["errors"]


def test_table_and_csv_show_the_classes_compactly(files):
    result = _run("--results", str(files["jittered"]), "--errors")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "Errors at IoU 0.5: count dAP" in text and "{" not in text
    head = next(line for line in text.splitlines()[text.splitlines().index("Errors at IoU 0.5: count dAP") + 1:])
    assert all(name in head for name in ERROR_CLASSES)
    rows = _rows("--results", str(files["jittered"]), "--errors")
    result = _run("--results", str(files["jittered"]), "--errors", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert "errors" not in table[0]
    for line, row in zip(table, rows):
        for name in ERROR_CLASSES:
            assert int(line[f"{name}_count"]) == row["errors"][name]["count"]
            assert float(line[f"{name}_dAP"]) == row["errors"][name]["dAP"]


def test_errors_plot_by_max_iou_bin(files, tmp_path):
    figure = tmp_path / "errors.png"
    result = _run("--results", str(files["jittered"]), "--results", str(files["perfect"]), "--by-max-iou",
                  "--errors-plot", str(figure))
    assert result.exit_code == 0, result.stderr
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Errors at IoU 0.5" in result.stdout  # the plot implies --errors


@pytest.mark.parametrize("value", ["0", "1.5", "nan"])
def test_errors_iou_outside_zero_one_is_one_line(files, value):
    result = _run("--results", str(files["jittered"]), "--errors", "--errors-iou", value)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "errors IoU threshold" in result.stderr
