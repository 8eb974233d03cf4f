"""Malformed results files: every one gives a one-line ``Error: <file>: <record>: <problem>``, exit 1.

The corpus lives in ``tests/data/bad_results``; ``expected.json`` maps each file name to
``{"fragment": ..., "args": [...]}``: a fragment of its message that names both the record and
the problem, and the extra ``ochuman eval`` arguments it needs (``--iou-type keypoints`` ...).
Every file is scored against the native sample shipped with the package (val: image ids
1..10, 16 persons).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.one_line_errors import RUNNER_KWARGS, assert_one_line_error

from cli.ochuman_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS

BAD = Path(__file__).resolve().parents[1] / "data" / "bad_results"
EXPECTED = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in BAD.iterdir() if p.is_file() and p.name != "expected.json")



def _eval(results: Path, *args: str):
    result = CliRunner(**RUNNER_KWARGS).invoke(
        main, ["eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(results), *args])
    return result, result.stdout, result.stderr



def test_every_file_has_an_expectation_and_vice_versa():
    assert len(FILES) >= 28
    assert sorted(EXPECTED) == FILES
    for name, expected in EXPECTED.items():
        assert set(expected) <= {"fragment", "args"}, name
        assert isinstance(expected["fragment"], str) and expected["fragment"].strip(), name
        assert all(isinstance(a, str) for a in expected.get("args", [])), name


def test_record_problems_name_the_record():
    # everything past the file-level problems (not JSON, empty, wrong top level) is per record
    file_level = {n for n, e in EXPECTED.items()
                  if e["fragment"].startswith(("line ", "empty file", "top level"))}
    assert len(file_level) == 8
    for name in set(EXPECTED) - file_level:
        assert EXPECTED[name]["fragment"].startswith("record "), name


@pytest.mark.parametrize("name", FILES)
def test_eval_fails_in_one_line(name):
    path, expected = BAD / name, EXPECTED[name]
    result, stdout, stderr = _eval(path, *expected.get("args", []))
    assert_one_line_error(result, stdout, stderr, path, expected["fragment"])


@pytest.mark.parametrize("name", ["bbox_nan.json", "unknown_image_id.json", "score_nan.json"])
def test_same_message_in_every_output_format(name, tmp_path):
    # nothing is printed or written before the error, whatever the outputs asked for
    path, expected = BAD / name, EXPECTED[name]
    out = tmp_path / "report.json"
    for fmt in ("json", "csv", "markdown"):
        result, stdout, stderr = _eval(path, *expected.get("args", []), "--format", fmt, "--out", str(out))
        assert_one_line_error(result, stdout, stderr, path, expected["fragment"])
    assert not out.exists()


def test_the_bad_file_of_a_leaderboard_is_the_one_named(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.5,
                                 "bbox": [150, 12, 240, 283]}]))
    bad = BAD / "missing_score.json"
    result = CliRunner(**RUNNER_KWARGS).invoke(main, [
        "eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(good), "--results", str(bad)])
    assert_one_line_error(result, result.stdout, result.stderr, bad, EXPECTED[bad.name]["fragment"])
    assert str(good) not in result.stderr


def test_missing_results_file_is_one_line(tmp_path):
    path = tmp_path / "nowhere.json"
    result, stdout, stderr = _eval(path)
    assert_one_line_error(result, stdout, stderr, path, "cannot read")


def test_ground_truth_problems_come_before_results_problems(tmp_path):
    # the first results file is read in a thread while the ground truth loads: its error
    # must still wait for the ground truth's
    bad_gt = tmp_path / "gt.json"
    bad_gt.write_text('{"images": []')
    result = CliRunner(**RUNNER_KWARGS).invoke(main, ["eval", "--gt", str(bad_gt), "--results",
                                                      str(tmp_path / "nowhere.json")])
    assert_one_line_error(result, result.stdout, result.stderr, bad_gt, "")
    assert "nowhere" not in result.stderr


def test_json_nested_too_deeply(tmp_path):
    # made here rather than stored: how deep is too deep depends on the Python version
    path = tmp_path / "deep.json"
    depth = 100_000
    path.write_text("[" * depth + "]" * depth)
    result, stdout, stderr = _eval(path)
    assert_one_line_error(result, stdout, stderr, path, "not valid JSON")


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_empty_list_gives_zeros_and_a_warning(iou_type, tmp_path):
    path = tmp_path / "empty_list.json"
    path.write_text("[]\n")
    result, stdout, stderr = _eval(path, "--iou-type", iou_type, "--format", "json")
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exception
    assert result.exit_code == 0, stderr
    assert "Traceback" not in stdout + stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("Warning: ") and f"{path}: " in lines[0] and "empty results list" in lines[0]
    rows = json.loads(stdout)
    assert [row["subset"] for row in rows] == ["all", "moderate", "hard"]
    for row in rows:  # every subset of the sample's val split has persons: AP is 0, not -1
        assert row["AP"] == 0.0 and row["AP50"] == 0.0 and row["AP75"] == 0.0, row
        assert row["APl"] == 0.0, row
        recalls = [k for k in row if k.startswith("AR") and not k.endswith(("s", "m"))]
        assert recalls and all(row[k] == 0.0 for k in recalls), row


def _ochuman_command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = Path(sys.executable).parent / ("ochuman.exe" if os.name == "nt" else "ochuman")
    found = str(script) if script.exists() else shutil.which("ochuman")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from cli.ochuman_cmd import main; sys.exit(main())"]


@pytest.mark.parametrize("name", ["score_nan.json", "rle_counts_truncated.json", "polygon_nan.json",
                                  "keypoints_48.json"])
def test_no_traceback_in_a_real_process(name, tmp_path):
    path, expected = BAD / name, EXPECTED[name]
    proc = subprocess.run(
        [*_ochuman_command(), "eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(path),
         *expected.get("args", [])],
        capture_output=True, text=True, encoding="utf-8", cwd=tmp_path, timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Error: {path}: ") and expected["fragment"] in lines[0]
