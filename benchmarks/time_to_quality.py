"""Time to quality: how long we take to reach the style distance pastiche reaches after N steps.

    python benchmarks/time_to_quality.py --size 512 --pastiche-steps 300 --json docs/time_to_quality.json

pastiche runs N L-BFGS steps at SIZE (its own loop, timed from the start of its first step);
its result's style distance (as in benchmarks/quality.py) is the bar. Then our engine runs
with its defaults at the same output size (multi-scale: coarse-to-fine from about 256 px)
and we record the wall time at which a preview first reaches that bar. Evaluating the
distances of previews is not counted in our time; network loading is excluded for both.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import distances, write_report
from napari_style_transfer.engine import StyleConfig, stylize_iter
from napari_style_transfer.files import read_image, write_image
from napari_style_transfer.samples import sample_pair


def run_pastiche(size: int, steps: int, content: np.ndarray, style: np.ndarray) -> tuple[np.ndarray, float]:
    from pastiche.pastiche import PasticheArtist, save_image

    with tempfile.TemporaryDirectory() as tmp:
        c, s = write_image(Path(tmp) / "c.png", content), write_image(Path(tmp) / "s.png", style)
        artist = PasticheArtist(str(c), [str(s)], size=size, style_size=size, optimizer="lbfgs", device="cpu")
        start = time.perf_counter()
        for _ in range(steps):
            artist.draw()
        wall = time.perf_counter() - start
        save_image(artist.pastiche, str(Path(tmp) / "p.png"))
        return read_image(Path(tmp) / "p.png"), wall


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--pastiche-steps", type=int, default=300)
    p.add_argument("--max-iterations", type=int, default=300, help="our iterations per scale at most")
    p.add_argument("--check-every", type=int, default=10)
    p.add_argument("--precision", default=StyleConfig.precision, help="ours (default: the engine's default)")
    p.add_argument("--pastiche-json", type=Path, help="reuse (or save) pastiche's bar and wall time")
    p.add_argument("--json", type=Path)
    p.add_argument("--image", type=Path, help="also write our image at the moment it reaches the bar")
    args = p.parse_args(argv)

    content, style = sample_pair()
    if args.pastiche_json and args.pastiche_json.exists():
        saved = json.loads(args.pastiche_json.read_text())
        if (saved["size"], saved["pastiche_steps"]) != (args.size, args.pastiche_steps):
            p.error(f"{args.pastiche_json} holds another size or step count")
        peer_wall, bar = saved["pastiche_wall_s"], saved["bar"]
        print(f"pastiche: reusing {args.pastiche_json}")
    else:
        peer, peer_wall = run_pastiche(args.size, args.pastiche_steps, content, style)
        bar = distances(peer, content, style, args.size)
        if args.pastiche_json:
            saved = {
                "size": args.size,
                "pastiche_steps": args.pastiche_steps,
                "pastiche_wall_s": peer_wall,
                "bar": bar,
            }
            write_report(args.pastiche_json, saved)
    print(
        f"pastiche: {args.pastiche_steps} steps in {peer_wall:.1f} s → style {bar['style_distance']:.4f}, content {bar['content_distance']:.4f}",
        flush=True,
    )

    from napari_style_transfer.engine import get_network

    get_network()  # load outside the timed region, as for pastiche
    config = StyleConfig(
        size=args.size,
        iterations=args.max_iterations,
        preview_every=args.check_every,
        precision=args.precision,
        device="cpu",
    )
    eval_time = 0.0
    reached = None
    start = time.perf_counter()
    for event in stylize_iter(content, style, config):
        if event.preview is None or event.scale < event.n_scales - 1:
            continue  # only full-size images can be compared with pastiche's
        t = time.perf_counter()
        ours_wall = t - start - eval_time  # optimisation time so far, earlier evaluations excluded
        d = distances(event.preview, content, style, args.size)
        eval_time += time.perf_counter() - t
        if d["style_distance"] <= bar["style_distance"]:
            reached = {"wall_s": ours_wall, "step": event.step, **d}
            if args.image:
                write_image(args.image, event.preview)
            break
    report = {
        "size": args.size,
        "pastiche_steps": args.pastiche_steps,
        "pastiche_wall_s": peer_wall,
        "bar": bar,
        "ours": reached,
        "ratio": (reached["wall_s"] / peer_wall) if reached else None,
        "precision": args.precision,
    }
    if reached:
        print(
            f"ours: reached it at step {reached['step']} after {reached['wall_s']:.1f} s (style {reached['style_distance']:.4f}, content {reached['content_distance']:.4f}) → {report['ratio']:.2f}× pastiche's time"
        )
    else:
        print("ours: did not reach the bar within --max-iterations")
    if args.json:
        write_report(args.json, report)
    return report


if __name__ == "__main__":
    main()
