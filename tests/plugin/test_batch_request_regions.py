"""Style regions in the widget's batches (Qt-free): a layer batch, an 'every slice' batch and a
folder batch plan each style row's region like a single run (outlines on the GUI thread), give the
engine its mask from ``guidance()`` (the worker thread), record it in the results' metadata and in
the settings that key the batch's resume; the canvas is refused by 'every slice' in its own words."""

from __future__ import annotations

import numpy as np
import pytest
from napari.layers import Image, Shapes
from PIL import Image as PILImage

from napari_style_transfer.batch.items import settings_id, settings_record
from napari_style_transfer.plugin.batch_request import prepare_batch
from napari_style_transfer.plugin.composite import Canvas
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.folder_request import prepare_folder
from napari_style_transfer.plugin.run_request import RunChoices
from napari_style_transfer.plugin.sources import GalleryChoice

PARAMS = dict(size=32, iterations=1, multiscale=False, preview_every=0, device="cpu", style_scale=1.0)


@pytest.fixture
def layers():
    rng = np.random.default_rng(0)
    photo = Image(rng.integers(0, 256, (24, 32), dtype=np.uint8), name="photo")
    other = Image(rng.integers(0, 256, (20, 20), dtype=np.uint8), name="other")
    style = Image(rng.integers(0, 256, (16, 32, 3), dtype=np.uint8), rgb=True, name="paint")
    area = Shapes([np.array([[2.2, 3.2], [9.8, 12.8]])], shape_type="rectangle", name="area")
    return photo, other, style, area


def expected_region() -> np.ndarray:
    mask = np.zeros((16, 32), bool)
    mask[3:10, 4:13] = True  # centres inside rows 2.2–9.8, columns 3.2–12.8
    return mask


def test_a_layer_batch_masks_each_style_and_records_its_region(layers):
    photo, other, style, area = layers
    styles = [(style, 1.0), (None, 1.0), (GalleryChoice("brick"), 1.0)]
    request = prepare_batch("layers", [photo, other], styles, PARAMS, style_regions=[area, None, None])
    guidance = request.guidance()
    region, none = guidance.style_masks
    assert none is None
    np.testing.assert_array_equal(region, expected_region())
    assert guidance.style_contrast_limits == request.style_request.style_contrast_limits
    for index, name in enumerate(("photo", "other")):
        meta = request.metadata(index)
        assert meta["content_layer"] == name and meta["style_regions"] == ["area", None]

    plain = prepare_batch("layers", [photo], styles, PARAMS).guidance()
    assert plain.style_masks is None and "style_regions" not in prepare_batch(
        "layers", [photo], styles, PARAMS
    ).metadata(0)
    record = settings_record(request.config, [np.zeros((16, 32, 3))], guidance)
    assert settings_id(record) != settings_id(settings_record(request.config, [np.zeros((16, 32, 3))], plain))


def test_every_slice_masks_the_style_and_the_stack_records_it(layers):
    _, _, style, area = layers
    stack = Image(np.random.default_rng(1).random((3, 16, 20)).astype(np.float32), name="stack")
    request = prepare_batch("slices", [stack], [(style, 1.0)], PARAMS, style_regions=[area])
    (region,) = request.guidance().style_masks
    np.testing.assert_array_equal(region, expected_region())
    assert request.total == 3 and request.metadata(0)["style_regions"] == ["area"]


def test_a_region_is_refused_as_in_a_single_run(layers):
    photo, _, style, _ = layers
    beside = Shapes([np.array([[200.0, 200.0], [210.0, 210.0]])], shape_type="rectangle", name="far")
    with pytest.raises(UserError, match="The style region 'far' does not lie over the style 'paint'"):
        prepare_batch("layers", [photo], [(style, 1.0)], PARAMS, style_regions=[beside])
    area = Shapes([np.array([[1.0, 1.0], [5.0, 5.0]])], shape_type="rectangle", name="area")
    with pytest.raises(UserError, match="The style region 'area' needs a style layer"):
        prepare_batch("layers", [photo], [(GalleryChoice("brick"), 1.0)], PARAMS, style_regions=[area])


def test_a_folder_batch_masks_the_style_and_its_results_record_the_region(layers, tmp_path):
    _, _, style, area = layers
    images = tmp_path / "in"
    images.mkdir()
    PILImage.fromarray(np.full((24, 24, 3), 90, np.uint8)).save(images / "a.png")
    choices = RunChoices(None, [(style, 1.0)], dict(PARAMS), style_regions=[area])
    request = prepare_folder(str(images), str(tmp_path / "out"), choices)
    (region,) = request.guidance().style_masks
    np.testing.assert_array_equal(region, expected_region())
    assert request.region_names == ["area"]
    plain = prepare_folder(str(images), str(tmp_path / "out"), RunChoices(None, [(style, 1.0)], dict(PARAMS)))
    assert plain.guidance().style_masks is None and plain.region_names is None


def test_the_canvas_is_refused_by_every_slice_in_its_own_words(layers):
    photo, _, style, _ = layers
    stack = Image(np.zeros((3, 16, 20), np.float32), name="stack")
    with pytest.raises(UserError) as found:
        prepare_batch("slices", [Canvas((stack, photo))], [(style, 1.0)], PARAMS)
    assert str(found.value) == (
        "Batch 'every slice' takes one image layer as the content, not the canvas; to stylise every "
        "slice of the canvas, set Stack to 'all slices' and turn Batch off."
    )
    with pytest.raises(UserError, match="not the canvas; turn Batch off to stylise the canvas") as flat:
        prepare_batch("slices", [Canvas((photo,))], [(style, 1.0)], PARAMS)
    assert "is 2D" not in str(flat.value)
