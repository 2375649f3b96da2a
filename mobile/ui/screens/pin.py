"""PIN: unlock at every start (and after "lock now"), or change the PIN from the settings."""
from __future__ import annotations

from kivy.properties import OptionProperty, StringProperty

from mobile.core.errors import PinError, PinLockedOut, WrongPin

from ..kv import load_kv
from .base import BaseScreen


class PinScreen(BaseScreen):
    """``mode`` is ``unlock`` or ``change``."""

    mode = OptionProperty("unlock", options=["unlock", "change"])
    waiting = StringProperty("")   # "3 records waiting; they will be sent after you unlock" (unlock mode)

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
            grid.add_widget(box, index=grid.children.index(self.ids.f_pin.__self__))  # right below the current PIN
        elif self.mode == "unlock" and box.parent is not None:
            grid.remove_widget(box)

    def on_pre_enter(self, *args):
        """Start empty."""
        super().on_pre_enter(*args)
        for name in ("pin", "new_pin", "new_again"):
            self.ids[name].text = ""
        for name in ("f_pin", "f_new", "f_again"):
            self.ids[name].error = ""
        self.show_waiting()

    def show_waiting(self) -> None:
        """Say what waits to be sent: the outbox count needs no PIN, but sending needs the unlocked token."""
        n = self.device.waiting_to_send() if self.mode == "unlock" and self.device.is_enrolled else 0
        if n == 0:
            self.waiting = ""
        elif n == 1:
            self.waiting = "1 record waiting; it will be sent after you unlock."
        else:
            self.waiting = f"{n} records waiting; they will be sent after you unlock."

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
        for name in ("f_pin", "f_new"):
            self.ids[name].error = ""
        self.ids.f_again.error = "" if new == again else "the two PINs differ"
        if new != again:
            return
        try:
            self.device.set_pin(old, new)
        except PinError as exc:
            # A bad new PIN is named under the new PIN; a wrong current PIN (or a lock-out) under the current one.
            field = self.ids.f_new if exc.reason == "pin_too_short" else self.ids.f_pin
            field.error = exc.message
            if isinstance(exc, (WrongPin, PinLockedOut)):
                self.ids.pin.text = ""
            return
        except Exception as exc:
            self.fail(exc)
            return
        self.app.toast("PIN changed")
        self.app.go("settings", direction="right")


load_kv(__file__)
