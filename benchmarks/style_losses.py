"""The style losses side by side: Gram, Wasserstein (Gaussian W2), sliced Wasserstein, and mixtures.

    python benchmarks/style_losses.py --size 256 --iterations 100 --json docs/results/style_losses_256.json \
        --images out/style_losses --montages docs/images

On each pair (``benchmarks/common.py``'s four, plus :data:`EXTRA_PAIRS`) every loss runs in
this one process, one after the other (pair by pair, so that a change in the machine's load
hits all alike), with the engine's defaults except ``size``, ``iterations``, ``style_loss``
(and ``style_loss_mix``: a combination such as ``gram+sliced`` runs once per ``--mixes``
value) and ``preview_every=0``. ``--iterations auto`` runs the stopping rule; ``steps``
then says where it stopped. Recorded per run:

- seconds per step: from the first step's event to the last one's, over the steps between
  (the targets and the network loading are not in it); and, less disturbed by a changing
  machine load, ``--timing-rounds`` rounds of short single-scale runs of every loss in turn
  on the first pair (the median per loss over the rounds, in ``step_times``);
- style and content distances as ``benchmarks/quality.py`` scores them (Gram-based: the
  Gram loss optimises the style one directly);
- distribution distances that none of the losses optimises:
  ``colour_w1``: the 1-D Wasserstein-1 distance between the output's and the style's pixel
  values, averaged over R, G, B (in [0, 1] units: a colour-histogram distance);
  ``relu3_2_w1``: the same per channel of the VGG-19 relu3_2 features (a layer no loss
  uses), averaged and divided by the style features' mean absolute value; and
  ``probe_sw``: a relative sliced Wasserstein distance on layers no loss uses
  (:data:`PROBE_LAYERS`), with :data:`PROBE_DIRECTIONS` directions fixed by
  :data:`PROBE_SEED` (neither the sliced loss's count nor its seed), mean over the layers;
- ``ssim``: the structure kept, the SSIM of the output's grey levels against the content's;
- each loss's own final style term (``own_style``: its own distance, not comparable across losses).

The JSON report is rewritten after each run; ``--montages DIR`` writes one picture per pair:
content, style, then each run's result.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from common import PAIRS, distances, montage, per_step, start_report, write_report
from napari_style_transfer.arrays import fit_long_side
from napari_style_transfer.engine import StyleConfig, get_network
from napari_style_transfer.engine.config import STYLE_COMBINATIONS, STYLE_LOSSES, STYLE_STATISTICS
from napari_style_transfer.engine.images import resize, to_rgb01, to_tensor
from napari_style_transfer.engine.losses import random_directions, sorted_quantiles
from napari_style_transfer.engine.stopping import AUTO
from napari_style_transfer.engine.vgg import CAFFE, preprocess
from napari_style_transfer.files import write_image

#: Quantile levels of the 1-D distribution distances.
LEVELS = (np.arange(1000) + 0.5) / 1000
#: The probe sliced Wasserstein distance: layers no loss uses, its own direction count and seed.
PROBE_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
PROBE_DIRECTIONS = 48
PROBE_SEED = 2027
PROBE_QUANTILES = 1024


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def flat_colour_painting() -> np.ndarray:
    """A poster-like style: ``coffee`` as flat patches of its mean colours, saturated (no download)."""
    from skimage.color import hsv2rgb, label2rgb, rgb2hsv
    from skimage.segmentation import slic

    photo = _skimage("coffee")
    patches = label2rgb(slic(photo, n_segments=80, compactness=20, start_label=1), photo, kind="avg")
    hsv = rgb2hsv(patches)
    hsv[..., 1] = np.clip(hsv[..., 1] * 1.8, 0, 1)
    return (hsv2rgb(hsv) * 255).round().astype(np.uint8)


#: Two more pairs, from images in scikit-image's wheel: a flat, strongly coloured painting-like
#: style (where Gram matrices wash colours out) and a fine texture.
EXTRA_PAIRS = {
    "flat_colour": (lambda: _skimage("astronaut"), flat_colour_painting),
    "fine_texture": (lambda: _skimage("chelsea"), lambda: _skimage("grass")),
}
ALL_PAIRS = {**PAIRS, **EXTRA_PAIRS}
#: The losses run unless ``--losses`` says otherwise: each statistic and the Gram + sliced mixture.
DEFAULT_LOSSES = (*STYLE_STATISTICS, "gram+sliced")


def load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) of one of :data:`ALL_PAIRS`."""
    content, style = ALL_PAIRS[name]
    return content(), style()


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


def probe_sliced_distance(output: np.ndarray, style: np.ndarray, style_long_side: int) -> float:
    """``probe_sw`` (see the module docstring): ‖q_out − q_style‖ / ‖q_style‖ over fixed projections."""
    style_t = _rgb(style, fit_long_side(style.shape[:2], style_long_side))
    net = get_network("embedded", "max", "cpu", PROBE_LAYERS[-1])
    with torch.no_grad():
        fo = net(preprocess(_rgb(output), CAFFE), PROBE_LAYERS)
        fs = net(preprocess(style_t, CAFFE), PROBE_LAYERS)
    generator = torch.Generator().manual_seed(PROBE_SEED)
    values = []
    for name in PROBE_LAYERS:
        a, b = fo[name][0].flatten(1).float(), fs[name][0].flatten(1).float()  # (C, K)
        directions = random_directions(a.shape[0], PROBE_DIRECTIONS, generator, a.device)
        qa = sorted_quantiles(directions.T @ a, PROBE_QUANTILES)
        qb = sorted_quantiles(directions.T @ b, PROBE_QUANTILES)
        values.append(float(torch.linalg.norm(qa - qb) / torch.linalg.norm(qb).clamp_min(1e-12)))
    return float(np.mean(values))


def structure_ssim(output: np.ndarray, content: np.ndarray) -> float:
    """SSIM of the output's grey levels against the content's (resized to the output's size)."""
    from skimage.color import rgb2gray
    from skimage.metrics import structural_similarity
    from skimage.transform import resize as sk_resize

    out = rgb2gray(to_rgb01(output)[0])
    ref = sk_resize(rgb2gray(to_rgb01(content)[0]), out.shape, anti_aliasing=True)
    return float(structural_similarity(out, ref, data_range=1.0))


def timed_run(content: np.ndarray, style: np.ndarray, config: StyleConfig) -> dict:
    """One run: seconds per step (first to last step event), steps, own final style term, result."""
    seconds, last = per_step(content, style, config)
    return {
        "s_per_step": seconds,
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument(
        "--iterations", type=lambda v: v if v == AUTO else int(v), default=100, help="a number or 'auto'"
    )
    p.add_argument("--precision", default="auto")
    p.add_argument("--losses", nargs="+", choices=STYLE_LOSSES, default=list(DEFAULT_LOSSES))
    p.add_argument(
        "--mixes", nargs="+", type=float, default=[0.25, 0.5], help="style_loss_mix of combinations"
    )
    p.add_argument("--pairs", nargs="+", choices=sorted(ALL_PAIRS), default=list(ALL_PAIRS))
    p.add_argument("--json", type=Path)
    p.add_argument("--images", type=Path, help="write each result here as PNG")
    p.add_argument("--montages", type=Path, help="write one montage per pair here")
    p.add_argument("--montage-height", type=int, default=150)
    p.add_argument("--timing-rounds", type=int, default=3, help="rounds of 8-step runs of every loss")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    return p.parse_args(argv)


def runs_of(losses: list[str], mixes: list[float]) -> list[tuple[str, float | None]]:
    """(style_loss, style_loss_mix) of each run: a combination once per mix, a single statistic once."""
    return [(loss, mix) for loss in losses for mix in (mixes if loss in STYLE_COMBINATIONS else [None])]


def run_pair(pair: str, args: argparse.Namespace, report: dict) -> list[np.ndarray]:
    """Every run on one pair, scored; each appended to ``report`` (rewritten after each run)."""
    content, style = load_pair(pair)
    results = []
    for loss, mix in runs_of(args.losses, args.mixes):
        config = StyleConfig(
            size=args.size, iterations=args.iterations, style_loss=loss, precision=args.precision,
            preview_every=0, **({} if mix is None else {"style_loss_mix": mix}),
        )  # fmt: skip
        run = timed_run(content, style, config)
        result = run.pop("result")
        results.append(result)
        label = loss if mix is None else f"{loss}@{mix:g}"
        run.update(pair=pair, style_loss=loss, style_loss_mix=mix, label=label)
        run.update(distances(result, content, style, args.size))  # style_scale 1: same long side
        run.update(distribution_distances(result, style, args.size))
        run["probe_sw"] = round(probe_sliced_distance(result, style, args.size), 5)
        run["ssim"] = round(structure_ssim(result, content), 5)
        if args.images:
            args.images.mkdir(parents=True, exist_ok=True)
            write_image(args.images / f"{pair}_{label}_{args.size}px_{args.iterations}it.png", result)
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
        if args.json:
            write_report(args.json, report)
    if args.montages:
        montage([content, style, *results], args.montages / f"style_losses_{pair}.png", args.montage_height)
    return results


def print_table(report: dict) -> None:
    names = ("s/step", "steps", "style", "content", "colour", "relu3_2", "probe_sw", "ssim")
    print(f"{'pair':20s} {'loss':18s} " + " ".join(f"{n:>8s}" for n in names))
    for r in report["runs"]:
        values = (r["s_per_step"], r["steps"], r["style_distance"], r["content_distance"], r["colour_w1"])
        values += (r["relu3_2_w1"], r["probe_sw"], r["ssim"])
        print(f"{r['pair']:20s} {r['label']:18s} " + " ".join(f"{v:8.4g}" for v in values))


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = start_report(
        args,
        mixes=args.mixes,
        probe={"layers": PROBE_LAYERS, "directions": PROBE_DIRECTIONS, "seed": PROBE_SEED},
    )
    start = time.perf_counter()
    for pair in args.pairs:
        run_pair(pair, args, report)
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
    print_table(report)
    return report


if __name__ == "__main__":
    main()
