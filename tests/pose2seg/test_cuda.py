"""CUDA: prediction and a training step on the GPU agree with the CPU. Marked ``cuda`` (with the
other tests that touch a GPU), run by ``bench/gpu_check.sh``; they skip without a CUDA device."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from pose2seg.model import ModelConfig, Pose2Seg, keypoints_to_input, letterbox
from pose2seg.train import TrainConfig, fit

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")]


@pytest.fixture
def no_tf32():
    """Full float32 on the GPU (TF32 convolutions would move the probabilities by ~1e-3)."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


@pytest.mark.parametrize("sampling", ["clean", "faithful"])
def test_prediction_on_cuda_matches_cpu(sampling, no_tf32):
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    images = [data.read_image(k) for k in range(3)]
    keypoints = [data.keypoints[data.image_index == k] for k in range(3)]
    torch.manual_seed(0)
    cpu = Pose2Seg(ModelConfig(units=2, sampling=sampling)).eval()
    gpu = Pose2Seg(ModelConfig(units=2, sampling=sampling)).eval()
    gpu.load_state_dict(cpu.state_dict())
    gpu = gpu.cuda()

    warped, m1 = letterbox(images[0], 512, sampling == "faithful")
    kp = torch.as_tensor(keypoints_to_input(keypoints[0], m1, sampling == "faithful"), dtype=torch.float32)
    index = torch.zeros(len(kp), dtype=torch.int64)
    with torch.no_grad():
        logits_cpu, matrices_cpu = cpu(cpu.normalise(torch.from_numpy(warped[None])), kp, index)
        logits_gpu, matrices_gpu = gpu(gpu.normalise(torch.from_numpy(warped[None])), kp.cuda(), index.cuda())
    torch.testing.assert_close(matrices_gpu.cpu(), matrices_cpu)
    torch.testing.assert_close(logits_gpu.softmax(1).cpu(), logits_cpu.softmax(1), atol=2e-3, rtol=0)

    for (masks_cpu, _), (masks_gpu, _) in zip(cpu.predict(images, keypoints), gpu.predict(images, keypoints)):
        assert masks_gpu.shape == masks_cpu.shape
        assert (masks_gpu != masks_cpu).mean() < 1e-3


def test_training_steps_on_cuda_with_amp(tmp_path):
    config = TrainConfig(train_ann=str(SAMPLE_ANNOTATIONS), train_images=str(SAMPLE_IMAGES), out=str(tmp_path / "run"),
                         input_size=128, units=1, batch_size=4, max_iters=3, eval_every_epoch=0, workers=0,
                         amp=True, device="cuda")
    summary = fit(config)
    assert summary["last_loss"] is not None and np.isfinite(summary["last_loss"])
    state = torch.load(summary["last"], map_location="cpu", weights_only=True)
    assert all(torch.isfinite(t).all() for t in state["state_dict"].values() if t.is_floating_point())
