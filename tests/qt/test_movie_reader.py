"""napari opens a movie through the plugin's manifest lazily, and saves a time series as a movie (issue 26)."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_style_transfer.files.movie import FrameReader, read_movie, write_movie

av = pytest.importorskip("av")
PLUGIN = "napari-style-transfer"


def clip(frames: int = 30, height: int = 48, width: int = 64) -> np.ndarray:
    t, y, x = np.ogrid[:frames, :height, :width]
    red, green, blue = np.broadcast_arrays(
        40 + 2 * ((x + 3 * t) % width), 30 + 3 * y + 0 * t, 60 + 5 * t + 0 * x
    )
    return np.stack([red, green, blue], -1).clip(0, 255).astype(np.uint8)


def readers_of(data: da.Array) -> list[FrameReader]:
    """The frame readers inside a dask array's graph (what decodes its frames)."""
    return [value for value in dict(data.__dask_graph__()).values() if isinstance(value, FrameReader)]


def test_the_viewer_opens_a_movie_lazily_through_the_manifest(viewer, tmp_path):
    path = write_movie(tmp_path / "clip.mp4", clip(), 15)
    (layer,) = viewer.open(str(path), plugin=PLUGIN)
    assert isinstance(layer.data, da.Array) and layer.rgb
    assert layer.data.shape == (30, 48, 64, 3) and layer.data.dtype == np.uint8
    assert layer.metadata["fps"] == 15 and layer.metadata["has_audio"] is False
    assert layer.name == "clip"
    (reader,) = readers_of(layer.data)
    assert reader.frames_decoded < 30  # napari shows a frame or two, not the whole movie
    viewer.dims.set_current_step(0, 20)  # the slider decodes on to the frame shown
    np.testing.assert_array_equal(np.asarray(layer.data[20]), read_movie(path).frames[20])
    assert reader.frames_decoded <= 30


def test_the_viewer_saves_a_time_series_as_a_movie_at_its_rate(viewer, tmp_path, notes):
    path = write_movie(tmp_path / "clip.mp4", clip(12), 15)
    (layer,) = viewer.open(str(path), plugin=PLUGIN)
    for suffix in (".mp4", ".gif", ".webp"):
        out = tmp_path / f"saved{suffix}"
        assert viewer.layers.save(str(out), selected=True, plugin=PLUGIN) == [str(out)]
        movie = read_movie(out)
        assert movie.frames.shape == (12, 48, 64, 3) and movie.fps == pytest.approx(15, rel=0.05)
    gray = viewer.add_image(clip(5)[..., 0].astype(np.float32), name="gray")  # (T, H, W), not 8-bit
    viewer.layers.selection = {gray}
    assert viewer.layers.save(str(tmp_path / "gray.gif"), selected=True, plugin=PLUGIN)
    assert read_movie(tmp_path / "gray.gif").frames.shape == (5, 48, 64, 3)
    still = viewer.add_image(clip(1)[0], name="still", rgb=True)
    viewer.layers.selection = {still}
    assert viewer.layers.save(str(tmp_path / "still.mp4"), selected=True, plugin=PLUGIN) == []
    assert not (tmp_path / "still.mp4").exists()
    assert any("a movie needs a time series" in str(note.message) for note in notes)
