"""Settings without torch: :class:`ModelConfig` (a Pose2Seg model) and :class:`TrainConfig` (a
training run, the one source of ``pose2seg train``'s options).

Each field says, in its metadata, what its command-line option shows and accepts (help text,
metavar, choices, least value): the ``pose2seg train`` command (``cli/pose2seg_cmd.py``) builds
its options from them, and :meth:`TrainConfig.__post_init__` checks the same rules, so a setting
made from Python and one made on the command line are refused alike. Importing this module loads
no torch: the command line lists and parses the options before it needs the model.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ochuman.errors import OCHumanError

__all__ = ["ALIGN_MODES", "ModelConfig", "SAMPLING_MODES", "SCHEDULES", "SCHEDULE_EPOCHS", "TrainConfig",
           "TrainingError"]

ALIGN_MODES = ("affine", "gt-box", "keypoint-box")
SAMPLING_MODES = ("clean", "faithful")
SCHEDULES = ("paper", "official-repo", "constant")
SCHEDULE_EPOCHS = {"paper": 40, "official-repo": 25, "constant": 40}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that defines a Pose2Seg model besides its weights (saved in checkpoints)."""

    input_size: int = 512
    units: int = 10
    align: str = "affine"
    alpha: float = 0.3
    skeleton: bool = True
    sampling: str = "clean"
    official_v1_sign: bool = True

    def __post_init__(self):
        if self.align not in ALIGN_MODES:
            raise ValueError(f"align: expected one of {', '.join(ALIGN_MODES)}, got {self.align!r}")
        if self.input_size % 32:
            raise ValueError(f"input_size must be a multiple of 32, got {self.input_size}")


class TrainingError(OCHumanError):
    """Training cannot go on (bad configuration, non-finite loss, incompatible resume)."""


def _setting(default: Any = dataclasses.MISSING, *, help: str, metavar: Optional[str] = None,
             choices: Optional[Sequence[str]] = None, minimum: Optional[int] = None) -> Any:
    """A :class:`TrainConfig` field and what its option says: ``help``; ``metavar``, what the
    value is (FILE, DIR, ...); ``choices``, the values allowed; ``minimum``, the least integer."""
    return dataclasses.field(default=default,
                             metadata={"help": help, "metavar": metavar, "choices": choices, "minimum": minimum})


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; defaults are the paper's (spec 5.9). Units: ``lr`` per
    update, ``batch_size`` and ``max_persons`` per process, ``input_size`` in pixels."""

    train_ann: str = _setting(metavar="FILE", help="COCO keypoint file to train on (non-crowd persons with "
                                                   "keypoints and a mask are used).")
    train_images: str = _setting(metavar="DIR", help="Folder of the training images.")
    out: str = _setting(metavar="RUN_DIR", help="Run folder: last.pt, best.pt, log.jsonl, log.csv, curves.png.")
    val_ann: Optional[str] = _setting(None, metavar="FILE", help="COCO keypoint file scored (segm AP) after "
                                                                 "each epoch; picks best.pt.")
    val_images: Optional[str] = _setting(None, metavar="DIR", help="Folder of the --val-ann images.")
    ochuman_root: Optional[str] = _setting(None, metavar="DIR", help="OCHuman folder (ochuman.json, images/): "
                                                                     "also score OCHuman val all/moderate/hard.")
    init_backbone: Optional[str] = _setting(None, metavar="FILE", help="torchvision ResNet-50 ImageNet weights "
                                                                       "(resnet50-0676ba61.pth) for the backbone.")
    schedule: str = _setting("paper", choices=SCHEDULES,
                             help="paper: x0.1 after epoch 33 of 40; official-repo: 1000-iteration warm-up from "
                                  "lr/3, x0.1 at 15 and 20 of 25 epochs; constant: --lr throughout (fine-tuning, "
                                  "overfitting checks; 40 epochs unless --epochs).")
    epochs: Optional[int] = _setting(None, minimum=1, help="Epochs (default: the schedule's: paper 40, official-repo "
                                                       "25, constant 40).")
    lr: float = _setting(2e-4, help="Adam learning rate (weight decay 0).")
    batch_size: int = _setting(4, minimum=1, help="Images per batch (per process).")
    max_persons: int = _setting(8, minimum=1, help="At most this many persons per batch (per process), sampled at "
                                               "random (official 8).")
    workers: int = _setting(4, minimum=0, help="Data-loading worker processes.")
    amp: bool = _setting(False, help="Mixed precision (float16 + grad scaling on CUDA, bfloat16 on CPU).")
    resume: bool = _setting(False, help="Continue the run in --out from its last.pt.")
    seed: int = _setting(0, help="Seed of the initialisation, data order, person sampling and augmentation.")
    input_size: int = _setting(512, minimum=32, help="Side of the square letterboxed input in pixels (multiple of 32).")
    units: int = _setting(10, minimum=1, help="Residual units of the SegModule (paper: 10).")
    align: str = _setting("affine", choices=ALIGN_MODES,
                          help="affine (Affine-Align, the method), gt-box or keypoint-box (Table 5 ablations).")
    alpha: float = _setting(0.3, help="Box growth for --align keypoint-box.")
    skeleton: bool = _setting(True, help="Concatenate the 55 skeleton-feature channels (--no-skeleton: Table 5 "
                                         "ablation).")
    sampling: str = _setting("clean", choices=SAMPLING_MODES,
                             help="Aligned-feature sampling grid: clean, or faithful (the official corner-aligned "
                                  "grid).")
    augment: bool = _setting(True, help="Per-person aligned-frame augmentation: rotation, scale, shift "
                                        "(--no-augment: off, e.g. to check that a model can overfit).")
    log_every: int = _setting(20, minimum=1, help="Log a line to log.jsonl every this many iterations.")
    ckpt_every: int = _setting(1000, minimum=1, help="Write last.pt every this many iterations (and at each epoch end).")
    eval_every_epoch: int = _setting(1, minimum=0, help="Evaluate every this many epochs (0: never).")
    max_iters: int = _setting(0, minimum=0, help="Stop after this many iterations in all, with a resumable last.pt "
                                             "(0: the schedule's end).")
    device: str = _setting("auto", help="auto (CUDA when available), cpu, cuda or cuda:N.")

    def __post_init__(self):
        def bad(name, expected):
            raise TrainingError(f"{name.replace('_', '-')}: expected {expected}, got {getattr(self, name)!r}")

        for f in dataclasses.fields(self):
            value, choices, least = getattr(self, f.name), f.metadata["choices"], f.metadata["minimum"]
            if f.default is dataclasses.MISSING and (not isinstance(value, (str, os.PathLike)) or not str(value)):
                bad(f.name, "a path")
            if choices is not None and value not in choices:
                bad(f.name, ", ".join(choices[:-1]) + " or " + choices[-1])
            if least is not None and value is not None and (
                    not isinstance(value, int) or isinstance(value, bool) or value < least):
                bad(f.name, f"an integer >= {least}")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            bad("lr", "a positive number")
        if self.input_size % 32:
            bad("input_size", "a multiple of 32")
        if self.val_ann and not self.val_images:
            raise TrainingError("--val-ann needs --val-images (the folder of its images)")

    @property
    def num_epochs(self) -> int:
        """``epochs``, or the schedule's (paper 40, official-repo 25, constant 40)."""
        return self.epochs if self.epochs is not None else SCHEDULE_EPOCHS[self.schedule]

    def model_config(self) -> ModelConfig:
        """The :class:`ModelConfig` of the run's model."""
        return ModelConfig(input_size=self.input_size, units=self.units, align=self.align, alpha=self.alpha,
                           skeleton=self.skeleton, sampling=self.sampling)

