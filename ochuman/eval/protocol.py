"""Protocol cards: what made each row of an evaluation (the results file and its SHA-256, the
ground truth, split, image set, iou type, subset mode, range rule, MaxIoU source, and the tags
the user gave the results file: training data, box or keypoint source, ...).

A card belongs to a row: the results file's facts plus the row's image set (a row's
``image_set`` key, else ``all``). The JSON report (``--out``, ``EvalReport.to_dict()``) holds
``protocols``, the card of each of its ``rows`` in the same order; a markdown leaderboard is
followed by a table of the distinct cards. The SHA-256 is of the results file's
bytes, read when the first card is made (None for results given as a parsed list).

Tags on the command line: ``--tag KEY=VALUE`` tags every results file; ``--tag NAME:KEY=VALUE``
tags the results files whose row name (``--name``, else the file name) is NAME, or the one whose
position among the ``--results`` (1, 2, ...) is NAME. Keys hold no ``:`` or ``=``; a later tag of the same
key wins.
"""
from __future__ import annotations

import os
import stat
from typing import Optional, Sequence, Union

from ochuman.errors import OCHumanError

#: the keys of a card, in order (``tags`` last)
CARD_KEYS = ("results", "results_file", "results_sha256", "gt", "split", "image_set", "iou_type", "subset_mode",
             "range_rule", "max_iou_source", "tags")


def parse_tags(values: Sequence[str], names: Sequence[str]) -> list[dict]:
    """``--tag`` values -> one {KEY: VALUE} per results file (names: the row names in order)."""
    tags: list[dict] = [{} for _ in names]
    for value in values:
        left, equals, text = value.partition("=")
        target, colon, key = left.rpartition(":")
        if not equals or not key:
            raise OCHumanError(f"--tag {value!r}: expected KEY=VALUE or NAME:KEY=VALUE")
        if not colon:
            chosen = range(len(names))
        elif target in names:
            chosen = [k for k, name in enumerate(names) if name == target]
        elif target.isdigit() and 1 <= int(target) <= len(names):
            chosen = [int(target) - 1]
        else:
            raise OCHumanError(f"--tag {value!r}: {target!r} is neither a row name ({', '.join(names)}) "
                               f"nor a position 1..{len(names)} of the --results")
        for k in chosen:
            tags[k][key] = text
    return tags


def tags_per_file(tags: Union[None, dict, Sequence[Optional[dict]]], count: int) -> list[dict]:
    """``evaluate_results(tags=...)``: None, one dict for every results file, or one per file."""
    if tags is None:
        return [{} for _ in range(count)]
    if isinstance(tags, dict):
        return [dict(tags) for _ in range(count)]
    tags = list(tags)
    if len(tags) != count:
        raise OCHumanError(f"{len(tags)} tag sets for {count} results files")
    return [dict(t or {}) for t in tags]


def readable_again(path) -> bool:
    """Whether ``path`` can be read a second time for its hash (a regular file; not a pipe such
    as /dev/stdin or a process substitution, whose bytes are gone once read)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def file_sha256(path) -> Optional[str]:
    """Hex SHA-256 of a file's bytes; None for no file."""
    if path is None:
        return None
    import hashlib  # (~3 ms to import: only where a hash is made)

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def card(report, evaluation, row: dict, sha256: Optional[str]) -> dict:
    """The protocol card of ``row``, a row of ``evaluation`` (a
    :class:`~ochuman.eval.report.ResultsEvaluation` of ``report``): the row's own facts where it
    states them (the paper's rows do), else the report's."""
    source = evaluation.source
    return {
        "results": evaluation.name, "results_file": None if source is None else str(source),
        "results_sha256": sha256, "gt": report.gt_source, "split": report.split,
        "image_set": row.get("image_set", "all"),
        **({"visibility": row["visibility"]} if "visibility" in row else {}), "iou_type": row.get("iou_type", report.iou_type),
        "subset_mode": row.get("mode", report.mode), "range_rule": row.get("range_rule", report.range_rule),
        "max_iou_source": row.get("max_iou_source", report.max_iou_source), "tags": dict(evaluation.tags),
    }


def card_table(cards: Sequence[dict]) -> list[dict]:
    """The distinct cards as flat rows for a table (tags as ``key=value; ...``; the hash shortened
    to 12 hex digits)."""
    rows, seen = [], set()
    for c in cards:
        row = {k: v for k, v in c.items() if k != "tags"}
        row["results_sha256"] = (c["results_sha256"] or "")[:12]
        row["results_file"] = c["results_file"] or ""
        row["tags"] = "; ".join(f"{k}={v}" for k, v in c["tags"].items())
        key = tuple(row.items())
        if key not in seen:
            seen.add(key)
            rows.append(row)
    return rows
