"""Memory bounded on any file, precision kept, channel-first OME-TIFFs (issue 22, classes 3, 6 and 7).

Real files, written here. Hostile ones are small files that declare a huge image: a GIF,
APNG or WebP that Pillow wrote with 300 tiny frames, its canvas then patched to 2000×2000; a
TIFF written by the tiny writer below, whose tags declare 60000×60000 (or 300 pages) over a
few bytes of compressed data. They are read in a subprocess under an address-space limit a
few hundred MB above its baseline, which records its peak memory: each must be refused in
one line from its header, before its pixels are decoded. 16-bit colour PNGs come from the
tiny encoder below (zlib, the five PNG filters, Adam7), as Pillow cannot write them;
Pillow's own 8-bit reading of the same files checks their high bytes independently.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tifffile
from PIL import Image

from napari_style_transfer.arrays import block_mean
from napari_style_transfer.cli import run
from napari_style_transfer.files import ImageFileError, decode, limits, read_image, read_stack

FAST = ["-q", "--size", "32", "--iterations", "1", "--no-multiscale"]
PREFIX = "napari-style-transfer: error: "
RNG = np.random.default_rng(22)
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))


# --- writers -------------------------------------------------------------------------------------------


def _filtered(rows: np.ndarray, bpp: int, types: tuple[int, ...]) -> bytes:
    """PNG filtering of (H, W × bpp) stored bytes, row r with filter types[r % len(types)]."""
    data, out, prior = rows.astype(np.int16), [], np.zeros(rows.shape[1], np.int16)
    for r, row in enumerate(data):
        kind = types[r % len(types)]
        left = np.concatenate([np.zeros(bpp, np.int16), row[:-bpp]])
        upleft = np.concatenate([np.zeros(bpp, np.int16), prior[:-bpp]])
        p = left + prior - upleft
        pa, pb, pc = np.abs(p - left), np.abs(p - prior), np.abs(p - upleft)
        paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prior, upleft))
        guess = [0 * row, left, prior, (left + prior) >> 1, paeth][kind]
        out.append(bytes([kind]) + ((row - guess) & 255).astype(np.uint8).tobytes())
        prior = row
    return b"".join(out)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png16(path, values: np.ndarray, types=(0, 1, 2, 3, 4), interlace=False, extra=b"", size=None) -> None:
    """A 16-bit PNG of (H, W, C) uint16 values (C = 2 gray + alpha, 3 RGB, 4 RGBA), in three IDAT chunks."""
    height, width, samples = values.shape
    bpp, stored = 2 * samples, values.astype(">u2")
    passes = ADAM7 if interlace else ((0, 0, 1, 1),)
    raw = b"".join(
        _filtered(part.reshape(part.shape[0], -1).view(np.uint8), bpp, types)
        for x0, y0, dx, dy in passes
        if (part := stored[y0::dy, x0::dx]).size
    )
    data = zlib.compress(raw, 9)
    w, h = size or (width, height)
    header = struct.pack(">IIBBBBB", w, h, 16, {2: 4, 3: 2, 4: 6}[samples], 0, 0, int(interlace))
    thirds = [data[: len(data) // 3], data[len(data) // 3 : 2 * len(data) // 3], data[2 * len(data) // 3 :]]
    body = _chunk(b"IHDR", header) + extra + b"".join(_chunk(b"IDAT", part) for part in thirds)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body + _chunk(b"IEND", b""))


def _tiff_declaring(path, width: int, height: int, pages: int = 1) -> None:
    """A little-endian TIFF whose pages all declare width × height 8-bit gray over one tiny deflate strip."""
    strip = zlib.compress(b"\0" * 4096)[:20]  # a few bytes of a stream that would inflate to far more
    longs = {256: width, 257: height, 273: 8, 278: height, 279: len(strip)}
    shorts = {258: 8, 259: 8, 262: 1, 277: 1}  # 8 bits, deflate, min-is-black, one sample
    entries = sorted([(t, struct.pack("<HHII", t, 4, 1, v)) for t, v in longs.items()]
                     + [(t, struct.pack("<HHIHH", t, 3, 1, v, 0)) for t, v in shorts.items()])  # fmt: skip
    ifd_size = 2 + 12 * len(entries) + 4
    start = 8 + len(strip)
    out = bytearray(b"II*\x00" + struct.pack("<I", start) + strip)
    for page in range(pages):
        following = start + (page + 1) * ifd_size if page + 1 < pages else 0
        out += (
            struct.pack("<H", len(entries)) + b"".join(e for _, e in entries) + struct.pack("<I", following)
        )
    path.write_bytes(bytes(out))


def _animation(path, kind: str, frames: int, canvas: int) -> None:
    """``frames`` 4×4 frames written by Pillow, then the canvas patched to canvas × canvas px."""
    images = [Image.fromarray(np.full((4, 4, 3), 40 + 90 * (i % 2), np.uint8)) for i in range(frames)]
    if kind == "gif":
        images = [image.convert("P") for image in images]
    options = {"lossless": True} if kind == "webp" else {}
    images[0].save(path, {"gif": "GIF", "apng": "PNG", "webp": "WEBP"}[kind], save_all=True,
                   append_images=images[1:], duration=20, **options)  # fmt: skip
    data = bytearray(path.read_bytes())
    if kind == "gif":  # the logical screen
        data[6:10] = struct.pack("<HH", canvas, canvas)
    elif kind == "apng":  # IHDR, and its CRC
        data[16:24] = struct.pack(">II", canvas, canvas)
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    else:  # the VP8X canvas (24-bit sizes minus one)
        data[24:30] = (canvas - 1).to_bytes(3, "little") * 2
    path.write_bytes(bytes(data))


# --- class 6: 16-bit colour PNG, PGM and PPM at full depth --------------------------------------------

FILTERS = {"none": (0,), "sub": (1,), "up": (2,), "average": (3,), "paeth": (4,), "mixed": (4, 0, 3, 1, 2)}


@pytest.mark.parametrize("samples", [3, 4, 2], ids=["RGB", "RGBA", "gray+alpha"])
@pytest.mark.parametrize(("filters", "interlace"), [*((f, False) for f in FILTERS), ("mixed", True)])
def test_16_bit_colour_pngs_keep_every_bit(samples, filters, interlace, tmp_path):
    values = RNG.integers(0, 65536, (23, 37, samples), dtype=np.uint16)
    path = tmp_path / "deep.png"
    _png16(path, values, FILTERS[filters], interlace)
    array = read_image(path)
    expected = values if samples > 2 else np.concatenate([values[..., :1].repeat(3, -1), values[..., 1:]], -1)
    assert array.dtype == np.uint16 and array.shape == expected.shape
    np.testing.assert_array_equal(array, expected)
    with Image.open(path) as image:  # Pillow reads the high bytes: an independent check of the file
        np.testing.assert_array_equal(np.asarray(image), (expected >> 8).astype(np.uint8))


def test_a_16_bit_png_is_reduced_on_reading_like_any_file(tmp_path):
    values = RNG.integers(0, 65536, (130, 97, 3), dtype=np.uint16)
    _png16(tmp_path / "deep.png", values)
    decoded = decode(tmp_path / "deep.png", 32)
    assert decoded.factor > 1 and decoded.shape == (130, 97)
    np.testing.assert_array_equal(decoded.array, block_mean(values, decoded.factor))


def test_16_bit_png_transparency_and_orientation_are_applied(tmp_path):
    values = RNG.integers(0, 65536, (20, 31, 3), dtype=np.uint16)
    values[3, 4] = (1000, 2000, 3000)
    exif = Image.Exif()
    exif[0x0112] = 6  # turned a quarter clockwise to be upright
    key = _chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    _png16(
        tmp_path / "deep.png", values, extra=key + _chunk(b"eXIf", exif.tobytes().removeprefix(b"Exif\0\0"))
    )
    array = read_image(tmp_path / "deep.png")
    alpha = np.where((values == (1000, 2000, 3000)).all(-1), 0, 65535).astype(np.uint16)
    np.testing.assert_array_equal(array, np.rot90(np.dstack([values, alpha]), -1))


BROKEN_PNGS = {
    "truncated": (lambda data: data[: len(data) // 2], "truncated"),
    "CRC": (lambda data: data[:60] + bytes([data[60] ^ 1]) + data[61:], "CRC mismatch"),
    "no IDAT": (lambda data: data[:33] + _chunk(b"IEND", b""), "no IDAT"),
}


@pytest.mark.parametrize("case", list(BROKEN_PNGS))
def test_broken_16_bit_pngs_are_one_line(case, tmp_path):
    _png16(tmp_path / "deep.png", RNG.integers(0, 65536, (40, 50, 3), dtype=np.uint16))
    damage, words = BROKEN_PNGS[case]
    (tmp_path / "deep.png").write_bytes(damage((tmp_path / "deep.png").read_bytes()))
    with pytest.raises(ImageFileError) as error:
        read_image(tmp_path / "deep.png")
    assert len(str(error.value).splitlines()) == 1 and words in str(error.value), error.value


def test_a_16_bit_png_runs_through_the_cli_and_keeps_16_bits(tmp_path, style_image, capsys):
    values = (np.linspace(0, 65535, 40 * 50 * 3).reshape(40, 50, 3)).astype(np.uint16)
    _png16(tmp_path / "deep.png", values)
    Image.fromarray(style_image).save(tmp_path / "style.png")
    code = run(
        [*FAST, str(tmp_path / "deep.png"), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.tif")]
    )
    assert code == 0, capsys.readouterr().err
    assert tifffile.imread(tmp_path / "o.tif").dtype == np.uint16


@pytest.mark.parametrize("maxval", [65535, 4095])
@pytest.mark.parametrize("magic", ["P5", "P6", "P2", "P3"])
def test_16_bit_pgm_and_ppm_keep_their_values_as_stored(magic, maxval, tmp_path):
    samples = 3 if magic in ("P3", "P6") else 1
    values = RNG.integers(0, maxval + 1, (17, 26, samples), dtype=np.uint16)
    header = f"{magic}\n# a comment\n26 17\n{maxval}\n".encode()
    if magic in ("P5", "P6"):
        body = values.astype(">u2").tobytes()
    else:
        body = "\n".join(" ".join(map(str, row)) for row in values.reshape(17, -1).tolist()).encode() + b"\n"
    (tmp_path / "deep.pnm").write_bytes(header + body)
    array = read_image(tmp_path / "deep.pnm")
    assert array.dtype == np.uint16
    np.testing.assert_array_equal(array, values[..., 0] if samples == 1 else values)
    reduced = decode(tmp_path / "deep.pnm", 16)  # a thin side keeps 16 px: 26 × 17 → k = 1
    assert reduced.array.dtype == np.uint16


def test_a_truncated_16_bit_ppm_is_one_line(tmp_path):
    (tmp_path / "cut.ppm").write_bytes(b"P6\n40 30\n65535\n" + b"\x01" * (40 * 30 * 6 // 2))
    with pytest.raises(ImageFileError, match=r"ends after 15 of 30 rows") as error:
        read_image(tmp_path / "cut.ppm")
    assert len(str(error.value).splitlines()) == 1


# --- class 7: channel-first OME-TIFF ------------------------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
def test_channel_first_ome_tiffs_are_read_by_their_axes(channels, tmp_path):
    data = RNG.integers(0, 65536, (channels, 90, 61), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "cyx.ome.tif", data, ome=True, metadata={"axes": "CYX"})
    expected = np.moveaxis(data, 0, -1)
    np.testing.assert_array_equal(read_image(tmp_path / "cyx.ome.tif"), expected)
    decoded = decode(tmp_path / "cyx.ome.tif", 20)  # each channel's page reduced as it is read
    assert decoded.factor > 1 and decoded.shape == (90, 61)
    np.testing.assert_array_equal(decoded.array, block_mean(expected, decoded.factor))


@pytest.mark.parametrize("channels", [2, 5])
def test_other_channel_first_ome_tiffs_are_one_line_a_cli_user_can_follow(
    channels, tmp_path, style_image, capsys
):
    data = RNG.integers(0, 255, (channels, 40, 50), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "cyx.ome.tif", data, ome=True, metadata={"axes": "CYX"})
    Image.fromarray(style_image).save(tmp_path / "style.png")
    code = run(
        [*FAST, str(tmp_path / "cyx.ome.tif"), str(tmp_path / "style.png"), "-o", str(tmp_path / "o.png")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith(PREFIX), err
    assert f"C×Y×X = {channels}×40×50" in err and "channels last" in err and "separate image" in err, err
    assert "np." not in err  # no Python for a command-line user


def test_a_channel_first_ome_stack_gives_colour_slices(tmp_path):
    data = RNG.integers(0, 255, (4, 3, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "zcyx.ome.tif", data, ome=True, metadata={"axes": "ZCYX"})
    array, rgb = read_stack(tmp_path / "zcyx.ome.tif")
    assert rgb is True
    np.testing.assert_array_equal(array, np.moveaxis(data, 1, -1))


# --- class 3: TIFF pages reduced while read -----------------------------------------------------------

GRAY16 = RNG.integers(0, 65536, (75, 52), dtype=np.uint16)
COLOUR = RNG.integers(0, 256, (75, 52, 3), dtype=np.uint8)
BANDED = {  # name: (data, tifffile keywords, the full image as read)
    "strips of 7 rows": (COLOUR, {"photometric": "rgb", "rowsperstrip": 7}, COLOUR),
    "one strip": (GRAY16, {"photometric": "minisblack"}, GRAY16),
    "deflate tiles": (COLOUR, {"photometric": "rgb", "tile": (16, 16), "compression": "zlib"}, COLOUR),
    "big-endian strips": (GRAY16.astype(">u2"), {"byteorder": ">", "rowsperstrip": 5}, GRAY16),
    "min-is-white": (255 - COLOUR[..., 0], {"photometric": "miniswhite", "rowsperstrip": 9}, COLOUR[..., 0]),
    "RGBA": (
        np.dstack([COLOUR, COLOUR[..., :1]]),
        {"photometric": "rgb", "extrasamples": ["unassalpha"], "compression": "zlib", "rowsperstrip": 4},
        np.dstack([COLOUR, COLOUR[..., :1]]),
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", list(BANDED))
def test_tiff_pages_read_band_by_band_give_the_whole_images_block_means(name, tmp_path):
    data, keywords, expected = BANDED[name]
    tifffile.imwrite(tmp_path / "page.tif", data, **keywords)
    np.testing.assert_array_equal(read_image(tmp_path / "page.tif"), expected)
    decoded = decode(tmp_path / "page.tif", 16)
    assert decoded.factor == 3
    np.testing.assert_array_equal(decoded.array, block_mean(expected, 3))


def test_frames_of_different_modes_are_filled_into_one_stack(tmp_path):
    """Pages in gray, RGB and RGBA (LZW, so Pillow reads them) give one RGBA stack, widened as it fills."""
    pages = [COLOUR[:20, :30, 0], COLOUR[:20, :30], np.dstack([COLOUR[:20, :30], COLOUR[:20, :30, :1]])]
    images = [Image.fromarray(page) for page in pages]
    images[0].save(tmp_path / "modes.tif", save_all=True, append_images=images[1:], compression="tiff_lzw")
    array, rgb = read_stack(tmp_path / "modes.tif")
    assert array.shape == (3, 20, 30, 4) and rgb is True
    np.testing.assert_array_equal(array[0, ..., :3], pages[0][..., None].repeat(3, -1))
    np.testing.assert_array_equal(array[1], np.dstack([pages[1], np.full((20, 30), 255, np.uint8)]))
    np.testing.assert_array_equal(array[2], pages[2])


def _truncated(path, kind: str) -> None:
    frames = [Image.fromarray(np.roll(COLOUR[:60], 7 * i, 1)) for i in range(3)]
    if kind in ("gif", "apng", "webp"):
        options = {"lossless": True} if kind == "webp" else {}
        frames[0].save(path, {"gif": "GIF", "apng": "PNG", "webp": "WEBP"}[kind], save_all=True,
                       append_images=frames[1:], **options)  # fmt: skip
    elif kind.startswith("tiff"):
        options = {"compression": "zlib", "rowsperstrip": 8} if kind == "tiff deflate" else {}
        tifffile.imwrite(path, COLOUR[:60], photometric="rgb", **options)
    elif kind == "png16":
        _png16(path, COLOUR[:60].astype(np.uint16) * 257)
    elif kind == "ppm16":
        path.write_bytes(b"P6 52 60 65535\n" + (COLOUR[:60].astype(">u2") * 257).tobytes())
    else:
        frames[0].save(path, kind.upper())
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.6)])


@pytest.mark.parametrize(
    "kind", ["png", "jpeg", "gif", "apng", "webp", "tiff", "tiff deflate", "png16", "ppm16"]
)
def test_truncated_files_are_one_line_in_every_reader(kind, tmp_path):
    path = tmp_path / "cut.bin"
    _truncated(path, kind)
    for read in (read_image, read_stack):
        with pytest.raises(ImageFileError) as error:
            read(path)
        assert len(str(error.value).splitlines()) == 1 and str(error.value).startswith("cannot read image")


# --- class 3: the declared size against the pixel limit and the free memory ---------------------------


def _small_file(path, kind: str) -> None:
    image = Image.fromarray(COLOUR[:21, :30])
    if kind == "png16":
        _png16(path, COLOUR[:21, :30].astype(np.uint16) * 257)
    elif kind == "pgm16":
        path.write_bytes(b"P5 30 21 65535\n" + GRAY16[:21, :30].astype(">u2").tobytes())
    elif kind == "tiff":
        tifffile.imwrite(path, COLOUR[:21, :30], photometric="rgb")
    elif kind in ("gif", "apng"):
        frames = [image, Image.fromarray(COLOUR[21:42, :30])]
        frames[0].save(path, "GIF" if kind == "gif" else "PNG", save_all=True, append_images=frames[1:])
    else:
        image.save(path, kind.upper())


@pytest.mark.parametrize("kind", ["png", "jpeg", "webp", "gif", "apng", "tiff", "png16", "pgm16"])
def test_every_reader_checks_the_declared_size_against_the_pixel_limit(kind, tmp_path, monkeypatch):
    path = tmp_path / f"small.{kind}"
    _small_file(path, kind)
    read_image(path)  # within the limit
    monkeypatch.setattr(limits, "MAX_PIXELS", 600)
    with pytest.raises(ImageFileError) as error:
        read_image(path)
    frames = " × 2 frames" if kind in ("gif", "apng") else ""
    message = str(error.value)
    assert len(message.splitlines()) == 1 and f"it declares 30×21 px{frames}, about" in message, message
    assert "the limit is 600 px in all" in message, message


LIMITED = """
import json, resource, sys
import psutil
from napari_style_transfer.files import ImageFileError, read_image, read_stack
path, long_side, stack = sys.argv[1], int(sys.argv[2]) or None, sys.argv[3] == "stack"
vms = psutil.Process().memory_info().vms
resource.setrlimit(resource.RLIMIT_AS, (vms + 300 * 2**20, resource.RLIM_INFINITY))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    array = read_stack(path)[0] if stack else read_image(path, long_side)
    result = {"shape": list(array.shape), "corner": int(array.flat[0])}
except ImageFileError as exc:
    result = {"error": str(exc)}
result["peak_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps(result))
"""


def _read_limited(path, long_side: int = 0, stack: bool = False) -> dict:
    """Read ``path`` in a subprocess whose address space is limited to 300 MB above its baseline."""
    args = [sys.executable, "-c", LIMITED, str(path), str(long_side), "stack" if stack else "image"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


HOSTILE = {  # name: (writer, read as a stack, what the one line says)
    "GIF 300 frames": (lambda p: _animation(p, "gif", 300, 2000), False, "2000×2000 px × 300 frames"),
    "APNG 300 frames": (lambda p: _animation(p, "apng", 300, 2000), True, "2000×2000 px × 300 frames"),
    "WebP 300 frames": (lambda p: _animation(p, "webp", 300, 2000), False, "2000×2000 px × 300 frames"),
    "GIF 100 frames": (lambda p: _animation(p, "gif", 100, 2000), True, "of memory are free"),
    "TIFF 60000²": (lambda p: _tiff_declaring(p, 60000, 60000), False, "60000×60000 px, about 3.4 GiB"),
    "TIFF 300 pages": (lambda p: _tiff_declaring(p, 2000, 2000, 300), True, "2000×2000 px × 300 planes"),
    "16-bit PNG 60000²": (
        lambda p: _png16(p, np.zeros((2, 2, 3), np.uint16), size=(60000, 60000)),
        False,
        "60000×60000 px, about 20.1 GiB",
    ),
    "16-bit PPM 60000²": (lambda p: p.write_bytes(b"P6 60000 60000 65535\n" + bytes(600)), False, "limit"),
    "PNG 60000²": (lambda p: _png16(p, np.zeros((2, 2, 3), np.uint16), size=(60000, 60000)), False, ""),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_files_are_refused_from_their_header_within_an_address_space_limit(name, tmp_path):
    write, stack, words = HOSTILE[name]
    path = tmp_path / "hostile.bin"
    write(path)
    if name == "PNG 60000²":  # an 8-bit PNG: Pillow's own decompression-bomb check refuses it
        data = bytearray(path.read_bytes())
        data[24:26] = bytes([8, 2])
        data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
        path.write_bytes(bytes(data))
        words = "DecompressionBombError"
    result = _read_limited(path, stack=stack)
    error = result.get("error", "")
    assert len(error.splitlines()) == 1 and words in error, result
    assert "declares" in error or "Bomb" in error, result
    assert result["peak_mb"] < 100, result  # refused before any frame or strip was decoded


def test_a_big_tiff_is_reduced_while_read_within_an_address_space_limit(tmp_path):
    """20000² px (381 MiB) of deflate tiles: read at 512 px in under 300 MB; at full size, refused."""

    def tiles():
        for i in range(0, 20000, 512):
            for j in range(0, 20000, 512):
                yield np.full((512, 512), (i // 512 + 3 * (j // 512)) % 251, np.uint8)

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, tiles(), shape=(20000, 20000), dtype=np.uint8, compression="zlib", tile=(512, 512))
    result = _read_limited(path, 512)
    assert result.get("shape") == [513, 513] and result["corner"] == 0, result
    error = _read_limited(path).get("error", "")
    assert "it declares 20000×20000 px, about 381 MiB decoded" in error and "of memory are free" in error


def test_an_animation_is_filled_in_place_so_reading_peaks_at_one_stack(tmp_path):
    """60 frames of 1000² RGB (172 MiB): a list of frames stacked afterwards would need twice that."""
    _animation(tmp_path / "anim.gif", "gif", 60, 1000)
    result = _read_limited(tmp_path / "anim.gif", stack=True)
    assert result.get("shape") == [60, 1000, 1000, 3], result
    assert result["peak_mb"] < 1.4 * 172, result
