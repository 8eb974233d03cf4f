"""Outputs and paths at their edges: an output option naming a folder, a full disk (files and
stdout), file names with undecodable bytes, results read from a pipe. Each is one
``Error: <file>: <problem>`` line and exit 1 (or works), no traceback, nothing half-written."""
from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.cli.one_line_errors import RUNNER_KWARGS, assert_one_line_error

from cli import ochuman_cmd, pose2seg_cmd
from ochuman.data import SAMPLE_ANNOTATIONS

PREDS = [{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [150, 12, 240, 283]}]
BAD_RESULTS = Path(__file__).resolve().parents[1] / "data" / "bad_results"


def _invoke(group, args):
    result = CliRunner(**RUNNER_KWARGS).invoke(group, [str(a) for a in args])
    return result, result.stdout, result.stderr


def _preds(tmp_path: Path) -> Path:
    path = tmp_path / "preds.json"
    path.write_text(json.dumps(PREDS))
    return path


@pytest.mark.parametrize("command", [
    "eval --out", "eval --persons", "eval --plot", "show --out", "predict --out", "templates --out",
    "import-weights --out",
])
def test_an_output_naming_a_folder_is_one_line_before_any_work(command, tmp_path):
    folder = tmp_path / "taken"
    folder.mkdir()
    name, option = command.split()
    gt = SAMPLE_ANNOTATIONS
    group, args = {
        "eval": (ochuman_cmd.main, ["eval", "--gt", gt, "--results", _preds(tmp_path), "--iou-type", "bbox"]),
        "show": (ochuman_cmd.main, ["show", gt, "--histogram"]),
        "predict": (pose2seg_cmd.main, ["predict", "--model", "skeleton-prior", "--gt", gt]),
        "templates": (pose2seg_cmd.main, ["templates", "--ann", gt]),
        "import-weights": (pose2seg_cmd.main, ["import-weights", tmp_path / "absent.pkl"]),
    }[name]
    result, stdout, stderr = _invoke(group, [*args, option, folder])
    assert_one_line_error(result, stdout, stderr, folder, f"{option} names a folder, not a file")
    assert list(folder.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) <= ["preds.json", "taken"]


def test_convert_out_naming_a_file_is_one_line(tmp_path):
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    result, stdout, stderr = _invoke(ochuman_cmd.main, ["convert", SAMPLE_ANNOTATIONS, "--out", taken])
    assert_one_line_error(result, stdout, stderr, taken, "--out names a file, not a folder")
    assert taken.read_text() == "{}"


def test_a_full_disk_while_writing_a_file_is_one_line(tmp_path, monkeypatch):
    import ochuman.io

    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setenv("OCHUMAN_CACHE", "off")  # only the report is written
    monkeypatch.setattr(ochuman.io.os, "fdopen", lambda *a, **k: FullDisk(real_fdopen(*a, **k)))
    out = tmp_path / "report.json"
    result, stdout, stderr = _invoke(ochuman_cmd.main, [
        "eval", "--gt", SAMPLE_ANNOTATIONS, "--results", _preds(tmp_path), "--iou-type", "bbox",
        "--format", "json", "--out", out])
    assert result.exit_code == 1
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exc_info
    assert "Traceback" not in stdout + stderr
    assert stderr.splitlines() == [f"Error: {out}: cannot write: No space left on device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["preds.json"]  # no .part left


def _real(args, tmp_path: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8"}  # strict UTF-8
    return subprocess.run([*_ochuman(), *args], capture_output=True, cwd=tmp_path, timeout=120, env=env, **kwargs)


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1, proc.stderr
    stderr = proc.stderr.decode("utf-8")  # valid UTF-8 whatever the file names
    assert "Traceback" not in stderr and len(stderr.splitlines()) == 1, stderr
    return stderr.splitlines()[0]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["stats", "--format", "table"], ["stats", "--format", "json"], ["--help"]])
def test_a_full_disk_on_stdout_is_one_line(args, tmp_path):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*_ochuman(), *args[:1], *([str(SAMPLE_ANNOTATIONS)] if args[0] == "stats" else []),
                               *args[1:]], stdout=full, stderr=subprocess.PIPE, cwd=tmp_path, timeout=120,
                              env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert _one_error_line(proc) == "Error: standard output: cannot write: No space left on device"


def _ochuman() -> list[str]:
    script = Path(sys.executable).parent / "ochuman"
    return [str(script)] if script.exists() else [
        sys.executable, "-c", "import sys; from cli.launch import ochuman; ochuman()"]


def test_a_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    # a real process whose writes beyond 1 kB fail (EFBIG), as on a full disk
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    out = tmp_path / "out"
    proc = subprocess.run([*_ochuman(), "convert", str(SAMPLE_ANNOTATIONS), "--out", str(out), "--split", "val"],
                          capture_output=True, cwd=tmp_path, timeout=120, preexec_fn=limit,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    line = _one_error_line(proc)
    assert line.startswith(f"Error: {out}/ochuman_coco_format_val_range_0.00_1.00.json: cannot write: ")
    assert list(out.iterdir()) == []


def test_file_names_with_undecodable_bytes(tmp_path):
    # names as bytes: a 0xff byte is not UTF-8; messages and outputs show it as \xff
    good = tmp_path / "g\udcff.json"
    good.write_bytes(Path(SAMPLE_ANNOTATIONS).read_bytes())
    bad = tmp_path / "n\udcff.json"
    bad.write_bytes(bytes(100))
    preds = tmp_path / "p\udcff.json"
    preds.write_text(json.dumps(PREDS))

    line = _one_error_line(_real([os.fsencode(a) for a in ("stats", bad)], tmp_path))
    assert line == f"Error: {tmp_path}/n\\xff.json: line 1 column 1: not valid JSON (expecting value)"

    proc = _real([os.fsencode(a) for a in ("stats", good)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8").startswith(f"{tmp_path}/g\\xff.json (filter kpt&segm)")

    args = ("eval", "--gt", SAMPLE_ANNOTATIONS, "--results", preds, "--iou-type", "bbox", "--format", "csv",
            "--out", tmp_path / "r\udcff.json", "--persons", tmp_path / "r.csv", "--plot", tmp_path / "r.png")
    proc = _real([os.fsencode(a) for a in args], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode("utf-8").splitlines()[1].startswith("p\\xff.json,all,bbox,")
    report = json.loads((tmp_path / "r\udcff.json").read_bytes().decode("utf-8"))
    assert {row["results"] for row in report["rows"]} == {"p\\xff.json"}
    assert (tmp_path / "r.csv").read_bytes().decode("utf-8").splitlines()[1].startswith("p\\xff.json,")
    assert (tmp_path / "r.png").stat().st_size > 0


def _eval_json(results: str, tmp_path: Path, **kwargs) -> list:
    proc = subprocess.run([*_ochuman(), "eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", results,
                           "--iou-type", "bbox", "--format", "json", "--name", "preds"],
                          capture_output=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}, **kwargs)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _without_file_name(rows: list) -> list:
    """The rows, their cards' results_file left out (the pipe's name differs; its hash must not)."""
    return [{**row, "protocol": {k: v for k, v in row["protocol"].items() if k != "results_file"}} for row in rows]


def test_results_from_a_pipe_as_from_a_file(tmp_path):
    path = _preds(tmp_path)
    expected = _without_file_name(_eval_json(str(path), tmp_path))
    assert expected[0]["protocol"]["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _without_file_name(_eval_json("/dev/stdin", tmp_path, input=path.read_bytes())) == expected
    read, write = os.pipe()  # as a process substitution <(cat preds.json) gives
    with os.fdopen(write, "wb") as handle:
        handle.write(path.read_bytes())
    try:
        assert _without_file_name(_eval_json(f"/dev/fd/{read}", tmp_path, pass_fds=(read,))) == expected
    finally:
        os.close(read)


def test_bad_results_from_a_pipe_are_one_line(tmp_path):
    proc = subprocess.run([*_ochuman(), "eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", "/dev/stdin"],
                          input=(BAD_RESULTS / "nul_bytes.json").read_bytes(), capture_output=True,
                          cwd=tmp_path, timeout=120, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert _one_error_line(proc) == "Error: /dev/stdin: line 1 column 1: not valid JSON (expecting value)"


@pytest.mark.parametrize("module, command", [("cli.ochuman_cmd", "eval"), ("cli.pose2seg_cmd", "predict")])
def test_the_commands_run_as_modules(module, command):
    """``python -m cli.ochuman_cmd`` / ``cli.pose2seg_cmd`` work as the console scripts do."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-m", module, command, "--help"], capture_output=True, text=True,
                          cwd=root, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("Usage:") and command in done.stdout.splitlines()[0]
