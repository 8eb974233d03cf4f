"""The compiled JSON scanners checked like a parser (``_evalcore.scan_results``,
``scan_coco_images``, ``scan_coco_annotations``, ``rle_spans_clean`` and their callers).

For every byte string drawn (valid documents in every JSON spelling, and mutations of them):

- a document the scanner reads is one ``json.loads`` accepts, and the scanner's columns are
  ``json.loads``' values (ids, scores and coordinates bit for bit, RLE strings after unescaping);
  the same in 1..4 parts (threads) as in one;
- the project's reading (scanner first, general path on ``None``) equals the general path alone
  (msgspec / ``json.loads`` + the Python conversion): the same detections or dataset, or the
  same one-line error; a document ``json.loads`` rejects is refused, never read.

Named tests pin the error positions the project reports.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Optional
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
import msgspec
from pycocotools import mask as mask_utils

from ochuman import _evalcore
from ochuman import io as ochuman_io
from ochuman.errors import FormatError, ResultsError
from ochuman.io import LONE_SURROGATE_KEY
from ochuman.eval.results import _scanned_detections, detections_from_bytes, detections_from_records, parse_results
from ochuman import scan as ochuman_scan
from ochuman.scan import map_file, scan_results

SOURCE = "results.json"
COCO_SOURCE = "gt.json"
FAST = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
MANY = settings(FAST, max_examples=3000)

# The ground truth the results are read against: image ids, [height, width], file names.
IMAGE_IDS = np.array([1, 2, 70], dtype=np.int64)
IMAGE_SIZES = np.array([[37, 41], [2, 3], [64, 60]], dtype=np.int64)
FILE_NAMES = ("a.jpg", "b.jpg", "c.jpg")
CATEGORIES = (1, 3)
NUM_KEYPOINT_VALUES = 51


def _rle_pool(seed: int = 0) -> dict:
    """A few valid compressed RLE strings per image size (some holding a backslash)."""
    rng = np.random.default_rng(seed)
    pool = {}
    for h, w in IMAGE_SIZES.tolist():
        strings = []
        while len(strings) < 6:
            m = (rng.random((h, w)) < rng.random()).astype(np.uint8)
            m[:, int(rng.integers(0, w)):] = rng.random() < 0.5
            counts = mask_utils.encode(np.asfortranarray(m))["counts"].decode()
            if len(strings) < 3 or "\\" in counts or h * w < 10:
                strings.append(counts)
        pool[(h, w)] = strings
    return pool


RLE_POOL = _rle_pool()

# ------------------------------------------------------------------------------ JSON spellings

EDGE_NUMBERS = (
    "0", "-0", "-0.0", "0.0", "0e0", "-0E+00", "1E+2", "1e-400", "-1e-400", "4.9e-324", "5e-324",
    "2.2250738585072014e-308", "2.2250738585072011e-308", "1.7976931348623157e308", "1.7976931348623158e308",
    "9007199254740993", "9007199254740993.0", "123456789012345678901234567890", "12345678901234567890",
    "1234567890123456789", "999999999999999999", "1000000000000000000", "-9223372036854775808",
    "9223372036854775807", "18446744073709551617", "0.1000000000000000055511151231257827021181583404541015625",
    "1e23", "8.98846567431158e307", "0.30000000000000004", "1e22", "1e-22", "123.456e-5", "0.000001e+0006",
    "1E400", "-1e400", "1e99999999999", "1e-99999999999",
)
_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f",
                  "/": "\\/"}
_EXTRA_KEYS = ("id", "area", "iscrowd", "extra", "x", "Score", "image_id ", "segm", "")


def _escape_char(ch: str, style: int) -> str:
    """One character as JSON string content: raw where JSON allows (style 0), else a short
    escape (1) or \\u in lower (2) or upper case (3); beyond the BMP a surrogate pair."""
    code = ord(ch)
    if code > 0xFFFF:
        high, low = 0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)
        return ch if style == 0 else f"\\u{high:04x}\\u{low:04X}"
    if style == 0 and ch not in '"\\' and code >= 0x20 and not 0xD800 <= code <= 0xDFFF:
        return ch
    if style == 1 and ch in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[ch]
    return f"\\u{code:04x}" if style != 3 else f"\\u{code:04X}"


class Spelling:
    """Random JSON spellings from one seeded ``random.Random`` (a drawn seed: cheap in bulk):
    whitespace anywhere (``space_rate``), escapes in strings and keys (``escape_rate``),
    numbers in every JSON form, objects in any key order with unknown and duplicated keys."""

    def __init__(self, rnd, space_rate: float, escape_rate: float):
        self.rnd, self.space_rate, self.escape_rate = rnd, space_rate, escape_rate

    def ws(self) -> str:
        rnd = self.rnd
        return "".join(rnd.choice(" \t\n\r") for _ in range(rnd.randint(1, 3))) if rnd.random() < self.space_rate else ""

    def number(self, nonnegative: bool = False) -> str:
        rnd = self.rnd
        kind = rnd.randrange(6)
        if kind == 0:
            text = rnd.choice(EDGE_NUMBERS)
        elif kind == 1:
            text = repr(rnd.uniform(0, 1000) if rnd.random() < 0.5 else 10 ** rnd.uniform(-330, 308))
        elif kind == 2:
            text = format(10 ** rnd.uniform(-30, 30), f".{rnd.randint(0, 17)}{rnd.choice('eEgf')}")
        elif kind == 3:
            text = str(rnd.randint(0, 10 ** rnd.randint(1, 25)))
        elif kind == 4:  # the grammar: integer part, fraction, exponent (leading zeros, long runs)
            digits = "".join(rnd.choice("0123456789") for _ in range(rnd.randint(0, 24)))
            text = ("0" if rnd.random() < 0.3 else rnd.choice("123456789") + digits)
            if rnd.random() < 0.5:
                text += "." + "".join(rnd.choice("0123456789") for _ in range(rnd.randint(1, 24)))
            if rnd.random() < 0.4:
                text += rnd.choice("eE") + rnd.choice(["", "+", "-"]) + str(rnd.randint(0, 400)).zfill(rnd.randint(1, 4))
        else:
            text = f"{rnd.uniform(0, 100):.{rnd.randint(0, 4)}f}"
        text = text.lstrip("-")
        return "-" + text if rnd.random() < (0.1 if nonnegative else 0.4) else text

    def integer(self, value: int) -> str:
        """``value``, now and then as -0 or in a float spelling (1.0, 1e0: not an integer)."""
        roll = self.rnd.random()
        if roll < 0.9:
            return "-0" if value == 0 and roll < 0.3 else str(value)
        return self.rnd.choice([f"{value}.0", f"{value}e0", f"{value}E+0", f"0{value}"])

    def string(self, text: str, escape_rate: float | None = None) -> str:
        rate = self.escape_rate if escape_rate is None else escape_rate
        rnd = self.rnd
        return '"' + "".join(_escape_char(ch, rnd.randint(1, 3) if rnd.random() < rate else 0) for ch in text) + '"'

    def any_text(self) -> str:
        rnd = self.rnd
        pools = ("abc xyz", "\\\"/\n\t\x01\x7f", "éß€中", "\U0001F600\ud800\udfff", "0123456789")
        return "".join(rnd.choice(rnd.choice(pools)) for _ in range(rnd.randint(0, 6)))

    def value(self, depth: int = 0) -> str:
        """Any JSON value, nested (now and then deeper than the scanner's 64 levels)."""
        rnd = self.rnd
        roll = rnd.random()
        if depth == 0 and roll < 0.02:
            return "[" * 70 + "1" + "]" * 70
        if depth < 3 and roll < 0.25:
            return self.array([self.value(depth + 1) for _ in range(rnd.randint(0, 3))])
        if depth < 3 and roll < 0.4:
            return self.object([(self.any_text(), self.value(depth + 1)) for _ in range(rnd.randint(0, 3))], extras=0)
        if roll < 0.6:
            return self.number()
        if roll < 0.85:
            return self.string(self.any_text(), 0.3)
        return rnd.choice(["true", "false", "null"])

    def array(self, items: list) -> str:
        if not items:
            return "[" + self.ws() + "]"
        return "[" + ",".join(self.ws() + item + self.ws() for item in items) + "]"

    def numbers(self, count: int, nonnegative: bool = False) -> str:
        return self.array([self.number(nonnegative) for _ in range(count)])

    def object(self, members: list, extras: int = 2) -> str:
        """``members`` [(key, value text)] shuffled, with up to ``extras`` unknown members and
        now and then a duplicated key (json.loads keeps the last)."""
        rnd = self.rnd
        members = list(members)
        for _ in range(rnd.randint(0, extras)):
            members.append((rnd.choice(_EXTRA_KEYS), self.value()))
        if members and rnd.random() < 0.08:
            members.append((rnd.choice(members)[0], self.value(2)))
        rnd.shuffle(members)
        if not members:
            return "{" + self.ws() + "}"
        return "{" + ",".join(self.ws() + self.string(key) + self.ws() + ":" + self.ws() + value + self.ws()
                              for key, value in members) + "}"

    def polygons(self) -> str:
        """A COCO polygon list: 1-3 polygons of 3-6 points, numbers spelled every way."""
        return self.array([self.numbers(2 * self.rnd.randrange(3, 7), nonnegative=True)
                           for _ in range(self.rnd.randrange(1, 4))])

    def uncompressed_rle(self, h: int, w: int) -> str:
        """``{"size": [h, w], "counts": [...]}``: run lengths, mostly adding up to h * w."""
        cut = sorted(self.rnd.sample(range(1, h * w), 3))
        counts = [a - b for a, b in zip(cut + [h * w], [0] + cut)]
        if self.rnd.random() < 0.2:
            counts[-1] += self.rnd.choice([1, -1])
        return self.object([("size", self.array([self.integer(h), self.integer(w)])),
                            ("counts", self.array([self.integer(c) for c in counts]))])

    def rle(self, h: int, w: int) -> str:
        """``{"size": [h, w], "counts": "..."}``: mostly a valid RLE of that size."""
        if self.rnd.random() < 0.1:
            h, w = self.rnd.choice(IMAGE_SIZES.tolist())
        counts = self.rnd.choice(RLE_POOL[(h, w)])
        return self.object([("size", self.array([self.integer(h), self.integer(w)])),
                            ("counts", self.string(counts, self.escape_rate / 4))])


@st.composite
def spelling(draw) -> Spelling:
    return Spelling(random.Random(draw(st.integers(0, 2**32 - 1))), draw(st.sampled_from([0.0, 0.1, 0.5])),
                    draw(st.sampled_from([0.0, 0.0, 0.05, 0.3])))


FIELD_SETS = [frozenset({"bbox"}), frozenset({"segmentation"}), frozenset({"keypoints"}),
              frozenset({"bbox", "segmentation"}), frozenset({"bbox", "segmentation", "keypoints"}),
              frozenset({"segmentation", "keypoints"})]


def results_record(spell: Spelling, fields: frozenset, score: str) -> str:
    rnd = spell.rnd
    k = rnd.randrange(len(IMAGE_IDS))
    h, w = IMAGE_SIZES[k].tolist()
    image_id = spell.integer(int(IMAGE_IDS[k])) if rnd.random() < 0.95 else rnd.choice(['"a.jpg"', "99", '"zz"'])
    members = [("image_id", image_id), ("category_id", spell.integer(rnd.choice([1, 1, 1, 3, 2]))), ("score", score)]
    if rnd.random() < 0.05:  # a record unlike the others
        fields = fields ^ {rnd.choice(["bbox", "segmentation", "keypoints", "score"])}
    if "bbox" in fields:
        members.append(("bbox", spell.numbers(4, nonnegative=True)))
    if "segmentation" in fields:  # polygons now and then (the scanner passes over them where masks are not read)
        members.append(("segmentation", spell.rle(h, w) if rnd.random() < 0.9 else
                        spell.array([spell.numbers(rnd.choice([6, 8]), nonnegative=True)])))
    if "keypoints" in fields:  # another count now and then (read only in keypoints evaluation)
        members.append(("keypoints", spell.numbers(NUM_KEYPOINT_VALUES if rnd.random() < 0.9 else rnd.choice([0, 3, 50]))))
    if "score" in fields:
        members = [m for m in members if m[0] != "score"]
    return spell.object(members)


@st.composite
def results_document(draw) -> bytes:
    """A results list: 1-5 records of the same fields (mostly), scores from hypothesis' floats
    (repr) or in any JSON spelling."""
    spell = draw(spelling())
    fields = draw(st.sampled_from(FIELD_SETS))
    scores = draw(st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False).map(repr),
                                     st.sampled_from(EDGE_NUMBERS), st.builds(spell.number)), min_size=1, max_size=5))
    records = [results_record(spell, fields, score) for score in scores]
    return (spell.ws() + spell.array(records) + spell.ws()).encode()


# ---------------------------------------------------------------------------------- mutations

INSERTS = [b",", b"NaN", b"Infinity", b"-Infinity", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf",
           b"\x00", b"\x01", b"\x1f", b"\x7f", b"\x0b", b"\x0c", b"\\", b"\\ud800", b"\\udc00\\ud800", b"\\u12",
           b"\\x", b'"', b"]", b"}", b"{", b"[", b":", b"1e400", b"-0", b"01", b"1.", b".5", b"+1", b" ", b"\n",
           b"true", b"nul", b"\\/", b"\\\\", b"\\\\\\", b"\xc3\xa9"]
NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")
STRING_START = re.compile(rb'"(?:counts|file_name)"\s*:\s*"')
RECORD_BOUNDARY = re.compile(rb"\}\s*,\s*\{")


@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with 1-2 edits: truncation, a byte changed, a token or bad byte inserted (also
    inside an RLE string or a file name), a number replaced (NaN, Infinity, 1e400, 01, ...), a
    BOM, trailing garbage, a non-JSON space between records."""
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["truncate", "byte", "insert", "in_string", "number", "bom", "trailing",
                                     "boundary"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "byte" and data:
            data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
        elif kind == "insert":
            data = data[:at] + draw(st.sampled_from(INSERTS)) + data[at:]
        elif kind == "in_string" and STRING_START.search(data):
            starts = [m.end() for m in STRING_START.finditer(data)]
            at = draw(st.sampled_from(starts)) + draw(st.integers(0, 3))
            data = data[:at] + draw(st.sampled_from(INSERTS)) + data[at:]
        elif kind == "number" and NUMBER.search(data):
            found = draw(st.sampled_from(list(NUMBER.finditer(data))))
            replacement = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-0", b"01", b"1.",
                                                b"-", b"1e", b"0x10", b"1_0", b"null", b'"1"']))
            data = data[:found.start()] + replacement + data[found.end():]
        elif kind == "bom":
            data = b"\xef\xbb\xbf" + data
        elif kind == "trailing":
            data = data + draw(st.sampled_from([b"x", b"]", b",", b"\x00", b" \n", b"[]", b"\x0c"]))
        elif kind == "boundary" and RECORD_BOUNDARY.search(data):
            found = draw(st.sampled_from(list(RECORD_BOUNDARY.finditer(data))))
            data = data[:found.start()] + b"}," + draw(st.sampled_from([b"\x0b", b"\x0c", b"\x1c", b"\xa0"])) + b"{" \
                + data[found.end():]
    return data


def results_bytes() -> st.SearchStrategy[bytes]:
    return st.one_of(results_document(), results_document().flatmap(mutated))


def json_accepts(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, RecursionError):
        return False
    return True


def _bits(value) -> bytes:
    return np.ascontiguousarray(np.asarray(value, dtype=np.float64)).tobytes()


# ---------------------------------------------------------------------------- results scanner

def _string_content(raw: bytes) -> str:
    """Raw JSON string content as json.loads reads it."""
    return json.loads(b'"' + raw + b'"')


def check_scanner_columns(data: bytes) -> None:
    """What scan_results reads is json.loads' reading, bit for bit, in any number of parts."""
    whole = scan_results(data, 1)
    for parts in (2, 3, 4):
        assert scan_results(data, parts) == whole, f"in {parts} parts"
    if whole is None:
        return
    assert json_accepts(data), "the scanner read a document json.loads refuses"
    records = json.loads(data)
    image_id, category_id, score, flags, bbox, segm, keypoints = whole
    assert np.frombuffer(image_id, np.int64).tolist() == [r["image_id"] for r in records]
    assert np.frombuffer(category_id, np.int64).tolist() == [r["category_id"] for r in records]
    assert score == _bits([r["score"] for r in records])
    assert np.frombuffer(flags, np.uint8).tolist() == [
        ("bbox" in r) | ("segmentation" in r) << 1 | ("keypoints" in r) << 2 for r in records]
    assert bbox == _bits([r.get("bbox", [0, 0, 0, 0]) for r in records])
    segm = np.frombuffer(segm, np.int64).reshape(-1, 4)
    with_mask = [r["segmentation"] for r in records if "segmentation" in r]
    assert segm[:, :2].tolist() == [s["size"] for s in with_mask]
    assert [_string_content(data[a:a + length]) for a, length in segm[:, 2:].tolist()] == [s["counts"] for s in with_mask]
    assert keypoints == _bits([r["keypoints"] for r in records if "keypoints" in r])


def check_scanner_skips(data: bytes) -> None:
    """With an IoU type, the scanner keeps the fields that evaluation reads, as a full scan
    reads them, and leaves the others' columns empty (every field when record 0 has no bbox);
    it may take a file a full scan gives up on (polygons, other keypoint counts in fields it
    passes over), never one json.loads refuses."""
    whole = scan_results(data, 1)
    for iou_type, skipped in (("bbox", (5, 6)), ("segm", (6,)), ("keypoints", (5,))):
        scanned = scan_results(data, 1, iou_type)
        for parts in (2, 3):
            assert scan_results(data, parts, iou_type) == scanned, f"in {parts} parts"
        if whole is not None:
            assert scanned is not None
        if scanned is None:
            continue
        assert json_accepts(data), "the scanner read a document json.loads refuses"
        if not scanned[3][0] & 1:  # record 0 without bbox: every field
            skipped = ()
        for k, (column, full) in enumerate(zip(scanned, whole or [None] * 7)):
            if k in skipped:
                assert column == b"", (iou_type, k)
            elif whole is not None:
                assert column == full, (iou_type, k)

def _general(data: bytes, iou_type: str):
    """The general path alone: typed parse (msgspec, json.loads on its refusal) + conversion."""
    try:
        return detections_from_records(parse_results(data, SOURCE), SOURCE, IMAGE_IDS, IMAGE_SIZES, CATEGORIES,
                                       iou_type, FILE_NAMES)
    except ResultsError as err:
        return err


def _project(data: bytes, iou_type: str, parts: int):
    """The project's reading: the scanner (in ``parts``), the general path when it gives up."""
    try:
        return detections_from_bytes(data, SOURCE, IMAGE_IDS, IMAGE_SIZES, CATEGORIES, iou_type, FILE_NAMES,
                                     scanned=scan_results(data, parts, iou_type))
    except ResultsError as err:
        return err


def assert_same_detections(fast, slow) -> None:
    """Equal detections, floats bit for bit (signs of zeros included)."""
    for name in ("image_id", "category_id", "ann_id", "iscrowd", "mask_size"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert np.asarray(a).tolist() == np.asarray(b).tolist() and np.asarray(a).dtype == np.asarray(b).dtype, name
    for name in ("bbox", "area", "score", "keypoints"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None), name
        if a is not None:
            assert _bits(a) == _bits(b), (name, a, b)
    assert (fast.counts is None) == (slow.counts is None)
    if fast.counts is not None:
        assert list(fast.counts) == list(slow.counts)
        for name in ("areas", "totals", "boxes"):
            assert getattr(fast.masks, name).tolist() == getattr(slow.masks, name).tolist(), name


def check_results_reading(data: bytes, iou_type: str, parts: int) -> None:
    accepted = json_accepts(data)
    general = _general(data, iou_type)
    if not accepted:
        assert isinstance(general, ResultsError), "the general path read a document json.loads refuses"
    if isinstance(general, ResultsError):
        message = str(general)
        assert message.startswith(f"{SOURCE}: ") and "\n" not in message, message
    for scanned in (scan_results(data, parts), scan_results(data, parts, iou_type)):
        fast = _scanned_detections(data, scanned, IMAGE_IDS, IMAGE_SIZES, CATEGORIES, iou_type)
        if fast is None:
            continue
        assert accepted, "the scanner's detections come from a document json.loads refuses"
        assert not isinstance(general, ResultsError), f"scanned, but the general path says: {general}"
        assert_same_detections(fast, general)
    project = _project(data, iou_type, parts)
    if isinstance(general, ResultsError):
        assert isinstance(project, ResultsError) and str(project) == str(general), (project, general)
    else:
        assert not isinstance(project, ResultsError), project
        assert_same_detections(project, general)
    if accepted and not isinstance(general, ResultsError):
        # the general path's reading is json.loads' reading, converted
        oracle = detections_from_records(parse_results(json.loads(data), SOURCE), SOURCE, IMAGE_IDS, IMAGE_SIZES,
                                         CATEGORIES, iou_type, FILE_NAMES)
        assert_same_detections(general, oracle)


@pytest.mark.differential
@FAST
@given(data=results_bytes())
def test_results_scanner_reads_what_json_loads_reads(data):
    check_scanner_columns(data)
    check_scanner_skips(data)


def test_a_snapshot_keeps_the_content_of_its_time(tmp_path, monkeypatch):
    """snapshot_file: the file's bytes, mapped from a private copy that a rewrite of the file
    (truncated first, or longer) does not change; in the temporary folder when the file's own
    folder takes no unnamed file; None for an empty or special file, or without the system calls."""
    path = tmp_path / "results.json"
    path.write_bytes(b'[{"image_id": 1}]' * 1000)
    before = path.read_bytes()
    snapshot = ochuman_scan.snapshot_file(path)
    assert snapshot is not None and snapshot[:] == before
    path.write_bytes(b"[]")
    assert snapshot[:] == before
    path.write_bytes(b"x" * 3 * len(before))
    assert snapshot[:] == before
    real_open = ochuman_scan.os.open
    folders = []

    def no_unnamed_file_beside(name, flags, *mode):
        if flags & os.O_TMPFILE:
            folders.append(name)
            if name == str(tmp_path):
                raise OSError(95, "Operation not supported")
        return real_open(name, flags, *mode)

    monkeypatch.setattr(ochuman_scan.os, "open", no_unnamed_file_beside)
    again = ochuman_scan.snapshot_file(path)
    assert again[:] == path.read_bytes() and folders == [str(tmp_path), tempfile.gettempdir()]
    monkeypatch.undo()
    (tmp_path / "empty.json").write_bytes(b"")
    assert ochuman_scan.snapshot_file(tmp_path / "empty.json") is None
    assert ochuman_scan.snapshot_file(tmp_path / "missing.json") is None
    monkeypatch.delattr(ochuman_scan.os, "copy_file_range")
    assert ochuman_scan.snapshot_file(path) is None


class _SetAfter:
    """An event that reads as set from its (n + 1)-th look on (someone began to wait then)."""

    def __init__(self, n: int):
        self.n, self.looks = n, 0

    def is_set(self) -> bool:
        self.looks += 1
        return self.looks > self.n


def check_piecewise_scan(data: bytes, iou_type: Optional[str], pieces: int, threads: int = 1,
                         hash_file: bool = True, copy_masks: bool = True, wanted_after: Optional[int] = None) -> None:
    """Scanning a mapped file in pieces, ``threads`` at a time, each (hashed and) then let go,
    the hash moved to a thread of its own after ``wanted_after`` batches (None: never), gives
    scan_results' columns and the file's SHA-256, wherever the pieces are cut (inside a
    string: one scan); when masks are read and copied, their strings are copied out (each
    piece's from its own offset on, or, pieces one at a time, packed), and the segm column
    points there (the same strings, the same sizes, none overlapping)."""
    if not data:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.json"
        path.write_bytes(data)
        mapped = map_file(path)
        wanted = None if wanted_after is None else _SetAfter(wanted_after)
        with mock.patch.object(ochuman_scan, "PIECE_BYTES", max(1, len(data) // pieces)):
            scanned, digest, strings = ochuman_scan.scan_results_piecewise(mapped, iou_type, hash_file, threads,
                                                                           copy_masks, wanted)
        assert (digest and digest.hexdigest()) == (hashlib.sha256(data).hexdigest() if hash_file else None)
        whole = scan_results(data, 1, iou_type)
        if strings is None:
            assert scanned == whole
        else:
            assert copy_masks and iou_type in ("segm", None) and scanned[:5] == whole[:5] and scanned[6] == whole[6]
            moved, original = (np.frombuffer(c, dtype=np.int64).reshape(-1, 4) for c in (scanned[5], whole[5]))
            np.testing.assert_array_equal(moved[:, [0, 1, 3]], original[:, [0, 1, 3]])
            ends = moved[:, 2] + moved[:, 3]
            assert (moved[1:, 2] >= ends[:-1]).all() and (moved[:, 2] <= original[:, 2]).all()
            if threads == 1:  # pieces one at a time: every string right after the one before
                np.testing.assert_array_equal(moved[:, 2], np.cumsum(moved[:, 3]) - moved[:, 3])
            assert [strings[a:a + n] for _, _, a, n in moved.tolist()] == [data[a:a + n] for _, _, a, n in original.tolist()]
        mapped.close()


@pytest.mark.differential
@FAST
@given(data=results_bytes(), pieces=st.integers(1, 5))
def test_mask_strings_copied_out_of_a_mapped_file(data, pieces):
    """copy_mask_strings: a scanned segm column's strings, copied out of the mapped file a few
    at a time (its pages let go behind them), packed one after another; the rows' sizes kept."""
    scanned = scan_results(data, 1, "segm")
    if not data or scanned is None or not scanned[5]:
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.json"
        path.write_bytes(data)
        mapped = map_file(path)
        with mock.patch.object(ochuman_scan, "PIECE_BYTES", max(1, len(data) // pieces)):
            strings, moved = ochuman_scan.copy_mask_strings(mapped, scanned[5])
        rows, original = (np.frombuffer(c, dtype=np.int64).reshape(-1, 4) for c in (moved, scanned[5]))
        np.testing.assert_array_equal(rows[:, [0, 1, 3]], original[:, [0, 1, 3]])
        np.testing.assert_array_equal(rows[:, 2], np.cumsum(original[:, 3]) - original[:, 3])
        assert [strings[a:a + n] for _, _, a, n in rows.tolist()] == [data[a:a + n] for _, _, a, n in original.tolist()]
        mapped.close()


@pytest.mark.parametrize("advice", ["MADV_HUGEPAGE", "invalid"])
def test_anonymous_map_is_zeroed_writable_memory_with_or_without_huge_pages(monkeypatch, advice):
    """Where the system refuses the huge-page advice (EINVAL: no transparent huge pages, here an
    advice it does not know), the map is made all the same."""
    if advice == "invalid":
        monkeypatch.setattr(ochuman_scan.mmap, "MADV_HUGEPAGE", 987654, raising=False)
    memory = ochuman_scan.anonymous_map(3 << 20)
    assert len(memory) == 3 << 20 and memory[:] == bytes(3 << 20)
    memory[(2 << 20) + 5:(2 << 20) + 8] = b"abc"
    assert memory[(2 << 20) + 4:(2 << 20) + 9] == b"\0abc\0"


@pytest.mark.parametrize("threads", [1, 2])
def test_mask_strings_of_pieces_scanned_one_at_a_time_are_packed(threads):
    """A file of many masked records in five pieces: their strings copied out packed (one piece at a
    time) or each piece's from its own offset (pieces in threads), the same strings either way."""
    strings = RLE_POOL[64, 60]
    records = [{"image_id": 70, "category_id": 1, "bbox": [1.0, 2.0, 3.0, 4.0], "score": k / 200,
                "segmentation": {"size": [64, 60], "counts": strings[k % len(strings)]}}
               for k in range(200)]
    for wanted_after in (None, 0, 2):
        check_piecewise_scan(json.dumps(records).encode(), "segm", 5, threads, wanted_after=wanted_after)


@pytest.mark.differential
@FAST
@given(data=results_bytes(), iou_type=st.sampled_from(["bbox", "keypoints", "segm", None]), pieces=st.integers(1, 5),
       threads=st.integers(1, 3), hash_file=st.booleans(), copy_masks=st.booleans(),
       wanted_after=st.none() | st.integers(0, 4))
def test_piecewise_scan_of_a_mapped_file(data, iou_type, pieces, threads, hash_file, copy_masks, wanted_after):
    check_piecewise_scan(data, iou_type, pieces, threads, hash_file, copy_masks, wanted_after)


_MASK_AND_KEYPOINTS = '"segmentation": {"size": [2, 2], "counts": "04"}, "keypoints": [%s]' % ", ".join(["1"] * 51)
_REFUSED_AFTER_A_RECORD = ('[{%s, "image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}, {%s, "score": "0.5"}]'
                           % (_MASK_AND_KEYPOINTS, _MASK_AND_KEYPOINTS)).encode()


@pytest.mark.differential
@FAST
@given(data=results_bytes(), parts=st.integers(1, 4), skip=st.sampled_from([0, 1, 2, 3]), split=st.booleans())
def test_result_scan_appends_parts_as_one_scan(data, parts, skip, split):
    """ResultScan: a file's parts scanned one after another into one scan (``split``: every
    other part into a scan of its own, appended by ``extend``) give the columns of one scan of
    the whole file; a document not in the shape, refused after a whole record and a mask and
    keypoints of the next were read, leaves the scan as it was."""
    whole = _evalcore.scan_results(data, 0, len(data), skip)
    spans = ochuman_scan._record_spans(data, parts)
    scan = _evalcore.ResultScan()
    ended = True
    for k, (start, stop) in enumerate(spans):
        assert scan.scan(_REFUSED_AFTER_A_RECORD, 0, len(_REFUSED_AFTER_A_RECORD), skip) is None
        if split and k % 2:
            own = _evalcore.ResultScan()
            ended = ended and own.scan(data, start, stop, skip) is not None
            scan.extend(own)
        else:
            ended = ended and scan.scan(data, start, stop, skip) is not None
    if whole is not None:
        assert ended and scan.columns() == whole
    elif len(spans) == 1:
        assert not ended


# Keypoint lists as detectors write them (float32 and float64 reprs, small decimals, integers),
# with now and then an edge number, an odd text or another count, in any JSON spacing: the
# documents of results_bytes() seldom hold 51 numbers that are all within float64.
_JOINT_NUMBER = st.one_of(st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda v: repr(float(v))),
                          st.floats(allow_nan=False, allow_infinity=False).map(repr),
                          st.from_regex(r"-?(0|[1-9][0-9]{0,3})(\.[0-9]{1,3})?", fullmatch=True))


@st.composite
def joints_results(draw) -> bytes:
    records = []
    for _ in range(draw(st.integers(1, 4))):
        numbers = draw(st.lists(_JOINT_NUMBER, min_size=51, max_size=51))
        if draw(st.integers(0, 7)) == 0:
            numbers[draw(st.integers(0, 50))] = draw(st.sampled_from(EDGE_NUMBERS + tuple(_ODD_NUMBERS)))
        if draw(st.integers(0, 14)) == 0:
            numbers = numbers[:draw(st.sampled_from([0, 3, 50]))] if draw(st.booleans()) else numbers + ["1"]
        box = draw(st.sampled_from(['"bbox": [1, 2, 3, 4], '] * 4 + ["", '"bbox": [], ']))
        separator = draw(st.sampled_from([",", ", ", " , ", ",\n  "]))
        records.append('{"image_id": %d, "category_id": 1, "score": 0.5, %s"keypoints": [%s]}'
                       % (draw(st.sampled_from(IMAGE_IDS.tolist())), box, separator.join(numbers)))
    return ("[" + ", ".join(records) + "]").encode()


@pytest.mark.differential
@FAST
@given(data=st.one_of(results_bytes(), joints_results()), iou_type=st.sampled_from(["bbox", "segm", "keypoints"]),
       parts=st.integers(1, 3))
def test_results_reading_equals_the_general_path(data, iou_type, parts):
    check_results_reading(data, iou_type, parts)


@pytest.mark.slow
@MANY
@given(data=st.one_of(results_bytes(), joints_results()), iou_type=st.sampled_from(["bbox", "segm", "keypoints"]),
       parts=st.integers(1, 3))
def test_results_reading_equals_the_general_path_many(data, iou_type, parts):
    check_scanner_columns(data)
    check_scanner_skips(data)
    check_results_reading(data, iou_type, parts)


_RECORD = (b'{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1], '
           b'"segmentation": {"size": [37, 41], "counts": "%s"}}')


@pytest.mark.parametrize("counts", [b"0\x01", b"0\x1f", b"\\q", b"\\u12", b"0\xff", b"0\xc3"])
@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_rle_string_that_is_not_json_is_refused(counts, iou_type):
    """A control character, a bad escape or bad UTF-8 in an RLE string makes the file invalid
    JSON, even where the masks are not read (bbox evaluation)."""
    data = b"[" + _RECORD % counts + b"]"
    assert not json_accepts(data)
    assert scan_results(data) is None
    assert isinstance(_project(data, iou_type, 1), ResultsError)


@pytest.mark.parametrize("counts", [b"\\/", b"\\u0041", b"\\n", b"\\ud800", b"\xc3\xa9", b"\x7f", b"\xed\xa0\x80"])
def test_rle_string_with_other_valid_json_is_read_in_bbox_evaluation(counts):
    data = b"[" + _RECORD % counts + b"]"
    assert json_accepts(data)
    assert_same_detections(_project(data, "bbox", 1), _general(data, "bbox"))


@pytest.mark.parametrize("space", [b"\x0b", b"\x0c", b"\x1c", b"\x85"])
def test_records_split_at_a_space_json_does_not_allow_are_refused(space):
    """Parts are cut at record boundaries; the bytes between a comma and the next record's
    brace must be JSON whitespace (Python's \\s also takes \\v and \\f)."""
    record = _RECORD % b"PZ;"
    data = b"[" + b",".join([record, record, b"\n" + space + record, record]) + b"]"
    assert not json_accepts(data)
    for parts in (1, 2, 3, 4):
        assert scan_results(data, parts) is None, parts


def _decimal(mantissa: int, point: int, negative: bool) -> str:
    """mantissa's digits with a decimal point ``point`` digits from their end (a leading 0. when
    that is all of them)."""
    digits = str(mantissa)
    text = digits if point == 0 else (digits[:-point] or "0") + "." + digits[-point:].zfill(point)
    return "-" + text if negative else text


def _halfway(fraction_digits: int, steps: int, which: int, offset: int) -> str:
    """A decimal exactly halfway between two neighbouring doubles (n + .5 for n in [2^52, 2^53),
    n + .25 / .75 below that, ...), or one unit of its last digit beside it (offset -1, 1)."""
    low = 2 ** (53 - fraction_digits)
    halves = [f for f in range(1, 2 ** fraction_digits, 2)]
    tail = halves[which % len(halves)] * 10 ** fraction_digits // 2 ** fraction_digits + offset
    return f"{low + steps % low}.{tail:0{fraction_digits}d}"


@pytest.mark.differential
@settings(FAST, max_examples=400)
@given(texts=st.lists(st.one_of(
    st.floats(width=32, allow_nan=False, allow_infinity=False).map(repr),  # a detector's float32 values
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(_decimal, st.integers(2 ** 53 - 2, 10 ** 19 - 1), st.integers(0, 19), st.booleans()),
    st.builds(_halfway, st.integers(1, 3), st.integers(0, 2 ** 52), st.integers(0, 7), st.sampled_from([-1, 0, 1]))),
    min_size=1, max_size=40))
def test_decimals_of_16_to_19_digits_read_bit_for_bit(texts):
    """Numbers whose digits make no double (float32 values as Python prints them, most float64
    values, halfway cases and their neighbours) read as float() reads them, bit for bit."""
    data = ("[" + ",".join(f'{{"image_id": 1, "category_id": 1, "score": {t}, "bbox": [{t}, {t}, 1, 1]}}'
                           for t in texts) + "]").encode()
    scanned = scan_results(data)
    expected = [float(t) for t in texts]
    assert scanned is not None and scanned[2] == _bits(expected)
    assert np.frombuffer(scanned[4], dtype=np.float64).reshape(-1, 4)[:, :2].tobytes() == \
        _bits([v for v in expected for _ in range(2)])


def _digits_split(digits: str, point: int, zeros: int, negative: bool) -> str:
    """digits with the point after ``point`` of them (none past the end), ``zeros`` zeros after
    the point first when it is at the start (0.000ddd)."""
    text = f"{digits[:point]}.{digits[point:]}" if point < len(digits) else digits
    if point == 0:
        text = "0." + "0" * zeros + digits
    return ("-" if negative else "") + text


@pytest.mark.differential
@settings(FAST, max_examples=400)
@given(texts=st.lists(st.builds(_digits_split, st.from_regex(r"[1-9][0-9]{0,23}", fullmatch=True),
                                st.integers(0, 24), st.integers(0, 9), st.booleans()), min_size=1, max_size=40))
def test_decimals_of_any_length_read_bit_for_bit(texts):
    """Decimals of 1 to 24 digits, the point anywhere (the digits are read eight at a time:
    runs of 7, 8, 9, 16, 17 digits on either side of the point), as json.loads reads them."""
    data = ("[" + ",".join(f'{{"image_id": 1, "category_id": 1, "score": {t}, "bbox": [0, 0, {t}, 1]}}'
                           for t in texts) + "]").encode()
    scanned = scan_results(data)
    expected = [float(json.loads(t)) for t in texts]
    assert scanned is not None and scanned[2] == _bits(expected)
    assert np.frombuffer(scanned[4], dtype=np.float64).reshape(-1, 4)[:, 2].tobytes() == _bits(expected)


@pytest.mark.parametrize("text", ["-0", "-0e0", "-0.0", "-0E-2", "-0.000"])
def test_negative_zero_as_json_reads_it(text):
    """An integer literal -0 is the integer 0 to JSON readers (a float +0.0 after conversion);
    -0.0 and -0e0 are float literals, negative zeros."""
    data = f'[{{"image_id": 1, "category_id": 1, "score": {text}, "bbox": [{text}, 0, 1, {text}]}}]'.encode()
    scanned = scan_results(data)
    expected = json.loads(data)[0]
    assert scanned[2] == _bits(float(expected["score"]))
    assert scanned[4] == _bits([float(v) for v in expected["bbox"]])
    assert_same_detections(_project(data, "bbox", 1), _general(data, "bbox"))


def test_results_key_with_a_lone_surrogate_is_one_line():
    """json.loads reads "\\ud800" alone; msgspec cannot take it as a key: a one-line error."""
    data = b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1], "\\ud800x": 1}]'
    assert json_accepts(data)
    error = _project(data, "bbox", 1)
    assert isinstance(error, ResultsError) and str(error) == f"results.json: {LONE_SURROGATE_KEY}"


def test_rle_string_with_a_lone_surrogate_is_a_bad_rle_code():
    """json.loads reads "\\ud800" in a mask string: an RLE string with a character that is no
    RLE code (scored as a mask: segm evaluation, or record 0 without a bbox)."""
    data = b'[{"image_id": 2, "category_id": 1, "score": 1, "segmentation": {"size": [2, 3], "counts": "6\\ud800"}}]'
    for iou_type in ("bbox", "segm"):
        error = _project(data, iou_type, 1)
        assert isinstance(error, ResultsError) and str(error) == (
            "results.json: record 0 (image_id 2): segmentation: corrupt RLE counts string (character '\\ud800' at "
            "position 1 is not an RLE code, '0'..'o')"), error


# ------------------------------------------------------------------------------ error positions

@pytest.mark.parametrize("data, message", [
    (b"", "results.json: empty file (expected a JSON list of detections)"),
    (b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}',
     "results.json: line 1 column 71: not valid JSON (expecting ',' delimiter)"),
    (b'[{"image_id": 1, "category_id": 1,\n "score": 0.5,, "bbox": [0, 0, 1, 1]}]',
     "results.json: line 2 column 15: not valid JSON (expecting property name enclosed in double quotes)"),
    (b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 1, 1]}] x',
     "results.json: line 1 column 73: not valid JSON (extra data)"),
    (b'[{"image_id": 1, "category_id": 1, "score": NaN, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 0: score must be a finite number, got nan"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]},\n'
     b' {"image_id": 2, "category_id": 1, "score": 1e400, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 1: score must be a finite number, got inf"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]},\n'
     b' {"image_id": 2, "category_id": 7, "score": 1, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 1 (image_id 2): unknown category_id 7"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]},\n'
     b' {"image_id": 5, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 1 (image_id 5): unknown image_id: not an image of the ground truth (its image ids are "
     "1, 2, 70, or file names such as 'a.jpg')"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]},\n'
     b' {"image_id": 2, "category_id": 1.5, "score": 1, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 1 (image_id 2): unknown category_id 1.5"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1]},\n'
     b' {"image_id": 2, "category_id": true, "score": 1, "bbox": [0, 0, 1, 1]}]',
     "results.json: record 1: category_id: expected `int | float`, got `bool`"),
    (b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, -1, 1]}]',
     "results.json: record 0 (image_id 1): bbox has a negative width or height: [0.0, 0.0, -1.0, 1.0]"),
])
def test_results_error_positions(data, message):
    for parts in (1, 2):
        error = _project(data, "bbox", parts)
        assert isinstance(error, ResultsError) and str(error) == message


def test_results_error_position_of_a_control_character_in_an_rle_string():
    data = b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [0, 0, 1, 1],\n' \
           b' "segmentation": {"size": [37, 41], "counts": "PZ\x01;"}}]'
    for iou_type in ("bbox", "segm"):
        error = _project(data, iou_type, 1)
        assert isinstance(error, ResultsError)
        assert str(error).startswith("results.json: line 2 column 50: not valid JSON (invalid control character"), error


# ------------------------------------------------------------------------------- COCO scanners

KEYPOINT_NAMES = json.dumps([f"k{i}" for i in range(17)])


def coco_image(spell: Spelling, image_id: int, h: int, w: int) -> str:
    rnd = spell.rnd
    name = rnd.choice(["a.jpg", "dir/b.png", "c d.jpg", "", spell.any_text()])
    return spell.object([("id", spell.integer(image_id)), ("file_name", spell.string(name)),
                         ("width", spell.integer(w)), ("height", spell.integer(h))])


def coco_annotation(spell: Spelling, ann_id: int) -> str:
    rnd = spell.rnd
    k = rnd.randrange(len(IMAGE_IDS))
    h, w = IMAGE_SIZES[k].tolist()
    members = [("id", spell.integer(ann_id)), ("image_id", spell.integer(int(IMAGE_IDS[k]))),
               ("bbox", spell.numbers(4, nonnegative=True))]
    optional = {
        "category_id": lambda: spell.integer(rnd.choice([1, 1, 3])),
        "iscrowd": lambda: rnd.choice(["0", "1", "0", "-0", "2", "false"]),
        "area": lambda: spell.number(True) if rnd.random() < 0.8 else "null",
        "max_iou": lambda: rnd.choice(["0", "1", "0.5", "1e-3", "-0", "1.5", "null", spell.number(True)]),
        "keypoints": lambda: spell.array([v for _ in range(17) for v in (
            spell.number(True), spell.number(True), rnd.choice(["0", "1", "2", "2", "2.0", "-0", "3"]))])
        if rnd.random() < 0.8 else "null",
        "segmentation": lambda: rnd.choice([
            spell.rle(h, w), spell.rle(h, w), "null", "[[0, 0, 1, 0, 1, 1]]", spell.polygons(), spell.polygons(),
            spell.uncompressed_rle(h, w), "[]", "[[0, 0, 1, 0]]", "[[0, 0, 1, 0, 1]]", "[[], [0, 0, 1, 0, 1, 1]]"]),
        "num_keypoints": lambda: rnd.choice(["0", "3", "17", "-1", "2.0", "null"]),
    }
    for key, value in optional.items():
        if rnd.random() < 0.5:
            members.append((key, value()))
    return spell.object(members)


@st.composite
def coco_lists(draw) -> tuple[bytes, bytes]:
    """The raw ``images`` and ``annotations`` lists of a COCO file."""
    spell = draw(spelling())
    images = [coco_image(spell, int(i), h, w) for i, (h, w) in zip(IMAGE_IDS, IMAGE_SIZES.tolist())]
    spell.rnd.shuffle(images)
    ann_ids = draw(st.lists(st.integers(0, 40), max_size=5, unique=True))
    annotations = [coco_annotation(spell, i) for i in ann_ids]
    return spell.array(images).encode(), spell.array(annotations).encode()


def coco_file(images: bytes, annotations: bytes) -> bytes:
    categories = f'[{{"id": 1, "name": "person", "keypoints": {KEYPOINT_NAMES}}}, {{"id": 3, "name": "dog"}}]'
    return b'{"info": {"year": 2019}, "images": ' + images + b', "annotations": ' + annotations + \
        b', "categories": ' + categories.encode() + b"}"


@st.composite
def coco_bytes(draw) -> tuple[bytes, bytes]:
    images, annotations = draw(coco_lists())
    if draw(st.booleans()):
        if draw(st.booleans()):
            images = draw(mutated(images))
        else:
            annotations = draw(mutated(annotations))
    return images, annotations


def _none_or_nan(value) -> float:
    return np.nan if value is None else float(value)


def check_coco_scanners(images: bytes, annotations: bytes) -> None:
    """What the COCO scanners read is json.loads' reading of the lists."""
    scanned = _evalcore.scan_coco_images(images)
    if scanned is not None:
        assert json_accepts(images), "scan_coco_images read a list json.loads refuses"
        items = json.loads(images)
        ids, widths, heights, names = (np.frombuffer(b, np.int64) for b in scanned)
        assert ids.tolist() == [im["id"] for im in items]
        assert widths.tolist() == [im["width"] for im in items] and heights.tolist() == [im["height"] for im in items]
        assert [_string_content(images[a:a + n]) for a, n in names.reshape(-1, 2).tolist()] == [
            im["file_name"] for im in items]
    scanned = _evalcore.scan_coco_annotations(annotations)
    if scanned is None:
        assert _evalcore.scan_coco_annotations(annotations, True) is None
        return
    assert json_accepts(annotations), "scan_coco_annotations read a list json.loads refuses"
    items = json.loads(annotations)
    ids, image_ids, category_ids, crowd = (np.frombuffer(b, np.int64).tolist() for b in scanned[:4])
    assert ids == [a["id"] for a in items] and image_ids == [a["image_id"] for a in items]
    assert category_ids == [a.get("category_id", 1) for a in items] and crowd == [a.get("iscrowd", 0) for a in items]
    assert scanned[4] == _bits([a["bbox"] for a in items])
    assert scanned[5] == _bits([_none_or_nan(a.get("area")) for a in items])
    assert scanned[6] == _bits([_none_or_nan(a.get("max_iou")) for a in items])
    assert np.frombuffer(scanned[7], np.uint8).tolist() == [a.get("keypoints") is not None for a in items]
    # keypoint rows for every annotation (zeros where none) once any annotation has keypoints
    assert scanned[8] == (_bits([a.get("keypoints") or [0] * NUM_KEYPOINT_VALUES for a in items])
                          if any(a.get("keypoints") is not None for a in items) else b"")
    segm = np.frombuffer(scanned[9], np.int64).reshape(-1, 4).tolist()
    kinds, polygon_counts, point_counts = (np.frombuffer(b, dtype).tolist()
                                           for b, dtype in zip(scanned[11:14], (np.uint8, np.int64, np.int64)))
    xy = np.frombuffer(scanned[14], np.float64)
    polygon = point = 0
    for (h, w, start, length), kind, count, a in zip(segm, kinds, polygon_counts, items):
        seg = a.get("segmentation")
        if isinstance(seg, list):  # polygons, or [] (no mask)
            assert kind == (3 if seg else 0) and count == len(seg) and (h, w, start, length) == (-1, -1, -1, -1)
            for numbers in seg:
                assert 2 * point_counts[polygon] == len(numbers) >= 6
                assert xy[2 * point:2 * point + len(numbers)].tobytes() == _bits(numbers)
                polygon, point = polygon + 1, point + len(numbers) // 2
            continue
        assert count == 0
        if seg is None:
            assert kind == 0 and (h, w, start, length) == (-1, -1, -1, -1)
        elif isinstance(seg["counts"], str):
            assert kind == 1 and [h, w] == seg["size"]
            assert _string_content(annotations[start:start + length]) == seg["counts"]
        else:  # uncompressed RLE: the JSON list kept as it is
            assert kind == 2 and [h, w] == seg["size"] and json.loads(annotations[start:start + length]) == seg["counts"]
    assert polygon == len(point_counts) and 2 * point == len(xy)
    assert np.frombuffer(scanned[16], np.int64).tolist() == [
        sum(a["segmentation"]["counts"]) for a in items
        if isinstance(a.get("segmentation"), dict) and isinstance(a["segmentation"]["counts"], list)]
    keys = ("id", "image_id", "bbox", "category_id", "iscrowd", "area", "max_iou", "keypoints", "segmentation",
            "num_keypoints")
    assert np.frombuffer(scanned[15], np.uint16).tolist() == [
        sum(1 << k for k, key in enumerate(keys) if key in a) for a in items]
    assert np.frombuffer(scanned[10], np.int64).tolist() == [a.get("num_keypoints", -1) for a in items]
    # polygons only checked and counted: every other column the same, no coordinates
    counted = _evalcore.scan_coco_annotations(annotations, True)
    assert counted is not None and counted[14] == b"" and counted[:14] + counted[15:] == scanned[:14] + scanned[15:]


def _read_coco(data: bytes, scanner: bool, masks: bool = True):
    try:
        if scanner:
            return ochuman_io.parse(data, COCO_SOURCE, masks=masks)
        with mock.patch.object(ochuman_io, "_coco_columns_scanned", lambda *args, **kwargs: None):
            return ochuman_io.parse(data, COCO_SOURCE, masks=masks)
    except FormatError as err:
        return err


def assert_same_dataset(a, b, masks: bool = True) -> None:
    assert a.images == b.images and a.format == b.format and a.range_rule == b.range_rule
    for name in ("image_index", "person_id", "iscrowd", "has_keypoints"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist(), name
    for name in ("bbox_xywh", "keypoints", "area", "max_iou", "max_iou_box", "num_keypoints_field"):
        assert _bits(getattr(a, name)) == _bits(getattr(b, name)), (name, getattr(a, name), getattr(b, name))
    if masks:
        assert tuple(a.segmentations) == tuple(b.segmentations)
    else:  # read for boxes and keypoints: the compressed RLE strings (polygons and count lists need not be kept)
        def strings(segmentations) -> tuple:
            return tuple(s if type(s) is dict and type(s["counts"]) is str else None for s in segmentations)

        assert strings(a.segmentations) == strings(b.segmentations)


def check_coco_reading(data: bytes) -> None:
    accepted = json_accepts(data)
    general = _read_coco(data, scanner=False)
    for masks in (True, False):
        project = _read_coco(data, scanner=True, masks=masks)
        if not accepted:
            assert isinstance(project, FormatError), "a COCO file json.loads refuses was read"
        if isinstance(general, FormatError):
            assert "\n" not in str(general) and str(general).startswith(COCO_SOURCE)
            assert isinstance(project, FormatError) and str(project) == str(general), (project, general)
        else:
            assert not isinstance(project, FormatError), project
            assert_same_dataset(project, general, masks)


@pytest.mark.differential
@FAST
@given(lists=coco_bytes())
def test_coco_scanners_read_what_json_loads_reads(lists):
    check_coco_scanners(*lists)


@pytest.mark.differential
@FAST
@given(lists=coco_bytes())
def test_coco_reading_equals_the_general_path(lists):
    check_coco_reading(coco_file(*lists))


@pytest.mark.slow
@MANY
@given(lists=coco_bytes())
def test_coco_reading_equals_the_general_path_many(lists):
    check_coco_scanners(*lists)
    check_coco_reading(coco_file(*lists))


# Number texts of a polygon that is passed over (a box evaluation's ground truth): short
# coordinates and the 16-19 digits of float32 values (read from two 16-byte loads), and one odd
# text among them: longer numbers, more digits, exponents, what JSON refuses.
_SHORT_NUMBER = st.one_of(st.from_regex(r"-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,6})?", fullmatch=True),
                          st.floats(width=32, allow_nan=False, allow_infinity=False).map(lambda v: repr(float(v))))
_ODD_NUMBERS = ["01", "-01", "00.5", "1.", "-", ".5", "-.5", "1.2.3", "1e5", "1E-2", "2.5e+3", "1e", "+1", "NaN",
                "0.0", "-0", "1-2", "12345678901234567890", "1234567890.1234567890", "123456789012345",
                "1234567890123456", "0.000000000000001", "", "1 2", "1,,2", "1.e3", "--1", "0x1", "-0.", "1.5.",
                "99999999999999999999e999", "-12345678901234", "1.25E3", "7e-2",
                # about the 16th and 32nd bytes, the 19th and 20th digits
                "123456789012345.6", "1234567890123456.7", "-123456789012345.", "1234567890.123456789",
                "-1234567890123456789", "-12345678901234567890", "0.0000000000000000001", "0.00000000000000000001",
                "1.234567890123456789", "479.86322021484375e1", "479.86322021484375.", "1." + "0" * 29,
                "1" * 31, "1" * 32, "1" * 31 + ".5", "1" * 30 + ".", "-" + "9" * 30 + ".5", "1" * 40 + "e-400"]
_ODD_NUMBER = st.one_of(_SHORT_NUMBER, st.sampled_from(_ODD_NUMBERS), st.text(alphabet="0123456789.-eE+ \t,", max_size=36))


def check_polygon_passed_over(polygon: str) -> None:
    """A polygon's numbers passed over (box evaluations) are accepted exactly where reading
    them is (and JSON reads them), with the same count."""
    annotations = ('[{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1], "segmentation": [' + polygon + ']}, '
                   '{"id": 2, "image_id": 1, "bbox": [0, 0, 1, 1]}]').encode()
    read, passed = (_evalcore.scan_coco_annotations(annotations, skip) for skip in (False, True))
    assert (passed is None) == (read is None), (polygon, read is None)
    if read is not None:
        assert json_accepts(annotations)
        assert passed[13] == read[13] and passed[12] == read[12]  # points and polygons counted alike


@pytest.mark.parametrize("odd", _ODD_NUMBERS)
@pytest.mark.parametrize("at", [0, 3, 6])
def test_polygon_number_passed_over_named_cases(odd, at):
    numbers = ["12.5", "-3", "0", "150.25", "7", "0.125", "99", "4"]  # an even count: the pairs of a polygon
    numbers[at] = odd
    check_polygon_passed_over("[" + ", ".join(numbers) + "]")


@pytest.mark.differential
@FAST
@given(numbers=st.lists(_SHORT_NUMBER, min_size=6, max_size=40), odd=_ODD_NUMBER, at=st.integers(0, 39),
       separators=st.lists(st.sampled_from([",", ", ", " ,", ",\n  ", "\t,\t"]), min_size=40, max_size=40),
       odd_separator=st.sampled_from([None, None, None, " ", ",,", ", ,", "\v,"]),
       closing=st.sampled_from(["]", "]", "]", " ]", "\n]", ",]", "]]"]))
def test_polygon_numbers_passed_over_as_they_are_read(numbers, odd, at, separators, odd_separator, closing):
    numbers = numbers[:len(numbers) // 2 * 2]  # pairs
    numbers[at % len(numbers)] = odd
    if odd_separator is not None:
        separators[(at * 7) % (len(numbers) - 1)] = odd_separator
    check_polygon_passed_over("[" + "".join(n + separators[k] for k, n in enumerate(numbers[:-1])) + numbers[-1] + closing)


def check_coco_members(document: bytes) -> None:
    """coco_members: only for JSON that json.loads reads, and then msgspec's split of it (the
    same keys, the same value spans) with the scanners' columns of images and annotations."""
    for masks in (True, False):
        split = ochuman_scan.coco_members(document, masks)
        if split is None:
            continue
        assert json_accepts(document), "coco_members split a file json.loads refuses"
        members, images, annotations = split
        expected = msgspec.json.decode(document, type=dict[str, msgspec.Raw])
        assert {k: bytes(v) for k, v in members.items()} == {k: bytes(v) for k, v in expected.items()}
        assert images == _evalcore.scan_coco_images(expected["images"])
        assert annotations == _evalcore.scan_coco_annotations(expected["annotations"], not masks)


def check_prefetched_coco_reading(document: bytes) -> None:
    """A COCO file read through PrefetchedAnnotations (coco_members first) reads as the general
    path reads it, or is refused with the same error."""
    general = _read_coco(document, scanner=False)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / COCO_SOURCE
        path.write_bytes(document)
        for masks in (True, False):
            try:
                read = ochuman_io.load(ochuman_scan.PrefetchedAnnotations(path, masks=masks), masks=masks)
            except FormatError as err:
                read = err
            if isinstance(general, FormatError):
                assert isinstance(read, FormatError) and str(read).split(": ", 1)[1] == str(general).split(": ", 1)[1]
            else:
                assert not isinstance(read, FormatError), read
                assert_same_dataset(read, general, masks)


@pytest.mark.differential
@FAST
@given(lists=coco_bytes(), whole=st.booleans(), data=st.data())
def test_coco_members_split_only_json_as_msgspec_splits_it(lists, whole, data):
    """Also with the whole file mutated (its top-level punctuation, keys, the other members)."""
    document = coco_file(*lists)
    if whole:
        document = data.draw(mutated(document))
    check_coco_members(document)
    check_prefetched_coco_reading(document)


_LISTS = (b'[{"id": 1, "file_name": "a.jpg", "width": 41, "height": 37}]',
          b'[{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0}]')


@pytest.mark.parametrize("document, split", [
    (b'{"images": %s, "annotations": %s}' % _LISTS, True),
    (b' \n{ "info" : {"a}]\\"": "[{"} , "images":%s,"annotations" :%s , "x": "\\u0041"}\t' % _LISTS, True),
    (b'{"images": %s, "annotations": %s, "n": -1.5e3, "t": true, "z": null}' % _LISTS, True),
    (b'{"images": %s, "annotations": %s, "images": []}' % _LISTS, False),  # a key twice: msgspec's
    (b'{"\\u0069mages": %s, "images": %s, "annotations": []}' % (_LISTS[0], _LISTS[0]), False),  # an escaped key
    (b'{"images": %s, "annotations": %s}}' % _LISTS, False),
    (b'{"images": %s, "annotations": %s,}' % _LISTS, False),
    (b'{"images": %s "annotations": %s}' % _LISTS, False),
    (b'{"images": %s, "annotations": %s, "info": {"a": NaN}}' % _LISTS, False),
    (b'{"images": %s, "annotations": %s, "info": [1, 2}' % _LISTS, False),
    (b'{"images": %s, "annotations": %s, "info": 1e400}' % _LISTS, False),
    (b'{"images": %s, "annotations": %s, "info": "\xff"}' % _LISTS, False),
    (b'{"images": %s}' % _LISTS[0], False),
    (b'[%s, %s]' % _LISTS, False),
])
def test_coco_members_named_cases(document, split):
    assert (ochuman_scan.coco_members(document) is not None) == split
    check_coco_members(document)
    check_prefetched_coco_reading(document)


@pytest.mark.parametrize("counts", [b"0\xff", b"\xc3(", b"\xed\xa0\x80"])
def test_coco_rle_string_with_bad_utf8_is_refused(counts):
    """msgspec skips over the annotations without checking their UTF-8; the scanner must not
    take such a mask string as it is."""
    annotations = (b'[{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1], "area": 1,'
                   b' "segmentation": {"size": [37, 41], "counts": "%s"}}]' % counts)
    assert _evalcore.scan_coco_annotations(annotations) is None
    data = coco_file(b'[{"id": 1, "file_name": "a.jpg", "width": 41, "height": 37}]', annotations)
    error = _read_coco(data, scanner=True)
    assert isinstance(error, FormatError) and "not valid UTF-8" in str(error), error


def test_coco_key_with_a_lone_surrogate_is_one_line():
    data = coco_file(b'[{"id": 1, "file_name": "a.jpg", "width": 41, "height": 37, "\\udc00": 0}]', b"[]")
    for scanner in (True, False):
        error = _read_coco(data, scanner)
        assert isinstance(error, FormatError) and str(error) == f"gt.json: {LONE_SURROGATE_KEY}", error


@pytest.mark.parametrize("data, message", [
    (b'{"images": [], "annotations": [', "gt.json: line 1 column 32: not valid JSON: the file ends too early (truncated?)"),
    (b'{"images": [{"id": 1, "file_name": "a", "width": 4, "height": 3}],\n "annotations": [{"id": 1, "image_id": 2,'
     b' "bbox": [0, 0, 1, 1]}]}', "gt.json: annotations[0] (id 1): unknown image_id 2"),
    (b'{"images": [{"id": 1, "file_name": "a", "width": 4, "height": 3}, {"id": 1, "file_name": "b", "width": 4,'
     b' "height": 3}], "annotations": []}', "gt.json: images[1] (id 1): duplicate image id (also images[0])"),
    (b'{"images": [{"id": 1, "file_name": "a", "width": 4, "height": 3}], "annotations": [{"id": 1, "image_id": 1,'
     b' "bbox": [0, 0, 1, 1]}, {"id": 2, "image_id": 1, "bbox": [0, 0, 1]}]}',
     "gt.json: annotations[1] (id 2): bbox: expected `array` of length 4"),
    (b'{"images": [{"id": 1, "file_name": "a", "width": 4, "height": 3}], "annotations": [{"id": 1, "image_id": 1,'
     b' "bbox": [0, 0, 1, 1], "iscrowd": 2}]}', "gt.json: annotations[0] (id 1): iscrowd must be 0 or 1, got 2"),
    (b'{"images": [{"id": 1, "file_name": "a", "width": 4, "height": 3}], "annotations": [{"id": 1, "image_id": 1,'
     b' "bbox": [0, 0, 1, 1], "segmentation": {"size": [4, 3], "counts": "3"}}]}',
     "gt.json: annotations[0] (id 1): segmentation size [4, 3] differs from the image's [3, 4]"),
    (b'{"images": [{"id": 1, "file_name": "a\xff", "width": 4, "height": 3}], "annotations": []}',
     "gt.json: line 1 column 38: not valid UTF-8 (byte 0xff)"),
])
def test_coco_error_positions(data, message):
    for scanner in (True, False):
        error = _read_coco(data, scanner)
        assert isinstance(error, FormatError) and str(error) == message, error


# ------------------------------------------------------------------------------ rle_spans_clean

def _clean(text: bytes) -> bool:
    """RLE alphabet '0'..'o' only, every backslash doubled (pairs read left to right)."""
    if any(not 0x30 <= c <= 0x6F for c in text):
        return False
    return b"\\" not in text.replace(b"\\\\", b"")


@pytest.mark.differential
@FAST
@given(texts=st.lists(st.binary(max_size=12) | st.text("0o\\/\"ab\x01", max_size=12).map(str.encode), max_size=4),
       gap=st.binary(max_size=3))
def test_rle_spans_clean_is_the_alphabet_rule(texts, gap):
    buffer, spans = b"", []
    for text in texts:
        buffer += gap
        spans.append((len(buffer), len(text)))
        buffer += text
    spans = np.array(spans, dtype=np.int64).reshape(-1, 2)
    assert _evalcore.rle_spans_clean(buffer + gap, spans) is all(_clean(t) for t in texts)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ids_written_as_integral_floats_are_those_ints(iou_type):
    """pandas writes ids as 1.0; pycocotools' dicts read 1.0 as 1 (equal, same hash): so do we."""
    ints = (b'[{"image_id": 1, "category_id": 1, "score": 0.5, "bbox": [0, 0, 4, 4]},\n'
            b' {"image_id": 2, "category_id": 1, "score": 0.7, "bbox": [1, 1, 3, 3]}]')
    floats = ints.replace(b'"image_id": 1,', b'"image_id": 1.0,').replace(b'"category_id": 1,', b'"category_id": 1.0,')
    assert floats.count(b"1.0") == 3
    for parts in (1, 2):
        expected, got = _project(ints, iou_type, parts), _project(floats, iou_type, parts)
        assert not isinstance(got, ResultsError), got
        assert_same_detections(got, expected)
        assert got.image_id.dtype == expected.image_id.dtype and got.category_id.dtype == np.int64
