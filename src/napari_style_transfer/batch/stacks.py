"""Stacks in a batch: each nD TIFF is cut into chunks of consecutive slices (coherent inside a
chunk, independent between chunks); each chunk's result is saved as a part file, and the parts
are written into one TIFF slice by slice (never the whole stack in memory), measuring on the way
how much more the result flickers across a chunk boundary than inside a chunk."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..files.atomic import atomic_write
from ..files.tiff_stack import StackHeader, read_slices

#: Stacks larger than this go to a BigTIFF (classic TIFF offsets end at 4 GiB).
BIGTIFF_BYTES = 2**32 - 2**25


@dataclass
class _Flicker:
    """Running sums of slice-to-slice differences (result and content) inside chunks and across boundaries."""

    sums: dict[str, list[float]] = field(
        default_factory=lambda: {"inside": [0.0, 0.0, 0], "boundary": [0.0, 0.0, 0]}
    )

    def add(self, where: str, result_diff: float, content_diff: float) -> None:
        s = self.sums[where]
        s[0] += result_diff
        s[1] += content_diff
        s[2] += 1

    def ratio(self, where: str) -> float | None:
        result_sum, content_sum, count = self.sums[where]
        if count == 0:
            return None
        return round(result_sum / content_sum, 4) if content_sum > 0 else None

    def info(self) -> dict[str, Any]:
        return {
            "flicker_inside_chunks": self.ratio("inside"),
            "flicker_at_boundaries": self.ratio("boundary"),
            "flicker_pairs": {k: int(v[2]) for k, v in self.sums.items()},
        }


def _colour(data: np.ndarray, rgb: bool) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    return data[..., :3] if rgb and data.shape[-1] == 4 else data


def _npy_rows(start: int, path: Path) -> Any:
    return np.load(path, mmap_mode="r")


def _slices(
    source: str,
    header: StackHeader,
    parts: Sequence[tuple[int, int, Path]],
    flicker: _Flicker,
    rows: Callable[[int, Path], Any] = _npy_rows,
) -> Iterator[np.ndarray]:
    """The stack's result slices in order (``rows(start, part)[offset]``: from the .npy parts, or
    from a zarr store); measures the flicker as they pass."""
    row = header.lead[-1] if header.lead else 1
    prev_result = prev_content = None
    for start, stop, path in parts:
        results = rows(start, path)
        contents = read_slices(source, start, stop, header)
        for offset in range(stop - start):
            i = start + offset
            result, content = _colour(results[offset], header.rgb), _colour(contents[offset], header.rgb)
            if prev_result is not None and i % row != 0:  # neighbours along the last leading axis
                where = "boundary" if offset == 0 else "inside"
                flicker.add(
                    where,
                    float(np.abs(result - prev_result).mean()),
                    float(np.abs(content - prev_content).mean()),
                )
            prev_result, prev_content = result, content
            yield np.asarray(results[offset])


def assemble_stack(
    source: str, header: StackHeader, parts: Sequence[tuple[int, int, Path]], output: str | Path
) -> dict[str, Any]:
    """Write the stack's TIFF (atomically) from its chunk parts; returns the flicker measures.

    Flicker is the mean absolute slice-to-slice difference of the result relative to the
    content's (``engine.stack.flicker``), for neighbours inside a chunk and across a chunk
    boundary; each slice is compared at its own size (the mean is per pixel).
    """
    import tifffile

    first = np.load(parts[0][2], mmap_mode="r")
    shape = (*header.lead, *first.shape[1:])
    dtype = first.dtype
    nbytes = int(np.prod(shape)) * dtype.itemsize
    flicker = _Flicker()

    def write(tmp: Path) -> None:
        tifffile.imwrite(
            tmp,
            data=_slices(source, header, parts, flicker),
            shape=shape,
            dtype=dtype,
            photometric="rgb" if header.rgb else "minisblack",
            bigtiff=nbytes > BIGTIFF_BYTES,
        )

    atomic_write(output, write)
    return {"n_slices": header.n_slices, "output_shape": list(shape), **flicker.info()}


def finish_zarr(
    source: str, header: StackHeader, parts: Sequence[tuple[int, int, Path]], output: str | Path
) -> dict[str, Any]:
    """Measure the flicker of a zarr stack that the chunks filled, then move its store into place."""
    from . import zarr_stack

    store_path = Path(parts[0][2]).parent / zarr_stack.STORE_NAME
    store = zarr_stack.require_zarr().open_array(str(store_path), mode="r")
    flicker = _Flicker()
    for _ in _slices(
        source, header, parts, flicker, lambda start, _: zarr_stack.StoreRows(store, start, header.lead)
    ):
        pass
    zarr_stack.move_into_place(store_path, Path(output))
    return {"n_slices": header.n_slices, "output_shape": list(store.shape), **flicker.info()}


def remove_parts(folder: Path) -> None:
    """Drop a stack's part files once its TIFF is written (and the parts folder when it is empty)."""
    shutil.rmtree(folder, ignore_errors=True)
    with suppress(OSError):
        folder.parent.rmdir()
