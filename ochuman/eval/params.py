"""Evaluation parameters: pycocotools ``Params`` under snake_case names, and the names of the
summary numbers per iou type."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ochuman.keypoints import COCO_OKS_SIGMAS


IOU_TYPES = ("segm", "bbox", "keypoints")

STAT_NAMES = {
    "segm": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "bbox": ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"),
    "keypoints": ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"),
}


@dataclass
class EvalParams:
    """pycocotools ``Params`` under snake_case names (defaults per iou type)."""

    iou_type: str = "segm"
    img_ids: Optional[list] = None  # None: every image of the ground truth
    cat_ids: Optional[list] = None  # None: every category of the ground truth
    iou_thrs: np.ndarray = field(default_factory=lambda: np.linspace(.5, 0.95, int(np.round((0.95 - .5) / .05)) + 1, endpoint=True))
    rec_thrs: np.ndarray = field(default_factory=lambda: np.linspace(.0, 1.00, int(np.round((1.00 - .0) / .01)) + 1, endpoint=True))
    max_dets: Optional[list] = None
    area_rng: Optional[list] = None
    area_rng_lbl: Optional[list] = None
    use_cats: bool = True
    kpt_oks_sigmas: np.ndarray = field(default_factory=lambda: COCO_OKS_SIGMAS.copy())

    def __post_init__(self):
        if self.iou_type not in IOU_TYPES:
            raise ValueError(f"unknown iou type {self.iou_type!r}: expected one of {', '.join(IOU_TYPES)}")
        keypoints = self.iou_type == "keypoints"
        if self.max_dets is None:
            self.max_dets = [20] if keypoints else [1, 10, 100]
        self.max_dets = sorted(self.max_dets)  # pycocotools sorts maxDets in evaluate()
        if self.area_rng is None:
            self.area_rng = ([[0, 1e5 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]] if keypoints else
                             [[0, 1e5 ** 2], [0, 32 ** 2], [32 ** 2, 96 ** 2], [96 ** 2, 1e5 ** 2]])
        if self.area_rng_lbl is None:
            self.area_rng_lbl = ["all", "medium", "large"] if keypoints else ["all", "small", "medium", "large"]
