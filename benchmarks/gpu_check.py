"""The device check (issue 15): one process, results written after every step.

    bash benchmarks/gpu_check.sh OUT_DIR               # on a CUDA machine, well under 5 minutes on an H100
    bash benchmarks/gpu_check.sh --cpu-smoke OUT_DIR   # anywhere: every step at tiny sizes on the CPU

Steps, in order: 1 environment and what 'auto' resolves to; 2 the GPU tests; 3 a leak and
out-of-memory round trip; 4 CPU-vs-device parity of loss and gradient in fp32, bf16 and fp16,
with the fp16 subnormal share (gpu_parity.py); 5 per-step time, synchronisations and memory
peaks next to the estimate; 6 asynchronous previews equal to synchronous ones; 7 a large bf16
run and a tiled run; 8 determinism; 9 torch.compile (first and second run, compile count),
in a child process with a timeout. ``OUT_DIR/gpu_check.json`` is rewritten (atomically) after
every step, so a run cut short keeps what it measured. Only the engine's public API is used.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gpu_parity import step_parity
from napari_style_transfer.engine import StyleConfig, estimate_peak_memory, get_network, stylize, stylize_iter
from napari_style_transfer.engine.memory import available_memory, release_cached_memory
from napari_style_transfer.engine.runtime import host_transfers, initial_loss_scale, select_runtime
from napari_style_transfer.engine.vgg import COMPILE_BACKEND_ENV, embedded_weights_path
from napari_style_transfer.samples import sample_pair

NEEDS_CUDA = "skipped: needs CUDA"
GIB = 2**30


@dataclass(frozen=True)
class Plan:
    """Sizes (long side, px) and iteration counts of each step."""

    device: torch.device
    parity: int
    subnormal: tuple[int, ...]
    timing: tuple[int, ...]
    iterations: int
    big: int
    tiled: int
    tile: int | None
    small: int  # leak, previews, determinism
    oom: int
    compile: int
    compile_iterations: int
    compile_timeout: float
    budget: float

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


CUDA_PLAN = dict(
    parity=512,
    subnormal=(512, 1024),
    timing=(512, 1024, 2048),
    iterations=15,
    big=4096,
    tiled=2048,
    tile=None,
    small=256,
    oom=1024,
    compile=512,
    compile_iterations=20,
    compile_timeout=150,
    budget=540,
)
SMOKE_PLAN = dict(
    parity=32,
    subnormal=(32, 48),
    timing=(32, 48),
    iterations=4,
    big=32,
    tiled=64,
    tile=32,
    small=32,
    oom=64,
    compile=32,
    compile_iterations=3,
    compile_timeout=100,
    budget=170,
)


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, default=str))
    os.replace(tmp, path)


def gib(n: float | None) -> float | None:
    return None if n is None else round(n / GIB, 3)


def forget(exc: BaseException | None) -> None:
    """Drop an exception's frames, which hold the failed run's tensors."""
    while exc is not None:
        if exc.__traceback__ is not None:
            traceback.clear_frames(exc.__traceback__)
            exc.__traceback__ = None
        exc = exc.__cause__ or exc.__context__


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_run(content, style, config: StyleConfig, device: torch.device) -> dict:
    """Run ``config`` through stylize_iter: per-step time, host syncs and transfers, memory peaks."""
    cuda = device.type == "cuda"
    free = None
    if cuda:
        release_cached_memory(device)
        torch.cuda.reset_peak_memory_stats(device)
        free = available_memory(device)
    stamps, syncs, transfers, events = [], [], [], []
    gen = stylize_iter(content, style, config)
    start = time.perf_counter()
    while True:
        before = host_transfers()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if cuda:
                torch.cuda.set_sync_debug_mode("warn")
            try:
                event = next(gen, None)
            finally:
                if cuda:
                    torch.cuda.set_sync_debug_mode("default")
        sync(device)
        if event is None:
            break
        stamps.append(time.perf_counter())
        syncs.append(
            sum("called a synchronizing" in str(w.message) for w in caught)
        )  # not the "prototype" note
        transfers.append(host_transfers() - before)
        events.append(event)
    last = events[-1]
    steady = range(3, len(events) - 1) if len(events) > 5 else range(1, len(events))  # after cuDNN's tuning
    steps = np.array([stamps[i] - stamps[i - 1] for i in steady])
    precision = last.info.get("precision", config.precision)
    estimate = estimate_peak_memory(
        tuple(last.shape), config.deepest_layer, precision, config.optimizer, device=device
    )
    return {
        "shape": list(last.shape),
        "precision": precision,
        "steps": last.step,
        "tiled": last.info.get("tiled"),
        "message": next((e.message for e in events if e.message), None),
        "first_event_s": round(stamps[0] - start, 3),
        "total_s": round(stamps[-1] - start, 3),
        "step_ms_median": round(float(np.median(steps)) * 1e3, 2) if steps.size else None,
        "syncs_per_step": [syncs[i] for i in steady] if cuda else NEEDS_CUDA,
        "host_transfers_per_step": [transfers[i] for i in steady],
        "peak_allocated_gib": gib(torch.cuda.max_memory_allocated(device)) if cuda else NEEDS_CUDA,
        "peak_reserved_gib": gib(torch.cuda.max_memory_reserved(device)) if cuda else NEEDS_CUDA,
        "estimate_gib": gib(estimate.total_bytes),
        "free_before_gib": gib(free) if cuda else NEEDS_CUDA,
    }


# ----------------------------------------------------------------------------- steps


def step_environment(plan: Plan, images) -> dict:
    auto = select_runtime("auto", torch.device("cuda") if plan.cuda else plan.device)
    out = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": str(plan.device),
        "auto_precision": auto.precision,
        "channels_last": auto.channels_last,
        "cpu_threads": torch.get_num_threads(),
        "weights": str(embedded_weights_path()),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "fp16_initial_loss_scale_512px": initial_loss_scale(512 * 512),
    }
    if plan.cuda:
        props = torch.cuda.get_device_properties(plan.device)
        out.update(
            gpu=props.name,
            capability=list(torch.cuda.get_device_capability(plan.device)),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            total_gib=gib(props.total_memory),
            available_gib=gib(available_memory(plan.device)),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return out


def step_gpu_tests(plan: Plan, images, out_dir: Path) -> dict:
    if not plan.cuda:
        return {"_status": NEEDS_CUDA}
    import xml.etree.ElementTree as ET

    import pytest

    xml = out_dir / "gpu_tests.xml"
    tests = ["tests/engine/test_gpu.py", "tests/engine/test_matting_devices.py"]
    code = pytest.main(["-q", "-m", "gpu", "-p", "no:cacheprovider", f"--junitxml={xml}", *tests])
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    failed = [
        c.get("name")
        for c in suite.iter("testcase")
        if c.find("failure") is not None or c.find("error") is not None
    ]
    out = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    out.update(exit_code=int(code), failed=failed)
    if code != 0:
        out["_status"] = f"failed: {len(failed)} test(s)"
    return out


def step_leak_and_oom(plan: Plan, images) -> dict:
    content, style = images
    dev = plan.device
    config = StyleConfig(size=plan.small, iterations=3, multiscale=False, preview_every=1, device=str(dev))
    stylize(content, style, config)  # warm-up: the cached network is the baseline
    if not plan.cuda:
        stylize(content, style, config)
        return {"runs": "ok", "allocated_bytes": NEEDS_CUDA, "oom_round_trip": NEEDS_CUDA}
    sync(dev)
    out = {"baseline_allocated": torch.cuda.memory_allocated(dev)}
    stylize(content, style, config)
    release_cached_memory(dev)
    out["after_run_allocated"] = torch.cuda.memory_allocated(dev)
    gen = stylize_iter(content, style, config.replace(size=plan.oom, iterations=6, preview_every=0))
    next(gen)  # the run has started (its memory check passed); now take the rest of the GPU
    release_cached_memory(dev, collect=False)
    filler = None
    try:
        filler = torch.empty(
            max(0, torch.cuda.mem_get_info(dev)[0] - 64 * 2**20), dtype=torch.uint8, device=dev
        )
        for _ in gen:
            pass
        out["oom_raised"] = False
    except torch.OutOfMemoryError as exc:
        out.update(oom_raised=filler is not None, oom_message=str(exc).splitlines()[0][:160])
        forget(exc)
    finally:
        del filler
        gen.close()
    release_cached_memory(dev)
    sync(dev)
    out["after_oom_allocated"] = torch.cuda.memory_allocated(dev)
    stylize(content, style, config)
    release_cached_memory(dev)
    out["final_allocated"] = torch.cuda.memory_allocated(dev)
    values = [
        out[k]
        for k in ("baseline_allocated", "after_run_allocated", "after_oom_allocated", "final_allocated")
    ]
    out["leak_free"] = len(set(values)) == 1
    return out


def step_timing(plan: Plan, images) -> dict:
    content, style = images
    out = {}
    for side in plan.timing:
        for precision in ("auto", "fp32"):
            config = StyleConfig(
                size=side,
                iterations=plan.iterations,
                multiscale=False,
                preview_every=0,
                device=str(plan.device),
                precision=precision,
            )
            out[f"{side}px_{precision}"] = timed_run(content, style, config, plan.device)
    return out


def step_previews(plan: Plan, images) -> dict:
    """Previews of a run (asynchronous on CUDA) equal the synchronous final image of a run stopped there."""
    content, style = images
    config = StyleConfig(
        size=plan.small,
        iterations=4,
        multiscale=False,
        preview_every=1,
        device=str(plan.device),
        deterministic=True,
        seed=0,
    )
    previews = [(e.iteration, e.preview) for e in stylize_iter(content, style, config) if not e.done]
    reference = stylize(content, style, config.replace(iterations=2, preview_every=0))
    diffs = {
        it: int(np.abs(p.astype(int) - reference.astype(int)).max()) for it, p in previews if p is not None
    }
    match = min(diffs, key=diffs.get)
    return {
        "max_abs_diff_by_event": diffs,
        "matching_event": match,
        "lag_steps": match - 2,
        "equal": diffs[match] == 0,
        "async": plan.cuda,
    }


def step_large(plan: Plan, images) -> dict:
    content, style = images
    dev = str(plan.device)
    big = StyleConfig(
        size=plan.big, iterations=3, multiscale=False, preview_every=0, device=dev, precision="bf16"
    )
    tiled = StyleConfig(
        size=plan.tiled, iterations=3, preview_every=0, device=dev, tiling="on", tile_size=plan.tile
    )
    return {
        f"{plan.big}px_bf16": timed_run(content, style, big, plan.device),
        f"{plan.tiled}px_tiled": timed_run(content, style, tiled, plan.device),
    }


def step_determinism(plan: Plan, images) -> dict:
    content, style = images
    config = StyleConfig(
        size=plan.small,
        iterations=5,
        multiscale=False,
        preview_every=0,
        device=str(plan.device),
        deterministic=True,
        seed=1,
        init="noise",
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        runs = [stylize(content, style, config) for _ in range(2)]
    notes = sorted(
        {str(w.message).splitlines()[0][:160] for w in caught if "determinis" in str(w.message).lower()}
    )
    return {
        "identical": bool(np.array_equal(*runs)),
        "max_abs_diff": int(np.abs(runs[0].astype(int) - runs[1]).max()),
        "deterministic_left_on": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "warnings": notes,
    }


def step_compile(plan: Plan, images, out_dir: Path, timeout: float) -> dict:
    """Runs :func:`compile_child` in its own process group, killed after ``timeout`` seconds."""
    env = dict(os.environ)
    if not plan.cuda:
        env.setdefault(COMPILE_BACKEND_ENV, "aot_eager")  # dynamo and AOT autograd without a C++ build
    result_path = out_dir / "compile.json"
    result_path.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--only-compile", str(out_dir)] + ([] if plan.cuda else ["--cpu-smoke"])
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout=timeout)
        status = "ok" if code == 0 else f"error: exit code {code}"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        status = f"timeout after {timeout:.0f} s"
    out = json.loads(result_path.read_text()) if result_path.exists() else {}
    out["_status"] = status
    return out


def compile_child(plan: Plan, out_dir: Path) -> int:
    content, style = sample_pair()
    dev = plan.device
    config = StyleConfig(
        size=plan.compile,
        iterations=plan.compile_iterations,
        multiscale=False,
        preview_every=0,
        device=str(dev),
        precision="auto",
        compile=True,
    )
    # resolved as the engine does (with the size): the network watched is the one the runs compile
    runtime = select_runtime(config.precision, dev, config.compile, long_side=config.size)
    path = out_dir / "compile.json"
    out: dict = {"backend": os.environ.get(COMPILE_BACKEND_ENV, "inductor"), "precision": runtime.precision}
    net = get_network("embedded", "max", dev, config.deepest_layer, channels_last=runtime.channels_last)
    runner = (net if runtime.autocast_dtype is None else net.cast(runtime.autocast_dtype)).compiled()
    # first: pays the compiler; second: steady state; eager: the same run uncompiled; multiscale: new
    # shapes (one more compile with dynamic sizes, then none).
    parts = (
        ("first", config),
        ("second", config),
        ("eager", config.replace(compile=False)),
        ("multiscale", config.replace(size=plan.compile * 2, multiscale=True)),
    )
    for label, cfg in parts:
        out[label] = timed_run(content, style, cfg, dev)
        out[label]["compiles_so_far"] = runner.compiles
        out.update(compiled_active=runner.active, compile_error=runner.error)
        write_json(path, out)
    return 0


STEPS = (
    ("1_environment", step_environment),
    ("2_gpu_tests", step_gpu_tests),
    ("3_leak_and_oom", step_leak_and_oom),
    ("4_parity", step_parity),
    ("5_timing", step_timing),
    ("6_previews", step_previews),
    ("7_large", step_large),
    ("8_determinism", step_determinism),
    ("9_compile", step_compile),
)


def run_all(plan: Plan, out_dir: Path, mode: str) -> int:
    report = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "steps": {}}
    path = out_dir / "gpu_check.json"
    start = time.perf_counter()
    images = sample_pair()
    for name, fn in STEPS:
        left = plan.budget - (time.perf_counter() - start)
        if left < 10:
            report["steps"][name] = {"status": "skipped: out of time"}
            write_json(path, report)
            continue
        report["steps"][name] = {"status": "running"}
        write_json(path, report)
        t0 = time.perf_counter()
        try:
            args = {
                "2_gpu_tests": (out_dir,),
                "9_compile": (out_dir, min(plan.compile_timeout, left - 5)),
            }.get(name, ())
            results = fn(plan, images, *args)
            status = results.pop("_status", "ok")
        except Exception as exc:  # noqa: BLE001 - a step's failure is a result; the next step still runs
            status = f"error: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            results = {"traceback": traceback.format_exc()[-3000:]}
            forget(exc)
        seconds = round(time.perf_counter() - t0, 2)
        report["steps"][name] = {"status": status, "seconds": seconds, "results": results}
        report["elapsed_s"] = round(time.perf_counter() - start, 2)
        write_json(path, report)
        print(f"[gpu_check] {name}: {status} ({seconds:.1f} s)", flush=True)
    print(f"[gpu_check] results: {path}", flush=True)
    return 1 if any(s["status"].startswith("error") for s in report["steps"].values()) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", nargs="?", default="out/gpu_check")
    parser.add_argument("--cpu-smoke", action="store_true", help="every step on the CPU at tiny sizes")
    parser.add_argument(
        "--only-compile", action="store_true", help=argparse.SUPPRESS
    )  # step 9's child process
    parser.add_argument(
        "--budget", type=float, default=None, help="seconds for all steps (skips the rest after)"
    )
    args = parser.parse_args(argv)
    if not args.cpu_smoke and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA GPU here; use --cpu-smoke OUT_DIR to check the script on the CPU",
            file=sys.stderr,
        )
        return 2
    values = dict(SMOKE_PLAN if args.cpu_smoke else CUDA_PLAN)
    values["budget"] = args.budget or values["budget"]
    plan = Plan(device=torch.device("cpu" if args.cpu_smoke else "cuda:0"), **values)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.cpu_smoke:
        torch.set_num_threads(1)  # tiny images gain nothing from threads; on a busy CPU they spin and wait
    if args.only_compile:
        return compile_child(plan, out_dir)
    return run_all(plan, out_dir, "cpu-smoke" if args.cpu_smoke else "cuda")


if __name__ == "__main__":
    sys.exit(main())
