"""Image sets: ``all`` (every image) and ``fully-labelled`` (the images whose every boxed person
has keypoints and a mask), for ``ochuman eval`` and ``ochuman stats`` (``--image-set``).

OCHuman boxes 13360 persons, of whom 8110 also have keypoints and a mask; the official
COCO-format files keep only those 8110. On an image with a box-only (or keypoint-only) person,
a method that finds that person is charged a false positive, which roughly halves AP on the
original files. The fully-labelled set keeps the images where that cannot happen (what the
Occlusion Copy&Paste paper's "FL" files were built for by hand).

Rule: an image is fully labelled when it holds at least one person and every person of it in
the native ``ochuman.json`` (crowd regions aside: OCHuman has none) has keypoints and a mask.
Only the native file knows the box-only persons: a COCO-format ground truth (the official
converter drops them; any other COCO file cannot say whether persons were dropped) is refused
with an :class:`~ochuman.errors.OCHumanError` naming the file.

An evaluation on an image set is pycocotools' with ``params.imgIds`` set to the set's images:
detections on other images are not scored. With a native ground truth of a split, those are
the images of the split's official file whose persons are all in it (the ground truth's
``extra`` persons are the others: box-only, keypoint-only, mask-only).
"""
from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from ochuman.errors import OCHumanError
from ochuman.eval.ground_truth import GroundTruth, index_of
from ochuman.records import Dataset

ALL_IMAGES = "all"
FULLY_LABELLED = "fully-labelled"
IMAGE_SETS = (ALL_IMAGES, FULLY_LABELLED)


def image_set_names(image_set: Union[str, Sequence[str]]) -> list[str]:
    """The image sets asked for (a name or several), in order, each once; unknown names refused."""
    names = [image_set] if isinstance(image_set, str) else list(image_set)
    for name in names:
        if name not in IMAGE_SETS:
            raise OCHumanError(f"unknown image set {name!r}: expected {' or '.join(IMAGE_SETS)}")
    if not names:
        raise OCHumanError(f"no image set given: expected {' and/or '.join(IMAGE_SETS)}")
    return list(dict.fromkeys(names))


def _refuse_coco(source: str) -> None:
    raise OCHumanError(
        f"{source}: image set {FULLY_LABELLED} needs the native ochuman.json: a COCO-format file holds no "
        "box-only persons (the official converter drops them), so it cannot say which images are fully labelled")


def fully_labelled_images(dataset: Dataset) -> np.ndarray:
    """(M,) bool: the images of a native, unfiltered ``dataset`` holding at least one person,
    every one with keypoints and a mask. A COCO file, or a dataset already filtered (its
    box-only persons gone), is refused."""
    if dataset.format != "ochuman":
        _refuse_coco(dataset.source)
    if dataset.filter is not None:
        raise OCHumanError(f"{dataset.source}: image set {FULLY_LABELLED} needs every person of the file, "
                           f"not the {dataset.filter} filter's: choose the image set first, then filter")
    persons = ~dataset.iscrowd
    lacking = persons & ~(dataset.has_keypoints & dataset.has_mask)
    M = len(dataset.images)
    return ((np.bincount(dataset.image_index[persons], minlength=M) > 0)
            & (np.bincount(dataset.image_index[lacking], minlength=M) == 0))


def select_image_set(dataset: Dataset, name: str) -> Dataset:
    """The images of ``dataset`` in image set ``name``, each with all its persons (``all``:
    ``dataset`` itself)."""
    if image_set_names(name) == [ALL_IMAGES]:
        return dataset
    return dataset.select_images(fully_labelled_images(dataset))


def image_set_ids(ground: GroundTruth, name: str) -> Optional[np.ndarray]:
    """The image ids (sorted) of the ground truth's images in image set ``name``, as pycocotools'
    ``params.imgIds``; None for ``all`` (every image of the ground truth)."""
    if image_set_names(name) == [ALL_IMAGES]:
        return None
    if ground.keypoint_codes is None:  # built from a COCO file
        _refuse_coco(ground.source)
    M = len(ground.image_ids)
    image_index = index_of(ground.annotations.image_id, ground.image_ids)
    persons = ~ground.annotations.iscrowd
    with_person = np.bincount(image_index[persons], minlength=M) > 0
    with_other = np.bincount(image_index[persons & ground.extra], minlength=M) > 0
    return np.sort(ground.image_ids[with_person & ~with_other])
