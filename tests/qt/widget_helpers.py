"""What the widget tests share: opening the plugin's dock widget through its manifest."""

from __future__ import annotations

from typing import Any

PLUGIN, WIDGET = "napari-style-transfer", "Style Transfer"


def open_widget(viewer: Any, **config: Any) -> Any:
    """The Style Transfer dock widget, opened in ``viewer`` as a user would (Plugins menu),
    with ``config`` set in its form."""
    _, widget = viewer.window.add_plugin_dock_widget(PLUGIN, WIDGET)
    if config:
        widget.set_config(**config)
    return widget
