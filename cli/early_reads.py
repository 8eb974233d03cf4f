"""Reads an ``ochuman eval`` begins before click, numpy and the evaluator are imported (the
console script's first step, :mod:`cli.launch`): its first results file and its ``--gt`` file.

Those imports take ~90 ms of one CPU while the other is idle, and reading a large results file
is the longest task before the evaluation can begin (val2017 scale: 100 MB scanned, hashed and let
go piece by piece). Starting the reads here rather than once click has parsed the command line
(~25 ms later) makes whole runs ~15-25 ms shorter where the results file is large (measured in
bench/RESULTS.md). The command line is only looked at, not parsed: a read begun here serves the
command only when click's values name the same file with the same IoU type
(:func:`take_results`, :func:`take_annotations`); otherwise it is dropped and the command reads
as it would have. The results file is hashed (SHA-256, 57 ms of a CPU per 100 MB here) only where
the command line asks for an output that shows the hash (:func:`hash_wanted`); a read begun
without it does not serve a command that needs it.
"""
from __future__ import annotations

import os
import stat

_results: dict = {}  # (path, iou type) -> PrefetchedResults
_annotations: dict = {}  # (path, masks kept) -> PrefetchedAnnotations
_IOU_TYPES = ("segm", "bbox", "keypoints")


def _option_values(args: list[str], name: str) -> list[str]:
    """The values of every ``name VALUE`` and ``name=VALUE`` in ``args``, in order."""
    values = []
    for k, arg in enumerate(args):
        if arg == name and k + 1 < len(args):
            values.append(args[k + 1])
        elif arg.startswith(name + "="):
            values.append(arg[len(name) + 1:])
    return values


def _option_value(args: list[str], name: str) -> str | None:
    """The value of the first ``name VALUE`` or ``name=VALUE`` in ``args`` (None if absent)."""
    values = _option_values(args, name)
    return values[0] if values else None


def hash_wanted(fmt: str, out_file) -> bool:
    """Whether ``ochuman eval`` shows its results file's SHA-256 (the protocol cards): with
    ``--format json`` or ``markdown``, or a report written with ``--out``."""
    return fmt in ("json", "markdown") or out_file is not None


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

    # hashed where any --format or --out given may ask for it (click takes the last --format)
    hashed = any(hash_wanted(fmt, None) for fmt in _option_values(args, "--format")) or bool(_option_values(args, "--out"))
    first = _results[results, iou_type] = PrefetchedResults(results, iou_type, hash_file=hashed)
    if _regular_file(gt):
        _annotations[gt, iou_type == "segm"] = PrefetchedAnnotations(gt, after=first, masks=iou_type == "segm")


def take_results(path: str, iou_type: str, hashed: bool):
    """The read of results file ``path`` for ``iou_type`` begun by :func:`start_early_reads`, or
    None (also where ``hashed`` asks for a hash that read does not make); each read is handed out
    once."""
    read = _results.pop((path, iou_type), None)
    return None if read is None or (hashed and not read.hash_file) else read


def take_annotations(path: str, masks: bool):
    """The read of annotation file ``path`` (``masks``: polygons kept) begun by
    :func:`start_early_reads`, or None; each read is handed out once."""
    return _annotations.pop((path, masks), None)
