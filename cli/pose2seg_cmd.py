"""``pose2seg``: the Pose2Seg reference model (templates, prediction and training commands)."""
from __future__ import annotations

import dataclasses
import typing

import click

from cli.common import Group, OutputFile, verbosity_options
from pose2seg.config import TrainConfig


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ochuman-toolkit")
@verbosity_options
def main():
    """Pose2Seg: human instance segmentation from poses (CVPR 2019)."""


def _model_module(name: str):
    """Import ``name`` (a pose2seg module that needs torch); without torch, a one-line
    OCHumanError naming the ``[model]`` extra instead of a traceback."""
    import importlib

    from ochuman.errors import OCHumanError

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in ("torch", "torchvision"):
            raise
        raise OCHumanError(f"this command needs PyTorch ({err.name} is not installed here): "
                           "pip install 'ochuman-toolkit[model]'") from None


@main.command("import-weights")
@click.argument("src", type=click.Path())
@click.option("--out", "dst", required=True, type=OutputFile(),
              help="Toolkit checkpoint to write (atomically).")
def import_weights(src, dst):
    """Convert the authors' released weights SRC (pose2seg_release.pkl) into a checkpoint.

    SRC is read with weights_only=True and checked strictly against the released layout
    (backbone.* and segnet.*; `module.` and `pose2seg.seg_branch.` names are accepted).
    """
    weights = _model_module("pose2seg.weights")  # torch loads only for this command

    checkpoint = weights.import_official_weights(src, dst)
    state = checkpoint["state_dict"]
    n_values = sum(t.numel() for k, t in state.items() if not k.endswith("num_batches_tracked"))
    click.echo(f"{dst}: {len(state)} tensors ({n_values:,} values) from {src}")


@main.command("templates")
@click.option("--ann", "ann_files", multiple=True, required=True, metavar="FILE",
              help="COCO keypoint file (or native ochuman.json); repeat to pool several files.")
@click.option("-k", "--num-templates", "k", type=click.IntRange(min=1), default=3, show_default=True,
              help="Number of templates (k-means clusters).")
@click.option("--out", "out_file", required=True, type=OutputFile(),
              help="Templates JSON to write (the official schema, atomically).")
@click.option("--seed", type=int, default=0, show_default=True, help="k-means random seed.")
@click.option("--min-points", type=click.IntRange(min=0), default=8, show_default=True,
              help="Drop persons with fewer labelled keypoints (official: 8).")
@click.option("--format", "fmt", type=click.Choice(("table", "json", "csv", "markdown")),
              default="table", show_default=True,
              help="How the comparison with the official templates is printed.")
@verbosity_options
def templates(ann_files, k, out_file, seed, min_points, fmt):
    """Learn pose templates from the non-crowd persons with keypoints of annotation FILEs.

    Box-normalised poses plus mirrored copies, k-means on the 51-D vectors (Pose2Seg
    cluster_pose.py); prints each template's cluster size and nearest official template.
    """
    import numpy as np

    from ochuman.errors import OCHumanError
    from ochuman.io import load
    from ochuman.report import render
    from pose2seg.templates import (
        cluster_templates, compare_templates, load_templates, nearest_template, normalise_poses,
        save_templates,
    )

    keypoints, boxes, image_wh = [], [], []
    for path in ann_files:
        data = load(path)
        keep = data.has_keypoints & ~data.iscrowd
        sizes = np.array([[im.width, im.height] for im in data.images], dtype=np.float64).reshape(-1, 2)
        keypoints.append(data.keypoints[keep])
        boxes.append(data.bbox_xywh[keep])
        image_wh.append(sizes[data.image_index[keep]])
    keypoints, boxes, image_wh = (np.concatenate(parts) for parts in (keypoints, boxes, image_wh))
    try:
        learned = cluster_templates(keypoints, boxes, k=k, seed=seed, min_points=min_points,
                                    image_wh=image_wh)
    except ValueError as err:
        raise OCHumanError(f"{', '.join(ann_files)}: {err}") from None
    save_templates(learned, out_file)

    poses = normalise_poses(keypoints, boxes, min_points=min_points, image_wh=image_wh)
    cluster_size = np.bincount(nearest_template(poses, learned), minlength=k)
    rows = [{"template": row["template"], "vectors": int(cluster_size[row["template"]]),
             "nearest_official": f"T{row['nearest_reference']}",
             "mean_dist": round(row["mean_dist"], 4), "mean_dist_valid": round(row["mean_dist_valid"], 4),
             "invalid": row["invalid"], "official_invalid": row["reference_invalid"]}
            for row in compare_templates(learned, load_templates())]
    if fmt in ("table", "markdown"):
        click.echo(f"{out_file}: {k} templates from {len(poses) // 2} of {len(keypoints)} persons "
                   f"with keypoints (>= {min_points} labelled; {len(poses)} pose vectors with the "
                   f"mirrored copies) of {', '.join(ann_files)}")
    click.echo(render(rows, fmt))


@main.command("predict")
@click.option("--checkpoint", default=None, metavar="CKPT",
              help="Model checkpoint (pose2seg import-weights or training). Not with --model skeleton-prior.")
@click.option("--model", "model_kind", type=click.Choice(["pose2seg", "skeleton-prior"]), default="pose2seg",
              show_default=True, help="skeleton-prior: the non-learned floor (no checkpoint, no torch).")
@click.option("--gt", "gt_file", default=None, metavar="FILE",
              help="Evaluation file (native ochuman.json or COCO); results are keyed by its image ids. Without "
                   "it: your own images (--images) and the persons of --keypoints, written as a COCO file.")
@click.option("--split", type=click.Choice(["val", "test", "all"]), default="val", show_default=True,
              help="Split of a native ochuman.json --gt.")
@click.option("--images", "images_dir", default=None, metavar="DIR", help="Folder of the images.")
@click.option("--out", "out_file", required=True, metavar="FILE.json", type=OutputFile(),
              help="COCO results (with --gt) or a COCO file (without) to write (atomic).")
@click.option("--keypoints", "keypoints_file", default=None, metavar="FILE|DIR",
              help="Keypoint detector output instead of the ground-truth keypoints: an OpenPose --write_json "
                   "folder, or COCO keypoint records whose image_id is an image id of --gt or an image's file "
                   "name (AlphaPose's alphapose-results.json: COCO, Halpe-26 or Halpe-136 joints).")
@click.option("--kpt-threshold", type=float, default=0.2, show_default=True,
              help="With --keypoints: a joint is labelled when its confidence is at least this.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--score", type=click.Choice(["official", "mask"]), default="official", show_default=True,
              help="official: the person's score (1.0 for ground-truth persons, as the paper; the detector's "
                   "with --keypoints); mask: mean mask probability.")
@click.option("--protocol", type=click.Choice(["clean", "official"]), default="clean", show_default=True,
              help="Which ground-truth persons: clean (non-crowd, with keypoints) or official (as the official "
                   "test.py: every valid annotation, keypoints truncated to integers, an image without one "
                   "replaced by the next).")
@verbosity_options
def predict(checkpoint, model_kind, gt_file, split, images_dir, out_file, keypoints_file, kpt_threshold,
            batch_size, device, score, protocol):
    """Segment the persons of the ground-truth file, or those a keypoint detector found.

    With --gt: COCO results keyed by its image ids, each record naming the protocol that chose
    its person ("protocol"). Without --gt (your own images): --images DIR and --keypoints, an
    OpenPose --write_json folder (BODY_25 or COCO-18) or a JSON list of records whose image_id
    is the image's file name (AlphaPose: COCO, Halpe-26, Halpe-136); the images are numbered in
    file-name order and OUT is a COCO file: images, and one annotation per person with its mask,
    keypoints and score (ochuman show OUT --image-id NAME draws them). An OpenPose person's
    score is the mean confidence of its 17 COCO joints.
    """
    import math

    from cli.common import show_progress
    from ochuman.eval.resolve import resolve_ground_truth
    from ochuman.errors import OCHumanError
    from pose2seg.predict import (
        coco_file_of_predictions, persons_from_detected_poses, persons_from_ground_truth,
        persons_from_keypoint_results, predict_skeleton_prior, write_results,
    )

    def progress(iterable, total=None, unit="person"):
        from tqdm import tqdm

        return tqdm(iterable, total=total, unit=unit, disable=not show_progress(), leave=False)

    if not math.isfinite(kpt_threshold):
        raise OCHumanError(f"--kpt-threshold: expected a finite number, got {kpt_threshold}")
    if keypoints_file and protocol == "official":
        raise OCHumanError("--protocol official segments the ground-truth persons (the official test.py); "
                           "it does not take --keypoints")
    own_images = gt_file is None
    if own_images:
        from ochuman.pose_files import images_of_poses, read_detected_poses

        if not keypoints_file:
            raise OCHumanError("--gt FILE is needed (its persons are segmented), or, for your own images, "
                               "--keypoints FILE|DIR and --images DIR")
        if not images_dir:
            raise OCHumanError("--images DIR is needed without --gt: the images the keypoints name are read there")
        poses = read_detected_poses(keypoints_file)
        gt, image_index = images_of_poses(poses, images_dir, progress=lambda it: progress(it, unit="image"))
        persons = persons_from_detected_poses(poses, image_index, kpt_threshold)
    else:
        gt = resolve_ground_truth(gt=gt_file, split=split)
        persons = (persons_from_keypoint_results(keypoints_file, gt, kpt_threshold) if keypoints_file
                   else persons_from_ground_truth(gt, protocol))

    if model_kind == "skeleton-prior":
        if checkpoint:
            raise OCHumanError("--checkpoint is not used with --model skeleton-prior")
        results = predict_skeleton_prior(gt, persons, progress=progress)
    else:
        if not checkpoint:
            raise OCHumanError("--checkpoint CKPT is needed (or --model skeleton-prior for the floor)")
        if not images_dir:
            raise OCHumanError("--images DIR is needed: Pose2Seg reads the pixels")
        import warnings

        from ochuman.errors import OCHumanWarning
        inference = _model_module("pose2seg.inference")

        with warnings.catch_warnings(record=True) as caught:  # a truncated image: predicted, and said
            warnings.simplefilter("always", OCHumanWarning)
            results = inference.predict_dataset(checkpoint, gt, persons, images_dir, batch_size=batch_size,
                                                device=device, score=score, progress=progress)
        for warning in caught:
            click.echo(f"Warning: {warning.message}", err=True)
    if own_images:
        description = f"pose2seg predict --model {model_kind}: the persons of {keypoints_file}"
        write_results(out_file, coco_file_of_predictions(gt, persons, results, description))
        click.echo(f"{out_file}: {len(results)} masks on {len(gt.image_ids)} images (a COCO file: images, and "
                   f"annotations with masks, keypoints and scores)")
        return
    write_results(out_file, results)
    click.echo(f"{out_file}: {len(results)} masks for {len(set(r['image_id'] for r in results))} images "
               f"(protocol {persons.protocol})")


def train_options(func):
    """One option per :class:`~pose2seg.config.TrainConfig` field, made from the field's type,
    default and metadata (help, metavar, choices, least value): ``--train-ann``, ...; a bool
    field is a flag, ``--amp`` when off by default, ``--skeleton/--no-skeleton`` when on."""
    hints = typing.get_type_hints(TrainConfig)
    for f in reversed(dataclasses.fields(TrainConfig)):  # click lists the last decorator first
        name, meta = f.name.replace("_", "-"), f.metadata
        required = f.default is dataclasses.MISSING
        kind = next((a for a in typing.get_args(hints[f.name]) if a is not type(None)), hints[f.name])
        if kind is bool:
            declaration = f"--{name}/--no-{name}" if f.default else f"--{name}"
            func = click.option(declaration, f.name, is_flag=True, default=f.default, show_default=f.default,
                                help=meta["help"])(func)
            continue
        if meta["choices"] is not None:
            kind = click.Choice(meta["choices"])
        elif meta["minimum"] is not None:
            kind = click.IntRange(min=meta["minimum"])
        func = click.option(f"--{name}", f.name, type=kind, required=required, metavar=meta["metavar"],
                            default=None if required else f.default,
                            show_default=not required and f.default is not None, help=meta["help"])(func)
    return func


@main.command("train")
@train_options
@verbosity_options
def train(**options):
    """Train Pose2Seg (paper recipe: Adam 2e-4, batch 4, at most 8 persons, 40 epochs).

    Writes RUN_DIR/last.pt (resumable with --resume; ^C saves it and exits 130, SIGTERM saves it
    and exits 143), best.pt (best val AP), log.jsonl, log.csv and curves.png. Several GPUs: this
    command under torchrun, torchrun --nproc_per_node N --no-python pose2seg train ...; rank 0
    alone shows progress and prints the summary.
    """
    from cli.common import show_progress
    train_module = _model_module("pose2seg.train")  # torch loads only for this command

    summary = train_module.fit(TrainConfig(**options), progress=show_progress())
    if summary["rank"]:
        return
    best = (f"; best val AP {summary['best_ap']:.4f} in {summary['best']}" if summary["best"] else "")
    click.echo(f"{summary['last']}: {summary['position']}, last loss {summary['last_loss']:.4f}{best}"
               if summary["last_loss"] is not None else f"{summary['last']}: {summary['position']}{best}")


if __name__ == "__main__":  # python -m cli.pose2seg_cmd
    main()
