"""Time COCO evaluation (segm, bbox, keypoints) by pycocotools and its peers on an OCHuman-val-scale workload.

    python bench/bench_eval.py [--scale 1] [--runs 7] [--peers ...] [--skip-pycocotools]

Generates the workload with ``make_eval_workload.py`` (seed 0) when its folder is missing, then
for each iou type and each evaluator times, ``--runs`` times after one warm-up, min and median:

- library, ``all``: ``COCO(gt)``, ``gt.loadRes(results)``, ``COCOeval(gt, dt, iou_type)``,
  ``evaluate()``, ``accumulate()``, ``summarize()`` in this process (imports done before);
- process, ``all``: the same as a whole ``python -c`` process (interpreter start and imports
  included; bytecode caching on, see ``PROCESS_ENV``). The processes of one iou type are
  timed round-robin (every evaluator once per round) after the library cases;
- ``levels``: all + moderate + hard. The peers evaluate three times, on the official range
  files (``..._range_0.00_1.00``, ``..._0.50_0.75``, ``..._0.75_1.00``, each with its own
  remapped results file), as library calls and as one process.

Every peer's ``stats`` (12 numbers, 10 for keypoints) are checked against pycocotools' for the
same files to 1e-12 (library and process runs, every subset); a mismatch prints a note and
marks the row. With ``--skip-pycocotools`` pycocotools is not timed, but its stats are still
computed once per case as the reference (``--no-reference`` skips that too).

"ochuman (ours)" (see ``OURS_*`` below) is timed when ``ochuman.compat`` and the ``ochuman
eval`` command exist, and skipped with a note otherwise: ``ochuman.benchmark.evaluate_results``
for the library case and
``ochuman eval --gt GT --results RES --iou-type T --subset all --format json`` for the process,
``--subset levels`` (one run, all + moderate + hard, from the 0.00_1.00 files plus the MaxIoU of
each person) against the peers' three evaluations.

Also times ``json.load`` and ``orjson.loads`` of the ground truth + results files as a
reference. Prints markdown tables; writes the raw numbers to ``bench/out/eval_bench_s{scale}.json``.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_eval_workload  # noqa: E402

IOU_TYPES = ("segm", "bbox", "keypoints")
SUBSETS = ("all", "moderate", "hard")
TOLERANCE = 1e-12
REFERENCE = "pycocotools"

# Each evaluator: the import that binds COCO and COCOeval, and its distribution name.
PEERS = {
    "pycocotools": ("from pycocotools.coco import COCO\nfrom pycocotools.cocoeval import COCOeval",
                    "pycocotools"),
    "faster-coco-eval": ("from faster_coco_eval import COCO, COCOeval_faster as COCOeval",
                         "faster-coco-eval"),
    "hotcoco": ("from hotcoco import COCO, COCOeval", "hotcoco"),
    "ultrafast-pycocotools": ("from ultrafast_pycocotools import COCO, COCOeval", "ultrafast-pycocotools"),
}

# The standard evaluation, the same text for every evaluator, in-process and in `python -c`.
EVAL_SOURCE = '''
def run_eval(gt_path, res_path, iou_type):
    gt = COCO(gt_path)
    dt = gt.loadRes(res_path)
    ev = COCOeval(gt, dt, iou_type)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return [float(x) for x in ev.stats]
'''

# ============================================================================================
# HOOK: "ochuman (ours)". Timed only when these exist; skipped with a note otherwise.
# --------------------------------------------------------------------------------------------
OURS = "ochuman (ours)"
# Library, one evaluation: the evaluate_results API (the pycocotools-shaped facade
# ochuman.compat builds pycocotools' per-annotation dicts and is not what is timed here).
OURS_LIBRARY_SOURCE = '''
from ochuman.benchmark import evaluate_results
def run_eval(gt_path, res_path, iou_type):
    row = evaluate_results(res_path, gt=gt_path, iou_type=iou_type, subsets=("all",)).rows()[0]
    return [row[name] for name in STAT_NAMES[iou_type]]
'''
# Process: `ochuman eval ...` (the console script next to this interpreter).
OURS_EVAL_ARGS = ["eval", "--gt", "{gt}", "--results", "{results}", "--iou-type", "{iou_type}",
                  "--subset", "{subset}", "--format", "json"]
# The levels run needs each person's MaxIoU; a COCO file has none, so its GT is the workload's
# ..._0.00_1.00_with_max_iou.json (the same file plus a "max_iou" field per annotation, which
# `ochuman eval` reads). Manifest key of that file:
OURS_LEVELS_GT = "gt_with_max_iou"
# Extra arguments of the levels run, {max_iou} = the workload's max_iou.json (side file
# annotation id -> MaxIoU). Also settable with --ours-levels-args.
OURS_LEVELS_EXTRA: list[str] = []
# Library, levels: source defining run_levels(gt_path, res_path, iou_type) returning what
# ours_stats() reads (rows with "subset" and the stat names), all three subsets in one
# evaluation. None: not timed. Any exception (API not there yet) skips it with a note.
OURS_LEVELS_LIBRARY_SOURCE: str | None = '''
from ochuman.benchmark import evaluate_results
def run_levels(gt_path, res_path, iou_type):
    return evaluate_results(res_path, gt=gt_path, iou_type=iou_type,
                            subsets=("all", "moderate", "hard")).rows()
'''
# Stat names in ours' rows (pycocotools' summarize order).
STAT_NAMES = {
    "segm": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "bbox": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "keypoints": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
}
# ============================================================================================


def ochuman_command() -> list[str]:
    script = Path(sys.executable).parent / "ochuman"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli.ochuman_cmd import main; sys.exit(main())"]


def ours_available() -> tuple[bool, bool, str]:
    """(library facade importable, `ochuman eval` exists, note)."""
    notes = []
    try:
        compat = importlib.import_module("ochuman.compat")
        lib = hasattr(compat, "COCO") and hasattr(compat, "COCOeval")
        if not lib:
            notes.append("ochuman.compat has no COCO/COCOeval")
    except Exception as err:  # noqa: BLE001 - anything that keeps it from importing
        lib = False
        notes.append(f"ochuman.compat not importable ({type(err).__name__}: {err})")
    try:
        done = subprocess.run([*ochuman_command(), "eval", "--help"], capture_output=True, text=True, timeout=60)
        cli = done.returncode == 0
        if not cli:
            notes.append("`ochuman eval` does not exist yet")
    except (OSError, subprocess.TimeoutExpired) as err:
        cli = False
        notes.append(f"`ochuman eval` not runnable ({err})")
    return lib, cli, "; ".join(notes)


@contextlib.contextmanager
def quiet():
    """Send file descriptor 1 to /dev/null (summaries printed by Python, C or Rust code)."""
    sys.stdout.flush()
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def timed(func, runs: int):
    """One warm-up run, then ``runs`` timed ones with gc.collect() before each.

    Returns (times, value of the warm-up run, values of the timed runs).
    """
    with quiet():
        first = func()
    times, values = [], []
    for _ in range(runs):
        gc.collect()
        with quiet():
            start = time.perf_counter()
            value = func()
            times.append(time.perf_counter() - start)
        values.append(value)
    return times, first, values


def timed_round_robin(commands: list[list[str]], runs: int) -> list[tuple]:
    """Whole processes timed interleaved: one warm-up run of each command, then ``runs`` rounds
    that run every command once, in order, so that the machine's drift over the minutes of a
    benchmark (clock, caches, other load) reaches every evaluator alike. Returns per command
    (times, stdout of the warm-up run), or (the exception, None) for one that failed."""
    out: list = [None] * len(commands)
    for k, cmd in enumerate(commands):
        try:
            out[k] = ([], run_process(cmd)())
        except Exception as err:  # noqa: BLE001 - reported as a note of its evaluator
            out[k] = (err, None)
    for _ in range(runs):
        for k, cmd in enumerate(commands):
            if isinstance(out[k][0], Exception):
                continue
            gc.collect()
            start = time.perf_counter()
            try:
                run_process(cmd)()
            except Exception as err:  # noqa: BLE001
                out[k] = (err, None)
                continue
            out[k][0].append(time.perf_counter() - start)
    return out


def library_case(import_source: str, pairs: list[tuple[str, str]], iou_type: str):
    namespace: dict = {"STAT_NAMES": STAT_NAMES}
    # imports happen here, outside the timing; a source defining run_eval itself replaces EVAL_SOURCE
    exec(import_source if "def run_eval" in import_source else import_source + "\n" + EVAL_SOURCE, namespace)
    run_eval = namespace["run_eval"]
    return lambda: [run_eval(g, r, iou_type) for g, r in pairs]


def process_script(import_source: str, pairs: list[tuple[str, str]], iou_type: str) -> str:
    return (import_source + "\n" + EVAL_SOURCE + "\nimport json\n"
            f"print('STATS ' + json.dumps([run_eval(g, r, {iou_type!r}) for g, r in {pairs!r}]))\n")


# Processes run with bytecode caching on, as installed packages have it (this workplace sets
# PYTHONDONTWRITEBYTECODE, which would make every process compile the modules of a package
# installed from source again; the warm-up run writes the caches).
PROCESS_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_process(cmd: list[str]):
    def run():
        done = subprocess.run(cmd, capture_output=True, text=True, env=PROCESS_ENV)
        if done.returncode:
            raise RuntimeError(f"{cmd[:3]}... exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout
    return run


def stats_from_stdout(text: str) -> list[list[float]]:
    for line in reversed(text.splitlines()):
        if line.startswith("STATS "):
            return json.loads(line[6:])
    raise ValueError("no STATS line in the process output")


def _stat_rows(obj, names: tuple[str, ...], found: list) -> list:
    """(subset or None, stats) for every dict holding all the stat names, depth first."""
    if isinstance(obj, list):
        for v in obj:
            _stat_rows(v, names, found)
    elif isinstance(obj, dict):
        if all(isinstance(obj.get(k), (int, float)) for k in names):
            found.append((obj.get("subset"), [float(obj[k]) for k in names]))
        else:
            for v in obj.values():
                _stat_rows(v, names, found)
    return found


def ours_stats(obj, iou_type: str, subsets: tuple[str, ...]):
    """Stats per subset from ours' rows (`ochuman eval --format json` or `EvalReport.rows()`):
    dicts with the stat names as keys and a "subset" name. None when not found."""
    if isinstance(obj, str):
        obj = json.loads(obj)
    rows = _stat_rows(obj, STAT_NAMES[iou_type], [])
    by_name = {subset: stats for subset, stats in rows if subset is not None}
    if all(s in by_name for s in subsets):
        return [by_name[s] for s in subsets]
    return [stats for _, stats in rows[:len(subsets)]] if len(rows) >= len(subsets) else None


def compare(got, expected) -> str:
    """'' when every number matches to TOLERANCE, else a short description."""
    if expected is None:
        return "not verified (no reference)"
    if got is None:
        return "stats not found in the output"
    problems = []
    for subset, g, e in zip(SUBSETS, got, expected):
        if g is None or len(g) != len(e):
            problems.append(f"{subset}: {None if g is None else len(g)} numbers, expected {len(e)}")
            continue
        diff = max(abs(a - b) for a, b in zip(g, e))
        if not diff <= TOLERANCE:
            worst = max(range(len(e)), key=lambda i: abs(g[i] - e[i]))
            problems.append(f"{subset}: max |diff| {diff:.3g} (stat {worst}: {g[worst]!r} vs {e[worst]!r})")
    return "; ".join(problems)


def machine(peers) -> dict:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        ram = f"{int(Path('/proc/meminfo').read_text().split()[1]) / 2**20:.1f} GiB"

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram": ram,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            **{name: ver(name) for name in ("numpy", "orjson", *[PEERS[p][1] for p in peers])}}


def fmt(t) -> str:
    return "" if not t else f"{min(t):.3f} | {statistics.median(t):.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, choices=(1, 10), default=1)
    parser.add_argument("--dir", type=Path, default=None, help="workload folder (default bench/out/eval_s{scale})")
    parser.add_argument("--seed", type=int, default=0, help="seed when generating the workload")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--iou-types", nargs="+", choices=IOU_TYPES, default=list(IOU_TYPES))
    parser.add_argument("--peers", nargs="+", choices=list(PEERS), default=list(PEERS))
    parser.add_argument("--skip-pycocotools", action="store_true",
                        help="do not time pycocotools (its stats are still computed once as the reference)")
    parser.add_argument("--no-reference", action="store_true", help="with --skip-pycocotools: no reference stats")
    parser.add_argument("--no-ours", action="store_true", help="skip the ochuman (ours) hook")
    parser.add_argument("--ours-levels-args", default=None,
                        help="extra arguments of `ochuman eval --subset levels`, {max_iou} = max_iou.json")
    parser.add_argument("--no-process", action="store_true", help="library timings only")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)

    folder = args.dir or Path(__file__).resolve().parent / "out" / f"eval_s{args.scale}"
    if not (folder / "manifest.json").exists():
        make_eval_workload.make_workload(folder, args.seed, args.scale, log=lambda m: print(m, file=sys.stderr))
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {s: {k: str(folder / v) for k, v in manifest["files"][s].items()} for s in SUBSETS}
    max_iou_path = str(folder / manifest["max_iou"])
    timed_peers = [p for p in args.peers if not (p == REFERENCE and args.skip_pycocotools)]

    lib_ok = cli_ok = False
    ours_note = "skipped (--no-ours)"
    if not args.no_ours:
        lib_ok, cli_ok, ours_note = ours_available()
    levels_extra = OURS_LEVELS_EXTRA if args.ours_levels_args is None else args.ours_levels_args.split()

    results: dict = {"workload": {"dir": str(folder), **{k: manifest[k] for k in ("seed", "scale", "counts", "bytes")}},
                     "runs": args.runs, "machine": machine(args.peers), "cases": {}, "notes": []}
    if ours_note:
        results["notes"].append(f"{OURS}: {ours_note}")
        print(f"{OURS}: {ours_note}", file=sys.stderr)

    import orjson

    load_start = list(os.getloadavg())  # other work on the machine shows here (1, 5, 15 min)

    for iou_type in args.iou_types:
        pairs_all = [(files["all"]["gt"], files["all"][iou_type])]
        pairs_levels = [(files[s]["gt"], files[s][iou_type]) for s in SUBSETS]
        cases = results["cases"][iou_type] = {}

        # Reference stats: pycocotools, once per subset.
        reference = None
        if REFERENCE in timed_peers or not args.no_reference:
            ns: dict = {}
            exec(PEERS[REFERENCE][0] + "\n" + EVAL_SOURCE, ns)
            with quiet():
                reference = [ns["run_eval"](g, r, iou_type) for g, r in pairs_levels]
        results.setdefault("reference_stats", {})[iou_type] = reference

        def read_json(paths):
            def run():
                out = []
                for p in paths:
                    with open(p, encoding="utf-8") as handle:
                        out.append(json.load(handle))
                return None
            return run

        def read_orjson(paths):
            return lambda: [orjson.loads(Path(p).read_bytes()) for p in paths] and None

        flat_all = [p for pair in pairs_all for p in pair]
        flat_levels = [p for pair in pairs_levels for p in pair]
        cases["json.load (GT + results)"] = {
            "lib": timed(read_json(flat_all), args.runs)[0], "lib_levels": timed(read_json(flat_levels), args.runs)[0]}
        cases["orjson.loads (GT + results)"] = {
            "lib": timed(read_orjson(flat_all), args.runs)[0], "lib_levels": timed(read_orjson(flat_levels), args.runs)[0]}

        evaluators = [(p, PEERS[p][0]) for p in timed_peers]
        if lib_ok or cli_ok:
            evaluators.append((OURS, OURS_LIBRARY_SOURCE))
        jobs, all_checks = [], {}  # processes: (evaluator, key, command, stats parser); library checks
        for name, source in evaluators:
            case = cases[name] = {"notes": []}
            print(f"  {iou_type}: {name} ...", file=sys.stderr, flush=True)
            ours = name == OURS
            checks = []
            # (a) library
            if not ours or lib_ok:
                try:
                    t, first, values = timed(library_case(source, pairs_all, iou_type), args.runs)
                    case["lib"] = t
                    checks += [("library all", v) for v in [first, *values]]
                    if not ours:
                        t, first, values = timed(library_case(source, pairs_levels, iou_type), args.runs)
                        case["lib_levels"] = t
                        checks += [("library levels", v) for v in [first, *values]]
                    elif OURS_LEVELS_LIBRARY_SOURCE:
                        ns = {}
                        exec(OURS_LEVELS_LIBRARY_SOURCE, ns)
                        fn = ns["run_levels"]
                        gt_levels = files["all"][OURS_LEVELS_GT]

                        def run_levels():
                            return ours_stats(fn(gt_levels, files["all"][iou_type], iou_type), iou_type, SUBSETS)
                        t, first, values = timed(run_levels, args.runs)
                        case["lib_levels"] = t
                        checks += [("library levels", v) for v in [first, *values]]
                except Exception as err:  # noqa: BLE001 - report and go on with the others
                    case["notes"].append(f"library run failed: {type(err).__name__}: {err}")
            # (b) whole processes: commands only here, timed round-robin below
            if not args.no_process and (not ours or cli_ok):
                if ours:
                    fill = {"gt": files["all"]["gt"], "results": files["all"][iou_type],
                            "iou_type": iou_type, "max_iou": max_iou_path}
                    cmd = [*ochuman_command(), *(a.format(**fill, subset="all") for a in OURS_EVAL_ARGS)]
                    case["cmd"] = " ".join(cmd)
                    jobs.append((name, "proc", cmd, lambda out, t=iou_type: ours_stats(out, t, ("all",))))
                    fill["gt"] = files["all"][OURS_LEVELS_GT]
                    cmd = [*ochuman_command(), *(a.format(**fill, subset="levels") for a in OURS_EVAL_ARGS),
                           *(a.format(**fill) for a in levels_extra)]
                    case["cmd_levels"] = " ".join(cmd)
                    jobs.append((name, "proc_levels", cmd, lambda out, t=iou_type: ours_stats(out, t, SUBSETS)))
                else:
                    for key, pairs in (("proc", pairs_all), ("proc_levels", pairs_levels)):
                        jobs.append((name, key, [sys.executable, "-c", process_script(source, pairs, iou_type)],
                                     stats_from_stdout))
            all_checks[name] = checks
        if not args.no_process:
            cases["python -c pass (interpreter start)"] = {}
            jobs.append(("python -c pass (interpreter start)", "proc", [sys.executable, "-c", "pass"], None))
            print(f"  {iou_type}: processes, interleaved ...", file=sys.stderr, flush=True)
            for (name, key, _, parse), (times, first) in zip(jobs, timed_round_robin([j[2] for j in jobs], args.runs)):
                if isinstance(times, Exception):
                    cases[name].setdefault("notes", []).append(f"process run failed: {type(times).__name__}: {times}")
                    continue
                cases[name][key] = times
                if parse is not None:
                    label = "process all" if key == "proc" else "process levels"
                    try:
                        all_checks[name].append((label, parse(first)))
                    except Exception as err:  # noqa: BLE001
                        cases[name]["notes"].append(f"{label}: no stats in the output: {type(err).__name__}: {err}")
        for name, checks in all_checks.items():
            case = cases[name]
            problems = [] if reference is None else \
                sorted({f"{label}: {p}" for label, stats in checks if (p := compare(stats, reference))})
            case["notes"] += problems
            case["stats_equal"] = not problems and bool(checks) and reference is not None
            for note in case["notes"]:
                print(f"NOTE {iou_type} {name}: {note}", file=sys.stderr)

    # ---------------------------------------------------------------- report
    results["loadavg"] = {"start": load_start, "end": list(os.getloadavg())}
    w = results["workload"]
    print(f"\nworkload: {w['dir']} (seed {w['seed']}, scale {w['scale']}): {w['counts']}")
    print(f"runs: {args.runs} (+1 warm-up) per case; times in seconds, min | median")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()))
    print(f"load average (1, 5, 15 min) at start {load_start}, at end {results['loadavg']['end']}\n")
    for iou_type in args.iou_types:
        cases = results["cases"][iou_type]
        print(f"#### {iou_type}\n")
        print("| evaluator | library min | library median | process min | process median "
              "| levels library min | levels library median | levels process min | levels process median "
              "| stats == pycocotools |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
        for name, case in cases.items():
            cells = " | ".join(fmt(case.get(k)) or " | " for k in ("lib", "proc", "lib_levels", "proc_levels"))
            if "notes" in case:
                check = ("reference" if name == REFERENCE else "yes (1e-12)") if case["stats_equal"] else \
                    ("**no** (see notes)" if case["notes"] else "not checked")
            else:
                check = ""
            print(f"| {name} | {cells} | {check} |")
        fastest = {}
        for key in ("lib", "proc", "lib_levels", "proc_levels"):
            timed_cases = {n: statistics.median(c[key]) for n, c in cases.items()
                           if "notes" in c and c.get(key)}
            if timed_cases:
                fastest[key] = min(timed_cases, key=timed_cases.get)
        results.setdefault("fastest", {})[iou_type] = fastest
        print("\nfastest (median): " + ", ".join(f"{k} {v}" for k, v in fastest.items()))
        for name, case in cases.items():
            for note in case.get("notes", []):
                print(f"- note ({name}): {note}")
        print()
    for note in results["notes"]:
        print(f"- {note}")

    out = args.json_out or Path(__file__).resolve().parent / "out" / f"eval_bench_s{args.scale}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nraw numbers: {out}", file=sys.stderr)
    bad = [n for t in results["cases"].values() for n, c in t.items() if "notes" in c and c["notes"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
