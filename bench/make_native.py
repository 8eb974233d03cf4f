"""Write the synthetic native ``ochuman.json`` at OCHuman scale (seeded, a few seconds).

    python bench/make_native.py --out bench/out/ochuman.json [--seed 0] [--indent 4]

The generator lives in ``tests/scale/native_file.py`` (the real-scale test tier builds the same
file); see its docstring for what the file holds.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.scale.native_file import (  # noqa: E402  (_fill and _boxes: used by make_eval_workload.py)
    N_IMAGES, N_KEYPOINTS, N_MASKED, N_MASKED_IMAGES, N_PERSONS, N_TWIN_IMAGES, _boxes, _fill,
    make_native, write_native,
)

__all__ = ["N_IMAGES", "N_KEYPOINTS", "N_MASKED", "N_MASKED_IMAGES", "N_PERSONS", "N_TWIN_IMAGES",
           "_boxes", "_fill", "make_native", "write_native"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "ochuman.json")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--indent", type=int, default=4,
                        help="indentation of the JSON (4, like the real file); 0: compact")
    parser.add_argument("--images", type=int, default=N_IMAGES)
    parser.add_argument("--persons", type=int, default=N_PERSONS)
    parser.add_argument("--keypoints", type=int, default=N_KEYPOINTS)
    parser.add_argument("--masked", type=int, default=N_MASKED)
    parser.add_argument("--masked-images", type=int, default=N_MASKED_IMAGES)
    parser.add_argument("--twin-images", type=int, default=N_TWIN_IMAGES,
                        help="images where two masked persons share one box (MaxIoU 1.0)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    path = write_native(args.out, args.seed, args.indent, n_images=args.images,
                        n_persons=args.persons, n_keypoints=args.keypoints,
                        n_masked=args.masked, n_masked_images=args.masked_images,
                        n_twin_images=args.twin_images)
    print(f"{path}: {path.stat().st_size / 1e6:.1f} MB in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
