"""PIN: unlock at every start (and after "lock now"), or change the PIN from the settings."""
from __future__ import annotations

from kivy.properties import OptionProperty

from mobile.core.errors import PinLockedOut, WrongPin

from ..kv import load_kv
from .base import BaseScreen


class PinScreen(BaseScreen):
    """``mode`` is ``unlock`` or ``change``."""

    mode = OptionProperty("unlock", options=["unlock", "change"])

    def on_kv_post(self, base_widget):
        """Show the new-PIN fields only in change mode."""
        # ids are weak: keep the box (and the fields in it) alive while it is out of the tree.
        self._change_box = self.ids.change_box.__self__  # the widget itself, not the weak proxy
        self.on_mode()

    def on_mode(self, *_):
        """Add or take away the new-PIN fields (hidden widgets would still catch touches)."""
        box, grid = getattr(self, "_change_box", None), self.ids.get("grid")
        if box is None:
            return
        if self.mode == "change" and box.parent is None:
            grid.add_widget(box, index=len(grid.children) - 2)
        elif self.mode == "unlock" and box.parent is not None:
            grid.remove_widget(box)

    def on_pre_enter(self, *args):
        """Start empty."""
        super().on_pre_enter(*args)
        for name in ("pin", "new_pin", "new_again"):
            self.ids[name].text = ""
        for name in ("f_pin", "f_new", "f_again"):
            self.ids[name].error = ""

    def submit(self) -> None:
        """Unlock, or change the PIN."""
        if self.mode == "unlock":
            self._unlock(self.ids.pin.text)
        else:
            self._change(self.ids.pin.text, self.ids.new_pin.text, self.ids.new_again.text)

    def _unlock(self, pin: str) -> None:
        try:
            self.device.unlock(pin)
        except (WrongPin, PinLockedOut) as exc:
            self.ids.pin.text = ""
            self.ids.f_pin.error = exc.message
            return
        except Exception as exc:
            self.fail(exc)
            return
        self.app.enter_app("Unlocked")

    def _change(self, old: str, new: str, again: str) -> None:
        self.ids.f_again.error = "" if new == again else "the two PINs differ"
        if new != again:
            return
        try:
            self.device.set_pin(old, new)
        except Exception as exc:
            self.ids.f_pin.error = getattr(exc, "message", str(exc))
            return
        self.app.toast("PIN changed")
        self.app.go("settings", direction="right")


load_kv(__file__)
