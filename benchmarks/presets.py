"""Wall time and distances of each built-in preset on the sample pair (to choose their values).

    python benchmarks/presets.py                       # every built-in preset, this machine's device
    python benchmarks/presets.py --presets "Quick look" Balanced --device cpu --json out/presets.json

Each preset's values (``presets.BUILTIN_PRESETS``) over the defaults, through ``stylize_iter``
(``default_run.timed``: network loading and a small warm-up run excluded). Printed per preset:
seconds, steps per scale, and the result's style and content distances as scored by
``benchmarks/quality.py`` (lower is closer; the style distance is measured at the style's
size for the run, the content distance at the result's size).
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch

from common import PAIRS, distances, load_pair, timed, write_report
from napari_style_transfer.engine import StyleConfig, get_network
from napari_style_transfer.files import write_image
from napari_style_transfer.settings import (
    BUILTIN_PRESETS,
    config_of,
    find_preset,
)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=list(BUILTIN_PRESETS))
    p.add_argument("--pair", choices=sorted(PAIRS), default="photo_painting")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", type=Path)
    p.add_argument("--images", type=Path, help="write each result here as PNG")
    args = p.parse_args(argv)
    content, style = load_pair(args.pair)
    get_network()  # loading the weights is not part of any run's time
    timed(content, style, StyleConfig(size=64, iterations=5, multiscale=False, device=args.device))
    report = {
        "machine": platform.node(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() and args.device != "cpu" else None,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "pair": args.pair,
        "runs": [],
    }
    for name in args.presets:
        values = find_preset(name)
        config = config_of({**values, "device": args.device})
        run = timed(content, style, config)
        result = run.pop("result")
        style_side = round(max(result.shape[:2]) * config.style_scale)
        run.update(preset=name, values=values, **distances(result, content, style, style_side))
        run.pop("losses")
        if args.images:
            args.images.mkdir(parents=True, exist_ok=True)
            write_image(args.images / f"preset_{name.replace(' ', '_').lower()}.png", result)
        report["runs"].append(run)
        keys = ("preset", "seconds", "steps_per_scale", "shape", "precision", "device")
        print(
            json.dumps(
                {
                    **{k: run[k] for k in keys},
                    "style": run["style_distance"],
                    "content": run["content_distance"],
                }
            )
        )
        if args.json:
            write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
