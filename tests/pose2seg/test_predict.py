"""Which ground-truth persons `predict` segments: the clean protocol and the official test.py loop.

The oracle is the official loop's selection written against pycocotools as the official
``datasets/CocoDatasetInfo.py`` + ``test.py`` do it: images of category 1 sorted by id, each
image's annotations in file order, area > 0 and a box of more than one pixel once clipped,
keypoints stored in int32 arrays, and an image without a valid annotation replaced by the next.
"""
from __future__ import annotations

import copy
import json
import logging

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO

import ochuman
from ochuman.benchmark import resolve_ground_truth
from ochuman.data import SAMPLE_ANNOTATIONS
from pose2seg.predict import persons_from_ground_truth, persons_of_the_official_loop


def official_loop(path) -> list[tuple]:
    """(image_id, keypoints (17, 3) int32) of every person the official test loop segments, in
    its order. A step that runs past the last image (IndexError there) yields nothing."""
    coco = COCO(str(path))
    ids = sorted(coco.getImgIds(catIds=[1]))

    def item(idx):
        image_id = ids[idx]
        info = coco.loadImgs(image_id)[0]
        width, height = info["width"], info["height"]
        kept = []
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id, catIds=[1], iscrowd=None)):
            if ann["area"] < 0 or ann.get("ignore") == 1:
                continue
            x, y, w, h = ann["bbox"]
            x1, y1 = min(width - 1.0, max(0.0, x)), min(height - 1.0, max(0.0, y))
            x2, y2 = min(width - 1.0, max(0.0, x + w - 1)), min(height - 1.0, max(0.0, y + h - 1))
            if ann["area"] > 0 and x2 > x1 and y2 > y1:
                kept.append(ann)
        if not kept:
            return item(idx + 1)
        out = []
        for ann in kept:
            kp = np.array(ann["keypoints"])
            stored = np.ones((3, 17), dtype=np.int32)
            for j in range(17):  # element-wise assignment into int32, as the loader does
                stored[0, j], stored[1, j], stored[2, j] = kp[3 * j], kp[3 * j + 1], kp[3 * j + 2]
            out.append((image_id, stored.T.copy()))
        return out

    persons = []
    for idx in range(len(ids)):
        try:
            persons += item(idx)
        except IndexError:
            pass
    return persons


def _ours(path):
    gt = resolve_ground_truth(gt=path)
    persons = persons_of_the_official_loop(gt)
    return gt, persons, [(gt.image_ids[i].item(), kp) for i, kp in zip(persons.image_index, persons.keypoints)]


def _assert_same(ours, expected):
    assert [i for i, _ in ours] == [i for i, _ in expected]
    for (_, ours_kp), (_, expected_kp) in zip(ours, expected):
        np.testing.assert_array_equal(ours_kp, expected_kp.astype(np.float64))


def _write(tmp_path, data, name="gt.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_coco_sample_official_loop_segments_every_valid_annotation(coco_sample):
    gt, persons, ours = _ours(coco_sample)
    _assert_same(ours, official_loop(coco_sample))
    clean = persons_from_ground_truth(gt)
    assert (len(persons), len(clean)) == (14, 12)  # the two persons without keypoints are segmented too
    assert persons.protocol == "official" and clean.protocol == "clean"
    assert sorted((persons.keypoints[..., 2] > 0).sum(1).tolist())[:2] == [0, 0]


def test_official_keypoints_are_truncated_to_integers_as_the_loader_stores_them(ochuman_coco_sample):
    gt, persons, ours = _ours(ochuman_coco_sample)
    _assert_same(ours, official_loop(ochuman_coco_sample))
    clean = persons_from_ground_truth(gt)
    assert len(persons) == len(clean) == 5
    np.testing.assert_array_equal(persons.keypoints, np.trunc(clean.keypoints))
    assert (persons.keypoints != clean.keypoints).any()  # the sample's float keypoints moved


def test_native_file_official_loop_is_that_of_its_official_file(tmp_path):
    official = _write(tmp_path, ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val"))
    gt = resolve_ground_truth(gt=SAMPLE_ANNOTATIONS)
    persons = persons_of_the_official_loop(gt)
    _assert_same([(gt.image_ids[i].item(), kp) for i, kp in zip(persons.image_index, persons.keypoints)],
                 official_loop(official))


def test_an_image_without_a_valid_annotation_is_replaced_by_the_next(coco_sample, tmp_path):
    data = json.loads(coco_sample.read_text())
    for ann in data["annotations"]:
        if ann["image_id"] == 40083:  # no valid annotation left in the second image
            ann["bbox"][2] = 1.0 if ann["id"] == 198196 else ann["bbox"][2]
            ann["area"] = ann["area"] if ann["id"] == 198196 else 0
        if ann["id"] == 437295:
            ann["iscrowd"] = 1  # a crowd region is segmented too
    path = _write(tmp_path, data)
    _, persons, ours = _ours(path)
    _assert_same(ours, official_loop(path))
    sequence = [i for i, _ in ours]
    assert 40083 not in sequence and sequence.count(196141) == 2 * 5  # the third image, twice
    assert sequence.count(197388) == 5


def test_no_next_image_is_a_warning_and_nothing_for_the_last_images(coco_sample, tmp_path, caplog):
    data = json.loads(coco_sample.read_text())
    for ann in data["annotations"]:
        if ann["image_id"] == 197388:  # the last image by id
            ann["area"] = 0
    path = _write(tmp_path, data)
    with caplog.at_level(logging.WARNING, logger="pose2seg.predict"):
        _, persons, ours = _ours(path)
    _assert_same(ours, official_loop(path))
    assert 197388 not in {i for i, _ in ours} and len(ours) == 9
    warned = [r.getMessage() for r in caplog.records if r.name == "pose2seg.predict"]
    assert len(warned) == 1 and "the last 1 image(s) of the official loop have no valid annotation" in warned[0]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["keep", "area0", "thin", "outside", "crowd", "negative"]),
                          st.floats(-3, 3)), min_size=14, max_size=14),
       st.permutations([785, 40083, 196141, 197388]))
def test_official_selection_equals_the_official_loop_on_mutated_files(coco_sample, tmp_path, edits, new_ids):
    """Differential test: random areas, degenerate or off-image boxes, crowd flags, image ids and
    sub-pixel keypoint shifts (negative coordinates truncate towards zero)."""
    data = copy.deepcopy(json.loads(coco_sample.read_text()))
    rename = dict(zip([785, 40083, 196141, 197388], new_ids))
    for image in data["images"]:
        image["id"] = rename[image["id"]]
    for ann, (edit, shift) in zip(data["annotations"], edits):
        ann["image_id"] = rename[ann["image_id"]]
        ann["keypoints"] = [v + shift if k % 3 != 2 and ann["keypoints"][k - k % 3 + 2] else v
                            for k, v in enumerate(ann["keypoints"])]
        if edit == "area0":
            ann["area"] = 0
        elif edit == "thin":
            ann["bbox"][3] = 0.9
        elif edit == "outside":
            ann["bbox"][0] = 5000.0
        elif edit == "crowd":
            ann["iscrowd"] = 1
        elif edit == "negative":
            ann["area"] = -1.0
    path = _write(tmp_path, data)
    _, _, ours = _ours(path)
    _assert_same(ours, official_loop(path))


def test_unknown_protocol_is_refused(coco_sample):
    with pytest.raises(ValueError, match="protocol: expected one of clean, official"):
        persons_from_ground_truth(resolve_ground_truth(gt=coco_sample), "paper")
