"""Overlaps of every (detection, ground truth) pair of each block, as pycocotools computes
them: box IoU (``bbIou``), mask IoU (``rleIou``, crowd regions as intersection over the
detection's area) and OKS (``computeOks``), in the compiled core, in threads.

Output of the block kernels: (P,) float64, one row-major D_b x G_b matrix per block starting
at ``iou_start`` (see :class:`ochuman.eval.blocks.Blocks`)."""
from __future__ import annotations

import numpy as np

import ochuman.parallel as parallel
from ochuman import _evalcore
from ochuman.eval.annotations import Annotations, mask_table

#: OKS pairs are cut into chunks of this many for the threads
OKS_PAIRS_PER_CHUNK = 4096


def bbox_block_ious(gt: Annotations, dt: Annotations, g_idx: np.ndarray, d_idx: np.ndarray,
                    gt_start: np.ndarray, dt_start: np.ndarray, iou_start: np.ndarray, pairs: int) -> np.ndarray:
    """pycocotools ``bbIou`` (its floating-point operations) of every (dt, gt) pair of each block,
    row-major D_b x G_b per block at ``iou_start`` (P,). g_idx / d_idx: annotation indices in
    block order."""
    out = np.empty(pairs)
    inputs = (np.ascontiguousarray(gt.bbox, dtype=np.float64), np.ascontiguousarray(gt.iscrowd, dtype=np.uint8),
              np.ascontiguousarray(dt.bbox, dtype=np.float64), np.ascontiguousarray(g_idx, dtype=np.int64),
              np.ascontiguousarray(d_idx, dtype=np.int64), gt_start, dt_start, iou_start)

    def ious(lo: int, hi: int) -> None:
        _evalcore.bbox_ious(*inputs, lo, hi, out)

    parallel.run_chunks(ious, np.diff(dt_start) * np.diff(gt_start) + 1, min_weight=2e5)
    return out


def segm_block_ious(gt: Annotations, dt: Annotations, g_idx: np.ndarray, d_idx: np.ndarray,
                    gt_start: np.ndarray, dt_start: np.ndarray, iou_start: np.ndarray, pairs: int) -> np.ndarray:
    """pycocotools mask IoU of every (dt, gt) pair of each block, row-major D_b x G_b per block
    at ``iou_start`` (P,). g_idx / d_idx: annotation indices in block order."""
    gm, dm = mask_table(gt), mask_table(dt)
    out = np.empty(pairs)
    crowd = np.ascontiguousarray(gt.iscrowd, dtype=np.uint8)
    g_idx = np.ascontiguousarray(g_idx, dtype=np.int64)
    d_idx = np.ascontiguousarray(d_idx, dtype=np.int64)

    def ious(lo: int, hi: int) -> None:
        _evalcore.segm_ious(gm.buffer, gm.starts, gm.lengths, int(gm.raw), gm.sizes, gm.status, gm._areas, gm._boxes,
                            gm._totals, crowd,
                            dm.buffer, dm.starts, dm.lengths, int(dm.raw), dm.sizes, dm.status, dm._areas,
                            dm._boxes, dm._totals,
                            g_idx, d_idx, gt_start, dt_start, iou_start, lo, hi, out)

    # Work per block: decoding its detections, then one pass over their runs per ground truth.
    n_g = np.diff(gt_start)
    chars = np.r_[0, np.cumsum(dm.lengths[d_idx])]
    parallel.run_chunks(ious, (chars[dt_start[1:]] - chars[dt_start[:-1]]) * np.where(n_g > 0, 1 + n_g, 0))
    return out


def oks_pairs(dt_kpts: np.ndarray, gt_kpts: np.ndarray, gt_bbox: np.ndarray, gt_area: np.ndarray,
              d: np.ndarray, g: np.ndarray, sigmas) -> np.ndarray:
    """pycocotools ``computeOks`` for the pairs (detection d[p], ground truth g[p]). (P,) float64.

    dt_kpts (D', 3K), gt_kpts (G', 3K), gt_bbox (G', 4) xywh, gt_area (G',). The exponents and
    the means run in the compiled core (pycocotools' operations in its order, numpy's
    summation order); the exponential is numpy's, as pycocotools'.
    """
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    d = np.ascontiguousarray(d, dtype=np.int64)
    g = np.ascontiguousarray(g, dtype=np.int64)
    inputs = (np.ascontiguousarray(dt_kpts, dtype=np.float64), np.ascontiguousarray(gt_kpts, dtype=np.float64),
              np.ascontiguousarray(gt_bbox, dtype=np.float64), np.ascontiguousarray(gt_area, dtype=np.float64))
    out = np.empty(len(d))
    step = OKS_PAIRS_PER_CHUNK

    def pairs(lo: int, hi: int) -> None:  # the pairs of chunks lo..hi-1 (each pair on its own: any cut is exact)
        a, b = lo * step, min(len(d), hi * step)
        terms = np.empty((b - a, len(variances)))
        _evalcore.oks_exponents(*inputs, variances, d[a:b], g[a:b], terms)
        np.exp(terms, out=terms)  # (numpy lets other threads run meanwhile)
        _evalcore.oks_means(terms, inputs[1], g[a:b], out[a:b])

    chunks = -(-len(d) // step)
    parallel.run_chunks(pairs, np.full(chunks, float(step * max(1, len(variances)))), min_weight=2e5)
    return out
