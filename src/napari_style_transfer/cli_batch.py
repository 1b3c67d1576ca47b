"""``napari-style-transfer batch INPUT... --style STYLE [STYLE ...] -o OUT_DIR``: many images, one command.

A thin layer over :func:`napari_style_transfer.batch.stylize_batch`: parse, read the
styles, show one progress bar over the items, print a one-line summary, and exit non-zero
when any item failed (1) or on Ctrl-C (130). Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any

from .engine.config import StyleConfig
from .messages import first_line

PROG = "napari-style-transfer batch"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like the CLI's other errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


#: The single-image CLI's option helpers, handed over by ``cli.run`` (cli imports this module,
#: so this module does not import cli): ``add_config_arguments(parser)`` and
#: ``config_from_args(args, init_image) -> StyleConfig``.
AddConfigArguments = Callable[[argparse.ArgumentParser], None]
ConfigFromArgs = Callable[..., StyleConfig]


def build_parser(add_config_arguments: AddConfigArguments) -> argparse.ArgumentParser:
    """The batch's own options, then every single-image option (from the option specs)."""
    p = _Parser(
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


def _fail(message: str) -> int:
    print(f"{PROG}: error: {first_line(message, 'unknown error')}", file=sys.stderr)
    return 2


def _quiet_dask_logs() -> None:
    """Dask's own log lines (worker start-up, shutdown notices) stay out of the CLI's output."""
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # the worker processes inherit it
    logging.getLogger("distributed").setLevel(logging.ERROR)


class _Progress:
    """One bar over the items (rate and ETA from tqdm) and one line per failure."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.bar: Any = None
        self.counts: Counter = Counter()

    def start(self, info: Any) -> None:
        if info.dashboard and not self.quiet:
            print(f"dashboard: {info.dashboard}", file=sys.stderr)
        if not self.quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=info.total, unit="item", desc="batch", dynamic_ncols=True, file=sys.stderr)
            self.bar.update(self.counts.total())

    def add(self, result: Any) -> None:
        if result.kind == "stack":
            if result.status == "failed":
                self.counts["failed"] += 1
                self.write(f"failed: {result.input}: {result.message}")
            return
        self.counts[result.status] += 1
        if result.status == "failed":
            label = (
                result.input
                if result.slices is None
                else f"{result.input} slices {result.slices[0]}-{result.slices[1] - 1}"
            )
            self.write(f"failed: {label}: {result.message}")
        if self.bar is not None:
            self.bar.update(1)
            if self.bar.n >= self.bar.total:
                self.close()  # before the cluster shuts down: the rate and time stay the batch's

    def write(self, line: str) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _prepare(
    args: argparse.Namespace, config_from_args: ConfigFromArgs
) -> tuple[list[Any], StyleConfig, Any]:
    """Styles, config and stack options from the arguments (errors raise with a one-line message)."""
    from .engine.guidance import StackOptions
    from .files import read_image

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
    styles = [read_image(path) for path in args.styles]
    init_image = read_image(args.init_image) if getattr(args, "init_image", None) else None
    config = config_from_args(args, init_image)
    stack = StackOptions(
        coherence=args.chunk > 1, motion=args.motion, consistency_weight=args.consistency_weight
    )
    return styles, config, stack


def run(
    argv: Sequence[str], add_config_arguments: AddConfigArguments, config_from_args: ConfigFromArgs
) -> int:
    """Parse ``argv`` (what follows ``batch``) and run the batch; returns the exit code."""
    args = build_parser(add_config_arguments).parse_args(argv)
    _quiet_dask_logs()
    from .batch import BatchError, BatchOptions, stylize_batch, summary_line
    from .engine import ConfigError, StyleTransferError, WeightsError
    from .files import ImageFileError

    errors = (BatchError, ConfigError, ImageFileError, WeightsError, StyleTransferError, ValueError)
    try:
        styles, config, stack = _prepare(args, config_from_args)
        client = _connect(args.scheduler) if args.scheduler else None
    except errors as exc:
        return _fail(str(exc))
    progress = _Progress(args.quiet)
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
    )
    results = stylize_batch(args.inputs, styles, config, client, options=options, stack=stack)
    try:
        with closing(results):
            for result in results:
                progress.add(result)
    except KeyboardInterrupt:
        progress.close()
        counts = _reported_counts(out_dir) or progress.counts  # items that ended while stopping count too
        print(f"{PROG}: interrupted: {summary_line(counts, out_dir / 'batch-report.json')}", file=sys.stderr)
        return 130
    except errors as exc:
        progress.close()
        return _fail(str(exc))
    finally:
        if client is not None:
            client.close()
    progress.close()
    line = summary_line(progress.counts, out_dir / "batch-report.json")
    failed = progress.counts.get("failed", 0)
    print(line, file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0


def _reported_counts(out_dir: Path) -> Counter | None:
    from .batch import REPORT_NAME

    try:
        summary = json.loads((out_dir / REPORT_NAME).read_text(encoding="utf-8"))["summary"]
        return Counter({k: int(v) for k, v in summary.items()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _connect(address: str) -> Any:
    from .batch.plumbing import connect

    return connect(address).client


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))
