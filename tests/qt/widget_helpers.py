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


def spy_engine(monkeypatch: Any) -> dict:
    """Watch the worker's engine call: the returned dict holds the last run's keyword arguments
    (and its positional ones under ``args``), while the real engine runs."""
    import napari_style_transfer._qt.worker as worker_module

    found: dict = {}
    real = worker_module.run_iter

    def spy(*args: Any, **kwargs: Any) -> Any:
        found.update(args=args, **kwargs)
        yield from real(*args, **kwargs)

    monkeypatch.setattr(worker_module, "run_iter", spy)
    return found


def warnings_among(notes: list) -> list:
    """The notifications of warning severity or worse."""
    from napari.utils.notifications import NotificationSeverity

    return [n for n in notes if n.severity >= NotificationSeverity.WARNING]


def plane_box(z: float, cols: tuple[int, int], rows: int = 32) -> Any:
    """A 3D rectangle at data ``z`` over every row and the pixel columns ``cols`` (edges between pixel centres)."""
    import numpy as np

    x0, x1 = cols[0] - 0.5, cols[1] + 0.5
    return np.array([[z, -0.5, x0], [z, -0.5, x1], [z, rows - 0.5, x1], [z, rows - 0.5, x0]])


def wait_until_done(qtbot: Any, widget: Any, timeout_ms: int = 120_000) -> None:
    """Wait for the widget's run to end."""
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout_ms)


def halves(size: int = 32) -> tuple[Any, Any]:
    """Boolean masks of the left and the right half of a ``size`` × ``size`` image."""
    import numpy as np

    left = np.zeros((size, size), bool)
    left[:, : size // 2] = True
    return left, ~left
