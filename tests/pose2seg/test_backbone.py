"""ResNet50FPN: shapes, Caffe-style stride placement, names, init, channels_last."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from pose2seg.backbone import Bottleneck, ResNet50FPN

pytestmark = pytest.mark.model  # the full network: make test, not make test-fast


@pytest.fixture(scope="module")
def backbone() -> ResNet50FPN:
    torch.manual_seed(0)
    return ResNet50FPN().eval()


def test_forward_is_p1_at_stride_4(backbone):
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        p1 = backbone(x)
        levels = backbone.pyramid(x)
    assert p1.shape == (2, 256, 32, 32)
    assert [tuple(p.shape) for p in levels] == [(2, 256, 32, 32), (2, 256, 16, 16),
                                                (2, 256, 8, 8), (2, 256, 4, 4)]
    assert torch.equal(p1, levels[0])


def test_stride_sits_on_the_first_1x1_conv(backbone):
    for index in (1, 2, 3, 4):
        stage = getattr(backbone, f"layer{index}")
        stride = (1, 1) if index == 1 else (2, 2)
        first = stage[0]
        assert first.conv1.stride == stride and first.conv1.kernel_size == (1, 1)
        assert first.conv4.stride == stride
        assert first.conv2.stride == (1, 1) and first.conv3.stride == (1, 1)
        for block in list(stage)[1:]:
            assert not block.has_shortcut and not hasattr(block, "conv4")
            assert {block.conv1.stride, block.conv2.stride, block.conv3.stride} == {(1, 1)}


def test_strided_block_equals_the_unstrided_block_on_every_other_pixel():
    # Oracle for "stride on the 1x1": a 1x1 conv with stride 2 only reads every other pixel,
    # so the whole block is the stride-1 block applied to x[..., ::2, ::2]. With torchvision's
    # placement (stride on the 3x3) this identity does not hold.
    torch.manual_seed(1)
    strided = Bottleneck(32, 16, 64, stride=2, has_shortcut=True).eval()
    plain = Bottleneck(32, 16, 64, stride=1, has_shortcut=True).eval()
    plain.load_state_dict(strided.state_dict())
    x = torch.randn(2, 32, 14, 14)
    with torch.no_grad():
        torch.testing.assert_close(strided(x), plain(x[..., ::2, ::2]), rtol=1e-5, atol=1e-6)


def test_names_shapes_and_biases(backbone):
    state = backbone.state_dict()
    assert state["conv1.weight"].shape == (64, 3, 7, 7) and "conv1.bias" not in state
    assert state["layer2.0.conv1.weight"].shape == (128, 256, 1, 1)
    assert state["layer2.0.conv4.weight"].shape == (512, 256, 1, 1)
    assert state["layer4.2.bn3.running_var"].shape == (2048,)
    for name, channels in (("fpn_c1p1", 256), ("fpn_c2p2", 512), ("fpn_c3p3", 1024), ("fpn_c4p4", 2048)):
        assert state[f"{name}.weight"].shape == (256, channels, 1, 1)
        assert state[f"{name}.bias"].shape == (256,)
    for level in (1, 2, 3, 4):
        assert state[f"fpn_p{level}.weight"].shape == (256, 256, 3, 3)
    assert not any("downsample" in key for key in state)
    for name, module in backbone.named_modules():
        if isinstance(module, nn.Conv2d):
            assert (module.bias is not None) == name.startswith("fpn_"), name
    assert len([k for k in state if k.startswith("layer")]) == 16 * 18 + 4 * 6  # 16 blocks, 4 shortcuts
    assert set(backbone.resnet_state_dict_keys()) == {k for k in state if not k.startswith("fpn_")}


def test_init_follows_the_authors(backbone):
    conv = backbone.layer4[0].conv2  # 2.4 M weights
    expected_std = math.sqrt(2.0 / (3 * 3 * 512))
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.01)
    assert abs(conv.weight.mean().item()) < 0.01 * expected_std
    fpn = backbone.fpn_c4p4.weight
    assert fpn.std().item() == pytest.approx(math.sqrt(2.0 / 256), rel=0.01)
    for module in backbone.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)


def test_channels_last_gives_the_same_features():
    torch.manual_seed(2)
    model = ResNet50FPN().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    assert out.shape == (1, 256, 16, 16)
    scale = reference.abs().max()
    torch.testing.assert_close(out / scale, reference / scale, rtol=1e-4, atol=1e-5)


def test_only_p1_gets_gradients_in_train_mode():
    torch.manual_seed(3)
    model = ResNet50FPN().train()
    model(torch.randn(2, 3, 64, 64)).square().mean().backward()
    assert model.fpn_p1.weight.grad is not None and model.conv1.weight.grad is not None
    assert model.fpn_c4p4.weight.grad is not None
    for level in (2, 3, 4):
        assert getattr(model, f"fpn_p{level}").weight.grad is None
