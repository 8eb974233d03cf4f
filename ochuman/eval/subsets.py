"""The occlusion subsets of an evaluation as ground-truth variants (one matching call for all).

The ranges and their rules (half-open official ranges, ``closed-top``) are owned by
:mod:`ochuman.subsets`; this module turns a range into the states of :mod:`ochuman.eval.matching`
in the two modes (see :mod:`ochuman.eval.run`): ``official`` drops persons outside the range
(absent), ``ignore`` makes them ignore regions and ignores an unmatched detection
whose nearest person (:func:`nearest_gt`; crowd regions are no persons) is outside the subset."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ochuman.eval.blocks import Blocks, positions
from ochuman.eval.ground_truth import GroundTruth
from ochuman.eval.matching import Variant
from ochuman.eval.states import GtState
from ochuman.subsets import ALL, HARD, MODERATE, MaxIoURange


MODES = ("official", "ignore")
LEVELS = (ALL, MODERATE, HARD)
#: AP per MaxIoU bin of 0.05 from 0.5 to 1.0 (``--by-max-iou``)
MAX_IOU_BINS = tuple(MaxIoURange(round(0.5 + 0.05 * k, 2), round(0.55 + 0.05 * k, 2)) for k in range(10))


def subset_variant(gt: GroundTruth, blocks: Blocks, base: np.ndarray, rng: MaxIoURange, mode: str,
                   nearest: Optional[np.ndarray]) -> tuple[Variant, int]:
    """The variant of subset ``rng`` in ``mode`` and the persons it counts. base (G,) uint8:
    pycocotools' states in block order (:func:`~ochuman.eval.matching.base_state`); nearest
    (D,): :func:`nearest_gt` of each detection (ignore mode), else None."""
    order = blocks.gt_order
    max_iou = gt.max_iou[order]
    if mode == "official":
        # "all" is the official file itself: no MaxIoU test (the file already left out what
        # its converter dropped) and every image of the file, with persons or not, so a COCO
        # ground truth is scored exactly as pycocotools does. A range file holds the images
        # with persons in its range.
        # Crowd regions are no persons of any range: a subset keeps those of the images it
        # keeps, as ignore regions (a range file written with them scores the same).
        crowd = gt.annotations.iscrowd[order]
        counted = gt.official[order] & ~crowd & (True if rng is ALL else rng.contains(max_iou, gt.range_rule))
        if rng is ALL:
            images = positions(blocks.img_ids, np.sort(gt.image_ids[gt.file_images])) >= 0
        else:
            images = np.zeros(len(blocks.img_ids), dtype=bool)
            images[blocks.block_img[blocks.gt_block[counted]]] = True
        kept = counted | (crowd & gt.official[order] & images[blocks.block_img[blocks.gt_block]])
        state = np.where(kept, base, GtState.ABSENT).astype(np.uint8)
        return Variant(state, image_included=images), int((counted & (base == GtState.COUNTED)).sum())
    counted = ~gt.extra[order] & rng.contains(max_iou, "closed-top")
    state = np.where(counted, base, GtState.IGNORED).astype(np.uint8)
    unmatched_ignored = None
    if nearest is not None:
        has = nearest >= 0
        unmatched_ignored = np.zeros(len(nearest), dtype=bool)
        unmatched_ignored[has] = ~counted[nearest[has]]
    return Variant(state, dt_unmatched_ignored=unmatched_ignored), int((counted & (base == GtState.COUNTED)).sum())


def nearest_gt(blocks: Blocks, crowd: np.ndarray) -> np.ndarray:
    """For each detection (block order), the person (gt, block order) it overlaps most; -1 if
    none. crowd (G,) bool, block order: crowd regions, which are no persons (left out).

    Overlap is the IoU (OKS for keypoints) computed for matching; ties go to the first gt.
    """
    D = len(blocks.dt_order)
    n_g = np.diff(blocks.gt_start)[blocks.dt_block]
    result = np.full(D, -1, dtype=np.int64)
    rows = np.flatnonzero(n_g > 0)
    if len(rows) == 0:
        return result
    # The IoU rows of consecutive detections tile blocks.ious without gaps.
    starts = np.r_[0, np.cumsum(n_g[rows])[:-1]]
    row_of_pair = np.repeat(np.arange(len(rows)), n_g[rows])
    ious = blocks.ious
    if crowd.any():
        first_gt = blocks.gt_start[blocks.dt_block[rows]]
        gt_of_pair = np.arange(len(row_of_pair)) - starts[row_of_pair] + first_gt[row_of_pair]
        ious = np.where(crowd[gt_of_pair], 0.0, ious)
    best = np.maximum.reduceat(ious, starts)
    is_best = ious == best[row_of_pair]
    first = np.full(len(rows), np.iinfo(np.int64).max)
    np.minimum.at(first, row_of_pair[is_best], (np.arange(len(row_of_pair)) - starts[row_of_pair])[is_best])
    overlapping = best > 0
    result[rows[overlapping]] = blocks.gt_start[blocks.dt_block[rows[overlapping]]] + first[overlapping]
    return result
