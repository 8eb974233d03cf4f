"""The run of one ``ochuman eval``: :func:`evaluate_results` reads the results files, gets the
ground truth and ties the steps of :mod:`ochuman.eval` (results -> blocks and IoUs -> one
matching of every subset -> accumulation -> report): COCO AP on the official val/test split with
the occlusion breakdown.

Ground truth
    From a dataset root (``--root`` / ``OCHUMAN_ROOT``: ``ochuman.json`` at the top or in
    ``annotations/``, ``images/``): the persons of the official COCO-format file of the split,
    reproduced from ``ochuman.json`` (:func:`ochuman.convert.official_selection`), with the
    authors' stored MaxIoU. Detections are keyed by that file's image ids (1, 2, ... in file
    order), or by file name. Any native or COCO-format file can be the ground truth instead
    (``gt=``); a COCO file carries no MaxIoU, so it is recomputed from its boxes (and reads
    lower: the box-only persons of ``ochuman.json`` are missing), and the report says so.

Categories
    A COCO file is evaluated with every category it lists, as pycocotools with ``useCats=1``
    (``category=`` chooses some: pycocotools with ``params.catIds`` set to them;
    ``per_category``: one more row per category, each row naming its ``category``). MaxIoU is
    the paper's definition within a category: an object's largest box IoU with another object
    of its category in its image (crowd regions are no objects), so every subset works for
    any dataset. A subset of a range keeps the objects of every category in the range and the
    images holding one (its range file), scored per chosen category. Detections of a category
    the ground truth does not list are not scored (pycocotools' ``evaluate`` never looks at
    them), with a warning.

Subsets, two modes
    ``official``: as pycocotools on the official range file (``ochuman convert --range``):
    persons outside the range are dropped, images left without persons are not evaluated,
    detections that would have matched a dropped person are false positives. Half-open ranges
    [lo, hi), as the official converter selects (MaxIoU == 1.0 is in no subset and not in the
    full file either); a file written by ``ochuman convert --range-rule closed-top`` records
    that rule in its ``info``, and its subsets are cut with it. "all" is the file itself: every
    image of a COCO file, with persons or not; a detection on an image the official file lacks
    is refused, as ``loadRes`` refuses it.
    ``ignore``: persons outside the range, and every person the dataset annotates without
    keypoints and mask (box-only persons), are ignore regions: a detection matching one is
    neither true nor false positive. An unmatched detection counts in a subset only if the
    person it overlaps most is in the subset (as COCO's area ranges ignore unmatched detections
    of other sizes); one that overlaps nobody (crowd regions are no persons) is a false positive
    everywhere. Ranges ending at 1.0 include 1.0.

Image sets and visibility (asked for)
    ``image_set``: the fully-labelled images (:mod:`ochuman.eval.image_sets`, pycocotools'
    ``imgIds`` set to them) beside or instead of all; ``by_visibility``: keypoint AP over the
    joints of one visibility class at a time (:mod:`ochuman.eval.visibility`). Each is one more
    evaluation of a results file (:mod:`ochuman.eval.breakdown`), its rows keyed by it.

All subsets share one IoU computation and one matching call.

Errors (``errors=True``): every subset and MaxIoU bin also gets the error classes of
:mod:`ochuman.eval.errors` at ``errors_iou``, from the same blocks and variants.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ochuman import _evalcore
from ochuman.errors import OCHumanError, OCHumanWarning, ResultsError
from ochuman.eval.accumulation import evaluate_variants
from ochuman.eval.annotations import Annotations
from ochuman.eval.blocks import make_blocks
from ochuman.eval.breakdown import Breakdown
from ochuman.eval.bootstrap import image_weights, prepare, resampled_images, sample_stats
from ochuman.eval.ground_truth import GroundTruth, index_of
from ochuman.eval.matching import base_state
from ochuman.eval.params import EvalParams
from ochuman.eval.protocol import readable_again, tags_per_file
from ochuman.eval.report import PAPER_TABLE2, EvalReport, ResultsEvaluation, person_rows
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.results import detections_from_bytes, detections_from_records, masks_are_valid, parse_results
from ochuman.eval.subsets import MAX_IOU_BINS, MODES, nearest_gt, subset_variant
from ochuman.io import split_in_file_name
from ochuman.keypoints import NUM_COCO_KEYPOINTS
from ochuman.records import Dataset
from ochuman.scan import PrefetchedAnnotations, PrefetchedResults, map_file, scan_results
from ochuman.subsets import MaxIoURange, parse_range


#: more than this share of detections centred outside their image suggests the wrong images
OUTSIDE_SHARE = 0.05


def evaluate_results(
    results: Union[str, os.PathLike, list, Sequence[Union[str, os.PathLike, list]]],
    names: Optional[Sequence[str]] = None,
    *,
    root: Union[str, os.PathLike, None] = None,
    gt: Union[str, os.PathLike, Dataset, GroundTruth, PrefetchedAnnotations, None] = None,
    split: Optional[str] = None,
    iou_type: str = "segm",
    subsets: Sequence[Union[str, MaxIoURange]] = ("all", "moderate", "hard"),
    mode: str = "official",
    by_max_iou: bool = False,
    per_person: bool = False,
    paper: bool = False,
    category: Union[None, int, str, Sequence[Union[int, str]]] = None,
    per_category: bool = False,
    kpt_sigmas: Optional[Sequence[float]] = None,
    image_set: Union[None, str, Sequence[str]] = None,
    by_visibility: bool = False,
    errors: bool = False,
    errors_iou: float = 0.5,
    bootstrap: int = 0,
    seed: int = 0,
    tags: Union[None, dict, Sequence[Optional[dict]]] = None,
) -> EvalReport:
    """Evaluate one or more results files on OCHuman (or any ground truth) with subsets.

    results: a path, a parsed results list, a :class:`~ochuman.scan.PrefetchedResults` (a
    file already being read), or a sequence of those (a leaderboard).
    split: "val" or "test" of a native ground truth (None: val). A COCO file is evaluated as it
    is: a split given with it must be the one its official name says
    (``ochuman_coco_format_val_range_...``), else :class:`OCHumanError`.
    paper: add the paper's Table-2 rows (segm AP of val or test; a warning says when there are none).
    category: a category of the ground truth (id or name), or several; None: every category.
    per_category: a row per category after each row over the categories (see the module doc).
    kpt_sigmas: OKS sigmas, one per joint of the ground truth (None: COCO's 17); keypoints
    evaluation of a file whose keypoints have K != 17 joints needs K of them.
    image_set: "all" and / or "fully-labelled" (:mod:`ochuman.eval.image_sets`; native ground
    truth only): one evaluation per set, rows gain ``image_set``; None: every image, no key.
    by_visibility: keypoints only: also OKS AP over the joints of each visibility class
    (:mod:`ochuman.eval.visibility`), rows gain ``visibility``.
    errors: classify the errors at IoU ``errors_iou`` (:mod:`ochuman.eval.errors`): rows gain
    ``errors``, ``report.errors_frame()``.
    bootstrap: N > 0 resamples images N times (``seed``) for 95% intervals
    (:mod:`ochuman.eval.bootstrap`): rows gain ``AP_ci``... and, after the first results file,
    ``dAP_vs_first`` / ``dAP_ci``.
    tags: KEY: VALUE recorded in the protocol cards (:mod:`ochuman.eval.protocol`): one dict for
    every results file, or one dict (or None) per results file.
    Returns an :class:`EvalReport` (``rows()``, ``to_frame()``, ``ap_by_max_iou()``, ...).
    """
    if mode not in MODES:
        raise OCHumanError(f"unknown mode {mode!r}: expected official or ignore")
    if errors and not 0 < errors_iou <= 1:
        raise OCHumanError(f"errors IoU threshold {errors_iou}: expected a number in (0, 1]")
    single = isinstance(results, (str, os.PathLike, PrefetchedResults))
    if single or (isinstance(results, list) and (not results or isinstance(results[0], dict))):
        results = [results]
    names = list(names) if names else [_default_name(r, k) for k, r in enumerate(results)]
    if len(names) != len(results):
        raise OCHumanError(f"{len(names)} names for {len(results)} results files")
    results = list(results)
    if bootstrap < 0:
        raise OCHumanError(f"bootstrap = {bootstrap}: the number of samples must be positive")
    file_tags = tags_per_file(tags, len(results))
    if isinstance(results[0], (str, os.PathLike)):  # read it in a thread while the ground truth loads
        results[0] = PrefetchedResults(results[0], iou_type)
    try:
        ground = gt if isinstance(gt, GroundTruth) else resolve_ground_truth(root, gt, split or "val",
                                                                             masks=iou_type == "segm")
        _evalcore.trim_heap()  # the loader's temporaries, freed inside the heap (35-50 MB at val2017 scale)
        evaluated_split = ground.split
        if split is not None and ground.split == "all":  # a COCO file: its own split, or refused
            _check_split_of_coco_file(ground, split)
            evaluated_split = split
        if paper and (iou_type != "segm" or evaluated_split not in PAPER_TABLE2):
            warnings.warn("no paper rows: the paper reports segm AP of the val and test splits only"
                          + (f", not {iou_type} AP" if iou_type != "segm" else
                             f" ({ground.source} is a COCO file: name its split with --split when its official "
                             "name says val or test)"), OCHumanWarning, stacklevel=2)
        ranges = [parse_range(s) if isinstance(s, str) else s for s in subsets]
        if len(ground.annotations) == 0:
            where = f" in the {ground.split} split" if ground.split != "all" else ""
            warnings.warn(f"{ground.source}: no ground-truth persons{where}: every AP and AR is -1, as in pycocotools",
                          OCHumanWarning, stacklevel=2)
        chosen = chosen_categories(ground, category)
        # the categories listed, annotated or not (pycocotools' getCatIds), in id order
        params = EvalParams(iou_type=iou_type, cat_ids=sorted(chosen))
        keypoint_count = oks_keypoint_count(ground, params, iou_type, kpt_sigmas)
        breakdown = Breakdown.plan(ground, params, image_set, by_visibility)
        report = EvalReport(iou_type=iou_type, mode=mode, split=evaluated_split, gt_source=ground.source,
                            max_iou_source=ground.max_iou_source,
                            range_rule=ground.range_rule if mode == "official" else "closed-top",
                            params=params, paper=paper,
                            categories=([chosen[k] for k in sorted(chosen)]
                                        if per_category or category is not None else None),
                            per_category=per_category, errors_iou=errors_iou if errors else None)
        if bootstrap:
            report.bootstrap, report.seed = bootstrap, seed

        def evaluate(name: str, g: GroundTruth, p: EvalParams, detections: Annotations) -> ResultsEvaluation:
            return _evaluate_one(name, g, detections, p, ranges, mode, by_max_iou, per_person, report.errors_iou,
                                 (bootstrap, seed) if bootstrap else None, per_category)

        for name, source, tagged in zip(names, results, file_tags):
            if isinstance(source, list):
                label = name
                detections = detections_from_records(parse_results(source, name, strict=True), label, ground.image_ids,
                                                     ground.image_sizes, None, iou_type, ground.file_names, strict=True,
                                                     keypoint_count=keypoint_count)
            else:
                mask_strings = None
                if isinstance(source, PrefetchedResults):
                    label, (data, scanned), mask_strings = str(source.path), source.get(), source.mask_strings
                else:
                    label, data = str(source), map_file(source)
                    scanned = scan_results(data, iou_type=iou_type)
                # Masks are checked as the IoU pass decodes them; a file the scanner should not
                # have taken is read again the general way, which names its problem.
                if not isinstance(source, PrefetchedResults) and not readable_again(label):  # a pipe: its bytes are hashed now, for the protocol cards
                    report.hash_now(label, data)
                detections = detections_from_bytes(data, label, ground.image_ids, ground.image_sizes, None,
                                                   iou_type, ground.file_names, defer_mask_checks=True,
                                                   scanned=scanned, strict=True, keypoint_count=keypoint_count,
                                                   mask_strings=mask_strings)
                # what the detections need of the columns is theirs now (peak memory); without masks,
                # the file's mapping can go too (with masks: it is read again if one is bad)
                scanned = mask_strings = None
                if isinstance(source, PrefetchedResults):
                    source.release()
                if detections.masks is None:
                    data = None
            if len(detections) == 0:
                warnings.warn(f"{label}: empty results list" + (": every AP and AR is 0" if len(ground.annotations) else ""),
                              OCHumanWarning, stacklevel=2)
            image_index = index_of(detections.image_id, ground.image_ids)  # (every one is there, or reading refused it)
            if mode == "official":
                _refuse_images_outside_file(ground, detections, label, image_index)
            _warn_if_outside_images(ground, detections, label, image_index)
            _warn_if_unlisted_categories(ground, detections, label)
            evaluation = evaluate(name, ground, params, detections)
            if not masks_are_valid(detections):  # (its fields were checked by the first reading)
                detections = detections_from_records(parse_results(bytes(data), label), label, ground.image_ids,
                                                     ground.image_sizes, None, iou_type, ground.file_names,
                                                     keypoint_count=keypoint_count)
                evaluation = evaluate(name, ground, params, detections)
            found = [evaluation] if breakdown is None else breakdown.evaluations(
                evaluation, lambda g, p: evaluate(name, g, p, detections))
            for each in found:
                each.source, each.tags = (None if isinstance(source, list) else label), tagged
            report.evaluations += found
            if isinstance(source, PrefetchedResults) and source.hash_file:  # the bytes read, hashed while they
                report.hash_known(label, source.sha256())  # were evaluated: done before the call returns and the file may change
        return report
    finally:  # nothing reads a file's mapping once this returns or raises (the file may change)
        for source in results:
            if isinstance(source, PrefetchedResults):
                source.finish()


def oks_keypoint_count(ground: GroundTruth, params: EvalParams, iou_type: str,
                       kpt_sigmas: Optional[Sequence[float]]) -> int:
    """K, the joints of the ground truth's keypoints; for keypoints evaluation sets
    ``params.kpt_oks_sigmas`` to ``kpt_sigmas`` (as a pycocotools user sets
    ``params.kpt_oks_sigmas``), which must hold K values (COCO's 17 when None)."""
    keypoints = ground.annotations.keypoints
    count = keypoints.shape[1] // 3 if keypoints is not None else NUM_COCO_KEYPOINTS
    if iou_type != "keypoints":
        return count
    if kpt_sigmas is not None:
        params.kpt_oks_sigmas = np.asarray(kpt_sigmas, dtype=np.float64).reshape(-1)
    given = len(params.kpt_oks_sigmas)
    if given != count:
        raise OCHumanError(f"{ground.source}: its keypoints have {count} joints, but " + (
            f"{given} OKS sigmas were given (--kpt-sigmas needs {count})" if kpt_sigmas is not None else
            f"COCO's OKS sigmas are for {given}: pass --kpt-sigmas with {count} values"))
    return count


def chosen_categories(ground: GroundTruth, category) -> dict:
    """{id: name} of the categories to evaluate: ``category`` (an id or name of the ground
    truth's, or a sequence of them) or, None, every category of the ground truth. A name
    that is all digits is taken as an id when no category has that name."""
    listed = {cat_id: name or str(cat_id) for cat_id, name in ground.categories}
    if category is None:
        return listed
    wanted = [category] if isinstance(category, (int, str)) else list(category)
    by_name = {name: cat_id for cat_id, name in ground.categories if name}
    chosen = {}
    for value in wanted:
        cat_id = by_name.get(value) if isinstance(value, str) else None
        if cat_id is None and (isinstance(value, int) or str(value).lstrip("-").isdigit()):
            cat_id = int(value)
        if cat_id not in listed:
            shown = ", ".join(f"{k} ({listed[k]})" for k in sorted(listed)[:10]) + (", ..." if len(listed) > 10 else "")
            raise OCHumanError(f"{ground.source}: category {value!r}: not a category of the ground truth "
                               f"(its categories: {shown or 'none'})")
        chosen[cat_id] = listed[cat_id]
    return chosen


def _warn_if_unlisted_categories(ground: GroundTruth, detections: Annotations, label: str) -> None:
    """Detections of a category the ground truth does not list are never scored by pycocotools
    (it evaluates the ground truth's categories): they are not scored here either; say so."""
    unlisted = ~np.isin(detections.category_id, np.array([k for k, _ in ground.categories], dtype=np.int64))
    if unlisted.any():
        i = int(np.flatnonzero(unlisted)[0])
        others = (f" and {int(unlisted.sum()) - 1} other records have categories" if unlisted.sum() > 1
                  else " has a category")
        warnings.warn(
            f"{label}: record {i} (image_id {detections.image_id[i].item()!r}, category_id "
            f"{int(detections.category_id[i])}){others} the ground truth does not list: not scored, as in pycocotools",
            OCHumanWarning, stacklevel=3)


def _check_split_of_coco_file(ground: GroundTruth, split: str) -> None:
    """A split named with a COCO ground truth (evaluated as it is) must be the file's own."""
    named = split_in_file_name(ground.source)
    if named == split:
        return
    if named is None:
        problem = "a COCO file with no official split (only native ochuman.json and official OCHuman COCO-format files have one)"
    elif named == "all":
        problem = f"holds every split (write the {split} file with ochuman convert --split {split})"
    else:
        problem = f"holds the {named} split, as its name says"
    raise OCHumanError(f"{ground.source}: --split {split}: {problem}; leave --split out to evaluate the file as it is")


def _warn_if_outside_images(ground: GroundTruth, detections: Annotations, label: str, image_index: np.ndarray) -> None:
    """Results keyed to the wrong images (another split's file, another file's numbering) put
    boxes and keypoints outside the images they name: warn when more than OUTSIDE_SHARE of the
    detections have the centre of their box, or the mean of their keypoints, outside.
    image_index (N,): each detection's image in ``ground.image_ids``."""
    n = len(detections)
    if n == 0:
        return
    sizes = np.ascontiguousarray(ground.image_sizes, dtype=np.int64)
    image_index = np.ascontiguousarray(image_index, dtype=np.int64)
    outside = np.empty(n, dtype=np.uint8)
    _evalcore.box_centres_outside(np.ascontiguousarray(detections.bbox, dtype=np.float64), image_index, sizes, outside)
    outside = outside.view(bool)
    if detections.keypoints is not None:
        by_keypoints = np.empty(n, dtype=np.uint8)
        _evalcore.keypoint_means_outside(np.ascontiguousarray(detections.keypoints, dtype=np.float64), image_index, sizes,
                                         by_keypoints)
        outside |= by_keypoints.view(bool)
    if outside.sum() > OUTSIDE_SHARE * n:
        i = int(np.flatnonzero(outside)[0])
        warnings.warn(
            f"{label}: {int(outside.sum())} of {n} records ({outside.mean():.0%}) have boxes or keypoints outside the "
            f"image they name (first: record {i}, image_id {detections.image_id[i].item()!r}): results for another "
            f"split, or keyed by another file's image ids?", OCHumanWarning, stacklevel=3)


def _refuse_images_outside_file(ground: GroundTruth, detections: Annotations, label: str,
                                image_index: np.ndarray) -> None:
    """Official mode scores as pycocotools on the official file, whose ``loadRes`` refuses
    results for images it lacks: so does this, naming the first such record. image_index (N,):
    each detection's image in ``ground.image_ids``."""
    outside = ~ground.file_images[image_index]
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        k = int(np.flatnonzero(ground.image_ids == detections.image_id[i])[0])
        raise ResultsError.at(
            label, f"record {i} (image_id {detections.image_id[i].item()!r})",
            f"image {ground.file_names[k]} is not in the official COCO-format file of the {ground.split} split "
            "(all its persons have MaxIoU 1.0), so pycocotools refuses these results ('Results do not correspond "
            "to current coco set'): drop its detections, or use --mode ignore")


def _default_name(source, k: int) -> str:
    """A results file's row name: its file name (a parsed list: ``results<k + 1>``)."""
    if isinstance(source, PrefetchedResults):
        source = source.path
    return Path(source).name if isinstance(source, (str, os.PathLike)) else f"results{k + 1}"


def _evaluate_one(name, ground: GroundTruth, detections: Annotations, params: EvalParams,
                  ranges, mode, by_max_iou, per_person, errors_iou=None, bootstrap=None,
                  per_category=False) -> ResultsEvaluation:
    """One results file: blocks and IoUs once, every subset (and MaxIoU bin) a variant of one
    matching and accumulation pass, per-person rows if asked, the errors at ``errors_iou`` if
    not None, the bootstrap samples of the subsets if ``bootstrap`` (samples, seed) is not None:
    the images of ``params.img_ids`` (None: all) drawn, the same draws for every results file."""
    blocks = make_blocks(ground.annotations, detections, params)
    base = base_state(ground.annotations, blocks, params)
    nearest = nearest_gt(blocks, ground.annotations.iscrowd[blocks.gt_order]) if mode == "ignore" else None
    all_ranges = list(ranges) + (list(MAX_IOU_BINS) if by_max_iou else [])
    built = [subset_variant(ground, blocks, base, rng, mode, nearest) for rng in all_ranges]
    accumulated = evaluate_variants(ground.annotations, detections, blocks, params, [v for v, _ in built])
    for acc, (_, persons) in zip(accumulated, built):
        acc.persons = persons
    subsets = {rng.name: acc for rng, acc in zip(ranges, accumulated[:len(ranges)])}
    bins = dict(zip(MAX_IOU_BINS, accumulated[len(ranges):])) if by_max_iou else {}
    evaluation = ResultsEvaluation(name=name, subsets=subsets, bins=bins, persons=[], detections=len(detections))
    if errors_iou is not None:
        from ochuman.eval.errors import analyse_errors

        found = analyse_errors(ground.annotations, detections, blocks, params, [v for v, _ in built], errors_iou)
        evaluation.errors = {rng.name: e for rng, e in zip(ranges, found)}
        evaluation.bin_errors = dict(zip(MAX_IOU_BINS, found[len(ranges):])) if by_max_iou else {}
    if per_person:  # why each person was missed: the errors of the subset "all" when evaluated
        every = evaluation.errors.get("all")
        evaluation.persons = person_rows(name, ground, detections, blocks, params, base,
                                         None if every is None else every.person_errors())
    if bootstrap is not None:  # bootstrap samples of the subsets, from the same matches
        images = resampled_images(ground, mode)
        if params.img_ids is not None:
            images = np.intersect1d(images, np.asarray(params.img_ids, dtype=images.dtype))
        weights = image_weights(len(images), *bootstrap)
        plan = prepare(ground.annotations, detections, blocks, params, [v for v, _ in built[:len(ranges)]], images)
        per_variant = sample_stats(plan, weights, params, per_category)
        evaluation.samples = {rng.name: values for rng, values in zip(ranges, per_variant)}
    return evaluation
