"""Flicker of a stylised time-lapse with and without coherence (docs/nd_masks_tiling.md).

Two synthetic time-lapses of a 64 px crop of the sample cat: ``drift``, the crop moves by
(1, 3) px per frame (the true motion is known); ``static``, a fixed field of view that
fades by 3 % per frame with fresh noise (σ = 4 of 255) in every frame, like a bleaching
fluorescence time-lapse. For each setting it prints:

* flicker — mean |R[t+1] − R[t]| relative to the same on the content (the engine's
  ``flicker``; 1.0 = the result changes as much as the content does);
* motion-compensated difference — mean |R[t+1](p) − R[t](p + motion)| in 0–255 units over
  the overlap: how much the texture *itself* changes from frame to frame (0 for the content);
* content distance — mean relative relu4_2 feature distance of each frame to its content.

    python scripts/stack_flicker.py [--scene drift|static] [--frames 8] [--size 64] [--iterations 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.images import to_rgb01, to_tensor
from napari_style_transfer.engine.stack import flicker, stylize_stack
from napari_style_transfer.engine.vgg import CAFFE, get_network, preprocess
from napari_style_transfer.samples import content_image, style_image

MOTION = (1, 3)  # (dy, dx) per frame


def timelapse(frames: int, size: int, scene: str) -> np.ndarray:
    from skimage.transform import resize

    cat = resize(content_image(), (150, 225), anti_aliasing=True, preserve_range=True)
    dy, dx = MOTION if scene == "drift" else (0, 0)
    crops = [cat[40 + t * dy : 40 + t * dy + size, 60 + t * dx : 60 + t * dx + size] for t in range(frames)]
    if scene == "static":
        rng = np.random.default_rng(0)
        crops = [c * (1 - 0.03 * t) + rng.normal(0, 4, c.shape) for t, c in enumerate(crops)]
    return np.stack(crops).round().clip(0, 255).astype(np.uint8)


def motion_compensated(stack: np.ndarray, scene: str) -> float:
    dy, dx = MOTION if scene == "drift" else (0, 0)
    a = stack[1:, : stack.shape[1] - dy or None, : stack.shape[2] - dx or None].astype(np.float64)
    b = stack[:-1, dy:, dx:].astype(np.float64)
    return float(np.abs(a - b).mean())


def content_distance(result: np.ndarray, content: np.ndarray) -> float:
    net = get_network("embedded", "max", "cpu", "relu4_2")
    out = []
    with torch.no_grad():
        for r, c in zip(result, content):
            fr = net(preprocess(to_tensor(to_rgb01(r)[0]), CAFFE), ("relu4_2",))["relu4_2"]
            fc = net(preprocess(to_tensor(to_rgb01(c)[0]), CAFFE), ("relu4_2",))["relu4_2"]
            out.append(float(torch.linalg.norm(fr - fc) / torch.linalg.norm(fc)))
    return float(np.mean(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scene", choices=("drift", "static"), default="drift")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest for tiny images)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    content = timelapse(args.frames, args.size, args.scene)
    style = style_image(size=args.size)
    config = StyleConfig(
        size=args.size, iterations=args.iterations, multiscale=False, preview_every=0, device="cpu"
    )
    motion = f"drifting {MOTION} px/frame" if args.scene == "drift" else "static, fading, noisy"
    print(f"{args.frames} frames of {args.size} px ({motion}), {args.iterations} L-BFGS steps per frame")
    print(f"content: motion-compensated difference {motion_compensated(content, args.scene):.2f}")
    print("| setting | flicker | motion-compensated difference | content distance | time |")
    print("|---|---|---|---|---|")
    for name, coherence, motion, weight in [
        ("independent slices (coherence=False)", False, "none", 0.0),
        ("coherence, motion='none' (previous result as it is)", True, "none", 0.0),
        (
            "coherence, motion='shift' (default: previous result moved by the estimated drift)",
            True,
            "shift",
            0.0,
        ),
        ("coherence, motion='shift', consistency_weight=1", True, "shift", 1.0),
    ]:
        start = time.perf_counter()
        result = stylize_stack(
            content, style, config, coherence=coherence, motion=motion, consistency_weight=weight
        )
        seconds = time.perf_counter() - start
        print(
            f"| {name} | {flicker(result, content):.3f} | {motion_compensated(result, args.scene):.2f} | "
            f"{content_distance(result, content):.3f} | {seconds:.0f} s |",
            flush=True,
        )


if __name__ == "__main__":
    main()
