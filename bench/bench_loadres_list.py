"""The pycocotools drop-in on a results *list* (as torchvision's CocoEvaluator calls it):
``loadRes(list)`` and evaluate + accumulate + summarize, ``ochuman.compat`` beside pycocotools,
in process, on a workload folder of ``bench/make_workloads.py`` (default: persons, scale 1).

    PYTHONPATH=. python bench/bench_loadres_list.py [--dir bench/out/persons_s1] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pycocotools.coco
import pycocotools.cocoeval

from ochuman.compat import COCO, COCOeval, quietly

IMPLEMENTATIONS = {"ochuman.compat": (COCO, COCOeval),
                   "pycocotools": (pycocotools.coco.COCO, pycocotools.cocoeval.COCOeval)}


def time_one(coco_class, eval_class, gt_file: Path, records: list, iou_type: str) -> tuple[float, float, float]:
    """(loadRes seconds, evaluate + accumulate + summarize seconds, AP) on fresh copies of the records."""
    with quietly():
        gt = coco_class(str(gt_file))
        copies = [dict(r) for r in records]
        start = time.perf_counter()
        dt = gt.loadRes(copies)
        loaded = time.perf_counter()
        evaluation = eval_class(gt, dt, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        done = time.perf_counter()
    return loaded - start, done - loaded, float(evaluation.stats[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="bench/out/persons_s1", help="workload folder")
    parser.add_argument("--gt", default="person_keypoints_val.json", help="ground-truth file in --dir")
    parser.add_argument("--results", default="results.json", help="results file in --dir")
    parser.add_argument("--runs", type=int, default=3, help="rounds (the fastest is printed)")
    parser.add_argument("--iou-types", nargs="+", default=["bbox", "segm"])
    args = parser.parse_args()
    folder = Path(args.dir)
    records = json.loads((folder / args.results).read_text())
    print("| iou type | evaluator | loadRes(list) s | evaluate + accumulate + summarize s | AP |")
    print("| --- | --- | ---: | ---: | ---: |")
    for iou_type in args.iou_types:
        for name, (coco_class, eval_class) in IMPLEMENTATIONS.items():
            runs = [time_one(coco_class, eval_class, folder / args.gt, records, iou_type) for _ in range(args.runs)]
            print(f"| {iou_type} | {name} | {min(r[0] for r in runs):.3f} | {min(r[1] for r in runs):.3f} "
                  f"| {runs[0][2]:.6f} |")


if __name__ == "__main__":
    main()
