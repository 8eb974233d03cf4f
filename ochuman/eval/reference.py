"""Pure-Python reference of COCO matching and accumulation: pycocotools' ``COCOeval.evaluateImg``
and ``COCOeval.accumulate`` as plain loops over small numpy arrays, plus the project's ``ignore``
subset mode. No compiled code, no pycocotools; slow, for tests only: the compiled engine
(:mod:`ochuman.eval.accumulation`) is checked against it one named rule at a time
(``tests/ochuman/eval/test_reference_rules.py``). Read it next to pycocotools' ``cocoeval.py``.

A :class:`Block` is one (category, image): the IoU (or OKS) matrix of its detections against its
ground truths, both in file order, with their flags, areas, ids and scores.
:func:`blocks_from_coco` builds the blocks from COCO annotation dicts (IoU for ``bbox``, OKS for
``keypoints``; masks are not covered here); :func:`evaluate` matches and accumulates them.

The rules, and where each lives:

- ``ignore`` = ``iscrowd``; for keypoints also ``num_keypoints == 0`` (:func:`blocks_from_coco`);
- bbox IoU is intersection over union of ``[x, y, w, h]`` boxes, over the detection's own area
  for a crowd region (:func:`bbox_ious`); OKS over the labelled keypoints, or, for a ground
  truth with none labelled, the distance to its box enlarged 2x (:func:`oks`);
- a ground truth is ignored when flagged or when its area is outside the area range (bounds
  included); ground truths are tried regular first, ignored last, each group in file order;
- detections go by score, highest first, ties in file order (a stable sort), at most
  ``maxDets[-1]`` per (category, image) (:func:`evaluate_block`);
- each detection takes, among the ground truths not yet matched (crowd regions may be matched
  again), the one of highest IoU reaching ``min(threshold, 1 - 1e-10)`` (an IoU equal to it
  matches; among equal IoUs the later ground truth wins); once it holds a regular ground truth it
  stops at the first ignored one;
- a detection matched to an ignored ground truth is ignored; an unmatched one is ignored when
  its area is outside the range (or, in ``ignore`` mode, when its nearest person is outside the
  subset: :func:`ignore_mode`); matches are recorded by ground-truth id, so a match to id 0
  reads as none;
- accumulation per (category, area range, maxDets): each image's first ``maxDet`` detections,
  merged by score (stable, image order on ties); recall = TP / counted ground truths;
  precision = TP / (TP + FP + eps), made monotone from the right and read at each recall
  threshold with ``searchsorted(..., "left")`` (0 past the last recall reached); -1 where no
  image takes part or no ground truth counts (:func:`accumulate`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np

THRESHOLD_CAP = 1 - 1e-10  # pycocotools matches at min(threshold, 1 - 1e-10)


@dataclass(frozen=True)
class Block:
    """One (category, image); ground truths (G) and detections (D) in file order."""

    ious: np.ndarray  # (D, G) IoU or OKS
    gt_ignore: np.ndarray  # (G,) bool: pycocotools' ``ignore`` flag
    gt_crowd: np.ndarray  # (G,) bool: crowd regions (matched any number of times)
    gt_area: np.ndarray  # (G,) float
    gt_id: np.ndarray  # (G,) int annotation ids
    dt_score: np.ndarray  # (D,) float
    dt_area: np.ndarray  # (D,) float
    dt_unmatched_ignored: Optional[np.ndarray] = None  # (D,) bool: ignored when unmatched (ignore mode)


@dataclass(frozen=True)
class BlockResult:
    """``evaluateImg``'s answer for one block, area range and maxDet (D' kept detections)."""

    dt_score: np.ndarray  # (D',) scores, highest first
    dt_match: np.ndarray  # (T, D') id of the matched ground truth, 0 for none
    dt_ignore: np.ndarray  # (T, D') bool
    gt_ignore: np.ndarray  # (G,) bool: flagged or out of the area range


def bbox_ious(dt_boxes, gt_boxes, gt_crowd) -> np.ndarray:
    """pycocotools ``bbIou``: (D, G) IoU of ``[x, y, w, h]`` boxes; crowd: over the detection's area."""
    ious = np.zeros((len(dt_boxes), len(gt_boxes)))
    for g, (gx, gy, gw, gh) in enumerate(gt_boxes):
        for d, (dx, dy, dw, dh) in enumerate(dt_boxes):
            w = min(dw + dx, gw + gx) - max(dx, gx)
            h = min(dh + dy, gh + gy) - max(dy, gy)
            if w <= 0 or h <= 0:
                continue
            inter = w * h
            union = dw * dh if gt_crowd[g] else dw * dh + gw * gh - inter
            ious[d, g] = inter / union
    return ious


def oks(dt_keypoints, gt_keypoints, gt_boxes, gt_areas, sigmas) -> np.ndarray:
    """pycocotools ``computeOks``: (D, G) object keypoint similarity; keypoints (3K,) x, y, v."""
    variances = (np.asarray(sigmas, dtype=float) * 2) ** 2
    result = np.zeros((len(dt_keypoints), len(gt_keypoints)))
    for g, (gk, (bx, by, bw, bh), area) in enumerate(zip(gt_keypoints, gt_boxes, gt_areas)):
        gk = np.asarray(gk, dtype=float)
        xg, yg, vg = gk[0::3], gk[1::3], gk[2::3]
        labelled = vg > 0
        for d, dk in enumerate(dt_keypoints):
            dk = np.asarray(dk, dtype=float)
            xd, yd = dk[0::3], dk[1::3]
            if labelled.any():
                dx, dy = xd - xg, yd - yg
            else:  # distance to the box enlarged 2x (0 inside)
                zero = np.zeros(len(variances))
                dx = np.max((zero, bx - bw - xd), axis=0) + np.max((zero, xd - (bx + bw * 2)), axis=0)
                dy = np.max((zero, by - bh - yd), axis=0) + np.max((zero, yd - (by + bh * 2)), axis=0)
            e = (dx ** 2 + dy ** 2) / variances / (area + np.spacing(1)) / 2
            if labelled.any():
                e = e[labelled]
            result[d, g] = np.sum(np.exp(-e)) / e.shape[0]
    return result


def blocks_from_coco(gt_anns: Sequence[dict], dt_anns: Sequence[dict], img_ids: Sequence, cat_ids: Sequence,
                     iou_type: str = "bbox", sigmas=None) -> dict:
    """{(category index, image index): Block} for every pair with a ground truth or a detection.

    dt_anns as pycocotools ``loadRes`` completes them (``id``, ``area``); img_ids / cat_ids the
    evaluated ids, sorted; sigmas: the keypoints' OKS sigmas (keypoints only)."""
    blocks = {}
    for k, cat in enumerate(cat_ids):
        for i, img in enumerate(img_ids):
            gts = [a for a in gt_anns if a["image_id"] == img and a["category_id"] == cat]
            dts = [a for a in dt_anns if a["image_id"] == img and a["category_id"] == cat]
            if not gts and not dts:
                continue
            crowd = np.array([bool(g.get("iscrowd", 0)) for g in gts], dtype=bool)
            ignore = crowd.copy()
            if iou_type == "bbox":
                ious = bbox_ious([d["bbox"] for d in dts], [g["bbox"] for g in gts], crowd)
            elif iou_type == "keypoints":
                ignore |= np.array([g["num_keypoints"] == 0 for g in gts], dtype=bool)
                ious = oks([d["keypoints"] for d in dts], [g["keypoints"] for g in gts], [g["bbox"] for g in gts],
                           [g["area"] for g in gts], sigmas)
            else:
                raise ValueError(f"the reference computes bbox IoU and OKS, not {iou_type!r}")
            blocks[k, i] = Block(
                ious=ious, gt_ignore=ignore, gt_crowd=crowd,
                gt_area=np.array([g["area"] for g in gts], dtype=float),
                gt_id=np.array([g["id"] for g in gts], dtype=np.int64),
                dt_score=np.array([d["score"] for d in dts], dtype=float),
                dt_area=np.array([d["area"] for d in dts], dtype=float))
    return blocks


def by_score(scores) -> np.ndarray:
    """Indices from the highest score down, ties in their given order (pycocotools' mergesort)."""
    return np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")


def evaluate_block(block: Block, area_rng, max_det: int, iou_thrs) -> Optional[BlockResult]:
    """pycocotools ``evaluateImg``: greedy matching at each threshold; None for an empty block."""
    n_gt, n_dt = len(block.gt_id), len(block.dt_score)
    if n_gt == 0 and n_dt == 0:
        return None
    lo, hi = area_rng
    gt_ignore = np.array([bool(block.gt_ignore[g]) or block.gt_area[g] < lo or block.gt_area[g] > hi
                          for g in range(n_gt)], dtype=bool)
    gt_order = sorted(range(n_gt), key=lambda g: gt_ignore[g])  # stable: regular, then ignored
    dts = by_score(block.dt_score)[:max_det]
    T = len(iou_thrs)
    dt_match = np.zeros((T, len(dts)))
    dt_ignore = np.zeros((T, len(dts)), dtype=bool)
    gt_taken = np.zeros((T, n_gt), dtype=bool)
    for t, threshold in enumerate(iou_thrs):
        for j, d in enumerate(dts):
            best_iou, best = min(threshold, THRESHOLD_CAP), -1
            for g in gt_order:
                if gt_taken[t, g] and not block.gt_crowd[g]:
                    continue
                if best >= 0 and not gt_ignore[best] and gt_ignore[g]:
                    break  # holds a regular ground truth: ignored ones come last
                if block.ious[d, g] < best_iou:
                    continue
                best_iou, best = block.ious[d, g], g
            if best >= 0:
                dt_ignore[t, j] = gt_ignore[best]
                dt_match[t, j] = block.gt_id[best]
                gt_taken[t, best] = True
    for j, d in enumerate(dts):
        outside = block.dt_area[d] < lo or block.dt_area[d] > hi
        if block.dt_unmatched_ignored is not None and block.dt_unmatched_ignored[d]:
            outside = True
        if outside:
            dt_ignore[:, j] |= dt_match[:, j] == 0
    return BlockResult(dt_score=np.asarray(block.dt_score, dtype=float)[dts], dt_match=dt_match,
                       dt_ignore=dt_ignore, gt_ignore=gt_ignore)


def accumulate(results, iou_thrs, rec_thrs, max_dets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pycocotools ``accumulate``. results[k][a]: the image results (BlockResult or None, image
    order) of category k, area range a, matched with maxDets[-1].
    Returns precision (T, R, K, A, M), recall (T, K, A, M), scores (T, R, K, A, M); -1: empty."""
    T, R, M = len(iou_thrs), len(rec_thrs), len(max_dets)
    K, A = len(results), len(results[0]) if results else 0
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    scores = -np.ones((T, R, K, A, M))
    for k in range(K):
        for a in range(A):
            images = [e for e in results[k][a] if e is not None]
            if not images:
                continue
            for m, max_det in enumerate(max_dets):
                dt_scores = np.concatenate([e.dt_score[:max_det] for e in images])
                order = by_score(dt_scores)
                dt_scores = dt_scores[order]
                matched = np.concatenate([e.dt_match[:, :max_det] for e in images], axis=1)[:, order] != 0
                ignored = np.concatenate([e.dt_ignore[:, :max_det] for e in images], axis=1)[:, order]
                counted = sum(int((~e.gt_ignore).sum()) for e in images)
                if counted == 0:
                    continue
                for t in range(T):
                    tp = np.cumsum(matched[t] & ~ignored[t]).astype(float)
                    fp = np.cumsum(~matched[t] & ~ignored[t]).astype(float)
                    rc = tp / counted
                    pr = (tp / (fp + tp + np.spacing(1))).tolist()
                    recall[t, k, a, m] = rc[-1] if len(tp) else 0
                    for i in range(len(pr) - 1, 0, -1):  # monotone envelope, from the right
                        if pr[i] > pr[i - 1]:
                            pr[i - 1] = pr[i]
                    precision[t, :, k, a, m] = 0
                    scores[t, :, k, a, m] = 0
                    for r, i in enumerate(np.searchsorted(rc, rec_thrs, side="left")):
                        if i >= len(pr):
                            break  # recall never reached: this and later thresholds stay 0
                        precision[t, r, k, a, m] = pr[i]
                        scores[t, r, k, a, m] = dt_scores[i]
    return precision, recall, scores


def evaluate(blocks: dict, n_cats: int, n_imgs: int, iou_thrs, rec_thrs, max_dets, area_rng):
    """``evaluate(); accumulate()`` over blocks {(category index, image index): Block}
    (missing pairs: neither ground truth nor detection). Returns precision, recall, scores."""
    max_dets = sorted(max_dets)
    results = [[[evaluate_block(blocks[k, i], rng, max_dets[-1], iou_thrs) if (k, i) in blocks else None
                 for i in range(n_imgs)] for rng in area_rng] for k in range(n_cats)]
    return accumulate(results, iou_thrs, rec_thrs, max_dets)


def nearest_person(ious: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """(D,) int: for each detection the ground truth of highest IoU (OKS), the first of ties,
    crowd regions (crowd (G,) bool) left out: they are no persons; -1 when it overlaps none
    (all 0, or no ground truth)."""
    nearest = np.full(ious.shape[0], -1, dtype=np.int64)
    for d in range(ious.shape[0]):
        best = 0.0
        for g in range(ious.shape[1]):
            if not crowd[g] and ious[d, g] > best:
                best, nearest[d] = ious[d, g], g
    return nearest


def ignore_mode(block: Block, in_subset: np.ndarray) -> Block:
    """The block as ``--mode ignore`` scores a subset (README, "Two subset modes"): persons
    outside the subset (in_subset (G,) bool) become ignore regions, and an unmatched detection
    is ignored when the person it overlaps most is outside the subset (one overlapping nobody,
    or only crowd regions, stays a false positive)."""
    in_subset = np.asarray(in_subset, dtype=bool)
    nearest = nearest_person(block.ious, block.gt_crowd)
    outside = np.array([n >= 0 and not in_subset[n] for n in nearest], dtype=bool)
    return replace(block, gt_ignore=block.gt_ignore | ~in_subset, dt_unmatched_ignored=outside)
