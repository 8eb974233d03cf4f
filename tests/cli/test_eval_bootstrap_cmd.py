"""`ochuman eval --bootstrap N --seed S` and the protocol cards (`--tag`), on the native sample
shipped with the package (results files of tests/cli/test_eval_cmd.py)."""
from __future__ import annotations

import hashlib
import json

from tests.cli.test_eval_cmd import _rows, _run, files, official_val  # noqa: F401 (fixtures)


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_rows_gain_intervals(files):
    rows = _rows("--results", str(files["perfect"]), "--iou-type", "bbox", "--bootstrap", "20")
    for row in rows:
        for key in ("AP_ci", "AP50_ci", "AP75_ci", "AR100_ci"):
            assert row[key] == [1.0, 1.0]  # perfect on every sample
        assert "dAP_vs_first" not in row


def test_a_leaderboard_marks_differences_whose_interval_excludes_zero(files):
    args = ("--results", str(files["perfect"]), "--name", "oracle", "--results", str(files["jittered"]),
            "--name", "jitter", "--iou-type", "bbox", "--subset", "all", "--bootstrap", "50", "--seed", "3")
    oracle, jitter = _rows(*args)
    assert oracle["dAP_vs_first"] is None and oracle["dAP_ci"] is None
    assert jitter["dAP_vs_first"] == jitter["AP"] - 1.0 < 0
    lo, hi = jitter["dAP_ci"]
    assert lo <= hi < 0
    lo, hi = jitter["AP_ci"]
    assert 0 <= lo <= hi < 1
    table = _run(*args)
    assert table.exit_code == 0, table.stderr
    line = next(line for line in table.stdout.splitlines() if line.startswith("jitter"))
    assert f"{jitter['dAP_vs_first']:+.3f} *" in line and f"[{lo:.3f}, {hi:.3f}]" in line
    assert "* the 95% bootstrap interval of the paired difference in AP (dAP_ci) excludes 0" in table.stdout
    assert _run(*args).stdout == table.stdout  # the seed fixes the draws


def test_no_mark_when_the_interval_holds_zero(files):
    args = ("--results", str(files["jittered"]), "--name", "a", "--results", str(files["jittered"]), "--name", "b",
            "--iou-type", "bbox", "--subset", "all", "--bootstrap", "20", "--format", "markdown")
    result = _run(*args)
    assert result.exit_code == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("| b "))
    assert "| +0.000 " in line and "[0.000, 0.000]" in line and "*" not in result.stdout


def test_protocol_cards_in_the_json_report_and_markdown(files, tmp_path):
    args = ("--results", str(files["perfect"]), "--name", "oracle", "--results", str(files["jittered"]),
            "--name", "jitter", "--iou-type", "bbox", "--subset", "hard",
            "--tag", "oracle:boxes=gt", "--tag", "2:train=coco", "--tag", "keypoints=gt")
    result = _run(*args, "--out", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.stderr
    written = json.loads((tmp_path / "report.json").read_text())
    cards = written["protocols"]
    assert len(cards) == len(written["rows"]) == 2
    assert cards == [
        {"results": name, "results_file": str(files[key]), "results_sha256": _sha256(files[key]),
         "gt": cards[0]["gt"], "split": "val", "image_set": "all", "iou_type": "bbox",
         "subset_mode": "official", "range_rule": "official", "max_iou_source": "stored", "tags": tags}
        for name, key, tags in (("oracle", "perfect", {"boxes": "gt", "keypoints": "gt"}),
                                ("jitter", "jittered", {"train": "coco", "keypoints": "gt"}))]
    markdown = _run(*args, "--format", "markdown")
    assert markdown.exit_code == 0, markdown.stderr
    table = markdown.stdout.split("\n\n")[-1]
    assert table.startswith("| results ") and "| results_sha256 " in table.splitlines()[0]
    assert _sha256(files["jittered"])[:12] in table and "train=coco; keypoints=gt" in table
    assert "boxes=gt; keypoints=gt" in table


def test_out_report_carries_cards_and_the_bootstrap(files, tmp_path):
    out = tmp_path / "report.json"
    result = _run("--results", str(files["jittered"]), "--iou-type", "bbox", "--subset", "all",
                  "--bootstrap", "10", "--seed", "7", "--tag", "train=coco", "--out", str(out))
    assert result.exit_code == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["bootstrap"] == {"samples": 10, "seed": 7, "level": 0.95}
    (row,), (card,) = report["rows"], report["protocols"]
    assert card["tags"] == {"train": "coco"} and len(row["AP_ci"]) == 2


def test_a_tag_naming_no_results_file_is_one_line(files):
    result = _run("--results", str(files["perfect"]), "--tag", "other:train=coco")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "--tag 'other:train=coco': 'other' is neither a row name (perfect.json) nor a position 1..1" in result.stderr
    result = _run("--results", str(files["perfect"]), "--tag", "train")
    assert result.exit_code == 1 and "expected KEY=VALUE or NAME:KEY=VALUE" in result.stderr


def test_a_negative_bootstrap_is_refused_by_the_option(files):
    result = _run("--results", str(files["perfect"]), "--bootstrap", "-2")
    assert result.exit_code == 2 and "--bootstrap" in result.stderr
