"""A pycocotools-shaped facade: switch an existing script by changing one import.

    from ochuman.compat import COCO, COCOeval     # was: from pycocotools.coco / .cocoeval

    gt = COCO("instances_val2017.json")
    dt = gt.loadRes("detections.json")
    E = COCOeval(gt, dt, "segm")
    E.params.catIds = [1]                          # Params as in pycocotools
    E.evaluate(); E.accumulate(); E.summarize()
    E.stats, E.eval["precision"]                   # same numbers, same shapes

Differences: ``evaluate()`` does the IoU and matching work in the compiled core and does not
fill ``evalImgs`` (per-image dicts); ``summarize()`` prints through ``print_function``
(pycocotools' console output, the one place this package prints; pass another function to
silence or redirect it). Any categories, crowd regions and ``useCats=0`` are supported; with
``useCats=0`` keypoints are pooled over ``catIds`` as segm and bbox are (pycocotools'
``computeOks`` ignores ``useCats``, finds no pairs and reports every keypoints AP as 0 there).
"""
from __future__ import annotations

import copy
import datetime
import time
from typing import Callable, Optional

import msgspec
import numpy as np
from pycocotools.coco import COCO as _PycocotoolsCOCO
from pycocotools.cocoeval import Params

from ochuman.errors import OCHumanError
from ochuman.evaluate import (
    Annotations, EvalParams, Variant, accumulate as _accumulate, base_state, make_blocks,
)
from ochuman.keypoints import COCO_OKS_SIGMAS
from ochuman.masks import segmentation_to_rle
from ochuman.results import detections_from_records, parse_results, read_results

__all__ = ["COCO", "COCOeval", "Params"]


def _read(path) -> dict:
    try:
        with open(path, "rb") as handle:
            return msgspec.json.decode(handle.read())
    except OSError as err:
        raise OCHumanError(f"{path}: cannot read: {err.strerror or err}") from None
    except msgspec.DecodeError as err:
        raise OCHumanError(f"{path}: not valid JSON ({err})") from None


class COCO(_PycocotoolsCOCO):
    """pycocotools ``COCO`` (same index and methods), with a native JSON reader and a
    vectorised ``loadRes``."""

    def __init__(self, annotation_file=None):
        self.dataset, self.anns, self.cats, self.imgs = {}, {}, {}, {}
        self.imgToAnns, self.catToImgs = {}, {}
        self._detections: Optional[Annotations] = None
        if annotation_file is not None:
            dataset = _read(annotation_file)
            if not isinstance(dataset, dict):
                raise OCHumanError(f"{annotation_file}: annotation file format {type(dataset).__name__} not supported")
            self.dataset = dataset
            self.createIndex()

    def createIndex(self):  # noqa: N802 (pycocotools name)
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
            super().createIndex()

    def loadRes(self, resFile):  # noqa: N802,N803
        """Results (path, list or numpy array of pycocotools' 7-column form) -> a COCO object."""
        if isinstance(resFile, np.ndarray):
            return super().loadRes(resFile)
        source = str(resFile) if isinstance(resFile, str) else "<results>"
        records = read_results(resFile) if isinstance(resFile, str) else parse_results(list(resFile), source)
        images = self.dataset.get("images", [])
        image_ids = np.array([im["id"] for im in images])
        sizes = np.array([[im.get("height", 0), im.get("width", 0)] for im in images], dtype=np.int64).reshape(-1, 2)
        first = records[0] if records else None
        # Decode masks whenever results carry them (Detectron2 writes bbox and segmentation).
        iou_type = "segm" if first is not None and first.segmentation is not None else (
            "keypoints" if first is not None and not first.bbox and first.keypoints is not None else "bbox")
        detections = detections_from_records(records, source, image_ids, sizes,
                                             sorted(self.getCatIds()) or [r.category_id for r in records],
                                             iou_type)
        result = COCO()
        result.dataset["images"] = list(images)
        result.dataset["categories"] = copy.deepcopy(self.dataset.get("categories", []))
        result.dataset["annotations"] = _result_dicts(records, detections)
        result.createIndex()
        result._detections = detections
        return result


def _result_dicts(records, det: Annotations) -> list[dict]:
    anns = []
    for i, record in enumerate(records):
        ann = {"image_id": record.image_id, "category_id": record.category_id, "score": record.score,
               "bbox": det.bbox[i].tolist(), "area": float(det.area[i]), "id": i + 1, "iscrowd": 0}
        if det.counts is not None:
            ann["segmentation"] = {"size": det.mask_size[i].tolist(), "counts": det.counts[i]}
        if record.keypoints is not None:
            ann["keypoints"] = record.keypoints
        anns.append(ann)
    return anns


def _annotations_from_dicts(anns: list, coco: COCO, iou_type: str, is_gt: bool) -> Annotations:
    n = len(anns)
    segm = iou_type == "segm"
    counts, sizes = (None, None)
    if segm:
        counts, sizes = [], np.zeros((n, 2), dtype=np.int64)
        for i, ann in enumerate(anns):
            image = coco.imgs[ann["image_id"]]
            h, w = image["height"], image["width"]
            rle = segmentation_to_rle(ann["segmentation"], h, w)
            counts.append(rle["counts"])
            sizes[i] = rle["size"]
    keypoints = num_keypoints = None
    if iou_type == "keypoints":
        keypoints = np.array([ann["keypoints"] for ann in anns], dtype=np.float64).reshape(n, -1)
        if is_gt:
            num_keypoints = np.array([ann["num_keypoints"] for ann in anns], dtype=np.int64)
    return Annotations(
        image_id=np.array([ann["image_id"] for ann in anns]),
        category_id=np.array([ann["category_id"] for ann in anns], dtype=np.int64),
        ann_id=np.array([ann["id"] for ann in anns], dtype=np.int64),
        bbox=np.array([ann["bbox"] for ann in anns], dtype=np.float64).reshape(n, 4),
        area=np.array([ann["area"] for ann in anns], dtype=np.float64),
        iscrowd=np.array([bool(ann.get("iscrowd", 0)) for ann in anns], dtype=bool),
        score=np.array([ann["score"] for ann in anns], dtype=np.float64) if not is_gt else np.ones(n),
        counts=counts, mask_size=sizes, keypoints=keypoints, num_keypoints=num_keypoints,
    )


class COCOeval:
    """pycocotools ``COCOeval``: ``params``, ``evaluate()``, ``accumulate()``, ``summarize()``,
    ``stats`` and ``eval`` with the same meaning and numbers."""

    def __init__(self, cocoGt: Optional[COCO] = None, cocoDt: Optional[COCO] = None,  # noqa: N803
                 iouType: str = "segm", print_function: Callable = print):  # noqa: N803
        if iouType not in ("segm", "bbox", "keypoints"):
            raise OCHumanError(f"unknown iouType {iouType!r}: expected segm, bbox or keypoints")
        self.cocoGt, self.cocoDt = cocoGt, cocoDt
        self.params = Params(iouType=iouType)
        self.evalImgs: list = []
        self.eval: dict = {}
        self.stats: np.ndarray = np.array([])
        self.print_function = print_function
        self._state = None
        if cocoGt is not None:
            self.params.imgIds = sorted(cocoGt.getImgIds())
            self.params.catIds = sorted(cocoGt.getCatIds())

    def _eval_params(self) -> EvalParams:
        p = self.params
        return EvalParams(
            iou_type=p.iouType, img_ids=list(np.unique(p.imgIds)),
            cat_ids=list(np.unique(p.catIds)) if p.useCats else None,
            iou_thrs=np.asarray(p.iouThrs, dtype=np.float64), rec_thrs=np.asarray(p.recThrs, dtype=np.float64),
            max_dets=sorted(p.maxDets), area_rng=[list(r) for r in p.areaRng], area_rng_lbl=list(p.areaRngLbl),
            use_cats=bool(p.useCats),
            kpt_oks_sigmas=np.asarray(getattr(p, "kpt_oks_sigmas", COCO_OKS_SIGMAS), dtype=np.float64),
        )

    def evaluate(self):
        """Compute every IoU and the matching (results kept for ``accumulate``)."""
        tic = time.time()
        p = self.params  # normalised in place, as pycocotools does (summarize reads maxDets[2])
        p.imgIds = list(np.unique(p.imgIds))
        if p.useCats:
            p.catIds = list(np.unique(p.catIds))
        p.maxDets = sorted(p.maxDets)
        params = self._eval_params()
        img_ids = params.img_ids
        if params.use_cats:
            gt_ids = self.cocoGt.getAnnIds(imgIds=img_ids, catIds=params.cat_ids or [])
            dt_ids = self.cocoDt.getAnnIds(imgIds=img_ids, catIds=params.cat_ids or [])
        else:
            # pycocotools pools an image's annotations category by category in params.catIds
            # order (unlisted categories take no part); that order breaks score and IoU ties.
            gt_ids = [i for c in p.catIds for i in self.cocoGt.getAnnIds(imgIds=img_ids, catIds=[c])]
            dt_ids = [i for c in p.catIds for i in self.cocoDt.getAnnIds(imgIds=img_ids, catIds=[c])]
        gt_anns = self.cocoGt.loadAnns(gt_ids)
        gt = _annotations_from_dicts(gt_anns, self.cocoGt, params.iou_type, True)
        gt = _replace(gt, file_image_ids=np.asarray(img_ids))
        dt = self._columnar_detections(params)
        if dt is None:
            dt = _annotations_from_dicts(self.cocoDt.loadAnns(dt_ids), self.cocoDt, params.iou_type, False)
        if not params.use_cats:
            params.cat_ids = [-1]
            gt = _replace(gt, category_id=np.full(len(gt), -1))
            dt = _replace(dt, category_id=np.full(len(dt), -1))
        blocks = make_blocks(gt, dt, params)
        self._state = (gt, dt, blocks, params)
        self._toc = time.time() - tic

    def _columnar_detections(self, params: EvalParams) -> Optional[Annotations]:
        """The detections ``loadRes`` already validated and decoded, when they serve as they
        are (per-category blocks keep results-file order, as ``getAnnIds`` gives it)."""
        det = getattr(self.cocoDt, "_detections", None)
        if det is None or not params.use_cats or len(det) != len(self.cocoDt.anns):
            return None
        if (params.iou_type == "segm" and det.counts is None) or (
                params.iou_type == "keypoints" and det.keypoints is None):
            return None
        return det

    def accumulate(self, p=None):
        """Fill ``eval``: precision (T, R, K, A, M), recall (T, K, A, M), scores."""
        if self._state is None:
            raise OCHumanError("run evaluate() first")
        gt, dt, blocks, params = self._state
        acc = _accumulate(gt, dt, blocks, params, Variant(base_state(gt, blocks, params)))
        self._accumulated = acc
        T, R, K, A, M = acc.precision.shape
        self.eval = {
            "params": self.params, "counts": [T, R, K, A, M],
            "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S"),
            "precision": acc.precision, "recall": acc.recall, "scores": acc.scores,
        }

    def summarize(self):
        """Print pycocotools' 12 (10) summary lines and set ``stats``."""
        if not self.eval:
            raise OCHumanError("run accumulate() first")
        self.stats = self._accumulated.stats
        p = self.params
        lines = _summary_lines(p.iouType, p.maxDets)
        for (ap, iou, area, dets), value in zip(lines, self.stats):
            title = "Average Precision" if ap else "Average Recall"
            kind = "(AP)" if ap else "(AR)"
            iou_str = f"{p.iouThrs[0]:0.2f}:{p.iouThrs[-1]:0.2f}" if iou is None else f"{iou:0.2f}"
            self.print_function(f" {title:<18} {kind} @[ IoU={iou_str:<9} | area={area:>6s} | maxDets={dets:>3d} ] = {value:0.3f}")

    def __str__(self):
        self.summarize()
        return ""


def _summary_lines(iou_type, max_dets):
    # pycocotools prints (and reads) maxDets=100 on the first line and 20 on every keypoints
    # line whatever params.maxDets holds (-1 when it lacks them).
    if iou_type == "keypoints":
        md = 20
        return [(1, None, "all", md), (1, .5, "all", md), (1, .75, "all", md), (1, None, "medium", md),
                (1, None, "large", md), (0, None, "all", md), (0, .5, "all", md), (0, .75, "all", md),
                (0, None, "medium", md), (0, None, "large", md)]
    return [(1, None, "all", 100), (1, .5, "all", max_dets[2]), (1, .75, "all", max_dets[2]),
            (1, None, "small", max_dets[2]), (1, None, "medium", max_dets[2]), (1, None, "large", max_dets[2]),
            (0, None, "all", max_dets[0]), (0, None, "all", max_dets[1]), (0, None, "all", max_dets[2]),
            (0, None, "small", max_dets[2]), (0, None, "medium", max_dets[2]), (0, None, "large", max_dets[2])]


def _replace(annotations: Annotations, **changes) -> Annotations:
    import dataclasses

    return dataclasses.replace(annotations, **changes)
