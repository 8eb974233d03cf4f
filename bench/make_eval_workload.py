"""Write a seeded OCHuman-val-scale COCO evaluation workload: ground truth, MaxIoU, results.

    python bench/make_eval_workload.py --out bench/out/eval_s1 [--seed 0] [--scale 1]

Ground truth, in the official OCHuman COCO format (what OCHumanApi ``toCocoFormart`` writes and
``ochuman convert`` reproduces): ``ochuman_coco_format_val_range_0.00_1.00.json`` with 2500
images and 4313 persons at ``--scale 1`` (x10 at ``--scale 10``), 1..6 persons per image,
image sizes 500..1000 px (most 1000 on the long side), integer ``[x, y, w, h]`` boxes that
overlap like OCHuman's, ``area`` = box ``w * h``, ``iscrowd`` 0, 17 COCO keypoints (face points
float, body joints int, missing = 0, 0, 0, ``v`` in {0, 1, 2}, ``num_keypoints`` = labelled
joints), ``segmentation`` a compressed RLE (ASCII counts) of a person-like shape (head, neck,
torso and eight limb capsules as polygons inside the box, rasterised with pycocotools
``frPyObjects`` and merged), the COCO person category with keypoints and skeleton, ``info`` {}.

``max_iou.json``: annotation id (of the file above) -> the person's MaxIoU as the authors
stored it (float32), recomputed from the boxes with the official inclusive convention for
persons that share an image, drawn from the same distribution for persons alone (their partner
is a box-only person that the COCO file does not hold). Mostly in [0.5, 1); a few below 0.5;
never 1.0 (no two boxes of an image are identical, so the box MaxIoU is below 1 too), so that
the 0.00_1.00 file holds every person under the official half-open rule.
``ochuman_coco_format_val_range_0.00_1.00_with_max_iou.json``: the same file with that value as
a ``max_iou`` field of each annotation (for tools that split Moderate / Hard themselves).

The official range files: ``ochuman_coco_format_val_range_0.50_0.75.json`` and
``..._0.75_1.00.json``: the persons whose MaxIoU is in ``[lo, hi)``, images with at least one
such person, in file order, renumbered 1, 2, ..., annotations renumbered 1, 2, ... .

Results (Detectron2-like, image by image, each image's detections by descending score), about
20 per image (~50000 at scale 1): for each person usually one close detection and sometimes
duplicates (jittered shape, box and keypoints), the rest false positives anywhere in the image;
scores in (0, 1), a quarter of them rounded to 2 decimals (ties); boxes, keypoints and their
confidences as float32 numbers print (16-17 significant digits, as Detectron2 and mmdet write them).

- ``results_segm.json``: ``image_id, category_id, bbox, score, segmentation`` (RLE, ASCII);
  with its ``bbox``, pycocotools ``loadRes`` takes the *box* area as the detection's area, as
  it does for Detectron2's ``coco_instances_results.json`` (OCHuman's ground-truth area is the
  box area too);
- ``results_bbox.json``: ``image_id, category_id, bbox, score``;
- ``results_keypoints.json``: ``image_id, category_id, keypoints`` (51 numbers, third = a
  per-joint confidence), ``score`` (no box: ``loadRes`` derives it from the keypoints);
- ``results_{type}_range_0.50_0.75.json`` / ``..._0.75_1.00.json``: the same detections
  remapped to the range files' image ids; detections on images not in the range file dropped.

``manifest.json`` lists the files and counts. JSON is compact (no indentation).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_native  # noqa: E402  (the same seeded overlapping-box placement)

from ochuman.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON  # noqa: E402
from ochuman.maxiou import max_iou_from_boxes_grouped  # noqa: E402

N_IMAGES, N_PERSONS = 2500, 4313  # OCHuman val, per unit of --scale
MIN_PERSONS, MAX_PERSONS = 1, 6
DETS_PER_IMAGE = (12, 29)  # uniform integer range: mean 20 detections per image
RANGES = ((0.0, 1.0), (0.5, 0.75), (0.75, 1.0))
IOU_TYPES = ("segm", "bbox", "keypoints")
PERSON_CATEGORY = {
    "supercategory": "person", "id": 1, "name": "person",
    "keypoints": list(COCO_KEYPOINT_NAMES), "skeleton": [list(p) for p in COCO_SKELETON],
}

# Joints in COCO order.
NOSE, L_EYE, R_EYE, L_EAR, R_EAR, L_SH, R_SH, L_EL, R_EL, L_WR, R_WR, L_HIP, R_HIP, L_KN, R_KN, \
    L_AN, R_AN = range(17)
FACE = 5  # joints 0..4 are stored as floats (as in the official file), the rest as integers
LIMBS = np.array([(L_SH, L_EL), (L_EL, L_WR), (R_SH, R_EL), (R_EL, R_WR),
                  (L_HIP, L_KN), (L_KN, L_AN), (R_HIP, R_KN), (R_KN, R_AN)])
LIMB_HALF_WIDTH = np.array([0.055, 0.045, 0.055, 0.045, 0.08, 0.065, 0.08, 0.065])  # x box width
# Points per polygon: head, neck, torso, 8 limbs.
POLY_POINTS = np.array([20, 10, 24] + [14] * 8)
N_POLYS = len(POLY_POINTS)


def range_file_name(lo: float, hi: float) -> str:
    return f"ochuman_coco_format_val_range_{lo:.2f}_{hi:.2f}.json"


def results_file_name(iou_type: str, lo: float = 0.0, hi: float = 1.0) -> str:
    return f"results_{iou_type}.json" if (lo, hi) == (0.0, 1.0) else f"results_{iou_type}_range_{lo:.2f}_{hi:.2f}.json"


# ----------------------------------------------------------------------------- geometry
def skeletons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Person-like joint layouts in box-normalised coordinates. Returns (n, 17, 2) in [0, 1]."""
    j = np.zeros((n, 17, 2))
    nose = np.stack([0.5 + rng.normal(0, 0.05, n), 0.09 + 0.04 * rng.random(n)], 1)
    j[:, NOSE] = nose
    side = np.array([1.0, -1.0])  # left, right
    for k, (eye, ear) in enumerate(((L_EYE, L_EAR), (R_EYE, R_EAR))):
        j[:, eye] = nose + [0.035 * side[k], -0.02] + rng.normal(0, 0.006, (n, 2))
        j[:, ear] = nose + [0.075 * side[k], -0.005] + rng.normal(0, 0.01, (n, 2))
    for k, (sh, el, wr, hip, kn, an) in enumerate(((L_SH, L_EL, L_WR, L_HIP, L_KN, L_AN),
                                                  (R_SH, R_EL, R_WR, R_HIP, R_KN, R_AN))):
        s = side[k]
        j[:, sh] = np.stack([0.5 + s * (0.2 + rng.normal(0, 0.03, n)), 0.21 + rng.normal(0, 0.02, n)], 1)
        a1 = s * 0.45 + rng.normal(0, 0.7, n)  # angle from straight down
        a2 = a1 + rng.normal(0, 0.8, n)
        j[:, el] = j[:, sh] + 0.17 * np.stack([np.sin(a1) * 2.2, np.cos(a1)], 1)
        j[:, wr] = j[:, el] + 0.16 * np.stack([np.sin(a2) * 2.2, np.cos(a2)], 1)
        j[:, hip] = np.stack([0.5 + s * (0.1 + rng.normal(0, 0.02, n)), 0.53 + rng.normal(0, 0.03, n)], 1)
        j[:, kn] = j[:, hip] + np.stack([s * 0.04 + rng.normal(0, 0.08, n), 0.22 + rng.normal(0, 0.02, n)], 1)
        j[:, an] = j[:, kn] + np.stack([s * 0.03 + rng.normal(0, 0.08, n), 0.22 + rng.normal(0, 0.02, n)], 1)
    return np.clip(j, 0.02, 0.98)


def to_pixels(norm: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(n, 17, 2) normalised joints, (n, 4) float xywh boxes -> (n, 17, 2) pixels."""
    return box[:, None, :2] + norm * box[:, None, 2:]


def _ellipses(center, a, b, angle, n_points, wobble):
    """Polygon points of rotated ellipses. center (P, 2); a, b, angle (P,); returns (P, n, 2)."""
    t = 2 * np.pi * (np.arange(n_points) + 0.5) / n_points
    r = 1.0 + wobble
    x = a[:, None] * np.cos(t) * r
    y = b[:, None] * np.sin(t) * r
    c, s = np.cos(angle)[:, None], np.sin(angle)[:, None]
    return np.stack([center[:, None, 0] + c * x - s * y, center[:, None, 1] + s * x + c * y], -1)


def person_polygons(rng, joints: np.ndarray, box: np.ndarray, image_wh: np.ndarray) -> np.ndarray:
    """Polygons of person-like shapes: (n, sum(POLY_POINTS) * 2) float64 pixel coordinates.

    joints (n, 17, 2) pixels; box (n, 4) float xywh (every point is clipped into it and into
    the image); image_wh (n, 2).
    """
    n = len(joints)
    bw, bh = box[:, 2], box[:, 3]
    parts = []
    # head: an ellipse around the face joints
    face = joints[:, :FACE]
    head_c = face.mean(1) + np.stack([np.zeros(n), -0.01 * bh], 1)
    head_a = np.maximum(0.11 * bw, np.ptp(face[:, :, 0], 1) * 0.75)
    parts.append(_ellipses(head_c, head_a, 0.065 * bh, rng.normal(0, 0.1, n), POLY_POINTS[0],
                           0.08 * rng.random((n, POLY_POINTS[0]))))
    # neck and torso
    shoulders = (joints[:, L_SH] + joints[:, R_SH]) / 2
    hips = (joints[:, L_HIP] + joints[:, R_HIP]) / 2
    for k, (p0, p1, half, wob) in enumerate(((head_c, shoulders, 0.06 * bw, 0.05),
                                             (shoulders, hips, None, 0.06))):
        d = p1 - p0
        length = np.hypot(d[:, 0], d[:, 1])
        if half is None:  # torso: as wide as the shoulders
            half = 0.55 * np.abs(joints[:, L_SH, 0] - joints[:, R_SH, 0]) + 0.04 * bw
            a = length / 2 + 0.06 * bh
        else:
            a = length / 2
        parts.append(_ellipses((p0 + p1) / 2, a, half, np.arctan2(d[:, 1], d[:, 0]),
                               POLY_POINTS[1 + k], wob * rng.random((n, POLY_POINTS[1 + k]))))
    # limbs: capsules approximated by ellipses along each bone
    p0 = joints[:, LIMBS[:, 0]].reshape(-1, 2)
    p1 = joints[:, LIMBS[:, 1]].reshape(-1, 2)
    d = p1 - p0
    half = (LIMB_HALF_WIDTH[None, :] * bw[:, None] * (0.8 + 0.4 * rng.random((n, len(LIMBS))))).ravel()
    limbs = _ellipses((p0 + p1) / 2, np.hypot(d[:, 0], d[:, 1]) / 2 + half, half,
                      np.arctan2(d[:, 1], d[:, 0]), POLY_POINTS[3], 0.1 * rng.random((len(p0), POLY_POINTS[3])))
    parts.append(limbs.reshape(n, -1, 2))
    xy = np.concatenate(parts, axis=1)  # (n, total points, 2)
    lo = np.maximum(box[:, :2], 0)
    hi = np.minimum(box[:, :2] + box[:, 2:], image_wh)
    np.clip(xy, lo[:, None, :], hi[:, None, :], out=xy)
    return xy.reshape(n, -1)


_POLY_SPLITS = np.cumsum(2 * POLY_POINTS)[:-1]


def rasterise(polygons: np.ndarray, image_index: np.ndarray, image_hw: np.ndarray) -> list:
    """Compressed RLE (ASCII counts) of the union of each row's polygons.

    polygons (n, sum(POLY_POINTS) * 2); image_index (n,) sorted; image_hw (M, 2).
    One ``frPyObjects`` call per image, one ``merge`` per instance.
    """
    out = [None] * len(polygons)
    starts = np.flatnonzero(np.r_[True, image_index[1:] != image_index[:-1]])
    ends = np.r_[starts[1:], len(image_index)]
    for s, e in zip(starts.tolist(), ends.tolist()):
        h, w = (int(v) for v in image_hw[image_index[s]])
        polys = [p for row in polygons[s:e] for p in np.split(row, _POLY_SPLITS)]
        rles = mask_utils.frPyObjects(polys, h, w)
        for i in range(e - s):
            merged = mask_utils.merge(rles[i * N_POLYS:(i + 1) * N_POLYS], intersect=False)
            out[s + i] = {"size": [h, w], "counts": merged["counts"].decode("ascii")}
    return out


# ----------------------------------------------------------------------------- ground truth
def ground_truth(rng, n_images: int, n_persons: int):
    """Images, boxes, joints, visibilities and MaxIoU of the ground truth (arrays)."""
    size = make_native._fill(rng, np.full(n_images, MIN_PERSONS), np.full(n_images, MAX_PERSONS),
                             n_persons - MIN_PERSONS * n_images)
    width = rng.integers(500, 1001, n_images)
    height = rng.integers(500, 1001, n_images)
    long_side = rng.random(n_images) < 0.6
    landscape = width >= height
    width = np.where(long_side & landscape, 1000, width)
    height = np.where(long_side & ~landscape, 1000, height)
    # A few images with small people (COCO "medium" boxes), as crowds seen from afar.
    shrink = np.where(rng.random(n_images) < 0.04, 0.12 + 0.2 * rng.random(n_images), 1.0)

    image_of = np.repeat(np.arange(n_images), size)
    boxes = np.empty((n_persons, 4), dtype=np.int64)  # native x1, y1, x2, y2
    at = 0
    for i, k in enumerate(size.tolist()):
        b = make_native._boxes(rng, int(width[i]), int(height[i]), np.full(k, 2))
        b = b[rng.permutation(k)]
        for j in range(1, k):  # no two identical boxes: box MaxIoU < 1 as in the stored values
            while (b[:j] == b[j]).all(axis=1).any():
                step = 1 if b[j, 2] < width[i] - 1 else -1
                b[j, [0, 2]] += step
        if shrink[i] < 1:
            f = shrink[i]
            ox, oy = rng.random() * width[i] * (1 - f), rng.random() * height[i] * (1 - f)
            b = np.rint(b * f + [ox, oy, ox, oy]).astype(np.int64)
            b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 4)
        boxes[at:at + k] = b
        at += k
    max_iou = max_iou_from_boxes_grouped(boxes, image_of)
    alone = size[image_of] == 1
    max_iou[alone] = 0.52 + 0.46 * rng.random(int(alone.sum())) ** 2.2
    low = rng.random(n_persons) < 0.02  # a few persons below 0.5
    max_iou[low] = 0.3 + 0.2 * rng.random(int(low.sum()))
    max_iou = np.minimum(max_iou, 0.999).astype(np.float32).astype(np.float64)

    xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]
    norm = skeletons(rng, n_persons)
    # Joints as the annotators clicked them: integer body joints, float face points.
    joints = to_pixels(norm, xywh.astype(np.float64))
    joints[:, FACE:] = np.rint(joints[:, FACE:])
    body_p, face_p = [0.08, 0.22, 0.70], [0.3, 0.1, 0.6]  # v = 0, 1, 2
    v = np.empty((n_persons, 17), dtype=np.int64)
    v[:, :FACE] = rng.choice(3, size=(n_persons, FACE), p=face_p)
    v[:, FACE:] = rng.choice(3, size=(n_persons, 17 - FACE), p=body_p)
    return {
        "width": width, "height": height, "size": size, "image_of": image_of, "xywh": xywh,
        "norm": norm, "joints": joints, "v": v, "max_iou": max_iou,
    }


# ----------------------------------------------------------------------------- detections
def detections(rng, gt: dict):
    """Detections of every image: close ones (and duplicates) per person, false positives."""
    n_images = len(gt["width"])
    n_gt = len(gt["image_of"])
    # Per person: a close detection (most of the time) and 0..n duplicates.
    close = (rng.random(n_gt) < 0.9).astype(np.int64)
    dups = np.minimum(rng.poisson(0.7, n_gt), 4)
    per_gt = close + dups
    src = np.repeat(np.arange(n_gt), per_gt)
    is_dup = np.ones(len(src), dtype=bool)
    first = np.r_[0, np.cumsum(per_gt)[:-1]]
    is_dup[first[close == 1]] = False
    spread = np.where(is_dup, 0.06 + 0.22 * rng.random(len(src)), 0.01 + 0.08 * rng.random(len(src)))
    near_img = gt["image_of"][src]
    n_near = np.bincount(near_img, minlength=n_images)
    total = np.maximum(rng.integers(*DETS_PER_IMAGE, n_images), n_near)
    n_fp = total - n_near

    gbox = gt["xywh"][src].astype(np.float64)
    sz = gbox[:, 2:]
    s = spread[:, None]
    corners = np.c_[gbox[:, :2], gbox[:, :2] + sz] + rng.normal(0, 1, (len(src), 4)) * np.c_[s, s, s, s] * np.c_[sz, sz]
    near_box = np.c_[corners[:, :2], np.maximum(corners[:, 2:] - corners[:, :2], 4)]
    near_norm = gt["norm"][src] + rng.normal(0, 1, (len(src), 17, 2)) * spread[:, None, None] * 0.3
    near_score = np.where(is_dup, rng.beta(3, 3, len(src)), rng.beta(7, 2, len(src)))

    fp_img = np.repeat(np.arange(n_images), n_fp)
    W, H = gt["width"][fp_img].astype(np.float64), gt["height"][fp_img].astype(np.float64)
    fw, fh = (0.08 + 0.35 * rng.random(len(fp_img))) * W, (0.2 + 0.7 * rng.random(len(fp_img))) * H
    fp_box = np.c_[rng.random(len(fp_img)) * (W - fw), rng.random(len(fp_img)) * (H - fh), fw, fh]
    fp_norm = skeletons(rng, len(fp_img))
    fp_score = rng.beta(1.3, 6, len(fp_img))

    img = np.r_[near_img, fp_img]
    box = np.r_[near_box, fp_box]
    norm = np.r_[near_norm, np.clip(fp_norm, 0, 1)]
    score = np.r_[near_score, fp_score]
    tie = rng.random(len(score)) < 0.25
    score = np.where(tie, np.round(score, 2), score.astype(np.float32).astype(np.float64))
    score = np.clip(score, 0.01, 0.99)
    # Clip boxes to the image, as detectors do.
    W, H = gt["width"][img].astype(np.float64), gt["height"][img].astype(np.float64)
    x0, y0 = np.clip(box[:, 0], 0, W - 4), np.clip(box[:, 1], 0, H - 4)
    x1, y1 = np.clip(box[:, 0] + box[:, 2], x0 + 4, W), np.clip(box[:, 1] + box[:, 3], y0 + 4, H)
    box = np.round(np.c_[x0, y0, x1 - x0, y1 - y0], 2)
    joints = to_pixels(norm, box)
    # Keypoint error beyond the shape jitter, and a confidence per joint.
    kpt_err = np.r_[0.01 + 0.05 * rng.random(len(near_img)), 0.1 * rng.random(len(fp_img))]
    joints = joints + rng.normal(0, 1, joints.shape) * kpt_err[:, None, None] * box[:, None, 2:]
    conf = np.clip(score[:, None] + rng.normal(0, 0.15, (len(score), 17)), 0.01, 1.0)
    # Image by image, by descending score (stable: ties keep generation order).
    order = np.lexsort((-score, img))
    return {"image": img[order], "box": box[order], "norm": norm[order], "joints": joints[order],
            "conf": conf[order], "score": score[order]}


# ----------------------------------------------------------------------------- JSON records
def gt_records(gt: dict, rles: list, image_ids: np.ndarray, file_names: list):
    images = [{"file_name": file_names[i], "width": int(gt["width"][i]), "height": int(gt["height"][i]),
               "id": int(image_ids[i])} for i in range(len(image_ids))]
    xywh = gt["xywh"].tolist()
    area = (gt["xywh"][:, 2] * gt["xywh"][:, 3]).tolist()
    v = gt["v"]
    num = (v > 0).sum(1).tolist()
    kx = np.where(v > 0, gt["joints"][:, :, 0], 0)
    ky = np.where(v > 0, gt["joints"][:, :, 1], 0)
    flat = np.stack([kx, ky, v], -1).reshape(len(v), -1)
    face = flat[:, :3 * FACE].tolist()
    body = flat[:, 3 * FACE:].astype(np.int64).tolist()
    vis_face = v[:, :FACE].tolist()
    img = image_ids[gt["image_of"]].tolist()
    anns = []
    for n in range(len(xywh)):
        f = face[n]
        for k in range(FACE):  # face points are floats, their code an int; missing: 0, 0, 0
            f[3 * k + 2] = vis_face[n][k]
            if not vis_face[n][k]:
                f[3 * k] = f[3 * k + 1] = 0
        anns.append({
            "area": area[n], "image_id": img[n], "iscrowd": 0, "category_id": 1, "bbox": xywh[n],
            "segmentation": rles[n], "num_keypoints": num[n], "id": n + 1, "keypoints": f + body[n],
        })
    return {"info": {}, "categories": [dict(PERSON_CATEGORY)], "images": images, "annotations": anns}


def detector_numbers(values: np.ndarray) -> list:
    """values as a detector writes them: float32 numbers turned into Python floats (Detectron2's
    and mmdet's ``tolist()``), which JSON prints with 16-17 significant digits."""
    return np.asarray(values).astype(np.float32).astype(np.float64).tolist()


def result_records(dt: dict, rles: list, image_ids: np.ndarray) -> dict:
    img = image_ids[dt["image"]].tolist()
    box = detector_numbers(dt["box"])
    score = dt["score"].tolist()
    kp = np.concatenate([dt["joints"], dt["conf"][:, :, None]], -1)
    kp = detector_numbers(kp.reshape(len(kp), -1))
    n = len(img)
    return {
        "segm": [{"image_id": img[d], "category_id": 1, "bbox": box[d], "score": score[d],
                  "segmentation": rles[d]} for d in range(n)],
        "bbox": [{"image_id": img[d], "category_id": 1, "bbox": box[d], "score": score[d]} for d in range(n)],
        "keypoints": [{"image_id": img[d], "category_id": 1, "keypoints": kp[d], "score": score[d]}
                      for d in range(n)],
    }


def restrict(gt_file: dict, results: dict, max_iou: np.ndarray, lo: float, hi: float,
             always: np.ndarray | None = None):
    """The official range file [lo, hi) and the results remapped to its image ids.

    ``always`` (per annotation, optional): annotations kept in every range file whose image is
    kept (crowd regions), which do not keep an image by themselves.
    """
    in_range = (max_iou >= lo) & (max_iou < hi)
    if always is not None:
        in_range &= ~always
    kept_images = {a["image_id"] for a, k in zip(gt_file["annotations"], in_range.tolist()) if k}
    keep = in_range if always is None else in_range | always
    anns = [a for a, k in zip(gt_file["annotations"], keep.tolist()) if k and a["image_id"] in kept_images]
    new_id = {}
    images = []
    for image in gt_file["images"]:
        if image["id"] in kept_images:
            new_id[image["id"]] = len(images) + 1
            images.append({**image, "id": len(images) + 1})
    anns = [{**a, "image_id": new_id[a["image_id"]], "id": n + 1} for n, a in enumerate(anns)]
    out = {"info": {}, "categories": gt_file["categories"], "images": images, "annotations": anns}
    remapped = {t: [{**r, "image_id": new_id[r["image_id"]]} for r in recs if r["image_id"] in new_id]
                for t, recs in results.items()}
    return out, remapped


def _write(path: Path, obj) -> int:
    data = msgspec.json.encode(obj)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return len(data)


def make_workload(out: Path, seed: int = 0, scale: int = 1, log=print, images: int | None = None) -> dict:
    """Generate and write every file of the workload into ``out``; returns the manifest.

    ``images``: images per unit of ``scale`` instead of OCHuman val's 2500 (persons in
    proportion; small values for smoke tests)."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_images, n_persons = N_IMAGES * scale, N_PERSONS * scale
    if images is not None:
        n_images = images * scale
        n_persons = max(n_images * MIN_PERSONS, round(n_images * N_PERSONS / N_IMAGES))
    gt = ground_truth(rng, n_images, n_persons)
    dt = detections(rng, gt)
    image_hw = np.c_[gt["height"], gt["width"]]
    image_wh = np.c_[gt["width"], gt["height"]].astype(np.float64)
    t_geom = time.perf_counter()

    gt_poly = person_polygons(rng, gt["joints"], gt["xywh"].astype(np.float64), image_wh[gt["image_of"]])
    gt_rles = rasterise(gt_poly, gt["image_of"], image_hw)
    del gt_poly
    dt_rles = []
    chunk = 20000
    for s in range(0, len(dt["image"]), chunk):
        e = min(s + chunk, len(dt["image"]))
        poly = person_polygons(rng, to_pixels(dt["norm"][s:e], dt["box"][s:e]), dt["box"][s:e],
                               image_wh[dt["image"][s:e]])
        dt_rles += rasterise(poly, dt["image"][s:e], image_hw)
    t_raster = time.perf_counter()

    image_ids = np.arange(1, n_images + 1)
    natives = np.sort(rng.choice(max(5081 * scale, n_images), n_images, replace=False)) + 1
    file_names = [f"{k:06d}.jpg" for k in natives.tolist()]
    gt_file = gt_records(gt, gt_rles, image_ids, file_names)
    results = result_records(dt, dt_rles, image_ids)

    out.mkdir(parents=True, exist_ok=True)
    files = {}
    sizes = {}
    counts = {}
    for lo, hi in RANGES:
        key = "all" if (lo, hi) == (0.0, 1.0) else ("moderate" if lo == 0.5 else "hard")
        if key == "all":
            g, res = gt_file, results
        else:
            g, res = restrict(gt_file, results, gt["max_iou"], lo, hi)
        name = range_file_name(lo, hi)
        sizes[name] = _write(out / name, g)
        files[key] = {"gt": name}
        counts[key] = {"images": len(g["images"]), "persons": len(g["annotations"]),
                       "detections": len(res["segm"])}
        for t in IOU_TYPES:
            rname = results_file_name(t, lo, hi)
            sizes[rname] = _write(out / rname, res[t])
            files[key][t] = rname
    ann_ids = [a["id"] for a in gt_file["annotations"]]
    stored = gt["max_iou"].tolist()
    sizes["max_iou.json"] = _write(out / "max_iou.json", {str(i): m for i, m in zip(ann_ids, stored)})
    # The same ground truth with each person's stored MaxIoU as a "max_iou" field (what a tool
    # needs to split Moderate / Hard from a COCO file; evaluators ignore unknown fields).
    name = range_file_name(0.0, 1.0).replace(".json", "_with_max_iou.json")
    with_max_iou = {**gt_file, "annotations": [{**a, "max_iou": m} for a, m in zip(gt_file["annotations"], stored)]}
    sizes[name] = _write(out / name, with_max_iou)
    files["all"]["gt_with_max_iou"] = name
    del with_max_iou
    runs = np.array([len(r["counts"]) for r in gt_rles])
    manifest = {
        "seed": seed, "scale": scale, "files": files, "max_iou": "max_iou.json", "counts": counts,
        "bytes": sizes,
        "gt_rle_counts_chars": {"mean": float(runs.mean()), "min": int(runs.min()), "max": int(runs.max())},
        "seconds": {"geometry": round(t_geom - start, 2), "rasterise": round(t_raster - t_geom, 2),
                    "total": round(time.perf_counter() - start, 2)},
    }
    _write(out / "manifest.json", manifest)
    log(f"{out}: {counts} in {manifest['seconds']['total']:.1f} s "
        f"(rasterise {manifest['seconds']['rasterise']:.1f} s); "
        f"{sum(sizes.values()) / 1e6:.0f} MB")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default bench/out/eval_s{scale})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, choices=(1, 10), default=1,
                        help="1: OCHuman val (2500 images, 4313 persons); 10: ten times that")
    parser.add_argument("--images", type=int, default=None,
                        help="images per unit of --scale (default 2500; persons in proportion)")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).resolve().parent / "out" / f"eval_s{args.scale}"
    make_workload(out, args.seed, args.scale, log=lambda m: print(m, file=sys.stderr), images=args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
