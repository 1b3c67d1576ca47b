"""Where the CLI's settings come from: ``--preset NAME`` < ``--config FILE`` < the flags given.

Every option flag is added with ``default=argparse.SUPPRESS`` (``cli.add_config_arguments``),
so the namespace holds exactly the options the user typed: they are laid over the file's
values, which are laid over the preset's, which are laid over the defaults. Options whose
CLI meaning differs from the setting's (``preview_every`` is ``--save-every`` here, and a
widget's "preview every 10" must not make the CLI save every 10th image) are not taken from
presets or files. The result the CLI writes carries its settings (``result_description``),
at the content's full size with ``--full-size`` (``result_image``).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cli_job import Job


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset`` and ``--config``, in their own help section."""
    from .settings import BUILTIN_PRESETS

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
        "(overrides --preset)",
    )


def values_from_args(
    args: argparse.Namespace, names: Iterable[str], cli_only: Iterable[str] = ()
) -> dict[str, Any]:
    """The settings of a run: preset, then config file, then the explicit flags among ``names``.

    ``cli_only``: options taken from the command line only. Raises SettingsError with one
    line that names the flag and the problem.
    """
    from .settings import SettingsError, find_preset, read_settings_file

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


def result_image(job: Job, image: Any, rgb: bool) -> Any:
    """The result as written: at the content's full size with ``--full-size``."""
    if not job.output.get("full_size"):
        return image
    from .engine.full_size import upsample_to

    shape = job.content.shape
    hw = job.content_hw or (shape[-3:-1] if rgb else shape[-2:])
    return upsample_to(image, hw, rgb)


def result_description(job: Job) -> str:
    """The settings a result carries (a JSON settings document), with the input files' names."""
    from .settings import to_json, values_of

    return to_json(values_of(job.config, job.output), inputs=job.inputs)


__all__ = ["add_settings_arguments", "result_description", "result_image", "values_from_args"]
