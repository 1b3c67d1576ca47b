"""The widget's "Runs on" row: the device and precision before Run, asked off the GUI thread.

The device queries are monkeypatched (a fake H100), so the row's CUDA texts are checked on any
machine; one test uses this machine's real answer.
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest
import torch
from widget_helpers import open_widget

from napari_style_transfer._qt.device_label import CHECKING, PROBLEM_STYLE, DeviceRow
from napari_style_transfer._qt.form import SettingsForm
from napari_style_transfer.engine import runtime as engine_runtime
from napari_style_transfer.plugin.device import DeviceSummary, describe_device

H100_TEXT = "CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB)"


@pytest.fixture
def fake_h100(monkeypatch):
    """torch sees one H100 (compute capability 9.0, 79 GiB)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H100 80GB HBM3")
    monkeypatch.setattr(
        torch.cuda, "get_device_properties", lambda i=None: SimpleNamespace(total_memory=85 * 10**9)
    )
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (9, 0))
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(engine_runtime, "cpu_supports_bf16", lambda: False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)


def _shows(qtbot, row, text: str) -> None:
    qtbot.waitUntil(lambda: row.widget.value == text, timeout=5000)


def test_the_widget_shows_the_device_before_run(viewer, qtbot):
    widget = open_widget(viewer)
    row = widget.device_row
    assert row.widget.label == "Runs on"
    expected = describe_device(*row.settings())
    _shows(qtbot, row, expected.text)
    assert row.widget.value.startswith(("CPU, ", "CUDA ", "ROCm ", "Apple GPU"))
    assert widget.status.value == "Ready."  # nothing ran: the row answered by itself


def test_the_row_follows_size_precision_and_device(viewer, qtbot, fake_h100):
    widget = open_widget(viewer, size=512, precision="auto", device="auto")
    row = widget.device_row
    _shows(qtbot, row, f"{H100_TEXT}, fp32 at this size")
    assert "bf16 from there" in row.widget.tooltip
    widget.set_config(size=2048)
    _shows(qtbot, row, f"{H100_TEXT}, bf16 at this size")
    widget.set_config(precision="fp32")
    _shows(qtbot, row, f"{H100_TEXT}, fp32")
    widget.set_config(device="cpu")
    _shows(qtbot, row, "CPU, 2 threads, fp32")
    widget.set_config(precision="fp16")
    _shows(qtbot, row, "CPU, 2 threads — precision: 'fp16' needs a CUDA GPU; on cpu use 'bf16' or 'fp32'")
    assert row.widget.native.styleSheet() == PROBLEM_STYLE
    widget.set_config(precision="auto")
    _shows(qtbot, row, "CPU, 2 threads, fp32")
    assert row.widget.native.styleSheet() == ""


def test_the_question_is_answered_off_the_gui_thread_and_only_the_newest_shown(qtbot):
    gate = threading.Event()
    threads = []

    def slow(device, precision, size):
        threads.append(threading.current_thread())
        gate.wait(10)  # a first CUDA query can take seconds
        return DeviceSummary(f"{device} {precision} {size}")

    form = SettingsForm()
    form.set_config(size=256, precision="auto", device="auto")
    row = DeviceRow(form, describe=slow)  # returns at once: nothing waits on the GUI thread
    assert row.widget.value == CHECKING
    for size in (300, 400, 500):  # changed while the first question is still out
        form.set_config(size=size)
    assert row.widget.value == CHECKING
    gate.set()
    _shows(qtbot, row, "auto auto 500")
    assert all(thread is not threading.main_thread() for thread in threads)
    assert row.calls == 2  # the first question, then only the newest of the three changes
    qtbot.wait(100)
    assert row.widget.value == "auto auto 500"  # the first answer came late and was not shown


def test_a_failing_question_is_one_line_in_red(qtbot):
    def broken(*_):
        raise RuntimeError("NVML: driver not loaded\ntraceback…")

    row = DeviceRow(SettingsForm(), describe=broken)
    _shows(qtbot, row, "unknown (NVML: driver not loaded)")
    assert row.widget.native.styleSheet() == PROBLEM_STYLE
    assert row.summary is not None and not row.summary.ok


def test_unchanged_settings_are_not_asked_again(qtbot):
    calls = []
    form = SettingsForm()
    row = DeviceRow(form, describe=lambda *key: calls.append(key) or DeviceSummary(str(key)))
    qtbot.waitUntil(lambda: row.summary is not None, timeout=5000)
    form.set_config(iterations=7)  # not one of the row's settings
    row.refresh()
    qtbot.wait(50)
    assert len(calls) == 1
