"""The Python names of the ground-truth states and mask statuses are the compiled core's
(evalcore.h's GtState and MaskStatus)."""
from __future__ import annotations

from ochuman import _evalcore
from ochuman.eval.states import GtState
from ochuman.rle import MaskStatus


def test_python_states_equal_the_compiled_core_constants():
    exported = {name[len("GT_"):]: value for name, value in vars(_evalcore).items() if name.startswith("GT_")}
    assert exported == {state.name: state.value for state in GtState}
    assert exported  # the module exports them at all


def test_python_mask_statuses_equal_the_compiled_core_constants():
    exported = {name[len("MASK_"):]: value for name, value in vars(_evalcore).items() if name.startswith("MASK_")}
    assert exported == {status.name: status.value for status in MaskStatus}
    assert exported
