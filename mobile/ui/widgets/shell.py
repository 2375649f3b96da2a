"""The frame around every screen: network/sync banner, check-in reminder bar, screens, and a toast line."""
from __future__ import annotations

from kivy.clock import Clock
from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.floatlayout import FloatLayout

from ..kv import load_kv


class Shell(FloatLayout):
    """Root widget: ``ids.banner``, ``ids.reminder``, ``ids.sm`` (the ScreenManager), ``ids.toast``."""

    sync = ObjectProperty(None, allownone=True)
    reminder = ObjectProperty(None, allownone=True)
    toast_text = StringProperty("")
    _toast_event = None

    def banner_text(self, network: str, syncing: bool, status: dict) -> str:
        """'Online · 3 waiting to send', 'Offline · saved on the phone, 3 waiting', 'Syncing…'."""
        pending = int((status or {}).get("pending_total", 0))
        waiting = f"{pending} waiting to send" if pending else "all sent"
        if syncing:
            return f"Syncing… ({waiting})"
        if network == "offline":
            return f"Offline: saved on this phone, {waiting}"
        if network == "online":
            return f"Online: {waiting}"
        return f"Checking network… ({waiting})"

    def toast(self, text: str, seconds: float = 4) -> None:
        """Show a short message at the bottom of the screen."""
        self.toast_text = text
        if self._toast_event is not None:
            self._toast_event.cancel()
        self._toast_event = Clock.schedule_once(lambda dt: setattr(self, "toast_text", ""), seconds)


load_kv(__file__)
