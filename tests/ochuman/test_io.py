"""Loaders: native and COCO files -> the same records, official filter counts, images."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ochuman
from ochuman.errors import ImageNotFoundError
from ochuman.keypoints import ochuman_to_coco


def _official_filter_counts(raw: dict, name):
    """OCHumanApi's filter written out from the spec: truthy keypoints/segms, empty images dropped."""
    keep = {
        None: lambda p: True,
        "kpt": lambda p: bool(p["keypoints"]),
        "segm": lambda p: bool(p["segms"]),
        "kpt&segm": lambda p: bool(p["keypoints"]) and bool(p["segms"]),
        "kpt|segm": lambda p: bool(p["keypoints"]) or bool(p["segms"]),
    }[name]
    images = persons = 0
    for image in raw["images"]:
        kept = [p for p in image["annotations"] if keep(p)]
        if kept or name is None:
            images += 1
            persons += len(kept)
    return images, persons


@pytest.mark.parametrize("name", [None, "kpt", "segm", "kpt&segm", "kpt|segm", "segm&kpt", "segm|kpt"])
def test_filters_give_the_official_counts(native_sample, name):
    raw = json.loads(native_sample.read_text())
    canonical = {"segm&kpt": "kpt&segm", "segm|kpt": "kpt|segm"}.get(name, name)
    dataset = ochuman.load(native_sample, filter=name)
    assert (len(dataset.images), len(dataset)) == _official_filter_counts(raw, canonical)


def test_sample_counts_and_records(native_sample):
    dataset = ochuman.load(native_sample)
    assert (len(dataset.images), len(dataset)) == (10, 29)
    assert dataset.has_keypoints.sum() == 20 and dataset.has_mask.sum() == 16
    raw = json.loads(native_sample.read_text())
    flat = [(im, p) for im in raw["images"] for p in im["annotations"]]
    for i, person in enumerate(dataset.persons()):
        image, native = flat[i]
        assert person.image_id == image["image_id"]
        x1, y1, x2, y2 = native["bbox"]
        assert person.bbox_xywh.tolist() == [x1, y1, x2 - x1, y2 - y1]
        assert person.max_iou == native["max_iou"]
        if native["keypoints"] is None:
            assert person.keypoints is None and person.keypoints_ochuman is None
        else:
            raw_kpts = np.array(native["keypoints"], dtype=float).reshape(19, 3)
            np.testing.assert_array_equal(person.keypoints_ochuman, raw_kpts)
            np.testing.assert_array_equal(person.keypoints, ochuman_to_coco(raw_kpts))
        if native["segms"] is None:
            assert person.segmentation is None
        else:
            assert [list(p) for p in person.segmentation.outer] == native["segms"]["outer"]
            assert [list(p) for p in person.segmentation.inner] == native["segms"]["inner"]


def test_coco_file_gives_the_same_records(ochuman_coco_sample):
    raw = json.loads(ochuman_coco_sample.read_text())
    dataset = ochuman.load(ochuman_coco_sample)
    assert dataset.format == "coco" and len(dataset) == len(raw["annotations"]) == 5
    for i, ann in enumerate(raw["annotations"]):
        person = dataset.person(i)
        assert person.person_id == ann["id"] and person.image_id == ann["image_id"]
        assert person.bbox_xywh.tolist() == ann["bbox"]
        np.testing.assert_array_equal(person.keypoints, np.reshape(ann["keypoints"], (17, 3)))
        assert dataset.rles[i] == ann["segmentation"]
        assert dataset.area[i] == ann["area"]
        assert np.isnan(person.max_iou)


def test_coco_crowd_regions_are_kept_and_flagged(coco_mini):
    raw = json.loads(coco_mini.read_text())
    dataset = ochuman.load(coco_mini)
    assert len(dataset) == len(raw["annotations"]) == 172
    crowd_ids = {a["id"] for a in raw["annotations"] if a["iscrowd"]}
    assert set(dataset.person_id[dataset.iscrowd].tolist()) == crowd_ids and len(crowd_ids) == 5
    assert np.isnan(dataset.max_iou_box[dataset.iscrowd]).all()
    # Uncompressed crowd RLE is compressed on the way in and keeps its pixels.
    from pycocotools import mask as mask_utils
    for i in np.flatnonzero(dataset.iscrowd):
        ann = next(a for a in raw["annotations"] if a["id"] == dataset.person_id[i])
        h, w = ann["segmentation"]["size"]
        expected = mask_utils.decode(mask_utils.frPyObjects(ann["segmentation"], h, w))
        np.testing.assert_array_equal(mask_utils.decode(dataset.rles[i]), expected)
    # Filters keep the crowd regions of kept images (the evaluator needs them).
    kept = dataset.filter_persons("kpt&segm")
    assert (~kept.iscrowd).sum() == sum(
        1 for a in raw["annotations"] if not a["iscrowd"] and a["num_keypoints"] > 0)


def test_to_frame_columns(native_sample, ochuman_coco_sample):
    frame = ochuman.load(native_sample).to_frame()
    assert len(frame) == 29
    for column in ("image_id", "file_name", "person_id", "has_keypoints", "has_mask", "max_iou",
                   "max_iou_box", "num_keypoints", "mask_area", "subset", "split",
                   "bbox_x", "bbox_y", "bbox_w", "bbox_h"):
        assert column in frame.columns
    assert frame["image_id"].iloc[0] == "000001" and frame["file_name"].iloc[0] == "000001.jpg"
    assert (frame["split"] == "val").all()
    assert set(frame["subset"]) <= {"moderate", "hard", ""}
    assert (frame.loc[frame["max_iou"] >= 0.75, "subset"] == "hard").all()
    assert frame["mask_area"].isna().sum() == 29 - 16
    coco = ochuman.load(ochuman_coco_sample).to_frame()
    assert coco["max_iou"].isna().all() and coco["max_iou_box"].notna().all()


def test_images_load_lazily_and_missing_images_are_named(native_sample, native_sample_images, tmp_path):
    dataset = ochuman.load(native_sample, images_dir=native_sample_images)
    pixels = dataset.read_image(0)
    assert pixels.shape == (dataset.images[0].height, dataset.images[0].width, 3)
    with pytest.raises(ImageNotFoundError, match="000001.jpg"):
        dataset.read_image(0, images_dir=tmp_path)


def test_default_images_dir_is_found_beside_the_annotations(native_sample, native_sample_images):
    assert ochuman.load(native_sample).images_dir == str(native_sample_images)


def test_split_of_official_coco_file_names(ochuman_coco_sample, tmp_path):
    raw = ochuman_coco_sample.read_bytes()
    test_file = tmp_path / "ochuman_coco_format_test_range_0.00_1.00.json"
    test_file.write_bytes(raw)
    assert ochuman.load(test_file).select_split("test").images == ochuman.load(test_file).images
    assert len(ochuman.load(test_file).select_split("val").images) == 0
    with pytest.raises(ochuman.OCHumanError, match="no official val/test split"):
        ochuman.load(ochuman_coco_sample).select_split("val")


def test_parse_accepts_dicts():
    native = {"images": [{"file_name": "a.jpg", "image_id": "7", "width": 20, "height": 10,
                          "annotations": [{"bbox": [1, 1, 5, 5], "max_iou": 0.0,
                                           "keypoints": None, "segms": None}]}]}
    dataset = ochuman.parse(native)
    assert dataset.format == "ochuman" and len(dataset) == 1 and dataset.images[0].split == ""


def test_atomic_write_leaves_nothing_behind_on_interrupt(tmp_path):
    from ochuman.io import atomic_write, write_json

    target = tmp_path / "out.json"
    write_json(target, {"old": True})
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as handle:
            handle.write('{"half": ')
            raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_write_gives_the_usual_permissions(tmp_path):
    import os

    from ochuman.io import write_json

    write_json(tmp_path / "a.json", [])
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o666 & ~umask
