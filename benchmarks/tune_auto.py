"""Data for choosing iterations="auto": distances along many step schedules, on the four pairs.

    python benchmarks/tune_auto.py --size 512 --json out/tune_auto.json     # a GPU makes it minutes

For each pair of benchmarks/common.py, each schedule (the output sizes of the scales and a budget
per scale: a fixed step count, or a stopping rule) runs through the engine's own multi-scale
driver. Recorded per schedule: the steps taken at each scale, the loss after every step, and the
style and content distances (benchmarks/quality.py) of the image every ``--every`` steps at the
output size and at the end. The cost of a schedule on another machine follows from its steps per
scale and that machine's time per step at each size (docs/quality.md does this for the CPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from common import PAIRS, distances, load_pair, write_report
from napari_style_transfer.arrays import fit_long_side
from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.content_run import ContentRun
from napari_style_transfer.engine.guidance import Guidance
from napari_style_transfer.engine.multiscale import run_scales
from napari_style_transfer.engine.stopping import AUTO_COARSE, AUTO_FINAL, Budget, Numbering
from napari_style_transfer.engine.stylizer import Stylizer
from napari_style_transfer.files import write_image


def rule(max_steps: int, tolerance: float, min_steps: int, window: int = 20) -> Budget:
    return Budget(max_steps, window, tolerance, min_steps, expected=max_steps // 2)


def schedules(size: int) -> dict[str, tuple[list[int], list[Budget]]]:
    """Name → (long side of each scale, budget of each scale)."""
    two, three = [size // 2, size], [size // 4, size // 2, size]
    out: dict[str, tuple[list[int], list[Budget]]] = {"fixed_300_300": (two, [Budget(300), Budget(300)])}
    for coarse in (100, 200, 400):
        out[f"fixed_{coarse}_300"] = (two, [Budget(coarse), Budget(300)])
    for middle in (100, 250):
        out[f"fixed_150_{middle}_300"] = (three, [Budget(150), Budget(middle), Budget(300)])
    out["auto_default"] = (two, [AUTO_COARSE, AUTO_FINAL])
    out["auto_c005_f03"] = (two, [rule(500, 0.005, 60), rule(300, 0.03, 30)])
    out["auto_c003_f05"] = (two, [rule(600, 0.003, 60), rule(300, 0.05, 20)])
    out["auto3_c01_f02"] = (three, [rule(500, 0.01, 60), rule(500, 0.01, 40), rule(300, 0.02, 30)])
    return out


def run_schedule(stylizer, content, style, sides, budgets, every: int, device: str, image_path=None) -> dict:
    run = ContentRun(stylizer, content, Guidance())
    sizes = [fit_long_side(run.content_shape, side) for side in sides]
    numbering = Numbering(list(budgets), len(sizes))
    losses: list[float] = []
    steps: list[int] = [0] * len(sizes)
    checkpoints: list[dict] = []
    timing = 0.0
    start = time.perf_counter()
    gen = run_scales(run, sizes, None, numbering, final=False)
    while True:
        try:
            event = next(gen)
        except StopIteration as stop:
            end = stop.value
            break
        steps[event.scale] = event.iteration
        losses.append(round(float(event.losses.get("total", float("nan"))), 6))
        if event.preview is not None and event.scale == len(sizes) - 1:
            paused = time.perf_counter()
            d = distances(event.preview, content, style, sides[-1], device=device)
            checkpoints.append({"step": event.iteration, **d})
            timing += time.perf_counter() - paused
    seconds = time.perf_counter() - start - timing
    result = run.render(end.image)
    final = distances(result, content, style, sides[-1], device=device)
    if image_path is not None:
        write_image(image_path, result)
    return {
        "sides": sides,
        "steps_per_scale": steps,
        "seconds": round(seconds, 3),
        "final": final,
        "checkpoints": checkpoints,
        "losses": losses,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=sorted(PAIRS))
    p.add_argument("--only", nargs="+", help="run only these schedules")
    p.add_argument("--every", type=int, default=10, help="distances every N steps at the output size")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--json", type=Path)
    p.add_argument(
        "--images", type=Path, help="write the results of fixed_300_300 and the auto schedules here"
    )
    args = p.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(1)  # a check run here; the real one is on a GPU
    report = {
        "machine": platform.node(),
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
        "torch": torch.__version__,
        "size": args.size,
        "precision": args.precision,
        "pairs": {},
    }
    chosen = schedules(args.size)
    if args.only:
        chosen = {k: v for k, v in chosen.items() if k in args.only}
    for pair in args.pairs:
        content, style = load_pair(pair)
        config = StyleConfig(size=args.size, precision=args.precision, preview_every=args.every, seed=0)
        stylizer = Stylizer(style, config)
        results = report["pairs"][pair] = {}
        for name, (sides, budgets) in chosen.items():
            keep = args.images and (name == "fixed_300_300" or name.startswith("auto"))
            image_path = args.images / f"{pair}_{name}.png" if keep else None
            if keep:
                args.images.mkdir(parents=True, exist_ok=True)
            results[name] = run_schedule(
                stylizer, content, style, sides, budgets, args.every, device, image_path
            )
            r = results[name]
            print(
                json.dumps(
                    {
                        "pair": pair,
                        "schedule": name,
                        "steps": r["steps_per_scale"],
                        "s": r["seconds"],
                        **r["final"],
                    }
                ),
                flush=True,
            )
            if args.json:
                write_report(args.json, report)
    return report


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
