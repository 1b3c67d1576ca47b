"""The widget's "Full-size result" option, checked before a run: the upsampled result must fit in memory.

No Qt here. The resize itself happens in the worker thread (``engine.full_size.full_size_event``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..engine import MemoryLimitError
from ..engine.full_size import check_full_size
from .faults import UserError


def check_full_size_fits(hw: Sequence[int], channels: int, slices: int, dtype: np.dtype) -> None:
    """Refuse 'Full-size result' (a UserError, one sentence) when the result upsampled to ``hw`` would
    not fit in memory: ``slices`` images (an all-slices run's; else 1) of ``channels`` colour channels,
    the *result's* (``RunRequest.result_channels``: RGB for a grey content given the style's colours).
    """
    try:
        check_full_size(hw, int(channels) * int(slices), dtype, "Full-size result")
    except MemoryLimitError as exc:
        raise UserError(f"{exc}.", severity="error") from None


__all__ = ["check_full_size_fits"]
