"""Batch runs on a real Dask LocalCluster (two worker processes), tiny images, few iterations.

One cluster serves the whole module; the CLI reaches it with ``--scheduler``. The test that
kills a worker runs last (the nanny restarts the worker, which takes a while).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import tifffile

from napari_style_transfer.batch import BatchOptions, stylize_batch
from napari_style_transfer.cli import run
from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.files import read_image, write_image

distributed = pytest.importorskip("distributed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["--size", "40", "--iterations", "2", "--no-multiscale", "--precision", "fp32"]
CONFIG = StyleConfig(size=40, iterations=2, multiscale=False, precision="fp32", preview_every=0)


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    client.run(lambda: __import__("torch").set_num_threads(1))
    yield client
    client.close()
    cluster.close()


@pytest.fixture
def inputs(tmp_path, content_image, style_image):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        write_image(folder / f"c{i}.png", np.roll(content_image, 7 * i, axis=1))
    style = write_image(tmp_path / "style.jpg", style_image)
    return folder, style


def _report(out):
    return json.loads((out / "batch-report.json").read_text())


def test_batch_matches_the_single_image_cli_and_a_rerun_skips_everything(client, inputs, tmp_path, capsys):
    folder, style = inputs
    out = tmp_path / "out"
    address = client.scheduler.address
    assert (
        run(
            ["batch", str(folder), "--style", str(style), "-o", str(out), "--scheduler", address, "-q", *FAST]
        )
        == 0
    )
    assert "3 done: see" in capsys.readouterr().out
    for i in range(3):
        single = tmp_path / f"single{i}.png"
        assert run([str(folder / f"c{i}.png"), str(style), "-o", str(single), "-q", *FAST]) == 0
        np.testing.assert_array_equal(read_image(out / f"c{i}.png"), read_image(single))
    report = _report(out)
    assert [e["status"] for e in report["items"]] == ["done"] * 3
    assert all(e["worker"].startswith("tcp://") and e["seconds"] > 0 for e in report["items"])
    stamps = [(out / f"c{i}.png").stat().st_mtime_ns for i in range(3)]

    assert (
        run(
            ["batch", str(folder), "--style", str(style), "-o", str(out), "--scheduler", address, "-q", *FAST]
        )
        == 0
    )
    assert "0 done, 3 skipped" in capsys.readouterr().out
    assert [(out / f"c{i}.png").stat().st_mtime_ns for i in range(3)] == stamps
    assert [e["status"] for e in _report(out)["items"]] == ["skipped"] * 3


def test_corrupt_file_fails_alone_with_one_line_and_nonzero_exit(client, inputs, tmp_path, capsys):
    folder, style = inputs
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "out"
    code = run(
        [
            "batch",
            str(folder),
            "--style",
            str(style),
            "-o",
            str(out),
            "--scheduler",
            client.scheduler.address,
            "-q",
            *FAST,
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert f"3 done, 1 failed: see {out / 'batch-report.json'}" in captured.err
    assert "Traceback" not in captured.err + captured.out
    failed = [e for e in _report(out)["items"] if e["status"] == "failed"]
    assert (
        len(failed) == 1
        and failed[0]["input"].endswith("broken.png")
        and "cannot read image" in failed[0]["message"]
    )
    assert "\n" not in failed[0]["message"]
    assert sorted(p.name for p in out.iterdir()) == ["batch-report.json", "c0.png", "c1.png", "c2.png"]


def test_workers_that_cannot_prepare_the_job_are_one_line(client, inputs, tmp_path, capsys):
    folder, style = inputs
    missing = tmp_path / "missing.pth"
    argv = [
        "batch",
        str(folder),
        "--style",
        str(style),
        "-o",
        str(tmp_path / "out"),
        "--weights",
        str(missing),
    ]
    code = run([*argv, "--scheduler", client.scheduler.address, "-q", *FAST])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and str(missing) in err and "Traceback" not in err


def test_api_arrays_and_a_dask_array_prepare_each_worker_once(client, content_image, style_image):
    da = pytest.importorskip("dask.array")
    stack = np.stack([np.roll(content_image[:32, :40], 5 * i, axis=0) for i in range(4)])
    results = list(stylize_batch(da.from_array(stack, chunks=(1, -1, -1, -1)), [style_image], CONFIG, client))
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    assert all(
        r.status == "done" and r.result.shape == (32, 40, 3) and r.result.dtype == np.uint8 for r in results
    )
    by_worker: dict[str, set] = {}
    for r in results:
        by_worker.setdefault(r.worker, set()).add(r.info["prep_id"])
    assert all(len(ids) == 1 for ids in by_worker.values())  # the network was prepared once per worker
    direct = list(stylize_batch([stack[2]], [style_image], CONFIG, client))[0].result
    np.testing.assert_array_equal(direct, next(r.result for r in results if r.index == 2))


def test_stack_in_chunks_is_one_tiff_with_flicker_at_chunk_boundaries(client, tmp_path, style_image):
    yy, xx = np.mgrid[0:36, 0:40]
    frames = [
        (30000 + 20000 * np.sin((xx + 2 * t) / 5.0) * np.cos(yy / 7.0)).astype(np.uint16) for t in range(6)
    ]
    tifffile.imwrite(tmp_path / "movie.tif", np.stack(frames))
    style = write_image(tmp_path / "style.png", style_image)
    out = tmp_path / "out"
    argv = [
        "batch",
        str(tmp_path / "movie.tif"),
        "--style",
        str(style),
        "-o",
        str(out),
        "--stack",
        "--chunk",
        "3",
    ]
    assert run([*argv, "--scheduler", client.scheduler.address, "-q", *FAST]) == 0
    result = tifffile.imread(out / "movie.tif")
    assert result.shape == (6, 36, 40) and result.dtype == np.uint16
    report = _report(out)
    assert [e["slices"] for e in report["items"]] == [[0, 3], [3, 6]]
    (stack,) = report["stacks"]
    assert stack["status"] == "done" and stack["flicker_pairs"] == {"inside": 4, "boundary": 1}
    assert stack["flicker_inside_chunks"] > 0 and stack["flicker_at_boundaries"] > 0
    assert not (out / ".nst-parts").exists()
    assert run([*argv, "--scheduler", client.scheduler.address, "-q", *FAST]) == 0
    assert [e["status"] for e in _report(out)["items"]] == ["skipped", "skipped"]


def _kill_a_busy_worker(client, killed: list) -> None:
    """SIGKILL the process of the first worker seen running an item (the nanny restarts it)."""
    pids = client.run(os.getpid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        busy = [address for address, keys in client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])
            return
        time.sleep(0.02)


def test_a_worker_killed_mid_batch_loses_no_item(client, content_image, style_image, tmp_path):
    contents = [np.roll(content_image, 4 * i, axis=1) for i in range(5)]
    config = CONFIG.replace(size=48, iterations=6)
    killed: list[str] = []
    killer = threading.Thread(target=_kill_a_busy_worker, args=(client, killed))
    killer.start()
    results = list(
        stylize_batch(contents, [style_image], config, client, options=BatchOptions(out_dir=tmp_path / "out"))
    )
    killer.join()
    assert killed, "no worker was running an item"
    assert sorted(r.index for r in results) == list(range(5))
    assert all(r.status == "done" for r in results), [(r.index, r.status, r.message) for r in results]
    assert len(list((tmp_path / "out").glob("*.tif"))) == 5


def test_a_zarr_stack_is_filled_chunk_by_chunk_resumes_and_equals_the_tiff(client, tmp_path, style_image):
    zarr = pytest.importorskip("zarr")
    yy, xx = np.mgrid[0:32, 0:36]
    movie = np.stack([(1000 + 900 * np.sin((xx + 3 * t) / 4.0) * np.cos(yy / 6.0)) for t in range(3)])
    tifffile.imwrite(tmp_path / "m.tif", movie.astype(np.uint16), photometric="minisblack")
    out = tmp_path / "out"
    stopped = threading.Event()

    def batch(ext, stop=None):
        options = BatchOptions(out_dir=out, chunk=1, ext=ext)
        for result in stylize_batch(
            tmp_path / "m.tif", [style_image], CONFIG, client, options=options, stop=stop
        ):
            stopped.set()  # stop after the first finished slice
            yield result

    done = [r.status for r in batch("zarr", stop=stopped) if r.kind == "chunk"].count("done")
    assert not (out / "m.zarr").exists() and 1 <= done < 3  # nothing half-made in place
    statuses = [r.status for r in batch("zarr") if r.kind == "chunk"]  # resumes: only the rest runs
    assert statuses.count("skipped") == done and statuses.count("done") == 3 - done
    store = zarr.open_array(str(out / "m.zarr"), mode="r")
    assert store.shape == (3, 36, 40) and store.dtype == np.uint16 and store.chunks == (1, 36, 40)
    assert _report(out)["stacks"][0]["flicker_pairs"] == {"inside": 0, "boundary": 2}
    assert not (out / ".nst-parts").exists() and [p.name for p in out.glob(".nst-*")] == []
    list(batch("tif"))
    np.testing.assert_array_equal(store[:], tifffile.imread(out / "m.tif"))
