"""Options declared once: every StyleConfig field has a spec, a CLI flag, and saved values round-trip.

Nothing here lists the fields by hand: the tests walk ``dataclasses.fields(StyleConfig)`` and
make a non-default value for each from its spec, so a new field is checked without edits.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re

import numpy as np
import pytest

from napari_style_transfer import __version__
from napari_style_transfer.cli import build_parser, config_from_args, run
from napari_style_transfer.engine import ConfigError, StyleConfig
from napari_style_transfer.engine.config import OPTION_GROUPS, OPTION_KINDS
from napari_style_transfer.engine.options import (
    OptionSpec,
    config_from_values,
    config_to_values,
    option_spec,
    option_specs,
)

FIELDS = [f.name for f in dataclasses.fields(StyleConfig)]
BASE_ARGV = ["content.png", "style.png", "-o", "out.png"]


def _non_default(spec: OptionSpec):
    """A valid value of the option that differs from its default, made from the spec alone."""
    default = spec.default
    if spec.kind == "bool":
        return not default
    if spec.kind in ("choice", "str") and spec.choices:
        # the first other choice ('image' as a start needs an image array, so not that one)
        return next(c for c in spec.choices if c != default and c != "image")
    if spec.kind == "int":
        if spec.auto_label and default == "auto":
            return spec.minimum + 1
        return spec.minimum if default is None else default + 1
    if spec.kind == "float":
        if default is None:
            return (spec.minimum + spec.maximum) / 2
        return default + 0.5
    if spec.kind == "layers":
        return ("conv1_1", *default)
    if spec.kind == "floats":  # one per layer for layer weights; any count otherwise
        layers = getattr(StyleConfig(), spec.name.replace("_weights", "s"), (None, None))
        return tuple(float(i + 1) for i in range(len(layers)))
    if spec.kind == "range":
        return (1.0, 2.0)
    if spec.kind == "image":
        return np.zeros((4, 4, 3), np.uint8)
    raise AssertionError(f"no test value for kind {spec.kind!r}")


def _cli_args(action: argparse.Action, value) -> list[str]:
    """The argv that should set ``value`` through this argparse action."""
    if isinstance(value, bool):
        wanted = [s for s in action.option_strings if s.startswith("--no-") != value]
        return wanted[:1]
    if isinstance(value, tuple):
        return [action.option_strings[0], *(str(v) for v in value)]
    return [action.option_strings[0], str(value)]


def _actions_by_dest(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {action.dest: action for action in parser._actions}


def test_every_field_has_a_complete_spec():
    specs = option_specs()
    assert [spec.name for spec in specs] == FIELDS
    for spec in specs:
        assert option_spec(spec.name) is spec
        assert spec.label and spec.help, spec.name
        assert spec.group in OPTION_GROUPS and spec.kind in OPTION_KINDS, spec.name
        assert spec.default == StyleConfig.__dataclass_fields__[spec.name].default
        if spec.kind == "choice":
            assert spec.default in spec.choices, spec.name
        if spec.choice_labels:
            assert len(spec.choice_labels) == len(spec.choices), spec.name
        if spec.default is None:
            assert spec.optional, spec.name


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_reachable_from_the_cli(name):
    """A flag found in the CLI's own parser, given a non-default value, lands in the CLI's config."""
    spec = option_spec(name)
    value = _non_default(spec)
    parser = build_parser()
    if spec.kind == "image":  # a file: the CLI reads it and hands the array to config_from_args
        flag = "--" + name.replace("_", "-")
        args = parser.parse_args([*BASE_ARGV, flag, "start.png"])
        assert getattr(args, name) == "start.png"
        config = config_from_args(args, value)
        assert getattr(config, name) is value and config.init == "image"
        return
    action = _actions_by_dest(parser).get(name)
    assert action is not None, f"StyleConfig.{name} has no CLI flag"
    config = config_from_args(parser.parse_args([*BASE_ARGV, *_cli_args(action, value)]))
    assert getattr(config, name) == value
    assert getattr(config_from_args(parser.parse_args(BASE_ARGV)), name) != value  # the flag did it


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_round_trips_through_plain_values(name):
    spec = option_spec(name)
    value = _non_default(spec)
    if spec.kind == "image":
        config = StyleConfig(init="image", init_image=value)
        values = config_to_values(config)
        assert name not in values  # arrays are not settings
        assert config_from_values(values, base=config).init_image is value
        with pytest.raises(ConfigError, match="^init_image: "):
            config_from_values(values)
        return
    config = StyleConfig(**{name: value})
    values = json.loads(json.dumps(config_to_values(config)))  # plain JSON, lists for tuples
    again = config_from_values(values)
    assert again == config and getattr(again, name) == value
    assert config_from_values(config_to_values(StyleConfig())) == StyleConfig()


def test_unknown_or_bad_settings_name_the_field():
    with pytest.raises(ConfigError, match="^settings: unknown setting 'foo'"):
        config_from_values({"foo": 1})
    with pytest.raises(ConfigError, match="^iterations: must be "):
        config_from_values({"iterations": 0})
    base = StyleConfig(iterations=7)
    assert config_from_values({"size": None}, base=base) == StyleConfig(iterations=7, size=None)


@pytest.mark.parametrize("spec", [s for s in option_specs() if s.maximum is not None], ids=lambda s: s.name)
def test_spec_ranges_are_the_ranges_the_config_checks(spec):
    below = spec.minimum - (1 if spec.kind == "int" else 0.01)
    above = spec.maximum + (1 if spec.kind == "int" else 0.01)
    assert getattr(StyleConfig(**{spec.name: spec.maximum}), spec.name) == spec.maximum
    for bad in (below, above):
        with pytest.raises(ConfigError, match=f"^{spec.name}: must be "):
            StyleConfig(**{spec.name: bad})


@pytest.mark.parametrize("spec", [s for s in option_specs() if s.kind == "choice"], ids=lambda s: s.name)
def test_spec_choices_are_the_choices_the_config_checks(spec):
    with pytest.raises(
        ConfigError, match=f"^{spec.name}: must be one of {re.escape(', '.join(spec.choices))}, "
    ):
        StyleConfig(**{spec.name: "no-such-choice"})


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"napari-style-transfer {__version__}\n"


def test_help_reads_right(capsys):
    with pytest.raises(SystemExit):
        run(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # undo argparse's line wrapping
    assert "(default: None)" not in text
    assert "default: True" not in text and "default: False" not in text
    assert "--multiscale, --no-multiscale" in text and "(default: on)" in text
    assert "(default: 512; 0: the content's size)" in text


def test_the_old_flag_spellings_still_work():
    argv = [
        *BASE_ARGV,
        "-s",
        "0",
        "-n",
        "7",
        "--lr",
        "0.5",
        "--no-multiscale",
        "--content-layers",
        "relu3_1",
        "relu4_1",
    ]
    config = config_from_args(build_parser().parse_args(argv))
    assert config.size is None and config.iterations == 7 and config.learning_rate == 0.5
    assert config.multiscale is False and config.content_layers == ("relu3_1", "relu4_1")
    config = config_from_args(
        build_parser().parse_args([*BASE_ARGV, "--learning-rate", "2", "--save-every", "5"])
    )
    assert config.learning_rate == 2 and config.preview_every == 5
    assert config_from_args(build_parser().parse_args([*BASE_ARGV, "--seed", "none"])).seed is None
