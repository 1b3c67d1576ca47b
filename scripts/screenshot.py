"""Make docs/images/screenshot.png: napari with the sample pair, the dock widget and a result.

Run from the repository root (needs a display; without one it starts Xvfb through
pyvirtualdisplay, or run it under ``xvfb-run -a``)::

    python scripts/screenshot.py [--size 256] [--iterations auto] [--out docs/images/screenshot.png]

The widget starts from its defaults (its saved settings go to a temporary folder).

``--extras`` adds a gallery style row and opens the Advanced section (start image, saved
previews), as in docs/images/screenshot_extras.png.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from shots import open_viewer, run_to_end, shoot

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="output long side in pixels")
    parser.add_argument("--iterations", type=_iterations, default="auto", help="steps per scale, or auto")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "screenshot.png")
    parser.add_argument("--window", default="1400x860", help="window size WxH")
    parser.add_argument("--extras", action="store_true", help="a gallery style, Advanced opened")
    args = parser.parse_args(argv)

    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        # Start Xvfb and run this script again inside it (Qt must be gone before Xvfb stops).
        import subprocess

        from pyvirtualdisplay import Display

        with Display(visible=False, size=(1920, 1200), color_depth=24):
            return subprocess.call([sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)])
    return _shoot(args)


def _iterations(text: str) -> int | str:
    return text if text == "auto" else int(text)


def _shoot(args: argparse.Namespace) -> int:
    import tempfile

    # the user's saved settings stay out of the picture (and untouched)
    os.environ.setdefault("NAPARI_STYLE_TRANSFER_CONFIG_DIR", tempfile.mkdtemp(prefix="nst-screenshot-"))

    viewer = open_viewer(args.window)
    viewer.open_sample("napari-style-transfer", "cat_and_swirls")
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    widget.set_config(size=args.size, iterations=args.iterations, preview_every=5)
    if args.extras:
        widget.add_style(weight=0.5).use_gallery("stained_glass")
    if not run_to_end(widget, 10):
        return 1
    # the result lies over the content; show the style image (smaller) below them
    style = viewer.layers["swirls (style)"]
    style.scale = (0.75, 0.75)
    style.translate = (viewer.layers["cat (content)"].data.shape[0] + 16, 0)
    viewer.layers.selection.active = viewer.layers[-1]
    if args.extras:  # show Start from: an image (the result) and Save previews as a user would set them
        widget.set_config(init="image")
        widget.start_image.value = viewer.layers[-1]
        widget.save_previews.use(Path.home() / "style-previews", every=2)
        widget.advanced_section.expand(animate=False)
    return shoot(viewer, widget, args.out)


if __name__ == "__main__":
    sys.exit(main())
