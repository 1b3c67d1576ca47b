"""The device check runs end to end: ``bash benchmarks/gpu_check.sh --cpu-smoke OUT_DIR`` on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STEPS = [
    "1_environment",
    "2_gpu_tests",
    "3_leak_and_oom",
    "4_parity",
    "5_timing",
    "6_previews",
    "7_large",
    "8_determinism",
    "9_compile",
]


@pytest.mark.slow  # make test-all
def test_gpu_check_cpu_smoke_runs_every_step_and_writes_its_json(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable)
    env.pop("PYTHONPATH", None)  # the script sets its own (src/)
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--cpu-smoke", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert report["mode"] == "cpu-smoke" and list(report["steps"]) == STEPS
    status = {name: step["status"] for name, step in report["steps"].items()}
    assert status == {name: "skipped: needs CUDA" if name == "2_gpu_tests" else "ok" for name in STEPS}
    results = {name: step.get("results", {}) for name, step in report["steps"].items()}
    assert results["1_environment"]["device"] == "cpu"
    assert results["3_leak_and_oom"]["oom_round_trip"] == "skipped: needs CUDA"
    parity = results["4_parity"]
    assert parity["fp32"]["loss_rel_diff"] < 1e-6 and parity["bf16"]["grad_cosine"] > 0.95
    assert all(parity[p]["grad_finite"] for p in ("fp32", "bf16", "fp16")) and set(parity["subnormal"]) == {
        "32",
        "48",
    }
    for run in results["5_timing"].values():
        assert run["host_transfers_per_step"] and set(run["host_transfers_per_step"]) == {
            1
        }  # one wait per step
        assert run["syncs_per_step"] == "skipped: needs CUDA" and run["estimate_gib"] > 0
    assert (
        results["6_previews"]["equal"] and results["6_previews"]["lag_steps"] == 0
    )  # synchronous on the CPU
    assert results["7_large"]["64px_tiled"]["tiled"]["tiles"] > 1
    assert results["8_determinism"]["identical"] and not results["8_determinism"]["deterministic_left_on"]
    compiled = results["9_compile"]
    assert compiled["backend"] == "aot_eager" and compiled["compiled_active"]
    # the network watched is the one the runs compile: same precision, and it counted the compile
    assert (
        compiled["precision"] == compiled["first"]["precision"] and compiled["first"]["compiles_so_far"] >= 1
    )
    assert compiled["second"]["compiles_so_far"] == compiled["first"]["compiles_so_far"]  # no recompile
