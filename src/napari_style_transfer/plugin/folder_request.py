"""A folder batch as the widget starts it: the images of a folder (or a glob pattern) stylised into
an output folder by the CLI's batch path, with its report and its resume-by-content.

No Qt here. :func:`prepare_folder` runs on the GUI thread and looks only at paths (a ``stat``
each, never a folder listing, never pixels); :func:`folder_events` runs in the widget's worker
thread: it lists the images with the CLI's own code (``batch.inputs.expand_inputs``), reads the
styles and drives :func:`~napari_style_transfer.batch.stylize_batch` with the CLI's options
(output folder, ``--ext``, ``--overwrite``, the style files protected), reading back only the
first N finished results for the viewer. A style row's region (a Shapes layer) is planned as for
a single run and rasterised in the worker thread into ``Guidance.style_masks``. Every refusal is
one sentence (:class:`UserError`).
"""

from __future__ import annotations

import glob
import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..batch import REPORT_NAME, BatchError, BatchOptions, BatchResult, expand_inputs, stylize_batch
from ..engine import Guidance, StyleConfig, scale_sizes, select_device
from ..files import ImageFileError
from ..messages import first_line
from ..settings import split_values, values_of
from ..version import __version__
from .faults import UserError, run_failure
from .layers import PLUGIN_KEY, LayerRead, check_2d_image, layer_contrast_limits
from .run_request import RunChoices, check_weights_source, plan_style_reads
from .shapes import RegionRead, plan_regions, read_region_masks
from .sources import SourceRead, StyleFile, describe_style, is_source

logger = logging.getLogger(__name__)

#: The output formats of a folder batch (None: each input's own), as the CLI's ``--ext`` (no zarr: no stacks).
FOLDER_EXTS = (None, "png", "jpg", "tif")
#: How many failed names the end-of-batch notification lists before "and N more".
NAMES_SHOWN = 5


@dataclass(frozen=True)
class FolderStart:
    """The images were listed (worker thread): how many items the batch has, and its report."""

    total: int
    report: Path


@dataclass
class FolderRequest:
    """A folder batch decided on the GUI thread; nothing is listed or read until :func:`folder_events`."""

    source: str  # a folder, or a glob pattern
    out_dir: Path
    config: StyleConfig
    style_reads: list[LayerRead | SourceRead]
    style_names: list[str]
    style_contrast_limits: list[tuple[float, float] | None]
    style_sources: list[dict[str, str]]
    ext: str | None = None
    open_first: int = 4
    overwrite: bool = False
    #: The other files the batch reads (style files): nothing it writes may replace them.
    protect: list[tuple[str, str]] = field(default_factory=list)
    #: Per style, the region its statistics come from (a Shapes layer's), or None; None: no regions.
    region_reads: list[RegionRead | None] | None = None
    region_names: list[str | None] | None = None

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_NAME

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """The largest output's scales (a square of the output size): what an out-of-memory message names."""
        side = self.config.size
        return scale_sizes((side, side), self.config) if side else []

    def resolve(self) -> list[Path]:
        """The image paths, listed with the CLI's code (worker thread: a folder may be slow to list)."""
        try:
            return expand_inputs([self.source])
        except BatchError as exc:
            raise UserError(folder_sentence(exc), severity="error") from None

    def read_styles(self) -> list[np.ndarray]:
        """The style images (worker thread: layers may be lazy)."""
        return [plan.read() for plan in self.style_reads]

    def guidance(self) -> Guidance:
        """The styles' contrast limits and region masks (worker thread: the regions are rasterised here)."""
        masks = read_region_masks(self.region_reads)
        return Guidance(style_contrast_limits=self.style_contrast_limits, style_masks=masks)

    def options(self) -> BatchOptions:
        """The CLI's batch options that apply here, on one worker thread in napari's process."""
        return BatchOptions(
            out_dir=self.out_dir,
            in_process=True,
            ext=self.ext,
            overwrite=self.overwrite,
            retries=0,
            protect=self.protect,
        )

    def metadata(self, result: BatchResult) -> dict[str, Any]:
        """What a result layer opened from an output file records (File ▸ Save Layer embeds ``settings``)."""
        return {
            PLUGIN_KEY: __version__,
            "content_layer": Path(result.input).stem,  # the layer name napari gives the input when opened
            "style_layers": list(self.style_names),
            "styles": list(self.style_sources),
            "config": self.config.as_dict(),
            "settings": values_of(self.config),
            "weights": self.config.weights,
            "done": True,
            "stopped": False,
            "elapsed_s": round(float(result.seconds), 3),
            "batch": {"mode": "folder", "input": result.input, "output": result.output},
            **({} if self.region_names is None else {"style_regions": list(self.region_names)}),
        }

    def failure_text(self, failed: Sequence[str], total: int) -> str:
        """One sentence: '3 of 20 images failed: a.png, b.tif, c.jpg — see /out/batch-report.json.'"""
        names = ", ".join(failed[:NAMES_SHOWN])
        if len(failed) > NAMES_SHOWN:
            names += f" and {len(failed) - NAMES_SHOWN} more"
        noun = "image" if total == 1 else "images"
        return f"{len(failed)} of {total} {noun} failed: {names} — see {self.report_path}."


def folder_sentence(exc: BaseException) -> str:
    """The batch engine's one-line refusal ('OUT_DIR: …', 'INPUT: …') in the widget's words, one sentence."""
    text = first_line(exc).rstrip(".").replace("another OUT_DIR", "another output folder")
    for word, name in (("OUT_DIR: ", "Output folder: "), ("INPUT: ", "Input folder: ")):
        if text.startswith(word):
            text = name + text[len(word) :]
    return f"{text}."


def folder_failure(exc: BaseException, request: FolderRequest) -> BaseException:
    """What the batch's exception becomes for the user: the engine's refusals (the guard, the
    inputs, the output folder) as one sentence; anything else as a run's failure (``run_failure``)."""
    if isinstance(exc, (BatchError, ImageFileError)):
        return UserError(folder_sentence(exc), severity="error")
    return run_failure(exc, request)


def folder_events(request: FolderRequest, stop: threading.Event) -> Iterator[FolderStart | BatchResult]:
    """Worker thread: list the images, then each item as it ends; the first ``open_first`` results
    made by this run come with their pixels (read back from the written file) for the viewer."""
    from ..files import read_image

    paths = request.resolve()
    yield FolderStart(len(paths), request.report_path)
    styles = request.read_styles()
    opened = 0
    options = request.options()
    for result in stylize_batch(
        paths, styles, request.config, options=options, guidance=request.guidance(), stop=stop
    ):
        if result.status == "done" and result.output and opened < request.open_first:
            try:
                result.result = read_image(result.output)
                opened += 1
            except (ImageFileError, OSError) as exc:  # the file is written; only the layer is missing
                logger.warning("could not open %s as a layer: %s", result.output, first_line(exc))
        yield result


def prepare_folder(
    source: str,
    out_dir: str,
    choices: RunChoices,
    *,
    ext: str | None = None,
    open_first: int = 4,
    overwrite: bool = False,
) -> FolderRequest:
    """Check a folder batch from its paths and settings (no listing, no pixels: cheap on the GUI thread).

    ``choices``: the widget's styles, settings and mask (its content is not used). Raises
    :class:`UserError` (or the engine's ConfigError) in one sentence.
    """
    source, out_dir = str(source or "").strip(), str(out_dir or "").strip()
    check_paths(source, out_dir)
    if ext not in FOLDER_EXTS:
        raise UserError(f"Output format {ext!r} is not one of png, jpg, tif (or the input's own).")
    if int(open_first) < 0:
        raise UserError(f"Open first: the number of results must be 0 or more, got {int(open_first)}.")
    if choices.mask_layer is not None:
        raise UserError("A batch does not use a mask; clear 'Mask' or turn Batch off.")
    params, _output = split_values(choices.params)  # the output options (full size) do not apply to a batch
    if params.get("init") == "image":
        raise UserError(
            "A folder batch starts from each image (or noise); set 'Start from' to content or noise."
        )
    picked, weights = check_styles(choices.styles)
    check_weights_source(params)
    config = StyleConfig(
        **{
            **params,
            "contrast_limits": None,
            "style_blend_weights": tuple(weights) if len(weights) > 1 else None,
        }
    )
    select_device(config.device)  # an unavailable device fails here, before the thread starts
    style_reads = plan_style_reads(picked, params.get("size"), config.style_scale, choices.point)
    region_reads, region_names = plan_regions(
        choices.styles, choices.style_regions, picked, style_reads, choices.point
    )
    return FolderRequest(
        source=source,
        out_dir=Path(out_dir).expanduser(),
        config=config,
        style_reads=style_reads,
        style_names=[style.name for style in picked],
        style_contrast_limits=[
            layer_contrast_limits(style, plan) if isinstance(plan, LayerRead) else None
            for style, plan in zip(picked, style_reads)
        ],
        style_sources=[describe_style(style) for style in picked],
        ext=ext,
        open_first=int(open_first),
        overwrite=bool(overwrite),
        protect=style_files(picked),
        region_reads=region_reads,
        region_names=region_names,
    )


def check_paths(source: str, out_dir: str) -> None:
    """The input is an existing folder (or file) or a pattern; the output a folder or a new name."""
    if not source:
        raise UserError("Input folder: choose a folder of images, or type a pattern such as /images/*.png.")
    path = Path(source).expanduser()
    if not path.exists() and not glob.has_magic(source):
        raise UserError(
            f"Input folder: {path} does not exist; choose a folder of images or type a pattern such as {path / '*.png'}."
        )
    if not out_dir:
        raise UserError("Output folder: choose the folder the results and batch-report.json go to.")
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UserError(f"Output folder: {out} is a file; choose a folder (it is made when missing).")


def check_styles(styles: Sequence[tuple[Any, float]]) -> tuple[list[Any], list[float]]:
    """The chosen styles (layers or sources) and their weights; UserError for a missing or bad one."""
    chosen = [(style, float(weight)) for style, weight in styles if style is not None]
    if not chosen:
        check_2d_image(None, "style")
    for style, _ in chosen:
        if is_source(style):
            style.check()
        else:
            check_2d_image(style, "style", allow_nd=True)
    if sum(weight for _, weight in chosen) <= 0:
        raise UserError("The style weights are all zero; give at least one style a weight above 0.")
    return [style for style, _ in chosen], [weight for _, weight in chosen]


def style_files(styles: Sequence[Any]) -> list[tuple[str, str]]:
    """The files behind the styles (a style file, a layer opened from a file): the batch never writes over them."""
    found = []
    for i, style in enumerate(styles):
        what = f"style {i + 1}" if len(styles) > 1 else "style"
        path = (
            style.path
            if isinstance(style, StyleFile)
            else getattr(getattr(style, "source", None), "path", None)
        )
        if path:
            found.append((what, str(path)))
    return found


__all__ = [
    "FOLDER_EXTS",
    "FolderRequest",
    "FolderStart",
    "folder_events",
    "folder_failure",
    "folder_sentence",
    "prepare_folder",
]
