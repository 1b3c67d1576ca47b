"""Does a Laplacian-pyramid parametrisation of the image make a scale converge in fewer steps?

    python benchmarks/param_experiment.py --runs fine:3:1:60 fine:0:1:60 --json out/param.json
    python benchmarks/param_experiment.py --pair grayscale --runs both:3:1:150:100 --json out/param.json

The engine's objective and L-BFGS, on another parametrisation of the image (docs/quality.md):
``levels=0`` is the engine's own (pixels); ``levels=K`` optimises K+1 bands, the image being
``L0 + Σ w^k · upsample(Lk)`` with Lk at 1/2^k of the size (``w=1`` gives a 1/f² preconditioner,
like the decorrelated spaces of feature visualisation). ``fine:…`` runs the output scale from
the engine's own coarse scale (300 steps at half size, cached in /tmp); ``both:…`` runs both
scales on the parametrisation. Prints the style and content distances (benchmarks/quality.py)
every ``--every`` steps and the seconds spent in steps; writes each result as PNG next to the
JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from common import PAIRS, distances, load_pair, write_report
from napari_style_transfer.arrays import fit_long_side
from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.content_run import ContentRun
from napari_style_transfer.engine.guidance import Guidance
from napari_style_transfer.engine.images import resize
from napari_style_transfer.engine.lbfgs import CompactLBFGS, optimizer_step
from napari_style_transfer.engine.multiscale import run_scales
from napari_style_transfer.engine.stopping import Budget, Numbering
from napari_style_transfer.engine.stylizer import Stylizer
from napari_style_transfer.files import write_image
from napari_style_transfer.files.atomic import atomic_target


def coarse_result(run: ContentRun, side: int, steps: int, cache: Path) -> torch.Tensor:
    if cache.exists():
        return torch.load(cache)
    sizes = [fit_long_side(run.content_shape, side)]
    gen = run_scales(run, sizes, None, Numbering([Budget(steps)], 1), final=False)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            image = stop.value.image.detach()
            break
    with atomic_target(cache) as temporary:  # a run cut short leaves no half-written cache
        torch.save(image, temporary)
    return image


class Pyramid:
    def __init__(self, start: torch.Tensor, levels: int, weight: float):
        h, w = start.shape[-2:]
        self.size = (h, w)
        self.shapes = [(1, 3, -(-h // 2**k), -(-w // 2**k)) for k in range(levels + 1)]
        self.weights = [weight**k for k in range(levels + 1)]
        counts = [s[2] * s[3] * 3 for s in self.shapes]
        self.offsets = [sum(counts[:k]) for k in range(len(counts) + 1)]
        self.param = torch.zeros(self.offsets[-1])
        self.param[: counts[0]] = start.reshape(-1)

    def image(self) -> torch.Tensor:
        out = None
        for k, (shape, w) in enumerate(zip(self.shapes, self.weights)):
            band = self.param[self.offsets[k] : self.offsets[k + 1]].view(shape)
            if k:
                band = w * F.interpolate(band, size=self.size, mode="bilinear", align_corners=False)
            out = band if out is None else out + band
        return out


@dataclass
class Settings:
    levels: int
    weight: float
    steps: int
    every: int  # distances every N steps (0: only at the end)
    history: int = 50


def scale_run(run, start, content, style, side: int, s: Settings, out_side: int) -> tuple[torch.Tensor, dict]:
    """One scale from ``start`` (None: the content) on one parametrisation; checkpoints if ``every``."""
    shape = fit_long_side(run.content_shape, side)
    objective, content_t = run.objective(shape)
    first = content_t.clone() if start is None else resize(start, shape).clamp(0, 1)
    pyramid = Pyramid(first, s.levels, s.weight)
    param = pyramid.param.requires_grad_(True)
    opt = CompactLBFGS([param], lr=1.0, history_size=s.history)

    def closure():
        opt.zero_grad(set_to_none=True)
        loss, terms = objective.loss(pyramid.image())
        loss.backward()
        return loss, terms

    checkpoints, spent, losses = [], 0.0, []
    for step in range(1, s.steps + 1):
        t = time.perf_counter()
        result = optimizer_step(opt, closure)
        spent += time.perf_counter() - t
        losses.append(result.values["total"])
        if (s.every and step % s.every == 0) or step == s.steps:
            with torch.no_grad():
                shown = run.render(resize(pyramid.image(), fit_long_side(run.content_shape, out_side)))
            d = distances(shown, content, style, out_side)
            checkpoints.append({"side": side, "step": step, "seconds": round(spent, 2), **d})
            print(json.dumps({"levels": s.levels, "weight": s.weight, **checkpoints[-1]}), flush=True)
    with torch.no_grad():
        image = pyramid.image().detach()
    return image, {"side": side, **asdict(s), "checkpoints": checkpoints, "losses": losses}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pair", choices=sorted(PAIRS), default="photo_painting")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--coarse-steps", type=int, default=300, help="the cached engine coarse scale")
    p.add_argument(
        "--runs",
        nargs="+",
        default=["fine:0:1:60", "fine:3:1:60"],
        help="fine:LEVELS:WEIGHT:STEPS (from the cached coarse result) or "
        "both:LEVELS:WEIGHT:COARSE_STEPS:FINE_STEPS (both scales on the parametrisation)",
    )
    p.add_argument("--every", type=int, default=10)
    p.add_argument("--history", type=int, default=50)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    content, style = load_pair(args.pair)
    config = StyleConfig(size=args.size, precision="fp32", seed=0, device="cpu")
    stylizer = Stylizer(style, config)
    run = ContentRun(stylizer, content, Guidance())
    half = args.size // 2
    report = []
    for spec in args.runs:
        kind, levels, weight, *steps = spec.split(":")
        levels, weight, steps = int(levels), float(weight), [int(n) for n in steps]
        if kind == "fine":
            cache = Path(f"/tmp/coarse_{args.pair}_{args.size}_{args.coarse_steps}.pt")
            start = coarse_result(run, half, args.coarse_steps, cache)
        else:
            coarse = Settings(levels, weight, steps[0], 0, args.history)
            start, first = scale_run(run, None, content, style, half, coarse, args.size)
            steps = steps[1:]
        fine = Settings(levels, weight, steps[0], args.every, args.history)
        image, record = scale_run(run, start, content, style, args.size, fine, args.size)
        record["spec"] = spec
        if kind == "both":
            record["coarse"] = first
        report.append(record)
        if args.json:
            write_report(args.json, {"pair": args.pair, "runs": report})
            write_image(
                args.json.with_name(f"{args.json.stem}_{spec.replace(':', '_')}.png"), run.render(image)
            )


if __name__ == "__main__":
    main()
