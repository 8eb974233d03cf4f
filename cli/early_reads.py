"""Reads an ``ochuman eval`` begins before click, numpy and the evaluator are imported (the
console script's first step, :mod:`cli.launch`): its first results file and its ``--gt`` file.

Those imports take ~90 ms of one CPU while the other is idle, and reading a large results file
is the longest task before the evaluation can begin (val2017 scale: 100 MB scanned, hashed and let
go piece by piece). Starting the reads here rather than once click has parsed the command line
(~25 ms later) makes whole runs ~15-25 ms shorter where the results file is large (measured in
bench/RESULTS.md). The command line is only looked at, not parsed: a read begun here serves the
command only when click's values name the same file with the same IoU type
(:func:`take_results`, :func:`take_annotations`); otherwise it is dropped and the command reads
as it would have.
"""
from __future__ import annotations

import os
import stat

_results: dict = {}  # (path, iou type) -> PrefetchedResults
_annotations: dict = {}  # (path, masks kept) -> PrefetchedAnnotations
_IOU_TYPES = ("segm", "bbox", "keypoints")


def _option_value(args: list[str], name: str) -> str | None:
    """The value of the first ``name VALUE`` or ``name=VALUE`` in ``args`` (None if absent)."""
    for k, arg in enumerate(args):
        if arg == name and k + 1 < len(args):
            return args[k + 1]
        if arg.startswith(name + "="):
            return arg[len(name) + 1:]
    return None


def _regular_file(path: str | None) -> bool:
    try:
        return path is not None and stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def start_early_reads(args: list[str]) -> None:
    """Begin the reads of an ``ochuman eval`` command line (``args`` without the program name):
    its first ``--results`` file, then its ``--gt`` file, when they are regular files (a pipe is
    left to the command: its bytes cannot be read twice)."""
    if not args or args[0] != "eval" or "--" in args or any(a in ("-h", "--help") for a in args):
        return
    args = args[1:]
    results, gt, iou_type = (_option_value(args, n) for n in ("--results", "--gt", "--iou-type"))
    iou_type = iou_type or "segm"
    if iou_type not in _IOU_TYPES or not _regular_file(results):
        return
    from ochuman.scan import PrefetchedAnnotations, PrefetchedResults

    first = _results[results, iou_type] = PrefetchedResults(results, iou_type)
    if _regular_file(gt):
        _annotations[gt, iou_type == "segm"] = PrefetchedAnnotations(gt, after=first, masks=iou_type == "segm")


def take_results(path: str, iou_type: str):
    """The read of results file ``path`` for ``iou_type`` begun by :func:`start_early_reads`, or
    None; each read is handed out once."""
    return _results.pop((path, iou_type), None)


def take_annotations(path: str, masks: bool):
    """The read of annotation file ``path`` (``masks``: polygons kept) begun by
    :func:`start_early_reads`, or None; each read is handed out once."""
    return _annotations.pop((path, masks), None)
