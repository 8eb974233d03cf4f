"""Precision and recall per (IoU threshold, recall point, category, area range, max dets), as
pycocotools' ``accumulate``, for several variants at once (compiled core, in threads), and
:func:`evaluate`, one plain ``COCOeval.evaluate(); accumulate()``.

Unmatched detections outside an area range are ignored; precision is made monotone and read
at 101 recall points with ``searchsorted(..., "left")``; -1 marks empty cells; matches are
recorded by annotation id, so a ground truth whose id is 0 counts as unmatched (a pycocotools
quirk, kept so that numbers agree)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Optional

import numpy as np

import ochuman.parallel as parallel
from ochuman import _evalcore
from ochuman.eval.annotations import Annotations
from ochuman.eval.blocks import Blocks, make_blocks
from ochuman.eval.matching import Matches, Variant, base_state, match, variant_states
from ochuman.eval.params import EvalParams
from ochuman.eval.states import GtState
from ochuman.eval.summary import summarize


@dataclass
class Accumulated:
    """pycocotools ``eval`` arrays for one variant family (all area ranges)."""

    precision: np.ndarray  # (T, R, K, A, M)
    recall: np.ndarray  # (T, K, A, M)
    scores: np.ndarray  # (T, R, K, A, M)
    params: EvalParams  # what they were accumulated under
    persons: int = -1  # ground truths counted in the variant (set by callers that know)

    @cached_property
    def stats(self) -> np.ndarray:
        """pycocotools' summary numbers, (12,) or (10,) for keypoints: read when first asked
        for, as ``summarize()`` reads them (params it cannot read raise there, not before)."""
        return summarize(self.precision, self.recall, self.params)


def evaluate_variants(gt: Annotations, dt: Annotations, blocks: Blocks, params: EvalParams,
                      variants: Sequence[Variant]) -> list["Accumulated"]:
    """Accumulate several variants (each matched once per area range, then accumulated); the
    (variant, area range) pairs are spread over threads, for matching and for accumulation
    (both run in the compiled core)."""
    states = [variant_states(v, gt, blocks, params) for v in variants]
    if not states:
        return []
    matches = match(blocks, np.concatenate(states), gt.iscrowd[blocks.gt_order], params)
    return accumulate_variants(gt, dt, blocks, params, variants, states, matches)


def accumulate(gt: Annotations, dt: Annotations, blocks: Blocks, params: EvalParams,
               variant: Variant, states: Optional[np.ndarray] = None,
               matches: Optional[Matches] = None) -> Accumulated:
    """Precision/recall over every area range for one variant (pycocotools ``accumulate``).

    states (A, G) and its matches (of A variants) may be passed when already computed.
    """
    if states is None:
        states = variant_states(variant, gt, blocks, params)
    if matches is None:
        matches = match(blocks, states, gt.iscrowd[blocks.gt_order], params)
    return accumulate_variants(gt, dt, blocks, params, [variant], [states], matches)[0]


def accumulate_variants(gt: Annotations, dt: Annotations, blocks: Blocks, params: EvalParams,
                        variants: Sequence[Variant], states: Sequence[np.ndarray],
                        matches: Matches) -> list[Accumulated]:
    """:func:`accumulate` of several variants, states[k] (A, G) of variants[k], whose matches
    are the variants k * A .. (k + 1) * A - 1 of ``matches``; the (variant, area range) pairs
    run in threads."""
    A = len(params.area_rng)
    T, R, M = len(params.iou_thrs), len(params.rec_thrs), len(params.max_dets)
    K = len(blocks.cat_ids) if params.use_cats else 1
    dt_area = dt.area[blocks.dt_order]
    gt_ids = np.ascontiguousarray(gt.ann_id[blocks.gt_order], dtype=np.int64)
    if len(gt_ids) == 0:  # no ground truth: every cell is -1 (npig is 0 everywhere)
        outputs = [tuple(np.full(shape, -1.0) for shape in ((T, R, K, A, M), (T, K, A, M), (T, R, K, A, M)))
                   for _ in variants]
        return [Accumulated(precision=p, recall=r, scores=s, params=params) for p, r, s in outputs]
    # Every cell is written by the compiled core (its first touch, in the threads)
    outputs = [(np.empty((T, R, K, A, M)), np.empty((T, K, A, M)), np.empty((T, R, K, A, M))) for _ in variants]
    # Shared by the variants
    has_dt = np.diff(blocks.dt_start) > 0
    dt_cat = blocks.block_cat.astype(np.int64, copy=False)[blocks.dt_block]
    gt_cat = blocks.block_cat.astype(np.int64, copy=False)[blocks.gt_block]
    dt_scores = np.ascontiguousarray(dt.score[blocks.dt_order], dtype=np.float64)
    dt_rank = np.ascontiguousarray(blocks.dt_rank, dtype=np.int64)
    rec_thrs = np.ascontiguousarray(params.rec_thrs, dtype=np.float64)
    max_dets = np.asarray(params.max_dets, dtype=np.int64)
    area_out = np.empty((A, len(dt_area)), dtype=np.uint8)
    for a, (lo, hi) in enumerate(params.area_rng):
        area_out[a] = (dt_area < lo) | (dt_area > hi)
    candidate_of = matches.candidate_of()
    inputs = []
    for k, (variant, gt_states) in enumerate(zip(variants, states)):
        included_blocks = (np.ones(len(blocks.block_img), bool) if variant.image_included is None
                           else variant.image_included[blocks.block_img])
        # A block takes part when it has a present gt or any detection (evaluateImg != None).
        present = np.bincount(blocks.gt_block[variant.gt_state != GtState.ABSENT], minlength=len(blocks.block_img)) > 0
        block_used = included_blocks & (present | has_dt)
        dt_out = area_out if variant.dt_unmatched_ignored is None else area_out | variant.dt_unmatched_ignored
        inputs.append(dict(
            matches=matches.gt[k * A:(k + 1) * A], candidate_of=candidate_of,
            gt_state=np.ascontiguousarray(gt_states, dtype=np.uint8), gt_ids=gt_ids,
            gt_used=block_used[blocks.gt_block].astype(np.uint8), gt_cat=gt_cat, order=blocks.score_order,
            dt_used=block_used[blocks.dt_block].astype(np.uint8), dt_cat=dt_cat, dt_rank=dt_rank,
            dt_scores=dt_scores, dt_out=dt_out, rec_thrs=rec_thrs, max_dets=max_dets, categories=K))

    # Threads take (variant, category) units when there are enough categories (a category's cells
    # are written together), else (variant, area range) units over all categories.
    by_category = K >= 2 * parallel.worker_count()
    per_variant = K if by_category else A
    if by_category:
        dt_per_cat = np.bincount(blocks.block_cat, weights=np.diff(blocks.dt_start), minlength=K)[:K]
        weights = np.tile(T * A * (dt_per_cat + R * M).astype(float), len(variants))
    else:
        weights = np.full(len(variants) * A, float(T * (len(dt_area) + K * R * M)))

    def units(lo: int, hi: int) -> None:  # unit u: variant u // per_variant, category or area u % per_variant
        while lo < hi:
            v, first = divmod(lo, per_variant)
            stop = min(hi, (v + 1) * per_variant)
            last = first + stop - lo
            precision, recall, scores = outputs[v]
            _evalcore.accumulate(**inputs[v], category_lo=first if by_category else 0,
                                 category_hi=last if by_category else K, area_lo=0 if by_category else first,
                                 area_hi=A if by_category else last, precision=precision, recall=recall, scores=scores)
            lo = stop

    parallel.run_chunks(units, weights, min_weight=2e5)
    return [Accumulated(precision=p, recall=r, scores=s, params=params) for p, r, s in outputs]


def evaluate(gt: Annotations, dt: Annotations, params: Optional[EvalParams] = None) -> Accumulated:
    """One plain COCO evaluation: what ``COCOeval.evaluate(); accumulate()`` computes."""
    params = params or EvalParams()
    blocks = make_blocks(gt, dt, params)
    return accumulate(gt, dt, blocks, params, Variant(base_state(gt, blocks, params)))
