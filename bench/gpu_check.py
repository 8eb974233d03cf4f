"""One prepared GPU check (issue 19): the suite's CUDA tests, inference and training throughput,
peak memory and where the time goes, as markdown and JSON tables in one folder.

Sections (each row says what it measured; a section that runs past the time budget is cut and
says so):

1. the CUDA tests of the suite (``pytest -m cuda tests/pose2seg``, where they all live; without a
   GPU they skip);
2. inference throughput at 512x512 with ground-truth keypoints, end to end as
   ``bench/bench_infer.py`` (letterboxed sample images, ``Pose2Seg.predict``, RLE encoding):
   fp32 / bf16 / fp16 autocast x contiguous / channels_last x batch 1..32, images/s, persons/s
   and peak GPU memory;
3. training throughput: ``pose2seg.train.train_step`` with AMP (float16 + grad scaling on CUDA,
   bfloat16 on CPU), Adam, batch 4..16 of the embedded sample's images (at most 2 persons per
   image, as the paper's 8 per 4), batches collated once beforehand so that the step itself is
   timed (data loading per image reported apart), images/s and peak memory;
4. where the time goes: ``bench_infer.breakdown`` of one inference batch per precision
   (input, backbone, align, skeleton, SegModule, AlignReverse = paste-back, RLE).

Untrained weights (speed does not depend on them). Everything runs on the embedded sample
(``ochuman/data``), so the check needs no ``../shared`` data. The CPU dry run (fp32 only, training
without AMP: bf16 autocast on a CPU without bf16 units is ~20x slower than fp32):

    bench/gpu_check.sh --device cpu --quick
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from bench_infer import breakdown, run, workload  # noqa: E402  (the inference benchmark's own code)

from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES  # noqa: E402
from pose2seg.data import PersonMaskDataset, collate  # noqa: E402
from pose2seg.model import ModelConfig, Pose2Seg  # noqa: E402
from pose2seg.train import UNUSED_PARAMETERS, TrainConfig, TrainState, train_step  # noqa: E402

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class Budget:
    """Seconds left of the whole check; sections stop adding rows when it runs out."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_mib(device: torch.device) -> float:
    """Peak GPU memory allocated since the last reset (CUDA), else the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def environment(device: torch.device) -> dict:
    env = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "device": str(device), "machine": platform.machine()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), multiprocessors=props.multi_processor_count)
    return env


# ------------------------------------------------------------------------------- sections
def cuda_tests(budget: Budget, timeout: float) -> dict:
    """``pytest -m cuda`` in a subprocess: its summary line and exit code."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:xdist", "-p", "no:cacheprovider", "-m", "cuda",
               "tests/pose2seg"]
    start = time.perf_counter()
    try:
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                              timeout=max(10.0, min(timeout, budget.left())))
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        summary, rc = (lines[-1] if lines else done.stderr.strip()[-300:]), done.returncode
        tail = "\n".join(lines[-40:])
    except subprocess.TimeoutExpired as err:
        summary, rc, tail = f"timed out after {err.timeout:.0f} s", 124, str(err.stdout or "")[-4000:]
    return {"command": " ".join(command[1:]), "rc": rc, "summary": summary,
            "seconds": round(time.perf_counter() - start, 1), "output_tail": tail}


def inference(device, budget: Budget, batches, precisions, runs: int, min_images: int, log=print) -> list[dict]:
    rows = []
    images, keypoints = workload(max(min_images, max(batches)))
    for name in precisions:
        dtype = PRECISIONS[name]
        for layout in ("contiguous", "channels_last"):
            model = Pose2Seg(ModelConfig()).eval().to(device)
            if layout == "channels_last":
                model = model.to(memory_format=torch.channels_last)
            for batch in batches:
                if budget.left() <= 0:
                    rows.append({"precision": name, "memory_format": layout, "batch": batch,
                                 "skipped": "time budget"})
                    continue
                n = max(min_images, batch)
                persons = sum(len(k) for k in keypoints[:n])
                run(model, images[:batch], keypoints[:batch], batch, dtype, device)  # warm-up
                reset_peak(device)
                seconds = []
                for _ in range(runs):
                    start = time.perf_counter()
                    run(model, images[:n], keypoints[:n], batch, dtype, device)
                    seconds.append(time.perf_counter() - start)
                median = statistics.median(seconds)
                rows.append({"precision": name, "memory_format": layout, "batch": batch, "images": n,
                             "persons": persons, "images_per_s": round(n / median, 2),
                             "persons_per_s": round(persons / median, 2), "peak_mib": round(peak_mib(device), 1)})
                log(f"inference {rows[-1]}")
            del model
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return rows


def training(device, budget: Budget, batches, steps: int, out: Path, amp: bool = True,
             log=print) -> tuple[list[dict], dict]:
    dataset = PersonMaskDataset(SAMPLE_ANNOTATIONS, SAMPLE_IMAGES, input_size=512)
    start = time.perf_counter()
    items = [dataset[i] for i in range(len(dataset))]
    loading = (time.perf_counter() - start) / len(items)
    rows = []
    for batch_size in batches:
        if budget.left() <= 0:
            rows.append({"batch": batch_size, "skipped": "time budget"})
            continue
        config = TrainConfig(train_ann=str(SAMPLE_ANNOTATIONS), train_images=str(SAMPLE_IMAGES), out=str(out),
                             amp=amp, batch_size=batch_size, max_persons=2 * batch_size, device=str(device))
        torch.manual_seed(0)
        model = Pose2Seg(config.model_config()).to(device).train()
        for name, parameter in model.named_parameters():
            if name.startswith(UNUSED_PARAMETERS):
                parameter.requires_grad_(False)
        optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.lr)
        state = TrainState(config=config, model=model, ddp=model, optimizer=optimizer,
                           scheduler=torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0),
                           scaler=torch.amp.GradScaler("cuda", enabled=device.type == "cuda"), device=device,
                           run_dir=out)
        prepared = [collate([items[(k * batch_size + j) % len(items)] for j in range(batch_size)])
                    for k in range(steps + 1)]
        generator = torch.Generator().manual_seed(0)

        def step(batch):
            optimizer.zero_grad(set_to_none=True)
            loss, persons = train_step(state, batch, generator)
            state.scaler.scale(loss).backward()
            state.scaler.step(optimizer)
            state.scaler.update()
            return persons, float(loss.detach())

        step(prepared[0])  # warm-up
        sync(device)
        reset_peak(device)
        seconds, persons, losses = [], [], []
        for batch in prepared[1:]:
            start = time.perf_counter()
            n, loss = step(batch)
            sync(device)
            seconds.append(time.perf_counter() - start)
            persons.append(n)
            losses.append(loss)
        median = statistics.median(seconds)
        precision = ("fp16 + grad scaling" if device.type == "cuda" else "bf16") if amp else "off (fp32)"
        rows.append({"batch": batch_size, "amp": precision,
                     "steps": steps, "persons_per_step": round(statistics.mean(persons), 1),
                     "s_per_step": round(median, 4), "images_per_s": round(batch_size / median, 2),
                     "peak_mib": round(peak_mib(device), 1), "finite_loss": bool(np.isfinite(losses).all())})
        log(f"training {rows[-1]}")
        del model, optimizer, state
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows, {"data_loading_s_per_image": round(loading, 4)}


def profile(device, budget: Budget, batch: int, precisions) -> list[dict]:
    images, keypoints = workload(batch)
    rows = []
    model = Pose2Seg(ModelConfig()).eval().to(device)
    for name in precisions:
        if budget.left() <= 0:
            rows.append({"precision": name, "skipped": "time budget"})
            continue
        dtype = PRECISIONS[name]
        breakdown(model, images, keypoints, device, dtype)  # warm-up
        times = breakdown(model, images, keypoints, device, dtype)
        total = sum(times.values())
        rows.append({"precision": name, "batch": batch, "persons": sum(len(k) for k in keypoints),
                     **{f"{k}_ms": round(1000 * v, 2) for k, v in times.items()},
                     **{f"{k}_pct": round(100 * v / total, 1) for k, v in times.items()},
                     "total_ms": round(1000 * total, 2)})
    return rows


# ------------------------------------------------------------------------------- reporting
def table(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        if "skipped" in row:
            lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns[:3]) + f" | skipped ({row['skipped']})"
                         + " |" * (len(columns) - 3))
        else:
            lines.append("| " + " | ".join(str(row.get(c, "")) for c in columns) + " |")
    return "\n".join(lines)


def markdown(report: dict) -> str:
    env, tests = report["environment"], report["cuda_tests"]
    parts = [f"# GPU check ({report['mode']})", "",
             "Environment: " + ", ".join(f"{k} {v}" for k, v in env.items()), "",
             f"Wall time {report['wall_s']} s (budget {report['budget_s']} s).", "",
             "## CUDA tests", "", f"`{tests.get('command')}`: exit {tests.get('rc')}, {tests.get('summary')} "
             f"({tests.get('seconds')} s)", "",
             "## Inference at 512x512, ground-truth keypoints, end to end (images/s)", "",
             table(report["inference"], ["precision", "memory_format", "batch", "images", "persons", "images_per_s",
                                         "persons_per_s", "peak_mib"]), "",
             "## Training step (Adam, <= 2 persons per image; amp column: the precision)", "",
             f"Data loading (read, letterbox, mask decode) outside the timed step: "
             f"{report['training_data'].get('data_loading_s_per_image')} s per image, in-process.", "",
             table(report["training"], ["batch", "amp", "steps", "persons_per_step", "s_per_step", "images_per_s",
                                        "peak_mib", "finite_loss"]), "",
             "## Where one inference batch's time goes (ms, share)", ""]
    stages = ["input", "backbone", "align", "skeleton", "segmodule", "align_reverse", "rle"]
    prof_rows = [{**row, **{s: f"{row[s + '_ms']} ({row[s + '_pct']}%)" for s in stages}} if "skipped" not in row
                 else row for row in report["profile"]]
    parts += [table(prof_rows, ["precision", "batch", "persons", *stages, "total_ms"]), "",
              "peak_mib: peak GPU memory allocated by torch during the row (CUDA); on the CPU the process's "
              "peak resident memory so far.", ""]
    return "\n".join(parts)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="small batches and few runs (the CPU dry run)")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "bench" / "out" / "gpu_check"))
    parser.add_argument("--budget-s", type=float, default=None,
                        help="seconds after which no new row starts (default 420; --quick 360)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit(f"Error: --device {args.device}: no CUDA device here (use --device cpu --quick for the dry run)")
    budget_s = args.budget_s or (360.0 if args.quick else 420.0)
    budget = Budget(budget_s)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    # bf16 autocast on a CPU without bf16 matrix units runs ~20x slower than fp32 (0.01 images/s
    # here): the CPU dry run checks the code paths in fp32 and trains without AMP
    cpu_quick = device.type == "cpu" and args.quick
    precisions = ["fp32"] if cpu_quick else ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]
    if args.quick:
        infer_batches, train_batches, runs, min_images, steps, prof_batch = [1, 2], [2], 1, 1, 1, 2
    else:
        infer_batches, train_batches, runs, min_images, steps, prof_batch = [1, 4, 8, 16, 32], [4, 8, 16], 3, 64, 5, 8

    def log(message):
        print(f"[{time.perf_counter() - started:6.1f} s] {message}", flush=True)

    report = {"mode": ("dry run" if device.type == "cpu" else "GPU") + (", quick" if args.quick else ""),
              "budget_s": budget_s, "environment": environment(device)}
    log(f"environment: {report['environment']}")
    def save():  # after every section, so that a hard stop keeps what was measured
        report["wall_s"] = round(time.perf_counter() - started, 1)
        (out / "gpu_check.json").write_text(json.dumps(report, indent=1))
        (out / "gpu_check.md").write_text(markdown(report))

    report.update(cuda_tests={}, inference=[], training=[], training_data={}, profile=[])
    report["cuda_tests"] = cuda_tests(budget, timeout=150.0)
    log(f"CUDA tests: exit {report['cuda_tests']['rc']}, {report['cuda_tests']['summary']}")
    save()
    report["inference"] = inference(device, budget, infer_batches, precisions, runs, min_images, log)
    save()
    report["training"], report["training_data"] = training(device, budget, train_batches, steps,
                                                           out / "train_run", not cpu_quick, log)
    save()
    report["profile"] = profile(device, budget, prof_batch, precisions)
    log("profile done")
    save()
    print(markdown(report))
    if report["cuda_tests"]["rc"] not in (0, 5):  # 5: no test selected
        sys.exit(1)


if __name__ == "__main__":
    main()
