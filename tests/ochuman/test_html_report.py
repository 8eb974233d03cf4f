"""ochuman.html_report: the page's numbers are the report's (parsed back with html.parser), it
references nothing outside itself, names are escaped, and the sections of issue 17's row keys
(bootstrap intervals, error classes, protocol cards, why persons were missed) render from a report
that has them."""
from __future__ import annotations

import json
import math
from html.parser import HTMLParser

import pytest

import ochuman
from ochuman.data import SAMPLE_ANNOTATIONS, SAMPLE_IMAGES
from ochuman.eval.report import EvalReport
from ochuman.eval.resolve import resolve_ground_truth
from ochuman.eval.run import evaluate_results
from ochuman.html_report import ERROR_CLASSES, GallerySource, render_html, write_html
from tests.cli.test_eval_cmd import _jittered, _perfect

NAMES = ("jit <b>&amp; \"x\"", "perfect")


class PageParser(HTMLParser):
    """What a test needs from a page: every tag with its attributes, the number cells, the text."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.cells: list[dict] = []  # attributes of <td data-value=...> plus their "text"
        self.text: list[str] = []
        self._cell = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "td" and "data-stat" in attributes:
            self._cell = {**attributes, "text": ""}
            self.cells.append(self._cell)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None and not self._cell["text"]:
            self._cell["text"] = data

    def table(self, name: str) -> list[dict]:
        return [c for c in self.cells if c.get("data-table") == name]


def assert_self_contained(page: PageParser) -> None:
    """No script, no link, no reference to a URL or a file: every src/href is a data: URI."""
    for tag, attributes in page.tags:
        assert tag not in ("script", "link", "iframe", "object", "embed"), tag
        for key in ("src", "href", "srcset", "action", "data"):
            if key in attributes:
                assert attributes[key].startswith("data:"), (tag, key, attributes[key][:60])
    style = "".join(page.text)
    assert "@import" not in style and "url(" not in style


def assert_cell(cell: dict, value) -> None:
    """A number cell shows ``value`` with 3 decimals and carries it exactly."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        assert "data-value" not in cell
        return
    assert float(cell["data-value"]) == value, cell
    assert cell["text"] == (f"{value:.3f}" if isinstance(value, float) else str(value)), cell


@pytest.fixture(scope="module")
def results() -> list[list[dict]]:
    official = ochuman.to_coco(ochuman.load(SAMPLE_ANNOTATIONS), "val")
    return [_jittered(official), _perfect(official)]


def _report(results, iou_type="segm", mode="official") -> EvalReport:
    return evaluate_results([json.loads(json.dumps(r)) for r in results], list(NAMES), gt=SAMPLE_ANNOTATIONS,
                            iou_type=iou_type, mode=mode, by_max_iou=True, per_person=True)


def _gallery(results, iou_type="segm", images=SAMPLE_IMAGES) -> GallerySource:
    ground = resolve_ground_truth(gt=SAMPLE_ANNOTATIONS, masks=iou_type == "segm")
    return GallerySource(ground, dict(zip(NAMES, results)), None if images is None else str(images))


@pytest.fixture(scope="module")
def report(results) -> EvalReport:
    return _report(results)


@pytest.fixture(scope="module")
def page(report, results) -> PageParser:
    dataset = ochuman.load(SAMPLE_ANNOTATIONS).filter_persons("kpt&segm").select_split("val")
    return PageParser(render_html(report, dataset=dataset, gallery=_gallery(results), gallery_size=4))


def test_every_number_cell_is_the_rows_number(page, report):
    rows = {(r["results"], r["subset"]): r for r in report.rows()}
    numbers = page.table("numbers")
    assert len(numbers) == len(rows) * len(report.stat_names)
    for cell in numbers:
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]][cell["data-stat"]])
    leaderboard = page.table("leaderboard")
    assert {(c["data-results"], c["data-subset"]) for c in leaderboard} == set(rows)
    for cell in leaderboard:
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]]["AP"])
    # the jittered results are below the perfect ones: the page shows different numbers
    assert rows[NAMES[0], "all"]["AP"] < rows[NAMES[1], "all"]["AP"] == 1.0


def test_ap_by_max_iou_cells_are_the_bins(page, report):
    bins = {(r["results"], r["max_iou_lo"]): r for r in report.ap_by_max_iou()}
    cells = page.table("bins")
    ap = [c for c in cells if c["data-stat"] == "AP"]
    assert len(ap) == len(bins)
    for cell in ap:
        assert_cell(cell, bins[cell["data-results"], float(cell["data-max-iou-lo"])]["AP"])
    for cell in (c for c in cells if c["data-stat"] == "persons"):
        assert_cell(cell, bins[NAMES[0], float(cell["data-max-iou-lo"])]["persons"])


def test_page_is_self_contained_and_has_its_sections(page):
    assert_self_contained(page)
    headings = [t for t in page.text if t in ("Leaderboard", "Precision / recall", "AP against MaxIoU",
                                                "MaxIoU of the dataset", "Gallery")]
    assert len(headings) == 5
    images = [a["src"] for tag, a in page.tags if tag == "img"]
    assert sum(src.startswith("data:image/png;base64,") for src in images) == 3  # curves, bins, histogram
    assert sum(src.startswith("data:image/jpeg;base64,") for src in images) > 0  # gallery thumbnails
    assert "Error classes" not in page.text  # not asked for: not shown


def test_names_are_escaped(page):
    assert not any(tag == "b" for tag, _ in page.tags)
    assert NAMES[0] in page.text  # shown as typed, "&amp;" included


def test_gallery_shows_the_iou_reached_of_the_person_rows(page, report):
    best = {r["best_iou"] for r in report.persons()}
    figures = [a for tag, a in page.tags if tag == "figure" and "data-best-iou" in a]
    assert figures and all(float(a["data-best-iou"]) in best for a in figures)
    captions = [t for t in page.text if t.startswith(f"{NAMES[1]}: IoU")]
    assert captions and all(t == f"{NAMES[1]}: IoU 1.000, found" for t in captions)  # perfect results


def test_gallery_says_when_there_are_no_images(report, results):
    page = PageParser(render_html(report, gallery=_gallery(results, images=None)))
    assert any("No images: pass --images DIR" in t for t in page.text)
    assert not any(tag == "figure" for tag, _ in page.tags)


@pytest.mark.parametrize("iou_type", ["bbox", "keypoints"])
def test_gallery_of_other_iou_types(results, iou_type):
    report = _report(results, iou_type)
    page = PageParser(render_html(report, gallery=_gallery(results, iou_type), gallery_size=3))
    assert_self_contained(page)
    captions = [t for t in page.text if t.startswith(f"{NAMES[1]}: IoU")]
    assert captions and all(t == f"{NAMES[1]}: IoU 1.000, found" for t in captions)


# ------------------------------------------- the analyses of issue 17: errors, bootstrap, protocol cards
@pytest.fixture(scope="module")
def analysed(results) -> EvalReport:
    return evaluate_results([json.loads(json.dumps(r)) for r in results], list(NAMES), gt=SAMPLE_ANNOTATIONS,
                            by_max_iou=True, per_person=True, errors=True, bootstrap=20, seed=3,
                            tags=[{"train": "<i>x</i>"}, {"train": "coco"}])


def test_intervals_errors_and_protocol_cards_are_the_reports(analysed, results):
    page = PageParser(render_html(analysed, gallery=_gallery(results), gallery_size=2))
    assert_self_contained(page)
    rows = {(r["results"], r["subset"]): r for r in analysed.rows()}
    # intervals under each leaderboard AP, exactly
    intervals = [a for tag, a in page.tags if tag == "span" and "data-lo" in a]
    expected = [tuple(rows[name, s]["AP_ci"]) for name in NAMES for s in ("all", "moderate", "hard")]
    expected += [tuple(rows[NAMES[1], s]["dAP_ci"]) for s in ("all", "moderate", "hard")]
    assert sorted((float(a["data-lo"]), float(a["data-hi"])) for a in intervals) == sorted(expected)
    deltas = [c for c in page.table("leaderboard") if c["data-stat"] == "dAP_vs_first"]
    assert len(deltas) == 6
    for cell in deltas:
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]].get("dAP_vs_first"))
    # error classes per subset and per MaxIoU bin
    errors = [c for c in page.table("errors") if "data-subset" in c]
    assert len(errors) == len(rows) * len(ERROR_CLASSES) * 2
    for cell in errors:
        error_class, what = cell["data-stat"].split(".")
        assert_cell(cell, rows[cell["data-results"], cell["data-subset"]]["errors"][error_class][what])
    bins = {(r["results"], r["max_iou_lo"]): r for r in analysed.ap_by_max_iou()}
    by_bin = [c for c in page.table("errors") if "data-max-iou-lo" in c]
    assert len(by_bin) == len(bins) * len(ERROR_CLASSES) * 2
    for cell in by_bin:
        error_class, what = cell["data-stat"].split(".")
        assert_cell(cell, bins[cell["data-results"], float(cell["data-max-iou-lo"])]["errors"][error_class][what])
    assert "Error classes" in page.text and "Protocol" in page.text
    assert "train=<i>x</i>" in page.text and "train=coco" in page.text  # escaped, not a tag
    assert not any(tag == "i" for tag, _ in page.tags)
    # the gallery says why a missed person was missed, as the person rows do
    reasons = {r["error"] for r in analysed.persons() if r["results"] == NAMES[0] and not r["matched_50"]}
    shown = [t for t in page.text if t.startswith(f"{NAMES[0]}: IoU") and ", missed (" in t]
    assert all(t.split(", missed (")[1].split(" at IoU")[0] in reasons for t in shown)


def test_person_errors_name_the_error_aiming_at_each_missed_person(analysed):
    for row in analysed.persons():
        assert (row["error"] is None) == row["matched_50"]  # errors at IoU 0.5: missed there, and only there
        assert row["error"] in (None, "missed", "merged", "partial", "localization")


def test_write_html_is_atomic_and_utf8(tmp_path, report):
    path = tmp_path / "report.html"
    text = render_html(report, gallery_size=0)
    write_html(path, text)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
