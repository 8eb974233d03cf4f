"""A disk cache of evaluation ground truths built from native ``ochuman.json`` files.

Rebuilding the official COCO-format file of a split from the native file rasterises thousands
of polygon masks (about a second for OCHuman val), on every ``ochuman eval --root`` run. The
result depends only on the file's content, the split, whether masks are needed and this
toolkit's version, so it is stored once as an ``.npz`` (arrays only, no pickles) and reused
while the file keeps its path, size and modification time.

Location: ``$OCHUMAN_CACHE``, else ``$XDG_CACHE_HOME/ochuman-toolkit``, else
``~/.cache/ochuman-toolkit``; ``OCHUMAN_CACHE=off`` disables it. A cache that cannot be read or
written is ignored: the ground truth is then built as without a cache.
"""
from __future__ import annotations

import os
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

import numpy as np

from ochuman import __version__
from ochuman.errors import OCHumanError
from ochuman.evaluate import Annotations, MaskTable
from ochuman.io import atomic_write

if TYPE_CHECKING:  # only for annotations: ochuman.benchmark imports this module
    from ochuman.benchmark import GroundTruth

FORMAT = 1  # bump when the stored layout or the ground-truth rules change


def cache_dir() -> Optional[Path]:
    """Where cached ground truths live; None when caching is off."""
    chosen = os.environ.get("OCHUMAN_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ochuman-toolkit"


def _entry(path: Path, split: str, masks: bool) -> Optional[tuple[Path, str]]:
    """(cache file, the key it must hold) for the ground truth of ``path``; None: no caching."""
    folder = cache_dir()
    if folder is None:
        return None
    stat = path.stat()
    key = f"{path}|{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{__version__}|{FORMAT}|{split}|{masks}"
    # A short name (CRC-32) with the whole key stored inside: a clash is a miss, never a wrong hit.
    return folder / f"ground-truth-{zlib.crc32(key.encode()):08x}.npz", key


def cached_ground_truth(path: Path, split: str, masks: bool,
                        build: Callable[[], tuple["GroundTruth", bool]]) -> "GroundTruth":
    """The ground truth of the file ``path``: from the cache when it holds it, else
    ``build()`` -> (ground truth, whether to keep it: only what was built from a native file)."""
    try:
        entry, key = _entry(path, split, masks) or (None, "")
    except OSError:
        entry, key = None, ""
    if entry is not None and entry.is_file():
        import zipfile

        try:
            cached = _read(entry, key)
            if cached is not None:
                return cached
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            pass  # unreadable or from another layout: rebuilt and rewritten below
    ground, keep = build()
    if entry is not None and keep:
        try:
            _write(entry, key, ground)
        except (OSError, OCHumanError):  # a cache folder that cannot be written: go on without
            pass
    return ground


def _joined(texts) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode("utf-8") for t in texts]
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), np.array([len(t) for t in encoded], dtype=np.int64)


def _split(buffer: np.ndarray, lengths: np.ndarray) -> list[str]:
    data = buffer.tobytes()
    ends = np.cumsum(lengths).tolist()
    return [data[a:b].decode("utf-8") for a, b in zip([0, *ends[:-1]], ends)]


def _write(entry: Path, key: str, ground: "GroundTruth") -> None:
    ann = ground.annotations
    arrays = {
        "key": np.array(key),
        "image_id": ann.image_id, "category_id": ann.category_id, "ann_id": ann.ann_id, "bbox": ann.bbox,
        "area": ann.area, "iscrowd": ann.iscrowd, "score": ann.score, "keypoints": ann.keypoints,
        "num_keypoints": ann.num_keypoints, "file_image_ids": ann.file_image_ids, "image_ids": ground.image_ids,
        "image_sizes": ground.image_sizes, "max_iou": ground.max_iou, "official": ground.official,
        "extra": ground.extra, "mask_size": ann.mask_size,
        "text": np.array([ground.source, ground.split, ground.max_iou_source]),
    }
    arrays["names"], arrays["name_lengths"] = _joined(ground.file_names)
    if ann.counts is not None:
        arrays["counts"], arrays["count_lengths"] = _joined(ann.counts)
    with atomic_write(entry, "wb") as handle:
        np.savez(handle, **arrays)


def _read(entry: Path, key: str) -> Optional["GroundTruth"]:
    """The cached ground truth, or None when the file holds another key."""
    from ochuman.benchmark import GroundTruth

    with np.load(entry, allow_pickle=False) as stored:
        if str(stored["key"]) != key:
            return None
        a = {name: stored[name] for name in stored.files}
    masks = None
    if "counts" in a:
        lengths = a["count_lengths"]
        masks = MaskTable(a["counts"].tobytes(), np.cumsum(lengths) - lengths, lengths, a["mask_size"], deferred=True)
    annotations = Annotations(
        image_id=a["image_id"], category_id=a["category_id"], ann_id=a["ann_id"], bbox=a["bbox"], area=a["area"],
        iscrowd=a["iscrowd"], score=a["score"], counts=masks, mask_size=a["mask_size"],
        keypoints=a["keypoints"], num_keypoints=a["num_keypoints"], file_image_ids=a["file_image_ids"],
        masks=masks,
    )
    source, split, max_iou_source = (str(t) for t in a["text"])
    return GroundTruth(
        annotations=annotations, image_ids=a["image_ids"], file_names=tuple(_split(a["names"], a["name_lengths"])),
        image_sizes=a["image_sizes"], max_iou=a["max_iou"], official=a["official"], extra=a["extra"],
        source=source, split=split, max_iou_source=max_iou_source,
    )
