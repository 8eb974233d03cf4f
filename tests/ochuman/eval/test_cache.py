"""The ground-truth cache: a cached ground truth equals a fresh one; stale or unusable caches
are not used."""
from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from ochuman.eval.ground_truth import GroundTruth
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.run import evaluate_results


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
    for name in ("image_ids", "image_sizes", "max_iou", "official", "extra", "keypoint_codes"):
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
    # the old entry was replaced, not kept beside the new one
    assert len(list((tmp_path / "cache").iterdir())) == 1


def _edit_in_place_keeping_size_and_time(path) -> None:
    """Change one stored MaxIoU digit, then restore size and modification time (as cp -p,
    rsync -t and tar x do)."""
    before = path.stat()
    text = path.read_text()
    at = text.index('"max_iou": 0.') + len('"max_iou": 0.')
    digit = "1" if text[at] != "1" else "2"
    path.write_text(text[:at] + digit + text[at + 1:])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("through", ["path", "prefetched"])
def test_a_file_edited_with_the_same_size_and_time_is_not_served_from_the_cache(native_copy, monkeypatch, through):
    from ochuman.scan import PrefetchedAnnotations

    def gt():
        return PrefetchedAnnotations(native_copy) if through == "prefetched" else native_copy

    old = resolve_ground_truth(gt=gt())
    _edit_in_place_keeping_size_and_time(native_copy)
    served = resolve_ground_truth(gt=gt())
    monkeypatch.setenv("OCHUMAN_CACHE", "off")
    fresh = resolve_ground_truth(gt=native_copy)
    assert not np.array_equal(old.max_iou, fresh.max_iou)
    _assert_same(served, fresh)
    monkeypatch.undo()


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
    from ochuman.eval import cache

    fresh = resolve_ground_truth(gt=native_copy, split="val")
    (entry,) = (tmp_path / "cache").iterdir()
    # Another key written under this file's name (as a CRC-32 clash would): not served.
    monkeypatch.setattr(cache, "_slot", lambda path, split, masks: entry)
    other = resolve_ground_truth(gt=native_copy, split="test")
    assert other.split == "test" and fresh.split == "val"  # the val ground truth was not served


def _rewrite_entry(entry, change) -> None:
    """Rewrite a cache file with ``change(arrays)`` applied, keeping its key (a valid .npz)."""
    with np.load(entry, allow_pickle=True) as stored:
        arrays = {name: stored[name] for name in stored.files}
    change(arrays)
    with open(entry, "wb") as handle:
        np.savez(handle, **arrays)


def _truncate(entry) -> None:
    data = entry.read_bytes()
    entry.write_bytes(data[:len(data) // 2])


CORRUPTIONS = {
    "empty file": lambda entry: entry.write_bytes(b""),
    "truncated": _truncate,
    "a byte flipped": lambda entry: entry.write_bytes(
        (lambda d: d[:len(d) // 2] + bytes([d[len(d) // 2] ^ 0xFF]) + d[len(d) // 2 + 1:])(entry.read_bytes())),
    "an array missing": lambda entry: _rewrite_entry(entry, lambda a: a.pop("bbox")),
    "wrong dtype": lambda entry: _rewrite_entry(entry, lambda a: a.update(image_id=a["image_id"].astype(np.float64))),
    "wrong shape": lambda entry: _rewrite_entry(entry, lambda a: a.update(bbox=a["bbox"][:, :3])),
    "wrong length": lambda entry: _rewrite_entry(entry, lambda a: a.update(max_iou=a["max_iou"][:-1])),
    "lengths beyond the text": lambda entry: _rewrite_entry(
        entry, lambda a: a.update(count_lengths=a["count_lengths"] + 1000)),
    "an image id out of the images": lambda entry: _rewrite_entry(
        entry, lambda a: a.update(image_id=a["image_id"] + 1000)),
    "no masks where masks were asked for": lambda entry: _rewrite_entry(
        entry, lambda a: (a.pop("counts"), a.pop("count_lengths"))),
    "pickled arrays": lambda entry: _rewrite_entry(entry, lambda a: a.update(text=a["text"].astype(object))),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_a_cache_file_that_does_not_load_is_a_miss(native_copy, tmp_path, monkeypatch, corruption):
    fresh = resolve_ground_truth(gt=native_copy)
    (entry,) = (tmp_path / "cache").iterdir()
    CORRUPTIONS[corruption](entry)
    _assert_same(resolve_ground_truth(gt=native_copy), fresh)
    _assert_same(resolve_ground_truth(gt=native_copy), fresh)  # rewritten whole, then served


def test_a_cache_file_that_does_not_load_is_a_miss_in_the_cli(native_copy, tmp_path):
    import json
    import subprocess
    import sys

    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [10, 10, 100, 200]}]))
    command = [sys.executable, "-c", "from cli.ochuman_cmd import run; run()", "eval", "--gt", str(native_copy),
               "--results", str(results), "--iou-type", "bbox", "--format", "json"]
    env = {**os.environ, "OCHUMAN_CACHE": str(tmp_path / "cache")}
    first = subprocess.run(command, capture_output=True, text=True, env=env)
    assert first.returncode == 0, first.stderr
    for entry in (tmp_path / "cache").iterdir():
        entry.write_bytes(b"")
    again = subprocess.run(command, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "Aborted" not in again.stderr, again.stderr
    assert again.stdout == first.stdout


@pytest.mark.parametrize("through", ["path", "prefetched"])
def test_an_unchanged_file_is_served_from_the_cache(native_copy, monkeypatch, through):
    from ochuman.eval import resolve
    from ochuman.scan import PrefetchedAnnotations

    fresh = resolve_ground_truth(gt=native_copy)
    native_copy.touch()  # a new time alone is no change

    def no_build(*args):
        raise AssertionError("rebuilt although the cache holds this content")

    monkeypatch.setattr(resolve, "ground_truth_from_dataset", no_build)
    gt = PrefetchedAnnotations(native_copy) if through == "prefetched" else native_copy
    _assert_same(resolve_ground_truth(gt=gt), fresh)


def _stored_signature(cache_folder) -> str:
    (entry,) = cache_folder.iterdir()
    with np.load(entry, allow_pickle=False) as stored:
        return str(stored["signature"])


def test_a_just_changed_file_is_hashed_on_every_run(native_copy, tmp_path):
    # changed less than 2 s ago: its ctime could be shared by an edit in the same clock tick
    for _ in range(3):
        resolve_ground_truth(gt=native_copy)
        assert _stored_signature(tmp_path / "cache") == ""


def test_a_settled_file_is_served_by_its_stat_until_edited(native_copy, tmp_path, monkeypatch):
    from ochuman.eval import cache

    monkeypatch.setattr(cache, "_SETTLED_NS", 0)
    fresh = resolve_ground_truth(gt=native_copy)  # built: the entry knows the content's hash
    resolve_ground_truth(gt=native_copy)  # hashed, matched: the entry gets the stat signature
    assert _stored_signature(tmp_path / "cache") != ""

    def no_hashing(*args):
        raise AssertionError("hashed although the stat signature matches")

    with monkeypatch.context() as patched:
        patched.setattr(cache, "_fingerprint", no_hashing)
        _assert_same(resolve_ground_truth(gt=native_copy), fresh)
    _edit_in_place_keeping_size_and_time(native_copy)
    served = resolve_ground_truth(gt=native_copy)
    monkeypatch.setenv("OCHUMAN_CACHE", "off")
    edited = resolve_ground_truth(gt=native_copy)
    assert not np.array_equal(edited.max_iou, fresh.max_iou)
    _assert_same(served, edited)
