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
    TILINGS,
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
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help="auto: bf16 on CUDA and on CPUs with native bf16, else fp32 (Grams and losses are fp32 in every mode)")
    p.add_argument("--compile", action="store_true", help="run the network through torch.compile (long runs on a GPU)")
    p.add_argument("--save-every", type=int, default=0, metavar="N", help="also save the image every N iterations")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    m = p.add_argument_group("masks (spatial control)")
    m.add_argument("--mask", metavar="LABELS_FILE", help="label image of the content (integers, same H×W; a TIFF stack with --stack): which style goes where")
    m.add_argument("--label-styles", nargs="+", metavar="LABEL:STYLE", help="label value → style index (0-based, in STYLE order), e.g. 1:0 2:1; unmapped labels keep the content (default: every non-zero label gets the blend)")
    m.add_argument("--mask-feather", type=float, metavar="PX", help="soft edge of the kept content, Gaussian sigma in output pixels (default: 1%% of the long side)")
    t = p.add_argument_group("large images")
    t.add_argument("--tiling", choices=TILINGS, default=defaults.tiling, help="auto: optimise in tiles only when the size does not fit in memory")
    t.add_argument("--tile-size", type=int, metavar="PX", help="tile size in output pixels (default: the largest that fits, at most 1024)")
    t.add_argument("--tile-overlap", type=int, metavar="PX", help="overlap of neighbouring tiles (default: a quarter of the tile)")
    k = p.add_argument_group("stacks and time-lapses")
    k.add_argument("--stack", action="store_true", help="CONTENT is an nD TIFF (..., H, W[, C]): stylise every 2D slice; the output must be .tif")
    k.add_argument("--coherence", action=argparse.BooleanOptionalAction, default=True, help="start each slice from the previous slice's result (less flicker)")
    k.add_argument("--motion", choices=("shift", "none"), default="shift", help="with --coherence: move the previous result by the estimated drift between slices (shift) or not (none)")
    k.add_argument("--consistency-weight", type=float, default=0.0, metavar="W", help="with --coherence: also pull each slice toward the previous result")
    k.add_argument("--slices", nargs="+", type=int, metavar="N", help="only these slices (numbers in C order over the leading axes); the others keep the content")
    k.add_argument("--rgb", action=argparse.BooleanOptionalAction, default=None, help="the stack's last axis is colour (default: from the TIFF, else a last axis of 3 or 4)")
    return p  # fmt: skip


def _parse_label_styles(items: Sequence[str] | None) -> dict[int, int] | None:
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
            raise ValueError(f"--label-styles: {item!r} must be LABEL:STYLE with two integers, e.g. 1:0") from None
    return mapping


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
        compile=args.compile,
        tiling=args.tiling,
        tile_size=args.tile_size,
        tile_overlap=args.tile_overlap,
    )


def _intermediate_path(output: Path, step: int) -> Path:
    return output.with_name(f"{output.stem}.step{step:05d}{output.suffix}")


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit code (errors print one line on stderr)."""
    if (argv := list(sys.argv[1:] if argv is None else argv)) and argv[0] == "batch":
        from . import cli_batch

        return cli_batch.run(argv[1:])
    from .engine import ConfigError, ImageError, StyleTransferError, WeightsError, stylize_iter
    from .imageio_utils import (
        TIFF_SUFFIXES,
        WRITABLE_SUFFIXES,
        ImageFileError,
        check_writable,
        read_image,
        read_stack,
        write_image,
        write_stack,
    )

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
    if args.stack and output.suffix.lower() not in TIFF_SUFFIXES:
        return fail(f"--output: {output} must be a .tif or .tiff file for a --stack result")
    if args.stack and args.save_every:
        return fail("--save-every: is not available with --stack")
    if not args.stack and (args.slices or args.rgb is not None):
        return fail(f"--{'slices' if args.slices else 'rgb'}: only applies with --stack")
    if args.label_styles and not args.mask:
        return fail("--label-styles needs --mask LABELS_FILE")
    try:
        label_styles = _parse_label_styles(args.label_styles)
    except ValueError as exc:
        return fail(str(exc))
    rgb = None
    try:
        check_writable(output)  # before a long run: a directory, a read-only folder…
        if args.stack:
            content, rgb = read_stack(args.content)
            rgb = args.rgb if args.rgb is not None else rgb
        else:
            content = read_image(args.content)
        styles = [read_image(path) for path in args.styles]
        init_image = read_image(args.init_image) if args.init_image else None
        mask = None
        if args.mask:
            mask = read_stack(args.mask)[0] if args.stack else read_image(args.mask)
        config = _config_from_args(args, init_image)
    except (ImageFileError, ConfigError) as exc:
        return fail(str(exc))
    if mask is not None and not args.stack and mask.ndim == 3 and mask.shape[-1] in (3, 4):
        return fail(f"--mask: {args.mask} is a colour image; it must hold integer labels (one channel)")
    mask_options = dict(content_mask=mask, label_styles=label_styles, mask_feather=args.mask_feather)

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=1, unit="it", desc="stylising", dynamic_ncols=True, file=sys.stderr)
    notices: list[str] = []

    def notice(message: str | None) -> None:
        if not message or message in notices:
            return
        notices.append(message)
        if bar is not None:
            bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    try:
        if args.stack:
            from .engine.stack import stylize_stack_iter

            events = stylize_stack_iter(
                content, styles, config, rgb=rgb, slices=args.slices, coherence=args.coherence, motion=args.motion,
                consistency_weight=args.consistency_weight, **mask_options,
            )  # fmt: skip
            for stack_event in events:
                event = stack_event.event
                notice(event.message)
                if bar is not None:
                    bar.total = stack_event.total_steps
                    bar.n = stack_event.step
                    bar.set_postfix(slice=f"{stack_event.number}/{stack_event.count}", loss=f"{event.losses.get('total', 0):.4g}", refresh=False)
                    bar.refresh()
                if stack_event.done:
                    write_stack(output, stack_event.result, stack_event.info["rgb"])
        else:
            for event in stylize_iter(content, styles, config, **mask_options):
                notice(event.message)
                if bar is not None:
                    bar.total = event.total_steps
                    bar.n = event.step
                    postfix = {"scale": f"{event.scale + 1}/{event.n_scales}"}
                    if event.tile:
                        postfix["tile"] = f"{event.tile}/{event.n_tiles}"
                    bar.set_postfix(**postfix, loss=f"{event.losses.get('total', 0):.4g}", refresh=False)
                    bar.refresh()
                if event.done:
                    write_image(output, event.preview)
                elif event.preview is not None and args.save_every:
                    write_image(_intermediate_path(output, event.step), event.preview)
    except (ConfigError, ImageError, WeightsError, StyleTransferError, ImageFileError) as exc:
        if bar is not None:
            bar.close()
        message = str(exc)
        if isinstance(exc, ImageError) and not args.stack and content.ndim >= 3 and message.startswith("content:"):
            message += " (for a stack of 2D slices use --stack and a .tif output)"
        return fail(message)
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
