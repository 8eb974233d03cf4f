"""Data shipped with the package: the native OCHuman sample (10 images, 29 persons)."""
from __future__ import annotations

from pathlib import Path

SAMPLE_DIR = Path(__file__).parent / "ochuman-sample"
SAMPLE_ANNOTATIONS = SAMPLE_DIR / "annotations" / "ochuman.json"
SAMPLE_IMAGES = SAMPLE_DIR / "images"
