"""Keypoint detectors' outputs read for images without a ground-truth file (ochuman.pose_files).

The joint maps are checked against OpenPose's documented orders, written here independently:
BODY_25 (0 nose, 1 neck, 2-4 right arm, 5-7 left arm, 8 mid hip, 9-11 right leg, 12-14 left leg,
15/16 right/left eye, 17/18 right/left ear, 19-24 feet) and COCO-18 (as BODY_25 without the mid
hip and the feet: 8-10 right leg, 11-13 left leg, 14/15 eyes, 16/17 ears).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ochuman.errors import FormatError, ImageNotFoundError, OCHumanError
from ochuman.pose_files import images_of_poses, read_detected_poses

# COCO joint k is OpenPose joint MAP[k] (COCO order: nose, eyes L/R, ears L/R, shoulders L/R, ...)
BODY_25_OF_COCO = [0, 16, 15, 18, 17, 5, 2, 6, 3, 7, 4, 12, 9, 13, 10, 14, 11]
COCO_18_OF_COCO = [0, 15, 14, 17, 16, 5, 2, 6, 3, 7, 4, 11, 8, 12, 9, 13, 10]


def _openpose_person(count: int, rng) -> np.ndarray:
    """(count, 3): joint j at x = 1000 + j, random y and confidence."""
    joints = np.column_stack([1000.0 + np.arange(count), rng.uniform(0, 500, count), rng.uniform(0, 1, count)])
    return joints


def _write_frame(folder: Path, stem: str, people: list[np.ndarray]) -> None:
    frame = {"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": p.reshape(-1).tolist(),
                                         "face_keypoints_2d": []} for p in people]}
    (folder / f"{stem}_keypoints.json").write_text(json.dumps(frame))


def _write_image(path: Path, height: int, width: int) -> None:
    assert cv2.imwrite(str(path), np.full((height, width, 3), 127, np.uint8))


@pytest.mark.parametrize("count, of_coco", [(25, BODY_25_OF_COCO), (18, COCO_18_OF_COCO)])
def test_openpose_joints_come_out_in_coco_order(tmp_path, count, of_coco):
    rng = np.random.default_rng(count)
    people = [_openpose_person(count, rng) for _ in range(3)]
    _write_frame(tmp_path, "b", people[:2])
    _write_frame(tmp_path, "a", people[2:])
    _write_frame(tmp_path, "c", [])  # an image without persons is still an image
    poses = read_detected_poses(tmp_path)
    assert poses.by_stem and poses.image_names == ("a", "b", "c")
    assert poses.image_of.tolist() == [0, 1, 1]
    for person, expected in zip(poses.keypoints, [people[2], people[0], people[1]]):
        np.testing.assert_array_equal(person, expected[of_coco])
    # OpenPose gives no person score: the mean confidence of the 17 COCO joints
    np.testing.assert_allclose(poses.score, [p[of_coco, 2].mean() for p in (people[2], people[0], people[1])])


@pytest.mark.parametrize("count, name", [(17, "COCO"), (26, "Halpe-26"), (133, "COCO-WholeBody"), (136, "Halpe-136")])
def test_records_of_layouts_that_begin_with_coco_keep_their_first_17_joints(tmp_path, count, name):
    rng = np.random.default_rng(count)
    joints = [rng.uniform(0, 100, (count, 3)) for _ in range(3)]
    records = [{"image_id": f, "category_id": 1, "keypoints": j.reshape(-1).tolist(), "score": s, "box": [0, 0, 1, 1]}
               for f, j, s in zip(["y.jpg", "x.jpg", "y.jpg"], joints, [0.9, 0.5, 0.7])]
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(records))
    poses = read_detected_poses(path)
    assert not poses.by_stem and poses.image_names == ("y.jpg", "x.jpg") and poses.image_of.tolist() == [0, 1, 0]
    assert poses.image_where == ("record 0 (image_id 'y.jpg')", "record 1 (image_id 'x.jpg')")
    np.testing.assert_array_equal(poses.keypoints, np.stack([j[:17] for j in joints]))
    assert poses.score.tolist() == [0.9, 0.5, 0.7]


@pytest.mark.parametrize("record, message", [
    ({"image_id": 3, "keypoints": [0] * 51}, "record 0 (image_id 3): a number names no image file: give --gt FILE"),
    ({"image_id": "a.jpg"}, "record 0 (image_id 'a.jpg'): no keypoints"),
    ({"image_id": "a.jpg", "keypoints": [0] * 50},
     "record 0 (image_id 'a.jpg'): keypoints: expected 3 x 17 (COCO), 3 x 26 (Halpe-26), 3 x 133 (COCO-WholeBody) "
     "or 3 x 136 (Halpe-136) numbers, got 50"),
    ({"image_id": "a.jpg", "keypoints": [0] * 54}, "keypoints: expected 3 x 17 (COCO)"),
    ({"image_id": "a.jpg", "keypoints": [0] * 50 + [float("nan")]}, "record 0 (image_id 'a.jpg'): keypoints: NaN"),
    ({"image_id": "a.jpg", "keypoints": [0] * 51, "score": float("inf")}, "record 0: score: expected a finite"),
])
def test_bad_records_are_one_line_errors_naming_the_record(tmp_path, record, message):
    path = tmp_path / "kp.json"
    path.write_text(json.dumps([{"category_id": 1, "score": 1.0, **record}]))
    with pytest.raises(FormatError) as caught:
        read_detected_poses(path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_openpose_files_are_one_line_errors(tmp_path):
    with pytest.raises(OCHumanError, match="no OpenPose file"):
        read_detected_poses(tmp_path)
    _write_frame(tmp_path, "a", [np.zeros((25, 3)), np.zeros((19, 3))])
    with pytest.raises(FormatError) as caught:
        read_detected_poses(tmp_path)
    assert str(caught.value) == (f"{tmp_path / 'a_keypoints.json'}: people[1]: pose_keypoints_2d: expected "
                                 "75 (BODY_25) or 54 (COCO-18) numbers, got 57")
    (tmp_path / "a_keypoints.json").write_text('{"people": [')
    with pytest.raises(FormatError, match="a_keypoints.json: not an OpenPose --write_json file"):
        read_detected_poses(tmp_path)
    (tmp_path / "a_keypoints.json").write_text('{"people": [{"pose_keypoints_2d": null}]}')
    with pytest.raises(FormatError, match="a_keypoints.json: not an OpenPose --write_json file"):
        read_detected_poses(tmp_path)
    with pytest.raises(OCHumanError, match="no such file or folder"):
        read_detected_poses(tmp_path / "absent.json")


def test_images_are_numbered_in_file_name_order_with_the_sizes_opencv_decodes(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    sizes = {"b.png": (40, 30), "a.jpg": (20, 50), "c.jpg": (10, 12)}
    for name, (h, w) in sizes.items():
        _write_image(images / name, h, w)
    records = [{"image_id": name, "category_id": 1, "keypoints": [k] * 51, "score": 1.0}
               for k, name in enumerate(["c.jpg", "b.png", "c.jpg", "a.jpg"])]
    (tmp_path / "kp.json").write_text(json.dumps(records))
    table, image_index = images_of_poses(read_detected_poses(tmp_path / "kp.json"), images)
    assert table.file_names == ["a.jpg", "b.png", "c.jpg"] and table.image_ids.tolist() == [1, 2, 3]
    assert table.image_sizes.tolist() == [list(sizes[n]) for n in table.file_names]
    assert [table.file_names[k] for k in image_index] == ["c.jpg", "b.png", "c.jpg", "a.jpg"]


def test_openpose_stems_find_their_image_whatever_the_suffix(tmp_path):
    images, json_dir = tmp_path / "images", tmp_path / "json"
    images.mkdir()
    json_dir.mkdir()
    _write_image(images / "p.JPG", 8, 9)
    _write_image(images / "q.png", 5, 6)
    (images / "q_keypoints.json").write_text("{}")  # not an image: ignored
    _write_frame(json_dir, "q", [np.zeros((25, 3))])
    _write_frame(json_dir, "p", [np.zeros((18, 3)), np.zeros((18, 3))])
    table, image_index = images_of_poses(read_detected_poses(json_dir), images)
    assert table.file_names == ["p.JPG", "q.png"] and table.image_sizes.tolist() == [[8, 9], [5, 6]]
    assert image_index.tolist() == [0, 0, 1]
    _write_image(images / "q.jpg", 5, 6)
    with pytest.raises(ImageNotFoundError) as caught:
        images_of_poses(read_detected_poses(json_dir), images)
    assert str(caught.value) == f"{json_dir / 'q_keypoints.json'}: several images of stem 'q' in {images} (q.jpg, q.png)"
    (images / "q.jpg").unlink()
    _write_frame(json_dir, "r", [])
    with pytest.raises(ImageNotFoundError, match=r"r_keypoints.json: no image named r\.\*"):
        images_of_poses(read_detected_poses(json_dir), images)


@pytest.mark.parametrize("name", ["../outside.jpg", "/abs/outside.jpg", "sub/../../outside.jpg"])
def test_image_names_that_leave_the_folder_are_refused(tmp_path, name):
    images = tmp_path / "images"
    images.mkdir()
    _write_image(tmp_path / "outside.jpg", 4, 4)
    (tmp_path / "kp.json").write_text(json.dumps([{"image_id": name, "category_id": 1, "keypoints": [0] * 51,
                                                   "score": 1.0}]))
    with pytest.raises(FormatError) as caught:
        images_of_poses(read_detected_poses(tmp_path / "kp.json"), images)
    assert str(caught.value) == (f"{tmp_path / 'kp.json'}: record 0 (image_id {name!r}): {name!r} points outside "
                                 "the images folder; refused")


def test_a_missing_image_names_its_record(tmp_path):
    (tmp_path / "kp.json").write_text(json.dumps([{"image_id": "gone.jpg", "category_id": 1, "keypoints": [0] * 51,
                                                   "score": 1.0}]))
    with pytest.raises(ImageNotFoundError) as caught:
        images_of_poses(read_detected_poses(tmp_path / "kp.json"), tmp_path)
    assert str(caught.value) == (f"{tmp_path / 'gone.jpg'}: the image of record 0 (image_id 'gone.jpg') in "
                                 f"{tmp_path / 'kp.json'} is missing or unreadable")
    with pytest.raises(OCHumanError, match="no such images folder"):
        images_of_poses(read_detected_poses(tmp_path / "kp.json"), tmp_path / "absent")


def test_sizes_follow_the_exif_orientation_opencv_applies(tmp_path):
    """A phone picture stored landscape with EXIF orientation 6 is decoded portrait, and the
    detector's keypoints are in that frame: its size is the decoded one."""
    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.new("RGB", (60, 20), (90, 90, 90)).save(tmp_path / "phone.jpg", exif=exif)
    decoded = cv2.imread(str(tmp_path / "phone.jpg")).shape[:2]
    assert decoded == (60, 20)  # OpenCV applies the orientation
    (tmp_path / "kp.json").write_text(json.dumps([{"image_id": "phone.jpg", "category_id": 1, "keypoints": [0] * 51,
                                                   "score": 1.0}]))
    table, _ = images_of_poses(read_detected_poses(tmp_path / "kp.json"), tmp_path)
    assert table.image_sizes.tolist() == [list(decoded)]
