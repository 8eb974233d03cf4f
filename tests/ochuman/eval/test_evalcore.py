"""The compiled core: RLE statistics against pycocotools, the results scanner against Python's
JSON parser, and the scanned path against the general one."""
from __future__ import annotations

import json
import math
import struct
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from ochuman import _evalcore
from ochuman.rle import MaskTable
from ochuman.eval.results import _scanned_detections, detections_from_records, parse_results
from ochuman.scan import scan_results

from ..workloads import coco_workloads


def _bitmaps(h, w, density, seed, fill_from):
    rng = np.random.default_rng(seed)
    bitmap = (rng.random((h, w)) < density).astype(np.uint8)
    bitmap[:, min(fill_from, w):] |= rng.random() < 0.3  # long runs spanning columns
    return bitmap


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0, 1), seed=st.integers(0, 2**31 - 1),
       fill_from=st.integers(0, 40))
def test_mask_statistics_match_pycocotools(h, w, density, seed, fill_from):
    bitmap = _bitmaps(h, w, density, seed, fill_from)
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    counts = rle["counts"].decode()
    table = MaskTable.from_strings([counts], np.array([[h, w]]))
    ys, xs = np.nonzero(bitmap)
    expected_box = [xs.min(), ys.min(), xs.max(), ys.max()] if len(xs) else [0, 0, -1, -1]
    assert table.boxes[0].tolist() == [int(v) for v in expected_box]
    assert table.areas[0] == bitmap.sum() == mask_utils.area(rle)
    assert table.totals[0] == h * w
    assert table.bad is None and table[0] == counts
    # The same string as raw JSON text (backslashes doubled) gives the same statistics.
    text = json.dumps(counts).encode()
    raw = MaskTable(text, np.array([1]), np.array([len(text) - 2]), np.array([[h, w]]), raw=True)
    assert raw.bad is None and raw[0] == counts
    np.testing.assert_array_equal(raw.boxes, table.boxes)
    assert (raw.areas[0], raw.totals[0]) == (table.areas[0], table.totals[0])


def test_mask_iou_pass_leaves_exact_statistics(tmp_path):
    """The IoU pass decodes deferred detections once and keeps their areas and totals, but only
    the columns of their boxes; asking for the boxes then gives pycocotools' exact ones. The
    ground truth's statistics come from the same pass (image 1) or on demand (image 2: no
    detections)."""
    from ochuman.eval.blocks import make_blocks
    from ochuman.eval.params import EvalParams
    from ochuman.eval.resolve import resolve_ground_truth
    from ochuman.eval.results import detections_from_bytes

    rng = np.random.default_rng(3)
    h, w = 30, 40

    def rle(density):
        bitmap = np.zeros((h, w), np.uint8)
        x, y = rng.integers(0, w - 8), rng.integers(0, h - 8)
        bitmap[y:y + rng.integers(2, 8), x:x + rng.integers(2, 8)] = 1  # a block: its rows vary
        bitmap |= (rng.random((h, w)) < density).astype(np.uint8)
        return mask_utils.encode(np.asfortranarray(bitmap))

    gts = [rle(0.0) for _ in range(4)]
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": h, "width": w},
                     {"id": 2, "file_name": "b.jpg", "height": h, "width": w}],
          "annotations": [{"id": k + 1, "image_id": 1 + k // 3, "category_id": 1, "iscrowd": 0,
                           "bbox": mask_utils.toBbox(r).tolist(), "area": float(mask_utils.area(r)),
                           "segmentation": {"size": [h, w], "counts": r["counts"].decode()}}
                          for k, r in enumerate(gts)],
          "categories": [{"id": 1, "name": "person"}]}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    dts = [rle(rng.choice([0.0, 0.02])) for _ in range(12)]
    results = [{"image_id": 1, "category_id": 1, "score": float(rng.random()), "bbox": [0, 0, 1, 1],
                "segmentation": {"size": [h, w], "counts": r["counts"].decode()}} for r in dts]
    ground = resolve_ground_truth(gt=gt_path)
    scanned = detections_from_bytes(json.dumps(results).encode(), "r", ground.image_ids, ground.image_sizes, [1],
                                    "segm", defer_mask_checks=True)
    blocks = make_blocks(ground.annotations, scanned, EvalParams("segm"))
    table = scanned.masks
    assert (table.status == 2).any()  # the pass computed those statistics, boxes without rows
    expected_ious = mask_utils.iou([dts[i] for i in blocks.dt_order], gts[:3], [0, 0, 0])
    assert blocks.ious.tolist() == np.asarray(expected_ious).ravel().tolist()
    gt_table = ground.annotations.masks
    assert gt_table.status.tolist() == [1, 1, 1, 0]  # decoded by the pass, except image 2's
    gt_boxes = mask_utils.toBbox(gts)
    assert gt_table.areas.tolist() == [int(mask_utils.area(r)) for r in gts]
    assert gt_table.boxes.tolist() == np.c_[gt_boxes[:, :2], gt_boxes[:, :2] + gt_boxes[:, 2:] - 1].astype(int).tolist()
    assert table.areas.tolist() == [int(mask_utils.area(r)) for r in dts]
    assert table.totals.tolist() == [h * w] * len(dts)
    boxes = mask_utils.toBbox(dts)  # xywh
    assert table.boxes.tolist() == np.c_[boxes[:, :2], boxes[:, :2] + boxes[:, 2:] - 1].astype(int).tolist()
    assert (table.status == 1).all()


def test_truncated_string_is_named():
    table = MaskTable.from_strings(["0", "P"], np.array([[1, 1], [1, 1]]))  # 'P' continues, no follower
    assert table.bad == (1, "truncated")


@pytest.mark.parametrize("text", [b"0p", b"0\\n", b"0\\", b"0 1", "0\u00e91".encode()])
def test_raw_strings_refuse_characters_outside_the_rle_alphabet(text):
    table = MaskTable(text, np.array([0]), np.array([len(text)]), np.array([[1, 1]]), raw=True)
    assert table.bad is not None and table.bad[0] == 0


def _encode_values(values) -> str:
    """pycocotools' string form of RLE values (5 bits per character, low bits first, 0x20: more
    follow, the last character's 0x10 is the sign)."""
    chars = []
    for x in values:
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = not ((c & 0x10 and x == -1) or (not c & 0x10 and x == 0))
            chars.append(chr(48 + (c | (0x20 if more else 0))))
    return "".join(chars)


def _reference_runs(text: str) -> list[int]:
    """The runs of a counts string as pycocotools' rleFrString reads it (uint32 runs; from the
    fourth on, a value is the difference to the run two before)."""
    runs, p = [], 0
    while p < len(text):
        x, k, more = 0, 0, True
        while more:
            c = ord(text[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more, p, k = c & 0x20, p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        runs.append((x + (runs[-2] if len(runs) > 2 else 0)) & 0xFFFFFFFF)
    return runs


# Value magnitudes of 1 to 4+ characters (|x| < 16, < 512, < 16384, more) and zeros (empty runs).
_values = st.one_of(st.integers(-15, 15), st.integers(-511, 511), st.integers(-16383, 16383),
                    st.integers(-2**26, 2**26), st.just(0))


@pytest.mark.differential
@settings(max_examples=400, deadline=None)
@given(values=st.lists(_values, max_size=300), pad=st.integers(0, 40), big=st.booleans())
def test_decoder_equals_the_reference_on_any_values(values, pad, big):
    """The decoder (8 characters at a time where the CPU allows it, with its fallbacks: values of
    4+ characters, empty 1-runs, runs of 2^27+ pixels) reads every string as pycocotools does,
    plain or as raw JSON text (doubled backslashes) at any alignment."""
    if big and values:
        values[len(values) // 2] = 2**28 + values[len(values) // 2]
    text = _encode_values(values)
    runs = _reference_runs(text)
    area, total = sum(runs[1::2]), sum(runs)
    plain = MaskTable.from_strings([text], np.array([[1, max(total, 1)]]))
    assert plain.bad is None and (plain.areas[0], plain.totals[0]) == (area, total)
    raw_text = json.dumps(text)[1:-1].encode()
    raw = MaskTable(b"x" * pad + raw_text, np.array([pad]), np.array([len(raw_text)]),
                    np.array([[1, max(total, 1)]]), raw=True)
    assert raw.bad is None and (raw.areas[0], raw.totals[0]) == (area, total)
    if total == 0 or total >= 2**31 or not all(runs[1:]):  # boxes of empty runs: pycocotools' own rule
        return
    h = max(d for d in range(1, 64) if total % d == 0)  # a mask of these runs: its box as pycocotools'
    rle = {"size": [h, total // h], "counts": text.encode()}
    assert area == mask_utils.area(rle)
    x, y, bw, bh = mask_utils.toBbox(rle)
    expected = [int(x), int(y), int(x + bw - 1), int(y + bh - 1)] if area else [0, 0, -1, -1]
    table = MaskTable.from_strings([text], np.array([[h, total // h]]))
    assert table.boxes[0].tolist() == expected


@pytest.mark.parametrize("seed", range(6))
def test_decoder_on_large_masks_equals_pycocotools(seed):
    """Masks of a detector's size (values of 1 to 4 characters), raw and plain."""
    rng = np.random.default_rng(seed)
    h, w = rng.integers(200, 700, size=2)
    bitmap = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(1, 6)):
        x0, y0 = rng.integers(0, w - 10), rng.integers(0, h - 10)
        bitmap[y0:y0 + rng.integers(5, h - y0), x0:x0 + rng.integers(5, w - x0)] = 1
    bitmap ^= (rng.random((h, w)) < rng.choice([0.0, 0.001, 0.05])).astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    counts = rle["counts"].decode()
    raw_text = json.dumps(counts)[1:-1].encode()
    for table in (MaskTable.from_strings([counts], np.array([[h, w]])),
                  MaskTable(raw_text, np.array([0]), np.array([len(raw_text)]), np.array([[h, w]]), raw=True)):
        ys, xs = np.nonzero(bitmap)
        assert table.bad is None
        assert (table.areas[0], table.totals[0]) == (bitmap.sum(), h * w)
        assert table.boxes[0].tolist() == [xs.min(), ys.min(), xs.max(), ys.max()]


@pytest.mark.parametrize("seed", range(20))
def test_decoder_names_problems_anywhere_in_long_strings(seed):
    """A character outside the alphabet, a lone backslash or a cut inside a value, anywhere in a
    long string (in the 16-character chunks or the tail), is refused as for short strings."""
    rng = np.random.default_rng(seed)
    text = _encode_values(rng.integers(-3000, 3000, size=200).tolist())
    raw = json.dumps(text)[1:-1]
    at = int(rng.integers(0, len(raw)))
    problem = seed % 3
    if problem == 0:
        broken, reason = raw[:at] + "p" + raw[at:], "character"
    elif problem == 1:
        broken, reason = raw[:at] + "\\" + ("0" if raw[at:at + 1] == "\\" else "") + raw[at:], "character"
    else:
        cut = next(i for i in range(at, len(text)) if (ord(text[i]) - 48) & 0x20) if any(
            (ord(c) - 48) & 0x20 for c in text[at:]) else None
        if cut is None:
            return
        broken, reason = json.dumps(text[:cut + 1])[1:-1], "truncated"
    data = broken.encode()
    table = MaskTable(data, np.array([0]), np.array([len(data)]), np.array([[1, 1]]), raw=True)
    assert table.bad == (0, reason)


@pytest.mark.parametrize("at", [0, 1, 14, 15, 16, 17, 31, 32, 47, 63, 64, 78])
def test_backslashes_at_chunk_edges(at):
    """Raw text is read in 16-character chunks: a doubled backslash across a chunk edge is one
    character, a lone one there is refused."""
    text = "1" * at + "\\" + "1" * (80 - at)  # the backslash (code 44) continues into the next value
    plain = MaskTable.from_strings([text], np.array([[1, 1]]))
    data = json.dumps(text)[1:-1].encode()
    raw = MaskTable(data, np.array([0]), np.array([len(data)]), np.array([[1, 1]]), raw=True)
    assert raw.bad is None and plain.bad is None
    assert (raw.areas[0], raw.totals[0]) == (plain.areas[0], plain.totals[0]) == (
        sum(_reference_runs(text)[1::2]), sum(_reference_runs(text)))
    lone = ("1" * at + "\\" + "1" * (80 - at)).encode()
    assert MaskTable(lone, np.array([0]), np.array([len(lone)]), np.array([[1, 1]]), raw=True).bad == (0, "character")


# ------------------------------------------------------------------------------------- scanner

def _scan_column(records: list, key: str) -> np.ndarray:
    scanned = scan_results(json.dumps(records).encode())
    assert scanned is not None
    index = {"image_id": 0, "category_id": 1, "score": 2}[key]
    return np.frombuffer(scanned[index], dtype=np.int64 if key != "score" else np.float64)


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False), digits=st.integers(1, 17),
       style=st.sampled_from(["repr", "g", "e", "f"]))
def test_numbers_are_parsed_as_python_json_parses_them(value, digits, style):
    text = {"repr": repr(value), "g": f"{value:.{digits}g}", "e": f"{value:.{digits}e}",
            "f": f"{value:.{min(digits, 8)}f}"}[style]
    if "inf" in text or "nan" in text:
        return
    data = f'[{{"image_id": 1, "category_id": 1, "score": {text}}}]'.encode()
    scanned = scan_results(data)
    if math.isinf(float(text)):  # rounded beyond float64 (e.g. 2e+308): the general path names it
        assert scanned is None, text
        return
    assert scanned is not None
    parsed = struct.unpack("d", scanned[2])[0]
    expected = float(json.loads(text))  # "-0" is the integer 0 to JSON readers
    assert parsed == expected and math.copysign(1, parsed) == math.copysign(1, expected), text


@pytest.mark.parametrize("text", ["0", "-0", "-0.0", "1e308", "2.2250738585072014e-308", "4.9e-324", "123456789012345678",
                                  "0.1", "1.7976931348623157e308", "9007199254740993", "1E5", "1e-400", "12345678901234567890"])
def test_number_edge_cases(text):
    data = f'[{{"image_id": 1, "category_id": 1, "score": {text}}}]'.encode()
    scanned = scan_results(data)
    if scanned is None:  # too many digits for the fast path: the general path reads it
        assert len(text.strip("-").replace(".", "")) > 19
        return
    assert struct.unpack("d", scanned[2])[0] == float(text)


@pytest.mark.parametrize("data", [
    b'{"image_id": 1}',  # not a list
    b'[{"image_id": "000001.jpg", "category_id": 1, "score": 1}]',  # file name
    b'[{"image_id": 1.0, "category_id": 1, "score": 1}]',  # float id
    b'[{"image_id": 1, "category_id": 1}]',  # no score
    b'[{"image_id": 1, "category_id": 1, "score": NaN}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1e400}]',  # beyond float64: infinite
    b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [1, 2, -1.5e999, 4]}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "extra": 1e400}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "score": 2}]',  # duplicate key
    b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": [1, 2, 3]}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "bbox": null}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": [[1, 2, 3, 4, 5, 6]]}]',  # polygons
    b'[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [1, 1], "counts": [0, 1]}}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "segmentation": {"size": [1, 1], "counts": "a\\"b"}}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "keypoints": [1, 2, 3]}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1}',  # truncated
    b'[{"image_id": 1, "category_id": 1, "score": 1}] x',
    b'[{"image_id": 1, "category_id": 1, "score": 01}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1.}]',
    b'[{"image_id": 1, "category_id": 1, "score": 1, "extra": "\\u00e9"}]',
])
def test_unusual_files_go_the_general_way(data):
    assert scan_results(data) is None


def test_other_keys_are_skipped():
    data = (b'[ {"id": 7, "area": 1.5, "iscrowd": false, "extra": {"a": [1, {"b": null}], "c": "x"},'
            b' "image_id": 3, "category_id": 1, "score": 0.5} ]')
    scanned = scan_results(data)
    assert scanned is not None and np.frombuffer(scanned[0], np.int64).tolist() == [3]


# ------------------------------------------------------------------ scanned == general path

def _same_detections(fast, slow) -> None:
    for name in ("image_id", "category_id", "ann_id", "bbox", "area", "iscrowd", "score", "keypoints", "mask_size"):
        a, b = getattr(fast, name), getattr(slow, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a, b, err_msg=name)
            assert np.asarray(a).dtype == np.asarray(b).dtype, name
    assert (fast.counts is None) == (slow.counts is None)
    if fast.counts is not None:
        assert list(fast.counts) == list(slow.counts)
        for name in ("areas", "totals", "boxes"):
            np.testing.assert_array_equal(getattr(fast.masks, name), getattr(slow.masks, name), err_msg=name)


@pytest.mark.differential
@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_scanned_detections_equal_the_general_path(iou_type):
    seen = []

    @settings(max_examples=120, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(workload=coco_workloads(iou_type))
    def check(workload):
        gt, results = workload["gt"], workload["results"]
        if not results:
            return
        image_ids = np.array([im["id"] for im in gt["images"]], dtype=np.int64)
        sizes = np.array([[im["height"], im["width"]] for im in gt["images"]], dtype=np.int64)
        categories = sorted(c["id"] for c in gt["categories"])
        data = json.dumps(results, indent=seen.__len__() % 2 or None).encode()
        fast = _scanned_detections(data, scan_results(data), image_ids, sizes, categories, iou_type)
        assert fast is not None, "the scanner gave up on a plain results file"
        slow = detections_from_records(parse_results(data, "x"), "x", image_ids, sizes, categories, iou_type)
        _same_detections(fast, slow)
        seen.append(1)

    check()
    assert len(seen) >= 60


# ------------------------------------------------------------------------------------- OKS

def _pycocotools_oks(d: np.ndarray, g: np.ndarray, bb: list, area: float, sigmas: np.ndarray) -> float:
    """One (dt, gt) pair as pycocotools' computeOks loop computes it."""
    variances = (sigmas * 2) ** 2
    k = len(sigmas)
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    k1 = np.count_nonzero(vg > 0)
    x0, x1, y0, y1 = bb[0] - bb[2], bb[0] + bb[2] * 2, bb[1] - bb[3], bb[1] + bb[3] * 2
    xd, yd = d[0::3], d[1::3]
    if k1 > 0:
        dx, dy = xd - xg, yd - yg
    else:
        z = np.zeros(k)
        dx = np.max((z, x0 - xd), axis=0) + np.max((z, xd - x1), axis=0)
        dy = np.max((z, y0 - yd), axis=0) + np.max((z, yd - y1), axis=0)
    e = (dx ** 2 + dy ** 2) / variances / (area + np.spacing(1)) / 2
    if k1 > 0:
        e = e[vg > 0]
    return np.sum(np.exp(-e)) / e.shape[0]


@pytest.mark.differential
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), pairs=st.integers(1, 40), chunk=st.sampled_from([1, 3, 7, 4096]))
def test_oks_is_bit_identical_to_pycocotools(seed, pairs, chunk):
    """computeOks' value of every pair, the pairs cut into chunks of ``chunk`` computed one at a
    time, last first (as threads may)."""
    from unittest import mock

    from ochuman.eval import iou
    from ochuman.eval.iou import oks_pairs
    from ochuman.keypoints import COCO_OKS_SIGMAS

    def every_chunk_alone(function, weights, min_weight=0):
        for k in reversed(range(len(weights))):
            function(k, k + 1)

    rng = np.random.default_rng(seed)
    n_gt, n_dt = 5, 7
    gt = rng.uniform(0, 500, (n_gt, 51))
    for j in range(n_gt):  # 0..17 labelled keypoints, visibility 0/1/2
        labelled = rng.random(17) < rng.choice([0.0, 0.3, 0.7, 1.0])
        gt[j, 2::3] = np.where(labelled, rng.integers(1, 3, 17), 0)
    dt = gt[rng.integers(0, n_gt, n_dt)] + rng.normal(0, rng.choice([0.5, 5, 50]), (n_dt, 51))
    boxes = np.c_[rng.uniform(0, 400, (n_gt, 2)), rng.uniform(1, 200, (n_gt, 2))]
    areas = rng.uniform(10, 40000, n_gt)
    d, g = rng.integers(0, n_dt, pairs), rng.integers(0, n_gt, pairs)
    with mock.patch.object(iou, "OKS_PAIRS_PER_CHUNK", chunk), mock.patch.object(iou.parallel, "run_chunks", every_chunk_alone):
        ours = oks_pairs(dt, gt, boxes, areas, d, g, COCO_OKS_SIGMAS)
    expected = [_pycocotools_oks(dt[i], gt[j], boxes[j].tolist(), float(areas[j]), COCO_OKS_SIGMAS) for i, j in zip(d, g)]
    assert ours.tolist() == expected


@pytest.mark.differential
@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n_gt=st.integers(0, 6), n_dt=st.integers(0, 8),
       scale=st.sampled_from([1.0, 0.5, 30.0]))
def test_block_box_ious_equal_pycocotools(seed, n_gt, n_dt, scale):
    from ochuman.eval.iou import bbox_block_ious

    rng = np.random.default_rng(seed)

    def boxes(n):  # integer and fractional corners, touching edges, empty boxes
        xy = np.round(rng.uniform(0, 20, (n, 2)) * scale, rng.integers(0, 3))
        wh = np.round(rng.uniform(0, 10, (n, 2)) * scale, rng.integers(0, 3)) * (rng.random((n, 1)) > 0.1)
        return np.c_[xy, wh]

    class Boxes:
        def __init__(self, bbox, crowd=None):
            self.bbox, self.iscrowd = bbox, crowd

    gt = Boxes(boxes(n_gt), (rng.random(n_gt) < 0.3).astype(bool))
    dt = Boxes(boxes(n_dt))
    # two blocks: the first with every annotation, the second with the first two of each (reordered)
    g_idx = np.r_[np.arange(n_gt), np.arange(min(n_gt, 2))[::-1]].astype(np.int64)
    d_idx = np.r_[np.arange(n_dt), np.arange(min(n_dt, 2))[::-1]].astype(np.int64)
    gt_start = np.array([0, n_gt, len(g_idx)], np.int64)
    dt_start = np.array([0, n_dt, len(d_idx)], np.int64)
    sizes = np.diff(gt_start) * np.diff(dt_start)
    iou_start = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
    ours = bbox_block_ious(gt, dt, g_idx, d_idx, gt_start, dt_start, iou_start, int(sizes.sum()))
    for b in range(2):
        g, d = g_idx[gt_start[b]:gt_start[b + 1]], d_idx[dt_start[b]:dt_start[b + 1]]
        block = ours[iou_start[b]:iou_start[b] + len(g) * len(d)]
        if len(g) and len(d):
            expected = mask_utils.iou(dt.bbox[d].tolist(), gt.bbox[g].tolist(), gt.iscrowd[g].astype(np.uint8).tolist())
            assert block.tolist() == np.asarray(expected).ravel().tolist()


SPECIAL = (0.0, -0.0, 1.0, -1.0, 2.5, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan)


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(gt=st.lists(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-50, 50)), min_size=4, max_size=4),
                   min_size=1, max_size=6),
       dt=st.lists(st.lists(st.one_of(st.sampled_from(SPECIAL), st.floats(-50, 50)), min_size=4, max_size=4),
                   min_size=1, max_size=6),
       crowd=st.lists(st.booleans(), min_size=6, max_size=6))
def test_bbox_ious_equal_pycocotools_bit_for_bit_on_special_values(gt, dt, crowd):
    """NaN, infinities, signed zeros, overflowing areas, negative sizes: the inline fmin / fmax
    give pycocotools' (glibc's) IoUs to the bit, the sign of zero included, and NaN where it
    gives NaN (which of two NaN operands an addition passes on, and so the result's sign bit,
    is the compiler's choice of operand order, in pycocotools' build as in ours)."""
    gt_boxes, dt_boxes = np.array(gt, np.float64), np.array(dt, np.float64)
    iscrowd = np.array(crowd[:len(gt)], np.uint8)
    blocks = (np.array([0, len(gt)], np.int64), np.array([0, len(dt)], np.int64), np.array([0], np.int64))
    ours = np.empty(len(gt) * len(dt))
    with np.errstate(all="ignore"):
        _evalcore.bbox_ious(gt_boxes, iscrowd, dt_boxes, np.arange(len(gt), dtype=np.int64),
                            np.arange(len(dt), dtype=np.int64), *blocks, 0, 1, ours)
        expected = np.asarray(mask_utils.iou(dt_boxes, gt_boxes, iscrowd.tolist()), np.float64).ravel()
    assert np.array_equal(np.isnan(ours), np.isnan(expected))
    assert np.where(np.isnan(ours), 0.0, ours).tobytes() == np.where(np.isnan(expected), 0.0, expected).tobytes()


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0, 0.25, -math.inf, math.nan, math.inf]),
                                 st.floats(allow_nan=True, allow_infinity=True),
                                 st.floats(width=32).map(float)), max_size=60))
def test_descending_order_is_the_stable_descending_argsort(values):
    from ochuman.eval.blocks import descending_order

    scores = np.array(values, dtype=np.float64)
    order = descending_order(scores)
    assert order.dtype == np.int64 and order.tolist() == np.argsort(-scores, kind="stable").tolist()


def _assert_block_order(block: np.ndarray, scores: np.ndarray, max_det: int) -> None:
    """block_order against numpy: the detections of blocks >= 0 by (block, -score, file order)
    as np.lexsort gives them, at most max_det a block, their ranks; and the kept by score as a
    stable sort of their scores in block order."""
    order, rank, by_score = (np.full(len(scores), -7, np.int64) for _ in range(3))
    kept = _evalcore.block_order(block, scores, max_det, order, rank, by_score)
    listed = np.flatnonzero(block >= 0)
    expected = listed[np.lexsort((-scores[listed], block[listed]))]
    first = np.r_[True, block[expected][1:] != block[expected][:-1]] if len(expected) else np.zeros(0, bool)
    starts = np.flatnonzero(first)
    place = np.arange(len(expected)) - np.repeat(starts, np.diff(np.r_[starts, len(expected)]))
    top = place < max_det
    assert kept == int(top.sum())
    assert order[:kept].tolist() == expected[top].tolist() and rank[:kept].tolist() == place[top].tolist()
    assert by_score[:kept].tolist() == np.argsort(-scores[expected[top]], kind="stable").tolist()


# Scores alike in their first 32 bits that differ after them (float64 values a model would not
# write, but a file can hold them).
ALIKE_SCORES = st.integers(0, 40).map(lambda k: 0.5 + k * 2.0 ** -53)  # (steps of one ulp)


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.0, 0.25, -math.inf, math.nan, math.inf]),
                                 st.floats(width=32).map(float), st.floats(), ALIKE_SCORES), max_size=120),
       blocks=st.sampled_from([1, 3, 8, 2 ** 11 + 1, 2 ** 23, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 2 ** 62]),
       max_det=st.integers(0, 5), seed=st.integers(0, 2 ** 32 - 1))
def test_block_order_is_numpys_lexsort_cut_and_the_stable_sort_of_the_kept(values, blocks, max_det, seed):
    """block_order as numpy orders (_assert_block_order): ties, NaNs, -0.0 across blocks and
    files; scores whose keys differ in up to 32 bits (float32 values) or more (one word a
    detection, runs alike in their first 32 bits ordered again), block keys of 1 to 62 bits (32
    bits and beyond: a key and a position apart)."""
    rng = np.random.default_rng(seed)
    scores = np.array(values, dtype=np.float64)
    block = rng.choice(np.r_[-1, rng.integers(0, blocks, rng.integers(1, 9))], len(scores))  # a few blocks, any key
    _assert_block_order(block, scores, max_det)


@pytest.mark.parametrize("alike", [0, 1, 40])
def test_block_order_with_long_runs_of_scores_alike_in_their_first_bits(alike):
    """Runs of more than 32 scores that share their first 32 differing bits (sorted whole),
    as ties (alike=0) or with 1 or 40 values after those bits, among float32 scores and -inf."""
    rng = np.random.default_rng(alike)
    scores = rng.random(3000).astype(np.float32).astype(np.float64)
    scores[rng.integers(0, len(scores), 1500)] = 0.5 + rng.integers(0, alike + 1, 1500) * 2.0 ** -53
    scores[rng.integers(0, len(scores), 20)] = -math.inf
    block = rng.integers(-1, 30, len(scores))
    for max_det in (1, 7, 3000):
        _assert_block_order(block, scores, max_det)


def test_block_order_with_block_keys_either_side_of_32_bits():
    """Block keys up to 2 ** 32 - 1 go with their positions in one word, 2 ** 32 and beyond
    apart: both orders agree with numpy's next to each other."""
    rng = np.random.default_rng(0)
    keys = np.array([0, 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 33])
    scores = rng.random(400).astype(np.float32).astype(np.float64)
    for top in (4, 5, 6, len(keys)):
        _assert_block_order(rng.choice(keys[:top], len(scores)), scores, 5)


def test_descending_order_on_large_inputs_with_ties_and_nans():
    from ochuman.eval.blocks import descending_order

    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200_000), rng.integers(1, 4))
    scores[rng.integers(0, len(scores), 500)] = np.nan
    scores[rng.integers(0, len(scores), 500)] = -0.0
    scores[rng.integers(0, len(scores), 50)] = -np.inf
    assert descending_order(scores).tolist() == np.argsort(-scores, kind="stable").tolist()
    noisy = rng.random(300_000).astype(np.float32).astype(np.float64)  # detector scores: float32 in float64
    assert descending_order(noisy).tolist() == np.argsort(-noisy, kind="stable").tolist()


def test_errors_in_worker_threads_reach_the_caller(monkeypatch):
    import ochuman.parallel as parallel

    monkeypatch.setattr(parallel, "worker_count", lambda: 2)

    def fail(lo, hi):
        if lo > 0:
            raise MemoryError("from a worker")

    with pytest.raises(MemoryError, match="from a worker"):
        parallel.run_chunks(fail, np.ones(10), min_weight=1)


@pytest.mark.differential
@pytest.mark.parametrize("workers, fake_cuts", [(2, False), (3, False), (2, True)])
def test_large_files_scanned_in_parts_equal_one_scan(monkeypatch, workers, fake_cuts):
    import ochuman.scan as scan

    monkeypatch.setattr(scan, "worker_count", lambda: workers)
    rng = np.random.default_rng(0)
    records = [{"image_id": int(rng.integers(1, 100)), "category_id": 1, "score": float(rng.random()),
                "keypoints": np.round(rng.uniform(0, 500, 51), 2).tolist(),
                "note": "a },{ b" if fake_cuts else "x"}  # record-boundary look-alikes inside strings
               for k in range(12000)]
    for indent in (None, 1):
        data = json.dumps(records, indent=indent).encode()
        assert len(data) >= 4_000_000
        whole = _evalcore.scan_results(data, 0, len(data))
        assert whole is not None and scan_results(data) == whole
        assert np.frombuffer(whole[0], np.int64).tolist() == [r["image_id"] for r in records]


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_threaded_parts_give_the_same_arrays(monkeypatch, iou_type):
    """IoU blocks, matching rows and accumulation area ranges split over threads (forced here:
    the real runs split only large jobs) give the arrays of one thread."""
    import ochuman.parallel as parallel
    from ochuman.eval.accumulation import evaluate
    from ..workloads import build_workload, engine_params, load_results, to_annotations

    workload = build_workload(iou_type, 4)
    gt_dict = workload["gt"]
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, workload["results"]), iou_type, gt_dict["images"], is_gt=False)
    params = engine_params(gt_dict, iou_type)
    single = evaluate(gt, dt, params)
    original = parallel.run_chunks
    monkeypatch.setattr(parallel, "worker_count", lambda: 3)
    monkeypatch.setattr(parallel, "run_chunks", lambda function, weights, min_weight=0: original(function, weights, 1e-9))
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, workload["results"]), iou_type, gt_dict["images"], is_gt=False)
    threaded = evaluate(gt, dt, params)
    for name in ("precision", "recall", "scores", "stats"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(single, name), err_msg=name)
    assert (single.recall > 0).any()


@pytest.mark.differential
@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("workers", [1, 2, 3, 64])
def test_accumulation_by_category_or_area_range_equals_pycocotools(monkeypatch, iou_type, workers):
    """Accumulation units are (variant, category) when there are at least two categories per
    worker, else (variant, area range); both, cut into every unit (forced), equal pycocotools."""
    import ochuman.parallel as parallel
    from ochuman.eval.accumulation import evaluate
    from ..workloads import build_workload, engine_params, load_results, run_pycocotools, to_annotations

    per_image = tuple((int(g), int(d)) for g, d in np.random.default_rng(workers).integers(0, 9, (12, 2)))
    workload = build_workload(iou_type, 11, cat_ids=(1, 2, 3, 5, 8, 13, 21), per_image=per_image,
                              own_cat_p=0.7, extra_category=True, heavy=True)
    gt_dict = workload["gt"]
    original = parallel.run_chunks
    monkeypatch.setattr(parallel, "worker_count", lambda: workers)
    monkeypatch.setattr(parallel, "run_chunks", lambda function, weights, min_weight=0: original(function, weights, 1e-9))
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, workload["results"]), iou_type, gt_dict["images"], is_gt=False)
    ours = evaluate(gt, dt, engine_params(gt_dict, iou_type))
    stats, precision, recall = run_pycocotools(gt_dict, workload["results"], iou_type)
    np.testing.assert_array_equal(ours.precision, precision)
    np.testing.assert_array_equal(ours.recall, recall)
    np.testing.assert_array_equal(ours.stats, stats)
    assert (recall > 0).any() and (precision == -1).any()


@pytest.mark.parametrize("text, clean", [
    (r"0o", True), (r"ab\\\\c", True), (r"a\\", True), (r"\\\\", True), ("", True),
    (r"a\b", False), (r"a\\\b", False), (r"a\\\\\\\b", False), ("a b", False), ("azz", False),
    ("a/b", False), (r"a\u0030", False), ("é", False),
])
def test_rle_spans_clean_takes_only_the_alphabet_and_doubled_backslashes(text, clean):
    data = f'["{text}", "0"]'.encode()
    spans = np.array([[2, len(text.encode())], [len(data) - 3, 1]], dtype=np.int64)
    assert _evalcore.rle_spans_clean(data, spans) is clean


@settings(max_examples=300, deadline=None)
@given(universe=st.lists(st.integers(-5, 200_000), min_size=1, max_size=40).map(np.array), data=st.data())
def test_index_of_is_the_first_position_in_the_universe(universe, data):
    """The table lookup (dense non-negative ids) and the binary search give the first position."""
    from ochuman.eval.ground_truth import index_of

    values = np.array(data.draw(st.lists(st.sampled_from(universe.tolist()), max_size=30)), dtype=np.int64)
    expected = [universe.tolist().index(v) for v in values.tolist()]
    assert index_of(values, universe).tolist() == expected


@settings(max_examples=200, deadline=None)
@given(universe=st.lists(st.integers(-3, 10**6), max_size=60, unique=True),
       runs=st.lists(st.tuples(st.integers(-5, 10**6 + 5), st.integers(1, 400)), min_size=1, max_size=40),
       pick=st.booleans(), as_objects=st.booleans())
def test_positions_in_runs_are_those_found_one_by_one(universe, runs, pick, as_objects):
    """positions: values in runs of equal ones (looked up once per run) find what a search of
    each finds, ids outside the universe -1, with the table, binary search and object ids."""
    from ochuman.eval.blocks import positions

    universe = np.array(sorted(universe), dtype=np.int64)
    if pick and len(universe):  # mostly ids that are there
        runs = [(int(universe[v % len(universe)]), n) for v, n in runs]
    values = np.repeat(np.array([v for v, _ in runs], dtype=np.int64), [n for _, n in runs])
    index = {v: k for k, v in enumerate(universe.tolist())}
    expected = [index.get(v, -1) for v in values.tolist()]
    if as_objects:
        values, universe = values.astype(object), universe.astype(object)
    found = positions(values, universe)
    assert found.dtype == np.int64 and found.tolist() == expected


_COORDINATE = st.one_of(st.floats(-50, 700, allow_nan=False), st.sampled_from([0.0, -0.0, 320.0, 640.0, 479.5, 1e308,
                                                                               float("inf"), float("-inf"), float("nan")]))


@settings(max_examples=300, deadline=None)
@given(boxes=st.lists(st.tuples(_COORDINATE, _COORDINATE, _COORDINATE, _COORDINATE), max_size=30),
       sizes=st.lists(st.tuples(st.integers(1, 700), st.integers(1, 700)), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_box_centres_outside_is_numpys_comparison(boxes, sizes, seed):
    """box_centres_outside: a box whose centre lies outside [0, width] x [0, height] of its image,
    exactly as numpy computes the centre and compares (NaN never outside)."""
    bbox = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.array(sizes, dtype=np.int64)
    index = np.random.default_rng(seed).integers(0, len(sizes), len(bbox)).astype(np.int64)
    out = np.empty(len(bbox), np.uint8)
    with np.errstate(invalid="ignore", over="ignore"):
        x, y = bbox[:, 0] + bbox[:, 2] / 2, bbox[:, 1] + bbox[:, 3] / 2
        h, w = sizes[index, 0].astype(np.float64), sizes[index, 1].astype(np.float64)
        expected = (x < 0) | (y < 0) | (x > w) | (y > h)
    _evalcore.box_centres_outside(bbox, index, sizes, out)
    assert out.view(bool).tolist() == expected.tolist()


@settings(max_examples=300, deadline=None)
@given(joints=st.sampled_from([0, 1, 2, 7, 8, 9, 16, 17, 24, 25, 129, 300]), count=st.integers(0, 12),
       sizes=st.lists(st.tuples(st.integers(1, 700), st.integers(1, 700)), min_size=1, max_size=4),
       seed=st.integers(0, 2**32 - 1), odd=st.sampled_from([None, np.nan, np.inf, -np.inf, -0.0, 1e308]))
def test_keypoint_means_outside_is_numpys_mean(joints, count, sizes, seed, odd):
    """keypoint_means_outside: a detection whose mean keypoint x or y lies outside its image,
    with the means exactly as numpy's ``mean(axis=1)`` of the strided coordinates (its pairwise
    sum, blocks above 128 joints; NaN never outside), coordinates of every magnitude."""
    rng = np.random.default_rng(seed)
    keypoints = rng.standard_normal((count, 3 * joints)) * 10.0 ** rng.integers(-6, 4, (count, 3 * joints)) + 300
    if odd is not None and keypoints.size:
        keypoints.reshape(-1)[rng.integers(0, keypoints.size)] = odd
    sizes = np.array(sizes, dtype=np.int64)
    index = rng.integers(0, len(sizes), count).astype(np.int64)
    out = np.empty(count, np.uint8)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of no joints
        x, y = keypoints[:, 0::3].mean(axis=1), keypoints[:, 1::3].mean(axis=1)
        h, w = sizes[index, 0].astype(np.float64), sizes[index, 1].astype(np.float64)
        expected = (x < 0) | (y < 0) | (x > w) | (y > h)
        means = np.empty(count, np.uint8)
    _evalcore.keypoint_means_outside(keypoints, index, sizes, out)
    assert out.view(bool).tolist() == expected.tolist()
    # borderline: every detection's mean exactly on the image's edge, one ulp either side
    if count and joints:
        edge = np.nextafter(w, np.array([-np.inf, np.inf])[rng.integers(0, 2, count)])
        shifted = keypoints.copy()
        with np.errstate(invalid="ignore", over="ignore"):
            shifted[:, 0::3] += (edge - x)[:, None]
            x2 = shifted[:, 0::3].mean(axis=1)
            expected = (x2 < 0) | (y < 0) | (x2 > w) | (y > h)
        _evalcore.keypoint_means_outside(shifted, index, sizes, means)
        assert means.view(bool).tolist() == expected.tolist()
