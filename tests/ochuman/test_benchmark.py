"""evaluate_results on COCO ground truths: the "all" row is pycocotools on the file as it is."""
from __future__ import annotations

import contextlib
import io
import json

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ochuman.benchmark import evaluate_results


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
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
        E = COCOeval(coco, coco.loadRes(results), "segm")
        E.evaluate(); E.accumulate(); E.summarize()
    assert abs(ours["all"]["AP"] - E.stats[0]) < 1e-12 and abs(ours["all"]["AR100"] - E.stats[8]) < 1e-12
    assert ours["all"]["AR100"] < 1.0  # the second identical person is missed, and counted
    assert ours["hard"]["AP"] == -1.0  # official [0.75, 1.0) holds none of the 1.0 persons
