"""Write the three occlusion notebooks (without outputs) from the cells below.

    python notebooks/make_notebooks.py          # rewrites notebooks/0*.ipynb

Edit the cells here, not the .ipynb files, so the notebooks stay reviewable and output-free.
Every notebook reads the OCHuman sample embedded in the package (``ochuman.data``), so it runs
from any working directory on a fresh install; ``tests/test_notebooks.py`` executes them.
"""
from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


EXPLORE = [
    md("""
# 1. Exploring occlusion in OCHuman

OCHuman (Occluded Human) is a benchmark of heavily overlapping people. Each person has a box,
and most also have 19 keypoints and a mask. For each person the dataset stores its **MaxIoU**:
the largest box IoU with any *other* person in the image. The paper calls persons with
MaxIoU in [0.5, 0.75) **Moderate** and those in [0.75, 1] **Hard**.

This notebook uses the 10-image sample that ships with the package (`ochuman.data`), so it runs
anywhere without downloading anything. Point `ochuman.load` at the full `ochuman.json` to get
the numbers for the whole dataset.
"""),
    code("""
%matplotlib inline
import numpy as np
import pandas as pd

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.vis import draw_persons, hardest_grid, max_iou_histogram

data = ochuman.load(SAMPLE_ANNOTATIONS)          # every boxed person of the native file
bench = data.filter_persons("kpt&segm")          # the benchmark persons: keypoints and mask
print(f"{len(data.images)} images, {len(data)} boxed persons, {len(bench)} with keypoints and mask")
"""),
    md("""
## One row per person

`to_frame()` gives a pandas DataFrame with one row per person. `max_iou` is the value the
authors stored, and `max_iou_box` recomputes it from the boxes: the two agree. `max_iou_mask`
measures the same overlap on the masks (NaN where a person has no mask) and is close to 0
even for the hardest pairs. Each visible pixel belongs to one person, so masks barely overlap
even when the people do. That is why occlusion is measured with boxes. The last columns give
each person's subset and split.
"""),
    code("""
frame = data.to_frame()
frame[["file_name", "person_id", "has_keypoints", "has_mask", "num_keypoints",
       "max_iou", "max_iou_box", "max_iou_mask", "subset", "split"]].round(3)
"""),
    md("""
## Table 1 statistics

`dataset_stats` gives the numbers that `ochuman stats` prints. The first column covers the
benchmark persons (keypoints and mask) and the second every boxed person. The benchmark set
leaves out the box-only persons and those without a mask, so the two columns differ.
"""),
    code("""
table = pd.DataFrame({
    "benchmark (kpt&segm)": ochuman.dataset_stats(bench),
    "every boxed person": ochuman.dataset_stats(data),
})
table
"""),
    code("""
# the same persons grouped by subset (closed-top rule: Hard includes MaxIoU == 1)
frame[frame.has_keypoints & frame.has_mask].groupby("subset")["max_iou"].agg(["count", "min", "max"]).round(3)
"""),
    md("""
## MaxIoU histogram

The bars are coloured by MaxIoU, and the Moderate and Hard bands are shaded. The numbers in
the title and legend come from `dataset_stats`. Every benchmark person in this sample
overlaps someone with MaxIoU above 0.5, which is why OCHuman is hard.
"""),
    code("""
max_iou_histogram(bench)
"""),
    md("""
## The most occluded persons

`hardest_grid` crops the persons with the highest MaxIoU and draws each one's mask and
skeleton. The frame colour encodes MaxIoU. Look for the persons that another person hides
almost completely.
"""),
    code("""
hardest_grid(data, 8)
"""),
    md("""
## One image, every person

`draw_persons` draws every person of one image, coloured by MaxIoU. Each person's box is
labelled with its MaxIoU and crowd regions are grey. The two persons of a pair share their
MaxIoU, so they share a colour, and the second skeleton is drawn in a shade of it. This image
holds the hardest pair of the sample.
"""),
    code("""
from matplotlib.figure import Figure

k = int(data.image_index[np.nanargmax(data.occlusion)])   # the image of the most occluded person
drawn = draw_persons(data.read_image(k), data, k)
fig = Figure(figsize=(9, 9 * drawn.shape[0] / drawn.shape[1]), layout="constrained")
ax = fig.subplots()
ax.imshow(drawn[..., ::-1])                               # BGR -> RGB
ax.set_axis_off()
ax.set_title(f"{data.images[k].file_name}: persons coloured by MaxIoU")
fig
"""),
]

EVALUATE = [
    md("""
# 2. Evaluating results with the occlusion breakdown

`ochuman.eval.evaluate_results` scores COCO results files against the official
OCHuman val/test split. It reports COCO AP as usual, then again on the Moderate and Hard
subsets (Table 2 of the paper), and as AP per MaxIoU bin.

The ground truth here is the 10-image sample in the package, which is entirely val. The
"models" are two stand-ins:

1. **skeleton prior**: the non-learned floor in `pose2seg.prior`. It draws a mask from the
   ground-truth keypoints alone (capsule limbs, torso polygon, head ellipse), needs no
   training and no torch, and every learned model should beat it.
2. **eroded + shifted ground truth**: the true masks, eroded and shifted by a few pixels,
   with random scores. It behaves like a decent model.

With only 16 persons, the AP numbers are noisy. The notebook demonstrates the workflow; it
makes no claim about either method.
"""),
    code("""
%matplotlib inline
import json
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.eval import evaluate_results, resolve_ground_truth
from ochuman.masks import bitmap_to_rle
from pose2seg.predict import persons_from_ground_truth, predict_skeleton_prior

data = ochuman.load(SAMPLE_ANNOTATIONS)
gt = resolve_ground_truth(gt=data, split="val")   # the official val file, rebuilt from ochuman.json
print(f"ground truth: {len(gt.image_ids)} images, split {gt.split}, MaxIoU {gt.max_iou_source}")
"""),
    md("""
## Two results files

Results are plain COCO results lists keyed by the image ids of the official COCO-format file
(`ochuman.to_coco(data, "val")`, ids 1, 2, ... in file order). They are exactly what
Detectron2 or MMDetection write after evaluating on that file.
"""),
    code("""
# 1. the skeleton-prior floor, from the ground-truth keypoints (the official Pose2Seg protocol)
prior = predict_skeleton_prior(gt, persons_from_ground_truth(gt))

# 2. a stand-in model: every ground-truth mask eroded and shifted, with a random score
official_val = ochuman.to_coco(data, "val")
rng = np.random.default_rng(0)
jittered = []
for ann in official_val["annotations"]:
    bitmap = mask_utils.decode({"size": ann["segmentation"]["size"],
                                "counts": ann["segmentation"]["counts"].encode()})
    radius = max(1, int(0.015 * min(ann["bbox"][2:])))            # 1.5 % of the box's short side
    bitmap = cv2.erode(bitmap, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1,) * 2))
    dx, dy = rng.integers(-radius, radius + 1, size=2)
    bitmap = np.roll(bitmap, (int(dy), int(dx)), axis=(0, 1))
    jittered.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.3, 1.0)),
                     "segmentation": bitmap_to_rle(bitmap)})
print(f"skeleton prior: {len(prior)} masks; eroded + shifted GT: {len(jittered)} masks")
"""),
    md("""
## Leaderboard with the occlusion breakdown

There is one row per (results, subset). `all` is the whole val file, `moderate` covers MaxIoU
in [0.5, 0.75) and `hard` covers [0.75, 1). In the default `official` mode, a subset is scored
the way pycocotools scores the official range file: persons outside the range are dropped, and
a detection of a dropped person counts as a false positive.
"""),
    code("""
names = ["skeleton prior", "eroded + shifted GT"]
report = evaluate_results([prior, jittered], names, gt=gt, by_max_iou=True)
leaderboard = report.to_frame()
leaderboard[["results", "subset", "AP", "AP50", "AP75", "AR100"]].round(3)
"""),
    code("""
# AP per subset side by side
leaderboard.pivot(index="results", columns="subset", values="AP")[["all", "moderate", "hard"]].round(3)
"""),
    md("""
## Cross-check against pycocotools

The claim is that each row equals what pycocotools computes on the official files. To test
it, the next cell:

1. writes the official COCO-format val files (`ochuman.to_coco`: all persons, then the
   Moderate and Hard range files);
2. gives each results list the image ids of each file (matched by file name) and drops the
   images the file does not hold;
3. runs the real `pycocotools` `COCO` / `COCOeval` (segm) and compares all 12 stats with
   ours.
"""),
    code("""
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from ochuman.compat import quietly
from ochuman.subsets import ALL, HARD, MODERATE

def pycocotools_stats(gt_file, results):
    with quietly():   # pycocotools prints a lot
        coco_gt = COCO(str(gt_file))
        coco_dt = coco_gt.loadRes(results) if results else None
        evaluator = COCOeval(coco_gt, coco_dt, "segm")
        evaluator.evaluate(); evaluator.accumulate(); evaluator.summarize()
    return evaluator.stats

file_of = dict(zip(gt.image_ids.tolist(), gt.file_names))   # our image id -> file name
checks = []
with tempfile.TemporaryDirectory() as tmp:
    for subset, rng_ in (("all", ALL), ("moderate", MODERATE), ("hard", HARD)):
        coco = ochuman.to_coco(data, "val", rng_)
        gt_file = Path(tmp) / ochuman.official_file_name("val", rng_)
        gt_file.write_text(json.dumps(coco))
        id_in_file = {im["file_name"]: im["id"] for im in coco["images"]}
        for name, results in zip(names, (prior, jittered)):
            moved = [dict(r, image_id=id_in_file[file_of[r["image_id"]]]) for r in results
                     if file_of[r["image_id"]] in id_in_file]
            theirs = pycocotools_stats(gt_file, moved)
            row = leaderboard[(leaderboard.results == name) & (leaderboard.subset == subset)].iloc[0]
            ours = row[list(report.stat_names)].to_numpy(dtype=float)
            checks.append({"results": name, "subset": subset, "file": gt_file.name,
                           "AP (ours)": ours[0], "AP (pycocotools)": theirs[0],
                           "max |difference|, 12 stats": float(np.abs(ours - theirs).max())})
checks = pd.DataFrame(checks)
print(f"pycocotools stats equal ours: {bool((checks['max |difference|, 12 stats'] < 1e-12).all())}")
checks
"""),
    md("""
## AP against MaxIoU

`by_max_iou=True` also scores bins of MaxIoU 0.05 wide. The table counts the persons in each
bin; bins with no person have no AP and appear as NaN. On the full dataset, AP falls as MaxIoU
rises for every method. With this sample's 16 persons, the trend is only a hint.
"""),
    code("""
bins = pd.DataFrame(report.ap_by_max_iou()).replace(-1.0, np.nan)
bins["bin"] = bins.max_iou_lo.map("{:.2f}".format) + "-" + bins.max_iou_hi.map("{:.2f}".format)
bins.pivot(index="bin", columns="results", values="AP").join(
    bins.drop_duplicates("bin").set_index("bin")["persons"]).round(3)
"""),
    code("""
from matplotlib.figure import Figure

fig = Figure(figsize=(7, 3.8), layout="constrained")
ax = fig.subplots()
for name, rows in bins.groupby("results", sort=False):   # empty bins (NaN) break the lines
    ax.plot((rows.max_iou_lo + rows.max_iou_hi) / 2, rows.AP, marker="o", label=name)
ax.axvspan(0.5, 0.75, color="tab:orange", alpha=0.1, label="moderate")
ax.axvspan(0.75, 1.0, color="tab:red", alpha=0.1, label="hard")
ax.set(xlabel="MaxIoU (bin centre)", ylabel="segm AP", xlim=(0.5, 1.0), ylim=(0, 1.02),
       title="AP per MaxIoU bin (OCHuman sample, val)")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig
"""),    md("""
## Why methods fail: error classes by occlusion level

`errors=True` gives every false positive at IoU 0.5 one class (`duplicate`, `merged`: one mask
over several people, `partial`: a fragment of one person, `localization`, `background`) and
counts the persons never matched (`missed`). `dAP` is how much AP at 0.5 rises when that class
alone is fixed (TIDE's oracle fixes). The same run adds bootstrap intervals (images resampled
1000 times) and, for the second method, the paired difference to the first. `image_set` adds
the fully-labelled images: those whose every boxed person has keypoints and a mask, where a
detection of a box-only person cannot count as a false positive.
"""),
    code("""
analysed = evaluate_results([prior, jittered], names, gt=data, by_max_iou=True, per_person=True,
                            errors=True, bootstrap=1000, seed=0, image_set=["all", "fully-labelled"],
                            tags=[{"masks": "skeleton prior"}, {"masks": "ground truth, eroded"}])
errors = analysed.errors_frame()
errors[errors.max_iou_lo.isna()].pivot_table(index=["results", "image_set", "subset"], columns="class",
                                             values="count", aggfunc="first", sort=False)
"""),
    code("""
# dAP per class: what fixing each error class alone would gain, per subset
errors[errors.max_iou_lo.isna()].pivot_table(index=["results", "image_set", "subset"], columns="class",
                                             values="dAP", sort=False).round(3)
"""),
    code("""
# the classes by MaxIoU bin, as `ochuman eval --errors-plot` draws them
from IPython.display import Image
from ochuman.vis import plot_errors

only_all = evaluate_results([prior, jittered], names, gt=data, by_max_iou=True, errors=True)
with tempfile.TemporaryDirectory() as tmp:
    plot_errors(only_all, Path(tmp) / "errors.png")
    figure = Image(filename=str(Path(tmp) / "errors.png"))
figure
"""),
    code("""
# why each missed person was missed (the error that aimed at it), with its occlusion
persons = pd.DataFrame(analysed.persons())
persons[~persons.matched_50].groupby(["results", "subset"])["error"].value_counts().unstack(fill_value=0)
"""),
    md("""
## Is the difference real?

`intervals_frame()` lists each number with its 95% bootstrap interval and, after the first
results file, the paired difference to it over the same resampled images. With 10 images the
intervals are wide: that is the point of showing them.
"""),
    code("""
intervals = analysed.intervals_frame()
intervals[intervals.stat == "AP"].round(3)
"""),
    code("""
# what made each row: results file hash, split, image set, mode, the tags given
from ochuman.eval.protocol import card_table

pd.DataFrame(card_table(analysed.protocol_cards()))
"""),
    md("""
## Keypoints by visibility

`by_visibility=True` scores keypoint AP over the joints of one visibility class at a time: from
the native file, visible, self-occluded and occluded by another person. The stand-in pose model
below moves every ground-truth joint by the same amount of noise, so its classes differ only by
chance; a real pose model's gap between `visible` and `occluded-by-other` is what this measures.
"""),
    code("""
rng = np.random.default_rng(1)
poses = []
for ann in official_val["annotations"]:
    kpts = np.array(ann["keypoints"], dtype=float).reshape(-1, 3)
    kpts[:, :2] += rng.normal(0, 0.02 * np.sqrt(ann["area"]), size=(len(kpts), 2))
    kpts[:, 2] = 1
    poses.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.3, 1.0)),
                  "keypoints": kpts.ravel().round(2).tolist()})
by_visibility = evaluate_results(poses, ["noisy GT poses"], gt=data, iou_type="keypoints", subsets=["all"],
                                 by_visibility=True).to_frame()
by_visibility[["results", "visibility", "AP", "AP50", "AP75", "AR"]].round(3)
"""),
]

POSE2SEG = [
    md("""
# 3. Pose2Seg: templates, Affine-Align, prediction

Pose2Seg segments people from their poses (CVPR 2019). For each person it:

1. letterboxes the image into a 512 x 512 input (`m1`) and computes ResNet-50-FPN features
   at stride 4 (`m2`);
2. picks the **pose template** that best fits the person's keypoints (a similarity transform
   fitted by least squares) and uses that transform, **Affine-Align** (`m3`), to warp the
   person's features into a 64 x 64 frame where the pose is upright and normalised;
3. segments the person in that frame, helped by skeleton features, and warps the mask back
   into the image.

This notebook shows the templates, the Affine-Align windows (the paper's Figure 7), and one
prediction. It uses torch on the CPU and the embedded OCHuman sample.
"""),
    code("""
%matplotlib inline
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.masks import bitmap_to_rle
from ochuman.vis import draw_results, side_by_side
from pose2seg.figures import align_geometry, align_windows, templates_figure
from pose2seg.model import ModelConfig, Pose2Seg
from pose2seg.prior import skeleton_prior_mask
from pose2seg.templates import cluster_templates, compare_templates, load_templates

data = ochuman.load(SAMPLE_ANNOTATIONS)

def persons_of(k):
    \"\"\"Dataset indices and COCO keypoints (N, 17, 3) of image k's persons with keypoints.\"\"\"
    idx = np.flatnonzero((data.image_index == k) & data.has_keypoints & ~data.iscrowd)
    return idx, data.keypoints[idx]
"""),
    md("""
## Pose templates

The released model uses three templates, clustered by k-means on box-normalised COCO poses:
a standing front view (T0), a back view whose face points are not valid (T1), and an upper
body with bent arms whose legs are not valid (T2). Affine-Align also tries each template with
left and right swapped (T0', T1', T2').

For comparison, the next cells run the same clustering (`cluster_templates`, or the
`pose2seg templates` command) on the 20 persons of the sample that have keypoints. With so few
poses the clusters are crude. The table pairs each learned template with its nearest official
one (mean distance in unit-square units) and lists the joints that are not valid in each.
"""),
    code("""
official = load_templates()
keep = data.has_keypoints & ~data.iscrowd
sizes = np.array([[im.width, im.height] for im in data.images], dtype=float)[data.image_index[keep]]
learned = cluster_templates(data.keypoints[keep], data.bbox_xywh[keep], k=3, seed=0, image_wh=sizes)
pd.DataFrame(compare_templates(learned, official)).round(3)
"""),
    code("""
templates_figure({"official (COCO)": official, "k-means on the OCHuman sample": learned})
"""),
    md("""
## Affine-Align windows (Figure 7)

`align_windows` computes each person's matrix with the model's own code (letterbox, stride,
`select_templates`). On the left it draws the 64 x 64 aligned frame mapped back into the
image: the **window** the model reads. The thick edge is the top of the frame, and the legend
gives the chosen template and its fit score. On the right is the image warped into each
person's frame, with the template skeleton in white and the person's keypoints in colour.

A person only gets a template when the fit beats the **fallback**, whose window is the whole
letterboxed input. The official rule also requires that the fitted scale exceed the
fallback's and that every labelled joint be valid in the template. In the first image, the
seated man gets the mirrored standing template (T0'). A similarity transform cannot bend his
legs straight, so the least-squares fit tilts the window by about 45 degrees as a compromise
between his upright torso and his legs. In the second image, the woman stands with her hands
on her hips and fits T0 only loosely. The loose fit shrinks the similarity, the window would
be larger than the whole input, and she falls back.
"""),
    code("""
k = 5                                  # 000006.jpg: two people seated side by side
idx, keypoints = persons_of(k)
align_windows(data.read_image(k), keypoints, title=data.images[k].file_name)
"""),
    code("""
k = 1                                  # 000002.jpg: one person fits T0, the other falls back
idx, keypoints = persons_of(k)
windows = align_geometry(data.read_image(k).shape, keypoints)
print("templates:", windows.names, "scores:", np.round(windows.score, 3))
align_windows(data.read_image(k), keypoints, title=data.images[k].file_name)
"""),
    md("""
## A prediction with an **untrained** model

The next cell builds a Pose2Seg with **random weights** at a small input size (256) and
runs `predict` on one image. **The model is untrained, so its masks are meaningless.** The
cell only demonstrates the call: image and keypoints in, one full-resolution mask per person
out, produced by the same letterbox, Affine-Align and AlignReverse path shown above. For real
masks, import the authors' weights (`pose2seg import-weights`) or train a model, then load it
with `Pose2Seg.from_checkpoint`.
"""),
    code("""
torch.manual_seed(0)
model = Pose2Seg(ModelConfig(input_size=256)).eval()     # random weights: NOT a trained model
k = 8
image = data.read_image(k)
idx, keypoints = persons_of(k)
masks, scores = model.predict(image, keypoints)
print(f"masks {masks.shape} {masks.dtype}, foreground pixels per person: {masks.reshape(len(masks), -1).sum(1)}")
untrained = [{"image_id": data.images[k].image_id, "score": float(s), "segmentation": bitmap_to_rle(m)}
             for m, s in zip(masks, scores)]
drawn = draw_results(image, untrained, score_threshold=0.0, labels=False)
fig = Figure(figsize=(7, 7 * image.shape[0] / image.shape[1]), layout="constrained")
ax = fig.subplots()
ax.imshow(drawn[..., ::-1])
ax.set_axis_off()
ax.set_title("UNTRAINED Pose2Seg (random weights): these masks mean nothing")
fig
"""),
    md("""
## The skeleton prior

`pose2seg.prior.skeleton_prior_mask` is the non-learned floor: it draws a mask from the
keypoints alone, using capsules for limbs, a polygon for the torso and an ellipse for the head.
It needs no torch and no training, and it is what `make demo` evaluates. Below, the ground
truth (left, coloured by MaxIoU) is shown beside the prior's masks (right). Each mask takes the
colour of the ground-truth person it overlaps most, with IoU of at least 0.5, and is grey when
it overlaps no one that much. The prior knows nothing about occlusion: the man's mask is drawn
over the boy standing in front of him, so it matches no one.
"""),
    code("""
k = 8
image = data.read_image(k)
idx, keypoints = persons_of(k)
prior = [{"image_id": data.images[k].image_id, "score": 1.0,
          "segmentation": bitmap_to_rle(skeleton_prior_mask(kp, *image.shape[:2]))} for kp in keypoints]
side_by_side(image, data, k, prior)
"""),
]


def build(cells, prefix: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    for k, cell in enumerate(nb.cells):  # stable ids: regenerating gives the same files
        cell.id = f"{prefix}-{k:02d}"
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


NOTEBOOKS = {
    "01_explore_occlusion.ipynb": EXPLORE,
    "02_evaluate_results.ipynb": EVALUATE,
    "03_pose2seg.ipynb": POSE2SEG,
}


def main() -> None:
    for name, cells in NOTEBOOKS.items():
        nb = build(cells, name.split("_")[0])
        nbformat.validate(nb)
        nbformat.write(nb, HERE / name)
        print(HERE / name)


if __name__ == "__main__":
    main()
