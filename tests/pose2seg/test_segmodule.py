"""SegModule: shapes, names of the released layout, units, composition."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pose2seg.segmodule import SegModule

pytestmark = pytest.mark.model  # the network's head at full size: make test, not make test-fast


@pytest.fixture(scope="module")
def head() -> SegModule:
    torch.manual_seed(0)
    return SegModule().eval()


def test_64x64_in_64x64_two_logits_out(head):
    with torch.no_grad():
        out = head(torch.randn(2, 311, 64, 64))
    assert out.shape == (2, 2, 64, 64)
    assert torch.isfinite(out).all()


def test_layout_of_the_release(head):
    state = head.state_dict()
    assert state["conv1.weight"].shape == (256, 311, 7, 7) and state["conv1.bias"].shape == (256,)
    assert head.conv1.stride == (2, 2) and head.conv1.padding == (3, 3)
    assert len(head.layer1) == 10
    for index, block in enumerate(head.layer1):
        cin = 256 if index == 0 else 1024
        assert state[f"layer1.{index}.conv1.weight"].shape == (256, cin, 1, 1)
        assert state[f"layer1.{index}.conv2.weight"].shape == (256, 256, 3, 3)
        assert state[f"layer1.{index}.conv3.weight"].shape == (1024, 256, 1, 1)
        assert state[f"layer1.{index}.bn3.running_mean"].shape == (1024,)
        assert (block.downsample is not None) == (index == 0)
    assert state["layer1.0.downsample.0.weight"].shape == (1024, 256, 1, 1)
    assert state["layer1.0.downsample.0.bias"].shape == (1024,)
    assert state["layer1.0.downsample.1.running_var"].shape == (1024,)
    assert state["decoder1.0.conv1.weight"].shape == (128, 1024, 1, 1)
    assert state["decoder1.0.conv3.weight"].shape == (512, 128, 1, 1)
    assert state["decoder1.0.downsample.0.weight"].shape == (512, 1024, 1, 1)
    assert state["decoder1.0.downsample.1.weight"].shape == (512,)
    assert state["pred_small.weight"].shape == (2, 512, 1, 1) and state["pred_small.bias"].shape == (2,)
    for name, module in head.named_modules():
        if isinstance(module, nn.Conv2d):
            assert module.bias is not None, name
    assert isinstance(head.upsample, nn.UpsamplingBilinear2d) and head.upsample.align_corners


def test_units_and_in_channels_are_options():
    small = SegModule(in_channels=256, units=5)
    assert len(small.layer1) == 5 and small.conv1.in_channels == 256
    with pytest.raises(ValueError, match="units"):
        SegModule(units=0)


def test_torch_default_init(head):
    bound = 1.0 / math.sqrt(311 * 7 * 7)  # kaiming_uniform(a=sqrt(5)) bound
    assert head.conv1.weight.abs().max().item() <= bound
    assert head.conv1.weight.abs().max().item() > 0.9 * bound


def test_forward_is_the_documented_composition(head):
    x = torch.randn(1, 311, 16, 16)
    with torch.no_grad():
        y = F.relu(head.bn1(head.conv1(x)))
        y = head.layer1(y)
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=True)
        y = head.pred_small(head.decoder1(y))
        out = head(x)
    assert out.shape == (1, 2, 16, 16)
    assert torch.equal(out, y)
