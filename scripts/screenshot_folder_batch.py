"""Make docs/images/screenshot_folder_batch.png: the widget's Batch "a folder…" rows after a small batch.

Run from the repository root (needs a display; without one it starts Xvfb through
pyvirtualdisplay, or run it under ``xvfb-run -a``)::

    python scripts/screenshot_folder_batch.py [--size 128] [--iterations 10] [--out docs/images/screenshot_folder_batch.png]

It writes three photos (PNG, JPEG, TIFF) into a temporary "photos" folder, stylises them into
"photos stylised" with the sample style, opens the first two results as layers and takes the
picture once the batch is done (the widget's saved settings go to a temporary folder).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from shots import open_viewer, run_to_end, shoot

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128, help="output long side in pixels")
    parser.add_argument("--iterations", type=int, default=10, help="steps per scale")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "screenshot_folder_batch.png")
    parser.add_argument("--window", default="1400x900", help="window size WxH")
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        import subprocess

        from pyvirtualdisplay import Display

        with Display(visible=False, size=(1920, 1200), color_depth=24):
            return subprocess.call([sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)])
    return _shoot(args)


def _photos(folder: Path) -> None:
    """Three small photos in three formats (the sample cat, flipped and cropped)."""
    import tifffile
    from PIL import Image

    from napari_style_transfer.samples import content_image

    cat = content_image()
    folder.mkdir(parents=True)
    Image.fromarray(cat).save(folder / "cat.png")
    Image.fromarray(cat[:, ::-1].copy()).save(folder / "cat_mirrored.jpg", quality=92)
    tifffile.imwrite(folder / "cat_face.tif", cat[20:260, 120:420].copy())


def _shoot(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="nst-folder-"))
    os.environ.setdefault("NAPARI_STYLE_TRANSFER_CONFIG_DIR", str(work / "settings"))
    _photos(work / "photos")

    viewer = open_viewer(args.window)
    viewer.open_sample("napari-style-transfer", "cat_and_swirls")
    viewer.layers.remove("cat (content)")  # a folder batch reads its images from the folder
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    widget.set_config(size=args.size, iterations=args.iterations, preview_every=0)
    widget.batch.choice.value = "folder"
    widget.style_rows[0].layer.value = viewer.layers["swirls (style)"]
    folder = widget.batch.folder
    folder.input.value, folder.output.value = str(work / "photos"), str(work / "photos stylised")
    folder.open_first.value = 2
    if not run_to_end(widget, 10, "batch"):
        return 1
    results = [layer for layer in viewer.layers if layer.name.endswith("stylised")]
    for i, layer in enumerate(results):  # side by side, the style below them
        layer.translate = (0, i * (layer.data.shape[1] + 8))
    style = viewer.layers["swirls (style)"]
    style.scale = (0.3, 0.3)
    style.translate = (max(layer.data.shape[0] for layer in results) + 8 if results else 0, 0)
    return shoot(viewer, widget, args.out)


if __name__ == "__main__":
    sys.exit(main())
