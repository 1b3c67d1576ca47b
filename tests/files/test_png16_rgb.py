"""uint16 colour results saved as PNG keep 16 bits (were: divided by 257 to 8 bits, silently).

Real files written by the project's writer, read back by its reader and by an independent
decoder (zlib + struct, below); real CLI runs.
"""

from __future__ import annotations

import json
import struct
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_description, read_image, write_image
from napari_style_transfer.settings import read_settings_file, to_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RNG = np.random.default_rng(7)
SETTINGS = to_json(
    {"iterations": 7, "style_weight": 2.5e5}, inputs={"content": "grey16.tif", "styles": ["é"]}
)
#: PNG colour type → samples per pixel.
SAMPLES = {0: 1, 2: 3, 4: 2, 6: 4}


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_png(path) -> tuple[dict, np.ndarray, dict[str, str]]:
    """An independent PNG decoder (non-interlaced, 8 or 16 bits): header, pixels (H, W, samples), iTXt texts."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind, body = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.append((kind, body))
        position += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, method, filters, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    header = {"width": width, "height": height, "depth": depth, "colour": colour, "interlace": interlace}
    header["idat"] = sum(kind == b"IDAT" for kind, _ in chunks)
    assert method == filters == interlace == 0
    texts = {}
    for kind, body in chunks:
        if kind == b"iTXt":
            key, rest = body.split(b"\0", 1)
            compressed, rest = rest[0], rest[2:]
            _lang, _tkey, value = rest.split(b"\0", 2)
            texts[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode("utf-8")
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    bpp = SAMPLES[colour] * depth // 8
    stride = width * bpp
    assert len(raw) == height * (1 + stride)
    rows, prior = [], bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (1 + stride)], bytearray(raw[y * (1 + stride) + 1 : (y + 1) * (1 + stride)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = prior[x], prior[x - bpp] if x >= bpp else 0
            predictor = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            line[x] = (line[x] + predictor) & 255
        rows.append(bytes(line))
        prior = line
    pixels = np.frombuffer(b"".join(rows), ">u2" if depth == 16 else np.uint8)
    return header, pixels.reshape(height, width, SAMPLES[colour]).astype(np.uint16), texts


@pytest.mark.parametrize("channels, colour", [(3, 2), (4, 6), (2, 4)])
def test_uint16_colour_pngs_round_trip_exactly_with_their_settings(tmp_path, channels, colour):
    array = RNG.integers(0, 65536, (21, 30, channels), dtype=np.uint16)
    array[0, 0] = 65535
    array[1, 1] = 0
    path = write_image(tmp_path / "result.png", array, SETTINGS)
    header, pixels, texts = decode_png(path)
    assert (header["depth"], header["colour"], header["width"], header["height"]) == (16, colour, 30, 21)
    np.testing.assert_array_equal(pixels, array)
    assert texts == {"napari-style-transfer": SETTINGS}
    expected = array if channels != 2 else array[..., [0, 0, 0, 1]]  # gray + alpha reads as RGBA
    with Image.open(path) as image:  # a second decoder (Pillow: 8 bits, the high bytes)
        image.load()
        np.testing.assert_array_equal(np.asarray(image), (expected >> 8).astype(np.uint8))
    back = read_image(path)
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, expected)
    assert read_description(path) == SETTINGS
    assert read_settings_file(path) == {"iterations": 7, "style_weight": 2.5e5}
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # written atomically: nothing else


def test_a_large_uint16_rgb_png_is_written_in_bands_and_read_back_exactly(tmp_path, monkeypatch):
    from napari_style_transfer.files import png16_write

    monkeypatch.setattr(png16_write, "BAND_BYTES", 4096)  # many bands, many IDAT chunks
    y, x = np.mgrid[0:97, 0:131]
    smooth = np.stack([y * 600, x * 450, (x + y) * 250], axis=-1) + RNG.integers(0, 64, (97, 131, 3))
    smooth = smooth.astype(np.uint16)
    path = write_image(tmp_path / "big.png", smooth)
    header, pixels, texts = decode_png(path)
    assert header["depth"] == 16 and header["colour"] == 2 and texts == {} and header["idat"] > 3
    np.testing.assert_array_equal(pixels, smooth)
    np.testing.assert_array_equal(read_image(path), smooth)
    assert read_description(path) is None


def test_uint16_with_one_channel_and_big_endian_uint16_keep_16_bits(tmp_path):
    grey = RNG.integers(100, 3001, (20, 24), dtype=np.uint16)
    for name, array in [("one.png", grey[..., None]), ("big_endian.png", grey.astype(">u2"))]:
        header, pixels, _ = decode_png(write_image(tmp_path / name, array))
        assert header["depth"] == 16 and header["colour"] == 0, name
        np.testing.assert_array_equal(pixels[..., 0], grey)
    rgb = np.stack([grey, grey // 2, grey // 3], axis=-1).astype(">u2")
    header, pixels, _ = decode_png(write_image(tmp_path / "big_endian_rgb.png", rgb))
    assert header["depth"] == 16 and header["colour"] == 2
    np.testing.assert_array_equal(pixels, rgb)


def test_save_layer_writes_a_uint16_rgb_result_as_a_16_bit_png(tmp_path):
    from napari_style_transfer._writer import write_result

    array = RNG.integers(100, 3001, (18, 24, 3), dtype=np.uint16)
    path = tmp_path / "layer.png"
    assert write_result(str(path), array, {"rgb": True, "metadata": {}}) == [str(path)]
    header, pixels, _ = decode_png(path)
    assert header["depth"] == 16 and header["colour"] == 2
    np.testing.assert_array_equal(pixels, array)
    np.testing.assert_array_equal(read_image(path), array)


def test_a_16_bit_grey_tiff_with_result_colour_style_gives_a_16_bit_rgb_png(tmp_path, style_image):
    grey = (100 + (np.arange(40 * 48).reshape(40, 48) * 37 % 2901)).astype(np.uint16)  # values 100..3000
    tifffile.imwrite(tmp_path / "grey16.tif", grey)
    write_image(tmp_path / "style.png", style_image)
    common = [str(tmp_path / "grey16.tif"), str(tmp_path / "style.png"), "--result-colour", "style"]
    common += ["--size", "32", "--iterations", "2", "-q"]
    assert run([*common, "-o", str(tmp_path / "out.tif")]) == 0
    assert run([*common, "-o", str(tmp_path / "out.png")]) == 0
    tiff = tifffile.imread(tmp_path / "out.tif")
    header, pixels, texts = decode_png(tmp_path / "out.png")
    assert header["depth"] == 16 and header["colour"] == 2
    png = read_image(tmp_path / "out.png")
    assert png.dtype == np.uint16 and png.shape == tiff.shape and tiff.shape[-1] == 3
    np.testing.assert_array_equal(pixels, png)
    assert png.max() > 1000  # was: 2..9, nearly black
    np.testing.assert_array_equal(png, tiff)  # the same run: the TIFF's values, every bit
    assert json.loads(texts["napari-style-transfer"])  # the run's settings, for --config
    assert read_settings_file(tmp_path / "out.png")["iterations"] == 2


def test_8_bit_outputs_stretch_a_uint16_result_that_would_be_nearly_black(tmp_path):
    from napari_style_transfer.files import to_uint8

    dim = (100 + np.linspace(0, 1, 24 * 32).reshape(24, 32) * 2900).astype(np.uint16)  # values 100..3000
    jpeg = read_image(write_image(tmp_path / "dim.jpg", dim))
    assert jpeg.dtype == np.uint8 and jpeg.min() <= 3 and jpeg.max() >= 250  # was 0..12
    rgba = np.stack([dim, dim, dim, np.full_like(dim, 65535)], axis=-1)
    jpeg = read_image(write_image(tmp_path / "dim_rgba.jpg", rgba))  # the alpha is left out first
    assert jpeg.shape[-1] == 3 and jpeg.min() <= 3 and jpeg.max() >= 250
    frames = to_uint8(np.stack([dim, dim // 2]))  # movies: the whole stack's range
    assert frames.max() == 255 and frames.min() == 0 and frames[1].max() < 140
    wide = (np.linspace(0, 1, 24 * 32).reshape(24, 32) * 40000).astype(np.uint16)
    np.testing.assert_array_equal(to_uint8(wide), (wide / 257).round().astype(np.uint8))  # as before
    for constant in (0, 1000, 65535):
        flat = np.full((4, 4), constant, np.uint16)
        np.testing.assert_array_equal(to_uint8(flat), round(constant / 257))  # as before


def test_an_8_bit_png_scales_the_colours_without_the_alpha(tmp_path):
    colour = RNG.random((12, 16, 3)).astype(np.float32) * 1000  # a float result outside 0–1
    alpha = np.where(np.arange(16) < 8, 1.0, 0.25).astype(np.float32) * np.ones((12, 1), np.float32)
    header, pixels, _ = decode_png(write_image(tmp_path / "float.png", np.dstack([colour, alpha])))
    assert header["depth"] == 8 and header["colour"] == 6
    np.testing.assert_array_equal(pixels[..., 3], np.round(alpha * 255))  # was: 0, invisible
    assert pixels[..., :3].min() == 0 and pixels[..., :3].max() == 255  # the colours' own range
    wide = np.dstack([colour.astype(np.int32), np.full((12, 16), 2**31 - 1, np.int32)])
    _, pixels, _ = decode_png(write_image(tmp_path / "int32.png", wide))
    assert (pixels[..., 3] == 255).all() and pixels[..., :3].max() == 255  # opaque, as the engine reads it


def test_a_16_bit_png_write_that_fails_midway_keeps_the_old_file(tmp_path, monkeypatch):
    from napari_style_transfer.files import ImageFileError, png16_write

    old = write_image(tmp_path / "result.png", np.zeros((8, 8, 3), np.uint8)).read_bytes()
    filtered = png16_write._sub_filtered
    calls = []

    def full_disk(band, bpp):
        calls.append(1)
        if len(calls) > 2:
            raise OSError(28, "No space left on device")
        return filtered(band, bpp)

    monkeypatch.setattr(png16_write, "BAND_BYTES", 1024)
    monkeypatch.setattr(png16_write, "_sub_filtered", full_disk)
    array = RNG.integers(0, 65536, (40, 30, 3), dtype=np.uint16)
    with pytest.raises(ImageFileError, match="No space left on device"):
        write_image(tmp_path / "result.png", array, SETTINGS)
    assert (tmp_path / "result.png").read_bytes() == old and len(calls) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["result.png"]  # no temporary file left
