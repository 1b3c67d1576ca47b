"""``napari-style-transfer CONTENT STYLE [STYLE ...] -o OUT``: one image, or one stack with ``--stack``.

Only a few options are this command's own: ``--size 0`` keeps the content's size,
``--init-image FILE`` starts from that image, ``--save-every N`` also saves the image every N
iterations, and the mask and stack options below. Everything else comes from the option specs
(``options.py``). ``job.py`` checks and reads the inputs; this module follows the engine's
events and writes the result.

A movie content (MP4, MOV, AVI, WebM) is a stack of frames without ``--stack``; a stack's
result may be a movie (``.mp4``, ``.gif``, ``.webp``) at the content's frame rate or ``--fps``.
``--config saved.png`` of a result saved from napari notes what its run had besides settings
(``saved_run.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..version import __version__
from .common import PROG, OneLineParser, Progress, fail
from .job import add_style_region_argument
from .options import add_config_arguments, add_spec_arguments, settings_from_args
from .saved_run import print_saved_run_notes

if TYPE_CHECKING:  # the engine loads torch: main() imports it after the signal handlers are set
    from .job import Job


def build_parser() -> argparse.ArgumentParser:
    """The full parser: inputs, output, every config option, masks and stacks."""
    p = OneLineParser(
        prog=PROG, description="Neural style transfer (Gatys et al.): paint CONTENT in the style of STYLE."
    )
    p.add_argument(
        "content", metavar="CONTENT", help="content image (PNG, JPEG, TIFF…) or movie (MP4, MOV, AVI, WebM)"
    )
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument(
        "-o", "--output", required=True, help="output image (.png, .jpg, .tif) or movie (.mp4, .gif, .webp)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_config_arguments(p)
    from ..settings import OUTPUT_SPECS

    add_spec_arguments(p, OUTPUT_SPECS, {})
    _add_mask_arguments(p)
    _add_stack_arguments(p)
    return p


def _add_mask_arguments(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("masks (spatial control)")
    m.add_argument(
        "--mask",
        metavar="LABELS_FILE",
        help="label image of the content (integers, same H×W; a TIFF stack with --stack): "
        "which style goes where",
    )
    m.add_argument(
        "--label-styles",
        nargs="+",
        metavar="LABEL:STYLE",
        help="label value → style index (0-based, in STYLE order), e.g. 1:0 2:1; unmapped labels keep "
        "the content (default: every non-zero label gets the blend)",
    )
    add_style_region_argument(m)
    m.add_argument(
        "--mask-feather",
        type=float,
        metavar="PX",
        help="soft edge of the kept content, Gaussian sigma in output pixels (default: 1%% of the long side)",
    )


def _add_stack_arguments(p: argparse.ArgumentParser) -> None:
    k = p.add_argument_group("stacks, time-lapses and movies")
    k.add_argument(
        "--stack",
        action="store_true",
        help="CONTENT is an nD TIFF (..., H, W[, C]) or an animation: stylise every 2D slice; the output "
        "must be .tif, or a movie for a time series (a movie CONTENT is a stack without --stack)",
    )
    k.add_argument(
        "--fps",
        type=_positive,
        default=None,
        metavar="FPS",
        help="frames per second of a movie output (default: the content's, else 10)",
    )
    from ..engine.guidance import MOTIONS

    _switch(k, "--coherence", "start each slice from the previous slice's result: less flicker (default: on)")
    k.add_argument(
        "--motion",
        choices=MOTIONS,
        default=None,
        help="with --coherence: move the previous result by the estimated drift between slices (shift) "
        "or not (none) (default: shift)",
    )
    k.add_argument(
        "--consistency-weight",
        type=float,
        default=None,
        metavar="W",
        help="with --coherence: also pull each slice toward the previous result (default: 0)",
    )
    k.add_argument(
        "--slices",
        nargs="+",
        type=int,
        metavar="N",
        help="only these slices (numbers in C order over the leading axes); the others keep the content",
    )
    _switch(
        k, "--rgb", "the stack's last axis is colour (default: from the TIFF, else a last axis of 3 or 4)"
    )


def _positive(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return value


def _switch(group: Any, flag: str, help: str) -> None:
    """A --flag/--no-flag pair (default None: not given) whose help says its default in words."""
    action = group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help)
    action.help = help  # argparse would add "(default: None)"


@dataclass(frozen=True)
class MovieOut:
    """A stack's result written as a movie: where, at how many frames per second."""

    path: Path
    fps: float


def _movie_problem(args: argparse.Namespace, output: Path) -> str | None:
    """A movie content is a stack (``--stack`` implied); a movie output needs a stack; ``--fps`` a movie."""
    from ..files import TIFF_SUFFIXES, WRITABLE_SUFFIXES, shown
    from ..files.movie import MOVIE_WRITE_SUFFIXES, is_movie

    suffix, movies = output.suffix.lower(), ", ".join(MOVIE_WRITE_SUFFIXES)
    if is_movie(args.content):
        args.stack = True
        if suffix not in MOVIE_WRITE_SUFFIXES + TIFF_SUFFIXES:
            return f"--output: {shown(output)}: a movie's result is a movie ({movies}) or a .tif stack"
    if args.fps is not None and suffix not in MOVIE_WRITE_SUFFIXES:
        return f"--fps: only applies to a movie output ({movies})"
    if suffix in MOVIE_WRITE_SUFFIXES and not args.stack:
        return (
            f"--output: {shown(output)} must end in one of {', '.join(WRITABLE_SUFFIXES)} for an image "
            f"(a {suffix} output is a movie: for a movie content or a stack with --stack)"
        )
    return None


def _movie_plan(args: argparse.Namespace, output: Path, job: Job) -> MovieOut | None:
    """Say once that a movie's sound is dropped; for a movie output, one time axis and its frame rate
    (``--fps``, else the content's, else 10)."""
    from ..files import ImageFileError, shown
    from ..files.movie import DEFAULT_FPS, MOVIE_WRITE_SUFFIXES, is_movie, probe_movie
    from ..files.read import is_tiff

    info = None
    if is_movie(args.content):
        info = probe_movie(args.content)
    elif job.stack is not None and not is_tiff(Path(args.content)):  # an animated GIF, WebP, PNG
        with contextlib.suppress(ImageFileError):
            info = probe_movie(args.content)
    if info is not None and info.has_audio:
        print(
            f"{PROG}: note: {shown(args.content)} has sound; the output has none (audio is dropped)",
            file=sys.stderr,
            flush=True,
        )
    if output.suffix.lower() not in MOVIE_WRITE_SUFFIXES or job.stack is None:
        return None
    shape = job.content.shape
    if len(shape) - (3 if job.content_rgb else 2) != 1:
        raise ValueError(
            f"--output: a movie has one time axis; {shown(args.content)} has shape {shape}: write a .tif"
        )
    return MovieOut(output, args.fps or (info.fps if info is not None else DEFAULT_FPS))


def _write_movie(movie: MovieOut, image: Any, progress: Progress, description: str) -> None:
    """8-bit frames at the planned rate; an MP4's odd side gets one more pixel, said in one line."""
    from ..files import to_uint8
    from ..files.movie import even_size, write_movie

    frames = to_uint8(image)
    (h, w), name = frames.shape[1:3], movie.path.suffix.lower()
    if name == ".mp4" and even_size(h, w) != (h, w):
        eh, ew = even_size(h, w)
        progress.write(
            f"{PROG}: note: H.264 needs even sides: the {w}×{h} px frames are padded to {ew}×{eh} px"
        )
    write_movie(movie.path, frames, movie.fps, description)


def _consume(
    events: Iterable[Any], job: Job, output: Path, progress: Progress, movie: MovieOut | None = None
) -> None:
    """Follow the engine's events: progress, intermediate images, the final file (with its settings)."""
    from ..files import write_image, write_stack
    from ..files.names import step_path
    from .results import result_description, result_image

    save_every = job.config.preview_every
    for item in events:
        event = item.event if job.stack is not None else item  # a StackEvent wraps a ProgressEvent
        progress.notice(event.message)
        loss = f"{event.losses.get('total', 0):.4g}"
        if job.stack is not None:
            progress.show(item.step, item.total_steps, slice=f"{item.number}/{item.count}", loss=loss)
            if item.done:
                rgb = item.info["rgb"] or job.config.result_colour == "style"  # the result's colour
                image = result_image(job, item.result, rgb)
                if movie is not None:
                    _write_movie(movie, image, progress, result_description(job))
                else:
                    write_stack(output, image, rgb, result_description(job))
            continue
        postfix = {"scale": f"{event.scale + 1}/{event.n_scales}"}
        if event.tile:
            postfix["tile"] = f"{event.tile}/{event.n_tiles}"
        progress.show(event.step, event.total_steps, **postfix, loss=loss)
        if event.done:
            image = result_image(job, event.preview, event.preview.ndim == 3)
            write_image(output, image, result_description(job))
        elif event.preview is not None and save_every:
            write_image(step_path(output, event.step), event.preview)


def _stylize(job: Job, output: Path, quiet: bool, movie: MovieOut | None = None) -> int:
    """Run the engine (the one 2D-vs-stack choice is run_iter's) and write the result."""
    from ..engine import ConfigError, ImageError, StyleTransferError, WeightsError, run_iter
    from ..files import ImageFileError, shown

    progress = Progress(quiet, "it", "stylising")
    progress.open(1)
    try:
        events = run_iter(job.content, job.styles, job.config, stack=job.stack, guidance=job.guidance)
        _consume(events, job, output, progress, movie)
    except (ConfigError, ImageError, WeightsError, StyleTransferError, ImageFileError) as exc:
        progress.close()
        return fail(_with_stack_hint(exc, job))
    except RuntimeError as exc:  # e.g. out of memory inside torch
        progress.close()
        return fail(str(exc).strip() or type(exc).__name__)
    finally:
        progress.close()
    with contextlib.suppress(OSError):  # stdout closed (a pipe whose reader left): the file is written anyway
        print(f"wrote {shown(output)}", file=sys.stderr if quiet else sys.stdout, flush=True)
    return 0


def _with_stack_hint(exc: Exception, job: Job) -> str:
    """The message, with a hint when an nD content was given without ``--stack``."""
    from ..engine import ImageError

    message = str(exc)
    nd = job.stack is None and job.content.ndim >= 3 and message.startswith("content:")
    if isinstance(exc, ImageError) and nd:
        message += " (for a stack of 2D slices use --stack and a .tif output)"
    return message


def run(argv: Sequence[str]) -> int:
    """Parse ``argv`` and stylise one image (or stack); the exit code. Errors print one line."""
    from ..engine import ConfigError, ImageError, MemoryLimitError
    from ..files import ImageFileError
    from ..files.movie import MOVIE_WRITE_SUFFIXES
    from .job import prepare, usage_error
    from .results import check_result_fits

    args = build_parser().parse_args(argv)
    output = Path(args.output)
    movie_out = output.suffix.lower() in MOVIE_WRITE_SUFFIXES  # checked here, as a .tif stack in job.py
    problem = _movie_problem(args, output) or usage_error(
        args, output.with_suffix(".tif") if movie_out else output
    )
    if problem:
        return fail(problem)
    try:
        # validated before any file is read; the start image, read later, stands in as a 1×1 array
        config, options = settings_from_args(args, _placeholder() if args.init_image else None)
        job = prepare(args, output, config, MOVIE_WRITE_SUFFIXES if movie_out else None)
        job.output = options
        check_result_fits(job)
        movie = _movie_plan(args, output, job)
    except (ImageFileError, ConfigError, ImageError, ValueError, MemoryLimitError) as exc:
        return fail(str(exc))
    # what a --config result's run had besides settings (canvas, mask, style regions)
    print_saved_run_notes(args, PROG, content="CONTENT, one image file,")
    return _stylize(job, output, args.quiet, movie)


def _placeholder() -> Any:
    import numpy as np

    return np.zeros((1, 1), np.uint8)


__all__ = ["build_parser", "run"]
