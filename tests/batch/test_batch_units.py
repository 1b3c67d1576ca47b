"""Batch pieces that need no cluster: inputs, output names, settings ids, atomic writes, the report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
import tifffile

from napari_style_transfer.batch import BatchError, expand_inputs, summary_line
from napari_style_transfer.batch.items import plan_chunks, settings_id, settings_record
from napari_style_transfer.batch.partials import PARTIAL_PATTERN, remove_partials
from napari_style_transfer.batch.plan import make_plan
from napari_style_transfer.batch.report import BatchReport, BatchResult, is_current, load_previous
from napari_style_transfer.engine import StyleConfig
from napari_style_transfer.files import write_image
from napari_style_transfer.files.atomic import atomic_write, host_tag
from napari_style_transfer.files.fingerprint import file_sha256
from napari_style_transfer.files.tiff_stack import read_slices, read_stack_header


@pytest.fixture
def folder(tmp_path, content_image):
    for name in ("b.png", "a.jpg", "c.tif", ".hidden.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    write_image(tmp_path / "a.png", content_image)
    return tmp_path


def test_inputs_expand_folders_sorted_globs_and_keep_named_files(folder):
    assert [p.name for p in expand_inputs([folder])] == ["a.jpg", "a.png", "b.png", "c.tif"]
    assert [p.name for p in expand_inputs([str(folder / "*.png")])] == ["a.png", "b.png"]
    # a named file stays even when unreadable or missing: its item fails, the others run
    assert [p.name for p in expand_inputs([folder / "notes.txt", folder / "missing.png"])] == [
        "notes.txt",
        "missing.png",
    ]
    assert len(expand_inputs([folder, folder / "a.png"])) == 4  # no duplicates
    with pytest.raises(BatchError, match="matches no image"):
        expand_inputs([str(folder / "*.bmp")])
    (folder / "empty").mkdir()
    with pytest.raises(BatchError, match="holds no images"):
        expand_inputs([folder / "empty"])


def test_plan_names_outputs_and_refuses_collisions(folder, tmp_path):
    out = tmp_path / "out"
    plan = make_plan([folder / "a.png", folder / "c.tif"], out, ext=None)
    assert [i.output for i in plan.items] == [str(out / "a.png"), str(out / "c.tif")]
    assert make_plan([folder / "a.png"], out, ext="tif").items[0].output == str(out / "a.tif")
    with pytest.raises(BatchError, match="would both write"):
        make_plan([folder / "a.png", folder / "a.jpg"], out, ext="png")
    with pytest.raises(BatchError, match="is the input file .* would destroy it"):
        make_plan([folder / "a.png"], folder)
    with pytest.raises(BatchError, match="--ext"):
        make_plan([folder / "a.png"], out, ext="bmp")


def test_plan_array_items_by_leading_axes():
    plan = make_plan(np.zeros((2, 3, 16, 20, 3), np.uint8), None)
    assert len(plan.items) == 6 and plan.arrays[5].shape == (16, 20, 3)
    assert plan.items[5].label == "array[1, 2]"
    assert len(make_plan(np.zeros((16, 20, 3), np.uint8), None).items) == 1  # one RGB image
    assert len(make_plan(np.zeros((4, 16, 20), np.uint16), None).items) == 4  # four grayscale images


def test_settings_id_changes_with_what_changes_pixels(style_image):
    base = settings_id(settings_record(StyleConfig(size=64), [style_image]))
    assert base == settings_id(
        settings_record(StyleConfig(size=64, device="cpu", preview_every=3), [style_image])
    )
    assert base != settings_id(settings_record(StyleConfig(size=65), [style_image]))
    assert base != settings_id(settings_record(StyleConfig(size=64), [style_image[::-1]]))


def test_atomic_write_leaves_old_file_or_new_one_never_a_partial(tmp_path):
    target = tmp_path / "x.txt"
    target.write_text("old")

    def broken(tmp):
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, broken)
    assert target.read_text() == "old" and not list(tmp_path.glob(PARTIAL_PATTERN))
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead = int(done.stdout)  # a process that has ended: what it left is abandoned
    (tmp_path / f".nst-{host_tag()}-{dead}-0123abcd.tmp.png").write_bytes(b"left by a killed run")
    assert remove_partials(tmp_path) == 1


def test_report_round_trip_decides_what_a_rerun_keeps(tmp_path):
    out = tmp_path / "o.png"
    out.write_bytes(b"png")
    source = {"size": 3, "mtime_ns": 1, "sha256": "ab"}
    identity = {"input_identity": source, "output_sha256": file_sha256(out)}
    report = BatchReport(tmp_path, {"size": 32}, "abc")
    report.add(
        BatchResult(0, "o", "in/o.png", str(out), "done", seconds=1.5, worker="tcp://w", identity=identity)
    )
    report.add(BatchResult(1, "p", "in/p.png", str(tmp_path / "p.png"), "failed", "cannot read image"))
    report.save(finished=True)
    data = json.loads((tmp_path / "batch-report.json").read_text())
    assert data["summary"] == {"done": 1, "failed": 1, "skipped": 0, "cancelled": 0}
    assert data["items"][1]["message"] == "cannot read image" and data["settings"] == {"size": 32}
    previous = load_previous(tmp_path)
    assert is_current(previous, str(out), "abc", source)
    assert not is_current(previous, str(out), "other settings", source)
    assert not is_current(previous, str(out), "abc", {**source, "sha256": "cd"})  # another input, same name
    assert not is_current(previous, str(out), "abc", None)  # an input that cannot be told: redone
    assert not is_current(previous, str(tmp_path / "p.png"), "abc", source)
    out.write_bytes(b"edited")
    assert not is_current(previous, str(out), "abc", source)  # the output is no longer what was written
    assert (
        summary_line(Counter(done=7, failed=1), "OUT/batch-report.json")
        == "7 done, 1 failed: see OUT/batch-report.json"
    )


def test_stack_header_and_slices_read_a_chunk_only(tmp_path):
    stack = np.arange(2 * 3 * 8 * 10 * 3, dtype=np.uint8).reshape(2, 3, 8, 10, 3)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="rgb")
    header = read_stack_header(tmp_path / "s.tif")
    assert header.rgb and header.lead == (2, 3) and header.n_slices == 6
    np.testing.assert_array_equal(
        read_slices(tmp_path / "s.tif", 2, 5, header), stack.reshape(6, 8, 10, 3)[2:5]
    )
    assert plan_chunks(6, 4) == [(0, 4), (4, 6)]


def test_a_stop_and_a_write_agree_on_which_items_still_write():
    from napari_style_transfer.batch.work import claim_write, stop_job

    with claim_write("job-a", 3) as allowed:
        assert allowed and stop_job("job-a") == [3]  # the worker tells the client: item 3 still writes
        with claim_write("job-a", 4) as later:
            assert not later  # after the stop, no other item starts writing
    assert stop_job("job-a") == []


def test_zarr_output_without_zarr_or_without_stack_is_one_line(tmp_path, style_image, monkeypatch, capsys):
    from napari_style_transfer.cli import run

    tifffile.imwrite(tmp_path / "m.tif", np.zeros((3, 20, 20), np.uint16))
    style = write_image(tmp_path / "s.png", style_image)
    argv = [
        "batch",
        str(tmp_path / "m.tif"),
        "--style",
        str(style),
        "-o",
        str(tmp_path / "o"),
        "--ext",
        "zarr",
    ]
    assert run(argv) == 2
    assert capsys.readouterr().err.endswith(
        "--ext zarr: only applies with --stack (a zarr store holds a stack's slices)\n"
    )
    monkeypatch.setitem(__import__("sys").modules, "zarr", None)  # as if zarr were not installed
    assert run([*argv, "--stack"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs the zarr package" in err and "napari-style-transfer[zarr]" in err


def test_embedded_workers_run_the_engine_at_full_speed():
    """A nanny's MALLOC_TRIM_THRESHOLD_ made every tensor be remapped each step (1.8-2x slower):
    the embedded cluster's workers start without it, and other workers reset the thresholds."""
    import os
    import subprocess
    import sys

    import dask

    from napari_style_transfer.batch import plumbing
    from napari_style_transfer.batch.allocator import (
        TRIM_VARIABLE,
        allocator_restored,
        restore_allocator_reuse,
    )

    cluster = plumbing.start_local(workers=1, threads=1)
    try:
        # no trim threshold, or (inherited from a process that once started a default Dask
        # cluster, as in this test run) thresholds set back at the worker's start
        reuse = cluster.client.run(lambda: TRIM_VARIABLE not in os.environ or allocator_restored())
        omp = cluster.client.run(lambda: os.environ.get("OMP_NUM_THREADS"))
        profiler = cluster.client.run(lambda: dask.config.get("distributed.worker.profile.enabled"))
    finally:
        cluster.close()
    assert list(reuse.values()) == [True]
    assert list(omp.values()) == ["1"]  # the rest of Dask's worker environment stays
    assert list(profiler.values()) == [False]  # its stack sampling took 5-8 % of an item
    assert TRIM_VARIABLE in os.environ or restore_allocator_reuse() is False  # nothing to mend here
    probe = "from napari_style_transfer.batch.allocator import restore_allocator_reuse as r; print(r())"
    env = os.environ | {TRIM_VARIABLE: "65536"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ("True" if sys.platform.startswith("linux") else "False")
