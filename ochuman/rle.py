"""COCO compressed-RLE strings held in one byte buffer: :class:`MaskTable`, the one type for
masks left where they were read (a file's bytes, a results file's memory map, a cache entry)
or joined from strings, with their statistics from the compiled core.

The RLE alphabet is ``'0'..'o'`` plus the backslash; a JSON file writes that backslash doubled.
A table whose strings are ``raw`` holds JSON string content as the file has it, and
:func:`json_string_content` is the one Python place that turns such content into the string
(the compiled core applies the same rule as it decodes; ``rle_spans_clean`` says whether
every span holds only RLE characters and doubled backslashes).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import IntEnum
from typing import Optional, Union

import msgspec
import numpy as np

import ochuman.parallel as parallel
from ochuman import _evalcore


class MaskStatus(IntEnum):
    """A mask's decoding status in a :class:`MaskTable`: evalcore.h's ``MaskStatus`` (the
    module exports it as ``_evalcore.MASK_<NAME>``)."""

    PENDING = 0  # not decoded yet
    DONE = 1  # decoded: area, pixel total and box known (an absent mask: all 0)
    COLUMNS_ONLY = 2  # decoded, but the box holds only its columns (every row)
    TRUNCATED = -1  # cannot be decoded: the string ends inside a number
    BAD_CHARACTER = -2  # cannot be decoded: a character outside the RLE alphabet


def json_string_content(text: str) -> str:
    """The value of a JSON string from its content between the quotes: an RLE string's
    doubled backslashes become one; any other escape is resolved as a JSON reader does."""
    if "\\" not in text:
        return text
    if "\\" not in text.replace("\\\\", ""):
        return text.replace("\\\\", "\\")
    return json.loads(f'"{text}"')


def pack_strings(counts: Sequence[Union[str, bytes]]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Counts strings (str or bytes) -> (buffer, starts (N,) int64, lengths (N,) int64): the
    strings' UTF-8 bytes one after another."""
    # surrogatepass: a lone surrogate (json.loads reads "\\ud800") becomes bytes the decoder refuses
    encoded = [c.encode("utf-8", "surrogatepass") if isinstance(c, str) else bytes(c) for c in counts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return b"".join(encoded), np.cumsum(lengths) - lengths, lengths


def concat_ranges(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(sum(hi - lo),) int64: the integers of every range [lo[k], hi[k]) one after the other."""
    lo, hi = np.asarray(lo, dtype=np.int64), np.asarray(hi, dtype=np.int64)
    n = hi - lo
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    return np.arange(total, dtype=np.int64) + np.repeat(lo - (np.cumsum(n) - n), n)


class MaskTable(Sequence):
    """N masks given as COCO compressed RLE strings, with their statistics (compiled core).

    buffer: bytes (or anything with the buffer protocol: a memory map, msgspec.Raw) holding
    the strings; starts, lengths (N,) int64 byte ranges in it (start -1: no mask; its
    statistics are 0); raw: the strings are JSON string content read straight from a file
    (:func:`json_string_content`; the decoder refuses any escape but a doubled backslash);
    sizes (N, 2) [height, width].
    Statistics: areas (N,) pixel areas, totals (N,) pixels covered by the runs (height *
    width when valid), boxes (N, 4) inclusive pixel boxes [x0, y0, x1, y1] ([0, 0, -1, -1]
    when empty); bad: (k, reason) of the first string that cannot be decoded ("truncated" or
    "character"), else None. deferred: statistics are computed on first use, or by the mask
    IoU pass as it decodes the masks anyway (one decoding instead of two; that pass finds
    the areas and totals, not the rows of the boxes: ``boxes`` decodes those masks again);
    masks are never kept decoded. As a sequence: the counts strings (unescaped; None: no mask).
    """

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray, sizes: np.ndarray,
                 raw: bool = False, deferred: bool = False):
        self.buffer = buffer
        self.starts = np.ascontiguousarray(starts, dtype=np.int64)
        self.lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        self.sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.raw = raw
        n = len(self.starts)
        # MaskStatus per mask; an absent mask is done (statistics 0)
        self.status = np.where(self.starts < 0, MaskStatus.DONE, MaskStatus.PENDING).astype(np.int8)
        self._areas = np.zeros(n, dtype=np.int64)
        self._totals = np.zeros(n, dtype=np.int64)
        self._boxes = np.zeros((n, 4), dtype=np.int64)
        if not deferred:
            self.finish()

    def finish(self, boxes: bool = False) -> "MaskTable":
        """Compute the statistics not computed yet (with ``boxes``: and the boxes' rows)."""
        if boxes:
            self.status[self.status == MaskStatus.COLUMNS_ONLY] = MaskStatus.PENDING
        if (self.status == MaskStatus.PENDING).any():
            heights = np.ascontiguousarray(self.sizes[:, 0])

            def stats(lo: int, hi: int) -> None:
                _evalcore.rle_stats(self.buffer, self.starts, self.lengths, int(self.raw), heights, lo, hi,
                                    self.status, self._areas, self._totals, self._boxes)

            parallel.run_chunks(stats, np.where(self.status == MaskStatus.PENDING, self.lengths, 0))
        return self

    @property
    def areas(self) -> np.ndarray:
        return self.finish()._areas

    @property
    def totals(self) -> np.ndarray:
        return self.finish()._totals

    @property
    def boxes(self) -> np.ndarray:
        return self.finish(boxes=True)._boxes

    @property
    def bad(self) -> Optional[tuple[int, str]]:
        failed = np.flatnonzero(self.finish().status < 0)
        if not len(failed):
            return None
        k = int(failed[0])
        return k, "truncated" if self.status[k] == MaskStatus.TRUNCATED else "character"

    @property
    def present(self) -> np.ndarray:
        """(N,) bool: which entries have a mask."""
        return self.starts >= 0

    @classmethod
    def from_strings(cls, counts: Sequence[Union[str, bytes]], sizes: np.ndarray) -> "MaskTable":
        """From counts strings (str or bytes), e.g. RLE dicts' ``counts`` (decoded as
        pycocotools does: no check of the characters)."""
        buffer, starts, lengths = pack_strings(counts)
        return cls(buffer, starts, lengths, sizes)

    @classmethod
    def merged(cls, sizes: np.ndarray, parts: Sequence[tuple[np.ndarray, "MaskTable"]]) -> "MaskTable":
        """N masks of sizes (N, 2) gathered from tables: entry ``idx[k]`` is entry k of the
        table of each part ``(idx (K,), table)`` that has it (a later part wins; no part: no
        mask). One buffer: that of the only table with strings, else the tables' buffers one
        after another (of a table whose strings are less than half its buffer, or whose
        strings are raw, those strings only, escapes undone); statistics deferred."""
        sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
        starts, lengths = np.full(len(sizes), -1, dtype=np.int64), np.zeros(len(sizes), dtype=np.int64)
        chunks, offset = [], 0
        for idx, table in parts:
            present = table.present
            if not present.any():
                continue
            taken, where = table.lengths[present], np.asarray(idx, dtype=np.int64)[present]
            if table.raw:
                chunk, taken = table._content(present)
                at = offset + np.cumsum(taken) - taken
            elif 2 * int(taken.sum()) >= len(table.buffer):
                chunk, at = table.buffer, offset + table.starts[present]
            else:
                chunk = np.frombuffer(table.buffer, dtype=np.uint8)[
                    concat_ranges(table.starts[present], table.starts[present] + taken)].tobytes()
                at = offset + np.cumsum(taken) - taken
            starts[where], lengths[where] = at, taken
            chunks.append(chunk)
            offset += len(chunk)
        buffer = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        return cls(buffer, starts, lengths, sizes, deferred=True)

    def _content(self, chosen: np.ndarray) -> tuple[bytes, np.ndarray]:
        """The strings of the entries ``chosen`` (N,) bool of a raw table, one after another,
        and their lengths: doubled backslashes made one by the compiled core, any other JSON
        escape by :func:`json_string_content`."""
        spans = np.ascontiguousarray(np.stack([self.starts[chosen], self.lengths[chosen]], axis=1))
        out = np.empty(int(spans[:, 1].sum()) + 64, dtype=np.uint8)
        lengths = np.empty(len(spans), dtype=np.int64)
        written = _evalcore.rle_clean_spans(self.buffer, spans, out, lengths)
        if (lengths >= 0).all():
            return out[:written].tobytes(), lengths
        buffer, _, lengths = pack_strings([self[k] for k in np.flatnonzero(chosen).tolist()])
        return buffer, lengths

    def take(self, idx: np.ndarray) -> "MaskTable":
        """The entries at the indices idx (K,), still in the same buffer (statistics deferred)."""
        return MaskTable(self.buffer, self.starts[idx], self.lengths[idx], self.sizes[idx], raw=self.raw,
                         deferred=True)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = int(self.starts[index])
        if start < 0:
            return None
        text = bytes(memoryview(self.buffer)[start:start + int(self.lengths[index])]).decode("utf-8")
        return json_string_content(text) if self.raw else text


def list_strings(buffer, spans: np.ndarray) -> list[Optional[str]]:
    """Uncompressed RLE counts lists, the JSON text of each at an [offset, length] of ``spans``
    (K, 2) in ``buffer``, as the compressed RLE counts strings pycocotools' ``frPyObjects`` makes
    of them (compiled core, without decoding the lists); None where a list is left to
    pycocotools (not plain integers below 2^32)."""
    spans = np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 2)
    lengths = np.empty(len(spans), dtype=np.int64)
    data = bytes(_evalcore.rle_list_strings(buffer, spans, lengths))
    out, at = [], 0
    for length in lengths.tolist():
        out.append(None if length < 0 else data[at:at + length].decode("ascii"))
        at += max(length, 0)
    return out


class CountLists(Mapping):
    """A COCO file's uncompressed RLE masks (its crowd regions): entry -> ``{"size": [h, w],
    "counts": [...]}``, each decoded from the file's bytes when first read (the same dict from
    then on). buffer: the bytes; entries (K,) entry numbers; spans (K, 2) int64 [offset, length]
    of each counts list's JSON text; sizes (K, 2) [h, w]."""

    def __init__(self, buffer, entries, spans: np.ndarray, sizes: np.ndarray):
        self.buffer = buffer
        self.spans = np.ascontiguousarray(spans, dtype=np.int64).reshape(-1, 2)
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self._row = dict(zip(np.asarray(entries, dtype=np.int64).tolist(), range(len(self.spans))))
        self._decoded: dict[int, dict] = {}  # row -> the dict handed out

    def __getitem__(self, entry: int) -> dict:
        row = self._row[entry]
        if row not in self._decoded:
            start, length = self.spans[row].tolist()
            self._decoded[row] = {"size": self.sizes[row].tolist(),
                                  "counts": msgspec.json.decode(bytes(memoryview(self.buffer)[start:start + length]))}
        return self._decoded[row]

    def __contains__(self, entry) -> bool:
        return entry in self._row

    def __iter__(self):
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)

    def take(self, idx: np.ndarray) -> "CountLists":
        """The lists of the entries at the indices idx (K,), numbered by their place in idx
        (dicts already handed out stay the same objects)."""
        kept = [(n, self._row[k]) for n, k in enumerate(np.asarray(idx).tolist()) if k in self._row]
        rows = np.array([row for _, row in kept], dtype=np.int64)
        taken = CountLists(self.buffer, [n for n, _ in kept], self.spans[rows], self.sizes[rows])
        taken._decoded = {i: self._decoded[row] for i, row in enumerate(rows.tolist()) if row in self._decoded}
        return taken

    def strings(self, entries: Sequence[int]) -> list[Optional[str]]:
        """:func:`list_strings` of ``entries``; None too for a list already handed out as a dict
        (the caller may have changed it: it is read from there)."""
        rows = [self._row[entry] for entry in entries]
        made = list_strings(self.buffer, self.spans[np.array(rows, dtype=np.int64)])
        return [None if row in self._decoded else string for row, string in zip(rows, made)]


class FileSegmentations(Sequence):
    """A :class:`~ochuman.records.Dataset`'s masks as the compiled scanner read them from a COCO
    file: compressed RLE strings kept in a :class:`MaskTable` (the file's bytes: ``table``,
    raw JSON string content), polygons as numbers (``polygons``, an
    :class:`~ochuman.masks.PolygonTable`, or None), uncompressed RLE (``lists``: entry ->
    ``{"size": [h, w], "counts": [...]}``, a :class:`CountLists` or a dict). Entry i is built on access as the general loader
    holds it: ``{"size": [h, w], "counts": str}``, a polygon list, the uncompressed RLE dict, or
    None without a mask."""

    def __init__(self, table: MaskTable, polygons=None, lists: Optional[dict] = None):
        self.table, self.polygons, self.lists = table, polygons, lists or {}

    @property
    def plain(self) -> bool:
        """Every mask a compressed RLE string in the file."""
        return self.polygons is None and not self.lists

    @property
    def present(self) -> np.ndarray:
        """(N,) bool: which persons have a mask."""
        if self.plain:
            return self.table.present
        present = self.table.present.copy()
        if self.polygons is not None:
            present |= self.polygons.present
        present[list(self.lists)] = True
        return present

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(len(self))))
        index = range(len(self))[index]
        if self.polygons is not None and self.polygons.polygon_start[index + 1] > self.polygons.polygon_start[index]:
            return self.polygons.polygons(index)
        if index in self.lists:
            return self.lists[index]
        counts = self.table[index]
        return None if counts is None else {"size": [int(v) for v in self.table.sizes[index]], "counts": counts}

    def take(self, idx: np.ndarray) -> "FileSegmentations":
        """The entries at the indices idx (K,), still in the file's bytes."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.lists, CountLists):
            lists = self.lists.take(idx)
        else:
            lists = {n: self.lists[k] for n, k in enumerate(idx.tolist()) if k in self.lists} if self.lists else None
        return FileSegmentations(self.table.take(idx), None if self.polygons is None else self.polygons.take(idx), lists)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None
