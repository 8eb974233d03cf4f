"""SegModule: the Pose2Seg segmentation head (the authors' ``modeling/seg_module.py``,
``resnet10units(311)``, held by the model as ``segnet``).

Layout (names match the released weights)::

    conv1 7x7/2 pad 3 (bias) -> bn1 -> ReLU               (N, 256, 32, 32)
    layer1: `units` bottlenecks, planes 256, expansion 4  (N, 1024, 32, 32)
            block 0 has the projection downsample.0 (1x1 conv, bias) + downsample.1 (BN)
    upsample: bilinear x2, align_corners=True             (N, 1024, 64, 64)
    decoder1: 1 bottleneck, planes 128, projection 1024 -> 512   (N, 512, 64, 64)
    pred_small: 1x1 conv (bias) -> 2 channels             (N, 2, 64, 64) background/foreground logits

Input: (N, in_channels, 64, 64), the 256 aligned feature channels followed by the 55 skeleton
channels (311 in all). Every conv has a bias; all strides inside the bottlenecks are 1.
Parameters keep torch's default init, as in the authors' code. The paper's Table 4 varies
``units`` (5/10/15/20); the released weights use 10.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["SegBottleneck", "SegModule"]

_EXPANSION = 4


class SegBottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 bottleneck with conv biases and BatchNorm, stride 1.

    (N, inplanes, H, W) -> (N, planes * 4, H, W). When ``inplanes != planes * 4`` the shortcut is
    ``downsample`` = Sequential(1x1 conv with bias, BatchNorm), else the identity.
    """

    expansion = _EXPANSION

    def __init__(self, inplanes: int, planes: int) -> None:
        super().__init__()
        outplanes = planes * _EXPANSION
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=True)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, outplanes, kernel_size=1, bias=True)
        self.bn3 = nn.BatchNorm2d(outplanes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if inplanes != outplanes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, outplanes, kernel_size=1, bias=True),
                nn.BatchNorm2d(outplanes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _make_layer(inplanes: int, planes: int, blocks: int) -> nn.Sequential:
    layers = [SegBottleneck(inplanes, planes)]
    layers += [SegBottleneck(planes * _EXPANSION, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class SegModule(nn.Module):
    """Pose2Seg head: (N, in_channels, 64, 64) aligned features -> (N, 2, 64, 64) logits.

    ``units``: number of bottlenecks in ``layer1`` (10 in the release, >= 1). The output size is
    the input size for even H and W.
    """

    def __init__(self, in_channels: int = 311, units: int = 10) -> None:
        super().__init__()
        if units < 1:
            raise ValueError(f"SegModule needs units >= 1, got {units}")
        self.in_channels = in_channels
        self.units = units
        self.conv1 = nn.Conv2d(in_channels, 256, kernel_size=7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(256)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _make_layer(256, 256, units)
        self.upsample = nn.UpsamplingBilinear2d(scale_factor=2)  # align_corners=True
        self.decoder1 = _make_layer(256 * _EXPANSION, 128, 1)
        self.pred_small = nn.Conv2d(128 * _EXPANSION, 2, kernel_size=1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.upsample(x)
        x = self.decoder1(x)
        return self.pred_small(x)
