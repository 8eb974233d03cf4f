"""OCHuman evaluation: COCO AP (segm, bbox, keypoints), identical to pycocotools' COCOeval, with
the occlusion subsets, over columnar annotations and any number of ground-truth *variants*
evaluated in one pass. One module per step of one ``ochuman eval``:

    resolve        where the ground truth comes from (--gt file, dataset root), via cache
    cache          disk cache of ground truths built from native ochuman.json files
    ground_truth   GroundTruth: the persons as Annotations + MaxIoU, official / extra flags
    results        results files -> detection Annotations (what pycocotools loadRes derives)
    annotations    Annotations: N parallel arrays; masks a MaskTable (ochuman.rle)
    params         EvalParams (pycocotools Params), STAT_NAMES
    blocks         (category, image) blocks, detections by score, cut at maxDets[-1]
    iou            box IoU, mask IoU and OKS of every pair of each block (compiled core)
    matching       ground-truth states, variants and greedy matching (compiled core)
    accumulation   precision / recall arrays (compiled core); evaluate(): one plain COCOeval
    summary        the 12 (10) numbers of pycocotools' summarize
    subsets        occlusion subsets as variants, both modes; the nearest-person rule
    report         EvalReport (rows, AP per MaxIoU bin, curves, paper rows), per-person rows
    image_sets     image sets (all, fully-labelled) of the ground truth and of a dataset
    visibility     keypoint visibility classes; OKS restricted to the joints of one class
    breakdown      one evaluation per (image set, visibility class), rows keyed by them
    errors         error classes at one IoU threshold and their dAP (TIDE's oracle fixes)
    run            evaluate_results: results files + ground truth -> EvalReport

A variant says, per ground-truth annotation, whether it counts (0), is an ignore region (1) or
is absent (2), and which images take part. Area ranges are variants; so are occlusion subsets.

pycocotools behaviour reproduced on purpose (and checked against it in the tests):

- detections are sorted by score with a stable sort (ties keep results-file order) and cut to
  ``maxDets[-1]`` per (image, category) before IoUs; ground truths keep file order;
- ``ignore`` = ``iscrowd`` (pycocotools overwrites any ``ignore`` flag the file has); for
  keypoints also ``num_keypoints == 0``;
- a detection may match a crowd region many times; IoU thresholds are capped at ``1 - 1e-10``;
  a detection takes the best counted match and only then an ignored one;
- crowd IoU is intersection over the detection's area; bbox IoU uses ``[x, y, w, h]``
  without +1; OKS uses the ground truth's ``area`` and its box enlarged 2x when no ground-truth
  keypoint is labelled;
- matches are recorded by annotation id, so a ground truth whose id is 0 counts as unmatched
  (a pycocotools quirk, kept so that numbers agree);
- unmatched detections outside an area range are ignored; precision is made monotone and read
  at 101 recall points with ``searchsorted(..., "left")``; -1 marks empty cells; ``stats`` are
  means over cells > -1.

The names below are imported on first use (``from ochuman.eval import evaluate_results``), so
that importing one step does not import the others.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "evaluate_results": "ochuman.eval.run",
    "resolve_ground_truth": "ochuman.eval.resolve", "find_native_file": "ochuman.eval.resolve",
    "GroundTruth": "ochuman.eval.ground_truth",
    "EvalReport": "ochuman.eval.report",
    "Annotations": "ochuman.eval.annotations",
    "EvalParams": "ochuman.eval.params",
    "evaluate": "ochuman.eval.accumulation",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ochuman.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
