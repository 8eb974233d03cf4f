"""One self-contained HTML page per evaluation (``ochuman report``): the leaderboard (all,
Moderate, Hard), precision/recall per subset, AP against MaxIoU, the error classes by MaxIoU bin
(when the rows carry them), the dataset's MaxIoU histogram and a gallery of the hardest persons
and of each method's worst failures.

One file, no network: figures are PNG data URIs (matplotlib, Agg, via :mod:`ochuman.vis`), the
gallery's thumbnails small JPEG data URIs, the style an inline ``<style>``; no scripts, fonts or
links to files. Every number comes from the :class:`~ochuman.eval.report.EvalReport` (its
``rows()``, ``ap_by_max_iou()`` and ``persons()``, which ``ochuman eval --format json`` prints):
tables show 3 decimals and carry the exact value in ``data-value``.

Rendered when the report has them: ``AP_ci`` ([lo, hi]), ``dAP_vs_first`` and ``dAP_ci``
(bootstrap); ``errors`` ({class: {"count": n, "dAP": x}}, on rows and on AP-by-MaxIoU rows); the
protocol cards of ``report.to_dict()["protocols"]`` (their distinct cards as a table); a
per-person ``error`` (the class of the error that aimed at a missed person, in the gallery).
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np

from ochuman import vis
from ochuman.eval.errors import ERROR_CLASSES
from ochuman.io import atomic_write

PathLike = Union[str, os.PathLike]

#: Longest side of a gallery thumbnail, pixels; JPEG quality.
THUMB_SIDE = 200
THUMB_QUALITY = 82
_FIGURE_DPI = 100
_GT_COLOR = (80, 200, 40)  # BGR green: the ground-truth person
_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;padding:0 1em;color:#222;background:#fff}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em;display:block;overflow-x:auto;max-width:100%}
th,td{border:1px solid #ccc;padding:.25em .55em;text-align:right}th{background:#f2f2f2}
td.name,th.name{text-align:left}.ci{color:#666;font-size:.85em;display:block}
.card{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.6em 0;background:#fafafa}
.card dt{font-weight:600;float:left;clear:left;width:11em}.card dd{margin-left:12em}
img.figure{max-width:100%;height:auto}.note{color:#555}
.person{display:flex;flex-wrap:wrap;gap:.5em;align-items:flex-start;margin:.8em 0;padding:.4em;
border:1px solid #e2e2e2;border-radius:6px}
.person figure{margin:0;text-align:center;font-size:.8em;max-width:220px}
.person figcaption{margin-top:.2em}.meta{flex-basis:100%;font-size:.88em}
"""


@dataclass
class GallerySource:
    """What the gallery draws from: the evaluation's ground truth (a
    :class:`~ochuman.eval.ground_truth.GroundTruth`), each results file's records (COCO result
    dicts) by row name, and the folder of the images (None: no gallery, the page says so)."""

    ground: object
    results: dict
    images_dir: Optional[str]


def render_html(report, *, dataset=None, gallery: Optional[GallerySource] = None, gallery_size: int = 8,
                title: Optional[str] = None, progress: bool = False) -> str:
    """The page of ``report`` (an :class:`~ochuman.eval.report.EvalReport`) as one HTML string.

    dataset: the ground truth's :class:`~ochuman.records.Dataset` for the MaxIoU histogram (None:
    no histogram); gallery: see :class:`GallerySource`; gallery_size: persons per gallery
    section (0: none); progress: a tqdm bar while the gallery renders.
    """
    summary = report.to_dict()
    title = title or f"OCHuman {report.iou_type} evaluation: {', '.join(ev.name for ev in report.evaluations)}"
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>{_e(title)}</h1>", _setup_card(summary)]
    parts.append(_protocol_section(summary.get("protocols") or []))
    rows = report.rows()
    parts.append(_leaderboard(rows))
    parts.append(_all_numbers(rows, report.stat_names))
    parts.append(_curves_section(report))
    bins = report.ap_by_max_iou()
    parts.append(_max_iou_section(bins))
    parts.append(_errors_section(rows, bins))
    parts.append(_histogram_section(dataset, report.range_rule))
    parts.append(_gallery_section(report, gallery, gallery_size, progress))
    parts.append("</body></html>\n")
    return "\n".join(p for p in parts if p)


def write_html(path: PathLike, text: str) -> None:
    """Write the page atomically (UTF-8)."""
    with atomic_write(path, "wb") as handle:
        handle.write(text.encode("utf-8"))


# ------------------------------------------------------------------------------------ helpers
def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _number(value, **keys) -> str:
    """A table cell of a number: 3 decimals shown, the exact value in ``data-value``, what it is
    in ``data-*`` attributes (``keys``). None and NaN: an en dash."""
    attributes = "".join(f' data-{k.replace("_", "-")}="{_e(v)}"' for k, v in keys.items() if v is not None)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"<td{attributes}>&ndash;</td>"
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return f'<td{attributes} data-value="{int(value)}">{int(value)}</td>'
    return f'<td{attributes} data-value="{float(value)!r}">{float(value):.3f}</td>'


def _figure_uri(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_FIGURE_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str, alt: str, css: str = "figure") -> str:
    return f'<img class="{css}" src="{uri}" alt="{_e(alt)}">'


def _card(pairs: Sequence[tuple[str, object]], css: str = "card") -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs)
    return f'<dl class="{css}">{items}</dl>'


# ----------------------------------------------------------------------------------- sections
def _setup_card(summary: dict) -> str:
    return _card([("ground truth", summary["gt"]), ("split", summary["split"]), ("IoU type", summary["iou_type"]),
                  ("mode", summary["mode"]), ("MaxIoU", summary["max_iou_source"]),
                  ("ranges", summary["range_rule"])])


def _protocol_section(cards: Sequence[dict]) -> str:
    """The distinct protocol cards of the rows (:func:`ochuman.eval.protocol.card_table`)."""
    from ochuman.eval.protocol import card_table

    table = card_table(cards)
    if not table:
        return ""
    head = "".join(f'<th class="name">{_e(k)}</th>' for k in table[0])
    lines = "".join("<tr>" + "".join(f'<td class="name">{_e(v)}</td>' for v in row.values()) + "</tr>"
                    for row in table)
    return f'<h2 id="protocol">Protocol</h2><table class="protocol"><tr>{head}</tr>{lines}</table>'


def _names(rows: Sequence[dict]) -> list[str]:
    return list(dict.fromkeys(row["results"] for row in rows))


def _leaderboard(rows: Sequence[dict]) -> str:
    """AP per results file (one line each) and subset (columns): the rows over the categories."""
    categories = {r.get("category") for r in rows}
    main = [r for r in rows if len(categories) == 1 or r.get("category") == "all"]
    subsets = list(dict.fromkeys(r["subset"] for r in main))
    head = "".join(f"<th>AP {_e(s)}</th>" for s in subsets)
    has_delta = any("dAP_vs_first" in r for r in main)
    if has_delta:
        head += "".join(f"<th>&Delta;AP {_e(s)} vs first</th>" for s in subsets)
    lines = []
    for name in _names(main):
        by_subset = {r["subset"]: r for r in main if r["results"] == name}
        cells = []
        for s in subsets:
            row = by_subset.get(s)
            cells.append(_with_interval(_number(None if row is None else row.get("AP"), results=name, subset=s,
                                                stat="AP", table="leaderboard"), row and row.get("AP_ci")))
        if has_delta:
            for s in subsets:
                row = by_subset.get(s) or {}
                cells.append(_with_interval(_number(row.get("dAP_vs_first"), results=name, subset=s,
                                                    stat="dAP_vs_first", table="leaderboard"), row.get("dAP_ci")))
        lines.append(f'<tr><td class="name">{_e(name)}</td>{"".join(cells)}</tr>')
    return ('<h2 id="leaderboard">Leaderboard</h2><table class="leaderboard"><tr><th class="name">results</th>'
            f"{head}</tr>{''.join(lines)}</table>"
            + ('<p class="note">Brackets: bootstrap 95% interval.</p>' if any("AP_ci" in r for r in main) else ""))


def _with_interval(cell: str, interval) -> str:
    """``cell`` with ``[lo, hi]`` under its number (each bound with its exact ``data-value``)."""
    if not interval:
        return cell
    lo, hi = (float(v) for v in interval)
    return cell.replace("</td>", f'<span class="ci" data-lo="{lo!r}" data-hi="{hi!r}">[{lo:.3f}, {hi:.3f}]</span></td>')


def _all_numbers(rows: Sequence[dict], stat_names: Sequence[str]) -> str:
    """Every row's summary numbers, as ``ochuman eval`` prints them."""
    has_category = any("category" in r for r in rows)
    head = ('<th class="name">results</th><th class="name">subset</th>'
            + ('<th class="name">category</th>' if has_category else "")
            + "".join(f"<th>{_e(s)}</th>" for s in stat_names))
    lines = []
    for r in rows:
        keys = {"results": r["results"], "subset": r["subset"], "category": r.get("category"), "table": "numbers"}
        cells = "".join(_number(r.get(s), stat=s, **keys) for s in stat_names)
        label = f'<td class="name">{_e(r["results"])}{" (reported)" if r.get("reported") else ""}</td>'
        category = f'<td class="name">{_e(r.get("category"))}</td>' if has_category else ""
        lines.append(f'<tr>{label}<td class="name">{_e(r["subset"])}</td>{category}{cells}</tr>')
    return ('<h2 id="numbers">All numbers</h2><table class="numbers"><tr>' + head + "</tr>" + "".join(lines)
            + "</table>")


def _curves_section(report) -> str:
    curves = report.curves()
    subsets = list(dict.fromkeys(subset for _, subset in curves))
    if not subsets:
        return ""
    fig = vis._figure(4.2 * len(subsets), 4.0)
    axes = np.atleast_1d(fig.subplots(1, len(subsets), squeeze=False)).ravel()
    for ax, subset in zip(axes, subsets):
        vis.plot_curves(ax, report, subset, curves)
    axes[0].legend(fontsize=7, loc="lower left")
    return ('<h2 id="curves">Precision / recall</h2>'
            + _img(_figure_uri(fig), "precision/recall per subset: mean over IoU .5:.95, IoU .5 and .75"))


def _max_iou_section(bins: Sequence[dict]) -> str:
    if not bins:
        return ('<h2 id="max-iou">AP against MaxIoU</h2><p class="note">Not computed: evaluate with '
                "by_max_iou (ochuman report always does).</p>")
    fig = vis._figure(7.0, 4.0)
    vis.plot_ap_by_max_iou(fig.subplots(), bins)
    names = _names(bins)
    edges = list(dict.fromkeys((r["max_iou_lo"], r["max_iou_hi"]) for r in bins))
    head = "".join(f"<th>{lo:.2f}&ndash;{hi:.2f}</th>" for lo, hi in edges)
    lines = []
    persons = {(r["max_iou_lo"], r["max_iou_hi"]): r["persons"] for r in bins}
    lines.append('<tr><td class="name">persons</td>' + "".join(
        _number(persons[e], stat="persons", max_iou_lo=e[0], table="bins") for e in edges) + "</tr>")
    for name in names:
        by_edge = {(r["max_iou_lo"], r["max_iou_hi"]): r for r in bins if r["results"] == name}
        cells = "".join(_number(by_edge[e]["AP"] if e in by_edge else None, results=name, stat="AP",
                                max_iou_lo=e[0], table="bins") for e in edges)
        lines.append(f'<tr><td class="name">{_e(name)} AP</td>{cells}</tr>')
    return ('<h2 id="max-iou">AP against MaxIoU</h2>' + _img(_figure_uri(fig), "AP per MaxIoU bin")
            + f'<table class="bins"><tr><th class="name">MaxIoU</th>{head}</tr>{"".join(lines)}</table>')


def _classes(rows: Sequence[dict]) -> list[str]:
    present = {c for r in rows for c in (r.get("errors") or {})}
    return [c for c in ERROR_CLASSES if c in present] + sorted(present - set(ERROR_CLASSES))


def _errors_section(rows: Sequence[dict], bins: Sequence[dict]) -> str:
    """Error classes (count, dAP) per results file and subset, and by MaxIoU bin, when given."""
    with_errors = [r for r in rows if r.get("errors")]
    bins_with = [r for r in bins if r.get("errors")]
    if not with_errors and not bins_with:
        return ""
    parts = ['<h2 id="errors">Error classes</h2><p class="note">dAP: the AP gained by fixing the errors of '
             "the class; count: how many there are.</p>"]
    classes = _classes(with_errors + bins_with)
    head = "".join(f"<th>{_e(c)} dAP</th><th>{_e(c)} count</th>" for c in classes)
    if with_errors:
        lines = []
        for r in with_errors:
            cells = "".join(_error_cells(r["errors"].get(c), c, results=r["results"], subset=r["subset"])
                            for c in classes)
            lines.append(f'<tr><td class="name">{_e(r["results"])}</td><td class="name">{_e(r["subset"])}</td>'
                         f"{cells}</tr>")
        parts.append(f'<table class="errors"><tr><th class="name">results</th><th class="name">subset</th>{head}'
                     f'</tr>{"".join(lines)}</table>')
    if bins_with:
        parts.append(_img(_figure_uri(_errors_by_bin_figure(bins_with, classes)), "dAP per error class by MaxIoU bin"))
        lines = []
        for r in bins_with:
            cells = "".join(_error_cells(r["errors"].get(c), c, results=r["results"], max_iou_lo=r["max_iou_lo"])
                            for c in classes)
            lines.append(f'<tr><td class="name">{_e(r["results"])}</td><td>{r["max_iou_lo"]:.2f}&ndash;'
                         f'{r["max_iou_hi"]:.2f}</td>{cells}</tr>')
        parts.append(f'<table class="errors-bins"><tr><th class="name">results</th><th>MaxIoU</th>{head}</tr>'
                     f'{"".join(lines)}</table>')
    return "".join(parts)


def _error_cells(entry: Optional[dict], error_class: str, **keys) -> str:
    entry = entry or {}
    return (_number(entry.get("dAP"), stat=f"{error_class}.dAP", table="errors", **keys)
            + _number(entry.get("count"), stat=f"{error_class}.count", table="errors", **keys))


def _errors_by_bin_figure(bins: Sequence[dict], classes: Sequence[str]):
    """Stacked bars of dAP per error class against MaxIoU, one panel per results file."""
    names = _names(bins)
    fig = vis._figure(5.0 * len(names), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(names), squeeze=False)).ravel()
    for ax, name in zip(axes, names):
        mine = [r for r in bins if r["results"] == name]
        lefts = np.array([r["max_iou_lo"] for r in mine])
        widths = np.array([r["max_iou_hi"] - r["max_iou_lo"] for r in mine])
        bottom = np.zeros(len(mine))
        for c in classes:
            values = np.array([max(float((r["errors"].get(c) or {}).get("dAP") or 0.0), 0.0) for r in mine])
            ax.bar(lefts, values, width=widths * 0.9, align="edge", bottom=bottom, label=c)
            bottom += values
        ax.set(title=f"{name}: dAP by MaxIoU", xlabel="MaxIoU", ylabel="dAP", xlim=(0.5, 1.0))
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def _histogram_section(dataset, range_rule: str) -> str:
    if dataset is None:
        return ""
    fig = vis.max_iou_histogram(dataset, range_rule=range_rule)
    return '<h2 id="histogram">MaxIoU of the dataset</h2>' + _img(_figure_uri(fig), "MaxIoU histogram")


# ------------------------------------------------------------------------------------ gallery
def _gallery_section(report, source: Optional[GallerySource], size: int, progress: bool) -> str:
    head = '<h2 id="gallery">Gallery</h2>'
    if size <= 0:
        return ""
    if source is None or source.images_dir is None:
        return head + ('<p class="note">No images: pass --images DIR (the folder of the image files) '
                       "to see the hardest persons and each method's worst failures.</p>")
    persons = report.persons()
    if not persons:
        return head + '<p class="note">No per-person rows: evaluate with per_person=True.</p>'
    names = [ev.name for ev in report.evaluations]
    by_person: dict = {}
    for row in persons:
        by_person.setdefault((row["image_id"], row["person_id"]), {})[row["results"]] = row
    first = [row for row in persons if row["results"] == names[0]]
    hardest = sorted(first, key=lambda r: -r["max_iou"])[:size]
    failures = {name: sorted((r for r in persons if r["results"] == name and not r["matched_50"]),
                             key=lambda r: (r["best_iou"], r["max_iou"]))[:size] for name in names}
    jobs = [("hardest", None, r) for r in hardest] + [("failure", n, r) for n in names for r in failures[n]]
    drawer = _Drawer(report, source)
    from tqdm import tqdm

    blocks: dict = {}
    for kind, name, row in tqdm(jobs, desc="gallery", unit="person", disable=not progress):
        key = (row["image_id"], row["person_id"])
        shown = names if kind == "hardest" else [name]
        blocks.setdefault((kind, name), []).append(drawer.person_block(row, {n: by_person[key].get(n) for n in shown}))
    parts = [head, "<h3>Hardest persons (highest MaxIoU)</h3>", "".join(blocks.get(("hardest", None), []))]
    for name in names:
        parts.append(f"<h3>Worst failures of {_e(name)} (missed at IoU 0.5, lowest IoU reached first)</h3>")
        parts.append("".join(blocks.get(("failure", name), [])) or '<p class="note">None: every person is found.</p>')
    return "".join(parts)


class _Drawer:
    """Thumbnails of one person: ground truth, then each method's detection that overlaps it most."""

    def __init__(self, report, source: GallerySource):
        from ochuman.eval.annotations import mask_table

        self.iou_type = report.iou_type
        self.errors_iou = report.errors_iou
        self.params = report.params
        self.source = source
        ground = source.ground
        self.ground = ground
        self.masks = mask_table(ground.annotations) if ground.annotations.counts is not None else None
        self.position = {(k, int(a)): i for i, (k, a) in enumerate(
            zip(ground.annotations.image_id.tolist(), ground.annotations.ann_id.tolist()))}
        self.image_position = {image_id: k for k, image_id in enumerate(ground.image_ids.tolist())}
        self.pixels: dict = {}

    def person_block(self, row: dict, rows_by_name: dict) -> str:
        from ochuman.records import image_file, read_image_file

        ground = self.ground
        i = self.position[(row["image_id"], row["person_id"])]
        k = self.image_position[row["image_id"]]
        file_name = ground.file_names[k]
        if k not in self.pixels:  # only the last image is kept: a person's thumbnails share it
            self.pixels = {k: read_image_file(image_file(self.source.images_dir, file_name, ground.source,
                                                         row["image_id"]), f"image {file_name}")}
        pixels = self.pixels[k]
        gt = self._gt_dict(i)
        crop = vis._crop_box(np.r_[gt["bbox"][:2], np.add(gt["bbox"][:2], gt["bbox"][2:])], *pixels.shape[:2])
        figures = [self._thumb(vis.draw_results(pixels, [gt], score_threshold=-math.inf, colors=[_GT_COLOR],
                                                labels=False), crop, "ground truth",
                               f"ground truth, MaxIoU {row['max_iou']:.3f}")]
        for name, mine in rows_by_name.items():
            detection = self._best_detection(name, i, row["image_id"], file_name, pixels.shape[:2])
            drawn = pixels if detection is None else vis.draw_results(pixels, [detection], score_threshold=-math.inf)
            caption = f"{name}: IoU {mine['best_iou']:.3f}" if mine else f"{name}: not evaluated"
            if mine:
                caption += ", found" if mine["matched_50"] else ", missed"
            if mine and mine.get("error") not in (None, "missed"):  # the error that aimed at the person
                caption += f" ({mine['error']} at IoU {self.errors_iou:g})"
            figures.append(self._thumb(drawn, crop, name, caption, mine))
        meta = (f'<div class="meta">{_e(file_name)}, person {row["person_id"]} ({_e(row["subset"])}), '
                f"MaxIoU {_number_span(row['max_iou'], 'max_iou')}</div>")
        return f'<div class="person">{meta}{"".join(figures)}</div>'

    def _gt_dict(self, i: int) -> dict:
        a = self.ground.annotations
        out = {"score": 1.0, "bbox": [float(v) for v in a.bbox[i]]}
        if self.masks is not None and self.masks[i] is not None:
            out["segmentation"] = {"size": [int(v) for v in a.mask_size[i]], "counts": self.masks[i]}
        if a.keypoints is not None:
            out["keypoints"] = [float(v) for v in a.keypoints[i]]
        return out

    def _best_detection(self, name: str, i: int, image_id, file_name: str, shape) -> Optional[dict]:
        """The detection of this image and category (its top maxDets by score, as evaluated) that
        overlaps ground-truth person ``i`` most (mask IoU, box IoU or OKS); None if none overlaps."""
        a = self.ground.annotations
        mine = [r for r in self.source.results.get(name, ())
                if r.get("image_id") in (image_id, file_name) and r.get("category_id") == int(a.category_id[i])]
        mine = sorted(mine, key=lambda r: -float(r.get("score", 0.0)))[:self.params.max_dets[-1]]
        if not mine:
            return None
        if self.iou_type == "keypoints":
            from ochuman.eval.iou import oks_pairs

            kpts = np.array([r["keypoints"] for r in mine], dtype=np.float64)
            overlaps = oks_pairs(kpts, a.keypoints[i:i + 1], a.bbox[i:i + 1], a.area[i:i + 1],
                                 np.arange(len(mine)), np.zeros(len(mine), dtype=np.int64), self.params.kpt_oks_sigmas)
        elif self.iou_type == "segm":
            from ochuman.masks import rle_to_bitmap

            gt_bitmap = rle_to_bitmap(self._gt_dict(i)["segmentation"]).astype(bool)
            bitmaps, _, _ = vis._decode_results(mine, *shape)
            overlaps = np.array([_bitmap_iou(gt_bitmap, b) for b in bitmaps])
        else:
            x, y, w, h = a.bbox[i]
            overlaps = np.array([vis._box_iou(np.r_[r["bbox"][:2], np.add(r["bbox"][:2], r["bbox"][2:])],
                                              (x, y, x + w, y + h)) for r in mine])
        best = int(np.argmax(overlaps))
        return mine[best] if overlaps[best] > 0 else None

    @staticmethod
    def _thumb(drawn: np.ndarray, crop, alt: str, caption: str, row: Optional[dict] = None) -> str:
        import cv2

        x1, y1, x2, y2 = crop
        image = drawn[y1:y2, x1:x2]
        scale = THUMB_SIDE / max(image.shape[:2])
        if scale < 1:
            image = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                               interpolation=cv2.INTER_AREA)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
        uri = "data:image/jpeg;base64," + base64.b64encode(data.tobytes()).decode("ascii")
        value = f' data-best-iou="{row["best_iou"]!r}"' if row else ""
        return f'<figure{value}>{_img(uri, alt, "thumb")}<figcaption>{_e(caption)}</figcaption></figure>'


def _number_span(value: float, what: str) -> str:
    return f'<span data-{what.replace("_", "-")}="{float(value)!r}">{float(value):.3f}</span>'


def _bitmap_iou(a: np.ndarray, b: Optional[np.ndarray]) -> float:
    if b is None:
        return 0.0
    b = b.astype(bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0
