"""Per-step CPU time with another ``engine/losses.py`` against this one, alternated in one process.

    git show 688bccf:src/napari_style_transfer/engine/losses.py > /tmp/old_losses.py
    python benchmarks/losses_ab.py /tmp/old_losses.py [--size 256] [--rounds 4]

The other file's ``gram``, ``relative_sq_distance`` and ``content_loss`` are swapped into the
objective's modules for the ``old`` runs; rounds alternate the order (A B, B A, …) so a change
of machine load hits both. Reported: the median of steps 4 onwards of each run, per precision.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

from napari_style_transfer.engine import StyleConfig, masks, objective, style_stats, stylize_iter
from napari_style_transfer.engine import losses as current
from napari_style_transfer.samples import sample_pair

SWAPPED = ("gram", "relative_sq_distance", "content_loss")


def use(module) -> None:
    for target in (style_stats, objective, masks):
        for name in SWAPPED:
            if hasattr(target, name):
                setattr(target, name, getattr(module, name))


def step_ms(content, style, config: StyleConfig) -> float:
    stamps = [time.perf_counter() for _event in stylize_iter(content, style, config)]
    return statistics.median(b - a for a, b in zip(stamps[3:], stamps[4:])) * 1000


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("old", help="the other losses.py")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    spec = importlib.util.spec_from_file_location("old_losses", args.old)
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    content, style = sample_pair()
    for precision in ("fp32", "bf16"):
        config = StyleConfig(size=args.size, iterations=12, multiscale=False, precision=precision, seed=0)
        times: dict[str, list[float]] = {"old": [], "new": []}
        for round_ in range(args.rounds):
            order = [("old", old), ("new", current)]
            for name, module in order if round_ % 2 == 0 else order[::-1]:
                use(module)
                times[name].append(step_ms(content, style, config))
        use(current)
        before, after = statistics.median(times["old"]), statistics.median(times["new"])
        runs = {k: [round(v, 1) for v in vals] for k, vals in times.items()}
        print(f"{precision}: old {before:.1f} ms/step, new {after:.1f}, new/old {after / before:.3f} {runs}")


if __name__ == "__main__":
    main()
