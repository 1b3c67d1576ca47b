"""Where one step's time goes: the bare network, + Grams and losses, + the optimiser.

    python benchmarks/decompose.py --size 256 --precision bf16 [--profile]

On random images of the sample pair's shape (2:3), the three are timed interleaved
(floor, loss+backward, full L-BFGS step, floor, …) after the L-BFGS history is full, so
that they see the same machine state; medians are printed with their excess over the
floor. ``--profile`` also prints torch.profiler's operator table for four full steps.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.lbfgs import optimizer_step
from napari_style_transfer.engine.objective import FeatureExtractor, Objective, StyleTargets
from napari_style_transfer.engine.optimise import LBFGS_HISTORY, LoopSettings, make_closure
from napari_style_transfer.engine.runtime import select_runtime
from napari_style_transfer.engine.vgg import CAFFE, get_network


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args(argv)

    device = torch.device("cpu")
    runtime = select_runtime(args.precision, device)
    config = StyleConfig(size=args.size, precision=args.precision, multiscale=False)
    net = get_network("embedded", "max", device, config.deepest_layer, channels_last=runtime.channels_last)
    torch.manual_seed(0)
    content = torch.rand(1, 3, args.size * 2 // 3, args.size)
    extract = FeatureExtractor(net, CAFFE, runtime)
    targets = StyleTargets(extract, config, [torch.rand(1, 3, args.size, args.size)], [1.0], [None], device)
    problem = Objective(extract, config, content, style_targets=targets.blended(args.size))

    x = content.clone().requires_grad_(True)

    def floor() -> None:
        feats = list(extract(x, config.all_layers).values())
        torch.autograd.backward(feats, [torch.ones_like(f) for f in feats])
        x.grad = None

    def loss_and_backward() -> None:
        problem.loss(x)[0].backward()
        x.grad = None

    image = content.clone().requires_grad_(True)
    optimizer = LoopSettings.of(config, runtime).make_optimizer(image)
    closure = make_closure(optimizer, problem, image)

    def step() -> None:
        optimizer_step(optimizer, closure)  # as the loop does: one host transfer per step

    for _ in range(LBFGS_HISTORY + 2):  # fill the history
        step()
    parts = {"floor": floor, "loss+backward": loss_and_backward, "L-BFGS step": step}
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(args.repeats + 1):
        for name, fn in parts.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    medians = {k: statistics.median(v[1:]) for k, v in times.items()}
    base = medians["floor"]
    print(
        f"{args.size} px ({content.shape[-2]}×{content.shape[-1]}), {args.precision}, {torch.get_num_threads()} threads:"
    )
    for name, value in medians.items():
        print(f"  {name:14s} {value * 1e3:8.1f} ms  ({value / base - 1:+.1%})")
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(4):
                step()
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    return medians


if __name__ == "__main__":
    main()
