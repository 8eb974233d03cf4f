"""Batched prediction of a whole evaluation file with a learned Pose2Seg checkpoint."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Union

import numpy as np
import torch

from ochuman.benchmark import GroundTruth
from ochuman.errors import ImageNotFoundError, OCHumanError
from pose2seg.model import Pose2Seg
from pose2seg.predict import PersonInputs, results_from_masks


def read_image(images_dir: Union[str, os.PathLike], file_name: str) -> np.ndarray:
    """BGR uint8 (H, W, 3) from the images folder; a missing file is named."""
    import cv2

    path = Path(images_dir) / file_name
    pixels = cv2.imread(os.fspath(path), cv2.IMREAD_COLOR) if path.is_file() else None
    if pixels is None:
        raise ImageNotFoundError(f"{path}: image is missing or unreadable")
    return pixels


def predict_dataset(checkpoint: Union[str, os.PathLike], gt: GroundTruth, persons: PersonInputs,
                    images_dir: Union[str, os.PathLike], batch_size: int = 4, device: str = "cpu",
                    score: str = "official", progress: Callable = lambda it, **kw: it) -> list[dict]:
    """COCO segm results for every person, images processed ``batch_size`` at a time."""
    try:
        torch_device = torch.device(device)
    except RuntimeError:
        raise OCHumanError(f"unknown device {device!r}: expected cpu, cuda or cuda:N") from None
    if torch_device.type == "cuda" and not torch.cuda.is_available():
        raise OCHumanError(f"--device {device}: no CUDA device is available here; use --device cpu")
    model = Pose2Seg.from_checkpoint(checkpoint, device=torch_device)
    order = np.argsort(persons.image_index, kind="stable")
    images = np.unique(persons.image_index)
    masks_by_person: list = [None] * len(persons)
    scores = np.ones(len(persons))
    for start in progress(range(0, len(images), batch_size), total=-(-len(images) // batch_size), unit="batch"):
        chunk = images[start:start + batch_size]
        pixels = [read_image(images_dir, gt.file_names[k]) for k in chunk]
        for k, image in zip(chunk, pixels):
            h, w = gt.image_sizes[k]
            if image.shape[:2] != (h, w):
                raise OCHumanError(f"{Path(images_dir) / gt.file_names[k]}: image is {image.shape[1]}x{image.shape[0]}, "
                                   f"the ground truth says {w}x{h}")
        who = [order[persons.image_index[order] == k] for k in chunk]
        outputs = model.predict(pixels, [persons.keypoints[idx] for idx in who], score=score)
        for idx, (masks, s) in zip(who, outputs):
            for j, i in enumerate(idx):
                masks_by_person[i] = masks[j]
                scores[i] = s[j] if score == "mask" else persons.score[i]
    return results_from_masks(gt, persons, masks_by_person, scores)
