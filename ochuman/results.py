"""Detection results files (COCO results lists) -> detection :class:`~ochuman.evaluate.Annotations`.

A results file is a JSON list of ``{"image_id", "category_id", "score", "bbox"?,
"segmentation"?, "keypoints"?}``. What pycocotools ``loadRes`` derives is derived the same way,
decided by the first record as pycocotools does:

- it has a non-empty ``bbox``: every record needs one; ``area = w * h`` (even when a
  segmentation is present, as in Detectron2's segm results); without a segmentation the box
  itself is the mask;
- else it has a ``segmentation``: ``area`` = mask area, ``bbox`` = the mask's bounding box;
- else ``keypoints``: ``bbox`` and ``area`` from the extent of all keypoints.

``image_id`` may be the id of the ground-truth file or an image's file name. Every problem is a
:class:`~ochuman.errors.ResultsError` naming the file, the record index and the problem.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, Sequence, Union

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from ochuman.errors import OCHumanError, ResultsError
from ochuman.evaluate import Annotations, DecodedMasks

NUM_KEYPOINT_VALUES = 51


class _Rle(msgspec.Struct):
    size: tuple[int, int]
    counts: Union[str, list[int]]


class _Result(msgspec.Struct):
    image_id: Union[int, str]
    category_id: int
    score: float
    bbox: Optional[list[float]] = None
    segmentation: Union[_Rle, list[list[float]], None] = None
    keypoints: Optional[list[float]] = None


def _kind(value) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null", bool: "boolean"}.get(type(value), "number")


def read_results(path: Union[str, Path]) -> list:
    """Parse a results file into typed records (no checks against a ground truth yet)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None
    return parse_results(data, str(path))


def parse_results(data: Union[bytes, list], source: str) -> list:
    """Typed records from JSON bytes or an already-parsed list."""
    try:
        if isinstance(data, (bytes, bytearray)):
            try:
                return msgspec.json.decode(data, type=list[_Result])
            except msgspec.DecodeError:
                data = _python_json(data, source)  # NaN / Infinity literals, or broken JSON
        if not isinstance(data, list):
            hint = " (an annotation file? pass it as the ground truth)" if isinstance(data, dict) else ""
            raise ResultsError.at(source, "top level", f"expected a JSON list of detections, got {_kind(data)}{hint}")
        return msgspec.convert(data, list[_Result])
    except msgspec.ValidationError as err:
        message = str(err)
        msg, _, at = message.partition(" - at `$")
        at = at.rstrip("`")
        if at.startswith("["):
            index, _, rest = at[1:].partition("]")
            where = f"record {index}" + (f": {rest.lstrip('.')}" if rest.strip(".") else "")
            raise ResultsError.at(source, where, msg[:1].lower() + msg[1:]) from None
        if msg.startswith("Expected `array`"):
            raise ResultsError.at(source, "top level", f"expected a JSON list of detections, {msg.split(', ', 1)[-1]}") from None
        raise ResultsError.at(source, "top level", msg) from None
    except (UnicodeDecodeError, RecursionError):
        raise ResultsError.at(source, "", "not valid JSON (bad UTF-8 or nested too deeply)") from None


def _python_json(data: bytes, source: str):
    if not data.strip():
        raise ResultsError.at(source, "", "empty file (expected a JSON list of detections)")
    try:
        return json.loads(data)
    except json.JSONDecodeError as err:
        raise ResultsError.at(source, f"line {err.lineno} column {err.colno}", f"not valid JSON ({err.msg[:1].lower() + err.msg[1:]})") from None
    except ValueError as err:
        raise ResultsError.at(source, "", f"not valid JSON ({err})") from None


def detections_from_records(
    records: Sequence[_Result],
    source: str,
    image_ids: np.ndarray,
    image_sizes: np.ndarray,
    category_ids: Sequence[int],
    iou_type: str,
    file_names: Optional[Sequence[str]] = None,
) -> Annotations:
    """Validate records against the ground truth and derive what pycocotools ``loadRes`` does.

    image_ids (M,): ids of the ground-truth images; image_sizes (M, 2) [height, width];
    file_names (M,): accepted in place of ids. Returns detection Annotations with ids 1..N.
    """
    n = len(records)
    by_id = {key: k for k, key in enumerate(image_ids.tolist())}
    by_name = {name: k for k, name in enumerate(file_names)} if file_names is not None else {}
    known_categories = set(int(c) for c in category_ids)
    keys = [r.image_id for r in records]
    image_index = np.array([by_id.get(key, -1) for key in keys], dtype=np.int64)
    for i in np.flatnonzero(image_index < 0):  # file names, or unknown ids
        key = keys[i]
        k = by_name.get(key) if isinstance(key, str) else None
        if k is None:
            raise ResultsError.at(source, f"record {i} (image_id {key!r})", "unknown image_id: not an image of the ground truth")
        image_index[i] = k
    category = np.array([r.category_id for r in records], dtype=np.int64)
    bad = np.flatnonzero(~np.isin(category, list(known_categories)))
    if len(bad):
        i = bad[0]
        raise ResultsError.at(source, f"record {i} (image_id {keys[i]!r})", f"unknown category_id {category[i]}")
    score = np.array([r.score for r in records], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(score))
    if len(bad):
        raise ResultsError.at(source, f"record {bad[0]}", f"score must be a finite number, got {score[bad[0]]}")
    sizes = image_sizes[image_index] if n else np.zeros((0, 2), np.int64)

    def where(i):
        return f"record {i} (image_id {records[i].image_id!r})"

    by_box = n > 0 and bool(records[0].bbox)
    by_mask = not by_box and n > 0 and records[0].segmentation is not None
    bbox = np.zeros((n, 4))
    if by_box:
        for i, r in enumerate(records):
            if not r.bbox or len(r.bbox) != 4:
                raise ResultsError.at(source, where(i), f"bbox: expected [x, y, w, h], got {r.bbox!r}"[:200])
        bbox = np.array([r.bbox for r in records], dtype=np.float64)
        bad = np.flatnonzero(~np.isfinite(bbox).all(axis=1))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), "bbox: NaN or infinite value")
        bad = np.flatnonzero((bbox[:, 2] < 0) | (bbox[:, 3] < 0))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), f"bbox has a negative width or height: {bbox[bad[0]].tolist()}")

    counts = masks = None
    if iou_type == "segm" or by_mask:
        segs = [r.segmentation for r in records]
        compressed = [seg.counts if type(seg) is _Rle and type(seg.counts) is str else None for seg in segs]
        if n and None not in compressed:  # the usual case: compressed RLEs only
            seg_sizes = np.array([seg.size for seg in segs], dtype=np.int64).reshape(n, 2)
            bad = np.flatnonzero((seg_sizes != sizes).any(axis=1))
            if len(bad):
                i = bad[0]
                raise ResultsError.at(source, where(i), f"segmentation size {seg_sizes[i].tolist()} differs from the image's {sizes[i].tolist()}")
        counts = compressed if n and None not in compressed else []
        for i, r in enumerate(records if not counts else ()):
            h, w = (int(v) for v in sizes[i])
            seg = r.segmentation
            if seg is None:
                if not by_box:
                    raise ResultsError.at(source, where(i), "segm evaluation needs a segmentation")
                x, y, bw, bh = bbox[i]
                seg = [[x, y, x, y + bh, x + bw, y + bh, x + bw, y]]  # loadRes: the box as mask
            if isinstance(seg, _Rle):
                if list(seg.size) != [h, w]:
                    raise ResultsError.at(source, where(i), f"segmentation size {list(seg.size)} differs from the image's [{h}, {w}]")
                if isinstance(seg.counts, str):
                    counts.append(seg.counts)
                    continue
                if sum(seg.counts) != h * w:
                    raise ResultsError.at(source, where(i), "segmentation: RLE counts do not add up to height x width")
                rle = mask_utils.frPyObjects({"size": [h, w], "counts": seg.counts}, h, w)
            else:
                if not seg or any(len(p) < 6 or len(p) % 2 for p in seg):
                    raise ResultsError.at(source, where(i), "segmentation: polygons need an even number of at least 6 coordinates")
                rle = mask_utils.merge(mask_utils.frPyObjects([list(p) for p in seg], h, w))
            counts.append(rle["counts"].decode("ascii"))
        try:
            masks = DecodedMasks(counts)
        except ValueError as err:
            k = int(str(err).split()[2]) if str(err).startswith("RLE counts") else 0
            raise ResultsError.at(source, where(k), "segmentation: corrupt RLE counts string") from None
        bad = np.flatnonzero(masks.totals != sizes[:, 0] * sizes[:, 1])
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), "segmentation: RLE counts do not add up to height x width")

    keypoints = None
    if iou_type == "keypoints" or (not by_box and not by_mask):
        for i, r in enumerate(records):
            if r.keypoints is None:
                raise ResultsError.at(source, where(i), "keypoints missing (keypoints evaluation needs 17 x [x, y, score])")
            if len(r.keypoints) != NUM_KEYPOINT_VALUES:
                raise ResultsError.at(source, where(i), f"keypoints: expected {NUM_KEYPOINT_VALUES} numbers, got {len(r.keypoints)}")
        keypoints = np.array([r.keypoints for r in records], dtype=np.float64).reshape(n, NUM_KEYPOINT_VALUES)
        bad = np.flatnonzero(~np.isfinite(keypoints).all(axis=1))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), "keypoints: NaN or infinite value")

    if by_box:
        area = bbox[:, 2] * bbox[:, 3]
    elif by_mask:
        area = masks.areas.astype(np.float64)
        bbox = mask_utils.toBbox([{"size": [int(h), int(w)], "counts": c} for (h, w), c in zip(sizes, counts)]).reshape(n, 4) if n else bbox
    else:
        xs, ys = keypoints[:, 0::3], keypoints[:, 1::3]
        x0, x1, y0, y1 = xs.min(axis=1), xs.max(axis=1), ys.min(axis=1), ys.max(axis=1)
        area = (x1 - x0) * (y1 - y0)
        bbox = np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)
    return Annotations(
        image_id=image_ids[image_index] if n else image_ids[:0],
        category_id=category,
        ann_id=np.arange(1, n + 1, dtype=np.int64),
        bbox=bbox, area=np.asarray(area, dtype=np.float64), iscrowd=np.zeros(n, dtype=bool), score=score,
        counts=counts, mask_size=sizes if counts is not None else None, keypoints=keypoints,
        masks=masks,
    )
