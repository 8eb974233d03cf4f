"""Rendering rows of results as text: table, json, csv or markdown.

A row is a flat dict of plain values; every row of one rendering has the same keys. Floats
are shown with 3 decimals in tables (``table``, ``markdown``) and at full precision in
``json`` and ``csv``.

Tables are tabulate's. A ``table`` or ``markdown`` table whose cells and headers are all plain
ASCII text (the usual case) is laid out here instead, exactly as tabulate lays it out (a
differential test holds the two equal): importing tabulate 0.10 costs ~35 ms (its
``importlib.metadata`` version lookup ~16 ms, wcwidth ~12 ms), a fifth of a whole ``ochuman
eval`` on a 1000-image COCO file.
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
    table = [[_cell(v) for v in row.values()] for row in rows]
    headers = list(rows[0]) if rows else []
    if transpose_by is not None:
        table = [[key] + [line[k] for line in table] for k, key in enumerate(headers) if key != transpose_by]
        headers = [transpose_by, *(str(row[transpose_by]) for row in rows)]
    plain = _plain_table(table, headers, markdown=fmt == "markdown")
    if plain is not None:
        return plain
    from tabulate import tabulate

    return tabulate(table, headers=headers, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)


def _plain_text(value) -> str | None:
    """A cell's text where it is plain (None, or a str, int or bool whose text is printable
    ASCII without surrounding spaces: one column per character, nothing tabulate would strip,
    split or parse), else None."""
    if value is None:
        return ""
    if type(value) not in (str, int, bool):
        return None
    text = str(value)
    return text if text.isascii() and text.isprintable() and text == text.strip() else None


def _plain_table(table: list[list], headers: list, markdown: bool = False) -> str | None:
    """``tabulate(table, headers, tablefmt="simple" or, markdown, "github", disable_numparse=True)``
    of plain cells (:func:`_plain_text`): every column left-aligned, as wide as its widest cell or
    its header plus 2; simple: columns two spaces apart, a line of dashes under the headers, each
    line's trailing spaces cut; github: cells between "| ", " | " and " |", a rule of dashes
    between bars. None where any cell or header is not plain, or there is no row or header."""
    header_texts = [_plain_text(h) if isinstance(h, str) else None for h in headers]
    rows = [[_plain_text(v) for v in line] for line in table]
    if not rows or not headers or None in header_texts or any(None in line or len(line) != len(headers) for line in rows):
        return None
    widths = [max(len(h) + 2, *(len(line[j]) for line in rows)) for j, h in enumerate(header_texts)]

    if markdown:
        def line(cells) -> str:
            return "| " + " | ".join(cell.ljust(width) for cell, width in zip(cells, widths)) + " |"

        rule = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    else:
        def line(cells) -> str:
            return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths)).rstrip()

        rule = line("-" * width for width in widths)
    return "\n".join([line(header_texts), rule, *(line(cells) for cells in rows)])
