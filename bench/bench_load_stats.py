"""Time ``ochuman.load`` + ``dataset_stats`` against a bare ``json.load`` of an OCHuman-scale file.

    python bench/bench_load_stats.py [--runs 5] [--file bench/out/ochuman.json]

Generates the synthetic native file with ``make_native.py`` (seed 0) when it is missing,
checks that the toolkit reads it right (person, image and annotation counts; the stored
``max_iou`` equals the float32 of the MaxIoU recomputed from the boxes, for every person),
then times each case ``--runs`` times and prints min and median as a markdown table with the
ratio to ``json.load`` (in-process cases) or to a whole ``python -c "json.load"`` process (the
CLI). The goal is load + stats <= 2x ``json.load``.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import msgspec
import numpy as np

import ochuman
from ochuman.stats import dataset_stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_native  # noqa: E402

GOAL = 2.0


def _time(func, runs: int) -> list[float]:
    func()  # warm-up: file in the page cache, modules imported
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def _ochuman_command() -> list[str]:
    script = Path(sys.executable).parent / "ochuman"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli.ochuman_cmd import main; sys.exit(main())"]


def check(path: Path, expect: dict) -> None:
    """Counts and MaxIoU of the file as the toolkit reads it; raises AssertionError if wrong."""
    dataset = ochuman.load(path)
    every = dataset_stats(dataset)
    bench = dataset_stats(dataset.filter_persons("kpt&segm"))
    with_kpt = dataset_stats(dataset.filter_persons("kpt"))
    found = {
        "persons (filter none)": every["persons"],
        "images (filter none)": every["images"],
        "persons with keypoints": every["persons_with_keypoints"],
        "persons (filter kpt)": with_kpt["persons"],
        "persons with mask": every["persons_with_mask"],
        "persons (filter kpt&segm)": bench["persons"],
        "images (filter kpt&segm)": bench["images"],
    }
    wrong = {k: (v, expect[k]) for k, v in found.items() if v != expect[k]}
    assert not wrong, f"counts (found, expected): {wrong}"
    rounded = dataset.max_iou_box.astype(np.float32).astype(np.float64)
    bad = np.flatnonzero(rounded != dataset.max_iou)
    assert not len(bad), f"{len(bad)} persons whose stored max_iou is not float32(max_iou_box), e.g. {bad[:5]}"
    out = subprocess.run([*_ochuman_command(), "stats", str(path), "--format", "json"],
                         capture_output=True, text=True, check=True).stdout
    cli = json.loads(out)
    assert (cli["persons"], cli["images"]) == (expect["persons (filter kpt&segm)"], expect["images (filter kpt&segm)"]), cli
    print(f"checks passed: {found}; max_iou == float32(max_iou_box) for all {len(dataset)} persons; "
          f"CLI reports {cli['images']} images / {cli['persons']} persons", file=sys.stderr)


def machine() -> dict:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        ram = f"{kb / 2**20:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram": ram,
        "python": platform.python_version(),
        **{name: version(name) for name in ("numpy", "msgspec", "pycocotools")},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--file", type=Path, default=Path(__file__).resolve().parent / "out" / "ochuman.json")
    parser.add_argument("--seed", type=int, default=0, help="seed when generating the file")
    parser.add_argument("--indent", type=int, default=4, help="indentation when generating (0: compact)")
    parser.add_argument("--no-check", action="store_true", help="skip the count checks (custom files)")
    args = parser.parse_args(argv)
    path = args.file
    if not path.exists():
        start = time.perf_counter()
        make_native.write_native(path, seed=args.seed, indent=args.indent)
        print(f"generated {path} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    if not args.no_check:
        check(path, {
            "persons (filter none)": make_native.N_PERSONS, "images (filter none)": make_native.N_IMAGES,
            "persons with keypoints": make_native.N_KEYPOINTS, "persons (filter kpt)": make_native.N_KEYPOINTS,
            "persons with mask": make_native.N_MASKED, "persons (filter kpt&segm)": make_native.N_MASKED,
            "images (filter kpt&segm)": make_native.N_MASKED_IMAGES,
        })

    file = str(path)

    def bare_json():
        with open(file, encoding="utf-8") as handle:
            return json.load(handle)

    def msgspec_untyped():
        return msgspec.json.decode(Path(file).read_bytes())

    def load():
        return ochuman.load(file)

    def load_stats():
        return dataset_stats(ochuman.load(file).filter_persons("kpt&segm"))

    def process(cmd):
        def run():
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return run

    cases = [  # (label, function, baseline label)
        ("`json.load` (bare)", bare_json, None),
        ("`msgspec.json.decode` untyped (reference)", msgspec_untyped, "`json.load` (bare)"),
        ("`ochuman.load(path)`", load, "`json.load` (bare)"),
        ("`ochuman.load` + `dataset_stats(filter_persons('kpt&segm'))`", load_stats, "`json.load` (bare)"),
        ("process: `python -c \"import json; json.load(open(FILE))\"`",
         process([sys.executable, "-c", f"import json; json.load(open({file!r}))"]), None),
        ("process: `ochuman stats FILE --format json`",
         process([*_ochuman_command(), "stats", file, "--format", "json"]),
         "process: `python -c \"import json; json.load(open(FILE))\"`"),
        ("process: `python -c pass` (interpreter start, reference)",
         process([sys.executable, "-c", "pass"]), None),
    ]
    results = {}
    for label, func, _ in cases:
        results[label] = _time(func, args.runs)
        print(f"  {label}: min {min(results[label]):.3f} s", file=sys.stderr)

    info = machine()
    size = path.stat().st_size
    print(f"\nfile: {path} ({size / 1e6:.1f} MB, {size} bytes); runs: {args.runs} (+1 warm-up)")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + "\n")
    print("| case | min (s) | median (s) | ratio min | ratio median |")
    print("| --- | ---: | ---: | ---: | ---: |")
    verdicts = []
    for label, _, base in cases:
        t = results[label]
        lo, med = min(t), statistics.median(t)
        if base is None:
            ratios = "1.00x (baseline) | 1.00x (baseline) |" if "pass" not in label else "| |"
        else:
            r_lo, r_med = lo / min(results[base]), med / statistics.median(results[base])
            ratios = f"{r_lo:.2f}x | {r_med:.2f}x |"
            if "dataset_stats" in label or "ochuman stats" in label:
                verdicts.append((label, r_med))
        print(f"| {label} | {lo:.3f} | {med:.3f} | {ratios}")
    print()
    for label, ratio in verdicts:
        print(f"{label}: {ratio:.2f}x its json.load baseline (median) -> "
              f"{'within' if ratio <= GOAL else 'OVER'} the {GOAL:g}x goal")
    return 0 if all(r <= GOAL for _, r in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
