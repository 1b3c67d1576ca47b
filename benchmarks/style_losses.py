"""The style losses side by side: Gram, Wasserstein (Gaussian W2), sliced Wasserstein.

    python benchmarks/style_losses.py --size 256 --iterations 100 --json docs/results/style_losses_256.json \
        --images out/style_losses --montages docs/images

On each pair of ``benchmarks/common.py`` every loss runs in this one process, one after the
other (pair by pair, so that a change in the machine's load hits all three alike), with the
engine's defaults except ``size``, ``iterations``, ``style_loss`` and ``preview_every=0``.
Recorded per run:

- seconds per step: from the first step's event to the last one's, over the steps between
  (the targets and the network loading are not in it); and, less disturbed by a changing
  machine load, ``--timing-rounds`` rounds of short single-scale runs of every loss in turn
  on the first pair (the median per loss over the rounds, in ``step_times``);
- style and content distances as ``benchmarks/quality.py`` scores them (Gram-based: the
  Gram loss optimises the style one directly);
- two distribution distances that none of the losses optimises:
  ``colour_w1``: the 1-D Wasserstein-1 distance between the output's and the style's pixel
  values, averaged over R, G, B (in [0, 1] units: a colour-histogram distance), and
  ``relu3_2_w1``: the same per channel of the VGG-19 relu3_2 features (a layer no loss
  uses), averaged and divided by the style features' mean absolute value;
- each loss's own final style term (``own_style``: its own distance, not comparable across losses).

``--montages DIR`` writes one picture per pair: content, style, then each loss's result.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from common import PAIRS, distances, load_pair, write_report
from napari_style_transfer.arrays import fit_long_side
from napari_style_transfer.engine import StyleConfig, get_network, stylize_iter
from napari_style_transfer.engine.config import STYLE_LOSSES
from napari_style_transfer.engine.images import resize, to_rgb01, to_tensor
from napari_style_transfer.engine.vgg import CAFFE, preprocess
from napari_style_transfer.files import write_image

#: Quantile levels of the 1-D distribution distances.
LEVELS = (np.arange(1000) + 0.5) / 1000


def _rgb(image: np.ndarray, shape: tuple[int, int] | None = None) -> torch.Tensor:
    t = to_tensor(to_rgb01(image)[0])
    return t if shape is None else resize(t, shape).clamp(0, 1)


def _w1(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """1-D Wasserstein-1 distance between the rows of ``a`` and of ``b`` (samples along the last axis)."""
    return np.abs(np.quantile(a, LEVELS, axis=-1) - np.quantile(b, LEVELS, axis=-1)).mean(axis=0)


def distribution_distances(output: np.ndarray, style: np.ndarray, style_long_side: int) -> dict[str, float]:
    """``colour_w1`` and ``relu3_2_w1`` of ``output`` against ``style`` (see the module docstring)."""
    style_t = _rgb(style, fit_long_side(style.shape[:2], style_long_side))
    out_t = _rgb(output)
    colour = _w1(out_t[0].reshape(3, -1).numpy(), style_t[0].reshape(3, -1).numpy())
    net = get_network("embedded", "max", "cpu", "relu3_2")
    with torch.no_grad():
        fo = net(preprocess(out_t, CAFFE), ("relu3_2",))["relu3_2"][0].flatten(1).numpy()
        fs = net(preprocess(style_t, CAFFE), ("relu3_2",))["relu3_2"][0].flatten(1).numpy()
    feature = _w1(fo, fs).mean() / max(float(np.abs(fs).mean()), 1e-12)
    return {"colour_w1": float(colour.mean()), "relu3_2_w1": float(feature)}


def timed_run(content: np.ndarray, style: np.ndarray, config: StyleConfig) -> dict:
    """One run: seconds per step (first to last step event), steps, own final style term, result."""
    stamps: list[float] = []
    last = None
    for event in stylize_iter(content, style, config):
        stamps.append(time.perf_counter())
        last = event
    assert last is not None and last.done
    return {
        "s_per_step": round((stamps[-1] - stamps[0]) / max(1, len(stamps) - 1), 4),
        "steps": last.step,
        "own_style": round(float(last.losses.get("style", float("nan"))), 5),
        "precision": last.info.get("precision"),
        "result": last.preview,
    }


def interleaved_step_times(
    content: np.ndarray, style: np.ndarray, config: StyleConfig, losses: list[str], rounds: int
) -> dict[str, float]:
    """Median seconds per step of each loss over ``rounds`` rounds that run every loss in turn."""
    times: dict[str, list[float]] = {loss: [] for loss in losses}
    for _ in range(rounds):
        for loss in losses:
            times[loss].append(timed_run(content, style, config.replace(style_loss=loss))["s_per_step"])
    return {loss: round(float(np.median(t)), 4) for loss, t in times.items()}


def montage(images: list[np.ndarray], path: Path, height: int) -> None:
    """The images side by side at ``height`` px, 4 px apart, as a palette PNG (small files)."""
    tiles = []
    for image in images:
        rgb = (to_rgb01(image)[0] * 255).round().astype(np.uint8)
        h, w = rgb.shape[:2]
        tiles.append(Image.fromarray(rgb).resize((max(1, round(w * height / h)), height), Image.LANCZOS))
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    canvas.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(tmp, optimize=True)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--precision", default="auto")
    p.add_argument("--losses", nargs="+", choices=STYLE_LOSSES, default=list(STYLE_LOSSES))
    p.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=list(PAIRS))
    p.add_argument("--json", type=Path)
    p.add_argument("--images", type=Path, help="write each result here as PNG")
    p.add_argument("--montages", type=Path, help="write one montage per pair here")
    p.add_argument("--montage-height", type=int, default=150)
    p.add_argument("--timing-rounds", type=int, default=3, help="rounds of 8-step runs of every loss")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    get_network()  # loading the weights is not part of any run's time
    report = {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": args.size,
        "iterations": args.iterations,
        "runs": [],
    }
    start = time.perf_counter()
    for pair in args.pairs:
        content, style = load_pair(pair)
        results = []
        for loss in args.losses:
            config = StyleConfig(
                size=args.size, iterations=args.iterations, style_loss=loss, precision=args.precision,
                preview_every=0,
            )  # fmt: skip
            run = timed_run(content, style, config)
            result = run.pop("result")
            results.append(result)
            run.update(pair=pair, style_loss=loss)
            run.update(distances(result, content, style, args.size))  # style_scale 1: same long side
            run.update(distribution_distances(result, style, args.size))
            if args.images:
                args.images.mkdir(parents=True, exist_ok=True)
                write_image(args.images / f"{pair}_{loss}_{args.size}px_{args.iterations}it.png", result)
            report["runs"].append(run)
            print(json.dumps(run), flush=True)
        if args.montages:
            montage(
                [content, style, *results], args.montages / f"style_losses_{pair}.png", args.montage_height
            )
    if args.timing_rounds:
        content, style = load_pair(args.pairs[0])
        # One scale: a multi-scale run would count the next scale's target set-up as step time.
        config = StyleConfig(
            size=args.size, iterations=8, precision=args.precision, preview_every=0, multiscale=False
        )
        report["step_times"] = interleaved_step_times(content, style, config, args.losses, args.timing_rounds)
        print(json.dumps({"step_times": report["step_times"], "pair": args.pairs[0]}), flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        write_report(args.json, report)
    print(
        f"{'pair':20s} {'loss':12s} {'s/step':>7s} {'style':>7s} {'content':>8s} {'colour':>7s} {'relu3_2':>8s}"
    )
    for r in report["runs"]:
        print(
            f"{r['pair']:20s} {r['style_loss']:12s} {r['s_per_step']:7.3f} {r['style_distance']:7.4f} "
            f"{r['content_distance']:8.4f} {r['colour_w1']:7.4f} {r['relu3_2_w1']:8.4f}"
        )
    return report


if __name__ == "__main__":
    main()
