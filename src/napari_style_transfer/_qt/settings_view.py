"""The settings row of the dock widget: presets, "Save as preset…", "Reset", and settings that stay.

It works on a :class:`~.form.SettingsForm` through plain values (``form.values`` /
``form.set_values``): the built-in and saved presets come from ``settings/presets.py`` and
``settings/store.py`` (Qt-free), and so do the last-used settings, restored when the widget
opens and saved (atomically, half a second after the last change, and when the widget
closes) to the user's config folder. A settings file that cannot be used is said in one
notification and ignored; a value that the form cannot show (a device this machine lacks, a
number beyond a control's range or finer than its steps) leaves that setting as it was, and
one notification names it.
"""

from __future__ import annotations

import logging
from typing import Any

from magicgui.widgets import ComboBox, Container, PushButton
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QEvent, QObject, QTimer

from ..settings import (
    BUILTIN_PRESETS,
    SettingsError,
    builtin_preset,
    check_values,
    default_values,
    find_preset,
    load_last_settings,
    load_user_presets,
    save_last_settings,
    save_user_presets,
)
from .form import SettingsForm

logger = logging.getLogger(__name__)

#: Save the last-used settings this long after the last change (a drag of a slider saves once).
SAVE_DELAY_MS = 500
#: The preset box's entry when the settings are no preset's.
CUSTOM = ""


class SettingsView(QObject):
    """Preset box and buttons over ``form``; keeps ``form``'s values as the last-used settings.

    Pending settings are written at once when the row is hidden (the panel closed or taken
    out of its dock) or deleted (the viewer closed).
    """

    def __init__(self, form: SettingsForm):
        super().__init__()
        self.form = form
        self._applying = False
        self._pending: dict[str, Any] | None = None
        self._write_failed = False
        self.preset = ComboBox(
            label="Preset",
            choices=self._preset_choices,
            value=CUSTOM,
            tooltip="Apply a preset to the settings",
        )
        self.preset.changed.connect(self._on_preset)
        self.save_button = PushButton(text="Save as preset…", tooltip="Keep the settings under a name")
        self.save_button.changed.connect(self._ask_preset_name)
        self.reset_button = PushButton(text="Reset to defaults", tooltip="Every setting back to its default")
        self.reset_button.changed.connect(self.reset)
        buttons = Container(widgets=[self.save_button, self.reset_button], layout="horizontal", labels=False)
        self.row = Container(widgets=[self.preset, buttons], labels=False, label="Preset")
        for box in (buttons, self.row):
            box.margins = (0, 0, 0, 0)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(SAVE_DELAY_MS)
        self._timer.timeout.connect(self.flush)
        self.restore()
        form.connect_changed(self._on_form_changed)
        self.row.native.installEventFilter(self)
        self.row.native.destroyed.connect(lambda *_: self.flush())

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Hide:
            self.flush()
        return False

    # ------------------------------------------------------------------ presets

    def _preset_choices(self, *_: Any) -> list[tuple[str, str]]:
        try:
            user = list(load_user_presets())
        except SettingsError:
            user = []  # said when a preset is saved or chosen
        return [("custom", CUSTOM), *((n, n) for n in BUILTIN_PRESETS), *((n, n) for n in user)]

    def _apply(self, values: dict[str, Any]) -> list[str]:
        self._applying = True
        try:
            return self.form.set_values(values)
        finally:
            self._applying = False

    def _on_preset(self, name: str) -> None:
        if self._applying or name == CUSTOM:
            return
        try:
            values = find_preset(name)
        except SettingsError as exc:
            show_warning(f"Style Transfer: cannot use preset {name!r}: {exc}")
            return
        refused = self._apply(values)
        if refused:
            with self.preset.changed.blocked():  # the settings are not the preset's
                self.preset.value = CUSTOM
            show_warning(
                f"Style Transfer: preset {name!r} holds values this panel cannot show "
                f"({refused_text(values, refused)}); those settings were left as they were."
            )
        self._schedule()

    def apply_preset(self, name: str) -> None:
        """Choose the preset ``name`` in the box (which sets the controls)."""
        self.preset.value = name

    def _ask_preset_name(self, *_: Any) -> None:
        from qtpy.QtWidgets import QInputDialog

        name, ok = QInputDialog.getText(self.row.native, "Save preset", "Name of the preset:")
        if ok:
            self.save_preset(name)

    def save_preset(self, name: str) -> bool:
        """Keep the current settings as the user preset ``name`` (False, said, if it cannot be)."""
        name = str(name).strip()
        if not name:
            return False
        if builtin_preset(name) is not None:
            show_warning(f"Style Transfer: {name!r} is a built-in preset; choose another name.")
            return False
        try:
            values = check_values(self.form.values())
            presets = load_user_presets()
            presets[name] = values
            save_user_presets(presets)
        except (SettingsError, OSError) as exc:
            show_warning(f"Style Transfer: cannot save preset {name!r}: {exc}")
            return False
        self.preset.reset_choices()
        with self.preset.changed.blocked():
            self.preset.value = name
        show_info(f"Style Transfer: saved preset {name!r}.")
        return True

    def reset(self, *_: Any) -> None:
        """Every setting back to its default."""
        self._apply(default_values())
        with self.preset.changed.blocked():
            self.preset.value = CUSTOM
        self._schedule()

    # ------------------------------------------------------------------ last-used settings

    def restore(self) -> None:
        """Set the controls to the last-used settings (a file that cannot be used: one warning)."""
        try:
            values = load_last_settings()
        except SettingsError as exc:
            show_warning(f"Style Transfer: ignored the saved settings ({exc}).")
            return
        if values is None:
            return
        refused = self._apply(values)
        if refused:
            show_info(
                "Style Transfer: the saved settings hold values this panel cannot show "
                f"({refused_text(values, refused)}); those settings were left as they were."
            )

    def _on_form_changed(self) -> None:
        if self._applying:
            return
        if self.preset.value != CUSTOM:
            with self.preset.changed.blocked():
                self.preset.value = CUSTOM
        self._schedule()

    def _schedule(self) -> None:
        self._pending = self.form.values()  # read now: at close the controls may be gone
        self._timer.start()

    def flush(self) -> None:
        """Write the pending settings now (touches no Qt object: also safe while the widget is deleted)."""
        values = getattr(self, "_pending", None)  # gone when the garbage collector already took this apart
        if values is None:
            return
        self._pending = None
        try:
            save_last_settings(check_values(values))
        except SettingsError as exc:  # e.g. layer weights that do not match the layers: keep the last good
            logger.info("last-used settings not saved: %s", exc)
        except OSError as exc:
            logger.warning("cannot save the last-used settings: %s", exc)
            if not getattr(self, "_write_failed", False):
                self._write_failed = True
                show_warning(f"Style Transfer: cannot save the settings for next time ({exc}).")


def refused_text(values: dict[str, Any], refused: list[str]) -> str:
    """'seed = 1099511627776, device = 'cuda''."""
    return ", ".join(f"{name} = {values[name]!r}" for name in refused)
