"""Image sets (``--image-set``): the fully-labelled images counted straight from the native JSON,
evaluations on them equal to pycocotools with ``params.imgIds`` set to them, COCO files refused."""
from __future__ import annotations

import copy
import json
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

import ochuman
from ochuman.errors import OCHumanError, OCHumanWarning
from ochuman.eval.image_sets import fully_labelled_images, image_set_ids, select_image_set
from ochuman.eval.params import STAT_NAMES
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.run import evaluate_results
from ochuman.stats import dataset_stats

from ..workloads import run_pycocotools

def _fully_labelled_from_json(doc: dict) -> set:
    """Independent count: file names of the images with a person, every one of them with
    keypoints and a mask (``keypoints`` and ``segms`` not null), read straight from the JSON."""
    return {im["file_name"] for im in doc["images"]
            if im["annotations"] and all(a["keypoints"] is not None and a["segms"] is not None
                                         for a in im["annotations"])}


def _val_from_json(doc: dict) -> set:
    """The official val split straight from the JSON: the first 2500 images, in file order,
    holding a person with keypoints and a mask."""
    bench = [im["file_name"] for im in doc["images"]
             if any(a["keypoints"] is not None and a["segms"] is not None for a in im["annotations"])]
    return set(bench[:2500])


def _check_counts(doc: dict, path) -> None:
    expected = _fully_labelled_from_json(doc)
    persons = sum(len(im["annotations"]) for im in doc["images"] if im["file_name"] in expected)
    dataset = ochuman.load(path)
    chosen = fully_labelled_images(dataset)
    assert {im.file_name for im, k in zip(dataset.images, chosen) if k} == expected
    for filter_name in (None, "kpt&segm"):  # on these images every filter keeps everyone
        stats = dataset_stats(select_image_set(dataset, "fully-labelled").filter_persons(filter_name))
        assert (stats["images"], stats["persons"], stats["box_only_persons"]) == (len(expected), persons, 0)
    val = _val_from_json(doc)
    if val:
        ground = resolve_ground_truth(gt=path, split="val", masks=False)
        ids = image_set_ids(ground, "fully-labelled")
        names = {ground.file_names[int(np.flatnonzero(ground.image_ids == i)[0])] for i in ids}
        assert names == expected & val


def test_fully_labelled_images_of_the_sample_are_counted_independently(native_sample):
    doc = json.loads(native_sample.read_text())
    assert len(_fully_labelled_from_json(doc)) == 4  # of 10: six hold a box-only or keypoint-only person
    _check_counts(doc, native_sample)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fully_labelled_counts_on_drawn_native_files(native_sample, tmp_path, data):
    """The sample with persons losing their keypoints and / or mask, and images losing every
    person, at random: the loader's, the statistics' and the evaluation's fully-labelled images
    are the JSON's."""
    doc = json.loads(native_sample.read_text())
    for image in doc["images"]:
        if data.draw(st.integers(0, 9)) == 0:
            image["annotations"] = []
        for person in image["annotations"]:
            drop = data.draw(st.sampled_from(["none", "none", "keypoints", "segms", "both"]))
            if drop in ("keypoints", "both"):
                person["keypoints"] = None
            if drop in ("segms", "both"):
                person["segms"] = None
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(doc))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        _check_counts(doc, path)


# ---------------------------------------------------------------------------------------------
# evaluation on the fully-labelled images = pycocotools with imgIds set to them


def _results(official: dict, doc: dict, seed: int) -> list:
    """Jittered detections of the official persons plus a detection on each box-only person
    (a false positive on the official file)."""
    rng = np.random.default_rng(seed)
    out = []
    for ann in official["annotations"]:
        x, y, w, h = ann["bbox"]
        keypoints = np.array(ann["keypoints"], dtype=float)
        keypoints[0::3] += rng.normal(0, 5, 17)
        keypoints[1::3] += rng.normal(0, 5, 17)
        keypoints[2::3] = 1
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.2, 1)),
                    "bbox": [x + rng.normal(0, 4), y + rng.normal(0, 4), w, h],
                    "segmentation": ann["segmentation"], "keypoints": keypoints.tolist()})
    ids = {im["file_name"]: im["id"] for im in official["images"]}
    for image in doc["images"]:
        for person in image["annotations"]:
            if person["keypoints"] is None and image["file_name"] in ids:
                x1, y1, x2, y2 = person["bbox"]
                rle = mask_utils.merge(mask_utils.frPyObjects([[x1, y1, x2, y1, x2, y2, x1, y2]],
                                                              image["height"], image["width"]))
                keypoints = np.stack([rng.uniform(x1, x2, 17), rng.uniform(y1, y2, 17), np.ones(17)], 1)
                out.append({"image_id": ids[image["file_name"]], "category_id": 1,
                            "score": float(rng.uniform(0.2, 1)), "bbox": [x1, y1, x2 - x1, y2 - y1],
                            "segmentation": {"size": rle["size"], "counts": rle["counts"].decode("ascii")},
                            "keypoints": keypoints.ravel().tolist()})
    return out


@pytest.mark.parametrize("iou_type", ["segm", "bbox", "keypoints"])
def test_fully_labelled_all_row_equals_pycocotools_on_those_images(native_sample, iou_type):
    doc = json.loads(native_sample.read_text())
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    results = _results(official, doc, seed=1)
    expected = _fully_labelled_from_json(doc)
    img_ids = sorted(im["id"] for im in official["images"] if im["file_name"] in expected)
    oracle_full = run_pycocotools(official, copy.deepcopy(results), iou_type)[0]
    oracle = run_pycocotools(official, copy.deepcopy(results), iou_type, {"imgIds": img_ids})[0]
    report = evaluate_results(results, gt=native_sample, iou_type=iou_type, subsets=["all", "moderate"],
                              image_set=["all", "fully-labelled"])
    rows = report.rows()
    assert [(r["image_set"], r["subset"]) for r in rows] == [
        ("all", "all"), ("all", "moderate"), ("fully-labelled", "all"), ("fully-labelled", "moderate")]
    stats = STAT_NAMES[iou_type]
    np.testing.assert_allclose([rows[0][k] for k in stats], oracle_full, rtol=0, atol=1e-12)
    np.testing.assert_allclose([rows[2][k] for k in stats], oracle, rtol=0, atol=1e-12)
    assert rows[2]["AP"] > rows[0]["AP"]  # the box-only persons' detections no longer count as false positives
    # the sample's fully-labelled persons are all moderate
    np.testing.assert_allclose([rows[3][k] for k in stats], oracle, rtol=0, atol=1e-12)
    # on fully-labelled images nothing is ignored: ignore mode scores "all" as official mode
    ignore = evaluate_results(results, gt=native_sample, iou_type=iou_type, subsets=["all"], mode="ignore",
                              image_set="fully-labelled").rows()[0]
    np.testing.assert_allclose([ignore[k] for k in stats], oracle, rtol=0, atol=1e-12)


def test_rows_gain_image_set_only_when_asked(native_sample):
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    results = _results(official, json.loads(native_sample.read_text()), seed=2)
    plain = evaluate_results(results, gt=native_sample, iou_type="bbox").rows()
    assert all("image_set" not in row for row in plain)
    asked = evaluate_results(results, gt=native_sample, iou_type="bbox", image_set="all").rows()
    assert [row.pop("image_set") for row in asked] == ["all"] * 3
    assert asked == plain
    only = evaluate_results(results, gt=native_sample, iou_type="bbox", image_set=["fully-labelled"]).rows()
    assert [row["image_set"] for row in only] == ["fully-labelled"] * 3


def test_a_coco_ground_truth_is_refused_naming_the_file(ochuman_coco_sample):
    with pytest.raises(OCHumanError, match=f"{ochuman_coco_sample.name}: image set fully-labelled needs the native"):
        evaluate_results([], gt=ochuman_coco_sample, iou_type="bbox", image_set="fully-labelled")
    with pytest.raises(OCHumanError, match="needs the native ochuman.json"):
        select_image_set(ochuman.load(ochuman_coco_sample), "fully-labelled")
    # the full set of a COCO file is what it always was
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OCHumanWarning)
        assert evaluate_results([], gt=ochuman_coco_sample, iou_type="bbox", image_set="all").rows()


def test_a_filtered_dataset_and_an_unknown_set_are_refused(native_sample):
    with pytest.raises(OCHumanError, match="choose the image set first"):
        fully_labelled_images(ochuman.load(native_sample, filter="kpt&segm"))
    with pytest.raises(OCHumanError, match="unknown image set 'labelled'"):
        evaluate_results([], gt=native_sample, iou_type="bbox", image_set="labelled")


def test_curves_and_bins_of_each_image_set_stay_apart(native_sample, tmp_path):
    from ochuman.vis import _bin_label, plot_report

    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    results = _results(official, json.loads(native_sample.read_text()), seed=3)
    report = evaluate_results(results, ["det"], gt=native_sample, iou_type="bbox", subsets=["all"], by_max_iou=True,
                              image_set=["all", "fully-labelled"])
    assert list(report.curves()) == [("det (all)", "all"), ("det (fully-labelled)", "all")]
    assert list(dict.fromkeys(_bin_label(row) for row in report.ap_by_max_iou())) == ["det (all)", "det (fully-labelled)"]
    plot_report(report, tmp_path / "pr.png")
    assert (tmp_path / "pr.png").stat().st_size > 0


def test_no_fully_labelled_image_is_said(native_sample, tmp_path):
    doc = json.loads(native_sample.read_text())
    for image in doc["images"]:
        image["annotations"][0]["segms"] = None  # a keypoint-only person in every image
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(doc))
    assert not _fully_labelled_from_json(doc)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", OCHumanWarning)
        rows = evaluate_results([], gt=path, iou_type="bbox", image_set="fully-labelled").rows()
    assert any("no image of the val split is fully-labelled" in str(w.message) for w in caught)
    assert {r["AP"] for r in rows} == {-1.0}


def test_bootstrap_on_the_set_draws_its_images_only(native_sample, tmp_path):
    """A fully-labelled row's bootstrap samples are those of the official file cut down to the
    set's images (the same seed: the same draws over the same images in id order)."""
    doc = json.loads(native_sample.read_text())
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    results = _results(official, doc, seed=3)
    expected = _fully_labelled_from_json(doc)
    kept = {im["id"] for im in official["images"] if im["file_name"] in expected}
    cut = {**{k: v for k, v in official.items() if k != "info"}, "images": [im for im in official["images"] if im["id"] in kept],
           "annotations": [a for a in official["annotations"] if a["image_id"] in kept]}
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(cut))
    report = evaluate_results(copy.deepcopy(results), gt=native_sample, iou_type="bbox", subsets=["all"],
                              image_set=["all", "fully-labelled"], bootstrap=5, seed=4)
    reference = evaluate_results([r for r in copy.deepcopy(results) if r["image_id"] in kept], gt=str(path),
                                 iou_type="bbox", subsets=["all"], bootstrap=5, seed=4)
    on_set = next(ev for ev in report.evaluations if ev.keys == {"image_set": "fully-labelled"})
    np.testing.assert_array_equal(on_set.samples["all"], reference.evaluations[0].samples["all"])
    assert report.rows()[1]["AP_ci"] == reference.rows()[0]["AP_ci"]
