"""The oracle of the real-scale tier: what the generated native file holds, counted with numpy
straight from its JSON objects (never through ``ochuman``), the official COCO-format files it
implies (spec section 2), results files made from those, and readers of the printed tables."""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

VAL_FILE = "ochuman_coco_format_val_range_0.00_1.00.json"
TEST_FILE = "ochuman_coco_format_test_range_0.00_1.00.json"
ALL_HARD_FILE = "ochuman_coco_format_all_range_0.75_1.00.json"
VAL_IMAGES = 2500  # the official val split: the first 2500 images with a masked person
COCO_FROM_OCHUMAN = (16, 18, 17, 15, 14, 3, 0, 4, 1, 5, 2, 9, 6, 10, 7, 11, 8)  # spec section 2
VISIBILITY = np.array([0, 2, 2, 1])  # OCHuman code -> COCO visibility (spec section 2)


@dataclass(frozen=True)
class NativeFacts:
    """Persons (N) in file order and images (M) in file order of a native file."""

    image_of: np.ndarray  # (N,) int64 image index
    category: np.ndarray  # (N,) int64: 2 keypoints and mask, 1 keypoints only, 0 box only
    max_iou: np.ndarray  # (N,) float64, the stored value
    bbox: np.ndarray  # (N, 4) int64 native [x1, y1, x2, y2]
    keypoints: np.ndarray  # (N, 19, 3) float64 native, zeros without keypoints
    holes: np.ndarray  # (N,) int64 inner polygons of the mask
    image_size: np.ndarray  # (M, 2) int64 (height, width)
    file_name: np.ndarray  # (M,) str
    image_id: np.ndarray  # (M,) str

    @classmethod
    def from_native(cls, data: dict) -> "NativeFacts":
        persons = [(k, p) for k, im in enumerate(data["images"]) for p in im["annotations"]]
        keypoints = np.zeros((len(persons), 19, 3))
        for n, (_, p) in enumerate(persons):
            if p["keypoints"] is not None:
                keypoints[n] = np.reshape(p["keypoints"], (19, 3))
        return cls(
            image_of=np.array([k for k, _ in persons], dtype=np.int64),
            category=np.array([2 if p["segms"] else 1 if p["keypoints"] else 0 for _, p in persons]),
            max_iou=np.array([p["max_iou"] for _, p in persons], dtype=np.float64),
            bbox=np.array([p["bbox"] for _, p in persons], dtype=np.int64),
            keypoints=keypoints,
            holes=np.array([len(p["segms"]["inner"]) if p["segms"] else 0 for _, p in persons]),
            image_size=np.array([(im["height"], im["width"]) for im in data["images"]], dtype=np.int64),
            file_name=np.array([im["file_name"] for im in data["images"]]),
            image_id=np.array([im["image_id"] for im in data["images"]]),
        )

    def save(self, path: Path) -> None:
        np.savez(path, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> "NativeFacts":
        with np.load(path) as arrays:
            return cls(**{f.name: arrays[f.name] for f in fields(cls)})

    @property
    def masked(self) -> np.ndarray:
        """(N,) bool: the benchmark persons (filter kpt&segm)."""
        return self.category == 2

    @property
    def split(self) -> np.ndarray:
        """(M,) str: "val", "test", or "" for images without a masked person."""
        split = np.full(len(self.file_name), "", dtype=object)
        with_mask = np.unique(self.image_of[self.masked])  # file order
        split[with_mask[:VAL_IMAGES]] = "val"
        split[with_mask[VAL_IMAGES:]] = "test"
        return split

    def person_split(self) -> np.ndarray:
        return self.split[self.image_of]

    def official(self, split: str, lo: float = 0.0, hi: float = 1.0,
                 closed_top: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The official COCO-format file of a split ("val", "test", "all") and MaxIoU range:
        (its image indices, its person indices), both in file order (the file's order)."""
        in_split = self.person_split() != "" if split == "all" else self.person_split() == split
        top = (self.max_iou <= hi) if closed_top and hi == 1.0 else (self.max_iou < hi)
        persons = np.flatnonzero(self.masked & in_split & (self.max_iou >= lo) & top)
        return np.unique(self.image_of[persons]), persons

    def coco_keypoints(self, i: int) -> np.ndarray:
        """(17, 3) COCO order and visibility of person i, as the official converter writes it."""
        native = self.keypoints[i]
        out = native[list(COCO_FROM_OCHUMAN)].copy()
        out[:, 2] = VISIBILITY[native[list(COCO_FROM_OCHUMAN), 2].astype(np.int64)]
        return out

    def stats(self, persons: np.ndarray, images: int) -> dict:
        """The numbers of ``ochuman stats`` for the given person indices (closed-top Hard)."""
        mi = self.max_iou[persons]
        cat = self.category[persons]
        n = len(persons)
        return {
            "images": images, "persons": n,
            "persons_oc50": int((mi > 0.5).sum()), "persons_oc75": int((mi > 0.75).sum()),
            "pct_oc50": 100.0 * (mi > 0.5).sum() / n, "pct_oc75": 100.0 * (mi > 0.75).sum() / n,
            "mean_max_iou": float(mi.mean()),
            "persons_with_keypoints": int((cat >= 1).sum()), "persons_with_mask": int((cat == 2).sum()),
            "box_only_persons": int((cat == 0).sum()),
            "moderate": int(((mi >= 0.5) & (mi < 0.75)).sum()), "hard": int((mi >= 0.75).sum()),
        }


def perfect_results(coco: dict, keep=None) -> list[dict]:
    """Every ground-truth person of a COCO file (or those where ``keep`` (A,) holds) as a
    detection with its own box, mask and keypoints; distinct scores, highest first."""
    anns = [a for k, a in enumerate(coco["annotations"]) if keep is None or keep[k]]
    out = []
    for k, ann in enumerate(anns):
        keypoints = [float(v) for v in ann["keypoints"]]
        keypoints[2::3] = [1.0] * 17
        out.append({"image_id": ann["image_id"], "category_id": 1, "score": 1.0 - k / (len(anns) + 1),
                    "bbox": ann["bbox"], "segmentation": ann["segmentation"], "keypoints": keypoints})
    return out


def imperfect_results(coco: dict, seed: int = 0) -> list[dict]:
    """Segmentation results as a detector writes them (box and mask): a tenth of the persons
    missed, a quarter given the box and mask of another person of their image, a tenth found
    twice, random scores. Nothing is decoded, so it is fast at any scale."""
    rng = np.random.default_rng(seed)
    by_image: dict = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    out = []
    for image_id, anns in by_image.items():
        for ann in anns:
            draw = rng.random()
            if draw < 0.1:
                continue
            source = anns[int(rng.integers(len(anns)))] if draw < 0.35 else ann
            record = {"image_id": image_id, "category_id": 1, "bbox": source["bbox"],
                      "segmentation": source["segmentation"], "score": float(rng.random())}
            out.append(record)
            if rng.random() < 0.1:
                out.append({**record, "score": float(rng.random())})
    return out


def read_table(text: str) -> list[dict]:
    """Rows of a table printed with ``--format table`` (columns under a line of dashes)."""
    lines = text.splitlines()
    rule = next(k for k, line in enumerate(lines) if line.startswith("--") and set(line) <= {"-", " "})
    spans, start = [], None
    for col, char in enumerate(lines[rule] + " "):
        if char == "-" and start is None:
            start = col
        elif char != "-" and start is not None:
            spans.append((start, col))
            start = None
    spans[-1] = (spans[-1][0], None)

    def cells(line):
        return [line[a:b].strip() for a, b in spans]

    header = cells(lines[rule - 1])
    return [dict(zip(header, cells(line))) for line in lines[rule + 1:] if line.strip()]


def read_markdown(text: str) -> list[dict]:
    """Rows of the first table printed with ``--format markdown`` (tables end at a line that is
    not one of theirs)."""
    lines = []
    for line in text.splitlines():
        if line.startswith("|"):
            lines.append(line)
        elif lines:
            break
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|")))) for line in lines[2:]]
