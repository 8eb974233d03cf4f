"""Rendering rows of results as text: table, json, csv or markdown.

A row is a flat dict of plain values; every row of one rendering has the same keys. Floats
are shown with 3 decimals in tables (``table``, ``markdown``) and at full precision in
``json`` and ``csv``.
"""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Sequence

FORMATS = ("table", "json", "csv", "markdown")


def _cell(value):
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return value


def _json_value(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def render(rows: Sequence[dict], fmt: str = "table", single: bool = False,
           transpose_by: str | None = None) -> str:
    """Render rows.

    single: ``json`` prints the one row as an object, not a list. transpose_by: ``table`` and
    ``markdown`` show one column per row, headed by that key's value, and one line per other
    key (for a few wide rows).
    NaN and infinities become ``null`` in ``json``.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt == "json":
        clean = [{k: _json_value(v) for k, v in row.items()} for row in rows]
        payload = clean[0] if single and len(clean) == 1 else clean
        return json.dumps(payload, indent=2, allow_nan=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]) if rows else [], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    from tabulate import tabulate

    table = [[_cell(v) for v in row.values()] for row in rows]
    headers = list(rows[0]) if rows else []
    if transpose_by is not None:
        table = [[key] + [line[k] for line in table] for k, key in enumerate(headers) if key != transpose_by]
        headers = [transpose_by, *(str(row[transpose_by]) for row in rows)]
    return tabulate(table, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)
