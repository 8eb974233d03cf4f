"""``ochuman.compat`` against pycocotools where a script does more than the usual five calls:
copies of an evaluation (deepcopy, pickle), params pycocotools cannot compute with, steps
called out of order, and files it cannot read. Either both give the same numbers and
internals, or both raise, ours an ``OCHumanError`` that is also pycocotools' exception type
(each case runs pycocotools itself: nothing is hard-coded)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from ochuman.compat import quietly
from ochuman.errors import OCHumanError

from ochuman.keypoints import COCO_OKS_SIGMAS

from .test_compat_differential import OURS, PYCOCOTOOLS, _evaluation, assert_same_outcome, copied

GT = {"images": [{"id": 1, "height": 40, "width": 40, "file_name": "1.jpg"},
                 {"id": 2, "height": 40, "width": 40, "file_name": "2.jpg"}],
      "categories": [{"id": 1, "name": "p"}, {"id": 5, "name": "q"}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [2, 2, 10, 10], "area": 100, "iscrowd": 0,
                       "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]], "keypoints": [5, 5, 2] * 17, "num_keypoints": 17},
                      {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 20, 15, 15], "area": 225, "iscrowd": 0,
                       "segmentation": [[20, 20, 35, 20, 35, 35, 20, 35]], "keypoints": [25, 25, 2] * 17,
                       "num_keypoints": 17},
                      {"id": 3, "image_id": 2, "category_id": 5, "bbox": [1, 1, 30, 20], "area": 600, "iscrowd": 0,
                       "segmentation": [[1, 1, 31, 1, 31, 21, 1, 21]], "keypoints": [9, 9, 1] * 17, "num_keypoints": 17}]}
RESULTS = [{"image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 10], "score": 0.9, "keypoints": [5, 6, 1] * 17},
           {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.95, "keypoints": [1, 1, 1] * 17},
           {"image_id": 2, "category_id": 5, "bbox": [2, 1, 29, 20], "score": 0.5, "keypoints": [9, 8, 1] * 17}]


def _run(lib, iou_type, params=None, after_evaluate=None, files=None):
    """The five calls on the scene above, ``params`` set before evaluate() and ``E =
    after_evaluate(E)`` after it; files: (gt path, results path) to read instead of the dicts.
    -> COCOeval, or (step, exception)."""
    paths = {} if files is None else {"gt_file": files[0], "results_file": files[1]}
    return _evaluation(lib, GT, RESULTS, iou_type, COCO_OKS_SIGMAS.copy(), params or {},
                       after_evaluate=after_evaluate, **paths)


def _both(*args, **kwargs):
    return _run(OURS, *args, **kwargs), _run(PYCOCOTOOLS, *args, **kwargs)


def _files(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps(GT))
    (tmp_path / "res.json").write_text(json.dumps(RESULTS))
    return tmp_path / "gt.json", tmp_path / "res.json"


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
@pytest.mark.parametrize("from_files", [False, True])
def test_copies_after_evaluate_accumulate_as_pycocotools(iou_type, how, from_files, tmp_path):
    """A copy made after evaluate() holds pycocotools' evalImgs, ious, _gts and _dts (filled
    before copying; the compiled run and any mapped file stay behind) and accumulates to its
    numbers. (A mapped file cannot be pickled; lazy attributes copied unfilled read nothing.)"""
    files = _files(tmp_path) if from_files else None
    ours, oracle = _both(iou_type, after_evaluate=copied(how), files=files)
    assert not isinstance(ours, tuple), ours
    assert_same_outcome(ours, oracle)
    assert len(ours.evalImgs) == len(oracle.evalImgs) > 0


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
@pytest.mark.parametrize("change", [
    {"maxDets": [100]},  # one maxDets: accumulate() works, summarize() indexes maxDets[2]
    {"maxDets": [1, 1, 1], "areaRng": [[0, 1e10]], "areaRngLbl": ["all"]},
    {"maxDets": [1, 10, 100.0]},  # a float pycocotools cannot slice with
    {"maxDets": [1.0, 10, 100]},  # ... only in accumulate()
    {"iouThrs": [0.5, 0.75]},  # a list: summarize()'s np.where raises
    {"iouThrs": np.array([np.nan, 0.5])},  # NaN: every candidate reaches it
    {"recThrs": np.array([1.0, 0.0, 0.5])},  # unsorted: one searchsorted each, filled until the first past the end
], ids=["one-maxdets", "three-alike", "float-last", "float-first", "iou-list", "iou-nan", "rec-unsorted"])
def test_params_pycocotools_reads_oddly(iou_type, change):
    ours, oracle = _both(iou_type, params=change)
    assert_same_outcome(ours, oracle)


@pytest.mark.parametrize("case", ["sigmas-list", "sigmas-missing", "thresholds-shortened", "iou-type-unknown"])
def test_params_changed_to_what_pycocotools_cannot_use(case):
    """Same exception type as pycocotools at the same step: kpt_oks_sigmas as a list
    (TypeError), iouType set to keypoints on box Params (AttributeError), iouThrs cut after
    evaluate() (IndexError in accumulate), an unknown iouType at evaluate() (NameError)."""
    params = {"sigmas-list": {"kpt_oks_sigmas": list(COCO_OKS_SIGMAS)}, "sigmas-missing": {"iouType": "keypoints"},
              "iou-type-unknown": {"iouType": "mask"}}.get(case)

    def after(E):
        if case == "thresholds-shortened":
            E.params.iouThrs = E.params.iouThrs[:2]
        return E

    iou_type = "keypoints" if case == "sigmas-list" else "bbox"
    ours, oracle = _both(iou_type, params=params, after_evaluate=after)
    assert isinstance(oracle, tuple), "pycocotools computed: the case no longer tests a refusal"
    assert_same_outcome(ours, oracle)


def test_sigmas_of_two_dimensions_are_refused():
    """pycocotools broadcasts (17, 1) sigmas against the joints (OKS above 1); refused here."""
    from ochuman.compat import ParamsValueError

    ours = _run(OURS, "keypoints", params={"kpt_oks_sigmas": COCO_OKS_SIGMAS[:, None]})
    assert ours[0] == "evaluate" and isinstance(ours[1], ParamsValueError), ours
    assert "(17, 1)" in str(ours[1])


def test_a_negative_max_dets_is_refused():
    """pycocotools slices each image's detections with it (dt[0:-1]: all but the last one)."""
    from ochuman.compat import ParamsValueError

    ours = _run(OURS, "bbox", params={"maxDets": [-1, 10, 100]})
    assert ours[0] == "evaluate" and isinstance(ours[1], ParamsValueError), ours
    assert str(ours[1]).startswith("params.maxDets: -1 is negative")


def test_steps_out_of_order_raise_as_pycocotools():
    for lib in (OURS, PYCOCOTOOLS):
        gt = lib[0]()
        gt.dataset = copy.deepcopy(GT)
        gt.createIndex()
        with quietly():
            E = lib[1](gt, gt.loadRes(copy.deepcopy(RESULTS)), "bbox")
        with pytest.raises(AttributeError), quietly():  # accumulate() before evaluate()
            E.accumulate()
        with quietly():
            E.evaluate()
            E.accumulate()
        with pytest.raises(TypeError, match="non-string"), quietly():  # pycocotools' __str__ returns None
            str(E)


def _outcome(lib, gt_path, res_path):
    try:
        with quietly():
            gt = lib[0](str(gt_path))
            return gt.loadRes(str(res_path)) if res_path is not None else gt
    except Exception as err:  # noqa: BLE001
        return err


@pytest.mark.parametrize("content", [b"", b'{"images": [', b"[]", b"\xef\xbb\xbf" + json.dumps(GT).encode(),
                                     json.dumps(GT).replace('"p"', '"\xe9"').encode("latin-1"), None, "folder"],
                         ids=["empty", "cut", "list", "bom", "latin-1", "missing", "folder"])
@pytest.mark.parametrize("side", ["gt", "results"])
def test_files_pycocotools_cannot_read(content, side, tmp_path):
    """Each raises pycocotools' exception type (JSONDecodeError: ValueError; UnicodeDecodeError;
    AssertionError; FileNotFoundError; IsADirectoryError), in one line naming the file."""
    gt_path, res_path = _files(tmp_path)
    bad = gt_path if side == "gt" else res_path
    bad.unlink()
    if content == "folder":
        bad.mkdir()
    elif content is not None:
        bad.write_bytes(content)
    ours = _outcome(OURS, gt_path, res_path)
    oracle = _outcome(PYCOCOTOOLS, gt_path, res_path)
    assert isinstance(oracle, Exception), oracle
    expected = next(kind for kind in type(oracle).__mro__ if kind.__module__ == "builtins")
    assert isinstance(ours, OCHumanError) and isinstance(ours, expected), (ours, oracle)
    assert str(bad) in str(ours) and "\n" not in str(ours)


def test_accumulate_with_params_sharing_no_max_dets():
    """accumulate(p) with p.maxDets none of the evaluated ones and more imgIds than evaluated:
    pycocotools reads no evalImgs (every cell -1); neither does the drop-in."""
    def run(lib):
        gt = lib[0]()
        gt.dataset = copy.deepcopy(GT)
        gt.createIndex()
        with quietly():
            E = lib[1](gt, gt.loadRes(copy.deepcopy(RESULTS)), "bbox")
            E.params.imgIds = [2]
            E.evaluate()
            p = copy.deepcopy(E.params)
            p.imgIds, p.maxDets = [1, 2], [5, 50, 500]
            E.accumulate(p)
        return E

    ours, oracle = run(OURS), run(PYCOCOTOOLS)
    for name in ("precision", "recall", "scores"):
        np.testing.assert_array_equal(ours.eval[name], oracle.eval[name])
    assert (oracle.eval["precision"] == -1).all()


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
@pytest.mark.parametrize("params", [{}, {"imgIds": ["b"]}, {"useCats": 0}], ids=["all", "one-image", "no-cats"])
@pytest.mark.parametrize("from_files", [False, True])
def test_string_image_ids_evaluate_as_pycocotools(iou_type, params, from_files, tmp_path):
    """Image ids that are strings (pycocotools keys its dicts by them; its np.unique sorts
    them): same numbers and internals (evaluate() raised ValueError on them before)."""
    gt = copy.deepcopy(GT)
    names = {1: "a", 2: "b"}
    for image in gt["images"]:
        image["id"] = names[image["id"]]
    for ann in gt["annotations"]:
        ann["image_id"] = names[ann["image_id"]]
    results = [{**r, "image_id": names[r["image_id"]]} for r in RESULTS]
    files = {}
    if from_files:
        (tmp_path / "gt.json").write_text(json.dumps(gt))
        (tmp_path / "res.json").write_text(json.dumps(results))
        files = {"gt_file": tmp_path / "gt.json", "results_file": tmp_path / "res.json"}
    ours = _evaluation(OURS, gt, results, iou_type, COCO_OKS_SIGMAS.copy(), params, **files)
    oracle = _evaluation(PYCOCOTOOLS, gt, results, iou_type, COCO_OKS_SIGMAS.copy(), params, **files)
    assert not isinstance(oracle, tuple), oracle
    assert_same_outcome(ours, oracle, compare_internals=not (iou_type == "keypoints" and params.get("useCats") == 0))
