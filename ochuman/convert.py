"""Native OCHuman -> COCO format, field by field as OCHumanApi ``toCocoFormart`` writes it.

Official rules reproduced by default (spec: OCHumanApi ``ochuman.py``):

- only persons with keypoints *and* a mask are converted (the API asserts filter ``kpt&segm``);
- images: ``all``, or the official ``val`` (first 2500 benchmark images in file order) /
  ``test`` (the rest);
- persons: stored ``max_iou`` in the half-open range ``[lo, hi)``; an image is written only if
  at least one of its persons survives;
- ids: images renumbered 1, 2, ... in file order among written images, annotations 1, 2, ...
  across the file (each file restarts at 1);
- ``bbox = [x1, y1, x2 - x1, y2 - y1]``; ``area`` = the *box* area ``w * h``; ``iscrowd`` 0;
  ``category_id`` 1; 17 COCO keypoints with visibility 1, 2 -> 2 and 3 -> 1; ``num_keypoints``
  = joints with visibility > 0; ``segmentation`` = compressed RLE of outer minus inner polygons.

Named, opt-in departures: ``area="mask"`` (pixel area, so COCO's small/medium/large ranges mean
what they say), ``image_ids="native"`` (image id = the native ``image_id`` as an int and
annotation id = the person's id in the native file, so that val, test and range files share
ids) and ``range_rule="closed-top"`` (keep MaxIoU == 1.0 in ranges ending at 1.0). An ``info``
key is always added: pycocotools 2.0.9+ ``loadRes`` needs it; it also records the split, the
range, the range rule and which images are val (:func:`file_facts`), which ``ochuman.load``
reads back.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ochuman.errors import FormatError, OCHumanError
from ochuman.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON
from ochuman.masks import rle_area
from ochuman.records import Dataset
from ochuman.subsets import RANGE_RULES, SPLITS, MaxIoURange

CONVERT_SPLITS = ("all",) + SPLITS
AREAS = ("box", "mask")
IMAGE_IDS = ("official", "native")

PERSON_CATEGORY = {
    "supercategory": "person",
    "id": 1,
    "name": "person",
    "keypoints": list(COCO_KEYPOINT_NAMES),
    "skeleton": [list(pair) for pair in COCO_SKELETON],
}


def official_file_name(split: str, max_iou_range: MaxIoURange) -> str:
    """``ochuman_coco_format_{split}_range_{lo:.2f}_{hi:.2f}.json``."""
    return f"ochuman_coco_format_{split}_range_{max_iou_range.lo:.2f}_{max_iou_range.hi:.2f}.json"


def file_facts(split: str, max_iou_range: MaxIoURange, range_rule: str, val_images: int) -> dict:
    """What a converted file records in its ``info`` for the readers of :mod:`ochuman.io`:
    ``split``, ``max_iou_range`` [lo, hi], ``range_rule`` (how the range was cut: subsets of the
    file are cut the same way) and ``val_images``: its first ``val_images`` images are in the
    official val split, the others in test (images keep the native order, val first). An
    ``all`` file of a MaxIoU range cannot tell that otherwise: the images its range left out
    move the native 2500-image boundary."""
    return {"split": split, "max_iou_range": [max_iou_range.lo, max_iou_range.hi], "range_rule": range_rule,
            "val_images": val_images}


def recorded_file_facts(info, source: str, n_images: int) -> Optional[tuple[np.ndarray, str]]:
    """((M,) official split of each image, range rule) from the ``info`` of a file this module
    wrote (:func:`file_facts`); None when ``info`` does not hold all four facts (other files)."""
    keys = ("split", "max_iou_range", "range_rule", "val_images")
    if not isinstance(info, dict) or not all(key in info for key in keys):
        return None
    rule, val_images = info["range_rule"], info["val_images"]
    if rule not in RANGE_RULES:
        raise FormatError.at(source, "info", f"range_rule must be one of {', '.join(RANGE_RULES)}, got {rule!r}")
    if type(val_images) is not int or not 0 <= val_images <= n_images:
        raise FormatError.at(source, "info", f"val_images must be an integer from 0 to the {n_images} images, "
                                             f"got {val_images!r}")
    split = np.full(n_images, "test", dtype=object)
    split[:val_images] = "val"
    return split, rule


def _number(value: float):
    """JSON number as the official converter writes it: integral values as ints."""
    value = float(value)
    return int(value) if value.is_integer() else value


def _native_int_id(image_id) -> int:
    try:
        return int(image_id)
    except ValueError:
        raise OCHumanError(f"image_ids='native' needs numeric native image ids, got {image_id!r}") from None


def official_selection(
    dataset: Dataset, split: str = "all", max_iou_range: MaxIoURange = MaxIoURange(0.0, 1.0),
    range_rule: str = "official",
) -> tuple[Dataset, list[tuple[int, np.ndarray]]]:
    """The persons the official converter writes, grouped by written image in file order.

    Returns the benchmark dataset (persons with keypoints and mask, images of ``split``) and
    ``(image_index, person_indices)`` for every image with at least one person in range; the
    n-th pair is the image the official file numbers n + 1.
    """
    if dataset.format != "ochuman" or dataset.keypoints_ochuman is None:
        raise OCHumanError(f"{dataset.source}: conversion needs a native ochuman.json file")
    if split not in CONVERT_SPLITS:
        raise OCHumanError(f"unknown split {split!r}: expected one of {', '.join(CONVERT_SPLITS)}")
    benchmark = dataset.filter_persons("kpt&segm")
    if split != "all":
        benchmark = benchmark.select_split(split)
    keep = max_iou_range.contains(benchmark.max_iou, range_rule)
    groups = [(k, idx) for k, idx in enumerate(benchmark.persons_by_image(keep)) if len(idx)]
    return benchmark, groups


def to_coco(
    dataset: Dataset,
    split: str = "all",
    max_iou_range: MaxIoURange = MaxIoURange(0.0, 1.0),
    *,
    range_rule: str = "official",
    area: str = "box",
    image_ids: str = "official",
    with_max_iou: bool = False,
    progress: bool = False,
) -> dict:
    """Convert a native OCHuman dataset to a COCO dict (see the module docstring for rules).

    with_max_iou: also write each person's stored ``max_iou`` (an extra field pycocotools
    ignores; ``ochuman.load`` and ``ochuman eval --gt`` then use it instead of recomputing).
    progress: show a progress bar (tqdm, on stderr) over the images.
    """
    for name, value, allowed in (("area", area, AREAS), ("image_ids", image_ids, IMAGE_IDS)):
        if value not in allowed:
            raise OCHumanError(f"unknown {name} {value!r}: expected one of {', '.join(allowed)}")

    from tqdm import tqdm  # here: 15 ms of import that `ochuman eval` does not need

    benchmark, groups = official_selection(dataset, split, max_iou_range, range_rule)
    groups = tqdm(groups, total=len(groups), desc=f"convert {split}", unit="img",
                  disable=not progress, leave=False)

    images_out, annotations_out = [], []
    for image_index, persons in groups:
        image = benchmark.images[image_index]
        image_id = _native_int_id(image.image_id) if image_ids == "native" else len(images_out) + 1
        images_out.append({"file_name": image.file_name, "width": image.width,
                           "height": image.height, "id": image_id})
        for i in persons:
            x, y, w, h = (_number(v) for v in benchmark.bbox_xywh[i])
            flat = []
            for px, py, v in benchmark.keypoints[i]:
                flat += [_number(px), _number(py), int(v)]
            rle = benchmark.rle(i)
            annotations_out.append({
                "area": _number(w * h) if area == "box" else int(rle_area([rle])[0]),
                "image_id": image_id,
                "iscrowd": 0,
                "category_id": 1,
                "bbox": [x, y, w, h],
                "segmentation": rle,
                "num_keypoints": int(benchmark.num_keypoints[i]),
                "id": int(benchmark.person_id[i]) if image_ids == "native" else len(annotations_out) + 1,
                "keypoints": flat,
            })
            if with_max_iou:
                annotations_out[-1]["max_iou"] = float(benchmark.max_iou[i])

    max_iou_note = ", max_iou kept" if with_max_iou else ""
    rule_note = "[lo, hi)" if range_rule == "official" else "[lo, hi), hi = 1.0 included"
    written_splits = [benchmark.images[k].split for k, _ in groups]
    return {
        "info": {
            "description": (
                f"OCHuman {split}, stored MaxIoU in {max_iou_range.lo:.2f}..{max_iou_range.hi:.2f} "
                f"({rule_note}), area={area}, image_ids={image_ids}{max_iou_note}; converted by ochuman-toolkit "
                f"from {dataset.source}"
            ),
            **file_facts(split, max_iou_range, range_rule, written_splits.count("val")),
        },
        "categories": [dict(PERSON_CATEGORY)],
        "images": images_out,
        "annotations": annotations_out,
    }
