"""Loaders: native and COCO files -> the same records, official filter counts, images."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ochuman
from ochuman.errors import ImageNotFoundError
from ochuman.keypoints import ochuman_to_coco
from ochuman.records import FileSegmentations

from .workloads import coco_workloads


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


# ------------------------------------------- COCO files: the compiled scanner == the general path

def _datasets_both_ways(data: bytes, source: str, monkeypatch, scanned_files: list):
    from ochuman import io

    scanned_files.append(io._coco_columns_scanned(io._Parts(source, data)) is not None)
    scanned = io.parse(data, source)
    with monkeypatch.context() as patch:
        patch.setattr(io, "_coco_columns_scanned", lambda *args: None)
        general = io.parse(data, source)
    return scanned, general


def _assert_same_dataset(a, b) -> None:
    for name in ("image_index", "person_id", "bbox_xywh", "keypoints", "has_keypoints", "iscrowd", "area",
                 "max_iou", "max_iou_box"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and x.shape == y.shape, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.images == b.images
    assert a.segmentations == b.segmentations
    assert a.max_iou_source == b.max_iou_source


def test_scanned_coco_file_equals_the_general_path(ochuman_coco_sample, monkeypatch):
    from ochuman import io

    data = ochuman_coco_sample.read_bytes()
    calls = []
    original = io._coco_columns_scanned
    monkeypatch.setattr(io, "_coco_columns_scanned", lambda *args: calls.append(original(*args)) or calls[-1])
    scanned = io.parse(data, str(ochuman_coco_sample))
    assert calls and calls[0] is not None, "the official converter's file should take the scanner"
    monkeypatch.setattr(io, "_coco_columns_scanned", original)
    general = _datasets_both_ways(data, str(ochuman_coco_sample), monkeypatch, [])[1]
    _assert_same_dataset(scanned, general)
    # masks stay in the file's bytes until asked for; selections keep them there
    assert isinstance(scanned.segmentations, FileSegmentations) and isinstance(general.segmentations, tuple)
    np.testing.assert_array_equal(scanned.has_mask, general.has_mask)
    picked_scanned, picked_general = scanned.filter_persons("kpt&segm"), general.filter_persons("kpt&segm")
    assert isinstance(picked_scanned.segmentations, FileSegmentations)
    _assert_same_dataset(picked_scanned, picked_general)
    assert picked_scanned.rles == picked_general.rles
    assert scanned.person(3).segmentation == general.person(3).segmentation
    # evaluated straight from the file's bytes: the same ground truth masks
    from ochuman.eval.ground_truth import ground_truth_from_coco

    a, b = ground_truth_from_coco(scanned).annotations, ground_truth_from_coco(general).annotations
    assert list(a.masks) == list(b.masks) and list(a.counts) == list(b.counts)
    for name in ("areas", "totals", "boxes"):
        np.testing.assert_array_equal(getattr(a.masks, name), getattr(b.masks, name), err_msg=name)


def test_prefetched_annotations_load_as_the_path_does(native_sample, ochuman_coco_sample):
    from ochuman.scan import PrefetchedAnnotations

    for path in (native_sample, ochuman_coco_sample):
        prefetched = PrefetchedAnnotations(path).get()
        assert prefetched.raw is not None and (prefetched.annotations is not None) == (path == ochuman_coco_sample)
        _assert_same_dataset(ochuman.load(prefetched), ochuman.load(path))
        # its bytes and columns let go once loaded (peak memory); loaded again, the file is read anew
        assert prefetched.data is prefetched.raw is prefetched.annotations is None
        _assert_same_dataset(ochuman.load(prefetched), ochuman.load(path))


def test_annotations_read_without_masks(coco_mini):
    """masks=False (box and keypoint evaluation) leaves the polygons' numbers and the crowd
    regions' count lists out; the rest of the dataset is the same, and a prefetched scan without
    them is redone when masks are asked for."""
    from ochuman.scan import PrefetchedAnnotations

    full = ochuman.load(coco_mini)
    assert any(type(s) is list for s in full.segmentations)  # polygons
    assert any(type(s) is dict and type(s["counts"]) is list for s in full.segmentations)  # crowd count lists
    for masks in (True, False):
        prefetched = PrefetchedAnnotations(coco_mini, masks=False).get()
        assert (prefetched.annotations[14] == b"") and len(prefetched.annotations[13]) > 0
        dataset = ochuman.load(prefetched, masks=masks)
        if masks:
            _assert_same_dataset(dataset, full)
        else:
            assert all(s is None or type(s["counts"]) is str for s in dataset.segmentations)
            for name in ("image_index", "person_id", "bbox_xywh", "keypoints", "area", "iscrowd", "max_iou"):
                np.testing.assert_array_equal(getattr(dataset, name), getattr(full, name), err_msg=name)


def test_prefetched_annotations_are_read_by_the_caller_when_the_background_waits(ochuman_coco_sample):
    import threading

    from ochuman.scan import PrefetchedAnnotations

    class StillReading:  # a results read that has not ended
        released = threading.Event()

        def wait(self):
            self.released.wait()

    blocker = StillReading()
    prefetched = PrefetchedAnnotations(ochuman_coco_sample, after=blocker)
    _assert_same_dataset(ochuman.load(prefetched), ochuman.load(ochuman_coco_sample))  # no deadlock
    # read: get() answers at once, though the background thread still waits for its turn
    again = threading.Thread(target=prefetched.get, daemon=True)
    again.start()
    again.join(timeout=5)
    assert not again.is_alive() and prefetched._thread.is_alive()
    reads = []
    prefetched._read = lambda: reads.append(1)
    blocker.released.set()
    prefetched._thread.join(timeout=5)
    assert not prefetched._thread.is_alive() and reads == []  # the background thread gave up its turn


@pytest.mark.parametrize("content", [None, b"", b'{"images": [', b'{"images": [], "annotations": {}}',
                                     b'{"annotations": [], "images": [{"id": "\xff"}]}', b"[1, 2]"])
def test_prefetched_annotations_report_problems_as_the_path_does(tmp_path, content):
    from ochuman.errors import OCHumanError
    from ochuman.scan import PrefetchedAnnotations

    path = tmp_path / "gt.json"
    if content is not None:  # None: no file
        path.write_bytes(content)
    with pytest.raises(OCHumanError) as direct:
        ochuman.load(path)
    with pytest.raises(OCHumanError) as prefetched:
        ochuman.load(PrefetchedAnnotations(path))
    assert str(prefetched.value) == str(direct.value)


@pytest.mark.differential
def test_scanned_coco_equals_the_general_path_on_drawn_files(monkeypatch_module):
    scanned_files = []

    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(workload=coco_workloads("segm"), with_max_iou=st.booleans(), indent=st.sampled_from([None, 1]))
    def check(workload, with_max_iou, indent):
        gt = workload["gt"]
        if with_max_iou:
            for k, ann in enumerate(gt["annotations"]):
                ann["max_iou"] = (k % 7) / 6
        if len(gt["categories"]) > 1:  # one of them the person category, the other's persons skipped
            gt["categories"][0]["name"] = "person"
        data = json.dumps(gt, indent=indent).encode()
        scanned, general = _datasets_both_ways(data, "drawn.json", monkeypatch_module, scanned_files)
        _assert_same_dataset(scanned, general)
        np.testing.assert_array_equal(scanned.has_mask, general.has_mask)
        assert scanned.rles == general.rles  # polygons rasterised from numbers, uncompressed RLE compressed
        keep = np.arange(len(scanned)) % 3 != 1
        images = np.ones(len(scanned.images), dtype=bool)
        assert scanned._take(keep, images).segmentations == general._take(keep, images).segmentations
        assert scanned._take(keep, images).rles == general._take(keep, images).rles
        from ochuman.eval.ground_truth import ground_truth_from_coco

        a, b = ground_truth_from_coco(scanned).annotations, ground_truth_from_coco(general).annotations
        assert list(a.masks) == list(b.masks)
        np.testing.assert_array_equal(a.masks.areas, b.masks.areas)

    check()
    # The drawn files are in the scanner's shape (polygons, compressed and uncompressed RLE).
    assert len(scanned_files) >= 100 and sum(scanned_files) >= 0.95 * len(scanned_files), scanned_files


@pytest.mark.parametrize("change", [
    lambda gt: gt["images"][0].update(id="a"),  # string ids
    lambda gt: gt["annotations"][0].update(segmentation=[[0, 0, 5, 0]]),  # a polygon pycocotools reads as a box
    lambda gt: gt["annotations"][0].update(segmentation=[[0, 0, 5, 0, 5, 5, 7]]),  # an odd polygon
    lambda gt: gt["annotations"][0].update(segmentation=[[0, 0, 5, 0, 5, 5], []]),  # an empty polygon
    lambda gt: gt["annotations"][0].update(segmentation={"size": [864, 900], "counts": [5, -1]}),
    lambda gt: gt["annotations"][0].update(keypoints=[0] * 50),
])
def test_unusual_coco_files_take_the_general_reader(ochuman_coco_sample, change):
    from ochuman import io

    gt = json.loads(ochuman_coco_sample.read_bytes())
    change(gt)
    assert io._coco_columns_scanned(io._Parts("x.json", json.dumps(gt).encode())) is None


@pytest.mark.parametrize("change", [
    lambda gt: gt["images"][1].update(id=gt["images"][0]["id"]),
    lambda gt: gt["images"][0].update(width=0),
    lambda gt: gt["annotations"][1].update(id=gt["annotations"][0]["id"]),
    lambda gt: gt["annotations"][0].update(image_id=10**6),
    lambda gt: gt["annotations"][2].update(iscrowd=2),
    lambda gt: gt["annotations"][1].update(bbox=[0, 0, -1, 5]),
    lambda gt: gt["annotations"][0].update(keypoints=[0] * 48 + [1, 1, 3]),
    lambda gt: gt["annotations"][1]["segmentation"].update(size=[-1, 5]),
    lambda gt: gt["annotations"][0].update(max_iou=1.5),
    lambda gt: gt["annotations"][2].update(max_iou=-0.5) or gt["annotations"][1].update(iscrowd=3),
])
def test_bad_coco_values_are_refused_alike_by_both_readers(ochuman_coco_sample, change, monkeypatch):
    """The scanner reads files of its shape with bad values too: one builder checks them, so
    the message is the general reader's."""
    from ochuman import io
    from ochuman.errors import FormatError

    gt = json.loads(ochuman_coco_sample.read_bytes())
    gt["categories"] = [{"id": 1, "name": "person"}]
    change(gt)
    data = json.dumps(gt).encode()
    assert io._coco_columns_scanned(io._Parts("x.json", data)) is not None
    with pytest.raises(FormatError) as scanned:
        io.parse(data, "x.json")
    monkeypatch.setattr(io, "_coco_columns_scanned", lambda *args: None)
    with pytest.raises(FormatError) as general:
        io.parse(data, "x.json")
    assert str(scanned.value) == str(general.value) and str(scanned.value).startswith("x.json: ")


@pytest.mark.parametrize("change,message", [
    (lambda gt: gt["annotations"][1].update(id=2 ** 64), "annotations[1]: id 18446744073709551616 does not fit int64"),
    (lambda gt: gt["annotations"][2].update(category_id=-2 ** 63 - 1),
     "annotations[2]: category_id -9223372036854775809 does not fit int64"),
    (lambda gt: gt["annotations"][0].update(iscrowd=2 ** 70), "annotations[0]: iscrowd 1180591620717411303424 does not fit int64"),
    (lambda gt: gt["categories"].append({"id": 2 ** 63, "name": "x"}), "categories[1]: id 9223372036854775808 does not fit int64"),
    (lambda gt: gt["images"][1].update(width=2 ** 64), "images[1]: width 18446744073709551616 does not fit int64"),
    (lambda gt: gt["images"][0].update(height=-2 ** 64), "images[0]: height -18446744073709551616 does not fit int64"),
    (lambda gt: gt["annotations"][1].update(segmentation={"size": [5, 2 ** 64], "counts": [10]}),
     "annotations[1]: segmentation size [5, 18446744073709551616] does not fit int64"),
])
def test_coco_ids_beyond_int64_are_refused_naming_the_record(ochuman_coco_sample, change, message):
    """Annotation and category ids (and iscrowd) beyond int64 (image ids may be any int): a
    one-line FormatError naming the record, from the scanner's file and the general reader's."""
    from ochuman import io
    from ochuman.errors import FormatError

    gt = json.loads(ochuman_coco_sample.read_bytes())
    gt["categories"] = [{"id": 1, "name": "person"}]
    change(gt)
    with pytest.raises(FormatError) as refused:
        io.parse(json.dumps(gt).encode(), "x.json")
    assert str(refused.value) == "x.json: " + message


@pytest.mark.differential
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(values=st.lists(st.integers(-3, 3), max_size=12), keys=st.lists(st.integers(-4, 4), max_size=8))
def test_repeats_and_positions_of_ids_as_a_dict_finds_them(values, keys):
    """The builder's id lookups: int64 columns (vectorised) and object columns (string ids)
    agree with a plain dict."""
    from ochuman import io

    first, expected_earlier = {}, []
    for k, v in enumerate(values):
        expected_earlier.append(first.get(v, -1))
        first.setdefault(v, k)
    universe = list(dict.fromkeys(values))
    expected_positions = [universe.index(k) if k in universe else -1 for k in keys]
    for column in (io._column(values), io._column([str(v) for v in values])):
        assert io._earlier(column).tolist() == expected_earlier
    assert io._positions(io._column(keys), io._column(universe)).tolist() == expected_positions
    assert io._positions(io._column([str(k) for k in keys]), io._column([str(v) for v in universe])).tolist() \
        == expected_positions


@pytest.mark.parametrize("escape", ["newline", "unicode", "slash"])
def test_escapes_in_mask_strings_read_as_json_says(ochuman_coco_sample, escape, monkeypatch):
    # The scanner leaves mask strings in the file's bytes; any JSON escape in them (no encoder
    # writes one) must still read as a JSON reader reads it, and be evaluated the same way.
    from ochuman.eval.ground_truth import ground_truth_from_coco

    gt = json.loads(ochuman_coco_sample.read_bytes())
    counts = gt["annotations"][0]["segmentation"]["counts"]
    if escape == "newline":
        gt["annotations"][0]["segmentation"]["counts"] = counts + "\n"
    text = json.dumps(gt)
    if escape == "unicode":  # the first character written as \u00XX
        text = text.replace(json.dumps(counts), '"\\u%04x' % ord(counts[0]) + json.dumps(counts)[2:], 1)
    if escape == "slash":
        text = text.replace(json.dumps(counts), json.dumps(counts).replace("\\\\", "\\u005c", 1), 1)
    assert text != json.dumps(json.loads(ochuman_coco_sample.read_bytes()))  # the escape is in
    scanned, general = _datasets_both_ways(text.encode(), "x.json", monkeypatch, [])
    assert isinstance(scanned.segmentations, FileSegmentations)
    _assert_same_dataset(scanned, general)
    a, b = ground_truth_from_coco(scanned).annotations, ground_truth_from_coco(general).annotations
    assert list(a.counts) == list(b.counts)
    for name in ("areas", "totals", "boxes"):
        np.testing.assert_array_equal(getattr(a.masks, name), getattr(b.masks, name), err_msg=name)


@pytest.fixture(scope="module")
def monkeypatch_module():
    """A monkeypatch usable inside hypothesis examples (function-scoped fixtures are not)."""
    patch = pytest.MonkeyPatch()
    yield patch
    patch.undo()


def test_to_frame_of_a_file_with_hundreds_of_masks():
    """The README's example on the real ochuman.json: 8110 masks (here 300 in 30 images)."""
    from pycocotools import mask as mask_utils

    images = []
    for k in range(30):
        persons = [{"bbox": [j, j, 40 + 2 * j, 50 + j], "max_iou": 0.6,
                    "keypoints": [float(j + 1), float(j + 2), 1.0] * 19,
                    "segms": {"outer": [[j, j, 40 + 2 * j, j, 40 + 2 * j, 50 + j, j, 50 + j]], "inner": []}}
                   for j in range(10)]
        images.append({"file_name": f"{k:06d}.jpg", "image_id": f"{k:06d}", "width": 80, "height": 70,
                       "annotations": persons})
    dataset = ochuman.parse({"images": images})
    frame = dataset.to_frame()
    assert len(frame) == 300
    expected = [int(mask_utils.area(dataset.rle(i))) for i in range(300)]
    assert frame["mask_area"].tolist() == expected
    assert frame["max_iou_mask"].notna().all()


@pytest.mark.parametrize("info, problem", [
    ({"split": "all", "max_iou_range": [0, 1], "range_rule": "closed", "val_images": 1}, "range_rule"),
    ({"split": "all", "max_iou_range": [0, 1], "range_rule": "official", "val_images": 9}, "val_images"),
    ({"split": "all", "max_iou_range": [0, 1], "range_rule": "official", "val_images": 1.5}, "val_images"),
])
def test_bad_converter_records_in_info_are_one_line(ochuman_coco_sample, tmp_path, info, problem):
    coco = json.loads(ochuman_coco_sample.read_text())
    coco["info"] = info
    path = tmp_path / "converted.json"
    path.write_text(json.dumps(coco))
    with pytest.raises(ochuman.OCHumanError, match=f"^{path}: info: {problem} must be"):
        ochuman.load(path)


def test_other_info_fields_are_not_read(ochuman_coco_sample, tmp_path):
    coco = json.loads(ochuman_coco_sample.read_text())
    coco["info"] = {"split": "train", "range_rule": 3, "year": 2019}  # not the converter's record
    path = tmp_path / "ochuman_coco_format_test_range_0.00_1.00.json"
    path.write_text(json.dumps(coco))
    dataset = ochuman.load(path)
    assert dataset.range_rule is None and set(dataset.image_split) == {"test"}


def test_unfinished_writes_are_removed_at_the_end_of_a_command(tmp_path):
    """The last resort of an interrupted command: a write whose own clean-up never ran."""
    from ochuman.io import atomic_write, remove_unfinished_writes

    writer = atomic_write(tmp_path / "out.json")
    writer.__enter__().write('{"half": ')
    assert [p.name.endswith(".part") for p in tmp_path.iterdir()] == [True]
    remove_unfinished_writes()
    assert list(tmp_path.iterdir()) == []
    assert writer.__exit__(KeyboardInterrupt, KeyboardInterrupt(), None) is False  # its own clean-up, late
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key", ["licenses", "extra"])
@pytest.mark.parametrize("bad", [b"\xff", b"\xc3", b"\xc0\xaf"])
def test_bad_utf8_in_a_top_level_value_never_decoded_is_refused(ochuman_coco_sample, key, bad):
    """json.loads refuses the whole file; so does the loader, though it never decodes that value
    (as results files and the values it decodes): one line naming the byte's position."""
    from ochuman import io
    from ochuman.errors import FormatError

    gt = json.loads(ochuman_coco_sample.read_bytes())
    data = json.dumps(dict(gt, **{key: ["BAD"]})).encode().replace(b"BAD", b"a" + bad + b"b")
    with pytest.raises(ValueError):
        json.loads(data)
    with pytest.raises(FormatError, match=r"^x\.json: line 1 column \d+: not valid UTF-8 \(byte 0x[0-9a-f]{2}\)$"):
        io.parse(data, "x.json")


def test_an_encoded_surrogate_in_a_value_never_decoded_is_read_as_json_loads_reads_it(ochuman_coco_sample):
    from ochuman import io

    gt = json.loads(ochuman_coco_sample.read_bytes())
    data = json.dumps(dict(gt, licenses=["BAD"])).encode().replace(b"BAD", b"a\xed\xa0\x80b")
    assert json.loads(data)["licenses"] == ["a\ud800b"]
    assert len(io.parse(data, "x.json").person_id) == len(gt["annotations"])
