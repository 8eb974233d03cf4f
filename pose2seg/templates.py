"""Pose templates: k-means cluster centres of box-normalised COCO poses, as Pose2Seg uses them.

Convention owned here
    A template is ``(17, 3)`` float64 in COCO keypoint order (:data:`ochuman.keypoints.
    COCO_KEYPOINT_NAMES`): ``(x, y)`` in the unit square (the person's box, longer side scaled to
    1, shorter side centred) and ``v`` = the cluster mean of COCO visibility (0..2). A joint is
    *valid* in a template when ``v >= vis_threshold`` (0.4 in the official file; the paper says
    0.5; the code, which the released weights used, says ``>= 0.4``).

File format (the official ``modeling/templates.json``, shipped as
``pose2seg/data/official_templates.json``)::

    {"source": str (optional), "names": [17 COCO names], "flip_map": {"left_x": "right_x", ...},
     "vis_threshold": 0.4, "minpoints": 8, "templates": [[51 numbers], ...]}

``connections`` (the COCO skeleton, in some copies of the file) is accepted and ignored.

Candidates (what Affine-Align matches against, :func:`candidates`): every joint with
``v < vis_threshold`` becomes ``(0, 0, 0)``, then K more templates with the left/right *rows*
swapped per ``flip_map`` and the coordinates **not** mirrored: ``[T0, T1, T2, T0', T1', T2']``.

Clustering (:func:`cluster_templates`, the official ``cluster_pose.py``): each person's box
``[x, y, x + w - 1, y + h - 1]`` (clamped to the image when its size is given), translate by
``(x1, y1)``, scale by ``s = min(1 / (x2 - x1), 1 / (y2 - y1))``, add ``(1 - side * s) / 2`` to
centre the shorter side; add a mirrored copy (``x -> 1 - x``, L/R rows swapped); drop vectors
with fewer than ``min_points`` labelled joints (``v > 0``); put missing joints at
``(0.5, 0.5, 0)``; k-means on the 51-D vectors (``v`` included). Departures, all documented
in :func:`cluster_templates`: scikit-learn's k-means++ with 10 restarts instead of scipy's
``kmeans2(minit='points')``, float64 instead of float32, keypoints not truncated to int.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ochuman.errors import FormatError, OCHumanError
from ochuman.io import atomic_write
from ochuman.keypoints import COCO_FLIP_PAIRS, COCO_KEYPOINT_NAMES, NUM_COCO_KEYPOINTS

#: The packaged official templates (Pose2Seg ``modeling/templates.json``).
OFFICIAL_TEMPLATES_PATH: Path = Path(__file__).resolve().parent / "data" / "official_templates.json"

#: COCO flip map as ``(left_name, right_name)`` pairs, from :data:`ochuman.keypoints.COCO_FLIP_PAIRS`.
COCO_FLIP_MAP: tuple[tuple[str, str], ...] = tuple(
    (COCO_KEYPOINT_NAMES[left], COCO_KEYPOINT_NAMES[right]) for left, right in COCO_FLIP_PAIRS
)

_COCO_FLIP_INDEX = np.arange(NUM_COCO_KEYPOINTS)
for _left, _right in COCO_FLIP_PAIRS:
    _COCO_FLIP_INDEX[_left], _COCO_FLIP_INDEX[_right] = _right, _left

DEFAULT_VIS_THRESHOLD = 0.4
DEFAULT_MIN_POINTS = 8
_NUM_VALUES = NUM_COCO_KEYPOINTS * 3


@dataclass(frozen=True, eq=False)  # arrays break ==
class PoseTemplates:
    """K pose templates with the metadata of the official file.

    names: the 17 COCO keypoint names, in COCO order (nothing else is accepted: every op of
    :mod:`pose2seg` indexes joints in COCO order). templates: (K, 17, 3) float64, read-only
    copy. flip_map: ``(left_name, right_name)`` pairs (a ``{left: right}`` mapping is accepted).
    vis_threshold: joints with ``v < vis_threshold`` are invalid. min_points: the minimum number
    of labelled joints a person needed to be clustered (kept for the file). source: free text.
    """

    names: tuple[str, ...]
    templates: np.ndarray
    flip_map: tuple[tuple[str, str], ...] = COCO_FLIP_MAP
    vis_threshold: float = DEFAULT_VIS_THRESHOLD
    min_points: int = DEFAULT_MIN_POINTS
    source: str = field(default="")

    def __post_init__(self):
        names = tuple(self.names)
        if names != COCO_KEYPOINT_NAMES:
            raise ValueError(f"names: expected the 17 COCO keypoint names in COCO order "
                             f"({', '.join(COCO_KEYPOINT_NAMES[:3])}, ...), got {list(names)}")
        templates = np.array(self.templates, dtype=np.float64)
        if templates.ndim != 3 or templates.shape[1:] != (NUM_COCO_KEYPOINTS, 3) or len(templates) == 0:
            raise ValueError(f"templates: expected shape (K, 17, 3) with K >= 1, got {templates.shape}")
        if not np.isfinite(templates).all():
            raise ValueError("templates: not every value is finite")
        templates.setflags(write=False)
        pairs = self.flip_map.items() if isinstance(self.flip_map, Mapping) else self.flip_map
        pairs = tuple((str(left), str(right)) for left, right in pairs)
        seen: set[str] = set()
        for left, right in pairs:
            for name in (left, right):
                if name not in names:
                    raise ValueError(f"flip_map: unknown keypoint name {name!r}")
                if name in seen:
                    raise ValueError(f"flip_map: {name!r} appears twice")
                seen.add(name)
        if isinstance(self.vis_threshold, bool) or not math.isfinite(float(self.vis_threshold)):
            raise ValueError(f"vis_threshold: expected a finite number, got {self.vis_threshold!r}")
        if isinstance(self.min_points, bool) or int(self.min_points) != self.min_points or self.min_points < 0:
            raise ValueError(f"min_points: expected an integer >= 0, got {self.min_points!r}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "templates", templates)
        object.__setattr__(self, "flip_map", pairs)
        object.__setattr__(self, "vis_threshold", float(self.vis_threshold))
        object.__setattr__(self, "min_points", int(self.min_points))
        object.__setattr__(self, "source", str(self.source))

    def __len__(self) -> int:
        return len(self.templates)

    @property
    def flip_index(self) -> np.ndarray:
        """(17,) intp permutation: joint ``j`` of a flipped template is joint ``flip_index[j]``."""
        index = np.arange(NUM_COCO_KEYPOINTS)
        for left, right in self.flip_map:
            i, j = self.names.index(left), self.names.index(right)
            index[i], index[j] = j, i
        return index

    @property
    def valid(self) -> np.ndarray:
        """(K, 17) bool: ``v >= vis_threshold``."""
        return self.templates[..., 2] >= self.vis_threshold

    def to_dict(self) -> dict:
        """The official JSON schema (``source`` only when set)."""
        out: dict = {"source": self.source} if self.source else {}
        out.update({
            "names": list(self.names),
            "flip_map": {left: right for left, right in self.flip_map},
            "vis_threshold": self.vis_threshold,
            "minpoints": self.min_points,
            "templates": [[float(x) for x in t.reshape(-1)] for t in self.templates],
        })
        return out


# ------------------------------------------------------------------------------------- files
def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _parse(data: object, path: object) -> PoseTemplates:
    if not isinstance(data, dict):
        raise FormatError.at(path, "", f"expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("names", "flip_map", "vis_threshold", "minpoints", "templates") if k not in data]
    if missing:
        raise FormatError.at(path, "", f"missing key(s): {', '.join(missing)}")
    names = data["names"]
    if not isinstance(names, list) or tuple(names) != COCO_KEYPOINT_NAMES:
        raise FormatError.at(path, "names", "expected the 17 COCO keypoint names in COCO order "
                                            f"(nose, left_eye, right_eye, ...), got {names!r:.120}")
    flip_map = data["flip_map"]
    if not isinstance(flip_map, dict) or not all(isinstance(v, str) for v in flip_map.values()):
        raise FormatError.at(path, "flip_map", "expected an object of keypoint name -> keypoint name")
    seen: set = set()
    for left, right in flip_map.items():
        for name in (left, right):
            if name not in COCO_KEYPOINT_NAMES:
                raise FormatError.at(path, "flip_map", f"unknown keypoint name {name!r}")
            if name in seen:
                raise FormatError.at(path, "flip_map", f"{name!r} appears twice")
            seen.add(name)
    threshold = data["vis_threshold"]
    if not _number(threshold) or not math.isfinite(threshold):
        raise FormatError.at(path, "vis_threshold", f"expected a finite number, got {threshold!r}")
    min_points = data["minpoints"]
    if not isinstance(min_points, int) or isinstance(min_points, bool) or min_points < 0:
        raise FormatError.at(path, "minpoints", f"expected an integer >= 0, got {min_points!r}")
    templates = data["templates"]
    if not isinstance(templates, list) or not templates:
        raise FormatError.at(path, "templates", "expected a non-empty list of templates")
    for i, template in enumerate(templates):
        if not isinstance(template, list) or len(template) != _NUM_VALUES:
            got = f"{len(template)} values" if isinstance(template, list) else type(template).__name__
            raise FormatError.at(path, f"templates[{i}]",
                                 f"expected {_NUM_VALUES} numbers (17 joints x (x, y, v)), got {got}")
        bad = next((j for j, x in enumerate(template) if not _number(x) or not math.isfinite(x)), None)
        if bad is not None:
            raise FormatError.at(path, f"templates[{i}][{bad}]",
                                 f"expected a finite number, got {template[bad]!r}")
    source = data.get("source", "")
    if not isinstance(source, str):
        raise FormatError.at(path, "source", f"expected a string, got {type(source).__name__}")
    return PoseTemplates(
        names=tuple(names),
        templates=np.array(templates, dtype=np.float64).reshape(len(templates), NUM_COCO_KEYPOINTS, 3),
        flip_map=tuple(flip_map.items()), vis_threshold=float(threshold), min_points=min_points,
        source=source,
    )


def load_templates(path: Union[str, os.PathLike, None] = None) -> PoseTemplates:
    """Read a templates file (the official schema); None reads the packaged official file.

    Raises :class:`~ochuman.errors.FormatError` (one line naming the file and the key) on a
    malformed file, :class:`~ochuman.errors.OCHumanError` when it cannot be read.
    """
    path = OFFICIAL_TEMPLATES_PATH if path is None else Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise FormatError.at(path, "", f"not UTF-8 (byte {err.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError.at(path, "", f"not valid JSON: {err.msg} at line {err.lineno} "
                                       f"column {err.colno}") from None
    return _parse(data, path)


def save_templates(templates: PoseTemplates, path: Union[str, os.PathLike]) -> None:
    """Write ``templates`` in the official JSON schema, atomically (float64 values round-trip)."""
    text = json.dumps(templates.to_dict(), indent=1, allow_nan=False)
    with atomic_write(path) as handle:
        handle.write(text + "\n")


# -------------------------------------------------------------------------------- candidates
def candidates(templates: PoseTemplates) -> np.ndarray:
    """The 2K Affine-Align candidates ``[T0, .., TK-1, T0', .., TK-1']``.

    Returns (2K, 17, 3) float64: joints with ``v < vis_threshold`` are ``(0, 0, 0)``; the last
    K are the first K with left/right rows swapped per ``flip_map``, coordinates unchanged.
    """
    kept = np.array(templates.templates, dtype=np.float64)  # a writable copy
    kept[kept[..., 2] < templates.vis_threshold] = 0.0
    return np.concatenate([kept, kept[:, templates.flip_index]], axis=0)


# -------------------------------------------------------------------------------- clustering
def _check_poses(keypoints: np.ndarray, bbox_xywh: np.ndarray, image_wh) -> tuple:
    keypoints = np.asarray(keypoints, dtype=np.float64)
    bbox_xywh = np.asarray(bbox_xywh, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"keypoints: expected shape (N, 17, 3), got {keypoints.shape}")
    if bbox_xywh.shape != (len(keypoints), 4):
        raise ValueError(f"bbox_xywh: expected shape ({len(keypoints)}, 4), got {bbox_xywh.shape}")
    if image_wh is not None:
        image_wh = np.asarray(image_wh, dtype=np.float64)
        if image_wh.shape != (len(keypoints), 2):
            raise ValueError(f"image_wh: expected shape ({len(keypoints)}, 2), got {image_wh.shape}")
    return keypoints, bbox_xywh, image_wh


def normalise_poses(
    keypoints: np.ndarray,
    bbox_xywh: np.ndarray,
    min_points: int = DEFAULT_MIN_POINTS,
    image_wh: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Box-normalised poses and their mirrored copies, as clustered by :func:`cluster_templates`.

    keypoints: (N, 17, 3) COCO order, image pixels. bbox_xywh: (N, 4). image_wh: optional (N, 2)
    image width and height; when given, the box is clamped to ``[0, W - 1] x [0, H - 1]`` as the
    official loader does. Persons whose box has ``x2 <= x1`` or ``y2 <= y1`` are dropped, then
    vectors with no labelled joint or fewer than ``min_points``.

    Returns (M, 17, 3) float64: the kept originals (input order), then the kept mirrored copies
    (input order); missing joints (``v == 0``) are ``(0.5, 0.5, 0)``.
    """
    keypoints, bbox_xywh, image_wh = _check_poses(keypoints, bbox_xywh, image_wh)
    x1, y1 = bbox_xywh[:, 0], bbox_xywh[:, 1]
    x2, y2 = x1 + bbox_xywh[:, 2] - 1.0, y1 + bbox_xywh[:, 3] - 1.0
    if image_wh is not None:
        x1, x2 = (np.clip(c, 0.0, image_wh[:, 0] - 1.0) for c in (x1, x2))
        y1, y2 = (np.clip(c, 0.0, image_wh[:, 1] - 1.0) for c in (y1, y2))
    proper = (x2 > x1) & (y2 > y1)
    width = np.where(proper, x2 - x1, 1.0)
    height = np.where(proper, y2 - y1, 1.0)
    scale = np.minimum(1.0 / width, 1.0 / height)
    offset_x = (1.0 - width * scale) / 2.0
    offset_y = (1.0 - height * scale) / 2.0

    poses = keypoints.copy()
    poses[..., 0] = (keypoints[..., 0] - x1[:, None]) * scale[:, None] + offset_x[:, None]
    poses[..., 1] = (keypoints[..., 1] - y1[:, None]) * scale[:, None] + offset_y[:, None]
    mirrored = poses[:, _COCO_FLIP_INDEX].copy()
    mirrored[..., 0] = 1.0 - mirrored[..., 0]
    both = np.concatenate([poses, mirrored])
    labelled = np.count_nonzero(both[..., 2] > 0, axis=1)
    keep = np.tile(proper, 2) & (labelled > 0) & (labelled >= min_points)
    both = both[keep]
    both[both[..., 2] == 0] = (0.5, 0.5, 0.0)
    return both


def nearest_template(poses: np.ndarray, templates: PoseTemplates) -> np.ndarray:
    """Index of the template nearest to each pose in the 51-D k-means space.

    poses: (M, 17, 3) from :func:`normalise_poses`. Returns (M,) int64 (the k-means labels at
    convergence, so ``np.bincount`` gives the cluster sizes).
    """
    flat = np.asarray(poses, dtype=np.float64).reshape(len(poses), -1)
    centres = templates.templates.reshape(len(templates), -1)
    d2 = ((flat[:, None, :] - centres[None]) ** 2).sum(-1)
    return np.argmin(d2, axis=1).astype(np.int64)


def cluster_templates(
    keypoints: np.ndarray,
    bbox_xywh: np.ndarray,
    k: int = 3,
    seed: int = 0,
    min_points: int = DEFAULT_MIN_POINTS,
    image_wh: Optional[np.ndarray] = None,
) -> PoseTemplates:
    """Learn K pose templates with the paper's preprocessing and k-means.

    keypoints: (N, 17, 3) COCO order and visibility, image pixels. bbox_xywh: (N, 4) COCO boxes.
    image_wh: optional (N, 2), see :func:`normalise_poses`. Returns K templates ordered by
    cluster size (largest first; ties by the centre's values), vis_threshold 0.4, COCO flip map.

    k-means: scikit-learn ``KMeans(k, init="k-means++", n_init=10, random_state=seed)`` on the
    51-D vectors (``v`` included), deterministic for a seed; the official run used scipy
    ``kmeans2(k, minit='points', iter=100)`` once, on float32 vectors of int-truncated keypoints.
    Raises ValueError when fewer than ``k`` vectors survive the filters.
    """
    from sklearn.cluster import KMeans  # slow import, only when clustering

    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k: expected an integer >= 1, got {k!r}")
    poses = normalise_poses(keypoints, bbox_xywh, min_points=min_points, image_wh=image_wh)
    if len(poses) < k:
        raise ValueError(f"only {len(poses)} pose vectors (persons with >= {min_points} labelled "
                         f"keypoints, mirrored copies included) for k={k} clusters")
    flat = poses.reshape(len(poses), -1)
    model = KMeans(n_clusters=int(k), init="k-means++", n_init=10, random_state=seed).fit(flat)
    centres = model.cluster_centers_
    sizes = np.bincount(model.labels_, minlength=k)
    order = sorted(range(k), key=lambda i: (-sizes[i], tuple(centres[i])))
    return PoseTemplates(
        names=COCO_KEYPOINT_NAMES,
        templates=centres[order].reshape(k, NUM_COCO_KEYPOINTS, 3),
        flip_map=COCO_FLIP_MAP, vis_threshold=DEFAULT_VIS_THRESHOLD, min_points=min_points,
        source=f"k-means (k={k}, seed={seed}, scikit-learn k-means++, 10 restarts) on "
               f"{len(poses)} box-normalised pose vectors (mirrored copies included)",
    )


def compare_templates(learned: PoseTemplates, reference: PoseTemplates) -> list[dict]:
    """One row per learned template: the nearest reference template and how far it is.

    Distances are Euclidean in unit-square units between ``(x, y)`` of the raw centres:
    ``mean_dist`` over all 17 joints (the nearest reference minimises it), ``mean_dist_valid``
    over joints valid in both (NaN if none). ``invalid`` / ``reference_invalid``: names of the
    joints with ``v < vis_threshold``, comma-separated, ``-`` if none.
    """
    a, b = learned.templates[..., :2], reference.templates[..., :2]
    dist = np.linalg.norm(a[:, None] - b[None], axis=-1)  # (K, R, 17)
    mean = dist.mean(-1)
    rows = []
    for i in range(len(learned)):
        j = int(np.argmin(mean[i]))
        both = learned.valid[i] & reference.valid[j]
        rows.append({
            "template": i,
            "nearest_reference": j,
            "mean_dist": float(mean[i, j]),
            "mean_dist_valid": float(dist[i, j][both].mean()) if both.any() else float("nan"),
            "invalid": _names(~learned.valid[i]),
            "reference_invalid": _names(~reference.valid[j]),
        })
    return rows


def _names(mask: np.ndarray) -> str:
    return ", ".join(n for n, m in zip(COCO_KEYPOINT_NAMES, mask) if m) or "-"


__all__: Sequence[str] = (
    "COCO_FLIP_MAP", "OFFICIAL_TEMPLATES_PATH", "PoseTemplates", "candidates", "cluster_templates",
    "compare_templates", "load_templates", "nearest_template", "normalise_poses", "save_templates",
)
