"""The compiled core's Python boundary (ochuman/csrc/module.c): every exported function refuses
an array of the wrong length, item type or layout, and a read-only output, with a Python error
naming the argument, before its kernel reads or writes anything; indices it would follow
outside their arrays are refused the same way.

Each case starts from a small valid call (two (image, category) blocks: gts 0, 1 and dt 0;
gt 2 and dt 1) that succeeds, then breaks one argument."""
from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from ochuman import _evalcore

H = W = 6


def _rle_strings(n: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    return [mask_utils.encode(np.asfortranarray((rng.random((H, W)) < 0.5).astype(np.uint8)))["counts"]
            for _ in range(n)]


def _table(n: int, seed: int) -> dict:
    strings = _rle_strings(n, seed)
    lengths = np.array([len(s) for s in strings], dtype=np.int64)
    return dict(buf=b"".join(strings), starts=np.cumsum(lengths) - lengths, lengths=lengths,
                sizes=np.full((n, 2), H, dtype=np.int64), status=np.zeros(n, np.int8),
                areas=np.zeros(n, np.int64), boxes=np.zeros((n, 4), np.int64), totals=np.zeros(n, np.int64))


BLOCKS = dict(gt_start=np.array([0, 2, 3], np.int64), dt_start=np.array([0, 1, 2], np.int64),
              iou_start=np.array([0, 2], np.int64))
PAIRS = 3  # block 0: 1 x 2, block 1: 1 x 1


def case_rle_stats():
    t = _table(3, 1)
    return [("buf", t["buf"], "text"), ("starts", t["starts"], "in"), ("lengths", t["lengths"], "in"),
            ("raw", 0, None), ("heights", t["sizes"][:, 0].copy(), "in"), ("lo", 0, None), ("hi", 3, None),
            ("status", t["status"], "out"), ("areas", t["areas"], "out"), ("totals", t["totals"], "out"),
            ("boxes", t["boxes"], "out")]


def case_rle_spans_clean():
    t = _table(2, 2)
    return [("buf", t["buf"], "text"), ("spans", np.stack([t["starts"], t["lengths"]], 1), "in")]


def case_rle_clean_spans():
    t = _table(2, 3)
    return [("buf", t["buf"], "text"), ("spans", np.stack([t["starts"], t["lengths"]], 1), "in"),
            ("out", np.zeros(int(t["lengths"].sum()) + 64, np.uint8), "out"), ("lengths", np.zeros(2, np.int64), "out")]


def case_rle_list_strings():
    buf = b"x[1, 2,3] [0,5]"  # the last list ends the data
    return [("buf", buf, "text"), ("spans", np.array([[1, 8], [10, 5]], np.int64), "in"),
            ("lengths", np.zeros(2, np.int64), "out")]


def test_count_lists_become_pycocotools_strings():
    """rle_list_strings: each JSON list of counts as frPyObjects' string (uint32 counts,
    rleToString); -1 (nothing written) for what is not a plain list of integers below 2^32."""
    lists = [b"[1, 2,3 ]", b"[0,5]", b"[]", b" [4294967295, 7, 0, 12, 1] ", b"[01]", b"[4294967296]", b"[1.0]",
             b"[-0]", b"[1,]", b"[1 2]", b"[1]x", b"[1"]
    buf = b"".join(lists)
    starts = np.cumsum([0] + [len(t) for t in lists[:-1]])
    lengths = np.zeros(len(lists), np.int64)
    out = bytes(_evalcore.rle_list_strings(buf, np.stack([starts, [len(t) for t in lists]], 1).astype(np.int64), lengths))
    expected = [mask_utils.frPyObjects({"size": [2, 3], "counts": eval(t)}, 2, 3)["counts"] for t in lists[:4]]
    assert lengths.tolist() == [len(e) for e in expected] + [-1] * 8
    assert out == b"".join(expected)


def _masks(prefix: str, t: dict) -> list:
    return [(f"{prefix}_buf", t["buf"], "text"), (f"{prefix}_starts", t["starts"], "in"),
            (f"{prefix}_lengths", t["lengths"], "in"), (f"{prefix}_raw", 0, None),
            (f"{prefix}_sizes", t["sizes"], "in"), (f"{prefix}_status", t["status"], "out"),
            (f"{prefix}_areas", t["areas"], "out"), (f"{prefix}_boxes", t["boxes"], "out"),
            (f"{prefix}_totals", t["totals"], "out")]


def _block_args() -> list:
    return [("gt_order", np.arange(3, dtype=np.int64), "in"), ("dt_order", np.arange(2, dtype=np.int64), "in"),
            *[(name, value.copy(), "in") for name, value in BLOCKS.items()]]


def case_segm_ious():
    return [*_masks("gt", _table(3, 3)), ("gt_crowd", np.zeros(3, np.uint8), "in"), *_masks("dt", _table(2, 4)),
            *_block_args(), ("lo", 0, None), ("hi", 2, None), ("out", np.empty(PAIRS), "out")]


def case_bbox_ious():
    boxes = np.random.default_rng(5).random((5, 4)) * 4
    return [("gt_boxes", boxes[:3].copy(), "in"), ("gt_crowd", np.zeros(3, np.uint8), "in"),
            ("dt_boxes", boxes[3:].copy(), "in"), *_block_args(), ("lo", 0, None), ("hi", 2, None),
            ("out", np.empty(PAIRS), "out")]


def case_polygon_rle_strings():
    # object 0: two triangles, object 1: none (empty), object 2: one quadrilateral
    xy = np.array([1, 1, 5, 1, 3, 4, 0, 0, 2, 0, 1, 2, 0, 0, 5, 0, 5, 5, 0, 5], np.float64)
    return [("xy", xy, "in"), ("point_start", np.array([0, 3, 6, 10], np.int64), "in"),
            ("polygon_start", np.array([0, 2, 2, 3], np.int64), "in"), ("sizes", np.full((3, 2), H, np.int64), "in"),
            ("lo", 0, None), ("hi", 3, None), ("lengths", np.zeros(3, np.int64), "out")]


def case_float_rows():
    return [("values", [[1.5, 2, True], [0.0, -3, 4.25]], None), ("width", 3, None), ("out", np.empty(6), "out")]


def case_max_iou_inclusive():
    boxes = np.array([[0, 0, 4, 4], [2, 2, 6, 6], [1, 1, 3, 3], [0, 0, 1, 1]], np.float64)
    return [("boxes", boxes, "in"), ("starts", np.array([0, 2, 4], np.int64), "in"), ("out", np.empty(4), "out")]


def case_box_centres_outside():
    bbox = np.array([[0, 0, 4, 4], [5, 1, 4, 2], [-3, 0, 2, 2]], np.float64)
    return [("bbox", bbox, "in"), ("image_index", np.array([0, 1, 1], np.int64), "in"),
            ("sizes", np.array([[6, 6], [3, 4]], np.int64), "in"), ("out", np.empty(3, np.uint8), "out")]


def case_keypoint_means_outside():
    keypoints = np.array([[1, 1, 2, 3, 3, 2], [-9, 0, 1, -7, 0, 1], [5, 5, 2, 9, 9, 2]], np.float64)  # 2 joints each
    return [("keypoints", keypoints, "in"), ("image_index", np.array([0, 1, 1], np.int64), "in"),
            ("sizes", np.array([[6, 6], [3, 4]], np.int64), "in"), ("out", np.empty(3, np.uint8), "out")]


def case_argsort_descending():
    return [("values", np.array([0.5, np.nan, 1.0, -0.0], np.float64), "in"), ("out", np.empty(4, np.int64), "out")]


def case_block_order():
    return [("block", np.array([2, -1, 0, 2], np.int64), "in"), ("scores", np.array([0.5, 0.1, -0.0, 0.9]), "in"),
            ("max_det", 1, None), ("order", np.empty(4, np.int64), "out"), ("rank", np.empty(4, np.int64), "out"),
            ("by_score", np.empty(4, np.int64), "out")]


def test_block_order_keeps_max_det_a_block():
    args = case_block_order()
    assert call("block_order", args) == 2
    order, rank, by_score = (dict((n, v) for n, v, _ in args)[name][:2] for name in ("order", "rank", "by_score"))
    assert order.tolist() == [2, 3] and rank.tolist() == [0, 0] and by_score.tolist() == [1, 0]
    with pytest.raises(ValueError, match="max_det = -1 is negative"):
        call("block_order", replaced(args, "max_det", -1))


K = 17


def case_oks_exponents():
    rng = np.random.default_rng(6)
    return [("dt_kpts", rng.random((2, 3 * K)) * 10, "in"), ("gt_kpts", rng.random((3, 3 * K)) * 10, "in"),
            ("gt_boxes", rng.random((3, 4)) * 10, "in"), ("gt_areas", rng.random(3) * 100, "in"),
            ("variances", rng.random(K), "in"), ("dt", np.array([0, 1, 1], np.int64), "in"),
            ("gt", np.array([0, 1, 2], np.int64), "in"), ("out", np.empty((3, K)), "out")]


def case_oks_means():
    rng = np.random.default_rng(7)
    return [("terms", rng.random((3, K)), "in"), ("gt_kpts", rng.random((3, 3 * K)), "in"),
            ("gt", np.array([0, 1, 2], np.int64), "in"), ("out", np.empty(3), "out")]


IOUS = np.array([0.6, 0.2, 0.9])


def case_match_candidates():
    return [("ious", IOUS.copy(), "in"), ("det_start", BLOCKS["dt_start"].copy(), "in"),
            ("gt_start", BLOCKS["gt_start"].copy(), "in"), ("iou_start", BLOCKS["iou_start"].copy(), "in"),
            ("lowest", 0.5, None), ("out", np.empty(2, np.int64), "out")]


THRESHOLDS = np.array([0.5, 0.75])


def case_match():
    V = 2
    return [("ious", IOUS.copy(), "in"), ("det_start", BLOCKS["dt_start"].copy(), "in"),
            ("gt_start", BLOCKS["gt_start"].copy(), "in"), ("iou_start", BLOCKS["iou_start"].copy(), "in"),
            ("gt_state", np.array([[0, 1, 0], [2, 0, 1]], np.uint8), "in"), ("gt_crowd", np.zeros(3, np.uint8), "in"),
            ("thresholds", THRESHOLDS.copy(), "in"), ("candidates", np.array([0, 1], np.int64), "in"),
            ("v_lo", 0, None), ("v_hi", V, None), ("out", np.empty((V, 2, 2), np.int32), "out")]


def case_accumulate():
    A, T, G, D, R, M, K_ = 2, 2, 3, 2, 5, 2, 1  # matches: (A, T, C) with C = 2 candidates
    return [("matches", np.array([[[0, 2], [-1, 2]], [[1, -1], [-1, -1]]], np.int32), "in"),
            ("candidate_of", np.array([0, 1], np.int32), "in"), ("gt_state", np.zeros((A, G), np.uint8), "in"),
            ("gt_ids", np.arange(1, G + 1, dtype=np.int64), "in"), ("gt_used", np.ones(G, np.uint8), "in"),
            ("gt_cat", np.zeros(G, np.int64), "in"), ("order", np.array([1, 0], np.int64), "in"),
            ("dt_used", np.ones(D, np.uint8), "in"), ("dt_cat", np.zeros(D, np.int64), "in"),
            ("dt_rank", np.zeros(D, np.int64), "in"), ("dt_scores", np.array([0.4, 0.9]), "in"),
            ("dt_out", np.zeros((A, D), np.uint8), "in"), ("rec_thrs", np.linspace(0, 1, R), "in"),
            ("max_dets", np.array([1, 100], np.int64), "in"), ("categories", K_, None), ("category_lo", 0, None),
            ("category_hi", K_, None), ("area_lo", 0, None),
            ("area_hi", A, None), ("precision", -np.ones((T, R, K_, A, M)), "out"),
            ("recall", -np.ones((T, K_, A, M)), "out"), ("scores", -np.ones((T, R, K_, A, M)), "out")]


def case_move_mask_strings():
    data = b"xxabcyyde"  # two strings, the last one ending the data
    return [("data", data, "text"), ("segm", np.array([4, 5, 2, 3, 6, 7, 7, 2], np.int64), "in"),
            ("dst", np.zeros(5, np.uint8), "out"), ("at", 0, None), ("moved", np.zeros(8, np.int64), "out")]


def test_mask_strings_are_moved_together():
    args = dict((n, v) for n, v, _ in case_move_mask_strings())
    assert call("move_mask_strings", case_move_mask_strings()) == 5
    dst, moved = np.zeros(9, np.uint8), np.zeros(8, np.int64)
    assert _evalcore.move_mask_strings(args["data"], args["segm"], dst, 4, moved) == 9
    assert dst[4:].tobytes() == b"abcde" and moved.tolist() == [4, 5, 4, 3, 6, 7, 7, 2]


def case_weighted_accumulate():
    S, L, T, R = 2, 1, 2, 5
    return [("item_fate", np.array([[1, 2], [2, 0], [1, 1]], np.uint8), "in"),
            ("item_img", np.array([0, 1, 1], np.int32), "in"),
            ("item_run", np.array([1, 2, 0], np.int32), "in"), ("list_start", np.array([0, 3], np.int64), "in"),
            ("weights", np.array([[1, 2], [0, 1]], np.int32), "in"), ("images", 2, None),
            ("npig", np.array([[3], [2]], np.int64), "in"),
            ("totals", np.array([[[[3, 2], [2, 3]]], [[[2, 0], [1, 1]]]], np.int64), "in"),
            ("rec_thrs", np.linspace(0, 1, R), "in"), ("s_lo", 0, None),
            ("s_hi", S, None), ("precision", np.empty((S, L, T, R)), "out"), ("recall", np.empty((S, L, T)), "out")]


CASES = {"rle_stats": case_rle_stats, "rle_spans_clean": case_rle_spans_clean, "rle_clean_spans": case_rle_clean_spans,
         "rle_list_strings": case_rle_list_strings, "segm_ious": case_segm_ious,
         "bbox_ious": case_bbox_ious, "oks_exponents": case_oks_exponents, "oks_means": case_oks_means,
         "match_candidates": case_match_candidates, "match": case_match, "accumulate": case_accumulate,
         "polygon_rle_strings": case_polygon_rle_strings, "weighted_accumulate": case_weighted_accumulate,
         "max_iou_inclusive": case_max_iou_inclusive, "float_rows": case_float_rows,
         "box_centres_outside": case_box_centres_outside, "keypoint_means_outside": case_keypoint_means_outside,
         "argsort_descending": case_argsort_descending,
         "move_mask_strings": case_move_mask_strings, "block_order": case_block_order}


def call(function: str, args: list):
    if function == "accumulate":  # keyword arguments only
        return _evalcore.accumulate(**{name: value for name, value, _ in args})
    return getattr(_evalcore, function)(*[value for _, value, _ in args])


def replaced(args: list, name: str, value) -> list:
    return [(n, value if n == name else v, role) for n, v, role in args]


def arrays(function: str, roles=("in", "out", "text")) -> list:
    return [(function, name) for name, _, role in CASES[function]() if role in roles]


def _shorter(value):
    if isinstance(value, bytes):
        return value[:-1]
    flat = value.reshape(-1)
    return flat[:-1].copy() if flat.size else np.zeros(1, value.dtype)


OTHER_TYPE = {np.dtype(np.float64): np.int64, np.dtype(np.int64): np.float64, np.dtype(np.int32): np.float32,
              np.dtype(np.uint8): np.int8, np.dtype(np.int8): np.uint8}


def _other_type(value):
    if isinstance(value, bytes):
        return value.decode("ascii")  # str: not bytes-like
    return value.astype(OTHER_TYPE[value.dtype])


def _strided(value):
    if isinstance(value, bytes):
        return memoryview(value * 2)[::2]
    return np.repeat(value.reshape(-1), 2)[::2].reshape(value.shape)


def test_every_exported_function_is_covered():
    kernels = {name for name in dir(_evalcore) if callable(getattr(_evalcore, name)) and not name.startswith("_")}
    assert kernels == set(CASES) | {"scan_results", "scan_coco_images", "scan_coco_annotations", "trim_heap", "ResultScan",
                                    "object_members"}
    assert _evalcore.trim_heap() is None  # (no arguments, no buffers)


@pytest.mark.parametrize("function", CASES)
def test_valid_calls_pass(function):
    call(function, CASES[function]())


@pytest.mark.parametrize("function,name", [a for f in CASES for a in arrays(f)])
def test_wrong_length_is_refused(function, name):
    args = CASES[function]()
    value = dict((n, v) for n, v, _ in args)[name]
    with pytest.raises(ValueError):
        call(function, replaced(args, name, _shorter(value)))


@pytest.mark.parametrize("function,name", [a for f in CASES for a in arrays(f)])
def test_wrong_item_type_is_refused(function, name):
    args = CASES[function]()
    value = dict((n, v) for n, v, _ in args)[name]
    with pytest.raises(TypeError):
        call(function, replaced(args, name, _other_type(value)))


@pytest.mark.parametrize("function,name", [a for f in CASES for a in arrays(f)])
def test_non_contiguous_is_refused(function, name):
    args = CASES[function]()
    value = dict((n, v) for n, v, _ in args)[name]
    with pytest.raises(ValueError, match="contiguous"):
        call(function, replaced(args, name, _strided(value)))


@pytest.mark.parametrize("function,name", [a for f in CASES for a in arrays(f, roles=("out",))])
def test_read_only_output_is_refused(function, name):
    args = CASES[function]()
    value = dict((n, v) for n, v, _ in args)[name].copy()
    value.flags.writeable = False
    with pytest.raises(ValueError, match=f"{name} is an output"):
        call(function, replaced(args, name, value))


@pytest.mark.parametrize("function,name,value,message", [
    ("rle_stats", "starts", np.array([0, 5, 10**6], np.int64), r"outside buf"),
    ("rle_stats", "hi", 4, "not within"),
    ("rle_spans_clean", "spans", np.array([[0, 2], [-1, 2]], np.int64), r"outside buf"),
    ("rle_clean_spans", "spans", np.array([[0, 2], [-1, 2]], np.int64), r"outside buf"),
    ("rle_list_strings", "spans", np.array([[1, 8], [10, 6]], np.int64), r"outside buf"),
    ("segm_ious", "dt_starts", np.array([0, 10**6], np.int64), r"string 1 \[1000000, \+\d+\) is outside dt_buf"),
    ("segm_ious", "gt_order", np.array([0, 1, 3], np.int64), r"gt_order\[2\] = 3"),
    ("segm_ious", "dt_order", np.array([0, -1], np.int64), r"dt_order\[1\] = -1"),
    ("segm_ious", "iou_start", np.array([0, 3], np.int64), "does not fit"),
    ("segm_ious", "gt_start", np.array([0, 2, 1], np.int64), "decrease"),
    ("bbox_ious", "gt_order", np.array([0, 1, 7], np.int64), r"gt_order\[2\] = 7"),
    ("bbox_ious", "hi", 3, "not within"),
    ("oks_exponents", "dt", np.array([0, 1, 2], np.int64), r"dt\[2\] = 2"),
    ("oks_means", "gt", np.array([0, 1, 3], np.int64), r"gt\[2\] = 3"),
    ("match_candidates", "iou_start", np.array([0, 3], np.int64), "does not fit"),
    ("match", "candidates", np.array([1, 0], np.int64), "ascend"),
    ("match", "candidates", np.array([0, 2], np.int64), "ascend"),
    ("match", "gt_state", np.array([[0, 1, 0], [3, 0, 1]], np.uint8), "not a ground-truth state"),
    ("match", "v_hi", 3, "not within"),
    ("accumulate", "matches", np.array([[[0, 3], [-1, 2]], [[1, -1], [-1, -1]]], np.int32), "matches holds 3"),
    ("accumulate", "candidate_of", np.array([0, 2], np.int32), r"candidate_of\[1\] = 2"),
    ("accumulate", "order", np.array([1, 2], np.int64), r"order\[1\] = 2"),
    ("accumulate", "area_hi", 3, "not within"),
    ("accumulate", "category_hi", 2, "not within"),
    ("move_mask_strings", "segm", np.array([4, 5, 2, 3, 6, 7, 7, 3], np.int64), r"string 1 \[7, \+3\) is outside data"),
    ("move_mask_strings", "segm", np.array([4, 5, -1, 3, 6, 7, 7, 2], np.int64), r"string 0 .* is outside data"),
    ("move_mask_strings", "at", 1, "dst holds 5 bytes, 5 needed from 1"),
    ("move_mask_strings", "at", -1, "dst holds 5 bytes"),
    ("polygon_rle_strings", "point_start", np.array([0, 3, 11, 10], np.int64), r"point_start\[2\] = 11"),
    ("polygon_rle_strings", "point_start", np.array([0, 6, 3, 10], np.int64), "decreases"),
    ("polygon_rle_strings", "polygon_start", np.array([0, 2, 1, 3], np.int64), "decreases"),
    ("polygon_rle_strings", "polygon_start", np.array([0, 2, 2, 4], np.int64), r"polygon_start\[3\] = 4"),
    ("polygon_rle_strings", "sizes", np.array([[6, 6], [-1, 6], [6, 6]], np.int64), "a size needs"),
    ("polygon_rle_strings", "sizes", np.array([[6, 6], [6, 6], [6, 0]], np.int64), "a size needs"),
    ("polygon_rle_strings", "sizes", np.array([[6, 6], [6, 6], [2**16, 2**15]], np.int64), "a size needs"),
    ("polygon_rle_strings", "xy", np.r_[np.zeros(19), np.nan], r"xy\[19\] = nan is not finite"),
    ("polygon_rle_strings", "xy", np.r_[np.zeros(19), 2.0**28], r"xy\[19\] = .* is not finite"),
    ("polygon_rle_strings", "hi", 4, "not within"),
    ("float_rows", "width", -1, "expected 0"),
    ("max_iou_inclusive", "starts", np.array([0, 3, 2], np.int64), r"starts\[2\] = 2 is not within 0..4 or decreases"),
    ("box_centres_outside", "image_index", np.array([0, 2, 1], np.int64), r"image_index\[1\] = 2 is outside 0..1"),
    ("max_iou_inclusive", "starts", np.array([1, 2, 4], np.int64), r"starts\[0\] = 1, expected 0"),
    ("max_iou_inclusive", "starts", np.array([0, 2, 3], np.int64), r"starts\[2\] = 3, expected the 4 boxes"),
    ("max_iou_inclusive", "starts", np.array([0, 2, 5], np.int64), r"starts\[2\] = 5 is not within"),
    ("weighted_accumulate", "item_img", np.array([0, 1, 2], np.int32), r"item_img\[2\] = 2"),
    ("weighted_accumulate", "item_run", np.array([1, 3, 0], np.int32), r"item_run\[1\] = 3"),
    ("weighted_accumulate", "item_run", np.array([1, 1, 0], np.int32), r"item_run\[2\] = 0"),
    ("weighted_accumulate", "item_fate", np.array([[1, 2], [3, 0], [1, 1]], np.uint8), r"item_fate\[2\] = 3"),
    ("weighted_accumulate", "list_start", np.array([0, 2], np.int64), "list_start must not decrease"),
    ("weighted_accumulate", "weights", np.array([[1, -2], [0, 1]], np.int32), r"weights\[1\] = -2"),
    ("weighted_accumulate", "npig", np.array([[3], [-1]], np.int64), r"npig\[1\] = -1"),
    ("weighted_accumulate", "s_hi", 3, "not within"),
    ("weighted_accumulate", "totals", np.array([[[[3, 2], [2, 3]]], [[[2, 0], [1, -1]]]], np.int64),
     r"totals\[7\] = -1"),
    ("weighted_accumulate", "rec_thrs", np.array([0, 0.25, 0.5, np.inf, 1]), r"rec_thrs\[3\] = inf is not a recall"),
    ("weighted_accumulate", "rec_thrs", np.array([0, 0.25, np.nan, 0.75, 1]), r"rec_thrs\[2\] = nan"),
])
def test_indices_outside_their_arrays_are_refused(function, name, value, message):
    with pytest.raises(ValueError, match=message):
        call(function, replaced(CASES[function](), name, value))


def test_accumulate_takes_keyword_arguments_only():
    args = case_accumulate()
    with pytest.raises(TypeError):
        _evalcore.accumulate(*[value for _, value, _ in args])
    with pytest.raises(TypeError, match="missing required keyword argument 'scores'"):
        _evalcore.accumulate(**{name: value for name, value, _ in args[:-1]})


@pytest.mark.parametrize("function,args", [
    ("scan_results", (b"[]", 0, 2)), ("scan_coco_images", (b"[]",)), ("scan_coco_annotations", (b"[]",)),
    ("object_members", (b"{}",))])
def test_scanners_refuse_text_that_is_not_bytes(function, args):
    scan = getattr(_evalcore, function)
    assert scan(*args) is not None
    with pytest.raises(TypeError):
        scan("[]", *args[1:])
    with pytest.raises(ValueError, match="contiguous"):
        scan(memoryview(b"[ ] " if args[0] != b"{}" else b"{ } ")[::2], *args[1:])


def test_scan_results_outside_the_data_is_not_in_the_shape():
    assert _evalcore.scan_results(b"[]", 0, 3) is None
    assert _evalcore.scan_results(b"[]", -1, 2) is None


_MASKED = (b'[{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "04"}},'
           b' {"image_id": 2, "category_id": 1, "score": 0.5, "segmentation": {"size": [2, 2], "counts": "13"}}]')


def test_result_scan_moves_strings_only_into_room_it_has():
    """ResultScan.scan copies the new rows' strings into strings[at:] only where they fit and
    ``at`` lies inside; strings must be writable bytes; data bytes-like."""
    scan = _evalcore.ResultScan()
    assert scan.scan(_MASKED, 0, len(_MASKED), 0, bytearray(6), 2) == 6
    for strings, at, error, message in [(bytearray(3), 0, ValueError, "strings holds 3 bytes, 4 needed from 0"),
                                        (bytearray(6), 3, ValueError, "strings holds 6 bytes, 4 needed from 3"),
                                        (bytearray(6), 7, ValueError, "at = 7 is outside strings"),
                                        (bytearray(6), -1, ValueError, "at = -1 is outside strings"),
                                        (b"      ", 0, ValueError, "strings is an output and must be writable"),
                                        (np.zeros(6, np.int64), 0, TypeError, "strings must be an array of uint8")]:
        with pytest.raises(error, match=message):
            _evalcore.ResultScan().scan(_MASKED, 0, len(_MASKED), 0, strings, at)
    with pytest.raises(TypeError, match="data must be bytes-like"):
        scan.scan(_MASKED.decode(), 0, 2)
    assert np.frombuffer(scan.columns()[5], np.int64).tolist() == [2, 2, 2, 2, 2, 2, 4, 2]


def test_result_scan_extends_by_another_scan_only():
    scan, other = _evalcore.ResultScan(), _evalcore.ResultScan()
    with pytest.raises(TypeError, match="other must be a ResultScan, not bytes"):
        scan.extend(b"[]")
    with pytest.raises(ValueError, match="cannot extend itself"):
        scan.extend(scan)
    assert other.scan(_MASKED, 0, len(_MASKED)) == 0
    scan.extend(other)
    assert other.columns() == (b"",) * 7
    assert np.frombuffer(scan.columns()[0], np.int64).tolist() == [1, 2]
