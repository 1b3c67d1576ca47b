"""Wall time and distances of whole runs at one size, on any device (issue 13's measuring stick).

    python benchmarks/default_run.py --size 512 --precisions auto fp32 --json out/default_512.json

Each run goes through ``stylize_iter`` with the engine's defaults except the options named here,
on the pairs of ``benchmarks/common.py`` named by ``--pairs`` (or ``--content``/``--style`` files). Recorded per run: total seconds (network
loading and a small warm-up run excluded), the steps taken at each scale, the seconds spent at
each scale, the loss after every step, and the result's style and content distances as scored by
``benchmarks/quality.py``. ``--images DIR`` also writes each result as a PNG.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from common import PAIRS, distances, load_pair, timed, write_report
from napari_style_transfer.engine import StyleConfig, get_network
from napari_style_transfer.files import read_image, write_image


def _iterations(text: str) -> int | str:
    return text if text == "auto" else int(text)


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
