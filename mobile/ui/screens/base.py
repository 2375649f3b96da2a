"""What every screen shares: access to the app's services, refresh on entry, errors shown in plain words."""
from __future__ import annotations

from kivy.app import App
from kivy.properties import StringProperty
from kivy.uix.screenmanager import Screen

from mobile.core.errors import DeviceError, StoreLocked, ValidationFailed


class BaseScreen(Screen):
    """A screen with ``message``/``tone`` for its result line and :meth:`refresh` on entry."""

    message = StringProperty("")
    tone = StringProperty("info")

    @property
    def app(self):
        """The running FieldwatchApp."""
        return App.get_running_app()

    @property
    def device(self):
        """The core's :class:`~mobile.core.services.Device`."""
        return self.app.device

    def on_pre_enter(self, *args):
        """Clear the last message and show fresh data."""
        self.message = ""
        self.refresh()

    def refresh(self) -> None:
        """Read what the screen shows from the core (override)."""

    def say(self, text: str, tone: str = "info") -> None:
        """Show ``text`` on this screen's result line."""
        self.message, self.tone = text, tone

    def fail(self, exc: Exception) -> None:
        """Show a core refusal in plain words; a locked store sends the user to the PIN screen."""
        if isinstance(exc, StoreLocked):
            self.app.require_unlock()
            return
        if isinstance(exc, ValidationFailed):
            self.say("Please correct the fields marked in red.", "danger")
            return
        text = exc.message if isinstance(exc, DeviceError) else str(exc)
        self.say(text[:1].upper() + text[1:], "danger")

    def load_sites(self, picker, keep: str | None = None) -> None:
        """Fill a SitePicker with the region's sites, off the UI thread (the list may need fetching)."""
        def done(sites):
            picker.sites = sites
            picker.choose(keep if keep is not None else picker.value)

        def failed(exc):
            self.say(f"Site list not available yet ({getattr(exc, 'message', exc)}); sync when online.", "warn")

        self.app.worker.submit(self.device.list_region_sites, done, failed)

    @staticmethod
    def show_field_errors(fields: dict, errors: dict) -> list[str]:
        """Put marshmallow's per-field messages under their fields; returns messages with no field on screen."""
        for field in fields.values():
            field.error = ""
        loose = []
        for name, messages in (errors or {}).items():
            text = _flatten(messages)
            if name in fields:
                fields[name].error = text
            else:
                loose.append(f"{name.replace('_', ' ')}: {text}" if name != "_schema" else text)
        return loose


def _flatten(messages) -> str:
    if isinstance(messages, dict):
        return "; ".join(_flatten(v) for v in messages.values())
    if isinstance(messages, (list, tuple)):
        return "; ".join(_flatten(m) for m in messages)
    return str(messages)
