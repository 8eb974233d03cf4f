"""Write seeded COCO evaluation workloads of the shapes users bring (issue 16).

    python bench/make_workloads.py SHAPE [--scale 1] [--seed 0] [--images N] [--out DIR]

Shapes (``SHAPES``; default folder ``bench/out/{shape}_s{scale}``, ``ochuman``'s
``bench/out/eval_s{scale}``; ``--images N`` overrides the image count per unit of ``--scale``,
densities kept, for smoke tests, and adds ``_i{N}`` to the folder):

- ``ochuman``: ``make_eval_workload.py``'s OCHuman-val workload (RLE ground truth, one field
  per results file, the official range files for Moderate / Hard).
- ``persons``: OCHuman-val scale (2500 images, 4313 persons, the same persons, boxes, joints
  and detections as ``ochuman``) in the shape of a COCO person-keypoints file: half of the
  persons' masks as polygons (11 per person: head, neck, torso, limbs, coordinates rounded to
  2 decimals), half as compressed RLE, ``area`` the mask area; crowd regions (``iscrowd`` 1,
  uncompressed RLE counts list, 51 zero keypoints) on about 15% of the images; one
  Detectron2-like results file ``results.json`` whose records carry ``image_id, category_id,
  bbox, score, segmentation`` (compressed RLE) ``, keypoints`` together, used for all three iou
  types (pycocotools' ``loadRes`` takes the box branch: ``area`` = box area for each). Also the
  Moderate / Hard range files as ``ochuman`` has them (crowd regions in every range file whose
  image is kept) and the ground truth with a ``max_iou`` field per person.
- ``coco1k``: 80 COCO categories (real ids and names), 1000 images at COCO val2017 density:
  about 7.4 objects per image from several categories, COCO's small / medium / large mix,
  polygon masks (1 or 2 polygons per object), ``area`` the polygon area, ``bbox`` the polygons'
  bounds; crowd regions (about 1.2% of the objects, uncompressed RLE, ids above 9e11 as
  COCO's); images of 640 px on the long side, random ids in random order; 20-100
  detections per image (mean 60) of several categories: near objects (sometimes with another
  category, sometimes duplicated) and false positives, ``image_id, category_id, bbox, score,
  segmentation`` (compressed RLE) in one ``results.json`` for bbox and segm.
- ``val2017``: the same at val2017 scale: 5000 images, ~36.8k ground truth, ~300k detections.

``--scale 10`` multiplies the images (makes sense for ``ochuman``, ``persons`` and ``coco1k``;
``val2017`` at 10x holds 3M detections). Every folder gets a ``manifest.json``: ``shape``,
``version``, ``seed``, ``scale``, ``iou_types``, ``files`` (``all`` and, where there are range files,
``moderate`` / ``hard``: ``gt`` and one results file per iou type), ``counts``, ``bytes``.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from pycocotools import mask as mask_utils

sys.path.insert(0, str(Path(__file__).resolve().parent))
import make_eval_workload as mew  # noqa: E402  (geometry, persons, detections, writer)

OUT = Path(__file__).resolve().parent / "out"
# Stored in every manifest; bench_eval.py regenerates a folder whose manifest says otherwise.
# Bump it when a generator's output changes.
WORKLOAD_VERSION = 2  # 2: detections' boxes and joints as float32 numbers print (16-17 digits)

# COCO's 80 categories: (id, name, supercategory).
COCO_CATEGORIES = [
    (1, "person", "person"), (2, "bicycle", "vehicle"), (3, "car", "vehicle"), (4, "motorcycle", "vehicle"),
    (5, "airplane", "vehicle"), (6, "bus", "vehicle"), (7, "train", "vehicle"), (8, "truck", "vehicle"),
    (9, "boat", "vehicle"), (10, "traffic light", "outdoor"), (11, "fire hydrant", "outdoor"),
    (13, "stop sign", "outdoor"), (14, "parking meter", "outdoor"), (15, "bench", "outdoor"),
    (16, "bird", "animal"), (17, "cat", "animal"), (18, "dog", "animal"), (19, "horse", "animal"),
    (20, "sheep", "animal"), (21, "cow", "animal"), (22, "elephant", "animal"), (23, "bear", "animal"),
    (24, "zebra", "animal"), (25, "giraffe", "animal"), (27, "backpack", "accessory"),
    (28, "umbrella", "accessory"), (31, "handbag", "accessory"), (32, "tie", "accessory"),
    (33, "suitcase", "accessory"), (34, "frisbee", "sports"), (35, "skis", "sports"),
    (36, "snowboard", "sports"), (37, "sports ball", "sports"), (38, "kite", "sports"),
    (39, "baseball bat", "sports"), (40, "baseball glove", "sports"), (41, "skateboard", "sports"),
    (42, "surfboard", "sports"), (43, "tennis racket", "sports"), (44, "bottle", "kitchen"),
    (46, "wine glass", "kitchen"), (47, "cup", "kitchen"), (48, "fork", "kitchen"), (49, "knife", "kitchen"),
    (50, "spoon", "kitchen"), (51, "bowl", "kitchen"), (52, "banana", "food"), (53, "apple", "food"),
    (54, "sandwich", "food"), (55, "orange", "food"), (56, "broccoli", "food"), (57, "carrot", "food"),
    (58, "hot dog", "food"), (59, "pizza", "food"), (60, "donut", "food"), (61, "cake", "food"),
    (62, "chair", "furniture"), (63, "couch", "furniture"), (64, "potted plant", "furniture"),
    (65, "bed", "furniture"), (67, "dining table", "furniture"), (70, "toilet", "furniture"),
    (72, "tv", "electronic"), (73, "laptop", "electronic"), (74, "mouse", "electronic"),
    (75, "remote", "electronic"), (76, "keyboard", "electronic"), (77, "cell phone", "electronic"),
    (78, "microwave", "appliance"), (79, "oven", "appliance"), (80, "toaster", "appliance"),
    (81, "sink", "appliance"), (82, "refrigerator", "appliance"), (84, "book", "indoor"),
    (85, "clock", "indoor"), (86, "vase", "indoor"), (87, "scissors", "indoor"), (88, "teddy bear", "indoor"),
    (89, "hair drier", "indoor"), (90, "toothbrush", "indoor"),
]
COCO_CAT_IDS = np.array([c[0] for c in COCO_CATEGORIES])
# Frequency of each category among the objects: person about 30% (as in val2017), the rest a
# Zipf-like tail.
_TAIL = 1.0 / np.arange(2, len(COCO_CATEGORIES) + 1) ** 0.9
CAT_FREQ = np.r_[0.3, 0.7 * _TAIL / _TAIL.sum()]
OBJECTS_PER_IMAGE = 7.36  # val2017: 36781 annotations / 5000 images
CROWD_FRACTION = 0.012  # of the objects
COCO_DETS_PER_IMAGE = (20, 101)  # uniform integer range: mean 60
# sqrt(area) log-normal: ~41% small (< 32^2), ~34% medium, ~24% large (> 96^2), as val2017.
SIDE_LOG_MEAN, SIDE_LOG_STD = 3.88, 1.17  # of the box; masks fill ~3/4 of it
CROWD_ID_BASE = 900100000000  # COCO's crowd annotation ids are this large


# ----------------------------------------------------------------------------- shared pieces
def uncompressed_rle(rle: dict) -> dict:
    """A compressed RLE -> COCO's uncompressed form {"counts": [ints], "size": [h, w]}."""
    h, w = rle["size"]
    flat = mask_utils.decode(rle).ravel(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, change, flat.size]
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"counts": counts, "size": [int(h), int(w)]}


def blob_polygons(rng, box: np.ndarray, n_points: np.ndarray, image_wh: np.ndarray) -> list:
    """One wobbly ellipse per box, inside it and the image. box (n, 4) float xywh; n_points (n,);
    image_wh (n, 2). Returns n flat float lists (x, y, x, y, ...), rounded to 2 decimals."""
    out = []
    for m in np.unique(n_points):
        rows = np.flatnonzero(n_points == m)
        b = box[rows]
        center = b[:, :2] + b[:, 2:] / 2
        xy = mew._ellipses(center, b[:, 2] / 2, b[:, 3] / 2, np.zeros(len(rows)), int(m),
                           0.25 * rng.random((len(rows), int(m))) - 0.2)
        lo = np.maximum(b[:, :2], 0)
        hi = np.minimum(b[:, :2] + b[:, 2:], image_wh[rows])
        np.clip(xy, lo[:, None, :], hi[:, None, :], out=xy)
        for r, poly in zip(rows.tolist(), np.round(xy.reshape(len(rows), -1), 2).tolist()):
            out.append((r, poly))
    out.sort(key=lambda t: t[0])
    return [p for _, p in out]


def polygon_area(poly: list) -> float:
    """Shoelace area of one flat polygon."""
    xy = np.asarray(poly).reshape(-1, 2)
    x, y = xy[:, 0], xy[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def rles_of_polygons(polys: list, image_index: np.ndarray, image_hw: np.ndarray) -> list:
    """Compressed RLE (ASCII counts) of one polygon per row, one ``frPyObjects`` call per image.
    image_index (n,) sorted."""
    out = [None] * len(polys)
    if not polys:
        return out
    starts = np.flatnonzero(np.r_[True, image_index[1:] != image_index[:-1]])
    ends = np.r_[starts[1:], len(image_index)]
    for s, e in zip(starts.tolist(), ends.tolist()):
        h, w = (int(v) for v in image_hw[image_index[s]])
        for i, rle in enumerate(mask_utils.frPyObjects(polys[s:e], h, w)):
            out[s + i] = {"size": [h, w], "counts": rle["counts"].decode("ascii")}
    return out


def crowd_region(rng, box: np.ndarray, h: int, w: int) -> tuple[dict, float]:
    """A crowd region inside ``box`` (xywh): the union of a few blobs, as COCO's uncompressed
    RLE, and its area."""
    k = int(rng.integers(3, 8))
    sub = np.empty((k, 4))
    sub[:, 2] = box[2] * (0.2 + 0.3 * rng.random(k))
    sub[:, 3] = box[3] * (0.4 + 0.6 * rng.random(k))
    sub[:, 0] = box[0] + rng.random(k) * (box[2] - sub[:, 2])
    sub[:, 1] = box[1] + rng.random(k) * (box[3] - sub[:, 3])
    polys = blob_polygons(rng, sub, np.full(k, 16), np.tile([w, h], (k, 1)).astype(np.float64))
    merged = mask_utils.merge(mask_utils.frPyObjects(polys, h, w), intersect=False)
    return uncompressed_rle(merged), float(mask_utils.area(merged))


def crowd_box(rng, w: int, h: int) -> np.ndarray:
    """A large float xywh box inside a w x h image."""
    bw, bh = w * (0.3 + 0.5 * rng.random()), h * (0.25 + 0.4 * rng.random())
    return np.array([rng.random() * (w - bw), rng.random() * (h - bh), bw, bh])


def tight_box(polys: list) -> list:
    """[x, y, w, h] bounds of flat polygons, 2 decimals."""
    xy = np.concatenate([np.asarray(p).reshape(-1, 2) for p in polys])
    lo, hi = xy.min(0), xy.max(0)
    return [round(float(lo[0]), 2), round(float(lo[1]), 2), round(float(hi[0] - lo[0]), 2),
            round(float(hi[1] - lo[1]), 2)]


def write_folder(out: Path, shape: str, seed: int, scale: int, iou_types, parts: dict, counts: dict,
                 start: float, log, extra: dict | None = None) -> dict:
    """Write ``parts`` (file name -> object) and the manifest; returns the manifest."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = {name: mew._write(out / name, obj) for name, obj in parts.items()}
    manifest = {"shape": shape, "version": WORKLOAD_VERSION, "seed": seed, "scale": scale, "iou_types": list(iou_types),
                **(extra or {}), "counts": counts, "bytes": sizes,
                "seconds": {"total": round(time.perf_counter() - start, 2)}}
    mew._write(out / "manifest.json", manifest)
    log(f"{out}: {counts} in {manifest['seconds']['total']:.1f} s; {sum(sizes.values()) / 1e6:.0f} MB")
    return manifest


# ----------------------------------------------------------------------------- persons
PERSONS_CROWD_IMAGES = 0.15  # fraction of images with a crowd region
PERSONS_GT = "person_keypoints_val.json"
PERSONS_RESULTS = "results.json"


def make_persons(out: Path, seed: int = 0, scale: int = 1, log=print, images: int | None = None) -> dict:
    """The ``persons`` shape (module docstring); returns the manifest."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_images = (images or mew.N_IMAGES) * scale
    n_persons = max(n_images, round(n_images * mew.N_PERSONS / mew.N_IMAGES))
    gt = mew.ground_truth(rng, n_images, n_persons)
    dt = mew.detections(rng, gt)
    image_hw = np.c_[gt["height"], gt["width"]]
    image_wh = np.c_[gt["width"], gt["height"]].astype(np.float64)

    # Ground-truth masks: polygons rounded as a file stores them; RLE of exactly those.
    gt_poly = np.round(mew.person_polygons(rng, gt["joints"], gt["xywh"].astype(np.float64),
                                           image_wh[gt["image_of"]]), 2)
    gt_rles = mew.rasterise(gt_poly, gt["image_of"], image_hw)
    as_polygons = rng.random(n_persons) < 0.5
    gt_file = mew.gt_records(gt, gt_rles, np.arange(1, n_images + 1), [f"{k:012d}.jpg" for k in range(1, n_images + 1)])
    for ann, rle, poly, is_poly in zip(gt_file["annotations"], gt_rles, gt_poly, as_polygons.tolist()):
        ann["area"] = float(mask_utils.area({"size": rle["size"], "counts": rle["counts"].encode()}))
        if is_poly:
            ann["segmentation"] = [p.tolist() for p in np.split(poly, mew._POLY_SPLITS)]
    del gt_poly
    # Crowd regions.
    crowd_images = np.flatnonzero(rng.random(n_images) < PERSONS_CROWD_IMAGES)
    next_id = n_persons + 1
    for i in crowd_images.tolist():
        w, h = int(gt["width"][i]), int(gt["height"][i])
        box = crowd_box(rng, w, h)
        seg, area = crowd_region(rng, box, h, w)
        gt_file["annotations"].append({
            "area": area, "image_id": i + 1, "iscrowd": 1, "category_id": 1,
            "bbox": np.round(box, 2).tolist(), "segmentation": seg, "num_keypoints": 0, "id": next_id,
            "keypoints": [0] * 51,
        })
        next_id += 1
    is_crowd = np.r_[np.zeros(n_persons, bool), np.ones(len(crowd_images), bool)]
    max_iou = np.r_[gt["max_iou"], np.zeros(len(crowd_images))]

    # Detections with mask, box and keypoints in one record, as Detectron2 writes them.
    dt_rles = []
    chunk = 20000
    for s in range(0, len(dt["image"]), chunk):
        e = min(s + chunk, len(dt["image"]))
        poly = mew.person_polygons(rng, mew.to_pixels(dt["norm"][s:e], dt["box"][s:e]), dt["box"][s:e],
                                   image_wh[dt["image"][s:e]])
        dt_rles += mew.rasterise(poly, dt["image"][s:e], image_hw)
    by_type = mew.result_records(dt, dt_rles, np.arange(1, n_images + 1))
    results = [{**b, "segmentation": s["segmentation"], "keypoints": k["keypoints"]}
               for b, s, k in zip(by_type["bbox"], by_type["segm"], by_type["keypoints"])]
    del by_type

    parts = {PERSONS_GT: gt_file, PERSONS_RESULTS: results}
    files = {"all": {"gt": PERSONS_GT, **{t: PERSONS_RESULTS for t in mew.IOU_TYPES}}}
    counts = {"all": {"images": n_images, "persons": n_persons, "crowd": int(len(crowd_images)),
                      "polygon_persons": int(as_polygons.sum()), "detections": len(results)}}
    for lo, hi, key in ((0.5, 0.75, "moderate"), (0.75, 1.0, "hard")):
        g, res = mew.restrict(gt_file, {"all": results}, max_iou, lo, hi, always=is_crowd)
        gname, rname = PERSONS_GT.replace(".json", f"_range_{lo:.2f}_{hi:.2f}.json"), f"results_range_{lo:.2f}_{hi:.2f}.json"
        parts[gname], parts[rname] = g, res["all"]
        files[key] = {"gt": gname, **{t: rname for t in mew.IOU_TYPES}}
        counts[key] = {"images": len(g["images"]), "annotations": len(g["annotations"]), "detections": len(res["all"])}
    with_name = PERSONS_GT.replace(".json", "_with_max_iou.json")
    parts[with_name] = {**gt_file, "annotations": [
        a if c else {**a, "max_iou": m} for a, m, c in zip(gt_file["annotations"], max_iou.tolist(), is_crowd.tolist())]}
    files["all"]["gt_with_max_iou"] = with_name
    return write_folder(out, "persons", seed, scale, mew.IOU_TYPES, parts, counts, start, log, {"files": files})


# ----------------------------------------------------------------------------- 80 categories
def make_coco(out: Path, seed: int = 0, scale: int = 1, log=print, images: int = 1000, shape: str = "coco1k") -> dict:
    """80 categories at val2017 density (module docstring); returns the manifest."""
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_images = images * scale
    long_side = np.where(rng.random(n_images) < 0.9, 640, rng.integers(500, 641, n_images))
    short_side = rng.integers(360, 641, n_images)
    short_side = np.minimum(short_side, long_side)
    landscape = rng.random(n_images) < 0.7
    width = np.where(landscape, long_side, short_side)
    height = np.where(landscape, short_side, long_side)
    image_ids = rng.choice(600000, n_images, replace=False) + 1  # random ids, in random order
    image_wh = np.c_[width, height].astype(np.float64)
    image_hw = np.c_[height, width]

    # Objects: several categories per image (a few "scene" categories, person most often).
    n_obj = np.minimum(rng.negative_binomial(2.5, 2.5 / (2.5 + OBJECTS_PER_IMAGE), n_images), 60)
    scene_k = 1 + np.minimum(rng.poisson(2.2, n_images), 8)
    obj_image, obj_cat = [], []
    for i in range(n_images):
        scene = rng.choice(len(COCO_CATEGORIES), min(scene_k[i], n_obj[i]) or 1, replace=False, p=CAT_FREQ)
        p = CAT_FREQ[scene] ** 0.3 / (CAT_FREQ[scene] ** 0.3).sum()  # flatter than the global mix
        obj_cat.append(scene[rng.choice(len(scene), n_obj[i], p=p)])
        obj_image.append(np.full(n_obj[i], i))
    obj_image, obj_cat = np.concatenate(obj_image), np.concatenate(obj_cat)
    n = len(obj_image)
    crowd = rng.random(n) < CROWD_FRACTION
    W, H = image_wh[obj_image, 0], image_wh[obj_image, 1]
    side = np.exp(rng.normal(SIDE_LOG_MEAN, SIDE_LOG_STD, n))
    aspect = np.exp(rng.normal(0, 0.5, n))
    bw = np.clip(side * np.sqrt(aspect), 3, 0.98 * W)
    bh = np.clip(side / np.sqrt(aspect), 3, 0.98 * H)
    box = np.c_[rng.random(n) * (W - bw), rng.random(n) * (H - bh), bw, bh]
    points = rng.integers(8, 41, n)
    two = (rng.random(n) < 0.12) & ~crowd  # occluded objects: two polygons
    polys = blob_polygons(rng, box, points, image_wh[obj_image])
    halves = np.c_[box[:, 0], box[:, 1] + box[:, 3] * 0.55, box[:, 2], box[:, 3] * 0.45]
    second = blob_polygons(rng, halves, points, image_wh[obj_image])

    anns = []
    ann_ids = np.sort(rng.choice(n * 4, n, replace=False)) + 1
    crowd_id = CROWD_ID_BASE
    for k in range(n):
        i = int(obj_image[k])
        cat = int(COCO_CAT_IDS[obj_cat[k]])
        if crowd[k]:
            b = crowd_box(rng, int(width[i]), int(height[i]))
            seg, area = crowd_region(rng, b, int(height[i]), int(width[i]))
            anns.append({"segmentation": seg, "area": area, "iscrowd": 1, "image_id": int(image_ids[i]),
                         "bbox": np.round(b, 2).tolist(), "category_id": cat, "id": crowd_id})
            crowd_id += 1
            continue
        seg = [polys[k], second[k]] if two[k] else [polys[k]]
        anns.append({"segmentation": seg, "area": round(sum(polygon_area(p) for p in seg), 4), "iscrowd": 0,
                     "image_id": int(image_ids[i]), "bbox": tight_box(seg), "category_id": cat,
                     "id": int(ann_ids[k])})
    gt_file = {
        "info": {"description": f"synthetic {shape} (bench/make_workloads.py)", "version": "1.0"},
        "licenses": [],
        "images": [{"file_name": f"{int(image_ids[i]):012d}.jpg", "height": int(height[i]), "width": int(width[i]),
                    "id": int(image_ids[i])} for i in range(n_images)],
        "annotations": anns,
        "categories": [{"supercategory": s, "id": c, "name": nm} for c, nm, s in COCO_CATEGORIES],
    }

    # Detections: near objects (the right category mostly, duplicates) and false positives.
    real = np.flatnonzero(~crowd)
    close = rng.random(len(real)) < 0.8
    dups = np.minimum(rng.poisson(0.5, len(real)), 3)
    src = np.repeat(real, close + dups)
    is_dup = np.ones(len(src), bool)
    first = np.r_[0, np.cumsum(close + dups)[:-1]]
    is_dup[first[close]] = False
    near_img = obj_image[src]
    n_near = np.bincount(near_img, minlength=n_images)
    total = np.maximum(rng.integers(*COCO_DETS_PER_IMAGE, n_images), n_near)
    fp_img = np.repeat(np.arange(n_images), total - n_near)
    spread = np.where(is_dup, 0.08 + 0.25 * rng.random(len(src)), 0.02 + 0.1 * rng.random(len(src)))
    sz = box[src, 2:]
    corners = np.c_[box[src, :2], box[src, :2] + sz] + rng.normal(0, 1, (len(src), 4)) * spread[:, None] * np.c_[sz, sz]
    near_box = np.c_[corners[:, :2], np.maximum(corners[:, 2:] - corners[:, :2], 2)]
    near_cat = np.where(rng.random(len(src)) < 0.9, obj_cat[src], rng.choice(len(COCO_CATEGORIES), len(src), p=CAT_FREQ))
    near_score = np.where(is_dup, rng.beta(2, 4, len(src)), rng.beta(5, 2, len(src)))
    # False positives: mostly categories of their image, sized like objects.
    bounds = np.searchsorted(obj_image, np.arange(n_images + 1))  # obj_image is sorted
    image_cats = [np.unique(obj_cat[bounds[i]:bounds[i + 1]]) for i in range(n_images)]
    own = rng.random(len(fp_img)) < 0.7
    fp_cat = rng.choice(len(COCO_CATEGORIES), len(fp_img), p=CAT_FREQ)
    pick = rng.random(len(fp_img))
    for j in np.flatnonzero(own).tolist():
        cats = image_cats[fp_img[j]]
        if len(cats):
            fp_cat[j] = cats[int(pick[j] * len(cats))]
    fW, fH = image_wh[fp_img, 0], image_wh[fp_img, 1]
    fside = np.exp(rng.normal(SIDE_LOG_MEAN, SIDE_LOG_STD, len(fp_img)))
    fasp = np.exp(rng.normal(0, 0.5, len(fp_img)))
    fw, fh = np.clip(fside * np.sqrt(fasp), 2, fW), np.clip(fside / np.sqrt(fasp), 2, fH)
    fp_box = np.c_[rng.random(len(fp_img)) * (fW - fw), rng.random(len(fp_img)) * (fH - fh), fw, fh]
    fp_score = rng.beta(1.2, 8, len(fp_img))

    img = np.r_[near_img, fp_img]
    cat = np.r_[near_cat, fp_cat]
    dbox = np.r_[near_box, fp_box]
    score = np.r_[near_score, fp_score]
    score = np.clip(np.where(rng.random(len(score)) < 0.2, np.round(score, 3),
                             score.astype(np.float32).astype(np.float64)), 0.001, 0.999)
    W, H = image_wh[img, 0], image_wh[img, 1]
    x0, y0 = np.clip(dbox[:, 0], 0, W - 2), np.clip(dbox[:, 1], 0, H - 2)
    x1, y1 = np.clip(dbox[:, 0] + dbox[:, 2], x0 + 2, W), np.clip(dbox[:, 1] + dbox[:, 3], y0 + 2, H)
    dbox = np.round(np.c_[x0, y0, x1 - x0, y1 - y0], 2)
    order = np.lexsort((-score, img))
    img, cat, dbox, score = img[order], cat[order], dbox[order], score[order]
    dpolys = blob_polygons(rng, dbox, rng.integers(8, 33, len(img)), image_wh[img])
    drles = rles_of_polygons(dpolys, img, image_hw)
    del dpolys
    ids, cats, boxes, scores = image_ids[img].tolist(), COCO_CAT_IDS[cat].tolist(), mew.detector_numbers(dbox), score.tolist()
    results = [{"image_id": ids[d], "category_id": cats[d], "bbox": boxes[d], "score": scores[d],
                "segmentation": drles[d]} for d in range(len(ids))]

    gt_name = "instances_val.json"
    files = {"all": {"gt": gt_name, "bbox": "results.json", "segm": "results.json"}}
    counts = {"all": {"images": n_images, "annotations": len(anns), "crowd": int(crowd.sum()),
                      "categories_present": int(len(np.unique(obj_cat))), "detections": len(results)}}
    return write_folder(out, shape, seed, scale, ("bbox", "segm"), {gt_name: gt_file, "results.json": results},
                        counts, start, log, {"files": files})


def make_ochuman(out: Path, seed: int = 0, scale: int = 1, log=print, images: int | None = None) -> dict:
    """``make_eval_workload.py``'s workload, with this module's manifest keys added."""
    manifest = mew.make_workload(out, seed, scale, log=log, images=images)
    manifest.update(shape="ochuman", version=WORKLOAD_VERSION, iou_types=list(mew.IOU_TYPES))
    mew._write(out / "manifest.json", manifest)
    return manifest


@dataclass(frozen=True)
class Shape:
    make: Callable  # (out, seed, scale, log, images) -> manifest
    images: int  # per unit of scale
    levels: bool  # has the Moderate / Hard range files
    summary: str


SHAPES = {
    "ochuman": Shape(make_ochuman, mew.N_IMAGES, True,
                     "persons, OCHuman val: RLE ground truth, one field per results file"),
    "persons": Shape(make_persons, mew.N_IMAGES, True,
                     "persons, OCHuman val: half polygon / half RLE, crowds, combined records"),
    "coco1k": Shape(lambda out, seed, scale, log, images: make_coco(out, seed, scale, log, images or 1000, "coco1k"),
                    1000, False, "80 categories, 1000 images at val2017 density"),
    "val2017": Shape(lambda out, seed, scale, log, images: make_coco(out, seed, scale, log, images or 5000, "val2017"),
                     5000, False, "80 categories, val2017 scale"),
}


def folder_of(shape: str, scale: int, images: int | None = None, root: Path = OUT) -> Path:
    """Default folder of a workload (``ochuman``: ``eval_s{scale}``, as make_eval_workload.py)."""
    name = f"eval_s{scale}" if shape == "ochuman" else f"{shape}_s{scale}"
    return root / (name if images is None else f"{name}_i{images}")


def make(shape: str, out: Path | None = None, seed: int = 0, scale: int = 1, images: int | None = None,
         log=print) -> dict:
    """Write workload ``shape`` into ``out`` (default ``bench/out/{shape}_s{scale}``)."""
    return SHAPES[shape].make(out or folder_of(shape, scale, images), seed, scale, log, images)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shape", choices=list(SHAPES))
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: see above)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scale", type=int, default=1, help="multiplies the images (and everything else)")
    parser.add_argument("--images", type=int, default=None, help="images per unit of --scale (default: the shape's)")
    args = parser.parse_args(argv)
    make(args.shape, args.out, args.seed, args.scale, args.images, log=lambda m: print(m, file=sys.stderr))
    return 0


if __name__ == "__main__":
    sys.exit(main())
