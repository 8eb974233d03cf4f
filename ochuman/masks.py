"""Masks and boxes: polygons (outer minus holes) <-> RLE <-> bitmap, areas, box layouts.

Names and shapes used throughout the package:

- ``rle``: a pycocotools *compressed* RLE, ``{"size": [height, width], "counts": str}`` with
  ASCII ``counts`` (JSON-ready). Uncompressed RLE (``counts`` a list of ints, as COCO stores
  crowd regions) is accepted on input and compressed on the way in.
- polygon: a flat list ``[x0, y0, x1, y1, ...]`` in pixels, at least 3 points.
- :class:`Polygons`: OCHuman's ``segms``: the union of the ``outer`` polygons minus the union
  of the ``inner`` polygons (holes), rasterised as OCHumanApi ``Poly2Mask`` does.
- bitmap: ``(H, W)`` uint8 array of 0/1.
- ``bbox_xyxy``: ``[x1, y1, x2, y2]`` corners; ``bbox_xywh``: ``[x, y, w, h]`` with
  ``w = x2 - x1`` (COCO, no +1). The +1 convention of MaxIoU lives in :mod:`ochuman.maxiou`.

All rasterisation is pycocotools', the reference for every COCO number: polygons through the
compiled core's copy of its algorithm (:func:`polygon_masks`, byte for byte), the rest through
pycocotools itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import chain
from typing import Optional, Sequence, Union

import numpy as np
from pycocotools import mask as mask_utils

from ochuman import _evalcore, parallel
from ochuman.rle import MaskTable, concat_ranges


@dataclass(frozen=True)
class Polygons:
    """A mask as outer polygons minus inner polygons (holes), each a flat coordinate list."""

    outer: tuple[Sequence[float], ...]
    inner: tuple[Sequence[float], ...] = ()


Segmentation = Union[Polygons, list, dict]


def _ascii(rle: dict) -> dict:
    counts = rle["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii")
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts}


def _union(rles: list[dict]) -> dict:
    return rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=False)


def empty_rle(height: int, width: int) -> dict:
    """The RLE of an all-zero ``height x width`` mask."""
    return bitmap_to_rle(np.zeros((height, width), dtype=np.uint8))


def _pycocotools_polygons(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict:
    for polygon in polygons:
        check_drawable(polygon)
    return _ascii(_union(mask_utils.frPyObjects([list(p) for p in polygons], height, width)))


_COORDINATE_LIMIT = 2.0 ** 27  # evalcore.h POLYGON_COORDINATE_LIMIT
# pycocotools' rleFrPoly draws at 5 times the scale and casts 5 x + 0.5 to a C int: past this
# (or NaN) its walk along an edge spans ~2^31 points, gigabytes and minutes it never finishes
DRAWABLE_LIMIT = (2.0 ** 31 - 1.5) / 5


def check_drawable(polygon) -> None:
    """Raise OverflowError where a coordinate of ``polygon`` (read as pycocotools reads it, as
    float64: null is NaN) is one pycocotools' rasteriser cannot draw (NaN, infinite, beyond
    :data:`DRAWABLE_LIMIT`); values it cannot read are left to it."""
    try:
        xy = np.array(polygon, dtype=np.float64).ravel()
    except (TypeError, ValueError, OverflowError):
        return
    beyond = np.flatnonzero(~(np.abs(xy) <= DRAWABLE_LIMIT))
    if len(beyond):
        raise OverflowError(f"polygon coordinate {float(xy[int(beyond[0])])!r}: pycocotools' rasteriser draws only "
                            f"within +-{DRAWABLE_LIMIT:.0f} (5 x must fit a C int; past it, it never finishes)")


@dataclass(frozen=True)
class PolygonTable:
    """N objects' COCO polygons as numbers, without Python lists.

    xy: (2P,) float64 coordinates [x0, y0, x1, y1, ...] of all points; point_start: (Q + 1,)
    int64, polygon q has points point_start[q] .. point_start[q + 1] - 1; polygon_start: (N + 1,)
    int64, object i has polygons polygon_start[i] .. polygon_start[i + 1] - 1 (none: no mask).
    """

    xy: np.ndarray
    point_start: np.ndarray
    polygon_start: np.ndarray

    @classmethod
    def from_counts(cls, xy: bytes, point_counts: bytes, polygon_counts: bytes) -> "PolygonTable":
        """From the compiled scanner's columns: coordinates (float64), points per polygon and
        polygons per object (int64), as bytes."""
        point_counts, polygon_counts = (np.frombuffer(b, dtype=np.int64) for b in (point_counts, polygon_counts))
        return cls(np.frombuffer(xy, dtype=np.float64), np.r_[0, np.cumsum(point_counts)].astype(np.int64),
                   np.r_[0, np.cumsum(polygon_counts)].astype(np.int64))

    @classmethod
    def from_lists(cls, objects: Sequence[Sequence[Sequence[float]]]) -> "PolygonTable":
        """From each object's polygon lists (an odd trailing number is dropped, as pycocotools does)."""
        polygons = [p for object_polygons in objects for p in object_polygons]
        point_counts = np.fromiter((len(p) // 2 for p in polygons), dtype=np.int64, count=len(polygons))
        xy = np.fromiter(chain.from_iterable(p if len(p) % 2 == 0 else p[:-1] for p in polygons), dtype=np.float64,
                         count=2 * int(point_counts.sum()))
        polygon_counts = np.fromiter(map(len, objects), dtype=np.int64, count=len(objects))
        return cls(xy, np.r_[0, np.cumsum(point_counts)].astype(np.int64),
                   np.r_[0, np.cumsum(polygon_counts)].astype(np.int64))

    def __len__(self) -> int:
        return len(self.polygon_start) - 1

    @property
    def present(self) -> np.ndarray:
        """(N,) bool: which objects have polygons."""
        return np.diff(self.polygon_start) > 0

    def polygons(self, i: int) -> list[list[float]]:
        """Object i's polygons as flat coordinate lists (empty: none)."""
        bounds = self.point_start[self.polygon_start[i]:self.polygon_start[i + 1] + 1].tolist()
        return [self.xy[2 * a:2 * b].tolist() for a, b in zip(bounds[:-1], bounds[1:])]

    def first_undrawable(self) -> Optional[int]:
        """The first object with a coordinate pycocotools cannot draw (:func:`check_drawable`), or None."""
        if not len(self.xy) or (self.xy.max() <= DRAWABLE_LIMIT and self.xy.min() >= -DRAWABLE_LIMIT):  # NaN: False
            return None
        beyond = np.flatnonzero(~(np.abs(self.xy) <= DRAWABLE_LIMIT))
        polygon = np.searchsorted(self.point_start, beyond[0] // 2, side="right") - 1
        return int(np.searchsorted(self.polygon_start, polygon, side="right") - 1)

    def take(self, idx: np.ndarray) -> "PolygonTable":
        """The objects at the indices idx (K,), their numbers gathered."""
        idx = np.asarray(idx, dtype=np.int64)
        lo, hi = self.polygon_start[idx], self.polygon_start[idx + 1]
        if len(idx) and lo[0] == 0 and hi[-1] == len(self.point_start) - 1 and (lo[1:] == hi[:-1]).all():
            # every polygon, in order (the objects left out have none): the same numbers
            return PolygonTable(self.xy, self.point_start, np.r_[0, np.cumsum(hi - lo)].astype(np.int64))
        chosen = concat_ranges(lo, hi)
        first, last = self.point_start[chosen], self.point_start[chosen + 1]
        points = concat_ranges(first, last)
        xy = self.xy.reshape(-1, 2)[points].reshape(-1)
        return PolygonTable(xy, np.r_[0, np.cumsum(last - first)].astype(np.int64),
                            np.r_[0, np.cumsum(hi - lo)].astype(np.int64))

    def masks(self, sizes: np.ndarray, originals: Optional[Sequence] = None) -> MaskTable:
        """Each object's polygons rasterised at its [height, width] of sizes (N, 2) and united,
        as :func:`polygon_masks` (an image of no pixels or of 2^31 - 1 or more, a coordinate not
        finite or past 2^27: pycocotools itself, given ``originals[k]`` when given, else the
        object's polygons; OverflowError where it cannot draw one)."""
        sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
        area = sizes[:, 0] * sizes[:, 1]
        points = self.point_start[self.polygon_start]
        native = (area > 0) & (area < 2 ** 31 - 1)
        outside = np.flatnonzero(~((self.xy >= -_COORDINATE_LIMIT) & (self.xy <= _COORDINATE_LIMIT)))  # NaN too
        if len(outside):  # the objects of those coordinates' points
            polygon = np.searchsorted(self.point_start, outside // 2, side="right") - 1
            native[np.searchsorted(self.polygon_start, polygon, side="right") - 1] = False
        if not native.all():
            return MaskTable.from_strings(
                [self.take([k]).masks(sizes[k:k + 1])[0] if native[k]
                 else _pycocotools_polygons(self.polygons(k) if originals is None else originals[k],
                                            *map(int, sizes[k]))["counts"]
                 for k in range(len(self))], sizes)
        lengths = np.zeros(len(sizes), dtype=np.int64)
        parts: dict[int, bytes] = {}

        def rasterise(lo: int, hi: int) -> None:
            parts[lo] = _evalcore.polygon_rle_strings(self.xy, self.point_start, self.polygon_start, sizes, lo, hi,
                                                      lengths)

        parallel.run_chunks(rasterise, np.diff(points).astype(np.float64), min_weight=2e4)
        # statistics when first read (a ground truth's come from the mask IoU pass)
        return MaskTable(b"".join(parts[k] for k in sorted(parts)), np.cumsum(lengths) - lengths, lengths, sizes,
                         deferred=True)


def polygon_masks(objects: Sequence[Sequence[Sequence[float]]], sizes: np.ndarray) -> MaskTable:
    """Each object's COCO polygons (flat ``[x0, y0, ...]`` lists; none: an empty mask) rasterised
    at its ``[height, width]`` of sizes (N, 2) and united: a :class:`MaskTable` of compressed RLE
    strings equal to pycocotools' ``frPyObjects`` + ``merge``, computed by the compiled core in
    threads. Left to pycocotools itself (its result or its error): a first polygon of 4 numbers
    or fewer (``frPyObjects`` reads boxes or refuses), a coordinate past 2^27, an image of no
    pixels or of 2^31 - 1 or more; a coordinate pycocotools cannot draw (not finite or past
    :data:`DRAWABLE_LIMIT`) raises OverflowError."""
    sizes = np.ascontiguousarray(sizes, dtype=np.int64).reshape(-1, 2)
    boxes = [k for k, p in enumerate(objects) if p and len(p[0]) <= 4]
    if boxes:
        chosen = np.setdiff1d(np.arange(len(objects)), boxes)
        drawn = dict(zip(chosen.tolist(), polygon_masks([objects[k] for k in chosen], sizes[chosen])))
        return MaskTable.from_strings([drawn[k] if k in drawn else _pycocotools_polygons(p, *map(int, sizes[k]))["counts"]
                                       for k, p in enumerate(objects)], sizes)
    return PolygonTable.from_lists(objects).masks(sizes, originals=objects)


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict:
    """Union of COCO polygons rasterised at ``height x width``; an empty list gives an empty mask."""
    return {"size": [int(height), int(width)], "counts": polygon_masks([polygons], [[height, width]])[0]}


def holed_polygons_to_rle(polygons: Polygons, height: int, width: int) -> dict:
    """OCHuman ``Poly2Mask``: union of ``outer`` with the union of ``inner`` cut out."""
    outer = polygons_to_rle(polygons.outer, height, width)
    if len(polygons.inner) == 0:
        return outer
    holes = rle_to_bitmap(polygons_to_rle(polygons.inner, height, width))
    return bitmap_to_rle(rle_to_bitmap(outer) & (1 - holes))


def segmentation_to_rle(segmentation: Segmentation, height: int, width: int) -> dict:
    """Any supported segmentation (Polygons, COCO polygon list, RLE) -> compressed RLE."""
    if isinstance(segmentation, Polygons):
        return holed_polygons_to_rle(segmentation, height, width)
    if isinstance(segmentation, list):
        return polygons_to_rle(segmentation, height, width)
    if isinstance(segmentation["counts"], list):
        return _ascii(mask_utils.frPyObjects(segmentation, height, width))
    return _ascii(segmentation)


def rle_to_bitmap(rle: dict) -> np.ndarray:
    """Compressed RLE -> (H, W) uint8 bitmap of 0/1."""
    return mask_utils.decode(rle)


def bitmap_to_rle(bitmap: np.ndarray) -> dict:
    """(H, W) bitmap (any dtype, nonzero = inside) -> compressed RLE with ASCII counts."""
    return _ascii(mask_utils.encode(np.asfortranarray(bitmap, dtype=np.uint8)))


# pycocotools (2.0.11) ``mask.area`` builds a uint8 array of the mask count before filling its
# result: under numpy 2, 256 or more masks in one call raise OverflowError.
_AREA_CHUNK = 255


def rle_area(rles: Sequence[dict]) -> np.ndarray:
    """Pixel counts of RLEs (any number of them). Returns (N,) int64."""
    rles = list(rles)
    if len(rles) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([np.asarray(mask_utils.area(rles[k:k + _AREA_CHUNK]), dtype=np.int64)
                           for k in range(0, len(rles), _AREA_CHUNK)])


def rle_iou_matrix(rles: Sequence[dict]) -> np.ndarray:
    """IoU of every pair of same-sized RLEs. Returns (N, N) float64 (pycocotools ``iou``)."""
    n = len(rles)
    if n == 0:
        return np.zeros((0, 0))
    return np.asarray(mask_utils.iou(list(rles), list(rles), [0] * n), dtype=np.float64).reshape(n, n)


def box_polygon(x: float, y: float, w: float, h: float) -> list[list[float]]:
    """A COCO ``[x, y, w, h]`` box as a one-polygon segmentation, corner order as pycocotools
    ``loadRes`` builds it for box results (used wherever a box has to stand in for a mask)."""
    return [[x, y, x, y + h, x + w, y + h, x + w, y]]


def xyxy_to_xywh(bbox_xyxy: np.ndarray) -> np.ndarray:
    """(..., 4) corners -> (..., 4) COCO ``[x, y, x2 - x1, y2 - y1]`` as float64."""
    b = np.asarray(bbox_xyxy, dtype=np.float64)
    return np.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_xyxy(bbox_xywh: np.ndarray) -> np.ndarray:
    """(..., 4) COCO ``[x, y, w, h]`` -> (..., 4) corners ``[x, y, x + w, y + h]`` as float64."""
    b = np.asarray(bbox_xywh, dtype=np.float64)
    with np.errstate(over="ignore"):  # x + w beyond float64 is inf (IEEE), not a warning
        return np.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)
