"""The composition root: settings -> Device (the core) -> worker -> sync controller -> reminder -> screens.

Nothing here decides a rule. Screens call the core; this file wires them and
offers the few navigation verbs they share (``go``, ``open_job``, ``lock``).
"""
from __future__ import annotations

from pathlib import Path

from kivy.app import App
from kivy.properties import BooleanProperty
from kivy.uix.screenmanager import SlideTransition

from mobile.core.config import DeviceSettings
from mobile.core.services import Device
from mobile.platform import connectivity_for, notification_for

from .reminder import Reminder
from .screens import SCREENS
from .sync_controller import SyncController
from .widgets.shell import Shell
from .worker import Worker


class FieldwatchApp(App):
    """The technicians' app. Tests pass ``data_dir``, settings overrides and fake platform facades."""

    title = "fieldwatch"
    unlocked = BooleanProperty(False)

    def __init__(self, data_dir: str | Path | None = None, *, device_settings: dict | None = None, connectivity=None,
                 notification=None, auto_sync_s: float = 300, probe_s: float = 15, reminder_s: float = 30,
                 transitions: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._data_dir = data_dir
        self._device_settings = device_settings or {}
        self.connectivity = connectivity or connectivity_for()
        self.notification = notification or notification_for()
        self._timers = {"auto_sync_s": auto_sync_s, "probe_s": probe_s}
        self._reminder_s = reminder_s
        self._transitions = transitions

    def build(self):
        """Wire the core and the screens; start on enrol, or on the PIN screen once enrolled."""
        data_dir = Path(self._data_dir or self.user_data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.device = Device(DeviceSettings(data_dir=data_dir, **self._device_settings))
        self.worker = Worker()
        self.sync = SyncController(self.device, self.worker, self.connectivity, **self._timers)
        self.reminder = Reminder(self.sync, self.notification, self.device.settings.now, every_s=self._reminder_s)
        self.shell = Shell(sync=self.sync, reminder=self.reminder)
        self.sm = self.shell.ids.sm
        if not self._transitions:
            from kivy.uix.screenmanager import NoTransition
            self.sm.transition = NoTransition()
        first = "pin" if self.device.is_enrolled else "enrol"
        self.screen(first)
        self.sm.current = first
        return self.shell

    def screen(self, name: str):
        """The screen called ``name``, built on first use."""
        if not self.sm.has_screen(name):
            self.sm.add_widget(SCREENS[name]())
        return self.sm.get_screen(name)

    def on_start(self):
        """Start the background timers."""
        self.sync.start()
        self.reminder.start()

    def on_stop(self):
        """Stop timers, let the worker finish, lock and close the store."""
        self.sync.stop()
        self.reminder.stop()
        self.worker.stop()
        self.device.close()

    def on_pause(self):
        """Android: keep running in the background (the keys stay open until "lock now" or the OS kills the app)."""
        return True

    # --- verbs the screens share ------------------------------------------------------------

    def go(self, name: str, direction: str = "left", **attrs) -> None:
        """Show screen ``name``, setting ``attrs`` on it first."""
        screen = self.screen(name)
        for key, value in attrs.items():
            setattr(screen, key, value)
        if isinstance(self.sm.transition, SlideTransition):
            self.sm.transition.direction = direction
        if self.sm.current == name:
            screen.dispatch("on_pre_enter")
        self.sm.current = name

    def open_job(self, job_id: str) -> None:
        """Show one job."""
        self.go("job_detail", job_id=job_id)

    def enter_app(self, message: str = "") -> None:
        """After enrolment or the PIN: show home and sync."""
        self.unlocked = True
        self.sync.refresh()
        self.go("home")
        if message:
            self.toast(message)
        self.sync.check_network()
        self.sync.sync_now("unlocked")

    def lock(self) -> None:
        """Forget the keys and ask for the PIN."""
        self.device.lock()
        self.require_unlock()

    def require_unlock(self) -> None:
        """Show the PIN screen."""
        self.unlocked = False
        self.go("pin", mode="unlock", direction="right")

    def after_save(self, saved, urgent: bool = False) -> None:
        """A record was saved: refresh the counts; an SOS or call for help is sent at once."""
        self.sync.refresh()
        if urgent:
            self.sync.sync_now("urgent")

    def toast(self, text: str) -> None:
        """A short message at the bottom of any screen."""
        self.shell.toast(text)
