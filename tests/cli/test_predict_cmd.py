"""`pose2seg predict`: the floor and a checkpoint, keyed by the GT file's ids, into `ochuman eval`."""
from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from cli.ochuman_cmd import main as ochuman_main
from cli.pose2seg_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from pose2seg.model import ModelConfig, Pose2Seg
from pose2seg.weights import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

pytestmark = pytest.mark.model  # the full network: make test, not make test-fast


def _eval(results):
    out = CliRunner().invoke(ochuman_main, ["eval", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(results),
                                            "--format", "json", "--subset", "all"])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)[0]


def test_skeleton_prior_floor(tmp_path):
    out = tmp_path / "floor.json"
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(SAMPLE_ANNOTATIONS),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert len(records) == 16 and {r["image_id"] for r in records} == set(range(1, 11))
    assert 0 < _eval(out)["AP"] < 0.5


def test_checkpoint_prediction_and_clear_errors(tmp_path):
    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(input_size=256, units=1))
    ckpt = tmp_path / "m.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": model.state_dict(),
                "config": model.checkpoint_config()}, ckpt)
    out = tmp_path / "preds.json"
    args = ["predict", "--checkpoint", str(ckpt), "--gt", str(SAMPLE_ANNOTATIONS), "--out", str(out)]
    result = CliRunner().invoke(main, args + ["--images", str(SAMPLE_IMAGES), "--batch-size", "3", "--score", "mask"])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert len(records) == 16 and all(0 <= r["score"] <= 1 for r in records)
    assert _eval(out)["iou_type"] == "segm"
    for extra, fragment in ((["--images", str(tmp_path)], "000001.jpg"), ([], "--images DIR")):
        bad = CliRunner().invoke(main, ["predict", "--checkpoint", str(ckpt), "--gt", str(SAMPLE_ANNOTATIONS),
                                        "--out", str(tmp_path / "x.json")] + extra)
        assert bad.exit_code == 1 and fragment in bad.output and "Traceback" not in bad.output
        assert not (tmp_path / "x.json").exists()


def test_detector_keypoints_map_confidence_to_visibility(tmp_path):
    import ochuman

    gt = ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")
    detections = []
    for ann in gt["annotations"]:
        kp = list(ann["keypoints"])
        for j in range(17):  # confidences in (0, 1): the official code would drop them all
            kp[3 * j + 2] = 0.9 if kp[3 * j + 2] > 0 else 0.05
        detections.append({"image_id": ann["image_id"], "category_id": 1, "score": 0.8, "keypoints": kp})
    kpts = tmp_path / "kpts.json"
    kpts.write_text(json.dumps(detections))
    out = tmp_path / "floor.json"
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(SAMPLE_ANNOTATIONS),
                                       "--keypoints", str(kpts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    from_detector = json.loads(out.read_text())
    CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(SAMPLE_ANNOTATIONS),
                              "--out", str(tmp_path / "gt.json")])
    from_gt = json.loads((tmp_path / "gt.json").read_text())
    assert [r["segmentation"] for r in from_detector] == [r["segmentation"] for r in from_gt]
    assert {r["score"] for r in from_detector} == {0.8}


def test_images_absent_from_the_official_file_get_no_predictions(tmp_path, caplog):
    """An image whose only persons have MaxIoU 1.0 is not in the official val file (which then
    renumbers the later images), and a MaxIoU 1.0 person beside others is not in it either: the
    predictions are those of the official file's persons, keyed by its image ids, so that
    pycocotools and `ochuman eval --gt <official file>` take them and score what `--gt
    ochuman.json` scores."""
    import ochuman
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    raw = json.loads(SAMPLE_ANNOTATIONS.read_text())
    for person in raw["images"][1]["annotations"]:  # 000002.jpg: both persons at MaxIoU 1.0
        person["max_iou"] = 1.0
    raw["images"][0]["annotations"][0]["max_iou"] = 1.0  # 000001.jpg keeps its second person
    native = tmp_path / "ochuman.json"
    native.write_text(json.dumps(raw))
    official = ochuman.to_coco(ochuman.load(native), "val")
    assert "000002.jpg" not in {im["file_name"] for im in official["images"]}
    official_file = tmp_path / "ochuman_coco_format_val_range_0.00_1.00.json"
    official_file.write_text(json.dumps(official))

    out = tmp_path / "floor.json"
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(native), "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert len(records) == len(official["annotations"])
    assert {r["image_id"] for r in records} <= {im["id"] for im in official["images"]}

    coco_gt = COCO(str(official_file))
    coco_eval = COCOeval(coco_gt, coco_gt.loadRes(str(out)), "segm")
    coco_eval.evaluate()
    coco_eval.accumulate()
    coco_eval.summarize()
    expected = [float(v) for v in coco_eval.stats]
    for gt in (official_file, native):
        rows = CliRunner().invoke(ochuman_main, ["eval", "--gt", str(gt), "--results", str(out), "--format", "json",
                                                 "--subset", "all"])
        assert rows.exit_code == 0, rows.output
        row = json.loads(rows.output)[0]
        assert [row[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
                                 "ARl")] == pytest.approx(expected, abs=1e-12), gt

    # a keypoint detector's persons on the dropped image (named by file) are dropped, with a warning
    names = {im["id"]: im["file_name"] for im in official["images"]}
    detections = [{"image_id": names[a["image_id"]], "category_id": 1, "score": 0.9, "keypoints": a["keypoints"]}
                  for a in official["annotations"]]
    detections.append({**detections[0], "image_id": "000002.jpg"})
    kpts = tmp_path / "kpts.json"
    kpts.write_text(json.dumps(detections))
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(native), "--keypoints",
                                       str(kpts), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warned = [r.getMessage() for r in caplog.records if r.name == "pose2seg.predict"]
    assert len(warned) == 1 and "kpts.json: 1 detections are on images the official val file" in warned[0]
    assert {r["image_id"] for r in json.loads(out.read_text())} == {im["id"] for im in official["images"]}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A small random-weights checkpoint (input 64, 1 unit)."""
    torch.manual_seed(0)
    model = Pose2Seg(ModelConfig(input_size=64, units=1))
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "state_dict": model.state_dict(),
                "config": model.checkpoint_config()}, path)
    return path


def _native_with(tmp_path, file_names: dict[int, str]):
    raw = json.loads(SAMPLE_ANNOTATIONS.read_text())
    for k, name in file_names.items():
        raw["images"][k]["file_name"] = name
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("file_name", ["../outside.jpg", "ABSOLUTE"])
def test_file_names_that_leave_the_images_folder_are_refused(tmp_path, checkpoint, file_name):
    images = tmp_path / "images"
    images.mkdir()
    for source in SAMPLE_IMAGES.iterdir():
        (images / source.name).write_bytes(source.read_bytes())
    (tmp_path / "outside.jpg").write_bytes((SAMPLE_IMAGES / "000002.jpg").read_bytes())
    file_name = str(tmp_path / "outside.jpg") if file_name == "ABSOLUTE" else file_name
    gt = _native_with(tmp_path, {1: file_name})
    out = tmp_path / "preds.json"
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(checkpoint), "--gt", str(gt), "--images",
                                       str(images), "--out", str(out)])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {gt}: image 2: file_name {file_name!r}"), lines
    assert "outside the images folder" in lines[0] and not out.exists()


def test_a_truncated_jpeg_is_a_warning_and_prediction_goes_on(tmp_path, checkpoint):
    images = tmp_path / "images"
    images.mkdir()
    for source in SAMPLE_IMAGES.iterdir():
        (images / source.name).write_bytes(source.read_bytes())
    whole = (images / "000002.jpg").read_bytes()
    (images / "000002.jpg").write_bytes(whole[:len(whole) // 2])
    out = tmp_path / "preds.json"
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(checkpoint), "--gt", str(SAMPLE_ANNOTATIONS),
                                       "--images", str(images), "--out", str(out)])
    assert result.exit_code == 0, result.output
    warned = [line for line in result.output.splitlines() if line.startswith("Warning: ")]
    assert len(warned) == 1 and f"{images / '000002.jpg'}: " in warned[0] and "truncated JPEG" in warned[0]
    assert len(json.loads(out.read_text())) == 16


def test_nan_keypoint_threshold_is_refused(tmp_path):
    kpts = tmp_path / "kpts.json"
    kpts.write_text("[]")
    out = tmp_path / "floor.json"
    result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(SAMPLE_ANNOTATIONS),
                                       "--keypoints", str(kpts), "--kpt-threshold", "nan", "--out", str(out)])
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit, result.output
    assert result.output.splitlines() == ["Error: --kpt-threshold: expected a finite number, got nan"]
    assert not out.exists()


def test_commands_that_need_torch_name_the_model_extra_when_it_is_missing(tmp_path):
    """Without torch (a base install), import-weights, predict --checkpoint and train say which
    extra to install, in one line; the skeleton prior still works."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class _NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('torch', 'torchvision'):\n"
        "            raise ModuleNotFoundError(f\"No module named '{name}'\", name=name)\n"
        "sys.meta_path.insert(0, _NoTorch())\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{blocker}{os.pathsep}{repo}"}
    script = str(Path(sys.executable).with_name("pose2seg"))
    commands = [
        ["import-weights", str(tmp_path / "pose2seg_release.pkl"), "--out", str(tmp_path / "x.pt")],
        ["predict", "--checkpoint", str(tmp_path / "m.pt"), "--gt", str(SAMPLE_ANNOTATIONS), "--images",
         str(SAMPLE_IMAGES), "--out", str(tmp_path / "x.json")],
        ["train", "--train-ann", str(SAMPLE_ANNOTATIONS), "--train-images", str(SAMPLE_IMAGES), "--out",
         str(tmp_path / "run")],
    ]
    for args in commands:
        done = subprocess.run([script, *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 1, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and "PyTorch" in lines[0], done.stderr
        assert "ochuman-toolkit[model]" in lines[0] and done.stdout == ""
    assert not any(p.name.startswith(("x.", "run")) for p in tmp_path.iterdir())
    done = subprocess.run([script, "predict", "--model", "skeleton-prior", "--gt", str(SAMPLE_ANNOTATIONS), "--out",
                           str(tmp_path / "floor.json")], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and (tmp_path / "floor.json").is_file(), done.stderr


def test_protocols_choose_the_persons_and_each_record_names_its_protocol(tmp_path, coco_sample):
    counts = {}
    for protocol in ("clean", "official"):
        out = tmp_path / f"{protocol}.json"
        result = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(coco_sample),
                                           "--protocol", protocol, "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert result.output.strip().endswith(f"images (protocol {protocol})")
        records = json.loads(out.read_text())
        assert {r["protocol"] for r in records} == {protocol}
        counts[protocol] = len(records)
        rows = CliRunner().invoke(ochuman_main, ["eval", "--gt", str(coco_sample), "--results", str(out),
                                                 "--format", "json", "--subset", "all"])
        assert rows.exit_code == 0, rows.output
    assert counts == {"clean": 12, "official": 14}
    refused = CliRunner().invoke(main, ["predict", "--model", "skeleton-prior", "--gt", str(coco_sample),
                                        "--protocol", "official", "--keypoints", str(out), "--out",
                                        str(tmp_path / "x.json")])
    assert refused.exit_code == 1 and refused.output.splitlines() == [
        "Error: --protocol official segments the ground-truth persons (the official test.py); "
        "it does not take --keypoints"]
    assert not (tmp_path / "x.json").exists()


def test_official_protocol_with_a_checkpoint_segments_the_next_image_twice(tmp_path, checkpoint, coco_sample):
    """An image without a valid annotation: the official loop segments the next image in its place,
    so that image's masks come twice, identical, in the loop's order."""
    data = json.loads(coco_sample.read_text())
    for ann in data["annotations"]:
        if ann["image_id"] == 40083:
            ann["area"] = 0
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps(data))
    out = tmp_path / "preds.json"
    result = CliRunner().invoke(main, ["predict", "--checkpoint", str(checkpoint), "--gt", str(gt), "--images",
                                       str(coco_sample.parent / "images"), "--protocol", "official",
                                       "--batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    records = json.loads(out.read_text())
    assert [r["image_id"] for r in records] == [785] + [196141] * 10 + [197388] * 5
    assert [r["segmentation"] for r in records[1:6]] == [r["segmentation"] for r in records[6:11]]
