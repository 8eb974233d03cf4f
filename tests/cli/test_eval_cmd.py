"""`ochuman eval`: happy paths on the native sample shipped with the package.

Results files are made from the sample's own ground truth (the official val file rebuilt from
it: image ids 1..10, 16 persons): perfect ones score AP 1.0, jittered ones less. The plain
"all" row must equal pycocotools (COCO / loadRes / COCOeval) run on the official val file.
"""
from __future__ import annotations

import csv
import inspect
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils

import ochuman
from cli.ochuman_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS

SEGM_STATS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
KEYPOINT_STATS = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")
STATS = {"segm": SEGM_STATS, "bbox": SEGM_STATS, "keypoints": KEYPOINT_STATS}

# click < 8.2 mixes stderr into stdout unless told not to; 8.2+ always keeps both apart.
_RUNNER_KWARGS = (
    {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
)


# ---------------------------------------------------------------------------------------------
# results files derived from the ground truth


@pytest.fixture(scope="module")
def official_val() -> dict:
    """The official COCO-format val file rebuilt from the sample (nothing added)."""
    return ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")


def _perfect(coco: dict) -> list[dict]:
    """Every ground-truth person as a detection: its box, mask and keypoints."""
    out = []
    for k, ann in enumerate(coco["annotations"]):
        keypoints = [float(v) for v in ann["keypoints"]]
        keypoints[2::3] = [1.0] * (len(keypoints) // 3)
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": round(0.99 - 0.01 * k, 2),
                    "bbox": [float(v) for v in ann["bbox"]], "segmentation": ann["segmentation"],
                    "keypoints": keypoints})
    return out


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(mask)
    h, w = mask.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        mask[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def _encode(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _jittered(coco: dict, seed: int = 0) -> list[dict]:
    """Shifted masks and boxes, noisy keypoints, random scores, plus false positives of every
    size (some overlapping people, some not) and a few duplicates."""
    rng = np.random.default_rng(seed)
    sizes = {im["id"]: (im["height"], im["width"]) for im in coco["images"]}
    out = []
    for ann in coco["annotations"]:
        dy, dx = (int(v) for v in rng.integers(-25, 26, size=2))
        mask = _shift(mask_utils.decode(ann["segmentation"]), dy, dx)
        x, y, w, h = (float(v) for v in ann["bbox"])
        bbox = [x + dx + rng.normal(0, 3), y + dy + rng.normal(0, 3), w * rng.uniform(0.85, 1.15), h * rng.uniform(0.85, 1.15)]
        keypoints = np.array(ann["keypoints"], dtype=np.float64).reshape(-1, 3)
        keypoints[:, :2] += rng.normal(0, 6, size=(len(keypoints), 2))
        keypoints[:, 2] = rng.uniform(0.1, 1.0, size=len(keypoints))
        record = {"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.3, 1.0)),
                  "bbox": bbox, "segmentation": _encode(mask), "keypoints": keypoints.ravel().tolist()}
        out.append(record)
        if rng.uniform() < 0.3:  # a duplicate: a false positive once the first one matched
            out.append({**record, "score": float(rng.uniform(0.05, 0.6))})
    for image_id, (h, w) in sizes.items():
        for side in (20, 60, 200):  # small, medium and large false positives
            x0, y0 = int(rng.integers(0, max(w - side, 1))), int(rng.integers(0, max(h - side, 1)))
            mask = np.zeros((h, w), dtype=np.uint8)
            mask[y0:y0 + side, x0:x0 + side] = 1
            keypoints = np.stack([rng.uniform(x0, x0 + side, 17), rng.uniform(y0, y0 + side, 17),
                                  rng.uniform(0.1, 1.0, 17)], axis=1)
            out.append({"image_id": image_id, "category_id": 1, "score": float(rng.uniform(0.05, 0.9)),
                        "bbox": [float(x0), float(y0), float(side), float(side)], "segmentation": _encode(mask),
                        "keypoints": keypoints.ravel().tolist()})
    return out


def _by_file_name(records: list[dict], coco: dict) -> list[dict]:
    names = {im["id"]: im["file_name"] for im in coco["images"]}
    return [{**r, "image_id": names[r["image_id"]]} for r in records]


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def files(official_val, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("results")
    jittered = _jittered(official_val)
    return {
        "perfect": _write(folder / "perfect.json", _perfect(official_val)),
        "jittered": _write(folder / "jittered.json", jittered),
        "jittered_names": _write(folder / "jittered_names.json", _by_file_name(jittered, official_val)),
        "official_val": _write(folder / "ochuman_coco_format_val_range_0.00_1.00.json", official_val),
    }


def _run(*args: str, env: dict | None = None):
    """Run ``ochuman eval`` (with the sample as --gt unless a root is given); return the result."""
    args = list(args)
    if "--root" not in args and not (env and "OCHUMAN_ROOT" in env):
        args = ["--gt", str(SAMPLE_ANNOTATIONS), *args]
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, ["eval", *args], env=env)
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"uncaught {result.exc_info[0].__name__}: {result.exception}")
    return result


def _rows(*args: str, env: dict | None = None) -> list[dict]:
    result = _run(*args, "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "", result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def _stats(row: dict, iou_type: str = "segm") -> list[float]:
    return [row[k] for k in STATS[iou_type]]


# ---------------------------------------------------------------------------------------------
# output shape


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_json_rows_per_subset_with_the_stats_names(files, iou_type):
    rows = _rows("--results", str(files["perfect"]), "--iou-type", iou_type)
    assert [row["subset"] for row in rows] == ["all", "moderate", "hard"]  # default: levels
    for row in rows:
        assert {"results", "subset", "iou_type", "mode", *STATS[iou_type]} <= set(row)
        assert not any(k in row for k in (set(SEGM_STATS) | set(KEYPOINT_STATS)) - set(STATS[iou_type]))
        assert row["results"] == "perfect.json" and row["iou_type"] == iou_type and row["mode"] == "official"
        assert all(isinstance(row[k], float) for k in STATS[iou_type])
        assert row["reported"] is False
        # perfect detections of large persons only: AP 1 everywhere there is ground truth
        assert row["AP"] == row["AP50"] == row["AP75"] == row["APl"] == 1.0, row
        assert row["APm"] == -1.0  # no medium persons in the sample


def test_levels_is_the_default_and_can_be_named(files):
    default = _rows("--results", str(files["jittered"]))
    named = _rows("--results", str(files["jittered"]), "--subset", "levels")
    spelled = _rows("--results", str(files["jittered"]), "--subset", "all", "--subset", "moderate",
                    "--subset", "hard")
    assert default == named == spelled


def test_jittered_results_score_below_one(files):
    for iou_type in ("segm", "bbox", "keypoints"):
        perfect = _rows("--results", str(files["perfect"]), "--iou-type", iou_type, "--subset", "all")[0]
        jittered = _rows("--results", str(files["jittered"]), "--iou-type", iou_type, "--subset", "all")[0]
        assert perfect["AP"] == 1.0
        assert 0.0 < jittered["AP"] < 1.0, (iou_type, jittered)


def test_custom_subset_range(files):
    rows = _rows("--results", str(files["jittered"]), "--subset", "0.6:0.9")
    assert [row["subset"] for row in rows] == ["0.6:0.9"]
    assert 0.0 < rows[0]["AP"] < 1.0
    assert _rows("--results", str(files["perfect"]), "--subset", "0.6:0.9")[0]["AP"] == 1.0
    mixed = _rows("--results", str(files["jittered"]), "--subset", "levels", "--subset", "0.6:0.9")
    assert [row["subset"] for row in mixed] == ["all", "moderate", "hard", "0.6:0.9"]
    assert mixed[-1] == rows[0]


def test_unknown_subset_is_one_line(files):
    result = _run("--results", str(files["perfect"]), "--subset", "sideways")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    assert "unknown subset 'sideways'" in result.stderr


def test_leaderboard_of_two_named_results(files):
    rows = _rows("--results", str(files["perfect"]), "--name", "oracle",
                 "--results", str(files["jittered"]), "--name", "jitter")
    assert [(row["results"], row["subset"]) for row in rows] == [
        (name, subset) for name in ("oracle", "jitter") for subset in ("all", "moderate", "hard")]
    by = {(row["results"], row["subset"]): row for row in rows}
    for subset in ("all", "moderate", "hard"):
        assert by["oracle", subset]["AP"] == 1.0 > by["jitter", subset]["AP"]
    # each row of the leaderboard is the row of its file evaluated alone
    alone = _rows("--results", str(files["jittered"]))
    assert [_stats(r) for r in rows[3:]] == [_stats(r) for r in alone]


def test_name_count_must_match(files):
    result = _run("--results", str(files["perfect"]), "--results", str(files["jittered"]), "--name", "one")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "--name given 1 times for 2 --results" in result.stderr


def test_table_and_other_formats(files):
    result = _run("--results", str(files["perfect"]))
    assert result.exit_code == 0 and result.stderr == ""
    assert "segm AP on" in result.stdout and "mode official" in result.stdout
    for name in ("all", "moderate", "hard", "perfect.json"):
        assert name in result.stdout
    csv_result = _run("--results", str(files["perfect"]), "--format", "csv")
    table = list(csv.DictReader(csv_result.stdout.splitlines()))
    assert [row["subset"] for row in table] == ["all", "moderate", "hard"]
    assert float(table[0]["AP"]) == 1.0
    markdown = _run("--results", str(files["perfect"]), "--format", "markdown")
    assert markdown.exit_code == 0 and "|" in markdown.stdout


def test_paper_rows(files):
    rows = _rows("--results", str(files["jittered"]), "--paper")
    ours = [row for row in rows if not row["reported"]]
    reported = [row for row in rows if row["reported"]]
    assert [row["subset"] for row in ours] == ["all", "moderate", "hard"]
    assert len(reported) == 9 and all(row["reported"] is True for row in reported)
    assert {row["subset"] for row in reported} == {"all", "moderate", "hard"}
    mask_rcnn = {row["subset"]: row["AP"] for row in reported if row["results"].startswith("Mask R-CNN")}
    assert mask_rcnn == {"all": 0.163, "moderate": 0.194, "hard": 0.113}
    assert rows[:3] == _rows("--results", str(files["jittered"]))  # the paper adds rows only


# ---------------------------------------------------------------------------------------------
# where the ground truth comes from


def _root(tmp_path: Path, nested: bool) -> Path:
    root = tmp_path / "OCHuman"
    target = root / "annotations" / "ochuman.json" if nested else root / "ochuman.json"
    target.parent.mkdir(parents=True)
    shutil.copyfile(SAMPLE_ANNOTATIONS, target)
    return root


@pytest.mark.parametrize("nested", [True, False], ids=["annotations", "top-level"])
def test_root_option_and_environment_variable(files, tmp_path, monkeypatch, nested):
    monkeypatch.delenv("OCHUMAN_ROOT", raising=False)
    root = _root(tmp_path, nested)
    by_gt = _rows("--results", str(files["jittered"]))
    by_root = _rows("--results", str(files["jittered"]), "--root", str(root))
    by_env = _rows("--results", str(files["jittered"]), env={"OCHUMAN_ROOT": str(root)})
    assert [_stats(r) for r in by_root] == [_stats(r) for r in by_gt] == [_stats(r) for r in by_env]


def test_root_option_beats_the_environment_variable(files, tmp_path):
    root = _root(tmp_path, nested=True)
    rows = _rows("--results", str(files["perfect"]), "--root", str(root),
                 env={"OCHUMAN_ROOT": str(tmp_path / "nowhere")})
    assert rows[0]["AP"] == 1.0


@pytest.mark.parametrize("how", ["option", "environment"])
def test_missing_root_is_one_line(files, tmp_path, how):
    missing = tmp_path / "no-such-folder"
    if how == "option":
        result = _run("--results", str(files["perfect"]), "--root", str(missing))
    else:
        result = _run("--results", str(files["perfect"]), env={"OCHUMAN_ROOT": str(missing)})
    assert result.exit_code == 1 and result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {missing}: ")
    assert "ochuman.json" in result.stderr


def test_empty_root_folder_is_one_line(files, tmp_path):
    result = _run("--results", str(files["perfect"]), "--root", str(tmp_path))
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {tmp_path}: ")


def test_no_ground_truth_at_all_is_one_line(files, monkeypatch):
    monkeypatch.delenv("OCHUMAN_ROOT", raising=False)
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, ["eval", "--results", str(files["perfect"])])
    assert result.exc_info is None or result.exc_info[0] is SystemExit
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: no ground truth")
    assert "--root" in result.stderr and "OCHUMAN_ROOT" in result.stderr


# ---------------------------------------------------------------------------------------------
# inputs and outputs


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_file_names_in_place_of_ids(files, iou_type):
    by_id = _rows("--results", str(files["jittered"]), "--iou-type", iou_type)
    by_name = _rows("--results", str(files["jittered_names"]), "--iou-type", iou_type)
    assert [_stats(r, iou_type) for r in by_name] == [_stats(r, iou_type) for r in by_id]


def test_out_persons_and_plot_files(files, official_val, tmp_path):
    report, persons, plot = tmp_path / "report.json", tmp_path / "p.csv", tmp_path / "pr.png"
    result = _run("--results", str(files["jittered"]), "--format", "json", "--out", str(report),
                  "--persons", str(persons), "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)

    written = json.loads(report.read_text(encoding="utf-8"))
    assert [row.pop("protocol") for row in rows] == written["protocols"]
    assert written["rows"] == rows
    assert written["iou_type"] == "segm" and written["mode"] == "official" and written["split"] == "val"

    with persons.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(official_val["annotations"]) == 16  # one row per ground-truth person
    assert sorted(int(row["person_id"]) for row in table) == [a["id"] for a in official_val["annotations"]]
    assert {"image_id", "file_name", "max_iou", "best_iou", "matched_50", "matched_75"} <= set(table[0])
    assert {int(row["image_id"]) for row in table} == {im["id"] for im in official_val["images"]}
    assert all(0.0 <= float(row["best_iou"]) <= 1.0 for row in table)

    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"IHDR" in data[:16] and data.rstrip()[-8:-4] == b"IEND"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 100 and height > 100


def test_perfect_results_match_every_person(files, tmp_path):
    persons = tmp_path / "p.csv"
    result = _run("--results", str(files["perfect"]), "--persons", str(persons))
    assert result.exit_code == 0, result.stderr
    with persons.open(newline="", encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 16
    assert all(row["matched_75"] == "True" and float(row["best_iou"]) == 1.0 for row in table)


def test_plot_with_by_max_iou(files, tmp_path):
    plot = tmp_path / "pr.png"
    result = _run("--results", str(files["jittered"]), "--by-max-iou", "--plot", str(plot))
    assert result.exit_code == 0, result.stderr
    assert "max_iou_lo" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mode_ignore(files):
    rows = _rows("--results", str(files["jittered"]), "--mode", "ignore")
    assert [row["subset"] for row in rows] == ["all", "moderate", "hard"]
    assert all(row["mode"] == "ignore" and row["range_rule"] == "closed-top" for row in rows)
    assert all(0.0 < row["AP"] < 1.0 for row in rows)
    perfect = _rows("--results", str(files["perfect"]), "--mode", "ignore")
    assert all(row["AP"] == 1.0 for row in perfect)


# ---------------------------------------------------------------------------------------------
# the numbers: the "all" row is pycocotools on the official val file


def _pycocotools_stats(gt_file: Path, results_file: Path, iou_type: str) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from ochuman.compat import quietly

    with quietly():
        gt = COCO(str(gt_file))
        dt = gt.loadRes(str(results_file))
        evaluation = COCOeval(gt, dt, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return np.asarray(evaluation.stats, dtype=np.float64)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("which", ["jittered", "perfect"])
def test_all_row_equals_pycocotools_on_the_official_file(files, iou_type, which):
    expected = _pycocotools_stats(files["official_val"], files[which], iou_type)
    row = _rows("--results", str(files[which]), "--iou-type", iou_type, "--subset", "all")[0]
    assert row["subset"] == "all"
    ours = np.array(_stats(row, iou_type))
    assert len(ours) == len(expected)
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-12)
    if which == "jittered":
        assert 0.0 < expected[0] < 1.0  # not a degenerate comparison


def test_official_file_as_gt_gives_the_same_all_row(files):
    # a COCO-format ground truth is evaluated as it is: same numbers as the native root
    native = _rows("--results", str(files["jittered"]), "--subset", "all")[0]
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, [
        "eval", "--gt", str(files["official_val"]), "--results", str(files["jittered"]),
        "--subset", "all", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    coco = json.loads(result.stdout)[0]
    assert _stats(coco) == pytest.approx(_stats(native), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# the console script (`ochuman` = cli.launch:ochuman): early reads, gc off, no interpreter teardown


def _console(*args: str, pipe_closed_early: bool = False):
    import subprocess
    import sys

    code = "import sys; from cli.launch import ochuman; sys.argv[0] = 'ochuman'; ochuman()"
    if pipe_closed_early:  # nobody reads stdout any more, as `| head -c 0`: every write fails
        proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        proc.stdout.close()
        return proc.wait(timeout=120), "", proc.stderr.read().decode()
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)
    return done.returncode, done.stdout, done.stderr


def test_console_script_prints_everything_and_keeps_exit_codes(files, tmp_path):
    args = ["eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(files["jittered"]), "--format", "json"]
    code, out, err = _console(*args)
    assert code == 0 and err == ""
    assert json.loads(out) == _rows("--results", str(files["jittered"]))  # complete, same as in-process
    report = tmp_path / "report.json"
    code, _, _ = _console(*args, "--out", str(report))
    assert code == 0 and json.loads(report.read_text())  # the atomic write landed before the exit

    bad = _write(tmp_path / "bad.json", {"not": "a list"})
    code, out, err = _console("eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(bad))
    assert code == 1 and out == "" and err.count("\n") == 1 and err.startswith(f"Error: {bad}: ")
    code, out, err = _console("eval", "--no-such-option")
    assert code == 2 and "Traceback" not in err and "no-such-option" in err  # click's usage error
    code, out, _ = _console("--help")
    assert code == 0 and "Usage:" in out


def test_console_script_with_a_closed_pipe_exits_without_a_traceback(files):
    code, _, err = _console("eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(files["perfect"]),
                            "--format", "json", pipe_closed_early=True)
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert code == 1  # click's answer to a broken pipe


def test_a_root_with_only_the_coco_file_warns_that_max_iou_comes_from_boxes(files, tmp_path):
    root = tmp_path / "coco-only"
    root.mkdir()
    shutil.copyfile(files["official_val"], root / files["official_val"].name)
    result = _run("--results", str(files["jittered"]), "--root", str(root), "--format", "json")
    assert result.exit_code == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warning) == 1 and "recomputed from the boxes" in warning[0] and "ochuman.json" in warning[0]
    assert {row["max_iou_source"] for row in json.loads(result.stdout)} == {"box"}


def test_a_root_with_a_coco_file_carrying_max_iou_does_not_warn(files, tmp_path):
    root = tmp_path / "coco-with-max-iou"
    root.mkdir()
    coco = json.loads(files["official_val"].read_text())
    for ann in coco["annotations"]:
        ann["max_iou"] = 0.6
    _write(root / files["official_val"].name, coco)
    rows = _rows("--results", str(files["jittered"]), "--root", str(root))  # asserts an empty stderr
    assert {row["max_iou_source"] for row in rows} == {"stored"}


# ---------------------------------------------------------------------------------------------
# results whose records carry different fields: pycocotools' loadRes rule (record 0 decides),
# said in one warning naming the first record it substitutes for


def _mixed(files, tmp_path, name: str, edit) -> Path:
    records = json.loads(Path(files["jittered"]).read_text())
    edit(records)
    return _write(tmp_path / name, records)


def _warned_rows(results: Path, iou_type: str) -> tuple[list[dict], list[str]]:
    result = _run("--results", str(results), "--iou-type", iou_type, "--subset", "all", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), result.stderr.splitlines()


@pytest.mark.parametrize("case", ["bbox_only", "one_without_segmentation"])
def test_boxes_scored_as_masks_are_said_and_equal_pycocotools(files, tmp_path, case):
    def edit(records):
        for k, record in enumerate(records):
            if case == "bbox_only" or k == 3:
                del record["segmentation"]
    path = _mixed(files, tmp_path, f"{case}.json", edit)
    rows, warnings = _warned_rows(path, "segm")
    assert len(warnings) == 1 and warnings[0].startswith(f"Warning: {path}: "), warnings
    if case == "bbox_only":
        assert "no record has a segmentation: each box is scored as its mask" in warnings[0]
        assert "--iou-type bbox" in warnings[0]
    else:
        assert "record 3 (image_id " in warnings[0] and "has no segmentation: their boxes are scored as masks" in warnings[0]
    expected = _pycocotools_stats(files["official_val"], path, "segm")
    np.testing.assert_allclose(_stats(rows[0]), expected, rtol=0, atol=1e-12)


def test_a_record_without_bbox_beside_masks_is_said_and_equals_pycocotools(files, tmp_path):
    def edit(records):
        del records[0]["bbox"]  # record 0 decides: records with a mask keep their own box, if any
    path = _mixed(files, tmp_path, "first_without_bbox.json", edit)
    rows, warnings = _warned_rows(path, "bbox")
    assert len(warnings) == 1 and "record 0 (image_id " in warnings[0] and "record 1 (image_id " in warnings[0], warnings
    assert "scored by its mask's bounding box" in warnings[0]
    expected = _pycocotools_stats(files["official_val"], path, "bbox")
    np.testing.assert_allclose(_stats(rows[0], "bbox"), expected, rtol=0, atol=1e-12)
    # segm and keypoints read no box: nothing to say
    assert _warned_rows(path, "segm")[1] == []


def test_consistent_files_get_no_field_warning(files):
    for iou_type in ("segm", "bbox", "keypoints"):
        _rows("--results", str(files["jittered"]), "--iou-type", iou_type)  # asserts an empty stderr


def test_boxes_beside_keypoints_only_are_replaced_as_pycocotools_does(files, tmp_path):
    def edit(records):
        for k, record in enumerate(records):
            del record["segmentation"]
            if k == 0:
                del record["bbox"]  # record 0 decides: every box from the keypoints' extent
    path = _mixed(files, tmp_path, "keypoints_first.json", edit)
    rows, warnings = _warned_rows(path, "bbox")
    assert len(warnings) == 1 and "record 1 (image_id " in warnings[0], warnings
    assert "derived from its record's keypoints and the given boxes are not used" in warnings[0]
    expected = _pycocotools_stats(files["official_val"], path, "bbox")
    np.testing.assert_allclose(_stats(rows[0], "bbox"), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_coco_ground_truth_with_other_keypoint_names(files, official_val, tmp_path, iou_type):
    """Names of the 17 joints do not matter (pycocotools' OKS sigmas go by position): a file
    naming them otherwise is evaluated, as pycocotools does, for every iou type."""
    renamed = json.loads(json.dumps(official_val))
    renamed["categories"][0]["keypoints"] = [f"joint{k}" for k in range(17)]
    gt = _write(tmp_path / "renamed.json", renamed)
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, [
        "eval", "--gt", str(gt), "--results", str(files["jittered"]), "--iou-type", iou_type,
        "--subset", "all", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    expected = _pycocotools_stats(gt, files["jittered"], iou_type)
    np.testing.assert_allclose(_stats(json.loads(result.stdout)[0], iou_type), expected, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# --split with a COCO-format --gt, --paper without paper rows


def _eval_coco(gt: Path, results: Path, *args: str):
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, ["eval", "--gt", str(gt), "--results", str(results),
                                                       "--subset", "all", "--format", "json", *args])
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exception
    return result


def test_split_with_a_coco_file_must_be_its_own(files, official_val, tmp_path):
    val_file = files["official_val"]  # ochuman_coco_format_val_range_0.00_1.00.json
    plain = _eval_coco(val_file, files["jittered"])
    named = _eval_coco(val_file, files["jittered"], "--split", "val")
    assert plain.exit_code == named.exit_code == 0, plain.stderr + named.stderr
    assert json.loads(plain.stdout)[0]["AP"] == json.loads(named.stdout)[0]["AP"]
    other_name = _write(tmp_path / "my_gt.json", official_val)
    for gt, split, problem in ((val_file, "test", "holds the val split, as its name says"),
                               (other_name, "val", "a COCO file with no official split")):
        result = _eval_coco(gt, files["jittered"], "--split", split)
        assert result.exit_code == 1 and result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {gt}: --split {split}: {problem}"), lines
        assert "leave --split out" in lines[0]


def test_split_is_honoured_with_a_native_gt(tmp_path):
    # the sample's 10 benchmark images are all val: its test split has nobody, and says so
    empty = _write(tmp_path / "empty.json", [])
    result = _run("--results", str(empty), "--split", "test", "--subset", "all")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"segm AP on {SAMPLE_ANNOTATIONS} (test)")
    assert result.stderr.splitlines() == [
        f"Warning: {SAMPLE_ANNOTATIONS}: no ground-truth persons in the test split: every AP and AR is -1, as in pycocotools",
        f"Warning: {empty}: empty results list"]


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
def test_paper_without_paper_rows_says_so(files, iou_type):
    result = _run("--results", str(files["jittered"]), "--iou-type", iou_type, "--paper", "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert not any(row["reported"] for row in json.loads(result.stdout))
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Warning: no paper rows") and f"not {iou_type} AP" in lines[0]


def test_paper_with_a_coco_file_needs_its_split(files):
    without = _eval_coco(files["official_val"], files["jittered"], "--paper")
    assert without.exit_code == 0 and "Warning: no paper rows" in without.stderr and "--split" in without.stderr
    named = _eval_coco(files["official_val"], files["jittered"], "--paper", "--split", "val")
    assert named.exit_code == 0 and named.stderr == ""
    assert any(row["reported"] for row in json.loads(named.stdout))


# ---------------------------------------------------------------------------------------------
# results for the wrong images


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
def test_results_keyed_to_other_images_get_a_warning(files, official_val, tmp_path, iou_type):
    """val and test files both number their images 1, 2, ...: results of another split (here:
    the sample's detections with their image ids shifted by one) name images of other sizes."""
    records = json.loads(Path(files["jittered"]).read_text())
    n_images = len(official_val["images"])
    shifted = _write(tmp_path / "other_numbering.json",
                     [{k: v for k, v in {**r, "image_id": r["image_id"] % n_images + 1}.items() if k != "segmentation"}
                      for r in records])
    result = _run("--results", str(shifted), "--iou-type", iou_type, "--subset", "all", "--format", "json")
    assert result.exit_code == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Warning: {shifted}: "), lines
    assert "outside the image they name" in lines[0] and "results for another split" in lines[0]
    # the right numbering: silence (test_consistent_files_get_no_field_warning checks all three)


def test_rle_of_another_image_size_names_the_likely_cause(files, official_val, tmp_path):
    records = json.loads(Path(files["jittered"]).read_text())
    n_images = len(official_val["images"])
    shifted = _write(tmp_path / "other_numbering.json",
                     [{**r, "image_id": r["image_id"] % n_images + 1} for r in records])
    result = _run("--results", str(shifted), "--subset", "all")
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "segmentation size" in lines[0] and "differs from the image's" in lines[0], lines
    assert "results for another split" in lines[0]


@pytest.mark.parametrize("preset, expected", [(None, 1), ("2", 2)])
def test_eval_asks_numpy_for_no_blas_threads_unless_told(files, preset, expected):
    """numpy's OpenBLAS threads spin after import (CPU the evaluation needs); `ochuman eval`
    asks for none before numpy loads, and keeps a value the user set."""
    import os
    import subprocess
    import sys

    code = ("import sys, json; from cli.ochuman_cmd import main; from threadpoolctl import threadpool_info\n"
            "try:\n    main(sys.argv[1:], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(json.dumps([p['num_threads'] for p in threadpool_info() if p['internal_api'] == 'openblas']))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    done = subprocess.run([sys.executable, "-c", code, "eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results",
                           str(files["jittered"]), "--format", "json"], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    threads = json.loads(done.stdout.strip().splitlines()[-1])
    assert threads and all(n == expected for n in threads)
