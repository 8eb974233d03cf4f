"""Pose2Seg: ResNet-50-FPN features, Affine-Align, skeleton features, SegModule, AlignReverse.

Frames (spec 5.1), all 3x3 matrices on column ``[x, y, 1]``:
origin image (H x W) --m1--> input (S x S, S = 512) --m2--> features (S/4) --m3--> aligned
(64 x 64). ``m1`` letterboxes (uniform scale, centred, zero border), ``m2 = diag(1/4, 1/4)``,
``m3`` is the Affine-Align matrix (or a box alignment for the Table 5 ablations), times the
training augmentation. A person's mask matrix ``m3 m2 m1`` maps the origin image to its 64x64
output; AlignReverse samples the 64x64 foreground probability back into the image through it.

Options reproducing the paper's Table 5: ``align="affine"`` (templates, the method),
``"gt-box"`` (RoI-Align on the ground-truth box) or ``"keypoint-box"`` (RoI-Align on the box
of the labelled keypoints grown by ``alpha``); ``skeleton=False`` drops the 55 skeleton
channels. ``sampling="faithful"`` reproduces the official corner-aligned sampling grid (use it
with the released weights; prediction then also rounds the geometry as the official code, see
:meth:`Pose2Seg.predict`); ``"clean"`` (default) samples at pixel centres.
"""
from __future__ import annotations

import os
from dataclasses import asdict, fields
from typing import Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pose2seg.align import (
    ALIGN_SIZE, affine_align_matrices, box_align_matrices, keypoint_boxes, sample_aligned,
    transform_keypoints,
)
from pose2seg.backbone import ResNet50FPN
from pose2seg.config import ModelConfig  # noqa: F401 - defined without torch, public here too
from pose2seg.segmodule import SegModule
from pose2seg.skeleton import NUM_SKELETON_CHANNELS, skeleton_features
from pose2seg.templates import candidates as template_candidates
from pose2seg.templates import load_templates

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FEATURE_STRIDE = 4


def letterbox_matrix(height: int, width: int, size: int, faithful: bool = False) -> np.ndarray:
    """m1: origin pixels -> ``size x size`` input, aspect kept, centred. Returns (3, 3) float64.

    faithful: the official matrix's values, a float32 product ``T C RSS C^-1`` whose offset
    rounds as ``float32(float32(s * -W/2) + size/2)`` (the image it warps differs from the
    float64 matrix's in ~9% of the pixels, by one grey level)."""
    s = min(size / width, size / height)
    if faithful:
        f32 = np.float32
        s32 = f32(s)
        tx, ty = f32(s32 * f32(-width / 2)) + f32(size / 2), f32(s32 * f32(-height / 2)) + f32(size / 2)
        return np.array([[s32, 0, tx], [0, s32, ty], [0, 0, 1]], dtype=f32).astype(np.float64)
    return np.array([[s, 0, size / 2 - s * width / 2], [0, s, size / 2 - s * height / 2], [0, 0, 1]])


def letterbox(image_bgr: np.ndarray, size: int, faithful: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Warp an image into the ``size x size`` input (bilinear, black border). Returns the
    warped (size, size, 3) uint8 image and m1 (3, 3); faithful: the official float32 m1."""
    import cv2

    m1 = letterbox_matrix(image_bgr.shape[0], image_bgr.shape[1], size, faithful)
    warped = cv2.warpAffine(image_bgr, m1[:2], (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return warped, m1


def keypoints_to_input(keypoints: np.ndarray, m1: np.ndarray, faithful: bool = False) -> np.ndarray:
    """Keypoints (N, 17, 3) in image pixels -> input pixels through m1; joints with v <= 0 all
    zero. Returns (N, 17, 3) float64. faithful: as the official code, in float32 (``[x, y, 1]``
    rows times m1 as one float32 product; the float32 alignment fit amplifies a last-bit
    difference here to ~3e-3 aligned pixels)."""
    kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 17, 3)
    moved = kp.copy()
    if faithful:
        rows = np.concatenate([kp[..., :2], np.ones_like(kp[..., :1])], -1).astype(np.float32).reshape(-1, 3)
        moved[..., :2] = rows.dot(m1[:2].astype(np.float32).T).reshape(-1, 17, 2)
    else:
        moved[..., :2] = kp[..., :2] @ m1[:2, :2].T + m1[:2, 2]
    moved[kp[..., 2] <= 0] = 0
    return moved


def paste_masks(probabilities: Tensor, mask_matrices: Tensor, height: int, width: int) -> Tensor:
    """AlignReverse: each 64x64 probability map sampled back into the ``height x width`` image.

    probabilities: (N, h, w). mask_matrices: (N, 3, 3) origin pixels -> output pixels. Image
    pixel (x, y) takes the bilinear value at ``M (x, y)`` (zero outside), as
    ``cv2.warpAffine(..., WARP_INVERSE_MAP)`` does. Returns (N, height, width).
    """
    n, h, w = probabilities.shape
    if n == 0:
        return probabilities.new_zeros((0, height, width))
    m = mask_matrices.to(probabilities)
    # image pixel -> grid coordinate of the output map (align_corners=False)
    to_grid = torch.tensor([[2.0 / w, 0, 1.0 / w - 1], [0, 2.0 / h, 1.0 / h - 1], [0, 0, 1]],
                           dtype=m.dtype, device=m.device)
    # normalised image coordinates (as affine_grid produces them) -> image pixels
    from_norm = torch.tensor([[width / 2, 0, (width - 1) / 2], [0, height / 2, (height - 1) / 2], [0, 0, 1]],
                             dtype=m.dtype, device=m.device)
    theta = (to_grid @ m @ from_norm)[:, :2]
    grid = F.affine_grid(theta, [n, 1, height, width], align_corners=False)
    return F.grid_sample(probabilities[:, None], grid, mode="bilinear", padding_mode="zeros",
                         align_corners=False)[:, 0]


def paste_masks_opencv(probabilities: Tensor, mask_matrices: Tensor, height: int, width: int) -> Tensor:
    """AlignReverse as the official code: ``cv2.warpAffine(WARP_INVERSE_MAP | INTER_LINEAR)``,
    border 0, with OpenCV's 1/32-pixel coordinate rounding. Same arguments and result as
    :func:`paste_masks` (computed on the CPU, returned on the probabilities' device)."""
    import cv2

    probs = probabilities.detach().float().cpu().numpy()
    matrices = mask_matrices.detach().cpu().numpy().astype(np.float64)
    out = np.zeros((len(probs), height, width), dtype=np.float32)
    for k, (prob, matrix) in enumerate(zip(probs, matrices)):
        out[k] = cv2.warpAffine(prob, matrix[:2], (width, height), borderMode=cv2.BORDER_CONSTANT, borderValue=0,
                                flags=cv2.WARP_INVERSE_MAP | cv2.INTER_LINEAR)
    return torch.from_numpy(out).to(probabilities.device)


class Pose2Seg(nn.Module):
    """The Pose2Seg network. Parameters live in ``backbone`` and ``segnet`` only (the release's
    key layout); templates and normalisation constants are non-persistent buffers."""

    def __init__(self, config: ModelConfig = ModelConfig(), templates=None):
        super().__init__()
        self.config = config
        self.backbone = ResNet50FPN()
        in_channels = 256 + (NUM_SKELETON_CHANNELS if config.skeleton else 0)
        self.segnet = SegModule(in_channels=in_channels, units=config.units)
        cands = template_candidates(templates if templates is not None else load_templates())
        self.register_buffer("candidates", torch.as_tensor(cands, dtype=torch.float32), persistent=False)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # ------------------------------------------------------------------------------ network
    def normalise(self, images_bgr: Tensor) -> Tensor:
        """(B, S, S, 3) uint8 BGR -> (B, 3, S, S) float, RGB, ImageNet-normalised."""
        x = images_bgr.to(self.mean.device).flip(-1).permute(0, 3, 1, 2).float() / 255.0
        return (x - self.mean) / self.std

    def align_matrices(self, keypoints: Tensor, boxes_xyxy: Optional[Tensor] = None) -> Tensor:
        """m3 of each person. keypoints (N, 17, 3) and boxes (N, 4) in input pixels. (N, 3, 3)."""
        feature_size = self.config.input_size // FEATURE_STRIDE
        kp_features = keypoints.clone()
        kp_features[..., :2] = kp_features[..., :2] / FEATURE_STRIDE
        kp_features = torch.where(keypoints[..., 2:] > 0, kp_features, torch.zeros_like(kp_features))
        if self.config.align == "affine":
            fit = "official" if self.config.sampling == "faithful" else "exact"
            return affine_align_matrices(kp_features, self.candidates.to(kp_features.device),
                                         ALIGN_SIZE, feature_size, fit)
        if self.config.align == "gt-box":
            if boxes_xyxy is None:
                raise ValueError("align='gt-box' needs the ground-truth boxes")
            return box_align_matrices(boxes_xyxy / FEATURE_STRIDE, ALIGN_SIZE)
        return box_align_matrices(keypoint_boxes(kp_features, self.config.alpha), ALIGN_SIZE)

    def forward(self, images: Tensor, keypoints: Tensor, batch_index: Tensor,
                boxes_xyxy: Optional[Tensor] = None, augment: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        """Segment N persons of B images.

        images: (B, 3, S, S) normalised input. keypoints: (N, 17, 3) input pixels (v = 0 missing).
        batch_index: (N,) image of each person. boxes_xyxy: (N, 4) input pixels (gt-box mode).
        augment: (N, 3, 3) aligned-frame augmentation (training). Returns logits (N, 2, 64, 64)
        and the matrices (N, 3, 3) from input pixels to the 64x64 output.
        """
        features = self.backbone(images)
        # Matrices and sampling stay in float32 under autocast (bf16 would move the windows).
        m3 = self.align_matrices(keypoints, boxes_xyxy).float()
        if augment is not None:
            m3 = augment.to(m3) @ m3
        aligned = sample_aligned(features.float(), batch_index, m3, ALIGN_SIZE, self.config.sampling)
        m2 = torch.diag(torch.tensor([1.0 / FEATURE_STRIDE, 1.0 / FEATURE_STRIDE, 1.0], dtype=m3.dtype, device=m3.device))
        input_to_output = m3 @ m2
        if self.config.skeleton:
            kp_out = transform_keypoints(keypoints.to(m3.dtype), input_to_output)
            skeleton = skeleton_features(kp_out, ALIGN_SIZE, official_v1_sign=self.config.official_v1_sign)
            aligned = torch.cat([aligned, skeleton.to(aligned.dtype)], dim=1)
        return self.segnet(aligned), input_to_output

    # --------------------------------------------------------------------------- prediction
    @torch.no_grad()
    def predict(self, images: Union[np.ndarray, Sequence[np.ndarray]],
                keypoints: Union[np.ndarray, Sequence[np.ndarray]],
                boxes_xyxy: Optional[Sequence[np.ndarray]] = None,
                score: str = "official", threshold: float = 0.5,
                autocast_dtype: Optional[torch.dtype] = None) -> Union[tuple, list]:
        """Masks of the persons of one image or of a batch.

        images: (H, W, 3) uint8 BGR, or a sequence of them. keypoints: (N, 17, 3) COCO order in
        image pixels (v > 0 labelled), or one such array per image. Returns ``(masks (N, H, W)
        uint8, scores (N,))`` for one image, a list of those for a batch. score: "official"
        (1.0 for every mask, as the paper's evaluation) or "mask" (mean foreground probability
        inside the mask). With ``sampling="faithful"`` the geometry is the official one in its
        number formats: the float32 letterbox matrix, the float32 alignment fit, the mask
        matrices composed in float32 and AlignReverse by ``cv2.warpAffine``.
        """
        single = isinstance(images, np.ndarray)
        faithful = self.config.sampling == "faithful"
        images = [images] if single else list(images)
        keypoints = [keypoints] if single else list(keypoints)
        if len(images) != len(keypoints):
            raise ValueError(f"{len(images)} images but {len(keypoints)} keypoint arrays")
        device = self.mean.device
        size = self.config.input_size
        warped, m1s, kps, index, boxes = [], [], [], [], []
        for b, (image, kp) in enumerate(zip(images, keypoints)):
            w_img, m1 = letterbox(image, size, faithful)
            warped.append(torch.from_numpy(w_img))
            m1s.append(m1)
            moved = keypoints_to_input(kp, m1, faithful)
            kps.append(moved)
            index += [b] * len(moved)
            if boxes_xyxy is not None:
                box = np.asarray(boxes_xyxy[b], dtype=np.float64).reshape(-1, 4)
                corners = box.reshape(-1, 2, 2) @ m1[:2, :2].T + m1[:2, 2]
                boxes.append(corners.reshape(-1, 4))
        batch = self.normalise(torch.stack(warped).to(device))
        kp_t = torch.as_tensor(np.concatenate(kps), dtype=torch.float32, device=device)
        idx_t = torch.as_tensor(index, dtype=torch.int64, device=device)
        box_t = torch.as_tensor(np.concatenate(boxes), dtype=torch.float32, device=device) if boxes else None
        with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            logits, input_to_output = self.forward(batch, kp_t, idx_t, box_t)
        probs = logits.float().softmax(dim=1)[:, 1]
        outputs, start = [], 0
        for b, (image, m1) in enumerate(zip(images, m1s)):
            n = int((idx_t == b).sum())
            h, w = image.shape[:2]
            if faithful:  # float32 throughout, as the official m4 m3 m2 m1
                matrices = input_to_output[start:start + n].float() @ torch.as_tensor(m1, dtype=torch.float32,
                                                                                     device=device)
                pasted = paste_masks_opencv(probs[start:start + n], matrices, h, w)
            else:
                matrices = input_to_output[start:start + n].double() @ torch.as_tensor(m1, device=device)
                pasted = paste_masks(probs[start:start + n], matrices.float(), h, w)
            masks = (pasted > threshold)
            if score == "mask":
                area = masks.sum(dim=(1, 2)).clamp(min=1)
                scores = (pasted * masks).sum(dim=(1, 2)) / area
            else:
                scores = torch.ones(n, device=device)
            outputs.append((masks.to(torch.uint8).cpu().numpy(), scores.cpu().numpy()))
            start += n
        return outputs[0] if single else outputs

    # ---------------------------------------------------------------------------- checkpoints
    def checkpoint_config(self) -> dict:
        """Plain values to rebuild this model (stored in checkpoints)."""
        return {"model": asdict(self.config)}

    @classmethod
    def from_checkpoint(cls, path: Union[str, os.PathLike], device: Union[str, torch.device] = "cpu",
                        templates=None) -> "Pose2Seg":
        """A model from a checkpoint written by ``pose2seg import-weights`` or training
        (``torch.load(weights_only=True)``). Imported official weights sample "faithful".
        A checkpoint whose config or weights do not fit raises a one-line
        :class:`~pose2seg.weights.WeightsError`."""
        from pose2seg.weights import WeightsError, check_state_dict, load_checkpoint

        checkpoint = load_checkpoint(path, map_location=device)
        config = checkpoint.get("config")
        stored = config.get("model") if isinstance(config, dict) else None
        if not stored:  # imported release: the official layout and sampling
            units = config.get("segnet_units", 10) if isinstance(config, dict) else 10
            stored = {"units": units, "sampling": "faithful"}
        if not isinstance(stored, dict):
            raise WeightsError(f"{path}: config: the model settings are a {type(stored).__name__}, not a mapping")
        unknown = sorted(set(stored) - {f.name for f in fields(ModelConfig)})
        if unknown:
            raise WeightsError(f"{path}: config: unknown model setting {unknown[0]!r} (this toolkit knows "
                               f"{', '.join(f.name for f in fields(ModelConfig))})")
        try:
            model = cls(ModelConfig(**stored), templates=templates)
        except (TypeError, ValueError) as err:
            raise WeightsError(f"{path}: config: {str(err).splitlines()[0]}") from None
        check_state_dict(str(path), model, checkpoint["state_dict"])
        model.load_state_dict(checkpoint["state_dict"], strict=True)
        return model.to(device).eval()
