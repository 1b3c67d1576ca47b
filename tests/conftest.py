"""Shared fixtures: small real images (the sample pair, shrunk) for fast CPU tests."""

from __future__ import annotations

import os

import numpy as np
import pytest


def _same_qt_binding_as_napari() -> None:
    """With two Qt bindings installed, pytest-qt would take PyQt6 while qtpy (so napari) takes PyQt5.

    Two bindings in one process crash, so pytest-qt follows qtpy's choice (which honours
    QT_API) unless PYTEST_QT_API is set. Runs at import: before pytest-qt picks its binding.
    """
    if "PYTEST_QT_API" in os.environ:
        return
    try:
        import qtpy
    except Exception:  # no binding at all: the GUI tests fail with pytest-qt's own message
        return
    api = qtpy.API_NAME.lower()
    if api in ("pyqt5", "pyqt6", "pyside6"):
        os.environ["PYTEST_QT_API"] = api


_same_qt_binding_as_napari()


def pytest_runtest_setup(item):
    """Once a viewer has loaded Mesa's LLVM into this process, keep triton out of it, in every test.

    The widget does so before its runs (``_qt.worker.avoid_triton_llvm_clash``), but a CLI or
    engine test that runs after a viewer test in the same process would otherwise import triton
    with its first optimiser, and the process would crash (a segfault). A real CLI never loads
    OpenGL, so this concerns test processes only.
    """
    import sys

    if "napari" in sys.modules and "triton" not in sys.modules:
        from napari_style_transfer._qt.worker import avoid_triton_llvm_clash

        avoid_triton_llvm_clash()


@pytest.fixture(autouse=True)
def settings_dir(tmp_path_factory):
    """Each test keeps settings and presets in a folder of its own, never in the user's config folder.

    The variable is settings.store.CONFIG_DIR_ENV (named here, so that no test imports torch for it).
    It is set with a MonkeyPatch of its own: a test's ``monkeypatch.undo()`` (several tests undo
    their patches mid-test) must not send the rest of that test's writes to the user's folder.
    """
    folder = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NAPARI_STYLE_TRANSFER_CONFIG_DIR", str(folder))
        yield folder


@pytest.fixture(scope="session")
def _sample_small() -> tuple[np.ndarray, np.ndarray]:
    from skimage.transform import resize

    from napari_style_transfer.samples import content_image, style_image

    content = resize(content_image(), (43, 64), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    return content, style_image(size=64)


@pytest.fixture
def content_image(_sample_small) -> np.ndarray:
    """(43, 64, 3) uint8 cat photo (a fresh copy per test)."""
    return _sample_small[0].copy()


@pytest.fixture
def style_image(_sample_small) -> np.ndarray:
    """(64, 64, 3) uint8 generated brush-stroke texture (a fresh copy per test)."""
    return _sample_small[1].copy()


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny-image tests (opt in with ``pytestmark``).

    Tiny images gain nothing from intra-op threads, and on a busy 2-core machine OpenMP's
    spinning threads make each step 10× slower; one thread keeps these tests fast everywhere.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def notes():
    """Every napari notification shown during the test."""
    from napari.utils.notifications import notification_manager

    got = []
    notification_manager.notification_ready.connect(got.append)
    yield got
    notification_manager.notification_ready.disconnect(got.append)


@pytest.fixture
def viewer(make_napari_viewer):
    """A real napari viewer (closed by napari's fixture after the test)."""
    return make_napari_viewer()
