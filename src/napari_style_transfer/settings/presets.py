"""Named presets: the built-in ones (plain values, here only) and the user's saved ones.

A built-in preset sets only the options that trade time for quality (and, for a mode such
as "Keep structure", the options that make the mode); the others keep what the user chose
(device, weights…). A user's preset (saved from the widget) holds every
option. The CLI's ``--preset NAME`` and the widget's preset box both read them from here.
Measured with ``benchmarks/presets.py`` (times and distances in docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from ..engine.config import DEFAULT_STYLE_LAYERS
from .values import SettingsError

#: What the painting presets set of what "Keep structure" changes, so that choosing one of them
#: after "Keep structure" paints again (the colour choices stay the user's).
PAINTING = {"structure_weight": 0.0, "style_layers": list(DEFAULT_STYLE_LAYERS)}

# fmt: off
#: Built-in presets, fastest first. Plain values: retune them here (benchmarks/presets.py).
BUILTIN_PRESETS: dict[str, dict[str, Any]] = {
    # Seconds on a CPU: one scale at 256 px, few steps.
    "Quick look": {"size": 256, "iterations": 50, "multiscale": False, **PAINTING},
    # The defaults: 256 → 512 px, each scale until the image stops improving (docs/quality.md).
    "Balanced": {"size": 512, "iterations": "auto", "multiscale": True, **PAINTING},
    # For a GPU (or patience): 256 → 512 → 1024 px, many steps at each scale.
    "Best quality": {"size": 1024, "iterations": 300, "multiscale": True, **PAINTING},
    # Photorealistic (Luan et al. 2017; benchmarks/structure.py, docs/quality.md): the matting
    # Laplacian keeps the result a local affine recolouring of the content, the style comes from
    # the shallow layers (colours, fine texture), in the style's colours (a grey content too).
    "Keep structure": {
        "size": 512, "iterations": "auto", "multiscale": True, "structure_weight": 30000.0,
        "style_layers": ["relu1_1", "relu2_1", "relu3_1"], "preserve_colors": "none", "result_colour": "style",
    },
}
# fmt: on


def preset_key(name: str) -> str:
    """A preset name compared loosely: case, spaces, '-' and '_' do not matter ('quick-look')."""
    return "".join(ch for ch in str(name).casefold() if ch.isalnum())


def builtin_preset(name: str) -> tuple[str, dict[str, Any]] | None:
    """(name as listed, values) of the built-in preset called ``name``, or None."""
    for listed, values in BUILTIN_PRESETS.items():
        if preset_key(listed) == preset_key(name):
            return listed, dict(values)
    return None


def find_preset(name: str) -> dict[str, Any]:
    """The values of a built-in or user preset (built-ins first); SettingsError if there is none."""
    found = builtin_preset(name)
    if found is not None:
        return found[1]
    from .store import load_user_presets

    user = load_user_presets()
    for listed, values in user.items():
        if preset_key(listed) == preset_key(name):
            return dict(values)
    names = [*BUILTIN_PRESETS, *user]
    raise SettingsError(f"unknown preset {name!r} (choose from: {', '.join(repr(n) for n in names)})")


__all__ = ["BUILTIN_PRESETS", "builtin_preset", "find_preset", "preset_key"]
