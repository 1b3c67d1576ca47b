"""What one CLI run checks and reads before the engine starts.

First the arguments (combinations that cannot run, options that would be ignored), then the
paths (every input a readable regular file, the output writable and none of the inputs),
then the files, each reduced on reading to what the run needs (see ``files/reduce.py``):
the content and the start image for the output size, the styles for the style size, the
mask by the content's own factor.
"""

from __future__ import annotations

import argparse
import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine loads torch: imported when a run starts, not at start-up
    from ..engine.config import StyleConfig
    from ..engine.guidance import Guidance, StackOptions

#: Options that only mean something for a stack: (argparse dest, how the user wrote it).
STACK_ONLY = (
    ("slices", "--slices"),
    ("rgb", "--rgb/--no-rgb"),
    ("coherence", "--coherence/--no-coherence"),
    ("motion", "--motion"),
    ("consistency_weight", "--consistency-weight"),
)
#: Stack options that only mean something with coherence on.
COHERENCE_ONLY = (("motion", "--motion"), ("consistency_weight", "--consistency-weight"))


@dataclass
class Job:
    """What one CLI run reads and builds before the engine starts."""

    content: Any
    styles: list
    config: StyleConfig
    stack: StackOptions | None
    guidance: Guidance | None
    #: (H, W) of the content as stored (a 2D run's content is read reduced for the run).
    content_hw: tuple[int, int] | None = None
    #: The output options (``settings.OUTPUT_SPECS``), e.g. ``{"full_size": True}``.
    output: dict[str, Any] = field(default_factory=dict)
    #: The input files' names (recorded with the settings in the result).
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def content_rgb(self) -> bool:
        """Whether the content's last axis is colour: a 2D image's third axis; a stack's ``--rgb``,
        else the file's word, else a last axis of 3 or 4 (as the engine decides)."""
        if self.stack is None:
            return self.content.ndim == 3
        from ..engine.timelapse import guess_rgb

        return guess_rgb(self.content.shape) if self.stack.rgb is None else bool(self.stack.rgb)


def _option_error(args: argparse.Namespace) -> str | None:
    """Options that cannot run together, or that would be ignored without a word."""
    init = getattr(args, "init", None)
    if init == "image" and not args.init_image:
        return "--init image needs --init-image PATH"
    if args.init_image and init not in (None, "image"):
        return f"--init-image: only applies with --init image (got --init {init})"
    if not args.stack:
        for dest, flag in STACK_ONLY:
            if getattr(args, dest) is not None:
                return f"{flag}: only applies with --stack"
    elif args.coherence is False:
        for dest, flag in COHERENCE_ONLY:
            if getattr(args, dest) is not None:
                return f"{flag}: only applies with --coherence (it was switched off with --no-coherence)"
    if args.label_styles and not args.mask:
        return "--label-styles needs --mask LABELS_FILE"
    if args.mask_feather is not None and not args.mask:
        return "--mask-feather: only applies with --mask LABELS_FILE"
    return None


def usage_error(args: argparse.Namespace, output: Path) -> str | None:
    """The first combination of arguments that cannot run, as a one-line message (None: fine)."""
    from ..files import TIFF_SUFFIXES, WRITABLE_SUFFIXES, shown

    save_every = getattr(args, "preview_every", 0)
    if save_every is not None and save_every < 0:
        return "--save-every: must be an integer >= 0"
    problem = _option_error(args)
    if problem:
        return problem
    if output.suffix.lower() not in WRITABLE_SUFFIXES:
        return f"--output: {shown(output)} must end in one of {', '.join(WRITABLE_SUFFIXES)}"
    if not os.path.exists(output.parent):
        return f"--output: folder {shown(output.parent)} does not exist"
    if args.stack and output.suffix.lower() not in TIFF_SUFFIXES:
        return f"--output: {shown(output)} must be a .tif or .tiff file for a --stack result"
    if args.stack and save_every:
        return "--save-every: is not available with --stack"
    return None


def parse_label_styles(items: Sequence[str] | None) -> dict[int, int] | None:
    """['1:0', '2:1'] → {1: 0, 2: 1}; ValueError with a one-line message."""
    if not items:
        return None
    mapping: dict[int, int] = {}
    for item in items:
        label, sep, style = item.partition(":")
        try:
            if not sep:
                raise ValueError
            mapping[int(label)] = int(style)
        except ValueError:
            raise ValueError(
                f"--label-styles: {item!r} must be LABEL:STYLE with two integers, e.g. 1:0"
            ) from None
    return mapping


def add_style_region_argument(group: Any) -> None:
    """``--style-region``, declared once for the single run and the batch (parsed by
    :func:`parse_style_regions`, scaled by :func:`scaled_region`)."""
    group.add_argument(
        "--style-region",
        action="append",
        metavar="X0,Y0,X1,Y1",
        help="the rectangle of a style file its texture comes from, in that file's pixels (columns X, rows "
        "Y); give it once per STYLE, in order ('-': the whole image)",
    )


def parse_style_regions(
    items: Sequence[str] | None, n_styles: int
) -> list[tuple[float, float, float, float] | None] | None:
    """['0,0,64,64', '-'] → one rectangle (or None: the whole image) per style; ValueError with one line."""
    if not items:
        return None
    if len(items) > n_styles:
        raise ValueError(f"--style-region: given {len(items)} times for {n_styles} style image(s)")
    regions: list[tuple[float, float, float, float] | None] = []
    for item in items:
        if item.strip() in ("-", ""):
            regions.append(None)
            continue
        try:
            x0, y0, x1, y1 = (float(v) for v in item.split(","))
        except ValueError:
            raise ValueError(
                f"--style-region: {item!r} must be X0,Y0,X1,Y1 (four numbers, pixels of the style file) or '-'"
            ) from None
        regions.append((x0, y0, x1, y1))
    return regions + [None] * (n_styles - len(regions))


def scaled_region(
    region: tuple[float, float, float, float] | None, file_shape: Sequence[int], array_shape: Sequence[int]
) -> tuple[float, float, float, float] | None:
    """A region in a file's pixels → the same rectangle in the pixels of the array read from it."""
    if region is None:
        return None
    if region[0] >= file_shape[1] or region[1] >= file_shape[0]:
        raise ValueError(
            f"--style-region: {','.join(f'{v:g}' for v in region)} lies outside the style image "
            f"({file_shape[1]}×{file_shape[0]} px)"
        )
    fy, fx = array_shape[0] / file_shape[0], array_shape[1] / file_shape[1]
    x0, y0, x1, y1 = region
    return x0 * fx, y0 * fy, x1 * fx, y1 * fy


def input_paths(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Every file the run reads, as (what it is, path)."""
    styles = args.styles
    named = [("content", args.content)]
    named += [(f"style {i + 1}" if len(styles) > 1 else "style", s) for i, s in enumerate(styles)]
    named += [
        (what, path) for what, path in (("--init-image", args.init_image), ("--mask", args.mask)) if path
    ]
    weights = getattr(args, "weights", None)
    if weights and weights not in ("embedded", "torchvision"):
        named.append(("--weights", weights))
    return named


def read_files(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Every file the run reads, settings files included: what nothing it writes may replace."""
    named = input_paths(args)
    if getattr(args, "config_file", None):
        named.append(("--config", args.config_file))
    return named


def check_paths(args: argparse.Namespace, output: Path, suffixes: tuple[str, ...] | None = None) -> None:
    """Inputs readable regular files, the output writable (``suffixes``: the output's kinds, an
    image's by default), and nothing the run writes one of the files it reads (the result, or a
    ``--save-every`` step file): ImageFileError otherwise."""
    from ..files import WRITABLE_SUFFIXES, check_input_file, check_writable
    from ..files.guard import ReadFiles
    from ..files.names import step_name

    named = input_paths(args)
    for what, path in named:
        if what != "--weights":  # the engine explains a bad weights file in its own words
            check_input_file(path)
    check_writable(output, suffixes or WRITABLE_SUFFIXES)  # before a long run: a directory, a FIFO…
    reads = ReadFiles(read_files(args))
    reads.check("--output", output)
    if getattr(args, "preview_every", 0):
        pattern = f"{glob.escape(output.stem)}.step*{glob.escape(output.suffix)}"

        def own_spelling(name: str) -> str:  # the same step number, as this run names it
            digits = name[len(output.stem) + len(".step") :][:5]
            return step_name(output.stem, int(digits), output.suffix) if digits.isdigit() else name

        reads.check_pattern("--save-every", output.parent, pattern, own_spelling)


def _stack_options(args: argparse.Namespace, rgb: bool | None) -> StackOptions:
    from ..engine.guidance import StackOptions

    return StackOptions(
        rgb=args.rgb if args.rgb is not None else rgb,
        slices=args.slices,
        coherence=True if args.coherence is None else args.coherence,
        motion=args.motion or "shift",
        consistency_weight=0.0 if args.consistency_weight is None else args.consistency_weight,
    )


def _read_mask(args: argparse.Namespace, content_shape: tuple[int, int], factor: int) -> Any:
    """The 2D label image, checked against the content's size in the file, then reduced like the content."""
    from ..engine.images import ImageError
    from ..files import decode, read_stack, shown

    if args.stack:
        return read_stack(args.mask, labels=True)[0]
    decoded = decode(args.mask, factor=factor, labels=True)
    mask = decoded.array
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        raise ValueError(
            f"--mask: {shown(args.mask)} is a colour image; it must hold integer labels (one channel)"
        )
    if mask.ndim == 2 and decoded.shape != content_shape:
        raise ImageError(
            f"content_mask: shape {decoded.shape} does not match the image's (H, W) = {content_shape}"
        )
    return mask


def _recorded_inputs(
    args: argparse.Namespace,
    regions: Sequence[tuple[float, float, float, float] | None] | None,
    label_styles: dict[int, int] | None,
) -> dict[str, Any]:
    """What a result file records of its inputs (the file names, each style's region in its file's
    pixels, the mask file), so that ``--config result.png`` can say what the settings leave out."""
    inputs: dict[str, Any] = {
        "content": Path(args.content).name,
        "styles": [Path(s).name for s in args.styles],
    }
    if regions is not None:
        inputs["style_regions"] = [None if r is None else {"bounds": list(r), "exact": True} for r in regions]
    if args.mask:
        table = {str(k): v for k, v in label_styles.items()} if label_styles else None
        inputs["mask"] = {"layer": Path(args.mask).name, "kind": "file", "label_styles": table}
    return inputs


def prepare(
    args: argparse.Namespace, output: Path, config: StyleConfig, suffixes: tuple[str, ...] | None = None
) -> Job:
    """Check the paths and read the files; raises ImageFileError, ConfigError, ImageError or ValueError.

    ``config`` is the validated config without the start image (read here); ``suffixes``: the
    output's kinds (an image's by default; a movie's for a movie output).
    """
    from ..engine.guidance import Guidance
    from ..files import decode, read_stack

    label_styles = parse_label_styles(args.label_styles)
    regions = parse_style_regions(getattr(args, "style_region", None), len(args.styles))
    check_paths(args, output, suffixes)
    size = config.size
    stack, factor, content_shape = None, 1, (0, 0)
    if args.stack:
        content, rgb = read_stack(args.content)
        stack = _stack_options(args, rgb)
    else:
        decoded = decode(args.content, size)
        content, factor, content_shape = decoded.array, decoded.factor, decoded.shape
    style_side = max(1, round(size * config.style_scale)) if size else None
    decoded_styles = [decode(path, style_side) for path in args.styles]
    styles = [d.array for d in decoded_styles]
    if args.init_image:
        config = config.replace(init_image=decode(args.init_image, size).array)
    guidance = None
    inputs = _recorded_inputs(args, regions, label_styles)
    if regions is not None:
        regions = [scaled_region(r, d.shape, d.array.shape) for r, d in zip(regions, decoded_styles)]
    if args.mask or regions is not None:
        mask = _read_mask(args, content_shape, factor) if args.mask else None
        guidance = Guidance(
            content_mask=mask,
            label_styles=label_styles if args.mask else None,
            mask_feather=args.mask_feather,
            style_regions=regions,
        )
    content_hw = None if args.stack else content_shape
    return Job(content, styles, config, stack, guidance, content_hw=content_hw, inputs=inputs)


__all__ = [
    "Job",
    "add_style_region_argument",
    "check_paths",
    "input_paths",
    "parse_label_styles",
    "parse_style_regions",
    "prepare",
    "scaled_region",
    "usage_error",
]
