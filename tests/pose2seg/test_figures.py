"""pose2seg.figures: the Affine-Align windows (Figure 7) show what the model computes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.path import Path as MplPath

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.vis import save_figure
from pose2seg import figures
from pose2seg.align import ALIGN_SIZE
from pose2seg.model import FEATURE_STRIDE, ModelConfig, Pose2Seg, letterbox_matrix
from pose2seg.templates import candidates, cluster_templates, load_templates


@pytest.fixture(scope="module")
def sample():
    return ochuman.load(SAMPLE_ANNOTATIONS)


def _persons(dataset, k):
    """Keypoints (N, 17, 3) of image k's persons with keypoints (what the model is given)."""
    idx = np.flatnonzero((dataset.image_index == k) & dataset.has_keypoints & ~dataset.iscrowd)
    return dataset.keypoints[idx]


def _shape(dataset, k):
    return dataset.images[k].height, dataset.images[k].width


def test_constants_are_the_models():
    assert figures.ALIGN_SIZE == ALIGN_SIZE
    assert figures.FEATURE_STRIDE == FEATURE_STRIDE


@pytest.mark.parametrize("input_size", [512, 256])
def test_matrices_are_the_models_own(sample, input_size):
    """m3 m2 m1 of the figure == the model's letterbox, stride and align_matrices (predict's path)."""
    model = Pose2Seg(ModelConfig(input_size=input_size)).eval()
    m2 = np.diag([1.0 / FEATURE_STRIDE, 1.0 / FEATURE_STRIDE, 1.0])
    for k in range(len(sample.images)):
        kp = _persons(sample, k)
        windows = figures.align_geometry(_shape(sample, k), kp, input_size=input_size)
        m1 = letterbox_matrix(*_shape(sample, k), input_size)
        moved = kp.copy()  # as Pose2Seg.predict moves keypoints into the input
        moved[..., :2] = kp[..., :2] @ m1[:2, :2].T + m1[:2, 2]
        moved[kp[..., 2] <= 0] = 0
        with torch.no_grad():
            m3 = model.align_matrices(torch.as_tensor(moved, dtype=torch.float32)).double().numpy()
        np.testing.assert_allclose(windows.matrices, m3 @ m2 @ m1, rtol=1e-6, atol=1e-9)


def test_choice_names_and_scores(sample):
    names = figures.candidate_names(3)
    assert names == ["T0", "T1", "T2", "T0'", "T1'", "T2'"]
    seen = set()
    for k in range(len(sample.images)):
        windows = figures.align_geometry(_shape(sample, k), _persons(sample, k))
        assert len(windows) == len(windows.names) == len(windows.score) == len(_persons(sample, k))
        for j, index in enumerate(windows.index):
            if index < 0:
                assert windows.names[j] == figures.FALLBACK_NAME and windows.score[j] == 0
                assert windows.template_points(j) is None
            else:
                assert windows.names[j] == names[index] and 0 < windows.score[j] <= 1
                np.testing.assert_allclose(windows.template_points(j)[:, :2] / ALIGN_SIZE,
                                           candidates(load_templates())[index][:, :2])
            seen.add(windows.names[j])
    # the sample exercises templates, mirrored templates and the fallback
    assert {"T0", "T0'", "fallback"} <= seen


def test_windows_hold_the_labelled_keypoints(sample):
    """The aligned frame mapped back holds every labelled joint of a person given a template,
    and those joints land inside 0..64 in the aligned frame."""
    fitted = 0
    for k in range(len(sample.images)):
        kp = _persons(sample, k)
        windows = figures.align_geometry(_shape(sample, k), kp)
        aligned = windows.aligned_keypoints(kp)
        for j in np.flatnonzero(windows.index >= 0):
            labelled = kp[j, :, 2] > 0
            assert MplPath(windows.corners[j]).contains_points(kp[j, labelled, :2]).all()
            assert (aligned[j, labelled, :2] > 0).all() and (aligned[j, labelled, :2] < ALIGN_SIZE).all()
            fitted += 1
    assert fitted >= 10


def test_corners_map_to_the_aligned_frame_and_fallback_is_the_letterbox(sample):
    k = 0  # both persons fall back: their window is the whole letterboxed input
    height, width = _shape(sample, k)
    windows = figures.align_geometry((height, width), _persons(sample, k))
    assert (windows.index == -1).all()
    side = max(height, width)
    x0, y0 = (width - side) / 2, (height - side) / 2
    expected = np.array([[x0, y0], [x0 + side, y0], [x0 + side, y0 + side], [x0, y0 + side]])
    for j in range(len(windows)):
        np.testing.assert_allclose(windows.corners[j], expected, atol=1e-6)
        back = windows.matrices[j] @ np.c_[windows.corners[j], np.ones(4)].T
        np.testing.assert_allclose(back[:2].T, [[0, 0], [64, 0], [64, 64], [0, 64]], atol=1e-6)


def test_crops_show_the_image_at_the_aligned_keypoints():
    """A coloured disc painted at a joint is where the aligned keypoint says, in the crop."""
    import cv2

    rng = np.random.default_rng(1)
    image = np.full((300, 400, 3), 40, dtype=np.uint8)
    template = load_templates().templates[0]
    kp = np.zeros((1, 17, 3))
    kp[0, :, :2] = template[:, :2] * 220 + [90, 40] + rng.normal(0, 2, (17, 2))
    kp[0, :, 2] = 2
    nose = tuple(int(round(v)) for v in kp[0, 0, :2])
    cv2.circle(image, nose, 6, (0, 0, 255), -1)
    windows = figures.align_geometry(image.shape, kp)
    assert windows.names == ("T0",)
    crop = figures.aligned_crops(image, windows, crop_size=128)
    assert crop.shape == (1, 128, 128, 3) and crop.dtype == np.uint8
    u, v = np.round(windows.aligned_keypoints(kp)[0, 0, :2] * 2).astype(int)
    assert tuple(crop[0, v, u]) == (0, 0, 255)


@pytest.mark.slow
def test_figure_has_the_image_then_one_crop_per_person(sample, tmp_path):
    for k in (1, 8):  # a fallback and a template; two templates
        kp = _persons(sample, k)
        fig = figures.align_windows(sample.read_image(k), kp, title=sample.images[k].file_name)
        assert isinstance(fig, Figure)
        image_ax, *crop_axes = [ax for ax in fig.axes if ax.axison or ax.get_images()]
        assert len(crop_axes) == len(kp)
        height, width = _shape(sample, k)
        assert image_ax.get_images()[0].get_array().shape[:2] == (height, width)
        windows = figures.align_geometry((height, width), kp)
        patches = [p for p in image_ax.patches if p.__class__.__name__ == "Polygon"]
        assert len(patches) == len(kp)
        for patch, corners in zip(patches, windows.corners):
            np.testing.assert_allclose(patch.get_xy()[:4], corners)
        labels = [t.get_text() for t in image_ax.get_legend().get_texts()]
        for j, ax in enumerate(crop_axes):
            assert ax.get_images()[0].get_array().shape == (128, 128, 3)
            assert ax.get_title().startswith(f"{j + 1}: {windows.names[j]}")
            assert labels[j].startswith(f"{j + 1}: {windows.names[j]}")
        # the view holds every window (fallbacks reach past the image)
        x_lo, x_hi = image_ax.get_xlim()
        y_hi, y_lo = image_ax.get_ylim()
        corners = windows.corners.reshape(-1, 2)
        assert x_lo <= corners[:, 0].min() and corners[:, 0].max() <= x_hi
        assert y_lo <= corners[:, 1].min() and corners[:, 1].max() <= y_hi
        out = tmp_path / f"align_{k}.png"
        save_figure(fig, out)
        assert out.stat().st_size > 20_000


def test_figure_with_no_persons_and_a_fallback_only_person(sample):
    image = sample.read_image(0)
    fig = figures.align_windows(image, np.zeros((0, 17, 3)))
    assert len(fig.axes) == 1
    lonely = np.zeros((1, 17, 3))
    lonely[0, 0] = (100, 100, 2)  # one joint: always the fallback
    fig = figures.align_windows(image, lonely)
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2
    with pytest.raises(ValueError, match=r"\(N, 17, 3\)"):
        figures.align_windows(image, np.zeros((2, 19, 3)))
    with pytest.raises(ValueError, match="BGR"):
        figures.align_windows(image[..., 0], lonely)


@pytest.mark.slow
def test_custom_templates_are_used(sample):
    keep = sample.has_keypoints & ~sample.iscrowd
    learned = cluster_templates(sample.keypoints[keep], sample.bbox_xywh[keep], k=2, seed=0)
    k = 8
    windows = figures.align_geometry(_shape(sample, k), _persons(sample, k), templates=learned)
    assert set(windows.names) <= {"T0", "T1", "T0'", "T1'", "fallback"}
    assert windows.candidates.shape == (4, 17, 3)


@pytest.mark.slow
def test_templates_figure():
    official = load_templates()
    fig = figures.templates_figure({"official": official, "again": official})
    drawn = [ax for ax in fig.axes if ax.axison]
    assert len(drawn) == 2 * len(official)
    assert [ax.get_title() for ax in drawn[:3]] == ["T0: 17 valid joints", "T1: 14 valid joints", "T2: 13 valid joints"]
    assert len(figures.templates_figure(official).axes) == len(official)
