"""The check-in reminder: a bar inside the app on every screen, and one platform notification per due time.

It reads ``today`` from the :class:`~mobile.ui.sync_controller.SyncController`
(which the core computes: :meth:`Device.today_status`), so the rule of when a
check-in is due stays in the core.
"""
from __future__ import annotations

from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.properties import StringProperty

from .format import countdown


class Reminder(EventDispatcher):
    """Sets ``message`` while a check-in is due; notifies once per due time."""

    message = StringProperty("")

    def __init__(self, sync, notification, now, *, every_s: float = 30, **kwargs):
        super().__init__(**kwargs)
        self.sync, self.notification, self.now, self.every_s = sync, notification, now, every_s
        self._notified_for = None
        self._event = None
        sync.bind(today=lambda *_: self.check())

    def start(self) -> None:
        """Check now and every ``every_s`` seconds."""
        self.check()
        if self.every_s:
            self._event = Clock.schedule_interval(lambda dt: self.check(), self.every_s)

    def stop(self) -> None:
        """Stop checking."""
        if self._event is not None:
            self._event.cancel()

    def check(self) -> None:
        """Update the message; send the notification the first time a given due time is reached."""
        today = self.sync.today
        if not today:
            self.message = ""
            return
        due = today.get("next_check_in_due_at")
        text, is_due = countdown(due, self.now())
        if not is_due:
            self.message = ""
            return
        # Not overdue in the core's eyes = the first check-in of the day (due from the start).
        late = today.get("check_in_overdue") and text != "due now"
        self.message = f"Check-in {text}: tap to check in" if late else "Check-in due: tap to check in"
        # Before the day's first check-in the core says "due now" at every read: key that case by the date.
        key = due if late or today.get("last_check_in_at") else ("first", today.get("date"))
        if self._notified_for != key:
            self._notified_for = key
            self.notification.notify("fieldwatch: check-in due", "Tap to tell your team you are OK.")
