"""The npe2 manifest is valid and napari finds the plugin through its entry point."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import npe2
import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = "napari-style-transfer"


def test_manifest_file_validates_and_declares_widget_and_sample():
    manifest = npe2.PluginManifest.from_file(ROOT / "napari.yaml")
    manifest.validate_imports()  # every python_name imports and resolves
    assert manifest.name == PLUGIN
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert commands[f"{PLUGIN}.make_widget"] == "napari_style_transfer._widget:StyleTransferWidget"
    assert commands[f"{PLUGIN}.sample_pair"] == "napari_style_transfer._sample_data:sample_pair"
    assert [w.display_name for w in manifest.contributions.widgets] == ["Style Transfer"]
    assert [s.key for s in manifest.contributions.sample_data] == ["cat_and_swirls"]


def test_packaged_manifest_is_the_root_one():
    packaged = ROOT / "src" / "napari_style_transfer" / "napari.yaml"
    assert packaged.read_text() == (ROOT / "napari.yaml").read_text()


def test_plugin_is_discovered_through_the_entry_point():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="napari.manifest") if ep.name == PLUGIN]
    assert len(eps) == 1 and eps[0].value == "napari_style_transfer:napari.yaml"
    pm = npe2.PluginManager()
    pm.discover(include_npe1=False)
    manifest = pm.get_manifest(PLUGIN)
    assert manifest.display_name == "Style Transfer"
    assert [w.display_name for w in pm.iter_widgets() if w.plugin_name == PLUGIN] == ["Style Transfer"]


def test_npe2_validate_cli():
    exe = shutil.which("npe2", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the npe2 command is not installed next to this Python")
    result = subprocess.run([exe, "validate", PLUGIN], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in (result.stdout + result.stderr).lower()
