"""MaxIoU: how much a person is covered by another person of the same image (for a file of
several categories: an object by another object of its category, the same definition).

Official convention (reproduces every ``max_iou`` stored in ``ochuman.json``): boxes are the
native integer corners ``[x1, y1, x2, y2]`` taken as *inclusive* pixel ranges, so

    iw = max(0, min(x2_i, x2_j) - max(x1_i, x1_j) + 1), ih likewise,
    area_k = (x2_k - x1_k + 1) * (y2_k - y1_k + 1),
    IoU_ij = iw * ih / (area_i + area_j - iw * ih),

and ``max_iou_i = max_j IoU_ij`` over *every other* person j of the image (bbox-only persons
included); 0.0 for a person alone. The authors stored the float32 of that value.

Mask MaxIoU (not in any official tool) is the same maximum over pixel-mask IoUs, computed
among the persons that have a mask.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ochuman import _evalcore
from ochuman.masks import rle_iou_matrix


def box_iou_matrix_inclusive(bbox_xyxy: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes under the inclusive (+1) pixel convention.

    bbox_xyxy: (N, 4). Returns (N, N) float64.
    """
    b = np.asarray(bbox_xyxy, dtype=np.float64).reshape(-1, 4)
    iw = np.minimum(b[:, None, 2], b[None, :, 2]) - np.maximum(b[:, None, 0], b[None, :, 0]) + 1
    ih = np.minimum(b[:, None, 3], b[None, :, 3]) - np.maximum(b[:, None, 1], b[None, :, 1]) + 1
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    area = (b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1)
    union = area[:, None] + area[None, :] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _max_off_diagonal(iou: np.ndarray) -> np.ndarray:
    if len(iou) < 2:
        return np.zeros(len(iou))
    iou = iou.copy()
    np.fill_diagonal(iou, -np.inf)
    return np.maximum(iou.max(axis=1), 0.0)


def max_iou_from_boxes(bbox_xyxy: np.ndarray) -> np.ndarray:
    """Largest IoU of each person's box with any other box of the same image.

    bbox_xyxy: (N, 4) native corners of all persons of one image. Returns (N,) float64.
    """
    return _max_off_diagonal(box_iou_matrix_inclusive(bbox_xyxy))


def max_iou_from_boxes_grouped(bbox_xyxy: np.ndarray, group: np.ndarray) -> np.ndarray:
    """:func:`max_iou_from_boxes` for many images at once (the compiled core, every pair of a group once).

    bbox_xyxy: (N, 4); group: (N,) image index of each box. Returns (N,) float64.
    """
    b = np.asarray(bbox_xyxy, dtype=np.float64).reshape(-1, 4)
    group = np.asarray(group)
    n = len(b)
    if n == 0:
        return np.zeros(0)
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1], True]).astype(np.int64)
    found = np.empty(n)
    _evalcore.max_iou_inclusive(np.ascontiguousarray(b[order]), starts, found)
    result = np.empty(n)
    result[order] = found
    return result


def max_iou_from_masks(rles: Sequence[dict]) -> np.ndarray:
    """Largest mask IoU of each person with any other masked person of the same image.

    rles: N compressed RLEs of one image. Returns (N,) float64; 0.0 for a person alone.
    """
    return _max_off_diagonal(rle_iou_matrix(rles))
