"""Typed records: :class:`Image`, :class:`Person` and the columnar :class:`Dataset`.

One internal convention whatever the file format (converted by :mod:`ochuman.io`):

- boxes ``bbox_xywh`` float64 ``[x, y, w, h]`` (COCO layout; a native ``[x1, y1, x2, y2]`` box
  becomes ``[x1, y1, x2 - x1, y2 - y1]``, exactly what the official converter writes);
- keypoints ``(17, 3)`` float64 in COCO order with COCO visibility 0/1/2 (native files also
  keep their raw ``(19, 3)`` OCHuman keypoints with OCHuman codes 0..3);
- masks as :class:`ochuman.masks.Polygons` (native), a COCO polygon list, or an RLE dict
  (COCO files read by the compiled scanner keep their RLE strings in the file's bytes,
  :class:`ochuman.rle.FileSegmentations`, and build each dict on access);
- ``max_iou``: the value stored by the dataset authors (NaN where the file has none) and
  ``max_iou_box``: recomputed from the boxes with the official convention (:mod:`ochuman.maxiou`),
  among the objects of the same category of an image (a COCO file read with every category).

A :class:`Dataset` keeps persons as parallel arrays (fast to filter and count) and hands out
:class:`Person` records on request.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PureWindowsPath
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from ochuman.errors import FormatError, ImageNotFoundError, OCHumanError, OCHumanWarning
from ochuman.keypoints import num_labelled
from ochuman.masks import Segmentation, polygon_masks, rle_area, segmentation_to_rle
from ochuman.maxiou import max_iou_from_masks
from ochuman.rle import FileSegmentations
from ochuman.subsets import (
    DEFAULT_RANGE_RULE, SPLITS, MaxIoURange, filter_mask, normalise_filter, occlusion_level,
)

ImageId = Union[int, str]


@dataclass(frozen=True)
class Image:
    """One image: its id as the file gives it, file name, size in pixels and official split."""

    image_id: ImageId
    file_name: str
    width: int
    height: int
    split: str = ""  # "val", "test" or "" (not a benchmark image / unknown)


@dataclass(frozen=True, eq=False)
class Person:
    """One annotated person (or COCO crowd region) of an image."""

    image_id: ImageId
    person_id: int
    bbox_xywh: np.ndarray  # (4,) float64
    keypoints: Optional[np.ndarray]  # (17, 3) COCO order and visibility, None without pose
    keypoints_ochuman: Optional[np.ndarray]  # (19, 3) native order and codes, None otherwise
    segmentation: Optional[Segmentation]  # None without mask
    iscrowd: bool
    max_iou: float  # stored by the authors; NaN where the file has none
    max_iou_box: float  # recomputed from boxes, official convention

    @property
    def has_keypoints(self) -> bool:
        return self.keypoints is not None

    @property
    def has_mask(self) -> bool:
        return self.segmentation is not None


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images and persons of one annotation file, persons as parallel arrays of length N.

    Build it with :func:`ochuman.load`; methods that select return a new Dataset and never
    change this one.
    """

    source: str  # the file it was read from, used in messages
    format: str  # "ochuman" (native) or "coco"
    images: tuple[Image, ...]
    image_index: np.ndarray  # (N,) int64 index into images
    person_id: np.ndarray  # (N,) int64
    bbox_xywh: np.ndarray  # (N, 4) float64
    keypoints: np.ndarray  # (N, 17, 3) float64; zeros where has_keypoints is False
    has_keypoints: np.ndarray  # (N,) bool
    segmentations: Sequence[Optional[Segmentation]]  # (N,): a tuple, or FileSegmentations
    iscrowd: np.ndarray  # (N,) bool
    area: np.ndarray  # (N,) float64, the file's `area` field (NaN for native files)
    max_iou: np.ndarray  # (N,) float64 stored; NaN where absent
    max_iou_box: np.ndarray  # (N,) float64
    keypoints_ochuman: Optional[np.ndarray] = None  # (N, 19, 3) for native files
    filter: Optional[str] = None  # the OCHumanApi filter applied, if any
    images_dir: Optional[str] = None  # default folder for read_image
    range_rule: Optional[str] = None  # how a converted file's MaxIoU range was cut (its info); None: unknown
    num_keypoints_field: Optional[np.ndarray] = None  # (N,) float64 a COCO file's num_keypoints; NaN where absent
    category_id: Optional[np.ndarray] = None  # (N,) int64 each annotation's COCO category; None: persons (id 1)
    categories: tuple[tuple[int, str], ...] = ((1, "person"),)  # (id, name) of the file's categories, file order

    def __len__(self) -> int:
        return len(self.person_id)

    # ----------------------------------------------------------------------------- columns
    @cached_property
    def has_mask(self) -> np.ndarray:
        """(N,) bool."""
        if isinstance(self.segmentations, FileSegmentations):
            return self.segmentations.present
        return np.array([s is not None for s in self.segmentations], dtype=bool)

    @cached_property
    def num_keypoints(self) -> np.ndarray:
        """(N,) int64: labelled COCO joints (v > 0), the official ``num_keypoints``."""
        return num_labelled(self.keypoints)

    @property
    def max_iou_source(self) -> str:
        """"stored": the authors' MaxIoU (native files, or COCO files whose every person carries
        a ``max_iou`` field, as ``ochuman convert --with-max-iou`` writes); else "box"
        (recomputed from the boxes of the file)."""
        if self.format == "ochuman":
            return "stored"
        persons = ~self.iscrowd
        return "stored" if persons.any() and not np.isnan(self.max_iou[persons]).any() else "box"

    @property
    def occlusion(self) -> np.ndarray:
        """(N,) MaxIoU used for subsets and statistics: stored, or recomputed from boxes."""
        return self.max_iou if self.max_iou_source == "stored" else self.max_iou_box

    @cached_property
    def image_ids(self) -> np.ndarray:
        """(N,) object array: the image id of each person."""
        ids = np.empty(len(self.images), dtype=object)
        ids[:] = [im.image_id for im in self.images]
        return ids[self.image_index]

    @cached_property
    def image_split(self) -> np.ndarray:
        """(M,) object array: split of each image."""
        return np.array([im.split for im in self.images], dtype=object)

    def rle(self, i: int) -> Optional[dict]:
        """Compressed RLE of person ``i`` at its image's size; None without mask."""
        seg = self.segmentations[i]
        if seg is None:
            return None
        image = self.images[self.image_index[i]]
        return segmentation_to_rle(seg, image.height, image.width)

    @cached_property
    def rles(self) -> tuple[Optional[dict], ...]:
        """(N,) compressed RLEs, None where a person has no mask (rasterised once; the COCO
        polygons all in one call: from the scanner's numbers, else of
        :func:`ochuman.masks.polygon_masks` on the lists)."""
        in_file = self.segmentations if isinstance(self.segmentations, FileSegmentations) else None
        if in_file is not None and in_file.polygons is not None:  # polygons already numbers
            listed = np.flatnonzero(in_file.polygons.present).tolist()
        else:
            listed = [i for i, seg in enumerate(self.segmentations) if type(seg) is list]
        sizes = np.array([[self.images[self.image_index[i]].height, self.images[self.image_index[i]].width]
                          for i in listed], dtype=np.int64).reshape(-1, 2)
        if in_file is not None and in_file.polygons is not None:
            table = in_file.polygons.take(listed).masks(sizes)
        else:
            table = polygon_masks([self.segmentations[i] for i in listed], sizes)
        drawn = set(listed)
        rles = [None if i in drawn else self.rle(i) for i in range(len(self))]
        for k, i in enumerate(listed):
            rles[i] = {"size": [int(sizes[k, 0]), int(sizes[k, 1])], "counts": table[k]}
        return tuple(rles)

    @cached_property
    def mask_area(self) -> np.ndarray:
        """(N,) float64 mask area in pixels; NaN without mask."""
        area = np.full(len(self), np.nan)
        idx = np.flatnonzero(self.has_mask)
        area[idx] = rle_area([self.rles[i] for i in idx])
        return area

    @cached_property
    def max_iou_mask(self) -> np.ndarray:
        """(N,) float64 MaxIoU from masks among the masked, non-crowd persons of each image.

        NaN for persons without mask and crowd regions; 0.0 for a masked person alone.
        """
        result = np.full(len(self), np.nan)
        for idx in self.persons_by_image(self.has_mask & ~self.iscrowd):
            if len(idx):
                result[idx] = max_iou_from_masks([self.rles[i] for i in idx])
        return result

    # ------------------------------------------------------------------------------ records
    def person(self, i: int) -> Person:
        """The ``i``-th person as a record."""
        return Person(
            image_id=self.images[self.image_index[i]].image_id,
            person_id=int(self.person_id[i]),
            bbox_xywh=self.bbox_xywh[i].copy(),
            keypoints=self.keypoints[i].copy() if self.has_keypoints[i] else None,
            keypoints_ochuman=(
                self.keypoints_ochuman[i].copy()
                if self.keypoints_ochuman is not None and self.has_keypoints[i] else None
            ),
            segmentation=self.segmentations[i],
            iscrowd=bool(self.iscrowd[i]),
            max_iou=float(self.max_iou[i]),
            max_iou_box=float(self.max_iou_box[i]),
        )

    def persons(self) -> Iterator[Person]:
        """Every person as a record, in file order."""
        return (self.person(i) for i in range(len(self)))

    def persons_by_image(self, mask: Optional[np.ndarray] = None) -> list[np.ndarray]:
        """Person indices of each image, in file order, optionally only where ``mask`` (N,) holds.

        Returns M arrays of int64 (one per image, possibly empty).
        """
        idx = np.arange(len(self)) if mask is None else np.flatnonzero(mask)
        idx = idx[np.argsort(self.image_index[idx], kind="stable")]
        bounds = np.searchsorted(self.image_index[idx], np.arange(1, len(self.images)))
        return np.split(idx, bounds)

    # ---------------------------------------------------------------------------- selection
    def _take(self, keep_persons: np.ndarray, keep_images: np.ndarray, **changes) -> "Dataset":
        """A new Dataset with the given persons (N,) bool and images (M,) bool."""
        new_index = np.cumsum(keep_images) - 1
        idx = np.flatnonzero(keep_persons & keep_images[self.image_index])
        fields = dict(
            source=self.source, format=self.format,
            images=tuple(im for im, k in zip(self.images, keep_images) if k),
            image_index=new_index[self.image_index[idx]],
            person_id=self.person_id[idx], bbox_xywh=self.bbox_xywh[idx],
            keypoints=self.keypoints[idx], has_keypoints=self.has_keypoints[idx],
            segmentations=(self.segmentations.take(idx) if isinstance(self.segmentations, FileSegmentations)
                           else tuple(self.segmentations[i] for i in idx)),
            iscrowd=self.iscrowd[idx], area=self.area[idx],
            max_iou=self.max_iou[idx], max_iou_box=self.max_iou_box[idx],
            keypoints_ochuman=None if self.keypoints_ochuman is None else self.keypoints_ochuman[idx],
            filter=self.filter, images_dir=self.images_dir, range_rule=self.range_rule,
            num_keypoints_field=None if self.num_keypoints_field is None else self.num_keypoints_field[idx],
            category_id=None if self.category_id is None else self.category_id[idx], categories=self.categories,
        )
        fields.update(changes)
        return Dataset(**fields)

    def _drop_empty_images(self, keep_persons: np.ndarray) -> np.ndarray:
        counts = np.bincount(self.image_index[keep_persons], minlength=len(self.images))
        return counts > 0

    def filter_persons(self, name: Optional[str]) -> "Dataset":
        """Apply an OCHumanApi filter ("kpt", "segm", "kpt&segm", "kpt|segm", None).

        As the official API does, images left without persons are dropped (not with None).
        Crowd regions of COCO files are kept alongside the persons of kept images.
        """
        kind = normalise_filter(name)
        if kind is None:
            return self
        keep = filter_mask(self.has_keypoints, self.has_mask, kind) & ~self.iscrowd
        keep_images = self._drop_empty_images(keep)
        return self._take(keep | self.iscrowd, keep_images, filter=kind)

    def select_split(self, split: str) -> "Dataset":
        """Images of the official "val" or "test" split ("all" returns self)."""
        if split == "all":
            return self
        if split not in SPLITS:
            raise OCHumanError(f"unknown split {split!r}: expected val, test or all")
        if not (self.image_split != "").any():
            raise OCHumanError(
                f"{self.source}: no official val/test split is known for this file (native ochuman.json, "
                "the official val/test COCO-format files, the full-range all file and files written by "
                "ochuman convert have one; an all file of a MaxIoU range without that record does not "
                "say which of its images are val)"
            )
        keep_images = self.image_split == split
        return self._take(np.ones(len(self), dtype=bool), keep_images)

    def select_images(self, keep: np.ndarray) -> "Dataset":
        """The images where ``keep`` (M,) bool holds, each with all its persons."""
        return self._take(np.ones(len(self), dtype=bool), np.asarray(keep, dtype=bool))

    def select_range(self, max_iou_range: MaxIoURange, rule: str = DEFAULT_RANGE_RULE) -> "Dataset":
        """Persons whose MaxIoU (:attr:`occlusion`) falls in the range; emptied images dropped."""
        keep = max_iou_range.contains(self.occlusion, rule) & ~self.iscrowd
        return self._take(keep | self.iscrowd, self._drop_empty_images(keep))

    # -------------------------------------------------------------------------------- views
    def to_frame(self):
        """One row per person (pandas DataFrame) in file order.

        Columns: image_id, file_name, person_id, bbox_x, bbox_y, bbox_w, bbox_h, iscrowd,
        has_keypoints, has_mask, num_keypoints, mask_area, area, max_iou (stored; NaN where
        absent), max_iou_box, max_iou_mask, subset ("moderate", "hard" or ""; closed-top rule on
        :attr:`occlusion`), split.
        """
        import pandas as pd

        files = np.array([im.file_name for im in self.images], dtype=object)
        return pd.DataFrame({
            "image_id": self.image_ids,
            "file_name": files[self.image_index] if len(self) else np.array([], dtype=object),
            "person_id": self.person_id,
            "bbox_x": self.bbox_xywh[:, 0], "bbox_y": self.bbox_xywh[:, 1],
            "bbox_w": self.bbox_xywh[:, 2], "bbox_h": self.bbox_xywh[:, 3],
            "iscrowd": self.iscrowd,
            "has_keypoints": self.has_keypoints,
            "has_mask": self.has_mask,
            "num_keypoints": self.num_keypoints,
            "mask_area": self.mask_area,
            "area": self.area,
            "max_iou": self.max_iou,
            "max_iou_box": self.max_iou_box,
            "max_iou_mask": self.max_iou_mask,
            "subset": occlusion_level(self.occlusion),
            "split": self.image_split[self.image_index] if len(self) else np.array([], dtype=object),
        })

    # ------------------------------------------------------------------------------- images
    def image_path(self, image: Image, images_dir: Optional[str] = None) -> Path:
        """Where ``image`` should be: ``images_dir`` (or the dataset's default) / file name."""
        folder = images_dir or self.images_dir
        if folder is None:
            raise OCHumanError(
                f"{self.source}: no images folder known: pass images_dir (the folder holding "
                f"{image.file_name})"
            )
        return image_file(folder, image.file_name, self.source, image.image_id)

    def read_image(self, image: Union[Image, int], images_dir: Optional[str] = None) -> np.ndarray:
        """Load an image (an :class:`Image` or its index) as BGR uint8 (H, W, 3) with OpenCV."""
        if not isinstance(image, Image):
            image = self.images[image]
        return read_image_file(self.image_path(image, images_dir), f"image {image.image_id!r} of {self.source}")


def image_file(folder: Union[str, os.PathLike], file_name: str, source: str, image_id: ImageId) -> Path:
    """``folder / file_name``. A file name that would leave the folder (absolute, a drive, a
    ``..`` part, a NUL) is refused with a :class:`FormatError` naming ``source`` and the image."""
    if "\0" in file_name or PureWindowsPath(file_name).anchor or ".." in PureWindowsPath(file_name).parts:
        raise FormatError.at(source, f"image {image_id!r}",
                             f"file_name {file_name!r} points outside the images folder; refused")
    return Path(folder) / file_name


def read_image_file(path: Path, what: str) -> np.ndarray:
    """BGR uint8 (H, W, 3) from ``path`` with OpenCV; ``what`` names the image in messages.

    A missing or undecodable file raises :class:`ImageNotFoundError`; a JPEG without its end
    marker (a truncated download) is decoded as far as it goes, with an :class:`OCHumanWarning`.
    """
    import cv2

    pixels = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if pixels is None:
        raise ImageNotFoundError(f"{path}: {what} is missing or unreadable")
    if _truncated_jpeg(path):
        warnings.warn(f"{path}: {what} is a truncated JPEG (no end marker); its missing part is drawn grey",
                      OCHumanWarning, stacklevel=3)
    return pixels


def _truncated_jpeg(path: Path) -> bool:
    """A JPEG file (SOI marker first) whose last bytes, padding aside, are not the EOI marker."""
    with open(path, "rb") as handle:
        if handle.read(2) != b"\xff\xd8":
            return False
        handle.seek(max(handle.seek(0, os.SEEK_END) - 4096, 0))
        return not handle.read().rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
