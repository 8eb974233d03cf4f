"""Shared fixtures: the real data samples in ../shared/data.

A test that needs them skips with a reason when they are missing, except under CI=true,
where a missing sample is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Ground-truth caches of the whole run (CLI subprocesses included) go to a temporary folder."""
    previous = os.environ.get("OCHUMAN_CACHE")
    os.environ["OCHUMAN_CACHE"] = str(tmp_path_factory.mktemp("ochuman-cache"))
    yield
    if previous is None:
        os.environ.pop("OCHUMAN_CACHE", None)
    else:
        os.environ["OCHUMAN_CACHE"] = previous


def _require(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"shared sample {path} is missing (expected ../shared/data beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def native_sample() -> Path:
    """Native OCHuman sample: 10 images, 29 persons, the authors' stored max_iou."""
    return _require("ochuman-sample/annotations/ochuman.json")


@pytest.fixture(scope="session")
def native_sample_images() -> Path:
    return _require("ochuman-sample/images")


@pytest.fixture(scope="session")
def ochuman_coco_sample() -> Path:
    """COCO-format OCHuman sample made by the official converter (3 images, 5 persons)."""
    return _require("ochuman-coco-sample/ochuman_coco_format_sample.json")


@pytest.fixture(scope="session")
def coco_sample() -> Path:
    """4 COCO val2017 images, 14 persons with polygons and keypoints."""
    return _require("coco-sample/person_keypoints_sample.json")


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """36 real COCO train2017 images with persons (172 annotations, 5 crowd regions)."""
    return _require("coco-mini/annotations/person_keypoints_train2017.json")
