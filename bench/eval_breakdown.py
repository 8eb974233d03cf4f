"""Where the time of our evaluation goes, phase by phase, on the benchmark's workload shapes.

    python bench/eval_breakdown.py [--workloads ochuman persons coco1k val2017] [--scale 1] [--runs 3]

For each workload (``make_workloads.py``; generated when missing) and iou type, both of ours run
in this process, ``--runs`` times after a warm-up; the phases of the fastest run are printed:

- ``ochuman.compat``: the pycocotools script (``COCO(gt)``, ``loadRes``, ``COCOeval``,
  ``evaluate``, ``accumulate``, ``summarize``);
- ``ochuman eval``: the command's ``main`` with ``--gt GT --results RES --iou-type T --subset all
  --format json`` (``refused`` and its message where it refuses the ground truth).

Phases are timed by wrapping functions found *by name* wherever a loaded ``ochuman``, ``cli`` or
``pycocotools`` module binds them (``PHASES``; a name that no module has is listed under the
table, so the breakdown survives modules moving). Each phase's time is exclusive: a wrapped
function called inside another counts for its own phase only; ``other`` is the rest of the run.
Wrapping adds about a microsecond per call (annToRLE / frPyObjects are called per annotation);
work done in other processes is not seen, work in threads counts per thread: the command reads
the ground truth and the results in background threads while the main thread waits or works,
so its phases can add up to more than the total (``other`` then reads negative).

Also: interpreter start (``python -c pass``) and the imports of each path (``python -c "import
..."`` minus that), as whole processes, min of ``--runs``.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import json
import os
import subprocess
import sys
import threading
import time
import types
from collections import defaultdict
from pathlib import Path

# As the `ochuman` command does before numpy is imported (see cli/ochuman_cmd.py), and no
# ground-truth cache (the peers have none).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["OCHUMAN_CACHE"] = "off"

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_workloads  # noqa: E402
from bench_eval import EVAL_SOURCE, SCRIPT_EVALUATORS, quiet  # noqa: E402

# Phase label -> function names ("name" for a module-level function, "Class.method"), looked up
# in every loaded module of MODULE_ROOTS. Order = column order.
PHASES = {
    "compat": {
        "load GT (COCO())": ["COCO.__init__"],
        "loadRes": ["COCO.loadRes"],
        "polygon rasterisation": ["COCO.annToRLE", "frPyObjects"],
        "columns (GT + results fields)": ["_columns", "_check_prepared"],
        "IoU / OKS (blocks)": ["make_blocks"],
        "matching": ["base_state", "variant_states", "match"],
        "accumulate": ["COCOeval.accumulate"],
        "summarize": ["COCOeval.summarize"],
    },
    "command": {
        "read GT (prefetch thread)": ["PrefetchedAnnotations._background"],
        "load GT": ["resolve_ground_truth"],
        "polygon rasterisation": ["polygon_masks", "polygons_to_rle", "holed_polygons_to_rle", "frPyObjects"],
        "read results (prefetch thread)": ["PrefetchedResults._read"],
        "results scan": ["detections_from_bytes", "detections_from_records", "scan_results"],
        "IoU / OKS (blocks)": ["make_blocks"],
        "matching": ["base_state", "variant_states", "subset_variant", "match"],
        "accumulate": ["accumulate", "accumulate_variants"],
        "report": ["render"],
    },
}
MODULE_ROOTS = ("ochuman", "cli", "pycocotools")
IMPORTS = {"compat": "import ochuman.compat", "command": "import cli.ochuman_cmd, ochuman.eval.run, ochuman.report"}


class PhaseTimer:
    """Exclusive wall time per phase label of wrapped functions (per thread)."""

    def __init__(self):
        self.times: dict = defaultdict(float)
        self._local = threading.local()

    def wrap(self, label: str, func):
        timer = self

        @functools.wraps(func)
        def timed_call(*args, **kwargs):
            stack = timer._local.__dict__.setdefault("stack", [])
            stack.append(0.0)  # time of wrapped calls inside this one
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                inner = stack.pop()
                timer.times[label] += elapsed - inner
                if stack:
                    stack[-1] += elapsed
        return timed_call


def _modules():
    return [m for name, m in list(sys.modules.items())
            if isinstance(m, types.ModuleType) and name.split(".")[0] in MODULE_ROOTS]


@contextlib.contextmanager
def phases_wrapped(timer: PhaseTimer, phases: dict, missing: set):
    """Wrap every function of ``phases`` where loaded modules bind it; restore on exit."""
    undo = []
    modules = _modules()
    for label, names in phases.items():
        for name in names:
            found = False
            if "." in name:
                cls_name, attr = name.split(".")
                seen = set()
                for m in modules:
                    cls = getattr(m, cls_name, None)
                    if isinstance(cls, type) and id(cls) not in seen and attr in cls.__dict__:
                        seen.add(id(cls))
                        original = cls.__dict__[attr]
                        setattr(cls, attr, timer.wrap(label, original))
                        undo.append((cls, attr, original))
                        found = True
            else:
                originals = {id(f): f for m in modules if callable(f := getattr(m, name, None))
                             and not isinstance(f, type)}
                wrappers = {k: timer.wrap(label, f) for k, f in originals.items()}
                for m in modules:
                    f = m.__dict__.get(name)
                    if f is not None and id(f) in wrappers:
                        setattr(m, name, wrappers[id(f)])
                        undo.append((m, name, f))
                        found = True
            if not found:
                missing.add(name)
    try:
        yield
    finally:
        for owner, attr, original in reversed(undo):
            setattr(owner, attr, original)


def compat_run(gt: str, results: str, iou_type: str):
    ns: dict = {}
    exec(SCRIPT_EVALUATORS["ochuman.compat"][0] + "\n" + EVAL_SOURCE, ns)
    return lambda: ns["run_eval"](gt, results, iou_type)


def command_run(gt: str, results: str, iou_type: str):
    from cli.ochuman_cmd import main
    args = ["eval", "--gt", gt, "--results", results, "--iou-type", iou_type, "--subset", "all", "--format", "json"]
    return lambda: main(args, standalone_mode=False)


def breakdown(run, phases: dict, runs: int, missing: set) -> dict:
    """Phases of the fastest of ``runs`` runs (after a warm-up): {label: s, "other": s, "total": s}."""
    with quiet():
        run()
    best = None
    for _ in range(runs):
        timer = PhaseTimer()
        with phases_wrapped(timer, phases, missing), quiet():
            start = time.perf_counter()
            run()
            total = time.perf_counter() - start
        if best is None or total < best["total"]:
            best = {**{label: timer.times.get(label, 0.0) for label in phases}, "total": total}
            best["other"] = total - sum(timer.times.values())
    return best


def process_time(code: str, runs: int) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    times = []
    for _ in range(runs + 1):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        times.append(time.perf_counter() - start)
    return min(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(make_workloads.SHAPES), default=list(make_workloads.SHAPES))
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--images", type=int, default=None, help="images per unit of --scale (default: the shape's)")
    parser.add_argument("--root", type=Path, default=make_workloads.OUT)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)

    start = process_time("pass", args.runs)
    print(f"interpreter start {start:.3f} s; imports: " + "; ".join(
        f"{path} {process_time(code, args.runs) - start:.3f} s" for path, code in IMPORTS.items()) + "\n")
    importlib.import_module("ochuman.compat")
    importlib.import_module("cli.ochuman_cmd")
    missing: set = set()
    for shape in args.workloads:
        folder = make_workloads.folder_of(shape, args.scale, args.images, args.root)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists() or json.loads(manifest_path.read_text()).get("version") != make_workloads.WORKLOAD_VERSION:
            make_workloads.make(shape, folder, scale=args.scale, images=args.images, log=lambda m: print(m, file=sys.stderr))
        manifest = json.loads(manifest_path.read_text())
        files = {k: str(folder / v) for k, v in manifest["files"]["all"].items()}
        print(f"### {shape}: {make_workloads.SHAPES[shape].summary} ({folder})\n")
        for path, make_run in (("compat", compat_run), ("command", command_run)):
            labels = list(PHASES[path])
            print(f"`{'ochuman.compat' if path == 'compat' else 'ochuman eval'}`, seconds (fastest of {args.runs}):\n")
            print("| iou type | " + " | ".join(labels) + " | other | total |")
            print("| --- |" + " ---: |" * (len(labels) + 2))
            for iou_type in manifest["iou_types"]:
                run = make_run(files["gt"], files[iou_type], iou_type)
                try:
                    row = breakdown(run, PHASES[path], args.runs, missing)
                except Exception as err:  # noqa: BLE001 - a refusal of the command, reported
                    print(f"| {iou_type} | refused: {type(err).__name__}: {str(err).splitlines()[0][:200]} |")
                    continue
                print(f"| {iou_type} | " + " | ".join(f"{row[k]:.3f}" for k in [*labels, "other", "total"]) + " |")
            print()
    if missing:
        print("functions no loaded module binds (their phases read 0): " + ", ".join(sorted(missing)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
