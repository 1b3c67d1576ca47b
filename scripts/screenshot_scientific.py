"""Make the README's pictures of the canvas content and of Shapes regions (issue 25).

Run from the repository root (needs a display; without one it starts Xvfb through
pyvirtualdisplay, or run it under ``xvfb-run -a``)::

    python scripts/screenshot_scientific.py [--size 192] [--iterations 40] [--only canvas|shapes]

``docs/images/scientific/canvas.png``: two single-channel layers — the haematoxylin and DAB
channels of scikit-image's immunohistochemistry sample (public domain; its eosin channel is
empty), separated with ``skimage.color.rgb2hed`` — drawn with cyan and yellow colormaps and
additive blending, stylised as the canvas shows them ("the canvas (visible image layers as
shown)").

``docs/images/scientific/shapes.png``: scikit-image's ``coins`` (grey) with a Shapes layer as
the Mask (the top row of coins and one coin stylised, the rest kept), and the style taken from
a rectangle of the style image (a second Shapes layer as that style row's region), with the
"Keep structure" preset (the stain's colours on coins that keep their outlines).
The widget's saved settings go to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from shots import open_viewer, run_to_end, shoot

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images" / "scientific"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=192, help="output long side in pixels")
    parser.add_argument("--iterations", type=int, default=40, help="steps per scale")
    parser.add_argument("--only", choices=("canvas", "shapes"), help="make one picture")
    parser.add_argument("--window", default="1400x900", help="window size WxH")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        import subprocess

        from pyvirtualdisplay import Display

        with Display(visible=False, size=(1920, 1200), color_depth=24):
            return subprocess.call([sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)])
    os.environ.setdefault("NAPARI_STYLE_TRANSFER_CONFIG_DIR", tempfile.mkdtemp(prefix="nst-settings-"))
    for name, make in (("canvas", canvas_picture), ("shapes", shapes_picture)):
        if args.only in (None, name):
            code = make(args, OUT / f"{name}.png")
            if code:
                return code
    return 0


def new_viewer(args: argparse.Namespace):

    viewer = open_viewer(args.window)
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    widget.set_config(size=args.size, iterations=args.iterations, preview_every=0, multiscale=False)
    return viewer, widget


def run_and_shoot(viewer, widget, out: Path, arrange) -> int:
    """Run, wait for the end, lay the layers out with ``arrange(viewer)``, take the picture."""
    if not run_to_end(widget, 15):
        return 1
    arrange(viewer)
    return shoot(viewer, widget, out)


def shapes_on_top(viewer) -> None:
    """The Shapes layers' outlines over the result, the last one selected."""
    from napari.layers import Shapes

    shapes = [i for i, layer in enumerate(viewer.layers) if isinstance(layer, Shapes)]
    for number, index in enumerate(shapes):
        viewer.layers.move(index - number, len(viewer.layers))
    viewer.layers.selection.active = viewer.layers[-1]


def result_beside(viewer, hide) -> None:
    """The result beside the inputs, the ``hide`` layers scaled down under them."""
    result, first = viewer.layers[-1], viewer.layers[0]
    width = first.data.shape[1] * first.scale[-1]
    result.translate = (result.translate[0], result.translate[1] + width + 8)
    for layer in hide:
        layer.scale = (0.25, 0.25)
        layer.translate = (first.data.shape[0] * first.scale[-2] + 8, 0)


def canvas_picture(args: argparse.Namespace, out: Path) -> int:
    from skimage import color, data

    from napari_style_transfer._qt.inputs import CANVAS
    from napari_style_transfer.samples import gallery_image

    hed = color.rgb2hed(data.immunohistochemistry()[::2, ::2])
    viewer, widget = new_viewer(args)
    for channel, name, colormap in ((0, "haematoxylin", "cyan"), (2, "DAB", "yellow")):
        plane = hed[..., channel]
        low, high = np.percentile(plane, (1, 99.5))
        viewer.add_image(
            plane, name=name, colormap=colormap, blending="additive", contrast_limits=(low, high)
        )
    style = viewer.add_image(gallery_image("stained_glass"), name="stained glass (style)", rgb=True)
    widget.content_layer.value = CANVAS
    widget.style_rows[0].layer.value = style
    return run_and_shoot(viewer, widget, out, lambda v: result_beside(v, [style]))


def shapes_picture(args: argparse.Namespace, out: Path) -> int:
    from skimage import data

    viewer, widget = new_viewer(args)
    coins = viewer.add_image(data.coins(), name="coins", colormap="gray")
    stain = viewer.add_image(data.immunohistochemistry(), name="stain (style)", rgb=True)
    stain.translate = (0, coins.data.shape[1] + 16)
    region = viewer.add_shapes(
        name="style region", edge_color="yellow", face_color="transparent", edge_width=4
    )
    left = coins.data.shape[1] + 16  # the stain's left edge in world coordinates
    region.add_rectangles(np.array([[20.0, left + 20.0], [240.0, left + 220.0]]))  # a brown gland
    mask = viewer.add_shapes(
        name="coins to restyle", edge_color="cyan", face_color=[0, 1, 1, 0.15], edge_width=3
    )
    mask.add_rectangles(np.array([[10.0, 10.0], [95.0, 375.0]]))  # the top row of coins
    mask.add_ellipses(np.array([[250.0, 300.0], [250.0, 370.0], [300.0, 370.0], [300.0, 300.0]]))
    widget.settings_view.apply_preset("Keep structure")  # the coins keep their outlines
    widget.set_config(size=args.size, iterations=args.iterations, preview_every=0, multiscale=False)
    widget.content_layer.value = coins
    widget.style_rows[0].layer.value = stain
    widget.style_rows[0].region.value = region
    widget.set_config(result_colour="style")
    widget.mask_layer.value = mask
    widget.set_label_style(1, 0)
    widget.set_label_style(2, 0)
    return run_and_shoot(viewer, widget, out, shapes_on_top)


if __name__ == "__main__":
    sys.exit(main())
