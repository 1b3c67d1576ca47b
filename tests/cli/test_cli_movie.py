"""The command line on movies (issue 26): a movie content is a stack, a movie output keeps its frames and rate.

Real files through the real codecs (PyAV's FFmpeg, Pillow), the real engine at tiny sizes.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import tifffile

from napari_style_transfer.cli import run
from napari_style_transfer.engine import flicker
from napari_style_transfer.files import write_image
from napari_style_transfer.files.movie import probe_movie, read_movie, write_movie

av = pytest.importorskip("av")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--size", "32", "--iterations", "2", "--no-multiscale", "-q"]
PREFIX = "napari-style-transfer: error: "
FPS = 12


def drifting(content: np.ndarray, frames: int = 6) -> np.ndarray:
    """(T, 32, 40, 3): a window drifting over the cat by (1, 2) px a frame, like a slow pan."""
    return np.stack([content[t : t + 32, 2 * t : 2 * t + 40] for t in range(frames)])


@pytest.fixture
def clip(tmp_path, content_image, style_image):
    """A 6-frame MP4 at 12 fps and a style image."""
    movie = write_movie(tmp_path / "clip.mp4", drifting(content_image), FPS)
    return movie, write_image(tmp_path / "style.png", style_image)


def with_sound(path, frames: np.ndarray) -> None:
    """A movie with an AAC sound track (a 440 Hz tone), written by PyAV."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.height, video.width = frames.shape[1:3]
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for frame in frames:
            container.mux(video.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(video.encode(None))
        tone = np.sin(2 * np.pi * 440 * np.arange(1024 * 10) / 44100).astype(np.float32)
        for start in range(0, len(tone), 1024):
            samples = np.stack([tone[start : start + 1024]] * 2)
            sound = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            sound.sample_rate, sound.pts = 44100, start
            container.mux(audio.encode(sound))
        container.mux(audio.encode(None))


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(PREFIX)]


@pytest.mark.parametrize("suffix", [".mp4", ".gif", ".webp"])
def test_a_movie_is_stylised_frame_by_frame_to_a_movie(clip, tmp_path, capsys, suffix):
    content, style = clip
    out = tmp_path / f"out{suffix}"
    assert run([str(content), str(style), "-o", str(out), *FAST]) == 0  # no --stack: a movie is a stack
    movie = read_movie(out)
    assert movie.frames.shape == (6, 26, 32, 3)  # 32 px long side, H.264's even sides
    assert movie.fps == pytest.approx(FPS, rel=0.05)  # GIF: hundredths of a second
    assert f"wrote {out}" in capsys.readouterr().err  # -q: said on stderr
    assert [name for name in os.listdir(tmp_path) if name.startswith(".nst-")] == []


def test_fps_overrides_the_rate_and_an_odd_side_is_padded_in_one_line(clip, tmp_path, capsys):
    content, style = clip
    out = tmp_path / "out.mp4"
    assert run([str(content), str(style), "-o", str(out), *FAST, "--size", "33", "--fps", "5"]) == 0
    movie = read_movie(out)
    assert movie.fps == 5 and movie.frames.shape == (6, 26, 34, 3)  # 33×26 → 34×26
    said = [line for line in capsys.readouterr().err.splitlines() if "padded" in line]
    assert said == [
        "napari-style-transfer: note: H.264 needs even sides: the 33×26 px frames are padded to 34×26 px"
    ]


def test_the_sound_is_dropped_and_said_in_one_line(tmp_path, content_image, style_image, capsys):
    content = tmp_path / "sound.mp4"
    with_sound(content, drifting(content_image))
    assert probe_movie(content).has_audio
    style = write_image(tmp_path / "style.png", style_image)
    out = tmp_path / "out.mp4"
    assert run([str(content), str(style), "-o", str(out), *FAST]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if "audio" in line]
    assert said == [
        f"napari-style-transfer: note: {content} has sound; the output has none (audio is dropped)"
    ]
    assert not probe_movie(out).has_audio and read_movie(out).frames.shape[0] == 6


def test_an_animation_with_stack_becomes_a_movie_at_its_own_rate(
    tmp_path, content_image, style_image, capsys
):
    content = write_movie(tmp_path / "anim.gif", drifting(content_image, 4), 5)  # 200 ms a frame
    style = write_image(tmp_path / "style.png", style_image)
    out = tmp_path / "out.mp4"
    assert run([str(content), str(style), "-o", str(out), "--stack", *FAST]) == 0
    movie = read_movie(out)
    assert movie.fps == 5 and movie.frames.shape[0] == 4
    assert "audio" not in capsys.readouterr().err


def test_without_pyav_one_sentence_says_what_to_install(clip, tmp_path, capsys, monkeypatch):
    content, style = clip
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    assert run([str(content), str(style), "-o", str(tmp_path / "out.gif"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err == f"{PREFIX}reading movies needs PyAV: pip install 'napari-style-transfer[video]'\n"


def test_a_damaged_movie_is_one_line_and_the_previous_output_is_kept(clip, tmp_path, capsys):
    content, style = clip
    noise = np.random.default_rng(1).integers(0, 256, (24, 48, 64, 3), dtype=np.uint8)
    data = write_movie(tmp_path / "noise.mp4", noise, FPS).read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(data[: len(data) // 2])  # cut in half: the frames end mid-way
    out = write_movie(tmp_path / "out.mp4", noise[:3], FPS)  # an earlier result
    before = out.read_bytes()
    assert run([str(damaged), str(style), "-o", str(out), *FAST]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{PREFIX}cannot read movie {damaged}: frame ") and "of 24" in line
    assert out.read_bytes() == before
    assert [name for name in os.listdir(tmp_path) if name.startswith(".nst-")] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["-o", "{tmp}/out.png"],
            "--output: {tmp}/out.png: a movie's result is a movie (.mp4, .gif, .webp) or a .tif stack",
        ),
        (["-o", "{tmp}/out.tif", "--fps", "5"], "--fps: only applies to a movie output (.mp4, .gif, .webp)"),
        (
            ["-o", "{tmp}/clip.mp4"],
            "--output: {tmp}/clip.mp4 is the content file ({tmp}/clip.mp4); writing there",
        ),
        (["-o", "{tmp}/out.mp4", "--save-every", "1"], "--save-every: is not available with --stack"),
    ],
)
def test_what_cannot_run_is_one_line(clip, tmp_path, capsys, args, message):
    content, style = clip
    before = content.read_bytes()
    argv = [str(content), str(style), *(a.format(tmp=tmp_path) for a in args), "-q"]
    assert run(argv) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(PREFIX + message.format(tmp=tmp_path))
    assert content.read_bytes() == before


def test_a_still_content_cannot_become_a_movie(clip, tmp_path, capsys, content_image):
    _content, style = clip
    still = write_image(tmp_path / "still.png", content_image)
    assert run([str(still), str(style), "-o", str(tmp_path / "out.gif"), "-q"]) == 2
    assert capsys.readouterr().err == (
        f"{PREFIX}--output: {tmp_path}/out.gif must end in one of .png, .jpg, .jpeg, .tif, .tiff for an image "
        "(a .gif output is a movie: for a movie content or a stack with --stack)\n"
    )


def test_coherence_flickers_less_on_a_movie(clip, tmp_path):
    """The stack measure (engine.flicker) on a stylised movie: each frame started from the previous result
    changes less from frame to frame than frames stylised independently."""
    content, style = clip
    frames = read_movie(content).frames
    measured = {}
    for switch in ("--coherence", "--no-coherence"):
        out = tmp_path / f"out{switch}.tif"  # a .tif: no codec noise in the measure
        argv = [str(content), str(style), "-o", str(out), *FAST, "--iterations", "12", switch]
        assert run(argv) == 0
        result = tifffile.imread(out)
        assert result.shape == (6, 26, 32, 3)
        measured[switch] = flicker(result, frames)
    assert measured["--coherence"] < measured["--no-coherence"]
