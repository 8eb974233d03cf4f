"""pose2seg.skeleton: the 55 skeleton channels vs a per-person, per-joint, per-pixel reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ochuman.keypoints import COCO_KEYPOINT_NAMES
from pose2seg.skeleton import LIMBS, NUM_SKELETON_CHANNELS, skeleton_features

# spec 5.7, written out by name so the table above is checked, not copied
SPEC_LIMBS = [("nose", "left_eye"), ("nose", "right_eye"), ("left_eye", "right_eye"),
              ("left_eye", "left_ear"), ("right_eye", "right_ear"), ("left_ear", "left_shoulder"),
              ("right_ear", "right_shoulder"), ("left_shoulder", "right_shoulder"),
              ("left_shoulder", "left_elbow"), ("left_shoulder", "left_hip"),
              ("right_shoulder", "right_elbow"), ("right_shoulder", "right_hip"),
              ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"), ("left_hip", "right_hip"),
              ("left_hip", "left_knee"), ("right_hip", "right_knee"), ("left_knee", "left_ankle"),
              ("right_knee", "right_ankle")]


def ref_skeleton(kp: np.ndarray, size: int, sigma: float = 3.0, v1_sign: bool = True) -> np.ndarray:
    """Spec 5.7 for one person: every joint, every limb, every pixel."""
    out = np.zeros((55, size, size))
    for j in range(17):
        x, y, v = kp[j]
        if not v > 0:
            continue
        for py in range(size):
            for px in range(size):
                e = ((px - x) ** 2 + (py - y) ** 2) / (2 * sigma * sigma)
                if e < 4.6025:
                    out[j, py, px] = -math.exp(-e) if (v == 1 and v1_sign) else math.exp(-e)
    for k, (a, b) in enumerate(LIMBS):
        (ax, ay, va), (bx, by, vb) = kp[a], kp[b]
        if not (va > 0 and vb > 0):
            continue
        length = math.sqrt((bx - ax) * (bx - ax) + (by - ay) * (by - ay))
        if length == 0:
            continue
        ux, uy = (bx - ax) / length, (by - ay) / length
        x_lo, x_hi = max(int(round(min(ax, bx) - 1)), 0), min(int(round(max(ax, bx) + 1)), size)
        y_lo, y_hi = max(int(round(min(ay, by) - 1)), 0), min(int(round(max(ay, by) + 1)), size)
        for py in range(y_lo, y_hi):
            for px in range(x_lo, x_hi):
                if abs((px - ax) * uy - (py - ay) * ux) < 1:
                    out[17 + 2 * k, py, px] = ux
                    out[18 + 2 * k, py, px] = uy
    return out


def _random_keypoints(rng, n, size):
    kp = np.zeros((n, 17, 3))
    kp[..., :2] = rng.uniform(-10, size + 10, (n, 17, 2))
    half = rng.uniform(0, 1, (n, 17, 2)) < 0.25  # some at k + 0.5: round() ties, half to even
    kp[..., :2] = np.where(half, np.floor(kp[..., :2]) + 0.5, kp[..., :2])
    kp[..., 2] = rng.choice([0.0, 1.0, 2.0, 2.0], (n, 17))
    kp[0, 2] = kp[0, 1]  # a zero-length limb (left_eye - right_eye)
    kp[0, 1:3, 2] = 2.0
    kp[1, 5:7] = [[7.0, 9.0, 2.0], [15.0, 9.0, 1.0]]  # horizontal limb on the pixel grid
    return kp


def test_limb_table_is_the_spec():
    assert LIMBS == tuple((COCO_KEYPOINT_NAMES.index(a), COCO_KEYPOINT_NAMES.index(b)) for a, b in SPEC_LIMBS)
    assert NUM_SKELETON_CHANNELS == 55


@pytest.mark.parametrize("v1_sign", [True, False])
def test_matches_reference(v1_sign):
    rng = np.random.default_rng(int(v1_sign))
    size = 20
    kp = _random_keypoints(rng, 12, size)
    ours = skeleton_features(torch.tensor(kp), size=size, official_v1_sign=v1_sign)
    assert ours.shape == (12, 55, size, size) and ours.dtype == torch.float64
    for n in range(12):
        np.testing.assert_allclose(ours[n].numpy(), ref_skeleton(kp[n], size, v1_sign=v1_sign),
                                   rtol=0, atol=1e-12, err_msg=f"person {n}")


def test_matches_reference_full_size_float32():
    rng = np.random.default_rng(9)
    kp = _random_keypoints(rng, 2, 64)
    kp[..., :2] = np.round(kp[..., :2] * 4) / 4  # exact in float32 too
    ours = skeleton_features(torch.tensor(kp, dtype=torch.float32))
    assert ours.shape == (2, 55, 64, 64) and ours.dtype == torch.float32
    for n in range(2):
        np.testing.assert_allclose(ours[n].numpy(), ref_skeleton(kp[n], 64), rtol=0, atol=1e-6)


def test_channel_layout_and_signs():
    kp = np.zeros((1, 17, 3))
    kp[0, 5] = (20.0, 30.0, 2.0)  # left_shoulder, visible
    kp[0, 7] = (20.0, 40.0, 1.0)  # left_elbow, labelled not visible
    out = skeleton_features(torch.tensor(kp))[0]
    assert out[5, 30, 20] == 1.0 and out[7, 40, 20] == -1.0  # peaks at the joints, v = 1 negated
    assert out[5].min() == 0 and out[7].max() == 0
    k = LIMBS.index((5, 7))
    paf = out[17:].reshape(19, 2, 64, 64)
    drawn = [i for i in range(19) if paf[i].abs().sum() > 0]
    assert drawn == [k]
    # a vertical limb from y 30 to 40: x in [19, 21), y in [29, 41), distance < 1 -> column x = 20
    assert (paf[k, 0] == 0).all()
    assert torch.nonzero(paf[k, 1]).tolist() == [[y, 20] for y in range(29, 41)]
    assert (paf[k, 1][paf[k, 1] != 0] == 1.0).all()
    # the heat map reaches about 9.1 px: exp(-d^2 / 18) is cut where d^2 / 18 >= 4.6025
    row = out[5, 30]
    assert row[20 + 9] > 0 and row[20 + 10] == 0 and row[20 - 9] > 0 and row[20 - 10] == 0
    positive = skeleton_features(torch.tensor(kp), official_v1_sign=False)[0]
    assert positive[7, 40, 20] == 1.0


@pytest.mark.cuda
def test_missing_and_empty_and_devices():
    kp = torch.zeros((3, 17, 3))
    assert not skeleton_features(kp).any()
    assert skeleton_features(torch.zeros((0, 17, 3))).shape == (0, 55, 64, 64)
    assert skeleton_features(torch.zeros((1, 17, 3), dtype=torch.int64), size=8).dtype == torch.float32
    with pytest.raises(ValueError, match=r"expected shape \(N, 17, 3\)"):
        skeleton_features(torch.zeros((2, 17, 2)))
    if torch.cuda.is_available():
        rng = np.random.default_rng(0)
        kp = torch.tensor(_random_keypoints(rng, 4, 64))
        torch.testing.assert_close(skeleton_features(kp.cuda()).cpu(), skeleton_features(kp))
