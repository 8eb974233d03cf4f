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
