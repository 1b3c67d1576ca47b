"""Time per slice of an 8-slice stack: what preparing once (styles, network, style targets) saves.

Runs ``stylize_stack_iter`` on a drifting synthetic time-lapse of the sample content with the
sample style, and prints the time of each slice from the run's own ``info['slice_times_s']``.
Only the public API is used, so the same script measures an older checkout too::

    PYTHONPATH=src python benchmarks/stack_slices.py --size 128 --iterations 20
    PYTHONPATH=/path/to/old/src python benchmarks/stack_slices.py --size 128 --iterations 20

``--repeats`` runs the whole stack several times in this process (the first run also loads
the network); the table gives the median of the later repeats.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from napari_style_transfer.engine import StyleConfig, stylize_stack_iter
from napari_style_transfer.samples import sample_pair


def drifting_stack(content: np.ndarray, slices: int, step: int = 3) -> np.ndarray:
    """``slices`` crops of ``content`` moving ``step`` pixels right per slice."""
    h, w = content.shape[:2]
    width = w - step * slices
    return np.stack([content[:, i * step : i * step + width] for i in range(slices)])


def run_once(stack: np.ndarray, style: np.ndarray, config: StyleConfig) -> tuple[list[float], float]:
    start = time.perf_counter()
    info = {}
    for event in stylize_stack_iter(stack, style, config, rgb=True):
        if event.done:
            info = event.info
    return info["slice_times_s"], time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--slices", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--label", default="this checkout")
    p.add_argument("--json")
    args = p.parse_args(argv)
    content, style = sample_pair()
    stack = drifting_stack(content, args.slices)
    config = StyleConfig(
        size=args.size, iterations=args.iterations, preview_every=0, seed=0, precision="fp32"
    )
    runs = [run_once(stack, style, config) for _ in range(args.repeats)]
    later = runs[1:] or runs
    per_slice = [statistics.median(times) for times, _ in later]
    first_slice = statistics.median(times[0] for times, _ in later)
    other_slices = statistics.median(t for times, _ in later for t in times[1:])
    result = {
        "label": args.label,
        "size": args.size,
        "iterations": args.iterations,
        "slices": args.slices,
        "median_slice_s": round(statistics.median(per_slice), 3),
        "first_slice_s": round(first_slice, 3),
        "other_slices_s": round(other_slices, 3),
        "stack_s": round(statistics.median(total for _, total in later), 3),
        "cold_stack_s": round(runs[0][1], 3),
        "threads": torch.get_num_threads(),
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }
    print(json.dumps(result))
    if args.json:  # one JSON line per run, appended; the file is replaced whole (a temporary, then a rename)
        from napari_style_transfer.files.atomic import atomic_target

        path = Path(args.json)
        before = path.read_text() if path.exists() else ""
        with atomic_target(path) as temporary:
            temporary.write_text(before + json.dumps(result) + "\n")
    return result


if __name__ == "__main__":
    main()
