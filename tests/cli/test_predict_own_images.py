"""`pose2seg predict` on your own images: no ground-truth file, keypoints from AlphaPose (records
naming image files) or OpenPose (a --write_json folder), masks written as a COCO file.

The oracle of each mask is the skeleton prior drawn directly from the keypoints as the command
labels them; the COCO file is read back by pycocotools (masks, areas, boxes)."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

import ochuman
from cli.ochuman_cmd import main as ochuman_main
from cli.pose2seg_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from ochuman.keypoints import COCO_KEYPOINT_NAMES, OPENPOSE_BODY_25_NAMES
from pose2seg.prior import skeleton_prior_mask

THRESHOLD = 0.3


@pytest.fixture(scope="module")
def own(tmp_path_factory):
    """The sample's images as "own images", with its persons' keypoints written by AlphaPose
    (alphapose-results.json; halpe-26.json: the same persons with 9 more joints) and by OpenPose
    (BODY_25 folder): labelled joints get confidence 0.9 or 0.25 (below THRESHOLD), the others 0."""
    root = tmp_path_factory.mktemp("own")
    images, openpose = root / "images", root / "openpose"
    shutil.copytree(SAMPLE_IMAGES, images)
    openpose.mkdir()
    gt = ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")
    names = {im["id"]: im["file_name"] for im in gt["images"]}
    rng = np.random.default_rng(0)
    records, frames = [], {}
    for ann in gt["annotations"]:
        if ann["num_keypoints"] == 0:
            continue
        joints = np.array(ann["keypoints"], dtype=np.float64).reshape(17, 3)
        joints[:, 2] = np.where(joints[:, 2] > 0, rng.choice([0.9, 0.25], 17), 0.0)
        records.append({"image_id": names[ann["image_id"]], "category_id": 1, "keypoints": joints.reshape(-1).tolist(),
                        "score": float(rng.uniform(0.5, 1)), "box": ann["bbox"], "idx": [len(records)]})
        body_25 = np.zeros((25, 3))
        body_25[[OPENPOSE_BODY_25_NAMES.index(n) for n in COCO_KEYPOINT_NAMES]] = joints
        frames.setdefault(names[ann["image_id"]], []).append({"person_id": [-1], "pose_keypoints_2d":
                                                              body_25.reshape(-1).tolist()})
    (root / "alphapose-results.json").write_text(json.dumps(records))
    halpe = [{**r, "keypoints": r["keypoints"] + rng.uniform(0, 300, 27).tolist()} for r in records]  # + 9 joints
    (root / "halpe-26.json").write_text(json.dumps(halpe))
    for name, people in frames.items():
        (openpose / f"{name.rsplit('.', 1)[0]}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return root, records


def _predict(*args):
    result = CliRunner().invoke(main, ["predict", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def _labelled(joints: list) -> np.ndarray:
    kp = np.array(joints, dtype=np.float64).reshape(17, 3)
    kp[:, 2] = np.where(kp[:, 2] >= THRESHOLD, 2, 0)
    return kp


def test_skeleton_prior_on_alphapose_and_openpose_outputs_is_a_coco_file(own, tmp_path):
    root, records = own
    outs = {}
    for source in ("alphapose-results.json", "halpe-26.json", "openpose"):
        out = tmp_path / f"{source}.out.json"
        said = _predict("--model", "skeleton-prior", "--images", root / "images", "--keypoints", root / source,
                        "--kpt-threshold", THRESHOLD, "--out", out)
        assert said == f"{out}: 16 masks on 10 images (a COCO file: images, and annotations with masks, keypoints " \
                       "and scores)\n"
        outs[source] = json.loads(out.read_text())
    coco = COCO(str(tmp_path / "alphapose-results.json.out.json"))
    names = sorted({r["image_id"] for r in records})
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == names
    # persons in the file's order: AlphaPose's record order
    for ann, record in zip([coco.anns[k] for k in sorted(coco.anns)], records):
        image = coco.imgs[ann["image_id"]]
        assert image["file_name"] == record["image_id"]
        labelled = _labelled(record["keypoints"])
        expected = skeleton_prior_mask(labelled, image["height"], image["width"])
        np.testing.assert_array_equal(coco.annToMask(ann), expected)
        assert ann["area"] == expected.sum() and ann["score"] == record["score"]
        np.testing.assert_array_equal(ann["bbox"], mask_utils.toBbox(coco.annToRLE(ann)))
        assert ann["keypoints"] == np.where(labelled[:, 2:] > 0, labelled, 0).reshape(-1).tolist()
        assert ann["num_keypoints"] == int((labelled[:, 2] > 0).sum()) and ann["iscrowd"] == 0
    # OpenPose names the same persons, image by image (files in stem order): the same masks
    assert outs["halpe-26.json"]["annotations"] == outs["alphapose-results.json"]["annotations"]
    alpha, open_ = outs["alphapose-results.json"], outs["openpose"]
    assert alpha["images"] == open_["images"]
    by_image = lambda f: sorted((a["image_id"], a["segmentation"]["counts"]) for a in f["annotations"])  # noqa: E731
    assert by_image(alpha) == by_image(open_)
    # OpenPose gives no score: a person's is the mean confidence of its 17 joints
    score_of = {a["segmentation"]["counts"]: a["score"] for a in open_["annotations"]}
    for ann, record in zip(alpha["annotations"], records):
        confidence = np.array(record["keypoints"]).reshape(17, 3)[:, 2]
        assert score_of[ann["segmentation"]["counts"]] == pytest.approx(confidence.mean())


def test_the_coco_file_is_drawn_and_counted_by_ochuman(own, tmp_path):
    root, _ = own
    out = tmp_path / "pred.json"
    _predict("--model", "skeleton-prior", "--images", root / "images", "--keypoints", root / "openpose", "--out", out)
    picture = tmp_path / "one.png"
    shown = CliRunner().invoke(ochuman_main, ["show", str(out), "--images", str(root / "images"), "--image-id",
                                              "000002.jpg", "--out", str(picture)])
    assert shown.exit_code == 0 and shown.output == f"{picture}: 000002.jpg, 2 persons\n", shown.output
    stats = CliRunner().invoke(ochuman_main, ["stats", str(out), "--format", "json"])
    assert stats.exit_code == 0 and json.loads(stats.output)["persons"] == 16, stats.output


def test_the_same_keypoints_with_gt_give_the_same_masks_keyed_by_its_ids(own, tmp_path):
    """--gt with AlphaPose's file names (COCO or Halpe-26 joints) or an OpenPose folder (stems of
    its file names): the results file keyed by the ground truth's ids holds the masks of the
    own-images run."""
    root, records = own
    own_out = tmp_path / "own.json"
    _predict("--model", "skeleton-prior", "--images", root / "images", "--keypoints", root / "openpose",
             "--kpt-threshold", THRESHOLD, "--out", own_out)
    own_file = json.loads(own_out.read_text())
    name_of = {im["id"]: im["file_name"] for im in own_file["images"]}
    expected = sorted((name_of[a["image_id"]], a["segmentation"]["counts"]) for a in own_file["annotations"])
    gt = ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")
    gt_name = {im["id"]: im["file_name"] for im in gt["images"]}
    for source in ("alphapose-results.json", "halpe-26.json", "openpose"):
        out = tmp_path / f"{source}.gt.json"
        _predict("--model", "skeleton-prior", "--gt", SAMPLE_ANNOTATIONS, "--keypoints", root / source,
                 "--kpt-threshold", THRESHOLD, "--out", out)
        results = json.loads(out.read_text())
        assert sorted((gt_name[r["image_id"]], r["segmentation"]["counts"]) for r in results) == expected


def test_without_gt_the_skeleton_prior_does_not_load_torch(own, tmp_path):
    root, _ = own
    out = tmp_path / "floor.json"
    code = ("import sys; from cli.pose2seg_cmd import main;"
            "main(sys.argv[1:], standalone_mode=False);"
            "assert 'torch' not in sys.modules, 'torch was loaded'")
    done = subprocess.run([sys.executable, "-c", code, "predict", "--model", "skeleton-prior", "--images",
                           str(root / "images"), "--keypoints", str(root / "openpose"), "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(out.read_text())["annotations"]) == 16


def _write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", ["no images", "no keypoints", "image ids", "outside", "missing image",
                                  "openpose length", "openpose stem", "gt stem"])
def test_bad_inputs_are_one_line_errors_and_write_nothing(own, tmp_path, case):
    root, _ = own
    images = root / "images"
    record = {"image_id": "000001.jpg", "category_id": 1, "keypoints": [0] * 51, "score": 1.0}
    folder = tmp_path / "op"
    folder.mkdir()
    args, expected = {
        "no images": (["--keypoints", root / "openpose"],
                      "Error: --images DIR is needed without --gt: the images the keypoints name are read there"),
        "no keypoints": (["--images", images], "Error: --gt FILE is needed (its persons are segmented), or, for "
                                               "your own images, --keypoints FILE|DIR and --images DIR"),
        "image ids": (["--images", images, "--keypoints", _write(tmp_path / "ids.json", json.dumps([{**record,
                                                                                               "image_id": 1}]))],
                      f"Error: {tmp_path / 'ids.json'}: record 0 (image_id 1): a number names no image file: give "
                      "--gt FILE, whose images it numbers, or write the image's file name as image_id (as "
                      "AlphaPose does)"),
        "outside": (["--images", images, "--keypoints", _write(tmp_path / "outside.json", json.dumps([{
            **record, "image_id": "../000001.jpg"}]))],
                    f"Error: {tmp_path / 'outside.json'}: record 0 (image_id '../000001.jpg'): '../000001.jpg' points "
                    "outside the images folder; refused"),
        "missing image": (["--images", images, "--keypoints", _write(tmp_path / "k.json", json.dumps([{
            **record, "image_id": "nope.jpg"}]))],
                          f"Error: {images / 'nope.jpg'}: the image of record 0 (image_id 'nope.jpg') in "
                          f"{tmp_path / 'k.json'} is missing or unreadable"),
        "openpose length": (["--images", images, "--keypoints", folder],
                            f"Error: {folder / '000001_keypoints.json'}: people[0]: pose_keypoints_2d: expected 75 "
                            "(BODY_25) or 54 (COCO-18) numbers, got 51"),
        "openpose stem": (["--images", images, "--keypoints", folder],
                          f"Error: {folder / 'zz_keypoints.json'}: no image named zz.* (.jpg, .jpeg, .png, ...) in "
                          f"{images}"),
        "gt stem": (["--gt", SAMPLE_ANNOTATIONS, "--keypoints", folder],
                    f"Error: {folder / 'zz_keypoints.json'}: no image of {SAMPLE_ANNOTATIONS} is named zz.*"),
    }[case]
    people = [{"pose_keypoints_2d": [0] * (51 if case == "openpose length" else 75)}]
    _write(folder / f"{'zz' if 'stem' in case else '000001'}_keypoints.json", json.dumps({"people": people}))
    out = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", *map(str, args), "--out", str(out)])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    assert result.output.splitlines() == [expected]
    assert not out.exists()


@pytest.mark.model
def test_a_checkpoint_segments_own_images(own, tmp_path):
    import torch

    from pose2seg.model import ModelConfig, Pose2Seg
    from pose2seg.weights import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(input_size=64, units=1))
    ckpt = tmp_path / "m.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": model.state_dict(),
                "config": model.checkpoint_config()}, ckpt)
    root, records = own
    out = tmp_path / "pred.json"
    _predict("--checkpoint", ckpt, "--images", root / "images", "--keypoints", root / "alphapose-results.json",
             "--batch-size", 3, "--out", out)
    coco = COCO(str(out))
    assert len(coco.anns) == 16 and [coco.anns[k]["score"] for k in sorted(coco.anns)] == [r["score"] for r in records]
    for ann in coco.anns.values():
        image = coco.imgs[ann["image_id"]]
        assert coco.annToMask(ann).shape == (image["height"], image["width"])
        assert ann["area"] == coco.annToMask(ann).sum()
