"""Every StyleConfig option described once, for the CLI, the widget and saved settings.

Each :class:`~.config.StyleConfig` field carries its description in its dataclass metadata
(written with :func:`~.config.option` next to the field). This module turns that metadata into
:class:`OptionSpec` objects, so the argparse parser, the widget's form and the settings files
are derived from one place: adding an option is adding one field to ``StyleConfig``.

No argparse, no Qt, no napari here.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import OPTION_KEY, ConfigError, StyleConfig

#: Kinds whose values are tuples in StyleConfig (lists from JSON become tuples).
TUPLE_KINDS = ("layers", "floats", "range")


@dataclass(frozen=True)
class OptionSpec:
    """How one StyleConfig field is shown, parsed and checked.

    ``group``: where the widget puts it: "main" (always visible), "advanced" (collapsed
    section), "tiling" (advanced, tiling rows), "inputs" (filled from layers and rows by the
    widget: init_image, contrast_limits, style_blend_weights) or "cli" (CLI only).
    ``kind``: "int", "float", "bool", "choice", "str", "layers" (tuple of VGG layer names),
    "floats" (tuple of numbers), "image" (an array) or "range" (a (low, high) pair).
    ``optional``: None is allowed, and ``none_label`` says what None means. ``auto_label``: an
    "int" that also takes the string "auto", and what that means. ``choices``: the
    allowed values of a "choice" (for a "str", the named values besides free text, e.g. a
    weights file path); ``choice_labels``: their human labels, same order, or empty.
    ``minimum``/``maximum``: the range ``StyleConfig`` checks (None: unbounded; learning_rate's
    minimum 0 is exclusive; tile_overlap must also be less than half the tile size).
    ``flags``: CLI flags; empty: ``--`` and the name with dashes.
    """

    name: str
    label: str
    help: str
    group: str
    kind: str
    default: Any
    optional: bool = False
    none_label: str = ""
    auto_label: str = ""
    choices: tuple[str, ...] = ()
    choice_labels: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    flags: tuple[str, ...] = ()
    metavar: str | None = None


@functools.cache
def option_specs() -> tuple[OptionSpec, ...]:
    """One spec per StyleConfig field, in field order."""
    specs = []
    for f in dataclasses.fields(StyleConfig):
        if OPTION_KEY not in f.metadata:  # pragma: no cover - guarded by the tests
            raise TypeError(f"StyleConfig.{f.name} has no option(...) metadata")
        specs.append(OptionSpec(name=f.name, default=f.default, **f.metadata[OPTION_KEY]))
    return tuple(specs)


@functools.cache
def _specs_by_name() -> dict[str, OptionSpec]:
    return {spec.name: spec for spec in option_specs()}


def option_spec(name: str) -> OptionSpec:
    """The spec of one StyleConfig field (KeyError if there is none)."""
    return _specs_by_name()[name]


def config_to_values(config: StyleConfig) -> dict[str, Any]:
    """The config as plain JSON-able values, one per field (tuples as lists; the init image left out)."""
    values: dict[str, Any] = {}
    for spec in option_specs():
        if spec.kind == "image":
            continue
        value = getattr(config, spec.name)
        values[spec.name] = list(value) if isinstance(value, tuple) else value
    return values


def config_from_values(values: Mapping[str, Any], base: StyleConfig | None = None) -> StyleConfig:
    """A validated config: ``base`` (default: the defaults) with ``values`` set.

    Unknown names raise ConfigError naming them; lists become tuples where the field is a
    tuple. An "image" option (init_image) comes from ``base`` unless ``values`` holds an array.
    """
    base = StyleConfig() if base is None else base
    known = _specs_by_name()
    changes: dict[str, Any] = {}
    for name, value in values.items():
        spec = known.get(name)
        if spec is None:
            raise ConfigError(f"settings: unknown setting {name!r} (known: {', '.join(known)})")
        if spec.kind in TUPLE_KINDS and isinstance(value, list):
            value = tuple(value)
        changes[name] = value
    return base.replace(**changes)


__all__ = ["OptionSpec", "config_from_values", "config_to_values", "option_spec", "option_specs"]
