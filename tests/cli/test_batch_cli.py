"""The ``batch`` command as a user runs it: its own embedded cluster and Ctrl-C, and an external
cluster started with ``dask scheduler`` / ``dask worker`` on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

distributed = pytest.importorskip("distributed")

FAST = ["--size", "40", "--iterations", "2", "--no-multiscale", "--precision", "fp32"]


@pytest.fixture
def inputs(tmp_path, content_image, style_image):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        write_image(folder / f"c{i}.png", np.roll(content_image, 5 * i, axis=1))
    style = write_image(tmp_path / "style.jpg", style_image)
    return folder, style


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _report_has_done(path: Path) -> bool:
    try:
        return any(e["status"] == "done" for e in json.loads(path.read_text())["items"])
    except (OSError, ValueError, KeyError):
        return False


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_ctrl_c_keeps_finished_outputs_writes_the_report_and_no_partial_file(
    inputs, tmp_path, sig, code, word
):
    """Ctrl-C (130, "interrupted") and SIGTERM (143, "terminated") end a batch the same way."""
    folder, style = inputs
    out = tmp_path / "out"
    argv = [
        "batch",
        str(folder),
        "--style",
        str(style),
        "-o",
        str(out),
        "--workers",
        "2",
        "--threads-per-worker",
        "1",
    ]
    argv += ["--size", "48", "--iterations", "15", "--no-multiscale", "--precision", "fp32"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_style_transfer", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: _report_has_done(out / "batch-report.json"), 240, "a first finished item")
        os.killpg(proc.pid, sig)  # as Ctrl-C in a terminal, or a job scheduler: the whole process group
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, stderr
    assert f"batch: {word}: " in stderr and "Traceback" not in stderr + stdout
    report = json.loads((out / "batch-report.json").read_text())
    statuses = {Path(e["input"]).name: e["status"] for e in report["items"]}
    assert set(statuses.values()) <= {"done", "cancelled"} and "cancelled" in statuses.values()
    assert "finished" in report and len(statuses) == 6
    written = sorted(p.name for p in out.iterdir() if p.name != "batch-report.json")
    assert written == sorted(name for name, status in statuses.items() if status == "done")
    for name in written:
        assert read_image(out / name).shape == (32, 48, 3)  # whole files only


@pytest.fixture
def external_cluster(tmp_path):
    """``dask scheduler`` and two ``dask worker`` processes, on 127.0.0.1 only."""
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    common = ["--scheduler-file", str(scheduler_file), "--no-dashboard"]
    procs = [
        subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", *common], stderr=subprocess.DEVNULL
        )
    ]
    try:
        _wait_for(scheduler_file.exists, 120, "the scheduler file")
        for _ in range(2):
            worker = [*dask, "worker", "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1", *common]
            procs.append(subprocess.Popen(worker, stderr=subprocess.DEVNULL))
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=180)
            client.run(lambda: __import__("torch").set_num_threads(1))
            yield client.scheduler.address, set(client.nthreads())
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_external_cluster_with_scheduler_option(external_cluster, inputs, tmp_path, capsys):
    address, workers = external_cluster
    folder, style = inputs
    out = tmp_path / "out"
    assert (
        run(
            [
                "batch",
                str(folder / "c[0-2].png"),
                "--style",
                str(style),
                "-o",
                str(out),
                "--scheduler",
                address,
                "-q",
                *FAST,
            ]
        )
        == 0
    )
    assert "3 done" in capsys.readouterr().out
    report = json.loads((out / "batch-report.json").read_text())
    assert [e["status"] for e in report["items"]] == ["done"] * 3
    assert {e["worker"] for e in report["items"]} <= workers
    assert all(read_image(out / f"c{i}.png").shape == (27, 40, 3) for i in range(3))


def test_unreachable_scheduler_is_one_line(tmp_path, inputs, capsys):
    import dask

    folder, style = inputs
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        code = run(
            [
                "batch",
                str(folder),
                "--style",
                str(style),
                "-o",
                str(tmp_path / "o"),
                "--scheduler",
                "tcp://127.0.0.1:9",
                *FAST,
            ]
        )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--scheduler: cannot reach tcp://127.0.0.1:9" in err
