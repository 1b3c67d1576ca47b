"""Settings kept between sessions: the last-used settings and the user's named presets.

Both are JSON files in the user's config folder (``platformdirs``; the environment variable
:data:`CONFIG_DIR_ENV` points elsewhere, e.g. in tests), written atomically (a temporary
file in the same folder, then ``os.replace``), so a crash never leaves half a file. What
they hold is checked like any settings (``values.py``); a file that is not JSON, not ours,
or holds a bad value raises :class:`~.values.SettingsError` naming it. No Qt, no napari.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..version import __version__
from .values import SettingsError, check_values, document, parse_json, values_from_document

#: Set it to a folder to keep the settings there instead of the user's config folder.
CONFIG_DIR_ENV = "NAPARI_STYLE_TRANSFER_CONFIG_DIR"
LAST_SETTINGS_FILE = "last_settings.json"
PRESETS_FILE = "presets.json"
#: The "format" of the user's presets file.
PRESETS_FORMAT = "napari-style-transfer presets"


def config_dir() -> Path:
    """The folder of the settings files (not created here)."""
    folder = os.environ.get(CONFIG_DIR_ENV)
    if folder:
        return Path(folder).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("napari-style-transfer", appauthor=False))


def _read_json(path: Path) -> Any:
    """The JSON in ``path`` (None if there is no file); SettingsError if it cannot be read or parsed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read {path}: {exc}") from None
    return parse_json(text, str(path))


def write_json(path: Path, doc: Any) -> Path:
    """Write ``doc`` as JSON atomically (the folder is created when missing)."""
    from ..files import atomic_target

    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    with atomic_target(path) as temp:
        temp.write_text(text, encoding="utf-8")
    return path


def load_last_settings() -> dict[str, Any] | None:
    """The last-used settings (every option, checked), or None when none were saved yet.

    Options this version does not know (saved by another version) are dropped; a file that
    is not ours or holds a bad value raises SettingsError.
    """
    path = config_dir() / LAST_SETTINGS_FILE
    doc = _read_json(path)
    if doc is None:
        return None
    values = values_from_document(doc, str(path), plain=False)
    try:
        return check_values(values, drop_unknown=True)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def save_last_settings(values: Mapping[str, Any]) -> Path:
    """Keep ``values`` as the last-used settings."""
    return write_json(config_dir() / LAST_SETTINGS_FILE, document(values))


def load_user_presets() -> dict[str, dict[str, Any]]:
    """The user's presets by name (each checked; empty when there are none)."""
    path = config_dir() / PRESETS_FILE
    doc = _read_json(path)
    if doc is None:
        return {}
    presets = doc.get("presets") if isinstance(doc, Mapping) else None
    if (
        not isinstance(doc, Mapping)
        or doc.get("format") != PRESETS_FORMAT
        or not isinstance(presets, Mapping)
    ):
        raise SettingsError(f"{path}: not a napari-style-transfer presets file")
    out = {}
    for name, values in presets.items():
        try:
            out[str(name)] = check_values(values, drop_unknown=True)
        except SettingsError as exc:
            raise SettingsError(f"{path}: preset {name!r}: {exc}") from None
    return out


def save_user_presets(presets: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write the user's presets file (all of them: read, change, then save)."""
    doc = {
        "format": PRESETS_FORMAT,
        "version": __version__,
        "presets": {k: dict(v) for k, v in presets.items()},
    }
    return write_json(config_dir() / PRESETS_FILE, doc)


__all__ = [
    "CONFIG_DIR_ENV",
    "LAST_SETTINGS_FILE",
    "PRESETS_FILE",
    "PRESETS_FORMAT",
    "config_dir",
    "load_last_settings",
    "load_user_presets",
    "save_last_settings",
    "save_user_presets",
    "write_json",
]
