"""Paths, the operating system and interrupts (issue 14): what the file system refuses or does.

Generated families over the real file system of the test machine:

* names the file system refuses (too long, a NUL byte) and names it takes but that are
  not UTF-8;
* symbolic links (to an input, dangling, looping) and hard links;
* FIFOs, sockets and device nodes (never opened: reading one would block or never end);
* read-only places (a read-only tmpfs) and a full disk (a 200 KB tmpfs); the tmpfs tests
  skip cleanly where mounting is not permitted;
* the same file named twice: as content and style it is fine, as input and output not;
* SIGINT and SIGTERM at start-up, while reading, during the run and while writing: one
  line, exit 130 / 143, nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import napari_style_transfer
from napari_style_transfer.cli import run
from napari_style_transfer.files import read_image, write_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["-q", "--size", "32", "--iterations", "1", "--no-multiscale"]
PREFIX = "napari-style-transfer: error: "


@pytest.fixture
def pair(tmp_path, content_image, style_image) -> Path:
    write_image(tmp_path / "content.png", content_image)
    write_image(tmp_path / "style.png", style_image)
    return tmp_path


def one_line(capsys, code) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith(PREFIX) and "Traceback" not in err, err
    return err[len(PREFIX) :]


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write may leave behind (none, ever)."""
    return sorted(
        p.name
        for p in folder.iterdir()
        if p.name.startswith((".nst-", ".write-test-"))
        or (stat.S_ISREG(p.lstat().st_mode) and p.lstat().st_size == 0)
    )


# --- names -------------------------------------------------------------------------------------------

NAMES = {
    "output name of 300 bytes": (
        ["{c}", "{s}", "-o", "{t}/" + "a" * 296 + ".png"],
        "the file name is 300 bytes long",
    ),
    "content name of 300 bytes": (
        ["{t}/" + "a" * 296 + ".png", "{s}", "-o", "{t}/o.png"],
        "the name is too long",
    ),
    "content path over PATH_MAX": (
        ["{t}/" + "d/" * 2100 + "c.png", "{s}", "-o", "{t}/o.png"],
        "the name is too long",
    ),
    "output path over PATH_MAX": (["{c}", "{s}", "-o", "{t}/" + "d/" * 2100 + "o.png"], "does not exist"),
    "NUL in the content name": (["{t}/c\x00.png", "{s}", "-o", "{t}/o.png"], "contains a NUL character"),
    "NUL in the output name": (["{c}", "{s}", "-o", "{t}/o\x00.png"], "contains a NUL character"),
    "NUL in the style name": (["{c}", "{t}/s\x00.png", "-o", "{t}/o.png"], "contains a NUL character"),
    "newline in a missing content's name": (
        ["{t}/two\nlines.png", "{s}", "-o", "{t}/o.png"],
        "file not found: {t}/two\\nlines.png",
    ),
}


@pytest.mark.parametrize("name", list(NAMES))
def test_names_the_file_system_refuses_are_one_line(name, pair, capsys):
    argv, expected = NAMES[name]
    names = {"c": pair / "content.png", "s": pair / "style.png", "t": pair}
    code = run([*FAST, *(a.format(**names) for a in argv)])
    assert expected.format(**names) in one_line(capsys, code)
    assert not (pair / "o.png").exists() and leftovers(pair) == []


@pytest.mark.parametrize("name", ["caf\udce9 \udcff.png", "new\nline.png", "tab\there.tif", "ünïcödé ✓.jpg"])
def test_names_the_file_system_takes_are_written_and_shown_on_one_line(name, pair, capsys):
    """Bytes that are not UTF-8, a newline, a tab, non-ASCII: written, and "wrote …" stays one line."""
    out = pair / name
    code = run(
        [
            "--size",
            "32",
            "--iterations",
            "1",
            "--no-multiscale",
            str(pair / "content.png"),
            str(pair / "style.png"),
            "-o",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and out.exists() and read_image(out).shape == (22, 32, 3)
    assert printed.count("\n") == 1 and printed.startswith("wrote ")


# --- links -------------------------------------------------------------------------------------------


def _links(t: Path) -> None:
    (t / "link.png").symlink_to(t / "content.png")
    (t / "dangling.png").symlink_to(t / "gone.png")
    (t / "loop1.png").symlink_to(t / "loop2.png")
    (t / "loop2.png").symlink_to(t / "loop1.png")
    os.link(t / "style.png", t / "hard.png")
    (t / "sub").mkdir()


SAME_FILE = {
    "output is the content": ["{t}/content.png", "{t}/style.png", "-o", "{t}/content.png"],
    "output is a symlink to the content": ["{t}/content.png", "{t}/style.png", "-o", "{t}/link.png"],
    "output is the content's symlink target": ["{t}/link.png", "{t}/style.png", "-o", "{t}/content.png"],
    "output is a hard link of the style": ["{t}/content.png", "{t}/style.png", "-o", "{t}/hard.png"],
    "output is the second style": ["{t}/content.png", "{t}/style.png", "{t}/hard.png", "-o", "{t}/style.png"],
    "output is the content through ..": ["{t}/content.png", "{t}/style.png", "-o", "{t}/sub/../content.png"],
    "output is the init image": [
        "{t}/content.png",
        "{t}/style.png",
        "--init-image",
        "{t}/hard.png",
        "-o",
        "{t}/style.png",
    ],
    "output is the mask": [
        "{t}/content.png",
        "{t}/style.png",
        "--mask",
        "{t}/mask.png",
        "-o",
        "{t}/mask.png",
    ],
}


@pytest.mark.parametrize("name", list(SAME_FILE))
def test_an_output_that_is_an_input_is_refused_before_the_run(name, pair, capsys):
    _links(pair)
    write_image(pair / "mask.png", np.ones((43, 64), np.uint8))
    before = {p.name: p.read_bytes() for p in pair.iterdir() if p.is_file()}
    code = run([*FAST, *(a.format(t=pair) for a in SAME_FILE[name])])
    message = one_line(capsys, code)
    assert "would destroy it" in message and "choose another output file" in message
    assert {p.name: p.read_bytes() for p in pair.iterdir() if p.is_file()} == before  # nothing touched


def test_the_same_file_as_content_and_style_is_fine(pair, capsys):
    code = run([*FAST, str(pair / "content.png"), str(pair / "content.png"), "-o", str(pair / "o.png")])
    assert code == 0, capsys.readouterr().err
    assert read_image(pair / "o.png").shape == (22, 32, 3)


LINK_INPUTS = {
    "dangling symlink": ("dangling.png", "a broken symbolic link to"),
    "symlink loop": ("loop1.png", "symbolic links form a loop"),
}


@pytest.mark.parametrize("name", list(LINK_INPUTS))
@pytest.mark.parametrize("role", ["content", "style", "mask"])
def test_broken_links_as_inputs_are_one_line(name, role, pair, capsys):
    _links(pair)
    bad, expected = LINK_INPUTS[name]
    argv = {
        "content": [bad, "style.png"],
        "style": ["content.png", bad],
        "mask": ["content.png", "style.png", "--mask", bad],
    }
    code = run(
        [*FAST, *(str(pair / a) if a.endswith(".png") else a for a in argv[role]), "-o", str(pair / "o.png")]
    )
    assert expected in one_line(capsys, code)


def test_an_output_through_a_symlink_replaces_the_target_and_keeps_the_link(pair, capsys):
    (pair / "results").mkdir()
    (pair / "results" / "old.png").write_bytes((pair / "style.png").read_bytes())
    (pair / "out.png").symlink_to(pair / "results" / "old.png")
    (pair / "new.png").symlink_to(pair / "results" / "new.png")  # dangling: the target is made
    for name in ("out.png", "new.png"):
        assert run([*FAST, str(pair / "content.png"), str(pair / "style.png"), "-o", str(pair / name)]) == 0
        assert (pair / name).is_symlink()
    assert read_image(pair / "results" / "old.png").shape == (22, 32, 3)
    assert read_image(pair / "results" / "new.png").shape == (22, 32, 3)
    assert leftovers(pair) == [] and leftovers(pair / "results") == []


# --- FIFOs, sockets, devices -------------------------------------------------------------------------


def _special(t: Path, kind: str) -> Path:
    path = t / f"special-{kind}.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path))
        server.close()
    else:
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # like /dev/zero: reading never ends
        except PermissionError:
            pytest.skip("creating a device node needs root")
    return path


def _run_unblocked(argv: list[str], fifo: Path | None) -> int:
    """cli.run in a thread; a FIFO that got opened is opened from here too, so a failing test still ends."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(run(argv)), daemon=True)
    thread.start()
    thread.join(60)
    if thread.is_alive() and fifo is not None:
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
        pytest.fail("the CLI opened the FIFO and blocked")
    return result[0]


SPECIAL = {"fifo": "a FIFO (named pipe)", "socket": "a socket", "device": "a character device"}


@pytest.mark.parametrize("kind", list(SPECIAL))
@pytest.mark.parametrize("role", ["content", "style", "init", "mask", "output"])
def test_fifos_sockets_and_devices_are_refused_without_opening_them(kind, role, pair, capsys):
    special = _special(pair, kind)
    c, s, o = str(pair / "content.png"), str(pair / "style.png"), str(pair / "o.png")
    argv = {
        "content": [str(special), s, "-o", o],
        "style": [c, str(special), "-o", o],
        "init": [c, s, "--init-image", str(special), "-o", o],
        "mask": [c, s, "--mask", str(special), "-o", o],
        "output": [c, s, "-o", str(special)],
    }[role]
    code = _run_unblocked([*FAST, *argv], special if kind == "fifo" else None)
    message = one_line(capsys, code)
    assert f"is {SPECIAL[kind]}" in message
    mode = os.lstat(special).st_mode
    assert not stat.S_ISREG(mode)  # an output is never replaced by a regular file


# --- read-only places and a full disk (tmpfs) --------------------------------------------------------


@contextlib.contextmanager
def tmpfs(folder: Path, options: str):
    folder.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_read_only_file_system_is_refused_before_the_run_and_read_from(pair, capsys):
    with tmpfs(pair / "ro", "size=1m") as ro:
        write_image(ro / "content.png", read_image(pair / "content.png"))
        write_image(ro / "old.png", read_image(pair / "style.png"))
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        before = (ro / "old.png").read_bytes()
        for name in ("old.png", "new.png"):
            code = run([*FAST, str(ro / "content.png"), str(pair / "style.png"), "-o", str(ro / name)])
            message = one_line(capsys, code)
            assert (
                "read-only" in message.lower()
            )  # the folder: "Read-only file system"; the file: "is read-only"
        assert (ro / "old.png").read_bytes() == before and not (ro / "new.png").exists()
        assert run([*FAST, str(ro / "content.png"), str(pair / "style.png"), "-o", str(pair / "o.png")]) == 0


def _fill(folder: Path) -> None:
    with contextlib.suppress(OSError), open(folder / "filler", "wb") as handle:
        handle.write(b"\0" * 400_000)


FULL = {
    "png over an old file": (["-o", "{d}/o.png"], True),
    "new png": (["-o", "{d}/o.png"], False),
    "jpeg over an old file": (["-o", "{d}/o.jpg"], True),
    "tiff over an old file": (["-o", "{d}/o.tif"], True),
    "--save-every": (["-o", "{d}/o.png", "--save-every", "1", "--iterations", "2"], True),
    "tiff stack": (["-o", "{d}/o.tif", "--stack"], True),
}


@pytest.mark.parametrize("name", list(FULL))
def test_a_full_disk_leaves_the_old_file_and_nothing_partial(name, pair, capsys):
    argv, old = FULL[name]
    content = pair / "content.png"
    if "--stack" in argv:
        content = pair / "stack.tif"
        write_image(content, np.stack([read_image(pair / "content.png")[..., 0]] * 2))
    with tmpfs(pair / "full", "size=200k") as full:
        target = full / argv[1].format(d="").lstrip("/")
        if old:
            write_image(target, read_image(pair / "style.png")[:20, :20])
            before = target.read_bytes()
        _fill(full)
        code = run([*FAST, str(content), str(pair / "style.png"), *(a.format(d=full) for a in argv)])
        assert "No space left on device" in one_line(capsys, code)
        assert (target.read_bytes() == before) if old else not target.exists()
        assert sorted(p.name for p in full.iterdir()) == sorted(["filler", *([target.name] if old else [])])


# --- interrupts --------------------------------------------------------------------------------------


def test_a_write_interrupted_at_any_moment_leaves_the_old_file_or_the_new_one(tmp_path):
    """A real signal (SIGALRM, raising KeyboardInterrupt as Ctrl-C and the CLI's SIGTERM do) lands inside the writer."""
    big = (np.random.default_rng(0).random((1200, 1200, 3)) * 255).astype(np.uint8)
    old = write_image(tmp_path / "o.png", big[:10, :10]).read_bytes()
    seen = set()

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        for delay in (0.001, 0.003, 0.01, 0.02, 0.05, 0.1, 0.2):
            for suffix in ("png", "tif", "jpg"):
                target = tmp_path / f"o.{suffix}"
                signal.setitimer(signal.ITIMER_REAL, delay)
                try:
                    write_image(target, big)
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    seen.add("finished")
                except KeyboardInterrupt:
                    seen.add("interrupted")
                assert leftovers(tmp_path) == []
                if target.exists():
                    data = read_image(target)
                    assert data.shape in ((10, 10, 3), (1200, 1200, 3))  # old or new, never partial
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert "interrupted" in seen
    assert old


def _cli_env() -> dict[str, str]:
    """The environment of a CLI process: this checkout's package first on the path, one OpenMP thread."""
    src = str(Path(napari_style_transfer.__file__).resolve().parents[1])
    return dict(
        os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])
    )


def _cli(args: list[str], cwd: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "napari_style_transfer", *args]
    return subprocess.Popen(command, cwd=cwd, env=_cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for(process: subprocess.Popen, ready, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end and process.poll() is None:
        with contextlib.suppress(OSError):
            if ready():
                return
        time.sleep(0.002)


def _mapped(pid: int, name: str) -> bool:
    return name in Path(f"/proc/{pid}/maps").read_text()


def _opened(pid: int, path: Path) -> bool:
    return any(os.readlink(fd) == str(path) for fd in Path(f"/proc/{pid}/fd").iterdir())


MOMENTS = ["start-up", "reading", "run", "writing"]


def test_an_interrupt_caught_inside_exec_code_does_not_turn_the_exit_into_a_sigint_death(tmp_path):
    """A Ctrl-C that met dataclass creation (``exec`` of a string) during an import once made
    ``python -m napari_style_transfer`` die by SIGINT (-2) after printing "interrupted"."""
    (tmp_path / "interrupt_then_cli.py").write_text(
        "import contextlib\n"
        "from napari_style_transfer.cli import main\n"
        "with contextlib.suppress(SystemExit):\n"
        "    main(['missing.png', 'style.png', '-o', 'o.png'])  # imports all that the second call needs\n"
        "with contextlib.suppress(KeyboardInterrupt):\n"
        "    exec('raise KeyboardInterrupt')\n"
        "main(['missing.png', 'style.png', '-o', 'o.png'])\n"
    )
    process = subprocess.run(
        [sys.executable, "-m", "interrupt_then_cli"],
        cwd=tmp_path,
        env=_cli_env(),
        capture_output=True,
        timeout=120,
    )
    assert process.returncode == 2, process.stderr.decode()
    assert process.stderr.decode().count("napari-style-transfer: error: ") == 2


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see what the process does")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_signals_at_any_moment_end_with_one_line_and_nothing_half_written(moment, sig, pair):
    big = pair / "big.png"
    if moment == "reading":
        Image.fromarray((np.random.default_rng(1).random((2500, 2500, 3)) * 255).astype(np.uint8)).save(
            big, compress_level=1
        )
    content = big if moment == "reading" else pair / "content.png"
    write_image(pair / "o.png", read_image(pair / "style.png"))
    old = (pair / "o.png").read_bytes()
    args = [
        "-q",
        "--size",
        "32",
        "--iterations",
        "100000",
        "--no-multiscale",
        "--save-every",
        "1",
        str(content),
        "style.png",
        "-o",
        "o.png",
    ]
    process = _cli(args, pair)
    ready = {
        "start-up": lambda: _mapped(process.pid, "libtorch"),
        "reading": lambda: _opened(process.pid, big),
        "run": lambda: (pair / "o.step00002.png").exists(),
        "writing": lambda: any(p.name.startswith(".nst-") for p in pair.iterdir()),
    }[moment]
    _wait_for(
        process, ready, 20.0 if moment == "writing" else 90.0
    )  # a write is brief: then any moment will do
    process.send_signal(sig)
    _, err = process.communicate(timeout=120)
    word, code = ("interrupted", 130) if sig == signal.SIGINT else ("terminated", 143)
    assert process.returncode == code and err.decode().strip() == f"napari-style-transfer: {word}", (
        err.decode()
    )
    assert leftovers(pair) == []
    assert (pair / "o.png").read_bytes() == old  # the run never finished: the old result stays
    for step in pair.glob("o.step*.png"):
        assert read_image(step).shape == (22, 32, 3)  # every intermediate image is complete
