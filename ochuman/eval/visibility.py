"""Keypoint AP by visibility class (``ochuman eval --iou-type keypoints --by-visibility``).

Classes of a ground-truth joint (the 17 COCO joints evaluated):

- native ``ochuman.json``: its own codes, ``visible`` (1), ``self-occluded`` (2) and
  ``occluded-by-other`` (3) (:attr:`GroundTruth.keypoint_codes`);
- a COCO-format file: ``v=2`` (labelled and visible) and ``v=1`` (labelled, not visible); in an
  official OCHuman COCO-format file v=2 holds the visible and self-occluded joints, v=1 those
  occluded by another person. Joints with any other positive v are in neither class.

OKS restricted to class c, for a detection d and a ground-truth person g with the set J_c(g) of
its joints of class c:

    OKS_c(d, g) = sum over k in J_c(g) of exp(-e_k) / |J_c(g)|,
    e_k = ((x_k^d - x_k^g)^2 + (y_k^d - y_k^g)^2) / (2 s^2 (2 sigma_k)^2),

with COCO's sigmas and s^2 the person's ``area`` plus eps, unchanged: the sum and the count run
over the joints of class c only; the detection's keypoints are untouched (its other joints
take no part). A person with no joint of class c (and one the full evaluation ignores: a crowd
region, ``num_keypoints`` 0) is an ignore region for that class, as pycocotools ignores a
person whose ``num_keypoints`` is 0: a detection matched to it (through the box-based OKS
pycocotools uses for a person without labelled joints) is neither a true nor a false positive,
and the person does not count in recall. Everything else (subsets, modes, area ranges, image
sets) is unchanged. A consequence of pycocotools' rule that a detection takes a counted person
before an ignored one: the detection of a person without joints of class c may match another,
heavily overlapping person whose class-c joints lie on its own, so even perfect detections can
score below 1 on a class (AP over every joint is unaffected).

That is exactly pycocotools' ``computeOks`` and matching on a rewritten ground truth whose
joints of the other classes have v = 0 and whose ``num_keypoints`` is |J_c(g)| (0 where it was
0), and it is computed so: the compiled OKS path is given that masked visibility array
(checked against pycocotools on such rewritten files, and against a per-class reference).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ochuman.errors import OCHumanError
from ochuman.eval.annotations import Annotations
from ochuman.eval.ground_truth import GroundTruth

#: (row name, native OCHuman code) of the classes of a native ground truth
NATIVE_CLASSES = (("visible", 1), ("self-occluded", 2), ("occluded-by-other", 3))
#: (row name, COCO v) of the classes of a COCO-format ground truth
COCO_CLASSES = (("v=2", 2), ("v=1", 1))
#: the row of the ordinary OKS, over every labelled joint
ALL_JOINTS = "all"


def check_by_visibility(iou_type: str) -> None:
    """AP by visibility is keypoint AP: refuse another iou type."""
    if iou_type != "keypoints":
        raise OCHumanError(f"--by-visibility needs --iou-type keypoints (OKS over the joints of one class), not {iou_type}")


def visibility_classes(ground: GroundTruth) -> tuple[tuple[str, int], ...]:
    """(name, code) of the ground truth's classes: native codes, or COCO's v."""
    return NATIVE_CLASSES if ground.keypoint_codes is not None else COCO_CLASSES


def joint_codes(ground: GroundTruth) -> np.ndarray:
    """(N, K) the class code of every joint of every person: native codes, or COCO's v."""
    if ground.keypoint_codes is not None:
        return ground.keypoint_codes
    return ground.annotations.keypoints[:, 2::3]


def restricted_annotations(annotations: Annotations, codes: np.ndarray, code: int) -> Annotations:
    """The ground truth as OKS of class ``code`` sees it: v = 0 for every joint whose code
    (``codes`` (N, K)) is not ``code``; ``num_keypoints`` the joints left (0 where it was 0)."""
    keypoints = annotations.keypoints.copy()
    in_class = codes == code
    keypoints[:, 2::3] = np.where(in_class, keypoints[:, 2::3], 0)
    labelled = np.count_nonzero(in_class & (keypoints[:, 2::3] > 0), axis=1)
    num_keypoints = np.where(annotations.num_keypoints == 0, 0, labelled).astype(annotations.num_keypoints.dtype)
    return replace(annotations, keypoints=keypoints, num_keypoints=num_keypoints)


def visibility_ground_truths(ground: GroundTruth) -> list[tuple[str, GroundTruth]]:
    """(class name, the ground truth restricted to that class) for each class, in order."""
    codes = joint_codes(ground)
    return [(name, replace(ground, annotations=restricted_annotations(ground.annotations, codes, code)))
            for name, code in visibility_classes(ground)]
