"""pose2seg.align: Affine-Align matrices and sampling vs slow per-person / per-pixel references."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pose2seg.align import (
    AffineAlign, affine_align_matrices, augment_matrices, augmentation_matrices,
    box_align_matrices, fallback_matrix, keypoint_boxes, sample_aligned, select_templates,
    transform_keypoints,
)
from pose2seg.templates import candidates, load_templates

OFFICIAL = candidates(load_templates())  # (6, 17, 3)


# ------------------------------------------------------------------------------ references
def ref_select(keypoints: np.ndarray, cands: np.ndarray, out: int = 64, feat: int = 128):
    """Spec 5.5 literally: per person, walk the candidates; cv2.solve-style 2n x 4 system."""
    matrices, indices, scores = [], [], []
    for p in keypoints:
        best = np.diag([out / feat, out / feat, 1.0])
        best_score, best_index = 0.0, -1
        labelled = p[:, 2] > 0
        if labelled.sum() >= 3:
            for c, t in enumerate(cands):
                valid = t[:, 2] > 0
                both, either = labelled & valid, labelled | valid
                if both.sum() <= 2:
                    continue
                if any(labelled[j] and not valid[j] for j in range(17)):
                    continue
                rows, rhs = [], []
                for j in np.flatnonzero(both):
                    x, y = p[j, :2]
                    rows += [[x, y, 1.0, 0.0], [y, -x, 0.0, 1.0]]
                    rhs += [t[j, 0], t[j, 1]]
                a, b, tx, ty = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
                fit = np.array([[a, b, tx], [-b, a, ty], [0.0, 0.0, 1.0]])
                gauss = []
                for j in np.flatnonzero(both):
                    mapped = fit @ np.array([p[j, 0], p[j, 1], 1.0])
                    gauss.append(math.exp(-((mapped[0] - t[j, 0]) ** 2 + (mapped[1] - t[j, 1]) ** 2) / 2))
                score = float(np.mean(gauss)) * both.sum() / either.sum()
                matrix = np.diag([out, out, 1.0]) @ fit
                scale = math.sqrt(matrix[0, 0] ** 2 + matrix[0, 1] ** 2)
                if score > best_score and scale > out / feat:
                    best, best_score, best_index = matrix, score, c
        matrices.append(best)
        indices.append(best_index)
        scores.append(best_score)
    return np.array(matrices), np.array(indices), np.array(scores)


def ref_sample(features: np.ndarray, batch_index, matrices: np.ndarray, out: int, mode: str):
    """Bilinear, zeros outside, one output pixel at a time."""
    _, ch, height, width = features.shape
    result = np.zeros((len(batch_index), ch, out, out))
    for n, (b, m) in enumerate(zip(batch_index, matrices)):
        inv = np.linalg.inv(m)
        for v in range(out):
            for u in range(out):
                if mode == "clean":
                    x, y, _ = inv @ np.array([u, v, 1.0])
                else:  # spec 5.6: p = ((W-1)/W) m^-1 ((W/(W-1)) (u, v))
                    x, y, _ = inv @ np.array([u * width / (width - 1), v * height / (height - 1), 1.0])
                    x, y = x * (width - 1) / width, y * (height - 1) / height
                x0, y0 = math.floor(x), math.floor(y)
                fx, fy = x - x0, y - y0
                for xi, yi, wt in ((x0, y0, (1 - fx) * (1 - fy)), (x0 + 1, y0, fx * (1 - fy)),
                                   (x0, y0 + 1, (1 - fx) * fy), (x0 + 1, y0 + 1, fx * fy)):
                    if 0 <= xi < width and 0 <= yi < height:
                        result[n, :, v, u] += wt * features[b, :, yi, xi]
    return result


def official_faithful(features: torch.Tensor, batch_index, matrices: torch.Tensor, out: int):
    """The official affine_align_gpu on torch >= 1.3: feature-size grid, align_corners=True, crop."""
    n = len(batch_index)
    _, ch, h, w = features.shape
    a = torch.tensor([[2.0 / w, 0, -1], [0, 2.0 / h, -1], [0, 0, 1]], dtype=torch.float64)
    a_inv = torch.tensor([[w / 2.0, 0, w / 2.0], [0, h / 2.0, h / 2.0], [0, 0, 1]], dtype=torch.float64)
    theta = torch.linalg.inv(a @ matrices.to(torch.float64) @ a_inv)[:, :2]
    grid = F.affine_grid(theta, [n, ch, h, w], align_corners=True)[:, :out, :out]
    return F.grid_sample(features[batch_index], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=True)


# ---------------------------------------------------------------------------- random poses
def _random_templates(rng, count):
    t = np.zeros((count, 17, 3))
    t[..., :2] = rng.uniform(0.05, 0.95, (count, 17, 2))
    t[..., 2] = rng.uniform(0.5, 2, (count, 17)) * (rng.uniform(0, 1, (count, 17)) < 0.8)
    t[t[..., 2] == 0] = 0
    return t


def _random_persons(rng, cands, n):
    """Persons made from candidates (random similarity + noise), plus edge cases."""
    persons = []
    for i in range(n):
        t = cands[rng.integers(len(cands))]
        size = rng.choice([rng.uniform(20, 120), rng.uniform(130, 300)])  # > 128: scale < 0.5
        angle = rng.uniform(-0.6, 0.6)
        rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
        if rng.uniform() < 0.3:
            rot = rot @ np.diag([-1.0, 1.0])  # a mirrored person
        p = np.zeros((17, 3))
        p[:, :2] = (t[:, :2] - 0.5) @ rot.T * size + rng.uniform(0, 128, 2) + rng.normal(0, 2, (17, 2))
        keep = (t[:, 2] > 0) & (rng.uniform(0, 1, 17) < 0.8)
        if rng.uniform() < 0.25:
            keep = rng.uniform(0, 1, 17) < 0.6  # random joints: often not covered by the template
        p[:, 2] = np.where(keep, rng.choice([1.0, 2.0], 17), 0.0)
        p[~keep, :2] = rng.choice([0.0, 50.0])  # junk under missing joints must not matter
        persons.append(p)
    persons = np.array(persons)
    persons[0, :, 2] = 0  # nobody
    persons[1, 3:, 2] = 0  # two labelled joints only
    persons[1, :3, 2] = [2, 2, 0]
    persons[2, :, 2] = 0
    persons[2, 5:8] = (40.0, 50.0, 2.0)  # three labelled joints on one point: degenerate fit
    return persons


@pytest.mark.parametrize("seed", range(4))
def test_select_matches_reference(seed):
    rng = np.random.default_rng(seed)
    cands = np.concatenate([OFFICIAL, _random_templates(rng, 4)])
    persons = _random_persons(rng, cands, 60)
    ref_m, ref_i, ref_s = ref_select(persons, cands)
    choice = select_templates(torch.tensor(persons), torch.tensor(cands))
    assert choice.matrices.dtype == torch.float64
    np.testing.assert_array_equal(choice.index.numpy(), ref_i)
    np.testing.assert_allclose(choice.matrices.numpy(), ref_m, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(choice.score.numpy(), ref_s, rtol=1e-12, atol=1e-12)
    # the workload exercises every rule
    assert (ref_i == -1).sum() >= 3 and len(set(ref_i[ref_i >= 0])) >= 3
    np.testing.assert_allclose(
        affine_align_matrices(torch.tensor(persons), cands).numpy(), ref_m, rtol=1e-9, atol=1e-9)


def test_select_rules_one_by_one():
    t = OFFICIAL[0]
    p = t.copy()
    p[:, :2] = t[:, :2] * 100 + 14  # the template scaled by 100: matrix scale 0.64 > 0.5
    kp = torch.tensor(p[None])
    choice = select_templates(kp, OFFICIAL)
    assert choice.index.tolist() == [0] and choice.score.item() == pytest.approx(1.0)
    np.testing.assert_allclose(choice.matrices[0].numpy(),
                               [[0.64, 0, -8.96], [0, 0.64, -8.96], [0, 0, 1]], atol=1e-12)
    # too big (scale 64/200 < 0.5): the fallback, whole map letterboxed
    big = p.copy()
    big[:, :2] = t[:, :2] * 200
    assert select_templates(torch.tensor(big[None]), OFFICIAL).index.tolist() == [-1]
    np.testing.assert_array_equal(affine_align_matrices(torch.tensor(big[None]), OFFICIAL)[0].numpy(),
                                  fallback_matrix().numpy())
    # labelled nose: T1 (nose invalid) can never be chosen, even for a back-view pose
    back = OFFICIAL[1].copy()
    back[:, :2] = back[:, :2] * 100
    back[0] = (50.0, 10.0, 2.0)
    assert select_templates(torch.tensor(back[None]), OFFICIAL).index.item() not in (1, 4)
    # integer keypoints are accepted; matrices come back in the default dtype
    assert affine_align_matrices(torch.zeros((2, 17, 3), dtype=torch.int32), OFFICIAL).dtype == torch.float32
    empty = affine_align_matrices(torch.zeros((0, 17, 3)), OFFICIAL)
    assert empty.shape == (0, 3, 3)
    with pytest.raises(ValueError, match=r"expected shape \(N, 17, 3\)"):
        affine_align_matrices(torch.zeros((2, 19, 3)), OFFICIAL)


def test_transform_keypoints_matches_loop():
    rng = np.random.default_rng(3)
    kp = rng.uniform(0, 128, (5, 17, 3))
    kp[..., 2] = rng.choice([0.0, 1.0, 2.0], (5, 17))
    m = np.tile(np.eye(3), (5, 1, 1))
    m[:, :2] = rng.normal(0, 1, (5, 2, 3))
    ours = transform_keypoints(torch.tensor(kp), torch.tensor(m)).numpy()
    for n in range(5):
        for j in range(17):
            expected = [0.0, 0.0, 0.0] if kp[n, j, 2] == 0 else [*(m[n] @ [kp[n, j, 0], kp[n, j, 1], 1.0])[:2], kp[n, j, 2]]
            np.testing.assert_allclose(ours[n, j], expected, atol=1e-12)


# -------------------------------------------------------------------------------- sampling
def _random_matrices(rng, n, scale=(0.3, 1.5)):
    m = np.tile(np.eye(3), (n, 1, 1))
    for i in range(n):
        s, angle = rng.uniform(*scale), rng.uniform(-math.pi, math.pi)
        m[i, :2, :2] = s * np.array([[math.cos(angle), math.sin(angle)], [-math.sin(angle), math.cos(angle)]])
        m[i, :2, 2] = rng.uniform(-6, 6, 2)
    m[-1, :2, :2] = [[0.7, 0.2], [-0.1, 1.3]]  # a general affine too
    return m


@pytest.mark.parametrize("mode", ["clean", "faithful"])
def test_sample_matches_reference(mode):
    rng = np.random.default_rng(11)
    features = rng.normal(0, 1, (2, 3, 13, 16))
    batch_index = np.array([1, 0, 1, 1])
    m = _random_matrices(rng, 4)
    ours = sample_aligned(torch.tensor(features), torch.tensor(batch_index), torch.tensor(m),
                          out_size=9, mode=mode)
    assert ours.shape == (4, 3, 9, 9) and ours.dtype == torch.float64
    ref = ref_sample(features, batch_index, m, 9, mode)
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-10, atol=1e-10)
    module = AffineAlign(out_size=9, mode=mode)
    np.testing.assert_array_equal(module(torch.tensor(features), torch.tensor(batch_index),
                                         torch.tensor(m)).numpy(), ours.numpy())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("mode", ["clean", "faithful"])
def test_sample_takes_half_precision(dtype, mode):
    """bf16/fp16 features and matrices (autocast) sample like float32: the inverse is float32."""
    rng = np.random.default_rng(3)
    features = torch.tensor(rng.normal(0, 1, (2, 3, 13, 16)), dtype=torch.float32)
    m = torch.tensor(_random_matrices(rng, 4), dtype=torch.float32)
    index = torch.tensor([1, 0, 1, 1])
    half = sample_aligned(features.to(dtype), index, m.to(dtype), 9, mode)
    assert half.dtype == dtype
    full = sample_aligned(features.to(dtype).float(), index, m.to(dtype).float(), 9, mode)
    diff = (half.float() - full).abs()  # half-precision grid coordinates move samples a little
    assert diff.mean() < 0.02 and diff.max() < 0.3


def test_faithful_is_the_official_cropped_grid():
    rng = np.random.default_rng(5)
    features = torch.tensor(rng.normal(0, 1, (2, 2, 128, 128)))
    kp = np.zeros((3, 17, 3))
    for i in range(3):
        kp[i] = OFFICIAL[i]
        kp[i, :, :2] = OFFICIAL[i, :, :2] * rng.uniform(60, 110) + rng.uniform(0, 20, 2)
    m = affine_align_matrices(torch.tensor(kp), OFFICIAL)
    m = augment_matrices(m, torch.Generator().manual_seed(0))
    batch_index = torch.tensor([0, 1, 1])
    ours = sample_aligned(features, batch_index, m, 64, mode="faithful")
    np.testing.assert_allclose(ours.numpy(), official_faithful(features, batch_index, m, 64).numpy(),
                               rtol=1e-9, atol=1e-9)
    clean = sample_aligned(features, batch_index, m, 64, mode="clean")
    assert not torch.allclose(clean, ours)  # the ~0.8 % shift is real


def test_clean_fallback_samples_every_other_pixel():
    features = torch.arange(2 * 128 * 128, dtype=torch.float64).reshape(1, 2, 128, 128)
    m = fallback_matrix()[None]
    out = sample_aligned(features, torch.tensor([0]), m, 64)
    np.testing.assert_array_equal(out[0].numpy(), features[0, :, ::2, ::2].numpy())
    assert sample_aligned(features, torch.zeros(0, dtype=torch.int64), m[:0]).shape == (0, 2, 64, 64)
    with pytest.raises(ValueError, match="mode"):
        sample_aligned(features, torch.tensor([0]), m, mode="exact")


@pytest.mark.differential  # against finite differences
@pytest.mark.parametrize("mode", ["clean", "faithful"])
def test_sample_gradcheck(mode):
    rng = np.random.default_rng(2)
    features = torch.tensor(rng.normal(0, 1, (2, 2, 5, 6)), requires_grad=True)
    m = _random_matrices(rng, 3, scale=(0.6, 1.2))
    m[:, :2, 2] += 1.0
    matrices = torch.tensor(m, requires_grad=True)
    batch_index = torch.tensor([1, 0, 1])
    assert torch.autograd.gradcheck(
        lambda f, mm: sample_aligned(f, batch_index, mm, out_size=3, mode=mode),
        (features, matrices), eps=1e-6, atol=1e-5)


# ------------------------------------------------------------------------ round trip (IoU)
def _capsule(mask, a, b, radius):
    ys, xs = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    a, b = np.asarray(a, float), np.asarray(b, float)
    d = b - a
    t = np.clip(((xs - a[0]) * d[0] + (ys - a[1]) * d[1]) / max(d @ d, 1e-9), 0, 1)
    mask |= (xs - a[0] - t * d[0]) ** 2 + (ys - a[1] - t * d[1]) ** 2 <= radius ** 2


def _synthetic_person():
    """A standing person (COCO keypoints, frontal: left joints on the image right) in 128x128.

    About 75 px from nose to ankles: Affine-Align takes a template only when the matrix scale
    exceeds 0.5, i.e. for persons smaller than about 0.7 x 128 px.
    """
    j = {"nose": (64, 20), "left_eye": (67, 17), "right_eye": (61, 17), "left_ear": (70, 19),
         "right_ear": (58, 19), "left_shoulder": (76, 34), "right_shoulder": (52, 34),
         "left_elbow": (82, 52), "right_elbow": (46, 52), "left_wrist": (84, 68),
         "right_wrist": (44, 68), "left_hip": (71, 70), "right_hip": (57, 70),
         "left_knee": (72, 92), "right_knee": (56, 92), "left_ankle": (73, 112),
         "right_ankle": (55, 112)}
    j = {name: (64 + 0.8 * (x - 64), 64 + 0.8 * (y - 64)) for name, (x, y) in j.items()}
    from ochuman.keypoints import COCO_KEYPOINT_NAMES

    kp = np.array([[*j[name], 2.0] for name in COCO_KEYPOINT_NAMES])
    mask = np.zeros((128, 128), bool)
    _capsule(mask, j["nose"], j["nose"], 8)  # head
    _capsule(mask, (64, 42), (64, 66), 11)  # torso
    for side in ("left", "right"):
        _capsule(mask, j[f"{side}_shoulder"], j[f"{side}_elbow"], 4.5)
        _capsule(mask, j[f"{side}_elbow"], j[f"{side}_wrist"], 4)
        _capsule(mask, j[f"{side}_hip"], j[f"{side}_knee"], 5.5)
        _capsule(mask, j[f"{side}_knee"], j[f"{side}_ankle"], 4.5)
    return kp, mask


def _warp_back(aligned: torch.Tensor, matrices: torch.Tensor, size: int) -> torch.Tensor:
    """Feature pixel (x, y) samples the aligned map at m (x, y): the inverse warp."""
    out = aligned.shape[-1]
    to_output = torch.tensor([[size / 2, 0, (size - 1) / 2], [0, size / 2, (size - 1) / 2], [0, 0, 1]],
                             dtype=torch.float64)
    to_input = torch.tensor([[2 / out, 0, 1 / out - 1], [0, 2 / out, 1 / out - 1], [0, 0, 1]],
                            dtype=torch.float64)
    theta = (to_input @ matrices.to(torch.float64) @ to_output)[:, :2]
    grid = F.affine_grid(theta, [len(aligned), 1, size, size], align_corners=False)
    return F.grid_sample(aligned.to(torch.float64), grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)


@pytest.mark.parametrize("angle", [0.0, 25.0, -40.0])
def test_align_then_reverse_keeps_the_mask(angle):
    kp, mask = _synthetic_person()
    if angle:  # rotate the whole scene about the centre (keypoints and mask)
        theta = math.radians(angle)
        rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
        kp[:, :2] = (kp[:, :2] - 63.5) @ rot.T + 63.5
        ys, xs = np.mgrid[0:128, 0:128]
        src = np.stack([xs - 63.5, ys - 63.5], -1) @ rot + 63.5  # inverse rotation
        xi, yi = np.rint(src[..., 0]).astype(int), np.rint(src[..., 1]).astype(int)
        inside = (xi >= 0) & (xi < 128) & (yi >= 0) & (yi < 128)
        rotated = np.zeros_like(mask)
        rotated[inside] = mask[yi[inside], xi[inside]]
        mask = rotated
    choice = select_templates(torch.tensor(kp[None]), OFFICIAL)
    assert choice.index.item() == 0  # the frontal full-body template
    scale = math.hypot(choice.matrices[0, 0, 0].item(), choice.matrices[0, 0, 1].item())
    assert 0.5 < scale < 0.75
    features = torch.tensor(mask[None, None], dtype=torch.float64)
    aligned = sample_aligned(features, torch.tensor([0]), choice.matrices, 64)
    back = _warp_back(aligned, choice.matrices, 128)[0, 0].numpy() > 0.5
    iou = (back & mask).sum() / (back | mask).sum()
    assert iou >= 0.95, iou
    # the aligned person is upright and centred in the 64x64 frame
    aligned_kp = transform_keypoints(torch.tensor(kp[None]), choice.matrices)[0].numpy()
    assert aligned_kp[0, 1] < aligned_kp[15, 1] and abs(aligned_kp[:, 0].mean() - 32) < 4


# ------------------------------------------------------------------------ boxes, augmentation
def test_keypoint_boxes_match_loop():
    rng = np.random.default_rng(4)
    kp = rng.uniform(-10, 140, (6, 17, 3))
    kp[..., 2] = rng.choice([0.0, 1.0, 2.0], (6, 17))
    kp[0, :, 2] = 0
    for alpha in (0.0, 0.3, 1.0):
        ours = keypoint_boxes(torch.tensor(kp), alpha).numpy()
        for n in range(6):
            pts = [kp[n, j, :2] for j in range(17) if kp[n, j, 2] > 0]
            if not pts:
                np.testing.assert_array_equal(ours[n], 0)
                continue
            x1, y1 = min(p[0] for p in pts), min(p[1] for p in pts)
            x2, y2 = max(p[0] for p in pts), max(p[1] for p in pts)
            w, h = x2 - x1, y2 - y1
            expected = [x1 - alpha * w / 2, y1 - alpha * h / 2, x2 + alpha * w / 2, y2 + alpha * h / 2]
            np.testing.assert_allclose(ours[n], expected, atol=1e-12)


def test_box_align_maps_corners():
    boxes = torch.tensor([[10.0, 20.0, 74.0, 52.0], [5.0, 5.0, 5.5, 30.0]], dtype=torch.float64)
    m = box_align_matrices(boxes, 64).numpy()
    np.testing.assert_allclose(m[0] @ [10, 20, 1], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(m[0] @ [74, 52, 1], [64, 64, 1], atol=1e-12)
    # a 0.5-wide side grows to 1 pixel around its centre
    np.testing.assert_allclose(m[1] @ [4.75, 5, 1], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(m[1] @ [5.75, 30, 1], [64, 64, 1], atol=1e-12)
    assert m[0, 0, 1] == m[0, 1, 0] == 0


def test_augmentation_matches_official_formula():
    base = affine_align_matrices(torch.tensor(_synthetic_person()[0][None]).repeat(50, 1, 1), OFFICIAL)
    out = augment_matrices(base, torch.Generator().manual_seed(3))
    again = augment_matrices(base, torch.Generator().manual_seed(3))
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    r = torch.rand((50, 4), generator=torch.Generator().manual_seed(3), dtype=torch.float64).numpy()
    for i in range(50):  # official get_affine_matrix: T . C . RSS . C^-1
        angle, s = math.radians(-30 + 60 * r[i, 0]), 0.8 + 0.4 * r[i, 1]
        tx, ty = (-0.1 + 0.2 * r[i, 2]) * 64, (-0.1 + 0.2 * r[i, 3]) * 64
        t = np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])
        c = np.array([[1, 0, 32], [0, 1, 32], [0, 0, 1.0]])
        rss = np.array([[math.cos(angle) * s, -math.sin(angle) * s, 0],
                        [math.sin(angle) * s, math.cos(angle) * s, 0], [0, 0, 1]])
        expected = t @ c @ rss @ np.linalg.inv(c) @ base[i].numpy()
        np.testing.assert_allclose(out[i].numpy(), expected, atol=1e-9)
    aug = augmentation_matrices(2000, torch.Generator().manual_seed(0)).numpy()
    scale = np.hypot(aug[:, 0, 0], aug[:, 1, 0])
    assert 0.8 <= scale.min() < 0.82 and 1.18 < scale.max() <= 1.2
    angles = np.degrees(np.arctan2(aug[:, 1, 0], aug[:, 0, 0]))
    assert -30 <= angles.min() < -29 and 29 < angles.max() <= 30
    centre = aug[:, :2, :2] @ [32, 32] + aug[:, :2, 2] - 32
    assert np.abs(centre).max() <= 6.4 and np.abs(centre).max() > 6.2


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    persons = torch.tensor(_random_persons(rng, OFFICIAL, 20))
    cpu = select_templates(persons, OFFICIAL)
    gpu = select_templates(persons.cuda(), OFFICIAL)
    torch.testing.assert_close(gpu.matrices.cpu(), cpu.matrices)
    assert gpu.index.cpu().tolist() == cpu.index.tolist()
    features = torch.randn(2, 3, 128, 128, dtype=torch.float64)
    index = torch.tensor(rng.integers(0, 2, 20))
    for mode in ("clean", "faithful"):
        torch.testing.assert_close(
            sample_aligned(features.cuda(), index.cuda(), cpu.matrices.cuda(), mode=mode).cpu(),
            sample_aligned(features, index, cpu.matrices, mode=mode))


def _feature_keypoints_of_real_persons(path):
    """Every person of a COCO file in the 128x128 feature frame of its letterboxed image."""
    import ochuman
    from pose2seg.model import keypoints_to_input, letterbox_matrix

    data = ochuman.load(path)
    out = []
    for i in range(len(data)):
        image = data.images[data.image_index[i]]
        moved = keypoints_to_input(np.trunc(data.keypoints[i]), letterbox_matrix(image.height, image.width, 512, True),
                                   faithful=True)
        out.append(moved[0] / 4)
    return torch.tensor(np.array(out), dtype=torch.float32)


@pytest.mark.parametrize("sample", ["coco_sample", "ochuman_coco_sample"])
def test_official_fit_is_the_float32_svd_solve_of_the_chosen_template(sample, request):
    """fit="official" keeps the exact fit's choice and computes the chosen matrix as the official
    code: the interleaved float32 system solved by cv2.solve(DECOMP_SVD), times diag(64, 64, 1) in
    float32. Real persons: that differs from the float64 closed form by up to a few 1e-3."""
    import cv2

    kp = _feature_keypoints_of_real_persons(request.getfixturevalue(sample))
    exact = select_templates(kp, OFFICIAL)
    official = select_templates(kp, OFFICIAL, fit="official")
    torch.testing.assert_close(official.index, exact.index, rtol=0, atol=0)
    assert (exact.index >= 0).sum() >= 2
    for i, c in enumerate(exact.index.tolist()):
        if c < 0:
            torch.testing.assert_close(official.matrices[i], exact.matrices[i], rtol=0, atol=0)
            continue
        rows, rhs = [], []
        for j in range(17):
            if kp[i, j, 2] > 0 and OFFICIAL[c, j, 2] > 0:
                x, y = float(kp[i, j, 0]), float(kp[i, j, 1])
                rows += [[x, y, 1, 0], [y, -x, 0, 1]]
                rhs += [[OFFICIAL[c, j, 0]], [OFFICIAL[c, j, 1]]]
        sol = cv2.solve(np.array(rows, np.float32), np.array(rhs, np.float32), flags=cv2.DECOMP_SVD)[1][:, 0]
        expected = np.float32(64) * np.array([[sol[0], sol[1], sol[2]], [-sol[1], sol[0], sol[3]]], np.float32)
        np.testing.assert_array_equal(official.matrices[i, :2].numpy(), expected)
    difference = (official.matrices - exact.matrices).abs().max().item()
    assert 0 < difference < 1e-2


def test_unknown_fit_is_refused():
    with pytest.raises(ValueError, match="fit: expected one of exact, official"):
        select_templates(torch.zeros((1, 17, 3)), OFFICIAL, fit="float32")
