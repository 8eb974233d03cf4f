"""ochuman.vis: overlays change the right pixels and nothing else, figures show the numbers of
ochuman.stats, and ``ochuman show`` writes real pictures or fails in one line.

Oracles: the dataset's own masks, boxes and keypoints (which pixels may change), matplotlib's
colormap (which colour), :func:`ochuman.stats.dataset_stats` (which numbers), OpenCV decoding the
written files (what was written).
"""
from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest
from click.testing import CliRunner

import ochuman
from cli.ochuman_cmd import main
from ochuman import vis
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from ochuman.errors import ImageNotFoundError, OCHumanError
from ochuman.keypoints import (
    COCO_KEYPOINT_NAMES, COCO_SKELETON, OCHUMAN_KEYPOINT_NAMES, OCHUMAN_SKELETON, OCHUMAN_VISIBILITY_CODES,
)
from ochuman.masks import rle_to_bitmap, xywh_to_xyxy
from ochuman.stats import dataset_stats

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SAMPLE_IMAGE_COUNT = 10

# click < 8.2 mixes stderr into stdout unless told not to; 8.2+ always keeps both apart.
_RUNNER_KWARGS = (
    {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters else {}
)


# ---------------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def sample():
    return ochuman.load(SAMPLE_ANNOTATIONS)


@pytest.fixture(scope="module")
def pixels(sample):
    return [sample.read_image(k) for k in range(len(sample.images))]


@pytest.fixture(scope="module")
def perfect_results(sample) -> list[dict]:
    """Every person of the official val file (rebuilt from the sample) as a detection."""
    coco = ochuman.to_coco(sample, "val")
    out = []
    for k, ann in enumerate(coco["annotations"]):
        keypoints = [float(v) for v in ann["keypoints"]]
        keypoints[2::3] = [1.0] * (len(keypoints) // 3)
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": round(0.99 - 0.01 * k, 2),
                    "bbox": [float(v) for v in ann["bbox"]], "segmentation": ann["segmentation"],
                    "keypoints": keypoints})
    return out


def _changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    return (before != after).any(axis=2)


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _shrink(mask: np.ndarray, px: int) -> np.ndarray:
    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel) > 0


def _persons_of(dataset, k: int) -> np.ndarray:
    return np.flatnonzero(dataset.image_index == k)


def _mask_union(dataset, k: int) -> np.ndarray:
    image = dataset.images[k]
    union = np.zeros((image.height, image.width), dtype=bool)
    for i in _persons_of(dataset, k):
        if dataset.has_mask[i]:
            union |= rle_to_bitmap(dataset.rle(i)) > 0
    return union


def _colormap_bgr(value: float, cmap: str = "plasma") -> np.ndarray:
    """The oracle colour: matplotlib's colormap at ``value``, as BGR bytes."""
    r, g, b, _ = matplotlib.colormaps[cmap](value)
    return np.round(np.array([b, g, r]) * 255).astype(np.uint8)


def _native(persons: list[dict], width: int = 200, height: int = 200) -> ochuman.Dataset:
    """A one-image native dataset: persons are dicts with bbox [x1, y1, x2, y2], max_iou and
    optionally keypoints {ochuman index: (x, y, code)} and an outer polygon."""
    annotations = []
    for p in persons:
        keypoints = None
        if "keypoints" in p:
            keypoints = [0] * 57
            for j, (x, y, v) in p["keypoints"].items():
                keypoints[3 * j:3 * j + 3] = [x, y, v]
        segms = {"outer": [p["polygon"]], "inner": [], "width": width, "height": height} if "polygon" in p else None
        annotations.append({"bbox": p["bbox"], "max_iou": p["max_iou"], "keypoints": keypoints, "segms": segms,
                            "links": {"kpts": None, "segms": None}})
    return ochuman.parse({
        "keypoint_names": list(OCHUMAN_KEYPOINT_NAMES), "keypoint_visible": OCHUMAN_VISIBILITY_CODES,
        "images": [{"file_name": "synthetic.jpg", "image_id": "1", "width": width, "height": height,
                    "annotations": annotations}],
    }, source="synthetic.json")


def _coco_one_person(keypoints: dict, bbox=(0, 0, 100, 100), size=200) -> ochuman.Dataset:
    """A one-image COCO dataset with one person; keypoints {coco index: (x, y, v)}."""
    flat = [0.0] * 51
    for j, (x, y, v) in keypoints.items():
        flat[3 * j:3 * j + 3] = [x, y, v]
    return ochuman.parse({
        "images": [{"id": 1, "file_name": "synthetic.jpg", "width": size, "height": size}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": list(bbox), "area": 1.0,
                         "iscrowd": 0, "keypoints": flat, "num_keypoints": len(keypoints),
                         "segmentation": [[10, 10, 90, 10, 90, 90, 10, 90]]}],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO_KEYPOINT_NAMES),
                        "skeleton": [list(p) for p in COCO_SKELETON]}],
    }, source="synthetic_coco.json")


def _black(dataset) -> np.ndarray:
    image = dataset.images[0]
    return np.zeros((image.height, image.width, 3), np.uint8)


# ----------------------------------------------------------------------------- draw_persons
def test_draw_persons_returns_a_new_array_and_leaves_the_input_untouched(sample, pixels):
    image = pixels[4]
    before = image.copy()
    out = vis.draw_persons(image, sample, 4)
    assert out is not image and not np.shares_memory(out, image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(image, before)
    assert _changed(image, out).any()


@pytest.mark.parametrize("k", range(SAMPLE_IMAGE_COUNT))
def test_masks_change_the_pixels_inside_the_masks_and_nowhere_else(sample, pixels, k):
    out = vis.draw_persons(pixels[k], sample, k, masks=True, skeleton=False, boxes=False, labels=False)
    changed = _changed(pixels[k], out)
    union = _mask_union(sample, k)
    # the Sobel edge reaches one pixel outside a mask; allow two
    assert not (changed & ~_grow(union, 2)).any(), "pixels changed away from every mask"
    inside = _shrink(union, 2)
    if inside.any():
        assert changed[inside].mean() > 0.97
    else:
        assert not changed.any()


def test_a_mask_is_filled_with_the_ochumanapi_blend_of_its_max_iou_colour(sample, pixels):
    for i in np.flatnonzero(sample.has_mask):
        k = int(sample.image_index[i])
        out = vis.draw_persons(pixels[k], sample, k, persons=[i], skeleton=False, boxes=False, labels=False)
        colour = _colormap_bgr(sample.occlusion[i]).astype(np.float64)
        mask = rle_to_bitmap(sample.rle(i)) > 0
        inside = _shrink(mask, 2)
        expected = (pixels[k][inside] * 0.8 + colour * 0.2).astype(np.uint8)
        np.testing.assert_array_equal(out[inside], expected)
        # the (Sobel) edge: 0.2 * image + 0.8 * colour, so within 0.2 * 255 of the colour; a
        # boundary pixel between symmetric neighbours (a 1-px spur) has no gradient: allow a few
        edge = mask & ~_shrink(mask, 1)
        assert (np.abs(out[edge].astype(int) - colour).max(axis=1) <= 0.2 * 255 + 1).mean() > 0.95


@pytest.mark.parametrize("k", range(SAMPLE_IMAGE_COUNT))
def test_boxes_change_only_their_3px_outlines(sample, pixels, k):
    out = vis.draw_persons(pixels[k], sample, k, masks=False, skeleton=False, boxes=True, labels=False)
    changed = _changed(pixels[k], out)
    image = sample.images[k]
    outlines = np.zeros((image.height, image.width), np.uint8)
    for i in _persons_of(sample, k):
        x1, y1, x2, y2 = (int(round(v)) for v in xywh_to_xyxy(sample.bbox_xywh[i]))
        cv2.rectangle(outlines, (x1, y1), (x2, y2), 1, 3)
    assert not (changed & ~(outlines > 0)).any(), "pixels changed off the box outlines"
    assert changed[outlines > 0].mean() > 0.95


@pytest.mark.parametrize("k", range(SAMPLE_IMAGE_COUNT))
def test_skeletons_change_pixels_only_around_the_labelled_keypoints(sample, pixels, k):
    out = vis.draw_persons(pixels[k], sample, k, masks=False, skeleton=True, boxes=False, labels=False)
    changed = _changed(pixels[k], out)
    image = sample.images[k]
    allowed = np.zeros((image.height, image.width), bool)
    centres = []
    for i in _persons_of(sample, k):
        if not sample.has_keypoints[i]:
            continue
        kpts = sample.keypoints_ochuman[i]
        labelled = kpts[kpts[:, 2] > 0, :2]
        if not len(labelled):
            continue
        centres += [tuple(int(round(v)) for v in p) for p in labelled]
        x1, y1 = np.floor(labelled.min(axis=0)).astype(int) - 16  # radius 10 + ring 4 + 2
        x2, y2 = np.ceil(labelled.max(axis=0)).astype(int) + 16
        allowed[max(y1, 0):max(y2, 0) + 1, max(x1, 0):max(x2, 0) + 1] = True
    assert not (changed & ~allowed).any(), "pixels changed away from every skeleton"
    inside = [changed[y, x] for x, y in centres if 0 <= x < image.width and 0 <= y < image.height]
    if centres:
        assert np.mean(inside) > 0.95
    else:
        assert not changed.any()


def test_each_person_is_drawn_in_the_colormap_colour_of_its_max_iou(sample, pixels):
    checked = 0
    for i in np.flatnonzero(sample.has_keypoints):
        k = int(sample.image_index[i])
        out = vis.draw_persons(pixels[k], sample, k, persons=[i], masks=False, boxes=False, labels=False)
        kpts = sample.keypoints_ochuman[i]
        centres = np.round(kpts[kpts[:, 2] > 0, :2]).astype(int)
        colour = _colormap_bgr(sample.occlusion[i])
        image = sample.images[k]
        hits = [np.array_equal(out[y, x], colour) for x, y in centres if 0 <= x < image.width and 0 <= y < image.height]
        assert np.mean(hits) > 0.8, (i, colour)
        checked += 1
    assert checked == int(sample.has_keypoints.sum())
    # the most occluded persons are the brightest (plasma: dark blue -> yellow)
    lo, hi = vis.max_iou_colors(np.array([0.1, 0.95]))
    assert cv2.cvtColor(hi[None, None], cv2.COLOR_BGR2GRAY) > cv2.cvtColor(lo[None, None], cv2.COLOR_BGR2GRAY)
    assert tuple(vis.max_iou_colors(np.array([np.nan]))[0]) == vis.GREY


def test_the_two_persons_of_a_pair_share_a_max_iou_colour_but_not_a_skeleton_colour(sample, pixels):
    k = 0
    pair = _persons_of(sample, k)
    assert len(pair) == 2 and sample.occlusion[pair[0]] == sample.occlusion[pair[1]]
    out = vis.draw_persons(pixels[k], sample, k, masks=False, boxes=False, labels=False)
    colours = []
    for i in pair:
        kpts = sample.keypoints_ochuman[i]
        x, y = np.round(kpts[kpts[:, 2] > 0][0, :2]).astype(int)
        colours.append(tuple(out[y, x]))
    assert colours[0] != colours[1]
    assert tuple(_colormap_bgr(sample.occlusion[pair[0]])) in colours


@pytest.mark.parametrize("k", range(SAMPLE_IMAGE_COUNT))
def test_full_drawing_changes_nothing_far_from_the_persons(sample, pixels, k):
    out = vis.draw_persons(pixels[k], sample, k)
    changed = _changed(pixels[k], out)
    image = sample.images[k]
    near = np.zeros((image.height, image.width), bool)
    for i in _persons_of(sample, k):
        x1, y1, x2, y2 = xywh_to_xyxy(sample.bbox_xywh[i])
        pts = [(x1, y1), (x2, y2)]
        if sample.has_keypoints[i]:
            kpts = sample.keypoints_ochuman[i]
            pts += [tuple(p) for p in kpts[kpts[:, 2] > 0, :2]]
        pts = np.array(pts)
        lo = np.floor(pts.min(axis=0)).astype(int) - 60  # label chips sit above the box
        hi = np.ceil(pts.max(axis=0)).astype(int) + 16
        near[max(lo[1], 0):max(hi[1], 0) + 1, max(lo[0], 0):max(hi[0], 0) + 1] = True
    assert changed.any()
    assert not (changed & ~near).any()


def test_native_visibility_codes_are_drawn_differently():
    # no limb joins right_wrist (2), left_wrist (5) and right_ankle (8) once elbows/knees are
    # missing; codes 1 (visible), 2 (self-occluded: adds a square), 3 (by others: adds a ring)
    d = _native([{"bbox": [0, 0, 100, 100], "max_iou": 0.6,
                  "keypoints": {2: (40, 40, 1), 5: (100, 100, 2), 8: (160, 160, 3)}}])
    out = vis.draw_persons(_black(d), d, 0, masks=False, boxes=False, labels=False)
    r = 5  # f = sqrt(100 * 100 / (200 * 200)) = 0.5 -> radius clamp(int(5), 4, 10)
    lit = (out > 0).any(axis=2)
    for x, y in ((40, 40), (100, 100), (160, 160)):
        assert lit[y, x] and lit[y, x + r - 1]  # filled disc
    # the square's corner is at (r + 3, r + 3) from the centre; the ring (radius r + 4) passes
    # through (6, 6) for r = 5, which is inside the square but off its border
    corner, ring = (r + 3, r + 3), (6, 6)
    for (x, y), square, circle in (((40, 40), False, False), ((100, 100), True, False), ((160, 160), False, True)):
        assert lit[y - corner[1], x - corner[0]] == square and lit[y + corner[1], x + corner[0]] == square
        assert lit[y + ring[1], x + ring[0]] == circle and lit[y - ring[1], x - ring[0]] == circle
    assert not lit[70, 70] and not lit[130, 130]  # no limbs between unconnected points


def test_native_limbs_join_connected_keypoints():
    # OCHuman limb (1, 2): right_shoulder - right_elbow
    d = _native([{"bbox": [0, 0, 100, 100], "max_iou": 0.6, "keypoints": {0: (40, 100, 1), 1: (160, 100, 1)}}])
    assert (1, 2) in OCHUMAN_SKELETON
    out = vis.draw_persons(_black(d), d, 0, masks=False, boxes=False, labels=False)
    lit = (out > 0).any(axis=2)
    assert lit[100, 60:140].all()  # along the limb
    assert not lit[100 - 12, 60:140].any()  # half-width clamp(int(5 * 0.5), 2, 10) = 2 px


def test_coco_invisible_keypoints_are_hollow_and_visible_ones_filled():
    # nose (0) joins only the eyes, left_ankle (15) only the left knee: none of them labelled
    d = _coco_one_person({0: (40, 40, 1), 15: (150, 150, 2)})
    out = vis.draw_persons(_black(d), d, 0, masks=False, boxes=False, labels=False)
    lit = (out > 0).any(axis=2)
    r = 5
    assert not lit[40, 40] and lit[40, 40 + r]  # v = 1: a hollow circle
    assert lit[150, 150] and lit[150, 150 + r - 1]  # v = 2: a filled disc


@pytest.mark.parametrize("box, radius", [([0, 0, 200, 200], 10), ([0, 0, 100, 100], 5), ([0, 0, 20, 20], 4)])
def test_keypoint_radius_is_clamped_10f_of_the_box_size(box, radius):
    d = _native([{"bbox": box, "max_iou": 0.6, "keypoints": {2: (100, 100, 1)}}])
    out = vis.draw_persons(_black(d), d, 0, masks=False, boxes=False, labels=False)
    lit = (out > 0).any(axis=2)
    assert lit[100, 100 + radius - 1] and lit[100, 100 - radius + 1]
    assert not lit[100, 100 + radius + 2] and not lit[100, 100 - radius - 2]


def test_draw_persons_checks_its_arguments(sample, pixels):
    with pytest.raises(ValueError, match="color_by"):
        vis.draw_persons(pixels[0], sample, 0, color_by="nonsense")
    with pytest.raises(OCHumanError, match="000001.*409 x 300"):
        vis.draw_persons(pixels[1], sample, 0)
    with pytest.raises(ValueError, match="not in image"):
        vis.draw_persons(pixels[0], sample, 0, persons=[int(_persons_of(sample, 1)[0])])
    by_person = vis.draw_persons(pixels[0], sample, 0, color_by="person")
    assert by_person.shape == pixels[0].shape


# --------------------------------------------------------------------------------- histogram
def _bars(fig):
    (ax,) = fig.axes
    (container,) = ax.containers
    return ax, container.patches


@pytest.mark.parametrize("filter_name", [None, "kpt&segm"])
@pytest.mark.parametrize("bins", [20, 7])
def test_histogram_bars_equal_the_table_1_statistics(sample, filter_name, bins):
    dataset = sample.filter_persons(filter_name)
    stats = dataset_stats(dataset)
    ax, bars = _bars(vis.max_iou_histogram(dataset, bins=bins))
    heights = np.array([b.get_height() for b in bars])
    lefts = np.array([b.get_x() for b in bars])
    assert heights.sum() == stats["persons"]
    assert heights[lefts >= 0.5 - 1e-12].sum() == stats["persons_oc50"]
    assert heights[lefts >= 0.75 - 1e-12].sum() == stats["persons_oc75"]
    title = ax.get_title()
    assert f"{stats['persons']} persons" in title
    assert f"> 0.5: {stats['persons_oc50']} ({stats['pct_oc50']:.1f}%)" in title
    assert f"> 0.75: {stats['persons_oc75']} ({stats['pct_oc75']:.1f}%)" in title
    assert f"mean {stats['mean_max_iou']:.3f}" in title
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"moderate [0.5, 0.75): {stats['moderate']}" in legend
    assert f"hard [0.75, 1]: {stats['hard']}" in legend
    spans = {(round(p.get_x(), 6), round(p.get_x() + p.get_width(), 6)) for p in ax.patches if p not in bars}
    assert {(0.5, 0.75), (0.75, 1.0)} <= spans


def test_histogram_counts_values_on_the_edges_as_table_1_does():
    values = [0.0, 0.3, 0.5, 0.5, 0.6, 0.75, 0.76, 1.0]
    d = _native([{"bbox": [0, 0, 10 + j, 10], "max_iou": v} for j, v in enumerate(values)])
    stats = dataset_stats(d)
    assert (stats["persons_oc50"], stats["persons_oc75"]) == (4, 2)
    _, bars = _bars(vis.max_iou_histogram(d))
    heights = np.array([b.get_height() for b in bars])
    lefts = np.array([b.get_x() for b in bars])
    assert heights.sum() == 8
    assert heights[lefts >= 0.5 - 1e-12].sum() == 4  # 0.5 itself is not "> 0.5"
    assert heights[lefts >= 0.75 - 1e-12].sum() == 2
    with pytest.raises(ValueError, match="bins"):
        vis.max_iou_histogram(d, bins=0)


# ------------------------------------------------------------------------------ hardest grid
def _first_line_values(fig) -> list[float]:
    titled = [ax for ax in fig.axes if ax.get_title()]
    return [float(ax.get_title().splitlines()[0].removeprefix("MaxIoU ")) for ax in titled]


@pytest.mark.parametrize("n", [1, 5, 8])
def test_hardest_grid_shows_the_top_n_max_iou_hardest_first(sample, n):
    fig = vis.hardest_grid(sample, n)
    values = _first_line_values(fig)
    expected = np.sort(sample.occlusion[sample.has_mask & ~sample.iscrowd])[::-1][:n]
    assert values == sorted(values, reverse=True)
    np.testing.assert_allclose(values, np.round(expected, 3), atol=5e-4)
    assert all(ax.get_title().startswith("MaxIoU ") for ax in fig.axes if ax.get_title())


def test_hardest_grid_crops_around_each_person_and_draws_it(sample, pixels):
    chosen = vis.hardest_persons(sample, 4)
    cropped = vis.hardest_grid(sample, 4)
    whole = vis.hardest_grid(sample, 4, crop=False)
    for ax_crop, ax_whole, i in zip(cropped.axes, whole.axes, chosen):
        k = int(sample.image_index[i])
        image = sample.images[k]
        assert ax_crop.get_title().endswith(image.file_name)
        shown_whole = np.asarray(ax_whole.images[0].get_array())[..., ::-1]
        assert shown_whole.shape == (image.height, image.width, 3)
        # drawn: pixels inside the person's mask changed, none far outside its box
        changed = _changed(pixels[k], shown_whole)
        mask = rle_to_bitmap(sample.rle(i)) > 0
        assert changed[_shrink(mask, 2)].mean() > 0.97
        shown_crop = np.asarray(ax_crop.images[0].get_array())
        x, y, w, h = sample.bbox_xywh[i]
        assert shown_crop.shape[0] <= min(image.height, int(np.ceil(h * 1.3)) + 2)
        assert shown_crop.shape[1] <= min(image.width, int(np.ceil(w * 1.3)) + 2)


@pytest.mark.slow
def test_hardest_grid_takes_every_masked_person_at_most(sample):
    fig = vis.hardest_grid(sample, 100)
    assert len(_first_line_values(fig)) == int((sample.has_mask & ~sample.iscrowd).sum())


def test_hardest_grid_names_a_missing_image(sample, tmp_path):
    with pytest.raises(ImageNotFoundError, match="000005.jpg"):
        vis.hardest_grid(sample, 2, images_dir=tmp_path)
    no_masks = _native([{"bbox": [0, 0, 10, 10], "max_iou": 0.9}])
    with pytest.raises(OCHumanError, match="no person with a mask"):
        vis.hardest_grid(no_masks, 3)


# ------------------------------------------------------------------------------ side by side
def test_results_for_image_uses_official_ids_file_names_and_native_ids(sample, perfect_results):
    total = 0
    for k in range(len(sample.images)):
        mine = vis.results_for_image(perfect_results, sample, k)
        official = np.flatnonzero((sample.image_index == k) & sample.has_mask & sample.has_keypoints
                                  & (sample.max_iou < 1.0))
        assert len(mine) == len(official)
        total += len(mine)
    assert total == len(perfect_results)
    image = sample.images[3]
    by_name = [{**r, "image_id": image.file_name} for r in perfect_results[:2]]
    by_native_id = [{**r, "image_id": image.image_id} for r in perfect_results[:2]]
    assert vis.results_for_image(by_name, sample, 3) == by_name
    assert vis.results_for_image(by_native_id, sample, 3) == by_native_id
    assert vis.results_for_image(by_name, sample, 2) == []


def test_results_for_image_numbers_images_the_official_file_drops_after_it(tmp_path):
    """An image whose every person has MaxIoU 1.0 is not in the official file; ``ochuman eval``
    numbers it after the file's images, and results keyed so are found."""
    raw = json.loads(SAMPLE_ANNOTATIONS.read_text())
    dropped = 2
    for person in raw["images"][dropped]["annotations"]:
        person["max_iou"] = 1.0
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(raw))
    data = ochuman.load(path)
    written = ochuman.to_coco(data, "val")["images"]
    assert data.images[dropped].file_name not in {im["file_name"] for im in written}
    record = {"image_id": len(written) + 1, "category_id": 1, "score": 1.0, "bbox": [0.0, 0.0, 1.0, 1.0]}
    assert vis.results_for_image([record], data, dropped) == [record]
    for k, im in enumerate(data.images):
        official = [n + 1 for n, w in enumerate(written) if w["file_name"] == im.file_name]
        keyed = [{**record, "image_id": official[0]}] if official else []
        assert vis.results_for_image(keyed, data, k) == keyed
        if k != dropped:
            assert vis.results_for_image([record], data, k) == []


def test_side_by_side_shows_ground_truth_left_and_results_right(sample, pixels, perfect_results):
    k = 4
    mine = vis.results_for_image(perfect_results, sample, k)
    fig = vis.side_by_side(pixels[k], sample, k, mine)
    assert len(fig.axes) == 2
    left, right = fig.axes
    assert left.get_title().startswith("Ground truth: 3 persons")
    assert right.get_title().startswith(f"Results: {len(mine)} of {len(mine)} with score \u2265 0.5")
    assert f"{len(mine)} on a person" in right.get_title()  # perfect results all match
    shown_left = np.asarray(left.images[0].get_array())[..., ::-1]
    np.testing.assert_array_equal(shown_left, vis.draw_persons(pixels[k], sample, k))
    shown_right = np.asarray(right.images[0].get_array())[..., ::-1]
    changed = _changed(pixels[k], shown_right)
    union = np.zeros(changed.shape, bool)
    for r in mine:
        union |= rle_to_bitmap({"size": r["segmentation"]["size"],
                                "counts": r["segmentation"]["counts"].encode()}) > 0
    assert changed[_shrink(union, 2)].mean() > 0.97
    # a matched result is painted as its person is on the left: MaxIoU colour, and for the two
    # persons of a pair (equal MaxIoU) the same one of colour / shade
    def mode_colour(panel, points):
        centres = np.round(points).astype(int)
        colours, counts = np.unique(np.array([panel[y, x] for x, y in centres]), axis=0, return_counts=True)
        return tuple(colours[np.argmax(counts)])

    persons = _persons_of(sample, k)
    right_colours = []
    for r in mine:
        (i,) = [i for i in persons if np.allclose(sample.bbox_xywh[i], r["bbox"])]
        gt = sample.keypoints_ochuman[i]
        kpts = np.array(r["keypoints"]).reshape(17, 3)
        colour = mode_colour(shown_right, kpts[(kpts[:, :2] != 0).any(axis=1), :2])
        assert colour == mode_colour(shown_left, gt[gt[:, 2] > 0, :2])
        right_colours.append(colour)
    assert len(mine) == 2 and right_colours[0] != right_colours[1]
    assert tuple(_colormap_bgr(sample.occlusion[persons[0]])) in right_colours


def test_side_by_side_threshold_hides_low_scores(sample, pixels, perfect_results):
    k = 4
    mine = vis.results_for_image(perfect_results, sample, k)
    fig = vis.side_by_side(pixels[k], sample, k, mine, score_threshold=1.5)
    right = fig.axes[1]
    assert right.get_title().startswith(f"Results: 0 of {len(mine)}")
    np.testing.assert_array_equal(np.asarray(right.images[0].get_array())[..., ::-1], pixels[k])


def test_side_by_side_greys_results_that_match_nobody(sample, pixels):
    k = 0
    stray = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [5.0, 5.0, 60.0, 60.0]}]
    fig = vis.side_by_side(pixels[k], sample, k, stray)
    assert "0 on a person" in fig.axes[1].get_title()
    shown = np.asarray(fig.axes[1].images[0].get_array())[..., ::-1]
    assert tuple(shown[35, 5]) == vis.GREY  # the box's left edge


def test_draw_results_refuses_a_mask_of_another_size(pixels):
    bad = [{"image_id": 1, "score": 0.9, "segmentation": {"size": [10, 10], "counts": "0Y1"}}]
    with pytest.raises(OCHumanError, match=r"result 0 .*segmentation size \[10, 10\]"):
        vis.draw_results(pixels[0], bad)


# ---------------------------------------------------------------------------------- writers
def test_save_figure_writes_atomically_in_the_suffix_format(sample, tmp_path):
    fig = vis.max_iou_histogram(sample)
    vis.save_figure(fig, tmp_path / "h.png")
    vis.save_figure(fig, tmp_path / "h.svg")
    assert (tmp_path / "h.png").read_bytes()[:8] == PNG_SIGNATURE
    assert b"<svg" in (tmp_path / "h.svg").read_bytes()[:1000]
    with pytest.raises(OCHumanError, match=r"h\.xyz: cannot write \.xyz"):
        vis.save_figure(fig, tmp_path / "h.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.png", "h.svg"]  # no temporary files


def test_save_image_round_trips_losslessly(sample, pixels, tmp_path):
    drawn = vis.draw_persons(pixels[0], sample, 0)
    vis.save_image(drawn, tmp_path / "d.png")
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "d.png")), drawn)
    with pytest.raises(OCHumanError, match=r"d\.pdf: cannot write \.pdf"):
        vis.save_image(drawn, tmp_path / "d.pdf")
    assert [p.name for p in tmp_path.iterdir()] == ["d.png"]


@pytest.mark.slow
def test_figures_never_load_torch():
    code = (
        "import sys; import ochuman; from ochuman import vis; from ochuman.data import SAMPLE_ANNOTATIONS as A;"
        "d = ochuman.load(A); vis.draw_persons(d.read_image(0), d, 0); vis.max_iou_histogram(d);"
        "vis.hardest_grid(d, 2);"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'pose2seg')];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -------------------------------------------------------------------------------------- CLI
def _invoke(args: list[str]):
    result = CliRunner(**_RUNNER_KWARGS).invoke(main, ["show", *map(str, args)])
    return result


def _decode(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def _assert_one_line_error(result, *fragments: str) -> str:
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"uncaught {result.exc_info[0].__name__}: {result.exception}")
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def test_cli_draws_one_image_at_its_size(sample, pixels, tmp_path):
    out = tmp_path / "one.png"
    result = _invoke([SAMPLE_ANNOTATIONS, "--images", SAMPLE_IMAGES, "--image-id", "000005", "--out", out])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 000005.jpg, 3 persons"
    image = _decode(out)
    assert image.shape == (660, 1000, 3)
    np.testing.assert_array_equal(image, vis.draw_persons(pixels[4], sample, 4))
    # a file name works as well as an id
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000005.jpg", "--out", tmp_path / "two.png"])
    assert result.exit_code == 0 and (tmp_path / "two.png").read_bytes() == out.read_bytes()


@pytest.mark.slow
def test_cli_side_by_side_with_results(perfect_results, tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(perfect_results))
    out = tmp_path / "side.png"
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000005", "--results", preds, "--out", out])
    assert result.exit_code == 0, result.stderr
    assert "ground truth beside 2 results" in result.stdout
    image = _decode(out)
    assert image.shape[1] > 1.5 * image.shape[0]  # two panels side by side


@pytest.mark.slow
def test_cli_warns_when_no_result_is_for_the_image(perfect_results, tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps([{**perfect_results[0], "image_id": 99}]))
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000005", "--results", preds, "--out", tmp_path / "s.png"])
    assert result.exit_code == 0
    assert result.stderr.startswith("Warning: ") and "000005.jpg" in result.stderr


@pytest.mark.slow
def test_cli_hardest_grid_and_histogram(tmp_path):
    out = tmp_path / "hard.png"
    result = _invoke([SAMPLE_ANNOTATIONS, "--hardest", "6", "--out", out])
    assert result.exit_code == 0, result.stderr
    assert "the 6 most occluded persons" in result.stdout
    grid = _decode(out)
    assert grid.shape[0] > 300 and grid.shape[1] > 600
    out = tmp_path / "hist.png"
    result = _invoke([SAMPLE_ANNOTATIONS, "--histogram", "--out", out])
    assert result.exit_code == 0, result.stderr
    assert "of 16 persons" in result.stdout  # kpt&segm by default, as ochuman stats
    assert _decode(out).shape[2] == 3
    result = _invoke([SAMPLE_ANNOTATIONS, "--histogram", "--filter", "none", "--out", out])
    assert "of 29 persons" in result.stdout


@pytest.mark.parametrize("args, fragments", [
    (["--image-id", "42"], ["unknown image id '42'", "'000001'"]),
    ([], ["choose one of --image-id, --hardest, --histogram"]),
    (["--hardest", "2", "--histogram"], ["--hardest and --histogram"]),
    (["--hardest", "2", "--results", "x.json"], ["--results needs --image-id"]),
    (["--histogram", "--filter", "bogus"], ["bogus"]),
])
def test_cli_usage_errors_are_one_line(tmp_path, args, fragments):
    result = _invoke([SAMPLE_ANNOTATIONS, *args, "--out", tmp_path / "x.png"])
    _assert_one_line_error(result, *fragments)
    assert not any(tmp_path.iterdir())


def test_cli_output_format_comes_from_the_suffix(tmp_path):
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000001", "--out", tmp_path / "x.pdf"])
    _assert_one_line_error(result, str(tmp_path / "x.pdf"), "cannot write .pdf")
    result = _invoke([SAMPLE_ANNOTATIONS, "--histogram", "--out", tmp_path / "h.pdf"])
    assert result.exit_code == 0 and (tmp_path / "h.pdf").read_bytes()[:5] == b"%PDF-"
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000001", "--out", tmp_path / "x.jpg"])
    assert result.exit_code == 0
    assert cv2.imread(str(tmp_path / "x.jpg")).shape == (300, 409, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.pdf", "x.jpg"]


def test_cli_missing_image_names_the_file(tmp_path):
    shutil.copy(SAMPLE_ANNOTATIONS, tmp_path / "ochuman.json")
    (tmp_path / "images").mkdir()
    for args, name in ((["--image-id", "000003"], "000003.jpg"), (["--hardest", "1"], "000005.jpg")):
        result = _invoke([tmp_path / "ochuman.json", *args, "--out", tmp_path / "x.png"])
        line = _assert_one_line_error(result, str(tmp_path / "images" / name), "missing or unreadable")
        assert line.count(name) >= 1
    assert not (tmp_path / "x.png").exists()


def test_cli_bad_results_file_is_one_line(tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text('[{"image_id": 1}]')
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000001", "--results", preds, "--out", tmp_path / "x.png"])
    _assert_one_line_error(result, f"{preds}: record 0", "category_id")
    assert not (tmp_path / "x.png").exists()


def _native_copy(tmp_path: Path, file_names: dict[int, str]) -> Path:
    """The sample's native file in ``tmp_path`` with the given images renamed (index -> file_name)."""
    raw = json.loads(SAMPLE_ANNOTATIONS.read_text())
    for k, name in file_names.items():
        raw["images"][k]["file_name"] = name
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("file_name", ["../outside.jpg", "sub/../../outside.jpg", "ABSOLUTE", "..\\outside.jpg"])
def test_cli_refuses_file_names_that_leave_the_images_folder(tmp_path, file_name):
    """A file_name with `..` or an absolute path would read a file outside --images: refused,
    naming the annotation file and the image, for the one image and for the grid."""
    shutil.copytree(SAMPLE_IMAGES, tmp_path / "images")
    shutil.copy(SAMPLE_IMAGES / "000005.jpg", tmp_path / "outside.jpg")  # readable, were it read
    file_name = str(tmp_path / "outside.jpg") if file_name == "ABSOLUTE" else file_name
    ann = _native_copy(tmp_path, {4: file_name})
    for args in (["--image-id", "000005"], ["--hardest", "1"]):
        result = _invoke([ann, "--images", tmp_path / "images", *args, "--out", tmp_path / "x.png"])
        _assert_one_line_error(result, f"{ann}: image '000005': file_name {file_name!r}", "outside the images folder")
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(OCHumanError, match="outside the images folder"):
        ochuman.load(ann).read_image(4, tmp_path / "images")


def test_cli_truncated_jpeg_is_a_warning_naming_the_file(tmp_path):
    images = tmp_path / "images"
    shutil.copytree(SAMPLE_IMAGES, images)
    whole = (images / "000005.jpg").read_bytes()
    (images / "000005.jpg").write_bytes(whole[:len(whole) // 2])
    out = tmp_path / "one.png"
    result = _invoke([SAMPLE_ANNOTATIONS, "--images", images, "--image-id", "000005", "--out", out])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"{out}: 000005.jpg, 3 persons"
    warned = [line for line in result.stderr.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and f"{images / '000005.jpg'}: " in warned[0] and "truncated JPEG" in warned[0]
    assert _decode(out).shape == (660, 1000, 3)
    result = _invoke([SAMPLE_ANNOTATIONS, "--images", images, "--image-id", "000001", "--out", out])
    assert result.exit_code == 0 and "Warning" not in result.stderr  # whole files: no warning


def test_cli_image_id_without_an_images_folder_names_the_option(tmp_path):
    ann = tmp_path / "ochuman.json"
    shutil.copy(SAMPLE_ANNOTATIONS, ann)  # no images/ beside it
    result = _invoke([ann, "--image-id", "000001", "--out", tmp_path / "x.png"])
    _assert_one_line_error(result, "--images DIR")
    assert not (tmp_path / "x.png").exists()


def test_cli_nan_score_threshold_is_refused(perfect_results, tmp_path):
    preds = tmp_path / "preds.json"
    preds.write_text(json.dumps(perfect_results))
    result = _invoke([SAMPLE_ANNOTATIONS, "--image-id", "000005", "--results", preds, "--score-threshold", "nan",
                      "--out", tmp_path / "x.png"])
    _assert_one_line_error(result, "--score-threshold: expected a finite number, got nan")
    assert not (tmp_path / "x.png").exists()


def test_result_polygons_are_rasterised_as_pycocotools():
    """``show --results``: a polygon segmentation is the mask pycocotools' annToRLE makes."""
    from pycocotools import mask as mask_utils

    from ochuman.vis import _result_bitmap

    polygons = [[3.5, 2, 40.25, 5, 30, 33.75, 1, 20], [20, 20, 25, 21, 22.5, 28]]
    expected = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, 36, 45)))
    assert np.array_equal(_result_bitmap({"segmentation": polygons}, 36, 45, "r.json: record 0"), expected)
