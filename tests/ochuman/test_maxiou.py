"""MaxIoU against the authors' stored values and against slow loop references."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import ochuman
from ochuman.maxiou import (
    box_iou_matrix_inclusive, max_iou_from_boxes, max_iou_from_boxes_grouped, max_iou_from_masks,
)


def _loop_max_iou(boxes):
    """Spec section 4 written out pair by pair, in plain Python."""
    result = []
    for i, (ax1, ay1, ax2, ay2) in enumerate(boxes):
        best = 0.0
        for j, (bx1, by1, bx2, by2) in enumerate(boxes):
            if i == j:
                continue
            iw = max(0.0, min(ax2, bx2) - max(ax1, bx1) + 1)
            ih = max(0.0, min(ay2, by2) - max(ay1, by1) + 1)
            inter = iw * ih
            union = (ax2 - ax1 + 1) * (ay2 - ay1 + 1) + (bx2 - bx1 + 1) * (by2 - by1 + 1) - inter
            best = max(best, inter / union)
        result.append(best)
    return np.array(result)


def test_box_maxiou_equals_every_stored_value_exactly(native_sample):
    raw = json.loads(native_sample.read_text())
    stored = [p["max_iou"] for im in raw["images"] for p in im["annotations"]]
    dataset = ochuman.load(native_sample)
    assert len(stored) == len(dataset) == 29
    # Rounded to float32 as the authors stored it: bit-for-bit equal, all 29.
    assert np.array_equal(np.float32(dataset.max_iou_box), np.float32(stored))
    assert np.abs(dataset.max_iou_box - np.array(stored)).max() < 1e-7


def test_per_image_function_matches_stored_values(native_sample):
    raw = json.loads(native_sample.read_text())
    for image in raw["images"]:
        boxes = np.array([p["bbox"] for p in image["annotations"]], dtype=float)
        stored = np.float32([p["max_iou"] for p in image["annotations"]])
        assert np.array_equal(np.float32(max_iou_from_boxes(boxes)), stored)


def test_without_plus_one_the_stored_values_are_not_reproduced(native_sample):
    """Guards the convention itself: the COCO-style box IoU (no +1) is measurably off."""
    raw = json.loads(native_sample.read_text())
    worst = 0.0
    for image in raw["images"]:
        boxes = np.array([p["bbox"] for p in image["annotations"]], dtype=float)
        xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]
        iou = np.array(mask_utils.iou(xywh.tolist(), xywh.tolist(), [0] * len(xywh)))
        np.fill_diagonal(iou, 0)
        stored = np.array([p["max_iou"] for p in image["annotations"]])
        worst = max(worst, np.abs(iou.max(axis=1) - stored).max())
    assert worst > 1e-3


boxes_strategy = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(0, 40), st.integers(0, 40)),
    min_size=0, max_size=12,
)


@pytest.mark.differential
@settings(max_examples=200, deadline=None)
@given(boxes=boxes_strategy, groups=st.lists(st.integers(0, 3), min_size=12, max_size=12))
def test_grouped_equals_per_image_loop(boxes, groups):
    xyxy = np.array([(x, y, x + w, y + h) for x, y, w, h in boxes], dtype=float).reshape(-1, 4)
    group = np.array(groups[: len(boxes)])
    expected = np.zeros(len(boxes))
    for g in set(group.tolist()):
        idx = np.flatnonzero(group == g)
        expected[idx] = _loop_max_iou(xyxy[idx].tolist())
    np.testing.assert_allclose(max_iou_from_boxes_grouped(xyxy, group), expected, rtol=0, atol=1e-15)
    if len(boxes):
        np.testing.assert_allclose(max_iou_from_boxes(xyxy), _loop_max_iou(xyxy.tolist()), atol=1e-15)


@pytest.mark.differential
@settings(max_examples=200, deadline=None)
@given(boxes=st.lists(st.tuples(*[st.floats(-50, 50, allow_nan=False)] * 4), max_size=14),
       groups=st.lists(st.integers(0, 3), min_size=14, max_size=14), nan_at=st.integers(-1, 13))
def test_grouped_is_the_matrix_of_each_group_to_the_bit(boxes, groups, nan_at):
    """The compiled pairs give numpy's matrix values exactly, any coordinates (a NaN spreads as numpy's does)."""
    xyxy = np.array(boxes, dtype=float).reshape(-1, 4)
    if 0 <= nan_at < len(boxes):
        xyxy[nan_at, nan_at % 4] = np.nan
    group = np.array(groups[: len(boxes)])
    expected = np.zeros(len(boxes))
    for g in set(group.tolist()):
        idx = np.flatnonzero(group == g)
        with np.errstate(invalid="ignore"):
            expected[idx] = max_iou_from_boxes(xyxy[idx])
    np.testing.assert_array_equal(max_iou_from_boxes_grouped(xyxy, group), expected)


def test_edge_cases():
    assert max_iou_from_boxes(np.zeros((0, 4))).shape == (0,)
    assert max_iou_from_boxes(np.array([[0, 0, 9, 9]])).tolist() == [0.0]  # alone
    same = max_iou_from_boxes(np.array([[0, 0, 9, 9], [0, 0, 9, 9]]))
    assert same.tolist() == [1.0, 1.0]
    # Touching boxes share a pixel row under the inclusive convention.
    touching = box_iou_matrix_inclusive(np.array([[0, 0, 9, 9], [9, 0, 18, 9]]))
    assert touching[0, 1] == 10 / (100 + 100 - 10)


def test_mask_maxiou_matches_bitmap_reference(native_sample):
    dataset = ochuman.load(native_sample)
    observed = dataset.max_iou_mask
    for idx in dataset.persons_by_image():
        masked = [i for i in idx if dataset.has_mask[i]]
        bitmaps = [mask_utils.decode(dataset.rles[i]).astype(bool) for i in masked]
        for a, i in enumerate(masked):
            best = 0.0
            for b, _ in enumerate(masked):
                if a != b:
                    union = (bitmaps[a] | bitmaps[b]).sum()
                    best = max(best, (bitmaps[a] & bitmaps[b]).sum() / union if union else 0.0)
            assert observed[i] == best or abs(observed[i] - best) < 1e-12
        for i in idx:
            if not dataset.has_mask[i]:
                assert np.isnan(observed[i])
    assert max_iou_from_masks([]).shape == (0,)
