"""Affine-Align: a per-person affine matrix from keypoints to a pose template, and the warp.

Coordinate frames (Pose2Seg, spec 5.1): pixel coordinates are array indices (pixel ``(x, y)``
is ``features[..., y, x]``, its centre at the integer point, no half-pixel offset); a matrix is
3x3, applied to the column ``[x, y, 1]``. Here a matrix ``m`` (N, 3, 3) maps *feature-map
pixels* (the 128x128 stride-4 map of a 512x512 input) to *aligned pixels* (the 64x64 RoI).

Choosing the matrix (official ``modeling/core.py``, "hard" mode), per person P (17, 3) and
candidate template T (17, 3) in the unit square (:func:`pose2seg.templates.candidates`),
``S = {j: P_v > 0}``, ``D = {j: T_v > 0}``:

1. reject (score 0) if ``|S & D| <= 2`` or if ``S`` is not a subset of ``D``;
2. least-squares similarity ``A = [[a, b], [-b, a]]``, ``t``: minimise
   ``sum_{S & D} |A p + t - q|^2`` (the minimum-norm solution when all those p coincide, as
   the official ``cv2.solve(DECOMP_SVD)``);
3. ``score = mean_{S & D} exp(-|A p + t - q|^2 / 2) * |S & D| / |S | D|`` (unit-square units);
4. candidate matrix ``diag(out, out, 1) @ [A | t]``.

Start from the fallback (the whole ``feature x feature`` map letterboxed into ``out x out``:
uniform scale ``out / feature``, no offset) with score 0, walk the candidates in order and
take one when its score is strictly greater than the best so far **and** its scale
``sqrt(M00^2 + M01^2)`` exceeds the fallback's (``out / feature`` = 0.5). Persons with fewer
than 3 labelled joints always get the fallback. Vectorised here: the first maximum over the
eligible candidates is exactly what the walk picks.

``fit="official"`` keeps that choice but computes the chosen matrix in the official number
format: the 2|S & D| x 4 float32 system ``[x, y, 1, 0] -> qx``, ``[y, -x, 0, 1] -> qy`` solved by
``cv2.solve(DECOMP_SVD)`` in float32, scaled by ``diag(out, out, 1)`` in float32 (up to ~4e-3
aligned pixels from the exact fit on real persons; ``bench/official_rounding.py``).

Sampling (official ``modeling/affine_align.py``): bilinear, zero padding. ``mode="clean"``
samples output pixel ``(u, v)`` at ``m^-1 (u, v)``; ``mode="faithful"`` reproduces the official
grid (torch 1.0 ``align_corners=True`` on a feature-size grid cropped to ``out``):
``p = D^-1 m^-1 D (u, v)`` with ``D = diag(W / (W - 1), H / (H - 1))``, i.e.
``(127/128) m^-1 ((128/127) (u, v))`` for a 128x128 map, about 0.8 % off the clean point.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ochuman.keypoints import NUM_COCO_KEYPOINTS

ALIGN_SIZE = 64
FEATURE_SIZE = 128
MODES = ("clean", "faithful")
FITS = ("exact", "official")

# Aligned-frame augmentation of training (official ``get_aug_matrix`` on 64 -> 64).
AUG_MAX_ROTATION_DEG = 30.0
AUG_SCALE_RANGE = (0.8, 1.2)
AUG_MAX_SHIFT = 0.1


class AlignChoice(NamedTuple):
    """What :func:`select_templates` decided for each of N persons."""

    matrices: Tensor  # (N, 3, 3) feature pixels -> aligned pixels
    index: Tensor  # (N,) int64 candidate index, -1 for the fallback
    score: Tensor  # (N,) float64 score of the chosen candidate, 0 for the fallback


def _float_dtype(tensor: Tensor) -> torch.dtype:
    return tensor.dtype if tensor.is_floating_point() else torch.get_default_dtype()


def _check_keypoints(name: str, keypoints: Tensor) -> None:
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"{name}: expected shape (N, 17, 3), got {tuple(keypoints.shape)}")


def _check_matrices(matrices: Tensor, n: Optional[int] = None) -> None:
    if matrices.ndim != 3 or matrices.shape[1:] != (3, 3) or (n is not None and len(matrices) != n):
        expected = f"({'N' if n is None else n}, 3, 3)"
        raise ValueError(f"matrices: expected shape {expected}, got {tuple(matrices.shape)}")


def fallback_matrix(out_size: int = ALIGN_SIZE, feature_size: int = FEATURE_SIZE) -> Tensor:
    """(3, 3) float64: the whole feature map letterboxed into the aligned frame."""
    s = out_size / feature_size
    return torch.tensor([[s, 0.0, 0.0], [0.0, s, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)


def select_templates(
    keypoints: Tensor,
    candidates: Union[Tensor, np.ndarray],
    out_size: int = ALIGN_SIZE,
    feature_size: int = FEATURE_SIZE,
    fit: str = "exact",
) -> AlignChoice:
    """Affine-Align matrices with the chosen candidate and its score (see the module docstring).

    keypoints: (N, 17, 3) in feature-map pixels, COCO order, v > 0 = labelled. candidates:
    (C, 17, 3) unit-square templates, v > 0 = valid. Computed in float64 on keypoints' device;
    matrices come back in keypoints' floating dtype (the default dtype for integer input).
    fit: "exact" (float64 closed form) or "official" (the chosen matrices refitted as the
    official float32 ``cv2.solve``, :func:`official_fit`).
    """
    if fit not in FITS:
        raise ValueError(f"fit: expected one of {', '.join(FITS)}, got {fit!r}")
    _check_keypoints("keypoints", keypoints)
    device = keypoints.device
    kp = keypoints.detach().to(torch.float64)
    cand = torch.as_tensor(candidates, dtype=torch.float64, device=device)
    _check_keypoints("candidates", cand)
    n, c = len(kp), len(cand)

    p = kp[:, None, :, :2]  # (N, 1, 17, 2)
    q = cand[None, :, :, :2]  # (1, C, 17, 2)
    s = kp[:, None, :, 2] > 0  # (N, 1, 17)
    d = cand[None, :, :, 2] > 0  # (1, C, 17)
    both = s & d  # (N, C, 17)
    n_both = both.sum(-1)
    n_any = (s | d).sum(-1)
    covered = ~(s & ~d).any(-1)  # hard mode: every labelled joint valid in the template
    valid = (n_both > 2) & covered & (s.sum(-1) >= 3)

    w = both.to(torch.float64)
    count = n_both.clamp(min=1).to(torch.float64)[..., None]  # (N, C, 1)
    p_mean = (w[..., None] * p).sum(-2) / count  # (N, C, 2)
    q_mean = (w[..., None] * q).sum(-2) / count
    pc = p - p_mean[..., None, :]  # (N, C, 17, 2)
    qc = q - q_mean[..., None, :]
    spread = (w * (pc ** 2).sum(-1)).sum(-1)  # (N, C)
    dot = (w * (pc * qc).sum(-1)).sum(-1)
    cross = (w * (pc[..., 1] * qc[..., 0] - pc[..., 0] * qc[..., 1])).sum(-1)
    # Degenerate fit (all matched joints on one point): the minimum-norm least-squares
    # solution, as cv2.solve(DECOMP_SVD) returns: (a, b) = (q.p, qx py - qy px) / (1 + |p|^2).
    px, py = p_mean[..., 0], p_mean[..., 1]
    qx, qy = q_mean[..., 0], q_mean[..., 1]
    degenerate = spread <= 1e-12 * (1.0 + px * px + py * py)
    safe = torch.where(degenerate, torch.ones_like(spread), spread)
    norm = 1.0 + px * px + py * py
    a = torch.where(degenerate, (qx * px + qy * py) / norm, dot / safe)
    b = torch.where(degenerate, (qx * py - qy * px) / norm, cross / safe)
    tx = qx - (a * px + b * py)
    ty = qy - (-b * px + a * py)

    fit_x = a[..., None] * p[..., 0] + b[..., None] * p[..., 1] + tx[..., None]  # (N, C, 17)
    fit_y = -b[..., None] * p[..., 0] + a[..., None] * p[..., 1] + ty[..., None]
    err2 = (fit_x - q[..., 0]) ** 2 + (fit_y - q[..., 1]) ** 2
    gauss = torch.exp(-err2 / 2.0)
    mean_gauss = (w * gauss).sum(-1) / count[..., 0]
    score = torch.where(valid, mean_gauss * n_both / n_any.clamp(min=1), torch.zeros_like(mean_gauss))

    scale = out_size * torch.sqrt(a * a + b * b)
    eligible = valid & (score > 0) & (scale > out_size / feature_size)
    ranked = torch.where(eligible, score, torch.full_like(score, -1.0))
    rows = torch.arange(n, device=device)
    fallback = fallback_matrix(out_size, feature_size).to(device).expand(n, 3, 3)
    if c == 0:
        index = torch.full((n,), -1, dtype=torch.int64, device=device)
        zeros = torch.zeros(n, dtype=torch.float64, device=device)
        return AlignChoice(fallback.to(_float_dtype(keypoints)), index, zeros)
    best = ranked.argmax(-1)  # the first maximum: what the strict-improvement walk keeps
    chosen = eligible.any(-1)

    zero, one = torch.zeros_like(a), torch.ones_like(a)
    per_candidate = torch.stack([
        torch.stack([out_size * a, out_size * b, out_size * tx], -1),
        torch.stack([-out_size * b, out_size * a, out_size * ty], -1),
        torch.stack([zero, zero, one], -1),
    ], -2)  # (N, C, 3, 3)
    matrices = torch.where(chosen[:, None, None], per_candidate[rows, best], fallback)
    index = torch.where(chosen, best, torch.full_like(best, -1))
    if fit == "official":
        matrices = torch.where(chosen[:, None, None], official_fit(kp, cand, index, out_size).to(matrices), matrices)
    chosen_score = torch.where(chosen, score[rows, best], torch.zeros_like(score[:, 0]))
    return AlignChoice(matrices.to(_float_dtype(keypoints)), index, chosen_score)


def official_fit(keypoints: Tensor, candidates: Tensor, index: Tensor, out_size: int = ALIGN_SIZE) -> Tensor:
    """Each person's matrix for candidate ``index`` as the official code computes it: float32
    rows ``[x, y, 1, 0] -> qx`` and ``[y, -x, 0, 1] -> qy`` over the joints labelled in both,
    ``cv2.solve(DECOMP_SVD)`` in float32, then ``diag(out, out, 1)`` times it in float32.

    keypoints: (N, 17, 3) feature pixels; candidates: (C, 17, 3); index: (N,) int64, -1 = none
    (identity returned there). Returns (N, 3, 3) float32 on keypoints' device.
    """
    import cv2

    kp = keypoints.detach().cpu().numpy().astype(np.float32)
    cand = candidates.detach().cpu().numpy()
    scale = np.diag([out_size, out_size, 1]).astype(np.float32)
    out = np.tile(np.eye(3, dtype=np.float32), (len(kp), 1, 1))
    for i, c in enumerate(index.tolist()):
        if c < 0:
            continue
        both = (kp[i, :, 2] > 0) & (cand[c, :, 2] > 0)
        p, q = kp[i, both, :2], cand[c, both, :2].astype(np.float32)
        system = np.zeros((2 * len(p), 4), np.float32)
        system[0::2, 0], system[0::2, 1], system[0::2, 2] = p[:, 0], p[:, 1], 1
        system[1::2, 0], system[1::2, 1], system[1::2, 3] = p[:, 1], -p[:, 0], 1
        target = q.reshape(-1, 1)  # qx, qy interleaved as the rows
        a, b, tx, ty = cv2.solve(system, target, flags=cv2.DECOMP_SVD)[1][:, 0]
        out[i] = scale.dot(np.array([[a, b, tx], [-b, a, ty], [0, 0, 1]], np.float32))
    return torch.from_numpy(out).to(keypoints.device)


def affine_align_matrices(
    keypoints: Tensor,
    candidates: Union[Tensor, np.ndarray],
    out_size: int = ALIGN_SIZE,
    feature_size: int = FEATURE_SIZE,
    fit: str = "exact",
) -> Tensor:
    """Affine-Align matrix of each person (official rules, see the module docstring).

    keypoints: (N, 17, 3) feature-map pixels. candidates: (C, 17, 3) unit square. fit: "exact"
    or "official" (:func:`select_templates`). Returns (N, 3, 3) mapping feature pixels to
    aligned pixels, in keypoints' floating dtype.
    """
    return select_templates(keypoints, candidates, out_size, feature_size, fit).matrices


def transform_keypoints(keypoints: Tensor, matrices: Tensor) -> Tensor:
    """Apply each person's matrix to its keypoints (official ``warpAffineKpts``).

    keypoints: (N, 17, 3). matrices: (N, 3, 3). Returns (N, 17, 3): ``(x, y)`` mapped, ``v``
    kept, joints with ``v == 0`` all zero.
    """
    _check_keypoints("keypoints", keypoints)
    _check_matrices(matrices, len(keypoints))
    m = matrices.to(keypoints.dtype)
    xy = keypoints[..., :2] @ m[:, :2, :2].transpose(1, 2) + m[:, None, :2, 2]
    out = torch.cat([xy, keypoints[..., 2:]], dim=-1)
    return torch.where((keypoints[..., 2:] == 0), torch.zeros_like(out), out)


def _source_maps(matrices: Tensor, height: int, width: int, mode: str) -> Tensor:
    """(N, 3, 3): output pixel (u, v) -> feature pixel sampled there."""
    inverse = torch.linalg.inv(matrices)
    if mode == "clean":
        return inverse
    if mode == "faithful":
        if height < 2 or width < 2:
            raise ValueError(f"mode 'faithful' needs a feature map of at least 2x2, got {height}x{width}")
        dtype, device = matrices.dtype, matrices.device
        grow = torch.tensor([width / (width - 1), height / (height - 1), 1.0], dtype=dtype, device=device)
        return torch.diag(1.0 / grow) @ inverse @ torch.diag(grow)
    raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")


def sample_aligned(
    features: Tensor,
    batch_index: Tensor,
    matrices: Tensor,
    out_size: int = ALIGN_SIZE,
    mode: str = "clean",
) -> Tensor:
    """Warp each person's feature map into its aligned ``out_size x out_size`` frame.

    features: (B, Ch, H, W). batch_index: (N,) int64, the image of each person. matrices:
    (N, 3, 3) feature pixels -> aligned pixels. Returns (N, Ch, out_size, out_size) in features'
    dtype: bilinear, zeros outside, via ``F.affine_grid`` / ``F.grid_sample``
    (``align_corners=False`` with the pixel maps composed into theta). ``mode``: "clean" samples
    at ``m^-1 (u, v)``; "faithful" at the official point (module docstring). Differentiable in
    ``features`` and ``matrices``.
    """
    if features.ndim != 4:
        raise ValueError(f"features: expected shape (B, Ch, H, W), got {tuple(features.shape)}")
    batch_index = torch.as_tensor(batch_index, device=features.device)
    if batch_index.ndim != 1 or batch_index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"batch_index: expected an (N,) integer tensor, got {batch_index.dtype} "
                         f"{tuple(batch_index.shape)}")
    _check_matrices(matrices, len(batch_index))
    _, channels, height, width = features.shape
    n = len(batch_index)
    if n == 0:
        return features.new_zeros((0, channels, out_size, out_size))
    # theta in the wider of the two dtypes and at least float32 (linalg.inv has no bf16/fp16;
    # float64 matrices keep their precision), then cast to the features' dtype
    dtype = torch.promote_types(torch.promote_types(matrices.dtype, features.dtype), torch.float32)
    device = features.device
    m = matrices.to(device=device, dtype=dtype)
    source = _source_maps(m, height, width, mode)
    # grid coordinate of output pixel u (align_corners=False): n = (2u + 1) / out - 1
    to_output = torch.tensor([[out_size / 2, 0.0, (out_size - 1) / 2],
                              [0.0, out_size / 2, (out_size - 1) / 2],
                              [0.0, 0.0, 1.0]], dtype=dtype, device=device)
    to_input = torch.tensor([[2.0 / width, 0.0, 1.0 / width - 1.0],
                             [0.0, 2.0 / height, 1.0 / height - 1.0],
                             [0.0, 0.0, 1.0]], dtype=dtype, device=device)
    theta = (to_input @ source @ to_output)[:, :2].to(features.dtype)
    grid = F.affine_grid(theta, [n, channels, out_size, out_size], align_corners=False)
    selected = features.index_select(0, batch_index.long())
    return F.grid_sample(selected, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


class AffineAlign(nn.Module):
    """Module form of :func:`sample_aligned` (no parameters)."""

    def __init__(self, out_size: int = ALIGN_SIZE, mode: str = "clean"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
        self.out_size = out_size
        self.mode = mode

    def forward(self, features: Tensor, batch_index: Tensor, matrices: Tensor) -> Tensor:
        """features (B, Ch, H, W), batch_index (N,), matrices (N, 3, 3) -> (N, Ch, out, out)."""
        return sample_aligned(features, batch_index, matrices, self.out_size, self.mode)

    def extra_repr(self) -> str:
        return f"out_size={self.out_size}, mode={self.mode!r}"


# --------------------------------------------------------------------------- box alignment
def keypoint_boxes(keypoints: Tensor, alpha: float = 0.0) -> Tensor:
    """Box of each person's labelled keypoints, grown by ``alpha`` of its size (Table 5 ablation).

    keypoints: (N, 17, 3). Returns (N, 4) ``[x1, y1, x2, y2]``: min/max of the joints with
    ``v > 0``, then each side moved out by ``alpha / 2`` of the box width (height), so the box
    is ``(1 + alpha)`` times as large around the same centre. All zeros for a person with no
    labelled joint.
    """
    _check_keypoints("keypoints", keypoints)
    dtype = _float_dtype(keypoints)
    kp = keypoints.to(dtype)
    labelled = kp[..., 2] > 0
    inf = torch.tensor(float("inf"), dtype=dtype, device=kp.device)
    lo = torch.where(labelled[..., None], kp[..., :2], inf).amin(1) if len(kp) else kp.new_zeros((0, 2))
    hi = torch.where(labelled[..., None], kp[..., :2], -inf).amax(1) if len(kp) else kp.new_zeros((0, 2))
    grow = (hi - lo) * (alpha / 2.0)
    boxes = torch.cat([lo - grow, hi + grow], dim=-1)
    return torch.where(labelled.any(-1, keepdim=True), boxes, torch.zeros_like(boxes))


def box_align_matrices(boxes_xyxy: Tensor, out_size: int = ALIGN_SIZE, min_size: float = 1.0) -> Tensor:
    """RoI-Align as a matrix: each box stretched onto the ``out_size`` square (Table 5 ablation).

    boxes_xyxy: (N, 4) feature pixels. Returns (N, 3, 3) mapping ``(x1, y1) -> (0, 0)`` and
    ``(x2, y2) -> (out, out)`` with independent x and y scales (the no-half-pixel convention of
    the fallback matrix). A side shorter than ``min_size`` grows to it around its centre.
    """
    if boxes_xyxy.ndim != 2 or boxes_xyxy.shape[1] != 4:
        raise ValueError(f"boxes_xyxy: expected shape (N, 4), got {tuple(boxes_xyxy.shape)}")
    boxes = boxes_xyxy.to(_float_dtype(boxes_xyxy))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=min_size)
    start = torch.where(boxes[:, 2:] - boxes[:, :2] >= min_size, boxes[:, :2], centre - size / 2.0)
    scale = out_size / size  # (N, 2)
    out = torch.zeros((len(boxes), 3, 3), dtype=boxes.dtype, device=boxes.device)
    out[:, 0, 0] = scale[:, 0]
    out[:, 1, 1] = scale[:, 1]
    out[:, :2, 2] = -start * scale
    out[:, 2, 2] = 1.0
    return out


# ----------------------------------------------------------------------------- augmentation
def augmentation_matrices(
    n: int,
    generator: Optional[torch.Generator] = None,
    out_size: int = ALIGN_SIZE,
    max_rotation_deg: float = AUG_MAX_ROTATION_DEG,
    scale_range: tuple[float, float] = AUG_SCALE_RANGE,
    max_shift: float = AUG_MAX_SHIFT,
    dtype: torch.dtype = torch.float64,
    device: Union[torch.device, str, None] = None,
) -> Tensor:
    """N random aligned-frame similarities ``x' = s R(theta) (x - c) + c + t`` (spec 5.5).

    theta ~ U(-30, 30) degrees, s ~ U(0.8, 1.2), c = (out/2, out/2), t = out * (tx, ty) with
    tx, ty ~ U(-0.1, 0.1),
    ``R = [[cos, -sin], [sin, cos]]``. Draws (N, 4) uniforms (angle, scale, tx, ty) from
    ``generator`` on its own device. Returns (N, 3, 3).
    """
    gen_device = generator.device if generator is not None else torch.device("cpu")
    r = torch.rand((n, 4), generator=generator, dtype=torch.float64, device=gen_device)
    r = r.to(device if device is not None else gen_device)
    angle = torch.deg2rad((2.0 * r[:, 0] - 1.0) * max_rotation_deg)
    scale = scale_range[0] + (scale_range[1] - scale_range[0]) * r[:, 1]
    shift = (2.0 * r[:, 2:] - 1.0) * max_shift * out_size
    cos, sin = scale * torch.cos(angle), scale * torch.sin(angle)
    centre = out_size / 2.0
    out = torch.zeros((n, 3, 3), dtype=torch.float64, device=r.device)
    out[:, 0, 0], out[:, 0, 1] = cos, -sin
    out[:, 1, 0], out[:, 1, 1] = sin, cos
    out[:, 0, 2] = centre - cos * centre + sin * centre + shift[:, 0]
    out[:, 1, 2] = centre - sin * centre - cos * centre + shift[:, 1]
    out[:, 2, 2] = 1.0
    return out.to(dtype)


def augment_matrices(
    matrices: Tensor,
    generator: Optional[torch.Generator] = None,
    out_size: int = ALIGN_SIZE,
    max_rotation_deg: float = AUG_MAX_ROTATION_DEG,
    scale_range: tuple[float, float] = AUG_SCALE_RANGE,
    max_shift: float = AUG_MAX_SHIFT,
) -> Tensor:
    """Training augmentation ``m3 = Aug @ M`` per person (see :func:`augmentation_matrices`).

    matrices: (N, 3, 3). Returns (N, 3, 3) in matrices' dtype and device.
    """
    _check_matrices(matrices)
    aug = augmentation_matrices(len(matrices), generator, out_size, max_rotation_deg, scale_range,
                                max_shift, dtype=torch.float64, device=matrices.device)
    return (aug @ matrices.to(torch.float64)).to(_float_dtype(matrices))


__all__ = [
    "ALIGN_SIZE", "FEATURE_SIZE", "FITS", "MODES", "AffineAlign", "AlignChoice", "affine_align_matrices",
    "augment_matrices", "augmentation_matrices", "box_align_matrices", "fallback_matrix",
    "keypoint_boxes", "official_fit", "sample_aligned", "select_templates", "transform_keypoints",
]
