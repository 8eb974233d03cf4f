"""Dataset statistics: the columns of the paper's Table 1 and annotation counts.

Per selection of persons (crowd regions never count as persons):

- ``images``: images with at least one person; ``persons``;
- ``persons_oc50`` / ``persons_oc75``: MaxIoU strictly above 0.5 / 0.75 (Table 1), with
  ``pct_oc50`` / ``pct_oc75`` in percent of ``persons``; ``mean_max_iou``;
- ``persons_with_keypoints``, ``persons_with_mask``, ``box_only_persons`` (neither);
- ``moderate`` / ``hard``: persons in [0.5, 0.75) / [0.75, 1.0] under ``range_rule``;
- ``max_iou_source``: "stored" (the authors' values) or "box" (recomputed), ``range_rule``.
"""
from __future__ import annotations

import numpy as np

from ochuman.records import Dataset
from ochuman.subsets import DEFAULT_RANGE_RULE, HARD, MODERATE


def dataset_stats(dataset: Dataset, range_rule: str = DEFAULT_RANGE_RULE) -> dict:
    """Table-1 statistics of every person in ``dataset`` (filter and split it first)."""
    persons = ~dataset.iscrowd
    count = int(persons.sum())
    occlusion = dataset.occlusion[persons]
    has_keypoints = dataset.has_keypoints[persons]
    has_mask = dataset.has_mask[persons]
    oc50 = int((occlusion > 0.5).sum())
    oc75 = int((occlusion > 0.75).sum())

    def percent(n: int) -> float:
        return 100.0 * n / count if count else 0.0

    return {
        "images": int(len(np.unique(dataset.image_index[persons]))),
        "persons": count,
        "persons_oc50": oc50,
        "pct_oc50": percent(oc50),
        "persons_oc75": oc75,
        "pct_oc75": percent(oc75),
        "mean_max_iou": float(occlusion.mean()) if count else float("nan"),
        "persons_with_keypoints": int(has_keypoints.sum()),
        "persons_with_mask": int(has_mask.sum()),
        "box_only_persons": int((~has_keypoints & ~has_mask).sum()),
        "moderate": int(MODERATE.contains(occlusion, range_rule).sum()),
        "hard": int(HARD.contains(occlusion, range_rule).sum()),
        "max_iou_source": dataset.max_iou_source,
        "range_rule": range_rule,
    }


def stats_by_split(dataset: Dataset, range_rule: str = DEFAULT_RANGE_RULE) -> list[dict]:
    """:func:`dataset_stats` of the val split, the test split and everything, each with ``split``."""
    rows = []
    for split in ("val", "test", "all"):
        rows.append({"split": split, **dataset_stats(dataset.select_split(split), range_rule)})
    return rows
