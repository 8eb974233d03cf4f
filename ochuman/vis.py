"""Figures and overlays: persons drawn on their image, the hardest persons, the MaxIoU histogram,
ground truth beside results, precision/recall curves. matplotlib and OpenCV are imported lazily
(inside the functions); never torch.

Conventions
    - Images are BGR ``uint8`` ``(H, W, 3)`` as OpenCV reads them. Drawing functions return a new
      array and never change their inputs.
    - Figures are :class:`matplotlib.figure.Figure` objects built without pyplot: no global
      state, nothing to close, and they render with the Agg canvas whatever backend is active.
      Only the writers (:func:`save_figure`, :func:`save_image`, :func:`plot_report`) touch files,
      always atomically (:func:`ochuman.io.atomic_write`).
    - A person's colour encodes its MaxIoU (:attr:`Dataset.occlusion`: stored, or recomputed from
      boxes) through a colormap over [0, 1] (``"plasma"``: dark blue for isolated persons, orange
      to yellow for the occluded ones). Crowd regions and persons without MaxIoU are grey. The
      two persons of a pair share their MaxIoU, hence their colour: the second one's skeleton is
      drawn in a shade of it (darker, or lighter for dark colours) so the limbs can be told apart.

The look is OCHumanApi ``vis.py``'s: a mask is filled with ``0.8 * image + 0.2 * colour`` and its
edge (Sobel, 3 x 3) drawn with ``0.2 * image + 0.8 * colour``; boxes are 3 px thick; with
``f = sqrt(box area / image area)`` keypoints get radius ``clamp(int(10 f), 4, 10)`` and limbs
are filled ellipses of half-width ``clamp(int(5 f), 2, 10)`` blended at 60 %. Keypoints that are
missing (code 0) are skipped. Visibility, native 19-point files (OCHuman codes): every labelled
point is a filled disc; self-occluded (2) adds a square around it, occluded by another person (3)
a ring. COCO 17-point keypoints: labelled-but-invisible (v = 1) is a hollow circle, visible
(v = 2) a filled disc. Results' keypoints (third value a score) are filled discs.
"""
from __future__ import annotations

import math
import os
from typing import Optional, Sequence, Union

import numpy as np

from ochuman.errors import OCHumanError

PathLike = Union[str, os.PathLike]

#: Default colormap of MaxIoU over [0, 1].
DEFAULT_CMAP = "plasma"
#: BGR colour of crowd regions and persons without a MaxIoU.
GREY = (160, 160, 160)
#: Formats :func:`save_image` writes with OpenCV (``.jpeg`` and ``.tif`` spellings included).
IMAGE_FORMATS = ("png", "jpg", "jpeg", "bmp", "tif", "tiff", "webp")
_COLOR_BY = ("max_iou", "person")
_PNG_DPI = 120


# ------------------------------------------------------------------------------ lazy imports
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _cv2():
    import cv2

    return cv2


def _figure(width: float, height: float):
    """A new pyplot-free Figure (Agg canvas) of ``width`` x ``height`` inches."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# ----------------------------------------------------------------------------------- colours
def max_iou_colors(max_iou: np.ndarray, cmap: str = DEFAULT_CMAP) -> np.ndarray:
    """BGR colours of MaxIoU values through ``cmap`` over [0, 1]; grey where NaN.

    max_iou: (N,) float. Returns (N, 3) uint8.
    """
    import matplotlib

    values = np.asarray(max_iou, dtype=np.float64).reshape(-1)
    rgba = matplotlib.colormaps[cmap](np.clip(np.nan_to_num(values), 0.0, 1.0))
    bgr = np.round(rgba[:, 2::-1] * 255).astype(np.uint8)
    bgr[np.isnan(values)] = GREY
    return bgr


def _palette(n: int) -> np.ndarray:
    """(n, 3) uint8 BGR qualitative colours (tab10, cycled)."""
    import matplotlib

    rgba = matplotlib.colormaps["tab10"](np.arange(n) % 10)
    return np.round(rgba[:, 2::-1] * 255).astype(np.uint8).reshape(n, 3)


def _shade(color) -> tuple:
    """A lighter (for dark colours) or darker variant of a BGR colour, same hue."""
    c = np.asarray(color, dtype=np.float64)
    c = c + (255.0 - c) * 0.55 if _luminance(color) < 110 else c * 0.5
    return tuple(int(round(v)) for v in c)


def _twin_shades(values: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Skeleton colours: the k-th person sharing a MaxIoU with earlier ones gets the shaded
    variant when k is odd, so the two persons of a pair (equal MaxIoU by definition) differ.

    values: (N,) in painting order; colors: (N, 3) uint8. Returns (N, 3) uint8.
    """
    out = np.array(colors, dtype=np.uint8, copy=True)
    seen: dict = {}
    for j, value in enumerate(np.round(np.nan_to_num(values, nan=-1.0), 6)):
        k = seen.get(value, 0)
        seen[value] = k + 1
        if k % 2:
            out[j] = _shade(colors[j])
    return out


def _bgr_to_rgb_float(color) -> tuple:
    b, g, r = (int(v) for v in color)
    return (r / 255.0, g / 255.0, b / 255.0)


# ---------------------------------------------------------------------------------- painting
class _Instance:
    """What gets painted for one person or result."""

    __slots__ = ("color", "limb_color", "bitmap", "box_xyxy", "keypoints", "codes", "skeleton", "label")

    def __init__(self, color, bitmap=None, box_xyxy=None, keypoints=None, codes="coco",
                 skeleton=(), label=None, limb_color=None):
        self.color = tuple(int(v) for v in color)  # BGR
        self.limb_color = self.color if limb_color is None else tuple(int(v) for v in limb_color)
        self.bitmap = bitmap  # (H, W) uint8 0/1 or None
        self.box_xyxy = box_xyxy  # (4,) float or None
        self.keypoints = keypoints  # (K, 3) or None
        self.codes = codes  # "ochuman", "coco" or "score"
        self.skeleton = skeleton  # 1-based limbs
        self.label = label  # text near the box or None


def _paint_mask(canvas: np.ndarray, bitmap: np.ndarray, color) -> None:
    """OCHumanApi ``draw_mask``: 20 % colour inside, 80 % colour on the Sobel edge (in place)."""
    cv2 = _cv2()
    inside = bitmap > 0
    if not inside.any():
        return
    colour = np.asarray(color, dtype=np.float64)
    canvas[inside] = (canvas[inside] * 0.8 + colour * 0.2).astype(np.uint8)
    mask = inside.astype(np.uint8)
    gx = cv2.convertScaleAbs(cv2.Sobel(mask, cv2.CV_16S, 1, 0, ksize=3))
    gy = cv2.convertScaleAbs(cv2.Sobel(mask, cv2.CV_16S, 0, 1, ksize=3))
    edge = cv2.addWeighted(gx, 0.5, gy, 0.5, 0) > 0
    canvas[edge] = (canvas[edge] * 0.2 + colour * 0.8).astype(np.uint8)


def _int_box(box_xyxy) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (int(round(float(v))) for v in box_xyxy)
    return x1, y1, x2, y2


def _paint_box(canvas: np.ndarray, box_xyxy, color, thickness: int = 3) -> None:
    x1, y1, x2, y2 = _int_box(box_xyxy)
    _cv2().rectangle(canvas, (x1, y1), (x2, y2), color, thickness)


def _drawn_points(keypoints: np.ndarray, codes: str) -> np.ndarray:
    """(K,) bool: which keypoints are drawn (labelled ones; for results, those not at (0, 0))."""
    if codes == "score":
        return np.isfinite(keypoints).all(axis=1) & (keypoints[:, :2] != 0).any(axis=1)
    return keypoints[:, 2] > 0


def _size_factor(box_xyxy, keypoints, drawn, shape) -> float:
    """OCHumanApi's ``f = sqrt(box area / image area)``; the box of the drawn points if no box."""
    if box_xyxy is None:
        pts = keypoints[drawn, :2]
        box_xyxy = (*pts.min(axis=0), *pts.max(axis=0))
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    return math.sqrt(max(x2 - x1, 0.0) * max(y2 - y1, 0.0) / float(shape[0] * shape[1]))


def _paint_skeleton(canvas: np.ndarray, inst: _Instance) -> None:
    """Limbs (ellipses blended at 60 %) then points, styled by visibility code (in place)."""
    cv2 = _cv2()
    kpts = np.asarray(inst.keypoints, dtype=np.float64)
    drawn = _drawn_points(kpts, inst.codes)
    if not drawn.any():
        return
    f = _size_factor(inst.box_xyxy, kpts, drawn, canvas.shape)
    r_point = int(min(10, max(int(10 * f), 4)))
    r_line = int(min(10, max(int(5 * f), 2)))
    xy = np.round(kpts[:, :2]).astype(np.int64)

    limbs = np.zeros(canvas.shape[:2], dtype=np.uint8)
    for a, b in inst.skeleton:
        a, b = a - 1, b - 1
        if not (drawn[a] and drawn[b]):
            continue
        (xa, ya), (xb, yb) = kpts[a, :2], kpts[b, :2]
        length = math.hypot(xa - xb, ya - yb)
        angle = math.degrees(math.atan2(ya - yb, xa - xb))
        centre = (int((xa + xb) / 2), int((ya + yb) / 2))
        polygon = cv2.ellipse2Poly(centre, (int(length / 2), r_line), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(limbs, polygon, 1)
    on_limb = limbs > 0
    color = inst.limb_color
    canvas[on_limb] = (canvas[on_limb] * 0.4 + np.asarray(color, dtype=np.float64) * 0.6).astype(np.uint8)

    outline = (0, 0, 0) if _luminance(color) > 90 else (255, 255, 255)
    for k in np.flatnonzero(drawn):
        x, y = (int(v) for v in xy[k])
        v = int(kpts[k, 2]) if inst.codes != "score" else 2
        if inst.codes == "coco" and v == 1:  # labelled, not visible: hollow
            cv2.circle(canvas, (x, y), r_point, color, thickness=2, lineType=cv2.LINE_AA)
            continue
        cv2.circle(canvas, (x, y), r_point, color, thickness=-1, lineType=cv2.LINE_AA)
        cv2.circle(canvas, (x, y), r_point, outline, thickness=1, lineType=cv2.LINE_AA)
        if inst.codes == "ochuman" and v == 2:  # self-occluded: a square
            cv2.rectangle(canvas, (x - r_point - 3, y - r_point - 3), (x + r_point + 3, y + r_point + 3),
                          color, 2)
        elif inst.codes == "ochuman" and v == 3:  # occluded by another person: a ring
            cv2.circle(canvas, (x, y), r_point + 4, color, thickness=2, lineType=cv2.LINE_AA)


def _paint_label(canvas: np.ndarray, inst: _Instance, taken: list) -> None:
    """``inst.label`` on a chip of the person's colour at the box's top-left corner, moved down
    past the chips already in ``taken`` (a list of [x1, y1, x2, y2], appended to)."""
    cv2 = _cv2()
    h, w = canvas.shape[:2]
    scale = min(1.0, max(0.4, min(h, w) / 1000.0))
    thickness = 1 if scale < 0.7 else 2
    (tw, th), base = cv2.getTextSize(inst.label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = 3
    cw, ch = tw + 2 * pad, th + base + 2 * pad
    x1, y1, _, _ = _int_box(inst.box_xyxy)
    x = min(max(x1, 0), max(w - cw, 0))
    top = y1 - ch - 1  # above the box when there is room, else just inside it
    if top < 0:
        top = max(y1, 0) + 2
    for _ in range(len(taken) + 1):
        hit = next((t for t in taken if x < t[2] and t[0] < x + cw and top < t[3] and t[1] < top + ch), None)
        if hit is None:
            break
        top = hit[3] + 1
    top = min(top, max(h - ch, 0))
    taken.append((x, top, x + cw, top + ch))
    cv2.rectangle(canvas, (x, top), (x + cw - 1, top + ch - 1), inst.color, -1)
    text = (0, 0, 0) if _luminance(inst.color) > 140 else (255, 255, 255)
    cv2.putText(canvas, inst.label, (x + pad, top + pad + th), cv2.FONT_HERSHEY_SIMPLEX, scale, text,
                thickness, cv2.LINE_AA)


def _luminance(bgr) -> float:
    b, g, r = (float(v) for v in bgr)
    return 0.299 * r + 0.587 * g + 0.114 * b


def _paint(image_bgr: np.ndarray, instances: Sequence[_Instance], masks: bool, skeleton: bool,
           boxes: bool, labels: bool) -> np.ndarray:
    """All masks, then boxes, then skeletons, then labels, on a copy of the image."""
    canvas = np.array(image_bgr, dtype=np.uint8, copy=True)
    if masks:
        for inst in instances:
            if inst.bitmap is not None:
                _paint_mask(canvas, inst.bitmap, inst.color)
    if boxes:
        for inst in instances:
            if inst.box_xyxy is not None:
                _paint_box(canvas, inst.box_xyxy, inst.color)
    if skeleton:
        for inst in instances:
            if inst.keypoints is not None and len(inst.skeleton):
                _paint_skeleton(canvas, inst)
    if labels:
        taken: list = []
        for inst in instances:
            if inst.label is not None and inst.box_xyxy is not None:
                _paint_label(canvas, inst, taken)
    return canvas


def _check_image(image_bgr: np.ndarray, dataset, image_index: int) -> None:
    image = dataset.images[image_index]
    shape = np.shape(image_bgr)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"image_bgr: expected (H, W, 3) BGR, got shape {shape}")
    if shape[:2] != (image.height, image.width):
        raise OCHumanError(
            f"{dataset.source}: image {image.image_id!r} ({image.file_name}) is {image.width} x "
            f"{image.height} in the file but the pixels given are {shape[1]} x {shape[0]}")


# ------------------------------------------------------------------------------------ persons
def _painting_order(occlusion: np.ndarray) -> np.ndarray:
    """Least occluded first (NaN before all), so the most occluded persons end up on top."""
    return np.argsort(np.nan_to_num(occlusion, nan=-1.0), kind="stable")


def _person_colors(dataset, idx: np.ndarray, color_by: str, cmap: str) -> tuple[np.ndarray, np.ndarray]:
    """(colours, skeleton colours), each (len(idx), 3) uint8 BGR, of the persons ``idx``.

    By MaxIoU, persons sharing a value (the two of a pair always do) alternate between the
    colour and its shade for their skeletons (:func:`_twin_shades`, in painting order); crowd
    regions are grey.
    """
    occlusion = dataset.occlusion[idx]
    if color_by == "max_iou":
        colors = max_iou_colors(occlusion, cmap)
        order = _painting_order(occlusion)
        limb_colors = colors.copy()
        limb_colors[order] = _twin_shades(occlusion[order], colors[order])
    else:
        colors = _palette(len(idx))
        limb_colors = colors.copy()
    crowd = dataset.iscrowd[idx]
    colors[crowd] = GREY
    limb_colors[crowd] = GREY
    return colors, limb_colors


def draw_persons(
    image_bgr: np.ndarray,
    dataset,
    image_index: int,
    *,
    masks: bool = True,
    skeleton: bool = True,
    boxes: bool = True,
    labels: bool = True,
    color_by: str = "max_iou",
    persons: Optional[Sequence[int]] = None,
    native_keypoints: bool = True,
    cmap: str = DEFAULT_CMAP,
) -> np.ndarray:
    """The persons of one image drawn on it, coloured by MaxIoU (occluded persons stand out).

    image_bgr: (H, W, 3) uint8, the pixels of ``dataset.images[image_index]`` (left untouched).
    dataset: a :class:`~ochuman.records.Dataset`. persons: dataset indices to draw (default every
    person of the image, crowd regions in grey). color_by: "max_iou" (``cmap`` over [0, 1] of
    :attr:`Dataset.occlusion`; skeletons of persons sharing a value alternate between the colour
    and a shade of it) or "person" (one qualitative colour each). native_keypoints: draw
    the 19 OCHuman points (native files) rather than the 17 COCO ones. labels: the MaxIoU,
    two decimals, at each box's corner. Returns a new (H, W, 3) uint8 array.
    """
    from ochuman.keypoints import COCO_SKELETON, OCHUMAN_SKELETON
    from ochuman.masks import rle_to_bitmap, xywh_to_xyxy

    if color_by not in _COLOR_BY:
        raise ValueError(f"color_by must be one of {', '.join(_COLOR_BY)}, got {color_by!r}")
    if not 0 <= int(image_index) < len(dataset.images):
        raise OCHumanError(f"{dataset.source}: image index {image_index} out of range "
                           f"(0..{len(dataset.images) - 1})")
    _check_image(image_bgr, dataset, image_index)
    if persons is None:
        idx = np.flatnonzero(dataset.image_index == image_index)
    else:
        idx = np.asarray(persons, dtype=np.int64).reshape(-1)
        stray = idx[dataset.image_index[idx] != image_index]
        if len(stray):
            raise ValueError(f"person {int(stray[0])} is not in image {image_index}")
    occlusion = dataset.occlusion[idx]
    colors, limb_colors = _person_colors(dataset, idx, color_by, cmap)
    use_native = native_keypoints and dataset.keypoints_ochuman is not None
    instances = []
    for j in _painting_order(occlusion):
        i = int(idx[j])
        crowd = bool(dataset.iscrowd[i])
        rle = dataset.rle(i)
        keypoints = None
        if dataset.has_keypoints[i] and not crowd:
            keypoints = dataset.keypoints_ochuman[i] if use_native else dataset.keypoints[i]
        value = occlusion[j]
        if crowd:
            label = "crowd"
        else:
            label = "n/a" if np.isnan(value) else f"{value:.2f}"
        instances.append(_Instance(
            color=colors[j],
            limb_color=limb_colors[j],
            bitmap=None if rle is None else rle_to_bitmap(rle),
            box_xyxy=xywh_to_xyxy(dataset.bbox_xywh[i]),
            keypoints=keypoints,
            codes="ochuman" if use_native else "coco",
            skeleton=OCHUMAN_SKELETON if use_native else COCO_SKELETON,
            label=label,
        ))
    return _paint(image_bgr, instances, masks, skeleton, boxes, labels)


def find_image(dataset, key: Union[int, str]) -> int:
    """Index of the image whose id or file name is ``key`` (ids compared as text, so "905" finds
    COCO image 905); raises :class:`OCHumanError` naming the file when there is none."""
    text = str(key)
    for k, image in enumerate(dataset.images):
        if str(image.image_id) == text or image.file_name == text:
            return k
    examples = ", ".join(repr(im.image_id) for im in dataset.images[:3])
    more = ", ..." if len(dataset.images) > 3 else ""
    raise OCHumanError(f"{dataset.source}: unknown image id {text!r} (its {len(dataset.images)} images "
                       f"have ids {examples}{more}, or give a file name such as "
                       f"{dataset.images[0].file_name!r})" if dataset.images else
                       f"{dataset.source}: unknown image id {text!r}: the file has no images")


# ------------------------------------------------------------------------------------ results
def _result_bitmap(result: dict, height: int, width: int, where: str) -> Optional[np.ndarray]:
    from pycocotools import mask as mask_utils

    seg = result.get("segmentation")
    if seg is None:
        return None
    if isinstance(seg, dict):
        size = [int(v) for v in seg.get("size", ())]
        if size != [height, width]:
            raise OCHumanError(f"{where}: segmentation size {size} differs from the image's "
                               f"[{height}, {width}]")
        counts = seg["counts"]
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects({"size": size, "counts": counts}, height, width)
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
    else:
        from ochuman.masks import polygon_masks

        polygons = [list(map(float, p)) for p in seg if len(p) >= 6]
        if not polygons:
            return None
        rle = {"size": [height, width], "counts": polygon_masks([polygons], np.array([[height, width]]))[0].encode("ascii")}
    return mask_utils.decode(rle)


def _result_box(result: dict, bitmap, keypoints) -> Optional[np.ndarray]:
    """(4,) xyxy from the result's bbox, else its mask, else its keypoints; None if none."""
    bbox = result.get("bbox")
    if bbox:
        x, y, w, h = (float(v) for v in bbox)
        return np.array([x, y, x + w, y + h])
    if bitmap is not None and bitmap.any():
        ys, xs = np.nonzero(bitmap)
        return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)
    if keypoints is not None:
        drawn = _drawn_points(keypoints, "score")
        if drawn.any():
            pts = keypoints[drawn, :2]
            return np.array([*pts.min(axis=0), *pts.max(axis=0)])
    return None


def _decode_results(results: Sequence[dict], height: int, width: int):
    """(bitmaps, boxes xyxy, keypoints (K, 3)) of each result, in the given order."""
    bitmaps, boxes, keypoints = [], [], []
    for k, result in enumerate(results):
        where = f"result {k} (image_id {result.get('image_id')!r})"
        bitmap = _result_bitmap(result, height, width, where)
        kpts = result.get("keypoints")
        if kpts is not None:
            kpts = np.asarray(kpts, dtype=np.float64)
            if kpts.size % 3:
                raise OCHumanError(f"{where}: keypoints: expected K x [x, y, score], got {kpts.size} numbers")
            kpts = kpts.reshape(-1, 3)
        bitmaps.append(bitmap)
        keypoints.append(kpts)
        boxes.append(_result_box(result, bitmap, kpts))
    return bitmaps, boxes, keypoints


def _kept(results: Sequence[dict], score_threshold: float) -> list[int]:
    """Indices of the results with score >= threshold, lowest score first (the best are painted
    on top)."""
    scores = [float(r.get("score", 1.0)) for r in results]
    return sorted((k for k, s in enumerate(scores) if s >= score_threshold), key=lambda k: scores[k])


def draw_results(
    image_bgr: np.ndarray,
    results: Sequence[dict],
    *,
    score_threshold: float = 0.5,
    colors: Optional[np.ndarray] = None,
    skeleton_colors: Optional[np.ndarray] = None,
    masks: bool = True,
    skeleton: bool = True,
    boxes: bool = True,
    labels: bool = True,
) -> np.ndarray:
    """COCO results of one image (dicts with ``score`` and any of ``segmentation``, ``bbox``,
    ``keypoints``) drawn on it, those scoring at least ``score_threshold``, labelled with the score.

    colors: (len(results), 3) uint8 BGR, one per result in the given order (default: tab10);
    skeleton_colors: the same for keypoints and limbs (default: ``colors``). Returns a new
    (H, W, 3) uint8 array.
    """
    from ochuman.keypoints import COCO_SKELETON

    h, w = np.shape(image_bgr)[:2]
    colors = _palette(len(results)) if colors is None else np.asarray(colors, np.uint8).reshape(-1, 3)
    if skeleton_colors is not None:
        skeleton_colors = np.asarray(skeleton_colors, np.uint8).reshape(-1, 3)
    else:
        skeleton_colors = colors
    for name, given in (("colors", colors), ("skeleton_colors", skeleton_colors)):
        if len(given) != len(results):
            raise ValueError(f"{name}: expected {len(results)} rows, got {len(given)}")
    kept = _kept(results, score_threshold)
    bitmaps, box_list, keypoints = _decode_results([results[k] for k in kept], h, w)
    instances = [
        _Instance(color=colors[k], limb_color=skeleton_colors[k], bitmap=bm, box_xyxy=box, keypoints=kp,
                  codes="score", skeleton=COCO_SKELETON if kp is not None and len(kp) == 17 else (),
                  label=f"{float(results[k].get('score', 1.0)):.2f}")
        for k, bm, box, kp in zip(kept, bitmaps, box_list, keypoints)
    ]
    return _paint(image_bgr, instances, masks, skeleton, boxes, labels)


def results_for_image(results: Sequence[dict], dataset, image_index: int) -> list[dict]:
    """The results of one image: those whose ``image_id`` is the image's id, its file name, or,
    for a native file, its id in the official COCO-format file of its split (1, 2, ... as
    ``ochuman eval`` keys results). Returns them in the given order."""
    image = dataset.images[image_index]
    keys = {image.image_id, image.file_name}
    if dataset.format == "ochuman" and image.split and dataset.keypoints_ochuman is not None:
        from ochuman.eval.ground_truth import ground_truth_from_native  # owns the numbering eval keys by

        gt = ground_truth_from_native(dataset, image.split, masks=False)
        official = dict(zip(gt.file_names, gt.image_ids.tolist())).get(image.file_name)
        if official is not None:
            keys.add(official)
    return [r for r in results if _hashable(r.get("image_id")) in keys]


def _hashable(value):
    return value if isinstance(value, (int, str)) else None


def _best_gt_colors(dataset, image_index: int, bitmaps, boxes, cmap: str) -> tuple[np.ndarray, np.ndarray]:
    """(colours, skeleton colours), (R, 3) uint8, of R results: those of the ground-truth person
    each overlaps most (IoU >= 0.5; masks when both have one, else boxes) as
    :func:`draw_persons` paints it, grey when it overlaps nobody so much."""
    from ochuman.masks import rle_to_bitmap, xywh_to_xyxy

    persons = np.flatnonzero(dataset.image_index == image_index)
    person_colors, person_limb_colors = _person_colors(dataset, persons, "max_iou", cmap)
    keep = ~dataset.iscrowd[persons]
    gt, gt_colors, gt_limb_colors = persons[keep], person_colors[keep], person_limb_colors[keep]
    gt_rles = [dataset.rle(i) for i in gt]
    gt_bitmaps = [None if rle is None else rle_to_bitmap(rle).astype(bool) for rle in gt_rles]
    gt_boxes = xywh_to_xyxy(dataset.bbox_xywh[gt])
    colors = np.tile(np.array(GREY, dtype=np.uint8), (len(bitmaps), 1))
    limb_colors = colors.copy()
    for k in range(len(bitmaps)):
        best, best_iou = -1, 0.5
        for j in range(len(gt)):
            if bitmaps[k] is not None and gt_bitmaps[j] is not None:
                a = bitmaps[k].astype(bool)
                union = np.count_nonzero(a | gt_bitmaps[j])
                iou = np.count_nonzero(a & gt_bitmaps[j]) / union if union else 0.0
            elif boxes[k] is not None:
                iou = _box_iou(boxes[k], gt_boxes[j])
            else:
                continue
            if iou >= best_iou:
                best, best_iou = j, iou
        if best >= 0:
            colors[k], limb_colors[k] = gt_colors[best], gt_limb_colors[best]
    return colors, limb_colors


def _box_iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def side_by_side(
    image_bgr: np.ndarray,
    dataset,
    image_index: int,
    results: Sequence[dict],
    score_threshold: float = 0.5,
    *,
    cmap: str = DEFAULT_CMAP,
):
    """Ground truth (left, coloured by MaxIoU) beside results (right), the paper's Figure 6.

    results: COCO result dicts of this image (:func:`results_for_image` picks them from a file).
    A result takes the colour of the ground-truth person it overlaps most (IoU >= 0.5), grey if
    none, and is labelled with its score; those below ``score_threshold`` are not drawn.
    Returns a matplotlib Figure with two Axes.
    """
    image = dataset.images[image_index]
    left = draw_persons(image_bgr, dataset, image_index, cmap=cmap)
    kept = [results[k] for k in _kept(results, score_threshold)]
    bitmaps, boxes, _ = _decode_results(kept, image.height, image.width)
    colors, limb_colors = _best_gt_colors(dataset, image_index, bitmaps, boxes, cmap)
    right = draw_results(image_bgr, kept, score_threshold=-math.inf, colors=colors,
                         skeleton_colors=limb_colors)

    n_gt = int(np.count_nonzero((dataset.image_index == image_index) & ~dataset.iscrowd))
    matched = int(np.count_nonzero((colors != np.array(GREY, dtype=np.uint8)).any(axis=1)))
    panel = 6.0
    fig = _figure(2 * panel, panel * image.height / image.width + 0.9)
    axes = fig.subplots(1, 2)
    axes[0].imshow(left[..., ::-1])
    axes[0].set_title(f"Ground truth: {n_gt} person{'s' * (n_gt != 1)}, labelled with MaxIoU", fontsize=10)
    axes[1].imshow(right[..., ::-1])
    axes[1].set_title(f"Results: {len(kept)} of {len(results)} with score \u2265 {score_threshold:g}, "
                      f"{matched} on a person (IoU \u2265 0.5, grey: none)", fontsize=10)
    for ax in axes:
        ax.set_axis_off()
    fig.suptitle(f"{image.file_name} (image {image.image_id!r})", fontsize=11)
    return fig


# ---------------------------------------------------------------------------------- summaries
def hardest_persons(dataset, n: int) -> np.ndarray:
    """Dataset indices of the ``n`` most occluded persons with a mask (crowd regions and persons
    without MaxIoU excluded), highest :attr:`Dataset.occlusion` first, file order among ties."""
    occlusion = dataset.occlusion
    candidates = np.flatnonzero(dataset.has_mask & ~dataset.iscrowd & ~np.isnan(occlusion))
    order = np.argsort(-occlusion[candidates], kind="stable")
    return candidates[order[:max(int(n), 0)]]


def _crop_box(box_xyxy, height: int, width: int, margin: float = 0.15) -> tuple[int, int, int, int]:
    """Integer [x1, y1, x2, y2) of the box grown by ``margin`` of its size each side, in the image."""
    x1, y1, x2, y2 = (float(v) for v in box_xyxy)
    dx, dy = margin * max(x2 - x1, 1.0), margin * max(y2 - y1, 1.0)
    ix1, iy1 = max(int(math.floor(x1 - dx)), 0), max(int(math.floor(y1 - dy)), 0)
    ix2, iy2 = min(int(math.ceil(x2 + dx)), width), min(int(math.ceil(y2 + dy)), height)
    return ix1, iy1, max(ix2, ix1 + 1), max(iy2, iy1 + 1)


def hardest_grid(dataset, n: int = 8, images_dir: Optional[PathLike] = None, crop: bool = True,
                 *, columns: int = 4, cmap: str = DEFAULT_CMAP):
    """The ``n`` most occluded persons (:func:`hardest_persons`), each drawn (mask, skeleton) on
    a crop around it (or its whole image), titled ``"MaxIoU 0.953"`` and its file name.

    images_dir: where the images are (default: the dataset's). Returns a matplotlib Figure with
    one Axes per person, hardest first; raises :class:`OCHumanError` when no person qualifies.
    """
    from ochuman.masks import xywh_to_xyxy

    chosen = hardest_persons(dataset, n)
    if len(chosen) == 0:
        raise OCHumanError(f"{dataset.source}: no person with a mask and a MaxIoU to show")
    cols = max(1, min(columns, len(chosen)))
    rows = int(math.ceil(len(chosen) / cols))
    fig = _figure(3.0 * cols, 3.6 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    pixels = {}
    for ax, i in zip(axes, chosen):
        k = int(dataset.image_index[i])
        if k not in pixels:
            pixels[k] = dataset.read_image(k, images_dir)
        drawn = draw_persons(pixels[k], dataset, k, persons=[i], boxes=False, labels=False, cmap=cmap)
        image = dataset.images[k]
        if crop:
            x1, y1, x2, y2 = _crop_box(xywh_to_xyxy(dataset.bbox_xywh[i]), image.height, image.width)
            drawn = drawn[y1:y2, x1:x2]
        ax.imshow(drawn[..., ::-1])
        ax.set_title(f"MaxIoU {dataset.occlusion[i]:.3f}\n{image.file_name}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_edgecolor(_bgr_to_rgb_float(max_iou_colors([dataset.occlusion[i]], cmap)[0]))
            spine.set_linewidth(3)
    for ax in axes[len(chosen):]:
        ax.set_axis_off()
    return fig


def histogram_counts(max_iou: np.ndarray, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """Counts of MaxIoU values in right-closed bins over [0, 1]: ``[0, e1], (e1, e2], ...``.

    The edges are ``bins`` equal steps plus 0.5 and 0.75, so the bins above 0.5 (0.75) hold
    exactly the values ``> 0.5`` (``> 0.75``), Table 1's columns. NaN values are not counted.
    Returns (counts (B,) int64, edges (B + 1,) float64).
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.unique(np.round(np.r_[np.linspace(0.0, 1.0, int(bins) + 1), 0.5, 0.75], 12))
    values = np.asarray(max_iou, dtype=np.float64)
    values = values[~np.isnan(values)]
    which = np.clip(np.searchsorted(edges, values, side="left") - 1, 0, len(edges) - 2)
    return np.bincount(which, minlength=len(edges) - 1).astype(np.int64), edges


def max_iou_histogram(dataset, bins: int = 20, *, range_rule: Optional[str] = None, cmap: str = DEFAULT_CMAP):
    """Histogram of the persons' MaxIoU (crowd regions excluded), Moderate [0.5, 0.75) and Hard
    [0.75, 1] shaded, Table 1's numbers in the title and legend.

    The numbers come from :func:`ochuman.stats.dataset_stats` and the bars from
    :func:`histogram_counts` (bins above 0.5 / 0.75 hold exactly the persons counted there), so
    the picture equals ``ochuman stats``. Returns a matplotlib Figure with one Axes.
    """
    from ochuman.stats import dataset_stats
    from ochuman.subsets import DEFAULT_RANGE_RULE

    rule = range_rule or DEFAULT_RANGE_RULE
    stats = dataset_stats(dataset, rule)
    values = dataset.occlusion[~dataset.iscrowd]
    counts, edges = histogram_counts(values, bins)
    centres = (edges[:-1] + edges[1:]) / 2

    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    hard_top = "1]" if rule == "closed-top" else "1)"
    ax.axvspan(0.5, 0.75, color="tab:orange", alpha=0.10, lw=0,
               label=f"moderate [0.5, 0.75): {stats['moderate']}")
    ax.axvspan(0.75, 1.0, color="tab:red", alpha=0.10, lw=0, label=f"hard [0.75, {hard_top}: {stats['hard']}")
    colors = [_bgr_to_rgb_float(c) for c in max_iou_colors(centres, cmap)]
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colors, edgecolor="white",
           linewidth=0.6, label="_bars")
    if stats["persons"] and not math.isnan(stats["mean_max_iou"]):
        ax.axvline(stats["mean_max_iou"], color="0.2", ls="--", lw=1.2,
                   label=f"mean {stats['mean_max_iou']:.3f}")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("MaxIoU" + (" (recomputed from boxes)" if stats["max_iou_source"] == "box" else ""))
    ax.set_ylabel("persons")
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    missing = int(np.isnan(values).sum())
    name = os.path.basename(dataset.source) or dataset.source
    ax.set_title(
        f"{name}" + (f" ({dataset.filter})" if dataset.filter else "")
        + f": {stats['persons']} persons in {stats['images']} images"
        + (f" ({missing} without MaxIoU)" if missing else "") + "\n"
        f"MaxIoU > 0.5: {stats['persons_oc50']} ({stats['pct_oc50']:.1f}%)   "
        f"> 0.75: {stats['persons_oc75']} ({stats['pct_oc75']:.1f}%)   "
        f"mean {stats['mean_max_iou']:.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    return fig


# ------------------------------------------------------------------------------------ writers
def _suffix(path: PathLike) -> str:
    return os.path.splitext(os.fspath(path))[1].lstrip(".").lower()


def save_figure(fig, path: PathLike, *, dpi: int = _PNG_DPI) -> None:
    """Write a Figure atomically; the format comes from the suffix (png when there is none)."""
    from ochuman.io import atomic_write

    suffix = _suffix(path) or "png"
    supported = fig.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise OCHumanError(f"{path}: cannot write .{suffix} figures: use one of "
                           f"{', '.join('.' + s for s in sorted(supported))}")
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format=suffix, dpi=dpi)


def save_image(image_bgr: np.ndarray, path: PathLike) -> None:
    """Write a BGR uint8 image atomically with OpenCV; the format comes from the suffix."""
    from ochuman.io import atomic_write

    suffix = _suffix(path)
    if suffix not in IMAGE_FORMATS:
        raise OCHumanError(f"{path}: cannot write {'.' + suffix if suffix else 'files without a suffix'} "
                           f"as an image: use one of {', '.join('.' + s for s in IMAGE_FORMATS)}")
    ok, data = _cv2().imencode("." + suffix, np.ascontiguousarray(image_bgr))
    if not ok:
        raise OCHumanError(f"{path}: OpenCV could not encode the image as .{suffix}")
    with atomic_write(path, "wb") as handle:
        handle.write(data.tobytes())


def _bin_label(row: dict) -> str:
    """A line of AP vs MaxIoU: the results' name, with its image set and visibility class when
    the rows carry them (as :meth:`EvalReport.curves` labels the curves)."""
    keys = [str(row[k]) for k in ("image_set", "visibility") if k in row]
    return row["results"] + (f" ({', '.join(keys)})" if keys else "")


def plot_curves(ax, report, subset: str, curves: Optional[dict] = None) -> None:
    """Precision/recall of every results file on one subset: the mean over IoU 0.5:0.95 (solid),
    IoU 0.5 (dashed) and 0.75 (dotted), from :meth:`EvalReport.curves` (``curves``: its value,
    when already computed)."""
    for (name, s), (recall, precision) in (report.curves() if curves is None else curves).items():
        if s != subset:
            continue
        mean = precision.clip(min=0).mean(axis=0)
        line, = ax.plot(recall, mean, label=f"{name} (mean .5:.95)")
        ax.plot(recall, precision[0].clip(min=0), ls="--", color=line.get_color(), alpha=0.7, label=f"{name} @.5")
        ax.plot(recall, precision[5].clip(min=0), ls=":", color=line.get_color(), alpha=0.7, label=f"{name} @.75")
    ax.set(title=f"{subset} ({report.iou_type}, {report.mode})", xlabel="recall", ylabel="precision",
           xlim=(0, 1), ylim=(0, 1.02))
    ax.grid(alpha=0.3)


def plot_ap_by_max_iou(ax, bins: Sequence[dict]) -> None:
    """AP per MaxIoU bin (rows of :meth:`EvalReport.ap_by_max_iou`), one line per results file,
    the Moderate and Hard bands shaded; bins without persons (AP -1) are left out."""
    for name in dict.fromkeys(_bin_label(row) for row in bins):
        rows = [r for r in bins if _bin_label(r) == name and r["AP"] >= 0]
        ax.plot([(r["max_iou_lo"] + r["max_iou_hi"]) / 2 for r in rows], [r["AP"] for r in rows], marker="o", label=name)
    ax.axvspan(0.5, 0.75, color="tab:orange", alpha=0.08, label="moderate")
    ax.axvspan(0.75, 1.0, color="tab:red", alpha=0.08, label="hard")
    ax.set(title="AP vs MaxIoU", xlabel="MaxIoU", ylabel="AP", xlim=(0.5, 1.0), ylim=(0, 1.02))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_report(report, path: PathLike) -> None:
    """Precision/recall curves (IoU 0.5, 0.75 and the mean over 0.5:0.95) per subset and results
    file; with AP-vs-MaxIoU data, a second panel of AP per MaxIoU bin. Written atomically."""
    plt = _pyplot()
    curves = report.curves()
    bins = report.ap_by_max_iou()
    subsets = list(dict.fromkeys(subset for _, subset in curves))
    columns = len(subsets) + (1 if bins else 0)
    fig, axes = plt.subplots(1, columns, figsize=(4.2 * columns, 4), squeeze=False)
    try:
        for ax, subset in zip(axes[0], subsets):
            plot_curves(ax, report, subset, curves)
        axes[0][0].legend(fontsize=7, loc="lower left")
        if bins:
            plot_ap_by_max_iou(axes[0][-1], bins)
        fig.tight_layout()
        save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_errors(report, path: PathLike) -> None:
    """The error classes of a report evaluated with ``errors`` (:mod:`ochuman.eval.errors`): per
    results file, their counts (stacked bars) and dAP (bars side by side) by MaxIoU bin when the
    report has bins, else by subset. Written atomically."""
    from ochuman.eval.errors import error_frame_rows

    plt = _pyplot()
    rows = error_frame_rows(report)
    names = list(dict.fromkeys(row["results"] for row in rows))
    with_bins = any(row["max_iou_lo"] is not None for row in rows)
    rows = [row for row in rows if (row["max_iou_lo"] is not None) == with_bins]
    places = list(dict.fromkeys(row["subset"] for row in rows))
    classes = list(dict.fromkeys(row["class"] for row in rows))
    colors = plt.get_cmap("tab10")(np.arange(len(classes)))
    fig, axes = plt.subplots(max(len(names), 1), 2, figsize=(2 * max(5.0, 0.55 * len(places) + 2.5), 3.6 * max(len(names), 1)),
                             squeeze=False)
    try:
        x = np.arange(len(places))
        width = 0.8 / max(len(classes), 1)
        for (count_ax, dap_ax), name in zip(axes, names):
            value = {(row["subset"], row["class"]): row for row in rows if row["results"] == name}
            bottom = np.zeros(len(places))
            for c, cls in enumerate(classes):
                counts = np.array([value[(p, cls)]["count"] for p in places], dtype=float)
                count_ax.bar(x, counts, 0.8, bottom=bottom, color=colors[c], label=cls)
                bottom += counts
                dap_ax.bar(x - 0.4 + width * (c + 0.5), [value[(p, cls)]["dAP"] for p in places], width,
                           color=colors[c], label=cls)
            where = "MaxIoU bin" if with_bins else "subset"
            for ax, what in ((count_ax, "count"), (dap_ax, "dAP")):
                ax.set_xticks(x, places, rotation=45 if with_bins else 0, fontsize=8)
                ax.set(xlabel=where, ylabel=what,
                       title=f"{name}: {what} by {where} ({report.iou_type} @ {report.errors_iou:g})")
                ax.grid(alpha=0.3, axis="y")
            count_ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, path)
    finally:
        plt.close(fig)
