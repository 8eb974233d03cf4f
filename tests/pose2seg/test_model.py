"""Pose2Seg model glue: letterbox + align + AlignReverse geometry, prediction, checkpoints."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from click.testing import CliRunner

import ochuman
from cli.pose2seg_cmd import main as pose2seg_main
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from pose2seg.model import FEATURE_STRIDE, ModelConfig, Pose2Seg, letterbox, letterbox_matrix, paste_masks
from pose2seg.weights import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, WeightsError, import_official_weights

pytestmark = pytest.mark.model  # the full network: make test, not make test-fast


def test_paste_masks_equals_opencv_inverse_warp():
    rng = np.random.default_rng(0)
    probs = rng.random((3, 64, 64)).astype(np.float32)
    matrices = []
    for k in range(3):
        angle, scale = rng.uniform(-0.5, 0.5), rng.uniform(0.1, 0.4)
        c, s = scale * np.cos(angle), scale * np.sin(angle)
        matrices.append([[c, -s, rng.uniform(-10, 30)], [s, c, rng.uniform(-10, 30)], [0, 0, 1]])
    matrices = np.array(matrices)
    ours = paste_masks(torch.from_numpy(probs), torch.from_numpy(matrices).float(), 90, 120).numpy()
    for k in range(3):
        expected = cv2.warpAffine(probs[k], matrices[k][:2], (120, 90),
                                  flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0)
        np.testing.assert_allclose(ours[k], expected, atol=2e-3)  # OpenCV's fixed-point bilinear


def test_aligned_then_reversed_real_masks_come_back():
    """Warp each real sample person's mask into its aligned frame and back: the align chain and
    AlignReverse are inverse to each other wherever the aligned window holds the person. The
    frame is sampled 4x finer than the model's 64x64 so that resolution (thin limbs of a tall
    person) does not hide a geometry error; at 64x64 the median IoU is still ~0.94."""
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    model = Pose2Seg()
    ious = []
    for i in range(len(data)):
        image = data.images[data.image_index[i]]
        mask = ochuman.masks.rle_to_bitmap(data.rles[i]).astype(np.float32)
        m1 = letterbox_matrix(image.height, image.width, 512)
        kp = data.keypoints[i].copy()
        kp[:, :2] = kp[:, :2] @ m1[:2, :2].T + m1[:2, 2]
        kp[data.keypoints[i][:, 2] <= 0] = 0
        m3 = model.align_matrices(torch.tensor(kp[None], dtype=torch.float64))[0].numpy()
        m2 = np.diag([1 / FEATURE_STRIDE, 1 / FEATURE_STRIDE, 1])
        mask_matrix = np.diag([4, 4, 1]) @ m3 @ m2 @ m1
        aligned = cv2.warpAffine(mask, mask_matrix[:2], (256, 256), flags=cv2.INTER_LINEAR)
        # Only what the aligned window sees can come back: compare on the window's footprint.
        footprint = paste_masks(torch.ones(1, 256, 256), torch.tensor(mask_matrix[None]).float(),
                                image.height, image.width)[0].numpy() > 0.5
        back = paste_masks(torch.from_numpy(aligned[None]), torch.tensor(mask_matrix[None]).float(),
                           image.height, image.width)[0].numpy() > 0.5
        seen = (mask > 0) & footprint
        if seen.sum() > 2000:
            ious.append((back & seen).sum() / (back | seen).sum())
    assert len(ious) >= 10
    assert np.median(ious) >= 0.95, ious


def test_predict_single_and_batch_agree_and_have_image_shapes():
    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(input_size=256, units=2)).eval()
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    images = [data.read_image(k) for k in (0, 1)]
    keypoints = [data.keypoints[data.image_index == k] for k in (0, 1)]
    batch = model.predict(images, keypoints, score="mask")
    for k in (0, 1):
        masks, scores = model.predict(images[k], keypoints[k], score="mask")
        assert masks.shape == (len(keypoints[k]),) + images[k].shape[:2] and masks.dtype == np.uint8
        np.testing.assert_array_equal(masks, batch[k][0])
        np.testing.assert_allclose(scores, batch[k][1], atol=1e-5)
    _, official = model.predict(images[0], keypoints[0])
    assert official.tolist() == [1.0, 1.0]


def test_table5_ablations_run():
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    image, kp = data.read_image(0), data.keypoints[data.image_index == 0]
    boxes = data.bbox_xywh[data.image_index == 0].copy()
    boxes[:, 2:] += boxes[:, :2]
    for config in (ModelConfig(input_size=256, units=1, align="gt-box"),
                   ModelConfig(input_size=256, units=1, align="keypoint-box", alpha=0.5, skeleton=False)):
        masks, _ = Pose2Seg(config).eval().predict(image, kp, boxes_xyxy=[boxes])
        assert masks.shape == (2,) + image.shape[:2]


def test_checkpoints_round_trip_and_official_import_samples_faithfully(tmp_path):
    torch.manual_seed(1)
    model = Pose2Seg(ModelConfig(input_size=256)).eval()
    path = tmp_path / "model.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "state_dict": model.state_dict(), "config": model.checkpoint_config()}, path)
    loaded = Pose2Seg.from_checkpoint(path)
    assert loaded.config == model.config
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    image, kp = data.read_image(2), data.keypoints[data.image_index == 2]
    np.testing.assert_array_equal(model.predict(image, kp)[0], loaded.predict(image, kp)[0])
    release = tmp_path / "pose2seg_release.pkl"
    torch.save(Pose2Seg().state_dict(), release)
    import_official_weights(release, tmp_path / "official.pt")
    official = Pose2Seg.from_checkpoint(tmp_path / "official.pt")
    assert official.config.sampling == "faithful" and official.config.input_size == 512


def _checkpoint_file(path, state_dict, config):
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": state_dict,
                "config": config}, path)
    return path


@pytest.mark.parametrize("case, fragment", [
    ("wrong shape", "wrong shape (segnet.pred_small.bias (3) != (2))"),
    ("extra key", "unexpected (segnet.extra.weight)"),
    ("unknown config field", "config: unknown model setting 'colour'"),
    ("bad config value", "config: align: expected one of"),
    ("config of another model", "missing"),
])
def test_a_checkpoint_that_does_not_fit_is_one_line(tmp_path, case, fragment):
    """`pose2seg predict --checkpoint` of a file with wrong shapes, extra keys or a wrong config:
    one line naming the file, exit 1, no traceback, no results file."""
    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(input_size=64, units=1))
    state = dict(model.state_dict())
    config = model.checkpoint_config()
    if case == "wrong shape":
        state["segnet.pred_small.bias"] = torch.zeros(3)
    elif case == "extra key":
        state["segnet.extra.weight"] = torch.zeros(1)
    elif case == "unknown config field":
        config = {"model": {**config["model"], "colour": "red"}}
    elif case == "bad config value":
        config = {"model": {**config["model"], "align": "sideways"}}
    else:
        config = {"model": {**config["model"], "units": 2}}
    ckpt = _checkpoint_file(tmp_path / "m.pt", state, config)
    with pytest.raises(WeightsError) as info:
        Pose2Seg.from_checkpoint(ckpt)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{ckpt}: ") and fragment in str(info.value)
    out = tmp_path / "preds.json"
    result = CliRunner().invoke(pose2seg_main, ["predict", "--checkpoint", str(ckpt), "--gt", str(SAMPLE_ANNOTATIONS),
                                                "--images", str(SAMPLE_IMAGES), "--out", str(out)])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {ckpt}: ") and fragment in lines[0], lines
    assert not out.exists()


@pytest.mark.parametrize("height, width", [(425, 640), (333, 500), (864, 900), (1000, 665), (7, 3001), (511, 512)])
def test_faithful_letterbox_matrix_is_the_official_float32_product(height, width):
    """T C RSS C^-1 with angle 0 built from float32 matrices, as the official get_affine_matrix."""
    s = min(512 / width, 512 / height)
    t = np.array([[1, 0, (512 - width) / 2], [0, 1, (512 - height) / 2], [0, 0, 1]], dtype=np.float32)
    c = np.array([[1, 0, width / 2], [0, 1, height / 2], [0, 0, 1]], dtype=np.float32)
    rss = np.array([[s, 0, 0], [0, s, 0], [0, 0, 1]], dtype=np.float32)
    expected = t.dot(c).dot(rss).dot(np.linalg.inv(c))
    np.testing.assert_array_equal(letterbox_matrix(height, width, 512, faithful=True), expected.astype(np.float64))
    np.testing.assert_allclose(letterbox_matrix(height, width, 512), expected, rtol=1e-6, atol=1e-4)


def test_faithful_prediction_pastes_with_opencv_in_float32(coco_sample):
    """sampling="faithful": float32 letterbox and keypoints, mask matrices composed in float32,
    AlignReverse by cv2.warpAffine(WARP_INVERSE_MAP | INTER_LINEAR) thresholded at 0.5."""
    from pose2seg.model import keypoints_to_input

    data = ochuman.load(coco_sample)
    image = cv2.imread(str(coco_sample.parent / "images" / data.images[1].file_name))
    keypoints = np.trunc(data.keypoints[data.image_index == 1])
    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(units=1, sampling="faithful")).eval()
    masks, _ = model.predict(image, keypoints)

    warped, m1 = letterbox(image, 512, faithful=True)
    kp = torch.as_tensor(keypoints_to_input(keypoints, m1, faithful=True), dtype=torch.float32)
    with torch.no_grad():
        logits, input_to_output = model(model.normalise(torch.from_numpy(warped[None])), kp,
                                        torch.zeros(len(kp), dtype=torch.int64))
    probs = logits.softmax(1)[:, 1].numpy()
    matrices = (input_to_output @ torch.as_tensor(m1, dtype=torch.float32)).numpy()
    for k in range(len(kp)):
        expected = cv2.warpAffine(probs[k], matrices[k][:2].astype(np.float64), (image.shape[1], image.shape[0]),
                                  flags=cv2.WARP_INVERSE_MAP + cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT) > 0.5
        np.testing.assert_array_equal(masks[k], expected.astype(np.uint8))
