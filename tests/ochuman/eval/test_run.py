"""evaluate_results on COCO ground truths: the "all" row is pycocotools on the file as it is."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ochuman.compat import quietly
from ochuman.eval.run import evaluate_results


def _rle(x, y, w, h, height=40, width=50):
    bitmap = np.zeros((height, width), np.uint8)
    bitmap[y:y + h, x:x + w] = 1
    rle = mask_utils.encode(np.asfortranarray(bitmap))
    rle["counts"] = rle["counts"].decode()
    return rle


def test_all_keeps_persons_whose_recomputed_max_iou_is_one(tmp_path):
    """Two persons with the same box have MaxIoU 1.0: the official range rule [0, 1) would drop
    them from a range file, but "all" on a COCO file is the file itself."""
    annotations = []
    for k, (x, y, w, h) in enumerate([(5, 5, 20, 30), (5, 5, 20, 30), (30, 2, 15, 20)]):
        annotations.append({"id": k + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                            "bbox": [x, y, w, h], "area": w * h, "segmentation": _rle(x, y, w, h)})
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": 40, "width": 50}],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}], "info": {}}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    results = [{"image_id": 1, "category_id": 1, "score": s, "segmentation": _rle(*box)}
               for s, box in ((0.9, (5, 5, 20, 30)), (0.8, (31, 2, 15, 20)), (0.7, (0, 20, 10, 10)))]
    report = evaluate_results(results, gt=path, subsets=["all", "hard"])
    ours = {row["subset"]: row for row in report.rows()}
    with quietly():
        coco = COCO(str(path))
        E = COCOeval(coco, coco.loadRes(results), "segm")
        E.evaluate(); E.accumulate(); E.summarize()
    assert abs(ours["all"]["AP"] - E.stats[0]) < 1e-12 and abs(ours["all"]["AR100"] - E.stats[8]) < 1e-12
    assert ours["all"]["AR100"] < 1.0  # the second identical person is missed, and counted
    assert ours["hard"]["AP"] == -1.0  # official [0.75, 1.0) holds none of the 1.0 persons


def test_a_results_file_the_scanner_refuses_late_is_read_the_general_way(tmp_path):
    """A counts string written with a JSON escape (\\u0030 for '0') passes the scanner but not
    the strict RLE decoding of the IoU pass: the general path reads it (msgspec unescapes it)
    and the numbers are those of the same detections given as a list."""
    annotations = [{"id": k + 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": [x, y, w, h],
                    "area": w * h, "segmentation": _rle(x, y, w, h)}
                   for k, (x, y, w, h) in enumerate([(5, 5, 20, 30), (30, 2, 15, 20)])]
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": 40, "width": 50}],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    results = [{"image_id": 1, "category_id": 1, "score": s, "bbox": list(box), "segmentation": _rle(*box)}
               for s, box in ((0.9, (5, 5, 20, 30)), (0.8, (31, 2, 15, 20)), (0.7, (0, 20, 10, 10)))]
    assert "0" in results[0]["segmentation"]["counts"]
    text = json.dumps(results)
    first = text.index('"counts": "') + len('"counts": "')
    zero = text.index("0", first)
    path = tmp_path / "results.json"
    path.write_text(text[:zero] + "\\u0030" + text[zero + 1:])
    assert json.loads(path.read_text()) == results
    from ochuman.eval.blocks import make_blocks
    from ochuman.eval.params import EvalParams
    from ochuman.eval.resolve import resolve_ground_truth
    from ochuman.eval.results import detections_from_bytes, masks_are_valid

    ground = resolve_ground_truth(gt=gt_path)
    scanned = detections_from_bytes(path.read_bytes(), "r", ground.image_ids, ground.image_sizes, [1], "segm",
                                    defer_mask_checks=True)
    make_blocks(ground.annotations, scanned, EvalParams("segm"))
    assert not masks_are_valid(scanned)  # the late refusal this test is about
    from_file = evaluate_results(str(path), gt=gt_path, subsets=["all"]).rows()[0]
    from_list = evaluate_results(results, gt=gt_path, subsets=["all"]).rows()[0]
    assert from_file["AP"] == from_list["AP"] > 0
    assert {k: v for k, v in from_file.items() if k != "results"} == {k: v for k, v in from_list.items() if k != "results"}


def _native_two_images() -> dict:
    """Two benchmark images: one with a person of MaxIoU 0.6 (and its partner), one whose two
    persons share a box (MaxIoU 1.0: the official file leaves the image out)."""
    def person(x, y, max_iou):
        keypoints = []
        for k in range(19):
            keypoints += [x + 2 + k % 5, y + 2 + k, 1]
        return {"bbox": [x, y, x + 20, y + 30], "max_iou": max_iou, "keypoints": keypoints,
                "segms": {"outer": [[x, y, x + 20, y, x + 20, y + 30, x, y + 30]], "inner": []}}

    from ochuman.keypoints import OCHUMAN_KEYPOINT_NAMES

    return {"keypoint_names": list(OCHUMAN_KEYPOINT_NAMES),
            "keypoint_visible": {"missing": 0, "vis": 1, "self_occluded": 2, "others_occluded": 3},
            "images": [
                {"image_id": "000001", "file_name": "000001.jpg", "width": 60, "height": 50,
                 "annotations": [person(2, 2, 0.6), person(10, 2, 0.6)]},
                {"image_id": "000002", "file_name": "000002.jpg", "width": 60, "height": 50,
                 "annotations": [person(5, 5, 1.0), person(5, 5, 1.0)]},
            ]}


def test_official_mode_refuses_detections_on_images_the_official_file_lacks(tmp_path):
    """pycocotools on the official val file refuses results for an image it lacks (loadRes'
    assertion); official mode names the first such record in one line; ignore mode scores it."""
    import pytest

    import ochuman
    from ochuman.errors import ResultsError

    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(_native_two_images()))
    official = ochuman.to_coco(ochuman.load(path), "val")
    assert [im["file_name"] for im in official["images"]] == ["000001.jpg"]
    results = [{"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [2, 2, 20, 30]},
               {"image_id": 1, "category_id": 1, "score": 0.9, "bbox": [10, 2, 20, 30]},
               {"image_id": "000002.jpg", "category_id": 1, "score": 0.8, "bbox": [5, 5, 20, 30]}]
    with pytest.raises(ResultsError, match=r"record 2 \(image_id 2\): image 000002.jpg is not in the official"):
        evaluate_results(results, gt=path, iou_type="bbox")
    report = evaluate_results(results, gt=path, iou_type="bbox", mode="ignore", subsets=["hard"])
    assert report.rows()[0]["AP"] > 0
    assert evaluate_results(results[:2], gt=path, iou_type="bbox", subsets=["all"]).rows()[0]["AP"] > 0.99


def test_crowd_regions_stay_ignore_regions_in_every_subset_image(tmp_path):
    """Official mode on a COCO file with crowd regions: a subset keeps the crowd regions of the
    images it keeps (as a range file written with them does), so a detection on a crowd region
    is ignored there too instead of becoming a false positive."""
    boxes = {1: (2, 2, 20, 30), 2: (8, 4, 20, 30), 3: (40, 5, 12, 20)}  # 1, 2 hard; 3 moderate
    max_iou = {1: 0.8, 2: 0.8, 3: 0.6}
    annotations = [{"id": k, "image_id": 1, "category_id": 1, "iscrowd": 0, "bbox": list(b),
                    "area": b[2] * b[3], "segmentation": _rle(*b, height=60, width=80), "max_iou": max_iou[k]}
                   for k, b in boxes.items()]
    crowd = _rle(50, 35, 25, 20, height=60, width=80)
    annotations.append({"id": 4, "image_id": 1, "category_id": 1, "iscrowd": 1, "bbox": [50, 35, 25, 20],
                        "area": 500, "segmentation": crowd})
    gt = {"images": [{"id": 1, "file_name": "a.jpg", "height": 60, "width": 80}],
          "annotations": annotations, "categories": [{"id": 1, "name": "person"}]}
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    results = [{"image_id": 1, "category_id": 1, "score": s, "segmentation": _rle(*box, height=60, width=80)}
               for s, box in ((0.9, (2, 2, 20, 30)), (0.85, (52, 36, 20, 18)), (0.8, (8, 5, 20, 29)),
                              (0.7, (41, 5, 12, 20)))]
    ours = {row["subset"]: row for row in evaluate_results(results, gt=path).rows()}
    for subset, kept in (("all", {1, 2, 3, 4}), ("moderate", {3, 4}), ("hard", {1, 2, 4})):
        range_file = dict(gt, annotations=[a for a in annotations if a["id"] in kept])
        with quietly():
            coco = COCO()
            coco.dataset = json.loads(json.dumps(range_file))
            coco.createIndex()
            E = COCOeval(coco, coco.loadRes(json.loads(json.dumps(results))), "segm")
            E.evaluate(); E.accumulate(); E.summarize()
        for k, name in ((0, "AP"), (1, "AP50"), (8, "AR100")):
            assert abs(ours[subset][name] - E.stats[k]) < 1e-12, (subset, name, ours[subset][name], E.stats[k])


@pytest.mark.differential
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_overflowing_boxes_score_as_pycocotools(data):
    """Finite boxes whose areas overflow (1e308 wide: IoU inf / inf = NaN) through the command's
    engine: pycocotools takes a NaN IoU, and every available gt after it in its scan, as a match."""
    import tempfile
    import warnings

    from ochuman.errors import OCHumanWarning

    side = st.sampled_from([0.0, 1.0, 5.0, 10.0, 20.0, 1e308])
    anns, results = [], []
    for image_id in (1, 2):
        for _ in range(data.draw(st.integers(0, 4))):
            anns.append({"id": len(anns) + 1, "image_id": image_id, "category_id": 1, "iscrowd": int(data.draw(st.booleans())),
                         "bbox": [data.draw(side) for _ in range(4)], "area": data.draw(st.sampled_from([100.0, 1e300]))})
        for _ in range(data.draw(st.integers(1, 5))):
            results.append({"image_id": image_id, "category_id": 1, "bbox": [data.draw(side) for _ in range(4)],
                            "score": data.draw(st.sampled_from([0.1, 0.5, 0.9]))})
    gt = {"images": [{"id": i, "height": 50, "width": 50, "file_name": f"{i}.jpg"} for i in (1, 2)],
          "annotations": anns, "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    with tempfile.TemporaryDirectory() as folder:
        gt_path, results_path = f"{folder}/gt.json", f"{folder}/results.json"
        with open(gt_path, "w") as handle:
            json.dump(gt, handle)
        with open(results_path, "w") as handle:
            json.dump(results, handle)
        with quietly():
            coco = COCO(gt_path)
            evaluation = COCOeval(coco, coco.loadRes(results_path), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        with warnings.catch_warnings():  # (no persons; boxes outside their images: both expected here)
            warnings.simplefilter("ignore", OCHumanWarning)
            warnings.simplefilter("error", RuntimeWarning)  # overflowing sizes are inf, not a warning
            row = evaluate_results(results_path, gt=gt_path, iou_type="bbox", subsets=("all",)).rows()[0]
    names = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    assert [row[name] for name in names] == pytest.approx(list(evaluation.stats), abs=1e-12, nan_ok=True)
