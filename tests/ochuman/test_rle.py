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


def _encoded(seed: int, h: int = 9, w: int = 7) -> list[str]:
    rng = np.random.default_rng(seed)
    return [mask_utils.encode(np.asfortranarray((rng.random((h, w)) < p).astype(np.uint8)))["counts"].decode()
            for p in (0.0, 0.2, 0.5, 0.9, 1.0)]


@pytest.mark.parametrize("escaped", ["none", "backslash", "unicode"])
def test_merged_tables_gather_each_entry_from_its_part(escaped):
    """A file's raw strings (sparse in its bytes; no escape, a doubled backslash, a \\u escape),
    a plain table filling other entries, a later part overriding one, an entry no part has."""
    last = {"none": "0111", "backslash": "0\\\\1", "unicode": "0\\u00301"}[escaped]  # in the file
    strings = _encoded(1) + [last]
    file_text = b'{"pad": "' + b"x" * 400 + b'"'
    starts, lengths = [], []
    for text in strings:
        file_text += b', "counts": "'
        starts.append(len(file_text))
        file_text += text.encode() + b'"'
        lengths.append(len(text.encode()))
    file_text += b"}"
    expected = [json.loads(f'"{t}"') for t in strings]
    n, sizes = 10, np.array([[9, 7]] * 10)
    raw = MaskTable(file_text, np.array(starts[:4] + [-1, starts[5]]), np.array(lengths), sizes[:6], raw=True, deferred=True)
    plain = MaskTable.from_strings(_encoded(2), sizes[:5])
    later = MaskTable.from_strings(["5"], sizes[:1])
    merged = MaskTable.merged(sizes, [(np.arange(6), raw), (np.array([4, 6, 7, 8, 1]), plain), (np.array([7]), later)])
    want = [expected[0], _encoded(2)[4], expected[2], expected[3], _encoded(2)[0], expected[5], _encoded(2)[1], "5",
            _encoded(2)[3], None]
    assert list(merged) == want
    assert merged.present.tolist() == [w is not None for w in want]
    assert merged.raw is False and len(merged) == n


def test_merged_tables_share_the_only_buffer_with_strings():
    plain = MaskTable.from_strings(_encoded(3), np.array([[9, 7]] * 5))
    empty = MaskTable(b"", np.full(5, -1), np.zeros(5, dtype=np.int64), np.array([[9, 7]] * 5))
    merged = MaskTable.merged(np.array([[9, 7]] * 6), [(np.arange(5), empty), (np.arange(1, 6), plain)])
    assert merged.buffer is plain.buffer and list(merged) == [None] + _encoded(3)
    assert merged.areas.tolist() == [0] + [int(a) for a in mask_utils.area(
        [{"size": [9, 7], "counts": c.encode()} for c in _encoded(3)])]


def test_clean_spans_checks_its_buffers():
    from ochuman import _evalcore

    spans = np.array([[0, 3], [3, 4]], dtype=np.int64)
    out, lengths = np.zeros(3 + 4 + 64, dtype=np.uint8), np.zeros(2, dtype=np.int64)
    assert _evalcore.rle_clean_spans(b"0o1a\\\\b", spans, out, lengths) == 6
    assert lengths.tolist() == [3, 3] and out[:6].tobytes() == b"0o1a\\b"
    with pytest.raises(ValueError, match="out holds 70 bytes"):
        _evalcore.rle_clean_spans(b"0o1a\\\\b", spans, out[:70], lengths)
    with pytest.raises(ValueError):
        _evalcore.rle_clean_spans(b"0o1", spans, out, lengths)  # a span past the buffer
    assert _evalcore.rle_clean_spans(b"0x1a\\b", np.array([0, 3, 3, 3]), out, lengths) == 0
    assert lengths.tolist() == [-1, -1]  # 'x' is no RLE code; a lone backslash


def test_count_lists_stay_text_until_read(coco_mini):
    """A COCO file's uncompressed RLE (its crowd regions) as CountLists: each entry decoded when
    first read, as the file has it (then the same dict, in taken entries too); the strings made
    from the text by the compiled core are pycocotools' frPyObjects strings; an entry already
    handed out is left to the caller's dict (None), which the ground truth then reads."""
    import ochuman
    from ochuman.eval.ground_truth import ground_truth_from_coco
    from ochuman.rle import CountLists

    raw = json.loads(coco_mini.read_text())
    by_id = {a["id"]: a for a in raw["annotations"]}
    dataset = ochuman.load(coco_mini)
    lists = dataset.segmentations.lists
    assert isinstance(lists, CountLists) and len(lists) == 5 and not lists._decoded
    entries = sorted(lists)
    made = lists.strings(entries)
    for entry, string in zip(entries, made):
        segmentation = by_id[int(dataset.person_id[entry])]["segmentation"]
        assert string == mask_utils.frPyObjects(segmentation, *segmentation["size"])["counts"].decode()
    first = lists[entries[0]]
    assert first == by_id[int(dataset.person_id[entries[0]])]["segmentation"] and lists[entries[0]] is first
    taken = dataset.segmentations.take(np.array(entries[::-1]))
    assert taken.lists[len(entries) - 1] is first and taken[len(entries) - 1] is first
    assert taken.lists.strings(range(len(entries)))[::-1] == [None, *made[1:]]
    # the caller's change to a dict handed out reaches the ground truth's mask
    untouched = ground_truth_from_coco(ochuman.load(coco_mini)).annotations.masks[entries[0]]
    first["counts"] = [0, first["counts"][0] + first["counts"][1], *first["counts"][2:]]
    changed = ground_truth_from_coco(dataset).annotations.masks[entries[0]]
    assert changed != untouched
    assert changed == mask_utils.frPyObjects(first, *first["size"])["counts"].decode()
