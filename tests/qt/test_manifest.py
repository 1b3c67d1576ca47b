"""The npe2 manifest: valid, inside the package, found through the entry point, and in napari's menus."""

from __future__ import annotations

import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import npe2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PLUGIN, WIDGET = "napari-style-transfer", "Style Transfer"
PACKAGED = Path(str(files("napari_style_transfer") / "napari.yaml"))


def test_manifest_validates_and_declares_widget_sample_menu_and_category():
    manifest = npe2.PluginManifest.from_file(PACKAGED)
    manifest.validate_imports()  # every python_name imports and resolves
    assert manifest.name == PLUGIN
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands[f"{PLUGIN}.make_widget"] == "napari_style_transfer._qt.widget:StyleTransferWidget"
    assert commands[f"{PLUGIN}.sample_pair"] == "napari_style_transfer._sample_data:sample_pair"
    assert [w.display_name for w in manifest.contributions.widgets] == [WIDGET]
    keys = [s.key for s in manifest.contributions.sample_data]
    assert keys == ["cat_and_swirls", "stained_glass", "brick", "gravel", "hubble"]
    # File ▸ Save Layer: a result with the run's settings, and a time series as a movie.
    writer, movie_writer = manifest.contributions.writers
    assert commands[writer.command] == "napari_style_transfer._writer:write_result"
    assert writer.layer_types == ["image"] and writer.filename_extensions == [".png", ".tif", ".tiff"]
    assert commands[movie_writer.command] == "napari_style_transfer._writer:write_movie_layer"
    assert set(movie_writer.filename_extensions) == {".mp4", ".gif", ".webp"}
    (reader,) = manifest.contributions.readers  # movies, opened lazily
    assert commands[reader.command] == "napari_style_transfer._reader:get_reader"
    assert set(reader.filename_patterns) >= {"*.mp4", "*.mov", "*.avi", "*.webm"}
    menus = manifest.contributions.menus
    assert [item.command for item in menus["napari/layers/filter"]] == [f"{PLUGIN}.make_widget"]
    assert [str(c) for c in manifest.categories] == ["Image Processing"]
    assert manifest.visibility == "public"


def test_manifest_is_one_real_file_inside_the_package():
    """Not a symlink (git for Windows checks symlinks out as a text file), and no root copy."""
    assert PACKAGED.is_file() and not PACKAGED.is_symlink()
    assert PACKAGED.read_text(encoding="utf-8").startswith("name: napari-style-transfer\n")
    assert not (ROOT / "napari.yaml").exists()


def test_plugin_is_discovered_through_the_entry_point():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="napari.manifest") if ep.name == PLUGIN]
    assert len(eps) == 1 and eps[0].value == "napari_style_transfer:napari.yaml"
    pm = npe2.PluginManager()
    pm.discover(include_npe1=False)
    manifest = pm.get_manifest(PLUGIN)
    assert manifest.display_name == WIDGET
    assert [w.display_name for w in pm.iter_widgets() if w.plugin_name == PLUGIN] == [WIDGET]


def test_npe2_validate_cli_with_imports():
    """What `npe2 validate napari-style-transfer` says of the installed distribution."""
    cmd = [sys.executable, "-m", "npe2", "validate", PLUGIN, "--imports"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "valid" in out.lower() and "invalid" not in out.lower()


def _menu_actions(menu, path=()):
    for action in menu.actions():
        if action.menu() is not None:
            yield from _menu_actions(action.menu(), (*path, action.text().replace("&", "")))
        else:
            yield path, action


def test_layers_filter_menu_opens_the_widget(make_napari_viewer):
    viewer = make_napari_viewer()
    found = [
        action
        for path, action in _menu_actions(viewer.window.layers_menu)
        if path == ("Filter",) and action.text().startswith(WIDGET)
    ]
    assert len(found) == 1 and found[0].isEnabled()
    found[0].trigger()
    assert any(name.startswith(WIDGET) for name in viewer.window.dock_widgets)


def test_every_gallery_sample_makes_a_style_layer():
    """File ▸ Open Sample lists the gallery's styles besides the pair; each gives one uint8 layer."""
    from importlib import import_module

    from napari_style_transfer.samples import GALLERY

    manifest = npe2.PluginManifest.from_file(PACKAGED)
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    for sample in manifest.contributions.sample_data[1:]:
        module, name = commands[sample.command].split(":")
        ((data, kwargs, kind),) = getattr(import_module(module), name)()
        assert kind == "image" and data.dtype == np.uint8 and data.ndim in (2, 3)
        assert kwargs["name"] == f"{GALLERY[sample.key].name} (style)"
