"""Occlusion subsets (MaxIoU ranges), annotation filters and the official val/test split.

Ranges
    Moderate is MaxIoU in [0.5, 0.75) and Hard in [0.75, 1.0]. Two rules decide the upper end:

    - ``"official"``: every range is half-open ``[lo, hi)``, as OCHumanApi ``toCocoFormart``
      selects persons. It drops MaxIoU == 1.0 even from Hard and from the default (0, 1) range.
      Used wherever the official files are reproduced (``ochuman convert``).
    - ``"closed-top"`` (this toolkit's default elsewhere): the same, except that a range whose
      ``hi`` is 1.0 includes 1.0, so Hard is [0.75, 1.0] as the paper defines it.

Filters (OCHumanApi ``OCHuman(Filter=...)``)
    ``None`` keeps everything; ``"kpt"``, ``"segm"``, ``"kpt&segm"`` and ``"kpt|segm"`` (also
    spelled ``"segm&kpt"``, ``"segm|kpt"``) keep the persons with those annotations and drop
    images left without persons.

Split
    The benchmark images are those with at least one person with keypoints and a mask, in file
    order; val is the first 2500 of them, test the rest. Other images belong to no split.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ochuman.errors import OCHumanError

RANGE_RULES = ("official", "closed-top")
DEFAULT_RANGE_RULE = "closed-top"
VAL_IMAGES = 2500
SPLITS = ("val", "test")

_FILTERS = {
    None: None, "none": None,
    "kpt": "kpt", "segm": "segm",
    "kpt&segm": "kpt&segm", "segm&kpt": "kpt&segm",
    "kpt|segm": "kpt|segm", "segm|kpt": "kpt|segm",
}
FILTERS = ("none", "kpt", "segm", "kpt&segm", "kpt|segm")


@dataclass(frozen=True)
class MaxIoURange:
    """A MaxIoU interval [lo, hi) (or [lo, 1.0] under the closed-top rule) with a name."""

    lo: float
    hi: float
    name: str = ""

    def __post_init__(self):
        if not (0.0 <= self.lo < self.hi <= 1.0):
            raise OCHumanError(f"MaxIoU range [{self.lo}, {self.hi}): need 0 <= lo < hi <= 1")
        if not self.name:
            object.__setattr__(self, "name", f"{self.lo:g}:{self.hi:g}")

    def contains(self, max_iou: np.ndarray, rule: str = DEFAULT_RANGE_RULE) -> np.ndarray:
        """Which values fall in the range under ``rule``. max_iou: (N,). Returns (N,) bool."""
        if rule not in RANGE_RULES:
            raise OCHumanError(f"unknown range rule {rule!r}: expected one of {', '.join(RANGE_RULES)}")
        v = np.asarray(max_iou, dtype=np.float64)
        inside = (v >= self.lo) & (v < self.hi)
        if rule == "closed-top" and self.hi == 1.0:
            inside |= v == 1.0
        return inside


ALL = MaxIoURange(0.0, 1.0, "all")
MODERATE = MaxIoURange(0.5, 0.75, "moderate")
HARD = MaxIoURange(0.75, 1.0, "hard")
NAMED_RANGES = {r.name: r for r in (ALL, MODERATE, HARD)}


def parse_range(text: str) -> MaxIoURange:
    """``"all"``, ``"moderate"``, ``"hard"`` or ``"LO:HI"`` -> :class:`MaxIoURange`."""
    if text in NAMED_RANGES:
        return NAMED_RANGES[text]
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            raise ValueError
        return MaxIoURange(float(lo), float(hi))
    except ValueError:
        raise OCHumanError(
            f"unknown subset {text!r}: expected all, moderate, hard or LO:HI (e.g. 0.6:0.9)"
        ) from None


def occlusion_level(max_iou: np.ndarray, rule: str = DEFAULT_RANGE_RULE) -> np.ndarray:
    """Name of each person's level: "moderate", "hard" or "" (below 0.5 or unknown).

    max_iou: (N,). Returns (N,) object array of str.
    """
    level = np.full(len(max_iou), "", dtype=object)
    level[MODERATE.contains(max_iou, rule)] = "moderate"
    level[HARD.contains(max_iou, rule)] = "hard"
    return level


def normalise_filter(name: str | None) -> str | None:
    """Canonical filter name (None for no filter) or an error listing the valid ones."""
    try:
        return _FILTERS[name]
    except (KeyError, TypeError):
        raise OCHumanError(
            f"unknown filter {name!r}: expected one of {', '.join(FILTERS)}"
        ) from None


def filter_mask(has_keypoints: np.ndarray, has_mask: np.ndarray, name: str | None) -> np.ndarray:
    """Persons kept by an OCHumanApi filter. Inputs (N,) bool; returns (N,) bool."""
    kind = normalise_filter(name)
    if kind is None:
        return np.ones(len(has_keypoints), dtype=bool)
    return {
        "kpt": has_keypoints,
        "segm": has_mask,
        "kpt&segm": has_keypoints & has_mask,
        "kpt|segm": has_keypoints | has_mask,
    }[kind].copy()


def official_split(image_is_benchmark: np.ndarray) -> np.ndarray:
    """Split of each image in file order: "val", "test" or "" (not a benchmark image).

    image_is_benchmark: (M,) bool, True where the image has a person with keypoints and mask.
    Returns (M,) object array of str.
    """
    is_benchmark = np.asarray(image_is_benchmark, dtype=bool)
    rank = np.cumsum(is_benchmark) - 1
    split = np.full(len(is_benchmark), "", dtype=object)
    split[is_benchmark & (rank < VAL_IMAGES)] = "val"
    split[is_benchmark & (rank >= VAL_IMAGES)] = "test"
    return split
