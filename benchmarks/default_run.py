"""Wall time and distances of whole runs at one size, on any device (issue 13's measuring stick).

    python benchmarks/default_run.py --size 512 --precisions auto fp32 --json out/default_512.json

Each run goes through ``stylize_iter`` with the engine's defaults except the options named here,
on the pairs of ``benchmarks/pairs.py`` named by ``--pairs`` (or ``--content``/``--style`` files). Recorded per run: total seconds (network
loading and a small warm-up run excluded), the steps taken at each scale, the seconds spent at
each scale, the loss after every step, and the result's style and content distances as scored by
``benchmarks/quality.py``. ``--images DIR`` also writes each result as a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from napari_style_transfer.engine import StyleConfig, get_network, stylize_iter  # noqa: E402
from napari_style_transfer.files import read_image, write_image  # noqa: E402
from napari_style_transfer.files.atomic import atomic_target  # noqa: E402
from pairs import PAIRS, load_pair  # noqa: E402
from quality import distances  # noqa: E402


def _iterations(text: str) -> int | str:
    return text if text == "auto" else int(text)


def write_report(path: Path, report: dict) -> None:
    """Write ``report`` as JSON through a temporary name: a run cut short keeps the last whole report.

    Adds the CPU's vector capability (AVX2, AVX512…): the project's hosts differ between
    sessions, and an AVX2 host runs ``precision="auto"`` in fp32, 1.4× slower a step.
    """
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), **report}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as temporary:
        temporary.write_text(json.dumps(report, indent=1))


def timed(content: np.ndarray, style: np.ndarray, config: StyleConfig) -> dict:
    """One run: seconds in all and per scale, steps per scale, losses, the result."""
    cuda = torch.cuda.is_available() and config.device != "cpu"
    start = time.perf_counter()
    scale_steps: dict[int, int] = {}
    scale_end: dict[int, float] = {}
    losses: list[float] = []
    last = None
    for event in stylize_iter(content, style, config):
        if cuda:
            torch.cuda.synchronize()
        now = time.perf_counter() - start
        scale_steps[event.scale] = event.iteration
        scale_end[event.scale] = now
        if event.losses:
            losses.append(round(float(event.losses.get("total", float("nan"))), 6))
        last = event
    total = time.perf_counter() - start
    edges = [0.0, *[scale_end[s] for s in sorted(scale_end)]]
    return {
        "seconds": round(total, 3),
        "steps_per_scale": [scale_steps[s] for s in sorted(scale_steps)],
        "seconds_per_scale": [round(b - a, 3) for a, b in zip(edges, edges[1:])],
        "shape": list(last.shape),
        "precision": last.info.get("precision"),
        "device": last.info.get("device"),
        "losses": losses,
        "result": last.preview,
    }


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--precisions", nargs="+", default=["auto"])
    p.add_argument("--iterations", nargs="+", type=_iterations, default=[StyleConfig.iterations])
    p.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=["photo_painting"])
    p.add_argument("--content", type=Path)
    p.add_argument("--style", type=Path)
    p.add_argument("--json", type=Path)
    p.add_argument("--images", type=Path, help="write each result here as PNG")
    args = p.parse_args(argv)
    inputs = {name: load_pair(name) for name in args.pairs}
    if args.content or args.style:
        inputs = {"files": (read_image(args.content), read_image(args.style))}
    get_network()  # loading the weights is not part of any run's time
    warm = StyleConfig(size=64, iterations=5, multiscale=False)
    timed(*next(iter(inputs.values())), warm)
    report = {
        "machine": platform.node(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "size": args.size,
        "runs": [],
    }
    for pair, (content, style) in inputs.items():
        for iterations in args.iterations:
            for precision in args.precisions:
                config = StyleConfig(size=args.size, iterations=iterations, precision=precision)
                run = timed(content, style, config)
                result = run.pop("result")
                run.update(pair=pair, iterations=iterations, requested_precision=precision)
                run.update(distances(result, content, style, args.size))  # style_scale 1: same long side
                if args.images:
                    args.images.mkdir(parents=True, exist_ok=True)
                    write_image(args.images / f"{pair}_{args.size}_{iterations}_{precision}.png", result)
                report["runs"].append(run)
                keys = ("pair", "iterations", "precision", "seconds", "steps_per_scale")
                summary = {k: run[k] for k in keys}
                print(
                    json.dumps(
                        {**summary, "style": run["style_distance"], "content": run["content_distance"]}
                    )
                )
                if args.json:
                    write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
