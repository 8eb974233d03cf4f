"""``ochuman.report.render`` tables (``table``, ``markdown``): the plain-text layout made without
tabulate equals tabulate's, cell for cell, and anything not plain still goes through tabulate."""
from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st
from tabulate import tabulate

from ochuman import report

# Plain ASCII text, then what tabulate treats specially: spaces around, tabs, line breaks,
# ANSI colour codes, wide and combining characters, other scripts.
_PLAIN = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
_ODD = st.sampled_from([" a", "b ", "a\tb", "two\nlines", "\x1b[31mred\x1b[0m", "中文", "e\u0301", "é", "\u200b", ""])
_TEXT = st.one_of(_PLAIN, _PLAIN, _PLAIN, _ODD)
_VALUES = st.one_of(
    _TEXT, st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 0.0005, -1.0, 1e300, -1e-300]),
)


def _tabulated(rows: list[dict], transpose_by, fmt: str = "table") -> str:
    """What render() gave before its plain layout: the same cells and headers through tabulate."""
    table = [[report._cell(v) for v in row.values()] for row in rows]
    headers = list(rows[0]) if rows else []
    if transpose_by is not None:
        table = [[key] + [line[k] for line in table] for k, key in enumerate(headers) if key != transpose_by]
        headers = [transpose_by, *(str(row[transpose_by]) for row in rows)]
    return tabulate(table, headers=headers, tablefmt="github" if fmt == "markdown" else "simple", disable_numparse=True)


@st.composite
def _rows(draw):
    keys = draw(st.lists(_TEXT, min_size=1, max_size=6, unique=True))
    count = draw(st.integers(0, 5))
    rows = [{key: draw(_VALUES) for key in keys} for _ in range(count)]
    transpose_by = draw(st.one_of(st.none(), st.sampled_from(keys))) if rows else None
    return rows, transpose_by


@settings(max_examples=600, deadline=None)
@given(_rows(), st.sampled_from(["table", "markdown"]))
def test_tables_equal_tabulate(drawn, fmt):
    rows, transpose_by = drawn
    assert report.render(rows, fmt, transpose_by=transpose_by) == _tabulated(rows, transpose_by, fmt)


def test_plain_rows_are_laid_out_without_tabulate():
    """An evaluation's usual rows (names, numbers, flags) take the plain layout: the named case
    and a fresh interpreter that renders them without importing tabulate."""
    rows = [{"results": "r.json", "subset": "all", "AP": 0.18412, "APs": -1.0, "images": 2500, "reported": False,
             "note": None},
            {"results": "a-longer-name.json", "subset": "0.5:0.75", "AP": float("nan"), "APs": 0.5, "images": 7,
             "reported": True, "note": "x"}]
    table = [[report._cell(v) for v in row.values()] for row in rows]
    assert report._plain_table(table, list(rows[0])) is not None
    for fmt in ("table", "markdown"):
        assert report.render(rows, fmt) == _tabulated(rows, None, fmt)
        assert report.render(rows, fmt, transpose_by="results") == _tabulated(rows, "results", fmt)
    code = ("import json, sys; from ochuman.report import render;"
            f"text = render(json.loads({json.dumps(rows)!r}), 'table');"
            "assert 'tabulate' not in sys.modules, 'tabulate was imported'; print(text)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60).stdout
    assert out.rstrip("\n") == _tabulated(rows, None)


def test_odd_cells_still_go_through_tabulate():
    for odd in ("中文", " padded", "two\nlines", "\x1b[1mbold\x1b[0m", 3.5j):
        table = [["a", odd]]
        assert report._plain_table(table, ["x", "y"]) is None
        for fmt in ("table", "markdown"):
            assert report.render([{"x": "a", "y": odd}], fmt) == _tabulated([{"x": "a", "y": odd}], None, fmt)
