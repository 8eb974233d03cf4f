"""Time COCO evaluation by pycocotools, its peers and ours, side by side, on the workload shapes users bring.

    python bench/bench_eval.py [--workloads ochuman persons coco1k val2017] [--scale 1] [--runs 3]
                               [--evaluators ...] [--iou-types ...] [--quick]

Workloads: ``make_workloads.py``'s shapes (generated, seed 0, when their folder is missing or
from another generator version):
``ochuman`` (make_eval_workload.py: RLE ground truth, one field per results file), ``persons``
(half polygon / half RLE, crowd regions, one results file whose records carry segmentation,
bbox and keypoints), ``coco1k`` and ``val2017`` (80 categories at val2017 density; bbox and
segm). Per workload and iou type, each evaluator runs as a whole process (interpreter start and
imports included):

- ``pycocotools``, ``faster-coco-eval``, ``hotcoco``, ``ultrafast-pycocotools`` and
  ``ochuman.compat`` (ours: the same pycocotools script with one import changed):
  ``COCO(gt)``, ``gt.loadRes(results)``, ``COCOeval(gt, dt, iou_type)``, ``evaluate()``,
  ``accumulate()``, ``summarize()`` in ``python -c``;
- ``ochuman eval`` (ours, the command): ``ochuman eval --gt GT --results RES --iou-type T
  --subset all --format json`` (``--command-format csv``: the numbers without the protocol
  cards, whose results-file hash the json output pays for). Where it refuses the ground truth (a file it cannot read; files
  of every category are taken since issue 16) the row says ``refused`` with its one-line
  error, and the run goes on.

Every command of a (workload, iou type) runs once as a warm-up, then ``--runs`` rounds that run
each once, in order (round-robin: the machine's drift reaches all alike). Reported: min and
median wall time, and the median peak memory (max RSS of the process, from ``os.wait4`` in a
small launcher process that spawns it).
``levels`` (workloads with range files, ``ochuman`` and ``persons``): all + moderate + hard; the
script evaluators evaluate the three range files, ``ochuman eval`` runs ``--subset levels`` once
on the ground truth with a ``max_iou`` per person. Every evaluator's ``stats`` (12 numbers, 10
for keypoints; every subset) are checked against pycocotools' to 1e-12 (its warm-up run, or an
in-process run when it is not timed); a mismatch or a failure prints a note, marks the row and
makes the exit status 1. ``OCHUMAN_CACHE=off`` in the processes unless ``--ochuman-cache`` (the
peers have no cache either).

``--library`` also times the script evaluators in this process (imports done before; ``ochuman
eval``'s API ``ochuman.eval.evaluate_results``), and ``json.load`` of the same files.
``--quick``: a smoke run: tiny workloads (``--images``, default 24) in ``bench/out/quick``, one
round. Markdown tables on stdout (one per workload and iou type, then a summary: ours against
the fastest peer), raw numbers in ``bench/out/eval_bench.json`` (``--json-out``).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import importlib
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_workloads  # noqa: E402

IOU_TYPES = ("segm", "bbox", "keypoints")
SUBSETS = ("all", "moderate", "hard")
TOLERANCE = 1e-12
REFERENCE = "pycocotools"
OUT = Path(__file__).resolve().parent / "out"

# Script evaluators: the import that binds COCO and COCOeval, and the distribution.
SCRIPT_EVALUATORS = {
    "pycocotools": ("from pycocotools.coco import COCO\nfrom pycocotools.cocoeval import COCOeval",
                    "pycocotools"),
    "faster-coco-eval": ("from faster_coco_eval import COCO, COCOeval_faster as COCOeval",
                         "faster-coco-eval"),
    "hotcoco": ("from hotcoco import COCO, COCOeval", "hotcoco"),
    "ultrafast-pycocotools": ("from ultrafast_pycocotools import COCO, COCOeval", "ultrafast-pycocotools"),
    "ochuman.compat": ("from ochuman.compat import COCO, COCOeval", "ochuman-toolkit"),
}
COMMAND = "ochuman eval"
OURS = ("ochuman.compat", COMMAND)
EVALUATORS = (*SCRIPT_EVALUATORS, COMMAND)
PEERS = tuple(e for e in EVALUATORS if e not in OURS)

# The standard evaluation, the same text for every script evaluator, in-process and in `python -c`.
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

# `ochuman eval` (the console script next to this interpreter).
COMMAND_ARGS = ["eval", "--gt", "{gt}", "--results", "{results}", "--iou-type", "{iou_type}",
                "--subset", "{subset}", "--format", "{format}"]
# The levels run needs each person's MaxIoU: its ground truth is the workload's
# ..._with_max_iou.json (manifest key below), the same file plus a "max_iou" per person.
COMMAND_LEVELS_GT = "gt_with_max_iou"
# Extra arguments of the levels run, {max_iou} = the workload's max_iou.json (side file
# annotation id -> MaxIoU, ochuman shape only). Also settable with --ours-levels-args.
COMMAND_LEVELS_EXTRA: list[str] = []
# --library: the command's API, one evaluation and levels.
COMMAND_LIBRARY_SOURCE = '''
from ochuman.eval import evaluate_results
def run_eval(gt_path, res_path, iou_type):
    row = evaluate_results(res_path, gt=gt_path, iou_type=iou_type, subsets=("all",)).rows()[0]
    return [row[name] for name in STAT_NAMES[iou_type]]
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


def ochuman_command() -> list[str]:
    script = Path(sys.executable).parent / "ochuman"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from cli.launch import ochuman; sys.exit(ochuman())"]


def available(evaluator: str) -> str:
    """'' when ``evaluator`` can run here, else why not."""
    if evaluator == COMMAND:
        try:
            done = subprocess.run([*ochuman_command(), "eval", "--help"], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as err:
            return f"`ochuman eval` not runnable ({err})"
        return "" if done.returncode == 0 else "`ochuman eval` does not exist"
    module = SCRIPT_EVALUATORS[evaluator][0].split()[1]
    try:
        importlib.import_module(module)
    except Exception as err:  # noqa: BLE001 - anything that keeps it from importing
        return f"{module} not importable ({type(err).__name__}: {err})"
    return ""


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


# Processes run with bytecode caching on, as installed packages have it (this workplace sets
# PYTHONDONTWRITEBYTECODE, which would make every process compile the modules of a package
# installed from source again; the warm-up run writes the caches).
PROCESS_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


class ProcessFailed(RuntimeError):
    def __init__(self, cmd: list[str], returncode: int, stderr: str):
        lines = stderr.strip().splitlines()
        self.last_line = lines[-1] if lines else ""
        super().__init__(f"{' '.join(cmd[:3])}... exited {returncode}: {stderr.strip()[-2000:]}")


# Runs one command and measures it from a fresh, small interpreter: a child's peak memory
# (ru_maxrss) also counts what its parent held when it was forked, so the command is spawned
# from this ~10 MiB launcher, not from the harness (which holds numpy, pycocotools, ...).
LAUNCHER = """
import json, os, sys, time
report, cmd = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawn(cmd[0], cmd, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as handle:
    json.dump({"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "cpu": usage.ru_utime + usage.ru_stime}, handle)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(cmd: list[str], env: dict) -> dict:
    """Run ``cmd`` (absolute program path) to its end: wall seconds, peak memory (max RSS, MiB),
    CPU seconds (user + system) of the process, its stdout. Raises ProcessFailed on a non-zero
    exit."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".json") as measured:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", LAUNCHER, measured.name, *cmd],
                              stdout=out, stderr=err, env=env)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        if done.returncode:
            raise ProcessFailed(cmd, done.returncode, stderr)
        return {**json.loads(Path(measured.name).read_text()), "stdout": stdout}


def round_robin(commands: list[list[str]], runs: int, env: dict) -> list:
    """One warm-up run of each command, then ``runs`` rounds running every command once, in
    order. Per command: {"wall": [...], "rss_mib": [...], "cpu": [...], "stdout": warm-up's}, or
    the exception of a command that failed (it is not run again)."""
    out: list = []
    for cmd in commands:
        try:
            first = run_measured(cmd, env)
            out.append({"wall": [], "rss_mib": [], "cpu": [], "stdout": first["stdout"]})
        except Exception as err:  # noqa: BLE001 - reported as a note of its evaluator
            out.append(err)
    for _ in range(runs):
        for k, cmd in enumerate(commands):
            if isinstance(out[k], Exception):
                continue
            gc.collect()
            try:
                m = run_measured(cmd, env)
            except Exception as err:  # noqa: BLE001
                out[k] = err
                continue
            for key in ("wall", "rss_mib", "cpu"):
                out[k][key].append(m[key])
    return out


def library_case(source: str, pairs: list[tuple[str, str]], iou_type: str):
    namespace: dict = {"STAT_NAMES": STAT_NAMES}
    # imports happen here, outside the timing; a source defining run_eval itself replaces EVAL_SOURCE
    exec(source if "def run_eval" in source else source + "\n" + EVAL_SOURCE, namespace)
    run_eval = namespace["run_eval"]
    return lambda: [run_eval(g, r, iou_type) for g, r in pairs]


def process_script(import_source: str, pairs: list[tuple[str, str]], iou_type: str) -> str:
    return (import_source + "\n" + EVAL_SOURCE + "\nimport json\n"
            f"print('STATS ' + json.dumps([run_eval(g, r, {iou_type!r}) for g, r in {pairs!r}]))\n")


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
    """Stats per subset from ours' rows (`ochuman eval --format json` or `csv`, or
    `EvalReport.rows()`): dicts with the stat names as keys and a "subset" name. None when not
    found."""
    if isinstance(obj, str) and obj.lstrip().startswith(("[", "{")):
        obj = json.loads(obj)
    elif isinstance(obj, str):  # csv: every row, its stats as numbers
        names = STAT_NAMES[iou_type]
        obj = [{k: float(v) if k in names else v for k, v in row.items()} for row in csv.DictReader(io.StringIO(obj))]
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


def machine(evaluators) -> dict:
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
    dists = [SCRIPT_EVALUATORS[e][1] for e in evaluators if e in SCRIPT_EVALUATORS]
    return {"nproc": os.cpu_count(), "cpu": cpu or platform.processor(), "ram": ram,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
            **{name: ver(name) for name in ("numpy", *dists)}}


def fmt(t) -> str:
    return "" if not t else f"{min(t):.3f} | {statistics.median(t):.3f}"


def fmt_mib(values) -> str:
    return "" if not values else f"{statistics.median(values):.0f}"


def workload_folder(args, shape: str) -> Path:
    if args.dir is not None:
        return args.dir
    root = args.root / "quick" if args.quick else args.root
    return make_workloads.folder_of(shape, args.scale, args.images, root)


def bench_workload(args, shape: str, evaluators: list[str], env: dict) -> dict:
    """Every case of one workload: {"manifest": ..., "cases": {iou_type: {evaluator: {...}}}}."""
    folder = workload_folder(args, shape)
    manifest_path = folder / "manifest.json"
    stale = args.dir is None and manifest_path.exists() and \
        json.loads(manifest_path.read_text()).get("version") != make_workloads.WORKLOAD_VERSION
    if not manifest_path.exists() or stale:  # a folder given with --dir is never rewritten
        make_workloads.make(shape, folder, args.seed, args.scale, args.images, log=lambda m: print(m, file=sys.stderr))
    manifest = json.loads((folder / "manifest.json").read_text())
    levels = not args.no_levels and all(s in manifest["files"] for s in SUBSETS)
    files = {s: {k: str(folder / v) for k, v in manifest["files"][s].items()} for s in manifest["files"]}
    iou_types = [t for t in manifest.get("iou_types", IOU_TYPES) if t in args.iou_types]
    timed_scripts = [e for e in evaluators if e in SCRIPT_EVALUATORS and not (e == REFERENCE and args.skip_pycocotools)]
    out = {"dir": str(folder), "levels": levels,
           **{k: manifest.get(k) for k in ("shape", "seed", "scale", "counts", "bytes")}, "cases": {}}
    for iou_type in iou_types:
        pairs = {"all": [(files["all"]["gt"], files["all"][iou_type])]}
        if levels:
            pairs["levels"] = [(files[s]["gt"], files[s][iou_type]) for s in SUBSETS]
        cases = out["cases"][iou_type] = {}
        checks: dict = {}  # evaluator -> [(label, stats per subset)]
        jobs = []  # (evaluator, key, command, stats parser)
        for name in evaluators:
            if name in SCRIPT_EVALUATORS and name not in timed_scripts:
                continue
            case = cases[name] = {"notes": [], "status": "ok"}
            checks[name] = []
            if name == COMMAND:
                fill = {"gt": files["all"]["gt"], "results": files["all"][iou_type], "iou_type": iou_type,
                        "format": args.command_format, "max_iou": str(folder / manifest.get("max_iou", "max_iou.json"))}
                cmd = [*ochuman_command(), *(a.format(**fill, subset="all") for a in COMMAND_ARGS)]
                case["cmd"] = " ".join(cmd)
                jobs.append((name, "all", cmd, lambda text, t=iou_type: ours_stats(text, t, ("all",))))
                if levels:
                    fill["gt"] = files["all"][COMMAND_LEVELS_GT]
                    extra = COMMAND_LEVELS_EXTRA if args.ours_levels_args is None else args.ours_levels_args.split()
                    cmd = [*ochuman_command(), *(a.format(**fill, subset="levels") for a in COMMAND_ARGS),
                           *(a.format(**fill) for a in extra)]
                    case["cmd_levels"] = " ".join(cmd)
                    jobs.append((name, "levels", cmd, lambda text, t=iou_type: ours_stats(text, t, SUBSETS)))
            elif name in timed_scripts:
                for key, p in pairs.items():
                    jobs.append((name, key, [sys.executable, "-c", process_script(SCRIPT_EVALUATORS[name][0], p, iou_type)],
                                 stats_from_stdout))
        cases["python -c pass (interpreter start)"] = {}
        jobs.append(("python -c pass (interpreter start)", "all", [sys.executable, "-c", "pass"], None))
        print(f"{shape} {iou_type}: {len(jobs)} processes x (1 + {args.runs}), round-robin ...", file=sys.stderr, flush=True)
        for (name, key, _, parse), got in zip(jobs, round_robin([j[2] for j in jobs], args.runs, env)):
            case = cases[name]
            if isinstance(got, Exception):
                if name == COMMAND and isinstance(got, ProcessFailed) and got.last_line.startswith("Error:"):
                    case["status"] = "refused"
                    case["refused"] = got.last_line
                else:
                    case["status"] = "failed"
                    case["notes"].append(f"{key}: process failed: {type(got).__name__}: {got}")
                continue
            case[key], case[f"{key}_rss_mib"], case[f"{key}_cpu"] = got["wall"], got["rss_mib"], got["cpu"]
            if parse is not None:
                try:
                    checks[name].append((f"process {key}", parse(got["stdout"])))
                except Exception as err:  # noqa: BLE001
                    case["notes"].append(f"process {key}: no stats in the output: {type(err).__name__}: {err}")
        if args.library:
            library(args, iou_type, pairs, files, evaluators, cases, checks)
        # The reference: pycocotools' own process output, else one in-process run.
        reference = {}
        for label, stats in checks.get(REFERENCE, []):
            reference.setdefault(label.split()[-1], stats)
        for key, p in pairs.items():
            if key not in reference and not args.no_reference:
                ns: dict = {}
                exec(SCRIPT_EVALUATORS[REFERENCE][0] + "\n" + EVAL_SOURCE, ns)
                with quiet():
                    reference[key] = [ns["run_eval"](g, r, iou_type) for g, r in p]
        out.setdefault("reference_stats", {})[iou_type] = reference
        for name, done in checks.items():
            case = cases[name]
            problems = sorted({f"{label}: {p}" for label, stats in done
                               if (p := compare(stats, reference.get(label.split()[-1])))})
            case["notes"] += problems
            case["stats_equal"] = not problems and bool(done) and bool(reference)
            for note in case["notes"]:
                print(f"NOTE {shape} {iou_type} {name}: {note}", file=sys.stderr)
    return out


def library(args, iou_type, pairs, files, evaluators, cases, checks) -> None:
    """--library: in-process timings of the evaluators and of json.load of the same files."""
    def read_json(paths):
        def run():
            for p in paths:
                with open(p, encoding="utf-8") as handle:
                    json.load(handle)
        return run
    cases["json.load (GT + results)"] = {
        f"lib_{key}": timed(read_json([f for pair in p for f in pair]), args.runs)[0] for key, p in pairs.items()}
    for name in evaluators:
        if name not in cases:
            continue
        case = cases[name]
        try:
            if name == COMMAND:
                t, first, values = timed(library_case(COMMAND_LIBRARY_SOURCE, pairs["all"], iou_type), args.runs)
                case["lib_all"] = t
                checks[name] += [("library all", v) for v in (first, *values)]
                if "levels" in pairs:
                    ns: dict = {}
                    exec(COMMAND_LIBRARY_SOURCE, ns)
                    gt_levels = files["all"][COMMAND_LEVELS_GT]
                    t, first, values = timed(lambda: ours_stats(ns["run_levels"](gt_levels, files["all"][iou_type], iou_type),
                                                                iou_type, SUBSETS), args.runs)
                    case["lib_levels"] = t
                    checks[name] += [("library levels", v) for v in (first, *values)]
            else:
                for key, p in pairs.items():
                    t, first, values = timed(library_case(SCRIPT_EVALUATORS[name][0], p, iou_type), args.runs)
                    case[f"lib_{key}"] = t
                    checks[name] += [(f"library {key}", v) for v in (first, *values)]
        except Exception as err:  # noqa: BLE001 - report and go on with the others
            case["notes"].append(f"library run failed: {type(err).__name__}: {err}")


def report(results: dict) -> None:
    """Markdown tables on stdout."""
    print(f"runs: {results['runs']} (+1 warm-up) per process, round-robin; times in seconds; "
          "peak memory: median max RSS of the process, MiB")
    print("machine: " + ", ".join(f"{k} {v}" for k, v in results["machine"].items()))
    print(f"load average (1, 5, 15 min) at start {results['loadavg']['start']}, at end {results['loadavg']['end']}\n")
    summary = []
    for shape, w in results["workloads"].items():
        print(f"### {shape}: {make_workloads.SHAPES[shape].summary}\n")
        print(f"{w['dir']} (seed {w['seed']}, scale {w['scale']}): {w['counts']}\n")
        for iou_type, cases in w["cases"].items():
            print(f"#### {shape}, {iou_type}\n")
            cols = ["all"] + (["levels"] if w["levels"] else [])
            lib = any(k.startswith("lib_") for c in cases.values() for k in c)
            head = [f"{c} min | {c} median | {c} MiB" for c in cols] + \
                   ([f"library {c} min | library {c} median" for c in cols] if lib else [])
            print("| evaluator | " + " | ".join(head) + " | stats == pycocotools |")
            print("| --- | " + " | ".join("---: | ---: | ---:" for _ in cols) +
                  "".join(" | ---: | ---:" for _ in cols if lib) + " | --- |")
            for name, case in cases.items():
                if case.get("status") == "refused":
                    cells = [f"refused: {case['refused']} | | " for _ in cols]
                else:
                    cells = [f"{fmt(case.get(c)) or ' | '} | {fmt_mib(case.get(f'{c}_rss_mib'))}" for c in cols]
                if lib:
                    cells += [fmt(case.get(f"lib_{c}")) or " | " for c in cols]
                if "status" not in case:
                    check = ""
                elif case["status"] == "refused":
                    check = "refused"
                elif case.get("stats_equal"):
                    check = "reference" if name == REFERENCE else "yes (1e-12)"
                else:
                    check = "**no** (see notes)" if case["notes"] else "not checked"
                print(f"| {name} | " + " | ".join(cells) + f" | {check} |")
            print()
            for name, case in cases.items():
                for note in case.get("notes", []):
                    print(f"- note ({name}): {note}")
            for col in cols:
                summary.append(summary_row(shape, iou_type, col, cases))
    print("### Summary: ours against the fastest peer (min wall time; x = peer / ours, > 1: ours faster)\n")
    print("| workload | iou type | subset | `ochuman eval` | `ochuman.compat` | fastest peer | "
          "x command | x compat | MiB command / compat / that peer |")
    print("| --- | --- | --- | ---: | ---: | --- | ---: | ---: | ---: |")
    for row in summary:
        print("| " + " | ".join(row) + " |")


def summary_row(shape, iou_type, col, cases) -> list[str]:
    def best(name):
        t = cases.get(name, {}).get(col)
        return min(t) if t else None

    def mib(name):
        return fmt_mib(cases.get(name, {}).get(f"{col}_rss_mib")) or "-"
    peers = {n: best(n) for n in PEERS if best(n) is not None}
    fastest = min(peers, key=peers.get) if peers else None
    cells = []
    for name in OURS:
        case = cases.get(name, {})
        cells.append("refused" if case.get("status") == "refused" else
                     (f"{best(name):.3f}" if best(name) is not None else "-"))
    ratios = [f"{peers[fastest] / best(n):.2f}x" if fastest and best(n) else "-" for n in (COMMAND, "ochuman.compat")]
    peer = f"{fastest} {peers[fastest]:.3f}" if fastest else "-"
    return [shape, iou_type, col, cells[1], cells[0], peer, *ratios,
            f"{mib(COMMAND)} / {mib('ochuman.compat')} / {mib(fastest) if fastest else '-'}"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", choices=list(make_workloads.SHAPES), default=list(make_workloads.SHAPES))
    parser.add_argument("--scale", type=int, default=1, help="workload scale (10: ten times the images)")
    parser.add_argument("--images", type=int, default=None,
                        help="images per unit of --scale instead of the shape's (default: the shape's; 24 with --quick)")
    parser.add_argument("--seed", type=int, default=0, help="seed when generating a workload")
    parser.add_argument("--root", type=Path, default=OUT, help="where workload folders are (default bench/out)")
    parser.add_argument("--dir", type=Path, default=None, help="the folder of the one workload given")
    parser.add_argument("--runs", type=int, default=None, help="timed rounds (default 3; 1 with --quick)")
    parser.add_argument("--iou-types", nargs="+", choices=IOU_TYPES, default=list(IOU_TYPES))
    parser.add_argument("--evaluators", nargs="+", choices=EVALUATORS, default=list(EVALUATORS))
    parser.add_argument("--skip-pycocotools", action="store_true",
                        help="do not time pycocotools (its stats are still computed once as the reference)")
    parser.add_argument("--no-reference", action="store_true", help="with --skip-pycocotools: no reference stats")
    parser.add_argument("--no-levels", action="store_true", help="only the all subset")
    parser.add_argument("--library", action="store_true", help="also time in-process library calls")
    parser.add_argument("--ours-levels-args", default=None,
                        help="extra arguments of `ochuman eval --subset levels`, {max_iou} = max_iou.json")
    parser.add_argument("--command-format", choices=("json", "csv"), default="json",
                        help="`ochuman eval --format` (json: each row with its protocol card, which hashes the "
                             "results file; csv: the numbers only, as the table)")
    parser.add_argument("--ochuman-cache", action="store_true", help="leave OCHUMAN_CACHE as it is (default: off)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny workloads in bench/out/quick, --runs 1 unless given")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.images = args.images or 24
    if args.runs is None:
        args.runs = 1 if args.quick else 3
    if args.dir is not None and len(args.workloads) != 1:
        parser.error("--dir needs exactly one --workloads")

    env = dict(PROCESS_ENV)
    if not args.ochuman_cache:
        env["OCHUMAN_CACHE"] = "off"
    evaluators, notes = [], []
    for name in args.evaluators:
        why = available(name)
        if why:
            notes.append(f"{name}: skipped: {why}")
            print(f"{name}: skipped: {why}", file=sys.stderr)
        else:
            evaluators.append(name)
    results = {"runs": args.runs, "machine": machine(evaluators), "evaluators": evaluators, "notes": notes,
               "ochuman_cache": env.get("OCHUMAN_CACHE"), "loadavg": {"start": list(os.getloadavg())},
               "workloads": {}}
    for shape in args.workloads:
        results["workloads"][shape] = bench_workload(args, shape, evaluators, env)
    results["loadavg"]["end"] = list(os.getloadavg())
    report(results)
    for note in notes:
        print(f"- {note}")
    out = args.json_out or (args.root / ("eval_bench_quick.json" if args.quick else "eval_bench.json"))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nraw numbers: {out}", file=sys.stderr)
    bad = [n for w in results["workloads"].values() for t in w["cases"].values() for n, c in t.items()
           if c.get("notes") or c.get("status") == "failed"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
