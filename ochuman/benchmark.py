"""The former home of the OCHuman evaluation, kept so that ``from ochuman.benchmark import
evaluate_results, resolve_ground_truth`` goes on working: the evaluation lives in the package
:mod:`ochuman.eval` (the run in :mod:`ochuman.eval.run`)."""
from __future__ import annotations

from ochuman.eval.ground_truth import GroundTruth, ground_truth_from_coco, ground_truth_from_native
from ochuman.eval.report import PAPER_TABLE2, EvalReport, ResultsEvaluation
from ochuman.eval.resolve import find_native_file, resolve_ground_truth
from ochuman.eval.run import evaluate_results
from ochuman.eval.subsets import LEVELS, MAX_IOU_BINS, MODES

__all__ = ["EvalReport", "GroundTruth", "LEVELS", "MAX_IOU_BINS", "MODES", "PAPER_TABLE2", "ResultsEvaluation",
           "evaluate_results", "find_native_file", "ground_truth_from_coco", "ground_truth_from_native",
           "resolve_ground_truth"]
