"""`ochuman convert`: official file names, several splits and ranges, atomic outputs."""
from __future__ import annotations

import json

from click.testing import CliRunner

from cli.ochuman_cmd import main


def test_writes_the_official_files(native_sample, tmp_path):
    result = CliRunner().invoke(main, [
        "convert", str(native_sample), "--out", str(tmp_path),
        "--range", "0", "1", "--range", "0.5", "0.75", "--range", "0.75", "1",
    ])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted(
        f"ochuman_coco_format_{split}_range_{r}.json"
        for split in ("val", "test") for r in ("0.00_1.00", "0.50_0.75", "0.75_1.00"))
    full = json.loads((tmp_path / "ochuman_coco_format_val_range_0.00_1.00.json").read_text())
    moderate = json.loads((tmp_path / "ochuman_coco_format_val_range_0.50_0.75.json").read_text())
    hard = json.loads((tmp_path / "ochuman_coco_format_val_range_0.75_1.00.json").read_text())
    assert len(full["annotations"]) == 16 == len(moderate["annotations"]) + len(hard["annotations"])
    assert json.loads((tmp_path / "ochuman_coco_format_test_range_0.00_1.00.json").read_text())["images"] == []
    assert "16 persons" in result.output


def test_bad_range_is_one_line(native_sample, tmp_path):
    result = CliRunner().invoke(main, ["convert", str(native_sample), "--out", str(tmp_path),
                                       "--range", "0.8", "0.2"])
    assert result.exit_code == 1
    assert "need 0 <= lo < hi <= 1" in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------ what a converted file says about itself
import contextlib  # noqa: E402
import io  # noqa: E402

import pytest  # noqa: E402

import ochuman  # noqa: E402
from ochuman.subsets import MaxIoURange  # noqa: E402
from tests.ochuman.test_convert import native_dict  # noqa: E402


def _convert(native_path, out, *args):
    result = CliRunner().invoke(main, ["convert", str(native_path), "--out", str(out), *args])
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def native_2600(tmp_path_factory):
    """2600 benchmark images (val: the first 2500), MaxIoU 0.6 on odd and 0.3 on even images."""
    images = [(f"{n:06d}", [((0, 0, 9, 9), 0.6 if n % 2 else 0.3, True, True)]) for n in range(1, 2601)]
    path = tmp_path_factory.mktemp("native") / "ochuman.json"
    path.write_text(json.dumps(native_dict(images)))
    return path


def _native_split_names(native_path, split, max_iou_range):
    subset = ochuman.load(native_path, "kpt&segm").select_split(split).select_range(max_iou_range, "official")
    return [im.file_name for im in subset.images]


def test_split_of_an_all_range_file_comes_from_the_native_order(native_2600, tmp_path):
    _convert(native_2600, tmp_path, "--split", "all", "--range", "0.5", "0.75")
    converted = tmp_path / "ochuman_coco_format_all_range_0.50_0.75.json"
    moderate = MaxIoURange(0.5, 0.75)
    dataset = ochuman.load(converted)
    for split in ("val", "test"):
        assert [im.file_name for im in dataset.select_split(split).images] == \
            _native_split_names(native_2600, split, moderate)
    result = CliRunner().invoke(main, ["stats", str(converted), "--by", "split", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["split"]: row for row in json.loads(result.output)}
    assert (rows["val"]["images"], rows["test"]["images"], rows["all"]["images"]) == (1250, 50, 1300)


def test_split_of_an_all_range_file_without_info_is_refused_in_one_line(native_2600, tmp_path):
    _convert(native_2600, tmp_path, "--split", "all", "--range", "0.5", "0.75")
    converted = tmp_path / "ochuman_coco_format_all_range_0.50_0.75.json"
    coco = json.loads(converted.read_text())
    del coco["info"]  # as the official converter writes it
    converted.write_text(json.dumps(coco))
    with pytest.raises(ochuman.OCHumanError, match="val/test split"):
        ochuman.load(converted).select_split("val")
    result = CliRunner(**({"mix_stderr": False} if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else {})
                       ).invoke(main, ["stats", str(converted), "--by", "split"])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert result.output.count("\n") == 1 and result.output.startswith(f"Error: {converted}: ")


def test_the_full_range_all_file_without_info_splits_at_2500(native_2600, tmp_path):
    _convert(native_2600, tmp_path, "--split", "all")
    converted = tmp_path / "ochuman_coco_format_all_range_0.00_1.00.json"
    coco = json.loads(converted.read_text())
    del coco["info"]
    converted.write_text(json.dumps(coco))
    dataset = ochuman.load(converted)
    assert [im.file_name for im in dataset.select_split("test").images] == \
        _native_split_names(native_2600, "test", MaxIoURange(0.0, 1.0))


def test_eval_scores_a_closed_top_file_with_its_rule(tmp_path):
    """Hard of the closed-top file of every person = pycocotools on the closed-top Hard file."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    native = tmp_path / "ochuman.json"
    native.write_text(json.dumps(native_dict([
        ("000001", [((2, 2, 20, 30), 1.0, True, True), ((2, 2, 20, 30), 1.0, True, True),
                    ((25, 5, 45, 35), 0.8, True, True)]),
        ("000002", [((3, 3, 25, 30), 0.9, True, True), ((20, 1, 40, 25), 0.6, True, True)]),
    ])))
    _convert(native, tmp_path, "--split", "all", "--range", "0", "1", "--range", "0.75", "1",
             "--range-rule", "closed-top", "--image-ids", "native", "--with-max-iou")
    everyone = tmp_path / "ochuman_coco_format_all_range_0.00_1.00.json"
    hard_file = tmp_path / "ochuman_coco_format_all_range_0.75_1.00.json"
    gt = json.loads(everyone.read_text())
    assert len(gt["annotations"]) == 5  # closed-top kept the two MaxIoU 1.0 persons
    # the 0.8 person's detection scores highest; the 1.0 persons' come next
    scores = {3: 0.95, 1: 0.9, 2: 0.85, 4: 0.8, 5: 0.7}
    results = [{"image_id": a["image_id"], "category_id": 1, "segmentation": a["segmentation"],
                "score": scores[a["id"]]} for a in gt["annotations"]]
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    result = CliRunner().invoke(main, ["eval", "--gt", str(everyone), "--results", str(results_file),
                                       "--subset", "hard", "--format", "json"])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["range_rule"] == "closed-top"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(hard_file))
        E = COCOeval(coco, coco.loadRes([r for r in results if r["image_id"] in coco.getImgIds()]), "segm")
        E.evaluate(); E.accumulate(); E.summarize()
    assert row["AP"] == pytest.approx(E.stats[0], abs=1e-12) and row["AR100"] == pytest.approx(E.stats[8], abs=1e-12)
