"""Every option's flag, read from the option specs, and where a run's settings come from.

Each StyleConfig option gets its flag from ``engine/options.py`` (and each output option from
``settings.OUTPUT_SPECS``), so a new option appears in both commands without touching this
file; only :data:`CLI_OVERRIDES` differ (``--save-every`` is the config's ``preview_every``).
Every flag is added with ``default=argparse.SUPPRESS``, so the namespace holds exactly the
options the user typed: they are laid over ``--config FILE``'s values, which are laid over
``--preset NAME``'s, which are laid over the defaults. Options whose CLI meaning differs from
the setting's (a widget's "preview every 10" must not make the CLI save every 10th image) are
not taken from presets or files.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine loads torch: imported when a run starts, not at start-up
    from ..engine.config import StyleConfig
    from ..engine.options import OptionSpec

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


def add_spec_arguments(parser: argparse.ArgumentParser, specs: Any, groups: dict[str, Any]) -> None:
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
    from ..engine.options import option_specs

    add_settings_arguments(parser)
    groups: dict[str, Any] = {}
    add_spec_arguments(parser, option_specs(), groups)
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
    from ..engine.config import ConfigError
    from ..settings import check_values, config_of, settings_specs, split_values

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
        raise ConfigError(
            "init: the settings start from an image (a continued run starts from its last result); "
            "give it with --init-image FILE, or start afresh with --init content"
        )
    config_values, output = split_values(values)
    check_values(output)  # the output options, checked like a settings file's
    return config_of(config_values, init_image), output


def config_from_args(args: argparse.Namespace, init_image: Any = None) -> StyleConfig:
    """The validated config from a namespace of add_config_arguments' options (see settings_from_args)."""
    return settings_from_args(args, init_image)[0]


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset`` and ``--config``, in their own help section."""
    from ..settings import BUILTIN_PRESETS

    group = parser.add_argument_group("settings (explicit flags override them)")
    group.add_argument(
        "--preset",
        metavar="NAME",
        help=f"start from a preset: {', '.join(repr(n) for n in BUILTIN_PRESETS)} or one saved in the widget",
    )
    group.add_argument(
        "--config",
        dest="config_file",
        metavar="FILE",
        help="take the settings from FILE: a JSON of settings, or a PNG/TIFF result that carries them "
        "(overrides --preset); notes say what a result saved from napari had besides settings (its "
        "canvas, mask, style regions)",
    )


def values_from_args(
    args: argparse.Namespace, names: Iterable[str], cli_only: Iterable[str] = ()
) -> dict[str, Any]:
    """The settings of a run: preset, then config file, then the explicit flags among ``names``.

    ``cli_only``: options taken from the command line only. Raises SettingsError with one
    line that names the flag and the problem.
    """
    from ..settings import SettingsError, find_preset, read_settings_file

    values: dict[str, Any] = {}
    sources = (("--preset", "preset", find_preset), ("--config", "config_file", read_settings_file))
    for flag, name, read in sources:  # later sources override earlier ones
        given = getattr(args, name, None)
        if given is None:
            continue
        try:
            values.update(read(given))
        except SettingsError as exc:
            raise SettingsError(f"{flag}: {exc}") from None
    for name in cli_only:
        values.pop(name, None)
    values.update({name: getattr(args, name) for name in names if hasattr(args, name)})
    return values


__all__ = [
    "CLI_OVERRIDES",
    "add_config_arguments",
    "add_settings_arguments",
    "add_spec_arguments",
    "config_from_args",
    "settings_from_args",
    "values_from_args",
]
