"""Movies in and out: MP4, MOV, AVI and WebM read with PyAV; MP4 (H.264), animated GIF and WebP written.

A movie is a stack of frames, (T, H, W, 3) uint8, and its frame rate. PyAV (the ``video``
extra) brings FFmpeg in its wheel; without it, reading a movie or writing an MP4 is one
sentence saying what to install (GIF and WebP go through Pillow). Reading checks the declared
frames × size against ``limits.py`` before a frame is decoded and fills one preallocated
stack; :func:`lazy_movie` decodes a frame only when asked (napari's reader). A damaged file is
one line, naming the frame when the damage is found mid-way. Writes are atomic (``atomic.py``).
"""

from __future__ import annotations

import math
import os
import stat
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_target
from .errors import ImageFileError, as_path, reason, shown
from .limits import Declared, Refused, check_declared
from .paths import check_input_file, write_target
from .pil_read import read_pil

#: Read by PyAV (FFmpeg): recognised by these names or by the file's first bytes (:func:`is_movie`).
MOVIE_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv")
#: What :func:`write_movie` writes: H.264 MP4 (PyAV), animated GIF and WebP (Pillow).
MOVIE_WRITE_SUFFIXES = (".mp4", ".gif", ".webp")
#: Frames per second when neither the user nor the file says.
DEFAULT_FPS = 10.0
NEEDS_PYAV = "reading movies needs PyAV: pip install 'napari-style-transfer[video]'"
WRITING_NEEDS_PYAV = "writing .mp4 movies needs PyAV: pip install 'napari-style-transfer[video]'"
#: ISO brands of still pictures (HEIF, AVIF): a file with one of them is not a movie.
STILL_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")
#: The lazy reader decodes on up to this many frames ahead; further, or back, it seeks.
DECODE_AHEAD = 24
#: Frames the lazy reader keeps decoded (at most this many, and at most this many bytes).
KEEP_FRAMES, KEEP_BYTES = 32, 64 * 2**20
#: H.264 quality (x264's constant rate factor: 0 lossless, 23 its default; 18 looks lossless).
CRF = 18


@dataclass(frozen=True)
class MovieInfo:
    """What a movie's header says: frame size and count, frame rate, whether it has sound."""

    width: int
    height: int
    frames: int
    fps: float
    has_audio: bool = False

    @property
    def declared(self) -> Declared:
        return Declared(self.width, self.height, self.frames, 3, 1)


@dataclass
class Movie:
    """A movie read whole: (T, H, W, 3) uint8 frames, frames per second, whether the file had sound."""

    frames: np.ndarray
    fps: float
    has_audio: bool = False


def pyav(sentence: str = NEEDS_PYAV) -> Any:
    """The ``av`` module, or ImageFileError with ``sentence`` (what to install) when PyAV is missing."""
    try:
        import av
    except ImportError:
        raise ImageFileError(sentence) from None
    return av


def is_movie(path: str | os.PathLike) -> bool:
    """Whether PyAV reads the file: a movie name, or an MP4/MOV, AVI or WebM/Matroska start.

    Only a regular file is opened (a FIFO never blocks this); a missing file is judged by its name.
    """
    path = as_path(path)
    if path.suffix.lower() in MOVIE_SUFFIXES:
        return True
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, "rb") as handle:
            head = handle.read(12)
    except (OSError, ValueError):
        return False
    if head[4:8] == b"ftyp":
        return head[8:12] not in STILL_BRANDS
    return head[:4] == b"\x1a\x45\xdf\xa3" or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")


def _why(exc: BaseException) -> str:
    """FFmpeg's own words ('Invalid data found when processing input'), else 'Type: message'."""
    text = getattr(exc, "strerror", None)
    if type(exc).__module__.startswith("av") and isinstance(text, str) and text:
        return f"{text} (a damaged or truncated file?)" if "nvalid data" in text else text
    return reason(exc)


@contextmanager
def _reading(path: Path, where: str = "") -> Iterator[None]:
    """Any failure inside → one ImageFileError line naming the movie (and ``where``: which frame)."""
    try:
        yield
    except ImageFileError:
        raise
    except Refused as exc:
        raise ImageFileError(f"cannot read movie {shown(path)}: {exc}") from None
    except MemoryError:
        raise ImageFileError(f"cannot read movie {shown(path)}: not enough memory to decode it") from None
    except Exception as exc:  # noqa: BLE001 - every decoder failure means "unreadable"
        raise ImageFileError(f"cannot read movie {shown(path)}: {where}{_why(exc)}") from exc


def _frame_times(av: Any, path: Path) -> list[int | None]:
    """The presentation time of every frame, from its packet (demuxed, not decoded), in display order."""
    with av.open(os.fspath(path)) as container:
        stream = container.streams.video[0]
        times = [packet.pts for packet in container.demux(stream) if packet.size > 0]
    return sorted(times) if None not in times else times


def _info(av: Any, container: Any, path: Path) -> MovieInfo:
    """The first video stream's size, frame count (counted from its packets when unsaid) and rate."""
    if not container.streams.video:
        raise ImageFileError(f"cannot read movie {shown(path)}: it holds no video stream")
    stream = container.streams.video[0]
    width, height = int(stream.codec_context.width), int(stream.codec_context.height)
    if width <= 0 or height <= 0:
        raise ImageFileError(f"cannot read movie {shown(path)}: its video stream has no frame size")
    frames = int(stream.frames or 0) or len(_frame_times(av, path))
    if frames == 0:
        raise ImageFileError(f"cannot read movie {shown(path)}: it holds no frame")
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    fps = float(rate) if rate and math.isfinite(float(rate)) and float(rate) > 0 else DEFAULT_FPS
    return MovieInfo(width, height, frames, fps, bool(container.streams.audio))


def _probe_pillow(path: Path) -> MovieInfo:
    from PIL import Image

    with Image.open(path) as image:
        if "duration" not in image.info:  # WebP says it once its first frame is loaded
            check_declared(Declared(image.width, image.height, 1, 4, 1))
            image.load()
        duration = float(image.info.get("duration") or 0)
        fps = 1000.0 / duration if duration > 0 else DEFAULT_FPS
        return MovieInfo(image.width, image.height, int(getattr(image, "n_frames", 1)), fps)


def probe_movie(path: str | os.PathLike) -> MovieInfo:
    """A movie's (or an animated GIF, WebP or PNG's) size, frame count and rate, from its header only."""
    path = check_input_file(path)
    if not is_movie(path):
        with _reading(path):
            return _probe_pillow(path)
    av = pyav()
    with _reading(path), av.open(os.fspath(path)) as container:
        return _info(av, container, path)


def _rgb(frame: Any, size: tuple[int, int], number: int) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8; a frame of another size than the first is refused."""
    array = frame.to_ndarray(format="rgb24")
    if array.shape[:2] != size:
        (h, w), (fh, fw) = size, array.shape[:2]
        raise ValueError(f"its frames change size (frame 1 is {w}×{h} px, frame {number + 1} {fw}×{fh} px)")
    return array


def _missing(path: Path, number: int, count: int) -> ImageFileError:
    return ImageFileError(
        f"cannot read movie {shown(path)}: frame {number + 1} of {count} is missing "
        "(the file ends before it: truncated?)"
    )


def _decode_all(container: Any, path: Path, out: np.ndarray) -> None:
    """Decode every frame into ``out`` in order; a failure, or a missing frame, names its frame."""
    done, count = 0, len(out)
    try:
        for frame in container.decode(container.streams.video[0]):
            if done == count:
                break
            out[done] = _rgb(frame, out.shape[1:3], done)
            done += 1
    except Exception as exc:  # noqa: BLE001 - a damaged packet, a frame of another size…
        at = f"frame {done + 1} of {count}"
        raise ImageFileError(f"cannot read movie {shown(path)}: {at}: {_why(exc)}") from exc
    if done < count:
        raise _missing(path, done, count)


def _pillow_movie(path: Path) -> Movie:
    """An animated GIF, WebP or PNG as (T, H, W, 3) uint8 frames (gray repeated, alpha dropped)."""
    info = probe_movie(path)
    with _reading(path):
        frames = read_pil(path).array
    if frames.ndim == 2 or (frames.ndim == 3 and info.frames == 1):
        frames = frames[None]
    if frames.ndim == 3:
        frames = frames[..., None]
    if frames.dtype != np.uint8:
        raise ImageFileError(f"cannot read movie {shown(path)}: its frames are {frames.dtype}, not 8-bit")
    frames = np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames[..., :3]
    return Movie(np.ascontiguousarray(frames), info.fps)


def read_movie(path: str | os.PathLike) -> Movie:
    """Every frame of a movie (or an animated GIF, WebP or PNG) in one preallocated (T, H, W, 3) array.

    The declared frames × size is checked against the limits before any frame is decoded.
    """
    path = check_input_file(path)
    if not is_movie(path):
        return _pillow_movie(path)
    av = pyav()
    with _reading(path):
        container = av.open(os.fspath(path))
    try:
        with _reading(path):
            info = _info(av, container, path)
            frame_bytes = info.width * info.height * 3
            check_declared(info.declared, info.declared.nbytes + 2 * frame_bytes)
            frames = np.empty((info.frames, info.height, info.width, 3), np.uint8)
        _decode_all(container, path, frames)
    finally:
        container.close()
    return Movie(frames, info.fps, info.has_audio)


class FrameReader:
    """A movie's frames decoded when asked for: the next few by decoding on, any other after a seek.

    The last few are kept (dask's threads ask slightly out of order). ``frames_decoded`` counts
    every frame decoded (opening decodes none). Safe from several threads (napari slices in one).
    """

    def __init__(self, path: Path, info: MovieInfo):
        self.path, self.info = path, info
        self.shape = (info.frames, info.height, info.width, 3)
        self.dtype, self.ndim = np.dtype(np.uint8), 4
        self.frames_decoded = 0
        self.keep = max(2, min(KEEP_FRAMES, KEEP_BYTES // (3 * info.width * info.height)))
        self._lock = threading.Lock()
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()
        self._container, self._all_times = None, None  # every frame's time, demuxed at the first seek
        self._reset()

    def _reset(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container, self._decoded = None, None
        self._next: int | None = None  # the number of the frame decoded next (None: from its time)
        self._times: dict[int, int] | None = None  # presentation time → frame number, after a seek

    def close(self) -> None:
        """Close the file (reopened when another frame is asked for)."""
        with self._lock:
            self._reset()

    def __getitem__(self, key: Any) -> np.ndarray:
        """Frames by a (frame, row, column, channel) index of ints and slices (what dask asks)."""
        key = key if isinstance(key, tuple) else (key,)
        if isinstance(key[0], (int, np.integer)):
            return self.frame(int(key[0]))[key[1:]]
        numbers = range(self.info.frames)[key[0]]
        out = np.empty((len(numbers), *self.shape[1:]), self.dtype)
        for i, number in enumerate(numbers):
            out[i] = self.frame(number)
        return out[(slice(None), *key[1:])]

    def frame(self, number: int) -> np.ndarray:
        """Frame ``number`` (0-based) as (H, W, 3) uint8."""
        count = self.info.frames
        if not 0 <= number < count:
            raise IndexError(f"frame {number} of a movie of {count} frames")
        with self._lock, _reading(self.path, f"frame {number + 1} of {count}: "):
            if number in self._kept:
                return self._kept[number].copy()
            nearby = self._next is not None and self._next <= number <= self._next + DECODE_AHEAD
            if self._decoded is None or not nearby:
                self._start(number)
            if not self._decode_to(number) and self._times is not None:  # a seek went past it
                self._start(0)
                self._decode_to(number)
            if number not in self._kept:
                raise _missing(self.path, number, count)
            return self._kept[number].copy()

    def _start(self, number: int, seek: bool = True) -> None:
        """(Re)open the file; for a frame far from the start, seek to the keyframe before it."""
        av = pyav()
        self._reset()
        self._container = av.open(os.fspath(self.path))
        stream = self._container.streams.video[0]
        self._next = 0
        if seek and number > DECODE_AHEAD:
            self._all_times = times = self._all_times or _frame_times(av, self.path)
            if len(times) == self.info.frames and None not in times and len(set(times)) == len(times):
                self._container.seek(times[number], stream=stream, backward=True, any_frame=False)
                self._times, self._next = {t: i for i, t in enumerate(times)}, None
        self._decoded = iter(self._container.decode(stream))

    def _decode_to(self, number: int) -> bool:
        """Decode on until frame ``number``, keeping the last few; False when the file ends or a seek went past it."""
        size = (self.info.height, self.info.width)
        for frame in self._decoded or ():
            self.frames_decoded += 1
            current = self._times.get(frame.pts) if self._times is not None else self._next
            if current is None:  # a frame whose time is not in the index: number them from the start
                self._start(0, seek=False)
                return self._decode_to(number)
            self._next = current + 1
            if current > number:
                return False
            if current > number - self.keep:
                self._kept[current] = _rgb(frame, size, current)
                while len(self._kept) > self.keep:
                    self._kept.popitem(last=False)
            if current == number:
                return True
        self._decoded = None
        return False


@dataclass
class LazyMovie:
    """A movie opened lazily: ``data`` a dask array (T, H, W, 3) uint8 whose frames decode when computed."""

    data: Any
    fps: float
    has_audio: bool
    reader: FrameReader

    @property
    def frames_decoded(self) -> int:
        """How many frames have been decoded so far (0 right after opening)."""
        return self.reader.frames_decoded


def lazy_movie(path: str | os.PathLike) -> LazyMovie:
    """Open a movie as a dask array of one chunk per frame: only the header is read now.

    The frame count is the stream's (counted from its packets, without decoding, when the
    file does not say). The declared size is checked against the pixel limit, not against
    the free memory: frames are decoded one at a time.
    """
    import dask.array as da
    from dask.base import tokenize

    path = check_input_file(path)
    if not is_movie(path):
        raise ImageFileError(f"cannot read movie {shown(path)}: not a movie PyAV reads (MP4, MOV, AVI, WebM)")
    info = probe_movie(path)
    with _reading(path):
        check_declared(info.declared, 3 * info.width * info.height)
    reader = FrameReader(path, info)
    stamp = os.stat(path)
    name = "movie-" + tokenize(os.fspath(path.resolve()), stamp.st_mtime_ns, stamp.st_size)
    meta = np.empty((0, 0, 0, 0), np.uint8)  # dask need not read a frame to learn the type
    data = da.from_array(reader, (1, *reader.shape[1:]), name=name, meta=meta, asarray=False, fancy=False)
    return LazyMovie(data, info.fps, info.has_audio, reader)


def even_size(height: int, width: int) -> tuple[int, int]:
    """(H, W) that H.264 in yuv420p takes: an odd side gets one more pixel (its edge row or column repeated)."""
    return height + height % 2, width + width % 2


def _frame(frames: Any, i: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Frame ``i`` as contiguous (H, W, 3) uint8: gray repeated, alpha dropped, padded to ``size``."""
    frame = np.asarray(frames[i])
    if frame.ndim == 2:
        frame = frame[..., None]
    frame = np.repeat(frame, 3, axis=-1) if frame.shape[-1] == 1 else frame[..., :3]
    if size is not None and size != frame.shape[:2]:
        frame = np.pad(frame, ((0, size[0] - frame.shape[0]), (0, size[1] - frame.shape[1]), (0, 0)), "edge")
    return np.ascontiguousarray(frame)


def _check_frames(path: str | os.PathLike, frames: Any, fps: float) -> None:
    shape, dtype = tuple(int(n) for n in frames.shape), np.dtype(frames.dtype)
    if not (len(shape) == 3 or (len(shape) == 4 and shape[-1] in (1, 3, 4))) or 0 in shape:
        raise ImageFileError(
            f"cannot write {shown(path)}: frames must be (T, H, W) or (T, H, W, 3), not {shape}"
        )
    if dtype != np.uint8:
        raise ImageFileError(f"cannot write {shown(path)}: a movie takes 8-bit frames (uint8), got {dtype}")
    if not (math.isfinite(fps) and fps > 0):
        raise ImageFileError(f"cannot write {shown(path)}: frames per second must be a number > 0, got {fps}")


def _write_mp4(av: Any, temp: Path, frames: Any, fps: float, description: str | None) -> None:
    """H.264 (libx264, yuv420p, sides made even), the index at the front (plays while it downloads)."""
    size = even_size(int(frames.shape[1]), int(frames.shape[2]))
    with av.open(os.fspath(temp), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        if description:
            container.metadata["comment"] = description
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(CRF)}
        for i in range(int(frames.shape[0])):
            picture = av.VideoFrame.from_ndarray(_frame(frames, i, size), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))


def _gif_palette(frames: Any) -> Any:
    """One 255-colour palette for every frame (from up to 9 of them), so colours do not flicker."""
    from PIL import Image

    count = int(frames.shape[0])
    picks = sorted({round(i * (count - 1) / 8) for i in range(9)})
    step = max(1, math.ceil(math.sqrt(frames.shape[1] * frames.shape[2] * len(picks) / 4e6)))
    strip = np.concatenate([_frame(frames, i)[::step, ::step] for i in picks])
    return Image.fromarray(strip).quantize(colors=255, method=Image.Quantize.MEDIANCUT, kmeans=3)


def _write_animation(temp: Path, frames: Any, fps: float, webp: bool) -> None:
    """An endlessly looping GIF (one shared palette) or WebP, through Pillow."""
    from PIL import Image

    palette = None if webp else _gif_palette(frames)
    pictures = (Image.fromarray(_frame(frames, i)) for i in range(int(frames.shape[0])))
    if palette is not None:
        pictures = (picture.quantize(palette=palette, dither=Image.Dither.NONE) for picture in pictures)
    extra = {"format": "WEBP", "quality": 90, "method": 4} if webp else {"format": "GIF", "disposal": 1}
    # GIF counts hundredths of a second (players slow anything under 2 to 10): rounded, at least 2
    first, ms = next(pictures), max(1, round(1000 / fps)) if webp else max(20, 10 * round(100 / fps))
    with open(temp, "wb") as handle:  # a full disk raises here, not later in a writer's finaliser
        first.save(handle, save_all=True, append_images=pictures, duration=ms, loop=0, **extra)


def write_movie(
    path: str | os.PathLike, frames: Any, fps: float | None = None, description: str | None = None
) -> Path:
    """Write (T, H, W[, 3]) uint8 frames as an MP4 (H.264), animated GIF or animated WebP, atomically.

    ``frames`` may be any array-like (numpy, dask): it is read a frame at a time. ``fps``:
    frames per second (default :data:`DEFAULT_FPS`). An MP4's odd sides get one pixel more
    (:func:`even_size`); ``description`` (the run's settings) becomes its comment. Sound is
    never written.
    """
    fps = DEFAULT_FPS if fps is None else float(fps)
    path = as_path(path)
    suffix = path.suffix.lower()
    if suffix not in MOVIE_WRITE_SUFFIXES:
        raise ImageFileError(f"cannot write {shown(path)}: use one of {', '.join(MOVIE_WRITE_SUFFIXES)}")
    _check_frames(path, frames, fps)
    target = write_target(path)
    if not target.parent.exists():
        raise ImageFileError(f"cannot write {shown(path)}: folder {shown(target.parent)} does not exist")
    av = pyav(WRITING_NEEDS_PYAV) if suffix == ".mp4" else None
    try:
        with atomic_target(target) as temp:
            if av is not None:
                _write_mp4(av, temp, frames, fps, description)
            else:
                _write_animation(temp, frames, fps, webp=suffix == ".webp")
    except ImageFileError:
        raise
    except Exception as exc:  # noqa: BLE001 - a full disk, an encoder's refusal…: the old file is kept
        raise ImageFileError(f"cannot write {shown(path)}: {_why(exc)}") from exc
    return path


__all__ = [
    "DEFAULT_FPS",
    "MOVIE_SUFFIXES",
    "MOVIE_WRITE_SUFFIXES",
    "NEEDS_PYAV",
    "WRITING_NEEDS_PYAV",
    "FrameReader",
    "LazyMovie",
    "Movie",
    "MovieInfo",
    "even_size",
    "is_movie",
    "lazy_movie",
    "probe_movie",
    "pyav",
    "read_movie",
    "write_movie",
]
