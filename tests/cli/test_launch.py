"""The console script's early reads (cli.launch, cli.early_reads): begun from a look at the
command line before click is imported, used only where click's values name the same file and
IoU type."""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

import ochuman.scan
from cli import early_reads
from cli.ochuman_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS
from tests.cli.one_line_errors import RUNNER_KWARGS
from tests.cli.test_eval_cmd import files, official_val  # noqa: F401 (fixtures)


@pytest.fixture(autouse=True)
def no_reads_left(monkeypatch):
    monkeypatch.setattr(early_reads, "_results", {})
    monkeypatch.setattr(early_reads, "_annotations", {})


def _begun() -> dict:
    return {**early_reads._results, **early_reads._annotations}


def _eval_args(results, *more: str, gt=SAMPLE_ANNOTATIONS) -> list[str]:
    return ["eval", "--gt", str(gt), "--results", str(results), "--format", "json", *more]


def test_an_eval_command_line_starts_both_reads_each_taken_once(files):
    early_reads.start_early_reads(_eval_args(files["jittered"], "--iou-type", "bbox"))
    results = early_reads.take_results(str(files["jittered"]), "bbox", True)
    assert isinstance(results, ochuman.scan.PrefetchedResults) and results.get()[1] is not None
    assert results.sha256() == hashlib.sha256(files["jittered"].read_bytes()).hexdigest()
    gt = early_reads.take_annotations(str(SAMPLE_ANNOTATIONS), False)
    assert isinstance(gt, ochuman.scan.PrefetchedAnnotations) and not gt.masks
    assert early_reads.take_results(str(files["jittered"]), "bbox", True) is None
    assert early_reads.take_annotations(str(SAMPLE_ANNOTATIONS), False) is None


def test_option_values_with_equals_signs_and_the_default_iou_type(files):
    early_reads.start_early_reads(["eval", f"--results={files['perfect']}", f"--gt={SAMPLE_ANNOTATIONS}"])
    assert early_reads.take_results(str(files["perfect"]), "bbox", False) is None  # segm was begun: not this one
    assert early_reads.take_results(str(files["perfect"]), "segm", False) is not None
    assert early_reads.take_annotations(str(SAMPLE_ANNOTATIONS), True).masks


@pytest.mark.parametrize("args", [
    ["stats", str(SAMPLE_ANNOTATIONS)],
    ["eval", "--help", "--results", "{perfect}"],
    ["eval", "--results", "{perfect}", "--iou-type", "boxes"],  # click refuses it
    ["eval", "--results", "{missing}"],
    ["eval", "--results", "{folder}"],
    ["eval", "--results", "/dev/stdin"],  # a pipe's bytes are the command's to read
    ["eval", "--", "--results", "{perfect}"],
    [],
])
def test_command_lines_that_begin_no_read(files, tmp_path, args):
    names = {"perfect": files["perfect"], "missing": tmp_path / "missing.json", "folder": tmp_path}
    early_reads.start_early_reads([a.format(**names) for a in args])
    assert _begun() == {}


def _in_process(args: list[str]) -> list[dict]:
    result = CliRunner(**RUNNER_KWARGS).invoke(main, args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_the_command_uses_the_reads_begun_early(files, monkeypatch, iou_type):
    args = _eval_args(files["jittered"], "--iou-type", iou_type)
    expected = _in_process(args)
    early_reads.start_early_reads(args)
    assert len(early_reads._results) == len(early_reads._annotations) == 1
    made = []
    for name in ("PrefetchedResults", "PrefetchedAnnotations"):  # none made by the command itself
        real = getattr(ochuman.scan, name)
        monkeypatch.setattr(ochuman.scan, name, lambda *a, real=real, **k: made.append(a) or real(*a, **k))
    assert _in_process(args) == expected
    assert _begun() == {} and made == []


def test_a_guess_that_names_another_file_is_left_unused(files):
    # click reads "--results=PERFECT" as the value of --tag: the file evaluated is the jittered one
    args = ["eval", "--gt", str(SAMPLE_ANNOTATIONS), "--tag", f"--results={files['perfect']}",
            "--results", str(files["jittered"]), "--subset", "all", "--format", "json"]
    early_reads.start_early_reads(args)
    assert early_reads._results  # the perfect file's read was begun, and is not taken
    rows = _in_process(args)
    assert (str(files["perfect"]), "segm") in early_reads._results
    jittered, perfect = (_in_process(_eval_args(files[k], "--subset", "all"))[0] for k in ("jittered", "perfect"))
    assert rows[0]["protocol"]["tags"] == {"--results": str(files["perfect"])}  # (click's reading)
    assert [{k: v for k, v in row.items() if k not in ("tags", "protocol")} for row in rows] == \
        [{k: v for k, v in jittered.items() if k not in ("tags", "protocol")}]
    assert rows[0]["protocol"]["results_sha256"] == jittered["protocol"]["results_sha256"] \
        != perfect["protocol"]["results_sha256"]


def test_the_console_script_reads_early_and_prints_what_the_command_prints(files):
    args = _eval_args(files["jittered"], "--iou-type", "bbox")
    code = ("import sys, cli.early_reads as early, cli.launch as launch; real = early.take_results\n"
            "def take(*a):\n    read = real(*a)\n    print(*a, read is not None, file=sys.stderr)\n    return read\n"
            "early.take_results = take; sys.argv[0] = 'ochuman'; launch.ochuman()")
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OCHUMAN_CACHE": "off"})
    assert done.returncode == 0 and done.stderr == f"{files['jittered']} bbox True True\n"
    assert json.loads(done.stdout) == _in_process(args)


@pytest.mark.parametrize("more, hashed", [
    ([], False),  # the table
    (["--format", "csv"], False),
    (["--format=table", "--plot", "p.png", "--persons", "p.csv"], False),
    (["--format", "json"], True),
    (["--format=markdown"], True),
    (["--out", "report.json"], True),
    (["--out=report.json", "--format", "csv"], True),
    (["--format", "json", "--format", "csv"], True),  # click takes the last: hashed all the same
])
def test_the_results_file_is_hashed_only_where_the_command_line_may_show_its_hash(files, more, hashed):
    early_reads.start_early_reads(["eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(files["jittered"]), *more])
    read = early_reads._results[str(files["jittered"]), "segm"]
    assert read.hash_file is hashed
    read.get()
    assert read.sha256() == (hashlib.sha256(files["jittered"].read_bytes()).hexdigest() if hashed else None)


def test_a_read_begun_without_the_hash_does_not_serve_a_command_that_shows_it(files, monkeypatch):
    early_reads.start_early_reads(_eval_args(files["jittered"])[:-2])  # no --format: the table, no hash
    assert not early_reads._results[str(files["jittered"]), "segm"].hash_file
    made = []
    real = ochuman.scan.PrefetchedResults
    monkeypatch.setattr(ochuman.scan, "PrefetchedResults", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    rows = _in_process(_eval_args(files["jittered"], "--subset", "all"))  # json: the card's hash
    assert [read.hash_file for read in made] == [True]  # the command read the file itself
    assert rows[0]["protocol"]["results_sha256"] == hashlib.sha256(files["jittered"].read_bytes()).hexdigest()


@pytest.mark.parametrize("fmt", ["csv", "table"])
def test_outputs_without_the_hash_leave_the_file_unhashed_with_the_same_numbers(files, monkeypatch, fmt):
    args = _eval_args(files["jittered"], "--subset", "all")
    expected = _in_process(args)[0]
    args[args.index("json")] = fmt
    made = []
    real = ochuman.scan.PrefetchedResults
    monkeypatch.setattr(ochuman.scan, "PrefetchedResults", lambda *a, **k: made.append(real(*a, **k)) or made[-1])
    result = CliRunner(**RUNNER_KWARGS).invoke(main, args)
    assert result.exit_code == 0, result.stderr
    assert [read.hash_file for read in made] == [False] and made[0].sha256() is None
    if fmt == "csv":
        row = next(csv.DictReader(io.StringIO(result.stdout)))
        assert {k: float(v) for k, v in row.items() if k.startswith(("AP", "AR"))} == \
            {k: v for k, v in expected.items() if k.startswith(("AP", "AR"))}
    else:
        assert f"{expected['AP']:.3f}" in result.stdout
