"""Weights: the authors' released state dict, toolkit checkpoints, ImageNet init. No network, ever.

Conventions this module owns:

- **Official layout.** The release (``pose2seg_release.pkl``, a ``torch.save``'d state dict) holds
  ``backbone.*`` (:class:`~pose2seg.backbone.ResNet50FPN`) and ``segnet.*``
  (:class:`~pose2seg.segmodule.SegModule` with 311 input channels and 10 units). The expected
  names and shapes are read off :class:`_OfficialLayout`, never typed by hand: 588 entries
  (499 without ``num_batches_tracked``).
- **Loader rules** (:func:`map_official_state_dict`, a superset of the authors' ``Pose2Seg.init``):
  strip a leading ``module.`` (DataParallel); rename a leading ``pose2seg.seg_branch.`` (older
  naming) to ``segnet.``; keep ``num_batches_tracked`` when present, fill it with 0 when absent
  (the authors drop it and keep the model's own, which only matters with ``momentum=None``);
  ignore keys outside ``backbone.``/``segnet.``; then check strictly: any missing, unexpected or
  mis-shaped key raises :class:`WeightsError` with a one-line message listing them, and so do
  NaN or infinite values (all-NaN weights would import and then predict nothing).
- **Toolkit checkpoint**: ``{"format": "pose2seg-toolkit", "version": 1, "state_dict": {name:
  tensor}, "config": {plain values}}``, written atomically, read with ``weights_only=True``.
  State-dict names are the model's (``backbone.*``, ``segnet.*``).
- **Every file is read with** ``torch.load(..., weights_only=True)``: tensors and plain containers
  only; a file holding other objects is refused with a :class:`WeightsError` naming the object.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from ochuman.errors import OCHumanError
from ochuman.io import atomic_write
from pose2seg.backbone import ResNet50FPN
from pose2seg.segmodule import SegModule

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "TORCHVISION_RESNET50_URL",
    "TORCHVISION_RESNET50_URL_OLD",
    "WeightsError",
    "check_state_dict",
    "import_official_weights",
    "init_backbone_from_torchvision",
    "load_checkpoint",
    "map_official_state_dict",
    "official_state_dict_shapes",
]

log = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]

CHECKPOINT_FORMAT = "pose2seg-toolkit"
CHECKPOINT_VERSION = 1
#: torchvision ``ResNet50_Weights.IMAGENET1K_V1``.
TORCHVISION_RESNET50_URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
#: The same ImageNet weights under their older name, the file the authors converted.
TORCHVISION_RESNET50_URL_OLD = "https://download.pytorch.org/models/resnet50-19c8e357.pth"

_PREFIXES = ("backbone.", "segnet.")
_NBT = "num_batches_tracked"
_SHOWN = 4  # keys listed per category in an error message


class WeightsError(OCHumanError):
    """A weights file is missing, unreadable, or does not match the expected layout."""


class _OfficialLayout(nn.Module):
    """The parameter-holding part of the authors' ``Pose2Seg`` module, as released."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = ResNet50FPN()
        self.segnet = SegModule(in_channels=311, units=10)


@functools.lru_cache(maxsize=1)
def _official_shapes() -> tuple[tuple[str, tuple[int, ...]], ...]:
    with torch.device("meta"):  # shapes only: nothing is allocated
        layout = _OfficialLayout()
    return tuple((key, tuple(value.shape)) for key, value in layout.state_dict().items())


def official_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Name -> shape of every entry of the released state dict (588, in module order)."""
    return dict(_official_shapes())


# --------------------------------------------------------------------------- messages


def _shape(shape: Any) -> str:
    return "(" + ",".join(str(int(n)) for n in shape) + ")"


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOWN])
    more = f", +{len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return f"{len(items)} {label} ({shown}{more})"


def _check_layout(where: str, layout: Mapping[str, tuple[int, ...]], found: Mapping[str, Any],
                  optional: tuple[str, ...] = (), ignored: list[str] | None = None) -> None:
    """Raise one :class:`WeightsError` listing missing, unexpected and mis-shaped keys."""
    missing = [k for k in layout if k not in found and not k.endswith(optional)]
    unexpected = [k for k in found if k not in layout]
    wrong = []
    for key, value in found.items():
        if key not in layout:
            continue
        if not isinstance(value, torch.Tensor):
            wrong.append(f"{key} is a {type(value).__name__}, not a tensor")
        elif tuple(value.shape) != layout[key]:
            wrong.append(f"{key} {_shape(value.shape)} != {_shape(layout[key])}")
    if not (missing or unexpected or wrong):
        return
    parts = [_listing(label, items) for label, items in
             (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)) if items]
    if ignored:
        parts.append(_listing("ignored outside backbone./segnet.", ignored))
    raise WeightsError(f"{where}: does not match the expected layout: " + "; ".join(parts))


def _check_finite(where: str, state: Mapping[str, torch.Tensor]) -> None:
    """Raise one :class:`WeightsError` naming the tensors holding NaN or infinite values."""
    bad = [key for key, value in state.items()
           if value.is_floating_point() and not bool(torch.isfinite(value).all())]
    if bad:
        raise WeightsError(f"{where}: values are not finite (NaN or infinite) in "
                           + _listing("tensor" if len(bad) == 1 else "tensors", bad))


def check_state_dict(where: str, module: nn.Module, state_dict: Mapping[str, Any]) -> None:
    """Raise one :class:`WeightsError` (``where: ...``) listing the entries of ``state_dict``
    that ``module`` lacks, the ones missing, and the ones whose shape differs."""
    _check_layout(where, {key: tuple(value.shape) for key, value in module.state_dict().items()}, state_dict)


# --------------------------------------------------------------------------- official release


def _rename(key: str) -> str:
    if key.startswith("module."):
        key = key[len("module."):]
    if key.startswith("pose2seg.seg_branch."):
        key = "segnet." + key[len("pose2seg.seg_branch."):]
    return key


def map_official_state_dict(state_dict: Mapping[str, Any], *,
                            source: PathLike | None = None) -> dict[str, torch.Tensor]:
    """The authors' state dict -> our names, checked strictly against the official layout.

    Returns a new dict (588 entries, module order) whose values are the input's tensors (not
    copies); ``num_batches_tracked`` is filled with ``tensor(0)`` where absent. ``source`` only
    names the file in error messages. Raises :class:`WeightsError` (one line) on a key clash after
    renaming, or on missing, unexpected (under ``backbone.``/``segnet.``) or mis-shaped entries;
    the message also counts the ignored keys outside those prefixes.
    """
    where = str(source) if source is not None else "state dict"
    if not isinstance(state_dict, Mapping):
        raise WeightsError(f"{where}: not a state dict (found a {type(state_dict).__name__})")
    layout = official_state_dict_shapes()
    renamed: dict[str, Any] = {}
    ignored: list[str] = []
    for raw_key, value in state_dict.items():
        key = _rename(str(raw_key))
        if not key.startswith(_PREFIXES):
            ignored.append(str(raw_key))
            continue
        if key in renamed:
            raise WeightsError(f"{where}: two entries map to {key} (one of them is {raw_key})")
        renamed[key] = value
    _check_layout(where, layout, renamed, optional=(_NBT,), ignored=ignored)
    _check_finite(where, renamed)
    if ignored:
        log.info("%s: ignored %d keys outside backbone./segnet.", where, len(ignored))
    out: dict[str, torch.Tensor] = {}
    for key in layout:
        value = renamed.get(key)
        out[key] = value if value is not None else torch.zeros((), dtype=torch.long)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def import_official_weights(src_path: PathLike, out_path: PathLike) -> dict[str, Any]:
    """Convert the authors' ``pose2seg_release.pkl`` into a toolkit checkpoint at ``out_path``.

    The source is read with ``weights_only=True`` onto the CPU and mapped by
    :func:`map_official_state_dict`; the checkpoint is written atomically and returned. Raises
    :class:`WeightsError` (one line) when the source is missing, unreadable or off-layout.
    """
    src = Path(src_path)
    if Path(out_path).is_dir():
        raise WeightsError(f"{out_path}: is a folder; name the checkpoint file to write")
    state = map_official_state_dict(_torch_load(src, "cpu"), source=src)
    config = {
        "backbone": "resnet50-fpn",
        "segnet_in_channels": int(state["segnet.conv1.weight"].shape[1]),
        "segnet_units": sum(1 for key in state if key.endswith(".conv1.weight")
                            and key.startswith("segnet.layer1.")),
        "source": src.name,
        "source_sha256": _sha256(src),
    }
    checkpoint = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                  "state_dict": state, "config": config}
    with atomic_write(out_path, "wb") as handle:
        torch.save(checkpoint, handle)
    log.info("%s: wrote %d tensors from %s", out_path, len(state), src)
    return checkpoint


# --------------------------------------------------------------------------- files


def _torch_load(path: Path, map_location: Any) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line :class:`WeightsError` on failure."""
    if not path.exists():
        raise WeightsError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except OSError as err:
        raise WeightsError(f"{path}: cannot read: {err.strerror or err}") from None
    except pickle.UnpicklingError as err:
        # "Unsupported global: GLOBAL fractions.Fraction ..." or, for a blocked module (os,
        # subprocess, builtins...), "unsupported GLOBAL posix.system whose module posix is blocked"
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL (\S+)", str(err))
        if found:
            raise WeightsError(f"{path}: holds a {found.group(1)} object, not only tensors and "
                               "plain values (refused by weights_only=True)") from None
        raise WeightsError(f"{path}: not a torch.save file ({_first_line(err)})") from None
    except Exception as err:  # noqa: BLE001 - torch.load raises KeyError, EOFError, RuntimeError...
        raise WeightsError(f"{path}: not a torch.save file ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else ""
    line = line if len(line) <= 160 else line[:157] + "..."
    return f"{type(err).__name__}: {line}" if line else type(err).__name__


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Read a toolkit checkpoint (``weights_only=True``) and check its envelope.

    Returns ``{"format", "version", "state_dict", "config", ...}`` with tensors on
    ``map_location``. Raises :class:`WeightsError` for a missing file, a file torch cannot read,
    weights that are not finite, or one that is not a ``pose2seg-toolkit`` checkpoint (e.g. the
    authors' raw ``.pkl``: import it first with :func:`import_official_weights`).
    """
    path = Path(path)
    obj = _torch_load(path, map_location)
    if not isinstance(obj, Mapping) or obj.get("format") != CHECKPOINT_FORMAT:
        hint = ""
        if isinstance(obj, Mapping) and any(str(k).startswith(("backbone.", "module.", "segnet."))
                                            for k in obj):
            hint = " (it looks like a raw state dict: run `pose2seg import-weights` first)"
        raise WeightsError(f"{path}: not a {CHECKPOINT_FORMAT} checkpoint{hint}")
    version = obj.get("version")
    if not isinstance(version, int) or version < 1:
        raise WeightsError(f"{path}: bad checkpoint version {version!r}")
    if version > CHECKPOINT_VERSION:
        raise WeightsError(f"{path}: checkpoint version {version} is newer than this toolkit "
                           f"reads ({CHECKPOINT_VERSION})")
    state = obj.get("state_dict")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsError(f"{path}: checkpoint has no state_dict of tensors")
    _check_finite(str(path), state)
    return dict(obj)


# --------------------------------------------------------------------------- ImageNet init


def init_backbone_from_torchvision(backbone: ResNet50FPN, path: PathLike) -> None:
    """Load torchvision's ImageNet ResNet-50 from a LOCAL file into ``backbone``'s ResNet part.

    ``path``: ``resnet50-0676ba61.pth`` (``ResNet50_Weights.IMAGENET1K_V1``) or its older name
    ``resnet50-19c8e357.pth`` (what the authors converted); nothing is downloaded. As the
    authors did, ``downsample.0/1`` become ``conv4``/``bn4`` and ``fc`` is dropped; the ``fpn_*``
    convs keep their init. Tensors are copied into the backbone's own (device and dtype kept).

    Behaviour note: torchvision trains ResNet-50 with the stride on the 3x3 ``conv2``, this
    backbone (like the authors') has it on the first 1x1 ``conv1``. The shapes are the same, so
    the weights load, but the loaded network computes a slightly different function than
    torchvision's; it is a starting point for training, not an ImageNet classifier.

    Raises :class:`WeightsError` when the file is missing (naming where to get it), unreadable,
    or not a ResNet-50 state dict.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsError(
            f"{path}: no such file; download torchvision's ResNet-50 ImageNet weights "
            f"(ResNet50_Weights.IMAGENET1K_V1) from {TORCHVISION_RESNET50_URL} (or the older "
            f"{TORCHVISION_RESNET50_URL_OLD}) on a machine with network access and save it as {path}")
    source = _torch_load(path, "cpu")
    if not isinstance(source, Mapping):
        raise WeightsError(f"{path}: not a state dict (found a {type(source).__name__})")
    renamed: dict[str, Any] = {}
    for raw_key, value in source.items():
        key = str(raw_key)
        if key.startswith("fc."):
            continue
        renamed[key.replace("downsample.0", "conv4").replace("downsample.1", "bn4")] = value
    target = backbone.state_dict()
    layout = {key: tuple(target[key].shape) for key in backbone.resnet_state_dict_keys()}
    _check_layout(str(path), layout, renamed, optional=(_NBT,))
    target.update(renamed)
    backbone.load_state_dict(target, strict=True)
    log.info("%s: loaded %d ImageNet tensors into the backbone", path, len(renamed))
