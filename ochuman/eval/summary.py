"""The summary numbers of pycocotools' ``summarize`` (12, or 10 for keypoints) from the
accumulated precision (T, R, K, A, M) and recall (T, K, A, M): means over cells > -1."""
from __future__ import annotations

import numpy as np

from ochuman.eval.params import EvalParams


def _summary_value(arr: np.ndarray, params: EvalParams, ap: bool, iou_thr=None, area="all", max_dets=100) -> float:
    # As pycocotools' _summarize: a label or maxDets value the params lack selects nothing (-1).
    aind = [i for i, label in enumerate(params.area_rng_lbl) if label == area]
    mind = [i for i, m in enumerate(params.max_dets) if m == max_dets]
    s = arr
    if iou_thr is not None:
        s = s[np.where(iou_thr == params.iou_thrs)[0]]  # (iou_thrs an array: a list raises, as there)
    s = s[:, :, :, aind, mind] if ap else s[:, :, aind, mind]
    valid = s[s > -1]
    return -1.0 if len(valid) == 0 else float(np.mean(valid))


def summarize(precision: np.ndarray, recall: np.ndarray, params: EvalParams) -> np.ndarray:
    """The 12 (10 for keypoints) numbers of pycocotools ``summarize``, in its order."""
    P, Rc = precision, recall
    if params.iou_type == "keypoints":
        md = 20  # pycocotools hard-codes maxDets=20 for keypoints (-1 when 20 is not in max_dets)
        return np.array([
            _summary_value(P, params, True, None, "all", md),
            _summary_value(P, params, True, .5, "all", md),
            _summary_value(P, params, True, .75, "all", md),
            _summary_value(P, params, True, None, "medium", md),
            _summary_value(P, params, True, None, "large", md),
            _summary_value(Rc, params, False, None, "all", md),
            _summary_value(Rc, params, False, .5, "all", md),
            _summary_value(Rc, params, False, .75, "all", md),
            _summary_value(Rc, params, False, None, "medium", md),
            _summary_value(Rc, params, False, None, "large", md),
        ])
    md = params.max_dets
    return np.array([
        _summary_value(P, params, True, None, "all", 100),  # pycocotools: maxDets=100, not md[2]
        _summary_value(P, params, True, .5, "all", md[2]),
        _summary_value(P, params, True, .75, "all", md[2]),
        _summary_value(P, params, True, None, "small", md[2]),
        _summary_value(P, params, True, None, "medium", md[2]),
        _summary_value(P, params, True, None, "large", md[2]),
        _summary_value(Rc, params, False, None, "all", md[0]),
        _summary_value(Rc, params, False, None, "all", md[1]),
        _summary_value(Rc, params, False, None, "all", md[2]),
        _summary_value(Rc, params, False, None, "small", md[2]),
        _summary_value(Rc, params, False, None, "medium", md[2]),
        _summary_value(Rc, params, False, None, "large", md[2]),
    ])
