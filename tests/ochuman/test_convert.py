"""Conversion to COCO: official semantics field by field, proven on the official converter's
output (the COCO-format sample), the real native sample and hand-checked edge cases."""
from __future__ import annotations

import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import ochuman
from ochuman.convert import official_file_name, to_coco
from ochuman.subsets import HARD, MaxIoURange

# Spec section 2, written out independently of ochuman.keypoints: COCO joint <- OCHuman index.
COCO_FROM_OCHUMAN = [16, 18, 17, 15, 14, 3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8]
VISIBILITY = {0: 0, 1: 2, 2: 2, 3: 1}


def _schema(coco: dict) -> dict:
    """Key sets and JSON types of every entry kind, for comparing two converter outputs."""
    def kinds(entries, key):
        return {type(e[key]).__name__ for e in entries}
    anns, images = coco["annotations"], coco["images"]
    return {
        "image_keys": {frozenset(im) for im in images},
        "annotation_keys": {frozenset(a) for a in anns},
        "segmentation": {(frozenset(a["segmentation"]), type(a["segmentation"]["counts"]).__name__)
                         for a in anns},
        "id_types": (kinds(images, "id"), kinds(anns, "id"), kinds(anns, "image_id")),
        "scalars": (kinds(anns, "area"), kinds(anns, "iscrowd"), kinds(anns, "category_id"),
                    kinds(anns, "num_keypoints")),
        "bbox": {type(v).__name__ for a in anns for v in a["bbox"]},
        "visibility_types": {type(v).__name__ for a in anns for v in a["keypoints"][2::3]},
    }


def _check_official_invariants(coco: dict) -> None:
    """What the official converter guarantees, checked on any of its outputs."""
    images = {im["id"]: im for im in coco["images"]}
    assert [im["id"] for im in coco["images"]] == list(range(1, len(images) + 1))
    assert [a["id"] for a in coco["annotations"]] == list(range(1, len(coco["annotations"]) + 1))
    assert {a["image_id"] for a in coco["annotations"]} == set(images)  # no empty image written
    for a in coco["annotations"]:
        image = images[a["image_id"]]
        x, y, w, h = a["bbox"]
        assert a["area"] == w * h  # the box area, not the mask area
        assert a["iscrowd"] == 0 and a["category_id"] == 1
        assert len(a["keypoints"]) == 51
        v = a["keypoints"][2::3]
        assert set(v) <= {0, 1, 2}
        assert a["num_keypoints"] == sum(1 for c in v if c > 0)
        assert a["segmentation"]["size"] == [image["height"], image["width"]]
        assert mask_utils.area(a["segmentation"]) <= (w + 1) * (h + 1)  # inside the box


@pytest.fixture(scope="module")
def converted(native_sample):
    return to_coco(ochuman.load(native_sample), "all")


def test_official_sample_satisfies_the_invariants(ochuman_coco_sample):
    _check_official_invariants(json.loads(ochuman_coco_sample.read_text()))


def test_our_output_has_the_official_schema_and_invariants(converted, ochuman_coco_sample):
    official = json.loads(ochuman_coco_sample.read_text())
    _check_official_invariants(converted)
    assert _schema(converted) == _schema(official)
    assert converted["categories"] == official["categories"]
    assert set(official) <= set(converted) and "info" in converted


def test_fields_by_hand_on_the_real_sample(converted, native_sample):
    raw = json.loads(native_sample.read_text())
    benchmark = [(im, p) for im in raw["images"] for p in im["annotations"]
                 if p["keypoints"] and p["segms"]]
    assert len(converted["annotations"]) == len(benchmark) == 16
    assert [im["file_name"] for im in converted["images"]] == [im["file_name"] for im in raw["images"]]
    for ann, (image, person) in zip(converted["annotations"], benchmark):
        x1, y1, x2, y2 = person["bbox"]
        assert ann["bbox"] == [x1, y1, x2 - x1, y2 - y1]
        assert ann["area"] == (x2 - x1) * (y2 - y1)
        expected = []
        for j in COCO_FROM_OCHUMAN:
            x, y, v = person["keypoints"][3 * j: 3 * j + 3]
            expected += [x, y, VISIBILITY[v]]
        assert ann["keypoints"] == expected
        assert all(type(a) is type(b) for a, b in zip(ann["keypoints"], expected))  # ints stay ints
        assert ann["num_keypoints"] == sum(
            1 for j in COCO_FROM_OCHUMAN if person["keypoints"][3 * j + 2] in (1, 2, 3))
        # Mask: union of outer polygons with the union of inner polygons cut out.
        h, w = image["height"], image["width"]
        outer = np.zeros((h, w), bool)
        for poly in person["segms"]["outer"]:
            outer |= mask_utils.decode(mask_utils.frPyObjects([poly], h, w))[..., 0].astype(bool)
        for poly in person["segms"]["inner"]:
            outer &= ~mask_utils.decode(mask_utils.frPyObjects([poly], h, w))[..., 0].astype(bool)
        np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]).astype(bool), outer)
    assert any(p["segms"]["inner"] for _, p in benchmark)  # holes are exercised


def _native(images):
    """A native dataset from (image_id, [(bbox, max_iou, has_kpt, has_mask), ...]) tuples."""
    return ochuman.parse(native_dict(images))


def native_dict(images) -> dict:
    """The content of a native file from (image_id, [(bbox, max_iou, has_kpt, has_mask), ...])
    tuples (file names ``<image_id>.jpg``, images 50 x 40)."""
    out = []
    for image_id, persons in images:
        annotations = []
        for bbox, max_iou, kpt, segm in persons:
            x1, y1, x2, y2 = bbox
            keypoints = [0] * 57
            keypoints[16 * 3: 16 * 3 + 3] = [x1 + 1, y1 + 1, 1]  # nose, visible
            keypoints[0:3] = [x1 + 2, y1 + 3, 3]  # right shoulder, occluded by another
            annotations.append({
                "bbox": list(bbox), "max_iou": max_iou,
                "keypoints": keypoints if kpt else None,
                "segms": {"outer": [[x1, y1, x2, y1, x2, y2, x1, y2]], "inner": [],
                          "height": 40, "width": 50} if segm else None,
            })
        out.append({"file_name": f"{image_id}.jpg", "image_id": image_id, "width": 50,
                    "height": 40, "annotations": annotations})
    return {"images": out}


def test_max_iou_exactly_one_and_ranges():
    dataset = _native([
        ("000001", [((0, 0, 9, 9), 1.0, True, True), ((0, 0, 9, 9), 1.0, True, True)]),
        ("000002", [((0, 0, 9, 9), 0.8, True, True), ((0, 0, 9, 12), 0.8, True, True)]),
    ])
    official = to_coco(dataset, "all", MaxIoURange(0.0, 1.0))
    assert [im["file_name"] for im in official["images"]] == ["000002.jpg"]  # 1.0 dropped
    assert official["images"][0]["id"] == 1  # renumbered from 1
    hard = to_coco(dataset, "all", HARD)
    assert len(hard["annotations"]) == 2
    closed = to_coco(dataset, "all", HARD, range_rule="closed-top")
    assert len(closed["annotations"]) == 4


def test_images_left_without_persons_vanish_and_ids_renumber():
    dataset = _native([
        ("000001", [((0, 0, 9, 9), 0.6, True, True)]),
        ("000002", [((0, 0, 9, 9), 0.9, True, True), ((5, 5, 9, 9), 0.3, False, False)]),
        ("000003", [((0, 0, 9, 9), 0.7, True, True), ((1, 1, 9, 9), 0.9, True, False)]),
    ])
    moderate = to_coco(dataset, "all", MaxIoURange(0.5, 0.75))
    assert [(im["id"], im["file_name"]) for im in moderate["images"]] == [(1, "000001.jpg"), (2, "000003.jpg")]
    assert [(a["id"], a["image_id"]) for a in moderate["annotations"]] == [(1, 1), (2, 2)]
    native_ids = to_coco(dataset, "all", MaxIoURange(0.5, 0.75), image_ids="native")
    assert [im["id"] for im in native_ids["images"]] == [1, 3]
    # Annotation ids are the persons' positions in the native file (1-based).
    assert [a["id"] for a in native_ids["annotations"]] == [1, 4]


def test_file_order_not_id_order_decides_the_split():
    persons = [((0, 0, 9, 9), 0.6, True, True)]
    ids = [f"{n:06d}" for n in range(2502, 0, -1)]  # file order is reverse id order
    dataset = _native([(i, persons) for i in ids])
    val = to_coco(dataset, "val")
    test = to_coco(dataset, "test")
    assert [im["file_name"] for im in val["images"]] == [f"{i}.jpg" for i in ids[:2500]]
    assert [im["file_name"] for im in test["images"]] == [f"{i}.jpg" for i in ids[2500:]]
    assert test["images"][0]["id"] == 1  # each file restarts at 1


def test_visibility_and_num_keypoints_by_hand():
    ann = to_coco(_native([("000001", [((10, 5, 30, 25), 0.6, True, True)])]))["annotations"][0]
    assert ann["keypoints"][0:3] == [11, 6, 2]  # nose: OCHuman vis 1 -> COCO 2
    assert ann["keypoints"][6 * 3: 6 * 3 + 3] == [12, 8, 1]  # right shoulder: 3 -> 1
    assert ann["num_keypoints"] == 2
    assert ann["bbox"] == [10, 5, 20, 20] and ann["area"] == 400
    mask_area = to_coco(_native([("000001", [((10, 5, 30, 25), 0.6, True, True)])]), area="mask")
    assert mask_area["annotations"][0]["area"] == mask_utils.area(ann["segmentation"])


def test_output_loads_in_pycocotools_with_results(converted, tmp_path):
    path = tmp_path / official_file_name("all", MaxIoURange(0.0, 1.0))
    ochuman.write_json(path, converted)
    assert path.name == "ochuman_coco_format_all_range_0.00_1.00.json"
    gt = COCO(str(path))
    results = [{"image_id": a["image_id"], "category_id": 1, "score": 1.0,
                "segmentation": a["segmentation"]} for a in converted["annotations"]]
    dt = gt.loadRes(results)  # needs the `info` key in recent pycocotools
    assert len(dt.getAnnIds()) == len(results)


def test_conversion_needs_a_native_file(ochuman_coco_sample):
    with pytest.raises(ochuman.OCHumanError, match="native"):
        to_coco(ochuman.load(ochuman_coco_sample))


@pytest.mark.parametrize("split", ["all", "val", "test"])
@pytest.mark.parametrize("rule", ["official", "closed-top"])
def test_info_records_split_range_and_rule(split, rule):
    persons = [((0, 0, 9, 9), 0.6, True, True)]
    dataset = _native([(f"{n:06d}", persons if n % 3 else [((0, 0, 9, 9), 0.3, True, True)])
                       for n in range(1, 2511)])
    coco = to_coco(dataset, split, MaxIoURange(0.5, 1.0), range_rule=rule)
    info = coco["info"]
    assert (info["split"], info["max_iou_range"], info["range_rule"]) == (split, [0.5, 1.0], rule)
    val_names = {im.file_name for im in dataset.select_split("val").images}
    written = [im["file_name"] for im in coco["images"]]
    # the first val_images images of the file are the val images it holds
    assert info["val_images"] == sum(name in val_names for name in written)
    assert all(name in val_names for name in written[:info["val_images"]])
    assert not any(name in val_names for name in written[info["val_images"]:])
