"""Keypoint detectors' outputs on images that have no ground-truth file: persons on images.

:func:`read_detected_poses` reads two shapes:

- a folder of OpenPose ``--write_json`` files, ``<image stem>_keypoints.json``, each
  ``{"people": [{"pose_keypoints_2d": [x, y, c] * K, ...}, ...]}`` with K = 25 (BODY_25) or 18
  (COCO-18). The image is the file of that stem in the images folder, whatever its suffix.
  Every file names an image, people or not;
- a JSON list of COCO keypoint records (AlphaPose's ``alphapose-results.json``, ...) whose
  ``image_id`` is the image's file name, relative to the images folder, and whose ``keypoints``
  hold 3 x K numbers with K = 17 (COCO), 26 (Halpe-26), 133 (COCO-WholeBody) or 136 (Halpe-136).

Joints come out in COCO's order (:mod:`ochuman.keypoints`) with the detector's confidence as
their third column. A person's score is its record's ``score``; OpenPose gives none, so there it
is the mean confidence of the person's 17 COCO joints. :func:`images_of_poses` finds the image
files, numbers them 1..M in file-name order and reads their sizes as OpenCV decodes them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Union

import msgspec
import numpy as np

from ochuman.errors import FormatError, ImageNotFoundError, OCHumanError
from ochuman.keypoints import (
    COCO_PREFIX_LAYOUTS, NUM_COCO_KEYPOINTS, OPENPOSE_LAYOUTS, coco_index_in, coco_prefix,
)

#: suffixes of the files an OpenPose stem may name (compared in lower case)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".jp2", ".ppm", ".pgm")
#: OpenPose's ``--write_json`` file name: <image stem> + this
OPENPOSE_SUFFIX = "_keypoints.json"


@dataclass(frozen=True, eq=False)
class DetectedPoses:
    """Persons found by a keypoint detector.

    image_names (M,): every image the source names (file names; OpenPose: file stems);
    image_where (M,): the record that first names each image, for messages; image_of (N,):
    each person's index into image_names; keypoints (N, 17, 3): x, y in pixels and the
    confidence, COCO order; score (N,)."""

    source: str
    image_names: tuple[str, ...]
    image_where: tuple[str, ...]
    by_stem: bool
    image_of: np.ndarray
    keypoints: np.ndarray
    score: np.ndarray

    def __len__(self) -> int:
        return len(self.score)


@dataclass(frozen=True, eq=False)
class ImageTable:
    """Images numbered 1..M: image_ids (M,) int64, file_names (M,) relative to the images
    folder, image_sizes (M, 2) [height, width] in pixels; source: what named them. The
    fields a prediction reads of a ground truth (:class:`~ochuman.eval.ground_truth.GroundTruth`)."""

    source: str
    image_ids: np.ndarray
    file_names: list[str]
    image_sizes: np.ndarray


def read_detected_poses(path: Union[str, os.PathLike]) -> DetectedPoses:
    """The persons of an OpenPose folder or of a JSON list of keypoint records (module doc)."""
    path = Path(path)
    if path.is_dir():
        return _read_openpose_folder(path)
    if not path.exists():
        raise OCHumanError(f"{path}: no such file or folder")
    return _read_keypoint_records(path)


def _read_keypoint_records(path: Path) -> DetectedPoses:
    from ochuman.eval.results import read_results

    records = read_results(path)
    names: dict[str, int] = {}
    where: list[str] = []
    image_of = np.empty(len(records), dtype=np.int64)
    keypoints = np.empty((len(records), NUM_COCO_KEYPOINTS, 3))
    for i, record in enumerate(records):
        at = f"record {i} (image_id {record.image_id!r})"
        if not isinstance(record.image_id, str):
            raise FormatError.at(path, at, "a number names no image file: give --gt FILE, whose images it numbers, "
                                           "or write the image's file name as image_id (as AlphaPose does)")
        values = record.keypoints
        if values is None:
            raise FormatError.at(path, at, "no keypoints")
        count, rest = divmod(len(values), 3)
        if rest or count not in COCO_PREFIX_LAYOUTS:
            *first, last = (f"3 x {k} ({name})" for k, name in COCO_PREFIX_LAYOUTS.items())
            layouts = f"{', '.join(first)} or {last}"
            raise FormatError.at(path, at, f"keypoints: expected {layouts} numbers, got {len(values)}")
        joints = np.asarray(coco_prefix(values), dtype=np.float64).reshape(NUM_COCO_KEYPOINTS, 3)
        if not np.isfinite(joints).all():
            raise FormatError.at(path, at, "keypoints: NaN or infinite value")
        if record.image_id not in names:
            names[record.image_id] = len(names)
            where.append(at)
        image_of[i] = names[record.image_id]
        keypoints[i] = joints
    score = np.array([r.score for r in records], dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(score))
    if len(bad):
        raise FormatError.at(path, f"record {bad[0]}", f"score: expected a finite number, got {score[bad[0]]}")
    return DetectedPoses(source=str(path), image_names=tuple(names), image_where=tuple(where), by_stem=False,
                         image_of=image_of, keypoints=keypoints, score=score)


class _OpenPosePerson(msgspec.Struct):
    pose_keypoints_2d: list[float]


class _OpenPoseFrame(msgspec.Struct):
    people: list[_OpenPosePerson]


def _read_openpose_folder(folder: Path) -> DetectedPoses:
    files = sorted(f for f in os.listdir(folder) if f.endswith(OPENPOSE_SUFFIX) and (folder / f).is_file())
    if not files:
        raise OCHumanError(f"{folder}: no OpenPose file (*{OPENPOSE_SUFFIX}, written by --write_json) in this folder")
    decoder = msgspec.json.Decoder(_OpenPoseFrame)
    stems, where, image_of, keypoints, confidence = [], [], [], [], []
    for name in files:
        file = folder / name
        try:
            frame = decoder.decode(file.read_bytes())
        except OSError as err:
            raise OCHumanError(f"{file}: cannot read: {err.strerror or err}") from None
        except (msgspec.DecodeError, msgspec.ValidationError) as err:
            raise FormatError(f"{file}: not an OpenPose --write_json file ({err})") from None
        stems.append(name[:-len(OPENPOSE_SUFFIX)])
        where.append(name)
        for p, person in enumerate(frame.people):
            values = person.pose_keypoints_2d
            count, rest = divmod(len(values), 3)
            if rest or count not in OPENPOSE_LAYOUTS:
                layouts = " or ".join(f"{3 * k} ({layout})" for k, (layout, _) in OPENPOSE_LAYOUTS.items())
                raise FormatError.at(file, f"people[{p}]", f"pose_keypoints_2d: expected {layouts} numbers, "
                                                           f"got {len(values)}")
            joints = np.asarray(values, dtype=np.float64).reshape(count, 3)[coco_index_in(OPENPOSE_LAYOUTS[count][1])]
            if not np.isfinite(joints).all():
                raise FormatError.at(file, f"people[{p}]", "pose_keypoints_2d: NaN or infinite value")
            image_of.append(len(stems) - 1)
            keypoints.append(joints)
            confidence.append(joints[:, 2].mean())
    return DetectedPoses(source=str(folder), image_names=tuple(stems), image_where=tuple(where), by_stem=True,
                         image_of=np.array(image_of, dtype=np.int64),
                         keypoints=np.array(keypoints, dtype=np.float64).reshape(-1, NUM_COCO_KEYPOINTS, 3),
                         score=np.array(confidence, dtype=np.float64))


def images_of_poses(poses: DetectedPoses, images_dir: Union[str, os.PathLike],
                    progress: Callable[[Iterable], Iterable] = iter) -> tuple[ImageTable, np.ndarray]:
    """The images ``poses`` name, found in ``images_dir``: (table, image_index (N,) of each
    person into it). Ids 1..M follow the file names' order; sizes are those OpenCV decodes
    (EXIF orientation applied, as detectors that read with OpenCV see the image). A missing or
    unreadable image, or a name that leaves the folder, is a one-line error naming the record."""
    from ochuman.records import image_file, read_image_file

    folder = Path(images_dir)
    if not folder.is_dir():
        raise OCHumanError(f"{folder}: no such images folder")
    if poses.by_stem:
        by_stem: dict[str, list[str]] = {}
        for name in os.listdir(folder):
            stem, suffix = os.path.splitext(name)
            if suffix.lower() in IMAGE_SUFFIXES:
                by_stem.setdefault(stem, []).append(name)
        file_names = []
        for stem, at in zip(poses.image_names, poses.image_where):
            found = sorted(by_stem.get(stem, []))
            if len(found) != 1:
                problem = (f"several images of stem {stem!r} in {folder} ({', '.join(found)})" if found
                           else f"no image named {stem}.* ({', '.join(IMAGE_SUFFIXES[:3])}, ...) in {folder}")
                raise ImageNotFoundError(f"{Path(poses.source) / at}: {problem}")
            file_names.append(found[0])
    else:
        file_names = list(poses.image_names)
    paths = []
    for name, at in zip(file_names, poses.image_where):
        try:
            paths.append(image_file(folder, name, poses.source, name))
        except FormatError:
            raise FormatError.at(poses.source, at, f"{name!r} points outside the images folder; refused") from None
    order = sorted(range(len(file_names)), key=file_names.__getitem__)
    sizes = np.zeros((len(file_names), 2), dtype=np.int64)
    for k in progress(order):
        what = f"the image of {poses.image_where[k]} in {poses.source}"
        sizes[k] = read_image_file(paths[k], what).shape[:2]
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    table = ImageTable(source=poses.source, image_ids=np.arange(1, len(order) + 1, dtype=np.int64),
                       file_names=[file_names[k] for k in order], image_sizes=sizes[order])
    return table, rank[poses.image_of]
