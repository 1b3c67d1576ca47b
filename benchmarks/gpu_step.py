"""One optimiser step near the hardware (issue 23): today's step against the step that never waits for the host.

    python benchmarks/gpu_step.py [--sizes 256 512 1024 2048] [--steps 20] [--out out/gpu_step.json]
    python benchmarks/gpu_step.py --cpu-smoke      # every section at 32 px, 3 steps, on the CPU

Per output size (long side, 2:3 random content, random style), three sections, each from the
same start: ``compact`` (CompactLBFGS through ``optimizer_step``, one host transfer a step, as
the loop runs today), ``device`` (DeviceLBFGS eagerly, its terms read one step late through a
LaggedReadout) and ``graph`` (the DeviceLBFGS step captured and replayed by GraphStep; CUDA
only, and the report says whether it really replayed or fell back). Each reports ms per step,
aten ops and (CUDA) kernels per step from torch.profiler, host synchronisations per step (the
engine's own transfer count, syncing aten ops, and CUDA's sync debug mode) and the loss at the
end. The JSON is rewritten after every section, so a run cut short keeps what it measured.
"""

from __future__ import annotations

import argparse
import gc
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from common import write_report
from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.engine.device_lbfgs import DeviceLBFGS, LaggedReadout
from napari_style_transfer.engine.graph_step import GraphStep
from napari_style_transfer.engine.lbfgs import CompactLBFGS, optimizer_step
from napari_style_transfer.engine.objective import FeatureExtractor, Objective, StyleTargets
from napari_style_transfer.engine.optimise import LBFGS_HISTORY, make_closure
from napari_style_transfer.engine.runtime import host_transfers, select_runtime
from napari_style_transfer.engine.vgg import CAFFE, get_network

#: aten ops that make the host wait for the device.
SYNCING = {"aten._local_scalar_dense", "aten.item", "aten.is_nonzero", "aten.nonzero", "aten.equal"}


class SyncCount(TorchDispatchMode):
    """Counts aten ops, and those that wait for the device (value reads, device → host copies)."""

    def __init__(self):
        super().__init__()
        self.ops = 0
        self.syncs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.ops += 1
        name = str(func.overloadpacket)
        sources = {a.device.type for a in args if isinstance(a, torch.Tensor)}
        target = kwargs.get("device")
        to_host = target is not None and torch.device(target).type == "cpu" and sources - {"cpu"}
        if name in SYNCING or to_host:
            self.syncs += 1
        return func(*args, **kwargs)


def build_problem(size: int, precision: str, device: torch.device):
    """The loss at ``size`` px on random 2:3 content and a random square style, as the loop builds it."""
    runtime = select_runtime(precision, device, long_side=size)
    config = StyleConfig(size=size, precision=runtime.precision, multiscale=False, device=device.type)
    net = get_network("embedded", "max", device, config.deepest_layer, channels_last=runtime.channels_last)
    gen = torch.Generator().manual_seed(0)
    content = torch.rand(1, 3, max(16, size * 2 // 3), size, generator=gen).to(device)
    style = torch.rand(1, 3, size, size, generator=gen)
    extract = FeatureExtractor(net, CAFFE, runtime)
    targets = StyleTargets(extract, config, [style], [1.0], [None], device)
    return Objective(extract, config, content, style_targets=targets.blended(size)), content, runtime


def make_runner(
    kind: str, problem: Objective, content: torch.Tensor
) -> tuple[Callable[[], float | None], dict]:
    """A function doing one step of ``kind`` (returns the total loss when the host has it) and its facts."""
    image = content.detach().clone().requires_grad_(True)
    facts: dict = {}
    if kind == "compact":
        opt = CompactLBFGS([image], lr=1.0, history_size=LBFGS_HISTORY)
        closure = make_closure(opt, problem, image)
        return lambda: optimizer_step(opt, closure).values.get("total"), facts
    opt = DeviceLBFGS([image], lr=1.0, history_size=LBFGS_HISTORY)
    closure = make_closure(opt, problem, image)
    readout = LaggedReadout()
    facts["readout"] = readout

    def step(x: torch.Tensor) -> torch.Tensor:
        opt.step(closure)
        return opt.last_terms["total"]

    runner = GraphStep(step, image.device, opt) if kind == "graph" else step
    facts["graph"] = runner if kind == "graph" else None

    def one() -> float | None:
        runner(image)
        readout.post(opt.terms_with_flag())
        late = readout.read()  # the previous step's values: their copy is done
        return None if late is None else late.get("total")

    return one, facts


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_syncs(step: Callable[[], object], device: torch.device, steps: int) -> dict:
    """Host synchronisations and aten ops per step, over ``steps`` steps (after warm-up)."""
    before = host_transfers()
    with SyncCount() as mode:
        for _ in range(steps):
            step()
    out = {
        "engine_host_transfers_per_step": (host_transfers() - before) / steps,
        "syncing_aten_ops_per_step": mode.syncs / steps,
        "aten_ops_per_step": mode.ops / steps,
    }
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                for _ in range(steps):
                    step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
        out["cuda_sync_warnings_per_step"] = len(caught) / steps
    return out


def count_kernels(step: Callable[[], object], device: torch.device, steps: int) -> dict:
    """Device kernels (CUDA) per step from torch.profiler, and graph launches."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        for _ in range(steps):
            step()
        synchronize(device)
    events = prof.events()
    kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
    launches = [e for e in events if e.name in ("cudaGraphLaunch", "cudaLaunchKernel", "cudaLaunchKernelExC")]
    return {
        "profiler_device_kernels_per_step": len(kernels) / steps,
        "cuda_graph_launches_per_step": sum(e.name == "cudaGraphLaunch" for e in launches) / steps,
        "cuda_kernel_launch_calls_per_step": sum(e.name != "cudaGraphLaunch" for e in launches) / steps,
    }


def run_section(kind: str, problem: Objective, content: torch.Tensor, args, device: torch.device) -> dict:
    """Warm up, time ``args.steps`` steps, then count syncs and kernels; the last loss the host saw."""
    step, facts = make_runner(kind, problem, content)
    for _ in range(args.warmup):
        step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        total = step()
    synchronize(device)
    seconds = time.perf_counter() - start
    out: dict = {"ms_per_step": round(1e3 * seconds / args.steps, 3), "steps_timed": args.steps}
    readout = facts.get("readout")
    last = readout.flush() if readout is not None else None
    out["loss_after_warmup_and_timed_steps"] = last.get("total") if last else total
    out.update(count_syncs(step, device, args.count_steps))
    try:
        out.update(count_kernels(step, device, args.count_steps))
    except Exception as error:  # noqa: BLE001 - the profiler is optional; report and go on
        out["profiler_error"] = f"{type(error).__name__}: {error}"
    graph = facts.get("graph")
    if graph is not None:
        out["replayed"] = bool(graph.graphs_by_shape)
        failed = f"capture failed for {sorted(map(str, graph.eager_shapes))}" if graph.eager_shapes else None
        out["fallback"] = graph.reason or failed
    return out


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    p.add_argument("--steps", type=int, default=20, help="timed steps per section")
    p.add_argument(
        "--warmup", type=int, default=8, help="steps before timing (the graph captures at the 4th)"
    )
    p.add_argument("--count-steps", type=int, default=2, help="steps under each counter (syncs, profiler)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--out", type=Path, default=Path("out/gpu_step.json"))
    p.add_argument("--cpu-smoke", action="store_true", help="every section at 32 px, 3 steps, on the CPU")
    args = p.parse_args(argv)
    if args.cpu_smoke:
        args.sizes, args.steps, args.warmup, args.count_steps, args.precision = [32], 3, 4, 1, "fp32"
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu_smoke else "cpu")
    report: dict = {
        "mode": "cpu-smoke" if args.cpu_smoke else device.type,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "history_size": LBFGS_HISTORY,
        "sizes": {},
    }
    kinds = ["compact", "device"] + (["graph"] if device.type == "cuda" or args.cpu_smoke else [])
    for size in args.sizes:
        entry: dict = report["sizes"].setdefault(str(size), {})
        try:
            problem, content, runtime = build_problem(size, args.precision, device)
            entry["precision"] = runtime.precision
        except Exception as error:  # noqa: BLE001 - a size that does not fit must not end the run
            entry["error"] = f"{type(error).__name__}: {error}"
            write_report(args.out, report)
            continue
        for kind in kinds:
            try:
                entry[kind] = run_section(kind, problem, content, args, device)
            except Exception as error:  # noqa: BLE001 - keep the other sections
                entry[kind] = {
                    "error": f"{type(error).__name__}: {error}",
                    "trace": traceback.format_exc()[-2000:],
                }
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            write_report(args.out, report)
            print(f"{size:5d} px {kind:8s} {summary(entry[kind])}", flush=True)
        del problem, content
    return report


def summary(section: dict) -> str:
    if "error" in section:
        return "error: " + section["error"]
    keys = ("ms_per_step", "engine_host_transfers_per_step", "syncing_aten_ops_per_step", "aten_ops_per_step")
    extra = ("profiler_device_kernels_per_step", "cuda_sync_warnings_per_step", "replayed", "fallback")
    return " ".join(f"{k}={section[k]}" for k in keys + extra if k in section)


if __name__ == "__main__":
    main()
