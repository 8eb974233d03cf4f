"""Every Python call of README.md, on the OCHuman-scale native file, against the numpy oracle,
the CLI's own files and pycocotools."""
from __future__ import annotations

import json

import numpy as np
import pytest

import ochuman
from ochuman.eval import evaluate_results

from .oracle import VAL_FILE

pytestmark = pytest.mark.scale

STAT_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


@pytest.fixture(scope="module")
def data(native):
    return ochuman.load(native.path)


def test_load_filter_and_stats_of_val(native, data):
    facts = native.facts
    assert len(data) == 13360 and len(data.images) == 5081
    bench = data.filter_persons("kpt&segm")
    assert len(bench) == 8110 and len(bench.images) == 4731
    np.testing.assert_array_equal(bench.max_iou, facts.max_iou[facts.masked])
    stats = ochuman.dataset_stats(bench.select_split("val"))
    persons = np.flatnonzero(facts.masked & (facts.person_split() == "val"))
    expected = facts.stats(persons, 2500)
    for key, value in expected.items():
        assert stats[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    hard = bench.select_range(ochuman.HARD)
    assert len(hard) == (facts.masked & (facts.max_iou >= 0.75)).sum()
    assert len(hard.images) == len(np.unique(facts.image_of[facts.masked & (facts.max_iou >= 0.75)]))


def test_load_with_filter_equals_filter_persons(native, data):
    direct = ochuman.load(native.path, filter="kpt&segm")
    assert len(direct) == 8110 and len(direct.images) == 4731
    np.testing.assert_array_equal(direct.bbox_xywh, data.filter_persons("kpt&segm").bbox_xywh)


def test_to_frame(native, data):
    facts = native.facts
    frame = data.to_frame()
    assert list(frame.columns) == [
        "image_id", "file_name", "person_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h", "iscrowd",
        "has_keypoints", "has_mask", "num_keypoints", "mask_area", "area", "max_iou", "max_iou_box",
        "max_iou_mask", "subset", "split"]
    assert len(frame) == 13360
    np.testing.assert_array_equal(frame["max_iou"], facts.max_iou)
    np.testing.assert_array_equal(frame["has_mask"], facts.masked)
    assert (frame["mask_area"][facts.masked] > 0).all() and frame["mask_area"][~facts.masked].isna().all()
    assert (frame["split"] == "val").sum() == (facts.person_split() == "val").sum()


def test_person_and_read_image(native, data):
    facts = native.facts
    person = data.person(0)
    x1, y1, x2, y2 = facts.bbox[0]
    np.testing.assert_array_equal(person.bbox_xywh, [x1, y1, x2 - x1, y2 - y1])
    assert person.max_iou == facts.max_iou[0]
    first_kpt = int(np.flatnonzero(facts.category >= 1)[0])
    np.testing.assert_array_equal(data.person(first_kpt).keypoints, facts.coco_keypoints(first_kpt))
    image = data.read_image(0)
    assert image.dtype == np.uint8 and image.shape == (*facts.image_size[0], 3)


def test_to_coco_equals_the_converted_file(data, range_dir):
    coco = ochuman.to_coco(data, "val", ochuman.MODERATE)
    written = json.loads((range_dir / "ochuman_coco_format_val_range_0.50_0.75.json").read_text())
    for key in ("images", "annotations", "categories"):
        assert json.loads(json.dumps(coco[key])) == written[key], key


def test_evaluate_results_and_compat_equal_pycocotools(native, coco_dir, results, pycocotools_stats):
    report = evaluate_results([str(results.perfect), str(results.imperfect)], ["Perfect", "Detector"],
                              root=str(native.root), split="val", iou_type="segm", by_max_iou=True)
    frame = report.to_frame()
    assert list(zip(frame["results"], frame["subset"])) == [
        (name, s) for name in ("Perfect", "Detector") for s in ("all", "moderate", "hard")]
    rows = frame.set_index(["results", "subset"])
    assert rows.loc[("Perfect", "all"), "AP"] == 1.0
    # "all" in official mode is the official val file: pycocotools' numbers
    np.testing.assert_allclose(rows.loc[("Detector", "all"), list(STAT_NAMES)].to_numpy(float),
                               pycocotools_stats, rtol=0, atol=1e-12)
    bins = [b for b in report.ap_by_max_iou() if b["results"] == "Perfect"]
    assert sum(b["persons"] for b in bins) == ((results.val_max_iou >= 0.5) & (results.val_max_iou < 1.0)).sum()

    from ochuman.compat import COCO, COCOeval  # the one-import switch of a pycocotools script

    gt = COCO(str(coco_dir / VAL_FILE))
    evaluation = COCOeval(gt, gt.loadRes(str(results.imperfect)), "segm")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    np.testing.assert_allclose(evaluation.stats, pycocotools_stats, rtol=0, atol=1e-12)


def test_evaluate_results_by_image_set_and_visibility(native, results):
    """README's call: perfect keypoints score 1.0 over every joint, in both image sets; the
    persons each (image set, class) counts are the numpy oracle's (official val persons of the
    set with a joint of the class). (A class's AP may be below 1 even here: see the module doc of
    ochuman.eval.visibility on detections of persons without a joint of the class.)"""
    from .oracle import COCO_FROM_OCHUMAN

    report = evaluate_results(str(results.perfect), root=str(native.root), iou_type="keypoints",
                              by_visibility=True, image_set=["all", "fully-labelled"])
    facts = native.facts
    M = len(facts.file_name)
    full = (np.bincount(facts.image_of, minlength=M) > 0) & (np.bincount(facts.image_of[facts.category < 2],
                                                                        minlength=M) == 0)
    persons = facts.official("val")[1]
    codes = facts.keypoints[persons][:, list(COCO_FROM_OCHUMAN), 2]
    frame = report.to_frame()
    assert set(frame.loc[(frame["subset"] == "all") & (frame["visibility"] == "all"), "AP"]) == {1.0}
    counted = {}
    for image_set, in_set in (("all", np.ones(len(persons), bool)), ("fully-labelled", full[facts.image_of[persons]])):
        for visibility, has in (("all", (codes > 0).any(1)), ("visible", (codes == 1).any(1)),
                                ("self-occluded", (codes == 2).any(1)), ("occluded-by-other", (codes == 3).any(1))):
            counted[image_set, visibility] = int((in_set & has).sum())
    assert {(ev.keys["image_set"], ev.keys["visibility"]): ev.subsets["all"].persons
            for ev in report.evaluations} == counted


def test_errors_intervals_and_cards_frames(native, results):
    """README's calls: errors_frame(), intervals_frame(), protocol_cards(): every missed person
    of a subset is one the per-person rows say was not matched at 0.5, the intervals hold their
    value, one card per row."""
    report = evaluate_results(str(results.imperfect), root=str(native.root), by_max_iou=True, per_person=True,
                              errors=True, bootstrap=100, seed=1, tags={"train": "x"})
    frame = report.errors_frame()
    missed = frame[(frame["subset"] == "all") & (frame["class"] == "missed")]["count"].item()
    persons = report.persons()
    official = [p for p in persons if p["error"] is not None]
    assert missed == len(official)  # persons outside the official file carry no error either
    assert all(not p["matched_50"] for p in official)
    assert set(frame["class"]) == {"duplicate", "merged", "partial", "localization", "background", "missed"}
    intervals = report.intervals_frame()
    assert len(intervals) == 3 * 4 and ((intervals["lo"] <= intervals["value"]) & (intervals["value"] <= intervals["hi"])).all()
    cards = report.protocol_cards()
    assert len(cards) == len(report.rows()) and all(c["tags"] == {"train": "x"} for c in cards)
