"""Figures of what Pose2Seg sees: the Affine-Align windows (the paper's Figure 7) and the pose
templates. matplotlib and torch are imported lazily (inside the functions).

Conventions (as :mod:`ochuman.vis`)
    - Images are BGR ``uint8`` ``(H, W, 3)``; keypoints are COCO-ordered ``(N, 17, 3)`` in image
      pixels, ``v > 0`` labelled.
    - Figures are :class:`matplotlib.figure.Figure` objects built without pyplot (no global
      state, nothing to close); write them with :func:`ochuman.vis.save_figure`.

The matrices are the model's own: keypoints go through the letterbox ``m1`` and the stride
``m2`` exactly as :meth:`pose2seg.model.Pose2Seg.predict` and
:meth:`~pose2seg.model.Pose2Seg.align_matrices` move them (float32, unlabelled joints zeroed),
then :func:`pose2seg.align.select_templates` picks each person's template and ``m3``. A
person's window is the 64 x 64 aligned frame mapped back to the image through
``(m3 m2 m1)^-1``; its crop is the image warped through ``m3 m2 m1`` (upsampled for legibility).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from ochuman.keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON, NUM_COCO_KEYPOINTS

#: Side of the aligned frame (``pose2seg.align.ALIGN_SIZE``, repeated here to keep torch lazy).
ALIGN_SIZE = 64
#: Stride of the feature map the aligned frame is sampled from (``pose2seg.model.FEATURE_STRIDE``).
FEATURE_STRIDE = 4
FALLBACK_NAME = "fallback"

_LEFT = np.array([name.startswith("left_") for name in COCO_KEYPOINT_NAMES])
_RIGHT = np.array([name.startswith("right_") for name in COCO_KEYPOINT_NAMES])


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _colors(n: int) -> list[tuple]:
    """n qualitative RGB colours (tab10, cycled)."""
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [tuple(cmap(k % 10)[:3]) for k in range(n)]


def candidate_names(num_templates: int) -> list[str]:
    """Names of the 2K Affine-Align candidates: ``T0 .. TK-1`` then the left/right-swapped
    copies ``T0' .. TK-1'`` (the order of :func:`pose2seg.templates.candidates`)."""
    return [f"T{k}" for k in range(num_templates)] + [f"T{k}'" for k in range(num_templates)]


@dataclass(frozen=True, eq=False)
class AlignWindows:
    """What Affine-Align decided for N persons of one image.

    matrices: (N, 3, 3) float64, image pixels -> aligned 64 x 64 pixels (``m3 m2 m1``).
    index: (N,) int64 candidate index, -1 for the fallback. score: (N,) float64 (0 for the
    fallback). names: the chosen candidate's name (:func:`candidate_names`) or ``"fallback"``.
    corners: (N, 4, 2) float64, the aligned frame's corners (0, 0), (64, 0), (64, 64), (0, 64)
    in image pixels. candidates: (2K, 17, 3) unit-square candidates matched against.
    """

    matrices: np.ndarray
    index: np.ndarray
    score: np.ndarray
    names: tuple[str, ...]
    corners: np.ndarray
    candidates: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def aligned_keypoints(self, keypoints: np.ndarray) -> np.ndarray:
        """keypoints (N, 17, 3) image pixels -> (N, 17, 3) aligned pixels (``v`` kept)."""
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, NUM_COCO_KEYPOINTS, 3)
        out = kp.copy()
        out[..., :2] = np.einsum("nij,nkj->nki", self.matrices[:, :2, :2], kp[..., :2]) + self.matrices[:, None, :2, 2]
        return out

    def template_points(self, j: int) -> Optional[np.ndarray]:
        """(17, 3) of person ``j``'s chosen candidate in aligned pixels (v = 0 where the joint is
        not valid in it), None for the fallback."""
        k = int(self.index[j])
        if k < 0:
            return None
        points = np.array(self.candidates[k], dtype=np.float64, copy=True)
        points[:, :2] *= ALIGN_SIZE
        return points


def _check_keypoints(keypoints) -> np.ndarray:
    kp = np.asarray(keypoints, dtype=np.float64)
    if kp.size == 0:
        return kp.reshape(0, NUM_COCO_KEYPOINTS, 3)
    if kp.ndim == 2:
        kp = kp[None]
    if kp.ndim != 3 or kp.shape[1:] != (NUM_COCO_KEYPOINTS, 3):
        raise ValueError(f"keypoints: expected shape (N, 17, 3), got {np.shape(keypoints)}")
    return kp


def align_geometry(image_shape: Sequence[int], keypoints, templates=None, input_size: int = 512) -> AlignWindows:
    """The Affine-Align decision and matrices of each person, as the model computes them.

    image_shape: ``(H, W)`` or ``(H, W, 3)``. keypoints: (N, 17, 3) image pixels. templates: a
    :class:`~pose2seg.templates.PoseTemplates` (default: the official ones). input_size: the
    model's letterboxed input side (:class:`pose2seg.model.ModelConfig`).
    """
    import torch

    from pose2seg.align import select_templates
    from pose2seg.model import letterbox_matrix
    from pose2seg.templates import candidates, load_templates

    if input_size % 32:
        raise ValueError(f"input_size must be a multiple of 32, got {input_size}")
    height, width = int(image_shape[0]), int(image_shape[1])
    kp = _check_keypoints(keypoints)
    templates = load_templates() if templates is None else templates
    cands = candidates(templates)
    names = candidate_names(len(templates))
    m1 = letterbox_matrix(height, width, input_size)
    # as Pose2Seg.predict: into input pixels, unlabelled joints all zero, float32
    moved = kp.copy()
    moved[..., :2] = kp[..., :2] @ m1[:2, :2].T + m1[:2, 2]
    moved[kp[..., 2] <= 0] = 0
    kp_input = torch.as_tensor(moved, dtype=torch.float32)
    # as Pose2Seg.align_matrices (align="affine"): into feature pixels
    kp_features = kp_input.clone()
    kp_features[..., :2] = kp_features[..., :2] / FEATURE_STRIDE
    kp_features = torch.where(kp_input[..., 2:] > 0, kp_features, torch.zeros_like(kp_features))
    choice = select_templates(kp_features, torch.as_tensor(cands, dtype=torch.float32), ALIGN_SIZE,
                              input_size // FEATURE_STRIDE)
    m3 = choice.matrices.to(torch.float64).numpy().reshape(-1, 3, 3)
    m2 = np.diag([1.0 / FEATURE_STRIDE, 1.0 / FEATURE_STRIDE, 1.0])
    matrices = m3 @ m2 @ m1
    frame = np.array([[0, 0, 1], [ALIGN_SIZE, 0, 1], [ALIGN_SIZE, ALIGN_SIZE, 1], [0, ALIGN_SIZE, 1]], dtype=np.float64)
    corners = np.einsum("nij,kj->nki", np.linalg.inv(matrices), frame)[..., :2] if len(matrices) else np.zeros((0, 4, 2))
    index = choice.index.numpy().astype(np.int64)
    return AlignWindows(
        matrices=matrices, index=index, score=choice.score.numpy().astype(np.float64),
        names=tuple(FALLBACK_NAME if k < 0 else names[k] for k in index), corners=corners,
        candidates=cands,
    )


def aligned_crops(image_bgr: np.ndarray, windows: AlignWindows, crop_size: int = 128) -> np.ndarray:
    """Each person's aligned frame cut from the image (bilinear, black outside), ``crop_size``
    pixels a side (the 64 x 64 frame upsampled). Returns (N, crop_size, crop_size, 3) uint8 BGR."""
    import cv2

    scale = crop_size / ALIGN_SIZE
    up = np.diag([scale, scale, 1.0])
    # crop pixel u samples the aligned point u / scale (pixel centres at integers, as the model)
    crops = [cv2.warpAffine(image_bgr, (up @ m)[:2], (crop_size, crop_size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
             for m in windows.matrices]
    return np.stack(crops) if crops else np.zeros((0, crop_size, crop_size, 3), dtype=np.uint8)


def _draw_skeleton(ax, points: np.ndarray, color, *, lw: float = 1.5, size: float = 14, zorder: int = 3,
                   outline: Optional[str] = None, alpha: float = 1.0, marker: str = "o") -> None:
    """COCO limbs and joints (v > 0) of (17, 3) ``points`` on ``ax``."""
    from matplotlib import patheffects

    drawn = points[:, 2] > 0
    effects = [patheffects.withStroke(linewidth=lw + 1.6, foreground=outline)] if outline else None
    for a, b in COCO_SKELETON:
        a, b = a - 1, b - 1
        if drawn[a] and drawn[b]:
            ax.plot(points[[a, b], 0], points[[a, b], 1], color=color, lw=lw, alpha=alpha, zorder=zorder,
                    solid_capstyle="round", path_effects=effects)
    if drawn.any():
        ax.scatter(points[drawn, 0], points[drawn, 1], s=size, color=color, edgecolors=outline or "none",
                   linewidths=0.6, zorder=zorder + 1, alpha=alpha, marker=marker)


def align_windows(
    image_bgr: np.ndarray,
    keypoints,
    templates=None,
    input_size: int = 512,
    *,
    crop_size: int = 128,
    title: Optional[str] = None,
):
    """The paper's Figure 7: each person's Affine-Align window on the image, and what is inside.

    Left: the image, each person's labelled keypoints (numbered 1..N) and its window (the
    64 x 64 aligned frame mapped back through ``(m3 m2 m1)^-1``; the thick side is the frame's
    top edge) in the person's colour; the legend gives each person's template and score
    (``fallback``: no template fits and the whole letterboxed input is the window). The view
    grows past the image (grey) to hold every window. Right, one panel per person: the image
    warped into the aligned frame (``crop_size`` pixels a side, black outside the image), the
    chosen template's skeleton (white) and the person's keypoints mapped there (its colour).

    image_bgr: (H, W, 3) uint8. keypoints: (N, 17, 3) image pixels, COCO order. templates,
    input_size: as the model's (:func:`align_geometry`). Returns a matplotlib Figure: the image
    Axes first, then N crop Axes (``fig.axes``), unused grid cells hidden.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon, Rectangle

    shape = np.shape(image_bgr)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"image_bgr: expected (H, W, 3) BGR, got shape {shape}")
    kp = _check_keypoints(keypoints)
    windows = align_geometry(shape, kp, templates, input_size)
    crops = aligned_crops(image_bgr, windows, crop_size)
    aligned = windows.aligned_keypoints(kp)
    n = len(windows)
    colors = _colors(n)
    height, width = shape[:2]

    # The view holds the image and every window: a window may reach past the image (the model
    # sees the letterbox's black border there), the fallback's is the whole letterboxed input.
    lo_xy, hi_xy = np.array([-0.5, -0.5]), np.array([width - 0.5, height - 0.5])
    if n:
        lo_xy = np.minimum(lo_xy, windows.corners.reshape(-1, 2).min(axis=0))
        hi_xy = np.maximum(hi_xy, windows.corners.reshape(-1, 2).max(axis=0))
    pad = 0.015 * float((hi_xy - lo_xy).max())
    lo_xy, hi_xy = lo_xy - pad, hi_xy + pad
    view_w, view_h = hi_xy - lo_xy

    panel_h = 6.0
    left_w = float(np.clip(panel_h * view_w / view_h, 3.5, 10.0))
    rows = max(1, int(math.ceil(math.sqrt(n))))
    cols = int(math.ceil(n / rows))
    right_w = cols * panel_h / rows
    fig = _figure(left_w + right_w + 0.2, panel_h + 1.1 + (0.3 if title else 0.0))
    if n:
        left, right = fig.subfigures(1, 2, width_ratios=[left_w, right_w], wspace=0.02)
    else:
        left, right = fig, None

    ax = left.subplots()
    ax.imshow(np.ascontiguousarray(image_bgr[..., ::-1]), interpolation="antialiased", zorder=1)
    ax.add_patch(Rectangle((-0.5, -0.5), width, height, fill=False, edgecolor="0.3", lw=0.8, zorder=2))
    handles = []
    for j in range(n):
        color = colors[j]
        quad = windows.corners[j]
        # dashes interleaved between persons, so coinciding windows (fallbacks) all show
        dashes = (4.0 * j, (4.0, 4.0 * max(n - 1, 1)))
        ax.add_patch(Polygon(quad, closed=True, fill=False, edgecolor=color, lw=1.8, ls=dashes, zorder=4))
        ax.plot(quad[:2, 0], quad[:2, 1], color=color, lw=4, ls=dashes if n > 1 else "-",
                dash_capstyle="butt", solid_capstyle="butt", zorder=4)
        _draw_skeleton(ax, kp[j], color, lw=1.4, size=10, zorder=5, outline="white")
        labelled = kp[j, :, 2] > 0
        if labelled.any():  # the person's number above its topmost joint
            top = int(np.flatnonzero(labelled)[np.argmin(kp[j, labelled, 1])])
            ax.annotate(str(j + 1), kp[j, top, :2], xytext=(0, 7), textcoords="offset points", ha="center",
                        va="bottom", fontsize=9, fontweight="bold", zorder=7,
                        color="black" if sum(color) > 1.6 else "white",
                        bbox={"boxstyle": "circle,pad=0.2", "facecolor": color, "edgecolor": "white", "lw": 0.8})
        what = (f"{windows.names[j]}, score {windows.score[j]:.2f}" if windows.index[j] >= 0
                else "fallback (no template fits)")
        handles.append(Line2D([], [], color=color, lw=2.5, label=f"{j + 1}: {what}"))
    ax.set_xlim(lo_xy[0], hi_xy[0])
    ax.set_ylim(hi_xy[1], lo_xy[1])
    ax.set_facecolor("0.93")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if handles:
        handles.append(Line2D([], [], color="0.4", lw=4, label="top edge of a window"))
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2,
                  fontsize=8.5, frameon=False, handlelength=1.6, columnspacing=1.2)
    ax.set_title(f"Affine-Align windows (input {input_size})" if n else "no persons", fontsize=10)

    if right is not None:
        axes = np.atleast_1d(right.subplots(rows, cols, squeeze=False)).ravel()
        lo, hi = -0.5 * ALIGN_SIZE / crop_size, ALIGN_SIZE - 0.5 * ALIGN_SIZE / crop_size
        for j, cax in enumerate(axes[:n]):
            cax.imshow(np.ascontiguousarray(crops[j][..., ::-1]), extent=(lo, hi, hi, lo), interpolation="antialiased")
            template = windows.template_points(j)
            if template is not None:
                _draw_skeleton(cax, template, "white", lw=2.0, size=16, zorder=3, outline="black", alpha=0.85)
            person = aligned[j].copy()
            person[kp[j, :, 2] <= 0, 2] = 0
            _draw_skeleton(cax, person, colors[j], lw=1.2, size=18, zorder=5, outline="black")
            cax.set_xlim(lo, hi)
            cax.set_ylim(hi, lo)
            cax.set_xticks([])
            cax.set_yticks([])
            for spine in cax.spines.values():
                spine.set_edgecolor(colors[j])
                spine.set_linewidth(3)
            what = (f"{windows.names[j]} ({windows.score[j]:.2f})" if windows.index[j] >= 0
                    else "fallback: whole input")
            cax.set_title(f"{j + 1}: {what}", fontsize=9)
        for cax in axes[n:]:
            cax.set_axis_off()
        right.suptitle(f"aligned {ALIGN_SIZE}x{ALIGN_SIZE} frames\n(template in white)", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def templates_figure(templates: Union[Mapping[str, object], object], *, panel: float = 2.2):
    """Pose templates drawn in the unit square, one row per set, one panel per template.

    templates: a :class:`~pose2seg.templates.PoseTemplates` or a mapping ``{row title:
    PoseTemplates}``. Joints valid in a template (``v >= vis_threshold``) are filled, left
    joints and limbs in blue, right in orange, the middle in grey; invalid joints are hollow
    grey circles. Returns a matplotlib Figure.
    """
    sets = dict(templates) if isinstance(templates, Mapping) else {"templates": templates}
    if not sets:
        raise ValueError("templates: nothing to draw")
    cols = max(len(t) for t in sets.values())
    fig = _figure(panel * cols, (panel + 0.35) * len(sets))
    subfigs = np.atleast_1d(fig.subfigures(len(sets), 1)) if len(sets) > 1 else [fig]
    side_color = {"left": "tab:blue", "right": "tab:orange", "middle": "0.35"}

    def side(j: int) -> str:
        return "left" if _LEFT[j] else "right" if _RIGHT[j] else "middle"

    for sub, (row_title, tset) in zip(subfigs, sets.items()):
        axes = np.atleast_1d(sub.subplots(1, cols, squeeze=False)).ravel()
        valid = tset.valid
        for k, ax in enumerate(axes):
            if k >= len(tset):
                ax.set_axis_off()
                continue
            points = tset.templates[k]
            for a, b in COCO_SKELETON:
                a, b = a - 1, b - 1
                if valid[k, a] and valid[k, b]:
                    sa, sb = side(a), side(b)
                    ax.plot(points[[a, b], 0], points[[a, b], 1], lw=2.2, solid_capstyle="round",
                            color=side_color[sa if sa == sb else "middle"])
            for j in range(NUM_COCO_KEYPOINTS):
                if valid[k, j]:
                    ax.scatter(*points[j, :2], s=22, color=side_color[side(j)], zorder=3)
                else:
                    ax.scatter(*points[j, :2], s=22, facecolors="none", edgecolors="0.6", zorder=3)
            ax.set_xlim(0, 1)
            ax.set_ylim(1, 0)
            ax.set_aspect("equal")
            ax.set_xticks([0, 0.5, 1])
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.25)
            ax.set_title(f"T{k}: {int(valid[k].sum())} valid joints", fontsize=9)
        sub.suptitle(f"{row_title}: left side blue, right side orange, hollow = not valid "
                     f"(v < {tset.vis_threshold:g})", fontsize=10)
    return fig


__all__ = [
    "ALIGN_SIZE", "AlignWindows", "FALLBACK_NAME", "align_geometry", "align_windows", "aligned_crops",
    "candidate_names", "templates_figure",
]
