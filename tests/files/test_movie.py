"""Movies in and out (issue 26): real files through the real codecs (PyAV's FFmpeg, Pillow), no mocks.

A short synthetic clip, a moving colour gradient, is written as MP4 (H.264), GIF and WebP and
read back; MOV, AVI and WebM are written by PyAV itself. Damaged files are real files cut short.
"""

from __future__ import annotations

import os
import re
import sys

import dask.array as da
import numpy as np
import pytest

from napari_style_transfer.files import ImageFileError, decode, limits, read_stack, write_image, write_stack
from napari_style_transfer.files.movie import (
    NEEDS_PYAV,
    WRITING_NEEDS_PYAV,
    is_movie,
    lazy_movie,
    probe_movie,
    read_movie,
    write_movie,
)

av = pytest.importorskip("av")

FPS = 12


def gradient_clip(frames: int = 12, height: int = 48, width: int = 64) -> np.ndarray:
    """(T, H, W, 3) uint8: a smooth gradient sliding right by 2 px a frame, with a slow colour drift."""
    t = np.arange(frames)[:, None, None]
    y = np.arange(height)[None, :, None]
    x = np.arange(width)[None, None, :]
    red = 40 + 2.5 * ((x - 2 * t) % width)
    green = 30 + 3.0 * y + 0 * t
    blue = 60 + 8.0 * t + 0 * x
    return np.stack(np.broadcast_arrays(red, green, blue), -1).clip(0, 255).astype(np.uint8)


def encode(path, frames: np.ndarray, codec: str, fps: int = FPS, options: dict | None = None) -> None:
    """A movie written by PyAV directly (any container and codec FFmpeg has), for the readers."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.options = options or {}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def mean_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


def leftovers(folder) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".nst-")]


def test_mp4_round_trip_keeps_frames_size_rate_and_pixels(tmp_path):
    clip = gradient_clip()
    path = write_movie(tmp_path / "clip.mp4", clip, FPS, description='{"iterations": 2}')
    movie = read_movie(path)
    assert movie.frames.shape == (12, 48, 64, 3) and movie.frames.dtype == np.uint8
    assert movie.fps == FPS and not movie.has_audio
    assert mean_error(movie.frames, clip) < 6  # H.264 at CRF 18
    info = probe_movie(path)
    assert (info.width, info.height, info.frames, info.fps) == (64, 48, 12, FPS)
    with av.open(str(path)) as container:  # H.264 in yuv420p, the settings as the comment
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert container.metadata.get("comment") == '{"iterations": 2}'
    data = path.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # the index first: plays while downloading


def test_odd_sides_get_one_more_pixel_of_their_edge(tmp_path):
    clip = gradient_clip(6, 33, 45)
    movie = read_movie(write_movie(tmp_path / "odd.mp4", clip, 29.97))
    assert movie.frames.shape == (6, 34, 46, 3)
    assert movie.fps == pytest.approx(29.97, abs=1e-3)
    assert mean_error(movie.frames[:, :33, :45], clip) < 6
    assert mean_error(movie.frames[:, 33, :45], clip[:, 32]) < 8  # the padded row repeats the edge


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_animated_gif_and_webp_round_trip(tmp_path, suffix):
    clip = gradient_clip()
    path = write_movie(tmp_path / f"clip{suffix}", clip, FPS)
    movie = read_movie(path)
    assert movie.frames.shape == clip.shape
    assert movie.fps == pytest.approx(FPS, rel=0.05)  # GIF keeps hundredths of a second: 80 ms
    # GIF: one palette of 255 colours for a clip whose colours fill a cube (red × green × blue)
    assert mean_error(movie.frames, clip) < (8 if suffix == ".gif" else 6)
    frames, rgb = read_stack(path)  # the --stack path (Pillow) reads the same animation
    assert frames.shape[0] == 12 and rgb
    still = read_movie(write_movie(tmp_path / f"still{suffix}", np.repeat(clip[:1], 5, axis=0), FPS))
    assert still.frames.shape[0] == 1  # identical frames are stored once (Pillow; docs/movies.md)


def test_gray_frames_become_colour_and_a_stack_to_a_movie_name_is_a_movie(tmp_path):
    gray = gradient_clip()[..., 0]
    movie = read_movie(write_movie(tmp_path / "gray.mp4", gray, FPS))
    assert movie.frames.shape == (12, 48, 64, 3)
    assert mean_error(movie.frames[..., 0], gray) < 6
    wide = gray.astype(np.uint16) * 257  # write_stack: 16-bit scaled to 8 for a movie
    movie = read_movie(write_stack(tmp_path / "stack.gif", wide, rgb=False))
    assert movie.frames.shape == (12, 48, 64, 3) and mean_error(movie.frames[..., 0], gray) < 6


@pytest.mark.parametrize(
    "name, codec",
    [("clip.mov", "libx264"), ("clip.avi", "mpeg4"), ("clip.webm", "libvpx-vp9"), ("clip.mkv", "libx264")],
)
def test_mov_avi_and_webm_are_read_whole_and_lazily(tmp_path, name, codec):
    clip = gradient_clip()
    encode(tmp_path / name, clip, codec, options={"b": "2M"} if codec == "mpeg4" else None)
    movie = read_movie(tmp_path / name)
    assert movie.frames.shape == clip.shape and movie.fps == FPS
    assert mean_error(movie.frames, clip) < 8
    lazy = lazy_movie(tmp_path / name)  # WebM and MKV do not say their frame count: counted from packets
    assert lazy.data.shape == clip.shape and lazy.frames_decoded == 0
    np.testing.assert_array_equal(lazy.data[7].compute(), movie.frames[7])


def test_the_readers_of_files_route_a_movie(tmp_path):
    clip = gradient_clip()
    path = write_movie(tmp_path / "clip.mp4", clip, FPS)
    frames, rgb = read_stack(path)
    assert frames.shape == clip.shape and rgb
    assert decode(path).array.shape == clip.shape
    renamed = tmp_path / "clip.bin"  # recognised by its first bytes, not its name
    renamed.write_bytes(path.read_bytes())
    assert is_movie(renamed) and read_stack(renamed)[0].shape == clip.shape
    still = write_image(tmp_path / "still.png", clip[0])
    assert not is_movie(still) and not is_movie(write_image(tmp_path / "still.tif", clip[0]))


def test_lazy_movie_decodes_nothing_at_open_and_each_frame_once_in_order(tmp_path):
    clip = gradient_clip(60)
    path = tmp_path / "long.mp4"
    encode(path, clip, "libx264", options={"g": "10"})  # a keyframe every 10 frames: seeks land near
    whole = read_movie(path).frames
    lazy = lazy_movie(path)
    assert isinstance(lazy.data, da.Array)
    assert lazy.data.shape == (60, 48, 64, 3) and lazy.data.dtype == np.uint8 and lazy.fps == FPS
    assert lazy.frames_decoded == 0
    np.testing.assert_array_equal(lazy.data[0].compute(), whole[0])
    assert lazy.frames_decoded == 1
    for number in (1, 2, 3):  # on from where it is: one frame each
        np.testing.assert_array_equal(lazy.data[number].compute(), whole[number])
    assert lazy.frames_decoded == 4
    np.testing.assert_array_equal(lazy.data[55].compute(), whole[55])  # far ahead: a seek, not 52 frames
    assert lazy.frames_decoded < 4 + 20
    rng = np.random.default_rng(26)
    for number in rng.permutation(60)[:15]:  # anywhere, in any order: the right frame
        np.testing.assert_array_equal(lazy.data[int(number)].compute(), whole[number])
    np.testing.assert_array_equal(lazy.data.compute(), whole)  # dask's threads, out of order


def _cut(tmp_path, fraction: float):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)  # a large mdat: a cut lands in frames
    data = write_movie(tmp_path / "whole.mp4", noise, FPS).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * fraction)])
    return cut


def test_a_truncated_movie_is_one_line_naming_the_frame(tmp_path):
    cut = _cut(tmp_path, 0.5)
    with pytest.raises(ImageFileError) as info:
        read_movie(cut)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"cannot read movie {cut}: frame ")
    assert "of 24" in message and "truncated" in message
    with pytest.raises(ImageFileError, match="of 24"):  # lazily: when the frame is asked for
        lazy_movie(cut).data[23].compute()
    head = tmp_path / "head.mp4"
    head.write_bytes(cut.read_bytes()[:300])  # not even the index
    with pytest.raises(ImageFileError, match=r"^cannot read movie .*head\.mp4: ") as info:
        read_movie(head)
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.webm"
    garbage.write_bytes(b"not a movie at all " * 20)
    with pytest.raises(ImageFileError, match="Invalid data found when processing input"):
        read_movie(garbage)


def test_declared_size_beyond_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    cut = _cut(tmp_path, 0.5)  # decoding would fail at frame 10: the refusal comes first
    monkeypatch.setattr(limits, "MAX_PIXELS", 64 * 48 * 20)
    for read in (read_movie, lazy_movie):
        with pytest.raises(ImageFileError) as info:
            read(cut)
        assert "64×48 px × 24 frames" in str(info.value) and "decompression bombs" in str(info.value)


def test_without_pyav_one_sentence_says_what_to_install(tmp_path, monkeypatch):
    clip = gradient_clip(4)
    path = write_movie(tmp_path / "clip.mp4", clip, FPS)
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    for read in (read_movie, lazy_movie, read_stack):
        with pytest.raises(ImageFileError) as info:
            read(path)
        assert (
            str(info.value)
            == NEEDS_PYAV
            == "reading movies needs PyAV: pip install 'napari-style-transfer[video]'"
        )
    with pytest.raises(ImageFileError) as info:
        write_movie(tmp_path / "again.mp4", clip, FPS)
    assert str(info.value) == WRITING_NEEDS_PYAV and not (tmp_path / "again.mp4").exists()
    assert read_movie(write_movie(tmp_path / "fine.gif", clip, FPS)).frames.shape[0] == 4  # Pillow's


class Interrupted:
    """Frames that a Ctrl-C interrupts while the third is being read (a real array, a real interrupt)."""

    def __init__(self, frames: np.ndarray):
        self.frames, self.shape, self.dtype = frames, frames.shape, frames.dtype

    def __getitem__(self, index: int) -> np.ndarray:
        if index == 2:
            raise KeyboardInterrupt
        return self.frames[index]


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_an_interrupted_write_keeps_the_previous_file_and_leaves_nothing(tmp_path, suffix):
    out = write_movie(tmp_path / f"out{suffix}", gradient_clip(4), FPS)
    before = out.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        write_movie(out, Interrupted(gradient_clip(8)[::-1]), FPS)
    assert out.read_bytes() == before and leftovers(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):  # nothing there before: nothing there after
        write_movie(tmp_path / f"new{suffix}", Interrupted(gradient_clip(8)), FPS)
    assert sorted(os.listdir(tmp_path)) == [f"out{suffix}"]


def test_frames_that_are_not_a_movie_are_one_line(tmp_path):
    clip = gradient_clip(3)
    cases = [
        (tmp_path / "a.mp4", clip.astype(np.float32), FPS, "8-bit frames"),
        (tmp_path / "a.mp4", clip[0, ..., 0], FPS, "(T, H, W) or (T, H, W, 3)"),
        (tmp_path / "a.gif", clip, 0, "frames per second must be a number > 0"),
        (tmp_path / "a.avi", clip, FPS, "use one of .mp4, .gif, .webp"),
        (tmp_path / "missing" / "a.mp4", clip, FPS, "does not exist"),
    ]
    for path, frames, fps, words in cases:
        with pytest.raises(ImageFileError, match=f"^cannot write .*{re.escape(words)}"):
            write_movie(path, frames, fps)
    assert leftovers(tmp_path) == []
