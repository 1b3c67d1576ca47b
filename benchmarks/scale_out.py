"""Scale-out on one machine: a shell loop of single-image CLI calls against ``batch``, the Dask
per-item overhead against a bare engine call, and the flicker at stack-chunk boundaries.

    python benchmarks/scale_out.py --json docs/results/scale_out.json      # ~10 min on 2 quiet cores

1. **Throughput** (the issue's "8 images at 128 px and 100 iterations"): the same 8 contents
   (the sample photo, shifted) through (a) a bash ``for`` loop of single-image CLI calls, one
   process per image (torch's default threads), (b) ``batch --workers 1 --threads-per-worker 2``,
   (c) ``batch --workers 2 --threads-per-worker 1``. Wall time of each command as a whole,
   cluster start-up included; also the sum of the items' own seconds from batch-report.json.
2. **Dask overhead per item** at 256 px: N contents through a prepared :class:`Stylizer` in this
   process (the bare engine call, T torch threads), then through ``stylize_batch`` on a
   LocalCluster of one worker with T torch threads, timed from submission (after the worker
   has prepared the job) to the last result. overhead = (Dask time − bare time) / N, and as a
   share of a bare item; and the gap: the Dask time not spent inside the items (from the
   worker's own item seconds), per item. Both return the array (no file written).
3. **Flicker at chunk boundaries**: a drifting synthetic time-lapse through ``batch --stack
   --chunk K`` for several K: the report's flicker inside chunks and across chunk boundaries
   (1.0: the result changes between slices as much as the content does).

Every phase prints as it ends; ``--json`` collects them. The machine must be quiet: every phase
competes for the same cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    return env


def _contents(folder: Path, count: int, size: int) -> tuple[list[Path], Path]:
    """``count`` content files (the sample photo, each shifted) and the sample style."""
    from napari_style_transfer.files import write_image
    from napari_style_transfer.samples import sample_pair

    content, style = sample_pair()
    folder.mkdir(parents=True, exist_ok=True)
    paths = [
        write_image(folder / f"content{i:02d}.png", np.roll(content, 11 * i, axis=1)) for i in range(count)
    ]
    return paths, write_image(folder.parent / "style.png", style)


def _timed(command: list[str] | str, shell: bool = False) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, shell=shell, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{command} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return time.perf_counter() - start


def _item_seconds(out_dir: Path) -> dict:
    report = json.loads((out_dir / "batch-report.json").read_text())
    seconds = [e["seconds"] for e in report["items"] if e["status"] == "done"]
    return {
        "items_done": len(seconds),
        "item_seconds_sum": round(sum(seconds), 2),
        "item_seconds_median": round(float(np.median(seconds)), 2) if seconds else None,
    }


def throughput(work: Path, images: int, size: int, iterations: int) -> dict:
    """Phase 1: a shell loop of CLI calls against batch 1×2 and 2×1."""
    paths, style = _contents(work / "in", images, size)
    py = shlex.quote(sys.executable)
    options = f"--size {size} --iterations {iterations} -q"
    loop = (
        f"for f in {' '.join(shlex.quote(str(p)) for p in paths)}; do "
        f'{py} -m napari_style_transfer "$f" {shlex.quote(str(style))} -o {shlex.quote(str(work / "loop"))}/$(basename "$f") {options}; done'
    )
    (work / "loop").mkdir(parents=True, exist_ok=True)
    out: dict = {"images": images, "size": size, "iterations": iterations}
    out["shell_loop_s"] = round(_timed(loop, shell=True), 2)
    print(f"shell loop of {images} CLI calls: {out['shell_loop_s']} s", flush=True)
    for workers, threads in ((1, 2), (2, 1)):
        target = work / f"batch_{workers}x{threads}"
        command = [
            sys.executable,
            "-m",
            "napari_style_transfer",
            "batch",
            str(work / "in"),
            "--style",
            str(style),
            "-o",
            str(target),
            "--workers",
            str(workers),
            "--threads-per-worker",
            str(threads),
            "--size",
            str(size),
            "--iterations",
            str(iterations),
            "-q",
        ]
        wall = _timed(command)
        key = f"batch_{workers}x{threads}"
        out[key] = {
            "wall_s": round(wall, 2),
            "speedup_vs_loop": round(out["shell_loop_s"] / wall, 2),
            **_item_seconds(target),
        }
        print(f"batch {workers} worker(s) x {threads} thread(s): {out[key]}", flush=True)
    return out


def overhead(items: int, size: int, iterations: int, threads: int, rounds: int = 3) -> dict:
    """Phase 2: the same items through a bare prepared Stylizer and through stylize_batch.

    The embedded cluster of the command (one worker, ``threads`` torch threads) is started
    once. Then ``rounds`` rounds, each a bare run of ``items`` items and a Dask run of the
    same items plus one, interleaved so that both see the same machine state. Bare runs are
    timed after one warm-up item (style targets at this size, kernel caches); Dask runs from
    the first result to the last, so each of the ``items`` timed ones includes its scheduling,
    its transfer and its result's return (the first one also waits for the job's preparation).
    """
    import torch

    from napari_style_transfer.batch import BatchOptions, stylize_batch
    from napari_style_transfer.batch.plumbing import start_local
    from napari_style_transfer.engine import StyleConfig, Stylizer
    from napari_style_transfer.samples import sample_pair

    content, style = sample_pair()
    contents = [np.roll(content, 13 * i, axis=1) for i in range(items + 1)]
    config = StyleConfig(size=size, iterations=iterations, multiscale=False, preview_every=0)
    torch.set_num_threads(threads)
    stylizer = Stylizer([style], config)
    stylizer.stylize(contents[0])
    cluster = start_local(workers=1, threads=threads)
    per_round = []
    try:
        for number in range(rounds):
            start = time.perf_counter()
            for c in contents[1:]:
                stylizer.stylize(c)
            bare = time.perf_counter() - start
            arrivals, done = [], []
            options = BatchOptions(threads_per_worker=threads)
            for result in stylize_batch(contents, [style], config, cluster.client, options=options):
                arrivals.append(time.perf_counter())
                done.append(result)
            dask_s = arrivals[-1] - arrivals[0]
            timed = done[1:]
            per_round.append(
                {
                    "bare_s": round(bare, 3),
                    "dask_s": round(dask_s, 3),
                    "overhead_share": round((dask_s - bare) / bare, 4),
                    "worker_item_seconds": [r.seconds for r in done],
                    # Dask's own share, free of engine-speed drift between the two runs: the time
                    # between results not spent inside the items (scheduling, transfers, returns).
                    "gap_per_item_s": round((dask_s - sum(r.seconds for r in timed)) / items, 4),
                    "done": sum(r.status == "done" for r in done),
                }
            )
            print(f"round {number + 1}: {per_round[-1]}", flush=True)
    finally:
        cluster.close()
    bare_item = statistics.median(r["bare_s"] for r in per_round) / items
    out = {
        "items": items,
        "size": size,
        "iterations": iterations,
        "torch_threads": threads,
        "rounds": per_round,
        "bare_item_s": round(bare_item, 3),
        "overhead_share_median": statistics.median(r["overhead_share"] for r in per_round),
        "gap_per_item_s_median": statistics.median(r["gap_per_item_s"] for r in per_round),
    }
    out["gap_share"] = round(out["gap_per_item_s_median"] / bare_item, 5)
    print(f"dask: {out}", flush=True)
    return out


def _time_lapse(path: Path, frames: int, side: int) -> np.ndarray:
    """A textured scene drifting 2 px per frame, 16-bit."""
    yy, xx = np.mgrid[0:side, 0:side]
    movie = [
        (
            30000
            + 15000 * np.sin((xx + 2 * t) / 6.0) * np.cos(yy / 9.0)
            + 8000 * np.cos((xx + yy + 2 * t) / 17.0)
        )
        for t in range(frames)
    ]
    stack = np.stack(movie).astype(np.uint16)
    import tifffile

    tifffile.imwrite(path, stack)
    return stack


def chunk_flicker(
    work: Path, frames: int, side: int, iterations: int, chunks: list[int], workers: int
) -> dict:
    """Phase 3: flicker inside chunks and across their boundaries, for each chunk size."""
    from napari_style_transfer.engine import flicker
    from napari_style_transfer.files import write_image
    from napari_style_transfer.samples import sample_pair

    work.mkdir(parents=True, exist_ok=True)
    source = work / "movie.tif"
    content = _time_lapse(source, frames, side)
    style = write_image(work / "style_flicker.png", sample_pair()[1])
    out: dict = {"frames": frames, "side": side, "iterations": iterations, "chunks": {}}
    for k in chunks:
        target = work / f"stack_chunk{k}"
        command = [
            sys.executable,
            "-m",
            "napari_style_transfer",
            "batch",
            str(source),
            "--style",
            str(style),
            "-o",
            str(target),
            "--stack",
            "--chunk",
            str(k),
            "--workers",
            str(workers),
            "--threads-per-worker",
            "1",
            "--size",
            str(side),
            "--iterations",
            str(iterations),
            "-q",
        ]
        wall = _timed(command)
        (stack,) = json.loads((target / "batch-report.json").read_text())["stacks"]
        import tifffile

        result = tifffile.imread(target / "movie.tif")
        out["chunks"][k] = {
            "wall_s": round(wall, 2),
            "flicker_overall": round(flicker(result, content), 4),
            **{
                key: stack.get(key)
                for key in ("flicker_inside_chunks", "flicker_at_boundaries", "flicker_pairs")
            },
        }
        print(f"--chunk {k}: {out['chunks'][k]}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=8)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--iterations", type=int, default=100)
    p.add_argument("--overhead-items", type=int, default=4)
    p.add_argument("--overhead-size", type=int, default=256)
    p.add_argument("--overhead-iterations", type=int, default=30)
    p.add_argument("--threads", type=int, default=2, help="torch threads for the overhead phase")
    p.add_argument("--rounds", type=int, default=3, help="interleaved bare/Dask rounds (overhead phase)")
    p.add_argument("--frames", type=int, default=12)
    p.add_argument("--frame-size", type=int, default=96)
    p.add_argument("--frame-iterations", type=int, default=40)
    p.add_argument("--chunks", type=int, nargs="+", default=[1, 4, 12])
    p.add_argument("--phases", nargs="+", default=["throughput", "overhead", "flicker"])
    p.add_argument("--json", type=Path, help="write all numbers here")
    args = p.parse_args()
    import torch

    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M"),
        }
    }
    with tempfile.TemporaryDirectory(prefix="scale_out_") as tmp:
        work = Path(tmp)
        if "throughput" in args.phases:
            results["throughput"] = throughput(work / "throughput", args.images, args.size, args.iterations)
        if "overhead" in args.phases:
            results["overhead"] = overhead(
                args.overhead_items, args.overhead_size, args.overhead_iterations, args.threads, args.rounds
            )
        if "flicker" in args.phases:
            workers = 2 if (os.cpu_count() or 1) >= 2 else 1
            results["flicker"] = chunk_flicker(
                work / "flicker", args.frames, args.frame_size, args.frame_iterations, args.chunks, workers
            )
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        from common import write_report

        write_report(args.json, results)


if __name__ == "__main__":
    main()
