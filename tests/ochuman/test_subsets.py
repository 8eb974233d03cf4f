"""Subsets: range rules, named ranges, filters and the official split."""
from __future__ import annotations

import numpy as np
import pytest

from ochuman.errors import OCHumanError
from ochuman.subsets import (
    HARD, MODERATE, MaxIoURange, filter_mask, normalise_filter, occlusion_level, official_split,
    parse_range,
)


def test_range_rules_differ_only_at_one():
    values = np.array([0.4999, 0.5, 0.7499, 0.75, 0.9999, 1.0])
    assert MODERATE.contains(values, "official").tolist() == [False, True, True, False, False, False]
    assert HARD.contains(values, "official").tolist() == [False, False, False, True, True, False]
    assert HARD.contains(values, "closed-top").tolist() == [False, False, False, True, True, True]
    assert MODERATE.contains(values, "closed-top").tolist() == MODERATE.contains(values, "official").tolist()


def test_parse_range():
    assert parse_range("hard") is HARD
    custom = parse_range("0.6:0.9")
    assert (custom.lo, custom.hi, custom.name) == (0.6, 0.9, "0.6:0.9")
    for bad in ("extreme", "0.9:0.6", "0.5", "a:b", "0.5:1.5"):
        with pytest.raises(OCHumanError):
            parse_range(bad)
    with pytest.raises(OCHumanError):
        MaxIoURange(0.2, 0.1)


def test_occlusion_level():
    levels = occlusion_level(np.array([0.1, 0.6, 0.8, 1.0, np.nan]))
    assert levels.tolist() == ["", "moderate", "hard", "hard", ""]


def test_filters():
    kpt = np.array([True, True, False, False])
    segm = np.array([True, False, True, False])
    assert filter_mask(kpt, segm, "kpt&segm").tolist() == [True, False, False, False]
    assert filter_mask(kpt, segm, "segm|kpt").tolist() == [True, True, True, False]
    assert filter_mask(kpt, segm, None).all()
    with pytest.raises(OCHumanError, match="unknown filter 'kpt&'"):
        normalise_filter("kpt&")


def test_official_split_counts_benchmark_images_in_file_order():
    is_benchmark = np.ones(2600, dtype=bool)
    is_benchmark[[3, 2000]] = False
    split = official_split(is_benchmark)
    assert split[3] == "" and split[2000] == ""
    assert (split == "val").sum() == 2500 and (split == "test").sum() == 98
    # The 2500th benchmark image is index 2501 (two non-benchmark images before it).
    assert split[2501] == "val" and split[2502] == "test"
