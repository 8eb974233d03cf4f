"""Keypoint conventions: the 19 -> 17 map by name, visibility remap, skeleton, flips, sigmas."""
from __future__ import annotations

import numpy as np

from ochuman import keypoints as kp


def test_mapping_by_name():
    for coco_index, ochuman_index in enumerate(kp.OCHUMAN_TO_COCO_INDEX):
        assert kp.COCO_KEYPOINT_NAMES[coco_index] == kp.OCHUMAN_KEYPOINT_NAMES[ochuman_index]
    assert {"head", "neck"}.isdisjoint(kp.COCO_KEYPOINT_NAMES)


def test_visibility_remap_and_count():
    native = np.zeros((19, 3))
    names = kp.OCHUMAN_KEYPOINT_NAMES
    for name, code in (("nose", 1), ("left_eye", 2), ("right_eye", 3), ("head", 1), ("neck", 3)):
        native[names.index(name)] = (10.5, 20.25, code)
    coco = kp.ochuman_to_coco(native)
    visibility = dict(zip(kp.COCO_KEYPOINT_NAMES, coco[:, 2]))
    assert (visibility["nose"], visibility["left_eye"], visibility["right_eye"]) == (2, 2, 1)
    assert kp.num_labelled(coco) == 3  # head and neck are not counted
    assert coco[0, :2].tolist() == [10.5, 20.25]


def test_skeletons_and_flip_pairs():
    assert len(kp.COCO_SKELETON) == 19 and len(kp.OCHUMAN_SKELETON) == 21
    assert all(1 <= j <= 17 for pair in kp.COCO_SKELETON for j in pair)
    assert all(1 <= j <= 19 for pair in kp.OCHUMAN_SKELETON for j in pair)
    for left, right in kp.COCO_FLIP_PAIRS:
        assert kp.COCO_KEYPOINT_NAMES[left].replace("left_", "right_") == kp.COCO_KEYPOINT_NAMES[right]
    assert len(kp.COCO_FLIP_PAIRS) == 8 and len(kp.OCHUMAN_FLIP_PAIRS) == 8


def test_oks_sigmas_are_pycocotools():
    from pycocotools.cocoeval import Params

    np.testing.assert_array_equal(kp.COCO_OKS_SIGMAS, Params(iouType="keypoints").kpt_oks_sigmas)
