"""Ground truth and detections as columns: :class:`Annotations` (N parallel arrays), whose
masks are a :class:`~ochuman.rle.MaskTable` (compressed RLE strings in one buffer)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ochuman.rle import MaskTable

__all__ = ["Annotations", "MaskTable", "mask_table"]


@dataclass(frozen=True, eq=False)
class Annotations:
    """Ground truth or detections as parallel arrays of length N.

    image_id (N,) ids as the file gives them; category_id (N,) int64; ann_id (N,) int64;
    bbox (N, 4) float64 xywh; area (N,) float64; iscrowd (N,) bool; score (N,) float64
    (1.0 for ground truth); counts: N compressed RLE ``counts`` strings (segm only, else None);
    mask_size (N, 2) [h, w]; keypoints (N, 3K) float64 (keypoints only, else None);
    num_keypoints (N,) int64 or float64 (ground truth, keypoints only: 0 makes an ignore
    region); file_image_ids: every image id of the ground-truth file, annotated or not (images
    without annotations still collect false positives); None: the images of the annotations.
    masks: ``counts`` as a :class:`MaskTable`. ignore (N,) bool: which are ignore regions where
    that is not ``iscrowd`` (the drop-in's ``iscrowd: 0.5``: pycocotools' ``bool()`` makes it one,
    its ``int()`` no crowd); None: ``iscrowd`` (keypoints: or ``num_keypoints`` 0).
    """

    image_id: np.ndarray
    category_id: np.ndarray
    ann_id: np.ndarray
    bbox: np.ndarray
    area: np.ndarray
    iscrowd: np.ndarray
    score: np.ndarray
    counts: Optional[Sequence[str]] = None
    mask_size: Optional[np.ndarray] = None
    keypoints: Optional[np.ndarray] = None
    num_keypoints: Optional[np.ndarray] = None
    file_image_ids: Optional[np.ndarray] = None
    masks: Optional["MaskTable"] = None  # the counts with their statistics, when already built
    ignore: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.ann_id)


def mask_table(annotations: Annotations) -> MaskTable:
    """The annotations' masks as a :class:`MaskTable` (``annotations.masks`` when already built)."""
    if annotations.masks is not None:
        return annotations.masks
    return MaskTable.from_strings(annotations.counts, annotations.mask_size)
