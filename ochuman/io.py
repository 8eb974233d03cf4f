"""Annotation files -> :class:`~ochuman.records.Dataset`, and atomic writes.

Two formats, told apart by content:

- native ``ochuman.json``: ``{"images": [{"image_id", "file_name", "width", "height",
  "annotations": [person, ...]}], "keypoint_names", "keypoint_visible"}`` with persons
  ``{"bbox": [x1, y1, x2, y2], "max_iou", "keypoints": 57 numbers | null, "segms": {"outer",
  "inner", "height", "width"} | null}``;
- COCO: ``{"images", "annotations", "categories"}`` (the official OCHuman conversion output,
  COCO person keypoint files with crowd regions, any COCO instances file: only the person
  category is read, or every category with ``all_categories=True``, as ``ochuman eval`` reads
  its ground truth).

Parsing is msgspec's typed JSON decoder (native code, validates types while it parses); the
checks it cannot do (lengths, ranges, duplicates, references) run vectorised afterwards. A COCO
file is read into columns (:class:`_CocoColumns`) by the compiled scanner when it has the shapes
COCO and the official tools write (integer ids; compressed or uncompressed RLE or polygon
masks), else by the typed decoder (ids, category ids, iscrowd and image sizes written as
floats equal to ints, as pandas writes them, are those ints, as pycocotools' dicts read them);
one builder (:func:`_coco_dataset`) checks the columns and gives them their meaning, whichever
reader made them. Every problem is raised as :class:`~ochuman.errors.FormatError` naming the
file and the record.
"""
from __future__ import annotations

import contextlib
import errno
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import msgspec
import numpy as np

from ochuman import _evalcore
from ochuman.convert import recorded_file_facts
from ochuman.errors import ESCAPE_UNDECODABLE, FormatError, OCHumanError, OCHumanWarning, printable
from ochuman.keypoints import (
    NUM_COCO_KEYPOINTS, NUM_OCHUMAN_KEYPOINTS, OCHUMAN_KEYPOINT_NAMES,
    ochuman_to_coco,
)
from ochuman.masks import DRAWABLE_LIMIT, Polygons, PolygonTable, check_drawable, xyxy_to_xywh, xywh_to_xyxy
from ochuman.maxiou import max_iou_from_boxes_grouped
from ochuman.records import Dataset, Image
from ochuman.rle import CountLists, FileSegmentations, MaskTable
from ochuman.scan import PrefetchedAnnotations
from ochuman.subsets import official_split


# ------------------------------------------------------------------------------ file schemas
class _Segms(msgspec.Struct):
    outer: list[list[float]]
    inner: list[list[float]] = []
    height: Optional[int] = None
    width: Optional[int] = None


class _NativePerson(msgspec.Struct):
    bbox: tuple[float, float, float, float]
    max_iou: float
    keypoints: Optional[list[float]]
    segms: Optional[_Segms]


class _NativeImage(msgspec.Struct):
    file_name: str
    image_id: str
    width: int
    height: int
    annotations: list[_NativePerson]


# Ids, flags and sizes may be written as floats (1.0, as pandas writes them): the ints they equal,
# as pycocotools' dicts read 1.0 as 1 (see _column and _int64_column)
class _CocoImage(msgspec.Struct):
    id: Union[int, float, str]
    file_name: str
    width: Union[int, float]
    height: Union[int, float]


class _Rle(msgspec.Struct):
    size: tuple[int, int]
    counts: Union[str, list[int]]


class _CocoAnnotation(msgspec.Struct):
    id: Union[int, float]
    image_id: Union[int, float, str]
    bbox: tuple[float, float, float, float]
    category_id: Union[int, float] = 1
    iscrowd: Union[int, float] = 0
    area: Optional[float] = None
    keypoints: Optional[list[float]] = None
    segmentation: Union[list[list[float]], _Rle, None] = None
    max_iou: Optional[float] = None  # extension: written by `ochuman convert --with-max-iou`
    num_keypoints: Optional[float] = None


class _CocoCategory(msgspec.Struct):
    id: Union[int, float]
    name: str = ""
    keypoints: Optional[list[str]] = None


_AT = re.compile(r"^(?P<msg>.*) - at `\$(?P<path>[^`]*)`$")
_INDEX = re.compile(r"^\[(?P<i>\d+)\](?P<rest>.*)$")
_PERSON = re.compile(r"^\.annotations\[(?P<j>\d+)\]\.?(?P<rest>.*)$")
_OFFICIAL_NAME = re.compile(r"ochuman_coco_format_(?P<split>val|test|all)_range(?:_(?P<range>\d\.\d\d_\d\.\d\d))?")


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean",
            type(None): "null"}.get(type(value), "number")


def _utf8_error(source: str, data: bytes, errors: str = "strict") -> FormatError:
    """Where the first byte that is not UTF-8 lies, as ``line L column C`` (columns in bytes);
    errors: the decoding's error handler ("surrogatepass": as json.loads reads bytes)."""
    data = bytes(data)
    try:
        data.decode("utf-8", errors)
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        where = f"line {line} column {column}"
        return FormatError.at(source, where, f"not valid UTF-8 (byte 0x{data[err.start]:02x})")
    return FormatError.at(source, "", "not valid UTF-8")


def _is_utf8(data: bytes, errors: str = "strict") -> bool:
    try:
        bytes(data).decode("utf-8", errors)
    except UnicodeDecodeError:
        return False
    return True


def _int_or_infinite(text: str):
    """An integer literal as Python's json reads it, or +-inf beyond float64 (as 1e400 reads)."""
    if len(text) <= 310:
        value = int(text)
        try:
            float(value)
            return value
        except OverflowError:
            pass
    return float(text)


def python_json(data: bytes) -> Any:
    """``data`` read by Python's json, as pycocotools reads files: NaN and Infinity literals
    and numbers beyond float64 (``1e400``, a 400-digit integer) are NaN and +-inf, left to the
    field checks to refuse with the record named (msgspec refuses them unnamed)."""
    import json  # the slow path only

    return json.loads(data, parse_int=_int_or_infinite)


#: the problem of a key that json.loads reads with an unpaired surrogate (msgspec cannot take it)
LONE_SURROGATE_KEY = "a key holds an unpaired surrogate escape (\\ud800-\\udfff): not a Unicode string"


def _out_of_range(err: msgspec.ValidationError) -> bool:
    """msgspec refused a number beyond float64 (1e400)."""
    return str(err).startswith("Number out of range")


class _Parts:
    """Top-level keys of a JSON object, decoded on demand into typed values.

    Fast path: msgspec keeps each top-level value as raw JSON. Files msgspec refuses
    (``NaN``/``Infinity`` literals, which Python's json accepts, and numbers beyond float64,
    found when a value is decoded) take a slow path through :func:`python_json` so that the
    offending record can still be named.
    """

    def __init__(self, source: str, data: bytes, raw: Optional[dict] = None):
        """raw: msgspec's split of ``data``, when already made."""
        self.source = source
        self.data = data
        self.raw: Optional[dict] = raw
        self.obj: Optional[dict] = None
        # msgspec skips the top-level values it keeps raw unchecked; json.loads refuses bad UTF-8 anywhere
        if not data.isascii() and not _is_utf8(data, "surrogatepass"):
            raise _utf8_error(source, data, "surrogatepass")
        if raw is not None:
            return
        with self._unreadable():
            try:
                self.raw = msgspec.json.decode(data, type=dict[str, msgspec.Raw])
                return
            except (msgspec.ValidationError, msgspec.DecodeError):  # no object (a value may hold 1e400), or no JSON
                import json  # the slow path, for its error positions and NaN literals

                if not data.strip():
                    raise FormatError.at(source, "", "empty file (expected a JSON object)") from None
                try:
                    top = python_json(data)
                except UnicodeDecodeError:
                    raise
                except ValueError as err:
                    where, reason = "", _lower_first(str(err).split(":")[0])
                    if isinstance(err, json.JSONDecodeError):
                        where = f"line {err.lineno} column {err.colno}"
                        reason = _lower_first(re.sub(r" (starting )?at$", "", err.msg))
                        # a string cannot hold a raw newline, so an unterminated one runs to the end
                        if err.pos >= len(err.doc.rstrip()) or err.msg.startswith("Unterminated string"):
                            raise FormatError.at(source, where, "not valid JSON: the file ends too early (truncated?)") from None
                    raise FormatError.at(source, where, f"not valid JSON ({reason})") from None
        if not isinstance(top, dict):
            hint = " (a results list? give an annotation file)" if isinstance(top, list) else ""
            raise FormatError.at(source, "top level", f"expected a JSON object, got {_json_kind(top)}{hint}")
        self.obj = top

    @property
    def numbers_are_finite(self) -> bool:
        """True when msgspec parsed the file: JSON numbers cannot be NaN or infinite."""
        return self.raw is not None

    def keys(self) -> set:
        return set(self.raw if self.raw is not None else self.obj)

    @contextlib.contextmanager
    def _unreadable(self) -> Iterator[None]:
        """Turn msgspec's and json's UnicodeDecodeError and RecursionError into one line.

        msgspec checks the UTF-8 of a top-level value only when it decodes it (``Raw`` values
        are skipped over), so these can come from any decode, not only the first. Before 0.23
        msgspec raised ``UnicodeDecodeError`` for bad UTF-8; from 0.23 on a ``DecodeError``
        ("Invalid UTF-8 encoded string"): both are told apart from other decode errors by
        checking the bytes themselves.
        """
        try:
            yield
        except UnicodeDecodeError:
            raise _utf8_error(self.source, self.data) from None
        except msgspec.DecodeError:
            if _is_utf8(self.data):
                raise
            raise _utf8_error(self.source, self.data) from None
        except RecursionError:
            raise FormatError.at(self.source, "", "JSON nested too deeply to read") from None
        except UnicodeEncodeError:  # json.loads reads the escape, msgspec cannot convert the key
            raise FormatError.at(self.source, "", LONE_SURROGATE_KEY) from None

    def _read_slowly(self) -> None:
        """Switch to the slow path (a number beyond float64 was found)."""
        with self._unreadable():
            self.obj, self.raw = python_json(self.data), None

    def untyped(self, key: str) -> Any:
        if self.raw is not None:
            try:
                with self._unreadable():
                    return msgspec.json.decode(self.raw[key])
            except msgspec.ValidationError as err:
                if not _out_of_range(err):
                    raise
                self._read_slowly()
        return self.obj[key]

    def typed(self, key: str, kind: Any, describe) -> Any:
        """Decode ``key`` as ``kind``; on failure name the record via ``describe(index, rest)``."""
        try:
            with self._unreadable():
                if self.raw is not None:
                    return msgspec.json.decode(self.raw[key], type=kind)
                return msgspec.convert(self.obj[key], kind)
        except msgspec.ValidationError as err:
            if self.raw is not None and _out_of_range(err):
                self._read_slowly()
                return self.typed(key, kind, describe)
            match = _AT.match(str(err))
            if not match:
                raise FormatError.at(self.source, key, _lower_first(str(err))) from None
            msg, at = _lower_first(match["msg"]), match["path"]
            index = _INDEX.match(at)
            if index is None:
                raise FormatError.at(self.source, key, msg) from None
            where = describe(self.untyped(key), int(index["i"]), index["rest"])
            raise FormatError.at(self.source, where, msg) from None


def _describe_native(images: Any, i: int, rest: str) -> str:
    image = images[i] if isinstance(images, list) and i < len(images) else None
    image_id = image.get("image_id") if isinstance(image, dict) else None
    where = f"images[{i}]" + (f" (image_id {image_id!r})" if image_id is not None else "")
    person = _PERSON.match(rest)
    if person:
        where += f" person {person['j']}"
        rest = person["rest"]
    return f"{where}: {rest.lstrip('.')}" if rest.strip(".") else where


def _describe_coco(key: str):
    def describe(items: Any, i: int, rest: str) -> str:
        item = items[i] if isinstance(items, list) and i < len(items) else None
        ident = item.get("id") if isinstance(item, dict) else None
        where = f"{key}[{i}]" + (f" (id {ident!r})" if ident is not None else "")
        return f"{where}: {rest.lstrip('.')}" if rest.strip(".") else where
    return describe


# ----------------------------------------------------------------------------------- loading
def load(
    path: Union[str, os.PathLike, PrefetchedAnnotations],
    filter: Optional[str] = None,
    images_dir: Union[str, os.PathLike, None] = None,
    all_categories: bool = False,
    masks: bool = True,
) -> Dataset:
    """Read a native ``ochuman.json`` or a COCO-format file (told apart by content).

    path: the file, or a :class:`~ochuman.scan.PrefetchedAnnotations` of it (a read already
    under way in a background thread). filter: an OCHumanApi filter ("kpt", "segm",
    "kpt&segm", "kpt|segm"); None keeps every person and image. images_dir: where
    :meth:`Dataset.read_image` looks; by default an ``images`` folder beside the file or beside
    its parent folder, if one exists. all_categories: a COCO file's annotations of every
    category (else only its person category's, or its one category's; a file with several
    and none named ``person`` is refused). masks=False: a COCO file's polygons and uncompressed
    RLE may be checked and not kept (box and keypoint work: ``segmentations`` may lack them).
    """
    prefetched = path.get() if isinstance(path, PrefetchedAnnotations) else None
    path = Path(prefetched.path if prefetched else path)
    data = prefetched.data if prefetched else None
    if data is None:
        data = read_file(path)
    try:  # source names the file in messages and figures: undecodable bytes of its name as \xNN
        dataset = parse(data, source=printable(str(path)), images_dir=images_dir or _guess_images_dir(path),
                        prefetched=prefetched, all_categories=all_categories, masks=masks)
    finally:
        if prefetched:  # its bytes are the loader's now, kept only where the dataset needs them
            prefetched.release()
        del data
    return dataset.filter_persons(filter)


def read_file(path: Union[str, os.PathLike]) -> bytes:
    """The bytes of a file; a file that cannot be read is one line naming it."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None


def parse(data: Union[bytes, dict], source: str = "<memory>", images_dir=None,
          prefetched: Optional[PrefetchedAnnotations] = None, all_categories: bool = False,
          masks: bool = True) -> Dataset:
    """Build a Dataset from JSON bytes or an already-parsed dict (native or COCO). prefetched:
    what a background read of these bytes already did; all_categories, masks: as :func:`load`."""
    if not isinstance(data, (bytes, bytearray)):
        import json  # NaN stays a NaN literal (msgspec would write null)

        data = json.dumps(data).encode()
        prefetched = None
    parts = _Parts(source, data, prefetched.raw if prefetched else None)
    keys = parts.keys()
    folder = None if images_dir is None else os.fspath(images_dir)
    if "annotations" in keys:
        return _build_coco(parts, folder, prefetched, all_categories, masks)
    if "images" in keys:
        return _build_native(parts, folder)
    raise FormatError.at(
        source, "top level",
        "neither a native OCHuman file (no 'images') nor a COCO file (no 'annotations')",
    )


def _guess_images_dir(path: Path) -> Optional[str]:
    for folder in (path.parent / "images", path.parent.parent / "images"):
        if folder.is_dir():
            return str(folder)
    return None


def _first(mask: np.ndarray) -> Optional[int]:
    bad = np.flatnonzero(mask)
    return int(bad[0]) if len(bad) else None


def _check_polygons(polygons: list, where: str, source: str, finite: bool, what: str) -> None:
    for k, polygon in enumerate(polygons):
        if len(polygon) < 6 or len(polygon) % 2:
            raise FormatError.at(
                source, where,
                f"{what}[{k}]: a polygon needs an even number of at least 6 coordinates, got {len(polygon)}",
            )
        if not finite and not all(map(math.isfinite, polygon)):
            raise FormatError.at(source, where, f"{what}[{k}]: NaN or infinite coordinate")
        if not (-DRAWABLE_LIMIT <= min(polygon) and max(polygon) <= DRAWABLE_LIMIT):  # (finite here)
            try:
                check_drawable(polygon)
            except OverflowError as err:
                raise FormatError.at(source, where, f"{what}[{k}]: {err}") from None


def _keypoint_names_problem(names: Any) -> str:
    """Why ``names`` is not OCHuman's list of keypoint names, short enough for one line."""
    expected = list(OCHUMAN_KEYPOINT_NAMES)
    head = f"expected OCHuman's {len(expected)} names in order ({', '.join(expected[:3])}, ...)"
    if not isinstance(names, list):
        return f"{head}, got {_json_kind(names)}"
    k = next((k for k, (a, b) in enumerate(zip(names, expected)) if a != b), min(len(names), len(expected)))
    if k < min(len(names), len(expected)):
        return f"{head}, got {len(names)} names; [{k}] is {str(names[k])[:40]!r}, expected {expected[k]!r}"
    return f"{head}, got {len(names)} names"


def _build_native(parts: _Parts, images_dir: Optional[str]) -> Dataset:
    source = parts.source
    if "keypoint_names" in parts.keys():
        names = parts.untyped("keypoint_names")
        if names is not None and names != list(OCHUMAN_KEYPOINT_NAMES):
            raise FormatError.at(source, "keypoint_names", _keypoint_names_problem(names))
    native_images: list[_NativeImage] = parts.typed("images", list[_NativeImage], _describe_native)

    images, seen = [], {}
    for i, im in enumerate(native_images):
        where = f"images[{i}] (image_id {im.image_id!r})"
        if im.width <= 0 or im.height <= 0:
            raise FormatError.at(source, where, f"width and height must be positive, got {im.width}x{im.height}")
        for key in (("image_id", im.image_id), ("file_name", im.file_name)):
            if key in seen:
                raise FormatError.at(source, where, f"duplicate {key[0]} {key[1]!r} (also images[{seen[key]}])")
            seen[key] = i

    image_index, person_in_image, bboxes, max_ious, kpt_rows, kpts, segs = [], [], [], [], [], [], []
    for i, im in enumerate(native_images):
        for j, person in enumerate(im.annotations):
            n = len(bboxes)
            image_index.append(i)
            person_in_image.append(j)
            bboxes.append(person.bbox)
            max_ious.append(person.max_iou)
            if person.keypoints:  # the official filters test truthiness
                kpt_rows.append(n)
                kpts.append(person.keypoints)
            segs.append(person.segms if person.segms else None)

    image_index = np.asarray(image_index, dtype=np.int64)

    def where_person(n: int) -> str:
        i = image_index[n]
        return f"images[{i}] (image_id {native_images[i].image_id!r}) person {person_in_image[n]}"

    bbox_xyxy = np.asarray(bboxes, dtype=np.float64).reshape(-1, 4)
    bad = _first(~np.isfinite(bbox_xyxy).all(axis=1))
    if bad is not None:
        raise FormatError.at(source, where_person(bad), "bbox: NaN or infinite value")
    bad = _first((bbox_xyxy[:, 2] < bbox_xyxy[:, 0]) | (bbox_xyxy[:, 3] < bbox_xyxy[:, 1]))
    if bad is not None:
        raise FormatError.at(
            source, where_person(bad),
            f"bbox {[int(v) if v.is_integer() else v for v in bbox_xyxy[bad]]} has x2 < x1 or y2 < y1 "
            "(native boxes are [x1, y1, x2, y2])",
        )
    max_iou = np.asarray(max_ious, dtype=np.float64)
    bad = _first(~((max_iou >= 0) & (max_iou <= 1)))
    if bad is not None:
        raise FormatError.at(source, where_person(bad), f"max_iou must be in [0, 1], got {max_iou[bad]}")

    n_persons = len(bboxes)
    keypoints_ochuman = np.zeros((n_persons, NUM_OCHUMAN_KEYPOINTS, 3))
    has_keypoints = np.zeros(n_persons, dtype=bool)
    expected = 3 * NUM_OCHUMAN_KEYPOINTS
    for n, row in zip(kpt_rows, kpts):
        if len(row) != expected:
            raise FormatError.at(source, where_person(n), f"keypoints: expected {expected} numbers (19 x [x, y, v]), got {len(row)}")
    if kpt_rows:
        values = np.asarray(kpts, dtype=np.float64).reshape(-1, NUM_OCHUMAN_KEYPOINTS, 3)
        bad = _first(~np.isfinite(values).all(axis=(1, 2)))
        if bad is not None:
            raise FormatError.at(source, where_person(kpt_rows[bad]), "keypoints: NaN or infinite value")
        codes = values[..., 2]
        bad = _first(~np.isin(codes, (0, 1, 2, 3)).all(axis=1))
        if bad is not None:
            raise FormatError.at(
                source, where_person(kpt_rows[bad]),
                f"keypoints: visibility codes must be 0, 1, 2 or 3, got "
                f"{[int(v) if v.is_integer() else v for v in sorted(set(codes[bad].tolist()) - {0, 1, 2, 3})]}",
            )
        keypoints_ochuman[kpt_rows] = values
        has_keypoints[kpt_rows] = True
    keypoints = ochuman_to_coco(keypoints_ochuman)

    segmentations = []
    for n, segms in enumerate(segs):
        if segms is None:
            segmentations.append(None)
            continue
        image = native_images[image_index[n]]
        if (segms.height, segms.width) not in ((None, None), (image.height, image.width)):
            raise FormatError.at(
                source, where_person(n),
                f"segms: size {segms.height}x{segms.width} differs from the image's {image.height}x{image.width}",
            )
        _check_polygons(segms.outer, where_person(n), source, parts.numbers_are_finite, "segms.outer")
        _check_polygons(segms.inner, where_person(n), source, parts.numbers_are_finite, "segms.inner")
        segmentations.append(Polygons(tuple(segms.outer), tuple(segms.inner)))

    has_benchmark = np.zeros(len(native_images), dtype=bool)
    has_mask = np.array([s is not None for s in segmentations], dtype=bool)
    has_benchmark[image_index[has_keypoints & has_mask]] = True
    split = official_split(has_benchmark)
    images = tuple(
        Image(im.image_id, im.file_name, im.width, im.height, split[i])
        for i, im in enumerate(native_images)
    )
    return Dataset(
        source=source, format="ochuman", images=images, image_index=image_index,
        person_id=np.arange(1, n_persons + 1, dtype=np.int64),
        bbox_xywh=xyxy_to_xywh(bbox_xyxy), keypoints=keypoints, has_keypoints=has_keypoints,
        segmentations=tuple(segmentations), iscrowd=np.zeros(n_persons, dtype=bool),
        area=np.full(n_persons, np.nan), max_iou=max_iou,
        max_iou_box=max_iou_from_boxes_grouped(bbox_xyxy, image_index),
        keypoints_ochuman=keypoints_ochuman, images_dir=images_dir,
    )


def _person_category(categories: list[_CocoCategory], source: str) -> Optional[_CocoCategory]:
    persons = [c for c in categories if c.name == "person"]
    if len(persons) == 1:
        return persons[0]
    if len(categories) == 1:
        return categories[0]
    if not categories:
        return None
    raise FormatError.at(source, "categories", "no single category named 'person'")


def _coco_categories(parts: _Parts, all_categories: bool) -> tuple[Optional[_CocoCategory], list[_CocoCategory]]:
    """(the person category, None when the file lists no categories or ``all_categories``;
    every category of the file, in file order)."""
    source = parts.source
    categories: list[_CocoCategory] = (
        parts.typed("categories", list[_CocoCategory], _describe_coco("categories"))
        if "categories" in parts.keys() else []
    )
    for k, c in enumerate(categories):  # an id written as 1.0: 1 (as _int64_column reads annotations')
        if type(c.id) is float:
            if not c.id.is_integer():
                raise FormatError.at(source, f"categories[{k}]", f"id {c.id!r} is no integer")
            c.id = int(c.id)
    huge = next((k for k, c in enumerate(categories) if c.id not in _INT64), None)
    if huge is not None:  # (as annotations' category_id, see _int64_column)
        raise FormatError.at(source, f"categories[{huge}]", f"id {categories[huge].id} does not fit int64")
    category = None if all_categories else _person_category(categories, source)
    _keypoint_count(categories if all_categories else [category] if category is not None else [], source)
    return category, categories


def _keypoint_count(categories: Sequence[_CocoCategory], source: str) -> int:
    """K, the joints each annotation's keypoints hold: the length of the categories' keypoints
    lists (they must agree; as in pycocotools only the count matters: its OKS sigmas go by
    position), COCO's 17 where none lists them. K != 17 needs OKS sigmas of its own."""
    counts = {len(k.keypoints) for k in categories if k.keypoints is not None}
    if len(counts) > 1:
        ids = ", ".join(f"{k.id}: {len(k.keypoints)}" for k in categories if k.keypoints is not None)
        raise FormatError.at(source, "categories", f"keypoints lists of different lengths ({ids}): one set of OKS "
                                                   "sigmas cannot score them all")
    return counts.pop() if counts else NUM_COCO_KEYPOINTS


def split_in_file_name(source: str) -> Optional[str]:
    """"val", "test" or "all" as an official COCO-format file's name says; None for other names."""
    name = _OFFICIAL_NAME.search(Path(source).name)
    return None if name is None else name["split"]


def _coco_split(parts: _Parts, n_images: int) -> tuple[np.ndarray, Optional[str]]:
    """((M,) official split of each image, "" where unknown; the MaxIoU range rule the file was
    cut with, None when unknown). From the ``info`` of a file ``ochuman convert`` wrote, else
    from an official file's name: ``val`` / ``test`` files hold one split; the ``all`` file of
    the full range holds every benchmark image in native order, val first (the released
    dataset's full-range files drop none: 4313 + 3797 = 8110 persons). An ``all`` file of another
    range left images out, which moves the 2500-image boundary: its split is unknown."""
    info = parts.untyped("info") if "info" in parts.keys() else None
    recorded = recorded_file_facts(info, parts.source, n_images)
    if recorded is not None:
        return recorded
    name = _OFFICIAL_NAME.search(Path(parts.source).name)
    if name is None or (name["split"] == "all" and name["range"] != "0.00_1.00"):
        return np.full(n_images, "", dtype=object), None
    if name["split"] == "all":
        return official_split(np.ones(n_images, dtype=bool)), None
    return np.full(n_images, name["split"], dtype=object), None


@dataclass(eq=False)
class _CocoColumns:
    """A COCO file's ``images`` (M) and ``annotations`` (K, every category) as read, before any
    check: which values are refused and what each field means is decided once, by
    :func:`_coco_dataset`, whichever reader made the columns. Ids are int64 arrays, or object
    arrays where a file uses string (or beyond-int64) ids."""

    image_id: np.ndarray  # (M,)
    width: np.ndarray  # (M,) int64 (object beyond int64)
    height: np.ndarray  # (M,) int64 (object beyond int64)
    file_name: Sequence[str]  # (M,)
    ann_id: np.ndarray  # (K,) int64
    ann_image_id: np.ndarray  # (K,)
    category_id: np.ndarray  # (K,) int64
    iscrowd: np.ndarray  # (K,) int64
    bbox: np.ndarray  # (K, 4) float64 [x, y, w, h]
    area: np.ndarray  # (K,) float64; NaN where absent (or given as NaN)
    area_given: np.ndarray  # (K,) bool
    max_iou: np.ndarray  # (K,) float64; NaN where absent
    max_iou_given: np.ndarray  # (K,) bool
    keypoints: np.ndarray  # (K, 51) float64; zeros where absent or not 51 numbers
    keypoints_length: np.ndarray  # (K,) int64 numbers given; -1 where absent
    keypoints_zero: np.ndarray  # (K,) bool: given, and every number is 0
    num_keypoints: np.ndarray  # (K,) float64; NaN where absent
    is_rle: np.ndarray  # (K,) bool: the segmentation is an RLE object
    rle_size: np.ndarray  # (K, 2) int64 an RLE's [height, width]
    rle_pixels: dict  # annotation index -> sum of its uncompressed RLE counts
    polygons: Optional[Sequence[Optional[list]]]  # (K,) non-empty polygon lists to check, else None (checked)
    segmentations: Callable[[np.ndarray], Sequence]  # rows -> their segmentations, as Dataset holds them


def _column(values: list) -> np.ndarray:
    """int64 when every value is an int64 integer (a float equal to one counts as it); else an
    object array (string ids, integers beyond int64, other floats: keys as they are)."""
    values = [int(v) if type(v) is float and v.is_integer() else v for v in values]
    if all(type(v) is int for v in values):
        try:
            return np.array(values, dtype=np.int64)
        except OverflowError:
            pass
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


_INT64 = range(-2 ** 63, 2 ** 63)  # the ints an int64 column holds


def _int64_column(records: list, field: str, source: str, listed: str = "annotations") -> np.ndarray:
    """An integer field of every record of a COCO list (``listed``) as int64; a value beyond int64
    (an id of 2 ** 64; image ids may be any int, see _column) is refused naming its record."""
    values = [getattr(r, field) for r in records]
    whole = np.array(values)
    if whole.dtype.kind == "f":  # floats: the ints they equal (1.0 is 1)
        k = _first(~(np.isfinite(whole) & (whole == np.trunc(whole))))
        if k is not None:
            raise FormatError.at(source, f"{listed}[{k}]", f"{field} {values[k]!r} is no integer")
        values = [int(v) for v in values]
    try:
        return np.array(values, dtype=np.int64)
    except OverflowError:
        k = next(k for k, v in enumerate(values) if v not in _INT64)
        raise FormatError.at(source, f"{listed}[{k}]", f"{field} {values[k]} does not fit int64") from None


def _rle_sizes(segs: list, source: str) -> np.ndarray:
    """(N, 2) int64 [h, w] of each annotation's RLE ([-1, -1]: none); a size beyond int64 is
    refused naming its annotation."""
    try:
        return np.array([s.size if isinstance(s, _Rle) else (-1, -1) for s in segs], dtype=np.int64).reshape(-1, 2)
    except OverflowError:
        k = next(k for k, s in enumerate(segs) if isinstance(s, _Rle) and not all(v in _INT64 for v in s.size))
        raise FormatError.at(source, f"annotations[{k}]", f"segmentation size {list(segs[k].size)} does not fit int64") from None


def _earlier(values: np.ndarray) -> np.ndarray:
    """(N,) int64: for each value, the position of its first occurrence when that is earlier, else -1."""
    first = np.full(len(values), -1, dtype=np.int64)
    if values.dtype == object:
        seen: dict = {}
        for k, value in enumerate(values.tolist()):
            j = seen.setdefault(value, k)
            if j != k:
                first[k] = j
        return first
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, bool)
    group_first = order[np.flatnonzero(starts)][np.cumsum(starts) - 1]
    repeated = ~starts
    first[order[repeated]] = group_first[repeated]
    return first


def _positions(keys: np.ndarray, universe: np.ndarray) -> np.ndarray:
    """(N,) int64 position of each key in ``universe`` (unique values); -1 where absent."""
    if keys.dtype == object or universe.dtype == object:
        index = {value: k for k, value in enumerate(universe.tolist())}
        return np.array([index.get(key, -1) for key in keys.tolist()], dtype=np.int64)
    if not len(universe):
        return np.full(len(keys), -1, dtype=np.int64)
    order = np.argsort(universe, kind="stable")
    found = order[np.minimum(np.searchsorted(universe[order], keys), len(universe) - 1)]
    return np.where(universe[found] == keys, found, -1)


# evalcore.h SEGM_*: how the scanner found an annotation's segmentation
_SEGM_RLE, _SEGM_RLE_LIST = 1, 2


def _coco_columns_scanned(parts: _Parts, prefetched: Optional[PrefetchedAnnotations] = None,
                          masks: bool = True) -> Optional[_CocoColumns]:
    """The columns of a COCO file in the shapes COCO and the official tools write (integer ids;
    masks as compressed or uncompressed RLE or polygons), read by the compiled scanner (or taken
    from ``prefetched``'s); None for other shapes, which :func:`_coco_columns_decoded` reads.
    Compressed RLE stays in the file's bytes, polygons are numbers (:class:`PolygonTable`; with
    masks=False only checked, none kept)."""
    if parts.raw is None:
        return None
    if prefetched is not None and prefetched.raw is parts.raw and (prefetched.masks or not masks):
        scanned_images, scanned = prefetched.images, prefetched.annotations
    else:
        with parts._unreadable():
            scanned_images = _evalcore.scan_coco_images(parts.raw["images"])
            scanned = _evalcore.scan_coco_annotations(parts.raw["annotations"], not masks)
    if scanned_images is None or scanned is None:
        return None
    ids, widths, heights, names = (np.frombuffer(b, dtype=np.int64) for b in scanned_images)
    images_raw = bytes(parts.raw["images"])
    file_names = [images_raw[start:start + length].decode("ascii")
                  for start, length in zip(names[0::2].tolist(), names[1::2].tolist())]
    ann_id, image_id, category_id, crowd = (np.frombuffer(b, dtype=np.int64) for b in scanned[:4])
    bbox, area, max_iou = (np.frombuffer(b, dtype=np.float64) for b in scanned[4:7])
    has_keypoints_field = np.frombuffer(scanned[7], dtype=np.uint8).astype(bool)
    keypoints = (np.frombuffer(scanned[8], dtype=np.float64).reshape(-1, 3 * NUM_COCO_KEYPOINTS) if scanned[8]
                 else np.zeros((len(ann_id), 3 * NUM_COCO_KEYPOINTS)))  # no annotation has keypoints
    segm = np.frombuffer(scanned[9], dtype=np.int64).reshape(-1, 4)  # [h, w, offset, length] of RLE counts
    num_keypoints = np.frombuffer(scanned[10], dtype=np.int64)
    kind = np.frombuffer(scanned[11], dtype=np.uint8)  # evalcore.h SEGM_*
    polygons = PolygonTable.from_counts(scanned[14], scanned[13], scanned[12]) if masks and scanned[13] else None
    is_rle = (kind == _SEGM_RLE) | (kind == _SEGM_RLE_LIST)
    annotations_raw = parts.raw["annotations"]
    # uncompressed RLE (COCO's crowd regions): their counts summed by the scanner; when masks
    # are read, the lists stay text until read (their RLE strings are made from the text)
    listed = np.flatnonzero(kind == _SEGM_RLE_LIST)
    rle_pixels = dict(zip(listed.tolist(), np.frombuffer(scanned[16], dtype=np.int64).tolist()))
    count_lists = CountLists(annotations_raw, listed, segm[listed, 2:], segm[listed, :2]) if masks and len(listed) else None

    def segmentations(rows: np.ndarray) -> FileSegmentations:
        lists = count_lists.take(rows) if count_lists is not None else None
        return FileSegmentations(
            MaskTable(annotations_raw, np.where(kind[rows] == _SEGM_RLE, segm[rows, 2], -1), segm[rows, 3],
                      segm[rows, :2], raw=True, deferred=True),
            None if polygons is None else polygons.take(rows), lists)

    return _CocoColumns(
        image_id=ids, width=widths, height=heights, file_name=file_names,
        ann_id=ann_id, ann_image_id=image_id, category_id=category_id, iscrowd=crowd, bbox=bbox.reshape(-1, 4),
        area=area, area_given=~np.isnan(area), max_iou=max_iou, max_iou_given=~np.isnan(max_iou),
        keypoints=keypoints, keypoints_length=np.where(has_keypoints_field, 3 * NUM_COCO_KEYPOINTS, -1),
        keypoints_zero=has_keypoints_field & ~keypoints.any(axis=1) if scanned[8] else has_keypoints_field,
        num_keypoints=np.where(num_keypoints >= 0, num_keypoints, np.nan),
        is_rle=is_rle, rle_size=segm[:, :2], rle_pixels=rle_pixels, polygons=None, segmentations=segmentations,
    )


def _coco_columns_decoded(parts: _Parts, keypoint_count: int = NUM_COCO_KEYPOINTS) -> _CocoColumns:
    """The columns of any COCO file, decoded by msgspec into typed records (type errors name
    the record); keypoint_count: K joints per annotation."""
    coco_images: list[_CocoImage] = parts.typed("images", list[_CocoImage], _describe_coco("images"))
    annotations: list[_CocoAnnotation] = parts.typed(
        "annotations", list[_CocoAnnotation], _describe_coco("annotations"))
    n = len(annotations)
    expected = 3 * keypoint_count
    keypoints_length = np.array([-1 if a.keypoints is None else len(a.keypoints) for a in annotations],
                                dtype=np.int64)
    full = np.flatnonzero(keypoints_length == expected)
    keypoints = np.zeros((n, expected))
    if len(full):
        keypoints[full] = np.array([annotations[k].keypoints for k in full.tolist()], dtype=np.float64)
    segs = [a.segmentation for a in annotations]
    is_rle = np.array([isinstance(s, _Rle) for s in segs], dtype=bool)

    def segmentations(rows: np.ndarray) -> tuple:
        return tuple({"size": list(s.size), "counts": s.counts} if isinstance(s, _Rle) else s or None
                     for s in (segs[k] for k in rows.tolist()))

    return _CocoColumns(
        image_id=_column([im.id for im in coco_images]),
        width=_int64_column(coco_images, "width", parts.source, "images"),
        height=_int64_column(coco_images, "height", parts.source, "images"),
        file_name=[im.file_name for im in coco_images],
        ann_id=_int64_column(annotations, "id", parts.source),
        ann_image_id=_column([a.image_id for a in annotations]),
        category_id=_int64_column(annotations, "category_id", parts.source),
        iscrowd=_int64_column(annotations, "iscrowd", parts.source),
        bbox=np.array([a.bbox for a in annotations], dtype=np.float64).reshape(-1, 4),
        area=np.array([np.nan if a.area is None else a.area for a in annotations], dtype=np.float64),
        area_given=np.array([a.area is not None for a in annotations], dtype=bool),
        max_iou=np.array([np.nan if a.max_iou is None else a.max_iou for a in annotations], dtype=np.float64),
        max_iou_given=np.array([a.max_iou is not None for a in annotations], dtype=bool),
        keypoints=keypoints, keypoints_length=keypoints_length,
        keypoints_zero=np.array([a.keypoints is not None and not any(a.keypoints) for a in annotations], dtype=bool),
        num_keypoints=np.array([np.nan if a.num_keypoints is None else a.num_keypoints for a in annotations],
                               dtype=np.float64),
        is_rle=is_rle,
        rle_size=_rle_sizes(segs, parts.source),
        rle_pixels={k: sum(s.counts) for k, s in enumerate(segs) if isinstance(s, _Rle) and isinstance(s.counts, list)},
        polygons=[s if s and not isinstance(s, _Rle) else None for s in segs],
        segmentations=segmentations,
    )


def _build_coco(parts: _Parts, images_dir: Optional[str], prefetched: Optional[PrefetchedAnnotations] = None,
                all_categories: bool = False, masks: bool = True) -> Dataset:
    if "images" not in parts.keys():
        raise FormatError.at(parts.source, "top level", "a COCO file needs 'images' next to 'annotations'")
    category, categories = _coco_categories(parts, all_categories)
    keypoint_count = _keypoint_count(categories if category is None else [category], parts.source)
    # the scanner reads COCO's 51 keypoint numbers only
    columns = ((_coco_columns_scanned(parts, prefetched, masks) if keypoint_count == NUM_COCO_KEYPOINTS else None)
               or _coco_columns_decoded(parts, keypoint_count))
    return _coco_dataset(parts, columns, category, categories, images_dir, keypoint_count)


def _coco_dataset(parts: _Parts, c: _CocoColumns, category: Optional[_CocoCategory],
                  categories: list[_CocoCategory], images_dir: Optional[str],
                  keypoint_count: int = NUM_COCO_KEYPOINTS) -> Dataset:
    """The Dataset of a COCO file's columns: the persons of ``category`` (every annotation when
    None: the file lists no categories, or every category is read), keypoints (N, K, 3) with K =
    keypoint_count. Each check names the first record in file order that fails it."""
    source = parts.source
    image_ids = c.image_id.tolist()
    repeated = _earlier(c.image_id)
    bad = _first((repeated >= 0) | (c.width <= 0) | (c.height <= 0))
    if bad is not None:
        where = f"images[{bad}] (id {image_ids[bad]!r})"
        if repeated[bad] >= 0:
            raise FormatError.at(source, where, f"duplicate image id (also images[{repeated[bad]}])")
        raise FormatError.at(source, where, f"width and height must be positive, got {c.width[bad]}x{c.height[bad]}")

    n_all = len(c.ann_id)
    unknown_category = (~np.isin(c.category_id, np.array(sorted({k.id for k in categories}), dtype=np.int64))
                        if categories else np.zeros(n_all, dtype=bool))
    if unknown_category.any():  # pycocotools loads them; COCOeval never looks at them (getCatIds)
        unlisted = np.unique(c.category_id[unknown_category])
        ids = ", ".join(map(str, unlisted[:5].tolist())) + (", ..." if len(unlisted) > 5 else "")
        warnings.warn(f"{source}: {int(unknown_category.sum())} annotations of categories the file does not list "
                      f"(category_id {ids}) are left out, as pycocotools' COCOeval leaves them out",
                      OCHumanWarning, stacklevel=2)
    person = (c.category_id == category.id if category is not None else np.ones(n_all, dtype=bool)) & ~unknown_category
    rows = np.flatnonzero(person)
    repeated_id = np.full(n_all, -1, dtype=np.int64)
    earlier = _earlier(c.ann_id[rows])
    repeated_id[rows[earlier >= 0]] = rows[earlier[earlier >= 0]]
    position = np.full(n_all, -1, dtype=np.int64)
    position[rows] = _positions(c.ann_image_id[rows], c.image_id)
    bad_crowd = (c.iscrowd != 0) & (c.iscrowd != 1)
    bad = _first(person & ((repeated_id >= 0) | (position < 0) | bad_crowd))
    if bad is not None:
        where = f"annotations[{bad}] (id {c.ann_id[bad]})"
        if repeated_id[bad] >= 0:
            raise FormatError.at(source, where, f"duplicate annotation id (also annotations[{repeated_id[bad]}])")
        if position[bad] < 0:
            raise FormatError.at(source, where, f"unknown image_id {c.ann_image_id[bad:bad + 1].tolist()[0]!r}")
        raise FormatError.at(source, where, f"iscrowd must be 0 or 1, got {c.iscrowd[bad]}")

    def where_ann(n: int) -> str:
        return f"annotations[{rows[n]}] (id {c.ann_id[rows[n]]})"

    n_persons = len(rows)
    image_index = position[rows]
    iscrowd = c.iscrowd[rows] == 1
    bbox_xywh = c.bbox[rows]
    bad = _first(~np.isfinite(bbox_xywh).all(axis=1))
    if bad is not None:
        raise FormatError.at(source, where_ann(bad), "bbox: NaN or infinite value")
    bad = _first((bbox_xywh[:, 2] < 0) | (bbox_xywh[:, 3] < 0))
    if bad is not None:
        raise FormatError.at(source, where_ann(bad), f"bbox has a negative width or height: {bbox_xywh[bad].tolist()}")
    area = c.area[rows]
    bad = _first(~np.isfinite(area) & c.area_given[rows])
    if bad is not None:
        raise FormatError.at(source, where_ann(bad), "area: NaN or infinite value")

    # keypoints: a crowd region's all-zero list is no keypoints, whatever its length
    expected = 3 * keypoint_count
    length = c.keypoints_length[rows]
    given = (length >= 0) & ~(iscrowd & c.keypoints_zero[rows])
    bad = _first(given & (length != expected))
    if bad is not None:
        raise FormatError.at(source, where_ann(bad), f"keypoints: expected {expected} numbers "
                                                     f"({keypoint_count} x [x, y, v]), got {length[bad]}")
    if given.any():
        keypoints = np.where(given[:, None], c.keypoints[rows], 0.0).reshape(-1, keypoint_count, 3)
        bad = _first(~np.isfinite(keypoints).all(axis=(1, 2)))
        if bad is not None:
            raise FormatError.at(source, where_ann(bad), "keypoints: NaN or infinite value")
        bad = _first(~np.isin(keypoints[..., 2], (0, 1, 2)).all(axis=1))
        if bad is not None:
            raise FormatError.at(source, where_ann(bad), "keypoints: COCO visibility must be 0, 1 or 2")
        has_keypoints = (keypoints[..., 2] > 0).any(axis=1)
    else:  # a file without keypoints (COCO instances): zeros, pages the system gives when first written
        keypoints = np.zeros((n_persons, keypoint_count, 3))
        has_keypoints = np.zeros(n_persons, dtype=bool)

    # segmentations, in file order: an RLE's size and pixels, then a polygon list's coordinates
    sizes = np.stack([c.height, c.width], axis=1)[image_index] if n_persons else np.zeros((0, 2), np.int64)
    wrong_size = c.is_rle[rows] & (c.rle_size[rows] != sizes).any(axis=1)
    wrong_pixels = np.zeros(n_persons, dtype=bool)
    if c.rle_pixels:
        listed = np.fromiter(c.rle_pixels, dtype=np.int64, count=len(c.rle_pixels))
        person = np.minimum(np.searchsorted(rows, listed), max(n_persons - 1, 0))  # rows: ascending
        for k, n in zip(listed.tolist(), person.tolist()):
            if n_persons and rows[n] == k:
                wrong_pixels[n] = c.rle_pixels[k] != int(sizes[n, 0]) * int(sizes[n, 1])
    bad = _first(wrong_size | wrong_pixels)
    if c.polygons is not None:
        for n, k in enumerate(rows[:n_persons if bad is None else bad].tolist()):
            if c.polygons[k] is not None:
                _check_polygons(c.polygons[k], where_ann(n), source, parts.numbers_are_finite, "segmentation")
    segmentations = c.segmentations(rows)
    polygons = segmentations.polygons if isinstance(segmentations, FileSegmentations) else None
    undrawable = polygons.first_undrawable() if polygons is not None else None
    if undrawable is not None and (bad is None or undrawable < bad):
        try:
            for polygon in polygons.polygons(undrawable):
                check_drawable(polygon)
        except OverflowError as err:
            raise FormatError.at(source, where_ann(undrawable), f"segmentation: {err}") from None
    if bad is not None:
        if wrong_size[bad]:
            raise FormatError.at(source, where_ann(bad), f"segmentation size {c.rle_size[rows[bad]].tolist()} "
                                                         f"differs from the image's {sizes[bad].tolist()}")
        raise FormatError.at(source, where_ann(bad), "segmentation: RLE counts do not add up to height x width")

    max_iou = c.max_iou[rows]
    bad = _first(c.max_iou_given[rows] & ~((max_iou >= 0) & (max_iou <= 1)))
    if bad is not None:
        raise FormatError.at(source, where_ann(bad), f"max_iou must be in [0, 1], got {max_iou[bad]}")
    # MaxIoU among the objects of the same category of an image; crowd regions are no objects
    category_id = c.category_id[rows]
    persons = ~iscrowd
    max_iou_box = np.full(n_persons, np.nan)
    category_index = np.searchsorted(np.sort(category_id), category_id) if n_persons else category_id
    max_iou_box[persons] = max_iou_from_boxes_grouped(
        xywh_to_xyxy(bbox_xywh[persons]), (image_index * max(n_persons, 1) + category_index)[persons])
    if categories:
        listed = tuple((k.id, k.name) for k in categories)
    else:  # no list: the annotated ids, unnamed (a person file: its one category)
        listed = tuple((int(k), "") for k in np.unique(category_id)) if n_persons else ((1, "person"),)
    if category is not None:
        listed = ((category.id, category.name),)

    split, range_rule = _coco_split(parts, len(image_ids))
    images = tuple(Image(image_id, file_name, width, height, split[i]) for i, (image_id, file_name, width, height)
                   in enumerate(zip(image_ids, c.file_name, c.width.tolist(), c.height.tolist())))
    return Dataset(
        source=source, format="coco", images=images, image_index=image_index, person_id=c.ann_id[rows],
        bbox_xywh=bbox_xywh, keypoints=keypoints, has_keypoints=has_keypoints,
        segmentations=segmentations, iscrowd=iscrowd, area=area, max_iou=max_iou,
        max_iou_box=max_iou_box, images_dir=images_dir, range_rule=range_rule,
        num_keypoints_field=c.num_keypoints[rows], category_id=category_id, categories=listed,
    )


# ------------------------------------------------------------------------------------ writing
# Temporary files of the atomic writes in progress (see remove_unfinished_writes).
_UNFINISHED: set = set()


@contextlib.contextmanager
def atomic_write(path: Union[str, os.PathLike], mode: str = "w") -> Iterator[Any]:
    """Open a temporary file beside ``path``; move it into place only if the block succeeds.

    On any exception, KeyboardInterrupt included (the CLI raises one on SIGTERM too), the
    temporary file is removed and ``path`` is left as it was; a full disk (or quota, or file
    size limit) is an :class:`OCHumanError` naming ``path``. Text mode writes undecodable bytes
    of file names as ``\\xNN``.
    """
    path = Path(path)
    if path.is_dir():
        raise OCHumanError(f"{path}: cannot write: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _create_temporary(path)
    except OSError as err:
        raise OCHumanError(f"{path}: cannot write: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"errors": ESCAPE_UNDECODABLE})) as handle:
            yield handle
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.errno in _STORAGE_FULL:
            raise OCHumanError(f"{path}: cannot write: {err.strerror or err}") from None
        raise
    finally:
        _UNFINISHED.discard(tmp)


def _create_temporary(path: Path) -> tuple[int, str]:
    """(descriptor, name) of a new hidden file beside ``path``, mode 0600. Its name is in
    ``_UNFINISHED`` before the file exists, so an interruption at any point leaves no file that
    :func:`remove_unfinished_writes` does not know."""
    import secrets

    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.part")
        _UNFINISHED.add(tmp)
        try:
            return os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600), tmp
        except FileExistsError:
            _UNFINISHED.discard(tmp)
    raise FileExistsError(f"{path.parent}: no free temporary name")


def remove_unfinished_writes() -> None:
    """Remove the temporary files of atomic writes still in progress: an interruption handled
    at the very start of a write's own clean-up (a signal handler runs between any two steps)
    can leave one. For the end of an interrupted command."""
    for tmp in list(_UNFINISHED):
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _UNFINISHED.discard(tmp)


#: errno values of a write that found no room: disk full, quota exceeded, file size limit.
_STORAGE_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def write_json(path: Union[str, os.PathLike], obj: Any) -> None:
    """Write ``obj`` (plain Python types) as JSON, atomically."""
    try:
        data = msgspec.json.encode(obj)
    except UnicodeEncodeError:  # a file name's undecodable bytes (from the command line)
        data = msgspec.json.encode(_printable_strings(obj))
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def _printable_strings(obj: Any) -> Any:
    """``obj`` with every string (keys too) made :func:`~ochuman.errors.printable`."""
    if isinstance(obj, str):
        return printable(obj)
    if isinstance(obj, dict):
        return {_printable_strings(k): _printable_strings(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_printable_strings(v) for v in obj]
    return obj
