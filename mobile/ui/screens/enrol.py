"""Enrol: server address + one-time code (pasted, or typed from the QR's text), a phone label and a new PIN."""
from __future__ import annotations

from kivy.properties import BooleanProperty

from ..kv import load_kv
from .base import BaseScreen


class EnrolScreen(BaseScreen):
    """Calls :meth:`Device.enrol` on the worker thread (it goes over the network)."""

    busy = BooleanProperty(False)

    def submit(self) -> None:
        """Check the two PINs match, then enrol in the background."""
        ids = self.ids
        server, code = ids.server.text.strip(), ids.code.text.strip()
        label, pin, again = ids.label.text.strip() or "phone", ids.pin.text, ids.pin_again.text
        fields = {"server": ids.f_server, "code": ids.f_code, "pin": ids.f_pin, "pin_again": ids.f_pin_again}
        missing = {name: ["required"] for name, value in (("server", server), ("code", code), ("pin", pin)) if not value}
        if pin and pin != again:
            missing["pin_again"] = ["the two PINs differ"]
        self.show_field_errors(fields, missing)
        if missing:
            self.say("Please correct the fields marked in red.", "danger")
            return
        self.busy = True
        self.say("Enrolling… this needs the network once.")
        self.app.worker.submit(lambda: self.device.enrol(server, code, label, pin), self._enrolled, self._failed)

    def _enrolled(self, info: dict) -> None:
        self.busy = False
        for name in ("code", "pin", "pin_again"):
            self.ids[name].text = ""
        self.app.enter_app(f"Enrolled as device {info['device_id']}")

    def _failed(self, exc: BaseException) -> None:
        self.busy = False
        self.fail(exc)


load_kv(__file__)
