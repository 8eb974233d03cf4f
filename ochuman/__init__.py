"""ochuman: the OCHuman (Occluded Human) dataset toolkit. numpy + pycocotools, never torch.

    import ochuman
    data = ochuman.load("ochuman.json")            # native or COCO format, every person
    bench = ochuman.load("ochuman.json", filter="kpt&segm")
    ochuman.dataset_stats(bench.select_split("val"))
    frame = data.to_frame()                         # one row per person

Names are imported on first use, so ``import ochuman`` (and the CLI) stays fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load": "ochuman.io", "parse": "ochuman.io", "write_json": "ochuman.io",
    "Dataset": "ochuman.records", "Image": "ochuman.records", "Person": "ochuman.records",
    "dataset_stats": "ochuman.stats", "stats_by_split": "ochuman.stats",
    "to_coco": "ochuman.convert", "official_file_name": "ochuman.convert",
    "MaxIoURange": "ochuman.subsets", "parse_range": "ochuman.subsets",
    "ALL": "ochuman.subsets", "MODERATE": "ochuman.subsets", "HARD": "ochuman.subsets",
    "OCHumanError": "ochuman.errors", "FormatError": "ochuman.errors",
    "ImageNotFoundError": "ochuman.errors",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ochuman' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
