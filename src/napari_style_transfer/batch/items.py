"""What a batch is made of: one item per image (or per chunk of a stack's slices), its output
name, and the settings id that says whether an existing output can be kept on a re-run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.config import ConfigError, StyleConfig
from ..engine.guidance import Guidance

#: StyleConfig fields that do not change a result's pixels beyond rounding (not part of the settings id).
NON_RESULT_FIELDS = ("device", "preview_every", "compile")


class BatchError(ValueError):
    """The batch cannot start (inputs, outputs, options); the message is one line."""


@dataclass(frozen=True)
class BatchItem:
    """One unit of work: an image, an array, or a chunk of a stack's slices."""

    index: int
    name: str  # the output's stem
    label: str  # the input as the report names it: a path, or 'array[3]'
    source: str | None = None  # a path the worker reads; None for an array item
    output: str | None = None  # where the worker writes the result; None: the result comes back
    slices: tuple[int, int] | None = None  # a stack chunk: slices [start, stop) in C order

    @property
    def kind(self) -> str:
        return "chunk" if self.slices is not None else "image"


def is_reader(value: Any) -> bool:
    """A content that reads itself: an object with a ``read()`` method returning the image (read by
    the worker that stylises it, e.g. a GUI's plan to read a layer), not an array."""
    return (
        callable(getattr(value, "read", None))
        and not isinstance(value, np.ndarray)
        and not hasattr(value, "dask")
    )


def check_unique_outputs(items: Sequence[BatchItem]) -> None:
    """Two inputs with the same stem would write the same output: refuse before anything runs."""
    owners: dict[str, str] = {}
    for item in items:
        if item.output is None or item.slices is not None:
            continue
        if item.output in owners and owners[item.output] != item.label:
            raise BatchError(
                f"INPUT: {owners[item.output]} and {item.label} would both write {item.output}; rename one"
            )
        owners[item.output] = item.label


def array_digest(array: Any) -> str:
    """A short content hash of an array (dtype, shape and bytes)."""
    data = np.ascontiguousarray(np.asarray(array))
    h = hashlib.sha256(f"{data.dtype.str}{data.shape}".encode())
    h.update(data.tobytes())
    return h.hexdigest()[:16]


def settings_record(
    config: StyleConfig,
    styles: Sequence[np.ndarray],
    guidance: Guidance | None = None,
    extra: dict | None = None,
) -> dict[str, Any]:
    """Everything that decides an output's pixels, as plain JSON values (arrays by their digest)."""
    record = {k: v for k, v in config.as_dict().items() if k not in NON_RESULT_FIELDS}
    if config.init_image is not None:
        record["init_image"] = array_digest(config.init_image)
    record["styles"] = [
        {"shape": list(np.shape(s)), "dtype": str(np.asarray(s).dtype), "sha": array_digest(s)}
        for s in styles
    ]
    if guidance is not None:
        g = {}
        for name in (
            "label_styles",
            "mask_feather",
            "style_contrast_limits",
            "init_contrast_limits",
            "consistency_weight",
            "style_regions",
        ):
            value = getattr(guidance, name)
            g[name] = {str(k): v for k, v in value.items()} if isinstance(value, dict) else value
        for name in ("content_mask", "consistency_image"):
            value = getattr(guidance, name)
            g[name] = None if value is None else array_digest(value)
        g["style_masks"] = [None if m is None else array_digest(m) for m in guidance.style_masks or ()]
        record["guidance"] = g
    record.update(extra or {})
    return record


def settings_id(record: dict[str, Any]) -> str:
    """A short stable hash of a :func:`settings_record`."""
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_chunk(chunk: Any) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, (int, np.integer)) or chunk < 1:
        raise ConfigError(f"chunk: must be an integer >= 1 (slices per chunk), got {chunk!r}")
    return int(chunk)


def plan_chunks(n_slices: int, chunk: int) -> list[tuple[int, int]]:
    """[start, stop) of each chunk of ``chunk`` consecutive slices (the last may be shorter)."""
    return [(start, min(start + chunk, n_slices)) for start in range(0, n_slices, chunk)]
