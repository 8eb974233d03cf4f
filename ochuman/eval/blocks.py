"""Grouping into (category, image) blocks, as pycocotools' ``evaluate`` does, and every IoU /
OKS computed once per block (:mod:`ochuman.eval.iou`).

Detections are sorted by score with a stable sort (ties keep results-file order) and cut to
``maxDets[-1]`` per block before IoUs; ground truths keep file order."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ochuman import _evalcore
from ochuman.eval.annotations import Annotations
from ochuman.eval.iou import bbox_block_ious, oks_pairs, segm_block_ious
from ochuman.eval.params import EvalParams


@dataclass
class Blocks:
    """Ground truth and detections grouped into (category, image) blocks, with their IoUs.

    gt_order (G,) / dt_order (D,): indices into the inputs, block by block (detections by
    score, at most maxDets[-1] per block); gt_start / dt_start (B+1,) block offsets;
    block_cat / block_img (B,) category and image index of each block; ious (P,) flat
    row-major D_b x G_b matrices starting at iou_start (B,).
    """

    img_ids: np.ndarray
    cat_ids: np.ndarray
    gt_order: np.ndarray
    dt_order: np.ndarray
    gt_start: np.ndarray
    dt_start: np.ndarray
    block_cat: np.ndarray
    block_img: np.ndarray
    iou_start: np.ndarray
    ious: np.ndarray
    gt_block: np.ndarray  # (G,) block of each gt (block order)
    dt_block: np.ndarray  # (D,) block of each dt (block order)
    dt_rank: np.ndarray  # (D,) rank by score inside its block
    score_order: np.ndarray  # (D,) int64: block-ordered detections by score, stable (accumulation)


# Values in runs of equal ones (a results file lists each image's detections together) are
# looked up once per run where the runs are at most this share of the values.
RUN_LOOKUP_SHARE = 1 / 8


def positions(values: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted ``universe``; -1 where absent. Integer ids not far
    above the number of values (COCO's image ids) are looked up in a table, the others found by
    binary search; values that come in runs of equal ones, once per run."""
    if len(universe) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    head = values[:4096]  # (whether the values come in runs, judged from the first ones)
    if len(values) >= 1024 and np.count_nonzero(head[1:] != head[:-1]) < RUN_LOOKUP_SHARE * len(head):
        starts = np.flatnonzero(values[1:] != values[:-1]) + 1
        if len(starts) < RUN_LOOKUP_SHARE * len(values):
            starts = np.r_[0, starts]
            return np.repeat(_positions_of(values[starts], universe), np.diff(np.r_[starts, len(values)]))
    return _positions_of(values, universe)


def _positions_of(values: np.ndarray, universe: np.ndarray) -> np.ndarray:
    top = universe[-1]
    if values.dtype.kind == universe.dtype.kind == "i" and universe[0] >= 0 and top < 8 * len(values) + 65536:
        table = np.full(int(top) + 2, -1, dtype=np.int64)  # table[-1] = table[top + 1] = -1: outside
        table[universe] = np.arange(len(universe))
        return table[np.clip(values, -1, top + 1)]
    pos = np.searchsorted(universe, values)
    pos = np.clip(pos, 0, len(universe) - 1)
    return np.where(universe[pos] == values, pos, -1).astype(np.int64)


def _numbered(n_keys: int, *keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """The distinct values of the key arrays (each value in [0, n_keys)), sorted, and each
    array's keys as positions among them: a table of the keys present where n_keys is not far
    above the number of keys, else a sort."""
    if n_keys <= 4 * sum(map(len, keys)) + 65536:
        present = np.zeros(n_keys, dtype=bool)
        for k in keys:
            present[k] = True
        position = np.cumsum(present) - 1
        return np.flatnonzero(present), [position[k] for k in keys]
    distinct = _sorted_unique(np.concatenate(keys))
    return distinct, [np.searchsorted(distinct, k) for k in keys]


def _sorted_unique(values) -> np.ndarray:
    """np.unique by sorting (np.unique imports numpy.ma on first use: 5 ms of a CLI run)."""
    ordered = np.sort(np.asarray(values if isinstance(values, np.ndarray) else list(values)).ravel())
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def descending_order(scores: np.ndarray) -> np.ndarray:
    """``np.argsort(-scores, kind="stable")``: (N,) int64, by a radix sort in the compiled core
    (300,000 scores in ~6 ms, numpy's stable sort ~25 ms); NaN last, -0.0 tied with 0.0."""
    out = np.empty(len(scores), dtype=np.int64)
    _evalcore.argsort_descending(np.ascontiguousarray(scores, dtype=np.float64), out)
    return out


def make_blocks(gt: Annotations, dt: Annotations, params: EvalParams) -> Blocks:
    """Group annotations into blocks and compute every IoU / OKS once."""
    default_ids = gt.file_image_ids if gt.file_image_ids is not None else gt.image_id
    img_ids = _sorted_unique(params.img_ids if params.img_ids is not None else default_ids)
    cat_ids = _sorted_unique(params.cat_ids if params.cat_ids is not None else gt.category_id)
    n_img = len(img_ids)

    def keys(ann: Annotations):
        img = positions(np.asarray(ann.image_id), img_ids) if len(ann) else np.zeros(0, np.int64)
        cat = positions(np.asarray(ann.category_id), cat_ids) if len(ann) else np.zeros(0, np.int64)
        keep = (img >= 0) & (cat >= 0)
        listed = cat  # category index, kept for the order inside a block when use_cats=False
        if not params.use_cats:
            cat = np.zeros_like(cat)
        return img, cat, keep, listed

    g_img, g_cat, g_keep, g_listed = keys(gt)
    d_img, d_cat, d_keep, d_listed = keys(dt)
    # Inside a block: file order; with use_cats=False pycocotools concatenates the image's
    # annotations category by category (catIds order) first, so ties break by category then.
    g_idx = np.flatnonzero(g_keep)
    g_idx = g_idx[np.lexsort((g_listed[g_idx], g_img[g_idx], g_cat[g_idx]))]
    score_order = None
    if params.use_cats:  # = lexsort((-score, img, cat)) cut at maxDets[-1] a block, in the compiled core
        block = np.where(d_keep, d_cat * n_img + d_img, -1)
        d_idx, rank, score_order = (np.empty(len(block), dtype=np.int64) for _ in range(3))
        kept = _evalcore.block_order(block, np.ascontiguousarray(dt.score, dtype=np.float64), int(params.max_dets[-1]),
                                     d_idx, rank, score_order)
        d_idx, rank, score_order = d_idx[:kept], rank[:kept], score_order[:kept]
        d_key = block[d_idx]
    else:
        d_idx = np.flatnonzero(d_keep)
        d_idx = d_idx[np.lexsort((d_listed[d_idx], -dt.score[d_idx], d_img[d_idx], d_cat[d_idx]))]
        d_key = d_cat[d_idx] * n_img + d_img[d_idx]
        # rank inside block, cut at maxDets[-1]
        d_first = np.r_[True, d_key[1:] != d_key[:-1]] if len(d_key) else np.zeros(0, bool)
        starts = np.flatnonzero(d_first)
        rank = np.arange(len(d_key)) - np.repeat(starts, np.diff(np.r_[starts, len(d_key)]))
        top = rank < params.max_dets[-1]
        d_idx, d_key, rank = d_idx[top], d_key[top], rank[top]
    g_key = g_cat[g_idx] * n_img + g_img[g_idx]

    block_keys, (g_block, d_block) = _numbered(max(len(cat_ids), 1) * n_img, g_key, d_key)
    B = len(block_keys)
    gt_start = np.r_[0, np.cumsum(np.bincount(g_block, minlength=B))].astype(np.int64)
    dt_start = np.r_[0, np.cumsum(np.bincount(d_block, minlength=B))].astype(np.int64)
    n_g = np.diff(gt_start)
    n_d = np.diff(dt_start)
    iou_start = np.r_[0, np.cumsum(n_g * n_d)][:-1].astype(np.int64)

    # One global stable order by score over the block-ordered detections (image order inside a
    # category, score order inside an image): every subset is sorted the same way. (Made before
    # the IoUs: the caller can let the masks go as soon as they are computed.)
    if score_order is None:
        score_order = descending_order(dt.score[d_idx])
    pairs = int((n_g * n_d).sum())
    if params.iou_type == "segm":
        ious = segm_block_ious(gt, dt, g_idx, d_idx, gt_start, dt_start, iou_start, pairs)
    elif params.iou_type == "bbox":
        ious = bbox_block_ious(gt, dt, g_idx, d_idx, gt_start, dt_start, iou_start, pairs)
    else:
        # Every (dt, gt) pair of each block, row-major per block.
        pair_dt = np.repeat(np.arange(len(d_idx)), n_g[d_block])
        first_gt = np.repeat(gt_start[d_block], n_g[d_block])
        within = np.arange(len(pair_dt)) - np.repeat(np.cumsum(n_g[d_block]) - n_g[d_block], n_g[d_block])
        pair_gt = first_gt + within
        ious = oks_pairs(dt.keypoints, gt.keypoints, gt.bbox, gt.area, d_idx[pair_dt], g_idx[pair_gt],
                         params.kpt_oks_sigmas)
    return Blocks(
        img_ids=img_ids, cat_ids=cat_ids, gt_order=g_idx, dt_order=d_idx,
        gt_start=gt_start, dt_start=dt_start,
        block_cat=block_keys // max(n_img, 1), block_img=block_keys % max(n_img, 1),
        iou_start=iou_start, ious=ious, gt_block=g_block, dt_block=d_block, dt_rank=rank,
        score_order=score_order,
    )
