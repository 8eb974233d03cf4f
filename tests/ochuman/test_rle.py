"""ochuman.rle: the one RLE-buffer type (MaskTable), its view as a Dataset's segmentations, and
the one Python place of the JSON backslash rule."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ochuman.rle import FileSegmentations, MaskTable, json_string_content


@pytest.mark.parametrize("value", ["0o", "a\\b", "\\", "\\\\", "", "é"])
def test_json_string_content_is_what_a_json_reader_reads(value):
    content = json.dumps(value, ensure_ascii=False)[1:-1]
    assert json_string_content(content) == value
    assert json_string_content(json.dumps(value)[1:-1]) == value  # \u escapes too


def test_an_absent_mask_is_none_with_zero_statistics():
    bitmap = np.zeros((4, 5), np.uint8)
    bitmap[1:3, 1:4] = 1
    counts = mask_utils.encode(np.asfortranarray(bitmap))["counts"]
    buffer = b'"' + counts + b'"'
    table = MaskTable(buffer, np.array([1, -1]), np.array([len(counts), 0]), np.array([[4, 5], [4, 5]]), raw=True)
    assert table[0] == counts.decode() and table[1] is None
    assert table.present.tolist() == [True, False]
    assert table.areas.tolist() == [6, 0] and table.bad is None
    assert table.take(np.array([1, 0]))[1] == counts.decode()


def test_file_segmentations_are_a_view_of_one_mask_table():
    table = MaskTable(b"xx0o12", np.array([2, -1, 4]), np.array([2, 0, 2]), np.array([[1, 1], [2, 2], [3, 3]]),
                      raw=True, deferred=True)
    segmentations = FileSegmentations(table)
    assert list(segmentations) == [{"size": [1, 1], "counts": "0o"}, None, {"size": [3, 3], "counts": "12"}]
    assert segmentations.present.tolist() == [True, False, True]
    picked = segmentations.take(np.array([2]))
    assert picked.table.buffer is table.buffer and picked == [{"size": [3, 3], "counts": "12"}]
