"""Errors by occlusion level (``ochuman eval --errors``): every false positive of AP at one IoU
threshold T gets one class, every person never matched is ``missed``, and each class gets its
count and ``dAP``: how much AP at T rises when that class alone is fixed, as TIDE (Bolya et
al. 2020, github.com/dbolya/tide, ``tidecv/errors``) defines its oracle fixes.

Which detections and persons
    Per ground-truth variant (a subset or MaxIoU bin, in either mode), at threshold T, area
    range "all", the largest maxDets: the matching is the evaluation's own (one compiled
    matching call of every variant at T). A false positive is a detection that counts in AP and
    is matched to nothing (detections matched to ignore regions, or ignored by the ``ignore``
    mode's nearest-person rule, are none; a match to a person whose id is 0, which pycocotools
    reads as none, is kept as a match here). The *persons* every test looks at are the persons
    the variant counts, as TIDE tests against the ground truth that is not ignored: ignore
    regions (crowds, persons outside the subset in ``ignore`` mode, box-only persons) and
    persons absent from the variant (``official`` mode) take no part. IoU is the evaluation's
    (mask, box; OKS for keypoints); thresholds T are capped at ``1 - 1e-10`` as in matching.

The classes, tested in this order (:data:`ERROR_CLASSES`)
    ``duplicate``     IoU >= T with a person already matched by a higher-scoring detection (an
                      unmatched detection reaching T with a person can only be one: greedy
                      matching would have taken the person otherwise).
    ``merged``        IoU < T with every person, but IoU >= T with the union of the two or more
                      persons it covers at least half of (pixels; boxes as regions for bbox).
    ``partial``       IoU < T with every person, but at least 80% of the detection lies inside
                      one person (a fragment; of an empty detection nothing lies anywhere).
    ``localization``  best IoU in [0.1, T).
    ``background``    best IoU < 0.1 (no person at all included).
    ``missed``        (persons) counted persons no detection matched.
    Keypoints (OKS): ``duplicate``, ``localization``, ``background`` and ``missed`` only
    (:data:`KEYPOINT_ERROR_CLASSES`). Keypoints have no pixels to cover or lie inside: "covers
    half a person" or "80% inside a person" have no counterpart in OKS that would not be a new
    convention, so no ``merged``/``partial`` (they would be ``localization`` or ``background``).

The oracle fixes (TIDE's ``Error.fix`` of the class named; one class fixed at a time)
    ``duplicate``     TIDE ``DuplicateError``: the detection is removed.
    ``background``    TIDE ``BackgroundError``: the detection is removed.
    ``localization``, ``merged``, ``partial``: TIDE ``BoxError`` with its ``BestGTMatch``: the
                      detection's target person (the one of highest IoU, first on ties; for
                      ``partial`` the person holding the largest share of it) is matched to it
                      when that person is unmatched and the detection is the highest-scoring
                      of the false positives of these three classes aiming at it (TIDE's one
                      pool of ``BestGTMatch`` errors per person); otherwise it is removed.
    ``missed``        TIDE ``MissedError``: the person leaves the positives (recall's
                      denominator). TIDE counts as Miss only persons no ``BoxError`` aims at;
                      here, as the classes above define it, every unmatched person is
                      ``missed``, so this fix is TIDE's ``FalseNegativeError`` oracle.
    A removed detection is ignored where it stood (ranks and the maxDets cut of the others do
    not move, as in TIDE). The fixed matches go through the evaluation's own accumulation, so
    AP at T of the unfixed case is exactly pycocotools' and ``dAP = AP@T(fixed) - AP@T``. Every
    fix only removes false positives, turns one into a true positive or removes an unmatched
    person, so ``dAP >= 0``. A category that a ``missed`` fix leaves with no person counts
    AP 0 (TIDE's ``get_ap`` with no positives), not -1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ochuman.eval.accumulation import accumulate_variants
from ochuman.eval.annotations import Annotations, mask_table
from ochuman.eval.blocks import Blocks
from ochuman.eval.matching import Matches, Variant, match, variant_states
from ochuman.eval.params import EvalParams
from ochuman.eval.states import GtState

ERROR_CLASSES = ("duplicate", "merged", "partial", "localization", "background", "missed")
KEYPOINT_ERROR_CLASSES = ("duplicate", "localization", "background", "missed")
#: below this best IoU (OKS) a false positive is ``background``, from it ``localization`` (TIDE's bg_thresh)
BACKGROUND_IOU = 0.1
#: ``merged``: the persons whose area the detection covers at least this share of
MERGED_COVER = 0.5
#: ``partial``: at least this share of the detection lies inside one person
PARTIAL_INSIDE = 0.8
#: the classes whose fix matches the detection to its target person (TIDE's BestGTMatch pool)
_TARGETED = ("merged", "partial", "localization")


def error_classes(iou_type: str) -> tuple[str, ...]:
    """The classes reported for an iou type, in their test order."""
    return KEYPOINT_ERROR_CLASSES if iou_type == "keypoints" else ERROR_CLASSES


@dataclass
class ErrorAnalysis:
    """The errors of one variant at IoU ``threshold``.

    counts (C, K) int64: per class (``classes`` order) and category (the K axis of the
    evaluation's arrays); ap (K,): AP at the threshold per category (-1: no counted person);
    fixed_ap (C, K): the same with one class fixed (-1 where ``ap`` is -1); person_class (G,)
    int8, per person in block order: -1 unless it is ``missed``, else the index in ``classes``
    of the highest-scoring ``merged`` / ``partial`` / ``localization`` error aiming at it, or of
    ``missed`` when none does (why the person was missed)."""

    threshold: float
    classes: tuple[str, ...]
    counts: np.ndarray
    ap: np.ndarray
    fixed_ap: np.ndarray
    person_class: np.ndarray

    def person_errors(self) -> list:
        """(G,) per person in block order: None (not missed) or the class name of
        ``person_class``."""
        return [None if c < 0 else self.classes[c] for c in self.person_class.tolist()]

    def summary(self, category: Optional[int] = None) -> dict:
        """{class: {"count": n, "dAP": x}} over the categories with persons (their mean AP, as
        pycocotools averages), or of one category (index on the K axis)."""
        cats = slice(None) if category is None else slice(category, category + 1)
        valid = self.ap[cats] > -1
        base = float(self.ap[cats][valid].mean()) if valid.any() else -1.0
        out = {}
        for c, name in enumerate(self.classes):
            fixed = float(self.fixed_ap[c, cats][valid].mean()) if valid.any() else -1.0
            out[name] = {"count": int(self.counts[c, cats].sum()), "dAP": fixed - base}
        return out


def analyse_errors(gt: Annotations, dt: Annotations, blocks: Blocks, params: EvalParams,
                   variants: Sequence[Variant], threshold: float) -> list[ErrorAnalysis]:
    """The :class:`ErrorAnalysis` of each variant at IoU ``threshold`` (see the module doc)."""
    at = threshold_params(params, threshold)
    D = len(blocks.dt_order)
    states = [variant_states(v, gt, blocks, at) for v in variants]  # each (1, G): area "all"
    matched = np.full((len(variants), D), -1, dtype=np.int32)
    if states:
        found = match(blocks, np.concatenate(states), gt.iscrowd[blocks.gt_order], at)
        matched[:, found.candidates] = found.gt[:, 0]
    geometry = _PairGeometry(gt, dt, blocks, at.iou_type)
    lo, hi = at.area_rng[0]
    dt_area = dt.area[blocks.dt_order]
    out_of_range = (dt_area < lo) | (dt_area > hi)
    return [_analyse_variant(gt, dt, blocks, at, variant, state[0], row, geometry, out_of_range)
            for variant, state, row in zip(variants, states, matched)]


def threshold_params(params: EvalParams, threshold: float) -> EvalParams:
    """``params`` at the one IoU threshold, area range "all" only (its first range)."""
    return EvalParams(iou_type=params.iou_type, img_ids=params.img_ids, cat_ids=params.cat_ids,
                      iou_thrs=np.array([float(threshold)]), rec_thrs=params.rec_thrs,
                      max_dets=list(params.max_dets), area_rng=[list(params.area_rng[0])],
                      area_rng_lbl=[params.area_rng_lbl[0]], use_cats=params.use_cats,
                      kpt_oks_sigmas=params.kpt_oks_sigmas)


class _PairGeometry:
    """Every (detection, ground truth) pair of each block, in ``blocks.ious`` order: pair_dt,
    pair_gt (P,) block-order indices; for masks and boxes the intersection's area, so that
    the share of a person a detection covers and the share of a detection inside a person
    are exact (a mask intersection is an integer recovered from its IoU and the two areas)."""

    def __init__(self, gt: Annotations, dt: Annotations, blocks: Blocks, iou_type: str):
        self.gt, self.dt, self.blocks, self.iou_type = gt, dt, blocks, iou_type
        self.per_row = np.diff(blocks.gt_start)[blocks.dt_block]  # (D,) persons in each detection's block
        self.pair_dt = np.repeat(np.arange(len(self.per_row)), self.per_row)
        self.row_start = np.cumsum(self.per_row) - self.per_row  # (D,) each detection's first pair
        within = np.arange(len(self.pair_dt)) - self.row_start[self.pair_dt]
        self.pair_gt = blocks.gt_start[blocks.dt_block[self.pair_dt]] + within
        self.shapes = iou_type != "keypoints"
        self._union_ious = {}
        if not self.shapes:
            return
        if iou_type == "segm":
            self.dt_area = mask_table(dt).areas[blocks.dt_order].astype(np.float64)
            self.gt_area = mask_table(gt).areas[blocks.gt_order].astype(np.float64)
            iou = blocks.ious
            a, b = self.dt_area[self.pair_dt], self.gt_area[self.pair_gt]
            self.inter = np.rint(iou * (a + b) / (1 + iou))
        else:
            d, g = dt.bbox[blocks.dt_order], gt.bbox[blocks.gt_order]
            self.dt_area, self.gt_area = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
            self.inter = _box_intersection(d[self.pair_dt], g[self.pair_gt])

    def union_iou(self, d: int, persons: np.ndarray) -> float:
        """IoU of detection d with the union of the persons (block-order indices); kept, as
        the variants ask again for the same detection and persons."""
        key = (d, tuple(persons.tolist()))
        if key not in self._union_ious:
            self._union_ious[key] = self._union_iou(d, persons)
        return self._union_ious[key]

    def _union_iou(self, d: int, persons: np.ndarray) -> float:
        if self.iou_type == "segm":
            from pycocotools import mask as mask_utils

            dt_masks, gt_masks = mask_table(self.dt), mask_table(self.gt)
            def rle(table, sizes, i):
                return {"size": [int(v) for v in sizes[i]], "counts": table[i]}
            union = mask_utils.merge([rle(gt_masks, self.gt.mask_size, int(self.blocks.gt_order[g]))
                                      for g in persons], intersect=False)
            detection = rle(dt_masks, self.dt.mask_size, int(self.blocks.dt_order[d]))
            return float(np.asarray(mask_utils.iou([detection], [union], [0])).reshape(-1)[0])
        box = self.dt.bbox[self.blocks.dt_order[d]]
        boxes = self.gt.bbox[self.blocks.gt_order[persons]]
        inter = _union_area(_box_overlaps(box, boxes))
        union = self.dt_area[d] + _union_area(boxes) - inter
        return float(inter / union) if union > 0 else 0.0


def _box_intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Area of the intersection of [x, y, w, h] boxes a (N, 4) and b (N, 4), row by row."""
    w = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    return np.clip(w, 0, None) * np.clip(h, 0, None)


def _box_overlaps(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The intersections of one [x, y, w, h] box with each of boxes (N, 4), as boxes (empty: 0 wide)."""
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[0] + box[2], boxes[:, 0] + boxes[:, 2])
    y1 = np.minimum(box[1] + box[3], boxes[:, 1] + boxes[:, 3])
    return np.stack([x0, y0, np.clip(x1 - x0, 0, None), np.clip(y1 - y0, 0, None)], axis=1)


def _union_area(boxes: np.ndarray) -> float:
    """Area of the union of a few [x, y, w, h] boxes (N, 4): the cells of their corner grid
    that some box covers."""
    xs = np.sort(np.concatenate([boxes[:, 0], boxes[:, 0] + boxes[:, 2]]))  # repeated edges: cells of width 0
    ys = np.sort(np.concatenate([boxes[:, 1], boxes[:, 1] + boxes[:, 3]]))
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside_x = (boxes[:, 0, None] <= cx) & (cx <= boxes[:, 0, None] + boxes[:, 2, None])  # (N, X)
    inside_y = (boxes[:, 1, None] <= cy) & (cy <= boxes[:, 1, None] + boxes[:, 3, None])  # (N, Y)
    covered = (inside_x[:, :, None] & inside_y[:, None, :]).any(axis=0)  # (X, Y)
    return float((np.diff(xs)[:, None] * np.diff(ys)[None, :])[covered].sum())


def _row_best(values: np.ndarray, per_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row (detection) of the pair values laid out row by row, the largest value (-inf for
    a row without pairs) and its position in the row (the first on ties; -1 without pairs)."""
    best = np.full(len(per_row), -np.inf)
    where = np.full(len(per_row), -1, dtype=np.int64)
    rows = np.flatnonzero(per_row > 0)
    if len(rows) == 0:
        return best, where
    starts = np.r_[0, np.cumsum(per_row[rows])[:-1]]
    best[rows] = np.maximum.reduceat(values, starts)
    row_of_pair = np.repeat(np.arange(len(rows)), per_row[rows])
    hits = np.flatnonzero(values == best[rows][row_of_pair])
    first = np.r_[True, row_of_pair[hits][1:] != row_of_pair[hits][:-1]]
    where[rows[row_of_pair[hits[first]]]] = hits[first] - starts[row_of_pair[hits[first]]]
    return best, where


def classify(blocks: Blocks, geometry: "_PairGeometry", state: np.ndarray, false_positive: np.ndarray,
             threshold: float) -> tuple[dict, np.ndarray]:
    """The class of each false positive: ({class: (D,) bool}, target (D,) int64: the person
    (block order) a ``merged``, ``partial`` or ``localization`` error aims at, else -1).
    state (G,): the variant's states at area "all"; false_positive (D,) bool."""
    cap = min(float(threshold), 1 - 1e-10)
    per_row = geometry.per_row
    counted = (state == GtState.COUNTED)[geometry.pair_gt]
    iou = np.where(counted, blocks.ious, -np.inf)
    best, best_at = _row_best(iou, per_row)
    person_at = blocks.gt_start[blocks.dt_block] + best_at
    classes = {"duplicate": false_positive & (best >= cap)}
    rest = false_positive & ~classes["duplicate"]
    target = np.full(len(per_row), -1, dtype=np.int64)
    if geometry.shapes:
        merged = np.zeros(len(per_row), dtype=bool)
        with np.errstate(divide="ignore", invalid="ignore"):
            cover = geometry.inter / geometry.gt_area[geometry.pair_gt]
            inside = geometry.inter / geometry.dt_area[geometry.pair_dt]
        covers = counted & (cover >= MERGED_COVER)
        n_covered = np.bincount(geometry.pair_dt[covers], minlength=len(per_row))
        for d in np.flatnonzero(rest & (n_covered >= 2)):  # few: one mask over several persons
            pairs = slice(geometry.row_start[d], geometry.row_start[d] + per_row[d])
            persons = geometry.pair_gt[pairs][covers[pairs]]
            merged[d] = geometry.union_iou(int(d), persons) >= cap
        classes["merged"] = merged
        rest &= ~merged
        share, share_at = _row_best(np.where(counted & (inside >= 0), inside, -np.inf), per_row)
        classes["partial"] = rest & (share >= PARTIAL_INSIDE)
        target[classes["partial"]] = (blocks.gt_start[blocks.dt_block] + share_at)[classes["partial"]]
        rest &= ~classes["partial"]
    classes["localization"] = rest & (best >= BACKGROUND_IOU)
    classes["background"] = rest & ~classes["localization"]
    aimed = classes["localization"] | classes.get("merged", False)
    target[aimed] = person_at[aimed]
    return classes, target


def _analyse_variant(gt: Annotations, dt: Annotations, blocks: Blocks, at: EvalParams, variant: Variant,
                     state: np.ndarray, matched: np.ndarray, geometry: _PairGeometry,
                     out_of_range: np.ndarray) -> ErrorAnalysis:
    D, G = len(blocks.dt_order), len(blocks.gt_order)
    K = len(blocks.cat_ids) if at.use_cats else 1
    included = (np.ones(len(blocks.block_img), dtype=bool) if variant.image_included is None
                else variant.image_included[blocks.block_img])
    gt_cat = blocks.block_cat[blocks.gt_block].astype(np.int64)
    dt_cat = blocks.block_cat[blocks.dt_block].astype(np.int64)
    counted = (state == GtState.COUNTED) & included[blocks.gt_block]
    has_persons = np.bincount(gt_cat[counted], minlength=K) > 0
    ignored_unmatched = out_of_range.copy()
    if variant.dt_unmatched_ignored is not None:
        ignored_unmatched |= variant.dt_unmatched_ignored
    false_positive = included[blocks.dt_block] & has_persons[dt_cat] & (matched < 0) & ~ignored_unmatched
    classes, target = classify(blocks, geometry, state, false_positive, at.iou_thrs[0])
    taken = np.zeros(G, dtype=bool)
    taken[matched[matched >= 0]] = True
    missed = counted & ~taken
    # TIDE's BestGTMatch: per unmatched target person, the highest-scoring aiming error (block
    # order is score order inside a block, and a target lies in its detection's block)
    usable = target >= 0  # the merged, partial and localization errors
    usable[usable] = ~taken[target[usable]]
    first = np.full(G, D, dtype=np.int64)
    np.minimum.at(first, target[usable], np.flatnonzero(usable))
    fixed_to_person = np.zeros(D, dtype=bool)
    fixed_to_person[usable] = first[target[usable]] == np.flatnonzero(usable)

    names = error_classes(at.iou_type)
    fixed_variants, fixed_states, fixed_matches = [variant], [state[None]], [matched]
    base_ignored = (variant.dt_unmatched_ignored if variant.dt_unmatched_ignored is not None
                    else np.zeros(D, dtype=bool))
    for name in names:
        new_state, new_matched, removed = state, matched, np.zeros(D, dtype=bool)
        if name == "missed":
            new_state = np.where(missed, GtState.IGNORED, state).astype(np.uint8)
        elif name in _TARGETED:
            to_person = classes[name] & fixed_to_person
            new_matched = matched.copy()
            new_matched[to_person] = target[to_person]
            removed = classes[name] & ~to_person
        else:
            removed = classes[name]
        fixed_variants.append(Variant(variant.gt_state, variant.image_included, base_ignored | removed))
        fixed_states.append(new_state[None])
        fixed_matches.append(new_matched)
    rows = np.stack(fixed_matches)[:, None, :].astype(np.int32)
    accumulated = accumulate_variants(gt, dt, blocks, at, fixed_variants, fixed_states,
                                      Matches(np.arange(D, dtype=np.int64), rows, D))
    ap = [_ap_per_category(acc.precision) for acc in accumulated]
    base = ap[0]
    fixed = np.array([np.where(base > -1, np.where(a > -1, a, 0.0), -1.0) for a in ap[1:]]).reshape(len(names), K)
    counts = np.zeros((len(names), K), dtype=np.int64)
    for c, name in enumerate(names):
        if name == "missed":
            counts[c] = np.bincount(gt_cat[missed], minlength=K)
        else:
            counts[c] = np.bincount(dt_cat[classes[name]], minlength=K)
    person_class = np.full(G, -1, dtype=np.int8)
    person_class[missed] = names.index("missed")
    aimed = np.flatnonzero((first < D) & missed)  # missed persons some targeted error aims at
    for c, name in enumerate(names):
        if name in _TARGETED:
            person_class[aimed[classes[name][first[aimed]]]] = c
    return ErrorAnalysis(threshold=float(at.iou_thrs[0]), classes=names, counts=counts, ap=base, fixed_ap=fixed,
                         person_class=person_class)


def _ap_per_category(precision: np.ndarray) -> np.ndarray:
    """(K,) AP of each category from precision (1, R, K, 1, M): its 101 recall points at the
    largest maxDets; -1 for a category with no counted person."""
    cells = precision[0, :, :, 0, -1]  # (R, K)
    valid = cells > -1
    return np.where(valid.any(axis=0), np.where(valid, cells, 0).sum(axis=0) / np.maximum(valid.sum(axis=0), 1), -1.0)


def error_frame_rows(report) -> list[dict]:
    """The rows of :meth:`EvalReport.errors_frame <ochuman.eval.report.EvalReport.errors_frame>`:
    per results file, subset (then MaxIoU bin) and class: count and dAP over the categories."""
    rows = []
    for ev in report.evaluations:
        places = [(subset, None, None, analysis) for subset, analysis in ev.errors.items()]
        places += [(rng.name, rng.lo, rng.hi, analysis) for rng, analysis in ev.bin_errors.items()]
        for subset, lo, hi, analysis in places:
            for name, value in analysis.summary().items():
                rows.append({"results": ev.name, **ev.keys, "subset": subset, "max_iou_lo": lo,
                             "max_iou_hi": hi, "class": name, **value})
    return rows


def error_table(report) -> list[dict]:
    """The errors of a report's rows (then of its MaxIoU bins) for a table: results, subset
    (a bin as ``MaxIoU lo:hi``), category when rows name one, and one cell per class,
    ``count dAP`` (``12 +0.031``)."""
    named = report.categories is not None
    table = []
    for row in report.rows():
        if row.get("errors") is not None:
            table.append({"results": row["results"], **_keys(row), "subset": row["subset"],
                          **({"category": row["category"]} if named else {}), **_cells(row["errors"])})
    for row in report.ap_by_max_iou():
        table.append({"results": row["results"], **_keys(row), "subset": f"MaxIoU {row['max_iou_lo']:g}:{row['max_iou_hi']:g}",
                      **({"category": report.categories[0] if len(report.categories) == 1 else "all"} if named else {}),
                      **_cells(row["errors"])})
    return table


def _keys(row: dict) -> dict:
    return {key: row[key] for key in ("image_set", "visibility") if key in row}


def _cells(errors: dict) -> dict:
    return {name: f"{value['count']} {value['dAP']:+.3f}" for name, value in errors.items()}


def flat_errors(errors: Optional[dict], classes: Sequence[str]) -> dict:
    """A row's ``errors`` as flat columns ``<class>_count``, ``<class>_dAP`` (csv); None for a
    row without errors (the paper's rows)."""
    out = {}
    for name in classes:
        value = (errors or {}).get(name)
        out[f"{name}_count"] = None if value is None else value["count"]
        out[f"{name}_dAP"] = None if value is None else value["dAP"]
    return out
