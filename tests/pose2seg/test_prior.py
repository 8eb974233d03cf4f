"""The skeleton-prior floor: masks cover the skeleton, scale with the person, and evaluate."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from pycocotools import mask as mask_utils

import ochuman
from ochuman.eval import evaluate_results, resolve_ground_truth
from ochuman.data import SAMPLE_ANNOTATIONS
from pose2seg.predict import persons_from_ground_truth, predict_skeleton_prior
from pose2seg.prior import person_scale, skeleton_prior_mask


def _person(scale=1.0, offset=(40.0, 20.0)):
    """A standing person (17 COCO joints) of torso height 60 * scale."""
    x, y = offset
    s = scale
    joints = {
        "nose": (30, 0), "left_eye": (33, -3), "right_eye": (27, -3), "left_ear": (36, 0),
        "right_ear": (24, 0), "left_shoulder": (45, 25), "right_shoulder": (15, 25),
        "left_elbow": (50, 55), "right_elbow": (10, 55), "left_wrist": (52, 80), "right_wrist": (8, 80),
        "left_hip": (40, 85), "right_hip": (20, 85), "left_knee": (42, 125), "right_knee": (18, 125),
        "left_ankle": (43, 160), "right_ankle": (17, 160),
    }
    from ochuman.keypoints import COCO_KEYPOINT_NAMES

    return np.array([[x + s * joints[n][0], y + s * joints[n][1], 2] for n in COCO_KEYPOINT_NAMES], dtype=float)


def test_mask_covers_every_labelled_joint_and_stays_near_the_skeleton():
    keypoints = _person()
    mask = skeleton_prior_mask(keypoints, 240, 160)
    for x, y, _ in keypoints:
        assert mask[int(round(y)), int(round(x))] == 1
    assert mask[5, 5] == 0 and mask[230, 150] == 0
    assert person_scale(keypoints) == 60.0


def test_mask_scales_with_the_person_and_ignores_missing_joints():
    small = skeleton_prior_mask(_person(0.5), 240, 160).sum()
    large = skeleton_prior_mask(_person(1.0), 240, 160).sum()
    assert 3.0 < large / small < 5.0  # area ~ scale squared
    missing = _person()
    missing[:, 2] = 0
    assert skeleton_prior_mask(missing, 240, 160).sum() == 0


def test_floor_on_the_embedded_sample_goes_through_ochuman_eval():
    gt = resolve_ground_truth(gt=SAMPLE_ANNOTATIONS)
    persons = persons_from_ground_truth(gt)
    results = predict_skeleton_prior(gt, persons)
    assert len(results) == 16 and {r["image_id"] for r in results} == set(range(1, 11))
    report = evaluate_results(results, gt=gt)
    ap = {row["subset"]: row["AP"] for row in report.rows()}
    assert 0.0 < ap["all"] < 0.5  # a floor: above nothing, far below a model
    # Most masks overlap their own person more than any other person of the image.
    dataset = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    own = 0
    for k, result in enumerate(results):
        same_image = list(np.flatnonzero(dataset.image_index == dataset.image_index[k]))
        ious = mask_utils.iou([result["segmentation"]], [dataset.rles[i] for i in same_image], [0] * len(same_image))
        own += int(np.argmax(ious) == same_image.index(k))
    assert own >= 12, own


def test_prior_runs_without_torch():
    code = ("import sys; import pose2seg.prior, pose2seg.predict;"
            "assert 'torch' not in sys.modules, 'torch loaded'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_keypoints_far_outside_the_image_are_clipped_not_a_crash():
    """A joint at 1e12 (a detector's garbage, a unit error) ends a limb far outside: what falls
    inside the image is the limb towards it, as drawn with the joint moved along the same ray
    to 1e4 pixels away; the torso polygon likewise. A person wholly far away draws nothing."""
    from ochuman.keypoints import COCO_KEYPOINT_NAMES

    wrist, hip = COCO_KEYPOINT_NAMES.index("left_wrist"), COCO_KEYPOINT_NAMES.index("left_hip")
    for joint in (wrist, hip):
        for direction in ((1.0, 0.3), (-0.2, -1.0)):
            near, far = _person(), _person()
            d = np.array(direction) / np.hypot(*direction)
            near[joint, :2] = near[joint, :2] + 1e4 * d
            far[joint, :2] = far[joint, :2] + 1e12 * d
            expected = skeleton_prior_mask(near, 240, 160, scale=60.0)
            got = skeleton_prior_mask(far, 240, 160, scale=60.0)
            # the same shapes up to rounding along their edges (fixed-point vertices)
            assert np.count_nonzero(got != expected) <= 0.01 * expected.sum(), (joint, direction)
    gone = _person()
    gone[:, :2] += 1e15
    assert skeleton_prior_mask(gone, 240, 160).sum() == 0
    wild = _person()
    wild[3, :2] = [-1e300, 1e300]
    assert skeleton_prior_mask(wild, 240, 160).shape == (240, 160)  # its own scale: huge, still drawn
