"""Real-world image files, as cameras, scanners and other programs write them (issue 14).

Generated families, one file per case, written in the test by Pillow or tifffile:

* every Pillow mode in every format Pillow can save it to (and TIFF compressions tifffile
  cannot decode without optional codecs); the oracle is Pillow's own reading of the same
  file, shown as a viewer shows it;
* the eight EXIF / TIFF orientations;
* palettes with and without transparency, gray + alpha;
* animations and multi-page files, with and without ``--stack``;
* single-channel TIFF layouts and photometric interpretations;
* 16-bit and float files with extreme or non-finite values.

Reading is checked through ``files.read_image`` (what the CLI reads with); a
sample of each family also goes through the whole CLI (tiny sizes, one iteration).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, read_stack

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["-q", "--size", "32", "--iterations", "1", "--no-multiscale"]
PREFIX = "napari-style-transfer: error: "
RNG = np.random.default_rng(14)
BASE = Image.fromarray((RNG.random((21, 30, 3)) * 255).astype(np.uint8))  # H ≠ W: orientation shows

#: Pillow mode → how to make it from BASE.
MODES = {
    "1": lambda: BASE.convert("1"),
    "L": lambda: BASE.convert("L"),
    "LA": lambda: _with_alpha(BASE.convert("L"), "LA"),
    "P": lambda: BASE.convert("P"),
    "P+transparency": lambda: _transparent_palette(),
    "PA": lambda: _with_alpha(BASE.convert("P"), "PA"),
    "RGB": lambda: BASE,
    "RGBA": lambda: _with_alpha(BASE, "RGBA"),
    "RGBX": lambda: BASE.convert("RGBX"),
    "CMYK": lambda: BASE.convert("CMYK"),
    "YCbCr": lambda: BASE.convert("YCbCr"),
    "LAB": lambda: BASE.convert("LAB"),
    "HSV": lambda: BASE.convert("HSV"),
    "I;16": lambda: Image.fromarray((RNG.random((21, 30)) * 65535).astype(np.uint16)),
    "I;16B": lambda: Image.fromarray((RNG.random((21, 30)) * 65535).astype(np.uint16)).convert("I;16B"),
    "I": lambda: Image.fromarray((RNG.random((21, 30)) * 2**31 - 2**30).astype(np.int32)),
    "F": lambda: Image.fromarray((RNG.random((21, 30)) * 1e6 - 5e5).astype(np.float32)),
}
FORMATS = {"png": "PNG", "jpg": "JPEG", "tif": "TIFF", "gif": "GIF", "bmp": "BMP", "webp": "WEBP"}
#: Kept dtypes: what the file holds comes back in its own dtype.
KEPT_DTYPES = {"I;16": np.uint16, "I;16B": np.uint16, "I": np.int32, "F": np.float32}


def _with_alpha(image: Image.Image, mode: str) -> Image.Image:
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, image.width, dtype=np.uint8), (image.height, 1)))
    out = image.convert(mode)
    out.putalpha(alpha)
    return out


def _transparent_palette() -> Image.Image:
    image = BASE.convert("P")
    image.info["transparency"] = int(np.asarray(image)[0, 0])
    return image


def _viewer(path) -> np.ndarray:
    """What a viewer shows: Pillow's reading, upright, in the layout the engine takes.

    Palettes looked up, any transparency or alpha → RGBA, 1-bit → 8-bit gray, colour models
    other than RGB → RGB; 16-bit, 32-bit and float gray keep their values.
    """
    with Image.open(path) as image:
        image = (
            ImageOps.exif_transpose(image) if image.format != "TIFF" else image
        )  # Pillow turns TIFFs itself
        image.load()
        mode, alpha = (
            image.mode,
            "transparency" in image.info or image.mode in ("LA", "La", "PA", "RGBA", "RGBa"),
        )
        if alpha:
            target = "RGBA"
        elif mode in ("L", "RGB", "I", "F") or mode.startswith("I;16"):
            target = mode
        else:
            target = "L" if mode == "1" else "RGB"
        array = np.asarray(image if target == mode else image.convert(target))
    return array.astype(array.dtype.newbyteorder("="))


def _saved_cases():
    for mode in MODES:
        for suffix, fmt in FORMATS.items():
            try:
                MODES[mode]().save(io.BytesIO(), fmt)
            except (OSError, ValueError, KeyError, TypeError):
                continue  # Pillow cannot save this mode in this format
            yield mode, suffix


SAVED = list(_saved_cases())
EXTRA_TIFFS = [
    ("RGB", "tiff_lzw"),
    ("RGB", "jpeg"),
    ("RGBA", "tiff_adobe_deflate"),
    ("L", "packbits"),
    ("1", "group4"),
]


def _accepted_layout(array: np.ndarray) -> bool:
    return array.ndim == 2 or (array.ndim == 3 and array.shape[-1] in (1, 3, 4))


@pytest.mark.parametrize(("mode", "suffix"), SAVED, ids=[f"{m}-{s}" for m, s in SAVED])
def test_every_pillow_mode_reads_as_a_viewer_shows_it(mode, suffix, tmp_path):
    path = tmp_path / f"image.{suffix}"
    MODES[mode]().save(path, FORMATS[suffix])
    array = read_image(path)
    assert _accepted_layout(array), (mode, suffix, array.shape)
    expected = _viewer(path)
    assert array.shape == expected.shape and array.dtype == expected.dtype, (array.shape, expected.shape)
    tolerance = 1 if suffix in ("tif", "tiff") and mode in ("CMYK",) else 0  # own CMYK → RGB rounding
    np.testing.assert_allclose(array.astype(np.float64), expected.astype(np.float64), atol=tolerance)
    if suffix in ("png", "tif") and mode in KEPT_DTYPES:
        assert array.dtype == KEPT_DTYPES[mode]


@pytest.mark.parametrize(("mode", "compression"), EXTRA_TIFFS, ids=[c for _, c in EXTRA_TIFFS])
def test_tiff_compressions_that_tifffile_cannot_decode_are_read(mode, compression, tmp_path):
    path = tmp_path / "scan.tif"
    MODES[mode]().save(path, "TIFF", compression=compression)
    array = read_image(path)
    np.testing.assert_array_equal(array, _viewer(path))


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["jpg", "png", "tif"])
def test_orientation_is_applied_like_a_viewer(orientation, fmt, tmp_path):
    path = tmp_path / f"photo.{fmt}"
    if fmt == "tif":
        tifffile.imwrite(
            path, np.asarray(BASE), photometric="rgb", extratags=[(274, 3, 1, orientation, True)]
        )
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        BASE.save(path, {"jpg": "JPEG", "png": "PNG"}[fmt], exif=exif)
    if fmt == "tif":  # (Pillow turns a TIFF itself while loading it)
        stored = tifffile.imread(path)
    else:
        with Image.open(path) as image:
            stored = np.asarray(image.convert("RGB"))  # the pixels as stored, before turning
    expected = _turned(stored, orientation)
    array = read_image(path)
    assert array.shape == expected.shape == ((30, 21, 3) if orientation >= 5 else (21, 30, 3))
    np.testing.assert_array_equal(array, expected)


def _turned(array: np.ndarray, orientation: int) -> np.ndarray:
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = orientation
    return np.asarray(ImageOps.exif_transpose(image))


def test_a_turned_photo_is_stylised_upright(tmp_path, style_image, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: stored landscape, shown portrait
    BASE.save(tmp_path / "phone.jpg", exif=exif)
    Image.fromarray(style_image).save(tmp_path / "style.png")
    out = tmp_path / "out.png"
    assert run([*FAST, str(tmp_path / "phone.jpg"), str(tmp_path / "style.png"), "-o", str(out)]) == 0, (
        capsys.readouterr().err
    )
    assert read_image(out).shape == (32, 22, 3)  # portrait, like the viewer (landscape would be 22×32)


# --- palettes, transparency, gray + alpha through the whole CLI --------------------------------------

CLI_MODES = ["1", "LA", "P+transparency", "PA", "CMYK", "YCbCr", "I;16", "F"]


@pytest.mark.parametrize("mode", CLI_MODES)
def test_files_of_each_colour_model_run_through_the_cli(mode, tmp_path, style_image, capsys):
    suffix = next(s for m, s in SAVED if m == mode and s in ("png", "tif", "jpg"))
    path = tmp_path / f"content.{suffix}"
    MODES[mode]().save(path, FORMATS[suffix])
    Image.fromarray(style_image).save(tmp_path / "style.png")
    out = tmp_path / "out.tif"
    code = run([*FAST, str(path), str(tmp_path / "style.png"), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    result, expected = tifffile.imread(out), _viewer(path)
    assert result.dtype == expected.dtype and result.shape[2:] == expected.shape[2:]
    if expected.ndim == 3 and expected.shape[-1] == 4:  # the alpha is kept (resized)
        assert result[..., 3].std() > 0


# --- animations and multi-page files -----------------------------------------------------------------


def _frames(n: int = 3) -> list[Image.Image]:
    return [Image.fromarray(np.roll(np.asarray(BASE), 5 * i, axis=1)) for i in range(n)]


def _animation(tmp_path, kind: str):
    frames = _frames()
    if kind == "gif":
        path = tmp_path / "anim.gif"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    elif kind == "apng":
        path = tmp_path / "anim.png"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    elif kind == "webp":
        path = tmp_path / "anim.webp"
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, lossless=True)
    elif kind == "tiff-lzw":  # multi-page, compressed: tifffile needs codecs it may not have
        path = tmp_path / "pages.tif"
        frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw")
    else:
        path = tmp_path / "pages.tif"
        tifffile.imwrite(path, np.stack([np.asarray(f) for f in frames]), photometric="rgb")
    return path


ANIMATIONS = ["gif", "apng", "webp", "tiff-lzw", "tiff"]


@pytest.mark.parametrize("kind", ANIMATIONS)
def test_animations_without_stack_are_one_sentence_that_names_stack(kind, tmp_path, style_image, capsys):
    path = _animation(tmp_path, kind)
    Image.fromarray(style_image).save(tmp_path / "style.png")
    code = run([*FAST, str(path), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(PREFIX), err
    assert "--stack" in err and "is not a 2D image" in err
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("kind", ANIMATIONS)
def test_animations_with_stack_stylise_every_frame(kind, tmp_path, style_image, capsys):
    path = _animation(tmp_path, kind)
    array, rgb = read_stack(path)
    assert array.shape == (3, 21, 30, 3) and rgb is True
    with Image.open(path) as image:  # as Pillow shows the second frame (GIF frames are quantised)
        image.seek(1)
        second = np.asarray(image.convert("RGB")) if kind != "tiff" else np.asarray(_frames()[1])
    np.testing.assert_array_equal(array[1], second)
    Image.fromarray(style_image).save(tmp_path / "style.png")
    out = tmp_path / "o.tif"
    code = run([*FAST, "--stack", "--no-coherence", str(path), str(tmp_path / "style.png"), "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert tifffile.imread(out).shape == (3, 22, 32, 3)


def test_an_animated_style_is_refused_in_one_sentence(tmp_path, content_image, capsys):
    Image.fromarray(content_image).save(tmp_path / "content.png")
    path = _animation(tmp_path, "gif")
    code = run([*FAST, str(tmp_path / "content.png"), str(path), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip()
    assert (
        code == 2 and len(err.splitlines()) == 1 and err.startswith(PREFIX + "style: shape (3, 21, 30, 3)")
    ), err


# --- TIFF layouts and photometric interpretations ----------------------------------------------------

GRAY = (RNG.random((21, 30)) * 60000).astype(np.uint16)
COLOUR = (RNG.random((21, 30, 3)) * 255).astype(np.uint8)
ALPHA = np.tile(np.linspace(0, 255, 30, dtype=np.uint8), (21, 1))
GRAY_ALPHA = np.dstack([COLOUR[..., 0], ALPHA])
TIFF_LAYOUTS = {
    # name: (data written, tifffile keywords, what the reader must return)
    "(1, H, W)": (GRAY[None], {"photometric": "minisblack"}, GRAY),
    "(H, W, 1)": (GRAY[..., None], {"photometric": "minisblack"}, GRAY[..., None]),
    "ImageJ TZCYX of ones": (GRAY[None, None, None], {"imagej": True}, GRAY),
    "planar RGB": (np.moveaxis(COLOUR, -1, 0), {"photometric": "rgb", "planarconfig": "separate"}, COLOUR),
    "planar RGBA": (
        np.moveaxis(np.dstack([COLOUR, ALPHA]), -1, 0),
        {"photometric": "rgb", "planarconfig": "separate", "extrasamples": ["unassalpha"]},
        np.dstack([COLOUR, ALPHA]),
    ),
    "gray + alpha": (
        GRAY_ALPHA,
        {"photometric": "minisblack", "extrasamples": ["unassalpha"]},
        np.dstack([GRAY_ALPHA[..., :1].repeat(3, -1), ALPHA]),
    ),
    "RGB + padding sample": (
        np.dstack([COLOUR, ALPHA]),
        {"photometric": "rgb", "extrasamples": ["unspecified"]},
        COLOUR,
    ),
    "min-is-white": (255 - COLOUR[..., 0], {"photometric": "miniswhite"}, COLOUR[..., 0]),
    "min-is-white 1-bit": (
        COLOUR[..., 0] < 128,
        {"photometric": "miniswhite"},
        np.where(COLOUR[..., 0] < 128, 0, 255).astype(np.uint8),
    ),
    "1-bit": (
        COLOUR[..., 0] >= 128,
        {"photometric": "minisblack"},
        np.where(COLOUR[..., 0] >= 128, 255, 0).astype(np.uint8),
    ),
    "big-endian uint16": (GRAY.astype(">u2"), {"photometric": "minisblack", "byteorder": ">"}, GRAY),
    "float64": (GRAY.astype(np.float64) / 7, {"photometric": "minisblack"}, GRAY.astype(np.float64) / 7),
}


@pytest.mark.parametrize("name", list(TIFF_LAYOUTS))
def test_tiff_layouts_read_in_the_engines_layouts(name, tmp_path):
    data, keywords, expected = TIFF_LAYOUTS[name]
    path = tmp_path / "layout.tif"
    tifffile.imwrite(path, data, **keywords)
    array = read_image(path)
    assert array.shape == expected.shape and array.dtype == expected.dtype.newbyteorder("="), (
        array.shape,
        array.dtype,
    )
    np.testing.assert_array_equal(array, expected)


def test_two_unspecified_channels_are_explained_not_guessed(tmp_path, style_image, capsys):
    tifffile.imwrite(
        tmp_path / "two.tif", np.dstack([GRAY, GRAY // 2]), photometric="minisblack", planarconfig="contig"
    )
    Image.fromarray(style_image).save(tmp_path / "style.png")
    code = run([*FAST, str(tmp_path / "two.tif"), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith(PREFIX) and "has 2 channels" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("bits", [8, 16])
def test_palette_tiffs_are_looked_up(bits, tmp_path):
    indices = (RNG.random((21, 30)) * 4).astype(np.uint8)
    colormap = (RNG.random((3, 256)) * 255).astype(np.uint16) * (257 if bits == 16 else 256)
    colormap[:, 0] = 65535 if bits == 16 else 255 * 256
    colormap[0, 1] = 12345 if bits == 16 else colormap[0, 1]  # a true 16-bit palette entry
    tifffile.imwrite(tmp_path / "palette.tif", indices, photometric="palette", colormap=colormap)
    array = read_image(tmp_path / "palette.tif")
    assert array.shape == (21, 30, 3)
    lookup = np.moveaxis(colormap, 0, -1)[indices]
    np.testing.assert_array_equal(array, lookup if bits == 16 else (lookup // 256).astype(np.uint8))


# --- 16-bit and float files with extreme or non-finite values ----------------------------------------

EXTREMES = {
    "uint16 all zero": np.zeros((20, 24), np.uint16),
    "uint16 all max": np.full((20, 24), 65535, np.uint16),
    "uint16 only 0 and max": np.where(RNG.random((20, 24)) > 0.5, 65535, 0).astype(np.uint16),
    "uint16 RGB at max": np.full((20, 24, 3), 65535, np.uint16),
    "float32 at ±max": np.where(RNG.random((20, 24)) > 0.5, 3.4e38, -3.4e38).astype(np.float32),
    "float32 NaN and inf": np.array([np.nan, np.inf, -np.inf, 0.5], np.float32)[RNG.integers(0, 4, (20, 24))],
    "float32 all NaN": np.full((20, 24), np.nan, np.float32),
    "float32 all +inf": np.full((20, 24), np.inf, np.float32),
    "float64 across the range": RNG.choice([-1.7e308, -1.0, 0.0, 5e-324, 1e300, 1.7e308], (20, 24)),
    "float64 constant at max": np.full((20, 24), 1.7976931348623157e308),
    "float64 subnormal": RNG.random((20, 24)) * 1e-310,
    "float16 with inf": np.where(RNG.random((20, 24, 3)) > 0.9, np.inf, RNG.random((20, 24, 3)) * 6e4).astype(
        np.float16
    ),
    "int32 extremes": np.where(RNG.random((20, 24)) > 0.5, 2**31 - 1, -(2**31)).astype(np.int32),
}


@pytest.mark.parametrize("name", list(EXTREMES))
def test_extreme_and_non_finite_values_give_a_finite_result_in_the_files_dtype(
    name, tmp_path, style_image, capsys
):
    data = EXTREMES[name]
    path = tmp_path / "values.tif"
    tifffile.imwrite(path, data, photometric="rgb" if data.ndim == 3 else "minisblack")
    Image.fromarray(style_image).save(tmp_path / "style.png")
    out = tmp_path / "out.tif"
    code = run([*FAST, str(path), str(tmp_path / "style.png"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0 and "warning" not in err.lower(), err
    result = tifffile.imread(out)
    assert result.dtype == data.dtype and result.shape[2:] == data.shape[2:]
    if result.dtype.kind == "f":
        assert np.isfinite(result).all()
        finite = data[np.isfinite(data)].astype(np.float64)
        if finite.size and finite.min() < finite.max():  # (a constant image maps to [low, low + 1])
            low, high = (
                (0.0, 1.0) if finite.min() >= 0 and finite.max() <= 1 else (finite.min(), finite.max())
            )
            assert result.min() >= low and result.max() <= high
    np.testing.assert_array_equal(tifffile.imread(path), data)  # the file is untouched
