"""Make docs/images/timelapse.gif: a short time-lapse movie stylised by the command line, beside its content.

The time-lapse is made here, so the GIF is licence-clean: a window panning over scikit-image's
``coins`` (Greek coins from the Brooklyn Museum, no known copyright restrictions) while the
light slowly fades, as in a bleaching microscope time-lapse. It is written as an MP4, stylised
by ``napari-style-transfer clip.mp4 style.png -o result.mp4`` (a movie is a stack: coherence on)
with the package's generated 'Stained glass' style, and the two movies are laid side by side
as one looping GIF. About two minutes on two CPU cores::

    python scripts/make_timelapse_demo.py [--frames 16] [--size 128] [--iterations 20]
        [--out docs/images/timelapse.gif] [--keep DIR] [--png-frame FILE]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def timelapse(frames: int, height: int = 150, width: int = 200) -> np.ndarray:
    """(T, H, W, 3) uint8: the coins seen through a window that drifts (3, 6) px a frame, fading 1.5 % a frame."""
    from skimage import data

    coins = data.coins().astype(np.float64)
    step_y, step_x = 3, 6
    if (frames - 1) * step_y + height > coins.shape[0] or (frames - 1) * step_x + width > coins.shape[1]:
        raise SystemExit(f"--frames {frames}: the window would leave the picture (at most 30 frames)")
    out = []
    for t in range(frames):
        crop = coins[t * step_y : t * step_y + height, t * step_x : t * step_x + width] * (1 - 0.015 * t)
        out.append(np.repeat(crop[..., None], 3, axis=-1))
    return np.stack(out).round().clip(0, 255).astype(np.uint8)


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Each frame of ``left`` (resized to ``right``'s height) beside ``right``'s, on white."""
    from skimage.transform import resize

    count, height, width = right.shape[:3]
    scaled_width = round(left.shape[2] * height / left.shape[1])
    scaled = resize(left, (count, height, scaled_width, 3), preserve_range=True, anti_aliasing=True)
    canvas = np.full((count, height, scaled_width + gap + width, 3), 255, np.uint8)
    canvas[:, :, :scaled_width] = scaled.round().clip(0, 255).astype(np.uint8)
    canvas[:, :, scaled_width + gap :] = right
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=128, help="long side of the stylised frames")
    parser.add_argument("--iterations", type=int, default=20, help="L-BFGS steps per frame")
    parser.add_argument("--fps", type=float, default=6.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "timelapse.gif")
    parser.add_argument("--keep", type=Path, default=None, help="keep the MP4s and the style in this folder")
    parser.add_argument("--png-frame", type=Path, default=None, help="also write the middle frame as PNG")
    args = parser.parse_args(argv)

    from napari_style_transfer.cli import run
    from napari_style_transfer.files import write_image
    from napari_style_transfer.files.movie import read_movie, write_movie
    from napari_style_transfer.samples import gallery_image

    folder = args.keep or Path(tempfile.mkdtemp(prefix="timelapse-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    clip = write_movie(folder / "coins.mp4", timelapse(args.frames), args.fps)
    style = write_image(folder / "stained_glass.png", gallery_image("stained_glass"))
    result = folder / "coins_stained_glass.mp4"
    start = time.perf_counter()
    argv = [str(clip), str(style), "-o", str(result), "--size", str(args.size)]
    code = run([*argv, "--iterations", str(args.iterations), "--no-multiscale", "--device", "cpu"])
    if code:
        return code
    print(f"stylised {args.frames} frames in {time.perf_counter() - start:.0f} s")
    frames = side_by_side(read_movie(clip).frames, read_movie(result).frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_movie(args.out, frames, args.fps)
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 2**10:.0f} KiB, {frames.shape[2]}×{frames.shape[1]} px)"
    )
    if args.png_frame is not None:
        write_image(args.png_frame, frames[len(frames) // 2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
