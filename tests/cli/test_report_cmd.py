"""`ochuman report`: the page's numbers equal `ochuman eval --format json` for the same options,
it references nothing outside itself, bad input is one line, and headless Chromium renders it
(a screenshot that is not blank, no console message, no request but the page itself)."""
from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import ochuman
from cli.ochuman_cmd import main
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from tests.cli.one_line_errors import RUNNER_KWARGS
from tests.cli.test_eval_cmd import _jittered, _perfect, _write
from tests.ochuman.test_html_report import PageParser, assert_cell, assert_self_contained


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict:
    official_val = ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")
    folder = tmp_path_factory.mktemp("results")
    return {"jittered": _write(folder / "jittered.json", _jittered(official_val)),
            "perfect": _write(folder / "perfect.json", _perfect(official_val))}


def _invoke(command: str, *args: str):
    result = CliRunner(**RUNNER_KWARGS).invoke(main, [command, *args])
    assert result.exc_info is None or result.exc_info[0] is SystemExit, (
        f"uncaught {result.exc_info[0].__name__}: {result.exception}")
    return result


def _two(files) -> list[str]:
    return ["--results", str(files["jittered"]), "--name", "jittered",
            "--results", str(files["perfect"]), "--name", "perfect"]


@pytest.mark.parametrize("iou_type, mode", [("segm", "official"), ("bbox", "ignore"), ("keypoints", "official")])
def test_numbers_equal_eval_json(files, tmp_path, iou_type, mode):
    options = ["--gt", str(SAMPLE_ANNOTATIONS), *_two(files), "--iou-type", iou_type, "--mode", mode,
               "--bootstrap", "40", "--seed", "2", "--errors-iou", "0.6", "--tag", "perfect:train=oracle"]
    out = tmp_path / "report.html"
    result = _invoke("report", *options, "--gallery", "2", "--out", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    assert result.output.startswith(f"{out}: report of 2 results files")
    evaluated = _invoke("eval", *options, "--errors", "--by-max-iou", "--format", "json",
                        "--out", str(tmp_path / "eval.json"))
    assert evaluated.exit_code == 0
    rows = {(r["results"], r["subset"]): r for r in json.loads(evaluated.output)}
    page = PageParser(out.read_text(encoding="utf-8"))
    numbers = page.table("numbers")
    stats = [k for k in rows["jittered", "all"] if k[0] in "A" and not k.endswith("_ci")]  # AP..., AR...
    assert len(numbers) == len(rows) * len(stats)
    for cell in numbers + page.table("leaderboard"):
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]][cell["data-stat"]])
    intervals = sorted((float(a["data-lo"]), float(a["data-hi"])) for tag, a in page.tags
                       if tag == "span" and "data-lo" in a)
    assert intervals == sorted([tuple(r["AP_ci"]) for r in rows.values()]
                               + [tuple(r["dAP_ci"]) for r in rows.values() if r["dAP_ci"] is not None])
    errors = [c for c in page.table("errors") if "data-subset" in c]
    assert errors and len(errors) == sum(2 * len(r["errors"]) for r in rows.values())
    for cell in errors:
        error_class, what = cell["data-stat"].split(".")
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]]["errors"][error_class][what])
    assert "train=oracle" in page.text
    bins = {(r["results"], r["max_iou_lo"]): r
            for r in json.loads((tmp_path / "eval.json").read_text())["ap_by_max_iou"]}
    cells = [c for c in page.table("bins") if c["data-stat"] == "AP"]
    assert len(cells) == len(bins)
    for cell in cells:
        assert_cell(cell, bins[cell["data-results"], float(cell["data-max-iou-lo"])]["AP"])
    assert_self_contained(page)


def test_root_images_make_the_gallery(files, tmp_path):
    root = tmp_path / "OCHuman"
    (root / "annotations").mkdir(parents=True)
    shutil.copy(SAMPLE_ANNOTATIONS, root / "annotations" / "ochuman.json")
    (root / "images").symlink_to(SAMPLE_IMAGES, target_is_directory=True)
    out = tmp_path / "report.html"
    result = _invoke("report", "--root", str(root), *_two(files), "--gallery", "3", "--out", str(out))
    assert result.exit_code == 0, result.output + result.stderr
    page = PageParser(out.read_text(encoding="utf-8"))
    thumbs = [a for tag, a in page.tags if tag == "img" and a["src"].startswith("data:image/jpeg")]
    # 3 hardest persons x (ground truth + 2 methods), then the jittered results' failures (1 + 1 each)
    assert len(thumbs) >= 9
    assert "Worst failures of perfect (missed at IoU 0.5, lowest IoU reached first)" in page.text
    assert any(t == "None: every person is found." for t in page.text)  # the perfect results
    assert out.stat().st_size < 3e6


def test_missing_image_is_one_line(files, tmp_path):
    out = tmp_path / "report.html"
    empty = tmp_path / "no-images"
    empty.mkdir()
    result = _invoke("report", "--gt", str(SAMPLE_ANNOTATIONS), *_two(files), "--images", str(empty),
                     "--out", str(out))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and str(empty) in lines[0], result.stderr
    assert not out.exists() and list(tmp_path.glob(".report.html*")) == []


def test_name_count_must_match(files, tmp_path):
    result = _invoke("report", "--gt", str(SAMPLE_ANNOTATIONS), "--results", str(files["perfect"]),
                     "--name", "a", "--name", "b", "--out", str(tmp_path / "r.html"))
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: --name given 2 times for 1 --results"


# ------------------------------------------------------------------------------ headless Chromium
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    message = "no chromium on PATH (Debian: apt-get install chromium; .ci/run installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves a folder and records every path asked for."""

    requested: list = []

    def log_message(self, *args):
        self.requested.append(self.path)


def _render(chromium: str, url: str, screenshot: Path, profile: Path) -> str:
    """Chromium's log of rendering ``url`` into ``screenshot``: stderr, console messages included."""
    done = subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run",
         f"--user-data-dir={profile}", "--window-size=1280,2200", f"--screenshot={screenshot}",
         "--enable-logging=stderr", "--v=0", url],
        capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and screenshot.is_file(), done.stderr[-2000:]
    return done.stderr


def _console(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line]


@pytest.mark.slow
def test_chromium_renders_the_page(files, tmp_path):
    import cv2

    chromium = _chromium()
    site = tmp_path / "site"
    site.mkdir()
    result = _invoke("report", "--gt", str(SAMPLE_ANNOTATIONS), *_two(files), "--gallery", "2",
                     "--out", str(site / "report.html"))
    assert result.exit_code == 0
    # a page that logs to the console: proves that this Chromium's console reaches the log read below
    (site / "probe.html").write_text('<!DOCTYPE html><p>probe</p><script>console.error("probe-error")</script>')

    class Recorder(_Recorder):
        requested: list = []

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), lambda *a, **k: Recorder(*a, directory=str(site), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        probe = _render(chromium, f"{base}/probe.html", tmp_path / "probe.png", tmp_path / "profile-probe")
        assert any("probe-error" in line for line in _console(probe)), probe[-2000:]
        Recorder.requested.clear()
        log = _render(chromium, f"{base}/report.html", tmp_path / "report.png", tmp_path / "profile")
    finally:
        server.shutdown()
        server.server_close()
    assert _console(log) == []
    assert [p for p in Recorder.requested if p != "/favicon.ico"] == ["/report.html"]
    shot = cv2.imread(str(tmp_path / "report.png"))
    assert shot is not None and shot.shape[:2] == (2200, 1280)
    gray = cv2.cvtColor(shot, cv2.COLOR_BGR2GRAY)
    assert gray.std() > 20 and np.mean(gray < 200) > 0.02  # text, tables and figures, not a blank page
