"""Check-in: I'm OK / I need help / SOS. SOS asks for a confirmation, then goes first in the outbox and syncs at once."""
from __future__ import annotations

from kivy.properties import ObjectProperty
from kivy.uix.modalview import ModalView

from ..kv import load_kv
from .base import BaseScreen

LABELS = {"ok": "I'm OK", "need_help": "I need help", "sos": "SOS"}


class ConfirmSos(ModalView):
    """"Send SOS?" with a big red yes and a plain cancel."""

    screen = ObjectProperty(None)


class CheckInScreen(BaseScreen):
    """One call per button: :meth:`Device.record_check_in`."""

    confirm = ObjectProperty(None, allownone=True)

    def refresh(self) -> None:
        """Load the site list."""
        self.load_sites(self.ids.site)

    def ask_sos(self) -> None:
        """Open the SOS confirmation."""
        self.confirm = ConfirmSos(screen=self)
        self.confirm.open()

    def cancel_sos(self) -> None:
        """Close the confirmation without sending."""
        if self.confirm is not None:
            self.confirm.dismiss()
            self.confirm = None
        self.say("SOS not sent.")

    def confirm_sos(self) -> None:
        """Close the confirmation and send the SOS."""
        if self.confirm is not None:
            self.confirm.dismiss()
            self.confirm = None
        self.check_in("sos")

    def check_in(self, status: str) -> None:
        """Save the check-in; an SOS or a call for help starts a sync straight away."""
        try:
            saved = self.device.record_check_in(status, site_code=self.ids.site.value, notes=self.ids.notes.text.strip())
        except Exception as exc:
            self.fail(exc)
            return
        self.ids.notes.text = ""
        urgent = status != "ok"
        if urgent:
            self.app.notification.notify(f"fieldwatch: {LABELS[status]} saved", "It is sent first, as soon as there is a network.")
        self.app.after_save(saved, urgent=urgent)
        text = {"ok": "Checked in: OK.", "need_help": "Call for help saved: sending first.",
                "sos": "SOS saved: sending first. Call your supervisor if you can."}[status]
        self.say(text, "danger" if urgent else "ok")
        self.app.toast(text)


load_kv(__file__)
