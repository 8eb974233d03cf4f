"""ResNet-50 + FPN backbone of Pose2Seg (the authors' ``modeling/resnet.py``, ``resnet50FPN``).

Conventions this module owns:

- **Caffe-style ("v1") bottleneck**: the downsampling stride sits on the *first 1x1 conv*
  (``conv1``) of each stage's first block, and on the projection shortcut, which is named
  ``conv4``/``bn4`` (not ``downsample.0/1``). torchvision's ResNet-50 puts the stride on the
  3x3 ``conv2`` instead: same parameter shapes, different function.
- **Names** match the released weights exactly: stem ``conv1``/``bn1``, stages
  ``layer1..layer4`` with blocks ``layerX.N.conv1/2/3`` + ``bn1/2/3`` (no conv bias), lateral
  1x1 convs ``fpn_c1p1`` (C2, 256 ch) .. ``fpn_c4p4`` (C5, 2048 ch) and 3x3 output convs
  ``fpn_p1..fpn_p4``, all FPN convs with bias.
- **Top-down path**: the coarser *lateral sum* is upsampled bilinearly (``align_corners=False``)
  to the finer level's size and added to that level's lateral; no P6.
- **Output**: only ``p1`` (stride 4, 256 channels) is used by Pose2Seg; for a 512x512 input it is
  128x128. ``fpn_p2..fpn_p4`` exist so the official state dict loads strictly, but
  :meth:`ResNet50FPN.forward` skips them (the authors compute them and discard them: they get
  no gradient either way). :meth:`ResNet50FPN.pyramid` returns all four levels.
- **Init** (authors' code): every conv weight ~ normal(0, sqrt(2 / (k * k * C_out))), conv biases
  keep torch's default, BatchNorm weight 1 and bias 0. BatchNorm is ordinary (trained, not frozen).

Shapes: input (B, 3, H, W) normalised RGB; level i has stride 2**(i+1) and 256 channels.
No ``.view`` is used, so the module runs on ``channels_last`` tensors as is.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Bottleneck", "ResNet50FPN"]

#: (blocks, mid width, out width, stride) of layer1..layer4.
_STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2), (3, 512, 2048, 2))
_FPN_CHANNELS = 256


class Bottleneck(nn.Module):
    """Caffe-style bottleneck: 1x1 (stride) -> 3x3 -> 1x1, BatchNorm after each, no conv bias.

    ``has_shortcut`` adds the projection ``conv4`` (1x1, stride) + ``bn4``; otherwise the input is
    added unchanged. (B, inplanes, H, W) -> (B, outplanes, ceil(H / stride), ceil(W / stride)).
    """

    def __init__(self, inplanes: int, planes: int, outplanes: int, stride: int = 1,
                 has_shortcut: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, outplanes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.has_shortcut = has_shortcut
        if has_shortcut:
            self.conv4 = nn.Conv2d(inplanes, outplanes, kernel_size=1, stride=stride, bias=False)
            self.bn4 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.bn4(self.conv4(x)) if self.has_shortcut else x
        return self.relu(out + identity)


def _make_stage(inplanes: int, blocks: int, planes: int, outplanes: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(inplanes, planes, outplanes, stride, has_shortcut=True)]
    layers += [Bottleneck(outplanes, planes, outplanes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


def _upsample_add(coarse: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """Bilinear (align_corners=False) resize of ``coarse`` to ``lateral``'s size, plus ``lateral``."""
    return F.interpolate(coarse, size=lateral.shape[-2:], mode="bilinear", align_corners=False) + lateral


class ResNet50FPN(nn.Module):
    """ResNet-50 [3, 4, 6, 3] (Caffe-style strides) + FPN; :meth:`forward` returns ``p1`` only.

    (B, 3, H, W) -> (B, 256, H', W') with H' = ceil(H / 4) for H divisible by 32 (128x128 for a
    512x512 input). Construct it on the device you want (``with torch.device(...)``) or move it
    with ``.to(device)``; the module never picks a device itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        inplanes = 64
        for index, (blocks, planes, outplanes, stride) in enumerate(_STAGES, start=1):
            self.add_module(f"layer{index}", _make_stage(inplanes, blocks, planes, outplanes, stride))
            inplanes = outplanes
        # Lateral 1x1 convs C2..C5 -> 256 and 3x3 output convs, in the authors' order.
        self.fpn_c4p4 = nn.Conv2d(2048, _FPN_CHANNELS, kernel_size=1)
        self.fpn_c3p3 = nn.Conv2d(1024, _FPN_CHANNELS, kernel_size=1)
        self.fpn_c2p2 = nn.Conv2d(512, _FPN_CHANNELS, kernel_size=1)
        self.fpn_c1p1 = nn.Conv2d(256, _FPN_CHANNELS, kernel_size=1)
        self.fpn_p4 = nn.Conv2d(_FPN_CHANNELS, _FPN_CHANNELS, kernel_size=3, padding=1)
        self.fpn_p3 = nn.Conv2d(_FPN_CHANNELS, _FPN_CHANNELS, kernel_size=3, padding=1)
        self.fpn_p2 = nn.Conv2d(_FPN_CHANNELS, _FPN_CHANNELS, kernel_size=3, padding=1)
        self.fpn_p1 = nn.Conv2d(_FPN_CHANNELS, _FPN_CHANNELS, kernel_size=3, padding=1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The authors' init: conv weights ~ N(0, sqrt(2 / (k*k*C_out))), BN weight 1, bias 0.

        Conv biases (FPN only) keep whatever they hold (torch's default at construction).
        """
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Conv2d):
                    fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels
                    module.weight.normal_(0.0, math.sqrt(2.0 / fan_out))
                elif isinstance(module, nn.BatchNorm2d):
                    module.weight.fill_(1.0)
                    module.bias.zero_()

    def resnet_state_dict_keys(self) -> list[str]:
        """Names of the ResNet part's state (everything but the ``fpn_*`` convs)."""
        return [key for key in self.state_dict() if not key.startswith("fpn_")]

    def _laterals(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)
        s4 = self.fpn_c4p4(c4)
        s3 = _upsample_add(s4, self.fpn_c3p3(c3))
        s2 = _upsample_add(s3, self.fpn_c2p2(c2))
        s1 = _upsample_add(s2, self.fpn_c1p1(c1))
        return s1, s2, s3, s4

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> p1 (B, 256, H/4, W/4), the only level Pose2Seg uses."""
        s1 = self._laterals(x)[0]
        return self.fpn_p1(s1)

    def pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """All four levels (p1, p2, p3, p4), strides 4, 8, 16, 32, as the authors' forward."""
        s1, s2, s3, s4 = self._laterals(x)
        return self.fpn_p1(s1), self.fpn_p2(s2), self.fpn_p3(s3), self.fpn_p4(s4)
