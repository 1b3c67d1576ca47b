"""What the screenshot scripts share: a shown viewer of a given size, and its picture saved as a small PNG."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


def save_small_png(image, path: Path, limit_kb: int = 480) -> None:
    """Save as PNG; above ``limit_kb``, with a 256-colour palette (keeps the docs light)."""
    from PIL import Image

    picture = Image.fromarray(image[..., :3])
    picture.save(path, optimize=True)
    if path.stat().st_size > limit_kb * 1024:
        palette = picture.quantize(
            colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG
        )
        palette.save(path, optimize=True)


def open_viewer(window: str) -> Any:
    """A shown napari viewer whose window is ``window`` ('WxH') pixels, without napari's one-off
    "PyQt5 support is deprecated" toast (it would be in the picture)."""
    import napari

    try:
        import napari._qt.qt_main_window as qt_main_window

        qt_main_window.SHOW_QT_WARNING = False
    except (ImportError, AttributeError):  # pragma: no cover - other napari versions
        pass
    width, height = (int(v) for v in window.split("x"))
    viewer = napari.Viewer(title="napari — Style Transfer", show=True)
    viewer.window._qt_window.resize(width, height)
    return viewer


def shoot(viewer: Any, widget: Any, out: Path) -> int:
    """Fit the view, let it draw, save the whole window to ``out`` (a small PNG), close the viewer."""
    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    viewer.reset_view()
    for _ in range(30):
        app.processEvents()
        time.sleep(0.03)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_small_png(viewer.screenshot(canvas_only=False, flash=False), out)
    print(f"{out} ({out.stat().st_size / 1024:.0f} KB): {widget.status.value}")
    viewer.close()
    return 0


def run_to_end(widget: Any, minutes: float, what: str = "run") -> bool:
    """Press Run and keep the event loop turning until the ``what`` ends; False (said on stderr)
    when it did not start or did not end within ``minutes``."""
    import sys

    from qtpy.QtWidgets import QApplication

    app = QApplication.instance()
    if not widget.run():
        print(f"the {what} did not start", file=sys.stderr)
        return False
    deadline = time.monotonic() + minutes * 60
    while widget.running and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    if widget.running:
        print(f"the {what} did not finish in {minutes:g} minutes", file=sys.stderr)
        return False
    return True
