"""How far the toolkit's geometry is from the official Pose2Seg operations, in mask pixels.

The official test-mode geometry, restated here in its own number formats (spec 5.1, 5.5, 5.10):
the letterbox matrix built as a float32 product ``T C RSS C^-1``; keypoints (int32 from its
loader, then float32) moved by ``m2 m1`` in float32; per candidate template a float32 least
squares ``cv2.solve(DECOMP_SVD)`` of the 4-unknown similarity, its score, the strict-improvement
walk with the scale > 0.5 rule; the mask matrix ``m4 m3 m2 m1`` stored in float32; AlignReverse
with ``cv2.warpAffine(WARP_INVERSE_MAP | INTER_LINEAR)`` and ``> 0.5``.

For every person the official loop segments in the shared samples (``--protocol official``
selection), a smooth 64x64 probability map (the person's ground-truth mask warped into the
official aligned frame, Gaussian-blurred) is pasted back three ways and compared, pixel by
pixel, with the official paste:

- ``before``: :func:`pose2seg.model.paste_masks` (``grid_sample``) with the exact-fit float64
  matrices (the clean paste; also the faithful one before issue 19);
- ``cv2 only``: ``cv2.warpAffine`` with those same matrices;
- ``faithful``: what :meth:`pose2seg.model.Pose2Seg.predict` does with ``sampling="faithful"``:
  float32 letterbox, official float32 fit, float32 composition, ``cv2.warpAffine``.

Also: the largest difference of the mask matrices and of the aligned-frame matrices m3 from the
official ones, and the pixels of the 512x512 letterboxed images that differ from the official
float32 letterbox matrix's.

    python bench/official_rounding.py
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch

from ochuman.benchmark import resolve_ground_truth
from ochuman.masks import rle_to_bitmap
from ochuman.records import image_file, read_image_file
from pose2seg.model import (
    FEATURE_STRIDE, ModelConfig, Pose2Seg, keypoints_to_input, letterbox, letterbox_matrix, paste_masks,
    paste_masks_opencv,
)
from pose2seg.predict import persons_of_the_official_loop
from pose2seg.templates import candidates as template_candidates
from pose2seg.templates import load_templates

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SAMPLES = {
    "ochuman-coco-sample": (SHARED / "ochuman-coco-sample" / "ochuman_coco_format_sample.json",
                            SHARED / "ochuman-coco-sample" / "images"),
    "ochuman-sample (val file)": (SHARED / "ochuman-sample" / "annotations" / "ochuman.json",
                                  SHARED / "ochuman-sample" / "images"),
    "coco-sample": (SHARED / "coco-sample" / "person_keypoints_sample.json", SHARED / "coco-sample" / "images"),
    "coco-mini": (SHARED / "coco-mini" / "annotations" / "person_keypoints_train2017.json",
                  SHARED / "coco-mini" / "train2017"),
}
F32 = np.float32


# ------------------------------------------------------------------ the official operations
def official_letterbox(height: int, width: int, size: int = 512) -> np.ndarray:
    """(3, 3) float32: ``T C RSS C^-1`` with angle 0, scale min(size/W, size/H), shift 0."""
    s = min(float(size) / width, float(size) / height)
    cx, cy = width / 2.0, height / 2.0
    t = np.array([[1, 0, (size - width) / 2], [0, 1, (size - height) / 2], [0, 0, 1]]).astype(F32)
    c = np.array([[1, 0, cx], [0, 1, cy], [0, 0, 1]]).astype(F32)
    rss = np.array([[s, 0, 0], [0, s, 0], [0, 0, 1]]).astype(F32)
    return t.dot(c).dot(rss).dot(np.linalg.inv(c)).astype(F32)


def _similarity_fit(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(3, 3) float32: rows ``[x, y, 1, 0] -> qx`` and ``[y, -x, 0, 1] -> qy`` solved by
    float32 SVD least squares, as the official fit."""
    rows = np.zeros((2 * len(src), 4), F32)
    rhs = np.zeros((2 * len(src), 1), F32)
    rows[0::2, 0], rows[0::2, 1], rows[0::2, 2] = src[:, 0], src[:, 1], 1
    rows[1::2, 0], rows[1::2, 1], rows[1::2, 3] = src[:, 1], -src[:, 0], 1
    rhs[0::2, 0], rhs[1::2, 0] = dst[:, 0], dst[:, 1]
    sol = cv2.solve(rows, rhs, flags=cv2.DECOMP_SVD)[1]
    return np.array([[sol[0, 0], sol[1, 0], sol[2, 0]], [-sol[1, 0], sol[0, 0], sol[3, 0]], [0, 0, 1]], F32)


def official_align(kp_feature: np.ndarray, cands: np.ndarray, out: int = 64, feature: int = 128) -> np.ndarray:
    """m3 (3, 3) float32 of one person: keypoints (17, 3) float32 in feature pixels."""
    basic = np.array([[out / feature, 0, 0], [0, out / feature, 0], [0, 0, 1]], F32)
    basic_scale = float(np.hypot(basic[0, 0], basic[0, 1]))
    best, best_score = basic, 0.0
    labelled = kp_feature[:, 2] > 0
    for cand in cands:
        valid = cand[:, 2] > 0
        both = labelled & valid
        if both.sum() <= 2 or (labelled & ~valid).any():
            continue
        src, dst = kp_feature[both, :2].astype(F32), cand[both, :2]
        m = _similarity_fit(src, dst)
        moved = (np.hstack([src, np.ones((len(src), 1), F32)]).dot(m[:2].T)).astype(F32)
        score = float(np.mean(np.exp(-np.sum((moved - dst) ** 2, axis=1) / 2)) * both.sum() / (labelled | valid).sum())
        m = np.diag([out, out, 1]).astype(F32).dot(m)
        if score > best_score and float(np.hypot(m[0, 0], m[0, 1])) > basic_scale:
            best, best_score = m, score
    return best


def official_mask_matrix(height: int, width: int, keypoints: np.ndarray, cands: np.ndarray) -> tuple:
    """(mask matrix m4 m3 m2 m1, m3), both (3, 3) float32, for int keypoints (17, 3)."""
    m1 = official_letterbox(height, width)
    m2 = np.diag([1 / FEATURE_STRIDE, 1 / FEATURE_STRIDE, 1]).astype(F32)
    kp = keypoints.astype(F32).copy()
    kp[:, :2] = np.hstack([kp[:, :2], np.ones((17, 1), F32)]).dot(m2.dot(m1)[:2].T).astype(F32)
    kp[kp[:, 2] == 0] = 0
    m3 = official_align(kp, cands)
    return np.eye(3, dtype=F32).dot(m3).dot(m2).dot(m1).astype(F32), m3


def cv2_paste(prob: np.ndarray, matrix: np.ndarray, height: int, width: int) -> np.ndarray:
    return cv2.warpAffine(prob, matrix[:2].astype(np.float64), (width, height), borderMode=cv2.BORDER_CONSTANT,
                          flags=cv2.WARP_INVERSE_MAP + cv2.INTER_LINEAR) > 0.5


# ------------------------------------------------------------------------- the toolkit's
def toolkit_matrices(model: Pose2Seg, height: int, width: int, keypoints: np.ndarray) -> tuple:
    """(mask matrix float32, m3 float32) as :meth:`Pose2Seg.predict` computes them."""
    faithful = model.config.sampling == "faithful"
    m1 = letterbox_matrix(height, width, model.config.input_size, faithful)
    kp = keypoints_to_input(keypoints, m1, faithful)[0]
    m3 = model.align_matrices(torch.tensor(kp[None], dtype=torch.float32)).float()
    m2 = torch.diag(torch.tensor([1 / FEATURE_STRIDE, 1 / FEATURE_STRIDE, 1.0]))
    if faithful:
        mask = (m3 @ m2) @ torch.as_tensor(m1, dtype=torch.float32)
    else:
        mask = ((m3 @ m2).double() @ torch.as_tensor(m1)).float()
    return mask[0].numpy(), m3[0].numpy()


WAYS = ("before", "cv2 only", "faithful")


def main():
    exact, faithful = Pose2Seg(ModelConfig(sampling="clean")), Pose2Seg(ModelConfig(sampling="faithful"))
    cands = template_candidates(load_templates())
    rows, totals = [], {"persons": 0, "mask_px": 0, **dict.fromkeys(WAYS, 0)}
    worst = {"m3 exact": 0.0, "m3 faithful": 0.0, "mask exact": 0.0, "mask faithful": 0.0}
    letterbox_px = {"float64": 0, "faithful": 0}
    letterbox_total = 0
    for name, (ann, images) in SAMPLES.items():
        if not ann.exists():
            continue
        gt = resolve_ground_truth(gt=ann)
        persons = persons_of_the_official_loop(gt)
        counts = dict.fromkeys(("mask_px", *WAYS), 0)
        seen_images = set()
        index_of = {}
        for i, position in enumerate(gt.annotations.image_id.tolist()):
            index_of.setdefault(position, []).append(i)
        for k in range(len(persons)):
            image_index = int(persons.image_index[k])
            height, width = (int(v) for v in gt.image_sizes[image_index])
            kp = persons.keypoints[k]
            official, official_m3 = official_mask_matrix(height, width, kp, cands)
            ours, ours_m3 = toolkit_matrices(exact, height, width, kp)
            ours_f, ours_f_m3 = toolkit_matrices(faithful, height, width, kp)
            for key, value in (("m3 exact", ours_m3 - official_m3), ("m3 faithful", ours_f_m3 - official_m3),
                               ("mask exact", ours - official), ("mask faithful", ours_f - official)):
                worst[key] = max(worst[key], float(np.abs(value).max()))
            # the person's ground-truth mask (matched by keypoints) in the official aligned frame, smoothed
            candidates = index_of[gt.image_ids[image_index].item()]
            match = next(i for i in candidates
                         if np.array_equal(np.trunc(gt.annotations.keypoints[i].reshape(17, 3)), kp))
            rle = {"size": [height, width], "counts": gt.annotations.counts[match]}
            gt_mask = rle_to_bitmap(rle).astype(F32)
            prob = cv2.GaussianBlur(cv2.warpAffine(gt_mask, official[:2].astype(np.float64), (64, 64),
                                                   flags=cv2.INTER_LINEAR), (0, 0), 1.5)
            reference = cv2_paste(prob, official, height, width)
            prob_t = torch.from_numpy(prob[None])
            pasted = {
                "before": paste_masks(prob_t, torch.from_numpy(ours[None]), height, width)[0].numpy() > 0.5,
                "cv2 only": cv2_paste(prob, ours, height, width),
                "faithful": paste_masks_opencv(prob_t, torch.from_numpy(ours_f[None]), height, width)[0].numpy() > 0.5,
            }
            counts["mask_px"] += int(reference.sum())
            for way in WAYS:
                counts[way] += int((pasted[way] != reference).sum())
            if image_index not in seen_images:
                seen_images.add(image_index)
                image = read_image_file(image_file(images, gt.file_names[image_index], gt.source,
                                                   gt.image_ids[image_index]), "image")
                warped32 = cv2.warpAffine(image, official_letterbox(height, width)[:2].astype(np.float64), (512, 512),
                                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
                for key, flag in (("float64", False), ("faithful", True)):
                    letterbox_px[key] += int((letterbox(image, 512, flag)[0] != warped32).any(-1).sum())
                letterbox_total += 512 * 512
        rows.append({"sample": name, "persons": len(persons), **counts})
        totals["persons"] += len(persons)
        for key in counts:
            totals[key] += counts[key]
    rows.append({"sample": "all", **totals})
    print("| sample | persons | mask pixels (official) | flipped: before (grid_sample, exact fit) | "
          "flipped: cv2 only | flipped: faithful (cv2, float32 fit and letterbox) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(f"| {row['sample']} | {row['persons']} | {row['mask_px']} | {row['before']} | {row['cv2 only']} | "
              f"{row['faithful']} |")
    print("\nlargest difference from the official matrices: " + ", ".join(f"{k} {v:.3g}" for k, v in worst.items()))
    print(f"letterboxed 512x512 pixels differing from the official letterbox: float64 matrix "
          f"{letterbox_px['float64']}, faithful {letterbox_px['faithful']} (of {letterbox_total})")
    out = Path(__file__).resolve().parent / "out" / "official_rounding.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "max_matrix_diff": worst, "letterbox_pixels_differing": letterbox_px,
                               "letterbox_pixels": letterbox_total}, indent=1))


if __name__ == "__main__":
    main()
