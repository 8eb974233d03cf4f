"""A disk cache of evaluation ground truths built from native ``ochuman.json`` files.

Rebuilding the official COCO-format file of a split from the native file rasterises thousands
of polygon masks (about a second for OCHuman val), on every ``ochuman eval --root`` run. The
result depends only on the file's content, the split, whether masks are needed and this
toolkit's version, so it is stored once as an ``.npz`` (arrays only, no pickles) and reused
while the file's content is the same.

Keys: an entry holds the SHA-256 of the bytes it was built from; it is served when the file
hashes the same (memory-mapped; about 0.07-0.18 s for a 105 MB ``ochuman.json``). Once a hash
has matched, the entry also keeps the file's stat signature (device, inode, size, modification
and change times): while the file's stat is exactly that, it is served without hashing (about
0.03 s). The change time (ctime) moves on every write and every time change, and no tool can
set it back (``cp -p``, ``rsync -t`` and ``tar x`` restore only size and modification time), so
an edited file never hits an old entry. A signature is only recorded for a file unchanged
during its hashing and last changed well before it (as git's racy-clean rule), so that an edit
within the file system's time granularity cannot share it.

One cache file per (file path, split, masks): an entry that no longer matches is replaced in
place, not kept beside the new one. A cache file that cannot be read, holds another key or
arrays of other names, types or shapes is a miss (rebuilt and rewritten), never trusted.

Location: ``$OCHUMAN_CACHE``, else ``$XDG_CACHE_HOME/ochuman-toolkit``, else
``~/.cache/ochuman-toolkit``; ``OCHUMAN_CACHE=off`` disables it. A cache that cannot be read or
written is ignored: the ground truth is then built as without a cache.
"""
from __future__ import annotations

import mmap
import os
import time
import zlib
from pathlib import Path
from typing import Callable, Optional, Union

import numpy as np

from ochuman import __version__
from ochuman.errors import OCHumanError
from ochuman.eval.annotations import Annotations, MaskTable
from ochuman.eval.ground_truth import GroundTruth
from ochuman.io import atomic_write

FORMAT = 3  # bump when the stored layout or the ground-truth rules change


def cache_dir() -> Optional[Path]:
    """Where cached ground truths live; None when caching is off."""
    chosen = os.environ.get("OCHUMAN_CACHE")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ochuman-toolkit"


def _slot(path: Path, split: str, masks: bool) -> Optional[Path]:
    """The cache file of the ground truth of ``path`` (whatever its content); None: no caching."""
    folder = cache_dir()
    if folder is None:
        return None
    slot = f"{path}|{path.resolve()}|{split}|{masks}"
    return folder / f"ground-truth-{zlib.crc32(os.fsencode(slot)):08x}.npz"


def _identity(path: Path, split: str, masks: bool) -> str:
    """Everything but the content that an entry must match."""
    return f"{path}|{path.resolve()}|{__version__}|{FORMAT}|{split}|{masks}"


def _key(path: Path, content: Union[bytes, mmap.mmap], split: str, masks: bool) -> str:
    """What an entry built from ``content`` (the file's bytes) must hold to be served. The
    whole key is stored inside: a clash of slot names is a miss, never a wrong hit."""
    import hashlib  # (~3 ms to import: only where a hash is made)

    return f"{_identity(path, split, masks)}|sha256:{hashlib.sha256(content).hexdigest()}"


def _signature(st: os.stat_result) -> str:
    """A file's stat signature: device, inode, size, modification and change times (ns)."""
    return f"{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}"


# A stat signature is recorded only for a file last changed at least this long before it was
# hashed: an edit within the file system's time granularity would otherwise keep its ctime.
_SETTLED_NS = 2_000_000_000


def _fingerprint(path: Path, split: str, masks: bool) -> tuple[Optional[str], str]:
    """(the key of the file as it is now, its stat signature when it can stand for the content:
    unchanged while hashed and settled; else ""). Hashed memory-mapped, not copied; key None
    when the file cannot be read."""
    try:
        now = time.time_ns()
        before = os.stat(path)
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                key = _key(path, b"", split, masks)
            else:
                with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as content:
                    key = _key(path, content, split, masks)
        signature = _signature(os.stat(path))
    except (OSError, ValueError):
        return None, ""
    settled = before.st_ctime_ns < now - _SETTLED_NS and before.st_mtime_ns < now - _SETTLED_NS
    return key, signature if settled and signature == _signature(before) else ""


def cached_ground_truth(path: Path, split: str, masks: bool,
                        build: Callable[[], tuple[GroundTruth, Optional[bytes]]]) -> GroundTruth:
    """The ground truth of the file ``path``: from the cache when it holds it for the file's
    current content, else ``build()`` -> (ground truth, the bytes it was built from when worth
    keeping: only what was built from a native file; else None)."""
    try:
        entry = _slot(path, split, masks)
    except (OSError, RuntimeError):  # an unresolvable path: no caching
        entry = None
    if entry is not None and entry.is_file():
        try:
            cached = _lookup(entry, path, split, masks)
            if cached is not None:
                return cached
        except Exception:  # noqa: BLE001 - any cache file that does not load is a miss, rewritten below
            pass
    ground, content = build()
    if entry is not None and content is not None:
        _store(entry, _key(path, content, split, masks), "", ground)
    return ground


def _lookup(entry: Path, path: Path, split: str, masks: bool) -> Optional[GroundTruth]:
    """The entry's ground truth if it was built from the file's current content, else None."""
    with np.load(entry, allow_pickle=False) as stored:
        if not {"key", "signature"} <= set(stored.files):
            return None
        stored_key, stored_signature = str(stored["key"]), str(stored["signature"])
        if not stored_key.startswith(_identity(path, split, masks) + "|sha256:"):
            return None
        if stored_signature and stored_signature == _signature(os.stat(path)):
            return _ground_truth(stored, masks)
        key, signature = _fingerprint(path, split, masks)
        if key != stored_key:
            return None
        ground = _ground_truth(stored, masks)
    if ground is not None and signature != stored_signature:
        _store(entry, key, signature, ground)  # the next run can skip hashing
    return ground


def _store(entry: Path, key: str, signature: str, ground: GroundTruth) -> None:
    try:
        _write(entry, key, signature, ground)
    except (OSError, OCHumanError):  # a cache folder that cannot be written: go on without
        pass


def _joined(texts) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.encode("utf-8") for t in texts]
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), np.array([len(t) for t in encoded], dtype=np.int64)


def _split(buffer: np.ndarray, lengths: np.ndarray) -> list[str]:
    data = buffer.tobytes()
    ends = np.cumsum(lengths).tolist()
    return [data[a:b].decode("utf-8") for a, b in zip([0, *ends[:-1]], ends)]


def _write(entry: Path, key: str, signature: str, ground: GroundTruth) -> None:
    ann = ground.annotations
    arrays = {
        "key": np.array(key), "signature": np.array(signature),
        "image_id": ann.image_id, "category_id": ann.category_id, "ann_id": ann.ann_id, "bbox": ann.bbox,
        "area": ann.area, "iscrowd": ann.iscrowd, "score": ann.score, "keypoints": ann.keypoints,
        "num_keypoints": ann.num_keypoints, "file_image_ids": ann.file_image_ids, "image_ids": ground.image_ids,
        "image_sizes": ground.image_sizes, "max_iou": ground.max_iou, "official": ground.official,
        "extra": ground.extra, "mask_size": ann.mask_size, "keypoint_codes": ground.keypoint_codes,
        "text": np.array([ground.source, ground.split, ground.max_iou_source]),
    }
    arrays["names"], arrays["name_lengths"] = _joined(ground.file_names)
    if ann.counts is not None:
        arrays["counts"], arrays["count_lengths"] = _joined(ann.counts)
    with atomic_write(entry, "wb") as handle:
        np.savez(handle, **arrays)


# name -> (dtype, shape); shape entries: "N" persons, "M" images, "B"/"C" bytes of the joined
# file names / mask strings, or a fixed size
_LAYOUT = {
    "image_id": (np.int64, ("N",)), "category_id": (np.int64, ("N",)), "ann_id": (np.int64, ("N",)),
    "bbox": (np.float64, ("N", 4)), "area": (np.float64, ("N",)), "iscrowd": (np.bool_, ("N",)),
    "score": (np.float64, ("N",)), "keypoints": (np.float64, ("N", 51)), "num_keypoints": (np.int64, ("N",)),
    "file_image_ids": (np.int64, ("M",)), "image_ids": (np.int64, ("M",)), "image_sizes": (np.int64, ("M", 2)),
    "max_iou": (np.float64, ("N",)), "official": (np.bool_, ("N",)), "extra": (np.bool_, ("N",)),
    "mask_size": (np.int64, ("N", 2)), "names": (np.uint8, ("B",)), "name_lengths": (np.int64, ("M",)),
    "keypoint_codes": (np.int8, ("N", 17)),
}
_MASK_LAYOUT = {"counts": (np.uint8, ("C",)), "count_lengths": (np.int64, ("N",))}


def _laid_out(a: dict, masks: bool) -> bool:
    """Whether the stored arrays have the names, types and shapes :func:`_write` gives them,
    with lengths that fit their texts and image ids among the images."""
    layout = {**_LAYOUT, **(_MASK_LAYOUT if masks else {})}
    if set(a) != {"key", "signature", "text", *layout}:
        return False
    if a["text"].shape != (3,) or a["text"].dtype.kind != "U":
        return False
    sizes = {"N": len(a["ann_id"]), "M": len(a["image_ids"]), "B": len(a["names"]), "C": len(a.get("counts", ()))}
    for name, (dtype, shape) in layout.items():
        if a[name].dtype != dtype or a[name].shape != tuple(sizes.get(d, d) for d in shape):
            return False
    texts = [("names", "name_lengths")] + ([("counts", "count_lengths")] if masks else [])
    if any((a[lengths] < 0).any() or a[lengths].sum() != len(a[text]) for text, lengths in texts):
        return False
    return bool(np.isin(a["image_id"], a["image_ids"]).all())


def _ground_truth(stored, masks: bool) -> Optional[GroundTruth]:
    """The ground truth held by an opened cache file, or None when its arrays are not laid out
    as :func:`_write` lays them out."""
    a = {name: stored[name] for name in stored.files}
    if not _laid_out(a, masks):
        return None
    table = None
    if masks:
        lengths = a["count_lengths"]
        table = MaskTable(a["counts"].tobytes(), np.cumsum(lengths) - lengths, lengths, a["mask_size"], deferred=True)
    annotations = Annotations(
        image_id=a["image_id"], category_id=a["category_id"], ann_id=a["ann_id"], bbox=a["bbox"], area=a["area"],
        iscrowd=a["iscrowd"], score=a["score"], counts=table, mask_size=a["mask_size"],
        keypoints=a["keypoints"], num_keypoints=a["num_keypoints"], file_image_ids=a["file_image_ids"],
        masks=table,
    )
    source, split, max_iou_source = (str(t) for t in a["text"])
    return GroundTruth(
        annotations=annotations, image_ids=a["image_ids"], file_names=tuple(_split(a["names"], a["name_lengths"])),
        image_sizes=a["image_sizes"], max_iou=a["max_iou"], official=a["official"], extra=a["extra"],
        source=source, split=split, max_iou_source=max_iou_source, keypoint_codes=a["keypoint_codes"],
    )
