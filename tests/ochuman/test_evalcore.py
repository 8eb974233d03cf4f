"""The compiled core's RLE decoding: runs, areas, pixel totals and boxes against pycocotools."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from ochuman.evaluate import DecodedMasks


@settings(max_examples=300, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0, 1), seed=st.integers(0, 2**31 - 1),
       fill_from=st.integers(0, 40))
def test_decode_matches_pycocotools(h, w, density, seed, fill_from):
    rng = np.random.default_rng(seed)
    bitmap = (rng.random((h, w)) < density).astype(np.uint8)
    bitmap[:, min(fill_from, w):] |= rng.random() < 0.3  # long runs spanning columns
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    decoded = DecodedMasks([rle["counts"].decode()], np.array([h]))
    ys, xs = np.nonzero(bitmap)
    expected_box = [xs.min(), ys.min(), xs.max(), ys.max()] if len(xs) else [0, 0, -1, -1]
    assert decoded.boxes[0].tolist() == [int(v) for v in expected_box]
    assert decoded.areas[0] == bitmap.sum() == mask_utils.area(rle)
    assert decoded.totals[0] == h * w
    runs = decoded.runs[decoded.offsets[0]:decoded.offsets[1]]
    flat = np.repeat(np.arange(len(runs)) % 2, runs).astype(np.uint8)
    np.testing.assert_array_equal(flat, bitmap.flatten(order="F"))


def test_truncated_string_is_named():
    with pytest.raises(ValueError, match="RLE counts 1: truncated"):
        DecodedMasks(["0", "P"], np.array([1, 1]))  # 'P' has the continuation bit and no follower
