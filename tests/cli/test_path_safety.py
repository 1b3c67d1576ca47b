"""No output ever lands on a file the run reads, whatever links and spellings connect them (issue 22, class 1).

Hypothesis draws how the output and the step files relate to the inputs (the same path, a
hard link, a symbolic link, a case variant, another spelling through ``..``, a fresh name)
and runs the real CLI: every input keeps its bytes, and a run that would have written over
one is refused before it starts with one line. The batch's own rules (stack outputs, a style
in the output folder, chunk parts, another writer's temporary files) follow, through the
real ``batch`` command and its embedded Dask cluster.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from napari_style_transfer.cli import run
from napari_style_transfer.files import write_image
from napari_style_transfer.files.atomic import host_tag

FAST = ["--size", "16", "--iterations", "1", "--no-multiscale", "--precision", "fp32"]
RELATIONS = ("fresh", "same path", "hard link", "symlink", "case variant", "dotdot")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def linked(path: Path, target: Path, relation: str) -> Path:
    """Make ``path`` name ``target`` as ``relation`` says (or leave it a fresh name); the path to use."""
    if relation == "same path":
        return target
    if relation == "dotdot":
        return target.parent / ".." / target.parent.name / target.name
    if relation == "case variant":
        return path.with_name(target.name.upper())
    if relation == "hard link":
        os.link(target, path)
    elif relation == "symlink":
        path.symlink_to(target)
    return path


def folds_case(folder: Path) -> bool:
    probe = folder / "case-probe.txt"
    probe.write_text("x")
    try:
        return (folder / "CASE-PROBE.TXT").exists()
    finally:
        probe.unlink()


def write_inputs(folder: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    config = folder / "settings.json"
    config.write_text('{"iterations": 1}')
    return {
        "content": write_image(folder / "cat.png", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)),
        "style": write_image(folder / "paint.png", rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)),
        "mask": write_image(folder / "regions.png", np.ones((20, 24), np.uint8)),
        "config": config,
    }


def run_cli(inputs: dict[str, Path], out: Path, *extra: str) -> int:
    argv = [str(inputs["content"]), str(inputs["style"]), "-o", str(out), *FAST, *extra]
    return run([*argv, "--mask", str(inputs["mask"]), "--config", str(inputs["config"])])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relation=st.sampled_from(RELATIONS), victim=st.sampled_from(("content", "style", "mask", "config")))
def test_an_output_never_replaces_an_input(relation, victim, capsys):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = write_inputs(folder)
        before = {k: digest(p) for k, p in inputs.items()}
        out = linked(folder / "result.png", inputs[victim], relation)
        same = out.exists() and os.path.samefile(out, inputs[victim])
        code = run_cli(inputs, out)
        err = capsys.readouterr().err
        assert {k: digest(p) for k, p in inputs.items()} == before  # no input changed, ever
        if out.suffix.lower() != ".png":  # a variant of settings.json: not an image name at all
            assert code == 2 and "must end in one of" in err
        elif same:
            assert code == 2 and len(err.strip().splitlines()) == 1 and "would destroy it" in err, err
        else:
            assert code == 0, err


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(relation=st.sampled_from(RELATIONS), victim=st.sampled_from(("content", "style", "mask")))
def test_a_step_file_never_replaces_an_input(relation, victim, capsys):
    """``--save-every`` writes out.step00001.png, out.step00002.png…: an input under such a name stays."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        inputs = write_inputs(folder)
        step = folder / "out.step00001.png"
        if relation in ("same path", "dotdot", "case variant"):  # the input itself carries a step name
            moved = folder / (step.name.upper() if relation == "case variant" else step.name)
            os.replace(inputs[victim], moved)
            inputs[victim] = moved
        else:
            linked(step, inputs[victim], relation)
        before = {k: digest(p) for k, p in inputs.items()}
        collides = step.exists() and os.path.samefile(step, inputs[victim])
        code = run_cli(inputs, folder / "out.png", "--save-every", "1")
        err = capsys.readouterr().err
        assert {k: digest(p) for k, p in inputs.items()} == before
        if collides:
            assert code == 2 and "--save-every" in err and "would destroy it" in err, err
        else:
            assert code == 0, err


def test_case_variants_are_refused_exactly_where_the_file_system_folds_case(tmp_path, capsys):
    content = write_image(tmp_path / "cat.png", np.zeros((20, 24, 3), np.uint8))
    style = write_image(tmp_path / "paint.png", np.full((20, 24, 3), 200, np.uint8))
    code = run([str(content), str(style), "-o", str(tmp_path / "CAT.png"), *FAST])
    assert code == (2 if folds_case(tmp_path) else 0), capsys.readouterr().err


# ----------------------------------------------------------------------------- batch


@pytest.fixture
def pair(tmp_path, content_image, style_image):
    folder = tmp_path / "in"
    folder.mkdir()
    write_image(folder / "c0.png", content_image)
    write_image(folder / "c1.png", np.roll(content_image, 7, axis=1))
    return folder, write_image(tmp_path / "style.png", style_image)


BATCH = [*FAST, "--workers", "1", "-q"]


def test_a_stack_batch_into_its_input_folder_is_refused_and_the_stack_kept(tmp_path, style_image, capsys):
    folder = tmp_path / "stacks"
    folder.mkdir()
    stack = folder / "s.tif"
    tifffile.imwrite(stack, np.random.default_rng(0).integers(0, 255, (3, 20, 24), dtype=np.uint8))
    style = write_image(tmp_path / "style.png", style_image)
    before = digest(stack)
    code = run(["batch", str(stack), "--style", str(style), "-o", str(folder), "--stack", *BATCH])
    err = capsys.readouterr().err
    assert code == 2 and "is the input file" in err and "would destroy it" in err
    assert digest(stack) == before


def test_a_style_in_the_output_folder_is_never_written_over(pair, tmp_path, capsys):
    folder, _ = pair
    out = tmp_path / "out"
    out.mkdir()
    style = write_image(out / "c0.png", np.full((20, 24, 3), 90, np.uint8))  # named like an output
    before = digest(style)
    code = run(["batch", str(folder), "--style", str(style), "-o", str(out), *BATCH])
    err = capsys.readouterr().err
    assert code == 2 and "is the style file" in err and digest(style) == before


def test_a_report_name_that_is_an_input_is_refused(pair, tmp_path, capsys):
    folder, style = pair
    out = tmp_path / "out"
    out.mkdir()
    report = out / "batch-report.json"
    os.link(folder / "c0.png", report)  # a hard link to an input where the report goes
    code = run(["batch", str(folder), "--style", str(style), "-o", str(out), *BATCH])
    assert code == 2 and "is the input file" in capsys.readouterr().err
    assert digest(report) == digest(folder / "c0.png")


def test_another_writers_temporary_files_survive_a_batch_and_abandoned_ones_go(pair, tmp_path, capsys):
    folder, style = pair
    out = tmp_path / "out"
    out.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ended = subprocess.run([sys.executable, "-c", "pass"])
        assert ended.returncode == 0
        live = out / f".nst-{host_tag()}-{writer.pid}-00aa11bb.tmp.png"
        live.write_bytes(b"another process is writing this right now")
        elsewhere = out / ".nst-deadbeef-1-00aa11bb.tmp.png"  # another machine's (shared folder)
        elsewhere.write_bytes(b"a writer on another machine")
        unnamed = out / ".nst-0123456789ab.tmp.png"  # an older version's name: no owner, kept
        unnamed.write_bytes(b"unknown owner")
        dead = out / f".nst-{host_tag()}-{_dead_pid()}-00aa11bb.tmp.png"
        dead.write_bytes(b"left by a killed run")
        code = run(["batch", str(folder), "--style", str(style), "-o", str(out), *BATCH])
        assert code == 0, capsys.readouterr().err
        assert live.read_bytes().startswith(b"another process") and elsewhere.exists() and unnamed.exists()
        assert not dead.exists()
        assert sorted(p.name for p in out.glob("c*.png")) == ["c0.png", "c1.png"]
    finally:
        writer.kill()
        writer.wait()


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(done.stdout)
