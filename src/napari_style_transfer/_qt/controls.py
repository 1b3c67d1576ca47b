"""Run / Stop, Continue, the progress bar and the status line: one owner for single runs and batches.

A view that runs something (the widget's single runs, :class:`~.batch.BatchView`'s batches)
is handed this object, never the widget: it calls :meth:`begin` when its worker starts,
:meth:`step` and :meth:`say` as it goes, :meth:`stopping` when asked to stop and :meth:`end`
when its worker is done. One run holds the controls at a time (:attr:`busy`), whatever kind
it is, so Run cannot start a second one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.widgets import Container, Label, ProgressBar, PushButton
from qtpy.QtWidgets import QSizePolicy

from .run_extras import ContinueRow


class RunControls:
    """The controls under the settings, and which run holds them."""

    def __init__(
        self,
        on_run: Callable[[], Any],
        on_stop: Callable[[], Any],
        on_continue: Callable[[], Any],
        viewer: Any,
    ):
        self.run_button = PushButton(
            text="Run", tooltip="Start stylising (the result appears as a new layer)"
        )
        self.stop_button = PushButton(
            text="Stop", enabled=False, tooltip="Stop after the current iteration, keeping the image"
        )
        self.run_button.changed.connect(lambda: on_run())
        self.stop_button.changed.connect(lambda: on_stop())
        self.continue_row = ContinueRow(on_continue, viewer)
        self.progress_bar = ProgressBar(value=0, min=0, max=1)
        self.status = Label(value="Ready.")
        self.status.native.setWordWrap(True)
        self.status.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        #: The run holding the controls (a single run's or a batch's book-keeping), or None.
        self.owner: Any = None

    def widgets(self) -> list[Any]:
        """Run / Stop in a row, Continue, the progress bar and the status line, top to bottom."""
        actions = Container(widgets=[self.run_button, self.stop_button], layout="horizontal", labels=False)
        actions.margins = (0, 0, 0, 0)
        return [actions, self.continue_row, self.progress_bar, self.status]

    @property
    def busy(self) -> bool:
        return self.owner is not None

    def begin(self, owner: Any, total: int, text: str) -> None:
        """``owner`` runs now: Run and Continue off, Stop on, the bar at 0 of ``total``."""
        self.owner = owner
        self.run_button.enabled = self.continue_row.enabled = False
        self.stop_button.enabled = True
        self.progress_bar.max, self.progress_bar.value = max(1, int(total)), 0
        self.say(text)

    def step(self, value: int) -> None:
        self.progress_bar.value = min(int(value), self.progress_bar.max)

    def say(self, text: str) -> None:
        self.status.value = text

    def stopping(self, text: str) -> None:
        """A stop was asked: Stop off (it is on its way), and say so."""
        self.stop_button.enabled = False
        self.say(text)

    def end(self, owner: Any, redraw: bool = True) -> None:
        """``owner``'s worker is done: the controls are free again (a stale owner changes nothing).

        ``redraw`` False: the widget is closing, its Qt controls may be gone already.
        """
        if owner is not self.owner:
            return
        self.owner = None
        if not redraw:
            return
        self.run_button.enabled = self.continue_row.enabled = True
        self.stop_button.enabled = False


__all__ = ["RunControls"]
