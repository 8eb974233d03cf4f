"""The compiled core's loops in threads: how many, and how a job is cut between them.

The compiled core releases the GIL, so its kernels (mask statistics, IoU blocks, matching,
accumulation) run in plain threads. numpy is imported only when a job is cut, so that
:mod:`ochuman.scan` (imported before numpy by ``ochuman eval``) can ask :func:`worker_count`.
"""
from __future__ import annotations

import os
import threading


def worker_count() -> int:
    """Threads for the compiled core's parallel loops: the CPUs this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


def run_chunks(function, weights, min_weight: float = 2e6) -> None:
    """Call ``function(lo, hi)`` over consecutive ranges of items 0..len(weights) with about
    equal total weight (weights (N,) float, e.g. bytes or pairs per item), in threads. Small
    jobs (total below 2 x ``min_weight``) run inline; the first error raised in a thread is
    raised here."""
    import numpy as np

    n = len(weights)
    total = float(weights.sum()) if n else 0.0
    parts = min(worker_count(), max(1, int(total // min_weight)), max(n, 1))
    if parts == 1:
        function(0, n)
        return
    bounds = np.searchsorted(np.cumsum(weights), total * np.arange(1, parts) / parts, side="right")
    edges = [0, *sorted(set(int(b) for b in bounds)), n]
    failures: list[BaseException] = []

    def guarded(lo: int, hi: int) -> None:
        try:
            function(lo, hi)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(err)

    threads = [threading.Thread(target=guarded, args=(lo, hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
