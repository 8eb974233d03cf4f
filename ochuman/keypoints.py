"""Keypoint conventions: OCHuman's 19-point order, COCO's 17-point order and the map between them,
and the joint orders of keypoint detectors (OpenPose, AlphaPose) that map to COCO's.

Arrays of keypoints are ``(K, 3)`` or ``(N, K, 3)`` with columns ``(x, y, v)`` in image pixels.

Visibility codes
    OCHuman: 0 missing, 1 visible, 2 self-occluded, 3 occluded by another person.
    COCO:    0 not labelled, 1 labelled but not visible, 2 labelled and visible.

The official converter (OCHumanApi ``toCocoFormart``) maps OCHuman 1 -> 2, 2 -> 2, 3 -> 1,
0 -> 0, keeps x and y unchanged, and drops ``head`` and ``neck``. That is the only 19 -> 17
rule used anywhere in this package.
"""
from __future__ import annotations

import numpy as np

OCHUMAN_KEYPOINT_NAMES: tuple[str, ...] = (
    "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle",
    "left_hip", "left_knee", "left_ankle",
    "head", "neck",
    "right_ear", "left_ear", "nose", "right_eye", "left_eye",
)

OCHUMAN_VISIBILITY_CODES: dict[str, int] = {
    "missing": 0, "vis": 1, "self_occluded": 2, "others_occluded": 3,
}

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)

NUM_OCHUMAN_KEYPOINTS = len(OCHUMAN_KEYPOINT_NAMES)
NUM_COCO_KEYPOINTS = len(COCO_KEYPOINT_NAMES)

#: OCHuman index of each COCO joint, in COCO order (head and neck have no COCO joint).
OCHUMAN_TO_COCO_INDEX: np.ndarray = np.array(
    [OCHUMAN_KEYPOINT_NAMES.index(name) for name in COCO_KEYPOINT_NAMES], dtype=np.intp
)

#: COCO visibility of each OCHuman code, indexed by the OCHuman code.
OCHUMAN_TO_COCO_VISIBILITY: np.ndarray = np.array([0, 2, 2, 1], dtype=np.int64)

#: COCO skeleton, 1-based joint pairs, exactly as in COCO's person category.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)

#: OCHuman limbs as drawn by OCHumanApi ``vis.py``, 1-based into the 19-point order.
OCHUMAN_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 19), (13, 17), (4, 5), (19, 17), (17, 14), (5, 6), (17, 18), (14, 4), (1, 2),
    (18, 15), (14, 1), (2, 3), (4, 10), (1, 7), (10, 7), (10, 11), (7, 8), (11, 12),
    (8, 9), (16, 4), (15, 1),
)


def _flip_pairs(names: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    pairs = []
    for i, name in enumerate(names):
        if name.startswith("left_"):
            pairs.append((i, names.index("right_" + name[len("left_"):])))
    return tuple(pairs)


#: 0-based (left, right) index pairs swapped by a horizontal flip.
COCO_FLIP_PAIRS: tuple[tuple[int, int], ...] = _flip_pairs(COCO_KEYPOINT_NAMES)
OCHUMAN_FLIP_PAIRS: tuple[tuple[int, int], ...] = _flip_pairs(OCHUMAN_KEYPOINT_NAMES)

#: Per-joint OKS sigmas of the COCO keypoint metric (pycocotools ``Params.kpt_oks_sigmas``).
COCO_OKS_SIGMAS: np.ndarray = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
     0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0


#: OpenPose's BODY_25 joints (its ``pose_keypoints_2d`` order), COCO names where COCO has the joint.
OPENPOSE_BODY_25_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist", "mid_hip",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
    "left_big_toe", "left_small_toe", "left_heel", "right_big_toe", "right_small_toe", "right_heel",
)

#: OpenPose's COCO-18 joints (its COCO model): COCO's 17 in another order, plus the neck.
OPENPOSE_COCO_18_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist",
    "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
    "right_eye", "left_eye", "right_ear", "left_ear",
)

#: OpenPose layouts by joint count: (name, joint names).
OPENPOSE_LAYOUTS: dict[int, tuple[str, tuple[str, ...]]] = {
    25: ("BODY_25", OPENPOSE_BODY_25_NAMES), 18: ("COCO-18", OPENPOSE_COCO_18_NAMES),
}

#: Layouts whose first 17 joints are COCO's, in COCO's order, by joint count (AlphaPose's
#: COCO, Halpe-26 and Halpe-136 models, COCO-WholeBody).
COCO_PREFIX_LAYOUTS: dict[int, str] = {17: "COCO", 26: "Halpe-26", 133: "COCO-WholeBody", 136: "Halpe-136"}


def coco_prefix(values: list) -> list:
    """A flat [x, y, v] * K keypoint list cut to COCO's 17 joints when its layout begins with them
    (K in :data:`COCO_PREFIX_LAYOUTS`); any other length is returned as it is."""
    count, rest = divmod(len(values), 3)
    return values[:3 * NUM_COCO_KEYPOINTS] if not rest and count in COCO_PREFIX_LAYOUTS else values


def coco_index_in(names: tuple[str, ...]) -> np.ndarray:
    """(17,) index into ``names`` of each COCO joint, in COCO order (every COCO name must be there)."""
    return np.array([names.index(name) for name in COCO_KEYPOINT_NAMES], dtype=np.intp)


def ochuman_to_coco(keypoints: np.ndarray) -> np.ndarray:
    """Map OCHuman keypoints to COCO order and visibility with the official rule.

    keypoints: (..., 19, 3) with OCHuman codes 0..3. Returns (..., 17, 3) float64 with COCO
    codes 0..2; x and y are copied unchanged (a missing point keeps its stored coordinates).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    coco = keypoints[..., OCHUMAN_TO_COCO_INDEX, :].copy()
    coco[..., 2] = OCHUMAN_TO_COCO_VISIBILITY[coco[..., 2].astype(np.int64)]
    return coco


def num_labelled(keypoints: np.ndarray) -> np.ndarray:
    """Count joints with visibility > 0.

    keypoints: (..., K, 3). Returns (...) int64. For COCO keypoints made by
    :func:`ochuman_to_coco` this equals the official ``num_keypoints``.
    """
    return np.count_nonzero(np.asarray(keypoints)[..., 2] > 0, axis=-1)



def read_oks_sigmas(text: str) -> np.ndarray:
    """OKS sigmas for ``--kpt-sigmas``: a comma-separated list (``0.26,0.25,...``) or a file
    holding a JSON list or numbers separated by commas or whitespace. (K,) float64, each finite
    and positive; an :class:`~ochuman.errors.OCHumanError` naming the file (or the list) otherwise."""
    import json
    import os
    import re

    from ochuman.errors import OCHumanError

    source, content = "--kpt-sigmas", text
    if os.path.exists(text) or not re.fullmatch(r"[0-9.,eE+\- \t]+", text):
        source = text
        try:
            with open(text, encoding="utf-8") as handle:
                content = handle.read()
        except (OSError, UnicodeDecodeError) as err:
            raise OCHumanError(f"{text}: cannot read OKS sigmas: {getattr(err, 'strerror', None) or err}") from None
    try:
        values = json.loads(content) if content.lstrip().startswith("[") else \
            [float(v) for v in content.replace(",", " ").split()]
        sigmas = np.asarray(values, dtype=np.float64).reshape(-1)
    except (ValueError, TypeError):
        raise OCHumanError(f"{source}: OKS sigmas must be numbers (a JSON list, or separated by commas)") from None
    if len(sigmas) == 0 or not (np.isfinite(sigmas) & (sigmas > 0)).all():
        raise OCHumanError(f"{source}: OKS sigmas must be finite positive numbers, one per keypoint, got {values!r}"[:300])
    return sigmas
