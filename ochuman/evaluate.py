"""COCO-style evaluation (segm, bbox, keypoints), identical to pycocotools' COCOeval, over
columnar annotations, with any number of ground-truth *variants* evaluated in one pass.

Data flow: :class:`Annotations` (ground truth and detections) -> IoU/OKS for every
(detection, ground truth) pair of each (image, category) block, computed once -> greedy
matching per variant and IoU threshold (compiled core) -> accumulation and summary.

A variant says, per ground-truth annotation, whether it counts (0), is an ignore region (1) or
is absent (2), and which images take part. Area ranges are variants; so are occlusion subsets.

pycocotools behaviour reproduced on purpose (and checked against it in the tests):

- detections are sorted by score with a stable sort (ties keep results-file order) and cut to
  ``maxDets[-1]`` per (image, category) before IoUs; ground truths keep file order;
- ``ignore`` = ``iscrowd`` (pycocotools overwrites any ``ignore`` flag the file has); for
  keypoints also ``num_keypoints == 0``;
- a detection may match a crowd region many times; IoU thresholds are capped at ``1 - 1e-10``;
  a detection takes the best counted match and only then an ignored one;
- crowd IoU is intersection over the detection's area; bbox IoU uses ``[x, y, w, h]``
  without +1; OKS uses the ground truth's ``area`` and its box enlarged 2x when no ground-truth
  keypoint is labelled;
- matches are recorded by annotation id, so a ground truth whose id is 0 counts as unmatched
  (a pycocotools quirk, kept so that numbers agree);
- unmatched detections outside an area range are ignored; precision is made monotone and read
  at 101 recall points with ``searchsorted(..., "left")``; -1 marks empty cells; ``stats`` are
  means over cells > -1.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional, Union

import numpy as np

from ochuman import _evalcore
from ochuman.keypoints import COCO_OKS_SIGMAS
from ochuman.scan import worker_count

IOU_TYPES = ("segm", "bbox", "keypoints")

STAT_NAMES = {
    "segm": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "bbox": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "keypoints": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
}


@dataclass
class EvalParams:
    """pycocotools ``Params`` under snake_case names (defaults per iou type)."""

    iou_type: str = "segm"
    img_ids: Optional[list] = None  # None: every image of the ground truth
    cat_ids: Optional[list] = None  # None: every category of the ground truth
    iou_thrs: np.ndarray = field(default_factory=lambda: np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True))
    rec_thrs: np.ndarray = field(default_factory=lambda: np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True))
    max_dets: Optional[list] = None
    area_rng: Optional[list] = None
    area_rng_lbl: Optional[list] = None
    use_cats: bool = True
    kpt_oks_sigmas: np.ndarray = field(default_factory=lambda: COCO_OKS_SIGMAS.copy())

    def __post_init__(self):
        if self.iou_type not in IOU_TYPES:
            raise ValueError(f"unknown iou type {self.iou_type!r}: expected one of {', '.join(IOU_TYPES)}")
        keypoints = self.iou_type == "keypoints"
        if self.max_dets is None:
            self.max_dets = [20] if keypoints else [1, 10, 100]
        self.max_dets = sorted(self.max_dets)  # pycocotools sorts maxDets in evaluate()
        if self.area_rng is None:
            self.area_rng = ([[0, 1e5 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]] if keypoints else
                             [[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]])
        if self.area_rng_lbl is None:
            self.area_rng_lbl = ["all", "medium", "large"] if keypoints else ["all", "small", "medium", "large"]


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
    masks: ``counts`` as a :class:`MaskTable`.
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

    def __len__(self) -> int:
        return len(self.ann_id)


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


def _index(values: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """Position of each value in the sorted ``universe``; -1 where absent."""
    if len(universe) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    pos = np.searchsorted(universe, values)
    pos = np.clip(pos, 0, len(universe) - 1)
    return np.where(universe[pos] == values, pos, -1).astype(np.int64)


def _sorted_unique(values) -> np.ndarray:
    """np.unique by sorting (np.unique imports numpy.ma on first use: 5 ms of a CLI run)."""
    ordered = np.sort(np.asarray(values if isinstance(values, np.ndarray) else list(values)).ravel())
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def descending_ranks(scores: np.ndarray) -> np.ndarray:
    """Dense rank of each score from the highest (0), equal scores sharing one: (N,) int64.

    Sorting by rank, then position, is ``np.argsort(-scores, kind="stable")``; see
    :func:`order_by_rank`. One unstable sort (numpy's vectorised one) instead of a stable
    float sort, which is several times slower on large inputs."""
    n = len(scores)
    ranks = np.empty(n, dtype=np.int64)
    if n == 0:
        return ranks
    order = np.argsort(-scores)
    ordered = -scores[order]
    first = np.empty(n, dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    if np.isnan(ordered[-1]):  # NaNs sort last and share one rank, as they tie in a stable sort
        first[1:] &= ~np.isnan(ordered[:-1])
    ranks[order] = np.cumsum(first) - 1
    return ranks


def order_by_rank(ranks: np.ndarray) -> np.ndarray:
    """Stable argsort of N non-negative ranks (below 3e9): (N,) int64, sorted as the unique keys
    rank * N + position."""
    n = len(ranks)
    return np.argsort(ranks * n + np.arange(n, dtype=np.int64))


def make_blocks(gt: Annotations, dt: Annotations, params: EvalParams) -> Blocks:
    """Group annotations into blocks and compute every IoU / OKS once."""
    default_ids = gt.file_image_ids if gt.file_image_ids is not None else gt.image_id
    img_ids = _sorted_unique(params.img_ids if params.img_ids is not None else default_ids)
    cat_ids = _sorted_unique(params.cat_ids if params.cat_ids is not None else gt.category_id)
    n_img = len(img_ids)

    def keys(ann: Annotations):
        img = _index(np.asarray(ann.image_id), img_ids) if len(ann) else np.zeros(0, np.int64)
        cat = _index(np.asarray(ann.category_id), cat_ids) if len(ann) else np.zeros(0, np.int64)
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
    d_idx = np.flatnonzero(d_keep)
    score_ranks = descending_ranks(dt.score)
    if params.use_cats:  # = lexsort((-score, img, cat)): by score, then stably by block (radix when small)
        by_score = order_by_rank(score_ranks[d_idx])
        key = (d_cat[d_idx] * n_img + d_img[d_idx])[by_score]
        key = key.astype(np.uint16) if len(key) and key.max() < 65536 else key
        d_idx = d_idx[by_score[np.argsort(key, kind="stable")]]
    else:
        d_idx = d_idx[np.lexsort((d_listed[d_idx], -dt.score[d_idx], d_img[d_idx], d_cat[d_idx]))]

    g_key = g_cat[g_idx] * n_img + g_img[g_idx]
    d_key = d_cat[d_idx] * n_img + d_img[d_idx]
    # rank inside block, cut at maxDets[-1]
    d_first = np.r_[True, d_key[1:] != d_key[:-1]] if len(d_key) else np.zeros(0, bool)
    starts = np.flatnonzero(d_first)
    rank = np.arange(len(d_key)) - np.repeat(starts, np.diff(np.r_[starts, len(d_key)]))
    top = rank < params.max_dets[-1]
    d_idx, d_key, rank = d_idx[top], d_key[top], rank[top]

    block_keys = _sorted_unique(np.concatenate([g_key, d_key]))
    g_block = np.searchsorted(block_keys, g_key)
    d_block = np.searchsorted(block_keys, d_key)
    B = len(block_keys)
    gt_start = np.r_[0, np.cumsum(np.bincount(g_block, minlength=B))].astype(np.int64)
    dt_start = np.r_[0, np.cumsum(np.bincount(d_block, minlength=B))].astype(np.int64)
    n_g = np.diff(gt_start)
    n_d = np.diff(dt_start)
    iou_start = np.r_[0, np.cumsum(n_g * n_d)][:-1].astype(np.int64)

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
        # One global stable order by score over the block-ordered detections (image order
        # inside a category, score order inside an image): every subset is sorted the same way.
        score_order=order_by_rank(score_ranks[d_idx]),
    )


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

    run_chunks(ious, np.diff(dt_start) * np.diff(gt_start) + 1)
    return out


def run_chunks(function, weights: np.ndarray, min_weight: float = 2e6) -> None:
    """Call ``function(lo, hi)`` over consecutive ranges of items 0..len(weights) with about
    equal total weight, in threads (the compiled core releases the GIL). Small jobs run inline."""
    n = len(weights)
    total = float(weights.sum()) if n else 0.0
    parts = min(worker_count(), max(1, int(total // min_weight)), max(n, 1))
    if parts == 1:
        function(0, n)
        return
    bounds = np.searchsorted(np.cumsum(weights), total * np.arange(1, parts) / parts, side="right")
    edges = [0, *sorted(set(int(b) for b in bounds)), n]
    failures: list[BaseException] = []

    def guarded(lo: int, hi: int) -> None:
        try:
            function(lo, hi)
        except BaseException as err:  # noqa: BLE001 - re-raised in the calling thread
            failures.append(err)

    threads = [threading.Thread(target=guarded, args=(lo, hi)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


class MaskTable(Sequence):
    """N masks given as COCO compressed RLE strings, with their statistics (compiled core).

    buffer: bytes (or anything with the buffer protocol: a memory map, msgspec.Raw) holding
    the strings; starts, lengths (N,) int64 byte ranges in it; raw: the strings are JSON
    string content read straight from a file (a doubled backslash stands for one; any other
    character outside the RLE alphabet is refused); sizes (N, 2) [height, width].
    Statistics: areas (N,) pixel areas, totals (N,) pixels covered by the runs (height *
    width when valid), boxes (N, 4) inclusive pixel boxes [x0, y0, x1, y1] ([0, 0, -1, -1]
    when empty); bad: (k, reason) of the first string that cannot be decoded ("truncated" or
    "character"), else None. deferred: statistics are computed on first use, or by the mask
    IoU pass as it decodes the masks anyway (one decoding instead of two; that pass finds
    the areas and totals, not the rows of the boxes: ``boxes`` decodes those masks again);
    masks are never kept decoded. As a sequence: the counts strings (unescaped).
    """

    def __init__(self, buffer: bytes, starts: np.ndarray, lengths: np.ndarray, sizes: np.ndarray,
                 raw: bool = False, deferred: bool = False):
        self.buffer = buffer
        self.starts = np.ascontiguousarray(starts, dtype=np.int64)
        self.lengths = np.ascontiguousarray(lengths, dtype=np.int64)
        self.sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.raw = raw
        n = len(self.starts)
        # 0 not decoded yet, 1 done, 2 done but the box holds only the columns (every row),
        # < 0 cannot be decoded
        self.status = np.zeros(n, dtype=np.int8)
        self._areas = np.zeros(n, dtype=np.int64)
        self._totals = np.zeros(n, dtype=np.int64)
        self._boxes = np.zeros((n, 4), dtype=np.int64)
        if not deferred:
            self.finish()

    def finish(self, boxes: bool = False) -> "MaskTable":
        """Compute the statistics not computed yet (with ``boxes``: and the boxes' rows)."""
        if boxes:
            self.status[self.status == 2] = 0
        if len(self) and not self.status.all():
            heights = np.ascontiguousarray(self.sizes[:, 0])

            def stats(lo: int, hi: int) -> None:
                _evalcore.rle_stats(self.buffer, self.starts, self.lengths, int(self.raw), heights, lo, hi,
                                    self.status, self._areas, self._totals, self._boxes)

            run_chunks(stats, np.where(self.status == 0, self.lengths, 0))
        return self

    @property
    def areas(self) -> np.ndarray:
        return self.finish()._areas

    @property
    def totals(self) -> np.ndarray:
        return self.finish()._totals

    @property
    def boxes(self) -> np.ndarray:
        return self.finish(boxes=True)._boxes

    @property
    def bad(self) -> Optional[tuple[int, str]]:
        failed = np.flatnonzero(self.finish().status < 0)
        if not len(failed):
            return None
        k = int(failed[0])
        return k, "truncated" if self.status[k] == -1 else "character"

    @classmethod
    def from_strings(cls, counts: Sequence[Union[str, bytes]], sizes: np.ndarray) -> "MaskTable":
        """From counts strings (str or bytes), e.g. RLE dicts' ``counts`` (decoded as
        pycocotools does: no check of the characters)."""
        encoded = [c.encode("utf-8") if isinstance(c, str) else bytes(c) for c in counts]
        lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
        starts = np.cumsum(lengths) - lengths
        return cls(b"".join(encoded), starts, lengths, sizes)

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        start = int(self.starts[index])
        text = bytes(memoryview(self.buffer)[start:start + int(self.lengths[index])]).decode("utf-8")
        return text.replace("\\\\", "\\") if self.raw else text


def mask_table(annotations: Annotations) -> MaskTable:
    """The annotations' masks as a :class:`MaskTable` (``annotations.masks`` when already built)."""
    if annotations.masks is not None:
        return annotations.masks
    return MaskTable.from_strings(annotations.counts, annotations.mask_size)


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
    run_chunks(ious, (chars[dt_start[1:]] - chars[dt_start[:-1]]) * np.where(n_g > 0, 1 + n_g, 0))
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
    gt_kpts = np.ascontiguousarray(gt_kpts, dtype=np.float64)
    terms = np.empty((len(d), len(variances)))
    _evalcore.oks_exponents(np.ascontiguousarray(dt_kpts, dtype=np.float64), gt_kpts,
                            np.ascontiguousarray(gt_bbox, dtype=np.float64),
                            np.ascontiguousarray(gt_area, dtype=np.float64), variances, d, g, terms)
    np.exp(terms, out=terms)
    out = np.empty(len(d))
    _evalcore.oks_means(terms, gt_kpts, g, out)
    return out


@dataclass
class Variant:
    """Which ground truths count (0), are ignore regions (1) or are absent (2), per block
    order; which images take part; and optionally which unmatched detections are ignored."""

    gt_state: np.ndarray  # (G,) uint8 in block order
    image_included: Optional[np.ndarray] = None  # (n_img,) bool; None: all
    dt_unmatched_ignored: Optional[np.ndarray] = None  # (D,) bool in block order


@dataclass
class Accumulated:
    """pycocotools ``eval`` arrays for one variant family (all area ranges)."""

    precision: np.ndarray  # (T, R, K, A, M)
    recall: np.ndarray  # (T, K, A, M)
    scores: np.ndarray  # (T, R, K, A, M)
    stats: np.ndarray  # (12,) or (10,)
    persons: int = -1  # ground truths counted in the variant (set by callers that know)


def base_state(gt: Annotations, blocks: Blocks, params: EvalParams) -> np.ndarray:
    """pycocotools' ``ignore`` per gt in block order: iscrowd (keypoints: or no keypoints)."""
    ignore = gt.iscrowd[blocks.gt_order].copy()
    if params.iou_type == "keypoints":
        ignore |= gt.num_keypoints[blocks.gt_order] == 0
    return ignore.astype(np.uint8)


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

    run_chunks(rows, np.full(V, float(T * n)), min_weight=2e5)
    return Matches(candidates, out, D)


def variant_states(variant: Variant, gt: Annotations, blocks: Blocks, params: EvalParams) -> np.ndarray:
    """Per area range, the state of every gt: (A, G) uint8 (out-of-range areas are ignored)."""
    gt_area = gt.area[blocks.gt_order]
    states = np.empty((len(params.area_rng), len(gt_area)), dtype=np.uint8)
    for a, (lo, hi) in enumerate(params.area_rng):
        out_of_range = (gt_area < lo) | (gt_area > hi)
        states[a] = np.where(variant.gt_state == 2, 2, np.maximum(variant.gt_state, out_of_range))
    return states


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
    outputs = [(-np.ones((T, R, K, A, M)), -np.ones((T, K, A, M)), -np.ones((T, R, K, A, M))) for _ in variants]
    if len(gt_ids) == 0:  # no ground truth: every cell stays -1 (npig is 0 everywhere)
        return [Accumulated(precision=p, recall=r, scores=s, stats=summarize(p, r, params)) for p, r, s in outputs]
    # Shared by the variants
    has_dt = np.diff(blocks.dt_start) > 0
    dt_cat = blocks.block_cat[blocks.dt_block].astype(np.int64)
    gt_cat = blocks.block_cat[blocks.gt_block].astype(np.int64)
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
        present = np.bincount(blocks.gt_block[variant.gt_state != 2], minlength=len(blocks.block_img)) > 0
        block_used = included_blocks & (present | has_dt)
        dt_out = area_out if variant.dt_unmatched_ignored is None else area_out | variant.dt_unmatched_ignored
        inputs.append(dict(
            matches=matches.gt[k * A:(k + 1) * A], candidate_of=candidate_of,
            gt_state=np.ascontiguousarray(gt_states, dtype=np.uint8), gt_ids=gt_ids,
            gt_used=block_used[blocks.gt_block].astype(np.uint8), gt_cat=gt_cat, order=blocks.score_order,
            dt_used=block_used[blocks.dt_block].astype(np.uint8), dt_cat=dt_cat, dt_rank=dt_rank,
            dt_scores=dt_scores, dt_out=dt_out, rec_thrs=rec_thrs, max_dets=max_dets, categories=K))

    def units(lo: int, hi: int) -> None:  # unit u: variant u // A, area range u % A
        while lo < hi:
            k, a = divmod(lo, A)
            stop = min(hi, (k + 1) * A)
            precision, recall, scores = outputs[k]
            _evalcore.accumulate(**inputs[k], area_lo=a, area_hi=a + stop - lo,
                                 precision=precision, recall=recall, scores=scores)
            lo = stop

    run_chunks(units, np.full(len(variants) * A, float(T * len(dt_area))), min_weight=2e5)
    return [Accumulated(precision=p, recall=r, scores=s, stats=summarize(p, r, params)) for p, r, s in outputs]


def _summary_value(arr: np.ndarray, params: EvalParams, ap: bool, iou_thr=None, area="all", max_dets=100) -> float:
    # As pycocotools' _summarize: a label or maxDets value the params lack selects nothing (-1).
    aind = [i for i, label in enumerate(params.area_rng_lbl) if label == area]
    mind = [i for i, m in enumerate(params.max_dets) if m == max_dets]
    s = arr
    if iou_thr is not None:
        s = s[np.where(iou_thr == np.asarray(params.iou_thrs))[0]]
    s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
    valid = s[s > -1]
    return -1.0 if len(valid) == 0 else float(np.mean(valid))


def summarize(precision: np.ndarray, recall: np.ndarray, params: EvalParams) -> np.ndarray:
    """The 12 (10 for keypoints) numbers of pycocotools ``summarize``, in its order."""
    P, Rc = precision, recall
    if params.iou_type == "keypoints":
        md = 20  # pycocotools hard-codes maxDets=20 for keypoints (-1 when 20 is not in max_dets)
        return np.array([
            _summary_value(P, params, True, None, "all", md),
            _summary_value(P, params, True, .5, "all", md),
            _summary_value(P, params, True, .75, "all", md),
            _summary_value(P, params, True, None, "medium", md),
            _summary_value(P, params, True, None, "large", md),
            _summary_value(Rc, params, False, None, "all", md),
            _summary_value(Rc, params, False, .5, "all", md),
            _summary_value(Rc, params, False, .75, "all", md),
            _summary_value(Rc, params, False, None, "medium", md),
            _summary_value(Rc, params, False, None, "large", md),
        ])
    md = params.max_dets
    return np.array([
        _summary_value(P, params, True, None, "all", 100),  # pycocotools: maxDets=100, not md[2]
        _summary_value(P, params, True, .5, "all", md[2]),
        _summary_value(P, params, True, .75, "all", md[2]),
        _summary_value(P, params, True, None, "small", md[2]),
        _summary_value(P, params, True, None, "medium", md[2]),
        _summary_value(P, params, True, None, "large", md[2]),
        _summary_value(Rc, params, False, None, "all", md[0]),
        _summary_value(Rc, params, False, None, "all", md[1]),
        _summary_value(Rc, params, False, None, "all", md[2]),
        _summary_value(Rc, params, False, None, "small", md[2]),
        _summary_value(Rc, params, False, None, "medium", md[2]),
        _summary_value(Rc, params, False, None, "large", md[2]),
    ])


def evaluate(gt: Annotations, dt: Annotations, params: Optional[EvalParams] = None) -> Accumulated:
    """One plain COCO evaluation: what ``COCOeval.evaluate(); accumulate()`` computes."""
    params = params or EvalParams()
    blocks = make_blocks(gt, dt, params)
    return accumulate(gt, dt, blocks, params, Variant(base_state(gt, blocks, params)))


def nearest_gt(blocks: Blocks) -> np.ndarray:
    """For each detection (block order), the gt (block order) it overlaps most; -1 if none.

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
    best = np.maximum.reduceat(blocks.ious, starts)
    row_of_pair = np.repeat(np.arange(len(rows)), n_g[rows])
    is_best = blocks.ious == best[row_of_pair]
    first = np.full(len(rows), np.iinfo(np.int64).max)
    np.minimum.at(first, row_of_pair[is_best], (np.arange(len(row_of_pair)) - starts[row_of_pair])[is_best])
    overlapping = best > 0
    result[rows[overlapping]] = blocks.gt_start[blocks.dt_block[rows[overlapping]]] + first[overlapping]
    return result
