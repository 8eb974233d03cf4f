"""Weights: the released layout (read off our modules), the loader rules, checkpoints, ImageNet init.

The "release" here is synthetic: exactly the official names and shapes (taken from
``_OfficialLayout().state_dict()``) filled with random values, saved with ``torch.save``.
"""
from __future__ import annotations

import fractions

import pytest
import torch
import torchvision
from click.testing import CliRunner

from cli.pose2seg_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.errors import OCHumanError
from pose2seg.backbone import ResNet50FPN
from pose2seg.weights import (
    CHECKPOINT_FORMAT,
    TORCHVISION_RESNET50_URL,
    WeightsError,
    _OfficialLayout,
    import_official_weights,
    init_backbone_from_torchvision,
    load_checkpoint,
    map_official_state_dict,
    official_state_dict_shapes,
)

pytestmark = pytest.mark.model  # the full network: make test, not make test-fast

NBT = "num_batches_tracked"


def _random_release(seed: int = 1234) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    out = {}
    for index, (key, value) in enumerate(_OfficialLayout().state_dict().items()):
        if key.endswith(NBT):
            out[key] = torch.tensor(1000 + index)
        elif key.endswith("running_var"):
            out[key] = torch.rand_like(value) + 0.5
        elif key.endswith("running_mean"):
            out[key] = 0.1 * torch.randn_like(value)
        else:
            out[key] = value + 0.01 * torch.randn_like(value)
    return out


def _variant(release, *, module=False, seg_branch=False, drop_nbt=False) -> dict:
    out = {}
    for key, value in release.items():
        if drop_nbt and key.endswith(NBT):
            continue
        if seg_branch and key.startswith("segnet."):
            key = "pose2seg.seg_branch." + key[len("segnet."):]
        out[("module." if module else "") + key] = value
    return out


def _one_line(err: BaseException) -> str:
    text = str(err)
    assert "\n" not in text and len(text) < 800, text
    return text


@pytest.fixture(scope="module")
def release() -> dict[str, torch.Tensor]:
    return _random_release()


@pytest.fixture(scope="module")
def release_file(release, tmp_path_factory):
    path = tmp_path_factory.mktemp("release") / "pose2seg_release.pkl"
    torch.save(release, path)
    return path


# --------------------------------------------------------------------------- layout


def test_our_modules_have_the_released_layout():
    layout = _OfficialLayout()
    state = layout.state_dict()
    assert len(state) == 588
    assert len([k for k in state if not k.endswith(NBT)]) == 499
    assert sum(p.numel() for p in layout.backbone.parameters()) == 26_852_416
    assert sum(p.numel() for p in layout.segnet.parameters()) == 16_030_978
    assert {k.split(".")[0] for k in state} == {"backbone", "segnet"}
    # examples from the spec
    assert state["backbone.conv1.weight"].shape == (64, 3, 7, 7)
    assert "backbone.conv1.bias" not in state
    assert state["backbone.layer2.0.conv1.weight"].shape == (128, 256, 1, 1)
    assert state["backbone.layer2.0.conv4.weight"].shape == (512, 256, 1, 1)
    assert state["backbone.fpn_c4p4.weight"].shape == (256, 2048, 1, 1)
    assert state["segnet.conv1.weight"].shape == (256, 311, 7, 7)
    assert state["segnet.layer1.9.conv1.weight"].shape == (256, 1024, 1, 1)
    assert state["segnet.decoder1.0.downsample.0.weight"].shape == (512, 1024, 1, 1)
    assert state["segnet.pred_small.weight"].shape == (2, 512, 1, 1)
    assert official_state_dict_shapes() == {k: tuple(v.shape) for k, v in state.items()}


# --------------------------------------------------------------------------- loader rules


@pytest.mark.parametrize("module, seg_branch, drop_nbt", [
    (False, False, False), (True, False, False), (False, True, False), (True, True, True),
    (False, False, True),
])
def test_loader_rules_accept_the_known_namings(release, module, seg_branch, drop_nbt):
    source = _variant(release, module=module, seg_branch=seg_branch, drop_nbt=drop_nbt)
    source["mean"] = torch.zeros(3)  # outside backbone./segnet.: ignored
    mapped = map_official_state_dict(source)
    assert list(mapped) == list(official_state_dict_shapes())
    for key, value in release.items():
        if key.endswith(NBT) and drop_nbt:
            assert mapped[key].dtype == torch.long and mapped[key].item() == 0
        else:
            assert mapped[key] is value
    assert "mean" in source  # input untouched


def test_missing_unexpected_and_misshaped_keys_are_listed_on_one_line(release):
    source = dict(release)
    del source["backbone.layer3.2.conv2.weight"]
    del source["segnet.bn1.running_var"]
    source["backbone.fc.weight"] = torch.zeros(1000, 2048)
    source["segnet.extra.bias"] = torch.zeros(2)
    source["segnet.pred_small.bias"] = torch.zeros(3)
    source["optimizer_state"] = torch.zeros(1)
    with pytest.raises(WeightsError) as info:
        map_official_state_dict(source, source="release.pkl")
    message = _one_line(info.value)
    assert isinstance(info.value, OCHumanError)
    assert message.startswith("release.pkl: ")
    assert "2 missing (backbone.layer3.2.conv2.weight, segnet.bn1.running_var)" in message
    assert "2 unexpected (backbone.fc.weight, segnet.extra.bias)" in message
    assert "1 wrong shape (segnet.pred_small.bias (3) != (2))" in message
    assert "1 ignored outside backbone./segnet. (optimizer_state)" in message


def test_a_foreign_state_dict_gives_a_short_message():
    foreign = torchvision.models.resnet18(weights=None).state_dict()
    with pytest.raises(WeightsError) as info:
        map_official_state_dict(foreign)
    message = _one_line(info.value)
    assert "499 missing (backbone.conv1.weight, " in message and "+495 more" in message
    assert f"{len(foreign)} ignored outside backbone./segnet. (conv1.weight, " in message


def test_two_names_for_one_entry_and_non_mappings_are_refused(release):
    source = dict(release)
    source["pose2seg.seg_branch.conv1.weight"] = release["segnet.conv1.weight"]
    with pytest.raises(WeightsError, match=r"two entries map to segnet\.conv1\.weight"):
        map_official_state_dict(source)
    with pytest.raises(WeightsError, match="not a state dict"):
        map_official_state_dict([torch.zeros(1)])
    source = dict(release)
    source["segnet.conv1.bias"] = [0.0] * 256
    with pytest.raises(WeightsError, match="segnet.conv1.bias is a list, not a tensor"):
        map_official_state_dict(source)


# --------------------------------------------------------------------------- import + checkpoint


@pytest.mark.parametrize("variant", ["official-names", "module-and-seg_branch-legacy-file"])
def test_imported_checkpoint_reproduces_the_release(release, tmp_path, variant):
    src = tmp_path / "pose2seg_release.pkl"
    if variant == "official-names":
        torch.save(release, src)
    else:  # torch < 1.6 file format, DataParallel prefix, older head name, no num_batches_tracked
        torch.save(_variant(release, module=True, seg_branch=True, drop_nbt=True), src,
                   _use_new_zipfile_serialization=False)
    out = tmp_path / "ckpt" / "pose2seg.pt"
    returned = import_official_weights(src, out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["pose2seg.pt"]  # no temp file left

    raw = torch.load(out, map_location="cpu", weights_only=True)
    checkpoint = load_checkpoint(out)
    assert set(raw) == set(checkpoint) == {"format", "version", "state_dict", "config"}
    assert checkpoint["format"] == CHECKPOINT_FORMAT and checkpoint["version"] == 1
    config = checkpoint["config"]
    assert config == returned["config"]
    assert config["segnet_in_channels"] == 311 and config["segnet_units"] == 10
    assert config["source"] == "pose2seg_release.pkl" and len(config["source_sha256"]) == 64
    assert all(isinstance(v, (str, int, float, bool)) for v in config.values())
    state = checkpoint["state_dict"]
    assert list(state) == list(official_state_dict_shapes())
    for key, value in release.items():
        if not key.endswith(NBT):
            assert torch.equal(state[key], value), key

    torch.manual_seed(5)
    from_checkpoint = _OfficialLayout().eval()
    from_checkpoint.load_state_dict(state, strict=True)
    direct = _OfficialLayout().eval()
    direct.load_state_dict(release, strict=True)
    image = torch.randn(1, 3, 64, 64)
    rois = torch.randn(1, 311, 32, 32)
    with torch.no_grad():
        features = direct.backbone(image)
        logits = direct.segnet(rois)
        assert torch.isfinite(features).all() and torch.isfinite(logits).all()
        assert torch.equal(from_checkpoint.backbone(image), features)
        assert torch.equal(from_checkpoint.segnet(rois), logits)


def test_failed_import_leaves_nothing(tmp_path):
    src = tmp_path / "pose2seg_release.pkl"
    torch.save({"backbone.conv1.weight": torch.zeros(64, 3, 7, 7)}, src)
    out = tmp_path / "out.pt"
    with pytest.raises(WeightsError, match="missing"):
        import_official_weights(src, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pose2seg_release.pkl"]
    with pytest.raises(WeightsError, match="is a folder"):
        import_official_weights(src, tmp_path)


def _save(path, obj, **kwargs):
    torch.save(obj, path, **kwargs)
    return path


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("make, fragment", [
    (lambda d: d / "absent.pt", "absent.pt: no such file"),
    (lambda d: _write(d / "notes.txt", b"hello\n"), "not a torch.save file"),
    (lambda d: _write(d / "empty.pt", b""), "not a torch.save file"),
    (lambda d: _save(d / "raw.pkl", {"backbone.conv1.weight": torch.zeros(1)}),
     "not a pose2seg-toolkit checkpoint (it looks like a raw state dict: run `pose2seg import-weights` first)"),
    (lambda d: _save(d / "obj.pt", {"format": CHECKPOINT_FORMAT, "x": fractions.Fraction(1, 2)}),
     "holds a fractions.Fraction object"),
    (lambda d: _save(d / "new.pt", {"format": CHECKPOINT_FORMAT, "version": 2, "state_dict": {}}),
     "checkpoint version 2 is newer"),
    (lambda d: _save(d / "nosd.pt", {"format": CHECKPOINT_FORMAT, "version": 1}),
     "no state_dict of tensors"),
    (lambda d: d, "cannot read"),
])
def test_load_checkpoint_errors_are_one_line(tmp_path, make, fragment):
    path = make(tmp_path)
    with pytest.raises(WeightsError) as info:
        load_checkpoint(path)
    assert fragment in _one_line(info.value)


# --------------------------------------------------------------------------- CLI


def test_cli_import_weights(release_file, tmp_path):
    out = tmp_path / "pose2seg.pt"
    result = CliRunner().invoke(main, ["import-weights", str(release_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "588 tensors" in result.output
    assert len(load_checkpoint(out)["state_dict"]) == 588

    bad = tmp_path / "bad.pkl"
    bad.write_text("not a pickle\n")
    for src in (bad, tmp_path / "absent.pkl"):
        result = CliRunner().invoke(main, ["import-weights", str(src), "--out", str(tmp_path / "x.pt")])
        assert result.exit_code == 1
        assert "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {src}: "), result.output
    assert not (tmp_path / "x.pt").exists()

    off_layout = tmp_path / "off.pkl"
    torch.save({"segnet.conv1.weight": torch.zeros(256, 256, 7, 7)}, off_layout)
    result = CliRunner().invoke(main, ["import-weights", str(off_layout), "--out", str(tmp_path / "x.pt")])
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    assert "wrong shape (segnet.conv1.weight (256,256,7,7) != (256,311,7,7))" in result.output


# --------------------------------------------------------------------------- ImageNet init


@pytest.fixture(scope="module")
def torchvision_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(7)
    state = torchvision.models.resnet50(weights=None).state_dict()
    # give every float tensor values no fresh backbone has
    return {k: (v + torch.rand_like(v) if v.is_floating_point() else v) for k, v in state.items()}


@pytest.mark.parametrize("name, keep_nbt, legacy", [
    ("resnet50-0676ba61.pth", True, False),
    ("resnet50-19c8e357.pth", False, True),  # the authors' file: pre-0.4.1, no num_batches_tracked
])
def test_init_backbone_from_torchvision(torchvision_state, tmp_path, name, keep_nbt, legacy):
    state = {k: v for k, v in torchvision_state.items() if keep_nbt or not k.endswith(NBT)}
    path = _save(tmp_path / name, state, _use_new_zipfile_serialization=not legacy)
    backbone = ResNet50FPN()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    init_backbone_from_torchvision(backbone, path)
    after = backbone.state_dict()
    for key, value in state.items():
        if key.startswith("fc."):
            continue
        ours = key.replace("downsample.0", "conv4").replace("downsample.1", "bn4")
        assert torch.equal(after[ours], value), ours
    for key in after:
        if key.startswith("fpn_") or (key.endswith(NBT) and not keep_nbt):
            assert torch.equal(after[key], before[key]), key
    assert not torch.equal(after["layer1.0.conv4.weight"], before["layer1.0.conv4.weight"])
    assert not torch.equal(after["layer4.2.bn3.running_var"], before["layer4.2.bn3.running_var"])


def test_missing_torchvision_file_says_where_to_get_it(tmp_path):
    path = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(WeightsError) as info:
        init_backbone_from_torchvision(ResNet50FPN(), path)
    message = _one_line(info.value)
    assert TORCHVISION_RESNET50_URL in message and "resnet50-19c8e357.pth" in message
    assert "IMAGENET1K_V1" in message and f"save it as {path}" in message


def test_wrong_architecture_is_refused(tmp_path):
    path = _save(tmp_path / "resnet18.pth", torchvision.models.resnet18(weights=None).state_dict())
    backbone = ResNet50FPN()
    before = backbone.conv1.weight.clone()
    with pytest.raises(WeightsError) as info:
        init_backbone_from_torchvision(backbone, path)
    message = _one_line(info.value)
    assert "missing (layer1.0.conv3.weight" in message
    assert "wrong shape (layer1.0.conv1.weight (64,64,3,3) != (64,64,1,1)" in message
    assert torch.equal(backbone.conv1.weight, before)


@pytest.mark.parametrize("poison", ["all-nan", "one-inf"])
def test_non_finite_weights_are_refused(release, tmp_path, poison):
    """All-NaN weights (or one infinite value) would import and then predict nothing: refused
    with one line naming the tensors; no checkpoint is written, and one already written with
    them is refused when loaded."""
    if poison == "all-nan":
        bad = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in release.items()}
    else:
        bad = dict(release)
        bad["segnet.pred_small.bias"] = torch.tensor([0.0, float("inf")])
    src = _save(tmp_path / "pose2seg_release.pkl", bad)
    out = tmp_path / "out.pt"
    result = CliRunner().invoke(main, ["import-weights", str(src), "--out", str(out)])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {src}: ") and "not finite" in lines[0], lines
    assert ("499 tensors" if poison == "all-nan" else "1 tensor (segnet.pred_small.bias)") in lines[0]
    assert not out.exists()
    ckpt = _save(tmp_path / "ckpt.pt", {"format": CHECKPOINT_FORMAT, "version": 1, "state_dict": bad})
    with pytest.raises(WeightsError, match="not finite"):
        load_checkpoint(ckpt)


class _Malicious:
    """Unpickling it would run a shell command (what a weights file from a stranger can hold)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os

        return os.system, (f"touch {self.marker}",)


def test_a_malicious_pickle_is_refused_naming_what(tmp_path):
    marker = tmp_path / "pwned"
    src = _save(tmp_path / "evil.pkl", {"backbone.conv1.weight": _Malicious(marker)})
    for args in (["import-weights", str(src), "--out", str(tmp_path / "x.pt")],
                 ["predict", "--checkpoint", str(src), "--gt", str(SAMPLE_ANNOTATIONS), "--images", str(tmp_path),
                  "--out", str(tmp_path / "x.json")]):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
        lines = result.output.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: {src}: holds a posix.system object"), lines
        assert "refused by weights_only=True" in lines[0]
    assert not marker.exists() and not (tmp_path / "x.pt").exists() and not (tmp_path / "x.json").exists()
