"""The main job: stylise the bundled sample pair, write a PNG, and open napari when there is a display.

python scripts/demo.py -o out/demo.png --size 384 --iterations 150 [--no-viewer]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("out/demo.png"))
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--iterations", type=int, default=150)
    parser.add_argument(
        "--no-viewer", action="store_true", help="do not open napari even if a display is there"
    )
    args = parser.parse_args()

    from napari_style_transfer.cli import run
    from napari_style_transfer.files import write_image
    from napari_style_transfer.samples import sample_pair

    args.output.parent.mkdir(parents=True, exist_ok=True)
    content, style = sample_pair()
    content_path = write_image(args.output.with_name("demo_content.png"), content)
    style_path = write_image(args.output.with_name("demo_style.png"), style)
    print(
        f"Stylising {content_path} in the style of {style_path} ({args.size} px, {args.iterations} iterations per scale)…"
    )
    start = time.perf_counter()
    code = run(
        [
            str(content_path),
            str(style_path),
            "-o",
            str(args.output),
            "--size",
            str(args.size),
            "--iterations",
            str(args.iterations),
        ]
    )
    if code != 0:
        return code
    print(f"Done in {time.perf_counter() - start:.0f} s. Result: {args.output.resolve()}")

    if args.no_viewer or not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform in ("darwin", "win32")
    ):
        print("No display found: not opening napari (the result is the PNG above).")
        return 0
    try:
        import napari
    except ImportError:
        print("napari is not installed: not opening the viewer.")
        return 0
    from napari_style_transfer.files import read_image

    viewer = napari.Viewer(title="napari-style-transfer demo")
    viewer.open_sample("napari-style-transfer", "cat_and_swirls")
    viewer.add_image(read_image(args.output), name="demo result", rgb=True, visible=False)
    viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    print("napari is open with the sample layers and the Style Transfer widget: press Run.")
    napari.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
