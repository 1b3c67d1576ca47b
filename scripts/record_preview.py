"""Make docs/images/live_preview.gif: the widget running in napari, its live preview updating.

Run from the repository root (needs a display; without one it starts Xvfb through
pyvirtualdisplay, or run it under ``xvfb-run -a``)::

    python scripts/record_preview.py [--size 256] [--iterations 40] [--out docs/images/live_preview.gif]

It opens the sample pair, docks the Style Transfer widget (defaults, its saved settings kept in a
temporary folder), presses Run and grabs the window every ``--every`` seconds from its first step
until it ends, then holds the final image. The frames are scaled to ``--width`` pixels and written as
one looping GIF with a shared 256-colour palette (Pillow stores only what changed between
frames). ``--png-frames DIR`` also writes a few frames as PNG, to look at them.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="output long side in pixels")
    parser.add_argument("--iterations", type=int, default=40, help="steps per scale")
    parser.add_argument("--every", type=float, default=1.0, help="seconds between grabbed frames")
    parser.add_argument("--frame-ms", type=int, default=180, help="how long each frame shows in the GIF")
    parser.add_argument("--hold-ms", type=int, default=3000, help="how long the final image shows")
    parser.add_argument("--width", type=int, default=880, help="width of the GIF in pixels")
    parser.add_argument("--window", default="1500x800", help="window size WxH")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "live_preview.gif")
    parser.add_argument("--png-frames", type=Path, default=None, help="also write a few frames here")
    args = parser.parse_args(argv)

    if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
        # Start Xvfb and run this script again inside it (Qt must be gone before Xvfb stops).
        import subprocess

        from pyvirtualdisplay import Display

        with Display(visible=False, size=(1920, 1200), color_depth=24):
            return subprocess.call([sys.executable, __file__, *(sys.argv[1:] if argv is None else argv)])
    frames = _record(args)
    if not frames:
        return 1
    _write_gif(frames, args)
    if args.png_frames is not None:
        _write_pngs(frames, args.png_frames)
    return 0


def _open_viewer(args: argparse.Namespace):
    """napari with the sample pair and the docked widget, set for a short run."""
    os.environ.setdefault("NAPARI_STYLE_TRANSFER_CONFIG_DIR", tempfile.mkdtemp(prefix="nst-recording-"))
    import napari

    width, height = (int(v) for v in args.window.split("x"))
    viewer = napari.Viewer(title="napari — Style Transfer", show=True)
    viewer.window.resize(width, height)
    viewer.open_sample("napari-style-transfer", "cat_and_swirls")
    content, style = viewer.layers["cat (content)"], viewer.layers["swirls (style)"]
    # the style, small, beside the content; the result appears over the content
    zoom = content.data.shape[0] / 2 / style.data.shape[0]
    style.scale = (zoom, zoom)
    style.translate = (0, content.data.shape[1] + 12)
    _, widget = viewer.window.add_plugin_dock_widget("napari-style-transfer", "Style Transfer")
    widget.set_config(size=args.size, iterations=args.iterations, preview_every=1, multiscale=False)
    return viewer, widget


def _record(args: argparse.Namespace) -> list:
    """Grab the window before Run, every ``args.every`` s during the run, and once at the end."""
    from qtpy.QtWidgets import QApplication

    viewer, widget = _open_viewer(args)
    app = QApplication.instance()
    _settle(app, 1.0)
    viewer.reset_view()  # once the window has its size: the whole image fits the canvas
    _settle(app, 0.5)
    frames = [_grab(viewer)]
    if not widget.run():
        print("the run did not start", file=sys.stderr)
        return []
    deadline = time.monotonic() + 900
    next_grab = time.monotonic()
    while widget.running and time.monotonic() < deadline:
        app.processEvents()
        stepping = widget.progress_bar.value > 0  # no frames of the network loading
        if stepping and time.monotonic() >= next_grab:
            frames.append(_grab(viewer))
            next_grab = time.monotonic() + args.every
        time.sleep(0.01)
    if widget.running:
        print("the run did not finish in 15 minutes", file=sys.stderr)
        return []
    _settle(app, 0.5)
    frames.append(_grab(viewer))
    print(f"{len(frames)} frames; {widget.status.value}")
    viewer.close()
    return frames


def _settle(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _grab(viewer):
    """The whole window (canvas, layer list, dock widget) as an RGB array."""
    return viewer.screenshot(canvas_only=False, flash=False)[..., :3]


def _write_gif(frames: list, args: argparse.Namespace) -> None:
    from PIL import Image

    height = round(frames[0].shape[0] * args.width / frames[0].shape[1])
    pictures = [Image.fromarray(f).resize((args.width, height), Image.Resampling.LANCZOS) for f in frames]
    # one palette for every frame (from a strip of several), so colours do not flicker
    strip = pictures[:: max(1, len(pictures) // 8)] + [pictures[-1]]
    sample = Image.new("RGB", (args.width, height * len(strip)))
    for i, picture in enumerate(strip):
        sample.paste(picture, (0, height * i))
    palette = sample.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    indexed = [p.quantize(palette=palette, dither=Image.Dither.NONE) for p in pictures]
    durations = [args.frame_ms] * len(indexed)
    durations[0] = durations[-1] = args.hold_ms
    args.out.parent.mkdir(parents=True, exist_ok=True)
    indexed[0].save(
        args.out,
        save_all=True,
        append_images=indexed[1:],
        duration=durations,
        loop=0,
        optimize=True,
        disposal=1,
    )
    print(
        f"{args.out} ({args.out.stat().st_size / 1024:.0f} KB, {len(indexed)} frames, {args.width}x{height})"
    )


def _write_pngs(frames: list, folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    picks = sorted({0, 1, len(frames) // 3, 2 * len(frames) // 3, len(frames) - 1})
    for i in picks:
        Image.fromarray(frames[i]).save(folder / f"frame{i:03d}.png")
    print(f"frames {picks} written to {folder}")


if __name__ == "__main__":
    sys.exit(main())
