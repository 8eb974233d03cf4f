"""Polygon rasterisation (:func:`ochuman.masks.polygon_masks`, the compiled core's poly.c)
against pycocotools: ``frPyObjects`` + ``merge`` of each object's polygons gives the same
compressed RLE bytes, degenerate polygons included."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from ochuman import masks


def pycocotools_counts(polygons: list, height: int, width: int) -> str:
    rles = mask_utils.frPyObjects([list(p) for p in polygons], height, width)
    rle = rles[0] if len(rles) == 1 else mask_utils.merge(rles, intersect=False)
    return rle["counts"].decode("ascii")


def assert_as_pycocotools(objects: list, sizes: list) -> None:
    table = masks.polygon_masks(objects, np.array(sizes, dtype=np.int64).reshape(-1, 2))
    expected = [pycocotools_counts(p, h, w) if p else masks.empty_rle(h, w)["counts"]
                for p, (h, w) in zip(objects, sizes)]
    assert list(table) == expected


NAMED = {
    "triangle": [[1.0, 1.0, 8.0, 2.0, 4.0, 7.0]],
    "half_fractions": [[0.5, 0.5, 7.5, 0.5, 7.5, 6.5, 0.5, 6.5]],
    "two_points": [[1.0, 1.0, 6.0, 5.0, 2.0, 2.0], [3.0, 3.0, 7.0, 1.0]],
    "one_point": [[1.0, 1.0, 6.0, 5.0, 2.0, 2.0], [3.0, 3.0]],
    "no_point": [[1.0, 1.0, 6.0, 5.0, 2.0, 2.0], []],
    "odd_coordinate_count": [[1.0, 1.0, 6.0, 5.0, 2.0, 7.0, 9.0]],
    "duplicate_points": [[2.0, 2.0, 2.0, 2.0, 6.0, 2.0, 6.0, 2.0, 6.0, 6.0, 6.0, 6.0]],
    "outside_image": [[-5.0, -3.0, 40.0, -2.0, 35.0, 30.0, -4.0, 25.0]],
    "negative": [[-9.0, -9.0, -1.0, -9.0, -4.0, -1.0]],
    "huge": [[-1e5, -2e5, 3e5, 5.5, 7.25, 1e5]],
    "overlapping_pair": [[0.0, 0.0, 6.0, 0.0, 6.0, 6.0, 0.0, 6.0], [3.0, 3.0, 9.0, 3.0, 9.0, 9.0, 3.0, 9.0]],
    "disjoint_three": [[0, 0, 2, 0, 1, 2], [5, 5, 8, 5, 6, 8], [1, 7, 3, 9, 0, 9]],
    "touching_bottom_right": [[0.0, 0.0, 12.0, 0.0, 12.0, 10.0, 0.0, 10.0]],
    "on_pixel_centres": [[1.0, 1.0, 5.0, 1.0, 5.0, 5.0, 1.0, 5.0]],
    "first_in_column_zero": [[0.0, 0.0, 0.0, 9.0, 3.0, 9.0]],
}


@pytest.mark.parametrize("name", NAMED)
def test_named_polygons_as_pycocotools(name):
    assert_as_pycocotools([NAMED[name]], [(10, 12)])


def test_many_objects_in_one_call_as_pycocotools():
    objects = list(NAMED.values()) * 40 + [[]]
    sizes = [(10 + k % 7, 12 + k % 5) for k in range(len(objects))]
    assert_as_pycocotools(objects, sizes)


def test_an_image_without_pixels_goes_to_pycocotools():
    """Height or width 0 (where pycocotools' merge never ends): pycocotools' own result."""
    assert_as_pycocotools([[[1.0, 1.0, 3.0, 1.0, 2.0, 2.0]], [[1.0, 1.0, 3.0, 1.0, 2.0, 2.0]], []], [(0, 5), (4, 0), (3, 3)])


def test_polygons_to_rle_is_the_table_entry():
    rle = masks.polygons_to_rle(NAMED["overlapping_pair"], 10, 12)
    assert rle == {"size": [10, 12], "counts": pycocotools_counts(NAMED["overlapping_pair"], 10, 12)}


@pytest.mark.parametrize("first", [[1.0, 1.0, 5.0, 4.0], [1.0, 1.0, 5.0]])
def test_a_first_polygon_of_four_numbers_or_fewer_is_left_to_pycocotools(first):
    """frPyObjects reads a list whose first polygon has 4 numbers as boxes (and refuses such a
    list of lists) and refuses fewer: the same error as pycocotools (the readers refuse such
    polygons before)."""
    polygons = [first, [2.0, 0.0, 3.0, 3.0, 1.0, 1.0]]
    with pytest.raises(Exception) as expected:
        pycocotools_counts(polygons, 8, 8)
    with pytest.raises(type(expected.value)):
        masks.polygon_masks([[[1.0, 1.0, 6.0, 5.0, 2.0, 2.0]], polygons], np.array([(8, 8), (8, 8)]))


def test_coordinates_past_the_kernel_limit_go_to_pycocotools(monkeypatch):
    """Past the limit (2^27, where 5 x would overflow an int) pycocotools computes the object;
    shown with the limit lowered, so that pycocotools can still walk the edges."""
    monkeypatch.setattr(masks, "_COORDINATE_LIMIT", 50.0)
    objects = [[[1.0, 1.0, 6.0, 5.0, 2.0, 2.0]], [[1.0, 1.0, 80.0, 5.0, 2.0, 7.0]]]
    assert_as_pycocotools(objects, [(8, 9), (8, 9)])


coordinate = st.one_of(
    st.floats(-20, 60, allow_nan=False, width=64),
    st.integers(-20, 60).map(lambda v: v + 0.5),
    st.integers(-20, 60).map(float),
    st.floats(-3000, 3000, allow_nan=False),
)


@st.composite
def polygon(draw):
    points = draw(st.integers(0, 9))
    flat = draw(st.lists(coordinate, min_size=2 * points, max_size=2 * points))
    if points > 1 and draw(st.booleans()):  # a repeated point
        k = draw(st.integers(0, points - 2))
        flat[2 * k + 2:2 * k + 4] = flat[2 * k:2 * k + 2]
    return flat


@st.composite
def obj(draw):
    first = draw(st.lists(coordinate, min_size=6, max_size=20).filter(lambda p: len(p) % 2 == 0))
    return [first, *draw(st.lists(polygon(), max_size=3))]


@pytest.mark.differential
@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(obj(), st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=8))
def test_random_polygons_as_pycocotools(drawn):
    assert_as_pycocotools([o for o, _, _ in drawn], [(h, w) for _, h, w in drawn])


@pytest.mark.differential
@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.one_of(obj(), st.just([])), st.integers(1, 50), st.integers(1, 50)), min_size=1, max_size=8))
def test_objects_past_a_lowered_limit_go_to_pycocotools_among_others(drawn):
    """With the limit lowered to 30, exactly the objects with a coordinate past it are left to
    pycocotools (among objects without polygons), the others drawn by the kernel: the same strings."""
    objects = [o for o, _, _ in drawn]
    routed = []
    original = masks._pycocotools_polygons
    with mock.patch.object(masks, "_COORDINATE_LIMIT", 30.0), \
            mock.patch.object(masks, "_pycocotools_polygons", lambda p, h, w: routed.append(p) or original(p, h, w)):
        assert_as_pycocotools(objects, [(h, w) for _, h, w in drawn])
    # (an odd trailing number is no coordinate: pycocotools drops it)
    past = [o for o in objects if any(abs(v) > 30 for p in o for v in p[:len(p) // 2 * 2])]
    assert routed == past


def test_taking_every_polygon_in_order_shares_the_numbers():
    """take() of objects holding every polygon in order (objects without polygons left out or
    not) keeps the table's coordinates, and reads as the lists."""
    from ochuman.masks import PolygonTable

    objects = [[[1.0, 2.0, 9.0, 2.0, 5.0, 8.0]], [], [[0.0, 0.0, 4.0, 0.0, 4.0, 4.0], [6.0, 6.0, 9.0, 6.0, 9.0, 9.0]], []]
    table = PolygonTable.from_lists(objects)
    for picked in ([0, 2], [0, 1, 2, 3], [0, 1, 2]):
        taken = table.take(np.array(picked))
        assert taken.xy is table.xy
        assert [taken.polygons(k) for k in range(len(picked))] == [objects[i] for i in picked]
    assert table.take(np.array([2, 0])).xy is not table.xy  # another order: gathered


def test_polygon_table_takes_and_draws_as_the_lists():
    """PolygonTable: gathered objects keep their polygons, and draw as polygon_masks draws the lists."""
    from ochuman.masks import PolygonTable, polygon_masks

    rng = np.random.default_rng(4)
    objects = [[list(rng.uniform(0, 40, 2 * rng.integers(3, 7))) for _ in range(rng.integers(0, 4))]
               for _ in range(9)]
    table = PolygonTable.from_lists(objects)
    assert len(table) == 9 and table.present.tolist() == [bool(o) for o in objects]
    picked = np.array([8, 0, 3, 3, 5])
    taken = table.take(picked)
    assert [taken.polygons(k) for k in range(len(picked))] == [objects[i] for i in picked]
    sizes = np.tile([[37, 41]], (len(picked), 1))
    assert list(taken.masks(sizes)) == list(polygon_masks([objects[i] for i in picked], sizes))
    assert len(table.take(np.zeros(0, dtype=np.int64))) == 0


@pytest.mark.differential
def test_steep_long_edges_as_pycocotools():
    """Edges far longer in y than in x (the walk that looks only for column moves), at image
    sizes up to 700 px, coordinates at several scales and roundings."""
    rng = np.random.default_rng(7)
    objects, sizes = [], []
    for _ in range(400):
        polygons = []
        for _ in range(int(rng.integers(1, 4))):
            m = int(rng.integers(3, 12))
            scale = float(rng.choice([1, 10, 100, 1000]))
            flat = rng.uniform(-0.2 * scale, scale, 2 * m)
            if rng.random() < 0.3:
                flat = np.round(flat, int(rng.integers(0, 3)))
            if rng.random() < 0.5:
                flat[0::2] = flat[0] + rng.uniform(-3, 3, m)  # near-vertical edges
            polygons.append(flat.tolist())
        objects.append(polygons)
        sizes.append((int(rng.integers(1, 700)), int(rng.integers(1, 700))))
    assert_as_pycocotools(objects, sizes)


@pytest.mark.differential
def test_steep_edges_whose_column_moves_fall_on_whole_steps_as_pycocotools():
    """Steep edges on the 1/5 pixel grid whose slope makes x + .5 land exactly on whole columns
    at some steps (ties of the rounding), rising and falling, crossing at the first and the last
    step: the kernel's guess of each column move, corrected by the exact test, as pycocotools."""
    rng = np.random.default_rng(11)
    objects, sizes = [], []
    for _ in range(300):
        polygons = []
        for _ in range(int(rng.integers(1, 4))):
            m = int(rng.integers(3, 9))
            dx = rng.integers(-6, 7, m)  # grid steps along x
            dy = dx * rng.integers(2, 9, m) + rng.integers(-1, 2, m) * rng.integers(0, 2, m)
            dy = np.where(np.abs(dy) <= np.abs(dx), np.abs(dx) + 1, np.abs(dy)) * rng.choice([-1, 1], m)
            x = (rng.integers(0, 200) + np.cumsum(dx)) / 5 + rng.choice([0.0, 0.1, -0.1, 1e-9])
            y = (rng.integers(0, 200) + np.cumsum(dy)) / 5
            polygons.append(np.c_[x, y].ravel().tolist())
        objects.append(polygons)
        sizes.append((int(rng.integers(20, 120)), int(rng.integers(20, 120))))
    assert_as_pycocotools(objects, sizes)
