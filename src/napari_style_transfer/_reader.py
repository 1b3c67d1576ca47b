"""napari reader: File ▸ Open of an MP4, MOV, AVI or WebM movie gives a time-series image layer.

The layer is a dask array (T, H, W, 3) whose frames are decoded when napari shows them, so
opening a long movie reads only its header (``files/movie.py``); its frame rate is in the
layer's metadata (``fps``), where the movie writer finds it again. No Qt here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def _one_path(path: str | list[str]) -> str | None:
    if isinstance(path, (list, tuple)):
        return str(path[0]) if len(path) == 1 else None
    return str(path)


def get_reader(path: str | list[str]) -> Callable[[Any], list[tuple]] | None:
    """The movie reader for one movie file, None for anything else (napari then asks other readers)."""
    from .files.movie import MOVIE_SUFFIXES

    one = _one_path(path)
    if one is None or Path(one).suffix.lower() not in MOVIE_SUFFIXES:
        return None
    return read_movie_layer


def read_movie_layer(path: str | list[str]) -> list[tuple]:
    """One lazy image layer (rgb) for the movie; its frame rate and sound flag in the metadata."""
    from .files.movie import lazy_movie

    one = _one_path(path) or str(path[0])
    movie = lazy_movie(one)
    metadata = {"fps": movie.fps, "has_audio": movie.has_audio, "source": one}
    return [(movie.data, {"name": Path(one).stem, "rgb": True, "metadata": metadata}, "image")]


__all__ = ["get_reader", "read_movie_layer"]
