"""Detection results files (COCO results lists) -> detection :class:`~ochuman.eval.annotations.Annotations`.

A results file is a JSON list of ``{"image_id", "category_id", "score", "bbox"?,
"segmentation"?, "keypoints"?}``. What pycocotools ``loadRes`` derives is derived the same way,
decided by the first record as pycocotools does:

- it has a non-empty ``bbox``: every record needs one; ``area = w * h`` (even when a
  segmentation is present, as in Detectron2's segm results); without a segmentation the box
  itself is the mask;
- else it has a ``segmentation``: ``area`` = mask area, ``bbox`` = the record's own where it has
  one, else the mask's bounding box;
- else ``keypoints``: ``bbox`` and ``area`` from the extent of all keypoints (given boxes unused).

``image_id`` may be the id of the ground-truth file or an image's file name; an id written as a
float (1.0, as pandas writes ids) is the int it equals, as in pycocotools' dicts. Every problem is a
:class:`~ochuman.errors.ResultsError` naming the file, the record index and the problem.

Records with different fields follow the same rule (record 0 decides). ``strict`` reading (what
``ochuman eval`` does) says so where that rule silently substitutes, with an
:class:`~ochuman.errors.OCHumanWarning` naming the first such record: boxes scored as masks
(segm evaluation of records without a segmentation), in bbox evaluation when record 0 has no
bbox: mask boxes for the records without one beside records with one, or given boxes replaced
by the keypoints' extent; and it refuses ``"segmentation": null`` where pycocotools would fail
on it (segm evaluation), where plain reading takes it as absent.
"""
from __future__ import annotations

import math
import mmap
import warnings
from pathlib import Path
from typing import Optional, Sequence, Union

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from ochuman.errors import OCHumanError, OCHumanWarning, ResultsError
from ochuman.eval.annotations import Annotations, MaskTable
from ochuman.eval.blocks import positions
from ochuman.keypoints import NUM_COCO_KEYPOINTS
from ochuman.masks import box_polygon, polygon_masks
from ochuman.scan import scan_results

NUM_KEYPOINT_VALUES = 3 * NUM_COCO_KEYPOINTS  # what the compiled scanner reads


class _Rle(msgspec.Struct):
    size: tuple[int, int]
    counts: Union[str, list[int]]


class _Result(msgspec.Struct):
    image_id: Union[int, float, str]  # (a float: the id it equals, as pycocotools' dict keys read 1.0 as 1)
    category_id: Union[int, float]
    score: float
    bbox: Optional[list[float]] = None
    segmentation: Union[_Rle, list[list[float]], None] = None
    keypoints: Optional[list[float]] = None


class _StrictResult(_Result):
    """A record read strictly: an absent segmentation is UNSET, ``"segmentation": null`` None."""

    segmentation: Union[_Rle, list[list[float]], None, msgspec.UnsetType] = msgspec.UNSET


HAS_BBOX, HAS_SEGMENTATION, HAS_KEYPOINTS = 1, 2, 4  # the compiled scanner's record flags


#: the likely cause of masks sized for other images
_OTHER_IMAGES = " (results for another split, or keyed by another file's image ids?)"

#: polygon coordinates (and boxes used as masks) further than this many image sizes outside the
#: image are refused: pycocotools would rasterise their edges point by point (gigabytes).
_FAR = 100


def _polygon_fits(coords, h: int, w: int) -> bool:
    """All coordinates finite and within ``_FAR`` image sizes of the image."""
    limit = _FAR * max(h, w, 1)
    return all(math.isfinite(v) and -limit <= v <= limit for v in coords)


def _known_images(image_ids: np.ndarray, file_names: Optional[Sequence[str]]) -> str:
    """``"its image ids are 1..10, or file names such as '000001.jpg'"`` for messages."""
    ids = sorted(image_ids.tolist())
    if not ids:
        return "it has no images"
    if ids == list(range(ids[0], ids[0] + len(ids))):
        text = f"its image ids are {ids[0]}..{ids[-1]}" if len(ids) > 1 else f"its image id is {ids[0]}"
    else:
        text = "its image ids are " + ", ".join(map(str, ids[:5])) + (", ..." if len(ids) > 5 else "")
    return text + (f", or file names such as {file_names[0]!r}" if file_names else "")


def _kind(value) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null", bool: "boolean"}.get(type(value), "number")


def read_bytes(path: Union[str, Path]) -> bytes:
    """A results file's content; a one-line error when it cannot be read."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None


def read_results(path: Union[str, Path]) -> list:
    """Parse a results file into typed records (no checks against a ground truth yet)."""
    return parse_results(read_bytes(path), str(path))


def parse_results(data: Union[bytes, list], source: str, strict: bool = False) -> list:
    """Typed records from JSON bytes or an already-parsed list (``strict``: telling an absent
    segmentation from a null one, see the module doc)."""
    record_type = _StrictResult if strict else _Result
    try:
        if isinstance(data, (bytes, bytearray)):
            _check_utf8(data, source)  # msgspec skips unknown fields' strings unchecked
            try:
                return msgspec.json.decode(data, type=list[record_type])
            except msgspec.DecodeError:
                data = _python_json(data, source)  # NaN / Infinity literals, or broken JSON
        if not isinstance(data, list):
            hint = " (an annotation file? pass it as the ground truth)" if isinstance(data, dict) else ""
            raise ResultsError.at(source, "top level", f"expected a JSON list of detections, got {_kind(data)}{hint}")
        return msgspec.convert(data, list[record_type])
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
    except UnicodeEncodeError:  # json.loads reads the escape, msgspec cannot convert the key
        from ochuman.io import LONE_SURROGATE_KEY  # (here: the drop-in starts ~5 ms sooner without ochuman.io)

        raise ResultsError.at(source, "", LONE_SURROGATE_KEY) from None


def _check_utf8(data: bytes, source: str) -> None:
    """Refuse what json.loads refuses as text: bytes that are not UTF-8 (surrogates pass, as
    json.loads decodes bytes with ``surrogatepass``)."""
    try:
        bytes(data).decode("utf-8", "surrogatepass")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise ResultsError.at(source, f"line {line} column {column}", f"not valid UTF-8 (byte 0x{data[err.start]:02x})") from None


def _python_json(data: bytes, source: str):
    import json  # the slow path, for its error positions, NaN literals and numbers beyond float64

    if not data.strip():
        raise ResultsError.at(source, "", "empty file (expected a JSON list of detections)")
    try:
        from ochuman.io import python_json  # (as above)

        return python_json(data)
    except json.JSONDecodeError as err:
        raise ResultsError.at(source, f"line {err.lineno} column {err.colno}", f"not valid JSON ({err.msg[:1].lower() + err.msg[1:]})") from None
    except ValueError as err:
        raise ResultsError.at(source, "", f"not valid JSON ({err})") from None


def detections_from_records(
    records: Sequence[_Result],
    source: str,
    image_ids: np.ndarray,
    image_sizes: np.ndarray,
    category_ids: Optional[Sequence[int]],
    iou_type: str,
    file_names: Optional[Sequence[str]] = None,
    strict: bool = False,
    keypoint_count: int = NUM_COCO_KEYPOINTS,
) -> Annotations:
    """Validate records against the ground truth and derive what pycocotools ``loadRes`` does.

    image_ids (M,): ids of the ground-truth images; image_sizes (M, 2) [height, width];
    file_names (M,): accepted in place of ids; category_ids: the categories a record may name
    (others are refused), None: any (as pycocotools ``loadRes``; ids beyond int64 are refused,
    no ground truth has them); strict: warn about and refuse mixed fields as the
    module doc says (records from ``parse_results(..., strict=True)`` tell null from absent).
    keypoint_count: K, the ground truth's joints (keypoints hold 3K numbers).
    Returns detection Annotations with ids 1..N.
    """
    n = len(records)
    by_id = {key: k for k, key in enumerate(image_ids.tolist())}
    by_name = {name: k for k, name in enumerate(file_names)} if file_names is not None else {}
    known_categories = None if category_ids is None else set(int(c) for c in category_ids)
    keys = [r.image_id for r in records]
    image_index = np.array([by_id.get(key, -1) for key in keys], dtype=np.int64)
    for i in np.flatnonzero(image_index < 0):  # file names, or unknown ids
        key = keys[i]
        k = by_name.get(key) if isinstance(key, str) else None
        if k is None:
            raise ResultsError.at(source, f"record {i} (image_id {key!r})",
                                  f"unknown image_id: not an image of the ground truth ({_known_images(image_ids, file_names)})")
        image_index[i] = k
    listed = [r.category_id for r in records]
    category = np.array(listed) if n else np.zeros(0, dtype=np.int64)
    if category.dtype.kind != "i":  # floats (1.0 is 1), or ints beyond int64 (no category has them)
        beyond = next((i for i, v in enumerate(listed) if not ((type(v) is int or v.is_integer()) and -2 ** 63 <= v < 2 ** 63)),
                      None)
        if beyond is not None:  # (the first record of an unknown category, as below)
            i = next(i for i, v in enumerate(listed) if i == beyond or (known_categories is not None
                                                                       and v not in known_categories))
            raise ResultsError.at(source, f"record {i} (image_id {keys[i]!r})", f"unknown category_id {listed[i]}")
        category = np.array([int(v) for v in listed], dtype=np.int64)
    bad = np.flatnonzero(~np.isin(category, list(known_categories))) if known_categories is not None else []
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

    null_segmentation = next((i for i, r in enumerate(records) if type(r) is _StrictResult and r.segmentation is None),
                             None)
    segmentations = [None if r.segmentation is msgspec.UNSET else r.segmentation for r in records]
    by_box = n > 0 and bool(records[0].bbox)
    by_mask = not by_box and n > 0 and segmentations[0] is not None
    bbox = np.zeros((n, 4))
    # the boxes used: every record's (bbox rule), or those given beside masks (bbox evaluation)
    given = np.full(n, by_box) if by_box or not (by_mask and iou_type == "bbox") else \
        np.array([r.bbox is not None for r in records], dtype=bool)
    if given.any():
        for i, r in enumerate(records):
            if by_box and r.bbox is None:
                raise ResultsError.at(source, where(i), "bbox missing: record 0 has one, so every record needs one (as pycocotools loadRes)")
            if given[i] and len(r.bbox) != 4:
                raise ResultsError.at(source, where(i), f"bbox: expected [x, y, w, h], got {r.bbox!r}"[:200])
        bbox[given] = np.array([r.bbox for r, g in zip(records, given) if g], dtype=np.float64).reshape(-1, 4)
        bad = np.flatnonzero(~np.isfinite(bbox).all(axis=1))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), "bbox: NaN or infinite value")
        bad = np.flatnonzero((bbox[:, 2] < 0) | (bbox[:, 3] < 0))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), f"bbox has a negative width or height: {bbox[bad[0]].tolist()}")
    if strict:
        flags = np.array([(HAS_BBOX if r.bbox else 0) | (HAS_SEGMENTATION if seg is not None else 0)
                          | (HAS_KEYPOINTS if r.keypoints is not None else 0)
                          for r, seg in zip(records, segmentations)], dtype=np.uint8)
        check_fields(flags, iou_type, source, where, null_segmentation)

    counts = masks = None
    if iou_type == "segm" or by_mask:
        segs = segmentations
        compressed = [seg.counts if type(seg) is _Rle and type(seg.counts) is str else None for seg in segs]
        if n and None not in compressed:  # the usual case: compressed RLEs only
            try:
                seg_sizes = np.array([seg.size for seg in segs], dtype=np.int64).reshape(n, 2)
            except OverflowError:  # a size beyond int64 differs from the image's anyway
                i = next(i for i, seg in enumerate(segs) if list(seg.size) != sizes[i].tolist())
                raise ResultsError.at(source, where(i), f"segmentation size {list(segs[i].size)} differs from the image's {sizes[i].tolist()}{_OTHER_IMAGES}") from None
            bad = np.flatnonzero((seg_sizes != sizes).any(axis=1))
            if len(bad):
                i = bad[0]
                raise ResultsError.at(source, where(i), f"segmentation size {seg_sizes[i].tolist()} differs from the image's {sizes[i].tolist()}{_OTHER_IMAGES}")
        counts = compressed if n and None not in compressed else []
        polygons = {}  # record -> its polygons, rasterised together after the loop
        for i, seg in enumerate(segmentations if not counts else ()):
            h, w = (int(v) for v in sizes[i])
            if seg is None:
                if not by_box:
                    raise ResultsError.at(source, where(i), "segmentation missing (segm evaluation needs a segmentation, "
                                                            "or a bbox in every record to use as the mask)")
                seg = box_polygon(*bbox[i])  # loadRes: the box as mask
                if not _polygon_fits(seg[0], h, w):
                    raise ResultsError.at(source, where(i), f"bbox {bbox[i].tolist()} lies far outside the {w} x {h} image "
                                                            "(segm evaluation rasterises it as the mask)")
            if isinstance(seg, _Rle):
                if list(seg.size) != [h, w]:
                    raise ResultsError.at(source, where(i), f"segmentation size {list(seg.size)} differs from the image's [{h}, {w}]{_OTHER_IMAGES}")
                if isinstance(seg.counts, str):
                    counts.append(seg.counts)
                    continue
                if any(c < 0 for c in seg.counts):
                    raise ResultsError.at(source, where(i), f"segmentation: uncompressed RLE counts must not be negative, got {min(seg.counts)}")
                if sum(seg.counts) != h * w:
                    raise ResultsError.at(source, where(i), f"segmentation: uncompressed RLE counts add up to {sum(seg.counts)}, "
                                                            f"not height x width = {h} x {w} = {h * w}")
                rle = mask_utils.frPyObjects({"size": [h, w], "counts": seg.counts}, h, w)
            else:
                if not seg or any(len(p) < 6 or len(p) % 2 for p in seg):
                    raise ResultsError.at(source, where(i), "segmentation: polygons need an even number of at least 6 coordinates")
                for p in seg:
                    if not _polygon_fits(p, h, w):
                        bad_value = next((v for v in p if not math.isfinite(v)), None)
                        raise ResultsError.at(source, where(i), "segmentation: NaN or infinite polygon coordinate" if bad_value is not None
                                              else f"segmentation: polygon coordinates lie far outside the {w} x {h} image")
                polygons[i] = seg
                counts.append("")
                continue
            counts.append(rle["counts"].decode("ascii"))
        if polygons:  # as pycocotools' annToRLE: frPyObjects + merge at the image's size
            drawn = polygon_masks(list(polygons.values()), sizes[list(polygons)])
            for i, string in zip(polygons, drawn):
                counts[i] = string
        masks = MaskTable.from_strings(counts, sizes)
        if masks.bad is not None:
            raise ResultsError.at(source, where(masks.bad[0]), "segmentation: corrupt RLE counts string (it ends inside a number: truncated?)")
        bad = np.flatnonzero(masks.totals != sizes[:, 0] * sizes[:, 1])
        if len(bad):
            i = bad[0]
            h, w = (int(v) for v in sizes[i])
            stray = next(((k, c) for k, c in enumerate(counts[i]) if not "0" <= c <= "o"), None)
            if stray is not None:
                raise ResultsError.at(source, where(i), f"segmentation: corrupt RLE counts string (character {stray[1]!r} at "
                                                        f"position {stray[0]} is not an RLE code, '0'..'o')")
            raise ResultsError.at(source, where(i), f"segmentation: RLE counts cover {int(masks.totals[i])} pixels, not height x width = "
                                                    f"{h} x {w} = {h * w} (corrupt or truncated counts string?)")

    keypoints = None
    if iou_type == "keypoints" or (not by_box and not by_mask):
        values = 3 * keypoint_count
        for i, r in enumerate(records):
            if r.keypoints is None:
                raise ResultsError.at(source, where(i), f"keypoints missing (keypoints evaluation needs {keypoint_count} x [x, y, score])")
            if len(r.keypoints) != values:
                raise ResultsError.at(source, where(i), f"keypoints: expected {values} numbers, got {len(r.keypoints)}")
        keypoints = np.array([r.keypoints for r in records], dtype=np.float64).reshape(n, values)
        bad = np.flatnonzero(~np.isfinite(keypoints).all(axis=1))
        if len(bad):
            raise ResultsError.at(source, where(bad[0]), "keypoints: NaN or infinite value")

    area, bbox = _derived_area_and_box(by_box, by_mask, bbox, masks, keypoints, given, exact_boxes=iou_type == "bbox")
    return Annotations(
        image_id=image_ids[image_index] if n else image_ids[:0],
        category_id=category,
        ann_id=np.arange(1, n + 1, dtype=np.int64),
        bbox=bbox, area=np.asarray(area, dtype=np.float64), iscrowd=np.zeros(n, dtype=bool), score=score,
        counts=counts, mask_size=sizes if counts is not None else None, keypoints=keypoints,
        masks=masks,
    )


def check_fields(flags: np.ndarray, iou_type: str, source: str, where, null_segmentation: Optional[int] = None) -> None:
    """``strict`` reading of records with different fields (module doc): warn where pycocotools'
    ``loadRes`` silently substitutes, refuse a null segmentation it cannot score.

    flags (N,) uint8: HAS_BBOX (a non-empty bbox) | HAS_SEGMENTATION | HAS_KEYPOINTS per record;
    where(i): how messages name record i; null_segmentation: the first record whose
    segmentation is null (None: none)."""
    if len(flags) == 0:
        return
    by_box = bool(flags[0] & HAS_BBOX)
    if by_box and iou_type == "segm":
        if null_segmentation is not None:
            raise ResultsError.at(source, where(null_segmentation), "segmentation is null: pycocotools cannot score it as "
                                                                    "a mask (leave the field out to score the box as the mask)")
        without = np.flatnonzero((flags & HAS_SEGMENTATION) == 0)
        if len(without) == len(flags):
            warnings.warn(f"{source}: no record has a segmentation: each box is scored as its mask, as pycocotools' "
                          "loadRes does (bbox results? use --iou-type bbox)", OCHumanWarning, stacklevel=3)
        elif len(without):
            others = f" and {len(without) - 1} other records have" if len(without) > 1 else " has"
            warnings.warn(f"{source}: {where(without[0])}{others} no segmentation: their boxes are scored as masks, "
                          "as pycocotools' loadRes does", OCHumanWarning, stacklevel=3)
    if not by_box and iou_type == "bbox":
        boxed = np.flatnonzero(flags & HAS_BBOX)
        if flags[0] & HAS_SEGMENTATION and len(boxed):
            unboxed = np.flatnonzero((flags & HAS_BBOX) == 0)
            others = f" and {len(unboxed) - 1} other records have" if len(unboxed) > 1 else " has"
            warnings.warn(f"{source}: {where(unboxed[0])}{others} no bbox, {where(boxed[0])} has one: as pycocotools' "
                          "loadRes, a record without one is scored by its mask's bounding box", OCHumanWarning, stacklevel=3)
        elif len(boxed):
            warnings.warn(f"{source}: {where(boxed[0])} has a bbox but record 0 has neither bbox nor segmentation: as "
                          "pycocotools' loadRes, every box is derived from its record's keypoints and the given boxes "
                          "are not used", OCHumanWarning, stacklevel=3)


def _derived_area_and_box(by_box: bool, by_mask: bool, bbox: np.ndarray, masks: Optional[MaskTable],
                          keypoints: Optional[np.ndarray], given: np.ndarray, exact_boxes: bool = True,
                          rles: Optional[list] = None) -> tuple[np.ndarray, np.ndarray]:
    """``area`` (N,) and ``bbox`` (N, 4) as pycocotools ``loadRes`` derives them; given (N,) bool:
    the records whose own box ``bbox`` holds (kept beside a mask). A mask's box is pycocotools'
    ``toBbox`` (of ``rles``, the masks as RLE dicts, when given) where ``exact_boxes``, else the
    compiled core's box of the mask's pixels (the same but where a counts string holds an empty
    run between two others: toBbox counts the pixel there; for warnings and reports, not IoUs)."""
    n = len(bbox)
    if by_box:
        with np.errstate(over="ignore"):  # w * h beyond float64 is inf, as pycocotools' Python floats give it
            return bbox[:, 2] * bbox[:, 3], bbox
    if by_mask:
        if not exact_boxes:
            x0, y0, x1, y1 = masks.boxes.T
            boxes = np.where((masks.areas > 0)[:, None], np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], axis=1), 0)
            boxes = boxes.astype(np.float64)
        elif n:
            if rles is None:
                rles = [{"size": [int(h), int(w)], "counts": c} for (h, w), c in zip(masks.sizes, masks)]
            boxes = mask_utils.toBbox(rles).reshape(n, 4)
        else:
            boxes = bbox.copy()
        boxes[given] = bbox[given]
        return masks.areas.astype(np.float64), boxes
    xs, ys = keypoints[:, 0::3], keypoints[:, 1::3]
    x0, x1, y0, y1 = xs.min(axis=1), xs.max(axis=1), ys.min(axis=1), ys.max(axis=1)
    with np.errstate(over="ignore", invalid="ignore"):  # inf / nan beyond float64, as pycocotools computes them
        return (x1 - x0) * (y1 - y0), np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)


_NOT_SCANNED = object()  # detections_from_bytes: scan the data itself


def detections_from_bytes(
    data: Union[bytes, mmap.mmap],
    source: str,
    image_ids: np.ndarray,
    image_sizes: np.ndarray,
    category_ids: Optional[Sequence[int]],
    iou_type: str,
    file_names: Optional[Sequence[str]] = None,
    defer_mask_checks: bool = False,
    scanned=_NOT_SCANNED,
    strict: bool = False,
    keypoint_count: int = NUM_COCO_KEYPOINTS,
    mask_strings=None,
) -> Annotations:
    """A results file's bytes (or memory map) -> detection Annotations, as
    :func:`detections_from_records`.

    Files in the shape detectors write (integer image ids, compressed RLE, ...) are read by the
    compiled scanner straight into arrays, the masks' RLE strings left in place; anything else,
    and every file with a problem, goes the general way (typed parse, then checks with messages).
    defer_mask_checks: leave the masks' statistics to the mask IoU pass (it decodes them
    anyway); the caller must then confirm :func:`masks_are_valid` afterwards and, if not, take
    the general path (:func:`detections_from_records`), which names the problem. scanned:
    what :func:`scan_results` returned for ``data`` when already called (see
    :class:`ochuman.scan.PrefetchedResults`); mask_strings: the buffer its segm column's offsets
    point into when not ``data`` (``PrefetchedResults.mask_strings``). strict, keypoint_count: as
    :func:`detections_from_records`.
    """
    if scanned is _NOT_SCANNED:
        scanned = scan_results(data)
    fast = _scanned_detections(data, scanned, image_ids, image_sizes, category_ids, iou_type, defer_mask_checks,
                               keypoint_count, mask_strings=mask_strings)
    if fast is not None:
        if strict:
            keys = np.frombuffer(scanned[0], dtype=np.int64)
            check_fields(np.frombuffer(scanned[3], dtype=np.uint8), iou_type, source,
                         lambda i: f"record {i} (image_id {int(keys[i])})")
        return fast
    return detections_from_records(parse_results(bytes(data), source, strict), source, image_ids, image_sizes,
                                   category_ids, iou_type, file_names, strict, keypoint_count)


def masks_are_valid(detections: Annotations) -> bool:
    """Every mask string decodes and covers its image (computing what is left to compute)."""
    return detections.masks is None or _valid_masks(detections.masks)


def _valid_masks(masks: MaskTable) -> bool:
    return masks.bad is None and bool((masks.totals == masks.sizes[:, 0] * masks.sizes[:, 1]).all())


def _all_finite(values: np.ndarray) -> bool:
    """Every value finite (their sum is: a sum that overflows is taken as not, sending the
    caller to its general path, which looks at each value); 1 ms for 1.2M values, isfinite().all() 3."""
    with np.errstate(over="ignore", invalid="ignore"):
        return bool(np.isfinite(values.sum()))


def _scanned_detections(data: bytes, scanned: Optional[tuple], image_ids: np.ndarray, image_sizes: np.ndarray,
                        category_ids: Optional[Sequence[int]], iou_type: str,
                        defer_mask_checks: bool = False,
                        keypoint_count: int = NUM_COCO_KEYPOINTS, raw: bool = True,
                        masks: Optional[MaskTable] = None, rles: Optional[list] = None,
                        mask_strings=None) -> Optional[Annotations]:
    """Detections from the compiled scanner's columns of ``data``, or None when the file needs
    the general path (the scanner reads 17 keypoints only). raw: the masks' counts in ``data``
    are JSON string content (a file's bytes), else plain strings; masks: the masks of the
    ``segm`` column already as a table; rles: the same as RLE dicts (for pycocotools' toBbox);
    mask_strings: where the segm column's offsets point (None: into ``data``)."""
    if scanned is None:
        return None
    keys, category, score, flags, bbox, segm, keypoints = scanned
    keys = np.frombuffer(keys, dtype=np.int64)
    n = len(keys)
    if n == 0 or len(image_ids) == 0:
        return None
    ids = np.asarray(image_ids)
    if ids.dtype.kind not in "iu":
        return None
    order = np.argsort(ids, kind="stable")
    position = positions(keys, ids[order])
    if (position < 0).any():
        return None
    image_index = order[position]
    category = np.frombuffer(category, dtype=np.int64)
    score = np.frombuffer(score, dtype=np.float64)
    flags = np.frombuffer(flags, dtype=np.uint8)
    if (category_ids is not None and not np.isin(category, np.asarray(list(category_ids), dtype=np.int64)).all()) \
            or not _all_finite(score):
        return None
    by_box = bool(flags[0] & 1)
    by_mask = not by_box and bool(flags[0] & 2)
    bbox = np.frombuffer(bbox, dtype=np.float64).reshape(n, 4)
    given = np.full(n, by_box) if by_box or not (by_mask and iou_type == "bbox") else (flags & 1).astype(bool)
    if by_box and not (flags & 1).all():
        return None
    if not given.all():  # (all given: the scanner's column as it is, read-only)
        bbox = np.where(given[:, None], bbox, 0.0) if given.any() else np.zeros((n, 4))
    if not _all_finite(bbox) or (bbox[:, 2:] < 0).any():
        return None
    sizes = None
    if iou_type == "segm" or by_mask:
        sizes = image_sizes[image_index]
        if not (flags & 2).all() or len(segm) != 32 * n:  # (a scan that passed over the masks)
            return None
        segm = np.frombuffer(segm, dtype=np.int64).reshape(n, 4)
        if (segm[:, :2] != sizes).any():
            return None
        deferred = defer_mask_checks and not by_mask  # by_mask: the areas are needed now
        if masks is None:
            masks = MaskTable(data if mask_strings is None else mask_strings, segm[:, 2], segm[:, 3], sizes,
                              raw=raw, deferred=deferred)
        if not deferred and not _valid_masks(masks):
            return None
    else:
        masks = None
    kpts = None
    if iou_type == "keypoints" or (not by_box and not by_mask):
        if not (flags & 4).all() or len(keypoints) != 8 * 3 * keypoint_count * n:
            return None
        kpts = np.frombuffer(keypoints, dtype=np.float64).reshape(n, 3 * keypoint_count)
        if not _all_finite(kpts):
            return None
    area, bbox = _derived_area_and_box(by_box, by_mask, bbox, masks, kpts, given, exact_boxes=iou_type == "bbox", rles=rles)
    return Annotations(
        image_id=keys if ids.dtype == np.int64 else ids[image_index], category_id=category,
        ann_id=np.arange(1, n + 1, dtype=np.int64),
        bbox=bbox, area=np.asarray(area, dtype=np.float64), iscrowd=np.zeros(n, dtype=bool), score=score,
        counts=masks, mask_size=sizes, keypoints=kpts, masks=masks,
    )
