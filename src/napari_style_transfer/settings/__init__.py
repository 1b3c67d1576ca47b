"""Settings as data: every option of a run as checked plain values, presets, and the files that keep them.

``values.py`` (the values, the output options such as ``full_size``, settings documents and
files), ``store.py`` (the user's config folder: last-used settings and saved presets) and
``presets.py`` (the built-in presets). No Qt, no napari: the CLI and the widget share it.

May import: ``engine`` (the config and its option specs), ``files`` (atomic writes, the
settings a result file carries) and the package's leaves.
"""

from .presets import BUILTIN_PRESETS, builtin_preset, find_preset, preset_key
from .store import (
    CONFIG_DIR_ENV,
    LAST_SETTINGS_FILE,
    config_dir,
    load_last_settings,
    load_user_presets,
    save_last_settings,
    save_user_presets,
)
from .values import (
    OUTPUT_SPECS,
    SETTINGS_FORMAT,
    SettingsError,
    check_values,
    config_of,
    default_values,
    document,
    read_settings_file,
    settings_specs,
    split_values,
    to_json,
    values_of,
)

__all__ = [
    "BUILTIN_PRESETS",
    "CONFIG_DIR_ENV",
    "LAST_SETTINGS_FILE",
    "OUTPUT_SPECS",
    "SETTINGS_FORMAT",
    "SettingsError",
    "builtin_preset",
    "check_values",
    "config_dir",
    "config_of",
    "default_values",
    "document",
    "find_preset",
    "load_last_settings",
    "load_user_presets",
    "preset_key",
    "read_settings_file",
    "save_last_settings",
    "save_user_presets",
    "settings_specs",
    "split_values",
    "to_json",
    "values_of",
]
