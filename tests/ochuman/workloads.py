"""COCO evaluation workloads for oracle tests: a hypothesis strategy and pycocotools helpers.

- :func:`coco_workloads` draws small but adversarial COCO evaluations (ground-truth dict plus a
  results list) for one iou type: images with and without ground truth or detections, RLE
  masks, crowd regions, both ``area`` conventions, keypoints with 0..17 labelled points, one or
  two categories, tied scores, tied IoUs (duplicate ground truths, exact copies as detections),
  images with more detections than ``maxDets``, a ground truth with id 0 now and then. With
  ``person_file=True`` it draws what ``ochuman eval --gt`` takes: one ``person`` category,
  polygon and uncompressed-RLE ground truth, persons with labelled keypoints but
  ``num_keypoints`` 0, results carrying segmentation, bbox and keypoints (as Detectron2
  writes), some of them without a bbox or a segmentation, files without annotations.
- :func:`run_pycocotools` evaluates with pycocotools (the oracle);
  :func:`load_results` / :func:`to_annotations` build the engine's inputs from the same data
  (detections as pycocotools ``loadRes`` derives them); :func:`run_engine` runs the engine with
  the same parameters; :func:`assert_matches_oracle` compares, printing both stats vectors.

Parameters are given in pycocotools' names (``iouThrs``, ``maxDets``, ``areaRng``,
``areaRngLbl``, ``imgIds``, ``catIds``, ``useCats``); :func:`engine_params` maps them onto
:class:`~ochuman.eval.params.EvalParams`. Like pycocotools, the categories default to every
category of the ground-truth file (the engine's default is the annotated ones).
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import numpy as np
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ochuman.compat import quietly
from ochuman.eval.accumulation import Accumulated, evaluate
from ochuman.eval.annotations import Annotations
from ochuman.eval.params import EvalParams

NUM_KEYPOINTS = 17

PARAM_NAMES = {
    "imgIds": "img_ids", "catIds": "cat_ids", "iouThrs": "iou_thrs", "recThrs": "rec_thrs",
    "maxDets": "max_dets", "areaRng": "area_rng", "areaRngLbl": "area_rng_lbl", "useCats": "use_cats",
}

# Few distinct values, so that ties between detections (in one image and across images) happen.
SCORE_SETS = (
    (0.5,),
    (0.25, 0.5, 0.75),
    (0.1, 0.3, 0.5, 0.7, 0.9, 1.0),
    (0.05, 0.15, 0.35, 0.55, 0.65, 0.8, 0.85, 0.95),
)


# --------------------------------------------------------------------------------------------
# geometry (numpy, from a drawn seed: fast to generate, reproducible from the example)

def _random_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A rectangle, or a union of 1-3 rectangles / ellipses; never empty."""
    m = np.zeros((h, w), dtype=bool)
    yy, xx = np.mgrid[:h, :w]
    parts = 1 if rng.random() < 0.4 else int(rng.integers(1, 4))
    if min(h, w) >= 100 and rng.random() < 0.3:  # nearly the whole image: the "large" range
        m[int(rng.integers(0, 4)):h - int(rng.integers(0, 4)), int(rng.integers(0, 4)):w - int(rng.integers(0, 4))] = True
        return m
    scale = max(2, int(min(h, w) * rng.choice([0.25, 0.5, 0.9])))
    for _ in range(parts):
        if rng.random() < 0.5:
            bw, bh = int(rng.integers(1, scale + 1)), int(rng.integers(1, scale + 1))
            x0, y0 = int(rng.integers(0, max(1, w - bw + 1))), int(rng.integers(0, max(1, h - bh + 1)))
            m[y0:y0 + bh, x0:x0 + bw] = True
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            rx, ry = rng.uniform(0.7, scale / 2 + 1), rng.uniform(0.7, scale / 2 + 1)
            m |= ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1
    if not m.any():
        m[int(rng.integers(h)), int(rng.integers(w))] = True
    return m


def _shifted(m: np.ndarray, dx: int, dy: int) -> np.ndarray:
    out = np.zeros_like(m)
    h, w = m.shape
    src = m[max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
    return out


def _perturbed_mask(rng: np.random.Generator, m: np.ndarray) -> np.ndarray:
    """A detection derived from a ground-truth mask: shifted, pixels flipped, or an exact copy."""
    mode = rng.random()
    if mode < 0.15:
        return m.copy()
    out = _shifted(m, int(rng.integers(-3, 4)), int(rng.integers(-3, 4)))
    if mode < 0.7:
        out ^= rng.random(m.shape) < rng.choice([0.01, 0.05, 0.15])
    else:  # grow or shrink by one pixel around the object
        grow = np.zeros_like(out)
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            grow |= _shifted(out, dx, dy)
        out = grow if rng.random() < 0.5 else out & ~(grow & ~out)
    return out


def _encode(m: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _uncompressed_counts(m: np.ndarray) -> list:
    """COCO's uncompressed RLE counts of a mask: run lengths in column order, zeros first."""
    flat = m.ravel(order="F")
    runs = np.diff(np.r_[0, np.flatnonzero(flat[1:] != flat[:-1]) + 1, flat.size]).tolist()
    return [0] + runs if flat[0] else runs


def _keypoints_in_box(rng: np.random.Generator, box, labelled_p: float, coco_zeros: bool) -> list:
    x, y, w, h = box
    k = np.zeros((NUM_KEYPOINTS, 3))
    k[:, 0] = x + rng.random(NUM_KEYPOINTS) * w
    k[:, 1] = y + rng.random(NUM_KEYPOINTS) * h
    if labelled_p <= 0:
        k[:, 2] = 0
    else:
        k[:, 2] = np.where(rng.random(NUM_KEYPOINTS) < labelled_p, rng.integers(1, 3, NUM_KEYPOINTS), 0)
    if coco_zeros:  # COCO writes unlabelled points as 0, 0, 0
        k[k[:, 2] == 0, :2] = 0
    return k.reshape(-1).tolist()


def _jittered_keypoints(rng: np.random.Generator, gt_kpts: list, box, area: float) -> list:
    k = np.array(gt_kpts, dtype=float).reshape(NUM_KEYPOINTS, 3)
    mode = rng.random()
    if mode < 0.1:  # exact copy: OKS 1 (or as close as the formula gets)
        out = k.copy()
    elif mode < 0.25:  # anywhere near the box
        x, y, w, h = box
        out = np.zeros_like(k)
        out[:, 0] = x - w / 2 + rng.random(NUM_KEYPOINTS) * 2 * w
        out[:, 1] = y - h / 2 + rng.random(NUM_KEYPOINTS) * 2 * h
    else:
        spread = np.sqrt(max(area, 1.0)) * rng.choice([0.005, 0.02, 0.05, 0.1, 0.3])
        out = k.copy()
        out[:, :2] += rng.normal(0, spread, (NUM_KEYPOINTS, 2))
    out[:, 2] = rng.choice([1.0, 2.0])
    if rng.random() < 0.3:
        out[:, :2] = np.round(out[:, :2], 1)
    return out.reshape(-1).tolist()


def _jittered_box(rng: np.random.Generator, box) -> list:
    x, y, w, h = (float(v) for v in box)
    mode = rng.random()
    if mode < 0.15:
        return [x, y, w, h]
    s = rng.choice([0.02, 0.08, 0.2, 0.5])
    out = [x + rng.normal(0, s * max(w, 1)), y + rng.normal(0, s * max(h, 1)),
           w * float(np.exp(rng.normal(0, s))), h * float(np.exp(rng.normal(0, s)))]
    if mode < 0.5:
        out = [round(v, int(rng.integers(0, 3))) for v in out]
    return out


def _random_box(rng: np.random.Generator, w: int, h: int) -> list:
    bw, bh = rng.uniform(1, w), rng.uniform(1, h)
    return [rng.uniform(-2, w - bw + 2), rng.uniform(-2, h - bh + 2), bw, bh]


# --------------------------------------------------------------------------------------------
# workloads: a plain builder (fixed seeds in plain tests) and the hypothesis strategy

DEFAULT_CONFIG = {
    "per_image": ((2, 5), (0, 3), (3, 0)),  # (ground truths, detections) per image
    "cat_ids": (1,),  # categories annotated and detected
    "extra_category": False,  # list a category nobody annotated
    "area_mode": "box",  # gt area: "box" (w*h, as the OCHuman files), "mask" or "mixed"
    "crowd_p": 0.1, "zero_kp_p": 0.1, "labelled_p": 0.7, "dup_p": 0.1, "own_cat_p": 1.0,
    "scores": SCORE_SETS[2],
    "id_zero": False,  # one ground truth gets id 0
    "shuffle_files": False,  # shuffle images, annotations and results in their files
    "heavy": False,  # the first image gets more detections than maxDets
    "results_with_bbox": False,  # segm / keypoints results also carry a bbox (loadRes' bbox branch)
    "results_all_fields": False,  # every result carries segmentation, bbox and keypoints (Detectron2)
    "mixed_fields": None,  # with all fields: "bbox" (record 0 and some others lose it) or "segmentation" (some lose it)
    "polygon_p": 0.0,  # share of non-crowd ground truths given as a polygon (a jittered rectangle)
    "uncompressed_p": 0.0,  # share of ground-truth masks given as uncompressed RLE (COCO's crowd format)
    "zero_num_kp_p": 0.0,  # share of persons with labelled keypoints but "num_keypoints": 0
    "category_name": None,  # name of every category (default c<id>)
    "large_p": 0.15,  # share of 100..120 px images (20..60 px otherwise)
    "occluding_p": 0.0,  # share of ground truths drawn as a shifted / perturbed copy of an earlier one of the image
}


def build_workload(iou_type: str, seed: int, **config) -> dict:
    """A COCO evaluation for ``iou_type``: ``{"gt": dict, "results": list, "iou_type": str}``.

    ``config`` overrides :data:`DEFAULT_CONFIG`; the geometry comes from ``seed``.
    """
    unknown = set(config) - set(DEFAULT_CONFIG)
    if unknown:
        raise TypeError(f"unknown workload options {sorted(unknown)}")
    c = {**DEFAULT_CONFIG, **config}
    cat_ids, scores = tuple(c["cat_ids"]), tuple(c["scores"])
    rng = np.random.default_rng(seed)
    n_images = len(c["per_image"])
    image_ids = rng.choice(np.arange(1, 10_000), size=n_images, replace=False).tolist()
    images = []
    for image_id in image_ids:
        large = rng.random() < c["large_p"]
        side = (lambda: int(rng.integers(100, 121))) if large else (lambda: int(rng.integers(20, 61)))
        images.append({"id": int(image_id), "width": side(), "height": side(), "file_name": f"{image_id}.jpg"})

    gts, results, masks = [], [], {}
    for index, (image, (n_gt, n_dt)) in enumerate(zip(images, c["per_image"])):
        h, w = image["height"], image["width"]
        own = []
        for _ in range(n_gt):
            if own and rng.random() < c["dup_p"]:  # the same shape again: IoU ties between gts
                m = masks[id(own[int(rng.integers(len(own)))])]
            elif own and c["occluding_p"] and rng.random() < c["occluding_p"]:  # overlaps an earlier gt
                m = _perturbed_mask(rng, masks[id(own[int(rng.integers(len(own)))])])
                if not m.any():
                    m = _random_mask(rng, h, w)
            else:
                m = _random_mask(rng, h, w)
            crowd = int(rng.random() < c["crowd_p"])
            segmentation = rle = _encode(m)
            if not crowd and rng.random() < c["polygon_p"]:
                x0, y0 = rng.uniform(0, w / 2), rng.uniform(0, h / 2)
                x1, y1 = rng.uniform(x0 + 1, w), rng.uniform(y0 + 1, h)
                segmentation = [[x0, y0, x1, y0 + rng.uniform(-1, 1), x1, y1, x0 + rng.uniform(-1, 1), y1]]
                rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, h, w))
                m = mask_utils.decode(rle).astype(bool)
            elif rng.random() < c["uncompressed_p"]:
                segmentation = {"size": [h, w], "counts": _uncompressed_counts(m)}
            box = [float(v) for v in mask_utils.toBbox(rle)]
            use_box = c["area_mode"] == "box" or (c["area_mode"] == "mixed" and rng.random() < 0.5)
            if crowd or rng.random() < c["zero_kp_p"]:
                kpts = _keypoints_in_box(rng, box, 0.0, True)
            else:
                kpts = _keypoints_in_box(rng, box, c["labelled_p"], rng.random() < 0.8)
            num_keypoints = int(np.count_nonzero(np.array(kpts[2::3]) > 0))
            if rng.random() < c["zero_num_kp_p"]:
                num_keypoints = 0  # labelled points, yet pycocotools ignores the person
            ann = {
                "image_id": image["id"], "category_id": int(rng.choice(cat_ids)), "segmentation": segmentation,
                "area": box[2] * box[3] if use_box else float(m.sum()), "bbox": box, "iscrowd": crowd,
                "keypoints": kpts, "num_keypoints": num_keypoints,
            }
            masks[id(ann)] = m
            own.append(ann)
        gts.extend(own)

        count = n_dt
        if c["heavy"] and index == 0:
            count += int(rng.integers(21, 45)) if iou_type == "keypoints" else int(rng.integers(101, 131))
        for _ in range(count):
            source = own[int(rng.integers(len(own)))] if own and rng.random() < 0.75 else None
            category = (source["category_id"] if source is not None and rng.random() < c["own_cat_p"]
                        else int(rng.choice(cat_ids)))
            result = {"image_id": image["id"], "category_id": category, "score": float(rng.choice(scores))}
            if c["results_all_fields"]:
                m = _perturbed_mask(rng, masks[id(source)]) if source is not None else _random_mask(rng, h, w)
                result["segmentation"] = _encode(m)
                result["bbox"] = _jittered_box(rng, mask_utils.toBbox(result["segmentation"]))
                base = source["keypoints"] if source is not None else _keypoints_in_box(rng, result["bbox"], 1.0, False)
                result["keypoints"] = _jittered_keypoints(rng, base, result["bbox"], max(m.sum(), 1))
            elif iou_type == "segm":
                m = _perturbed_mask(rng, masks[id(source)]) if source is not None else _random_mask(rng, h, w)
                result["segmentation"] = _encode(m)
                if c["results_with_bbox"]:
                    result["bbox"] = [float(v) for v in mask_utils.toBbox(result["segmentation"])]
            elif iou_type == "bbox":
                result["bbox"] = _jittered_box(rng, source["bbox"]) if source is not None else _random_box(rng, w, h)
            else:
                if source is not None:
                    result["keypoints"] = _jittered_keypoints(rng, source["keypoints"], source["bbox"], source["area"])
                else:
                    result["keypoints"] = _keypoints_in_box(rng, _random_box(rng, w, h), 1.0, False)
                if c["results_with_bbox"]:
                    result["bbox"] = _random_box(rng, w, h) if source is None else _jittered_box(rng, source["bbox"])
            results.append(result)

    if c["shuffle_files"]:
        rng.shuffle(gts)
        rng.shuffle(results)
        rng.shuffle(images)
    if c["mixed_fields"] and c["results_all_fields"]:  # loadRes' rules for such files: record 0 decides
        for k, result in enumerate(results):
            if (c["mixed_fields"] == "bbox" and k == 0) or rng.random() < 0.3:
                del result[c["mixed_fields"]]
    ids = rng.choice(np.arange(1, 100_000), size=len(gts), replace=False).tolist() if gts else []
    for ann, ann_id in zip(gts, ids):
        ann["id"] = int(ann_id)
    if c["id_zero"] and gts:
        gts[int(rng.integers(len(gts)))]["id"] = 0
    categories = [{"id": cat, "name": c["category_name"] or f"c{cat}", "supercategory": "x"} for cat in cat_ids]
    if c["extra_category"]:
        categories.append({"id": max(cat_ids) + 4, "name": "unannotated", "supercategory": "x"})
    gt = {"info": {}, "images": images, "annotations": gts, "categories": categories}
    return {"gt": gt, "results": results, "iou_type": iou_type}


@st.composite
def coco_workloads(draw, iou_type: str, max_images: int = 8, heavy: Optional[bool] = None,
                   person_file: bool = False, occluded: bool = False):
    """Workloads for ``iou_type`` (see :func:`build_workload`): structure (counts, flags,
    conventions) drawn by hypothesis, geometry from a drawn seed. ``heavy``: force (True) or
    forbid (False) an image with more detections than ``maxDets``; None: sometimes.
    ``person_file``: a person file as ``ochuman eval --gt`` takes (one category, id 1, named
    ``person``) with the mask formats and result shapes users bring (see the module doc).
    ``occluded``: many ground truths overlap an earlier one of their image (MaxIoU in every
    occlusion subset)."""
    n_images = draw(st.integers(1, max_images))
    two_cats = not person_file and draw(st.booleans())
    config = {
        "per_image": tuple((draw(st.integers(0, 6)), draw(st.integers(0, 12))) for _ in range(n_images)),
        "cat_ids": draw(st.sampled_from([(1, 2), (2, 1), (1, 7)])) if two_cats else (draw(st.sampled_from([1, 3])),),
        "area_mode": draw(st.sampled_from(["box", "mask", "mixed"])),
        "crowd_p": draw(st.sampled_from([0.0, 0.0, 0.1, 0.3])),
        "zero_kp_p": draw(st.sampled_from([0.0, 0.1, 0.4])),
        "labelled_p": draw(st.sampled_from([0.3, 0.7, 1.0])),
        "dup_p": draw(st.sampled_from([0.0, 0.0, 0.2])),
        "scores": draw(st.sampled_from(SCORE_SETS)),
        "own_cat_p": draw(st.sampled_from([1.0, 0.8])),
        "id_zero": draw(st.booleans()) and draw(st.booleans()),  # about 1 in 4
        "shuffle_files": draw(st.booleans()),
        "heavy": (draw(st.booleans()) and draw(st.booleans())) if heavy is None else heavy,
        "results_with_bbox": iou_type != "bbox" and draw(st.integers(0, 4)) == 0,
        "large_p": draw(st.sampled_from([0.0, 0.15, 0.5])),
    }
    config["extra_category"] = not person_file and len(config["cat_ids"]) == 1 and draw(st.booleans())
    if occluded:
        config["occluding_p"] = draw(st.sampled_from([0.3, 0.6]))
    if person_file:
        config["cat_ids"], config["category_name"] = (1,), "person"
        config["polygon_p"] = draw(st.sampled_from([0.0, 0.3, 1.0]))
        config["uncompressed_p"] = draw(st.sampled_from([0.0, 0.0, 0.3]))
        config["zero_num_kp_p"] = draw(st.sampled_from([0.0, 0.0, 0.2]))
        config["results_all_fields"] = draw(st.integers(0, 2)) == 0
        config["results_with_bbox"] = config["results_with_bbox"] and not config["results_all_fields"]
        config["mixed_fields"] = draw(st.sampled_from([None, "bbox", "segmentation"]))
        if draw(st.integers(0, 7)) == 0:  # a file without annotations
            config["per_image"] = tuple((0, n_dt) for _, n_dt in config["per_image"])
    return build_workload(iou_type, draw(st.integers(0, 2 ** 32 - 1)), **config)


# --------------------------------------------------------------------------------------------
# pycocotools (oracle) and engine

def coco_from_dict(gt_dict: dict) -> COCO:
    with quietly():
        coco = COCO()
        coco.dataset = copy.deepcopy(gt_dict)
        coco.createIndex()
    return coco


def load_results_coco(coco_gt: COCO, results: list) -> COCO:
    """pycocotools ``loadRes`` on a copy of ``results``; an empty list gives an empty result set
    (``loadRes`` itself cannot take one)."""
    with quietly():
        if results:
            return coco_gt.loadRes(copy.deepcopy(results))
        coco_dt = COCO()
        coco_dt.dataset = {"images": list(coco_gt.dataset["images"]), "annotations": [],
                           "categories": copy.deepcopy(coco_gt.dataset["categories"])}
        coco_dt.createIndex()
        return coco_dt


def load_results(gt_dict: dict, results: list) -> list:
    """The detections as pycocotools ``loadRes`` completes them (``id``, ``area``, ``bbox``)."""
    return load_results_coco(coco_from_dict(gt_dict), results).dataset["annotations"]


def run_pycocotools(gt_dict: dict, results_list: list, iou_type: str,
                    params_overrides: Optional[dict] = None):
    """pycocotools ``evaluate(); accumulate(); summarize()`` -> (stats, precision, recall).

    params_overrides: attributes of ``COCOeval.params`` by their pycocotools names.
    """
    coco_gt = coco_from_dict(gt_dict)
    coco_dt = load_results_coco(coco_gt, results_list)
    with quietly():
        coco_eval = COCOeval(coco_gt, coco_dt, iou_type)
        for name, value in (params_overrides or {}).items():
            if name in ("iouThrs", "recThrs"):  # pycocotools compares them as arrays
                value = np.asarray(value, dtype=float)
            setattr(coco_eval.params, name, copy.deepcopy(value))
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    return (np.asarray(coco_eval.stats, dtype=float), coco_eval.eval["precision"], coco_eval.eval["recall"])


def _to_rle(segm: Any, h: int, w: int) -> dict:
    """pycocotools ``COCO.annToRLE`` on one segmentation."""
    if isinstance(segm, list):
        return mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    if isinstance(segm["counts"], list):
        return mask_utils.frPyObjects(segm, h, w)
    return segm


def to_annotations(anns: list, iou_type: str, images: list, is_gt: bool) -> Annotations:
    """Engine :class:`Annotations` from COCO annotation dicts (ground truth as in the file,
    detections as ``loadRes`` completed them). ``images``: the ground truth's image list."""
    n = len(anns)
    sizes = {im["id"]: (im["height"], im["width"]) for im in images}
    counts = mask_size = keypoints = num_keypoints = None
    if iou_type == "segm":
        rles = [_to_rle(a["segmentation"], *sizes[a["image_id"]]) for a in anns]
        counts = [r["counts"].decode("ascii") if isinstance(r["counts"], bytes) else r["counts"] for r in rles]
        mask_size = np.array([r["size"] for r in rles], dtype=np.int64).reshape(n, 2)
    if iou_type == "keypoints":
        keypoints = np.array([a["keypoints"] for a in anns], dtype=float).reshape(n, 3 * NUM_KEYPOINTS)
        if is_gt:
            num_keypoints = np.array([a["num_keypoints"] for a in anns], dtype=np.int64)
    return Annotations(
        image_id=np.array([a["image_id"] for a in anns], dtype=np.int64),
        category_id=np.array([a["category_id"] for a in anns], dtype=np.int64),
        ann_id=np.array([a["id"] for a in anns], dtype=np.int64),
        bbox=np.array([list(a["bbox"]) for a in anns], dtype=float).reshape(n, 4),
        area=np.array([a["area"] for a in anns], dtype=float),
        iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool),
        score=np.ones(n) if is_gt else np.array([a["score"] for a in anns], dtype=float),
        counts=counts, mask_size=mask_size, keypoints=keypoints, num_keypoints=num_keypoints,
        file_image_ids=np.array([im["id"] for im in images], dtype=np.int64) if is_gt else None,
    )


def engine_params(gt_dict: dict, iou_type: str, params_overrides: Optional[dict] = None) -> EvalParams:
    """EvalParams set as pycocotools' Params would be (categories: the file's list)."""
    kwargs = {"cat_ids": sorted(c["id"] for c in gt_dict["categories"])}
    for name, value in (params_overrides or {}).items():
        kwargs[PARAM_NAMES[name]] = np.asarray(value, dtype=float) if name in ("iouThrs", "recThrs") else copy.deepcopy(value)
    if "use_cats" in kwargs:
        kwargs["use_cats"] = bool(kwargs["use_cats"])
    return EvalParams(iou_type=iou_type, **kwargs)


def run_engine(gt_dict: dict, results_list: list, iou_type: str,
               params_overrides: Optional[dict] = None) -> Accumulated:
    gt = to_annotations(gt_dict["annotations"], iou_type, gt_dict["images"], is_gt=True)
    dt = to_annotations(load_results(gt_dict, results_list), iou_type, gt_dict["images"], is_gt=False)
    return evaluate(gt, dt, engine_params(gt_dict, iou_type, params_overrides))


def describe(workload: dict) -> str:
    gt, res = workload["gt"], workload["results"]
    per_image = {}
    for r in res:
        per_image[r["image_id"]] = per_image.get(r["image_id"], 0) + 1
    return (f"{workload['iou_type']}: {len(gt['images'])} images, {len(gt['annotations'])} gt "
            f"({sum(a['iscrowd'] for a in gt['annotations'])} crowd), {len(res)} detections "
            f"(most on one image: {max(per_image.values(), default=0)}), "
            f"categories {[c['id'] for c in gt['categories']]}")


def assert_matches_oracle(ours: Accumulated, oracle, context: str = "", atol: float = 1e-12) -> None:
    """Engine result vs (stats, precision, recall) of :func:`run_pycocotools`."""
    stats, precision, recall = oracle
    ours_stats = np.asarray(ours.stats, dtype=float)
    def show(values):
        return np.array2string(np.asarray(values), precision=17, max_line_width=240)

    header = f"{context}\n engine stats:      {show(ours_stats)}\n pycocotools stats: {show(stats)}\n"
    assert ours_stats.shape == stats.shape, header + " stats shapes differ"
    header += f" difference:        {show(ours_stats - stats)}\n"
    assert np.allclose(ours_stats, stats, rtol=0, atol=atol), header + " stats differ"
    for name, mine, theirs in (("precision", ours.precision, precision), ("recall", ours.recall, recall)):
        assert mine.shape == theirs.shape, header + f" {name} shape {mine.shape} != {theirs.shape}"
        diff = np.abs(mine - theirs)
        if not (diff <= atol).all():
            where = np.unravel_index(int(np.argmax(diff)), diff.shape)
            raise AssertionError(header + f" {name} differs: max |diff| {diff.max()} at {where} "
                                 f"(engine {mine[where]}, pycocotools {theirs[where]}), "
                                 f"{int((diff > atol).sum())} cells")
