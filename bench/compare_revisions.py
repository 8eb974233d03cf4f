"""Time one `ochuman` command on two source trees, round-robin, as whole processes.

Before/after numbers of a change: check the old revision out beside this one (e.g.
``git worktree add ../before REV`` and build its extension in place), then

    python bench/compare_revisions.py --tree before=../before --tree after=. --runs 7 -- \
        eval --gt GT.json --results RES.json --iou-type segm --format json

Each round runs the command once per tree (``PYTHONPATH`` set to the tree, the same
interpreter); prints min and median wall seconds per tree and whether their standard outputs
are identical (the numbers must not move). ``OCHUMAN_CACHE=off`` unless ``--cache``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

# the console script (cli.launch:ochuman; older trees: cli.ochuman_cmd:run)
COMMAND = ("import sys\ntry:\n    from cli.launch import ochuman as run\nexcept ImportError:\n"
           "    from cli.ochuman_cmd import run\nsys.exit(run())")


def run_once(tree: Path, args: list[str], env: dict) -> tuple[float, bytes]:
    """Wall seconds and stdout of one process running ``ochuman ARGS`` from ``tree``."""
    env = dict(env, PYTHONPATH=str(tree))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", COMMAND, *args], env=env, cwd=tree,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{tree}: exit {done.returncode}: {done.stderr.decode(errors='replace').strip()}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tree", action="append", required=True, metavar="NAME=PATH",
                        help="a source tree to time (twice or more)")
    parser.add_argument("--runs", type=int, default=7, help="timed rounds after one warm-up")
    parser.add_argument("--cache", action="store_true", help="leave OCHUMAN_CACHE as it is")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="-- then the ochuman arguments")
    ns = parser.parse_args()
    trees = dict(t.split("=", 1) for t in ns.tree)
    args = ns.args[1:] if ns.args[:1] == ["--"] else ns.args
    env = dict(os.environ)
    if not ns.cache:
        env["OCHUMAN_CACHE"] = "off"
    # Paths in ARGS are taken from here, whichever tree runs.
    args = [str(Path(a).resolve()) if Path(a).exists() else a for a in args]
    times = {name: [] for name in trees}
    outputs = {}
    for round_ in range(ns.runs + 1):
        for name, tree in trees.items():
            seconds, out = run_once(Path(tree).resolve(), args, env)
            outputs.setdefault(name, out)
            if round_:  # round 0 warms the file cache
                times[name].append(seconds)
    same = len(set(outputs.values())) == 1
    print(f"`ochuman {' '.join(ns.args[1:] if ns.args[:1] == ['--'] else ns.args)}`, {ns.runs} rounds\n")
    print("| tree | min s | median s |\n| --- | ---: | ---: |")
    for name, t in times.items():
        print(f"| {name} | {min(t):.3f} | {statistics.median(t):.3f} |")
    print(f"\nstdout identical across trees: {'yes' if same else 'NO'}")
    sys.exit(0 if same else 1)


if __name__ == "__main__":
    main()
