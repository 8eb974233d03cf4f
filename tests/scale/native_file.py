"""A synthetic native ``ochuman.json`` at OCHuman scale (seeded, a few seconds).

Used by the real-scale test tier (``tests/scale``) and by the benchmarks
(``bench/make_native.py`` writes it from the command line).

Mimics the real file's structure (see ``../shared/data/ochuman-sample``): top level ``images``,
``keypoint_names``, ``keypoint_visible``; images ``{"annotations", "file_name", "image_id",
"width", "height"}``; persons ``{"max_iou", "keypoints", "segms", "links", "bbox"}`` with
integer ``[x1, y1, x2, y2]`` boxes, ``max_iou`` recomputed from the boxes with the official
convention and stored as the float32 value (as the authors did), 57 keypoint numbers (body
joints integers, face points floats, codes 0..3, missing = 0, 0, 0), ``segms`` with float
polygons (``outer``, ``inner`` holes, ``width``, ``height``) and 24-hex ``links``. The real
file is written with 4-space indentation; ``indent=0`` writes compact JSON.

Default counts are those of OCHuman: 5081 images, 13360 persons, 10375 with keypoints, 8110
with keypoints and a mask, spread over 4731 images (350 images have no masked person, some of
them only box-only persons), so ``ochuman stats`` reports 4731 images / 8110 persons for the
benchmark filter ``kpt&segm``. The persons with keypoints and a mask overlap another person
with MaxIoU > 0.5; box-only persons are placed freely (mostly low MaxIoU). In ``n_twin_images``
images two masked persons share one box (MaxIoU exactly 1.0, which the official files drop);
in half of them these two are the image's only masked persons, so the official COCO-format
files lack the image. A few images are stored out of id order.
"""
from __future__ import annotations

import os
from pathlib import Path

import msgspec
import numpy as np

from ochuman.keypoints import NUM_OCHUMAN_KEYPOINTS, OCHUMAN_KEYPOINT_NAMES
from ochuman.maxiou import max_iou_from_boxes

# The real file's order of this mapping.
KEYPOINT_VISIBLE = {"vis": 1, "others_occluded": 3, "self_occluded": 2, "missing": 0}
N_IMAGES, N_PERSONS, N_KEYPOINTS, N_MASKED, N_MASKED_IMAGES = 5081, 13360, 10375, 8110, 4731
N_TWIN_IMAGES = 12
MIN_PERSONS, MAX_PERSONS = 2, 6
BODY = 14  # joints 0..13 (12 limbs, head, neck) are stored as integers, 14..18 (face) as floats


def _fill(rng: np.random.Generator, base: np.ndarray, capacity: np.ndarray, total: int,
          weight: np.ndarray | None = None) -> np.ndarray:
    """Add ``total`` units to ``base`` by seeded multinomial draws, never beyond ``capacity``."""
    counts = base.astype(np.int64).copy()
    cap = capacity.astype(np.int64) - counts
    if total > cap.sum():
        raise SystemExit(f"cannot place {total} more: only room for {cap.sum()}")
    weight = np.ones(len(counts)) if weight is None else np.asarray(weight, dtype=np.float64)
    left = total
    while left:
        w = np.where(cap > 0, weight, 0.0)
        add = np.minimum(rng.multinomial(left, w / w.sum()), cap)
        counts += add
        cap -= add
        left -= int(add.sum())
    return counts


def _allocate(rng, n_images, n_persons, n_keypoints, n_masked, n_masked_images):
    """Per image: persons (2..6), masked persons and keypoint-only persons."""
    size = _fill(rng, np.full(n_images, MIN_PERSONS), np.full(n_images, MAX_PERSONS),
                 n_persons - MIN_PERSONS * n_images,
                 weight=np.full(n_images, 1.0))
    masked_images = np.zeros(n_images, dtype=bool)
    masked_images[rng.choice(n_images, n_masked_images, replace=False)] = True
    masked = _fill(rng, masked_images.astype(np.int64), np.where(masked_images, size, 0),
                   n_masked - n_masked_images)
    # Images without a masked person take keypoint-only persons first (some have none).
    kpt_only = _fill(rng, np.zeros(n_images, dtype=np.int64), size - masked,
                     n_keypoints - n_masked, weight=np.where(masked_images, 1.0, 2.0))
    return size, masked, kpt_only


def _boxes(rng, width, height, category):
    """Integer [x1, y1, x2, y2] boxes of one image; annotated persons overlap a partner.

    category: per person 2 (keypoints + mask), 1 (keypoints only), 0 (box only), annotated
    persons first. Returns (k, 4) int64.
    """
    k = len(category)
    u = rng.random((k, 8))
    boxes = np.zeros((k, 4), dtype=np.int64)
    for j in range(k):
        if j == 0 or (category[j] == 0 and j > 1):
            if j == 0:
                w, h = (0.2 + 0.3 * u[j, 0]) * width, (0.45 + 0.5 * u[j, 1]) * height
            else:  # a box-only person anywhere: low MaxIoU most of the time
                w, h = (0.1 + 0.25 * u[j, 0]) * width, (0.3 + 0.5 * u[j, 1]) * height
            x1 = u[j, 2] * (width - 1 - w)
            y1 = u[j, 3] * (height - 1 - h)
            boxes[j] = [x1, y1, x1 + w, y1 + h]
            continue
        p = int(u[j, 4] * j)  # partner: an earlier person
        px1, py1, px2, py2 = boxes[p]
        pw, ph = px2 - px1, py2 - py1
        target = 0.52 + 0.46 * u[j, 5] ** 2.2  # IoU with the partner, mean ~0.66
        shift = pw * (1 - target) / (1 + target)
        dy = (u[j, 6] - 0.5) * 0.04 * ph
        sign = 1 if u[j, 7] < 0.5 else -1
        if not (0 <= px1 + sign * shift and px2 + sign * shift <= width - 1):
            sign = -sign
        x1 = min(max(px1 + sign * shift, 0), width - 1 - pw)
        y1 = min(max(py1 + dy, 0), height - 1 - ph)
        boxes[j] = [round(x1), round(y1), round(x1) + pw, round(y1) + ph]
    return boxes


def _twin_boxes(rng, category, boxes, n_twin_images):
    """Give two masked persons one box in ``n_twin_images`` images (in place).

    category, boxes: per image, as :func:`_boxes` takes and returns them. Half of the images are
    drawn among those with exactly two masked persons (the image then holds only MaxIoU 1.0
    masked persons), half among those with more; each half from the first and the second half
    of the file alternately. An image is skipped when the change would leave a person with
    keypoints at MaxIoU <= 0.5 (every annotated OCHuman person is above).
    Returns the indices of the images changed.
    """
    masked = np.array([int((c == 2).sum()) for c in category])
    half = len(category) // 2
    changed = []
    for n_wanted, pool in ((n_twin_images // 2, masked == 2), (n_twin_images - n_twin_images // 2, masked > 2)):
        parts = [rng.permutation(np.flatnonzero(pool[:half])),
                 half + rng.permutation(np.flatnonzero(pool[half:]))]
        found = 0
        for i in (int(i) for pair in zip(*parts) for i in pair):
            if found == n_wanted:
                break
            a, b = np.flatnonzero(category[i] == 2)[:2]
            box = boxes[i].copy()
            box[b] = box[a]
            if (max_iou_from_boxes(box)[category[i] >= 1] > 0.5).all():
                boxes[i] = box
                changed.append(i)
                found += 1
    return changed


def _polygon_points(rng, n_points, cx, cy, rx, ry, lo, hi):
    """Ragged star-shaped polygons: for each, n_points around an ellipse, clipped to [lo, hi].

    All arrays are per polygon (P,); returns the flat (sum(n) * 2,) float64 coordinates and
    the offsets of each polygon into it (in coordinates).
    """
    total = int(n_points.sum())
    owner = np.repeat(np.arange(len(n_points)), n_points)
    start = np.repeat(np.cumsum(n_points) - n_points, n_points)
    rank = np.arange(total) - start
    theta = 2 * np.pi * (rank + 0.8 * rng.random(total)) / n_points[owner]
    radius = 0.8 + 0.2 * rng.random(total)
    xy = np.empty((total, 2))
    xy[:, 0] = cx[owner] + rx[owner] * radius * np.cos(theta)
    xy[:, 1] = cy[owner] + ry[owner] * radius * np.sin(theta)
    np.clip(xy, lo[owner], hi[owner], out=xy)
    offsets = np.r_[0, np.cumsum(2 * n_points)]
    return xy.ravel(), offsets


def _segms(rng, bbox, image_size):
    """Polygons of the masked persons. bbox (M, 4), image_size (M, 2) = (height, width)."""
    m = len(bbox)
    n_outer = rng.choice(np.arange(1, 6), size=m, p=[0.4, 0.3, 0.2, 0.06, 0.04])
    n_inner = (rng.random(m) < 0.08).astype(np.int64)  # a small hole now and then
    owner = np.r_[np.repeat(np.arange(m), n_outer), np.repeat(np.arange(m), n_inner)]
    first = np.r_[np.r_[0, np.cumsum(n_outer)[:-1]], np.full(int(n_inner.sum()), -1)]
    is_main = np.zeros(len(owner), dtype=bool)
    is_main[first[first >= 0]] = True
    is_hole = np.r_[np.zeros(int(n_outer.sum()), bool), np.ones(int(n_inner.sum()), bool)]
    p = len(owner)
    x1, y1, x2, y2 = (bbox[owner, c].astype(np.float64) for c in range(4))
    bw, bh = x2 - x1, y2 - y1
    # Main outline: the body, an ellipse filling most of the box; extra parts: smaller blobs
    # inside the box (arms, a leg cut by an occluder); holes: small blobs near the centre.
    frac = np.where(is_main, 0.5, np.where(is_hole, 0.08, 0.12 + 0.12 * rng.random(p)))
    rx, ry = frac * bw, frac * bh
    cx = np.where(is_main, (x1 + x2) / 2, x1 + rx + (bw - 2 * rx) * rng.random(p))
    cy = np.where(is_main, (y1 + y2) / 2, y1 + ry + (bh - 2 * ry) * rng.random(p))
    n_points = np.where(is_main, rng.integers(30, 91, p),
                        np.where(is_hole, rng.integers(6, 16, p), rng.integers(3, 61, p)))
    lo = np.stack([x1, y1], axis=1)
    hi = np.stack([x2, y2], axis=1)
    flat, offsets = _polygon_points(rng, n_points, cx, cy, rx, ry, lo, hi)
    values = flat.tolist()
    polygons = [values[offsets[q]:offsets[q + 1]] for q in range(p)]
    out = []
    outer_at = np.r_[0, np.cumsum(n_outer)]
    inner_at = int(n_outer.sum()) + np.r_[0, np.cumsum(n_inner)]
    for i in range(m):
        out.append({
            "outer": polygons[outer_at[i]:outer_at[i + 1]],
            "inner": polygons[inner_at[i]:inner_at[i + 1]],
            "width": int(image_size[i, 1]),
            "height": int(image_size[i, 0]),
        })
    return out


def _keypoints(rng, bbox):
    """57 numbers per person: (x, y, v) x 19, body joints integer, face points float."""
    m = len(bbox)
    j = NUM_OCHUMAN_KEYPOINTS
    x1, y1, x2, y2 = (bbox[:, c, None].astype(np.float64) for c in range(4))
    x = x1 + (x2 - x1) * (0.1 + 0.8 * rng.random((m, j)))
    y = y1 + (y2 - y1) * (0.05 + 0.9 * rng.random((m, j)))
    body_p = [0.12, 0.58, 0.10, 0.20]  # missing, vis, self_occluded, others_occluded
    face_p = [0.55, 0.35, 0.04, 0.06]
    v = np.empty((m, j), dtype=np.int64)
    v[:, :BODY] = rng.choice(4, size=(m, BODY), p=body_p)
    v[:, BODY:] = rng.choice(4, size=(m, j - BODY), p=face_p)
    missing = v == 0
    body_x = np.where(missing[:, :BODY], 0, np.rint(x[:, :BODY])).astype(np.int64).tolist()
    body_y = np.where(missing[:, :BODY], 0, np.rint(y[:, :BODY])).astype(np.int64).tolist()
    face_x, face_y = x[:, BODY:].tolist(), y[:, BODY:].tolist()
    codes = v.tolist()
    rows = []
    for i in range(m):
        row = []
        bx, by, fx, fy, vi = body_x[i], body_y[i], face_x[i], face_y[i], codes[i]
        for k in range(BODY):
            row += (bx[k], by[k], vi[k])
        for k in range(j - BODY):
            c = vi[BODY + k]
            row += (fx[k], fy[k], c) if c else (0, 0, 0)
        rows.append(row)
    return rows


def _object_ids(rng, n, timestamp):
    """n distinct MongoDB-like 24-hex ids sharing a timestamp prefix, as the real links."""
    start = int(rng.integers(0, 1 << 23))
    seconds = timestamp + np.arange(n) // 3000
    return [f"{s:08x}bb84e437a0{(start + i) & 0xFFFFFF:06x}" for i, s in enumerate(seconds.tolist())]


def make_native(seed: int = 0, n_images: int = N_IMAGES, n_persons: int = N_PERSONS,
                n_keypoints: int = N_KEYPOINTS, n_masked: int = N_MASKED,
                n_masked_images: int = N_MASKED_IMAGES, n_shuffled: int = 6,
                n_twin_images: int = N_TWIN_IMAGES) -> dict:
    """The native file as plain Python objects."""
    if not (n_masked_images <= n_masked <= n_keypoints <= n_persons
            and MIN_PERSONS * n_images <= n_persons <= MAX_PERSONS * n_images
            and n_masked_images <= n_images):
        raise SystemExit("inconsistent counts")
    rng = np.random.default_rng(seed)
    size, masked, kpt_only = _allocate(rng, n_images, n_persons, n_keypoints, n_masked,
                                       n_masked_images)
    width = rng.integers(400, 1001, n_images)
    height = rng.integers(400, 1001, n_images)
    # Many OCHuman images are 1000 pixels on their long side.
    long_side = rng.random(n_images) < 0.6
    landscape = width >= height
    width = np.where(long_side & landscape, 1000, width)
    height = np.where(long_side & ~landscape, 1000, height)

    # Persons image by image: category 2 (kpt + mask), 1 (kpt), 0 (box only).
    image_of, category, bboxes = [], [], []
    for i in range(n_images):
        cat = np.r_[np.full(masked[i], 2), np.full(kpt_only[i], 1),
                    np.zeros(size[i] - masked[i] - kpt_only[i], dtype=np.int64)]
        box = _boxes(rng, int(width[i]), int(height[i]), cat)
        order = rng.permutation(len(cat))  # file order within the image is not by category
        cat, box = cat[order], box[order]
        image_of.append(np.full(len(cat), i))
        category.append(cat)
        bboxes.append(box)
    # Its own stream, so that every other draw is the same with or without twins.
    _twin_boxes(np.random.default_rng([seed, 1]), category, bboxes, n_twin_images)
    max_iou = [max_iou_from_boxes(box) for box in bboxes]
    image_of = np.concatenate(image_of)
    category = np.concatenate(category)
    bbox = np.concatenate(bboxes)
    max_iou = np.concatenate(max_iou).astype(np.float32).tolist()  # float32, as the authors

    has_kpt = category >= 1
    has_mask = category == 2
    keypoints = iter(_keypoints(rng, bbox[has_kpt]))
    image_size = np.stack([height, width], axis=1)[image_of[has_mask]]
    segms = iter(_segms(rng, bbox[has_mask], image_size))
    kpt_ids = iter(_object_ids(rng, int(has_kpt.sum()), 0x5B977A11))
    segm_ids = iter(_object_ids(rng, int(has_mask.sum()), 0x5B9DE708))

    boxes = bbox.tolist()
    images = [{"annotations": [], "file_name": f"{i + 1:06d}.jpg", "image_id": f"{i + 1:06d}",
               "width": int(width[i]), "height": int(height[i])} for i in range(n_images)]
    for n, i in enumerate(image_of.tolist()):
        kpt, mask = bool(has_kpt[n]), bool(has_mask[n])
        images[i]["annotations"].append({
            "max_iou": max_iou[n],
            "keypoints": next(keypoints) if kpt else None,
            "segms": next(segms) if mask else None,
            "links": {"segms": next(segm_ids) if mask else None,
                      "kpts": next(kpt_ids) if kpt else None},
            "bbox": boxes[n],
        })
    # A few images out of id order, as in a file assembled by hand.
    for a in rng.choice(n_images - 1, n_shuffled, replace=False).tolist():
        images[a], images[a + 1] = images[a + 1], images[a]
    return {
        "images": images,
        "keypoint_names": list(OCHUMAN_KEYPOINT_NAMES),
        "keypoint_visible": dict(KEYPOINT_VISIBLE),
    }


def write_native(path: Path, seed: int = 0, indent: int = 4, native: dict | None = None, **counts) -> Path:
    """Write ``native`` (default: generated from ``seed`` and ``counts``) atomically; returns ``path``."""
    data = msgspec.json.encode(make_native(seed, **counts) if native is None else native)
    if indent:
        data = msgspec.json.format(data, indent=indent)  # identical to json.dumps(indent=4)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
