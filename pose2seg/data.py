"""Training data: COCO-style persons with keypoints and masks, letterboxed for Pose2Seg.

Selection (the official ``person_keypoints_*_pose2seg.json`` rule): non-crowd persons with
``num_keypoints > 0`` and a mask; images without such a person are skipped. No image-level
augmentation (spec 5.9).

Frames (spec 5.1, 3x3 matrices on column ``[x, y, 1]``): each sample holds the image
letterboxed into the ``S x S`` input (``m1``, bilinear, black border), keypoints and boxes in
*input* pixels (joints with ``v == 0`` zeroed after the warp), and each person's GT mask in its
*origin* image frame. The per-person 64x64 target depends on the model's Affine-Align matrix
and on the training augmentation, so it is made in the training step (:func:`mask_targets`):
the origin mask is warped once with the person's mask matrix ``input_to_output @ m1`` (bilinear,
zero border, ``>= 0.5``), as the official code warps the uint8 mask with ``cv2.warpAffine`` and
the same matrix. Warping from the origin frame (rather than a letterboxed copy of the mask)
keeps the target's resolution independent of ``S``.

Batches (:func:`collate`): images stacked (B, S, S, 3) uint8 BGR, persons concatenated with
their ``batch_index``; masks zero-padded at the bottom/right to the largest image of the batch
(padding changes no coordinate). :func:`select_persons` keeps at most ``max_persons`` persons
per batch (official ``MAXINST`` = 8), drawn at random across the batch with the caller's
seeded generator (in the main process, so worker processes never hold training randomness).
"""
from __future__ import annotations

import logging
import os
from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ochuman.errors import OCHumanError
from ochuman.io import load
from ochuman.masks import rle_to_bitmap, xywh_to_xyxy
from ochuman.records import Dataset
from pose2seg.align import ALIGN_SIZE, sample_aligned
from pose2seg.model import letterbox

__all__ = ["Batch", "PersonMaskDataset", "collate", "mask_targets", "select_persons", "training_selection"]

log = logging.getLogger(__name__)


class Batch(NamedTuple):
    """A training batch: B images, N persons.

    images (B, S, S, 3) uint8 BGR letterboxed; m1 (B, 3, 3) float64 origin -> input;
    keypoints (N, 17, 3) float32 input pixels; boxes_xyxy (N, 4) float32 input pixels;
    masks (N, H, W) uint8 origin frame (zero-padded); batch_index (N,) int64;
    image_ids (B,) the file's image ids; person_ids (N,) int64 annotation ids.
    """

    images: Tensor
    m1: Tensor
    keypoints: Tensor
    boxes_xyxy: Tensor
    masks: Tensor
    batch_index: Tensor
    image_ids: list
    person_ids: Tensor

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "Batch":
        """The tensors moved to ``device`` (ids stay as they are)."""
        return self._replace(**{name: getattr(self, name).to(device, non_blocking=non_blocking)
                                for name in ("images", "m1", "keypoints", "boxes_xyxy", "masks",
                                             "batch_index", "person_ids")})

    @property
    def num_persons(self) -> int:
        return len(self.batch_index)


def training_selection(data: Dataset) -> np.ndarray:
    """(N,) bool: the persons Pose2Seg trains on (non-crowd, num_keypoints > 0, a mask)."""
    return ~data.iscrowd & data.has_keypoints & (data.num_keypoints > 0) & data.has_mask


class PersonMaskDataset(torch.utils.data.Dataset):
    """One item per image holding at least one trainable person (see the module docstring).

    annotations: a COCO keypoint file (or native ``ochuman.json``) or a loaded
    :class:`~ochuman.records.Dataset`. images_dir: the folder of its images. Images missing
    from the folder are skipped with one warning each (counted in :attr:`missing`); an empty
    selection raises :class:`~ochuman.errors.OCHumanError` naming the file. report_missing:
    False keeps the warnings quiet (ranks other than 0 of a distributed run).
    """

    def __init__(self, annotations: Union[str, os.PathLike, Dataset], images_dir: Union[str, os.PathLike],
                 input_size: int = 512, report_missing: bool = True):
        data = annotations if isinstance(annotations, Dataset) else load(annotations)
        self.data = data
        self.images_dir = os.fspath(images_dir)
        self.input_size = int(input_size)
        if not os.path.isdir(self.images_dir):
            raise OCHumanError(f"{self.images_dir}: images folder not found")
        keep = training_selection(data)
        if not keep.any():
            raise OCHumanError(
                f"{data.source}: no person to train on ({len(data)} annotations in {len(data.images)} images; "
                "need non-crowd persons with keypoints (num_keypoints > 0) and a mask)")
        groups = data.persons_by_image(keep)
        items: list[tuple[int, np.ndarray]] = []
        self.missing = 0
        for k, persons in enumerate(groups):
            if not len(persons):
                continue
            image = data.images[k]
            path = data.image_path(image, self.images_dir)
            if not path.is_file():
                if report_missing:
                        log.warning("%s: image %r of %s is missing; skipped", path, image.image_id, data.source)
                self.missing += 1
                continue
            items.append((k, persons))
        if not items:
            raise OCHumanError(f"{data.source}: none of the {self.missing} images with a person to train on "
                               f"is in {self.images_dir}")
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    @property
    def num_persons(self) -> int:
        return int(sum(len(p) for _, p in self.items))

    def image_ids(self) -> list:
        """The image id of each item, in item order."""
        return [self.data.images[k].image_id for k, _ in self.items]

    def __getitem__(self, index: int) -> dict:
        """One image: ``image`` (S, S, 3) uint8, ``m1`` (3, 3) float64, ``keypoints`` (n, 17, 3) and
        ``boxes_xyxy`` (n, 4) float32 in input pixels, ``masks`` (n, H, W) uint8 origin frame,
        ``image_id``, ``person_ids`` (n,) int64."""
        k, persons = self.items[index]
        data = self.data
        image = data.images[k]
        pixels = data.read_image(image, self.images_dir)
        if pixels.shape[:2] != (image.height, image.width):
            raise OCHumanError(f"{data.image_path(image, self.images_dir)}: image is {pixels.shape[1]}x"
                               f"{pixels.shape[0]}, {data.source} says {image.width}x{image.height}")
        warped, m1 = letterbox(pixels, self.input_size)
        kp = data.keypoints[persons].astype(np.float64)
        moved = kp.copy()
        moved[..., :2] = kp[..., :2] @ m1[:2, :2].T + m1[:2, 2]
        moved[kp[..., 2] <= 0] = 0
        corners = xywh_to_xyxy(data.bbox_xywh[persons]).reshape(-1, 2, 2) @ m1[:2, :2].T + m1[:2, 2]
        masks = np.stack([rle_to_bitmap(data.rle(int(i))) for i in persons])
        return {
            "image": torch.from_numpy(np.ascontiguousarray(warped)),
            "m1": torch.from_numpy(m1),
            "keypoints": torch.from_numpy(moved.astype(np.float32)),
            "boxes_xyxy": torch.from_numpy(corners.reshape(-1, 4).astype(np.float32)),
            "masks": torch.from_numpy(masks),
            "image_id": image.image_id,
            "person_ids": torch.from_numpy(data.person_id[persons].astype(np.int64)),
        }


def collate(samples: Sequence[dict]) -> Batch:
    """Stack images, concatenate persons with their image index, pad masks to a common size."""
    counts = [len(s["keypoints"]) for s in samples]
    height = max(s["masks"].shape[1] for s in samples)
    width = max(s["masks"].shape[2] for s in samples)
    masks = torch.zeros((sum(counts), height, width), dtype=torch.uint8)
    start = 0
    for s, n in zip(samples, counts):
        masks[start:start + n, :s["masks"].shape[1], :s["masks"].shape[2]] = s["masks"]
        start += n
    return Batch(
        images=torch.stack([s["image"] for s in samples]),
        m1=torch.stack([s["m1"] for s in samples]),
        keypoints=torch.cat([s["keypoints"] for s in samples]),
        boxes_xyxy=torch.cat([s["boxes_xyxy"] for s in samples]),
        masks=masks,
        batch_index=torch.repeat_interleave(torch.arange(len(samples)), torch.tensor(counts)),
        image_ids=[s["image_id"] for s in samples],
        person_ids=torch.cat([s["person_ids"] for s in samples]),
    )


def select_persons(batch: Batch, max_persons: int, generator: Optional[torch.Generator] = None) -> Batch:
    """At most ``max_persons`` persons of the batch, drawn uniformly without replacement across
    its images (official ``MAXINST``); kept persons stay in batch order. Images stay, even
    those left without a person (the backbone still sees them, as in the official code)."""
    n = batch.num_persons
    if max_persons < 1:
        raise ValueError(f"max_persons must be >= 1, got {max_persons}")
    if n <= max_persons:
        return batch
    keep = torch.randperm(n, generator=generator)[:max_persons].sort().values
    keep = keep.to(batch.batch_index.device)
    return batch._replace(keypoints=batch.keypoints[keep], boxes_xyxy=batch.boxes_xyxy[keep],
                          masks=batch.masks[keep], batch_index=batch.batch_index[keep],
                          person_ids=batch.person_ids[keep])


def mask_targets(masks: Tensor, mask_matrices: Tensor, size: int = ALIGN_SIZE) -> Tensor:
    """Each GT mask warped into its ``size x size`` output frame: the 2-class CE target.

    masks: (N, H, W) uint8 (or bool) in the origin frame. mask_matrices: (N, 3, 3) origin pixels
    -> output pixels. Output pixel (u, v) takes the bilinear value of the mask at
    ``M^-1 (u, v)`` (zero outside), rounded back to 0/1 with ``>= 0.5``, as ``cv2.warpAffine``
    of a 0/1 uint8 mask does. Returns (N, size, size) int64.
    """
    if masks.ndim != 3:
        raise ValueError(f"masks: expected shape (N, H, W), got {tuple(masks.shape)}")
    if len(masks) == 0:
        return torch.zeros((0, size, size), dtype=torch.int64, device=masks.device)
    index = torch.arange(len(masks), device=masks.device)
    warped = sample_aligned(masks[:, None].float(), index, mask_matrices.to(masks.device, torch.float64),
                            size, "clean")
    return (warped[:, 0] >= 0.5).long()
