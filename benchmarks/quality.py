"""Quality and wall time of our engine next to the peer, pastiche, on the same work.

Both run on the sample pair (or given images) at the same output size, optimiser and
iteration count, with the same style-image size; then both results are scored with the
same embedded VGG-19:

- style distance: mean over relu1_1 … relu5_1 of ‖G(out) − G(style)‖ / ‖G(style)‖
  (G spatially normalised);
- content distance: ‖F(out) − F(content)‖ / ‖F(content)‖ at relu4_2.

Usage::

    python benchmarks/quality.py --size 256 --iterations 200 --out docs/images/quality

Prints a table, writes both outputs as PNG and a JSON file with the numbers.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import imageio.v3 as iio
import torch

from common import distances, write_report
from napari_style_transfer.samples import sample_pair


def run_ours(content_path, out_path, style_path, size, iterations, optimizer, precision="fp32"):
    """Our CLI in a fresh process, like pastiche's: the wall time includes start-up for both."""
    cmd = [
        sys.executable,
        "-m",
        "napari_style_transfer",
        str(content_path),
        str(style_path),
        "-o",
        str(out_path),
        "--size",
        str(size),
        "--iterations",
        str(iterations),
        "--optimizer",
        optimizer,
        "--precision",
        precision,
        "--device",
        "cpu",
        "-q",
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return iio.imread(out_path), time.perf_counter() - start, cmd


def run_pastiche(content_path, style_path, out_path, size, style_size, iterations, optimizer):
    cmd = [
        sys.executable,
        "-m",
        "pastiche",
        "--device",
        "cpu",
        "--seed",
        "0",
        "--no-verbose",
        "--content",
        str(content_path),
        "--styles",
        str(style_path),
        "--output",
        str(out_path),
        "--size",
        str(size),
        "--style-size",
        str(style_size),
        "--num-steps",
        str(iterations),
        "--optimizer",
        optimizer,
    ]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    return iio.imread(out_path), time.perf_counter() - start, cmd


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--optimizer", default="lbfgs", choices=("lbfgs", "adam"))
    parser.add_argument("--out", type=Path, default=Path("docs/images/quality"))
    parser.add_argument(
        "--precisions", nargs="+", default=["fp32"], help="our precision modes to run (fp32, bf16, auto)"
    )
    args = parser.parse_args(argv)

    content, style = sample_pair()
    style_long = args.size  # our default style_scale=1.0: style long side = output long side
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        content_path, style_path = Path(tmp) / "content.png", Path(tmp) / "style.png"
        iio.imwrite(content_path, content)
        iio.imwrite(style_path, style)
        peer_out = args.out / f"pastiche_{args.size}px_{args.iterations}it.png"
        peer, peer_time, cmd = run_pastiche(
            content_path, style_path, peer_out, args.size, style_long, args.iterations, args.optimizer
        )
        rows = {}
        for precision in args.precisions:
            name = "ours" if precision == "fp32" else f"ours-{precision}"
            ours_out = args.out / f"{name}_{args.size}px_{args.iterations}it.png"
            ours, ours_time, ours_cmd = run_ours(
                content_path, ours_out, style_path, args.size, args.iterations, args.optimizer, precision
            )
            rows[name] = {
                "wall_s": ours_time,
                **distances(ours, content, style, style_long),
                "image": str(ours_out),
            }
    rows["pastiche"] = {
        "wall_s": peer_time,
        **distances(peer, content, style, style_long),
        "image": str(peer_out),
    }
    report = {
        "size": args.size,
        "iterations": args.iterations,
        "optimizer": args.optimizer,
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
        "torch": torch.__version__,
        "pastiche_command": " ".join(cmd),
        "ours_command": " ".join(ours_cmd),
        "results": rows,
    }
    print(f"{'':12s} {'wall s':>8s} {'style dist':>11s} {'content dist':>13s}")
    for name, row in rows.items():
        print(
            f"{name:12s} {row['wall_s']:8.1f} {row['style_distance']:11.4f} {row['content_distance']:13.4f}"
        )

    write_report(args.out / f"quality_{args.size}px_{args.iterations}it.json", report)
    return report


if __name__ == "__main__":
    main()
