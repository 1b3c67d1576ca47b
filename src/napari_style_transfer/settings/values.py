"""Settings as data: every option of a run as plain JSON values, checked in one place.

A run's settings are the :class:`~.engine.StyleConfig` options (``engine/options.py``
turns them into plain values and back) plus the few *output* options that act after the
engine, declared here once as :data:`OUTPUT_SPECS` (the CLI's flags and the widget's
controls are built from them like the config's). The same values travel everywhere: the
widget's last-used settings, presets, the CLI's ``--config`` file, and the JSON a result
image carries (``files/embedded.py``).

A settings *document* is ``{"format": SETTINGS_FORMAT, "version": ..., "settings": {...}}``;
readers also take a plain ``{"iterations": 77, ...}`` mapping. A result's document also says
what its inputs were (``"inputs"``, :func:`document_inputs`): never settings, only what the CLI
notes about a saved run. No Qt, no napari here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..engine.config import ConfigError, StyleConfig
from ..engine.options import OptionSpec, config_from_values, config_to_values, option_specs
from ..version import __version__

#: The "format" of a settings document (a file, or the text a result image carries).
SETTINGS_FORMAT = "napari-style-transfer settings"

#: Options applied after the engine (it never sees them), declared once for the CLI and the widget.
#: ``full_size``: the result is upsampled to the content's full size, so a 4000 px photo run at
#: 512 px gives a 4000 px image; the engine cannot do it, as it only sees the content already
#: reduced for the run (the CLI and the widget read it reduced, to save time and memory).
OUTPUT_SPECS: tuple[OptionSpec, ...] = (
    OptionSpec(
        name="full_size",
        label="Full-size result",
        help="Upsample the result to the content's full size (the run itself stays at the output size)",
        group="output",
        kind="bool",
        default=False,
    ),
)


class SettingsError(ConfigError):
    """A settings file, preset or value that cannot be used; the message says which and why."""


def settings_specs() -> tuple[OptionSpec, ...]:
    """Every option a settings document may hold: the config's, then the output ones."""
    return (*option_specs(), *OUTPUT_SPECS)


def default_values() -> dict[str, Any]:
    """The defaults of every option as plain values (the start image left out)."""
    return {**config_to_values(StyleConfig()), **{spec.name: spec.default for spec in OUTPUT_SPECS}}


def _check_output(name: str, value: Any) -> Any:
    spec = next(spec for spec in OUTPUT_SPECS if spec.name == name)
    if spec.kind == "bool" and not isinstance(value, bool):
        raise SettingsError(f"{name}: must be True or False, got {value!r}")
    return value


def split_values(values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(StyleConfig values, output values) of a mapping of settings (other names are left out)."""
    output_names = {spec.name for spec in OUTPUT_SPECS}
    config = {k: v for k, v in values.items() if k not in output_names}
    return config, {k: v for k, v in values.items() if k in output_names}


def config_of(values: Mapping[str, Any], init_image: Any = None) -> StyleConfig:
    """The validated StyleConfig of ``values`` (output options ignored).

    Settings never hold the start image: with ``init`` 'image' and no ``init_image`` given,
    a 1×1 stand-in is used, so the choice itself can be checked.
    """
    config, _ = split_values(values)
    if config.get("init") == "image":
        import numpy as np

        config["init_image"] = np.zeros((1, 1), np.uint8) if init_image is None else init_image
    return config_from_values(config)


def check_values(values: Any, *, drop_unknown: bool = False) -> dict[str, Any]:
    """Every option's plain value: the defaults with ``values`` set, each checked.

    Raises :class:`SettingsError` (one message naming the option) for a bad value or, unless
    ``drop_unknown``, a name that is no option (e.g. a typo in a settings file).
    """
    if not isinstance(values, Mapping):
        raise SettingsError(
            f"settings must be a mapping of option names to values, got {type(values).__name__}"
        )
    known = {spec.name for spec in settings_specs() if spec.kind != "image"}
    unknown = [name for name in values if name not in known]
    if unknown and not drop_unknown:
        raise SettingsError(f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    values = {k: v for k, v in values.items() if k in known}
    try:
        config = config_of(values)
    except SettingsError:
        raise
    except ConfigError as exc:
        raise SettingsError(str(exc)) from None
    except (TypeError, ValueError) as exc:  # e.g. a string where numbers belong
        raise SettingsError(f"bad value: {exc}") from None
    _, output = split_values(values)
    checked = {**default_values(), **config_to_values(config)}
    checked.update({name: _check_output(name, value) for name, value in output.items()})
    return checked


def values_of(config: StyleConfig, output: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Plain values of a run's config and output options (defaults for those not given)."""
    values = {**default_values(), **config_to_values(config)}
    values.update(output or {})
    return values


def document(values: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A settings document: the format, this version, ``extra`` entries, then the settings."""
    return {"format": SETTINGS_FORMAT, "version": __version__, **extra, "settings": dict(values)}


def to_json(values: Mapping[str, Any], **extra: Any) -> str:
    """A settings document as compact 7-bit JSON (what a TIFF description may hold)."""
    return json.dumps(document(values, **extra), ensure_ascii=True, separators=(",", ":"))


def values_from_document(doc: Any, source: str = "settings", *, plain: bool = True) -> dict[str, Any]:
    """The settings mapping of a document (or, if ``plain``, of a plain mapping of settings), unchecked."""
    if isinstance(doc, Mapping) and ("format" in doc or not plain):
        if doc.get("format") != SETTINGS_FORMAT or not isinstance(doc.get("settings"), Mapping):
            raise SettingsError(f"{source}: not a napari-style-transfer settings document")
        return dict(doc["settings"])
    if isinstance(doc, Mapping):
        return dict(doc)
    raise SettingsError(f"{source}: not a napari-style-transfer settings document (a JSON object)")


def parse_json(text: str, source: str = "") -> Any:
    """JSON text → a value; SettingsError (naming ``source`` if given) when it is not JSON."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SettingsError(
            f"{source}: not valid JSON ({exc})" if source else f"not valid JSON ({exc})"
        ) from None


def settings_text(path: str | os.PathLike) -> tuple[str, bool]:
    """(the text of a settings file or of the document a PNG/TIFF result carries, whether it came
    from an image); SettingsError with one line naming the file and the problem."""
    from ..files import ImageFileError, check_input_file, read_description, shown
    from ..files.read import is_tiff

    try:
        path = check_input_file(path)
        with open(path, "rb") as handle:
            head = handle.read(8)
        image = head.startswith(b"\x89PNG") or is_tiff(Path(path))
        if image:
            text = read_description(path)
            if text is None:
                raise SettingsError(f"{shown(path)}: this image carries no settings")
        else:
            text = Path(path).read_bytes().decode("utf-8-sig")
    except ImageFileError as exc:
        raise SettingsError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read {shown(path)}: {exc}") from None
    if image and not text.lstrip().startswith("{"):
        raise SettingsError(f"{shown(path)}: this image carries no settings")
    return text, image


def read_settings_file(path: str | os.PathLike) -> dict[str, Any]:
    """The checked settings of a JSON settings file, or of a PNG/TIFF result that carries them.

    Only the options the file names are returned (a partial file leaves the others to the
    caller). Raises SettingsError with one line naming the file and the problem.
    """
    from ..files import shown

    text, image = settings_text(path)
    try:
        values = values_from_document(parse_json(text), "settings", plain=not image)
    except SettingsError as exc:
        raise SettingsError(
            f"{shown(path)}: this image carries no settings" if image else f"{shown(path)}: {exc}"
        ) from None
    try:
        checked = check_values(values)
    except SettingsError as exc:
        raise SettingsError(f"{shown(path)}: {exc}") from None
    return {name: checked[name] for name in values}


def document_inputs(doc: Any) -> dict[str, Any]:
    """What a settings document records of the run's inputs (``"inputs"``: content and style names,
    and, for a result saved from napari, its canvas, mask and style regions), or {} for a document
    or plain mapping without them: the settings never depend on it."""
    if isinstance(doc, Mapping) and doc.get("format") == SETTINGS_FORMAT:
        inputs = doc.get("inputs")
        if isinstance(inputs, Mapping):
            return dict(inputs)
    return {}


def read_settings_inputs(path: str | os.PathLike) -> dict[str, Any]:
    """The inputs (:func:`document_inputs`) of a settings file or a result image that carries them;
    {} when it records none or cannot be read (what it says is a note, never an error)."""
    try:
        text, _ = settings_text(path)
        return document_inputs(parse_json(text))
    except SettingsError:
        return {}


__all__ = [
    "OUTPUT_SPECS",
    "SETTINGS_FORMAT",
    "SettingsError",
    "check_values",
    "config_of",
    "default_values",
    "document",
    "document_inputs",
    "parse_json",
    "read_settings_file",
    "read_settings_inputs",
    "settings_specs",
    "settings_text",
    "split_values",
    "to_json",
    "values_from_document",
    "values_of",
]
