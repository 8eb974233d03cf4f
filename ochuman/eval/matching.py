"""Greedy matching, as pycocotools' ``evaluateImg``, for any number of ground-truth variants at
once (compiled core, in threads).

A variant says, per ground truth (block order), whether it counts (0), is an ignore region
(1) or is absent (2), and which images take part. Rules kept: a detection may match a crowd
region many times; IoU thresholds are capped at ``1 - 1e-10``; a detection takes the best
counted match and only then an ignored one."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

import ochuman.parallel as parallel
from ochuman import _evalcore
from ochuman.eval.annotations import Annotations
from ochuman.eval.blocks import Blocks
from ochuman.eval.params import EvalParams
from ochuman.eval.states import GtState


@dataclass
class Variant:
    """Which ground truths count, are ignore regions or are absent (:class:`GtState`), per
    block order; which images take part; and optionally which unmatched detections are ignored."""

    gt_state: np.ndarray  # (G,) uint8 GtState values in block order
    image_included: Optional[np.ndarray] = None  # (n_img,) bool; None: all
    dt_unmatched_ignored: Optional[np.ndarray] = None  # (D,) bool in block order


def base_state(gt: Annotations, blocks: Blocks, params: EvalParams) -> np.ndarray:
    """pycocotools' ``ignore`` per gt in block order: iscrowd (keypoints: or no keypoints), or
    ``gt.ignore`` where given."""
    ignore = (gt.iscrowd if gt.ignore is None else gt.ignore)[blocks.gt_order].copy()
    if params.iou_type == "keypoints":
        ignore |= gt.num_keypoints[blocks.gt_order] == 0
    return np.where(ignore, GtState.IGNORED, GtState.COUNTED).astype(np.uint8)


def variant_states(variant: Variant, gt: Annotations, blocks: Blocks, params: EvalParams) -> np.ndarray:
    """Per area range, the state of every gt: (A, G) uint8 (out-of-range areas are ignored,
    absent ones stay absent)."""
    gt_area = gt.area[blocks.gt_order]
    states = np.empty((len(params.area_rng), len(gt_area)), dtype=np.uint8)
    for a, (lo, hi) in enumerate(params.area_rng):
        out_of_range = (gt_area < lo) | (gt_area > hi)
        ignored = (variant.gt_state == GtState.IGNORED) | out_of_range
        states[a] = np.where(variant.gt_state == GtState.ABSENT, GtState.ABSENT,
                             np.where(ignored, GtState.IGNORED, GtState.COUNTED))
    return states


@dataclass
class Matches:
    """Greedy matches of V variants at T thresholds. candidates (C,) int64: the detections (block
    order) whose IoU reaches the lowest threshold with some gt of their block, ascending (the
    others match nothing); gt (V, T, C) int32: the gt (block order) each candidate matched, or
    -1; n_dt: the number of detections."""

    candidates: np.ndarray
    gt: np.ndarray
    n_dt: int

    def candidate_of(self) -> np.ndarray:
        """(D,) int32: each detection's index in ``candidates``, -1 if it is none."""
        index = np.full(self.n_dt, -1, dtype=np.int32)
        index[self.candidates] = np.arange(len(self.candidates), dtype=np.int32)
        return index


def match(blocks: Blocks, states: np.ndarray, gt_crowd: np.ndarray, params: EvalParams) -> Matches:
    """Greedy matching for V variants, states (V, G) uint8, in the compiled core."""
    V = states.shape[0]
    T = len(params.iou_thrs)
    D = len(blocks.dt_order)
    thresholds = np.ascontiguousarray(params.iou_thrs, dtype=np.float64)
    candidates = np.empty(D, dtype=np.int64)
    lowest = min(float(thresholds.min()), 1 - 1e-10) if T else 1 - 1e-10
    n = _evalcore.match_candidates(blocks.ious, blocks.dt_start, blocks.gt_start, blocks.iou_start, lowest, candidates)
    candidates = candidates[:n].copy()
    out = np.empty((V, T, n), dtype=np.int32)  # the core writes every cell
    if states.shape[1] == 0 or n == 0:  # no ground truth or nothing reaches a threshold
        out.fill(-1)
        return Matches(candidates, out, D)
    states = np.ascontiguousarray(states, dtype=np.uint8)
    crowd = np.ascontiguousarray(gt_crowd, dtype=np.uint8)

    def rows(lo: int, hi: int) -> None:
        _evalcore.match(blocks.ious, blocks.dt_start, blocks.gt_start, blocks.iou_start, states, crowd,
                        thresholds, candidates, lo, hi, out)

    parallel.run_chunks(rows, np.full(V, float(T * n)), min_weight=2e5)
    return Matches(candidates, out, D)
