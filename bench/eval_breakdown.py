"""Where the time of one `ochuman eval` goes, phase by phase, on the evaluation workload.

    python bench/eval_breakdown.py [--scale 1] [--runs 7]

Phases (min over --runs, seconds): interpreter start and the command's imports (a `python -c`
process importing what `ochuman eval` imports, minus `python -c pass`); reading the ground
truth (the workload's official COCO file with `max_iou` fields); reading the results file
(scanner, masks checked later); blocks and IoU / OKS (segm: decoding every detection mask
once); matching + accumulation of all + moderate + hard; the report as JSON. Threads as in a
normal run (all CPUs this process may use). The workload comes from make_eval_workload.py.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# As the `ochuman` command does before numpy is imported (see cli/ochuman_cmd.py).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import json  # noqa: E402

from ochuman.eval.blocks import make_blocks  # noqa: E402
from ochuman.eval.params import EvalParams  # noqa: E402
from ochuman.eval.resolve import resolve_ground_truth  # noqa: E402
from ochuman.eval.results import detections_from_bytes  # noqa: E402
from ochuman.eval.run import _evaluate_one  # noqa: E402
from ochuman.eval.subsets import LEVELS  # noqa: E402
from ochuman.report import render  # noqa: E402
from ochuman.scan import map_file  # noqa: E402

IOU_TYPES = ("segm", "bbox", "keypoints")
IMPORTS = "import cli.ochuman_cmd, ochuman.eval.run, ochuman.report"


def best(func, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def process_time(code: str, runs: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return best(lambda: subprocess.run([sys.executable, "-c", code], check=True, env=env), runs)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, choices=(1, 10), default=1)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    folder = Path(__file__).resolve().parent / "out" / f"eval_s{args.scale}"
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {k: str(folder / v) for k, v in manifest["files"]["all"].items()}

    start = process_time("pass", args.runs)
    imports = process_time(IMPORTS, args.runs) - start
    print(f"interpreter start {start:.3f} s; imports of `ochuman eval` {imports:.3f} s\n")
    print("| iou type | ground truth | results file | blocks + IoU/OKS | match + accumulate (3 subsets) | report | sum |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for iou_type in IOU_TYPES:
        gt_path, results_path = files["gt_with_max_iou"], files[iou_type]
        params = EvalParams(iou_type=iou_type)
        ground = resolve_ground_truth(gt=gt_path, masks=iou_type == "segm")
        t_gt = best(lambda: resolve_ground_truth(gt=gt_path, masks=iou_type == "segm"), args.runs)

        def read():
            return detections_from_bytes(map_file(results_path), results_path, ground.image_ids, ground.image_sizes,
                                         [1], iou_type, ground.file_names, defer_mask_checks=True)
        t_read = best(read, args.runs)
        fresh = [read() for _ in range(args.runs)]  # masks not decoded yet, one per timed run
        t_blocks = best(lambda: make_blocks(ground.annotations, fresh.pop(), params), args.runs)
        detections = read()
        blocks_and_subsets = best(lambda: _evaluate_one("r", ground, detections, params, list(LEVELS), "official",
                                                        False, False), args.runs)
        t_subsets = blocks_and_subsets - best(lambda: make_blocks(ground.annotations, detections, params), args.runs)
        evaluation = _evaluate_one("r", ground, detections, params, list(LEVELS), "official", False, False)
        rows = [{"subset": s, **{f"s{k}": float(v) for k, v in enumerate(acc.stats)}}
                for s, acc in evaluation.subsets.items()]
        t_report = best(lambda: render(rows, "json"), args.runs)
        total = t_gt + t_read + t_blocks + t_subsets + t_report
        print(f"| {iou_type} | {t_gt:.3f} | {t_read:.3f} | {t_blocks:.3f} | {t_subsets:.3f} | {t_report:.4f} | {total:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
