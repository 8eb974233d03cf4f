"""Pose2Seg inference throughput: decoded images in, RLE results out.

Workload: 512x512 images (the embedded OCHuman sample images, letterboxed, repeated) with their
ground-truth keypoints (~2 persons per image). For each precision (fp32; bf16 autocast on CPU,
fp16/bf16 on CUDA) and memory format (contiguous, channels_last), the median over runs of
images/s end to end (letterbox, normalise, backbone, align, skeleton, SegModule, AlignReverse,
threshold, RLE encoding), plus a breakdown of one batch by stage.

    python bench/bench_infer.py --device cpu --batch-size 4 --images 16 --runs 3
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np
import torch

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.masks import bitmap_to_rle
from pose2seg.align import sample_aligned, transform_keypoints
from pose2seg.model import FEATURE_STRIDE, ModelConfig, Pose2Seg, letterbox, paste_masks
from pose2seg.skeleton import skeleton_features


def workload(n_images: int):
    data = ochuman.load(SAMPLE_ANNOTATIONS, filter="kpt&segm")
    images, keypoints = [], []
    for k in range(n_images):
        index = k % len(data.images)
        image = data.read_image(index)
        warped, m1 = letterbox(image, 512)  # the benchmark's images are 512x512
        kp = data.keypoints[data.image_index == index].copy()
        kp[..., :2] = kp[..., :2] @ m1[:2, :2].T + m1[:2, 2]
        images.append(warped)
        keypoints.append(kp)
    return images, keypoints


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(model, images, keypoints, batch_size, dtype, device):
    results = 0
    for start in range(0, len(images), batch_size):
        outputs = model.predict(images[start:start + batch_size], keypoints[start:start + batch_size],
                                autocast_dtype=dtype)
        for masks, _ in outputs:
            results += len([bitmap_to_rle(m) for m in masks])
    sync(device)
    return results


def breakdown(model, images, keypoints, device, dtype):
    """Seconds per stage for one batch."""
    times = {}
    t = time.perf_counter()
    batch = model.normalise(torch.from_numpy(np.stack(images)).to(device))
    kp = torch.as_tensor(np.concatenate(keypoints), dtype=torch.float32, device=device)
    index = torch.as_tensor(np.repeat(np.arange(len(images)), [len(k) for k in keypoints]), device=device)
    sync(device); times["input"] = time.perf_counter() - t
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        t = time.perf_counter(); features = model.backbone(batch); sync(device); times["backbone"] = time.perf_counter() - t
        t = time.perf_counter()
        m3 = model.align_matrices(kp).float()
        aligned = sample_aligned(features.float(), index, m3, 64, model.config.sampling)  # as Pose2Seg.forward
        sync(device); times["align"] = time.perf_counter() - t
        t = time.perf_counter()
        m2 = torch.diag(torch.tensor([1 / FEATURE_STRIDE, 1 / FEATURE_STRIDE, 1.0], device=device))
        skeleton = skeleton_features(transform_keypoints(kp, m3 @ m2), 64)
        sync(device); times["skeleton"] = time.perf_counter() - t
        t = time.perf_counter()
        logits = model.segnet(torch.cat([aligned, skeleton.to(aligned.dtype)], 1))
        sync(device); times["segmodule"] = time.perf_counter() - t
    t = time.perf_counter()
    probs = logits.float().softmax(1)[:, 1]
    masks = paste_masks(probs, (m3 @ m2).float(), 512, 512) > 0.5
    sync(device); times["align_reverse"] = time.perf_counter() - t
    t = time.perf_counter()
    for m in masks.to(torch.uint8).cpu().numpy():
        bitmap_to_rle(m)
    times["rle"] = time.perf_counter() - t
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    images, keypoints = workload(args.images)
    persons = sum(len(k) for k in keypoints)
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.images} images, {persons} persons, "
          f"batch {args.batch_size}, median of {args.runs}")
    precisions = [("fp32", None), ("bf16", torch.bfloat16)] + ([("fp16", torch.float16)] if device.type == "cuda" else [])
    print("| precision | memory format | images/s | persons/s |")
    print("|---|---|---:|---:|")
    for name, dtype in precisions:
        for layout in ("contiguous", "channels_last"):
            model = Pose2Seg(ModelConfig()).eval().to(device)
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            run(model, images[:args.batch_size], keypoints[:args.batch_size], args.batch_size, dtype, device)  # warm-up
            seconds = []
            for _ in range(args.runs):
                t = time.perf_counter()
                run(model, images, keypoints, args.batch_size, dtype, device)
                seconds.append(time.perf_counter() - t)
            best = statistics.median(seconds)
            print(f"| {name} | {layout} | {args.images / best:.2f} | {persons / best:.2f} |")
    model = Pose2Seg(ModelConfig()).eval().to(device)
    times = breakdown(model, images[:args.batch_size], keypoints[:args.batch_size], device, None)
    total = sum(times.values())
    print("\nwhere one fp32 batch's time goes: " + ", ".join(f"{k} {v:.3f} s ({100 * v / total:.0f}%)" for k, v in times.items()))


if __name__ == "__main__":
    main()
