"""Training Pose2Seg: :class:`TrainConfig`, :func:`train_one_epoch`, :func:`evaluate`, :func:`fit`.

Recipe (spec 5.9; official ``train.py``): persons with keypoints and masks (:mod:`pose2seg.data`),
no image-level augmentation, per-person aligned-frame augmentation (rotation +-30 deg, scale
0.8-1.2, shift +-0.1, :func:`pose2seg.align.augmentation_matrices`), at most ``max_persons``
(8) persons per batch of ``batch_size`` (4) images, loss = 2-class cross-entropy averaged over
all N x 64 x 64 pixels, Adam (weight decay 0), BatchNorm trained (``model.train()``).

Schedules (the iteration counter starts at 1, as the official one):

- ``paper`` (default): lr 2e-4, x0.1 after epoch 33, 40 epochs;
- ``official-repo`` (what produced the released weights): linear warm-up over 1000 iterations
  from lr/3 (``lr * (1/3 (1 - i/1000) + i/1000)``), x0.1 from iteration 15 x and x0.01 from
  20 x (iterations per epoch), 25 epochs;
- ``constant``: ``lr`` throughout, 40 epochs unless told (fine-tuning, overfitting checks on a
  few images, where the paper's decay after epoch 33 would come after a few hundred
  iterations).

Run folder (``out``): ``last.pt`` (every ``ckpt_every`` iterations, at each epoch end, when
stopping, on ^C and on SIGTERM), ``best.pt`` (best val AP), ``log.jsonl`` (one line per logged step and
per evaluation), ``log.csv`` (the same rows) and ``curves.png``. Checkpoints are
``pose2seg-toolkit`` checkpoints (:func:`pose2seg.weights.load_checkpoint`,
``Pose2Seg.from_checkpoint``) holding only tensors and plain values, written atomically; ``last.pt``
also holds the full training state (optimiser, scheduler, grad scaler, epoch, iteration,
position in the epoch, RNG states), so ``resume=True`` continues exactly: on the CPU the
resumed run logs the same losses, bit for bit, as an uninterrupted one.

Randomness: the data order of epoch ``e`` is :class:`~torch.utils.data.DistributedSampler`'s
permutation seeded with ``seed + e`` (also with one process); the person sampling and the
augmentation of iteration ``i`` on rank ``r`` use a ``torch.Generator`` seeded from
``(seed, r, i)``. Both are pure functions of counters stored in the checkpoint, so a resumed
run, a run with data-loading workers and a run without draw the same numbers. ^C (SIGINT) and
SIGTERM (what a cluster scheduler sends before it kills a job) during an update are deferred until
the update is complete; either saves a resumable ``last.pt`` and re-raises (SIGTERM as
:class:`Terminated`, a KeyboardInterrupt; ``pose2seg train`` exits with 143).

Several processes: ``torchrun --nproc_per_node N --no-python pose2seg train ...`` (the same
command and options) trains with DistributedDataParallel (NCCL on CUDA, gloo on CPU).
``batch_size`` and ``max_persons`` are per process (as torchvision's references); rank 0 alone
logs, checkpoints and evaluates. :class:`TrainConfig` lives in :mod:`pose2seg.config` (no torch).
"""
from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import itertools
import json
import logging
import math
import os
import random
import signal
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

from ochuman.interrupts import Terminated, raise_terminated, sigterm_as_interrupt
from ochuman.io import atomic_write
from pose2seg.align import augmentation_matrices
from pose2seg.data import Batch, PersonMaskDataset, collate, mask_targets, select_persons
from pose2seg.config import SCHEDULES, TrainConfig, TrainingError
from pose2seg.model import Pose2Seg
from pose2seg.weights import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, load_checkpoint

__all__ = [
    "SCHEDULES", "Terminated", "TrainConfig", "TrainState", "TrainingError", "evaluate", "fit", "lr_factor",
    "train_one_epoch", "train_step",
]

log = logging.getLogger(__name__)

PAPER_DECAY_EPOCH = 33
REPO_WARMUP_ITERS = 1000
REPO_WARMUP_FACTOR = 1.0 / 3.0
REPO_DECAY_EPOCHS = (15, 20)
#: Set to 1 to have every rank write ``rank{r}_images.json`` (image ids seen, parameter checksum).
DEBUG_ENV = "POSE2SEG_TRAIN_DEBUG"
#: Fields that define a run: a resumed run must use the same values.
RUN_FIELDS = ("schedule", "lr", "batch_size", "max_persons", "seed", "input_size", "units", "align",
              "alpha", "skeleton", "sampling", "augment", "amp")
#: Parameters Pose2Seg never uses (the P2-P4 output convs of the FPN); frozen so DDP needs no
#: unused-parameter search.
UNUSED_PARAMETERS = ("backbone.fpn_p2.", "backbone.fpn_p3.", "backbone.fpn_p4.")


def lr_factor(schedule: str, iteration: int, iters_per_epoch: int) -> float:
    """Learning-rate multiplier of 1-based ``iteration`` (see the module docstring)."""
    if schedule == "paper":
        return 1.0 if iteration <= PAPER_DECAY_EPOCH * iters_per_epoch else 0.1
    if schedule == "official-repo":
        if iteration < REPO_WARMUP_ITERS:
            alpha = iteration / REPO_WARMUP_ITERS
            return REPO_WARMUP_FACTOR * (1.0 - alpha) + alpha
        first, second = (e * iters_per_epoch for e in REPO_DECAY_EPOCHS)
        return 0.01 if iteration >= second else 0.1 if iteration >= first else 1.0
    if schedule == "constant":
        return 1.0
    raise ValueError(f"schedule: expected one of {', '.join(SCHEDULES)}, got {schedule!r}")


class _Schedule:
    """LambdaLR multiplier: after ``k`` scheduler steps the lr is the one of iteration ``k + 1``.
    Holds plain attributes only (LambdaLR saves them in its state dict)."""

    def __init__(self, schedule: str, iters_per_epoch: int):
        self.schedule = schedule
        self.iters_per_epoch = iters_per_epoch

    def __call__(self, steps: int) -> float:
        return lr_factor(self.schedule, steps + 1, self.iters_per_epoch)


def _step_generator(seed: int, rank: int, iteration: int) -> torch.Generator:
    """The generator of (seed, rank, 1-based iteration): person sampling and augmentation."""
    words = np.random.SeedSequence([seed, rank, iteration]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(words[0]) << 32 | int(words[1]))


# --------------------------------------------------------------------------------- RNG state
def _rng_state() -> dict:
    """Python, numpy and torch RNG states as tensors and plain values (weights_only-safe)."""
    version, py_state, gauss = random.getstate()
    key, np_state, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state = {
        "python": {"version": int(version), "state": torch.tensor(py_state, dtype=torch.int64), "gauss": gauss},
        "numpy": {"key": str(key), "state": torch.from_numpy(np_state.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = list(torch.cuda.get_rng_state_all())
    return state


def _set_rng_state(state: dict) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["key"], npy["state"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _worker_init(worker_id: int) -> None:
    """DataLoader workers: SIGTERM as ^C (torch's worker loop then stops quietly), instead of
    torch's handler that dies of a SIGTERM not sent by the parent (e.g. a scheduler signalling
    the whole job) and makes the main process report a killed worker; connections to the main
    process that break are not reported (:func:`_quiet_broken_connections`)."""
    signal.signal(signal.SIGTERM, raise_terminated)
    sys.excepthook = _quiet_broken_connections


def _quiet_broken_connections(kind, value, traceback) -> None:
    """A worker's ``sys.excepthook``: a connection to the main process that broke is not
    reported, anything else is as usual. multiprocessing's thread that hands a batch's shared
    memory to the main process reports one with a traceback when a SIGTERM to the whole job
    stops the main process while it takes a batch (seen under load); the main process reports
    its own errors, so the worker's report adds nothing."""
    if issubclass(kind, (EOFError, ConnectionError)) or (issubclass(kind, OSError) and value.errno == errno.EBADF):
        return
    sys.__excepthook__(kind, value, traceback)


@contextlib.contextmanager
def _defer_interrupt():
    """Hold ^C (SIGINT) and SIGTERM back until the block is done, then raise KeyboardInterrupt
    (:class:`Terminated` if SIGTERM came); the previous handlers are restored first. A signal
    the process ignored before (``nohup``, a background job of a script) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = {signum: signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    received = [signum for signum in received if previous[signum] is not signal.SIG_IGN]
    if signal.SIGTERM in received:
        raise Terminated(f"signal {signal.SIGTERM}")
    if received:
        raise KeyboardInterrupt


# ------------------------------------------------------------------------------------- state
@dataclass(eq=False)
class TrainState:
    """A run in progress: model (``model``, and ``ddp`` its DistributedDataParallel wrapper or
    itself), optimiser, scheduler, grad scaler, counters and bookkeeping. ``epoch`` and
    ``iteration`` count *completed* epochs / iterations; ``batches_done`` is the position in
    the current epoch."""

    config: TrainConfig
    model: Pose2Seg
    ddp: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    run_dir: Path
    rank: int = 0
    world_size: int = 1
    iters_per_epoch: int = 0
    epoch: int = 0
    iteration: int = 0
    batches_done: int = 0
    best_ap: Optional[float] = None
    best_iteration: Optional[int] = None
    last_loss: Optional[float] = None
    saved_iteration: int = -1
    seen_image_ids: list = field(default_factory=list)
    _buffers: Optional[list] = None  # BatchNorm statistics before the update in progress

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def position(self) -> str:
        """``"epoch E, iteration I"``: the last completed iteration and its 1-based epoch (as
        ``log.jsonl`` numbers them; epoch 0 before the first iteration)."""
        epoch = self.epoch + 1 if self.batches_done else self.epoch
        return f"epoch {epoch}, iteration {self.iteration}"

    @property
    def finished(self) -> bool:
        """True once the schedule's epochs (or ``max_iters``) are done."""
        cfg = self.config
        return self.epoch >= cfg.num_epochs or bool(cfg.max_iters and self.iteration >= cfg.max_iters)

    def checkpoint(self, full: bool = True) -> dict:
        """A ``pose2seg-toolkit`` checkpoint (tensors and plain values only)."""
        ckpt = {
            "format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
            "state_dict": self.model.state_dict(),
            "config": {**self.model.checkpoint_config(), "train": asdict(self.config)},
            "metrics": {"epoch": self.epoch, "iteration": self.iteration, "best_ap": self.best_ap,
                        "best_iteration": self.best_iteration},
        }
        if full:
            ckpt["train_state"] = {
                "epoch": self.epoch, "iteration": self.iteration, "batches_done": self.batches_done,
                "iters_per_epoch": self.iters_per_epoch, "world_size": self.world_size,
                "best_ap": self.best_ap, "best_iteration": self.best_iteration,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": _rng_state(),
                "data_order": {"sampler": "DistributedSampler", "seed": self.config.seed, "epoch": self.epoch,
                               "position": self.batches_done * self.config.batch_size,
                               "step_generator": "SeedSequence([seed, rank, iteration])"},
            }
        return ckpt

    def save(self, name: str = "last.pt", full: bool = True) -> Path:
        path = self.run_dir / name
        with atomic_write(path, "wb") as handle:
            torch.save(self.checkpoint(full), handle)
        if name == "last.pt":
            self.saved_iteration = self.iteration
        return path


# ---------------------------------------------------------------------------------- run log
class RunLog:
    """``log.jsonl`` (appended, flushed per line), its ``log.csv`` copy and ``curves.png``."""

    def __init__(self, run_dir: Path, enabled: bool, resume_from: Optional[int] = None):
        self.path = run_dir / "log.jsonl"
        self.enabled = enabled
        self.rows: list[dict] = []
        if not enabled:
            return
        if resume_from is not None and self.path.is_file():
            # lines written after the checkpoint (a crash) are dropped: the resumed run re-logs them
            for line in self.path.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    row = json.loads(line)
                    if row.get("iteration", 0) <= resume_from:
                        self.rows.append(row)
        with atomic_write(self.path) as handle:
            handle.writelines(json.dumps(row) + "\n" for row in self.rows)

    def write(self, row: dict) -> None:
        if not self.enabled:
            return
        self.rows.append(row)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(row) + "\n")

    def export(self) -> None:
        """Rewrite ``log.csv`` and ``curves.png`` from the rows."""
        if not self.enabled:
            return
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        with atomic_write(self.path.with_name("log.csv")) as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(self.rows)
        try:
            png = plot_curves(self.rows)
        except Exception as err:  # noqa: BLE001 - a plot must never stop training
            log.warning("%s: cannot draw curves.png (%s)", self.path.parent, err)
            return
        with atomic_write(self.path.with_name("curves.png"), "wb") as handle:
            handle.write(png)


def plot_curves(rows: Sequence[dict]) -> bytes:
    """PNG of the training loss and learning rate, and of every evaluated AP, vs iteration."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax_loss, ax_ap = fig.subplots(1, 2)
    train = [r for r in rows if r.get("kind") == "train"]
    if train:
        it = [r["iteration"] for r in train]
        ax_loss.plot(it, [r["loss"] for r in train], lw=0.6, alpha=0.4, label="loss")
        ax_loss.plot(it, [r["loss_avg"] for r in train], lw=1.2, label="loss (mean since last log)")
        ax_lr = ax_loss.twinx()
        ax_lr.plot(it, [r["lr"] for r in train], color="gray", ls="--", lw=0.8)
        ax_lr.set_ylabel("lr", color="gray")
        ax_loss.legend(loc="upper right", fontsize=8)
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("cross-entropy")
    evals = [r for r in rows if r.get("kind") == "eval"]
    for key in dict.fromkeys((r["dataset"], r["subset"]) for r in evals):
        pts = [r for r in evals if (r["dataset"], r["subset"]) == key]
        ax_ap.plot([r["iteration"] for r in pts], [r["AP"] for r in pts], marker="o", label=f"{key[0]} {key[1]}")
    if evals:
        ax_ap.legend(fontsize=8)
    ax_ap.set_xlabel("iteration")
    ax_ap.set_ylabel("segm AP")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


# ------------------------------------------------------------------------------------- steps
def train_step(state: TrainState, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, int]:
    """Forward one batch and return (loss, persons used). Person sampling and augmentation draw
    from ``generator``; the targets are the GT masks warped with the matrices the model used."""
    cfg, device = state.config, state.device
    batch = select_persons(batch, cfg.max_persons, generator).to(device, non_blocking=True)
    augment = augmentation_matrices(batch.num_persons, generator, device=device) if cfg.augment else None
    images = state.model.normalise(batch.images)
    amp_dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    with torch.autocast(device.type, dtype=amp_dtype, enabled=cfg.amp):
        logits, input_to_output = state.ddp(images, batch.keypoints, batch.batch_index, batch.boxes_xyxy, augment)
    mask_matrices = input_to_output.detach().double() @ batch.m1[batch.batch_index]
    targets = mask_targets(batch.masks, mask_matrices)
    return F.cross_entropy(logits.float(), targets), batch.num_persons


def train_one_epoch(state: TrainState, loader: torch.utils.data.DataLoader, run_log: RunLog, *,
                    progress: bool = False, hooks: Sequence[Callable[[TrainState], None]] = ()) -> dict:
    """Train over ``loader`` (the rest of the current epoch) until it ends or the run is finished.

    Per iteration: forward/backward, an update that ^C or SIGTERM cannot cut in half, the counters, a
    log line every ``log_every`` iterations, ``last.pt`` every ``ckpt_every``, then ``hooks``.
    Raises :class:`TrainingError` on a non-finite loss. Returns the epoch's mean loss,
    iterations and seconds.
    """
    from tqdm import tqdm

    cfg = state.config
    state.ddp.train()
    debug = os.environ.get(DEBUG_ENV) == "1"
    bar = tqdm(total=state.iters_per_epoch, initial=state.batches_done, disable=not (progress and state.is_main),
               desc=f"epoch {state.epoch + 1}/{cfg.num_epochs}", unit="it", dynamic_ncols=True, leave=False)
    epoch_losses: list[float] = []
    window_losses: list[float] = []
    window_images, window_start = 0, time.perf_counter()
    started = last_tick = time.perf_counter()
    rate = None
    try:
        for batch in loader:
            if state.finished:
                break
            epoch, iteration = state.epoch, state.iteration + 1
            state._buffers = [b.detach().clone() for b in state.model.buffers()]
            generator = _step_generator(cfg.seed, state.rank, iteration)
            state.optimizer.zero_grad(set_to_none=True)
            loss, persons = train_step(state, batch, generator)
            value = loss.detach().clone()
            if state.world_size > 1:
                dist.all_reduce(value)
                value /= state.world_size
            loss_value = float(value)
            if not math.isfinite(loss_value):
                where = f"epoch {epoch + 1}, iteration {iteration}"
                saved = (f"last good checkpoint: {state.run_dir / 'last.pt'} at iteration {state.saved_iteration}"
                         if state.saved_iteration >= 0 else "no checkpoint written yet")
                raise TrainingError(f"{cfg.train_ann}: {where}: loss is {loss_value}; training stopped "
                                    f"(try a lower --lr or --amp off; {saved})")
            state.scaler.scale(loss).backward()
            lr = state.optimizer.param_groups[0]["lr"]
            with _defer_interrupt():
                state.scaler.step(state.optimizer)
                state.scaler.update()
                state.scheduler.step()
                state.iteration = iteration
                state.batches_done += 1
                if state.batches_done >= state.iters_per_epoch:
                    state.epoch, state.batches_done = epoch + 1, 0
                state._buffers = None
                state.last_loss = loss_value
            if debug:
                state.seen_image_ids.extend(batch.image_ids)
            n_images = len(batch.image_ids) * state.world_size
            now = time.perf_counter()
            step_rate = n_images / max(now - last_tick, 1e-9)  # data loading included
            rate = step_rate if rate is None else 0.9 * rate + 0.1 * step_rate
            last_tick = now
            epoch_losses.append(loss_value)
            window_losses.append(loss_value)
            window_images += n_images
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", img_s=f"{rate:.2f}", refresh=False)
            if iteration % cfg.log_every == 0:
                elapsed = time.perf_counter() - window_start
                run_log.write({"kind": "train", "epoch": epoch + 1, "iteration": iteration, "loss": loss_value,
                               "loss_avg": sum(window_losses) / len(window_losses), "lr": lr,
                               "persons": persons, "images_per_s": window_images / elapsed if elapsed > 0 else None,
                               "time": time.time()})
                window_losses, window_images, window_start = [], 0, time.perf_counter()
            if state.is_main and iteration % cfg.ckpt_every == 0:
                state.save()
            for hook in hooks:
                hook(state)
            if state.finished:
                break
    finally:
        bar.close()
    return {"loss": sum(epoch_losses) / len(epoch_losses) if epoch_losses else None,
            "iterations": len(epoch_losses), "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------------------------- evaluate
def evaluate(model: Pose2Seg, gt: Any, images_dir: Union[str, os.PathLike], *, device: Union[str, torch.device] = "cpu",
             subsets: Sequence[str] = ("all",), batch_size: int = 4, name: str = "pose2seg",
             work_dir: Union[str, os.PathLike, None] = None) -> dict[str, dict[str, float]]:
    """Segm AP of ``model`` on an evaluation file, through the prediction code of
    ``pose2seg predict`` (GT keypoints of every person, scores 1.0) and
    :func:`ochuman.eval.run.evaluate_results`.

    gt: a COCO or native file, a Dataset, or a GroundTruth. Returns ``{subset: {stat: value}}``
    (AP, AP50, AP75, ...). The model's weights go through a temporary checkpoint in ``work_dir``.
    """
    from ochuman.eval.ground_truth import GroundTruth
    from ochuman.eval.resolve import resolve_ground_truth
    from ochuman.eval.run import evaluate_results
    from pose2seg.inference import predict_dataset
    from pose2seg.predict import persons_from_ground_truth

    ground = gt if isinstance(gt, GroundTruth) else resolve_ground_truth(gt=gt, split="val")
    persons = persons_from_ground_truth(ground)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".eval-") as tmp:
        path = Path(tmp) / "model.pt"
        torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": model.state_dict(),
                    "config": model.checkpoint_config()}, path)
        results = predict_dataset(path, ground, persons, images_dir, batch_size=batch_size, device=str(device))
    report = evaluate_results(results, [name], gt=ground, subsets=list(subsets))
    return {row["subset"]: {k: row[k] for k in report.stat_names} for row in report.rows() if not row["reported"]}


def _evaluations(cfg: TrainConfig) -> list[tuple[str, Any, str, tuple[str, ...]]]:
    """(dataset name, ground truth, images folder, subsets) of every evaluation of the config,
    read now so that a bad file stops the run before it trains."""
    from ochuman.eval.resolve import resolve_ground_truth

    out = []
    for name, gt_file, images, root in (("val", cfg.val_ann, cfg.val_images, None),
                                         ("ochuman-val", None, None, cfg.ochuman_root)):
        if not (gt_file or root):
            continue
        ground = resolve_ground_truth(root=root, gt=gt_file, split="val")
        images = images or str(Path(root) / "images")
        if not Path(images).is_dir():
            raise TrainingError(f"{images}: images folder of {gt_file or root} not found")
        out.append((name, ground, images, ("all",) if gt_file else ("all", "moderate", "hard")))
    return out


def _run_evaluations(state: TrainState, evaluations, run_log: RunLog) -> Optional[float]:
    """Evaluate on every configured set, log the rows, return the primary AP (first set, all)."""
    primary = None
    for dataset, gt, images_dir, subsets in evaluations:
        started = time.perf_counter()
        stats = evaluate(state.model, gt, images_dir, device=state.device, subsets=subsets,
                         batch_size=state.config.batch_size, work_dir=state.run_dir)
        for subset, values in stats.items():
            run_log.write({"kind": "eval", "epoch": state.epoch, "iteration": state.iteration, "dataset": dataset,
                           "subset": subset, **values, "seconds": time.perf_counter() - started})
        ap = stats["all"]["AP"]
        log.info("epoch %d, iteration %d: %s segm AP %.4f", state.epoch, state.iteration, dataset, ap)
        if primary is None:
            primary = ap
    return primary


# ------------------------------------------------------------------------------------ fit
def _resolve_device(name: str, local_rank: int) -> torch.device:
    if name == "auto":
        return torch.device(f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    elif device.type != "cpu":
        raise TrainingError(f"--device {name}: only cpu and cuda are supported")
    return device


def _check_resumable(path: Path, ckpt: dict, config: TrainConfig, world_size: int) -> dict:
    train_state = ckpt.get("train_state")
    stored = ckpt.get("config", {}).get("train")
    if not isinstance(train_state, dict) or not isinstance(stored, dict):
        raise TrainingError(f"{path}: not a resumable training checkpoint (no training state)")
    changed = [f"{k}={stored.get(k)!r} (now {getattr(config, k)!r})" for k in RUN_FIELDS
               if stored.get(k) != getattr(config, k)]
    if changed:
        raise TrainingError(f"{path}: --resume needs the run's settings, this run changes "
                            + ", ".join(changed))
    if train_state["world_size"] != world_size:
        raise TrainingError(f"{path}: the run used {train_state['world_size']} process(es), this one "
                            f"{world_size}; resume with the same number")
    return train_state


def _parameter_digest(model: torch.nn.Module) -> dict:
    """sha256 and float64 sum of the parameters (not the buffers: each DDP replica keeps the
    BatchNorm statistics of its own last batch; rank 0's are the ones saved)."""
    digest = hashlib.sha256()
    total = 0.0
    for _, p in sorted(model.named_parameters()):
        t = p.detach().cpu().contiguous()
        digest.update(t.numpy().tobytes())
        total += float(t.double().sum())
    return {"sha256": digest.hexdigest(), "sum": total}


def fit(config: TrainConfig, *, progress: bool = False,
        hooks: Sequence[Callable[[TrainState], None]] = ()) -> dict:
    """Train a Pose2Seg model as ``config`` says (see the module docstring).

    progress: a tqdm bar on rank 0 (loss, lr, images/s). hooks: called with the
    :class:`TrainState` after every completed iteration (all ranks). Returns a summary dict
    (run folder, last/best checkpoint paths, best AP, completed epochs, iteration, position
    as :attr:`TrainState.position` words it, rank of this process, missing images).
    Raises :class:`~ochuman.errors.OCHumanError` subclasses with one-line messages; on ^C a
    resumable ``last.pt`` is written, then KeyboardInterrupt propagates; on SIGTERM the same, as
    :class:`Terminated` (the SIGTERM handler is installed for the call, then restored; main thread only).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0")) if world_size > 1 else 0
    local_rank = int(os.environ.get("LOCAL_RANK", "0")) if world_size > 1 else 0
    device = _resolve_device(config.device, local_rank)
    initialised_here = False
    if world_size > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=2))
        initialised_here = True
    try:
        with sigterm_as_interrupt():
            return _fit(config, device, rank, world_size, progress, hooks)
    finally:
        if initialised_here:
            dist.destroy_process_group()


def _fit(config: TrainConfig, device: torch.device, rank: int, world_size: int, progress: bool,
         hooks: Sequence[Callable[[TrainState], None]]) -> dict:
    run_dir = Path(config.out)
    last = run_dir / "last.pt"
    if config.resume and not last.is_file():
        raise TrainingError(f"{last}: no such file; nothing to resume (drop --resume to start a new run)")
    if not config.resume and last.exists():
        raise TrainingError(f"{run_dir}: already holds a run (last.pt); pass --resume to continue it "
                            "or choose another --out")
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"{run_dir}: exists and is not a folder")
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)

    from pose2seg.weights import init_backbone_from_torchvision

    if config.init_backbone and not config.resume and not Path(config.init_backbone).is_file():
        with torch.device("meta"):  # nothing allocated: only the missing-file message is wanted
            init_backbone_from_torchvision(Pose2Seg(config.model_config()).backbone, config.init_backbone)
    checkpoint = None
    if config.resume:
        checkpoint = load_checkpoint(last, map_location="cpu")
        train_state = _check_resumable(last, checkpoint, config, world_size)
    evaluations = _evaluations(config) if rank == 0 and config.eval_every_epoch else []
    dataset = PersonMaskDataset(config.train_ann, config.train_images, config.input_size,
                                report_missing=rank == 0)
    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True,
                                                  seed=config.seed, drop_last=False)
    iters_per_epoch = math.ceil(len(sampler) / config.batch_size)

    torch.manual_seed(config.seed)
    model = Pose2Seg(config.model_config()).to(device)
    for name, parameter in model.named_parameters():
        if name.startswith(UNUSED_PARAMETERS):
            parameter.requires_grad_(False)
    if checkpoint is not None:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    elif config.init_backbone:
        init_backbone_from_torchvision(model.backbone, config.init_backbone)
    if checkpoint is not None and train_state["iters_per_epoch"] != iters_per_epoch:
        raise TrainingError(f"{last}: the run had {train_state['iters_per_epoch']} iterations per epoch, "
                            f"this one {iters_per_epoch}: the training data changed")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.lr, weight_decay=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _Schedule(config.schedule, iters_per_epoch))
    scaler = torch.amp.GradScaler("cuda", enabled=config.amp and device.type == "cuda")
    ddp: torch.nn.Module = model
    if world_size > 1:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    state = TrainState(config=config, model=model, ddp=ddp, optimizer=optimizer, scheduler=scheduler,
                       scaler=scaler, device=device, run_dir=run_dir, rank=rank, world_size=world_size,
                       iters_per_epoch=iters_per_epoch)
    if checkpoint is not None:
        optimizer.load_state_dict(train_state["optimizer"])
        scheduler.load_state_dict(train_state["scheduler"])
        scaler.load_state_dict(train_state["scaler"])
        state.epoch, state.iteration = train_state["epoch"], train_state["iteration"]
        state.batches_done = train_state["batches_done"]
        state.best_ap, state.best_iteration = train_state["best_ap"], train_state["best_iteration"]
        state.saved_iteration = state.iteration
        _set_rng_state(train_state["rng"])
        del checkpoint, train_state
        log.info("%s: resumed after %s", last, state.position)

    run_log = RunLog(run_dir, enabled=rank == 0, resume_from=state.iteration if config.resume else None)
    loader_generator = torch.Generator().manual_seed(config.seed)
    if rank == 0:
        log.info("training on %d images (%d persons, %d missing images skipped), %d iterations per epoch, "
                 "%d epochs, device %s, %d process(es)", len(dataset), dataset.num_persons, dataset.missing,
                 iters_per_epoch, config.num_epochs, device, world_size)
    try:
        while not state.finished:
            sampler.set_epoch(state.epoch)
            skip = state.batches_done * config.batch_size
            loader = torch.utils.data.DataLoader(
                dataset, batch_size=config.batch_size, sampler=_SkipSampler(sampler, skip),
                num_workers=config.workers, collate_fn=collate, pin_memory=device.type == "cuda",
                drop_last=False, generator=loader_generator, worker_init_fn=_worker_init)
            epoch_before = state.epoch
            stats = train_one_epoch(state, loader, run_log, progress=progress, hooks=hooks)
            if state.epoch == epoch_before:  # stopped inside the epoch (max_iters)
                break
            if rank == 0:
                log.info("epoch %d done: mean loss %s, %d iterations in %.1f s", state.epoch,
                         None if stats["loss"] is None else f"{stats['loss']:.4f}", stats["iterations"],
                         stats["seconds"])
                state.save()
                if evaluations and state.epoch % config.eval_every_epoch == 0:
                    ap = _run_evaluations(state, evaluations, run_log)
                    if ap is not None and (state.best_ap is None or ap > state.best_ap):
                        state.best_ap, state.best_iteration = ap, state.iteration
                        state.save("best.pt", full=False)
                        state.save()  # last.pt knows the new best
                run_log.export()
            if world_size > 1:
                dist.barrier()
        if rank == 0:
            if state.saved_iteration != state.iteration:
                state.save()
            run_log.export()
    except KeyboardInterrupt as stop:
        if rank == 0:
            if state._buffers is not None:  # cut inside a step: BatchNorm statistics as before it
                with torch.no_grad():
                    for buffer, saved in zip(state.model.buffers(), state._buffers):
                        buffer.copy_(saved)
            path = state.save()
            run_log.export()
            log.warning("%s: %s holds %s; continue with --resume",
                        "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted", path,
                        state.position)
        raise
    if os.environ.get(DEBUG_ENV) == "1":
        from ochuman.io import write_json

        write_json(run_dir / f"rank{rank}_images.json",
                   {"rank": rank, "world_size": world_size, "image_ids": state.seen_image_ids,
                    "parameters": _parameter_digest(state.model), "iteration": state.iteration})
    if world_size > 1:
        dist.barrier()
    best = run_dir / "best.pt"
    return {"run_dir": str(run_dir), "last": str(last), "best": str(best) if best.is_file() else None,
            "best_ap": state.best_ap, "epoch": state.epoch, "iteration": state.iteration,
            "position": state.position, "rank": rank,
            "last_loss": state.last_loss, "images": len(dataset), "persons": dataset.num_persons,
            "missing_images": dataset.missing}


class _SkipSampler(torch.utils.data.Sampler):
    """``base`` without its first ``skip`` indices (resuming inside an epoch)."""

    def __init__(self, base: torch.utils.data.Sampler, skip: int):
        self.base, self.skip = base, skip

    def __iter__(self):
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)
