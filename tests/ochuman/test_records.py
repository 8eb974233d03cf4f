"""Dataset views: ``select_range`` against a count made by hand from the native sample's JSON."""
from __future__ import annotations

import json

import pytest

import ochuman
from ochuman.subsets import ALL, HARD, MODERATE, MaxIoURange


def _in_range(value: float, max_iou_range: MaxIoURange, rule: str) -> bool:
    """The spec's range rule (section 3): [lo, hi); closed-top also keeps 1.0 when hi is 1."""
    return (max_iou_range.lo <= value < max_iou_range.hi
            or (rule == "closed-top" and max_iou_range.hi == 1.0 and value == 1.0))


@pytest.mark.parametrize("rule", ["official", "closed-top"])
def test_select_range_keeps_the_persons_the_spec_rule_counts(native_sample, tmp_path, rule):
    raw = json.loads(native_sample.read_text())
    # Boundary cases the sample lacks: a person at exactly 0.75 (Hard's lo, Moderate's hi) and
    # one at 1.0 (the value the two rules disagree on).
    raw["images"][0]["annotations"][0]["max_iou"] = 0.75
    raw["images"][1]["annotations"][1]["max_iou"] = 1.0
    path = tmp_path / "ochuman.json"
    path.write_text(json.dumps(raw))
    data = ochuman.load(path)
    # (file name, position in its image, stored max_iou) of every person, in file order; a native
    # file's person ids count its persons 1, 2, ... in that order
    persons = [(im["file_name"], j, p["max_iou"]) for im in raw["images"] for j, p in enumerate(im["annotations"])]
    stored = sorted({value for _, _, value in persons})
    ranges = [ALL, MODERATE, HARD, MaxIoURange(stored[3], stored[-4]), MaxIoURange(0.0, stored[1]),
              MaxIoURange(stored[-2], 1.0)]
    for max_iou_range in ranges:
        expected = [(name, j) for name, j, value in persons if _in_range(value, max_iou_range, rule)]
        expected_images = list(dict.fromkeys(name for name, _ in expected))
        chosen = data.select_range(max_iou_range, rule)
        assert [persons[i - 1][:2] for i in chosen.person_id.tolist()] == expected, (max_iou_range, rule)
        assert [im.file_name for im in chosen.images] == expected_images, (max_iou_range, rule)
        assert [chosen.images[k].file_name for k in chosen.image_index] == [name for name, _ in expected]
    hard = {persons[i - 1][:2] for i in data.select_range(HARD, rule).person_id.tolist()}
    moderate = {persons[i - 1][:2] for i in data.select_range(MODERATE, rule).person_id.tolist()}
    at_075, at_1 = (raw["images"][0]["file_name"], 0), (raw["images"][1]["file_name"], 1)
    assert at_075 in hard and at_075 not in moderate
    assert (at_1 in hard) == (rule == "closed-top")
