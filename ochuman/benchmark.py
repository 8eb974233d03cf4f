"""OCHuman evaluation: COCO AP on the official val/test split with the occlusion breakdown.

Ground truth
    From a dataset root (``--root`` / ``OCHUMAN_ROOT``: ``ochuman.json`` at the top or in
    ``annotations/``, ``images/``): the persons of the official COCO-format file of the split,
    reproduced from ``ochuman.json`` (:func:`ochuman.convert.official_selection`), with the
    authors' stored MaxIoU. Detections are keyed by that file's image ids (1, 2, ... in file
    order), or by file name. Any native or COCO-format file can be the ground truth instead
    (``gt=``); a COCO file carries no MaxIoU, so it is recomputed from its boxes (and reads
    lower: the box-only persons of ``ochuman.json`` are missing), and the report says so.

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
    of other sizes); one that overlaps nobody is a false positive everywhere. Ranges ending at
    1.0 include 1.0.

All subsets share one IoU computation and one matching call.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from ochuman import _evalcore
from ochuman.cache import cached_ground_truth
from ochuman.convert import official_selection
from ochuman.errors import OCHumanError, OCHumanWarning, ResultsError
from ochuman.evaluate import (
    STAT_NAMES, Annotations, EvalParams, MaskTable, Variant, base_state, evaluate_variants,
    make_blocks, nearest_gt,
)
from ochuman.io import load, parse, read_file, split_in_file_name
from ochuman.masks import box_polygon, polygons_to_rle
from ochuman.records import Dataset, FileSegmentations
from ochuman.results import detections_from_bytes, detections_from_records, masks_are_valid, parse_results
from ochuman.scan import PrefetchedAnnotations, PrefetchedResults, map_file, scan_results
from ochuman.subsets import ALL, HARD, MODERATE, MaxIoURange, parse_range


MODES = ("official", "ignore")
LEVELS = (ALL, MODERATE, HARD)
#: more than this share of detections centred outside their image suggests the wrong images
OUTSIDE_SHARE = 0.05
MAX_IOU_BINS = tuple(MaxIoURange(round(0.5 + 0.05 * k, 2), round(0.55 + 0.05 * k, 2)) for k in range(10))

#: segm AP / AP_Moderate / AP_Hard reported in the paper's Table 2 (R50-FPN, trained on COCO).
PAPER_TABLE2 = {
    "val": {
        "Mask R-CNN": (0.163, 0.194, 0.113),
        "Pose2Seg (predicted kpts, AE)": (0.222, 0.261, 0.150),
        "Pose2Seg (GT kpts)": (0.544, 0.576, 0.491),
    },
    "test": {
        "Mask R-CNN": (0.169, 0.189, 0.128),
        "Pose2Seg (predicted kpts, AE)": (0.238, 0.266, 0.175),
        "Pose2Seg (GT kpts)": (0.552, 0.579, 0.495),
    },
}


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground truth of one evaluation: annotations plus per-annotation occlusion facts.

    annotations: persons in evaluation order; image_ids / file_names / image_sizes (M,): the
    images (ids as results must use them); max_iou (N,); official (N,) True for persons of the
    official file; extra (N,) True for persons without keypoints and mask (ignore mode only);
    source, split, max_iou_source ("stored" or "box"); range_rule: how official-mode subsets
    cut MaxIoU ranges: the rule the file itself was cut with ("closed-top" for a file written by
    ``ochuman convert --range-rule closed-top``, which records it in its ``info``).

    The ground-truth *file* is the official COCO-format file of the split (native ground
    truth) or the COCO file itself: :attr:`file_images` says which images it holds.
    """

    annotations: Annotations
    image_ids: np.ndarray
    file_names: tuple[str, ...]
    image_sizes: np.ndarray
    max_iou: np.ndarray
    official: np.ndarray
    extra: np.ndarray
    source: str
    split: str
    max_iou_source: str
    range_rule: str = "official"

    @property
    def file_images(self) -> np.ndarray:
        """(M,) bool: the images of the ground-truth file, as pycocotools would load it. All but
        those whose every person is outside the file: the official converter leaves out images
        whose persons all have MaxIoU == 1.0; a COCO file holds its images with or without
        persons."""
        image_index = _index_of(self.annotations.image_id, self.image_ids)
        in_file = np.bincount(image_index[self.official], minlength=len(self.image_ids)) > 0
        annotated = np.bincount(image_index, minlength=len(self.image_ids)) > 0
        return in_file | ~annotated


def _index_of(values: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """(N,) position of each of ``values`` in ``universe`` (every value is in it)."""
    order = np.argsort(universe, kind="stable")
    return order[np.searchsorted(universe[order], values)] if len(values) else np.zeros(0, dtype=np.int64)


def ground_truth_from_native(dataset: Dataset, split: str = "val", masks: bool = True) -> GroundTruth:
    """The official COCO-format file of ``split`` rebuilt from a native dataset, plus the other
    persons of its images (box-only, keypoint-only, mask-only) for ignore mode.

    Image ids are the official file's (1, 2, ... in file order); a benchmark image whose persons
    all have MaxIoU == 1.0 (absent from the official file) is numbered after them. masks: False
    skips rasterising the masks (bbox and keypoints evaluations do not need them).
    """

    benchmark, groups = official_selection(dataset, split, ALL, "official")
    image_id = np.zeros(len(benchmark.images), dtype=np.int64)
    official_images = [k for k, _ in groups]
    image_id[official_images] = np.arange(1, len(groups) + 1)
    others = np.setdiff1d(np.arange(len(benchmark.images)), official_images)
    image_id[others] = np.arange(len(groups) + 1, len(benchmark.images) + 1)
    in_official = ALL.contains(benchmark.max_iou, "official")

    position = {im.file_name: k for k, im in enumerate(benchmark.images)}
    non_benchmark = ~(dataset.has_keypoints & dataset.has_mask) & ~dataset.iscrowd
    extras = [i for i in np.flatnonzero(non_benchmark)
              if dataset.images[dataset.image_index[i]].file_name in position]
    sources = [(benchmark, i) for i in range(len(benchmark))] + [(dataset, i) for i in extras]
    image_index = np.array(
        list(benchmark.image_index) + [position[dataset.images[dataset.image_index[i]].file_name] for i in extras],
        dtype=np.int64)
    n = len(sources)
    sizes = np.array([[im.height, im.width] for im in benchmark.images], dtype=np.int64).reshape(-1, 2)
    bbox = np.array([d.bbox_xywh[i] for d, i in sources], dtype=np.float64).reshape(n, 4)
    keypoints = np.array([d.keypoints[i].ravel() for d, i in sources], dtype=np.float64).reshape(n, 51)
    counts = [] if masks else None
    for j, (d, i) in enumerate(sources if masks else ()):
        if d.has_mask[i]:
            counts.append(d.rle(i)["counts"])
        else:
            h, w = sizes[image_index[j]]
            counts.append(polygons_to_rle(box_polygon(*bbox[j]), int(h), int(w))["counts"])
    official = np.r_[in_official, np.zeros(len(extras), dtype=bool)]
    extra = np.r_[np.zeros(len(benchmark), dtype=bool), np.ones(len(extras), dtype=bool)]
    # Official annotation ids: 1, 2, ... over the official file's persons in file order.
    ann_id = np.zeros(n, dtype=np.int64)
    ann_id[official] = np.arange(1, official.sum() + 1)
    ann_id[~official] = np.arange(official.sum() + 1, n + 1)
    annotations = Annotations(
        image_id=image_id[image_index], category_id=np.ones(n, dtype=np.int64), ann_id=ann_id,
        bbox=bbox, area=bbox[:, 2] * bbox[:, 3], iscrowd=np.zeros(n, dtype=bool),
        score=np.ones(n), counts=counts, mask_size=sizes[image_index], keypoints=keypoints,
        num_keypoints=np.count_nonzero(keypoints[:, 2::3] > 0, axis=1), file_image_ids=image_id,
        masks=MaskTable.from_strings(counts, sizes[image_index]) if masks else None,
    )
    return GroundTruth(
        annotations=annotations, image_ids=image_id,
        file_names=tuple(im.file_name for im in benchmark.images), image_sizes=sizes,
        max_iou=np.array([d.max_iou[i] for d, i in sources], dtype=np.float64).reshape(n),
        official=official, extra=extra, source=dataset.source, split=split, max_iou_source="stored",
    )


def ground_truth_from_coco(dataset: Dataset, masks: bool = True) -> GroundTruth:
    """A COCO-format file as it is (crowd regions included). MaxIoU: the file's ``max_iou``
    fields when every person has one, else recomputed from its boxes."""

    n = len(dataset)
    missing = np.flatnonzero(np.isnan(dataset.area) & ~dataset.iscrowd)
    if len(missing):
        raise OCHumanError(
            f"{dataset.source}: annotation id {dataset.person_id[missing[0]]}: no 'area' (COCO evaluation needs it)")
    sizes = np.array([[im.height, im.width] for im in dataset.images], dtype=np.int64).reshape(-1, 2)
    mask_sizes = sizes[dataset.image_index] if n else np.zeros((0, 2), np.int64)
    segmentations = dataset.segmentations
    table = None
    if (masks and isinstance(segmentations, FileSegmentations) and segmentations.present.all()
            and _evalcore.rle_spans_clean(segmentations.buffer, np.stack([segmentations.starts, segmentations.lengths], 1))):
        # every mask a plain RLE string in the file's bytes: evaluated from there, no copy; the
        # statistics come from the mask IoU pass, which decodes the masks anyway
        table = MaskTable(segmentations.buffer, segmentations.starts, segmentations.lengths, mask_sizes, raw=True,
                          deferred=True)
    counts = [] if masks and table is None else None
    for i in range(n if counts is not None else 0):
        seg = segmentations[i]
        if type(seg) is dict and type(seg["counts"]) is str:  # compressed RLE, checked at load
            counts.append(seg["counts"])
            continue
        rle = dataset.rles[i]
        if rle is None:
            h, w = sizes[dataset.image_index[i]]
            rle = polygons_to_rle(box_polygon(*dataset.bbox_xywh[i]), int(h), int(w))
        counts.append(rle["counts"])
    ids = np.array([im.image_id for im in dataset.images])
    # pycocotools ignores a person whose num_keypoints field is 0 (keypoints evaluation), whatever
    # its keypoints; where the file has no such field, the labelled joints are its num_keypoints
    num_keypoints = dataset.num_keypoints.astype(np.float64)
    if dataset.num_keypoints_field is not None:
        given = ~np.isnan(dataset.num_keypoints_field)
        num_keypoints[given] = dataset.num_keypoints_field[given]
    annotations = Annotations(
        image_id=ids[dataset.image_index] if n else ids[:0], category_id=np.ones(n, dtype=np.int64),
        ann_id=dataset.person_id.copy(), bbox=dataset.bbox_xywh.copy(), area=dataset.area.copy(),
        iscrowd=dataset.iscrowd.copy(), score=np.ones(n), counts=table if table is not None else counts,
        mask_size=mask_sizes, keypoints=dataset.keypoints.reshape(n, 3 * dataset.keypoints.shape[1]),
        num_keypoints=num_keypoints, file_image_ids=ids,
        masks=table if table is not None else MaskTable.from_strings(counts, mask_sizes) if masks else None,
    )
    return GroundTruth(
        annotations=annotations, image_ids=ids, file_names=tuple(im.file_name for im in dataset.images),
        image_sizes=sizes, max_iou=dataset.occlusion.copy(), official=np.ones(n, dtype=bool),
        extra=np.zeros(n, dtype=bool), source=dataset.source, split="all",
        max_iou_source=dataset.max_iou_source, range_rule=dataset.range_rule or "official",
    )


def _ground_truth_from_dataset(dataset: Dataset, split: str, masks: bool) -> tuple[GroundTruth, bool]:
    """(ground truth, built from a native file: worth caching)."""
    if dataset.format == "ochuman":
        return ground_truth_from_native(dataset, split, masks), True
    return ground_truth_from_coco(dataset, masks), False


def _ground_truth_from_file(source: Union[str, os.PathLike, PrefetchedAnnotations], split: str,
                            masks: bool) -> GroundTruth:
    """The ground truth of an annotation file; a native file's through the cache, keyed by the
    bytes it is built from."""
    path = Path(source.path if isinstance(source, PrefetchedAnnotations) else source)

    def build() -> tuple[GroundTruth, Optional[bytes]]:
        if isinstance(source, PrefetchedAnnotations):
            dataset = load(source)
            content = source.data  # what load read (None: it read the file again itself)
        else:
            content = read_file(path)
            dataset = parse(content, source=str(path))
        ground, native = _ground_truth_from_dataset(dataset, split, masks)
        return ground, content if native else None

    return cached_ground_truth(path, split, masks, build)


def find_native_file(root: Union[str, os.PathLike]) -> Optional[Path]:
    """``ochuman.json`` at the top of a dataset root or in its ``annotations/`` folder."""
    for candidate in (Path(root) / "ochuman.json", Path(root) / "annotations" / "ochuman.json"):
        if candidate.is_file():
            return candidate
    return None


def resolve_ground_truth(root: Union[str, os.PathLike, None] = None,
                         gt: Union[str, os.PathLike, Dataset, PrefetchedAnnotations, None] = None,
                         split: str = "val", masks: bool = True) -> GroundTruth:
    """Ground truth from ``gt`` (a native or COCO file, a
    :class:`~ochuman.scan.PrefetchedAnnotations` of one, or a Dataset), else from a dataset
    root (``root`` or the ``OCHUMAN_ROOT`` environment variable)."""
    if gt is not None:
        if isinstance(gt, Dataset):
            return _ground_truth_from_dataset(gt, split, masks)[0]
        return _ground_truth_from_file(gt, split, masks)
    root = root or os.environ.get("OCHUMAN_ROOT")
    if not root:
        raise OCHumanError(
            "no ground truth: pass --root DIR (or set OCHUMAN_ROOT) to the OCHuman folder holding "
            "ochuman.json, or --gt FILE")
    native = find_native_file(root)
    if native is not None:
        return _ground_truth_from_file(native, split, masks)
    official = Path(root) / f"ochuman_coco_format_{split}_range_0.00_1.00.json"
    if official.is_file():
        ground = ground_truth_from_coco(load(official), masks)
        if ground.max_iou_source == "box":
            warnings.warn(
                f"{root}: no ochuman.json, so MaxIoU is recomputed from the boxes of {official.name}, which "
                "lacks the box-only persons: it reads lower than the authors' stored values, and so do "
                "Moderate and Hard; put ochuman.json there for the stored values", OCHumanWarning, stacklevel=2)
        return ground
    raise OCHumanError(
        f"{root}: neither ochuman.json (top level or annotations/) nor {official.name} found; "
        "get them from the OCHuman download and put them there")


@dataclass
class ResultsEvaluation:
    """Everything computed for one results file."""

    name: str
    subsets: dict  # subset name -> Accumulated
    bins: dict  # MaxIoURange -> Accumulated (AP vs MaxIoU), if asked
    persons: list  # per-person rows, if asked
    detections: int


@dataclass
class EvalReport:
    """The report of :func:`evaluate_results`: one row per (results file, subset)."""

    iou_type: str
    mode: str
    split: str
    gt_source: str
    max_iou_source: str
    range_rule: str
    params: EvalParams
    evaluations: list = field(default_factory=list)
    paper: bool = False

    @property
    def stat_names(self) -> tuple[str, ...]:
        return STAT_NAMES[self.iou_type]

    def rows(self) -> list[dict]:
        """One flat dict per (results, subset), then the paper's rows if asked for."""
        rows = []
        for ev in self.evaluations:
            for subset, acc in ev.subsets.items():
                rows.append({
                    "results": ev.name, "subset": subset, "iou_type": self.iou_type, "mode": self.mode,
                    **{k: float(v) for k, v in zip(self.stat_names, acc.stats)},
                    "max_iou_source": self.max_iou_source, "range_rule": self.range_rule,
                    "reported": False,
                })
        if self.paper and self.iou_type == "segm" and self.split in PAPER_TABLE2:
            subsets = {ev_subset for ev in self.evaluations for ev_subset in ev.subsets} or {"all", "moderate", "hard"}
            for method, values in PAPER_TABLE2[self.split].items():
                for subset, value in zip(("all", "moderate", "hard"), values):
                    if subset in subsets:
                        rows.append({"results": f"{method} (paper)", "subset": subset, "iou_type": "segm",
                                     "mode": "official", **{k: (value if k == "AP" else None) for k in self.stat_names},
                                     "max_iou_source": "stored", "range_rule": "official", "reported": True})
        return rows

    def ap_by_max_iou(self) -> list[dict]:
        """AP, AP50, AP75 per MaxIoU bin of 0.05 from 0.5 to 1.0, per results file."""
        rows = []
        for ev in self.evaluations:
            for rng, acc in ev.bins.items():
                rows.append({"results": ev.name, "max_iou_lo": rng.lo, "max_iou_hi": rng.hi,
                             "persons": acc.persons, "AP": float(acc.stats[0]),
                             "AP50": float(acc.stats[1]), "AP75": float(acc.stats[2])})
        return rows

    def persons(self) -> list[dict]:
        """Per-person rows for error analysis (all subsets, area all)."""
        return [row for ev in self.evaluations for row in ev.persons]

    def to_frame(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_dict(self) -> dict:
        return {
            "iou_type": self.iou_type, "mode": self.mode, "split": self.split,
            "gt": self.gt_source, "max_iou_source": self.max_iou_source, "range_rule": self.range_rule,
            "rows": self.rows(), "ap_by_max_iou": self.ap_by_max_iou(),
        }

    def curves(self) -> dict:
        """(results, subset) -> (recall points (R,), precision (R,) at IoU .5, .75 and mean)."""
        out = {}
        for ev in self.evaluations:
            for subset, acc in ev.subsets.items():
                p = acc.precision[:, :, 0, 0, -1]  # (T, R), category 0, area all, max dets
                out[(ev.name, subset)] = (self.params.rec_thrs, p)
        return out


def _subset_variant(gt: GroundTruth, blocks, base: np.ndarray, rng: MaxIoURange, mode: str,
                    nearest: Optional[np.ndarray]) -> tuple[Variant, int]:
    order = blocks.gt_order
    max_iou = gt.max_iou[order]
    if mode == "official":
        # "all" is the official file itself: no MaxIoU test (the file already left out what
        # its converter dropped) and every image of the file, with persons or not, so a COCO
        # ground truth is scored exactly as pycocotools does. A range file holds the images
        # with persons in its range.
        counted = gt.official[order] & (True if rng is ALL else rng.contains(max_iou, gt.range_rule))
        state = np.where(counted, base, 2).astype(np.uint8)
        if rng is ALL:
            images = np.isin(blocks.img_ids, gt.image_ids[gt.file_images])
        else:
            images = np.zeros(len(blocks.img_ids), dtype=bool)
            images[blocks.block_img[blocks.gt_block[counted]]] = True
        return Variant(state, image_included=images), int((counted & (base == 0)).sum())
    counted = ~gt.extra[order] & rng.contains(max_iou, "closed-top")
    state = np.where(counted, base, 1).astype(np.uint8)
    unmatched_ignored = None
    if nearest is not None:
        has = nearest >= 0
        unmatched_ignored = np.zeros(len(nearest), dtype=bool)
        unmatched_ignored[has] = ~counted[nearest[has]]
    return Variant(state, dt_unmatched_ignored=unmatched_ignored), int((counted & (base == 0)).sum())


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
) -> EvalReport:
    """Evaluate one or more results files on OCHuman (or any ground truth) with subsets.

    results: a path, a parsed results list, a :class:`~ochuman.scan.PrefetchedResults` (a
    file already being read), or a sequence of those (a leaderboard).
    split: "val" or "test" of a native ground truth (None: val). A COCO file is evaluated as it
    is: a split given with it must be the one its official name says
    (``ochuman_coco_format_val_range_...``), else :class:`OCHumanError`.
    paper: add the paper's Table-2 rows (segm AP of val or test; a warning says when there are none).
    Returns an :class:`EvalReport` (``rows()``, ``to_frame()``, ``ap_by_max_iou()``, ...).
    """
    if mode not in MODES:
        raise OCHumanError(f"unknown mode {mode!r}: expected official or ignore")
    single = isinstance(results, (str, os.PathLike, PrefetchedResults))
    if single or (isinstance(results, list) and (not results or isinstance(results[0], dict))):
        results = [results]
    names = list(names) if names else [_default_name(r, k) for k, r in enumerate(results)]
    if len(names) != len(results):
        raise OCHumanError(f"{len(names)} names for {len(results)} results files")
    results = list(results)
    if isinstance(results[0], (str, os.PathLike)):  # read it in a thread while the ground truth loads
        results[0] = PrefetchedResults(results[0])
    ground = gt if isinstance(gt, GroundTruth) else resolve_ground_truth(root, gt, split or "val", masks=iou_type == "segm")
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
    params = EvalParams(iou_type=iou_type, cat_ids=[1])  # the person category, annotated or not
    report = EvalReport(iou_type=iou_type, mode=mode, split=evaluated_split, gt_source=ground.source,
                        max_iou_source=ground.max_iou_source,
                        range_rule=ground.range_rule if mode == "official" else "closed-top",
                        params=params, paper=paper)
    for name, source in zip(names, results):
        if isinstance(source, list):
            label = name
            detections = detections_from_records(parse_results(source, name, strict=True), label, ground.image_ids,
                                                 ground.image_sizes, [1], iou_type, ground.file_names, strict=True)
        else:
            if isinstance(source, PrefetchedResults):
                label, (data, scanned) = str(source.path), source.get()
            else:
                label, data = str(source), map_file(source)
                scanned = scan_results(data)
            # Masks are checked as the IoU pass decodes them; a file the scanner should not
            # have taken is read again the general way, which names its problem.
            detections = detections_from_bytes(data, label, ground.image_ids, ground.image_sizes, [1],
                                               iou_type, ground.file_names, defer_mask_checks=True,
                                               scanned=scanned, strict=True)
        if len(detections) == 0:
            warnings.warn(f"{label}: empty results list" + (": every AP and AR is 0" if len(ground.annotations) else ""),
                          OCHumanWarning, stacklevel=2)
        if mode == "official":
            _refuse_images_outside_file(ground, detections, label)
        _warn_if_outside_images(ground, detections, label)
        evaluation = _evaluate_one(name, ground, detections, params, ranges, mode, by_max_iou, per_person)
        if not masks_are_valid(detections):  # (its fields were checked by the first reading)
            detections = detections_from_records(parse_results(bytes(data), label), label, ground.image_ids,
                                                 ground.image_sizes, [1], iou_type, ground.file_names)
            evaluation = _evaluate_one(name, ground, detections, params, ranges, mode, by_max_iou, per_person)
        report.evaluations.append(evaluation)
    return report


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


def _warn_if_outside_images(ground: GroundTruth, detections: Annotations, label: str) -> None:
    """Results keyed to the wrong images (another split's file, another file's numbering) put
    boxes and keypoints outside the images they name: warn when more than OUTSIDE_SHARE of the
    detections have the centre of their box, or the mean of their keypoints, outside."""
    n = len(detections)
    if n == 0:
        return
    h, w = ground.image_sizes[_index_of(detections.image_id, ground.image_ids)].T.astype(np.float64)
    centres = [(detections.bbox[:, 0] + detections.bbox[:, 2] / 2, detections.bbox[:, 1] + detections.bbox[:, 3] / 2)]
    if detections.keypoints is not None:
        centres.append((detections.keypoints[:, 0::3].mean(axis=1), detections.keypoints[:, 1::3].mean(axis=1)))
    outside = np.zeros(n, dtype=bool)
    for x, y in centres:
        outside |= (x < 0) | (y < 0) | (x > w) | (y > h)
    if outside.sum() > OUTSIDE_SHARE * n:
        i = int(np.flatnonzero(outside)[0])
        warnings.warn(
            f"{label}: {int(outside.sum())} of {n} records ({outside.mean():.0%}) have boxes or keypoints outside the "
            f"image they name (first: record {i}, image_id {detections.image_id[i].item()!r}): results for another "
            f"split, or keyed by another file's image ids?", OCHumanWarning, stacklevel=3)


def _refuse_images_outside_file(ground: GroundTruth, detections: Annotations, label: str) -> None:
    """Official mode scores as pycocotools on the official file, whose ``loadRes`` refuses
    results for images it lacks: so does this, naming the first such record."""
    outside = ~np.isin(detections.image_id, ground.image_ids[ground.file_images])
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
                  ranges, mode, by_max_iou, per_person) -> ResultsEvaluation:
    blocks = make_blocks(ground.annotations, detections, params)
    base = base_state(ground.annotations, blocks, params)
    nearest = nearest_gt(blocks) if mode == "ignore" else None
    all_ranges = list(ranges) + (list(MAX_IOU_BINS) if by_max_iou else [])
    built = [_subset_variant(ground, blocks, base, rng, mode, nearest) for rng in all_ranges]
    accumulated = evaluate_variants(ground.annotations, detections, blocks, params, [v for v, _ in built])
    for acc, (_, persons) in zip(accumulated, built):
        acc.persons = persons
    subsets = {rng.name: acc for rng, acc in zip(ranges, accumulated[:len(ranges)])}
    bins = dict(zip(MAX_IOU_BINS, accumulated[len(ranges):])) if by_max_iou else {}
    persons = _person_rows(name, ground, detections, blocks, params, base) if per_person else []
    return ResultsEvaluation(name=name, subsets=subsets, bins=bins, persons=persons, detections=len(detections))


def _person_rows(name, ground: GroundTruth, detections: Annotations, blocks, params, base) -> list[dict]:
    """Per GT person: MaxIoU, best IoU reached by any detection, matched at 0.5 / 0.75, score."""
    from ochuman.evaluate import match
    from ochuman.subsets import occlusion_level

    order = blocks.gt_order
    state = np.where(ground.extra[order], 2, base).astype(np.uint8)
    thresholds = EvalParams(iou_type=params.iou_type, iou_thrs=np.array([0.5, 0.75]))
    matches = match(blocks, state[None], ground.annotations.iscrowd[order], thresholds)
    G = len(order)
    best = np.zeros(G)
    n_d = np.diff(blocks.dt_start)[blocks.gt_block]
    for g in range(G):  # small: one entry per person
        b = blocks.gt_block[g]
        ng = blocks.gt_start[b + 1] - blocks.gt_start[b]
        if n_d[g]:
            block = blocks.ious[blocks.iou_start[b]: blocks.iou_start[b] + n_d[g] * ng].reshape(n_d[g], ng)
            best[g] = block[:, g - blocks.gt_start[b]].max()
    matched_by = np.full((2, G), -1)
    for t in range(2):
        hit = matches.gt[0, t] >= 0
        matched_by[t, matches.gt[0, t][hit]] = matches.candidates[hit]
    scores = detections.score[blocks.dt_order]
    level = occlusion_level(ground.max_iou[order])
    # Blocks index images in id order; the ground truth lists them in file order.
    file_position = {image_id: k for k, image_id in enumerate(ground.image_ids.tolist())}
    rows = []
    for g in range(G):
        if state[g] == 2:
            continue
        i = order[g]
        image_id = blocks.img_ids[blocks.block_img[blocks.gt_block[g]]].item()
        rows.append({
            "results": name, "image_id": image_id, "file_name": ground.file_names[file_position[image_id]],
            "person_id": int(ground.annotations.ann_id[i]), "max_iou": float(ground.max_iou[i]),
            "subset": level[g], "best_iou": float(best[g]),
            "matched_50": bool(matched_by[0, g] >= 0), "matched_75": bool(matched_by[1, g] >= 0),
            "score_50": float(scores[matched_by[0, g]]) if matched_by[0, g] >= 0 else None,
        })
    return rows
