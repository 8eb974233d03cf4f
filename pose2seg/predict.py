"""Prediction inputs and outputs: which persons to segment, and COCO results files.

Pose2Seg segments the persons it is given keypoints for. They come either from the ground truth
(the official protocol: the keypoints of every person of the evaluation file) or from a keypoint
detector's COCO results (``--keypoints``), whose per-joint confidences are mapped to visibility
explicitly (the official code cast them to int, turning every confidence below 1 into
"missing"). Results are COCO segm results keyed by the evaluation file's image ids, ready for
``ochuman eval`` and pycocotools. With a native ``ochuman.json`` the evaluation file is the
official one of the split (:func:`ochuman.convert.official_selection`): persons it leaves out
(MaxIoU 1.0) get no prediction, and neither do the images it drops, whose ids it lacks.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Union

import numpy as np

from ochuman.eval.ground_truth import GroundTruth
from ochuman.io import write_json
from ochuman.masks import bitmap_to_rle
from ochuman.eval.results import detections_from_records, read_results

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class PersonInputs:
    """Persons to segment: image_index (N,) into the ground truth's images, keypoints (N, 17, 3)
    with visibility 0 (missing) / 1 / 2, score (N,) of each person."""

    image_index: np.ndarray
    keypoints: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


def persons_from_ground_truth(gt: GroundTruth) -> PersonInputs:
    """Every person of the evaluation file that has labelled keypoints (the official protocol)."""
    a = gt.annotations
    keep = ~a.iscrowd & gt.official & (a.num_keypoints > 0)
    return PersonInputs(image_index=_image_index(gt, a.image_id[keep]),
                        keypoints=a.keypoints[keep].reshape(-1, 17, 3).copy(), score=np.ones(int(keep.sum())))


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
    """Persons from a keypoint detector's COCO results file.

    A joint is labelled (v = 2) when its confidence is at least ``confidence_threshold``,
    otherwise missing (v = 0, coordinates kept). Person score = the detection's score.
    Detections on images the evaluation file does not hold are dropped, with a warning.
    """
    records = read_results(path)
    detections = detections_from_records(records, str(path), gt.image_ids, gt.image_sizes, [1],
                                         "keypoints", gt.file_names)
    image_index = _image_index(gt, detections.image_id)
    keep = images_of_the_evaluation_file(gt)[image_index]
    if not keep.all():
        log.warning("%s: %d detections are on images the official %s file of %s leaves out (every person there "
                    "has MaxIoU 1.0); dropped", path, int((~keep).sum()), gt.split, gt.source)
    keypoints = detections.keypoints.reshape(-1, 17, 3)[keep].copy()
    keypoints[..., 2] = np.where(keypoints[..., 2] >= confidence_threshold, 2, 0)
    return PersonInputs(image_index=image_index[keep], keypoints=keypoints, score=detections.score[keep].copy())


def results_from_masks(gt: GroundTruth, persons: PersonInputs,
                       masks: Iterable[np.ndarray], scores: Optional[np.ndarray] = None) -> list[dict]:
    """COCO segm results: one record per person, masks (H, W) in the person's image."""
    scores = persons.score if scores is None else scores
    results = []
    for k, mask in enumerate(masks):
        image_id = gt.image_ids[persons.image_index[k]]
        results.append({"image_id": image_id.item() if hasattr(image_id, "item") else image_id,
                        "category_id": 1, "score": float(scores[k]), "segmentation": bitmap_to_rle(mask)})
    return results


def predict_skeleton_prior(gt: GroundTruth, persons: PersonInputs,
                           progress: Callable[[Iterable], Iterable] = iter) -> list[dict]:
    """The non-learned floor (:mod:`pose2seg.prior`) for every person; score = person score."""
    from pose2seg.prior import skeleton_prior_mask

    def masks():
        for k in progress(range(len(persons))):
            height, width = (int(v) for v in gt.image_sizes[persons.image_index[k]])
            yield skeleton_prior_mask(persons.keypoints[k], height, width)

    return results_from_masks(gt, persons, masks())


def write_results(path: Union[str, os.PathLike], results: list[dict]) -> None:
    """Write a COCO results list atomically (nothing half-written on error or ^C)."""
    write_json(path, results)
