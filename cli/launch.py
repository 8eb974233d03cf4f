"""The ``ochuman`` console script: an ``ochuman eval`` begins reading its files
(:mod:`cli.early_reads`) before the command's modules are imported."""
from __future__ import annotations

import sys

from cli.early_reads import start_early_reads


def ochuman() -> None:
    """The ``ochuman`` console script (``cli.ochuman_cmd.run`` after the early reads)."""
    start_early_reads(sys.argv[1:])
    from cli.ochuman_cmd import run

    run()
