"""Batch runs: many contents with one set of styles and settings, on a Dask cluster (embedded or
external), with atomic outputs, a report, resume and retries. ``distributed`` is imported only
when a batch runs."""

from .api import stylize_batch
from .inputs import expand_inputs
from .items import BatchError, BatchItem
from .options import BatchOptions, BatchStart
from .report import REPORT_NAME, BatchReport, BatchResult, summary_line

__all__ = [
    "REPORT_NAME",
    "BatchError",
    "BatchItem",
    "BatchOptions",
    "BatchReport",
    "BatchResult",
    "BatchStart",
    "expand_inputs",
    "stylize_batch",
    "summary_line",
]
