"""Command line: ``napari-style-transfer CONTENT STYLE [STYLE ...] -o OUT``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .engine.config import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    INITS,
    OPTIMIZERS,
    POOLINGS,
    PRECISIONS,
    PRESERVE_COLORS,
    WEIGHT_CONVENTIONS,
    StyleConfig,
)

PROG = "napari-style-transfer"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like the CLI's other errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    defaults = StyleConfig()
    p = _Parser(
        prog=PROG,
        description="Neural style transfer (Gatys et al.): paint CONTENT in the style of STYLE.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("content", metavar="CONTENT", help="content image (PNG, JPEG or TIFF)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif)")
    p.add_argument("-s", "--size", type=int, default=defaults.size, help="output long side in pixels; 0 keeps the content's size")
    p.add_argument("-n", "--iterations", type=int, default=defaults.iterations, help="optimiser steps per scale")
    p.add_argument("--content-weight", type=float, default=defaults.content_weight)
    p.add_argument("--style-weight", type=float, default=defaults.style_weight, help="style strength relative to content")
    p.add_argument("--tv-weight", type=float, default=defaults.tv_weight, help="total-variation smoothing")
    p.add_argument("--content-layers", nargs="+", default=list(DEFAULT_CONTENT_LAYERS), metavar="LAYER")
    p.add_argument("--style-layers", nargs="+", default=list(DEFAULT_STYLE_LAYERS), metavar="LAYER")
    p.add_argument("--content-layer-weights", nargs="+", type=float, metavar="W")
    p.add_argument("--style-layer-weights", nargs="+", type=float, metavar="W")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=defaults.optimizer)
    p.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, help="step size (Adam: 0.02; L-BFGS: 1)")
    p.add_argument("--init", choices=INITS, default=defaults.init, help="starting image ('image' needs --init-image)")
    p.add_argument("--init-image", help="starting image file (implies --init image)")
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--deterministic", action="store_true", help="bit-identical repeat runs (slower on CUDA)")
    p.add_argument("--style-scale", type=float, default=defaults.style_scale, help="style size relative to the output")
    p.add_argument("--style-blend-weights", nargs="+", type=float, metavar="W", help="one weight per style image")
    p.add_argument("--preserve-colors", choices=PRESERVE_COLORS, default=defaults.preserve_colors)
    p.add_argument("--no-multiscale", dest="multiscale", action="store_false", help="optimise at the output size only")
    p.add_argument("--pooling", choices=POOLINGS, default=defaults.pooling)
    p.add_argument("--weights", default=defaults.weights, help="'embedded' (offline), 'torchvision' or a state-dict file")
    p.add_argument("--weights-convention", choices=WEIGHT_CONVENTIONS, default=defaults.weights_convention, help="input convention of a state-dict file")
    p.add_argument("--device", default=defaults.device, help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision)
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N iterations")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    return p  # fmt: skip


def _config_from_args(args: argparse.Namespace, init_image) -> StyleConfig:
    return StyleConfig(
        iterations=args.iterations,
        size=None if args.size == 0 else args.size,
        content_weight=args.content_weight,
        style_weight=args.style_weight,
        tv_weight=args.tv_weight,
        content_layers=tuple(args.content_layers),
        style_layers=tuple(args.style_layers),
        content_layer_weights=tuple(args.content_layer_weights) if args.content_layer_weights else None,
        style_layer_weights=tuple(args.style_layer_weights) if args.style_layer_weights else None,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        init="image" if init_image is not None else args.init,
        init_image=init_image,
        seed=args.seed,
        deterministic=args.deterministic,
        style_scale=args.style_scale,
        style_blend_weights=tuple(args.style_blend_weights) if args.style_blend_weights else None,
        preserve_colors=args.preserve_colors,
        multiscale=args.multiscale,
        pooling=args.pooling,
        weights=args.weights,
        weights_convention=args.weights_convention,
        device=args.device,
        preview_every=args.save_every,
        precision=args.precision,
    )


def _intermediate_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:05d}{output.suffix}")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit code (errors print one line on stderr)."""
    from .engine import ConfigError, ImageError, StyleTransferError, WeightsError, stylize_iter
    from .imageio_utils import WRITABLE_SUFFIXES, ImageFileError, check_writable, read_image, write_image

    parser = build_parser()
    args = parser.parse_args(argv)
    output = Path(args.output)

    def fail(message: str) -> int:
        lines = str(message).strip().splitlines() or ["unknown error"]  # one line, always
        print(f"{PROG}: error: {lines[0]}", file=sys.stderr)
        return 2

    if args.save_every < 0:
        return fail("--save-every: must be an integer >= 0")
    if args.init == "image" and not args.init_image:
        return fail("--init image needs --init-image PATH")
    if output.suffix.lower() not in WRITABLE_SUFFIXES:
        return fail(f"--output: {output} must end in one of {', '.join(WRITABLE_SUFFIXES)}")
    if not output.parent.exists():
        return fail(f"--output: folder {output.parent} does not exist")
    try:
        check_writable(output)  # before a long run: a directory, a read-only folder…
        content = read_image(args.content)
        styles = [read_image(path) for path in args.styles]
        init_image = read_image(args.init_image) if args.init_image else None
        config = _config_from_args(args, init_image)
    except (ImageFileError, ConfigError) as exc:
        return fail(str(exc))

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="it", desc="stylising", dynamic_ncols=True, file=sys.stderr)
    try:
        for event in stylize_iter(content, styles, config):
            if bar is not None:
                bar.total = event.total_steps
                bar.n = event.step
                bar.set_postfix(scale=f"{event.scale + 1}/{event.n_scales}", loss=f"{event.losses.get('total', 0):.4g}", refresh=False)
                bar.refresh()
            if event.done:
                write_image(output, event.preview)
            elif event.preview is not None and args.save_every:
                write_image(_intermediate_path(output, event.step), event.preview)
    except (ConfigError, ImageError, WeightsError, StyleTransferError, ImageFileError) as exc:
        if bar is not None:
            bar.close()
        return fail(str(exc))
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except RuntimeError as exc:  # e.g. out of memory inside torch
        if bar is not None:
            bar.close()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return fail(first)
    if bar is not None:
        bar.close()
    print(f"wrote {output}", file=sys.stderr if args.quiet else sys.stdout)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run(argv))


if __name__ == "__main__":
    main()
