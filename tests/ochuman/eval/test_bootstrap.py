"""Bootstrap intervals (:mod:`ochuman.eval.bootstrap`) against a slow resampling reference.

The reference rebuilds each sample as its definition says: the images drawn by
``numpy.random.default_rng(seed).integers(0, n, size=(N, n))`` (the ground truth's images in id
order), an image drawn k times replaced by k consecutive copies (new image ids in that order,
its persons and detections copied in file order), and runs pycocotools on it (official mode; a
range subset on its range file). The fast path must give every sample's numbers exactly.
Workloads have coarse scores, so detections tie inside an image and across images.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import ochuman.eval.run
from ochuman import _evalcore
from ochuman.compat import quietly
from ochuman.eval import bootstrap
from ochuman.eval.run import evaluate_results

SCORES = (0.2, 0.4, 0.6, 0.8, 1.0)
MAX_IOUS = (0.1, 0.3, 0.5, 0.6, 0.75, 0.8, 0.95, 1.0)
#: the pycocotools stats index of each INTERVAL_STATS entry
COCO_INDEX = {"bbox": (0, 1, 2, 8), "keypoints": (0, 1, 2, 5, 6, 7)}


def _workload(seed: int, n_images: int = 14, categories=(1,), keypoints: bool = False):
    """(ground truth dict, results list): random image ids, 0..4 persons per image, near and
    duplicated detections with coarse scores, strays."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(1, 500), size=n_images, replace=False)
    images, annotations, results = [], [], []
    for image_id in ids:
        images.append({"id": int(image_id), "width": 120, "height": 100, "file_name": f"{image_id:06d}.jpg"})
        for _ in range(int(rng.integers(0, 5))):
            w, h = rng.uniform(12, 45, size=2)
            x, y = rng.uniform(0, 120 - w), rng.uniform(0, 100 - h)
            cat = int(rng.choice(categories))
            ann = {"id": len(annotations) + 1, "image_id": int(image_id), "category_id": cat,
                   "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h), "iscrowd": 0,
                   "max_iou": float(rng.choice(MAX_IOUS))}
            if keypoints:
                kx, ky = rng.uniform(x, x + w, size=17), rng.uniform(y, y + h, size=17)
                v = rng.choice([0, 1, 2], size=17, p=[0.2, 0.2, 0.6])
                ann["keypoints"] = np.stack([kx * (v > 0), ky * (v > 0), v], axis=1).ravel().round(2).tolist()
                ann["num_keypoints"] = int((v > 0).sum())
            annotations.append(ann)
            for _ in range(int(rng.choice([0, 1, 1, 1, 2]))):
                jitter = rng.normal(0, 4, size=4)
                other = int(rng.choice(categories))
                det = {"image_id": int(image_id), "category_id": cat if rng.random() < 0.9 else other,
                       "bbox": [float(x + jitter[0]), float(y + jitter[1]), float(max(2, w + jitter[2])),
                                float(max(2, h + jitter[3]))], "score": float(rng.choice(SCORES))}
                if keypoints:
                    k = np.array(ann["keypoints"], dtype=float).reshape(17, 3)
                    k[:, :2] += rng.normal(0, 3, size=(17, 2))
                    k[:, 2] = 1
                    det["keypoints"] = k.ravel().round(2).tolist()
                results.append(det)
        for _ in range(int(rng.integers(0, 3))):  # strays
            w, h = rng.uniform(8, 40, size=2)
            det = {"image_id": int(image_id), "category_id": int(rng.choice(categories)),
                   "bbox": [float(rng.uniform(0, 80)), float(rng.uniform(0, 60)), float(w), float(h)],
                   "score": float(rng.choice(SCORES))}
            if keypoints:
                det["keypoints"] = np.stack([rng.uniform(0, 120, 17), rng.uniform(0, 100, 17), np.ones(17)],
                                            axis=1).ravel().round(2).tolist()
            results.append(det)
    order = rng.permutation(len(results))
    results = [results[k] for k in order]
    gt = {"images": images, "annotations": annotations,
          "categories": [{"id": c, "name": "person" if c == 1 else f"thing{c}"}
                         for c in categories]}
    return gt, results


def _duplicated(gt: dict, results: list, counts: np.ndarray):
    """The sample: each image (id order) replaced by counts[u] consecutive copies."""
    sorted_ids = sorted(image["id"] for image in gt["images"])
    by_id = {image["id"]: image for image in gt["images"]}
    images, annotations, dets = [], [], []
    for u, image_id in enumerate(sorted_ids):
        for _ in range(int(counts[u])):
            new_id = len(images) + 1
            images.append({**by_id[image_id], "id": new_id})
            for ann in gt["annotations"]:
                if ann["image_id"] == image_id:
                    annotations.append({**copy.deepcopy(ann), "id": len(annotations) + 1, "image_id": new_id})
            dets += [{**copy.deepcopy(det), "image_id": new_id} for det in results if det["image_id"] == image_id]
    return {**gt, "images": images, "annotations": annotations}, dets


def _range_file(gt: dict, results: list, lo: float, hi: float):
    """The official range file [lo, hi) of a ground truth, and the results on its images."""
    annotations = [a for a in gt["annotations"] if lo <= a["max_iou"] < hi]
    kept = {a["image_id"] for a in annotations}
    return ({**gt, "images": [i for i in gt["images"] if i["id"] in kept], "annotations": annotations},
            [d for d in results if d["image_id"] in kept])


def _pycocotools(gt: dict, results: list, iou_type: str, cat_ids=None) -> np.ndarray:
    with quietly():
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        dt = coco.loadRes(copy.deepcopy(results))
        evaluator = COCOeval(coco, dt, iou_type)
        if cat_ids is not None:
            evaluator.params.catIds = cat_ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[list(COCO_INDEX[iou_type])]


def _evaluate(tmp_path, gt, results, **kwargs):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    return evaluate_results(copy.deepcopy(results), gt=str(path), **kwargs)


@pytest.mark.parametrize("seed, iou_type", [(0, "bbox"), (1, "bbox"), (2, "keypoints")])
def test_every_sample_equals_pycocotools_on_the_duplicated_images(tmp_path, seed, iou_type):
    gt, results = _workload(seed, keypoints=iou_type == "keypoints")
    samples, draws_seed = 4, 10 + seed
    report = _evaluate(tmp_path, gt, results, iou_type=iou_type, subsets=("all", "hard"),
                       bootstrap=samples, seed=draws_seed)
    n = len(gt["images"])
    draws = np.random.default_rng(draws_seed).integers(0, n, size=(samples, n))
    ev = report.evaluations[0]
    for b in range(samples):
        dup_gt, dup_results = _duplicated(gt, results, np.bincount(draws[b], minlength=n))
        np.testing.assert_array_equal(ev.samples["all"][b, 0], _pycocotools(dup_gt, dup_results, iou_type))
        hard_gt, hard_results = _range_file(dup_gt, dup_results, 0.75, 1.0)
        if hard_results and hard_gt["annotations"]:
            np.testing.assert_array_equal(ev.samples["hard"][b, 0], _pycocotools(hard_gt, hard_results, iou_type))


def test_per_category_samples_equal_pycocotools_per_category(tmp_path):
    gt, results = _workload(3, n_images=12, categories=(1, 2))
    report = _evaluate(tmp_path, gt, results, iou_type="bbox", subsets=("all",), per_category=True,
                       bootstrap=3, seed=5)
    n = len(gt["images"])
    draws = np.random.default_rng(5).integers(0, n, size=(3, n))
    samples = report.evaluations[0].samples["all"]
    assert samples.shape == (3, 3, 4)
    for b in range(3):
        dup_gt, dup_results = _duplicated(gt, results, np.bincount(draws[b], minlength=n))
        np.testing.assert_array_equal(samples[b, 0], _pycocotools(dup_gt, dup_results, "bbox"))
        for k, cat in enumerate((1, 2)):
            np.testing.assert_array_equal(samples[b, 1 + k], _pycocotools(dup_gt, dup_results, "bbox", [cat]))


def test_ignore_mode_samples_equal_the_evaluation_of_the_duplicated_images(tmp_path):
    gt, results = _workload(4)
    report = _evaluate(tmp_path, gt, results, iou_type="bbox", mode="ignore", bootstrap=3, seed=2)
    n = len(gt["images"])
    draws = np.random.default_rng(2).integers(0, n, size=(3, n))
    for b in range(3):
        dup_gt, dup_results = _duplicated(gt, results, np.bincount(draws[b], minlength=n))
        plain = _evaluate(tmp_path, dup_gt, dup_results, iou_type="bbox", mode="ignore")
        for row in plain.rows():
            expected = [row[name] for name, _, _ in bootstrap.INTERVAL_STATS["bbox"]]
            np.testing.assert_array_equal(report.evaluations[0].samples[row["subset"]][b, 0], expected)


@pytest.mark.parametrize("iou_type, mode", [("bbox", "official"), ("keypoints", "official"), ("bbox", "ignore")])
def test_weights_of_one_give_the_evaluation_exactly(tmp_path, monkeypatch, iou_type, mode):
    gt, results = _workload(6, keypoints=iou_type == "keypoints", categories=(1, 2))
    monkeypatch.setattr(ochuman.eval.run, "image_weights", lambda n, samples, seed: np.ones((samples, n), np.int32))
    report = _evaluate(tmp_path, gt, results, iou_type=iou_type, mode=mode, per_category=True, bootstrap=2)
    names = [name for name, _, _ in bootstrap.INTERVAL_STATS[iou_type]]
    rows = report.rows()
    for row in rows:
        column = 0 if row["category"] == "all" else 1 + ["person", "thing2"].index(row["category"])
        values = [row[name] for name in names]
        np.testing.assert_array_equal(report.evaluations[0].samples[row["subset"]][:, column], [values, values])
        assert row["AP_ci"] == [row["AP"], row["AP"]] or row["AP"] == -1
    if mode == "official":  # and the row is pycocotools' (checked elsewhere; once more here)
        np.testing.assert_array_equal([rows[0][name] for name in names], _pycocotools(gt, results, iou_type))


def test_the_same_file_twice_differs_by_zero_on_every_sample(tmp_path):
    gt, results = _workload(7)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    report = evaluate_results([copy.deepcopy(results), copy.deepcopy(results)], ["a", "b"], gt=str(path),
                              iou_type="bbox", bootstrap=30, seed=1)
    for row in report.rows():
        if row["results"] == "a":
            assert row["dAP_vs_first"] is None and row["dAP_ci"] is None
        else:
            assert row["dAP_vs_first"] == 0.0 and row["dAP_ci"] == [0.0, 0.0]


def test_intervals_are_percentiles_of_the_samples_and_the_difference_is_paired(tmp_path):
    gt, results = _workload(8, n_images=20)
    worse = [{**d, "score": d["score"] * (0.5 if k % 3 == 0 else 1.0)} for k, d in enumerate(results)]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    report = evaluate_results([copy.deepcopy(results), worse], ["a", "b"], gt=str(path), iou_type="bbox",
                              subsets=("all",), bootstrap=50, seed=3)
    a, b = (ev.samples["all"][:, 0] for ev in report.evaluations)
    row_a, row_b = report.rows()
    assert row_a["AP_ci"] == list(np.percentile(a[:, 0], [2.5, 97.5]))
    assert row_b["AR100_ci"] == list(np.percentile(b[:, 3], [2.5, 97.5]))
    assert row_b["dAP_vs_first"] == row_b["AP"] - row_a["AP"]
    assert row_b["dAP_ci"] == list(np.percentile(b[:, 0] - a[:, 0], [2.5, 97.5]))
    frame = report.intervals_frame()
    ap_b = frame[(frame.results == "b") & (frame.stat == "AP")].iloc[0]
    assert (ap_b.lo, ap_b.hi, ap_b.diff_lo, ap_b.diff_hi) == (*row_b["AP_ci"], *row_b["dAP_ci"])
    assert ap_b.significant == bootstrap.excludes_zero(row_b["dAP_ci"])


def test_the_seed_fixes_the_draws(tmp_path):
    gt, results = _workload(9)
    runs = [_evaluate(tmp_path, gt, results, iou_type="bbox", bootstrap=20, seed=s).evaluations[0].samples["all"]
            for s in (4, 4, 5)]
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_image_weights_count_the_draws():
    weights = bootstrap.image_weights(7, 5, seed=11)
    draws = np.random.default_rng(11).integers(0, 7, size=(5, 7))
    np.testing.assert_array_equal(weights, [np.bincount(d, minlength=7) for d in draws])
    assert weights.dtype == np.int32 and (weights.sum(axis=1) == 7).all()


def test_without_bootstrap_rows_gain_no_interval_keys(tmp_path):
    gt, results = _workload(10)
    rows = _evaluate(tmp_path, gt, results, iou_type="bbox").rows()
    assert not any(key.endswith("_ci") or key == "dAP_vs_first" for key in rows[0])


def test_a_negative_bootstrap_is_refused(tmp_path):
    gt, results = _workload(10)
    with pytest.raises(ochuman.errors.OCHumanError, match="bootstrap = -1"):
        _evaluate(tmp_path, gt, results, iou_type="bbox", bootstrap=-1)


def _kernel_args(**changes):
    args = dict(fate=np.array([[1], [2]], np.uint8), img=np.array([0, 1], np.int32), run=np.array([1, 1], np.int32),
                lists=np.array([0, 2], np.int64), weights=np.array([[1, 2]], np.int32), images=2,
                npig=np.array([[2]], np.int64), totals=np.array([[[[1, 2]]]], np.int64), rec=np.linspace(0, 1, 101),
                lo=0, hi=1,
                precision=np.empty((1, 1, 1, 101)), recall=np.empty((1, 1, 1)))
    args.update(changes)
    return list(args.values())


def test_the_kernel_reads_pycocotools_precision_on_a_hand_case():
    # image 0 drawn once (a true positive), image 1 twice (a false positive): TP FP FP, 2 persons
    args = _kernel_args()
    _evalcore.weighted_accumulate(*args)
    precision, recall = args[-2], args[-1]
    assert recall[0, 0, 0] == 0.5
    np.testing.assert_array_equal(precision[0, 0, 0], [1 / (1 + 2.220446049250313e-16)] * 51 + [0.0] * 50)


@settings(max_examples=6, deadline=None)
@given(workload_seed=st.integers(0, 2 ** 31), draws_seed=st.integers(0, 2 ** 31))
def test_drawn_workloads_match_pycocotools_per_sample(tmp_path_factory, workload_seed, draws_seed):
    tmp_path = tmp_path_factory.mktemp("drawn")
    gt, results = _workload(workload_seed, n_images=8)
    report = _evaluate(tmp_path, gt, results, iou_type="bbox", subsets=("all",), bootstrap=2,
                       seed=draws_seed)
    n = len(gt["images"])
    draws = np.random.default_rng(draws_seed).integers(0, n, size=(2, n))
    for b in range(2):
        dup_gt, dup_results = _duplicated(gt, results, np.bincount(draws[b], minlength=n))
        if not dup_results:  # pycocotools' loadRes cannot read an empty list
            continue
        np.testing.assert_array_equal(report.evaluations[0].samples["all"][b, 0],
                                      _pycocotools(dup_gt, dup_results, "bbox"))


def test_a_ground_truth_without_images_gives_no_intervals(tmp_path):
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "person"}]}
    with pytest.warns(ochuman.errors.OCHumanWarning):
        (row,) = _evaluate(tmp_path, gt, [], iou_type="bbox", subsets=("all",), bootstrap=5).rows()
    assert row["AP"] == -1 and row["AP_ci"] is None and row["AR100_ci"] is None


def test_visibility_rows_draw_their_samples_and_pair_within_their_class(tmp_path):
    """With --by-visibility every class is its own evaluation: its samples are pycocotools on the
    duplicated images with the other classes' joints at v = 0, and a second results file's
    differences pair with the first file's row of the same class (identical files: all zero)."""
    gt, results = _workload(2, keypoints=True)
    report = _evaluate(tmp_path, gt, [copy.deepcopy(results), copy.deepcopy(results)], names=["A", "B"],
                       iou_type="keypoints", subsets=("all",), by_visibility=True, bootstrap=3, seed=7)
    rows = report.rows()
    assert [(r["results"], r["visibility"]) for r in rows] == [
        (name, v) for name in "AB" for v in ("all", "v=2", "v=1")]
    for row in rows[3:]:
        assert row["dAP_vs_first"] == 0 and row["dAP_ci"] == [0.0, 0.0]
    n = len(gt["images"])
    draws = np.random.default_rng(7).integers(0, n, size=(3, n))
    only_v2 = copy.deepcopy(gt)
    for ann in only_v2["annotations"]:
        kpts = ann["keypoints"]
        kpts[2::3] = [v if v == 2 else 0 for v in kpts[2::3]]
        ann["num_keypoints"] = 0 if ann["num_keypoints"] == 0 else sum(v > 0 for v in kpts[2::3])
    v2 = next(ev for ev in report.evaluations if ev.keys == {"visibility": "v=2"})
    for b in range(3):
        dup_gt, dup_results = _duplicated(only_v2, results, np.bincount(draws[b], minlength=n))
        np.testing.assert_array_equal(v2.samples["all"][b, 0], _pycocotools(dup_gt, dup_results, "keypoints"))
