"""Per-iteration time and peak memory, next to the floor (bare VGG forward+backward) and pastiche.

    python benchmarks/speed.py --sizes 128 256 512 --optimizers lbfgs adam --precisions fp32 bf16 \
        --iterations 12 --pastiche --json docs/speed_cpu.json

Every (size, optimiser, precision) cell runs in a fresh subprocess so that peak memory is
that cell's alone (CPU: peak process RSS above the loaded network, sampled every 5 ms; CUDA:
``torch.cuda.max_memory_allocated``). Times are medians over the steps after two warm-up
steps. The floor is the bare forward+backward of the same truncated VGG-19 stack, on the
same input, precision and memory layout, with the gradient of every used layer set to ones
(no loss computed at all); "overhead" is ours / floor − 1. pastiche's
per-iteration time is the median time of its ``PasticheArtist.draw()`` (one optimiser step,
exactly what ``python -m pastiche`` runs in its loop), with its start-up excluded.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch


def measure_cell(size: int, optimizer: str, precision: str, iterations: int, device_name: str) -> dict:
    """Ours and the floor for one cell, in this process (called in a subprocess)."""
    from napari_style_transfer.engine import StyleConfig, stylize_iter
    from napari_style_transfer.engine.memory import PeakRSS
    from napari_style_transfer.engine.objective import FeatureExtractor
    from napari_style_transfer.engine.runtime import select_device, select_runtime
    from napari_style_transfer.engine.scales import scale_sizes
    from napari_style_transfer.engine.vgg import CAFFE, get_network
    from napari_style_transfer.samples import sample_pair

    device = select_device(device_name)
    runtime = select_runtime(precision, device)
    config = StyleConfig(
        size=size,
        iterations=iterations,
        optimizer=optimizer,
        precision=precision,
        multiscale=False,
        preview_every=0,
        device=device_name,
    )
    net = get_network("embedded", "max", device, config.deepest_layer, channels_last=runtime.channels_last)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
    content, style = sample_pair()

    # The floor: forward + backward of the same stack, same input, precision and layout, with
    # the gradient of every used layer set to ones (no loss at all). One floor pass runs
    # between every two of our steps (the generator waits meanwhile), so that both see the same
    # machine state; interleaving keeps the ratio honest on a machine whose speed drifts.
    shape = scale_sizes(content.shape[:2], config)[-1]
    extract = FeatureExtractor(net, CAFFE, runtime)
    x = torch.rand((1, 3, *shape), device=device, requires_grad=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def floor_once() -> float:
        sync()
        t = time.perf_counter()
        feats = list(extract(x, config.all_layers).values())
        torch.autograd.backward(feats, [torch.ones_like(f) for f in feats])
        x.grad = None
        sync()
        return time.perf_counter() - t

    ours_times, floor_times = [], []
    last = None
    with PeakRSS() as rss:  # the floor's graph is never larger than ours, which is freed by then
        resumed = time.perf_counter()
        for event in stylize_iter(content, style, config):
            sync()
            ours_times.append(time.perf_counter() - resumed)
            last = event
            if not event.done:
                floor_times.append(floor_once())
            resumed = time.perf_counter()
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else rss.peak_bytes
    ours = (
        statistics.median(ours_times[2:-1]) if len(ours_times) > 4 else float("nan")
    )  # the last one renders
    floor = statistics.median(floor_times[2:]) if len(floor_times) > 3 else float("nan")
    return {
        "size": size,
        "shape": list(shape),
        "optimizer": optimizer,
        "precision": runtime.precision,
        "device": str(device),
        "ours_s_per_it": ours,
        "floor_s_per_it": floor,
        "overhead": ours / floor - 1,
        "peak_mb": peak / 2**20,
        "final_loss": last.losses["total"],
    }


def pastiche_per_iteration(size: int, optimizer: str, steps: int, device: str) -> float:
    """Median seconds per pastiche step (its PasticheArtist.draw, start-up excluded), fresh subprocess."""
    code = f"""
import statistics, tempfile, time, pathlib
from pastiche.pastiche import PasticheArtist
from napari_style_transfer.files import write_image
from napari_style_transfer.samples import sample_pair
content, style = sample_pair()
tmp = pathlib.Path(tempfile.mkdtemp())
c, s = write_image(tmp / "c.png", content), write_image(tmp / "s.png", style)
artist = PasticheArtist(str(c), [str(s)], size={size}, style_size={size}, optimizer={optimizer!r}, device={device!r})
times = []
for _ in range({steps} + 2):
    t = time.perf_counter(); artist.draw(); times.append(time.perf_counter() - t)
print(statistics.median(times[2:]))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def main(argv: list[str] | None = None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", nargs="+", type=int, default=[128, 256, 512])
    p.add_argument("--optimizers", nargs="+", default=["lbfgs", "adam"])
    p.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--iterations", type=int, default=12)
    p.add_argument("--device", default="auto")
    p.add_argument("--pastiche", action="store_true", help="also time pastiche (same size/optimiser, fp32)")
    p.add_argument("--json", type=Path)
    p.add_argument("--one", nargs=3, metavar=("SIZE", "OPT", "PREC"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.one:
        print(
            json.dumps(measure_cell(int(args.one[0]), args.one[1], args.one[2], args.iterations, args.device))
        )
        return []
    rows = []
    print(
        f"{'size':>5} {'opt':>6} {'prec':>5} {'ours s/it':>10} {'floor s/it':>10} {'overhead':>9} {'peak MB':>8} {'pastiche s/it':>14} {'speed-up':>9}"
    )
    for size in args.sizes:
        for optimizer in args.optimizers:
            peer_device = "cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu"
            peer_steps = max(4, args.iterations // 2)
            peer = None
            if args.pastiche:
                peer = pastiche_per_iteration(size, optimizer, peer_steps, peer_device)
            cell_rows = []
            for precision in args.precisions:
                cmd = [
                    sys.executable,
                    __file__,
                    "--one",
                    str(size),
                    optimizer,
                    precision,
                    "--iterations",
                    str(args.iterations),
                    "--device",
                    args.device,
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(
                        f"{size:5d} {optimizer:>6} {precision:>5}  failed: {proc.stderr.strip().splitlines()[-1]}"
                    )
                    continue
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                cell_rows.append(row)
                print(
                    f"{size:5d} {optimizer:>6} {row['precision']:>5} {row['ours_s_per_it']:10.3f} {row['floor_s_per_it']:10.3f} {row['overhead']:8.1%} {row['peak_mb']:8.0f}",
                    flush=True,
                )
            if args.pastiche:
                # pastiche again after our cells: the mean of both brackets ours in time.
                after = pastiche_per_iteration(size, optimizer, peer_steps, peer_device)
                print(
                    f"{size:5d} {optimizer:>6} pastiche {peer:.3f} s/it before, {after:.3f} after", flush=True
                )
                peer = (peer + after) / 2
            for row in cell_rows:
                row["pastiche_s_per_it"] = peer
                row["speedup_vs_pastiche"] = peer / row["ours_s_per_it"] if peer else None
                rows.append(row)
                if peer:
                    print(
                        f"{size:5d} {optimizer:>6} {row['precision']:>5} {row['ours_s_per_it']:10.3f} {row['floor_s_per_it']:10.3f} {row['overhead']:8.1%} {row['peak_mb']:8.0f} {peer:14.3f} {row['speedup_vs_pastiche']:8.2f}×",
                        flush=True,
                    )
    if args.json:
        from common import write_report

        write_report(args.json, {"machine": machine(), "command": " ".join(sys.argv), "rows": rows})
    return rows


if __name__ == "__main__":
    main()
