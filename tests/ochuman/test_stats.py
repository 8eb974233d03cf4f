"""Table-1 statistics: API and CLI agree, and both agree with counts made from the raw JSON."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import ochuman
from cli.ochuman_cmd import main


def _raw_stats(raw: dict, keep) -> dict:
    values = [p["max_iou"] for im in raw["images"] for p in im["annotations"] if keep(p)]
    images = sum(1 for im in raw["images"] if any(keep(p) for p in im["annotations"]))
    return {
        "images": images, "persons": len(values),
        "persons_oc50": sum(v > 0.5 for v in values), "persons_oc75": sum(v > 0.75 for v in values),
        "mean_max_iou": float(np.mean(values)),
        "moderate": sum(0.5 <= v < 0.75 for v in values), "hard": sum(0.75 <= v <= 1.0 for v in values),
    }


def _stats_json(*args) -> dict | list:
    result = CliRunner().invoke(main, ["stats", *map(str, args), "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("filter_name, keep", [
    (None, lambda p: p["keypoints"] and p["segms"]),  # native default: the benchmark set
    ("none", lambda p: True),
    ("kpt", lambda p: p["keypoints"]),
])
def test_native_stats_match_the_raw_file(native_sample, filter_name, keep):
    raw = json.loads(native_sample.read_text())
    args = [native_sample] + (["--filter", filter_name] if filter_name else [])
    printed = _stats_json(*args)
    expected = _raw_stats(raw, keep)
    for key, value in expected.items():
        assert printed[key] == pytest.approx(value, abs=1e-12), key
    assert printed["pct_oc50"] == pytest.approx(100 * expected["persons_oc50"] / expected["persons"])
    assert printed["max_iou_source"] == "stored" and printed["range_rule"] == "closed-top"
    dataset = ochuman.load(native_sample).filter_persons(filter_name or "kpt&segm")
    api = ochuman.dataset_stats(dataset)
    assert {k: printed[k] for k in api} == api


def test_by_split_and_coco_files(native_sample, ochuman_coco_sample, coco_mini):
    rows = _stats_json(native_sample, "--by", "split")
    assert [r["split"] for r in rows] == ["val", "test", "all"]
    assert rows[0]["persons"] == rows[2]["persons"] == 16 and rows[1]["persons"] == 0
    coco = _stats_json(ochuman_coco_sample)
    assert (coco["images"], coco["persons"], coco["max_iou_source"]) == (3, 5, "box")
    mini = _stats_json(coco_mini)
    raw = json.loads(coco_mini.read_text())
    persons = [a for a in raw["annotations"] if not a["iscrowd"]]
    assert mini["persons"] == len(persons) and mini["images"] == len({a["image_id"] for a in persons})
    assert mini["persons_with_keypoints"] == sum(a["num_keypoints"] > 0 for a in persons)


def test_converted_file_has_the_same_stats_from_recomputed_maxiou(native_sample, tmp_path):
    """MaxIoU recomputed from the COCO boxes of a converted file equals the stored one when
    the image keeps all its persons (here: every sample image whose persons all have masks)."""
    result = CliRunner().invoke(main, ["convert", str(native_sample), "--out", str(tmp_path), "--split", "val"])
    assert result.exit_code == 0, result.output
    converted = ochuman.load(tmp_path / "ochuman_coco_format_val_range_0.00_1.00.json")
    native = ochuman.load(native_sample)
    complete = [idx for idx in native.persons_by_image() if native.has_mask[idx].all()
                and native.has_keypoints[idx].all()]
    assert complete
    by_file = {im.file_name: k for k, im in enumerate(converted.images)}
    for idx in complete:
        file_name = native.images[native.image_index[idx[0]]].file_name
        theirs = converted.max_iou_box[converted.image_index == by_file[file_name]]
        np.testing.assert_array_equal(np.float32(theirs), np.float32(native.max_iou[idx]))


def test_table_markdown_csv_render(native_sample):
    runner = CliRunner()
    table = runner.invoke(main, ["stats", str(native_sample)])
    assert table.exit_code == 0 and "persons_oc50" in table.output and "16" in table.output
    markdown = runner.invoke(main, ["stats", str(native_sample), "--format", "markdown"])
    assert markdown.output.splitlines()[1].startswith("| split")
    csv_out = runner.invoke(main, ["stats", str(native_sample), "--format", "csv"]).output.splitlines()
    assert csv_out[0].startswith("file,filter,split,images,persons") and len(csv_out) == 2


def _images_with_persons_files(tmp_path) -> dict:
    """The same 4 images in three files: one image with two persons, one with one person, one
    with no annotation, one with only a crowd region (COCO) / nothing (native)."""
    from pycocotools import mask as mask_utils

    def rle(x, y, w, h):
        bitmap = np.zeros((40, 50), np.uint8)
        bitmap[y:y + h, x:x + w] = 1
        encoded = mask_utils.encode(np.asfortranarray(bitmap))
        return {"size": [40, 50], "counts": encoded["counts"].decode()}

    boxes = {1: [(2, 2, 10, 20), (5, 3, 10, 20)], 2: [(20, 5, 15, 25)], 3: [], 4: []}
    native = {"images": [{"file_name": f"{k:06d}.jpg", "image_id": f"{k:06d}", "width": 50, "height": 40,
                          "annotations": [{"bbox": [x, y, x + w, y + h], "max_iou": 0.3,
                                           "keypoints": None, "segms": None} for x, y, w, h in boxes[k]]}
                         for k in boxes]}
    images = [{"id": k, "file_name": f"{k:06d}.jpg", "width": 50, "height": 40} for k in boxes]
    annotations = [{"id": 10 * k + j, "image_id": k, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
                    "area": w * h, "segmentation": rle(x, y, w, h)}
                   for k in boxes for j, (x, y, w, h) in enumerate(boxes[k])]
    annotations.append({"id": 99, "image_id": 4, "category_id": 1, "iscrowd": 1, "bbox": [0, 0, 50, 40],
                        "area": 2000, "segmentation": {"size": [40, 50], "counts": [0, 2000]},
                        "keypoints": [0, 0, 0]})  # a crowd's short all-zero keypoints: the general reader
    categories = [{"id": 1, "name": "person"}]
    scanned = {"images": images, "annotations": annotations[:-1], "categories": categories}
    general = {"images": images, "annotations": annotations, "categories": categories}
    files = {}
    for name, content in (("native", native), ("coco-scanned", scanned), ("coco-general", general)):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(content))
    return files


@pytest.mark.parametrize("which", ["native", "coco-scanned", "coco-general"])
def test_images_are_the_images_with_a_person_on_every_path(tmp_path, which):
    from ochuman.records import FileSegmentations

    path = _images_with_persons_files(tmp_path)[which]
    dataset = ochuman.load(path)
    assert len(dataset.images) == 4
    if which != "native":  # the two loaders of COCO files both run
        assert isinstance(dataset.segmentations, FileSegmentations) == (which == "coco-scanned")
    printed = _stats_json(path, "--filter", "none")
    assert (printed["images"], printed["persons"]) == (2, 3)
    assert ochuman.dataset_stats(dataset)["images"] == 2
