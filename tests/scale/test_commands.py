"""Every command of README.md's Usage and of `make demo`, run on the OCHuman-scale native file;
each asserts what the numpy oracle (tests/scale/oracle.py) or pycocotools says it must print or
write."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from .oracle import ALL_HARD_FILE, TEST_FILE, VAL_FILE, read_markdown, read_table

pytestmark = pytest.mark.scale

STATS_INTS = ("images", "persons", "persons_oc50", "persons_oc75", "persons_with_keypoints",
              "persons_with_mask", "box_only_persons", "moderate", "hard")
STATS_FLOATS = ("pct_oc50", "pct_oc75", "mean_max_iou")


def _assert_stats(got: dict, expected: dict, printed: bool = False) -> None:
    """``got``: one row of `ochuman stats` (strings of a printed table when ``printed``)."""
    for key in STATS_INTS:
        assert int(got[key]) == expected[key], key
    for key in STATS_FLOATS:
        if printed:
            assert got[key] == f"{expected[key]:.3f}", key
        else:
            assert got[key] == pytest.approx(expected[key], rel=1e-12, abs=1e-12), key


def _benchmark_stats(facts, split: str = "all") -> dict:
    persons = np.flatnonzero(facts.masked & ((facts.person_split() == split) | (split == "all")))
    return facts.stats(persons, len(np.unique(facts.image_of[persons])))


# ------------------------------------------------------------------------------------- stats
def test_stats_benchmark_set(native, ochuman_cli):
    out, _ = ochuman_cli("stats", native.path)
    column = {row["split"]: row["all"] for row in read_table(out)}
    _assert_stats(column, _benchmark_stats(native.facts), printed=True)
    assert column["max_iou_source"] == "stored" and column["range_rule"] == "closed-top"


def test_stats_every_boxed_person(native, ochuman_cli):
    out, _ = ochuman_cli("stats", native.path, "--filter", "none", "--format", "markdown")
    column = {row["split"]: row["all"] for row in read_markdown(out)}
    facts = native.facts
    _assert_stats(column, facts.stats(np.arange(len(facts.category)), len(facts.file_name)), printed=True)


def test_stats_val_as_json(native, ochuman_cli):
    out, _ = ochuman_cli("stats", native.path, "--split", "val", "--format", "json")
    row = json.loads(out)
    assert row["split"] == "val" and row["filter"] == "kpt&segm"
    _assert_stats(row, _benchmark_stats(native.facts, "val"))


def test_stats_by_split(native, ochuman_cli):
    out, _ = ochuman_cli("stats", native.path, "--by", "split", "--format", "markdown")
    rows = read_markdown(out)
    for split in ("val", "test", "all"):
        _assert_stats({row["split"]: row[split] for row in rows}, _benchmark_stats(native.facts, split),
                      printed=True)


def test_stats_of_the_official_val_file(native, coco_dir, ochuman_cli):
    out, _ = ochuman_cli("stats", coco_dir / VAL_FILE)
    column = {row["split"]: row["all"] for row in read_table(out)}
    images, persons = native.facts.official("val")
    assert int(column["images"]) == len(images) and int(column["persons"]) == len(persons)
    assert int(column["persons_with_mask"]) == len(persons) and int(column["box_only_persons"]) == 0
    assert column["max_iou_source"] == "box"


# ----------------------------------------------------------------------------------- convert
def _assert_official_file(coco: dict, facts, images: np.ndarray, persons: np.ndarray,
                          native_ids: bool = False, area: str = "box") -> None:
    """A COCO-format file is the official converter's for these images and persons (with
    ``native_ids``: ids of images from the native strings, of persons 1 + index in the file)."""
    ids = [int(v) for v in facts.image_id[images]] if native_ids else list(range(1, len(images) + 1))
    assert [im["id"] for im in coco["images"]] == ids
    assert [im["file_name"] for im in coco["images"]] == facts.file_name[images].tolist()
    assert [[im["height"], im["width"]] for im in coco["images"]] == facts.image_size[images].tolist()
    anns = coco["annotations"]
    assert len(anns) == len(persons)
    assert [a["id"] for a in anns] == (persons + 1 if native_ids else np.arange(1, len(anns) + 1)).tolist()
    id_of_image = dict(zip(images.tolist(), ids))
    assert [a["image_id"] for a in anns] == [id_of_image[k] for k in facts.image_of[persons].tolist()]
    x1, y1, x2, y2 = facts.bbox[persons].T
    np.testing.assert_array_equal([a["bbox"] for a in anns], np.stack([x1, y1, x2 - x1, y2 - y1], axis=1))
    sizes = facts.image_size[facts.image_of[persons]].tolist()
    assert [a["segmentation"]["size"] for a in anns] == sizes
    if area == "box":
        np.testing.assert_array_equal([a["area"] for a in anns], (x2 - x1) * (y2 - y1))
    else:  # pycocotools' area of the written mask, in chunks (its area() overflows from 256 masks)
        rles = [{"size": a["segmentation"]["size"], "counts": a["segmentation"]["counts"].encode()} for a in anns]
        pixels = np.concatenate([mask_utils.area(rles[k:k + 200]) for k in range(0, len(rles), 200)])
        np.testing.assert_array_equal([a["area"] for a in anns], pixels)
    for a, i in zip(anns[:: max(1, len(anns) // 300)], persons[:: max(1, len(anns) // 300)]):
        expected = facts.coco_keypoints(i)
        np.testing.assert_array_equal(np.reshape(a["keypoints"], (17, 3)), expected)
        assert a["num_keypoints"] == int((expected[:, 2] > 0).sum())
        assert a["iscrowd"] == 0 and a["category_id"] == 1


def test_convert_writes_the_official_val_and_test_files(native, coco_dir):
    facts = native.facts
    lines = (coco_dir / "stdout.txt").read_text().splitlines()
    for name, split in ((VAL_FILE, "val"), (TEST_FILE, "test")):
        images, persons = facts.official(split)
        assert (facts.max_iou[facts.masked & (facts.person_split() == split)] == 1.0).any()
        assert len(images) < (facts.split == split).sum()  # images of twins only are not in it
        path = coco_dir / name
        assert f"{path}: {len(images)} images, {len(persons)} persons" in lines
        _assert_official_file(json.loads(path.read_text()), facts, images, persons)
        loaded = COCO(str(path))  # pycocotools reads the same images and persons
        assert loaded.getImgIds() == list(range(1, len(images) + 1))
        assert [im["file_name"] for im in loaded.loadImgs(loaded.getImgIds())] == facts.file_name[images].tolist()
        assert len(loaded.getAnnIds()) == len(persons)


def test_convert_moderate_and_hard_of_val(native, range_dir):
    facts = native.facts
    for lo, hi in ((0.5, 0.75), (0.75, 1.0)):
        images, persons = facts.official("val", lo, hi)
        assert facts.max_iou[persons].max() < hi  # the official [lo, hi): 1.0 is in no file
        path = range_dir / f"ochuman_coco_format_val_range_{lo:.2f}_{hi:.2f}.json"
        assert f"{path}: {len(images)} images, {len(persons)} persons" in (range_dir / "stdout.txt").read_text()
        _assert_official_file(json.loads(path.read_text()), facts, images, persons)


def test_convert_all_splits_with_every_opt_in_fix(native, all_hard_dir):
    facts = native.facts
    images, persons = facts.official("all", 0.75, 1.0, closed_top=True)
    assert (facts.max_iou[persons] == 1.0).sum() >= 20  # closed-top keeps the twins
    coco = json.loads((all_hard_dir / ALL_HARD_FILE).read_text())
    _assert_official_file(coco, facts, images, persons, native_ids=True, area="mask")
    assert [a["max_iou"] for a in coco["annotations"]] == facts.max_iou[persons].tolist()


def test_stats_by_split_of_an_all_split_range_file(native, all_hard_dir, ochuman_cli):
    out, _ = ochuman_cli("stats", all_hard_dir / ALL_HARD_FILE, "--by", "split", "--format", "json")
    facts = native.facts
    for row in json.loads(out):
        images, persons = facts.official(row["split"], 0.75, 1.0, closed_top=True)
        assert (row["images"], row["persons"]) == (len(images), len(persons)), row["split"]


# -------------------------------------------------------------------------------------- eval
def _rows(out: str) -> dict:
    return {(row["results"], row["subset"]): row for row in json.loads(out)}


def test_eval_with_ochuman_root_from_the_environment(native, results):
    """`export OCHUMAN_ROOT=...; ochuman eval --results preds.json --subset hard`, the console script."""
    script = Path(sys.executable).parent / "ochuman"
    command = [str(script)] if script.is_file() else [sys.executable, "-m", "cli.ochuman_cmd"]
    env = {**os.environ, "OCHUMAN_ROOT": str(native.root)}
    done = subprocess.run([*command, "eval", "--results", str(results.perfect_hard), "--subset", "hard"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    (row,) = read_table(done.stdout)
    assert row["subset"] == "hard" and row["AP"] == "1.000" and row["AR100"] == "1.000"


def test_eval_leaderboard_with_paper_rows(native, results, ochuman_cli):
    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.perfect, "--name", "Perfect",
                         "--results", results.imperfect, "--name", "Detector", "--paper", "--format", "markdown")
    rows = read_markdown(out)
    ours = [(r["results"], r["subset"]) for r in rows if r["reported"] == "False"]
    assert ours == [(name, s) for name in ("Perfect", "Detector") for s in ("all", "moderate", "hard")]
    assert any(r["reported"] == "True" for r in rows)
    perfect_all = next(r for r in rows if (r["results"], r["subset"]) == ("Perfect", "all"))
    assert perfect_all["AP"] == "1.000" and perfect_all["AR100"] == "1.000"


def test_eval_keypoints_of_test_as_json(native, results, ochuman_cli):
    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.perfect_test, "--split", "test",
                         "--iou-type", "keypoints", "--format", "json")
    rows = _rows(out)
    assert set(rows) == {("perfect_test.json", s) for s in ("all", "moderate", "hard")}
    assert rows["perfect_test.json", "all"]["AP"] == 1.0 and rows["perfect_test.json", "all"]["AR"] == 1.0


def test_eval_ignore_mode_counts_twins_and_ignores_the_rest(native, results, ochuman_cli):
    """In --mode ignore persons without a mask are ignore regions and the subsets are closed-top
    (twins of MaxIoU 1.0 count): the boxes of every masked val person, twins keyed by file name,
    score 1.0 on "all" and find every person of each subset (a box of an ignored person may still
    take an overlapping counted one first, as in COCO, so AP there may fall a hair below 1)."""
    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.perfect_boxes, "--mode", "ignore",
                         "--iou-type", "bbox", "--format", "json")
    rows = {row["subset"]: row for row in json.loads(out)}
    assert (rows["all"]["AP"], rows["all"]["AR100"]) == (1.0, 1.0)
    for subset in ("moderate", "hard"):
        assert rows[subset]["AR100"] == 1.0 and rows[subset]["AP"] > 0.99, subset


def test_eval_subset_range_as_csv(native, results, ochuman_cli):
    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.perfect_mid, "--subset", "0.6:0.9",
                         "--format", "csv")
    (row,) = list(csv.DictReader(out.splitlines()))
    assert float(row["AP"]) == 1.0 and float(row["AR100"]) == 1.0


def test_eval_by_max_iou_plot_persons_and_report(native, coco_dir, results, ochuman_cli, tmp_path):
    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.imperfect, "--by-max-iou",
                         "--plot", tmp_path / "pr.png", "--persons", tmp_path / "persons.csv",
                         "--out", tmp_path / "report.json")
    assert cv2.imread(str(tmp_path / "pr.png")) is not None
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(r["results"], r["subset"]) for r in report["rows"]] == [("imperfect.json", s) for s in ("all", "moderate", "hard")]
    # persons per MaxIoU bin of 0.05 from 0.5: a numpy histogram of the val file's persons
    bins = report["ap_by_max_iou"]
    edges = [b["max_iou_lo"] for b in bins] + [bins[-1]["max_iou_hi"]]
    np.testing.assert_allclose(edges, np.linspace(0.5, 1.0, 11))
    expected = np.histogram(results.val_max_iou, np.linspace(0.5, 1.0, 11))[0]
    assert [b["persons"] for b in bins] == expected.tolist()
    # one row per val person, twins (not in the official file) included, each on its own image;
    # best IoU 1.0 exactly for those whose own mask was among the results
    with open(tmp_path / "persons.csv", newline="") as handle:
        persons = list(csv.DictReader(handle))
    facts = native.facts
    in_val = np.flatnonzero(facts.masked & (facts.person_split() == "val"))
    assert sorted((p["file_name"], float(p["max_iou"])) for p in persons) == sorted(
        zip(facts.file_name[facts.image_of[in_val]].tolist(), facts.max_iou[in_val].tolist()))
    val = json.loads((coco_dir / VAL_FILE).read_text())
    file_of = {im["id"]: im["file_name"] for im in val["images"]}
    assert all(file_of.get(int(p["image_id"]), p["file_name"]) == p["file_name"] for p in persons)
    used = {json.dumps(r["segmentation"], sort_keys=True) for r in json.loads(results.imperfect.read_text())}
    own = {a["id"] for a in val["annotations"] if json.dumps(a["segmentation"], sort_keys=True) in used}
    assert {int(p["person_id"]) for p in persons if float(p["best_iou"]) == 1.0} == own


def test_eval_gt_equals_pycocotools(coco_dir, results, pycocotools_stats, ochuman_cli):
    """`ochuman eval --gt any_coco_file.json --results preds.json --subset all`: pycocotools' 12 stats."""
    out, _ = ochuman_cli("eval", "--gt", coco_dir / VAL_FILE, "--results", results.imperfect, "--subset", "all",
                         "--format", "json")
    (row,) = json.loads(out)
    names = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
    np.testing.assert_allclose([row[k] for k in names], pycocotools_stats, rtol=0, atol=1e-12)
    assert 0.2 < row["AP"] < 0.95  # misses, swaps and duplicates: a real test of the matching


# -------------------------------------------------------------------------------------- show
def test_show_hardest_histogram_and_one_image(native, results, ochuman_cli, tmp_path):
    facts = native.facts
    out, _ = ochuman_cli("show", native.path, "--hardest", "8", "--out", tmp_path / "hardest.png")
    assert out.strip() == f"{tmp_path / 'hardest.png'}: the 8 most occluded persons"
    out, _ = ochuman_cli("show", native.path, "--histogram", "--out", tmp_path / "histogram.png")
    assert f"MaxIoU histogram of {facts.masked.sum()} persons" in out
    k = native.show_image
    name, image_id = facts.file_name[k], facts.image_id[k]
    out, _ = ochuman_cli("show", native.path, "--image-id", image_id, "--out", tmp_path / "one.png")
    assert out.strip() == f"{tmp_path / 'one.png'}: {name}, {(facts.image_of == k).sum()} persons"
    val_images = facts.official("val")[0]
    official_id = int(np.flatnonzero(val_images == k)[0]) + 1
    mine = [r for r in json.loads(results.imperfect.read_text()) if r["image_id"] == official_id]
    out, _ = ochuman_cli("show", native.path, "--image-id", image_id, "--results", results.imperfect,
                         "--out", tmp_path / "side_by_side.png")
    assert out.strip() == f"{tmp_path / 'side_by_side.png'}: {name}, ground truth beside {len(mine)} results"
    for picture in ("hardest.png", "histogram.png", "one.png", "side_by_side.png"):
        assert cv2.imread(str(tmp_path / picture)) is not None, picture


# ----------------------------------------------------------------------------------- predict
@pytest.fixture(scope="module")
def skeleton_prior(native, tmp_path_factory) -> Path:
    """`pose2seg predict --model skeleton-prior --gt ochuman.json --out floor.json`, in a fresh
    interpreter that must not load torch ("the floor, no torch needed")."""
    out = tmp_path_factory.mktemp("floor") / "floor.json"
    code = ("import sys; from cli.pose2seg_cmd import main;"
            "main(sys.argv[1:], standalone_mode=False);"
            "assert 'torch' not in sys.modules, 'torch was loaded'")
    done = subprocess.run([sys.executable, "-c", code, "predict", "--model", "skeleton-prior", "--gt",
                           str(native.path), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def test_skeleton_prior_predicts_the_val_persons(native, skeleton_prior):
    facts = native.facts
    records = json.loads(skeleton_prior.read_text())
    in_val = facts.masked & (facts.person_split() == "val")
    assert len(facts.official("val")[1]) <= len(records) <= in_val.sum()
    assert {r["score"] for r in records} == {1.0}  # --score official


def test_skeleton_prior_results_go_into_eval(native, coco_dir, skeleton_prior, ochuman_cli):
    val = json.loads((coco_dir / VAL_FILE).read_text())
    size = {im["id"]: [im["height"], im["width"]] for im in val["images"]}
    records = json.loads(skeleton_prior.read_text())
    assert all(r["image_id"] in size and r["segmentation"]["size"] == size[r["image_id"]] for r in records)
    ochuman_cli("eval", "--gt", coco_dir / VAL_FILE, "--results", skeleton_prior, "--subset", "all")


@pytest.fixture(scope="module")
def own_images(native, tmp_path_factory) -> Path:
    """Every image of the native file written (grey, its size) and its persons with keypoints as
    AlphaPose would write them (alphapose-results.json: image_id = file name, labelled joints
    with confidence 0.9 or 0.1, the others 0)."""
    from ochuman.keypoints import ochuman_to_coco

    from .conftest import _run_folder, built_once

    facts = native.facts

    def build(folder):
        (folder / "images").mkdir()
        for name, (height, width) in zip(facts.file_name.tolist(), facts.image_size.tolist()):
            assert cv2.imwrite(str(folder / "images" / name), np.full((height, width, 3), 127, np.uint8))
        rng = np.random.default_rng(0)
        persons = np.flatnonzero(facts.category > 0)
        keypoints = ochuman_to_coco(facts.keypoints[persons])
        keypoints[..., 2] = np.where(keypoints[..., 2] > 0, rng.choice([0.9, 0.1], keypoints.shape[:2]), 0.0)
        records = [{"image_id": str(facts.file_name[facts.image_of[n]]), "category_id": 1,
                    "keypoints": kp.reshape(-1).tolist(), "score": float(s), "box": [0, 0, 1, 1]}
                   for n, kp, s in zip(persons, keypoints, rng.uniform(0.1, 1, len(persons)))]
        (folder / "alphapose-results.json").write_text(json.dumps(records))
    return built_once(_run_folder(tmp_path_factory) / "own-images", build)


def test_skeleton_prior_on_own_images_without_ground_truth(native, own_images, pose2seg_cli, tmp_path):
    """`pose2seg predict --model skeleton-prior --images DIR --keypoints alphapose-results.json
    --out pred.json`: a COCO file of every image named, one annotation per record, in order."""
    from pose2seg.prior import skeleton_prior_mask

    facts = native.facts
    out = tmp_path / "pred.json"
    records = json.loads((own_images / "alphapose-results.json").read_text())
    named = sorted({r["image_id"] for r in records})
    stdout, _ = pose2seg_cli("predict", "--model", "skeleton-prior", "--images", own_images / "images",
                             "--keypoints", own_images / "alphapose-results.json", "--out", out)
    assert stdout == (f"{out}: {len(records)} masks on {len(named)} images (a COCO file: images, and annotations "
                      "with masks, keypoints and scores)\n")
    coco = COCO(str(out))
    size_of = dict(zip(facts.file_name.tolist(), facts.image_size.tolist()))
    assert [coco.imgs[k]["file_name"] for k in sorted(coco.imgs)] == named
    assert all([im["height"], im["width"]] == size_of[im["file_name"]] for im in coco.imgs.values())
    annotations = [coco.anns[k] for k in sorted(coco.anns)]
    assert len(annotations) == len(records) == (facts.category > 0).sum()
    for ann, record in zip(annotations, records):
        assert coco.imgs[ann["image_id"]]["file_name"] == record["image_id"] and ann["score"] == record["score"]
    for k in np.random.default_rng(1).choice(len(records), 40, replace=False).tolist():  # masks: 40 persons
        ann, joints = annotations[k], np.array(records[k]["keypoints"]).reshape(17, 3)
        joints[:, 2] = np.where(joints[:, 2] >= 0.2, 2, 0)  # --kpt-threshold 0.2
        image = coco.imgs[ann["image_id"]]
        np.testing.assert_array_equal(coco.annToMask(ann), skeleton_prior_mask(joints, image["height"], image["width"]))
        assert ann["keypoints"] == np.where(joints[:, 2:] > 0, joints, 0).reshape(-1).tolist()


def test_stats_beside_the_fully_labelled_images(native, ochuman_cli):
    out, _ = ochuman_cli("stats", native.path, "--image-set", "all", "--image-set", "fully-labelled",
                         "--format", "json")
    rows = json.loads(out)
    assert [r["image_set"] for r in rows] == ["all", "fully-labelled"]
    _assert_stats(rows[0], _benchmark_stats(native.facts))
    facts = native.facts
    M = len(facts.file_name)
    full = (np.bincount(facts.image_of, minlength=M) > 0) & (np.bincount(facts.image_of[facts.category < 2],
                                                                        minlength=M) == 0)
    persons = np.flatnonzero(full[facts.image_of])
    assert 0 < full.sum() < len(np.unique(facts.image_of[facts.masked]))
    _assert_stats(rows[1], facts.stats(persons, int(full.sum())))


# ------------------------------------------------------------------------------------ report
def test_report_of_val_equals_eval_json(native, results, ochuman_cli, tmp_path):
    """`ochuman report` on OCHuman-scale val with a gallery: every number of the page is `ochuman
    eval --format json`'s, nothing outside the page is referenced, and it stays a few MB."""
    from tests.ochuman.test_html_report import PageParser, assert_cell, assert_self_contained

    facts = native.facts
    images = tmp_path / "images"
    images.mkdir()
    for k in np.flatnonzero(facts.split == "val"):  # a grey ramp of the image's size
        height, width = (int(v) for v in facts.image_size[k])
        assert cv2.imwrite(str(images / facts.file_name[k]), np.tile(np.linspace(0, 255, width, dtype=np.uint8),
                                                                     (height, 1)))
    options = ["--root", native.root, "--results", results.perfect, "--name", "Perfect",
               "--results", results.imperfect, "--name", "Detector", "--bootstrap", "100"]
    out = tmp_path / "report.html"
    ochuman_cli("report", *options, "--images", images, "--out", out)
    rows = {(r["results"], r["subset"]): r for r in json.loads(ochuman_cli("eval", *options, "--format", "json")[0])}
    page = PageParser(out.read_text(encoding="utf-8"))
    cells = page.table("numbers") + page.table("leaderboard")
    assert len(cells) == len(rows) * 14  # 12 numbers, the leaderboard's AP and difference to the first
    for cell in cells:
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]][cell["data-stat"]])
    assert_self_contained(page)
    thumbs = [a for tag, a in page.tags if tag == "img" and a["src"].startswith("data:image/jpeg")]
    assert len(thumbs) >= 8 * 3  # the 8 hardest persons: ground truth, Perfect, Detector
    assert out.stat().st_size < 5e6


# ------------------------------------------------------- errors, intervals and cards (issue 17)
def test_eval_errors_bootstrap_and_cards(native, results, ochuman_cli, tmp_path):
    """`ochuman eval --errors --by-max-iou --errors-plot --bootstrap N --tag ...` on val: the perfect
    masks have no error on all and a zero-width interval at 1; the masks of the hard persons alone miss
    exactly the val persons below 0.75 (numpy count), and are significantly below the perfect ones
    on all; the cards hash the files."""
    import hashlib

    out, _ = ochuman_cli("eval", "--root", native.root, "--results", results.perfect, "--name", "Perfect",
                         "--results", results.perfect_hard, "--name", "HardOnly", "--errors", "--by-max-iou",
                         "--errors-plot", tmp_path / "errors.png", "--bootstrap", "200", "--tag", "Perfect:train=gt",
                         "--format", "json", "--out", tmp_path / "report.json")
    rows = _rows(out)
    assert cv2.imread(str(tmp_path / "errors.png")) is not None
    perfect = rows["Perfect", "all"]  # (on a range file the other persons' masks are false positives)
    assert all(value == {"count": 0, "dAP": 0.0} for value in perfect["errors"].values())
    assert perfect["AP_ci"] == [1.0, 1.0] and perfect["dAP_ci"] is None
    below = results.val_max_iou < 0.75
    assert rows["HardOnly", "all"]["errors"]["missed"]["count"] == int(below.sum())
    # on the moderate file a hard person's mask (a person dropped there) may take a moderate one
    assert 0 < rows["HardOnly", "moderate"]["errors"]["missed"]["count"] <= int(((results.val_max_iou >= 0.5) & below).sum())
    assert rows["HardOnly", "hard"]["errors"]["missed"]["count"] == 0
    lo, hi = rows["HardOnly", "all"]["dAP_ci"]
    assert rows["HardOnly", "all"]["dAP_vs_first"] < 0 and hi < 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert len(report["protocols"]) == len(report["rows"])
    for card in report["protocols"]:
        path = results.perfect if card["results"] == "Perfect" else results.perfect_hard
        assert card["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        assert card["tags"] == ({"train": "gt"} if card["results"] == "Perfect" else {})
    bins = report["ap_by_max_iou"]
    expected = np.histogram(results.val_max_iou[below], np.linspace(0.5, 1.0, 11))[0]
    missed = np.array([b["errors"]["missed"]["count"] for b in bins if b["results"] == "HardOnly"])
    assert ((missed > 0) == (expected > 0)).all() and (missed <= expected).all()  # (as on the moderate file)
