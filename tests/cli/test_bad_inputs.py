"""Malformed input files: every one gives a one-line ``Error: <file>: <record>: <problem>``, exit 1.

The corpus lives in ``tests/data/bad``; ``expected.json`` maps each file name to a fragment of
its message that names both the record and the problem.
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

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
EXPECTED = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in BAD.iterdir() if p.is_file() and p.name != "expected.json")



def _invoke(args: list[str]):
    result = CliRunner(**RUNNER_KWARGS).invoke(main, args)
    return result, result.stdout, result.stderr



def test_every_file_has_an_expectation_and_vice_versa():
    assert len(FILES) >= 24
    assert sorted(EXPECTED) == FILES
    assert all(isinstance(v, str) and v.strip() for v in EXPECTED.values())


@pytest.mark.parametrize("name", FILES)
def test_stats_fails_in_one_line(name):
    path = BAD / name
    result, stdout, stderr = _invoke(["stats", str(path)])
    assert_one_line_error(result, stdout, stderr, path, EXPECTED[name])


@pytest.mark.parametrize("name", FILES)
def test_convert_fails_the_same_way_and_writes_nothing(name, tmp_path):
    path, out = BAD / name, tmp_path / "out"
    result, stdout, stderr = _invoke(["convert", str(path), "--out", str(out)])
    assert_one_line_error(result, stdout, stderr, path, EXPECTED[name])
    assert not out.exists() or [p for p in out.rglob("*") if not p.is_dir()] == []


def test_convert_into_an_existing_folder_leaves_it_empty(tmp_path):
    path = BAD / "native_bbox_x2_lt_x1.json"
    result, stdout, stderr = _invoke(["convert", str(path), "--out", str(tmp_path)])
    assert_one_line_error(result, stdout, stderr, path, EXPECTED[path.name])
    assert list(tmp_path.iterdir()) == []


def test_json_nested_too_deeply(tmp_path):
    # made here rather than stored: how deep is too deep depends on the Python version
    path = tmp_path / "deep.json"
    depth = 100_000
    path.write_text('{"images": ' + "[" * depth + "]" * depth + "}")
    result, stdout, stderr = _invoke(["stats", str(path)])
    assert_one_line_error(result, stdout, stderr, path, "JSON nested too deeply to read")


def test_unknown_filter_is_one_line(native_sample):
    result, stdout, stderr = _invoke(["stats", str(native_sample), "--filter", "bogus"])
    assert result.exc_info is None or result.exc_info[0] is SystemExit
    assert result.exit_code == 1
    assert stdout == "" and "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("Error: ")
    assert "unknown filter 'bogus'" in stderr and "kpt&segm" in stderr


def _ochuman_command() -> list[str]:
    """The installed console script, else the same entry point through this interpreter."""
    script = Path(sys.executable).parent / ("ochuman.exe" if os.name == "nt" else "ochuman")
    found = str(script) if script.exists() else shutil.which("ochuman")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from cli.ochuman_cmd import main; sys.exit(main())"]


@pytest.mark.parametrize("name", ["not_utf8.json", "native_keypoints_nan.json"])
def test_no_traceback_in_a_real_process(name, tmp_path):
    path = BAD / name
    proc = subprocess.run(
        [*_ochuman_command(), "stats", str(path)], capture_output=True, text=True,
        cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"Error: {path}: ") and EXPECTED[name] in lines[0]
