"""Prediction inputs and outputs: which persons to segment, and COCO results files.

Pose2Seg segments the persons it is given keypoints for. They come either from the ground truth
or from a keypoint detector's COCO results (``--keypoints``), whose per-joint confidences are
mapped to visibility explicitly (the official code cast them to int, turning every confidence
below 1 into "missing").

Two protocols choose the ground-truth persons (:data:`PROTOCOLS`):

- ``"clean"``: every non-crowd person of the evaluation file with labelled keypoints, keypoints
  as the file gives them, one prediction per person;
- ``"official"``: what the official ``test.py`` loop segments (spec 5.10), in its order: the
  images that hold a person annotation, by image id; in each, every *valid* annotation (area > 0
  and a box wider and taller than one pixel once clipped to the image, crowd regions and persons
  without keypoints included: those get the whole-image alignment) in file order, keypoints
  truncated to integers as its dataset loader stores them (int32); an image without a valid
  annotation is replaced by the next image, which is then segmented twice.

Images without a ground-truth file (your own images, keypoints from OpenPose or AlphaPose,
:mod:`ochuman.pose_files`) are numbered 1..M in file-name order; their masks go into a COCO file
(:func:`coco_file_of_predictions`: images, and annotations with masks, keypoints and scores).

Each results record says which protocol made it (``"protocol"``; pycocotools and ``ochuman
eval`` ignore the field). Results are COCO segm results keyed by the evaluation file's image ids, ready for
``ochuman eval`` and pycocotools. With a native ``ochuman.json`` the evaluation file is the
official one of the split (:func:`ochuman.convert.official_selection`): persons it leaves out
(MaxIoU 1.0) get no prediction, and neither do the images it drops, whose ids it lacks.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Optional, Union

import numpy as np

from ochuman.errors import FormatError
from ochuman.eval.ground_truth import GroundTruth
from ochuman.io import write_json
from ochuman.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON, coco_prefix
from ochuman.masks import bitmap_to_rle, rle_area
from ochuman.eval.results import detections_from_records, read_results
from ochuman.pose_files import DetectedPoses, ImageTable, read_detected_poses

#: what a prediction reads of its images: a ground truth's, or a table of images without one
Images = Union[GroundTruth, ImageTable]

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PersonInputs:
    """Persons to segment: image_index (N,) into the ground truth's images, keypoints (N, 17, 3)
    with visibility 0 (missing) / 1 / 2, score (N,) of each person; protocol: the one that
    chose them (recorded in every results record)."""

    image_index: np.ndarray
    keypoints: np.ndarray
    score: np.ndarray
    protocol: str = "clean"

    def __len__(self) -> int:
        return len(self.score)


PROTOCOLS = ("clean", "official")


def persons_from_ground_truth(gt: GroundTruth, protocol: str = "clean") -> PersonInputs:
    """The ground-truth persons to segment under ``protocol`` (module docstring)."""
    if protocol == "official":
        return persons_of_the_official_loop(gt)
    if protocol != "clean":
        raise ValueError(f"protocol: expected one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    a = gt.annotations
    keep = ~a.iscrowd & gt.official & (a.num_keypoints > 0)
    return PersonInputs(image_index=_image_index(gt, a.image_id[keep]),
                        keypoints=a.keypoints[keep].reshape(-1, 17, 3).copy(), score=np.ones(int(keep.sum())))


def valid_for_the_official_loop(gt: GroundTruth) -> np.ndarray:
    """(N,) bool: the annotations the official dataset loader keeps: in the evaluation file,
    area > 0 and a proper box: ``[x, y, x + w - 1, y + h - 1]`` clipped to the image has
    x2 > x1 and y2 > y1."""
    a = gt.annotations
    height, width = (gt.image_sizes[_image_index(gt, a.image_id)].astype(np.float64) - 1).T
    x1 = np.clip(a.bbox[:, 0], 0, width)
    y1 = np.clip(a.bbox[:, 1], 0, height)
    x2 = np.clip(a.bbox[:, 0] + a.bbox[:, 2] - 1, 0, width)
    y2 = np.clip(a.bbox[:, 1] + a.bbox[:, 3] - 1, 0, height)
    return gt.official & (a.area > 0) & (x2 > x1) & (y2 > y1)


def persons_of_the_official_loop(gt: GroundTruth) -> PersonInputs:
    """The persons the official ``test.py`` segments, in its order (module docstring).

    Images with no valid annotation from the last one on have no next image: the official loop
    fails there (IndexError); here they contribute nothing, with a warning.
    """
    a = gt.annotations
    position = _image_index(gt, a.image_id)
    listed = np.unique(position[gt.official])  # images holding a person of the file
    listed = listed[np.argsort(gt.image_ids[listed], kind="stable")]
    valid = valid_for_the_official_loop(gt)
    has_valid = np.bincount(position[valid], minlength=len(gt.image_ids))[listed] > 0
    # the image segmented at each step: the first one at or after it with a valid annotation
    following = np.full(len(listed), -1, dtype=np.int64)
    nxt = -1
    for step in range(len(listed) - 1, -1, -1):
        nxt = listed[step] if has_valid[step] else nxt
        following[step] = nxt
    if len(listed) and following[-1] < 0:
        stranded = int((following < 0).sum())
        log.warning("%s: the last %d image(s) of the official loop have no valid annotation and no next image "
                    "(the official test.py fails there): nothing predicted for them", gt.source, stranded)
    valid_idx = np.flatnonzero(valid)
    by_image = valid_idx[np.argsort(position[valid_idx], kind="stable")]
    starts = np.searchsorted(position[by_image], following[following >= 0])
    ends = np.searchsorted(position[by_image], following[following >= 0], side="right")
    chosen = np.concatenate([by_image[s:e] for s, e in zip(starts, ends)]) if len(starts) else valid_idx[:0]
    keypoints = np.trunc(a.keypoints[chosen].reshape(-1, 17, 3))  # the loader's int32 arrays
    return PersonInputs(image_index=position[chosen], keypoints=keypoints, score=np.ones(len(chosen)),
                        protocol="official")


def images_of_the_evaluation_file(gt: GroundTruth) -> np.ndarray:
    """(M,) bool: the images the evaluation file holds. A native ground truth also holds the
    benchmark images whose every person the official file left out (it drops those images
    and numbers them after its own); a COCO file holds all of its images."""
    in_file = np.ones(len(gt.image_ids), dtype=bool)
    position = _image_index(gt, gt.annotations.image_id)
    in_file[position] = False
    in_file[position[gt.official]] = True
    return in_file | (np.bincount(position, minlength=len(in_file)) == 0)


def _image_index(gt: GroundTruth, image_ids: np.ndarray) -> np.ndarray:
    position = {key: k for k, key in enumerate(gt.image_ids.tolist())}
    return np.array([position[i] for i in image_ids.tolist()], dtype=np.int64)


def persons_from_keypoint_results(path: Union[str, os.PathLike], gt: GroundTruth,
                                  confidence_threshold: float = 0.2) -> PersonInputs:
    """Persons from a keypoint detector's COCO results file (image_id: an image id or file name
    of ``gt``; keypoints of COCO's 17 joints or of a layout that begins with them), or from an
    OpenPose ``--write_json`` folder (``<stem>_keypoints.json``: the image of ``gt`` whose file
    name has that stem).

    A joint is labelled (v = 2) when its confidence is at least ``confidence_threshold``,
    otherwise missing (v = 0, coordinates kept). Person score = the detection's score (OpenPose:
    the mean confidence of its 17 COCO joints). Detections on images the evaluation file does
    not hold are dropped, with a warning.
    """
    if Path(path).is_dir():
        poses = read_detected_poses(path)
        image_index = _images_of_stems(gt, poses)[poses.image_of]
        keypoints, score = poses.keypoints, poses.score
    else:
        records = read_results(path)
        for record in records:  # AlphaPose's Halpe-26 / Halpe-136, COCO-WholeBody: their first 17 joints
            if record.keypoints is not None:
                record.keypoints = coco_prefix(record.keypoints)
        detections = detections_from_records(records, str(path), gt.image_ids, gt.image_sizes, [1],
                                             "keypoints", gt.file_names)
        image_index = _image_index(gt, detections.image_id)
        keypoints, score = detections.keypoints.reshape(-1, 17, 3), detections.score
    keep = images_of_the_evaluation_file(gt)[image_index]
    if not keep.all():
        log.warning("%s: %d detections are on images the official %s file of %s leaves out (every person there "
                    "has MaxIoU 1.0); dropped", path, int((~keep).sum()), gt.split, gt.source)
    return PersonInputs(image_index=image_index[keep], keypoints=_labelled_at(keypoints[keep], confidence_threshold),
                        score=score[keep].copy())


def _images_of_stems(gt: GroundTruth, poses: DetectedPoses) -> np.ndarray:
    """(M,) index into ``gt``'s images of each OpenPose file's image: the one whose file name
    (without folder and suffix) is the file's stem."""
    by_stem: dict[str, list[int]] = {}
    for k, name in enumerate(gt.file_names):
        by_stem.setdefault(PurePosixPath(name).stem, []).append(k)
    index = np.empty(len(poses.image_names), dtype=np.int64)
    for m, (stem, at) in enumerate(zip(poses.image_names, poses.image_where)):
        found = by_stem.get(stem, [])
        if len(found) != 1:
            names = ", ".join(repr(gt.file_names[k]) for k in found[:3])
            problem = f"several images of {gt.source} have the stem {stem!r} ({names})" if found else \
                f"no image of {gt.source} is named {stem}.*"
            raise FormatError(f"{Path(poses.source) / at}: {problem}")
        index[m] = found[0]
    return index


def persons_from_detected_poses(poses: DetectedPoses, image_index: np.ndarray,
                                confidence_threshold: float = 0.2) -> PersonInputs:
    """Persons of a detector's output on images without ground truth; image_index (N,) of each
    person into its :class:`~ochuman.pose_files.ImageTable`. A joint is labelled (v = 2) when
    its confidence is at least ``confidence_threshold``, else missing (v = 0)."""
    return PersonInputs(image_index=np.asarray(image_index, dtype=np.int64),
                        keypoints=_labelled_at(poses.keypoints, confidence_threshold), score=poses.score.copy())


def _labelled_at(keypoints: np.ndarray, confidence_threshold: float) -> np.ndarray:
    """(N, 17, 3) copy whose third column is 2 where the confidence reaches the threshold, else 0."""
    keypoints = np.array(keypoints, dtype=np.float64)
    keypoints[..., 2] = np.where(keypoints[..., 2] >= confidence_threshold, 2, 0)
    return keypoints


def results_from_masks(gt: Images, persons: PersonInputs,
                       masks: Iterable[np.ndarray], scores: Optional[np.ndarray] = None) -> list[dict]:
    """COCO segm results: one record per person, masks (H, W) in the person's image, each
    naming the protocol that chose the persons."""
    scores = persons.score if scores is None else scores
    results = []
    for k, mask in enumerate(masks):
        image_id = gt.image_ids[persons.image_index[k]]
        results.append({"image_id": image_id.item() if hasattr(image_id, "item") else image_id,
                        "category_id": 1, "score": float(scores[k]), "segmentation": bitmap_to_rle(mask),
                        "protocol": persons.protocol})
    return results


def predict_skeleton_prior(gt: Images, persons: PersonInputs,
                           progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """The non-learned floor (:mod:`pose2seg.prior`) for every person; score = person score."""
    from pose2seg.prior import skeleton_prior_mask

    def masks():
        for k in progress(range(len(persons))):
            height, width = (int(v) for v in gt.image_sizes[persons.image_index[k]])
            yield skeleton_prior_mask(persons.keypoints[k], height, width)

    return results_from_masks(gt, persons, masks())


def coco_file_of_predictions(images: ImageTable, persons: PersonInputs, results: list[dict],
                             description: str) -> dict:
    """A COCO file of the predicted persons: ``images`` (id, file_name, height, width) and one
    annotation per person (results[k] of persons[k]): its mask as RLE, area and box of the
    mask, the keypoints it was given (joints without label zeroed, as COCO writes them),
    num_keypoints and score. ``ochuman show``, ``ochuman stats`` and pycocotools read it."""
    from pycocotools import mask as mask_utils

    rles = [r["segmentation"] for r in results]
    encoded = [{"size": r["size"], "counts": r["counts"].encode("ascii")} for r in rles]
    areas = rle_area(encoded).tolist()
    boxes = mask_utils.toBbox(encoded).tolist() if encoded else []
    keypoints = np.where(persons.keypoints[..., 2:] > 0, persons.keypoints, 0.0)
    annotations = []
    for k, result in enumerate(results):
        annotations.append({
            "id": k + 1, "image_id": result["image_id"], "category_id": 1, "iscrowd": 0,
            "segmentation": rles[k], "area": float(areas[k]), "bbox": boxes[k],
            "keypoints": keypoints[k].reshape(-1).tolist(), "num_keypoints": int((keypoints[k, :, 2] > 0).sum()),
            "score": result["score"],
        })
    return {
        "info": {"description": description},
        "images": [{"id": int(i), "file_name": name, "height": int(h), "width": int(w)}
                   for i, name, (h, w) in zip(images.image_ids.tolist(), images.file_names, images.image_sizes)],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": list(COCO_KEYPOINT_NAMES),
                        "skeleton": [list(pair) for pair in COCO_SKELETON]}],
    }


def write_results(path: Union[str, os.PathLike], results: Union[list, dict]) -> None:
    """Write a COCO results list (or a COCO file) atomically (nothing half-written on error or ^C)."""
    write_json(path, results)
