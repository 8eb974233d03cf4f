"""Where the ground truth comes from: a file given (native or COCO, or a read already under way),
a Dataset, or a dataset root (``--root`` / ``OCHUMAN_ROOT``); a native file's ground truth
through the disk cache (:mod:`ochuman.eval.cache`)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Optional, Union

from ochuman.errors import OCHumanError, OCHumanWarning
from ochuman.eval.cache import cached_ground_truth
from ochuman.eval.ground_truth import GroundTruth, ground_truth_from_coco, ground_truth_from_dataset
from ochuman.io import load, parse, read_file
from ochuman.records import Dataset
from ochuman.scan import PrefetchedAnnotations


def _ground_truth_from_file(source: Union[str, os.PathLike, PrefetchedAnnotations], split: str,
                            masks: bool) -> GroundTruth:
    """The ground truth of an annotation file; a native file's through the cache, keyed by the
    bytes it is built from."""
    path = Path(source.path if isinstance(source, PrefetchedAnnotations) else source)

    def build() -> tuple[GroundTruth, Optional[bytes]]:
        if isinstance(source, PrefetchedAnnotations):
            content = source.get().data  # what load reads (None: it reads the file again itself)
            dataset = load(source, all_categories=True, masks=masks)
            if dataset.format != "ochuman":  # not cached: the bytes can go now (peak memory)
                content = None
        else:
            content = read_file(path)
            dataset = parse(content, source=str(path), all_categories=True, masks=masks)
        ground, native = ground_truth_from_dataset(dataset, split, masks)
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
            return ground_truth_from_dataset(gt, split, masks)[0]
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
        ground = ground_truth_from_coco(load(official, all_categories=True, masks=masks), masks)
        if ground.max_iou_source == "box":
            warnings.warn(
                f"{root}: no ochuman.json, so MaxIoU is recomputed from the boxes of {official.name}, which "
                "lacks the box-only persons: it reads lower than the authors' stored values, and so do "
                "Moderate and Hard; put ochuman.json there for the stored values", OCHumanWarning, stacklevel=2)
        return ground
    raise OCHumanError(
        f"{root}: neither ochuman.json (top level or annotations/) nor {official.name} found; "
        "get them from the OCHuman download and put them there")
