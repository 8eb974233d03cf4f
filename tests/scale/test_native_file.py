"""The generated native file has OCHuman's scale and the real file's hard cases (spec section 1)."""
from __future__ import annotations

import numpy as np
import pytest

from ochuman.maxiou import max_iou_from_boxes_grouped

pytestmark = pytest.mark.scale


def test_counts_are_ochumans(native):
    facts = native.facts
    assert len(facts.file_name) == 5081 and len(facts.category) == 13360
    assert (facts.category >= 1).sum() == 10375 and facts.masked.sum() == 8110
    assert len(np.unique(facts.image_of[facts.masked])) == 4731
    assert (facts.split == "val").sum() == 2500 and (facts.split == "test").sum() == 2231


def test_max_iou_is_the_official_box_measure_with_exact_duplicates(native):
    facts = native.facts
    recomputed = max_iou_from_boxes_grouped(facts.bbox, facts.image_of).astype(np.float32)
    np.testing.assert_array_equal(facts.max_iou, recomputed)
    assert (facts.max_iou[facts.category >= 1] > 0.5).all()
    assert ((facts.max_iou == 1.0) & facts.masked).sum() >= 20
    # images whose masked persons are all twins: the official files drop them, in both splits
    masked_images = np.unique(facts.image_of[facts.masked])
    twin_only = [k for k in masked_images if (facts.max_iou[(facts.image_of == k) & facts.masked] == 1.0).all()]
    assert {"val", "test"} <= set(facts.split[twin_only])
    assert 0.55 < facts.max_iou.mean() < 0.65 and 0.64 < facts.max_iou[facts.masked].mean() < 0.72


def test_holes_and_box_only_images(native):
    facts = native.facts
    assert (facts.holes[facts.masked] > 0).sum() > 100
    assert not facts.holes[~facts.masked].any()
    annotated = np.bincount(facts.image_of[facts.category >= 1], minlength=len(facts.file_name))
    assert (annotated == 0).sum() > 10  # images holding only box-only persons
