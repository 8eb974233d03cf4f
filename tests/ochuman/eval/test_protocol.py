"""Protocol cards (:mod:`ochuman.eval.protocol`): the tag rules and what a card records."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

import ochuman.eval.report
import ochuman.scan
from ochuman.data import SAMPLE_ANNOTATIONS
from ochuman.errors import OCHumanError, OCHumanWarning
from ochuman.eval.protocol import CARD_KEYS, card_table, parse_tags, tags_per_file
from ochuman.eval.run import evaluate_results


def _files(tmp_path):
    gt = {"images": [{"id": 1, "width": 50, "height": 40, "file_name": "a.jpg"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 20], "area": 400,
                           "iscrowd": 0}],
          "categories": [{"id": 1, "name": "person"}]}
    results = [{"image_id": 1, "category_id": 1, "bbox": [5, 5, 20, 21], "score": 0.9}]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "r.json").write_text(json.dumps(results))
    return tmp_path / "gt.json", tmp_path / "r.json", results


def test_tags_without_a_name_go_to_every_results_file_and_a_name_or_position_to_one():
    tags = parse_tags(["train=coco", "a:box=gt", "2:box=detector", "b:train=coco+ochuman", "x=1=2"], ["a", "b"])
    assert tags == [{"train": "coco", "box": "gt", "x": "1=2"},
                    {"train": "coco+ochuman", "box": "detector", "x": "1=2"}]


def test_a_name_with_a_colon_is_cut_at_its_last_colon():
    assert parse_tags(["run:1:seed=3"], ["run:1", "run:2"]) == [{"seed": "3"}, {}]


@pytest.mark.parametrize("value, message", [
    ("train", "expected KEY=VALUE"), ("=coco", "expected KEY=VALUE"), ("a:=1", "expected KEY=VALUE"),
    ("c:k=v", "'c' is neither a row name (a, b) nor a position 1..2"), ("3:k=v", "nor a position 1..2"),
])
def test_bad_tags_are_refused(value, message):
    with pytest.raises(OCHumanError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_tags([value], ["a", "b"])


def test_python_tags_one_dict_for_all_or_one_per_file():
    assert tags_per_file(None, 2) == [{}, {}]
    assert tags_per_file({"k": "v"}, 2) == [{"k": "v"}, {"k": "v"}]
    assert tags_per_file([{"k": "v"}, None], 2) == [{"k": "v"}, {}]
    with pytest.raises(OCHumanError, match="1 tag sets for 2 results files"):
        tags_per_file([{}], 2)


def test_cards_record_the_file_its_hash_and_the_evaluation(tmp_path):
    gt, path, results = _files(tmp_path)
    report = evaluate_results([str(path), results], ["file", "list"], gt=str(gt), iou_type="bbox", subsets=("all",),
                              mode="ignore", tags=[{"train": "coco"}, None])
    file_card, list_card = report.protocol_cards()
    assert list(file_card) == list(CARD_KEYS)
    assert file_card == {"results": "file", "results_file": str(path),
                         "results_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "gt": str(gt),
                         "split": "all", "image_set": "all", "iou_type": "bbox", "subset_mode": "ignore",
                         "range_rule": "closed-top", "max_iou_source": "box", "tags": {"train": "coco"}}
    assert list_card["results_file"] is None and list_card["results_sha256"] is None and list_card["tags"] == {}
    assert report.to_dict()["protocols"] == [file_card, list_card]


def test_the_hash_is_of_the_bytes_evaluated_even_if_the_file_changes_after_the_call(tmp_path):
    """The results file is hashed while it is evaluated and before the call returns: a file
    rewritten afterwards (truncated first, as open(path, "w") does) changes nothing."""
    gt, path, results = _files(tmp_path)
    evaluated = hashlib.sha256(path.read_bytes()).hexdigest()
    report = evaluate_results(str(path), gt=str(gt), iou_type="bbox", subsets=("all",))
    path.write_text(json.dumps(results[:0]))
    assert report.protocol_cards()[0]["results_sha256"] == evaluated


def test_a_rows_image_set_goes_into_its_card(tmp_path, monkeypatch):
    gt, path, _ = _files(tmp_path)
    report = evaluate_results(str(path), gt=str(gt), iou_type="bbox", subsets=("all",))
    plain = report.rows()
    rows = [{**plain[0], "image_set": "all"}, {**plain[0], "image_set": "fully-labelled"}]
    monkeypatch.setattr(ochuman.eval.report.EvalReport, "rows", lambda self: rows)
    assert [c["image_set"] for c in report.protocol_cards()] == ["all", "fully-labelled"]
    assert [r["image_set"] for r in card_table(report.protocol_cards())] == ["all", "fully-labelled"]


def test_the_card_table_keeps_distinct_cards_with_short_hashes(tmp_path):
    gt, path, _ = _files(tmp_path)
    report = evaluate_results(str(path), gt=str(gt), iou_type="bbox", tags={"a": "1", "b": "2"})
    (row,) = card_table(report.protocol_cards())  # three subset rows, one card
    assert row["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()[:12] and row["tags"] == "a=1; b=2"


def test_paper_rows_have_a_card_saying_so():
    with pytest.warns(OCHumanWarning, match="empty results list"):
        report = evaluate_results([[]], gt=str(SAMPLE_ANNOTATIONS), paper=True, subsets=("all",), mode="ignore")
    cards = [c for c in report.protocol_cards() if c["results"].endswith("(paper)")]
    assert cards and all(c["tags"] == {"source": "the paper's Table 2"} and c["results_file"] is None
                         and c["subset_mode"] == "official" and c["range_rule"] == "official" for c in cards)


def test_results_files_of_one_name_keep_their_own_cards(tmp_path):
    gt, path, results = _files(tmp_path)
    (tmp_path / "b").mkdir()
    other = tmp_path / "b" / "r.json"
    other.write_text(json.dumps(results + results))
    report = evaluate_results([str(path), str(other)], ["r.json", "r.json"], gt=str(gt), iou_type="bbox",
                              tags=[{"run": "1"}, {"run": "2"}])
    cards = report.protocol_cards()
    assert len(cards) == len(report.rows()) == 6
    assert [(c["results_file"], c["tags"]["run"]) for c in cards] == [(str(path), "1")] * 3 + [(str(other), "2")] * 3


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_a_results_file_is_let_go_once_its_columns_hold_everything(tmp_path, monkeypatch, iou_type):
    """The prefetched read is let go once the detections hold what they need of it (peak
    memory): boxes are copies, masks point into their strings' buffer."""
    gt, path, results = _files(tmp_path)
    gt_dict = json.loads(gt.read_text())
    gt_dict["annotations"][0]["segmentation"] = [[5, 5, 25, 5, 25, 25, 5, 25]]
    gt.write_text(json.dumps(gt_dict))
    mask = np.zeros((40, 50), dtype=np.uint8, order="F")
    mask[5:26, 5:25] = 1
    counts = mask_utils.encode(mask)["counts"].decode()
    path.write_text(json.dumps([{**results[0], "segmentation": {"size": [40, 50], "counts": counts}}]))
    calls = []
    release = ochuman.scan.PrefetchedResults.release
    monkeypatch.setattr(ochuman.scan.PrefetchedResults, "release", lambda self: calls.append(1) or release(self))
    report = evaluate_results(str(path), gt=str(gt), iou_type=iou_type, subsets=("all",))
    assert calls
    assert report.rows()[0]["AP"] > 0.5
    assert report.protocol_cards()[0]["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints", "segm"])
def test_a_results_file_read_in_pieces_scores_and_hashes_as_a_whole(tmp_path, monkeypatch, iou_type):
    """A results file larger than a piece is scanned piece by piece (each piece's pages let go
    once hashed, its masks' strings copied out first): the same numbers and the same file hash
    as when read whole."""
    gt, path, results = _files(tmp_path)
    gt_dict = json.loads(gt.read_text())
    gt_dict["annotations"][0].update(keypoints=[10, 10, 2] * 17, num_keypoints=17,
                                     segmentation=[[5, 5, 25, 5, 25, 25, 5, 25]])
    gt.write_text(json.dumps(gt_dict))
    rng = np.random.default_rng(3)
    boxes = rng.random((400, 4)) * 20 + 1
    masks = mask_utils.frPyObjects([[x, y, x + w, y, x + w, y + h, x, y + h] for x, y, w, h in boxes.tolist()], 40, 50)
    records = [{**results[0], "bbox": box, "score": float(rng.random()), "keypoints": (10 + rng.random(51)).tolist(),
                "segmentation": {"size": [40, 50], "counts": mask["counts"].decode()}}
               for box, mask in zip(boxes.tolist(), masks)]
    path.write_text(json.dumps(records))
    whole = evaluate_results(str(path), gt=str(gt), iou_type=iou_type, subsets=("all",)).rows()
    pieces = []
    monkeypatch.setattr(ochuman.scan, "PIECE_BYTES", path.stat().st_size // 5)
    scan_piecewise = ochuman.scan.scan_results_piecewise
    monkeypatch.setattr(ochuman.scan, "scan_results_piecewise", lambda *a, **k: pieces.append(1) or scan_piecewise(*a, **k))
    report = evaluate_results(str(path), gt=str(gt), iou_type=iou_type, subsets=("all",))
    assert pieces
    assert report.rows() == whole and 0 < whole[0]["AP"] < 1
    assert report.protocol_cards()[0]["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("pieces", [1, 5])
def test_a_read_made_without_its_hash_scores_the_same_and_its_card_hashes_the_file(tmp_path, monkeypatch, pieces):
    """``PrefetchedResults(hash_file=False)`` (the command when no output shows the hash): the
    same rows, no hash made while reading; a card asked for later hashes the file then."""
    gt, path, results = _files(tmp_path)
    rng = np.random.default_rng(5)
    path.write_text(json.dumps([{**results[0], "bbox": (rng.random(4) * 20 + 1).tolist(), "score": float(rng.random())}
                                for _ in range(300)]))
    whole = evaluate_results(str(path), gt=str(gt), iou_type="bbox", subsets=("all",)).rows()
    if pieces > 1:
        monkeypatch.setattr(ochuman.scan, "PIECE_BYTES", path.stat().st_size // pieces)
    scans, scan_piecewise = [], ochuman.scan.scan_results_piecewise
    monkeypatch.setattr(ochuman.scan, "scan_results_piecewise", lambda *a, **k: scans.append(k) or scan_piecewise(*a, **k))
    read = ochuman.scan.PrefetchedResults(str(path), "bbox", hash_file=False)
    report = evaluate_results(read, gt=str(gt), iou_type="bbox", subsets=("all",))
    assert [k["hash_file"] for k in scans] == [False] * (pieces > 1)
    assert read.sha256() is None and report._hashes == {}
    assert report.rows() == whole and 0 < whole[0]["AP"] < 1
    assert report.protocol_cards()[0]["results_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
