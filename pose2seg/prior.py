"""The skeleton-prior floor: a person's mask drawn from its keypoints alone, no learning.

Limbs become capsules (thick segments with round ends), the torso the polygon of shoulders and
hips, the head an ellipse around the face points; all sizes scale with the person (its torso,
or the spread of its keypoints). Every learned model must beat it. numpy + OpenCV only: it runs
without torch (``make demo``).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ochuman.keypoints import COCO_KEYPOINT_NAMES

_J = {name: k for k, name in enumerate(COCO_KEYPOINT_NAMES)}
#: (joint a, joint b, width as a fraction of the person scale)
LIMBS = (
    ("left_shoulder", "left_elbow", 0.30), ("left_elbow", "left_wrist", 0.24),
    ("right_shoulder", "right_elbow", 0.30), ("right_elbow", "right_wrist", 0.24),
    ("left_hip", "left_knee", 0.42), ("left_knee", "left_ankle", 0.32),
    ("right_hip", "right_knee", 0.42), ("right_knee", "right_ankle", 0.32),
    ("left_shoulder", "right_shoulder", 0.30), ("left_hip", "right_hip", 0.40),
    ("left_shoulder", "left_hip", 0.36), ("right_shoulder", "right_hip", 0.36),
)
FACE = ("nose", "left_eye", "right_eye", "left_ear", "right_ear")
HEAD_RADIUS = 0.38  # fraction of the person scale


def person_scale(keypoints: np.ndarray) -> float:
    """Size of a person in pixels: the torso height (shoulder centre to hip centre) when known,
    else half the diagonal of its labelled keypoints' extent. keypoints (17, 3)."""
    labelled = keypoints[:, 2] > 0

    def centre(names):
        idx = [_J[n] for n in names if labelled[_J[n]]]
        return keypoints[idx, :2].mean(axis=0) if idx else None

    shoulders, hips = centre(("left_shoulder", "right_shoulder")), centre(("left_hip", "right_hip"))
    if shoulders is not None and hips is not None:
        torso = float(np.linalg.norm(shoulders - hips))
        if torso > 1:
            return torso
    points = keypoints[labelled, :2]
    if len(points) >= 2:
        return max(float(np.linalg.norm(points.max(axis=0) - points.min(axis=0))) / 2, 4.0)
    return 8.0


def skeleton_prior_mask(keypoints: np.ndarray, height: int, width: int,
                        scale: Optional[float] = None) -> np.ndarray:
    """One person's mask from its COCO keypoints (17, 3). Returns (height, width) uint8 0/1."""
    import cv2

    mask = np.zeros((height, width), dtype=np.uint8)
    labelled = keypoints[:, 2] > 0
    if not labelled.any():
        return mask
    s = scale or person_scale(keypoints)
    shift = 4  # sub-pixel precision for OpenCV drawing
    to_int = lambda p: tuple(int(round(v * (1 << shift))) for v in p)  # noqa: E731
    torso = [_J[n] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip") if labelled[_J[n]]]
    if len(torso) >= 3:
        cv2.fillPoly(mask, [np.array([to_int(keypoints[k, :2]) for k in torso], dtype=np.int32)], 1,
                     lineType=cv2.LINE_8, shift=shift)
    for a, b, fraction in LIMBS:
        ia, ib = _J[a], _J[b]
        if labelled[ia] and labelled[ib]:
            thickness = max(int(round(fraction * s)), 1)
            cv2.line(mask, to_int(keypoints[ia, :2]), to_int(keypoints[ib, :2]), 1, thickness,
                     lineType=cv2.LINE_8, shift=shift)
    for k in np.flatnonzero(labelled):
        cv2.circle(mask, to_int(keypoints[k, :2]), max(int(round(0.12 * s)), 1) << shift, 1, -1,
                   lineType=cv2.LINE_8, shift=shift)
    face = [_J[n] for n in FACE if labelled[_J[n]]]
    if face:
        centre = keypoints[face, :2].mean(axis=0)
        radius = HEAD_RADIUS * s
        axes = (int(round(radius * 0.85 * (1 << shift))), int(round(radius * (1 << shift))))
        cv2.ellipse(mask, to_int(centre), axes, 0, 0, 360, 1, -1, lineType=cv2.LINE_8, shift=shift)
    return mask
