"""The evaluation benchmark's scripts keep working: the workload generators at a tiny size give
files that pycocotools loads and scores (AP neither 0 nor 1) and have the promised shape, and
``bench/bench_eval.py --quick`` runs pycocotools and ours side by side on tiny workloads with
every number checked against pycocotools. No timings are asserted."""
from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
import make_workloads  # noqa: E402

pytestmark = pytest.mark.slow


def _pycocotools_stats(gt_path: Path, results_path: Path, iou_type: str) -> list[float]:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(str(results_path)), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats)


@pytest.mark.parametrize("shape", list(make_workloads.SHAPES))
def test_generated_workload_loads_and_scores_in_pycocotools(tmp_path, shape):
    manifest = make_workloads.make(shape, tmp_path, seed=0, scale=1, images=20, log=lambda m: None)
    assert json.loads((tmp_path / "manifest.json").read_text())["counts"] == manifest["counts"]
    files = manifest["files"]
    assert set(files) == ({"all", "moderate", "hard"} if make_workloads.SHAPES[shape].levels else {"all"})
    for subset, names in files.items():
        for iou_type in manifest["iou_types"]:
            stats = _pycocotools_stats(tmp_path / names["gt"], tmp_path / names[iou_type], iou_type)
            assert 0 < stats[0] < 1, (subset, iou_type, stats)


def test_persons_shape_mixes_polygons_rle_and_crowds_with_combined_records(tmp_path):
    manifest = make_workloads.make("persons", tmp_path, images=20, log=lambda m: None)
    files = manifest["files"]["all"]
    assert files["segm"] == files["bbox"] == files["keypoints"]  # one results file for all three
    anns = json.loads((tmp_path / files["gt"]).read_text())["annotations"]
    kinds = {(a["iscrowd"], type(a["segmentation"]).__name__) for a in anns}
    assert kinds == {(0, "list"), (0, "dict"), (1, "dict")}
    crowds = [a for a in anns if a["iscrowd"]]
    assert all(isinstance(a["segmentation"]["counts"], list) for a in crowds)  # uncompressed, as COCO's
    records = json.loads((tmp_path / files["segm"]).read_text())
    assert all({"bbox", "segmentation", "keypoints", "score"} <= set(r) for r in records)
    assert len(records) == manifest["counts"]["all"]["detections"]


def test_coco_shape_has_several_categories_per_image_and_crowds(tmp_path):
    manifest = make_workloads.make("coco1k", tmp_path, images=30, log=lambda m: None)
    gt = json.loads((tmp_path / manifest["files"]["all"]["gt"]).read_text())
    assert len(gt["categories"]) == 80
    per_image: dict = {}
    for a in gt["annotations"]:
        per_image.setdefault(a["image_id"], set()).add(a["category_id"])
    assert sum(len(c) > 1 for c in per_image.values()) > len(gt["images"]) / 2
    assert any(a["iscrowd"] for a in gt["annotations"])
    records = json.loads((tmp_path / manifest["files"]["all"]["bbox"]).read_text())
    per_image_dets = [sum(r["image_id"] == img["id"] for r in records) for img in gt["images"]]
    assert min(per_image_dets) >= 20 and max(per_image_dets) <= 100


def test_bench_eval_quick_runs_pycocotools_and_ours_side_by_side(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_eval.py"), "--quick", "--images", "6", "--root", str(tmp_path),
         "--workloads", "persons", "coco1k", "--iou-types", "segm",
         "--evaluators", "pycocotools", "ochuman.compat", "ochuman eval", "--json-out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["runs"] == 1
    persons = results["workloads"]["persons"]["cases"]["segm"]
    for name in ("pycocotools", "ochuman.compat", "ochuman eval"):
        case = persons[name]
        assert case["stats_equal"], (name, case)
        for key in ("all", "levels"):
            assert len(case[key]) == 1 and case[f"{key}_rss_mib"][0] > 0
    coco = results["workloads"]["coco1k"]["cases"]["segm"]
    assert coco["ochuman.compat"]["stats_equal"]
    command = coco["ochuman eval"]
    assert command["stats_equal"] or (command["status"] == "refused" and command["refused"].startswith("Error: "))
    assert "| ochuman.compat |" in done.stdout and "### Summary" in done.stdout


def test_bench_eval_reads_the_commands_csv_numbers(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH / "bench_eval.py"), "--quick", "--images", "6", "--root", str(tmp_path),
         "--workloads", "persons", "--iou-types", "keypoints", "--evaluators", "ochuman eval",
         "--command-format", "csv", "--json-out", str(out)],
        capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    case = json.loads(out.read_text())["workloads"]["persons"]["cases"]["keypoints"]["ochuman eval"]
    assert case["stats_equal"] and "--format csv" in case["cmd"] and "--format csv" in case["cmd_levels"]


def test_eval_breakdown_runs_on_a_tiny_workload(tmp_path):
    done = subprocess.run(
        [sys.executable, str(BENCH / "eval_breakdown.py"), "--workloads", "persons", "--images", "4", "--runs", "1",
         "--root", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for path in ("`ochuman.compat`", "`ochuman eval`"):
        table = done.stdout.split(path)[1]
        assert "| segm |" in table and "| keypoints |" in table


def test_loadres_list_bench_runs_and_the_facade_agrees(tmp_path):
    make_workloads.make("persons", tmp_path, images=12, log=lambda m: None)
    done = subprocess.run([sys.executable, str(BENCH / "bench_loadres_list.py"), "--dir", str(tmp_path), "--runs", "1",
                           "--iou-types", "bbox", "segm", "keypoints", "--evaluators", "ochuman.compat"],
                          capture_output=True, text=True, timeout=600, cwd=BENCH.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in done.stdout.splitlines()
            if line.startswith(("| bbox", "| segm", "| keypoints"))]
    assert len(rows) == 3 * 2  # iou types x (as-written, only); pycocotools (the reference) not asked for
    for iou_type, fields, evaluator, *times, same in rows:
        assert evaluator == "ochuman.compat" and same == "yes (1e-12)", (iou_type, fields)
        assert all(float(t) >= 0 for t in times)
