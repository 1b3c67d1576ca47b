"""Keep structure (issue 25): the matting-Laplacian mode against the default, on pairs with label maps.

    python benchmarks/structure.py --size 256 --iterations auto --json docs/results/structure_256.json \
        --montages docs/images/structure

Three contents from scikit-image's wheel (nothing downloaded), each styled after a picture of
another kind (:data:`PAIRS`): ``coins`` after ``immunohistochemistry`` (a stain),
``microaneurysms`` after ``retina`` (a fundus photograph) and ``cell`` after ``gravel``; ``cell``
and ``microaneurysms`` after the stain too (``--pairs cell_ihc microaneurysms_ihc``). The
contents are single-channel; their label maps are an Otsu threshold of the content. Each
pair runs (in this one process, pair by pair) :data:`RUNS`: the engine's defaults
(``structure_weight`` 0), the "Keep structure" preset without its structure term (the same
layers and colours: what the matting Laplacian alone changes) and the preset itself; ``--weights``
adds the preset at other structure weights, ``--eps`` at other Laplacian ε. ``size`` and ``iterations`` come from the command
line for every run. Recorded per run, all on grey levels at the result's size:

- ``edge_f1`` (``edge_precision``, ``edge_recall``): Canny edges (sigma :data:`EDGE_SIGMA`,
  scikit-image's default thresholds) of the content and of the result, an edge counted as
  found when the other map has one within 1 px; ``edge_f1_q``: the same with thresholds at
  the 80 and 90 % quantiles of each image's own gradient (blind to a change of contrast);
- ``ssim``: structural similarity of the result's grey levels to the content's;
- ``label_contrast``: at every object's border (connected parts of the label map), the mean
  grey level in a :data:`BAND` px band inside minus the mean in the band outside; its mean over
  the objects (weighted by their border length) in the result over the same in the content:
  1 keeps the labels' contrast, 0 loses it, below 0 inverts it;
- style and content distances (``benchmarks/common.py``), seconds per step (first to last step).

The JSON report is rewritten after each run. ``--montages DIR`` writes one PNG per pair: content,
style, then the result of each of :data:`RUNS`. ``--timing-rounds`` rounds of short single-scale
runs of :data:`RUNS` in turn on the first pair give steadier seconds per step (``step_times``:
the median per run) than the long runs do on a machine whose load changes. ``--products`` times L·V (the loss's one product a step) in each
sparse format at 256 and 512 px (the table in ``engine/matting.py``'s docstring).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from common import distances, montage, per_step, start_report, write_report
from napari_style_transfer.engine import StyleConfig, objective
from napari_style_transfer.engine.images import to_rgb01
from napari_style_transfer.engine.matting import (
    DEFAULT_EPS,
    MattingLaplacian,
    banded_product,
    bands_to_csr,
    laplacian_bands,
)
from napari_style_transfer.engine.stopping import AUTO
from napari_style_transfer.settings import config_of, find_preset

#: Canny's smoothing for both edge maps (pixels at the result's size).
EDGE_SIGMA = 2.0
#: Width of the bands on each side of a label border (px).
BAND = 2
#: Objects smaller than this (px) have no border to speak of.
MIN_OBJECT = 16
PRESET = "Keep structure"


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return getattr(skimage.data, name)()

    return load


PAIRS: dict[str, tuple[Callable[[], np.ndarray], Callable[[], np.ndarray]]] = {
    "coins_ihc": (_skimage("coins"), _skimage("immunohistochemistry")),
    "microaneurysms_retina": (_skimage("microaneurysms"), _skimage("retina")),
    "cell_gravel": (_skimage("cell"), _skimage("gravel")),
    "cell_ihc": (_skimage("cell"), _skimage("immunohistochemistry")),
    "microaneurysms_ihc": (_skimage("microaneurysms"), _skimage("immunohistochemistry")),
}


def preset_values(weight: float | None = None) -> dict:
    """The preset's values, optionally at another structure weight."""
    values = find_preset(PRESET)
    return values if weight is None else {**values, "structure_weight": weight}


#: label → the values over the defaults of each run (size and iterations come from the command line).
RUNS: dict[str, Callable[[], dict]] = {
    "default": dict,
    "preset, no structure": lambda: preset_values(0.0),
    "keep structure": preset_values,
}


def grey(image: np.ndarray, shape: tuple[int, int] | None = None) -> np.ndarray:
    """Grey levels in [0, 1] (luminance of the RGB [0, 1] version), resized to ``shape``."""
    from skimage.color import rgb2gray
    from skimage.transform import resize

    out = rgb2gray(to_rgb01(image)[0])
    return out if shape is None or out.shape == shape else resize(out, shape, anti_aliasing=True)


def edge_scores(result: np.ndarray, content: np.ndarray, quantiles: bool = False) -> dict[str, float]:
    """Precision, recall and F1 of the result's Canny edges against the content's, within 1 px."""
    from skimage.feature import canny

    out = grey(result)
    ref = grey(content, out.shape)
    thresholds = {"low_threshold": 0.8, "high_threshold": 0.9, "use_quantiles": True} if quantiles else {}
    e_out = canny(out, EDGE_SIGMA, **thresholds)
    e_ref = canny(ref, EDGE_SIGMA, **thresholds)
    near = np.ones((3, 3), bool)
    precision = float((e_out & ndimage.binary_dilation(e_ref, near)).sum() / max(1, e_out.sum()))
    recall = float((e_ref & ndimage.binary_dilation(e_out, near)).sum() / max(1, e_ref.sum()))
    f1 = 2 * precision * recall / max(1e-12, precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1}


def labels_of(content: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The content's label map at ``shape``: connected parts of its Otsu foreground (0: background)."""
    from skimage.filters import threshold_otsu
    from skimage.morphology import remove_small_objects

    ref = grey(content, shape)
    foreground = remove_small_objects(ref > threshold_otsu(ref), max_size=MIN_OBJECT - 1)
    return ndimage.label(foreground)[0]


def border_contrast(image: np.ndarray, labels: np.ndarray) -> float:
    """Mean over objects (weighted by border length) of inside minus outside grey level in :data:`BAND`."""
    inside_depth = ndimage.distance_transform_edt(labels > 0)
    outside_depth, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    inner = (labels > 0) & (inside_depth <= BAND)
    outer = (labels == 0) & (outside_depth <= BAND)
    owner = labels[nearest[0], nearest[1]]  # the object nearest to each background pixel
    count = int(labels.max()) + 1
    n_in = np.bincount(labels[inner], minlength=count)
    n_out = np.bincount(owner[outer], minlength=count)
    s_in = np.bincount(labels[inner], image[inner], minlength=count)
    s_out = np.bincount(owner[outer], image[outer], minlength=count)
    ok = (n_in > 0) & (n_out > 0)
    ok[0] = False
    contrast = s_in[ok] / n_in[ok] - s_out[ok] / n_out[ok]
    return float(np.average(contrast, weights=n_in[ok])) if ok.any() else float("nan")


def label_contrast(result: np.ndarray, content: np.ndarray) -> float:
    """The result's border contrast over the content's (see the module docstring)."""
    out = grey(result)
    labels = labels_of(content, out.shape)
    return border_contrast(out, labels) / border_contrast(grey(content, out.shape), labels)


def ssim(result: np.ndarray, content: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    out = grey(result)
    return float(structural_similarity(out, grey(content, out.shape), data_range=1.0))


def timed_run(content: np.ndarray, style: np.ndarray, config: StyleConfig) -> dict:
    """One run: seconds per step (first to last step event), steps, final loss terms, result."""
    seconds, last = per_step(content, style, config)
    return {
        "s_per_step": seconds,
        "steps": last.step,
        "terms": {k: round(float(v), 6) for k, v in last.losses.items()},
        "result": last.preview,
    }


def scores(result: np.ndarray, content: np.ndarray, style: np.ndarray, size: int) -> dict:
    """Every measure of one result (see the module docstring), rounded for the report."""
    edges = edge_scores(result, content)
    out = {
        "edge_f1": edges["f1"],
        "edge_precision": edges["precision"],
        "edge_recall": edges["recall"],
        "edge_f1_q": edge_scores(result, content, quantiles=True)["f1"],
        "ssim": ssim(result, content),
        "label_contrast": label_contrast(result, content),
        **distances(result, content, style, size),  # style_scale 1: the style's long side is the size
    }
    return {k: round(v, 4) for k, v in out.items()}


@contextlib.contextmanager
def laplacian_eps(eps: float) -> Iterator[None]:
    """Runs in this block build their Laplacian with ``eps`` (the engine has no option for it:
    1e-5 is measured best, docs/quality.md; this is how the alternatives were measured)."""
    built = objective.MattingLaplacian
    objective.MattingLaplacian = functools.partial(MattingLaplacian, eps=eps)
    try:
        yield
    finally:
        objective.MattingLaplacian = built


def run_pair(pair: str, args: argparse.Namespace, report: dict) -> None:
    """Every run on one pair, scored; each appended to ``report`` (rewritten after each run)."""
    load_content, load_style = PAIRS[pair]
    content, style = load_content(), load_style()
    runs = {label: values() for label, values in RUNS.items()}
    runs.update({f"keep structure @{w:g}": preset_values(w) for w in args.weights})
    epsilons = {f"keep structure eps={e:g}": e for e in args.eps}
    runs.update({label: preset_values() for label in epsilons})
    results = []
    for label, values in runs.items():
        config = config_of(
            {**values, "size": args.size, "iterations": args.iterations, "precision": args.precision}
        ).replace(preview_every=0)
        with laplacian_eps(epsilons.get(label, DEFAULT_EPS)):
            run = timed_run(content, style, config)
        result = run.pop("result")
        results.append(result)
        run.update(pair=pair, label=label, values=values, **scores(result, content, style, args.size))
        report["runs"].append(run)
        print(json.dumps(run), flush=True)
        if args.json:
            write_report(args.json, report)
    if args.montages:  # the runs of RUNS; the other weights are in the report only
        montage(
            [content, style, *results[: len(RUNS)]],
            args.montages / f"structure_{pair}.png",
            args.montage_height,
        )


def sparse_products(size: int) -> dict[str, Callable[[], torch.Tensor]]:
    """L·V (3 channels) in each format, for the L of a random ``size``² image."""
    image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    bands = laplacian_bands(image)
    csr = bands_to_csr(bands).to(torch.float32)
    csr32 = torch.sparse_csr_tensor(
        csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape, check_invariants=False
    )
    coo = csr.to_sparse_coo().coalesce()
    dia = torch.from_numpy(bands).float()
    columns = image[0].reshape(3, -1).T.contiguous()  # (N, 3)
    return {
        "dia": lambda: banded_product(dia, image),
        "csr_int32": lambda: csr32 @ columns,
        "csr_int64": lambda: csr @ columns,
        "coo": lambda: torch.sparse.mm(coo, columns),
    }


def product_times(sizes: tuple[int, ...] = (256, 512), repeats: int = 20) -> dict[str, dict[str, float]]:
    """Median milliseconds of L·V per sparse format and size (after one warm-up product)."""
    out: dict[str, dict[str, float]] = {}
    for size in sizes:
        out[str(size)] = {}
        for name, product in sparse_products(size).items():
            product()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                product()
                times.append(time.perf_counter() - start)
            out[str(size)][name] = round(float(np.median(times)) * 1e3, 2)
        print(json.dumps({"size": size, "ms": out[str(size)]}), flush=True)
    return out


def interleaved_step_times(args: argparse.Namespace, rounds: int, steps: int = 8) -> dict[str, float]:
    """Median seconds per step of each of :data:`RUNS` over ``rounds`` rounds that run each in turn."""
    load_content, load_style = PAIRS[args.pairs[0]]
    content, style = load_content(), load_style()
    configs = {
        label: config_of({**values(), "size": args.size, "iterations": steps, "precision": args.precision})
        for label, values in RUNS.items()
    }
    times: dict[str, list[float]] = {label: [] for label in configs}
    for _ in range(rounds):
        for label, config in configs.items():
            config = config.replace(preview_every=0, multiscale=False)
            times[label].append(timed_run(content, style, config)["s_per_step"])
    return {label: round(float(np.median(t)), 4) for label, t in times.items()}


def print_table(report: dict) -> None:
    names = ("edge F1", "SSIM", "labels", "style", "content", "s/step", "steps")
    print(f"{'pair':22s} {'run':22s} " + " ".join(f"{n:>8s}" for n in names))
    for r in report["runs"]:
        values = (r["edge_f1"], r["ssim"], r["label_contrast"], r["style_distance"], r["content_distance"])
        values += (r["s_per_step"], r["steps"])
        print(f"{r['pair']:22s} {r['label']:22s} " + " ".join(f"{v:8.4g}" for v in values))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument(
        "--iterations", type=lambda v: v if v == AUTO else int(v), default=AUTO, help="a number or 'auto'"
    )
    p.add_argument("--precision", default="auto")
    p.add_argument("--pairs", nargs="+", choices=sorted(PAIRS), default=list(PAIRS))
    p.add_argument("--weights", nargs="*", type=float, default=[], help="more structure weights to run")
    p.add_argument("--eps", nargs="*", type=float, default=[], help="the preset with other Laplacian ε")
    p.add_argument("--json", type=Path)
    p.add_argument("--montages", type=Path, help="write one montage per pair here")
    p.add_argument("--montage-height", type=int, default=200)
    p.add_argument("--products", action="store_true", help="time L·V in each sparse format first")
    p.add_argument("--timing-rounds", type=int, default=3, help="rounds of 8-step runs of each run")
    p.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    report = start_report(args, preset=find_preset(PRESET), edge_sigma=EDGE_SIGMA, band_px=BAND)
    start = time.perf_counter()
    if args.products:
        report["product_ms"] = product_times()
    for pair in args.pairs:
        run_pair(pair, args, report)
    if args.timing_rounds:
        report["step_times"] = interleaved_step_times(args, args.timing_rounds)
        print(json.dumps({"step_times": report["step_times"], "pair": args.pairs[0]}), flush=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        write_report(args.json, report)
    print_table(report)
    return report


if __name__ == "__main__":
    main()
