"""The report of an evaluation: :class:`EvalReport` (one row per results file and subset, AP
per MaxIoU bin, curves, the paper's Table-2 rows) and the per-person rows for error analysis."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np

from ochuman.eval.annotations import Annotations
from ochuman.eval.blocks import Blocks
from ochuman.eval.bootstrap import LEVEL, interval_columns, interval_keys, interval_records
from ochuman.eval.ground_truth import GroundTruth
from ochuman.eval.matching import match
from ochuman.eval.params import STAT_NAMES, EvalParams
from ochuman.eval.protocol import card, file_sha256
from ochuman.eval.states import GtState
from ochuman.eval.summary import summarize
from ochuman.subsets import occlusion_level


#: segm AP / AP_Moderate / AP_Hard reported in the paper's Table 2 (R50-FPN, trained on COCO).
PAPER_TABLE2 = {
    "val": {
        "Mask R-CNN": (0.163, 0.194, 0.113),
        "Pose2Seg (predicted kpts, AE)": (0.222, 0.261, 0.150),
        "Pose2Seg (GT kpts)": (0.544, 0.576, 0.491),
    },
    "test": {
        "Mask R-CNN": (0.169, 0.189, 0.128),
        "Pose2Seg (predicted kpts, AE)": (0.238, 0.266, 0.175),
        "Pose2Seg (GT kpts)": (0.552, 0.579, 0.495),
    },
}


@dataclass
class ResultsEvaluation:
    """Everything computed for one results file."""

    name: str
    subsets: dict  # subset name -> Accumulated
    bins: dict  # MaxIoURange -> Accumulated (AP vs MaxIoU), if asked
    persons: list  # per-person rows, if asked
    detections: int
    keys: dict = field(default_factory=dict)  # its rows' image_set / visibility (ochuman.eval.breakdown), if asked
    errors: dict = field(default_factory=dict)  # subset name -> ErrorAnalysis, if asked
    bin_errors: dict = field(default_factory=dict)  # MaxIoURange -> ErrorAnalysis, if asked
    samples: dict = field(default_factory=dict)  # subset name -> (S, C, n) bootstrap stats, if asked
    source: Optional[str] = None  # the results file (None: a parsed list)
    tags: dict = field(default_factory=dict)  # the user's KEY: VALUE tags of the results file


@dataclass
class EvalReport:
    """The report of :func:`~ochuman.eval.run.evaluate_results`: one row per (results file, subset).

    categories: names of the evaluated categories in id order (the K axis of the arrays) when
    rows name their category (a category chosen, or ``per_category``), else None;
    per_category: each row over the categories is followed by one row per category (its
    summary numbers from that category's precision and recall: pycocotools with
    ``params.catIds`` set to it); errors_iou: the IoU threshold of the error classes
    (:mod:`ochuman.eval.errors`) when asked for (rows then gain ``errors``), else None."""

    iou_type: str
    mode: str
    split: str
    gt_source: str
    max_iou_source: str
    range_rule: str
    params: EvalParams
    evaluations: list = field(default_factory=list)
    paper: bool = False
    categories: Optional[list] = None
    per_category: bool = False
    errors_iou: Optional[float] = None
    bootstrap: int = 0  # samples of the bootstrap intervals (0: none)
    seed: int = 0  # their seed
    _hashes: dict = field(default_factory=dict, repr=False)  # results file -> SHA-256 (protocol cards)

    @property
    def stat_names(self) -> tuple[str, ...]:
        return STAT_NAMES[self.iou_type]

    def rows(self) -> list[dict]:
        """One flat dict per (results, subset), then the paper's rows if asked for."""
        rows = []
        names = self.categories
        for ev in self.evaluations:
            for subset, acc in ev.subsets.items():
                stats = [(None if names is None else names[0] if len(names) == 1 else "all", acc.stats, None)]
                if self.per_category and len(names) > 1:
                    stats += [(name, summarize(acc.precision[:, :, k:k + 1], acc.recall[:, k:k + 1], self.params), k)
                              for k, name in enumerate(names)]
                for column, (category, values, index) in enumerate(stats):
                    rows.append({
                        "results": ev.name, "subset": subset, **({} if names is None else {"category": category}),
                        **ev.keys,
                        "iou_type": self.iou_type, "mode": self.mode,
                        **{k: float(v) for k, v in zip(self.stat_names, values)},
                        "max_iou_source": self.max_iou_source, "range_rule": self.range_rule,
                        "reported": False,
                        **({} if self.errors_iou is None else {"errors": ev.errors[subset].summary(index)}),
                        **(self._interval_columns(ev, subset, column, values) if self.bootstrap else {}),
                    })
        if self.paper and self.iou_type == "segm" and self.split in PAPER_TABLE2:
            subsets = {ev_subset for ev in self.evaluations for ev_subset in ev.subsets} or {"all", "moderate", "hard"}
            for method, values in PAPER_TABLE2[self.split].items():
                for subset, value in zip(("all", "moderate", "hard"), values):
                    if subset in subsets:
                        rows.append({"results": f"{method} (paper)", "subset": subset,
                                     **({} if names is None else {"category": "person"}),
                                     **({"image_set": "all"} if any("image_set" in ev.keys for ev in self.evaluations)
                                        else {}),  # the paper scored every image of the official files
                                     "iou_type": "segm",
                                     "mode": "official", **{k: (value if k == "AP" else None) for k in self.stat_names},
                                     "max_iou_source": "stored", "range_rule": "official", "reported": True,
                                     **({} if self.errors_iou is None else {"errors": None}),
                                     **({k: None for k in self._interval_keys()} if self.bootstrap else {})})
        return rows

    def _interval_keys(self) -> list[str]:
        return interval_keys(self.iou_type, bool(self.evaluations) and len(self._peers(self.evaluations[0])) > 1)

    def _peers(self, ev: ResultsEvaluation) -> list[ResultsEvaluation]:
        """The evaluations of every results file with the same row keys as ``ev`` (image set,
        visibility), in results order: the first is the one differences are paired against."""
        return [other for other in self.evaluations if other.keys == ev.keys]

    def _interval_columns(self, ev: ResultsEvaluation, subset: str, column: int, values) -> dict:
        """The bootstrap intervals of one row (:mod:`ochuman.eval.bootstrap`)."""
        peers = self._peers(ev)
        first = peers[0]
        paired = len(peers) > 1
        first_values = None
        if paired and ev is not first:
            acc = first.subsets[subset]
            first_values = acc.stats if column == 0 else summarize(
                acc.precision[:, :, column - 1:column], acc.recall[:, column - 1:column], self.params)
        return interval_columns(self.iou_type, values, ev.samples[subset][:, column], paired,
                                first_values, first.samples[subset][:, column] if first_values is not None else None)

    def intervals_frame(self):
        """The bootstrap intervals as a pandas DataFrame: per (results, subset[, category]) and
        number, its value, interval and, after the first results file, the paired difference."""
        import pandas as pd

        return pd.DataFrame(interval_records(self.rows(), self.stat_names, self.iou_type))

    def hash_now(self, source: str, data) -> None:
        """Record the SHA-256 of ``data``, the bytes of results file ``source``, for its cards
        (for a source that cannot be read again: a pipe); other files are hashed when a card
        is first asked for."""
        import hashlib  # (~3 ms to import: only where a hash is made)

        self._hashes[source] = hashlib.sha256(data).hexdigest()

    def hash_known(self, source: str, sha256: str) -> None:
        """Record the SHA-256 (hex) of the bytes read of results file ``source``."""
        self._hashes[source] = sha256

    def protocol_cards(self) -> list[dict]:
        """The protocol card of each row of :meth:`rows`, in order (:mod:`ochuman.eval.protocol`)."""
        cards = []
        for ev in self.evaluations:  # its rows, as rows() makes them (names may repeat)
            if ev.source is not None and ev.source not in self._hashes:
                self._hashes[ev.source] = file_sha256(ev.source)
            alone = replace(self, evaluations=[ev], paper=False, bootstrap=0)
            cards += [card(self, ev, row, self._hashes.get(ev.source)) for row in alone.rows()]
        paper = ResultsEvaluation(name="", subsets={}, bins={}, persons=[], detections=0,
                                  tags={"source": "the paper's Table 2"})
        for row in self.rows()[len(cards):]:  # the paper's rows
            cards.append(card(self, replace(paper, name=row["results"]), row, None))
        return cards

    def ap_by_max_iou(self) -> list[dict]:
        """AP, AP50, AP75 per MaxIoU bin of 0.05 from 0.5 to 1.0, per results file."""
        rows = []
        for ev in self.evaluations:
            for rng, acc in ev.bins.items():
                rows.append({"results": ev.name, **ev.keys, "max_iou_lo": rng.lo, "max_iou_hi": rng.hi,
                             "persons": acc.persons, "AP": float(acc.stats[0]),
                             "AP50": float(acc.stats[1]), "AP75": float(acc.stats[2]),
                             **({} if self.errors_iou is None else {"errors": ev.bin_errors[rng].summary()})})
        return rows

    def persons(self) -> list[dict]:
        """Per-person rows for error analysis (all subsets, area all)."""
        return [{**row, **ev.keys} for ev in self.evaluations for row in ev.persons]

    def to_frame(self):
        """The rows as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.rows())

    def to_dict(self) -> dict:
        return {
            "iou_type": self.iou_type, "mode": self.mode, "split": self.split,
            "gt": self.gt_source, "max_iou_source": self.max_iou_source, "range_rule": self.range_rule,
            "rows": self.rows(), "protocols": self.protocol_cards(), "ap_by_max_iou": self.ap_by_max_iou(),
            **({} if self.errors_iou is None else {"errors_iou": self.errors_iou}),
            **({"bootstrap": {"samples": self.bootstrap, "seed": self.seed, "level": LEVEL}} if self.bootstrap else {}),
        }

    def errors_frame(self):
        """The error classes as a long pandas DataFrame: one row per (results, subset or MaxIoU
        bin, class) with columns results, image_set / visibility (when rows carry them), subset, max_iou_lo, max_iou_hi (NaN for a subset),
        class, count, dAP (at IoU ``errors_iou``; empty unless the errors were asked for)."""
        import pandas as pd

        from ochuman.eval.errors import error_frame_rows

        keys = list(dict.fromkeys(key for ev in self.evaluations for key in ev.keys))
        return pd.DataFrame(error_frame_rows(self), columns=["results", *keys, "subset", "max_iou_lo",
                                                             "max_iou_hi", "class", "count", "dAP"])

    def curves(self) -> dict:
        """(results, subset) -> (recall points (R,), precision (T, R)): area all, the largest
        maxDets, the mean over the categories that have ground truth (-1 where none has)."""
        out = {}
        for ev in self.evaluations:
            for subset, acc in ev.subsets.items():
                p = acc.precision[:, :, :, 0, -1]  # (T, R, K)
                counted = p > -1
                n = counted.sum(axis=2)
                mean = np.where(n > 0, np.where(counted, p, 0).sum(axis=2) / np.maximum(n, 1), -1.0)
                label = ev.name + (f" ({', '.join(ev.keys.values())})" if ev.keys else "")
                out[(label, subset)] = (self.params.rec_thrs, mean)
        return out


def person_rows(name: str, ground: GroundTruth, detections: Annotations, blocks: Blocks,
                params: EvalParams, base: np.ndarray, errors: Optional[list] = None) -> list[dict]:
    """Per GT person: MaxIoU, best IoU reached by any detection, matched at 0.5 / 0.75, score;
    with ``errors`` ((G,) per person in block order, :meth:`ErrorAnalysis.person_errors
    <ochuman.eval.errors.ErrorAnalysis.person_errors>`) also ``error``: why it was missed at the
    errors' threshold (None: found)."""
    order = blocks.gt_order
    state = np.where(ground.extra[order], GtState.ABSENT, base).astype(np.uint8)
    thresholds = EvalParams(iou_type=params.iou_type, iou_thrs=np.array([0.5, 0.75]))
    matches = match(blocks, state[None], ground.annotations.iscrowd[order], thresholds)
    G = len(order)
    best = np.zeros(G)
    n_d = np.diff(blocks.dt_start)[blocks.gt_block]
    for g in range(G):  # small: one entry per person
        b = blocks.gt_block[g]
        ng = blocks.gt_start[b + 1] - blocks.gt_start[b]
        if n_d[g]:
            block = blocks.ious[blocks.iou_start[b]: blocks.iou_start[b] + n_d[g] * ng].reshape(n_d[g], ng)
            best[g] = block[:, g - blocks.gt_start[b]].max()
    matched_by = np.full((2, G), -1)
    for t in range(2):
        hit = matches.gt[0, t] >= 0
        matched_by[t, matches.gt[0, t][hit]] = matches.candidates[hit]
    scores = detections.score[blocks.dt_order]
    level = occlusion_level(ground.max_iou[order])
    # Blocks index images in id order; the ground truth lists them in file order.
    file_position = {image_id: k for k, image_id in enumerate(ground.image_ids.tolist())}
    rows = []
    for g in range(G):
        if state[g] == GtState.ABSENT:
            continue
        i = order[g]
        image_id = blocks.img_ids[blocks.block_img[blocks.gt_block[g]]].item()
        rows.append({
            "results": name, "image_id": image_id, "file_name": ground.file_names[file_position[image_id]],
            "person_id": int(ground.annotations.ann_id[i]), "category_id": int(ground.annotations.category_id[i]),
            "max_iou": float(ground.max_iou[i]),
            "subset": level[g], "best_iou": float(best[g]),
            "matched_50": bool(matched_by[0, g] >= 0), "matched_75": bool(matched_by[1, g] >= 0),
            "score_50": float(scores[matched_by[0, g]]) if matched_by[0, g] >= 0 else None,
            **({} if errors is None else {"error": errors[g]}),
        })
    return rows
