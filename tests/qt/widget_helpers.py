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


def on_result_images(viewer: Any, callback: Any, name: str = "stylised") -> None:
    """Call ``callback(layer)`` each time an image reaches a result layer (``name`` in its name).

    A run inserts its result layer hidden, with a placeholder, before its worker starts; its first
    image makes it visible. So: at insertion if the layer is visible then, when it becomes visible,
    and at each data event while it is visible (the hidden placeholder is no image).
    """

    def watch(event: Any) -> None:
        layer = event.value
        if name not in layer.name:
            return

        def seen(*_: Any) -> None:
            if layer.visible:
                callback(layer)

        seen()
        layer.events.data.connect(seen)
        layer.events.visible.connect(seen)

    viewer.layers.events.inserted.connect(watch)


def shown_results(viewer: Any, name: str = "stylised") -> list[Any]:
    """The result layers (``name`` in their name) that show an image: visible ones (a run's layer
    is hidden until its first image)."""
    return [layer for layer in viewer.layers if name in layer.name and layer.visible]
