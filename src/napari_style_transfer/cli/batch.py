"""``napari-style-transfer batch INPUT... --style STYLE [STYLE ...] -o OUT_DIR``: many images, one command.

A thin layer over :func:`napari_style_transfer.batch.stylize_batch`: parse, read the styles,
show one progress bar over the items, print a one-line summary, and exit non-zero when any
item failed (1), on Ctrl-C (130) or SIGTERM (143). Errors are one line on stderr, never a
traceback. Every single-image option applies (``options.py``), and ``--style-region`` as in a
single run (``job.py``); ``--config saved.png`` notes what the saved run had besides settings
(``saved_run.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..files.errors import shown
from .common import PROG as CLI_PROG
from .common import OneLineParser, Progress, check_interrupted, fail, interrupted
from .job import add_style_region_argument, parse_style_regions, scaled_region
from .options import add_config_arguments, config_from_args
from .saved_run import print_saved_run_notes

if TYPE_CHECKING:
    from ..engine.config import StyleConfig
    from ..engine.guidance import Guidance, StackOptions

PROG = f"{CLI_PROG} batch"


def build_parser() -> argparse.ArgumentParser:
    """The batch's own options, then every single-image option (from the option specs)."""
    p = OneLineParser(
        prog=PROG,
        description="Stylise many images with the same styles and settings, on this machine or a Dask cluster.",
    )
    p.add_argument(
        "inputs",
        metavar="INPUT",
        nargs="+",
        help="image files, folders (their images, sorted) or glob patterns",
    )
    p.add_argument(
        "--style",
        dest="styles",
        metavar="STYLE",
        nargs="+",
        required=True,
        help="style image(s); several are blended",
    )
    add_style_region_argument(p)
    p.add_argument(
        "-o",
        "--out-dir",
        required=True,
        help="output folder: OUT_DIR/<input stem>.<ext> and batch-report.json",
    )
    p.add_argument(
        "--ext",
        choices=("png", "jpg", "tif", "zarr"),
        help="output format (default: the input's, else png; stacks: tif, or zarr: a store filled slice by slice)",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="redo items whose output these settings already made"
    )
    p.add_argument(
        "--retries",
        type=int,
        default=2,
        help="reruns of an item whose run raised an error, not a bad input (default: 2)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    c = p.add_argument_group("where it runs").add_mutually_exclusive_group()
    c.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of the embedded cluster (default: one per GPU, else by the CPU cores)",
    )
    c.add_argument("--scheduler", metavar="ADDRESS", help="use a running Dask cluster, e.g. tcp://host:8786")
    p.add_argument("--threads-per-worker", type=int, metavar="T", help="torch threads in each worker process")
    k = p.add_argument_group("stacks and time-lapses")
    k.add_argument(
        "--stack", action="store_true", help="each INPUT is an nD TIFF: stylise its 2D slices, write one TIFF"
    )
    k.add_argument(
        "--chunk",
        type=int,
        default=1,
        metavar="K",
        help="with --stack: K consecutive slices per item, coherent inside the item (default: 1, no coherence)",
    )
    k.add_argument(
        "--motion",
        choices=("shift", "none"),
        default="shift",
        help="with --chunk > 1: move the previous result by the drift between slices (shift) or not (default: shift)",
    )
    k.add_argument(
        "--consistency-weight",
        type=float,
        default=0.0,
        metavar="W",
        help="with --chunk > 1: pull each slice toward the previous result (default: 0)",
    )
    add_config_arguments(p)
    return p


def _quiet_dask_logs() -> None:
    """Dask's own log lines (worker start-up, shutdown notices) stay out of the CLI's output."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # the worker processes inherit it
    logging.getLogger("distributed").setLevel(logging.ERROR)


class ItemProgress:
    """One bar over the items (rate and ETA) and one line per failure, with the counts for the summary."""

    def __init__(self, quiet: bool):
        self.progress = Progress(quiet, "item", "batch")
        self.counts: Counter = Counter()

    def start(self, info: Any) -> None:
        if info.dashboard and not self.progress.quiet:
            print(f"dashboard: {info.dashboard}", file=sys.stderr)
        self.progress.open(info.total, self.counts.total())

    def add(self, result: Any) -> None:
        if result.kind == "stack":
            if result.status == "failed":
                self.counts["failed"] += 1
                self.progress.write(f"failed: {shown(result.input)}: {result.message}")
            return
        self.counts[result.status] += 1
        if result.status == "failed":
            label = shown(result.input)
            if result.slices is not None:
                label += f" slices {result.slices[0]}-{result.slices[1] - 1}"
            self.progress.write(f"failed: {label}: {result.message}")
        self.progress.advance()

    def close(self) -> None:
        self.progress.close()


def _prepare(args: argparse.Namespace) -> tuple[list[Any], StyleConfig, StackOptions, Guidance | None]:
    """Styles, config, stack options and guidance (the style regions) from the arguments (errors
    raise with a one-line message)."""
    from ..engine.guidance import StackOptions
    from ..files import read_image

    if args.chunk < 1:
        raise ValueError(f"--chunk: must be an integer >= 1, got {args.chunk}")
    if args.retries < 0:
        raise ValueError(f"--retries: must be an integer >= 0, got {args.retries}")
    if getattr(args, "preview_every", 0):
        raise ValueError("--save-every: is not available in a batch")
    if not args.stack and args.chunk != 1:
        raise ValueError("--chunk: only applies with --stack")
    if not args.stack and args.ext == "zarr":
        raise ValueError("--ext zarr: only applies with --stack (a zarr store holds a stack's slices)")
    regions = parse_style_regions(args.style_region, len(args.styles))
    styles, guidance = _read_styles(args.styles, regions)
    init_image = read_image(args.init_image) if getattr(args, "init_image", None) else None
    config = config_from_args(args, init_image)
    stack = StackOptions(
        coherence=args.chunk > 1, motion=args.motion, consistency_weight=args.consistency_weight
    )
    return styles, config, stack, guidance


def _read_styles(
    paths: Sequence[str], regions: list[tuple[float, float, float, float] | None] | None
) -> tuple[list[Any], Guidance | None]:
    """The style images as stored, and their regions (``--style-region``, in each file's pixels)
    scaled to the arrays read as the single run does: the engine's ``Guidance(style_regions=…)``."""
    from ..engine.guidance import Guidance
    from ..files import decode

    decoded = [decode(path) for path in paths]
    if regions is None:
        return [d.array for d in decoded], None
    scaled = [scaled_region(r, d.shape, d.array.shape) for r, d in zip(regions, decoded)]
    return [d.array for d in decoded], Guidance(style_regions=scaled)


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` (what follows ``batch``) and run the batch; returns the exit code."""
    args = build_parser().parse_args(argv)
    _quiet_dask_logs()
    from ..batch import REPORT_NAME, BatchError, BatchOptions, stylize_batch, summary_line
    from ..engine import ConfigError, StyleTransferError, WeightsError
    from ..files import ImageFileError

    errors = (BatchError, ConfigError, ImageFileError, WeightsError, StyleTransferError, ValueError)
    try:
        styles, config, stack, guidance = _prepare(args)
        client = _connect(args.scheduler) if args.scheduler else None
    except errors as exc:
        return fail(exc, PROG)
    # what a --config result's run had besides settings (canvas, mask, style regions)
    print_saved_run_notes(args, PROG, content="each INPUT, an image file,")
    progress = ItemProgress(args.quiet)
    out_dir = Path(args.out_dir)
    options = BatchOptions(
        out_dir=out_dir,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        chunk=args.chunk if args.stack else None,
        ext=args.ext,
        overwrite=args.overwrite,
        retries=args.retries,
        on_start=progress.start,
        protect=_read_files(args),
    )
    results = stylize_batch(
        args.inputs, styles, config, client, options=options, guidance=guidance, stack=stack
    )
    try:
        with closing(results):
            for result in results:
                progress.add(result)
                check_interrupted()  # a signal that landed in a finaliser: stop here all the same
    except KeyboardInterrupt as exc:
        progress.close()
        counts = _reported_counts(out_dir / REPORT_NAME) or progress.counts  # items that ended while stopping
        return interrupted(exc, summary_line(counts, out_dir / REPORT_NAME), PROG)
    except errors as exc:
        progress.close()
        return fail(exc, PROG)
    finally:
        if client is not None:
            client.close()
    progress.close()
    line = summary_line(progress.counts, out_dir / REPORT_NAME)
    failed = progress.counts.get("failed", 0)
    print(line, file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _read_files(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The files this command reads besides the inputs: nothing the batch writes may replace them."""
    styles = [(f"style {i + 1}" if len(args.styles) > 1 else "style", s) for i, s in enumerate(args.styles)]
    others = [
        ("--init-image", getattr(args, "init_image", None)),
        ("--config", getattr(args, "config_file", None)),
    ]
    return styles + [(what, path) for what, path in others if path]


def _reported_counts(report: Path) -> Counter | None:
    try:
        summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
        return Counter({k: int(v) for k, v in summary.items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _connect(address: str) -> Any:
    from ..batch.plumbing import connect

    return connect(address).client


__all__ = ["build_parser", "run"]
