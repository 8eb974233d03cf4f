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


def _clip_segment(p: np.ndarray, q: np.ndarray, lo: float, hi_x: float, hi_y: float):
    """The part of segment p-q inside the box [lo, hi_x] x [lo, hi_y] (Liang-Barsky), or None."""
    d = q - p
    t0, t1 = 0.0, 1.0
    for delta, start, low, high in ((d[0], p[0], lo, hi_x), (d[1], p[1], lo, hi_y)):
        if delta == 0:
            if not low <= start <= high:
                return None
            continue
        a, b = (low - start) / delta, (high - start) / delta
        t0, t1 = max(t0, min(a, b)), min(t1, max(a, b))
        if t0 > t1:
            return None
    return p + t0 * d, p + t1 * d


def _clip_polygon(points: np.ndarray, lo: float, hi_x: float, hi_y: float) -> np.ndarray:
    """``points`` (K, 2) clipped to the box [lo, hi_x] x [lo, hi_y] (Sutherland-Hodgman)."""
    out = [tuple(p) for p in points]
    for axis, bound, keep_below in ((0, lo, False), (0, hi_x, True), (1, lo, False), (1, hi_y, True)):
        inside = (lambda v: v[axis] <= bound) if keep_below else (lambda v: v[axis] >= bound)
        clipped = []
        for k, current in enumerate(out):
            previous = out[k - 1]
            if inside(current) != inside(previous):
                t = (bound - previous[axis]) / (current[axis] - previous[axis])
                clipped.append(tuple(previous[i] + t * (current[i] - previous[i]) for i in (0, 1)))
            if inside(current):
                clipped.append(current)
        out = clipped
        if not out:
            break
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def skeleton_prior_mask(keypoints: np.ndarray, height: int, width: int,
                        scale: Optional[float] = None) -> np.ndarray:
    """One person's mask from its COCO keypoints (17, 3). Returns (height, width) uint8 0/1.

    Keypoints may lie anywhere (far outside the image, a detector's garbage): the scale is
    capped at twice the image's perimeter, and every shape is clipped to a box around the
    image wide enough that what falls inside the image is unchanged."""
    import cv2

    mask = np.zeros((height, width), dtype=np.uint8)
    labelled = (keypoints[:, 2] > 0) & np.isfinite(keypoints[:, :2]).all(axis=1)
    if not labelled.any():
        return mask
    s = min(scale or person_scale(np.where(labelled[:, None], keypoints, 0)), 4.0 * (height + width))
    margin = s + 2  # beyond every limb's half width and every disc's radius
    lo, hi_x, hi_y = -margin, width + margin, height + margin
    inside = lambda p: lo <= p[0] <= hi_x and lo <= p[1] <= hi_y  # noqa: E731
    shift = 4  # sub-pixel precision for OpenCV drawing
    to_int = lambda p: tuple(int(round(v * (1 << shift))) for v in p)  # noqa: E731
    torso = [_J[n] for n in ("left_shoulder", "right_shoulder", "right_hip", "left_hip") if labelled[_J[n]]]
    if len(torso) >= 3:
        polygon = _clip_polygon(keypoints[torso, :2], lo, hi_x, hi_y)
        if len(polygon) >= 3:
            cv2.fillPoly(mask, [np.array([to_int(p) for p in polygon], dtype=np.int32)], 1,
                         lineType=cv2.LINE_8, shift=shift)
    for a, b, fraction in LIMBS:
        ia, ib = _J[a], _J[b]
        if labelled[ia] and labelled[ib]:
            segment = _clip_segment(keypoints[ia, :2], keypoints[ib, :2], lo, hi_x, hi_y)
            if segment is not None:
                thickness = max(int(round(fraction * s)), 1)
                cv2.line(mask, to_int(segment[0]), to_int(segment[1]), 1, thickness, lineType=cv2.LINE_8,
                         shift=shift)
    for k in np.flatnonzero(labelled):
        if inside(keypoints[k, :2]):
            cv2.circle(mask, to_int(keypoints[k, :2]), max(int(round(0.12 * s)), 1) << shift, 1, -1,
                       lineType=cv2.LINE_8, shift=shift)
    face = [_J[n] for n in FACE if labelled[_J[n]]]
    centre = keypoints[face, :2].mean(axis=0) if face else None
    if centre is not None and np.isfinite(centre).all() and inside(centre):
        radius = HEAD_RADIUS * s
        axes = (int(round(radius * 0.85 * (1 << shift))), int(round(radius * (1 << shift))))
        cv2.ellipse(mask, to_int(centre), axes, 0, 0, 360, 1, -1, lineType=cv2.LINE_8, shift=shift)
    return mask
