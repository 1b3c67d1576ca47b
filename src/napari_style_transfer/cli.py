"""Command line: ``napari-style-transfer CONTENT STYLE [STYLE ...] -o OUT``.

Every StyleConfig option gets its flag from the option specs (``engine/options.py``), so a
new config field appears here without touching this file. Only a few translations are
CLI-specific: ``--size 0`` keeps the content's size, ``--init-image FILE`` starts from that
image, and ``--save-every N`` (the config's preview_every, 0 by default here) also saves the
image every N iterations. ``--preset`` and ``--config`` give a base that explicit flags
override (``cli_settings.py``); the output options (``settings.OUTPUT_SPECS``, e.g.
``--full-size``) get their flags from their specs too. PNG and TIFF results carry the run's
settings (a text chunk, the TIFF description), so ``--config result.png`` runs it again.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .messages import first_line
from .version import __version__

if TYPE_CHECKING:  # the engine loads torch: main() imports it after the signal handlers are set
    from .cli_job import Job
    from .engine.config import StyleConfig
    from .engine.options import OptionSpec

PROG = "napari-style-transfer"

#: Where add_config_arguments puts the options of each spec group (the help's sections).
GROUP_TITLES = {
    "main": "main options",
    "advanced": "more options",
    "inputs": "inputs",
    "tiling": "large images",
    "cli": "command line only",
    "output": "output",
}
#: Options whose CLI form differs from the spec: other flags, default or help.
CLI_OVERRIDES: dict[str, dict[str, Any]] = {
    "preview_every": {
        "flags": ("--save-every",),
        "default": 0,
        "help": "also save the image every N iterations (default: 0, only the final image)",
    },
}


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (no usage block), like the CLI's other errors."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _flags(spec: OptionSpec) -> tuple[str, ...]:
    return (
        CLI_OVERRIDES.get(spec.name, {}).get("flags") or spec.flags or ("--" + spec.name.replace("_", "-"),)
    )


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def _help(spec: OptionSpec) -> str:
    """The spec's help with its default in words (escaped for argparse's %-formatting)."""
    text = CLI_OVERRIDES.get(spec.name, {}).get("help")
    if text is None:
        default = spec.default
        if spec.kind == "bool":
            text = f"{spec.help} (default: {'on' if default else 'off'})"
        elif default is None:
            text = f"{spec.help} (default: {spec.none_label})" if spec.none_label else spec.help
        elif spec.auto_label and default == "auto":
            text = f"{spec.help} (default: auto: {spec.auto_label})"
        elif spec.optional:
            word = "0" if spec.name == "size" else "none"
            text = f"{spec.help} (default: {_shown(default)}; {word}: {spec.none_label})"
        else:
            text = f"{spec.help} (default: {_shown(default)})"
    if text[1:2].islower():  # "Keep the colours" → "keep the colours"; "VGG-19 layers" stays
        text = text[0].lower() + text[1:]
    return text.replace("%", "%%")


def _number(base: type, allow_none: bool, allow_auto: bool = False) -> Callable[[str], Any]:
    """argparse type: ``base`` from text, or None for 'none' / "auto" for 'auto' where the option allows it."""

    def convert(text: str) -> Any:
        word = text.strip().lower()
        if allow_none and word == "none":
            return None
        if allow_auto and word == "auto":
            return "auto"
        return base(text)

    convert.__name__ = base.__name__  # argparse names the type in "invalid int value"
    return convert


def _argument_kwargs(spec: OptionSpec) -> dict[str, Any] | None:
    """add_argument's keywords for a spec (None: the CLI fills that option differently)."""
    kwargs: dict[str, Any] = {"dest": spec.name, "help": _help(spec), "default": argparse.SUPPRESS}
    allow_none = spec.optional and spec.default is not None
    if spec.kind == "image":
        return None
    if spec.kind == "bool":
        kwargs["action"] = argparse.BooleanOptionalAction  # --no-X undoes a preset or a --config file
    elif spec.kind in ("int", "float"):
        kwargs["type"] = _number(int if spec.kind == "int" else float, allow_none, bool(spec.auto_label))
    elif spec.kind == "choice":
        kwargs["choices"] = spec.choices
    elif spec.kind == "layers":
        kwargs["nargs"] = "+"
    elif spec.kind == "floats":
        kwargs.update(nargs="+", type=float)
    elif spec.kind == "range":
        kwargs.update(nargs=2, type=float, metavar=("LOW", "HIGH"))
    if spec.metavar and "metavar" not in kwargs and spec.kind not in ("bool", "choice"):
        kwargs["metavar"] = spec.metavar
    return kwargs


def _add_spec_arguments(parser: argparse.ArgumentParser, specs: Any, groups: dict[str, Any]) -> None:
    """One argument per spec, in help sections by spec group (made on first use)."""
    for spec in specs:
        kwargs = _argument_kwargs(spec)
        if kwargs is None:
            continue
        if spec.group not in groups:  # an empty section would print its bare title
            groups[spec.group] = parser.add_argument_group(GROUP_TITLES[spec.group])
        action = groups[spec.group].add_argument(*_flags(spec), **kwargs)
        action.help = kwargs["help"]  # BooleanOptionalAction would append "(default: …)" again


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--preset``, ``--config`` and one argument per StyleConfig option (sections by group).

    Arguments not given are left out of the namespace (argparse.SUPPRESS), so the defaults
    stay StyleConfig's and a preset's or a file's values apply unless a flag is given.
    ``--init-image FILE`` is added too (a path: the caller reads it).
    """
    from .cli_settings import add_settings_arguments
    from .engine.options import option_specs

    add_settings_arguments(parser)
    groups: dict[str, Any] = {}
    _add_spec_arguments(parser, option_specs(), groups)
    groups["inputs"].add_argument(
        "--init-image", metavar="FILE", help="starting image file (implies --init image)"
    )


def settings_from_args(
    args: argparse.Namespace, init_image: Any = None
) -> tuple[StyleConfig, dict[str, Any]]:
    """The validated config and output options: preset < ``--config`` file < explicit flags.

    ``init_image``: the array read from ``--init-image`` (sets init to 'image'). Raises
    ConfigError (SettingsError) with one line naming the flag or setting.
    """
    from .cli_settings import values_from_args
    from .engine.config import ConfigError
    from .settings import check_values, config_of, settings_specs, split_values

    cli_defaults = {name: o["default"] for name, o in CLI_OVERRIDES.items() if "default" in o}
    values = values_from_args(args, [spec.name for spec in settings_specs()], cli_only=cli_defaults)
    values = {**cli_defaults, **values}
    if values.get("size") == 0:
        values["size"] = None
    if init_image is not None:
        if getattr(args, "init", "image") != "image":  # an explicit --init content/noise would ignore it
            raise ConfigError(f"--init-image: only applies with --init image (got --init {args.init})")
        values["init"] = "image"
    elif values.get("init") == "image":
        raise ConfigError("init: the settings start from an image; give it with --init-image FILE")
    config_values, output = split_values(values)
    check_values(output)  # the output options, checked like a settings file's
    return config_of(config_values, init_image), output


def config_from_args(args: argparse.Namespace, init_image: Any = None) -> StyleConfig:
    """The validated config from a namespace of add_config_arguments' options (see settings_from_args)."""
    return settings_from_args(args, init_image)[0]


def build_parser() -> argparse.ArgumentParser:
    """The full parser: inputs, output, every config option, masks and stacks."""
    p = _Parser(
        prog=PROG, description="Neural style transfer (Gatys et al.): paint CONTENT in the style of STYLE."
    )
    p.add_argument("content", metavar="CONTENT", help="content image (PNG, JPEG or TIFF)")
    p.add_argument("styles", metavar="STYLE", nargs="+", help="style image(s); several are blended")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .tif)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    add_config_arguments(p)
    from .settings import OUTPUT_SPECS

    _add_spec_arguments(p, OUTPUT_SPECS, {})
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
    m.add_argument(
        "--mask-feather",
        type=float,
        metavar="PX",
        help="soft edge of the kept content, Gaussian sigma in output pixels (default: 1%% of the long side)",
    )


def _add_stack_arguments(p: argparse.ArgumentParser) -> None:
    k = p.add_argument_group("stacks and time-lapses")
    k.add_argument(
        "--stack",
        action="store_true",
        help="CONTENT is an nD TIFF (..., H, W[, C]): stylise every 2D slice; the output must be .tif",
    )
    from .engine.guidance import MOTIONS

    _switch(
        k,
        "--coherence",
        None,
        "start each slice from the previous slice's result: less flicker (default: on)",
    )
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
        k,
        "--rgb",
        None,
        "the stack's last axis is colour (default: from the TIFF, else a last axis of 3 or 4)",
    )


def _switch(group: Any, flag: str, default: bool | None, help: str) -> None:
    """A --flag/--no-flag pair whose help says its default in words (argparse would add "(default: True)")."""
    action = group.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help)
    action.help = help


class _Progress:
    """The progress bar (none with --quiet) and the engine's notices, each printed once."""

    def __init__(self, quiet: bool):
        self.bar = None
        self.notices: list[str] = []
        if not quiet:
            from tqdm import tqdm

            self.bar = tqdm(total=1, unit="it", desc="stylising", dynamic_ncols=True, file=sys.stderr)

    def notice(self, message: str | None) -> None:
        if not message or message in self.notices:
            return
        self.notices.append(message)
        if self.bar is not None:
            self.bar.write(message, file=sys.stderr)
        else:
            print(message, file=sys.stderr)

    def update(self, step: int, total: int, loss: float, **postfix: str) -> None:
        if self.bar is not None:
            self.bar.total = total
            self.bar.n = step
            self.bar.set_postfix(**postfix, loss=f"{loss:.4g}", refresh=False)
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _consume(events: Iterable[Any], job: Job, output: Path, progress: _Progress) -> None:
    """Follow the engine's events: progress, intermediate images, the final file (with its settings)."""
    from .cli_settings import result_description, result_image
    from .files import write_image, write_stack
    from .files.names import step_path

    save_every = job.config.preview_every
    for item in events:
        event = item.event if job.stack is not None else item  # a StackEvent wraps a ProgressEvent
        progress.notice(event.message)
        loss = event.losses.get("total", 0)
        if job.stack is not None:
            progress.update(item.step, item.total_steps, loss, slice=f"{item.number}/{item.count}")
            if item.done:
                rgb = item.info["rgb"]
                write_stack(output, result_image(job, item.result, rgb), rgb, result_description(job))
            continue
        postfix = {"scale": f"{event.scale + 1}/{event.n_scales}"}
        if event.tile:
            postfix["tile"] = f"{event.tile}/{event.n_tiles}"
        progress.update(event.step, event.total_steps, loss, **postfix)
        if event.done:
            image = result_image(job, event.preview, event.preview.ndim == 3)
            write_image(output, image, result_description(job))
        elif event.preview is not None and save_every:
            write_image(step_path(output, event.step), event.preview)


def _fail(message: str) -> int:
    print(f"{PROG}: error: {first_line(message, 'unknown error')}", file=sys.stderr)  # one line, always
    return 2


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt so that the same clean-up runs (exit 143)."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def _interrupted(exc: KeyboardInterrupt) -> int:
    """Say why the run ended, once (further signals are ignored now); 130 after Ctrl-C, 143 after SIGTERM."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except ValueError:  # not the main thread: the caller's handlers stay
            break
    terminated = isinstance(exc, Terminated)
    print(f"{PROG}: {'terminated' if terminated else 'interrupted'}", file=sys.stderr)
    return 143 if terminated else 130


def _stylize(job: Job, output: Path, quiet: bool) -> int:
    """Run the engine (the one 2D-vs-stack choice is run_iter's) and write the result."""
    from .engine import ConfigError, ImageError, StyleTransferError, WeightsError, run_iter
    from .files import ImageFileError, shown

    progress = _Progress(quiet)
    try:
        events = run_iter(job.content, job.styles, job.config, stack=job.stack, guidance=job.guidance)
        _consume(events, job, output, progress)
    except (ConfigError, ImageError, WeightsError, StyleTransferError, ImageFileError) as exc:
        progress.close()
        message = str(exc)
        if (
            isinstance(exc, ImageError)
            and job.stack is None
            and job.content.ndim >= 3
            and message.startswith("content:")
        ):
            message += " (for a stack of 2D slices use --stack and a .tif output)"
        return _fail(message)
    except KeyboardInterrupt:
        progress.close()
        raise
    except RuntimeError as exc:  # e.g. out of memory inside torch
        progress.close()
        return _fail(str(exc).strip() or type(exc).__name__)
    progress.close()
    with contextlib.suppress(OSError):  # stdout closed (a pipe whose reader left): the file is written anyway
        print(f"wrote {shown(output)}", file=sys.stderr if quiet else sys.stdout, flush=True)
    return 0


def _run(argv: list[str]) -> int:
    from .cli_job import prepare, usage_error
    from .engine import ConfigError, ImageError
    from .files import ImageFileError

    if argv and argv[0] == "batch":
        from . import cli_batch

        return cli_batch.run(argv[1:], add_config_arguments, config_from_args)
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    problem = usage_error(args, output)
    if problem:
        return _fail(problem)
    try:
        # validated before any file is read; the start image, read later, stands in as a 1×1 array
        config, options = settings_from_args(args, _placeholder() if args.init_image else None)
        job = prepare(args, output, config)
        job.output = options
    except (ImageFileError, ConfigError, ImageError, ValueError) as exc:
        return _fail(str(exc))
    return _stylize(job, output, args.quiet)


def _placeholder() -> Any:
    import numpy as np

    return np.zeros((1, 1), np.uint8)


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run; returns the exit code (errors print one line on stderr).

    Ctrl-C (KeyboardInterrupt) and SIGTERM (see :func:`main`) end the run with one line and
    130 / 143; nothing half-written is left (every file is written atomically).
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return _run(argv)
    except KeyboardInterrupt as exc:
        return _interrupted(exc)


def _one_line_warning(
    message: Any, category: type, filename: str, lineno: int, line: str | None = None
) -> str:
    return f"{PROG}: warning: {first_line(message, category.__name__)}\n"


def main(argv: Sequence[str] | None = None) -> None:
    """The console entry point: SIGTERM ends the run like Ctrl-C (exit 143); warnings take one line.

    Ctrl-C (SIGINT) raises KeyboardInterrupt even where the shell started the process with
    SIGINT ignored (``cmd &``), so ``kill -INT`` always stops a run cleanly.
    """
    try:
        signal.signal(signal.SIGTERM, _raise_terminated)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started in the background
        import warnings

        warnings.formatwarning = _one_line_warning
        code = run(argv)
    except KeyboardInterrupt as exc:  # a signal between the handlers and run()
        code = _interrupted(exc)
    _forget_caught_interrupts()
    sys.exit(code)


def _forget_caught_interrupts() -> None:
    """Make ``python -m napari_style_transfer`` exit with our code, not by SIGINT.

    CPython marks a Ctrl-C as unhandled whenever a KeyboardInterrupt leaves code run by ``exec``
    or ``eval`` of a string (dataclass and namedtuple creation, often during an import), even when
    an outer ``except`` catches it. Under ``python -m`` the process then ends by SIGINT (-2)
    instead of 130; only the next ``exec`` of a string clears that mark. This is that ``exec``.
    """
    exec("pass")


if __name__ == "__main__":
    main()
