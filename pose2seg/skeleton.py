"""Skeleton features: 17 keypoint heat maps + 38 part-affinity channels, drawn in the aligned frame.

Convention (official ``modeling/skeleton_feat.py`` with stride 1, sigma 3, threshold 1, spec
5.7): keypoints are in aligned pixels (after :func:`pose2seg.align.transform_keypoints`);
pixel ``(x, y)`` is ``out[..., y, x]`` and is measured at its integer position.

Channels 0..16, one per COCO joint ``j`` with ``v > 0``: ``exp(-d^2 / (2 sigma^2))``, zero
where ``d^2 / (2 sigma^2) >= 4.6025``; negated for ``v == 1`` (COCO "labelled, not visible")
when ``official_v1_sign`` (the released weights were trained so).

Channels 17 + 2k, 18 + 2k: the unit vector ``(ux, uy)`` from joint a to joint b of limb k of
:data:`LIMBS`, when both ends have ``v > 0`` and the limb has non-zero length, on the pixels
with integer ``x`` in ``[round(min x - w), round(max x + w))`` (same for ``y``; Python
``round``, half to even, as ``torch.round``) whose perpendicular distance to the limb's line is
``< w`` (``w = limb_width`` = 1). Each limb owns its two channels, so no limb overwrites
another (the official "later overwrites earlier" only arises between persons sharing a map,
which the official model never does: it renders one person per call).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ochuman.keypoints import NUM_COCO_KEYPOINTS

#: The 19 limbs of the official skeleton features, 0-based COCO joint pairs (a, b).
LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 2), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 6), (5, 7), (5, 11), (6, 8),
    (6, 12), (7, 9), (8, 10), (11, 12), (11, 13), (12, 14), (13, 15), (14, 16),
)
NUM_SKELETON_CHANNELS = NUM_COCO_KEYPOINTS + 2 * len(LIMBS)  # 55
HEATMAP_CUTOFF = 4.6025  # exp(-4.6025) ~ 0.01


def skeleton_features(
    keypoints: Tensor,
    size: int = 64,
    sigma: float = 3.0,
    official_v1_sign: bool = True,
    limb_width: float = 1.0,
) -> Tensor:
    """Render the 55 skeleton channels of each person, all persons and limbs at once.

    keypoints: (N, 17, 3) aligned pixels, COCO order and visibility. Returns
    (N, 55, size, size) on keypoints' device in its floating dtype (the default dtype for
    integer input); see the module docstring for the channels.
    """
    if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"keypoints: expected shape (N, 17, 3), got {tuple(keypoints.shape)}")
    dtype = keypoints.dtype if keypoints.is_floating_point() else torch.get_default_dtype()
    kp = keypoints.detach().to(dtype)
    grid = torch.arange(size, dtype=dtype, device=kp.device)  # (S,)
    x, y, v = kp[..., 0], kp[..., 1], kp[..., 2]  # (N, 17)

    # --- heat maps (N, 17, S, S)
    scale = 2.0 * sigma * sigma
    ex = (grid - x[..., None]) ** 2 / scale  # (N, 17, S) along x
    ey = (grid - y[..., None]) ** 2 / scale  # along y
    exponent = ey[..., :, None] + ex[..., None, :]
    heat = torch.where(exponent < HEATMAP_CUTOFF, torch.exp(-exponent), torch.zeros_like(exponent))
    sign = torch.where((v == 1) & official_v1_sign, -1.0, 1.0).to(dtype)
    heat = heat * torch.where(v > 0, sign, torch.zeros_like(sign))[..., None, None]

    # --- part affinity fields (N, 19, 2, S, S)
    a = torch.tensor([i for i, _ in LIMBS], device=kp.device)
    b = torch.tensor([j for _, j in LIMBS], device=kp.device)
    ax, ay, bx, by = x[:, a], y[:, a], x[:, b], y[:, b]  # (N, L)
    dx, dy = bx - ax, by - ay
    length = torch.sqrt(dx * dx + dy * dy)
    drawn = (v[:, a] > 0) & (v[:, b] > 0) & (length > 0)
    safe = torch.where(drawn, length, torch.ones_like(length))
    ux, uy = dx / safe, dy / safe
    x_lo = torch.round(torch.minimum(ax, bx) - limb_width)
    x_hi = torch.round(torch.maximum(ax, bx) + limb_width)
    y_lo = torch.round(torch.minimum(ay, by) - limb_width)
    y_hi = torch.round(torch.maximum(ay, by) + limb_width)
    in_x = (grid >= x_lo[..., None]) & (grid < x_hi[..., None])  # (N, L, S); [0, S) by construction
    in_y = (grid >= y_lo[..., None]) & (grid < y_hi[..., None])
    rel_x = grid - ax[..., None]  # (N, L, S)
    rel_y = grid - ay[..., None]
    dist = (rel_x[..., None, :] * uy[..., None, None] - rel_y[..., :, None] * ux[..., None, None]).abs()
    on = in_y[..., :, None] & in_x[..., None, :] & (dist < limb_width) & drawn[..., None, None]
    zero = torch.zeros((), dtype=dtype, device=kp.device)
    paf = torch.stack([torch.where(on, ux[..., None, None], zero),
                       torch.where(on, uy[..., None, None], zero)], dim=2)  # (N, L, 2, S, S)
    return torch.cat([heat, paf.reshape(len(kp), 2 * len(LIMBS), size, size)], dim=1)


__all__ = ["HEATMAP_CUTOFF", "LIMBS", "NUM_SKELETON_CHANNELS", "skeleton_features"]
