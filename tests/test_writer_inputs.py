"""File ▸ Save Layer (``_writer.write_result``) embeds how a result's inputs were made: the canvas
(its layers and how each was drawn), the mask (layer, table, kind) and each style's region (its
Shapes layer and box in the style's full-resolution pixels), in 7-bit JSON beside the settings.

Real layers (no viewer), a real plan (``prepare``) and its real metadata, real PNG and TIFF files.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from napari.layers import Image, Shapes

from napari_style_transfer._writer import write_result
from napari_style_transfer.files import read_description, write_image
from napari_style_transfer.plugin.composite import Canvas
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare
from napari_style_transfer.settings import check_values, read_settings_file, to_json
from napari_style_transfer.settings.values import document_inputs, read_settings_inputs

PARAMS = dict(size=24, iterations=2, multiscale=False, preview_every=1, device="cpu")


@pytest.fixture
def result():
    """A canvas run's result metadata, with a Shapes mask and a style region (a non-ASCII layer name)."""
    rng = np.random.default_rng(0)
    nuclei = Image(rng.random((24, 32)), colormap="green", blending="additive", name="núcleos")
    actin = Image(rng.random((24, 32)), colormap="magenta", blending="additive", name="actin")
    style = Image(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8), rgb=True, scale=(0.5, 0.5), name="paint")
    area = Shapes(name="area")
    area.add_rectangles(np.array([[2.1, 4.1], [12.9, 20.9]]))  # world → style rows 4.2–25.8, columns 8.2–41.8
    mask = Shapes(name="where")
    mask.add_rectangles(np.array([[-1.0, 15.6], [25.0, 33.0]]))
    choices = RunChoices(
        Canvas((nuclei, actin)),
        [(style, 1.0)],
        PARAMS,
        mask_layer=mask,
        label_styles={1: 0},
        style_regions=[area],
        point=(0.0, 0.0),
    )
    meta = result_metadata(prepare(choices))
    meta["canvas"]["layers"][1]["opacity"] = np.float32(
        0.5
    )  # a numpy number keeps nothing from being written
    return meta


@pytest.mark.parametrize("name", ["result.png", "result.tif"])
def test_save_layer_embeds_the_canvas_mask_and_regions_and_config_still_reads_it(tmp_path, result, name):
    path = tmp_path / name
    assert write_result(str(path), np.zeros((18, 24, 3), np.uint8), {"rgb": True, "metadata": result}) == [
        str(path)
    ]
    text = read_description(path)
    assert text.isascii()  # 7-bit: what a TIFF description may hold
    inputs = document_inputs(json.loads(text))
    assert inputs == read_settings_inputs(path)
    assert inputs["content"] == "canvas" and inputs["styles"] == ["paint"]
    layers = inputs["canvas"]["layers"]
    assert [r["name"] for r in layers] == ["núcleos", "actin"]
    assert [r["blending"] for r in layers] == ["additive", "additive"] and layers[1]["opacity"] == 0.5
    assert layers[0]["colormap"]["name"] == "green"
    assert inputs["mask"] == {"layer": "where", "label_styles": {"1": 0}, "kind": "Shapes"}
    ((region),) = inputs["style_regions"]
    assert region["layer"] == "area" and region["exact"] is True
    # style pixels: rows 4.2–25.8, columns 8.2–41.8 (data): pixel centres 5–25 and 9–41
    assert region["bounds"] == pytest.approx([9.0, 5.0, 42.0, 26.0])

    settings = read_settings_file(path)  # --config reads the settings as before
    checked = check_values(result["settings"])
    assert settings == {k: checked[k] for k in result["settings"]} and settings["iterations"] == 2


def test_old_documents_and_plain_settings_files_still_load(tmp_path):
    old = to_json({"iterations": 7}, inputs={"content": "cat", "styles": ["paint"]})  # before issue 25
    write_image(tmp_path / "old.png", np.zeros((8, 8, 3), np.uint8), old)
    assert read_settings_file(tmp_path / "old.png") == {"iterations": 7}
    assert read_settings_inputs(tmp_path / "old.png") == {"content": "cat", "styles": ["paint"]}
    (tmp_path / "plain.json").write_text('{"iterations": 9}')
    assert read_settings_file(tmp_path / "plain.json") == {"iterations": 9}
    assert read_settings_inputs(tmp_path / "plain.json") == {}
    write_image(tmp_path / "none.png", np.zeros((8, 8, 3), np.uint8))
    assert read_settings_inputs(tmp_path / "none.png") == {}  # no document: no inputs, no error
