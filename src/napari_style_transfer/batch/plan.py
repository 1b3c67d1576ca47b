"""Turning a batch's contents into items: paths (files, folders, globs), arrays, a dask array
whose leading axes are items, or TIFF stacks cut into chunks; and which items a re-run skips."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import ImageFileError, names
from ..files.guard import ReadFiles
from ..files.names import part_path, parts_folder, result_name
from ..files.tiff_stack import StackHeader, read_stack_header
from ..messages import first_line
from .inputs import expand_inputs, same_file_key
from .items import (
    BatchError,
    BatchItem,
    check_unique_outputs,
    is_reader,
    plan_chunks,
)
from .report import REPORT_NAME, BatchResult
from .zarr_stack import STORE_NAME, ZARR_SUFFIX, require_zarr


@dataclass
class StackState:
    """A stack being stylised: its header, chunk parts and the chunks still to finish."""

    source: str
    name: str
    output: str
    header: StackHeader
    folder: Path
    parts: list[tuple[int, int, Path]] = field(default_factory=list)
    remaining: set[int] = field(default_factory=set)
    failed: bool = False
    #: The chunks write into a zarr store in ``folder`` (the parts are markers), not .npy parts.
    zarr: bool = False
    #: The stack file's size, modification time and hash when the batch started (resume compares it).
    identity: dict[str, Any] | None = None

    @property
    def store(self) -> Path | None:
        """The zarr store being filled (None for a TIFF stack)."""
        return self.folder / STORE_NAME if self.zarr else None


@dataclass
class Plan:
    """The items of a batch; array contents by item index; stacks by source path."""

    items: list[BatchItem] = field(default_factory=list)
    arrays: dict[int, Any] = field(default_factory=dict)
    #: Items whose entry has its own value range (None: the item's robust range), by item index.
    limits: dict[int, tuple[float, float] | None] = field(default_factory=dict)
    #: The entry of a sequence of contents that each item comes from, by item index.
    entry_of: dict[int, int] = field(default_factory=dict)
    stacks: dict[str, StackState] = field(default_factory=dict)
    failed: list[BatchResult] = field(default_factory=list)  # stacks whose header cannot be read

    def add(self, **fields: Any) -> BatchItem:
        item = BatchItem(index=len(self.items), **fields)
        self.items.append(item)
        return item


def is_array(value: Any) -> bool:
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, (str, Path))


def image_ndim(shape: tuple[int, ...]) -> int:
    """Axes of one image at the end of ``shape``: 3 with a last colour axis of 3 or 4 (napari's guess), else 2."""
    return 3 if len(shape) >= 3 and shape[-1] in (3, 4) else 2


def _index_label(index: tuple[int, ...]) -> str:
    return ", ".join(str(i) for i in index)


def _add_array_items(plan: Plan, array: Any, out_dir: Path | None, suffix: str) -> None:
    shape = tuple(int(v) for v in array.shape)
    lead = shape[: max(0, len(shape) - image_ndim(shape))]
    import numpy as np

    for index in np.ndindex(*lead) if lead else [()]:
        name = f"item-{len(plan.items):05d}"
        output = str(out_dir / result_name(name, suffix)) if out_dir is not None else None
        item = plan.add(name=name, label=f"array[{_index_label(index)}]" if lead else "array", output=output)
        plan.arrays[item.index] = array[index] if lead else array


def _add_stack(plan: Plan, path: Path, out_dir: Path, chunk: int, settings_id: str, suffix: str) -> None:
    output = str(out_dir / result_name(path.stem, suffix))
    try:
        header = read_stack_header(path)
    except ImageFileError as exc:
        item = plan.add(name=path.stem, label=str(path), source=str(path), output=output)
        plan.failed.append(BatchResult(item.index, item.name, item.label, output, "failed", first_line(exc)))
        return
    folder = parts_folder(out_dir, path.stem, settings_id)
    zarr = suffix == ZARR_SUFFIX
    state = StackState(str(path), path.stem, output, header, folder, zarr=zarr)
    for start, stop in plan_chunks(header.n_slices, chunk):
        item = plan.add(
            name=path.stem, label=str(path), source=str(path), output=output, slices=(start, stop)
        )
        state.parts.append((start, stop, part_path(folder, start, stop, zarr)))
        state.remaining.add(item.index)
    plan.stacks[str(path)] = state


def make_plan(
    contents: Any,
    out_dir: Path | None,
    *,
    ext: str | None = None,
    chunk: int | None = None,
    settings_id: str = "",
    limits: Sequence[tuple[float, float] | None] | None = None,
    protect: Sequence[tuple[str, str]] = (),
) -> Plan:
    """Items for ``contents``: a path or pattern, a sequence of paths and arrays, or one array
    (its leading axes, beyond one image's, are items). ``chunk`` cuts TIFF stacks instead.
    ``limits``: one value range per entry of a sequence (see ``BatchOptions.contrast_limits``).
    Nothing the plan writes may be a file it reads (its contents, or ``protect``'s files)."""
    plan = _make_plan(contents, out_dir, ext, chunk, settings_id)
    if limits is not None:
        _entry_limits(plan, contents, limits)
    if out_dir is not None:
        check_writes(plan, out_dir, protect)
    return plan


def check_writes(plan: Plan, out_dir: Path, protect: Sequence[tuple[str, str]] = ()) -> None:
    """The one rule (``files/guard.py``): every path the batch will write — results, stack outputs,
    chunk parts, zarr stores, the report — checked against every file it reads, by identity."""
    sources = {item.source for item in plan.items if item.source is not None}
    reads = ReadFiles([*(("input", source) for source in sorted(sources)), *protect])
    writes: list[tuple[str, str | Path]] = [("OUT_DIR", out_dir / REPORT_NAME)]
    writes += [("OUT_DIR", item.output) for item in plan.items if item.output is not None]
    for state in plan.stacks.values():
        writes += [("OUT_DIR", path) for _start, _stop, path in state.parts]
        if state.store is not None:
            writes.append(("OUT_DIR", state.store))
    try:
        reads.check_all(writes, instead="another OUT_DIR")
    except ImageFileError as exc:
        raise BatchError(str(exc)) from None


def _entry_limits(plan: Plan, contents: Any, limits: Sequence[tuple[float, float] | None]) -> None:
    entries = [] if is_array(contents) or isinstance(contents, (str, Path)) else list(contents)
    if len(entries) != len(limits):
        raise BatchError(
            f"contrast_limits: one per entry of contents ({len(entries)} entries), got {len(limits)}"
        )
    for item in plan.items:
        plan.limits[item.index] = limits[plan.entry_of[item.index]]


def _make_plan(
    contents: Any, out_dir: Path | None, ext: str | None, chunk: int | None, settings_id: str
) -> Plan:
    plan = Plan()
    if is_array(contents):
        if chunk is not None:
            raise BatchError(
                "chunk: stacks are read from TIFF files; for an array, its leading axes are the items"
            )
        _add_array_items(plan, contents, out_dir, output_suffix(None, ext))
        return plan
    entries = [contents] if isinstance(contents, (str, Path)) else list(contents)
    if not entries:
        raise BatchError("INPUT: no images given")
    stack_suffix = output_suffix(None, ext, stack=True)
    if chunk is not None and stack_suffix == ZARR_SUFFIX:
        require_zarr()  # before anything runs
    seen: set[object] = set()
    for number, entry in enumerate(entries):
        first = len(plan.items)
        _add_entry(plan, entry, out_dir, ext, chunk, settings_id, stack_suffix, seen)
        plan.entry_of.update(dict.fromkeys(range(first, len(plan.items)), number))
    check_unique_outputs(plan.items)
    _check_unique_stacks(plan)
    return plan


def _add_entry(
    plan: Plan,
    entry: Any,
    out_dir: Path | None,
    ext: str | None,
    chunk: int | None,
    settings_id: str,
    stack_suffix: str,
    seen: set[object],
) -> None:
    """The items of one entry of a sequence of contents: a reader, an array, or a path, folder or pattern."""
    if is_reader(entry):
        name = f"item-{len(plan.items):05d}"
        suffix = output_suffix(None, ext)
        item = plan.add(
            name=name,
            label="reader",
            output=None if out_dir is None else str(out_dir / result_name(name, suffix)),
        )
        plan.arrays[item.index] = entry
        return
    if is_array(entry):
        if chunk is not None:
            raise BatchError("chunk: stacks are read from TIFF files, not arrays")
        _add_array_items(plan, entry, out_dir, output_suffix(None, ext))
        return
    for path in expand_inputs([entry]):
        if same_file_key(path) in seen:
            continue
        seen.add(same_file_key(path))
        if chunk is not None:
            if out_dir is None:
                raise BatchError("out_dir: stacks are assembled in an output folder; give one")
            _add_stack(plan, path, out_dir, chunk, settings_id, stack_suffix)
            continue
        output = (
            str(out_dir / result_name(path.stem, output_suffix(path, ext))) if out_dir is not None else None
        )
        plan.add(name=path.stem, label=str(path), source=str(path), output=output)


def _check_unique_stacks(plan: Plan) -> None:
    owners: dict[str, str] = {}
    for state in plan.stacks.values():
        if state.output in owners:
            raise BatchError(
                f"INPUT: {owners[state.output]} and {state.source} would both write {state.output}; rename one"
            )
        owners[state.output] = state.source


def output_suffix(source: Path | None, ext: str | None, stack: bool = False) -> str:
    """:func:`~napari_style_transfer.files.names.output_suffix`, with a bad ``ext`` as a BatchError."""
    try:
        return names.output_suffix(source, ext, stack)
    except ValueError as exc:
        raise BatchError(str(exc)) from None
