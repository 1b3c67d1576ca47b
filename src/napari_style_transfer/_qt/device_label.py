"""The "Runs on" row: the device and precision a run will use, shown before Run.

It shows :func:`~napari_style_transfer.plugin.device.describe_device` for the form's device,
precision and output size ("CUDA 0: NVIDIA H100 80GB HBM3 (79 GiB), fp32 at this size",
"CPU, 2 threads, fp32") and asks again whenever one of the three changes. The question is
answered in a thread of its own (the first CUDA query initialises the driver: seconds), never
on the GUI thread; only the newest answer is shown, and settings changed meanwhile are asked
about once, not once per change. Settings that cannot run here are said in red.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from magicgui.widgets import Label
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QSizePolicy
from superqt.utils import ensure_main_thread

from ..messages import first_line
from ..plugin.device import DeviceSummary, describe_device
from .form import SettingsForm, value_widgets

#: The settings the row depends on (StyleConfig's field names).
WATCHED = ("device", "precision", "size")
CHECKING = "checking…"
PROBLEM_STYLE = "color: #e05d5d;"


class DeviceRow:
    """A labelled row ("Runs on") for the settings form; ``describe`` is asked off the GUI thread."""

    def __init__(
        self,
        form: SettingsForm,
        describe: Callable[[str, str, int | None], DeviceSummary] = describe_device,
    ):
        self.form = form
        self.describe = describe
        self.widget = Label(label="Runs on", value=CHECKING)
        self.widget.tooltip = "The device and precision Run will use with the settings shown"
        self.widget.native.setWordWrap(True)  # a long GPU name wraps instead of widening the dock
        self.widget.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.widget.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        #: The newest summary shown (None until the first answer).
        self.summary: DeviceSummary | None = None
        self._lock = threading.Lock()
        self._asked: tuple[Any, ...] | None = None  # the settings of the newest question
        self._wanted: tuple[Any, ...] | None = None  # a question no thread has taken yet
        self._busy = False
        #: How many times ``describe`` was called (the tests count it).
        self.calls = 0
        for name in WATCHED:
            control = form.controls.get(name)
            for widget in value_widgets(control.row) if control is not None else ():
                widget.changed.connect(self.refresh)
        self.refresh()

    def settings(self) -> tuple[str, str, int | None]:
        """(device, precision, output size) as the form shows them now."""
        controls = self.form.controls
        return (controls["device"].get(), controls["precision"].get(), controls["size"].get())

    def refresh(self, *_: Any) -> None:
        """Ask about the current settings (nothing to do if they are the ones asked about last)."""
        try:
            key = self.settings()
        except Exception as exc:  # noqa: BLE001 - a half-typed value: say it, ask nothing
            self._show(None, DeviceSummary(first_line(exc), ok=False))
            return
        with self._lock:
            if key == self._asked:
                return
            self._asked = self._wanted = key
            start = not self._busy
            self._busy = True
        if self.summary is None:
            self.widget.value = CHECKING
        if start:
            threading.Thread(target=self._answer, name="style-transfer-device", daemon=True).start()

    def _answer(self) -> None:
        """The thread: answer the newest question until none is left."""
        while True:
            with self._lock:
                key, self._wanted = self._wanted, None
                if key is None:
                    self._busy = False
                    return
            self.calls += 1
            try:
                summary = self.describe(*key)
            except Exception as exc:  # noqa: BLE001 - never let the thread die with the question open
                summary = DeviceSummary(f"unknown ({first_line(exc)})", ok=False)
            self._deliver(key, summary)

    @ensure_main_thread
    def _deliver(self, key: tuple[Any, ...], summary: DeviceSummary) -> None:
        with self._lock:
            newest = key == self._asked
        if newest:
            self._show(key, summary)

    def _show(self, key: tuple[Any, ...] | None, summary: DeviceSummary) -> None:
        try:
            self.widget.value = summary.text
            self.widget.tooltip = summary.tooltip or None
            self.widget.native.setStyleSheet("" if summary.ok else PROBLEM_STYLE)
        except RuntimeError:  # the widget was closed while the thread asked
            return
        self.summary = summary


__all__ = ["DeviceRow"]
