"""The widget's corners, Qt-free (napari layer objects, no viewer): nD results laid over rotated
and sheared content, Continue that knows its layers by more than a name, labels of every
integer type, and masks that lie on another grid than the content."""

from __future__ import annotations

from types import SimpleNamespace

import dask.array as da
import numpy as np
import pytest
from napari.layers import Image, Labels
from scipy.spatial.transform import Rotation

from napari_style_transfer.engine.masks import check_labels, plan_regions, region_plane
from napari_style_transfer.plugin.batch_request import prepare_batch
from napari_style_transfer.plugin.continuation import continue_choices
from napari_style_transfer.plugin.faults import UserError
from napari_style_transfer.plugin.geometry import world_matrix
from napari_style_transfer.plugin.identity import layer_identity
from napari_style_transfer.plugin.result_metadata import result_metadata
from napari_style_transfer.plugin.run_request import RunChoices, prepare, prepare_run

PARAMS = dict(size=32, iterations=2, multiscale=False, preview_every=1, device="cpu")


def pixels(shape, seed=0, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, 255, shape).astype(dtype)


def style():
    return Image(pixels((32, 32, 3), 9), rgb=True, name="style")


# ----------------------------------------------------------------------------- nD results over rotated content

TILTED_3D = dict(
    scale=(2.0, 1.5, 0.5),
    translate=(3.0, -4.0, 10.0),
    rotate=Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix(),
    shear=[0.1, 0.2, 0.3],
    affine=np.array([[1.0, 0, 0, 0], [0, 1.0, 0.2, 1.0], [0, 0, 1.0, -2.0], [0, 0, 0, 1.0]]),
)


def corners(h, w):
    """Data coordinates of a slice's outer pixel corners and its centre."""
    return [(-0.5, -0.5), (h - 0.5, w - 0.5), (-0.5, w - 0.5), (h - 0.5, -0.5), ((h - 1) / 2, (w - 1) / 2)]


def assert_laid_over(content, result, pairs):
    """Each (content slice, result slice) pair's corners land on the same world points."""
    hc, wc = content.data.shape[content.ndim - 2 : content.ndim]  # an RGB layer's colour axis is no axis
    hr, wr = result.data.shape[result.ndim - 2 : result.ndim]
    for c_lead, r_lead in pairs:
        for c_point, r_point in zip(corners(hc, wc), corners(hr, wr)):
            np.testing.assert_allclose(
                content.data_to_world((*c_lead, *c_point)),
                result.data_to_world((*r_lead, *r_point)),
                atol=1e-9,
            )


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")
def test_nd_results_share_the_rotated_and_sheared_contents_transform():
    content = Image(pixels((3, 40, 60)), name="tilted", **TILTED_3D)
    # the current slice (slice 2): a one-slice result laid over that slice
    point = content.data_to_world((2, 0, 0))
    request = prepare_run(content, [(style(), 1.0)], PARAMS, stack="slice", point=point)
    hw = request.sizes[-1]
    assert request.slice_index == (2,) and hw == (21, 32)  # smaller than the content: its own scale
    result = Image(np.zeros((1, *hw)), **request.placement(hw))
    assert_laid_over(content, result, [((2,), (0,))])
    # all slices, and a batch of every slice: one nD result over the whole stack
    for run in (
        prepare_run(content, [(style(), 1.0)], PARAMS, stack="all"),
        prepare_batch("slices", [content], [(style(), 1.0)], PARAMS).runs[0],
    ):
        hw = run.sizes[-1]
        result = Image(np.zeros((3, *hw)), **run.placement(hw))
        assert_laid_over(content, result, [((k,), (k,)) for k in range(3)])


@pytest.mark.filterwarnings("ignore:Non-orthogonal slicing")
def test_a_rotated_4d_content_and_a_2d_one_are_laid_over_too():
    rotate4 = np.eye(4)
    rotate4[1:, 1:] = Rotation.from_euler("z", 25, degrees=True).as_matrix()
    content = Image(
        pixels((2, 3, 20, 30)), scale=(1.0, 2.0, 0.5, 3.0), rotate=rotate4, shear=np.arange(6) / 10
    )
    request = prepare_run(
        content, [(style(), 1.0)], PARAMS, stack="slice", point=content.data_to_world((1, 2, 0, 0))
    )
    hw = request.sizes[-1]
    assert_laid_over(content, Image(np.zeros((1, 1, *hw)), **request.placement(hw)), [((1, 2), (0, 0))])
    flat = Image(pixels((40, 60, 3)), rgb=True, rotate=30, shear=[0.2], scale=(1.5, 3.0))
    request = prepare_run(flat, [(style(), 1.0)], PARAMS)
    hw = request.sizes[-1]
    assert_laid_over(flat, Image(np.zeros(hw), **request.placement(hw)), [((), ())])


def test_world_matrix_is_the_layers_own_data_to_world_transform():
    content = Image(pixels((3, 40, 60)), **TILTED_3D)
    point = np.array([1.0, 7.0, 11.0, 1.0])
    np.testing.assert_allclose(
        (world_matrix(content) @ point)[:3], content.data_to_world(point[:3]), atol=1e-12
    )


# ----------------------------------------------------------------------------- Continue knows its layers


@pytest.fixture
def made():
    """A content, a style layer, a mask and a result layer recording a run of them."""
    content = Image(pixels((24, 32, 3)), rgb=True, name="photo")
    paint = Image(pixels((24, 32, 3), 1), rgb=True, name="paint")
    mask = Labels(np.ones((24, 32), np.int32), name="regions")
    request = prepare(RunChoices(content, [(paint, 1.0)], PARAMS, mask_layer=mask, label_styles={1: 0}))
    result = Image(np.zeros((24, 32, 3), np.uint8), rgb=True, name="photo stylised")
    result.metadata = result_metadata(request)
    return SimpleNamespace(content=content, style=paint, mask=mask, result=result)


def layers_with(made, **swapped):
    names = ("content", "style", "mask", "result")
    return [swapped.get(name, getattr(made, name)) for name in names]


@pytest.mark.parametrize(
    ("role", "other", "message"),
    [
        (
            "content",
            Image(pixels((50, 32, 3)), rgb=True, name="photo"),
            "The content layer 'photo' is no longer the image this result was made from "
            "(its size changed from 24×32×3 to 50×32×3); give that image the name 'photo' again",
        ),
        ("content", Image(pixels((24, 32, 3), 5), rgb=True, name="photo"), "(its pixels are not the same)"),
        (
            "content",
            Image(pixels((24, 32, 3), dtype=np.uint16), rgb=True, name="photo"),
            "from uint8 to uint16",
        ),
        ("content", Image(pixels((24, 32)), name="photo"), "its size changed from 24×32×3 to 24×32"),
        (
            "content",
            Labels(np.zeros((24, 32), np.int32), name="photo"),
            "it was an Image layer and is a Labels layer now",
        ),
        (
            "style",
            Image(pixels((24, 32, 3), 6), rgb=True, name="paint"),
            "The style layer 'paint' is no longer",
        ),
        (
            "mask",
            Labels(np.ones((12, 32), np.int32), name="regions"),
            "The mask layer 'regions' is no longer the labels",
        ),
    ],
)
def test_continue_refuses_another_image_under_the_recorded_name(made, role, other, message):
    with pytest.raises(UserError, match="no longer the") as caught:
        continue_choices(made.result, layers_with(made, **{role: other}), 10)
    assert message in str(caught.value)
    assert str(caught.value).count(". ") == 0 and str(caught.value).endswith("to continue.")


def test_continue_takes_the_same_images_reopened_a_painted_mask_and_old_results(made):
    # the same pixels in new layer objects (as after saving and opening again): the same images
    reopened = Image(np.array(made.content.data), rgb=True, name="photo")
    painted = Labels(np.array(made.mask.data), name="regions")
    painted.data[:4, :4] = 2  # painting a mask is an edit, not another mask
    choices = continue_choices(made.result, layers_with(made, content=reopened, mask=painted), 10)
    assert choices.content is reopened and choices.mask_layer is painted
    # a result made before identities were recorded: found by name only, as before
    del made.result.metadata["input_identities"]
    other = Image(pixels((50, 32, 3)), rgb=True, name="photo")
    assert continue_choices(made.result, layers_with(made, content=other), 10).content is other


def test_an_identity_reads_no_lazy_data_and_is_plain_json():
    computed = []

    def count(block):
        computed.append(block.shape)
        return block

    lazy = da.zeros((64, 64), dtype=np.uint16, chunks=32).map_blocks(count, dtype=np.uint16)
    layer = Image(lazy, contrast_limits=(0, 1), name="lazy")
    computed.clear()  # napari itself reads a little when the layer is made
    identity = layer_identity(layer)
    assert computed == [] and "fingerprint" not in identity
    assert identity == {"kind": "Image", "shape": [64, 64], "dtype": "uint16", "ndim": 2, "rgb": False}
    in_memory = layer_identity(Image(pixels((64, 64)), name="x"))
    assert isinstance(in_memory["fingerprint"], str)


# ----------------------------------------------------------------------------- labels of every integer type


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (np.uint64, (2**64 - 1, 2**63 + 5)),
        (np.int8, (-128, -5)),
        (np.int64, (-(2**63), 2**63 - 1)),
        (bool, (1,)),
    ],
)
def test_labels_of_any_integer_type_map_to_their_styles(dtype, values):
    content = Image(pixels((32, 32, 3)), rgb=True, name="c")
    labels = np.zeros((32, 32), dtype)
    labels[:, 16:] = values[0]
    if len(values) > 1:
        labels[:8] = values[1]
    mask = Labels(labels, name="m")
    before = np.array(mask.data)
    table = {value: i for i, value in enumerate(values)}
    styles = [(style(), 1.0), (Image(pixels((32, 32, 3), 3), rgb=True, name="s2"), 1.0)]
    request = prepare_run(content, styles, PARAMS, mask_layer=mask, label_styles=table)
    read = request.read().content_mask
    shown = check_labels(read, (32, 32))
    assert sorted(int(v) for v in np.unique(shown)) == sorted({0, *values})
    regions = plan_regions(shown, request.label_styles, 2)
    assert {label: region.style for region in regions for label in region.labels} == table
    for region in regions:
        expected = np.isin(np.asarray(mask.data), [v for v in values if table[v] == region.style])
        np.testing.assert_array_equal(region_plane(shown, region.labels), expected)
    np.testing.assert_array_equal(mask.data, before)


# ----------------------------------------------------------------------------- masks on another grid


def mask_run(content, mask, table=None):
    request = prepare_run(content, [(style(), 1.0)], PARAMS, mask_layer=mask, label_styles=table or {1: 0})
    return request.read().content_mask


def blocks(n=16):
    """An (n, n) label image of distinct values per pixel."""
    return (np.arange(n * n).reshape(n, n) % 251 + 1).astype(np.int32)


def test_a_mask_at_another_scale_and_translation_is_resampled_onto_the_contents_pixels():
    content = Image(pixels((32, 32, 3)), rgb=True, name="photo")
    # half resolution, pixel i covering content pixels 2i and 2i + 1
    small = blocks()
    read = mask_run(content, Labels(small, name="half", scale=(2, 2), translate=(0.5, 0.5)), {1: 0})
    np.testing.assert_array_equal(read, np.kron(small, np.ones((2, 2), np.int32)))
    # the same size, moved down 8 px: the top 8 rows lie beyond the mask (label 0)
    labels = blocks(32)
    read = mask_run(content, Labels(labels, name="moved", translate=(8, 0)), {1: 0})
    np.testing.assert_array_equal(read[8:], labels[:24])
    assert not read[:8].any()
    # content at half scale (pixels 2i and 2i + 1 inside mask pixel i): it sees the mask's top-left quarter
    half = Image(pixels((32, 32, 3)), rgb=True, name="half", scale=(0.5, 0.5), translate=(-0.25, -0.25))
    read = mask_run(half, Labels(labels, name="big"), {1: 0})
    np.testing.assert_array_equal(read, labels[np.ix_(np.arange(32) // 2, np.arange(32) // 2)])
    # both layers rotated alike, and a 2D mask over a stack: one grid, used pixel for pixel
    tilted = Image(pixels((32, 32, 3)), rgb=True, name="t", rotate=30, scale=(2, 2))
    np.testing.assert_array_equal(mask_run(tilted, Labels(labels, rotate=30, scale=(2, 2))), labels)
    stack = Image(pixels((3, 32, 32)), name="stack", scale=(4, 1, 1), translate=(9, 0, 0))
    np.testing.assert_array_equal(mask_run(stack, Labels(labels, name="m")), labels)


@pytest.mark.parametrize(
    ("mask", "content", "message"),
    [
        (
            dict(rotate=30),
            {},
            "The mask 'm' is rotated or sheared against 'photo' in the viewer; give the mask the content's "
            "rotation and shear",
        ),
        (dict(shear=[0.3]), {}, "The mask 'm' is rotated or sheared against 'photo'"),
        ({}, dict(rotate=90), "The mask 'm' is rotated or sheared against 'photo'"),
        (dict(translate=(100, 100)), {}, "The mask 'm' does not overlap 'photo' in the viewer"),
    ],
)
def test_a_rotated_sheared_or_distant_mask_is_refused_in_one_sentence(mask, content, message):
    photo = Image(pixels((32, 32, 3)), rgb=True, name="photo", **content)
    with pytest.raises(UserError) as caught:
        mask_run(photo, Labels(blocks(32), name="m", **mask))
    assert str(caught.value).startswith(message)
    assert str(caught.value).count(". ") == 0


def test_a_stack_rotated_out_of_its_plane_refuses_a_2d_mask():
    stack = Image(pixels((3, 32, 32)), name="stack", rotate=TILTED_3D["rotate"])
    with pytest.raises(UserError, match="The mask 'm' is rotated or sheared against 'stack'"):
        mask_run(stack, Labels(blocks(32), name="m"))
