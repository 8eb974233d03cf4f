"""``ochuman.compat`` reading files: ``COCO(path)`` builds its annotation index when first read
and ``loadRes(path)`` keeps the compiled scanner's columns until its index is read; the index,
when read, equals pycocotools' and the numbers equal pycocotools' whether the script reads the
index or not (hypothesis, the scenes of test_compat_differential written to files)."""
from __future__ import annotations

import copy
import gc
import json
import mmap
import pickle
import tempfile
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pycocotools.coco import COCO as PyCOCO
from pycocotools.cocoeval import COCOeval as PyCOCOeval

import ochuman.scan
from ochuman import compat
from ochuman.compat import quietly

from .test_compat import make_results
from .test_compat_differential import (COMMON, OURS, PYCOCOTOOLS, _pooled_oks, assert_same_outcome, param_changes,
                                       scenes)


def _plain(value):
    """JSON-ready: numpy integers (as a numpy pipeline leaves them in records) as ints."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return int(value) if isinstance(value, np.integer) else value


def _write(folder: Path, gt: dict, results: list) -> tuple[str, str]:
    gt_path, res_path = folder / "gt.json", folder / "results.json"
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(_plain(results)))
    return str(gt_path), str(res_path)


def _file_evaluation(lib, gt_path, res_path, iou_type, sigmas, params, read_index=False):
    """The pycocotools script on files -> (step, exception) if a step raised, else the COCOeval
    after summarize(); read_index: the script reads both indexes before evaluating."""
    coco_cls, eval_cls = lib
    step = "load"
    try:
        with quietly():
            gt = coco_cls(gt_path)
            step = "loadRes"
            dt = gt.loadRes(res_path)
            if read_index:
                assert gt.anns is not None and dt.anns is not None
            step = "evaluate"
            E = eval_cls(gt, dt, iou_type)
            if lib is PYCOCOTOOLS:
                _pooled_oks(E)
            if iou_type == "keypoints" and sigmas is not None:
                E.params.kpt_oks_sigmas = sigmas
            for name, value in params.items():
                setattr(E.params, name, copy.deepcopy(value))
            E.evaluate()
            step = "accumulate"
            E.accumulate()
            step = "summarize"
            E.summarize()
        return E
    except Exception as err:  # noqa: BLE001 - compared with the other library's outcome
        return step, err


def _same(a, b) -> bool:
    """Equal values of the same types (numpy arrays: dtype, shape and values)."""
    if isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(b, dict):
        return isinstance(a, dict) and list(a) == list(b) and all(_same(a[k], b[k]) for k in b)
    if isinstance(b, list):
        return isinstance(a, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def assert_same_index(ours, theirs) -> None:
    """Every pycocotools index attribute equal, with pycocotools' sharing: ``anns``,
    ``imgToAnns`` and ``dataset["annotations"]`` hold the same dicts (so do ``imgs`` and
    ``dataset["images"]``)."""
    assert _same(ours.dataset, theirs.dataset)
    for name in ("anns", "imgs", "cats", "imgToAnns", "catToImgs"):
        mine, oracle = getattr(ours, name), getattr(theirs, name)
        assert type(mine) is type(oracle) and list(mine) == list(oracle), name
        assert all(_same(mine[k], oracle[k]) for k in oracle), name
    anns = {id(ann) for ann in ours.dataset.get("annotations", [])}
    assert all(id(ann) in anns for ann in ours.anns.values())
    assert all(id(ann) in anns for group in ours.imgToAnns.values() for ann in group)
    images = {id(img) for img in ours.dataset.get("images", [])}
    assert all(id(img) in images for img in ours.imgs.values())


@pytest.mark.differential
@COMMON
@given(data=st.data(), iou_type=st.sampled_from(["segm", "bbox", "keypoints"]), read_index=st.booleans())
def test_files_evaluate_as_pycocotools(data, iou_type, read_index):
    """Same outcome as pycocotools on the same files; a script that does not read the indexes
    leaves them unbuilt (the compiled path: columns from the files)."""
    gt, results, sigmas = data.draw(scenes())
    params = data.draw(param_changes(gt, iou_type))
    with tempfile.TemporaryDirectory() as folder:
        gt_path, res_path = _write(Path(folder), gt, results)
        ours = _file_evaluation(OURS, gt_path, res_path, iou_type, sigmas, params, read_index)
        oracle = _file_evaluation(PYCOCOTOOLS, gt_path, res_path, iou_type, sigmas, params, read_index)
    pooled = iou_type == "keypoints" and params.get("useCats") == 0
    if not read_index and not isinstance(ours, tuple):
        assert ours.cocoGt._pending is not None  # the ground truth's annotations were never made dicts
    assert_same_outcome(ours, oracle, compare_internals=not pooled)  # (reads the indexes)


@pytest.mark.differential
@COMMON
@given(data=st.data())
def test_index_of_a_file_equals_pycocotools(data):
    """COCO(path): getImgIds / getCatIds / loadImgs / loadCats before the index is built, then
    the index itself, equal pycocotools'."""
    gt, _, _ = data.draw(scenes())
    cat_ids = [c["id"] for c in gt["categories"]]
    with tempfile.TemporaryDirectory() as folder:
        gt_path, _ = _write(Path(folder), gt, [])
        with quietly():
            ours, theirs = compat.COCO(gt_path), PyCOCO(gt_path)
    assert ours._pending is not None
    assert ours.getImgIds() == theirs.getImgIds()
    assert ours.getCatIds() == theirs.getCatIds()
    chosen = data.draw(st.lists(st.sampled_from(cat_ids), max_size=2))
    assert ours.getCatIds(catIds=chosen) == theirs.getCatIds(catIds=chosen)
    assert ours.getCatIds(catNms=[f"c{c}" for c in chosen]) == theirs.getCatIds(catNms=[f"c{c}" for c in chosen])
    assert ours.loadImgs(ours.getImgIds()) == theirs.loadImgs(theirs.getImgIds())
    assert ours.loadCats(cat_ids) == theirs.loadCats(cat_ids)
    assert ours._pending is not None
    assert_same_index(ours, theirs)
    assert ours._pending is None
    assert ours.getAnnIds(catIds=chosen) == theirs.getAnnIds(catIds=chosen)


@pytest.mark.differential
@COMMON
@given(data=st.data())
def test_load_res_of_a_file_equals_pycocotools(data):
    """loadRes(path): the results' index, when read, equals pycocotools' field by field
    (derived area, bbox, id, iscrowd and box polygons; masks, keypoints, ids as written)."""
    gt, results, _ = data.draw(scenes())
    with tempfile.TemporaryDirectory() as folder:
        gt_path, res_path = _write(Path(folder), gt, results)
        with quietly():
            try:
                theirs = PyCOCO(gt_path).loadRes(res_path)
            except Exception as err:  # noqa: BLE001
                with pytest.raises(type(err)):
                    compat.COCO(gt_path).loadRes(res_path)
                return
            ours = compat.COCO(gt_path).loadRes(res_path)
            assert_same_index(ours, theirs)


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_standard_script_on_files_takes_the_compiled_path(coco_mini, tmp_path, iou_type):
    """The usual script (COCO(file), loadRes(file), evaluate, accumulate, summarize) builds
    neither index, and gives pycocotools' numbers."""
    results = make_results(coco_mini, iou_type, seed=5)
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(results))
    ours = _file_evaluation(OURS, str(coco_mini), str(res_path), iou_type, None, {})
    oracle = _file_evaluation(PYCOCOTOOLS, str(coco_mini), str(res_path), iou_type, None, {})
    assert ours.cocoGt._pending is not None and ours.cocoDt._pending is not None
    assert_same_outcome(ours, oracle)  # (reads the indexes)


def test_copies_of_unbuilt_indexes(coco_mini, tmp_path):
    """deepcopy and pickle (torchvision deep-copies the ground truth) build the index first."""
    results = make_results(coco_mini, "bbox", seed=6)
    res_path = tmp_path / "results.json"
    res_path.write_text(json.dumps(results))
    with quietly():
        gt, theirs = compat.COCO(str(coco_mini)), PyCOCO(str(coco_mini))
        dt, dt_theirs = gt.loadRes(str(res_path)), theirs.loadRes(str(res_path))
    for copied in (copy.deepcopy(gt), pickle.loads(pickle.dumps(gt))):
        assert_same_index(copied, theirs)
    for copied in (copy.deepcopy(dt), pickle.loads(pickle.dumps(dt))):
        assert_same_index(copied, dt_theirs)


def test_results_file_errors_stay_one_line(coco_mini, tmp_path):
    """Files the scanner reads but pycocotools refuses, or the facade refuses, still name the record."""
    results = make_results(coco_mini, "segm", seed=7)
    unknown = [*results[:3], {**results[3], "image_id": 10 ** 9}]
    (tmp_path / "unknown.json").write_text(json.dumps(unknown))
    with quietly():
        gt = compat.COCO(str(coco_mini))
    with pytest.raises(compat.UnknownImageError, match=r"record 3 \(image_id 1000000000\)"):
        gt.loadRes(str(tmp_path / "unknown.json"))
    boxed = [{**r, "bbox": [1.0, 2.0, 3.0, 4.0]} for r in results]
    boxed[2]["segmentation"] = {**boxed[2]["segmentation"], "counts": boxed[2]["segmentation"]["counts"][:3]}
    (tmp_path / "truncated.json").write_text(json.dumps(boxed))
    E = compat.COCOeval(gt, gt.loadRes(str(tmp_path / "truncated.json")), "segm")
    with pytest.raises(compat.ResultsError, match="record 2 .*corrupt RLE") as caught:
        E.evaluate()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("kept", ["snapshot", "snapshot in pieces", "read"])
def test_a_results_file_rewritten_after_load_res_changes_nothing(coco_sample, tmp_path, monkeypatch, kept):
    """loadRes(path) reads the file then (as pycocotools): evaluating afterwards, or reading the
    index, uses those bytes even when the file was rewritten (truncated first) in between,
    whether they were kept as a private copy (snapshot_file, scanned whole or in pieces, two
    at a time) or read into memory."""
    if kept == "read":
        monkeypatch.setattr(compat, "snapshot_file", lambda path: None)
    records = make_results(coco_sample, "segm", seed=41)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    if kept == "snapshot in pieces":
        monkeypatch.setattr(ochuman.scan, "PIECE_BYTES", path.stat().st_size // 7)
        monkeypatch.setattr(compat, "worker_count", lambda: 2)
        pieces = []
        real_spans = ochuman.scan._record_spans
        monkeypatch.setattr(ochuman.scan, "_record_spans", lambda *a: pieces.extend(real_spans(*a)) or real_spans(*a))
    with quietly():
        oracle = PyCOCOeval(PyCOCO(str(coco_sample)), PyCOCO(str(coco_sample)).loadRes(copy.deepcopy(records)), "segm")
        for step in (oracle.evaluate, oracle.accumulate, oracle.summarize):
            step()
        gt = compat.COCO(str(coco_sample))
        dt = gt.loadRes(str(path))
        path.write_text(json.dumps(records[:1]))
        ours = compat.COCOeval(gt, dt, "segm")
        for step in (ours.evaluate, ours.accumulate, ours.summarize):
            step()
    assert dt._pending is not None  # the columns were evaluated, not the index
    assert isinstance(dt._scanned.data, mmap.mmap) == (kept != "read")
    np.testing.assert_array_equal(ours.stats, oracle.stats)
    assert len(dt.anns) == len(records)
    if kept == "snapshot in pieces":
        assert len(pieces) >= 6


@pytest.mark.parametrize("kept", ["snapshot", "read"])
def test_a_ground_truth_file_rewritten_after_coco_changes_nothing(coco_mini, tmp_path, monkeypatch, kept):
    """COCO(path) reads the file then (as pycocotools): box and mask evaluations afterwards, and
    the index, use those bytes even when the file was rewritten (truncated first) in between,
    whether they were kept as a private copy whose pages are let go after each pass, or read."""
    if kept == "read":
        monkeypatch.setattr(compat, "snapshot_file", lambda path: None)
    gt_path = tmp_path / "gt.json"
    gt_path.write_bytes(Path(coco_mini).read_bytes())
    records = make_results(coco_mini, "segm", seed=43)
    with quietly():
        theirs_gt = PyCOCO(str(coco_mini))
        gt = compat.COCO(str(gt_path))
        gt_path.write_text(json.dumps({"images": [], "annotations": [], "categories": []}))
        for iou_type in ("bbox", "segm"):
            oracle = PyCOCOeval(theirs_gt, theirs_gt.loadRes(copy.deepcopy(records)), iou_type)
            ours = compat.COCOeval(gt, gt.loadRes(copy.deepcopy(records)), iou_type)
            for evaluation in (oracle, ours):
                for step in (evaluation.evaluate, evaluation.accumulate, evaluation.summarize):
                    step()
            np.testing.assert_array_equal(ours.stats, oracle.stats, err_msg=iou_type)
    assert isinstance(gt._file.data, mmap.mmap) == (kept == "snapshot")
    assert gt.anns == theirs_gt.anns and gt.dataset == theirs_gt.dataset  # (as both evaluations left them)


@pytest.mark.parametrize("boxed", [False, True], ids=["masks only", "boxes and masks"])
def test_the_copy_of_mask_strings_lives_while_an_evaluation_needs_it(coco_mini, tmp_path, monkeypatch, boxed):
    """A mapped results file's mask strings are copied out for a mask evaluation (for masks-only
    results the copy made at loadRes, where their areas are read, serves the first one) and let
    go once its IoUs are computed; a later evaluation copies them again. Every evaluation gives
    pycocotools' numbers, and the results' index is never built."""
    copies = []

    def copy_and_watch(data, segm):
        strings, moved = ochuman.scan.copy_mask_strings(data, segm)
        copies.append(weakref.ref(strings))
        return strings, moved

    monkeypatch.setattr(compat, "copy_mask_strings", copy_and_watch)
    records = make_results(coco_mini, "segm", seed=44)
    if boxed:
        records = [{**r, "bbox": [1.0 + i % 7, 2.0, 30.0, 40.0]} for i, r in enumerate(records)]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(records))
    with quietly():
        gt, theirs = compat.COCO(str(coco_mini)), PyCOCO(str(coco_mini))
        dt, dt_theirs = gt.loadRes(str(path)), theirs.loadRes(str(path))
    assert isinstance(dt._scanned.data, mmap.mmap)
    assert len(copies) == (0 if boxed else 1)
    for evaluations, max_dets in enumerate(([1, 10, 100], [1, 5, 20]), start=1):
        ours, oracle = compat.COCOeval(gt, dt, "segm"), PyCOCOeval(theirs, dt_theirs, "segm")
        with quietly():
            for E in (ours, oracle):
                E.params.maxDets = max_dets
                E.evaluate()
                E.accumulate()
                E.summarize()
        np.testing.assert_array_equal(ours.stats, oracle.stats)
        gc.collect()
        assert len(copies) == evaluations and [ref() for ref in copies] == [None] * evaluations
    assert dt._pending is not None


@pytest.mark.parametrize("failing", ["ground truth", "results"])
def test_the_results_columns_made_in_a_thread_meanwhile(coco_mini, tmp_path, monkeypatch, failing):
    """evaluate() makes the results' columns in a thread while it makes the ground truth's;
    what either raises reaches the caller, and only once the thread has ended."""
    path = tmp_path / "results.json"
    records = make_results(coco_mini, "segm", seed=45)  # boxed: loadRes reads no mask
    path.write_text(json.dumps([{**r, "bbox": [1.0, 2.0, 30.0, 40.0]} for r in records]))
    threads, ended = [], []
    real_detections = compat._ScannedResults.detections

    def slow_detections(self, *args):
        threads.append(threading.current_thread())
        time.sleep(0.2)
        if failing == "results":
            raise compat.ResultsError("results failed")
        ended.append(True)
        return real_detections(self, *args)

    def failing_columns(self, *args):
        raise compat.OCHumanError("ground truth failed")

    monkeypatch.setattr(compat._ScannedResults, "detections", slow_detections)
    if failing == "ground truth":
        monkeypatch.setattr(compat._AnnotationFile, "evaluated_columns", failing_columns)
    with quietly():
        gt = compat.COCO(str(coco_mini))
        dt = gt.loadRes(str(path))
        with pytest.raises(compat.OCHumanError, match=f"{failing} failed"):
            compat.COCOeval(gt, dt, "segm").evaluate()
    assert len(threads) == 1 and threads[0] is not threading.main_thread() and not threads[0].is_alive()
    assert ended == ([True] if failing == "ground truth" else [])


def test_one_ground_truth_evaluated_for_boxes_then_masks(coco_mini, tmp_path):
    """A box evaluation scans the ground truth without polygon coordinates; a mask evaluation of
    the same COCO object afterwards (torchvision's bbox + segm) scans them, and both give
    pycocotools' numbers; top-level keys named like the facade's caches change nothing."""
    gt_data = json.loads(Path(coco_mini).read_text())
    gt_data.update(scanned=[1, 2], polygons={"a": 1}, columns=None)
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt_data))
    with quietly():
        ours_gt, theirs_gt = compat.COCO(str(gt_path)), PyCOCO(str(gt_path))
    scans = []
    for iou_type in ("bbox", "segm", "bbox"):
        res_path = tmp_path / f"{iou_type}.json"
        res_path.write_text(json.dumps(make_results(coco_mini, iou_type, seed=43)))
        with quietly():
            ours = compat.COCOeval(ours_gt, ours_gt.loadRes(str(res_path)), iou_type)
            theirs = PyCOCOeval(theirs_gt, theirs_gt.loadRes(str(res_path)), iou_type)
            for E in (ours, theirs):
                E.evaluate()
                E.accumulate()
                E.summarize()
        np.testing.assert_array_equal(ours.stats, theirs.stats)
        scans.append(sorted(key for key in ours_gt._file.columns if key != "polygons"))
    assert scans == [["without polygons"], ["scanned"], ["scanned"]]
    assert ours_gt._pending is not None


@pytest.mark.parametrize("split", ["by brackets", "by msgspec"])
def test_ground_truth_annotations_are_scanned_once_by_load_res(coco_mini, tmp_path, split):
    """COCO(path) of a file in the usual shape checks its annotations with the compiled scanner
    (ochuman.scan.coco_members) and keeps the columns a box or keypoint evaluation reads; a file
    split by msgspec instead (here: a top-level key twice) gets them in a thread while
    loadRes(path) reads the results (one CPU busy), done when it returns."""
    from ochuman import _evalcore

    gt_path = tmp_path / "gt.json"
    content = Path(coco_mini).read_bytes()
    gt_path.write_bytes(content if split == "by brackets" else b'{"info": {}, ' + content.lstrip()[1:])
    res_path = tmp_path / "bbox.json"
    res_path.write_text(json.dumps(make_results(coco_mini, "bbox", seed=44)))
    with quietly():
        gt = compat.COCO(str(gt_path))
        assert list(gt._file.columns) == (["without polygons"] if split == "by brackets" else [])
        gt.loadRes(str(res_path))
    assert list(gt._file.columns) == ["without polygons"]
    assert gt._file.columns["without polygons"] == _evalcore.scan_coco_annotations(gt._file.raw["annotations"], True)


def test_files_are_read_whole_and_read_only(tmp_path):
    """compat reads a file's content at once (into memory numpy backs with huge pages): the
    same bytes, read-only; an empty file and a pipe read as bytes."""
    import os
    import threading

    content = json.dumps([{"image_id": k, "score": k / 7} for k in range(5000)]).encode()
    path = tmp_path / "r.json"
    path.write_bytes(content)
    read = compat._read_bytes(path)
    assert bytes(read) == content and memoryview(read).readonly
    (tmp_path / "empty.json").write_bytes(b"")
    assert compat._read_bytes(tmp_path / "empty.json") == b""
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(content,))
    writer.start()
    assert compat._read_bytes(fifo) == content
    writer.join()
    with pytest.raises(compat.OCHumanError, match="cannot read"):
        compat._read_bytes(tmp_path / "missing.json")


def test_evaluations_of_an_unbuilt_index_write_as_pycocotools_in_sequence(coco_mini, tmp_path):
    """A training loop's evaluations of one ground-truth file (boxes, masks, keypoints, the same
    images again, a subset, no area range) leave its index, when finally read, as pycocotools'
    evaluations leave its own (masks as RLE, ignore, _ignore); the drop-in keeps one pending
    record per selection of annotations, not one per evaluation."""
    records = {t: make_results(coco_mini, t, seed=44) for t in ("bbox", "segm", "keypoints")}
    with quietly():
        gt, theirs = compat.COCO(str(coco_mini)), PyCOCO(str(coco_mini))
        image_ids = sorted(theirs.getImgIds())
        steps = [("segm", {}), ("bbox", {}), ("keypoints", {"imgIds": image_ids[:5]}), ("bbox", {}),
                 ("bbox", {"imgIds": image_ids[3:9]}), ("segm", {"imgIds": image_ids[3:9], "areaRng": []}),
                 ("keypoints", {"useCats": 0}), ("bbox", {})] * 2
        for iou_type, params in steps:
            for coco, library in ((gt, compat), (theirs, None)):
                evaluation = (compat.COCOeval if library else PyCOCOeval)(coco, coco.loadRes(copy.deepcopy(records[iou_type])),
                                                                          iou_type)
                for name, value in params.items():
                    setattr(evaluation.params, name, copy.deepcopy(value))
                evaluation.evaluate()
    assert gt._pending is not None and len(gt._prepared_records) == 5  # all, 5, 3:9 (with, without areas), useCats=0
    assert gt.anns == theirs.anns and gt.dataset == theirs.dataset


@pytest.mark.parametrize("listed", [False, True])
@pytest.mark.parametrize("big", [2 ** 63, 2 ** 70])
@pytest.mark.parametrize("on_big", [True, False])
def test_image_ids_beyond_int64_evaluate_as_pycocotools(tmp_path, listed, big, on_big):
    """A ground truth whose image ids go beyond int64 (pycocotools keeps them as Python ints):
    its results, a file or a list, with detections on such an image or not, take the general
    path, with pycocotools' outcome."""
    gt = {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "a.jpg"},
                     {"id": big, "width": 10, "height": 10, "file_name": "b.jpg"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0},
                          {"id": 2, "image_id": big, "category_id": 1, "bbox": [1, 1, 4, 4], "area": 16, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "person"}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 4], "score": 0.9},
               {"image_id": big, "category_id": 1, "bbox": [1, 1, 4, 4], "score": 0.8},
               {"image_id": big, "category_id": 1, "bbox": [5, 5, 4, 4], "score": 0.95}]
    results = results if on_big else results[:1]
    gt_path, res_path = _write(tmp_path, gt, results)
    source = copy.deepcopy(results) if listed else res_path
    ours = _file_evaluation(OURS, gt_path, source, "bbox", None, {})
    oracle = _file_evaluation(PYCOCOTOOLS, gt_path, copy.deepcopy(results) if listed else res_path, "bbox", None, {})
    assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("field", ["id", "category_id"])
def test_annotation_and_category_ids_beyond_int64_are_refused_naming_the_record(tmp_path, field):
    """Ids the compiled evaluator cannot hold: a one-line FieldTypeError (a TypeError) naming
    the annotation whose id it is, not a number error on the first one."""
    big = 2 ** 70
    cat = big if field == "category_id" else 1
    gt = {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "a.jpg"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "area": 25, "iscrowd": 0},
                          {"id": big if field == "id" else 2, "image_id": 1, "category_id": cat, "bbox": [5, 5, 4, 4],
                           "area": 16, "iscrowd": 0}],
          "categories": [{"id": 1, "name": "person"}, *([{"id": big, "name": "other"}] if cat == big else [])]}
    gt_path, _ = _write(tmp_path, gt, [])
    with quietly():
        coco = compat.COCO(gt_path)
        dt = coco.loadRes([{"image_id": 1, "category_id": cat, "bbox": [5, 5, 4, 4], "score": 0.9}])
        with pytest.raises(compat.FieldTypeError) as raised:
            compat.COCOeval(coco, dt, "bbox").evaluate()
    message = str(raised.value)
    assert isinstance(raised.value, TypeError) and "\n" not in message
    assert message == (f"{gt_path}: annotation id {gt['annotations'][1]['id']}: {field}: {big} does not fit int64 "
                       "(the evaluator's; pycocotools takes any int)")
