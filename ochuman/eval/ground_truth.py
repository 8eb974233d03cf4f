"""Ground truth of an evaluation: :class:`GroundTruth` (the persons as :class:`Annotations`
plus their occlusion facts), built from a native dataset (the official COCO-format file of a
split, rebuilt) or from a COCO file as it is. Reading files, the dataset root and the cache:
:mod:`ochuman.eval.resolve`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ochuman import _evalcore
from ochuman.convert import official_selection
from ochuman.errors import OCHumanError
from ochuman.eval.annotations import Annotations, MaskTable
from ochuman.keypoints import OCHUMAN_TO_COCO_INDEX
from ochuman.masks import box_polygon, polygons_to_rle, segmentation_to_rle
from ochuman.records import Dataset
from ochuman.rle import CountLists, FileSegmentations
from ochuman.subsets import ALL


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """Ground truth of one evaluation: annotations plus per-annotation occlusion facts.

    annotations: persons (a COCO file's objects of every category) in evaluation order;
    image_ids / file_names / image_sizes (M,): the images (ids as results must use them); max_iou (N,); official (N,) True for persons of the
    official file; extra (N,) True for persons without keypoints and mask (ignore mode only);
    source, split, max_iou_source ("stored" or "box"); range_rule: how official-mode subsets
    cut MaxIoU ranges: the rule the file itself was cut with ("closed-top" for a file written by
    ``ochuman convert --range-rule closed-top``, which records it in its ``info``); categories:
    (id, name) of every category of the file (pycocotools' ``getCatIds``), person (1) for a
    native file. MaxIoU compares an object with the objects of its own category only.
    keypoint_codes (N, 17) int8: the native OCHuman visibility code of each COCO joint (0
    missing, 1 visible, 2 self-occluded, 3 occluded by another person) of a ground truth built
    from a native file; None for a COCO file (which holds only COCO's 0/1/2).

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
    categories: tuple[tuple[int, str], ...] = ((1, "person"),)
    keypoint_codes: Optional[np.ndarray] = None

    @property
    def file_images(self) -> np.ndarray:
        """(M,) bool: the images of the ground-truth file, as pycocotools would load it. All but
        those whose every person is outside the file: the official converter leaves out images
        whose persons all have MaxIoU == 1.0; a COCO file holds its images with or without
        persons."""
        image_index = index_of(self.annotations.image_id, self.image_ids)
        in_file = np.bincount(image_index[self.official], minlength=len(self.image_ids)) > 0
        annotated = np.bincount(image_index, minlength=len(self.image_ids)) > 0
        return in_file | ~annotated


def index_of(values: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """(N,) position of each of ``values`` in ``universe`` (every value is in it; of repeated
    ones, the first). Non-negative integer ids not far above the number of values (COCO's image
    ids) are looked up in a table (300,000 in 1 ms; a binary search takes 5 ms)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    values, universe = np.asarray(values), np.asarray(universe)
    if values.dtype.kind in "iu" and universe.dtype.kind in "iu" and len(universe):
        top = int(universe.max())
        if int(universe.min()) >= 0 and top < 8 * len(values) + 65536 and 0 <= int(values.min()) and int(values.max()) <= top:
            table = np.zeros(top + 1, dtype=np.int64)
            table[universe] = np.arange(len(universe))
            if (table[universe] == np.arange(len(universe))).all():  # no repeated ids
                return table[values]
    order = np.argsort(universe, kind="stable")
    return order[np.searchsorted(universe[order], values)]


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
        keypoint_codes=np.array([d.keypoints_ochuman[i][OCHUMAN_TO_COCO_INDEX, 2] for d, i in sources],
                                dtype=np.int8).reshape(n, len(OCHUMAN_TO_COCO_INDEX)),
    )


def _box_masks(dataset: Dataset, sizes: np.ndarray, persons: np.ndarray) -> MaskTable:
    """The boxes of ``persons`` (K,) as masks (pycocotools' mask of an annotation without one)."""
    box_sizes = sizes[dataset.image_index[persons]]
    return MaskTable.from_strings([polygons_to_rle(box_polygon(*dataset.bbox_xywh[i]), int(h), int(w))["counts"]
                                   for i, (h, w) in zip(persons.tolist(), box_sizes.tolist())], box_sizes)


def _listed_strings(lists, listed: list, mask_sizes: np.ndarray) -> list[str]:
    """The compressed RLE strings of uncompressed RLE entries ``listed``: made from the file's
    text by the compiled core where it can, else by pycocotools from the decoded lists."""
    made = lists.strings(listed) if isinstance(lists, CountLists) else [None] * len(listed)
    return [string if string is not None else segmentation_to_rle(lists[k], *map(int, mask_sizes[k]))["counts"]
            for k, string in zip(listed, made)]


def ground_truth_from_coco(dataset: Dataset, masks: bool = True) -> GroundTruth:
    """A COCO-format file as it is (crowd regions included; every category when ``dataset``
    was read with ``all_categories``). MaxIoU: the file's ``max_iou`` fields when every
    non-crowd annotation has one, else recomputed from its boxes (within each category)."""

    n = len(dataset)
    missing = np.flatnonzero(np.isnan(dataset.area) & ~dataset.iscrowd)
    if len(missing):
        raise OCHumanError(
            f"{dataset.source}: annotation id {dataset.person_id[missing[0]]}: no 'area' (COCO evaluation needs it)")
    sizes = np.array([[im.height, im.width] for im in dataset.images], dtype=np.int64).reshape(-1, 2)
    mask_sizes = sizes[dataset.image_index] if n else np.zeros((0, 2), np.int64)
    segmentations = dataset.segmentations
    table = None
    in_file = segmentations.table if isinstance(segmentations, FileSegmentations) and segmentations.plain else None
    if (masks and in_file is not None and in_file.present.all()
            and _evalcore.rle_spans_clean(in_file.buffer, np.stack([in_file.starts, in_file.lengths], 1))):
        # every mask a plain RLE string in the file's bytes: evaluated from there, no copy; the
        # statistics come from the mask IoU pass, which decodes the masks anyway
        table = MaskTable(in_file.buffer, in_file.starts, in_file.lengths, mask_sizes, raw=True, deferred=True)
    counts = None
    if masks and table is None and isinstance(segmentations, FileSegmentations):
        # strings from the file's bytes; polygons rasterised from their numbers in one pass
        parts = [(np.arange(n), segmentations.table)]
        if segmentations.polygons is not None:
            drawn = np.flatnonzero(segmentations.polygons.present)
            parts.append((drawn, segmentations.polygons.take(drawn).masks(mask_sizes[drawn])))
        if segmentations.lists:
            listed = sorted(segmentations.lists)
            parts.append((np.array(listed), MaskTable.from_strings(_listed_strings(segmentations.lists, listed, mask_sizes),
                                                                   mask_sizes[listed])))
        table = MaskTable.merged(mask_sizes, parts)
        boxed = np.flatnonzero(~table.present)
        if len(boxed):  # no mask: its box
            table = MaskTable.merged(mask_sizes, [(np.arange(n), table), (boxed, _box_masks(dataset, sizes, boxed))])
    elif masks and table is None:
        counts = [seg["counts"] if type(seg) is dict and type(seg["counts"]) is str  # compressed RLE, checked at load
                  else None if seg is None else dataset.rles[i]["counts"] for i, seg in enumerate(segmentations)]
        boxed = np.flatnonzero([c is None for c in counts])
        for i, string in zip(boxed.tolist(), _box_masks(dataset, sizes, boxed)):
            counts[i] = string
    ids = np.array([im.image_id for im in dataset.images])
    # pycocotools ignores a person whose num_keypoints field is 0 (keypoints evaluation), whatever
    # its keypoints; where the file has no such field, the labelled joints are its num_keypoints
    num_keypoints = dataset.num_keypoints.astype(np.float64)
    if dataset.num_keypoints_field is not None:
        given = ~np.isnan(dataset.num_keypoints_field)
        num_keypoints[given] = dataset.num_keypoints_field[given]
    annotations = Annotations(
        image_id=ids[dataset.image_index] if n else ids[:0],
        category_id=np.ones(n, dtype=np.int64) if dataset.category_id is None else dataset.category_id.copy(),
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
        categories=dataset.categories,
    )


def ground_truth_from_dataset(dataset: Dataset, split: str, masks: bool) -> tuple[GroundTruth, bool]:
    """(ground truth, built from a native file: worth caching)."""
    if dataset.format == "ochuman":
        return ground_truth_from_native(dataset, split, masks), True
    return ground_truth_from_coco(dataset, masks), False
