"""Pose2Seg training: throughput and where a step's time goes; learning evidence on coco-mini.

``throughput`` (default): the paper model (ResNet-50-FPN, SegModule 10 units) at 512 input,
batch 4 real coco-mini images, at most 8 persons, Adam; one warm-up step, then ``--iters``
timed steps split by stage (data loading = dataset items + collate in this process, backbone,
align = Affine-Align matrices + feature sampling, skeleton features, SegModule, targets + loss,
backward of the SegModule, backward of align + backbone, optimiser). Then ``fit`` itself for a
few iterations (its logged images/s, data loading included).

``learning``: splits coco-mini by image (sorted ids, every 4th held out), trains on the train
part with ``fit``, and scores the train and held-out images with ``pose2seg predict`` +
``ochuman eval`` next to the non-learned skeleton-prior floor on the same files. The scored
files hold the persons Pose2Seg is asked to segment (the official ``*_pose2seg.json``
selection: non-crowd, keypoints and a mask); the other annotations of these images (persons
without keypoints, crowds) get no prediction, so keeping them would cap recall. Also printed:
the ceiling of the method's 64x64 aligned frame (each GT mask warped into its aligned frame
and pasted back, scored the same way, on these files and on files with every annotation) and
the trained model's mean aligned-frame IoU with its targets (eval-mode BatchNorm, no
augmentation).

    python bench/bench_train.py throughput --iters 3
    python bench/bench_train.py learning --iters 300
    python bench/bench_train.py learning --single-person 2 --no-augment --max-persons 2 --iters 120 \
        --eval-every-epoch 0    # the overfitting run of tests/pose2seg/test_train.py
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import ochuman
from pose2seg.align import augmentation_matrices, sample_aligned, transform_keypoints
from pose2seg.data import PersonMaskDataset, collate, mask_targets, select_persons, training_selection
from pose2seg.model import FEATURE_STRIDE, ModelConfig, Pose2Seg, paste_masks
from pose2seg.skeleton import skeleton_features
from pose2seg.train import UNUSED_PARAMETERS, TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]
COCO_MINI = ROOT.parent / "shared" / "data" / "coco-mini" / "annotations" / "person_keypoints_train2017.json"
IMAGES = COCO_MINI.parent.parent / "train2017"
OUT = ROOT / "bench" / "out" / "train"
BIN = Path(sys.executable).parent


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


# ------------------------------------------------------------------------------ throughput
def timed_step(model, optimizer, ds, indices, generator, times):
    def tick(name, start):
        times.setdefault(name, []).append(time.perf_counter() - start)
        return time.perf_counter()

    t = time.perf_counter()
    batch = collate([ds[i] for i in indices])
    t = tick("data loading", t)
    batch = select_persons(batch, 8, generator)
    augment = augmentation_matrices(batch.num_persons, generator)
    images = model.normalise(batch.images)
    optimizer.zero_grad(set_to_none=True)
    t = tick("inputs", t)
    features = model.backbone(images)
    t = tick("backbone fwd", t)
    m3 = augment.float() @ model.align_matrices(batch.keypoints, batch.boxes_xyxy)
    aligned = sample_aligned(features, batch.batch_index, m3, 64, model.config.sampling)
    t = tick("align fwd", t)
    m2 = torch.diag(torch.tensor([1 / FEATURE_STRIDE, 1 / FEATURE_STRIDE, 1.0]))
    input_to_output = m3 @ m2
    skeleton = skeleton_features(transform_keypoints(batch.keypoints, input_to_output), 64)
    t = tick("skeleton", t)
    leaf = aligned.detach().requires_grad_()
    logits = model.segnet(torch.cat([leaf, skeleton], 1))
    t = tick("SegModule fwd", t)
    targets = mask_targets(batch.masks, input_to_output.double() @ batch.m1[batch.batch_index])
    loss = F.cross_entropy(logits, targets)
    t = tick("targets + loss", t)
    loss.backward()
    t = tick("SegModule bwd", t)
    aligned.backward(leaf.grad)
    t = tick("align + backbone bwd", t)
    optimizer.step()
    tick("optimiser", t)
    return batch.num_persons, loss.item()


def throughput(args):
    torch.manual_seed(0)
    ds = PersonMaskDataset(COCO_MINI, IMAGES, input_size=512)
    model = Pose2Seg(ModelConfig()).train()
    for name, p in model.named_parameters():
        if name.startswith(UNUSED_PARAMETERS):
            p.requires_grad_(False)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    order = np.random.default_rng(0).permutation(len(ds))
    generator = torch.Generator().manual_seed(0)
    print(f"machine: {machine()}; model: paper (512 input, SegModule 10 units), batch 4, <= 8 persons")
    times: dict[str, list[float]] = {}
    timed_step(model, optimizer, ds, order[:4], generator, {})  # warm-up
    persons = []
    for k in range(args.iters):
        n, loss = timed_step(model, optimizer, ds, order[4 * (k + 1): 4 * (k + 2)], generator, times)
        persons.append(n)
        print(f"  step {k + 1}: {n} persons, loss {loss:.4f}, {sum(v[-1] for v in times.values()):.2f} s")
    total = [sum(v[k] for v in times.values()) for k in range(args.iters)]
    med = statistics.median(total)
    print(f"\nstep (median of {args.iters}): {med:.2f} s = {4 / med:.3f} images/s, "
          f"{statistics.mean(persons):.1f} persons per step")
    print("| stage | median s | share |")
    print("|---|---:|---:|")
    for name, values in times.items():
        m = statistics.median(values)
        print(f"| {name} | {m:.3f} | {100 * m / med:.0f}% |")

    if args.fit_iters:
        out = OUT / "fit_throughput"
        shutil.rmtree(out, ignore_errors=True)
        config = TrainConfig(train_ann=str(COCO_MINI), train_images=str(IMAGES), out=str(out), workers=args.workers,
                             log_every=1, max_iters=args.fit_iters, eval_every_epoch=0, device="cpu")
        start = time.perf_counter()
        fit(config)
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
        rates = [r["images_per_s"] for r in rows if r["kind"] == "train"][1:]
        print(f"\nfit(): {args.fit_iters} iterations, workers {args.workers}: median {statistics.median(rates):.3f} "
              f"images/s after the first step ({wall:.0f} s wall incl. model build and one last.pt)")


# -------------------------------------------------------------------------------- learning
def write_subset(raw: dict, image_ids, path: Path, person_ids=None) -> Path:
    """The images ``image_ids`` of ``raw`` with their annotations (only ``person_ids`` if given)."""
    ids = set(image_ids)
    subset = {**raw, "images": [im for im in raw["images"] if im["id"] in ids],
              "annotations": [a for a in raw["annotations"] if a["image_id"] in ids
                              and (person_ids is None or a["id"] in person_ids)]}
    path.write_text(json.dumps(subset))
    return path


def aligned_frame_report(gt: Path, input_size: int, checkpoint: Path = None) -> dict:
    """Ceiling of the 64x64 aligned frame on ``gt``: every person's GT mask warped into its
    aligned frame (no augmentation) and pasted back like a prediction, scored with the
    evaluator (AP / AP50 / AP75). With ``checkpoint``: also the model's mean aligned-frame IoU
    with those targets (eval mode). Persons without keypoints or a mask get no mask."""
    from ochuman.eval import evaluate_results, resolve_ground_truth
    from pose2seg.predict import persons_from_ground_truth, results_from_masks

    ground = resolve_ground_truth(gt=str(gt), split="val")
    persons = persons_from_ground_truth(ground)
    a = ground.annotations
    keep = ~a.iscrowd & ~ground.extra & (a.num_keypoints > 0)
    model = (Pose2Seg.from_checkpoint(checkpoint) if checkpoint else
             Pose2Seg(ModelConfig(input_size=input_size, units=1)).eval())
    ds = PersonMaskDataset(gt, IMAGES, input_size=model.config.input_size)
    pasted, ious = {}, []
    with torch.no_grad():
        for k in range(len(ds)):
            batch = collate([ds[k]])
            logits, input_to_output = model(model.normalise(batch.images), batch.keypoints, batch.batch_index,
                                            batch.boxes_xyxy)
            matrices = input_to_output.double() @ batch.m1[batch.batch_index]
            targets = mask_targets(batch.masks, matrices)
            masks = paste_masks(targets.float(), matrices.float(), *batch.masks.shape[1:]) > 0.5
            for j, person in enumerate(batch.person_ids.tolist()):
                pasted[person] = masks[j].numpy().astype(np.uint8)
            if checkpoint:
                fg, target = logits.argmax(1) == 1, targets == 1
                ious += ((fg & target).sum((1, 2)) / (fg | target).sum((1, 2)).clamp(min=1)).tolist()
    masks = [pasted[i] if i in pasted else np.zeros(tuple(ground.image_sizes[persons.image_index[n]]), np.uint8)
             for n, i in enumerate(a.ann_id[keep].tolist())]
    report = evaluate_results(results_from_masks(ground, persons, masks), ["ceiling"], gt=ground, subsets=["all"])
    row = next(r for r in report.rows() if not r["reported"])
    out = {"ceiling": {k: row[k] for k in ("AP", "AP50", "AP75")}}
    if checkpoint:
        out["aligned_iou"] = float(np.mean(ious))
    return out


def cli(*args) -> str:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stdout


def score(gt: Path, results: Path) -> dict:
    rows = json.loads(cli(BIN / "ochuman", "eval", "--gt", gt, "--results", results, "--format", "json",
                          "--subset", "all"))
    return {k: rows[0][k] for k in ("AP", "AP50", "AP75")}


def learning(args):
    raw = json.loads(COCO_MINI.read_text())
    data = ochuman.load(COCO_MINI)
    keep = training_selection(data)
    counts = np.bincount(data.image_index[keep], minlength=len(data.images))
    usable = sorted(im.image_id for im, n in zip(data.images, counts) if n)
    held_out = usable[3::4]
    train = [i for i in usable if i not in held_out]
    if args.image_ids:
        train = [int(i) for i in args.image_ids.split(",")]
    elif args.single_person:
        train = [i for i in train if counts[[im.image_id for im in data.images].index(i)] == 1][:args.single_person]
    out = OUT / "learning"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    selected = set(data.person_id[keep].tolist())
    train_gt = write_subset(raw, train, out / "train.json", selected)
    held_gt = write_subset(raw, held_out, out / "heldout.json", selected)
    config = TrainConfig(train_ann=str(train_gt), train_images=str(IMAGES), out=str(out / "run"),
                         val_ann=str(held_gt), val_images=str(IMAGES), input_size=args.input_size, units=args.units,
                         batch_size=args.batch_size, max_persons=args.max_persons, workers=1, lr=args.lr,
                         schedule=args.schedule,
                         augment=not args.no_augment, amp=args.amp, log_every=1, ckpt_every=10_000,
                         eval_every_epoch=args.eval_every_epoch, max_iters=args.iters, epochs=args.epochs,
                         device="cpu", seed=0)
    print(f"machine: {machine()}\ntrain: {len(train)} images {train}\nheld out: {len(held_out)} images {held_out}")
    print(f"config: {config}")
    start = time.perf_counter()
    summary = fit(config, progress=sys.stderr.isatty())
    print(f"trained {summary['iteration']} iterations ({summary['epoch']} epochs) in "
          f"{time.perf_counter() - start:.0f} s")
    rows = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r["kind"] == "train"]
    print(f"loss: first-20 mean {np.mean(losses[:20]):.4f}, last-20 mean {np.mean(losses[-20:]):.4f}; "
          f"means of 50: {[round(float(np.mean(losses[i:i + 50])), 3) for i in range(0, len(losses), 50)]}")
    evals = [(r["iteration"], round(r["AP"], 3)) for r in rows if r["kind"] == "eval"]
    print(f"held-out AP during training (iteration, AP): {evals}")
    every = {"train": write_subset(raw, train, out / "train_all.json"),
             "held-out": write_subset(raw, held_out, out / "heldout_all.json")}
    table = []
    for name, gt in (("train", train_gt), ("held-out", held_gt)):
        aligned = aligned_frame_report(gt, args.input_size, out / "run" / "last.pt")
        ceiling_all = aligned_frame_report(every[name], args.input_size)["ceiling"]
        print(f"{name}: mean aligned-frame IoU {aligned['aligned_iou']:.3f}; ceiling AP {aligned['ceiling']['AP']:.3f} "
              f"(with every annotation of the images: {ceiling_all['AP']:.3f})")
        model_results = out / f"model_{name}.json"
        prior_results = out / f"prior_{name}.json"
        cli(BIN / "pose2seg", "predict", "--checkpoint", out / "run" / "last.pt", "--gt", gt, "--images", IMAGES,
            "--out", model_results)
        cli(BIN / "pose2seg", "predict", "--model", "skeleton-prior", "--gt", gt, "--out", prior_results)
        persons = sum(1 for _ in json.loads(model_results.read_text()))
        table.append((name, persons, score(gt, model_results), score(gt, prior_results), aligned["ceiling"]))
    print("\n| images | persons | trained model AP / AP50 / AP75 | skeleton-prior floor AP / AP50 / AP75 | "
          "aligned-frame ceiling AP / AP50 / AP75 |")
    print("|---|---:|---|---|---|")
    for name, persons, ours, prior, ceiling in table:
        fmt = lambda s: " / ".join(f"{s[k]:.3f}" for k in ("AP", "AP50", "AP75"))  # noqa: E731
        print(f"| {name} | {persons} | {fmt(ours)} | {fmt(prior)} | {fmt(ceiling)} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", nargs="?", choices=("throughput", "learning"), default="throughput")
    parser.add_argument("--iters", type=int, default=None, help="timed steps (3) / training iterations (300)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--fit-iters", type=int, default=3, help="throughput: iterations of fit() (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="throughput: data-loading workers of fit()")
    parser.add_argument("--single-person", type=int, default=0,
                        help="learning: train on the first N single-person train images (the test's overfit run: 2)")
    parser.add_argument("--image-ids", default="", help="learning: train on these image ids (comma-separated)")
    parser.add_argument("--input-size", type=int, default=128)
    parser.add_argument("--units", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--max-persons", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--schedule", default="paper", help="learning: paper, official-repo or constant")
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--amp", action="store_true", help="learning: bfloat16 autocast on the CPU")
    parser.add_argument("--epochs", type=int, default=10_000,
                        help="learning: epochs of the paper schedule (x0.1 after epoch 33; --iters stops earlier)")
    parser.add_argument("--eval-every-epoch", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.mode == "throughput":
        args.iters = args.iters or 3
        throughput(args)
    else:
        args.iters = args.iters or 300
        learning(args)


if __name__ == "__main__":
    main()
