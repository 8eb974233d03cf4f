"""Fixtures of the real-scale tier: one OCHuman-scale native file (tests/scale/native_file.py,
seed 0: 5081 images, 13360 persons) and the files made from it, each built once per test run
in a temporary folder that the xdist workers share (a lock file orders them)."""
from __future__ import annotations

import fcntl
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from cli.ochuman_cmd import main as ochuman_main
from cli.pose2seg_cmd import main as pose2seg_main
from tests.cli.one_line_errors import RUNNER_KWARGS

from .native_file import make_native, write_native
from .oracle import TEST_FILE, VAL_FILE, NativeFacts, imperfect_results, perfect_results



def _run_folder(tmp_path_factory) -> Path:
    """A folder of this test run that every xdist worker sees."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder``, filled by ``build(folder)`` by the first worker that asks; the others wait."""
    with open(folder.with_name(folder.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".done").exists():
            shutil.rmtree(folder, ignore_errors=True)  # left by a build that failed
            folder.mkdir(parents=True)
            build(folder)
            (folder / ".done").touch()
    return folder


def invoke(command, args: list, env: dict | None = None) -> tuple[str, str]:
    """Run a click command in this process; (stdout, stderr); fails unless it exits 0."""
    result = CliRunner(**RUNNER_KWARGS).invoke(command, [str(a) for a in args], env=env)
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.stderr}{result.exception!r}"
    return result.stdout, result.stderr


@pytest.fixture(scope="session")
def ochuman_cli():
    return lambda *args, env=None: invoke(ochuman_main, list(args), env)


@pytest.fixture(scope="session")
def pose2seg_cli():
    return lambda *args, env=None: invoke(pose2seg_main, list(args), env)


@dataclass(frozen=True)
class Native:
    root: Path  # the OCHuman folder: ochuman.json and images/
    path: Path  # root / ochuman.json
    facts: NativeFacts
    show_image: int  # index of the image drawn by `ochuman show --image-id`


def _show_image(facts: NativeFacts) -> int:
    """A val image holding twins (MaxIoU 1.0, dropped by the official file) and persons kept."""
    masked = facts.masked
    for k in np.flatnonzero(facts.split == "val"):
        mi = facts.max_iou[(facts.image_of == k) & masked]
        if (mi == 1.0).any() and (mi < 1.0).any():
            return int(k)
    raise AssertionError("the generated file has no val image with twins and other persons")


def _images_to_draw(facts: NativeFacts, show_image: int) -> set:
    """Images read by the tier: the first (read_image(0)), those of the 8 most occluded masked
    persons (`show --hardest 8`), the one of `show --image-id`."""
    masked = np.flatnonzero(facts.masked)
    hardest = masked[np.argsort(-facts.max_iou[masked], kind="stable")[:8]]
    return {0, show_image, *facts.image_of[hardest].tolist()}


def _build_native(folder: Path) -> None:
    data = make_native(seed=0)
    write_native(folder / "ochuman.json", indent=4, native=data)  # indented as the real file
    facts = NativeFacts.from_native(data)
    facts.save(folder / "facts.npz")
    show_image = _show_image(facts)
    (folder / "show_image.txt").write_text(str(show_image))
    (folder / "images").mkdir()
    for k in sorted(_images_to_draw(facts, show_image)):
        height, width = facts.image_size[k]
        ramp = np.linspace(0, 255, width, dtype=np.uint8)
        pixels = np.stack([np.tile(ramp, (height, 1))] * 3, axis=-1)
        assert cv2.imwrite(str(folder / "images" / facts.file_name[k]), pixels)


@pytest.fixture(scope="session")
def native(tmp_path_factory) -> Native:
    root = built_once(_run_folder(tmp_path_factory) / "ochuman", _build_native)
    return Native(root=root, path=root / "ochuman.json", facts=NativeFacts.load(root / "facts.npz"),
                  show_image=int((root / "show_image.txt").read_text()))


@pytest.fixture(scope="session")
def coco_dir(tmp_path_factory, native) -> Path:
    """`ochuman convert ochuman.json --out coco/` (its stdout in stdout.txt)."""
    def build(folder):
        stdout, _ = invoke(ochuman_main, ["convert", native.path, "--out", folder])
        (folder / "stdout.txt").write_text(stdout)
    return built_once(_run_folder(tmp_path_factory) / "coco", build)


@pytest.fixture(scope="session")
def range_dir(tmp_path_factory, native) -> Path:
    """`ochuman convert ochuman.json --out coco/ --split val --range 0.5 0.75 --range 0.75 1`."""
    def build(folder):
        stdout, _ = invoke(ochuman_main, ["convert", native.path, "--out", folder, "--split", "val",
                                          "--range", "0.5", "0.75", "--range", "0.75", "1"])
        (folder / "stdout.txt").write_text(stdout)
    return built_once(_run_folder(tmp_path_factory) / "coco-ranges", build)


@pytest.fixture(scope="session")
def all_hard_dir(tmp_path_factory, native) -> Path:
    """Every opt-in fix at once: `convert --split all --range 0.75 1 --range-rule closed-top
    --image-ids native --area mask --with-max-iou`."""
    def build(folder):
        invoke(ochuman_main, ["convert", native.path, "--out", folder, "--split", "all", "--range", "0.75", "1",
                              "--range-rule", "closed-top", "--image-ids", "native", "--area", "mask",
                              "--with-max-iou"])
    return built_once(_run_folder(tmp_path_factory) / "coco-all-hard", build)


@dataclass(frozen=True)
class Results:
    perfect: Path  # every val person: its own box, mask and keypoints
    perfect_hard: Path  # the val persons with MaxIoU in [0.75, 1)
    perfect_mid: Path  # the val persons with MaxIoU in [0.6, 0.9)
    perfect_test: Path  # every test person
    perfect_boxes: Path  # the box of every masked val person, twins included, keyed by file name
    imperfect: Path  # segm results with misses, swaps and duplicates (oracle.imperfect_results)
    val_max_iou: np.ndarray  # (A,) stored MaxIoU of the val file's annotations, in its order


@pytest.fixture(scope="session")
def results(tmp_path_factory, native, coco_dir) -> Results:
    facts = native.facts
    val_max_iou = facts.max_iou[facts.official("val")[1]]
    in_val = np.flatnonzero(facts.masked & (facts.person_split() == "val"))

    def build(folder):
        val = json.loads((coco_dir / VAL_FILE).read_text())
        test = json.loads((coco_dir / TEST_FILE).read_text())
        files = {
            "perfect.json": perfect_results(val),
            "perfect_hard.json": perfect_results(val, val_max_iou >= 0.75),
            "perfect_mid.json": perfect_results(val, (val_max_iou >= 0.6) & (val_max_iou < 0.9)),
            "perfect_test.json": perfect_results(test),
            "imperfect.json": imperfect_results(val),
            "perfect_boxes.json": [
                {"image_id": str(name), "category_id": 1, "bbox": [float(x1), float(y1), float(x2 - x1), float(y2 - y1)],
                 "score": 1.0 - k / len(in_val)}
                for k, (name, (x1, y1, x2, y2)) in enumerate(zip(facts.file_name[facts.image_of[in_val]],
                                                                 facts.bbox[in_val].tolist()))],
        }
        for name, records in files.items():
            (folder / name).write_text(json.dumps(records))
    folder = built_once(_run_folder(tmp_path_factory) / "results", build)
    return Results(perfect=folder / "perfect.json", perfect_hard=folder / "perfect_hard.json",
                   perfect_mid=folder / "perfect_mid.json", perfect_test=folder / "perfect_test.json",
                   perfect_boxes=folder / "perfect_boxes.json", imperfect=folder / "imperfect.json",
                   val_max_iou=val_max_iou)


@pytest.fixture(scope="session")
def pycocotools_stats(tmp_path_factory, coco_dir, results) -> np.ndarray:
    """The 12 segm stats of pycocotools (COCO, loadRes, COCOeval) on the val file and the
    imperfect results: the one oracle run of the tier."""
    def build(folder):
        from ochuman.compat import quietly

        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with quietly():
            gt = COCO(str(coco_dir / VAL_FILE))
            evaluation = COCOeval(gt, gt.loadRes(str(results.imperfect)), "segm")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        np.save(folder / "stats.npy", evaluation.stats)
    return np.load(built_once(_run_folder(tmp_path_factory) / "pycocotools", build) / "stats.npy")
