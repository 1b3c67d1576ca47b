"""What a batch did: one :class:`BatchResult` per item, and ``OUT_DIR/batch-report.json``,
rewritten atomically as items finish (at most about once a second) and once more at the end."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from ..files.atomic import write_json_atomic
from ..files.errors import ImageFileError, reason, shown
from ..files.fingerprint import file_sha256

REPORT_NAME = "batch-report.json"
#: Item statuses: the issue's three, and 'cancelled' for items a stop or Ctrl-C left undone.
STATUSES = ("done", "failed", "skipped", "cancelled")
#: What an entry records so that a re-run can tell the same input and output from the same names.
IDENTITY_KEYS = ("input_identity", "output_sha256")


@dataclass
class BatchResult:
    """One finished item (``kind`` 'image' or 'chunk'), or an assembled stack (``kind`` 'stack')."""

    index: int
    name: str
    input: str
    output: str | None
    status: str
    message: str = ""
    seconds: float = 0.0
    worker: str = ""
    kind: str = "image"
    slices: tuple[int, int] | None = None
    result: np.ndarray | None = field(default=None, repr=False)  # when there is no OUT_DIR
    info: dict[str, Any] = field(default_factory=dict)  # prep_id, shape; stacks: flicker
    #: What a re-run compares before it keeps the output: ``input_identity`` (the input's size,
    #: modification time and hash, or an array's digest) and ``output_sha256``.
    identity: dict[str, Any] = field(default_factory=dict)

    def entry(self, settings_id: str) -> dict[str, Any]:
        """The report's line for this item."""
        out = {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "message": self.message,
            "seconds": self.seconds,
            "worker": self.worker,
            "settings_id": settings_id,
        }
        if self.slices is not None:
            out["slices"] = list(self.slices)
        out.update({k: self.identity[k] for k in IDENTITY_KEYS if k in self.identity})
        return out


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _entries(out_dir: str | Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((Path(out_dir) / REPORT_NAME).read_text(encoding="utf-8"))
        entries = [*data.get("items", []), *data.get("stacks", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict) and e.get("output")]


def load_previous(out_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The last report's entries by output path (items and stacks); empty when there is none or it is unreadable."""
    return {e["output"]: e for e in _entries(out_dir) if "slices" not in e}


def load_previous_chunks(out_dir: str | Path) -> dict[tuple[str, int], dict[str, Any]]:
    """The last report's stack chunks by (input, first slice)."""
    chunks = {}
    for e in _entries(out_dir):
        slices = e.get("slices")
        if isinstance(slices, list) and slices and isinstance(slices[0], int):
            chunks[(str(e.get("input")), slices[0])] = e
    return chunks


def is_current(
    previous: dict[str, dict[str, Any]], output: str, settings_id: str, input_identity: dict | None
) -> bool:
    """Whether a re-run may keep ``output``: the last report says these settings made it, from an input
    whose identity (size, modification time and content hash, or an array's digest) is still
    ``input_identity``, and the output still holds what that run wrote. Names alone never suffice:
    an input edited in place, or a new image under an old name, is stylised again."""
    return entry_is_current(previous.get(output), output, settings_id, input_identity)


def entry_is_current(
    entry: dict[str, Any] | None, output: str | Path, settings_id: str, input_identity: dict | None
) -> bool:
    """:func:`is_current` of one report entry; ``output`` is the file the entry stands for."""
    if entry is None or input_identity is None:
        return False
    return (
        entry.get("status") in ("done", "skipped")
        and entry.get("settings_id") == settings_id
        and entry.get("input_identity") == input_identity
        and entry.get("output_sha256") is not None
        and file_sha256(output) == entry.get("output_sha256")
    )


class BatchReport:
    """``OUT_DIR/batch-report.json``: every item with input, output, status, message, seconds, worker,
    settings id; the settings themselves once at the top; stacks with their chunk-boundary flicker."""

    def __init__(
        self, out_dir: str | Path, settings: dict[str, Any], settings_id: str, *, interval: float = 1.0
    ):
        self.path = Path(out_dir) / REPORT_NAME
        self.settings, self.settings_id = settings, settings_id
        self.meta: dict[str, Any] = {"started": _now()}
        self.items: dict[int, dict[str, Any]] = {}
        self.stacks: dict[str, dict[str, Any]] = {}
        self.interval = interval
        self._saved = 0.0
        #: Why the last save failed (the final save raises it again if it fails too).
        self.error: ImageFileError | None = None

    def add(self, result: BatchResult) -> None:
        """Record (or update) one result and save when the last save is old enough."""
        if result.kind == "stack":
            entry = result.entry(self.settings_id)
            entry.update(
                {
                    k: v
                    for k, v in result.info.items()
                    if k.startswith("flicker") or k in ("chunk", "n_slices")
                }
            )
            self.stacks[entry["input"]] = entry
        else:
            self.items[result.index] = result.entry(self.settings_id)
        if time.monotonic() - self._saved >= self.interval:
            try:
                self.save()
            except ImageFileError as exc:  # kept for the final save: the batch goes on meanwhile
                self.error = exc

    def counts(self) -> Counter:
        """Statuses of the items, plus stacks that failed to assemble."""
        counts = Counter(e["status"] for e in self.items.values())
        counts["failed"] += sum(1 for e in self.stacks.values() if e["status"] == "failed")
        return counts

    def save(self, finished: bool = False) -> Path:
        if finished:
            self.meta["finished"] = _now()
        data = {
            **self.meta,
            "summary": {s: self.counts().get(s, 0) for s in STATUSES},
            "settings_id": self.settings_id,
            "settings": self.settings,
            "items": [self.items[i] for i in sorted(self.items)],
            "stacks": list(self.stacks.values()),
        }
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:  # a full disk, a folder gone read-only: one line, never a traceback
            raise ImageFileError(f"cannot write the batch report {shown(self.path)}: {reason(exc)}") from None
        self._saved = time.monotonic()
        self.error = None
        return self.path


def summary_line(counts: Counter, report: str | Path | None) -> str:
    """``7 done, 1 failed: see OUT_DIR/batch-report.json`` (statuses with a count, done always)."""
    parts = [f"{counts.get('done', 0)} done"]
    parts += [f"{counts[s]} {s}" for s in STATUSES[1:] if counts.get(s)]
    text = ", ".join(parts)
    return f"{text}: see {report}" if report is not None else text
