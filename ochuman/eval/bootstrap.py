"""Bootstrap intervals of COCO AP: images resampled with replacement, the evaluation's matches
re-accumulated per sample (``ochuman eval --bootstrap N``).

Samples
    The resampled images are those of the evaluated ground-truth file (official mode: the images
    of the official file; ignore mode: every image of the ground truth), in id order: image
    ``u`` of ``n``. Sample ``b`` is row ``b`` of ``numpy.random.default_rng(seed).integers(0,
    n, size=(N, n))``: ``n`` draws with replacement; an image drawn ``k`` times counts ``k``
    times (:func:`image_weights`). Every results file of a report is scored on the same samples,
    so differences between them are paired.

What a sample scores
    Exactly what pycocotools scores on a ground truth in which each image drawn ``k`` times is
    replaced by ``k`` consecutive copies of itself (new image ids in the same order), its
    persons and detections copied with it: a person counts ``k`` times in recall's denominator
    and each detection appears ``k`` times in the score sort. Ties keep the order of that sort:
    detections of equal score go by image, the copies of an image one after the other, each copy
    holding its detections in their order inside the image (so two tied detections d1, d2 of an
    image drawn twice come as d1 d2 d1 d2). Matching does not change with copies, so the matches
    of the evaluation are reused and only the accumulation runs per sample (compiled core,
    ``weighted_accumulate``), for the area range "all" and the largest maxDets: the numbers of
    :data:`INTERVAL_STATS`. With every weight 1 these are pycocotools' numbers exactly.

Intervals
    95% percentile intervals (``numpy.percentile`` at 2.5 and 97.5, linear). A sample where a
    number is undefined (-1: no counted person drawn) is left out of that number's interval;
    ``dAP_ci`` is the interval of the per-sample differences AP(row) - AP(first results file),
    same subset and category.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

import ochuman.parallel as parallel
from ochuman import _evalcore
from ochuman.eval.annotations import Annotations
from ochuman.eval.blocks import Blocks
from ochuman.eval.ground_truth import GroundTruth
from ochuman.eval.matching import Variant, match, variant_states
from ochuman.eval.params import EvalParams
from ochuman.eval.states import GtState

#: the summary numbers that get intervals: those pycocotools reads at area "all" and the largest
#: maxDets, as (name, AP (precision) or AR (recall), IoU threshold or None for the mean)
INTERVAL_STATS = {
    "segm": (("AP", True, None), ("AP50", True, .5), ("AP75", True, .75), ("AR100", False, None)),
    "bbox": (("AP", True, None), ("AP50", True, .5), ("AP75", True, .75), ("AR100", False, None)),
    "keypoints": (("AP", True, None), ("AP50", True, .5), ("AP75", True, .75),
                  ("AR", False, None), ("AR50", False, .5), ("AR75", False, .75)),
}
LEVEL = 0.95
PERCENTILES = (2.5, 97.5)  # of a LEVEL interval
#: bytes of precision arrays held at once (samples are accumulated in chunks)
CHUNK_BYTES = 64 << 20


def resampled_images(ground: GroundTruth, mode: str) -> np.ndarray:
    """(n,) sorted ids of the images a sample draws from: the official file's (official mode) or
    every image of the ground truth (ignore mode)."""
    ids = ground.image_ids[ground.file_images] if mode == "official" else ground.image_ids
    return np.sort(np.asarray(ids))


def image_weights(n_images: int, samples: int, seed: int) -> np.ndarray:
    """(samples, n_images) int32: how many times each image was drawn in each sample."""
    if n_images == 0:
        return np.zeros((samples, 0), dtype=np.int32)
    draws = np.random.default_rng(seed).integers(0, n_images, size=(samples, n_images))
    flat = draws + (np.arange(samples, dtype=np.int64) * n_images)[:, None]
    return np.bincount(flat.ravel(), minlength=samples * n_images).reshape(samples, n_images).astype(np.int32)


@dataclass
class Resampling:
    """The true and false positives of one results file, ready for weighted accumulation.

    Lists l = v * K + k (variant, category) of items (its detections that are a true or false
    positive at some IoU threshold, by score) from list_start (L + 1,); item_fate (N, T) uint8:
    1 true positive, 2 false positive, 0 ignored, per threshold; item_img (N,) image index
    0..n-1 of :func:`resampled_images`; item_run (N,): 1, or m > 1 at the first of m tied items
    (one image, one score) and 0 at the others; persons (L, n) counted persons per list and
    image; positives: per list, (the images of its items, (T * 2, their count) its true then
    false positives per threshold and image, as doubles)."""

    item_fate: np.ndarray
    item_img: np.ndarray
    item_run: np.ndarray
    list_start: np.ndarray
    persons: np.ndarray
    positives: list
    variants: int
    categories: int


def prepare(gt: Annotations, dt: Annotations, blocks: Blocks, params: EvalParams, variants: list[Variant],
            image_ids: np.ndarray) -> Resampling:
    """Match the variants once at area "all" (as the evaluation does) and list each one's true
    and false positives per category, by score; image_ids: :func:`resampled_images`."""
    a = params.area_rng_lbl.index("all")
    V, T, D = len(variants), len(params.iou_thrs), len(blocks.dt_order)
    K = len(blocks.cat_ids) if params.use_cats else 1
    n = len(image_ids)
    # index in image_ids of each block image, -1 for an image that is not resampled
    img_of = np.full(len(blocks.img_ids), -1, dtype=np.int64)
    if n:
        position = np.clip(np.searchsorted(image_ids, blocks.img_ids), 0, n - 1)
        img_of = np.where(image_ids[position] == blocks.img_ids, position, -1)
    states = (np.stack([variant_states(v, gt, blocks, params)[a] for v in variants]) if V
              else np.zeros((0, len(blocks.gt_order)), np.uint8))
    gt_img = img_of[blocks.block_img[blocks.gt_block]]
    gt_cat = blocks.block_cat[blocks.gt_block].astype(np.int64) if params.use_cats else np.zeros(len(gt_img), np.int64)
    persons = np.zeros((V * K, n), dtype=np.int64)
    for v, variant in enumerate(variants):
        included = np.ones(len(blocks.img_ids), bool) if variant.image_included is None else variant.image_included
        counted = (states[v] == GtState.COUNTED) & included[blocks.block_img[blocks.gt_block]] & (gt_img >= 0)
        persons[v * K:(v + 1) * K] = np.bincount(gt_cat[counted] * n + gt_img[counted], minlength=K * n).reshape(K, n)
    empty = Resampling(np.zeros((0, T), np.uint8), np.zeros(0, np.int32), np.zeros(0, np.int32),
                       np.zeros(V * K + 1, np.int64), persons,
                       [(np.zeros(0, np.int64), np.zeros((T * 2, 0)))] * (V * K), V, K)
    if D == 0 or len(blocks.gt_order) == 0 or V == 0 or n == 0:
        return empty
    matches = match(blocks, states, gt.iscrowd[blocks.gt_order], params)
    candidate = matches.candidate_of()
    has = candidate >= 0
    g = np.full((V, T, D), -1, dtype=np.int64)
    g[:, :, has] = matches.gt[:, :, candidate[has]]
    hit = g >= 0
    g_safe = np.where(hit, g, 0)
    matched = hit & (gt.ann_id[blocks.gt_order][g_safe] != 0)  # a match to id 0 reads as none (pycocotools)
    dt_area = dt.area[blocks.dt_order]
    lo, hi = params.area_rng[a]
    area_out = (dt_area < lo) | (dt_area > hi)
    dt_img = img_of[blocks.block_img[blocks.dt_block]]
    fate = np.zeros((V, D, T), dtype=np.uint8)
    for v, variant in enumerate(variants):
        out = area_out if variant.dt_unmatched_ignored is None else area_out | variant.dt_unmatched_ignored
        included = np.ones(len(blocks.img_ids), bool) if variant.image_included is None else variant.image_included
        used = included[blocks.block_img[blocks.dt_block]] & (dt_img >= 0)
        ignored = (hit[v] & (states[v][g_safe[v]] == GtState.IGNORED)) | (~matched[v] & out[None])
        counts = used[None] & ~ignored
        fate[v] = (np.where(matched[v], 1, 2) * counts).T
    # Detections by category, then by score (the stable order of the evaluation).
    dt_cat = blocks.block_cat[blocks.dt_block].astype(np.int64) if params.use_cats else np.zeros(D, np.int64)
    order = blocks.score_order[np.argsort(dt_cat[blocks.score_order], kind="stable")]
    v_of, pos = np.nonzero(fate[:, order].any(axis=2))
    if len(pos) == 0:
        return empty
    items = order[pos]
    lists = v_of * K + dt_cat[items]
    score = dt.score[blocks.dt_order][items]
    same_score = (score[1:] == score[:-1]) | (np.isnan(score[1:]) & np.isnan(score[:-1]))
    item_img = dt_img[items]
    starts = np.flatnonzero(np.r_[True, (lists[1:] != lists[:-1]) | (item_img[1:] != item_img[:-1]) | ~same_score])
    item_run = np.zeros(len(items), dtype=np.int32)
    item_run[starts] = np.diff(np.r_[starts, len(items)])
    item_fate = np.ascontiguousarray(fate[v_of, items])  # (N, T)
    list_start = np.searchsorted(lists, np.arange(V * K + 1))
    positives = []
    for l in range(V * K):
        fates, images = item_fate[list_start[l]:list_start[l + 1]], item_img[list_start[l]:list_start[l + 1]]
        shown = np.unique(images)
        q, t = np.nonzero(fates)  # row (t * 2 + kind) of column image: kind 0 true, 1 false positives
        slot = (t * 2 + fates[q, t] - 1) * len(shown) + np.searchsorted(shown, images[q])
        positives.append((shown, np.bincount(slot, minlength=T * 2 * len(shown)).reshape(T * 2, len(shown))
                          .astype(np.float64)))
    return Resampling(
        item_fate=item_fate, item_img=item_img.astype(np.int32), item_run=item_run,
        list_start=list_start.astype(np.int64), persons=persons, positives=positives, variants=V, categories=K)


def sample_stats(plan: Resampling, weights: np.ndarray, params: EvalParams, per_category: bool = False) -> np.ndarray:
    """(V, S, C, n_stats) the :data:`INTERVAL_STATS` of every variant in every sample
    (weights (S, n) of :func:`image_weights`); C: 1 (over the categories), or 1 + K with
    per_category (then one per category)."""
    V, K = plan.variants, plan.categories
    T, R = len(params.iou_thrs), len(params.rec_thrs)
    S, n = weights.shape
    L = V * K
    stats = INTERVAL_STATS[params.iou_type]
    C = 1 + K if per_category else 1
    out = np.full((V, S, C, len(stats)), -1.0)
    if n == 0:  # no image to draw: every number undefined, as pycocotools' -1 without ground truth
        return out
    rec_thrs = np.ascontiguousarray(params.rec_thrs, dtype=np.float64)
    thresholds = np.asarray(params.iou_thrs)
    chunk = max(1, CHUNK_BYTES // (8 * max(L * T * R, 1)))
    for first in range(0, S, chunk):
        w = np.ascontiguousarray(weights[first:first + chunk], dtype=np.int32)
        s_count = len(w)
        npig = np.ascontiguousarray((plan.persons @ w.T.astype(np.int64)).T)  # (S, L)
        # (S, L, T * 2) weighted true / false positives: exact in doubles (integers below 2**53)
        totals = np.empty((s_count, L, T * 2), dtype=np.int64)
        for l, (shown, counts) in enumerate(plan.positives):
            totals[:, l] = np.rint(counts @ w[:, shown].T.astype(np.float64)).T
        precision = np.empty((s_count, L, T, R))
        recall = np.empty((s_count, L, T))

        def samples(lo: int, hi: int) -> None:
            _evalcore.weighted_accumulate(plan.item_fate, plan.item_img, plan.item_run, plan.list_start, w, n,
                                          npig, totals, rec_thrs, lo, hi, precision, recall)

        parallel.run_chunks(samples, np.full(s_count, float(plan.item_fate.size + 1)), min_weight=2e5)
        P = precision.reshape(s_count, V, K, T, R).transpose(0, 1, 3, 4, 2)  # (S, V, T, R, K)
        Rc = recall.reshape(s_count, V, K, T).transpose(0, 1, 3, 2)  # (S, V, T, K)
        for s in range(s_count):
            for v in range(V):
                p, r = np.ascontiguousarray(P[s, v]), Rc[s, v]
                out[v, first + s, 0] = _stats(p, r, stats, thresholds)
                for k in range(C - 1):
                    out[v, first + s, 1 + k] = _stats(np.ascontiguousarray(p[:, :, k:k + 1]), r[:, k:k + 1], stats,
                                                      thresholds)
    return out


def _stats(precision: np.ndarray, recall: np.ndarray, stats, thresholds: np.ndarray) -> list[float]:
    """pycocotools' ``_summarize`` at one area range and maxDets: precision (T, R, K), recall
    (T, K); the mean of the cells > -1 (in the same order, so the same float), -1 if none."""
    values = []
    for _, ap, iou_thr in stats:
        s = precision if ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == thresholds)[0]]
        valid = s[s > -1]
        values.append(-1.0 if len(valid) == 0 else float(np.mean(valid)))
    return values


def interval(values: np.ndarray) -> Optional[list[float]]:
    """[lo, hi]: the 95% percentile interval of the defined (> -1) values, None if none is."""
    values = values[values > -1]
    if len(values) == 0:
        return None
    lo, hi = np.percentile(values, PERCENTILES)
    return [float(lo), float(hi)]


def difference_interval(values: np.ndarray, first: np.ndarray) -> Optional[list[float]]:
    """[lo, hi] of the paired differences values - first over samples where both are defined."""
    both = (values > -1) & (first > -1)
    if not both.any():
        return None
    lo, hi = np.percentile(values[both] - first[both], PERCENTILES)
    return [float(lo), float(hi)]


def interval_keys(iou_type: str, paired: bool) -> list[str]:
    """The keys a row gains: ``<stat>_ci`` per :data:`INTERVAL_STATS`, then with several results
    files ``dAP_vs_first`` and ``dAP_ci`` (None in the first file's rows)."""
    return [f"{name}_ci" for name, _, _ in INTERVAL_STATS[iou_type]] + (["dAP_vs_first", "dAP_ci"] if paired else [])


def interval_columns(iou_type: str, values, samples: np.ndarray, paired: bool, first_values=None,
                     first_samples: Optional[np.ndarray] = None) -> dict:
    """A row's interval keys: values (n_stats,) its summary numbers, samples (S, n) its
    :func:`sample_stats`; first_values / first_samples: the same of the first results file's
    row (None for the first file's own rows)."""
    columns = {f"{name}_ci": interval(samples[:, j]) for j, (name, _, _) in enumerate(INTERVAL_STATS[iou_type])}
    if paired:
        defined = first_values is not None and values[0] > -1 and first_values[0] > -1
        columns["dAP_vs_first"] = float(values[0] - first_values[0]) if defined else None
        columns["dAP_ci"] = (difference_interval(samples[:, 0], first_samples[:, 0]) if first_values is not None
                             else None)
    return columns


def excludes_zero(ci: Optional[list]) -> bool:
    """Whether an interval [lo, hi] lies entirely on one side of 0."""
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def interval_records(rows: list[dict], stat_names, iou_type: str) -> list[dict]:
    """One record per (row, number with an interval): results, subset (category, image_set,
    visibility: when rows carry them), stat, value,
    lo, hi; and for AP after the first results file: diff_vs_first, diff_lo, diff_hi,
    significant (the difference's interval excludes 0)."""
    records = []
    for row in rows:
        if row.get("reported"):
            continue
        for name, _, _ in INTERVAL_STATS[iou_type]:
            ci = row.get(f"{name}_ci")
            record = {"results": row["results"], "subset": row["subset"],
                      **{key: row[key] for key in ("category", "image_set", "visibility") if key in row},
                      "stat": name, "value": row[name], "lo": ci[0] if ci else None, "hi": ci[1] if ci else None}
            if "dAP_vs_first" in row:
                diff = row["dAP_ci"] if name == "AP" else None
                record.update(diff_vs_first=row["dAP_vs_first"] if name == "AP" else None,
                              diff_lo=diff[0] if diff else None, diff_hi=diff[1] if diff else None,
                              significant=excludes_zero(diff) if name == "AP" and row["dAP_vs_first"] is not None
                              else None)
            records.append(record)
    return records


def leaderboard_rows(rows: list[dict]) -> list[dict]:
    """Rows for a table or markdown leaderboard: intervals as ``[lo, hi]`` with 3 decimals, and
    ``dAP_vs_first`` signed, marked `` *`` when its interval excludes 0."""
    shown = []
    for row in rows:
        out = {}
        for key, value in row.items():
            if key.endswith("_ci"):
                value = "" if value is None else f"[{value[0]:.3f}, {value[1]:.3f}]"
            elif key == "dAP_vs_first":
                value = "" if value is None else f"{value:+.3f}" + (" *" if excludes_zero(row.get("dAP_ci")) else "")
            out[key] = value
        shown.append(out)
    return shown


#: the footnote of a leaderboard with differences
SIGNIFICANCE_NOTE = ("* the 95% bootstrap interval of the paired difference in AP (dAP_ci) excludes 0")
