"""The pycocotools script on a results *list* (as torchvision's CocoEvaluator, detectron2 and
mmdet call it): ``loadRes(list)``, then evaluate + accumulate + summarize, in process, for
pycocotools, its peers and ``ochuman.compat``, on a workload folder of ``bench/make_workloads.py``
(default: persons, scale 1).

    PYTHONPATH=. python bench/bench_loadres_list.py [--dir bench/out/persons_s1] [--runs 3]
                                                    [--fields as-written only] [--evaluators ...]

``--fields as-written``: the records as the results file has them (Detectron2's: bbox,
segmentation and keypoints in each); ``only``: each record keeps only what the iou type reads
(torchvision's ``prepare_for_coco_*``: boxes, masks without a box, keypoints). Each round runs
every evaluator once on fresh copies of the records (the fastest round of each step, and of
their sum, is printed: ``COCO(gt)`` too, as an evaluator may defer reading work to
``evaluate()``); every
evaluator's ``stats`` are checked against pycocotools' (1e-12). Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import time
from pathlib import Path

import numpy as np

# evaluator -> (module of COCO, name, module of COCOeval, name)
EVALUATORS = {
    "pycocotools": ("pycocotools.coco", "COCO", "pycocotools.cocoeval", "COCOeval"),
    "faster-coco-eval": ("faster_coco_eval", "COCO", "faster_coco_eval", "COCOeval_faster"),
    "hotcoco": ("hotcoco", "COCO", "hotcoco", "COCOeval"),
    "ultrafast-pycocotools": ("ultrafast_pycocotools", "COCO", "ultrafast_pycocotools", "COCOeval"),
    "ochuman.compat": ("ochuman.compat", "COCO", "ochuman.compat", "COCOeval"),
}
READS = {"bbox": ("bbox",), "segm": ("segmentation",), "keypoints": ("keypoints",)}
KEPT = ("image_id", "category_id", "score")


def classes(name: str):
    coco_module, coco, eval_module, evaluator = EVALUATORS[name]
    return getattr(importlib.import_module(coco_module), coco), getattr(importlib.import_module(eval_module), evaluator)


def time_one(coco_class, eval_class, gt_file: Path, records: list, iou_type: str) -> tuple[float, float, float, np.ndarray]:
    """(COCO(gt) seconds, loadRes seconds, evaluate + accumulate + summarize seconds, stats) on
    fresh copies of the records."""
    with contextlib.redirect_stdout(io.StringIO()):
        copies = [dict(r) for r in records]
        read = time.perf_counter()
        gt = coco_class(str(gt_file))
        start = time.perf_counter()
        dt = gt.loadRes(copies)
        loaded = time.perf_counter()
        evaluation = eval_class(gt, dt, iou_type)
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
        done = time.perf_counter()
    return start - read, loaded - start, done - loaded, np.asarray(evaluation.stats, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default="bench/out/persons_s1", help="workload folder")
    parser.add_argument("--gt", default=None, help="ground-truth file in --dir (default: its only *_val.json)")
    parser.add_argument("--results", default="results.json", help="results file in --dir")
    parser.add_argument("--runs", type=int, default=3, help="rounds (the fastest is printed)")
    parser.add_argument("--iou-types", nargs="+", default=["bbox", "segm"])
    parser.add_argument("--fields", nargs="+", choices=["as-written", "only"], default=["as-written", "only"])
    parser.add_argument("--evaluators", nargs="+", choices=list(EVALUATORS), default=list(EVALUATORS))
    args = parser.parse_args()
    folder = Path(args.dir)
    gt_file = folder / args.gt if args.gt else next(folder.glob("*_val.json"))
    written = json.loads((folder / args.results).read_text())
    print(f"{gt_file}, {len(written)} records")
    print("| iou type | records | evaluator | COCO(gt) s | loadRes(list) s | evaluate + accumulate + summarize s | total s | stats == pycocotools |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |")
    for iou_type in args.iou_types:
        for fields in args.fields:
            records = written if fields == "as-written" else [
                {k: r[k] for k in KEPT + READS[iou_type] if k in r} for r in written]
            names = ["pycocotools"] + [n for n in args.evaluators if n != "pycocotools"]
            runs = {name: [] for name in names}
            for _ in range(args.runs):
                for name in names:
                    try:
                        runs[name].append(time_one(*classes(name), gt_file, records, iou_type))
                    except Exception as err:  # noqa: BLE001 - a peer that cannot take this input: reported
                        runs[name] = f"failed: {type(err).__name__}: {err}"[:120]
            reference = runs["pycocotools"][0][3] if isinstance(runs["pycocotools"], list) else None
            for name in names:
                if isinstance(runs[name], str) or name == "pycocotools" and name not in args.evaluators:
                    if isinstance(runs[name], str):
                        print(f"| {iou_type} | {fields} | {name} | | | | | {runs[name]} |")
                    continue
                gt, load, rest = (min(r[k] for r in runs[name]) for k in range(3))
                total = min(r[0] + r[1] + r[2] for r in runs[name])
                same = "reference" if name == "pycocotools" else (
                    "yes (1e-12)" if reference is not None and np.abs(runs[name][0][3] - reference).max() <= 1e-12 else "NO")
                print(f"| {iou_type} | {fields} | {name} | {gt:.3f} | {load:.3f} | {rest:.3f} | {total:.3f} | {same} |")


if __name__ == "__main__":
    main()
