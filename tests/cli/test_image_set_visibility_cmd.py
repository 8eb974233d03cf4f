"""`ochuman eval --image-set / --by-visibility` and `ochuman stats --image-set`: rows carry what
was asked, the numbers are the Python API's, the counts the raw JSON's, refusals one line."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import ochuman
from cli.ochuman_cmd import main
from ochuman.eval.run import evaluate_results

from .one_line_errors import RUNNER_KWARGS, assert_one_line_error


def _invoke(*args):
    result = CliRunner(**RUNNER_KWARGS).invoke(main, [str(a) for a in args])
    assert result.exc_info is None or result.exc_info[0] is SystemExit, result.exception
    return result


def _json(*args):
    result = _invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert all(row.pop("protocol")["image_set"] == row.get("image_set", "all") for row in rows if "protocol" in row)
    return rows


@pytest.fixture(scope="module")
def keypoint_results(native_sample, tmp_path_factory):
    """Jittered detections of the official val persons of the sample, keypoints, boxes, masks."""
    official = ochuman.to_coco(ochuman.load(native_sample), "val")
    rng = np.random.default_rng(0)
    out = []
    for ann in official["annotations"]:
        kpts = np.array(ann["keypoints"], dtype=float)
        kpts[0::3] += rng.normal(0, 6, 17)
        kpts[1::3] += rng.normal(0, 6, 17)
        kpts[2::3] = 1
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": float(rng.uniform(0.1, 1)),
                    "keypoints": kpts.tolist(), "bbox": ann["bbox"], "segmentation": ann["segmentation"]})
    path = tmp_path_factory.mktemp("vis") / "results.json"
    path.write_text(json.dumps(out))
    return path


def test_eval_rows_carry_image_set_and_visibility(native_sample, keypoint_results):
    rows = _json("eval", "--gt", native_sample, "--results", keypoint_results, "--iou-type", "keypoints",
                 "--image-set", "all", "--image-set", "fully-labelled", "--by-visibility")
    assert [(r["image_set"], r["visibility"], r["subset"]) for r in rows] == [
        (s, v, sub) for s in ("all", "fully-labelled")
        for v in ("all", "visible", "self-occluded", "occluded-by-other") for sub in ("all", "moderate", "hard")]
    api = evaluate_results(str(keypoint_results), gt=native_sample, iou_type="keypoints",
                           image_set=["all", "fully-labelled"], by_visibility=True).rows()
    assert [{**r, "results": "x"} for r in rows] == [{**r, "results": "x"} for r in api]
    plain = _json("eval", "--gt", native_sample, "--results", keypoint_results, "--iou-type", "keypoints")
    assert all("image_set" not in r and "visibility" not in r for r in plain)
    assert [r["AP"] for r in plain] == [r["AP"] for r in rows[:3]]  # the default is every image, every joint


def test_eval_table_shows_the_new_columns(native_sample, keypoint_results):
    result = _invoke("eval", "--gt", native_sample, "--results", keypoint_results, "--image-set", "fully-labelled",
                     "--subset", "all")
    assert result.exit_code == 0, result.stderr
    header = result.stdout.splitlines()[1].split()
    assert header[:3] == ["results", "subset", "image_set"]
    assert "fully-labelled" in result.stdout.splitlines()[3]


def test_eval_refusals_are_one_line(native_sample, ochuman_coco_sample, keypoint_results):
    result = _invoke("eval", "--gt", ochuman_coco_sample, "--results", keypoint_results, "--image-set",
                     "fully-labelled")
    assert_one_line_error(result, result.stdout, result.stderr, ochuman_coco_sample, "needs the native ochuman.json")
    result = _invoke("eval", "--gt", native_sample, "--results", keypoint_results, "--by-visibility")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr == "Error: --by-visibility needs --iou-type keypoints (OKS over the joints of one class), not segm\n"


def _independent(native_sample) -> dict:
    """Images and persons of the fully-labelled set, counted from the raw JSON."""
    doc = json.loads(native_sample.read_text())
    full = [im for im in doc["images"] if im["annotations"]
            and all(a["keypoints"] is not None and a["segms"] is not None for a in im["annotations"])]
    return {"images": len(full), "persons": sum(len(im["annotations"]) for im in full)}


@pytest.mark.parametrize("filter_args", [[], ["--filter", "none"]])
def test_stats_image_sets(native_sample, filter_args):
    rows = _json("stats", native_sample, *filter_args, "--image-set", "all", "--image-set", "fully-labelled")
    assert [r["image_set"] for r in rows] == ["all", "fully-labelled"]
    expected = _independent(native_sample)
    assert {k: rows[1][k] for k in expected} == expected
    assert rows[1]["box_only_persons"] == 0
    plain = _json("stats", native_sample, *filter_args)
    assert "image_set" not in plain and {**rows[0], "image_set": None} == {**plain, "image_set": None}
    by_split = _json("stats", native_sample, "--image-set", "fully-labelled", "--by", "split")
    assert [(r["split"], r["image_set"]) for r in by_split] == [(s, "fully-labelled") for s in ("val", "test", "all")]
    assert by_split[2]["images"] == expected["images"]


def test_stats_refuses_a_coco_file(ochuman_coco_sample):
    result = _invoke("stats", ochuman_coco_sample, "--image-set", "fully-labelled")
    assert_one_line_error(result, result.stdout, result.stderr, ochuman_coco_sample, "cannot say which images")


def test_paper_rows_are_of_every_image(native_sample, keypoint_results):
    rows = _json("eval", "--gt", native_sample, "--results", keypoint_results, "--image-set", "fully-labelled",
                 "--paper")
    assert [r["image_set"] for r in rows if r["reported"]] == ["all"] * 9
    assert all(list(r) == list(rows[0]) for r in rows)  # one set of columns: the table stays aligned
