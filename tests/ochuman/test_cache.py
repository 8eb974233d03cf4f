"""The ground-truth cache: a cached ground truth equals a fresh one; stale or unusable caches
are not used."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ochuman.benchmark import GroundTruth, evaluate_results, resolve_ground_truth


def _assert_same(a: GroundTruth, b: GroundTruth) -> None:
    for name in ("image_id", "category_id", "ann_id", "bbox", "area", "iscrowd", "score", "keypoints",
                 "num_keypoints", "file_image_ids", "mask_size"):
        x, y = getattr(a.annotations, name), getattr(b.annotations, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.annotations.counts is None) == (b.annotations.counts is None)
    if a.annotations.counts is not None:
        assert list(a.annotations.counts) == list(b.annotations.counts)
        np.testing.assert_array_equal(a.annotations.masks.areas, b.annotations.masks.areas)
    for name in ("image_ids", "image_sizes", "max_iou", "official", "extra"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.file_names, a.source, a.split, a.max_iou_source) == (b.file_names, b.source, b.split, b.max_iou_source)


@pytest.fixture()
def native_copy(native_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("OCHUMAN_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "ochuman.json"
    shutil.copy(native_sample, path)
    return path


@pytest.mark.parametrize("masks", [True, False])
@pytest.mark.parametrize("split", ["val", "test"])
def test_cached_ground_truth_equals_a_fresh_one(native_copy, tmp_path, monkeypatch, split, masks):
    first = resolve_ground_truth(gt=native_copy, split=split, masks=masks)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    cached = resolve_ground_truth(gt=native_copy, split=split, masks=masks)
    monkeypatch.setenv("OCHUMAN_CACHE", "off")
    fresh = resolve_ground_truth(gt=native_copy, split=split, masks=masks)
    _assert_same(first, fresh)
    _assert_same(cached, fresh)


def test_reports_are_the_same_with_the_cache(native_copy, monkeypatch):
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [10, 10, 100, 200]}]
    rows = [evaluate_results(results, gt=native_copy, iou_type="bbox").rows() for _ in range(2)]
    monkeypatch.setenv("OCHUMAN_CACHE", "off")
    assert rows[0] == rows[1] == evaluate_results(results, gt=native_copy, iou_type="bbox").rows()


def test_a_changed_file_is_not_served_from_the_cache(native_copy, tmp_path):
    resolve_ground_truth(gt=native_copy)
    text = native_copy.read_text()
    native_copy.write_text(text.replace('"max_iou": ', '"max_iou":  ', 1))  # same data, new size and time
    resolve_ground_truth(gt=native_copy)
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_corrupt_or_unwritable_cache_is_ignored(native_copy, tmp_path, monkeypatch):
    fresh = resolve_ground_truth(gt=native_copy)
    (entry,) = (tmp_path / "cache").iterdir()
    entry.write_bytes(b"not a zip file")
    _assert_same(resolve_ground_truth(gt=native_copy), fresh)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv("OCHUMAN_CACHE", str(blocked))
    _assert_same(resolve_ground_truth(gt=native_copy), fresh)


def test_coco_files_are_not_cached(ochuman_coco_sample, tmp_path, monkeypatch):
    monkeypatch.setenv("OCHUMAN_CACHE", str(tmp_path / "cache"))
    resolve_ground_truth(gt=ochuman_coco_sample)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())
    assert os.environ["OCHUMAN_CACHE"].endswith("cache")


def test_a_cache_file_holding_another_key_is_a_miss(native_copy, tmp_path, monkeypatch):
    from ochuman import cache

    fresh = resolve_ground_truth(gt=native_copy, split="val")
    (entry,) = (tmp_path / "cache").iterdir()
    # Another key written under this file's name (as a CRC-32 clash would): not served.
    monkeypatch.setattr(cache, "_entry", lambda path, split, masks: (entry, "another key"))
    other = resolve_ground_truth(gt=native_copy, split="test")
    assert other.split == "test" and fresh.split == "val"  # the val ground truth was not served
