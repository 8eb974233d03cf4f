"""Masks: every segmentation form -> the same RLE as pycocotools, boxes both ways."""
from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from ochuman import masks


def test_polygons_with_holes():
    square = [2, 2, 17, 2, 17, 17, 2, 17]
    hole = [6, 6, 11, 6, 11, 11, 6, 11]
    rle = masks.holed_polygons_to_rle(masks.Polygons((square,), (hole,)), 20, 30)
    bitmap = masks.rle_to_bitmap(rle)
    full = mask_utils.decode(mask_utils.frPyObjects([square], 20, 30))[..., 0]
    cut = mask_utils.decode(mask_utils.frPyObjects([hole], 20, 30))[..., 0]
    np.testing.assert_array_equal(bitmap, full & (1 - cut))
    assert isinstance(rle["counts"], str) and rle["size"] == [20, 30]
    assert masks.rle_area([rle])[0] == bitmap.sum() > 0


def test_every_form_gives_the_same_rle():
    bitmap = np.zeros((12, 9), np.uint8)
    bitmap[3:8, 2:6] = 1
    rle = masks.bitmap_to_rle(bitmap)
    uncompressed = {"size": [12, 9], "counts": []}
    flat = bitmap.flatten(order="F")
    runs, value, count = [], 0, 0
    for pixel in flat:
        if pixel != value:
            runs.append(count)
            value, count = pixel, 0
        count += 1
    runs.append(count)
    uncompressed["counts"] = runs
    assert masks.segmentation_to_rle(uncompressed, 12, 9) == rle
    assert masks.segmentation_to_rle(rle, 12, 9) == rle
    byte_counts = {"size": [12, 9], "counts": rle["counts"].encode()}
    assert masks.segmentation_to_rle(byte_counts, 12, 9) == rle
    assert masks.segmentation_to_rle([], 12, 9) == masks.empty_rle(12, 9)
    assert masks.rle_iou_matrix([rle, rle]).tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_box_layouts_round_trip():
    xyxy = np.array([[1.0, 2.0, 11.0, 7.0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(masks.xyxy_to_xywh(xyxy), [[1, 2, 10, 5], [0, 0, 0, 0]])
    np.testing.assert_array_equal(masks.xywh_to_xyxy(masks.xyxy_to_xywh(xyxy)), xyxy)


def _many_rles(n: int, height: int = 24, width: int = 31) -> list[dict]:
    """n distinct compressed RLEs (rectangles of growing size, some empty)."""
    rles = []
    for k in range(n):
        bitmap = np.zeros((height, width), np.uint8)
        bitmap[k % height:, :k % width] = 1
        rles.append(masks.bitmap_to_rle(bitmap))
    return rles


def test_area_of_many_masks_equals_pycocotools_mask_by_mask():
    # pycocotools 2.0.11's mask.area builds a uint8 array of the count: 256+ masks raised
    # OverflowError under numpy 2
    rles = _many_rles(300)
    expected = [int(mask_utils.area(rle)) for rle in rles]
    assert masks.rle_area(rles).tolist() == expected
    assert masks.rle_area(rles[:255]).tolist() == expected[:255]
    assert masks.rle_area(rles[:256]).tolist() == expected[:256]


def test_iou_matrix_of_many_masks_equals_pycocotools():
    rles = _many_rles(300)
    expected = np.asarray(mask_utils.iou(rles, rles, [0] * len(rles)))
    np.testing.assert_array_equal(masks.rle_iou_matrix(rles), expected)


def test_coordinates_pycocotools_cannot_draw_raise():
    """pycocotools draws at 5 times the scale as C ints: DRAWABLE_LIMIT is the last coordinate
    whose 5 x + 0.5 fits; past it (and for NaN) polygon_masks raises instead of handing it over
    (where pycocotools never returns)."""
    import math

    import pytest

    limit = masks.DRAWABLE_LIMIT
    assert 5 * limit + 0.5 <= 2 ** 31 - 1 < 5 * math.nextafter(limit, math.inf) + 0.5
    masks.check_drawable([2.0, limit, 12.0, -limit, 12.0, 12.0])
    for value in (math.nextafter(limit, math.inf), -math.nextafter(limit, math.inf), math.nan, math.inf, None):
        with pytest.raises(OverflowError, match="polygon coordinate"):
            masks.polygon_masks([[[2.0, value, 12.0, 2.0, 12.0, 12.0]]], np.array([[40, 40]]))
        table = masks.PolygonTable.from_lists([[[1.0, 1.0, 5.0, 1.0, 5.0, 5.0]], [[2.0, 2.0, 12.0, 2.0, 12.0, 12.0]]])
        assert table.first_undrawable() is None
        xy = table.xy.copy()
        xy[7] = np.nan if value is None else value
        assert masks.PolygonTable(xy, table.point_start, table.polygon_start).first_undrawable() == 1
