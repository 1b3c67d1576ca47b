"""Settings as data, without Qt: checking, presets, the config folder, settings inside result
images, the CLI's --preset / --config precedence and errors, and the full-size resize."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import build_parser, run, settings_from_args
from napari_style_transfer.engine.full_size import upsample_to
from napari_style_transfer.files import TEXT_KEY, read_description, write_image, write_stack
from napari_style_transfer.settings import (
    BUILTIN_PRESETS,
    SettingsError,
    check_values,
    default_values,
    find_preset,
    read_settings_file,
    to_json,
)
from napari_style_transfer.settings.store import (
    LAST_SETTINGS_FILE,
    config_dir,
    load_last_settings,
    load_user_presets,
    save_last_settings,
    save_user_presets,
)


def test_values_are_checked_once_with_one_message_per_bad_value():
    values = check_values(
        {"iterations": 77, "content_layers": ["relu3_1"], "full_size": True, "init": "image"}
    )
    assert values == {
        **default_values(),
        "iterations": 77,
        "content_layers": ["relu3_1"],
        "full_size": True,
        "init": "image",
    }
    assert json.loads(json.dumps(values)) == values  # plain JSON values
    for bad, field in (
        ({"iterations": 0}, "iterations"),
        ({"full_size": 1}, "full_size"),
        ({"pooling": "x"}, "pooling"),
    ):
        with pytest.raises(SettingsError, match=f"^{field}: must be"):
            check_values(bad)
    with pytest.raises(SettingsError, match="unknown setting 'iterationz'"):
        check_values({"iterationz": 3})
    assert check_values({"iterationz": 3}, drop_unknown=True) == default_values()


def test_presets_builtin_and_saved(settings_dir):
    assert config_dir() == settings_dir  # the tests' folder (conftest), never the user's
    assert list(BUILTIN_PRESETS)[:3] == ["Quick look", "Balanced", "Best quality"]
    for values in BUILTIN_PRESETS.values():
        check_values(values)  # every built-in preset is valid
    quick = BUILTIN_PRESETS["Quick look"]
    assert find_preset("quick-look") == find_preset("QUICK_LOOK") == quick
    assert quick["size"] < BUILTIN_PRESETS["Best quality"]["size"]
    save_user_presets({"Mine": check_values({"iterations": 9})})
    assert find_preset("mine")["iterations"] == 9 and load_user_presets()["Mine"]["iterations"] == 9
    with pytest.raises(SettingsError, match="unknown preset 'nope' .*'Quick look'.*'Mine'"):
        find_preset("nope")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a napari-style-transfer settings"),
        ('{"a": 1}', "not a"),
    ],
)
def test_last_settings_round_trip_and_unusable_files(settings_dir, text, problem):
    assert load_last_settings() is None
    save_last_settings(check_values({"iterations": 77}))
    assert load_last_settings()["iterations"] == 77
    assert [p.name for p in settings_dir.iterdir()] == [LAST_SETTINGS_FILE]  # no temporary file left
    (settings_dir / LAST_SETTINGS_FILE).write_text(text)
    with pytest.raises(SettingsError, match=problem):
        load_last_settings()


def test_png_and_tiff_results_carry_their_settings(tmp_path):
    text = to_json(check_values({"iterations": 7}))
    image = np.zeros((5, 6, 3), np.uint8)
    for name in ("r.png", "r.tif"):
        write_image(tmp_path / name, image, text)
        assert read_description(tmp_path / name) == text
        assert read_settings_file(tmp_path / name)["iterations"] == 7
    write_stack(tmp_path / "s.tif", np.zeros((2, 5, 6), np.uint16), False, text)
    assert read_description(tmp_path / "s.tif") == text
    assert tifffile.imread(tmp_path / "s.tif").shape == (2, 5, 6)  # the shape is still read back
    write_image(tmp_path / "plain.png", image)
    assert read_description(tmp_path / "plain.png") is None and TEXT_KEY == "napari-style-transfer"


def test_cli_precedence_preset_then_config_file_then_flags(tmp_path):
    (tmp_path / "s.json").write_text(json.dumps({"iterations": 40, "style_weight": 5.0, "preview_every": 10}))
    argv = ["c.png", "s.png", "-o", "o.png", "--preset", "quick look", "--config", str(tmp_path / "s.json")]
    config, output = settings_from_args(build_parser().parse_args([*argv, "-n", "9", "--full-size"]))
    assert (config.size, config.multiscale) == (256, False)  # from the preset
    assert config.style_weight == 5.0  # from the file
    assert config.iterations == 9 and output == {"full_size": True}  # explicit flags win
    assert config.preview_every == 0  # the widget's preview rate never makes the CLI save images
    config, _ = settings_from_args(build_parser().parse_args([*argv, "--multiscale"]))
    assert config.iterations == 40 and config.multiscale  # --multiscale undoes the preset's off


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--preset", "nope"], "--preset: unknown preset 'nope'"),
        (["--config", "{content}"], "content.png: this image carries no settings"),
        (["--config", "{bad}"], "bad.json: iterations: must be 'auto' or an integer"),
        (["--config", "{tmp}/missing.json"], "--config: file not found"),
    ],
)
def test_cli_bad_settings_are_one_line_and_exit_2(
    tmp_path, content_image, style_image, capsys, extra, message
):
    write_image(tmp_path / "content.png", content_image)
    write_image(tmp_path / "style.png", style_image)
    (tmp_path / "bad.json").write_text('{"iterations": 0}')
    names = {"content": tmp_path / "content.png", "bad": tmp_path / "bad.json", "tmp": tmp_path}
    extra = [arg.format(**names) for arg in extra]
    code = run(
        [str(tmp_path / "content.png"), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png"), *extra]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize(
    "shape, rgb, dtype",
    [((4, 6, 3), True, np.uint8), ((2, 4, 6), False, np.uint16), ((4, 6), False, np.float64)],
)
def test_upsample_to_keeps_dtype_range_and_other_axes(shape, rgb, dtype):
    rng = np.random.default_rng(0)
    image = (rng.random(shape) * (255 if dtype == np.uint8 else 1000)).astype(dtype)
    big = upsample_to(image, (9, 13), rgb)
    expected = shape[:-3] + (9, 13, 3) if rgb else shape[:-2] + (9, 13)
    assert big.shape == expected and big.dtype == image.dtype
    assert big.min() >= image.min() and big.max() <= image.max()
    assert upsample_to(image, shape[-3:-1] if rgb else shape[-2:], rgb) is image


def test_a_painting_preset_after_keep_structure_paints_again():
    """'Keep structure' turns the Laplacian on and the deep style layers off; the other built-in
    presets set both back, so choosing one afterwards does not keep the structure mode."""
    from napari_style_transfer.engine import StyleConfig

    structure = BUILTIN_PRESETS["Keep structure"]
    assert structure["structure_weight"] > 0
    for name in ("Quick look", "Balanced", "Best quality"):
        values = {**structure, **BUILTIN_PRESETS[name]}
        config = StyleConfig(**{k: v for k, v in values.items()})
        assert config.structure_weight == 0 and config.style_layers == StyleConfig().style_layers, name
