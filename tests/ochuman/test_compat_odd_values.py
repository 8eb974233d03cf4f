"""``ochuman.compat`` against pycocotools where a field holds a value of another type or an odd
number: "0" and "1", null, booleans, 0.5 and 1e-320, -1 and 256, NaN, infinities, 2 ** 70, lists
and objects in ``iscrowd``, ``num_keypoints``, ``area``, ``score``, ``category_id`` and the
numbers of boxes and keypoints, and in whole boxes and keypoint lists (ground truth as a dict
and as a file, results as a list and as a file).

pycocotools reads them with Python's rules: ``iscrowd`` is an ignore region where ``bool()``
says so and a crowd where ``int()`` does (0.5: the one, not the other), ``num_keypoints`` ignores
a person only where ``== 0`` holds ("0" does not), a string area or score raises. The drop-in
gives its numbers, or raises where it raises, with its exception type.
"""
from __future__ import annotations

import copy
import json
import math
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.cocoeval import Params

from ochuman import compat

from .test_compat_differential import COMMON, OURS, PYCOCOTOOLS, _evaluation, assert_same_outcome

ODD_VALUES = ("0", "1", "x", None, True, False, 0.5, -0.5, 1e-320, 0.0, 1.0, 2, -1, 256, math.nan, math.inf,
              2 ** 70, [], {}, [1])
SIGMAS = Params("keypoints").kpt_oks_sigmas
SIZE = (40, 40)


def _box_polygon(box) -> list:
    x, y, w, h = box
    return [x, y, x + w, y, x + w, y + h, x, y + h]


@st.composite
def plain_scenes(draw):
    """Two images with up to three persons each (boxes, polygons, 17 keypoints) and detections
    near them carrying every field (masks as compressed RLE)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    images, annotations, results = [], [], []
    for image_id in (1, 2):
        images.append({"id": image_id, "height": SIZE[0], "width": SIZE[1], "file_name": f"{image_id}.jpg"})
        for _ in range(draw(st.integers(1, 3))):
            box = [float(v) for v in np.round([*rng.uniform(0, 20, 2), *rng.uniform(4, 18, 2)], 1)]
            joints = np.round(np.stack([box[0] + rng.random(17) * box[2], box[1] + rng.random(17) * box[3],
                                        rng.integers(0, 3, 17)], axis=1), 1).ravel().tolist()
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": 1, "bbox": box,
                "area": box[2] * box[3], "iscrowd": 0, "segmentation": [_box_polygon(box)],
                "keypoints": joints, "num_keypoints": int(sum(v > 0 for v in joints[2::3]))})
            for score in rng.choice([0.2, 0.5, 0.9], size=int(rng.integers(0, 3))):
                moved = [box[0] + float(rng.integers(-2, 3)), box[1] + float(rng.integers(-2, 3)), box[2], box[3]]
                results.append({"image_id": image_id, "category_id": 1, "bbox": moved, "score": float(score),
                                "keypoints": [v + float(rng.integers(-1, 2)) if k % 3 < 2 else 1.0
                                              for k, v in enumerate(joints)],
                                "segmentation": _box_rle(moved)})
    if not results:
        results.append({"image_id": 1, "category_id": 1, "bbox": [1.0, 1.0, 5.0, 5.0], "score": 0.5,
                        "keypoints": [1.0, 1.0, 1.0] * 17, "segmentation": _box_rle([1.0, 1.0, 5.0, 5.0])})
    gt = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    return gt, results


def _box_rle(box) -> dict:
    rle = mask_utils.frPyObjects([_box_polygon(box)], *SIZE)[0]
    return {"size": rle["size"], "counts": rle["counts"].decode()}


GT_FIELDS = (("iscrowd",), ("num_keypoints",), ("area",), ("bbox",), ("bbox", 2), ("keypoints",), ("keypoints", 0),
             ("keypoints", 2), ("category_id",))
RESULT_FIELDS = (("score",), ("bbox",), ("bbox", 2), ("keypoints",), ("keypoints", 0), ("keypoints", 2),
                 ("category_id",))


def _set(record: dict, field: tuple, value) -> None:
    at = record
    for key in field[:-1]:
        at = at[key]
    at[field[-1]] = copy.deepcopy(value)


@st.composite
def odd_value_scenes(draw):
    """A plain scene with one value replaced (with two, which raises first follows pycocotools'
    order of work, image by image, that the drop-in does not keep)."""
    gt, results = draw(plain_scenes())
    in_gt = draw(st.booleans())
    field = draw(st.sampled_from(GT_FIELDS if in_gt else RESULT_FIELDS))
    # (keypoint lists of another length are refused, pycocotools computes with some: documented)
    value = draw(st.sampled_from([v for v in ODD_VALUES if field != ("keypoints",) or not isinstance(v, list)]))
    if field[0] == "keypoints" and value == 2 ** 70:
        value = 2 ** 62  # (a JSON integer beyond 2 ** 64 among keypoints: see test_big_ints_among_keypoints)
    records = gt["annotations"] if in_gt else results
    _set(records[draw(st.integers(0, len(records) - 1))], field, value)
    return gt, results


@pytest.mark.differential
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # pycocotools' own, on inf - inf
@settings(COMMON, max_examples=300)  # (a few ms each)
@given(scene=odd_value_scenes(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]), from_file=st.booleans(),
       results_from_file=st.booleans(), use_cats=st.sampled_from([1, 1, 0]))
def test_odd_values_equal_pycocotools(scene, iou_type, from_file, results_from_file, use_cats):
    gt, results = scene
    params = {} if use_cats else {"useCats": 0}
    with tempfile.TemporaryDirectory() as folder:
        path = results_path = None
        if from_file:
            path = f"{folder}/gt.json"
            with open(path, "w") as handle:
                json.dump(gt, handle)
        if results_from_file:
            results_path = f"{folder}/results.json"
            with open(results_path, "w") as handle:
                json.dump(results, handle)
        ours = _evaluation(OURS, gt, results, iou_type, SIGMAS, params, gt_file=path, results_file=results_path)
        oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, SIGMAS, params, gt_file=path,
                             results_file=results_path)
    # (pycocotools' ious under useCats=0 keypoints are its unpooled ones: see _pooled_oks)
    assert_same_outcome(ours, oracle, compare_internals=use_cats or iou_type != "keypoints")


def _scene() -> tuple[dict, list]:
    gt = {"images": [{"id": 1, "height": SIZE[0], "width": SIZE[1], "file_name": "1.jpg"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2.0, 2.0, 10.0, 10.0], "area": 100.0,
                           "iscrowd": 0, "segmentation": [_box_polygon([2.0, 2.0, 10.0, 10.0])],
                           "keypoints": [5.0, 5.0, 2.0] * 17, "num_keypoints": 17}],
          "categories": [{"id": 1, "name": "person"}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [2.0, 3.0, 10.0, 10.0], "score": 0.9,
                "keypoints": [5.0, 6.0, 1.0] * 17, "segmentation": _box_rle([2.0, 3.0, 10.0, 10.0])}]
    return gt, results


@pytest.mark.parametrize("value", [0.5, "1", 2 ** 70])
def test_annotation_ids_that_are_no_int64_are_refused(value):
    """pycocotools writes a matched ground truth's id into float arrays (an id of 0.5 counts as a
    match, 0 does not; "1" is parsed): ids are int64 here, and others refused naming them."""
    gt, results = _scene()
    gt["annotations"][0]["id"] = value
    ours = _evaluation(OURS, gt, results, "bbox", None, {})
    assert isinstance(ours, tuple) and ours[0] == "evaluate", ours
    assert isinstance(ours[1], compat.FieldTypeError) and f"annotation id {value!r}: id" in str(ours[1])
    assert not isinstance(_evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {}), tuple)  # (it computes)


@pytest.mark.parametrize("from_file", [False, True])
def test_big_ints_among_keypoints(from_file, tmp_path):
    """A keypoint of 2 ** 70 makes pycocotools' array one of Python objects, and its OKS raises
    TypeError: the drop-in raises so for records, and reads a file's as the float it is."""
    gt, results = _scene()
    gt["annotations"][0]["keypoints"][0] = 2 ** 70
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ours = _evaluation(OURS, gt, results, "keypoints", SIGMAS, {}, gt_file=path if from_file else None)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, "keypoints", SIGMAS, {}, gt_file=path if from_file else None)
    assert isinstance(oracle, tuple) and isinstance(oracle[1], TypeError)
    if from_file:  # as pycocotools computes with 2.0 ** 70
        gt["annotations"][0]["keypoints"][0] = 2.0 ** 70
        as_float = _evaluation(PYCOCOTOOLS, gt, results, "keypoints", SIGMAS, {})
        assert not isinstance(ours, tuple)
        np.testing.assert_array_equal(ours.stats, as_float.stats)
    else:
        assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("field, value, error", [("category_id", [], compat.FieldTypeError),
                                                 ("image_id", {}, compat.FieldTypeError),
                                                 ("category_id", None, None)])
def test_index_keys_that_cannot_be_keys(field, value, error, tmp_path):
    """pycocotools' createIndex keys its dicts by image_id, id and category_id: a list or an
    object there raises TypeError, in the ground truth (from a dict or a file) and in results;
    one line naming the record here."""
    gt, results = _scene()
    gt["annotations"][0][field] = value
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    for gt_file in (None, path):
        ours = _evaluation(OURS, gt, results, "bbox", None, {}, gt_file=gt_file)
        oracle = _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {}, gt_file=gt_file)
        assert_same_outcome(ours, oracle)
        if error is not None:
            assert isinstance(ours[1], error) and f"annotations[0]: {field}: {value!r}" in str(ours[1])
    gt, results = _scene()
    results[0][field] = value
    ours = _evaluation(OURS, gt, results, "bbox", None, {})
    assert_same_outcome(ours, _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {}))
    if error is not None:
        assert isinstance(ours[1], error) and f"record 0: {field}: {value!r}" in str(ours[1])


def test_results_against_a_ground_truth_without_images():
    gt, results = _scene()
    del gt["images"]
    ours = _evaluation(OURS, gt, results, "bbox", None, {})
    assert_same_outcome(ours, _evaluation(PYCOCOTOOLS, gt, results, "bbox", None, {}))
    assert isinstance(ours[1], compat.MissingFieldError) and "images missing" in str(ours[1])


@pytest.mark.parametrize("box", ["1", [], {}, [1], [1, 2, 3, 4, 5], ["1", "2", "3", "4"], [None, 1, 2, 3], "abcd",
                                 [1, 2, 3, {}]])
def test_a_ground_truth_box_as_oks_reads_it(box):
    """computeOks reads a person's box as bb[0] - bb[2], bb[1] + bb[3] * 2, ...: its first four
    values (five are taken), raising IndexError, KeyError or TypeError as those expressions do."""
    gt, results = _scene()
    gt["annotations"][0]["bbox"] = box
    ours = _evaluation(OURS, gt, results, "keypoints", SIGMAS, {})
    assert_same_outcome(ours, _evaluation(PYCOCOTOOLS, gt, results, "keypoints", SIGMAS, {}))


@pytest.mark.parametrize("coordinate", [None, math.nan, math.inf, 2 ** 70, 1e30, -5e8])
@pytest.mark.parametrize("from_file", [False, True])
def test_polygon_coordinates_pycocotools_cannot_draw(coordinate, from_file, tmp_path):
    """pycocotools casts 5 x + 0.5 to a C int to draw a polygon: past +-429496729 (null and NaN
    too) its walk along an edge spans ~2^31 points and never returns. Refused in one line,
    naming the annotation."""
    gt, results = _scene()
    gt["annotations"][0]["segmentation"][0][3] = coordinate
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ours = _evaluation(OURS, gt, results, "segm", None, {}, gt_file=path if from_file else None)
    assert isinstance(ours, tuple) and isinstance(ours[1], compat.FieldOverflowError), ours
    assert "annotation id 1: segmentation: polygon coordinate" in str(ours[1])


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
@pytest.mark.parametrize("field, value", [
    *(("iscrowd", v) for v in (0.5, -0.5, 1e-320, "0", "1", True, False, 2, 1.0, 0.0)),
    *(("num_keypoints", v) for v in (0.5, -0.5, 1e-320, -1, "0", None, {}, True, False, 0.0, -0.0, 2 ** 70))])
@pytest.mark.parametrize("from_file", [False, True])
def test_the_one_person_ignored_or_counted_as_pycocotools_decides(field, value, iou_type, from_file, tmp_path):
    """One person, one detection on it: AP 1 where it counts, -1 where pycocotools' rules make it
    an ignore region (bool(iscrowd), num_keypoints == 0)."""
    gt, results = _scene()
    gt["annotations"][0][field] = value
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    ours = _evaluation(OURS, gt, results, iou_type, SIGMAS, {}, gt_file=path if from_file else None)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, SIGMAS, {}, gt_file=path if from_file else None)
    assert_same_outcome(ours, oracle)
