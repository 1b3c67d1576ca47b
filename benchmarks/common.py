"""What the benchmark scripts share: the pairs they run, how a run is timed and scored, how a report is written.

- :data:`PAIRS` / :func:`load_pair`: four licence-clean content × style pairs of different kinds.
  All images ship with this project or with scikit-image (public domain / CC0 data bundled in
  its wheel, nothing downloaded):

  - ``photo_painting``: the sample cat photo × the sample brush-stroke painting (samples.py)
  - ``microscopy_texture``: immunohistochemistry (a stained tissue micrograph) × gravel
  - ``grayscale``: the cameraman × brick (both single-channel)
  - ``flat_area``: the rocket launch (a large flat sky) × grass

- :func:`distances`: the style and content distances every benchmark reports, scored with the
  same embedded VGG-19 (style: mean over relu1_1 … relu5_1 of ‖G(out) − G(style)‖ / ‖G(style)‖,
  G spatially normalised; content: ‖F(out) − F(content)‖ / ‖F(content)‖ at relu4_2).
- :func:`timed`: one run through ``stylize_iter``, seconds in all and per scale.
- :func:`write_report`: a JSON report written atomically, with the CPU's vector capability.

The scripts import it as ``from common import ...``: Python puts the script's folder first on
``sys.path`` when it runs ``python benchmarks/<script>.py``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from napari_style_transfer.arrays import fit_long_side
from napari_style_transfer.engine import StyleConfig, stylize_iter
from napari_style_transfer.engine.config import DEFAULT_STYLE_LAYERS
from napari_style_transfer.engine.images import resize, to_rgb01, to_tensor
from napari_style_transfer.engine.losses import gram
from napari_style_transfer.engine.vgg import CAFFE, get_network, preprocess
from napari_style_transfer.files.atomic import atomic_target


def _skimage(name: str) -> np.ndarray:
    import skimage.data

    return getattr(skimage.data, name)()


def _sample(which: int) -> np.ndarray:
    from napari_style_transfer.samples import sample_pair

    return sample_pair()[which]


PAIRS: dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]] = {
    "photo_painting": (lambda: _sample(0), lambda: _sample(1)),
    "microscopy_texture": (lambda: _skimage("immunohistochemistry"), lambda: _skimage("gravel")),
    "grayscale": (lambda: _skimage("camera"), lambda: _skimage("brick")),
    "flat_area": (lambda: _skimage("rocket"), lambda: _skimage("grass")),
}


def load_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(content, style) arrays of the pair called ``name`` (one of :data:`PAIRS`)."""
    content, style = PAIRS[name]
    return content(), style()


def features(
    image: np.ndarray, layers: tuple[str, ...], shape: tuple[int, int] | None = None, device: str = "cpu"
):
    rgb, _ = to_rgb01(image)
    t = to_tensor(rgb)
    if shape is not None:
        t = resize(t, shape)
    net = get_network("embedded", "max", device, "relu5_1")
    with torch.no_grad():
        return {k: v.float() for k, v in net(preprocess(t.to(device), CAFFE), layers).items()}


def distances(
    output: np.ndarray, content: np.ndarray, style: np.ndarray, style_long_side: int, device: str = "cpu"
) -> dict[str, float]:
    """Style and content distances of ``output`` (see module docstring), computed on ``device``."""
    out_shape = output.shape[:2]
    style_shape = fit_long_side(style.shape[:2], style_long_side)
    f_out = features(output, (*DEFAULT_STYLE_LAYERS, "relu4_2"), device=device)
    f_content = features(content, ("relu4_2",), out_shape, device=device)
    f_style = features(style, DEFAULT_STYLE_LAYERS, style_shape, device=device)
    style_d = [
        float(torch.linalg.norm(gram(f_out[n]) - gram(f_style[n])) / torch.linalg.norm(gram(f_style[n])))
        for n in DEFAULT_STYLE_LAYERS
    ]
    content_d = float(
        torch.linalg.norm(f_out["relu4_2"] - f_content["relu4_2"]) / torch.linalg.norm(f_content["relu4_2"])
    )
    return {"style_distance": float(np.mean(style_d)), "content_distance": content_d}


def start_report(args: Any, **extra: Any) -> dict:
    """Set torch's threads (``args.threads``, if given), load the weights (no run's time should
    include it) and begin the report: the machine, torch, ``args.size`` and ``args.iterations``,
    then ``extra``, then an empty list of runs."""
    import platform

    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    get_network()
    return {
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "size": args.size,
        "iterations": args.iterations,
        **extra,
        "runs": [],
    }


def write_report(path: Path, report: dict) -> None:
    """Write ``report`` as JSON through a temporary name: a run cut short keeps the last whole report.

    Adds the CPU's vector capability (AVX2, AVX512…): the project's hosts differ between
    sessions, and an AVX2 host runs ``precision="auto"`` in fp32, 1.4× slower a step.
    """
    report = {"cpu_capability": torch.backends.cpu.get_cpu_capability(), **report}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as temporary:
        temporary.write_text(json.dumps(report, indent=1))


def per_step(content: np.ndarray, style: np.ndarray, config: StyleConfig) -> tuple[float, Any]:
    """One run: (seconds per step, from the first step's event to the last one's; the final event).

    The targets and the network loading are not in it (they come before the first event)."""
    stamps: list[float] = []
    last = None
    for event in stylize_iter(content, style, config):
        stamps.append(time.perf_counter())
        last = event
    assert last is not None and last.done
    return round((stamps[-1] - stamps[0]) / max(1, len(stamps) - 1), 4), last


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


def montage(images: list[np.ndarray], path: Path, height: int) -> None:
    """The images side by side at ``height`` px, 4 px apart, as a palette PNG (small files)."""
    tiles = []
    for image in images:
        rgb = (to_rgb01(image)[0] * 255).round().astype(np.uint8)
        h, w = rgb.shape[:2]
        tiles.append(Image.fromarray(rgb).resize((max(1, round(w * height / h)), height), Image.LANCZOS))
    canvas = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), height), "white")
    x = 0
    for tile in tiles:
        canvas.paste(tile, (x, 0))
        x += tile.width + 4
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    canvas.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(tmp, optimize=True)
    tmp.replace(path)
