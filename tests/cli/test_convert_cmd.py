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

import pytest  # noqa: E402

import ochuman  # noqa: E402
from ochuman.compat import quietly  # noqa: E402
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
    with quietly():
        coco = COCO(str(hard_file))
        E = COCOeval(coco, coco.loadRes([r for r in results if r["image_id"] in coco.getImgIds()]), "segm")
        E.evaluate(); E.accumulate(); E.summarize()
    assert row["AP"] == pytest.approx(E.stats[0], abs=1e-12) and row["AR100"] == pytest.approx(E.stats[8], abs=1e-12)


def _comb_native(path, images: int) -> None:
    """A native file whose masks are combs of 60 horizontal teeth on 1000 x 1000 images: long
    RLE strings (~120 runs per column), so that each converted file takes a while to write."""
    teeth = 60
    outer = [0, 0]
    for k in range(teeth):
        y = 16 * k
        outer += [990, y, 990, y + 8, 10, y + 8, 10, y + 16]
    outer += [0, 16 * teeth]
    keypoints = [0] * 57
    keypoints[0:3] = [5, 5, 1]
    person = {"bbox": [0, 0, 990, 16 * teeth], "max_iou": 0.6, "keypoints": keypoints,
              "segms": {"outer": [outer], "inner": [], "height": 1000, "width": 1000}}
    path.write_text(json.dumps({"images": [
        {"file_name": f"{n:06d}.jpg", "image_id": f"{n:06d}", "width": 1000, "height": 1000,
         "annotations": [person, person]} for n in range(1, images + 1)]}))


def test_sigterm_during_convert_leaves_no_partial_file(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    native = tmp_path / "ochuman.json"
    _comb_native(native, 20)
    out = tmp_path / "out"
    ranges = [["--range", "0", "1"], ["--range", "0.1", "1"], ["--range", "0.2", "1"], ["--range", "0.3", "1"]]
    job = subprocess.Popen(
        [sys.executable, "-c", "from cli.ochuman_cmd import run; run()", "convert", str(native), "--out", str(out),
         "--split", "all", *[arg for r in ranges for arg in r]],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    # signal it as soon as it writes its first file (while the hidden temporary file exists)
    while job.poll() is None and not (out.is_dir() and any(p.name.endswith(".part") for p in out.iterdir())):
        time.sleep(0.001)
    assert job.poll() is None, "the conversion ended before it was signalled"
    job.send_signal(signal.SIGTERM)
    stdout, stderr = job.communicate(timeout=120)
    assert job.returncode == 143, stderr
    assert stderr.splitlines() == ["Terminated (SIGTERM)."]
    left = sorted(p.name for p in out.iterdir())
    assert not [name for name in left if name.endswith(".part") or name.startswith(".")]
    assert len(left) < len(ranges)  # stopped before the end
    for name in left:  # whatever is there is whole
        assert len(json.loads((out / name).read_text())["annotations"]) == 40
