"""What a file holds, as a record a later run can compare: size, modification time and a content hash.

A batch re-run keeps an output only when the input that made it is still the same file content
(not merely the same name) and the output is still what that run wrote (``batch/report.py``).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

#: Bytes hashed at a time (a large stack is never read whole).
BLOCK = 1 << 20


def file_sha256(path: str | os.PathLike) -> str | None:
    """The SHA-256 of a file's bytes, or of a folder's files (a zarr store: names and bytes, sorted);
    None when there is nothing readable there."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            digest = hashlib.sha256()
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                digest.update(item.relative_to(path).as_posix().encode() + b"\0")
                digest.update(bytes.fromhex(_hash_file(item)))
            return digest.hexdigest()
        if not stat.S_ISREG(mode):  # a FIFO or a device: never opened (reading could block for ever)
            return None
        return _hash_file(path)
    except (OSError, ValueError):
        return None


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str | os.PathLike) -> dict[str, Any] | None:
    """``{"size", "mtime_ns", "sha256"}`` of a file as it is now (None when it cannot be read)."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    sha = file_sha256(path)
    if sha is None:
        return None
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "sha256": sha}


__all__ = ["file_sha256", "fingerprint"]
