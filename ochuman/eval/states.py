"""Named ground-truth states of the evaluation, the values of ``GtState`` in the compiled core's
header (``ochuman/csrc/evalcore.h``; the module exports them as ``_evalcore.GT_<NAME>``).

One state per (variant, ground truth), as uint8 arrays: a variant is a subset of persons crossed
with an area range.
"""
from __future__ import annotations

from enum import IntEnum


class GtState(IntEnum):
    """A ground truth's part in one variant (matching and accumulation read it)."""

    COUNTED = 0  # counts: a match is a true positive; recall's denominator
    IGNORED = 1  # an ignore region (crowd, outside the area range, ...): tried only after the
    # counted ones; a detection matched to it is neither a true nor a false positive
    ABSENT = 2  # not in this variant (e.g. another subset's person): never matched
