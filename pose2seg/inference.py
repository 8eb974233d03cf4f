"""Batched prediction of a whole evaluation file with a learned Pose2Seg checkpoint."""
from __future__ import annotations

import os
from typing import Callable, Union

import numpy as np
import torch

from ochuman.errors import OCHumanError
from ochuman.records import image_file, read_image_file
from pose2seg.model import Pose2Seg
from pose2seg.predict import Images, PersonInputs, results_from_masks


def predict_dataset(checkpoint: Union[str, os.PathLike], gt: Images, persons: PersonInputs,
                    images_dir: Union[str, os.PathLike], batch_size: int = 4, device: str = "cpu",
                    score: str = "official", progress: Callable = lambda it, **kw: it) -> list[dict]:
    """COCO segm results for every person, images processed ``batch_size`` at a time; ``gt``: a
    ground truth, or a table of images without one (:class:`~ochuman.pose_files.ImageTable`)."""
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise OCHumanError(f"unknown device {device!r}: expected cpu, cuda or cuda:N") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise OCHumanError(f"--device {device}: no CUDA device is available here; use --device cpu")
    model = Pose2Seg.from_checkpoint(checkpoint, device=torch_device)
    order = np.argsort(persons.image_index, kind="stable")
    images = np.unique(persons.image_index)
    image_ids = gt.image_ids.tolist()
    masks_by_person: list = [None] * len(persons)
    scores = np.ones(len(persons))
    for start in progress(range(0, len(images), batch_size), total=-(-len(images) // batch_size), unit="batch"):
        chunk = images[start:start + batch_size]
        paths = [image_file(images_dir, gt.file_names[k], gt.source, image_ids[k]) for k in chunk]
        pixels = [read_image_file(path, f"image {image_ids[k]!r} of {gt.source}") for k, path in zip(chunk, paths)]
        for k, path, image in zip(chunk, paths, pixels):
            h, w = gt.image_sizes[k]
            if image.shape[:2] != (h, w):
                raise OCHumanError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, the ground truth says {w}x{h}")
        who = [order[persons.image_index[order] == k] for k in chunk]
        outputs = model.predict(pixels, [persons.keypoints[idx] for idx in who], score=score)
        for idx, (masks, s) in zip(who, outputs):
            for j, i in enumerate(idx):
                masks_by_person[i] = masks[j]
                scores[i] = s[j] if score == "mask" else persons.score[i]
    return results_from_masks(gt, persons, masks_by_person, scores)
