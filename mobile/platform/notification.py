"""Notification facade: show a system notification (a check-in reminder, an SOS sent).

Desktop: does nothing but remember what it was asked to show (the app has its own
in-app reminder bar; tests read :attr:`DesktopNotification.sent`). Android: plyer's
notification, when plyer is packaged; otherwise the desktop fallback.
"""
from __future__ import annotations

import os
import sys


class Notification:
    """The facade: :meth:`notify` stores its arguments and calls :meth:`_notify`."""

    def notify(self, title: str, message: str, *, ticker: str = "", timeout: int = 10) -> None:
        """Show ``title``/``message`` as a system notification (never raises)."""
        self.last = {"title": title, "message": message, "ticker": ticker or title, "timeout": timeout}
        try:
            self._notify(**self.last)
        except Exception:  # a reminder must never crash the app
            pass

    def _notify(self, **kwargs) -> None:
        raise NotImplementedError


class DesktopNotification(Notification):
    """No system notification on the desktop: keep a list for the tests and the log."""

    def __init__(self) -> None:
        self.sent: list[dict] = []

    def _notify(self, **kwargs) -> None:
        self.sent.append(kwargs)


class AndroidNotification(Notification):
    """plyer's Android notification (only when plyer is in the APK)."""

    def __init__(self, plyer_notification) -> None:
        self._plyer = plyer_notification

    def _notify(self, title, message, ticker, timeout) -> None:
        self._plyer.notify(title=title, message=message, app_name="fieldwatch", ticker=ticker, timeout=timeout)


def notification_for(platform: str | None = None) -> Notification:
    """The notification implementation for ``platform`` (default: the running one)."""
    platform = platform or _platform()
    if platform == "android":
        try:
            from plyer import notification as plyer_notification  # only in the APK (buildozer.spec)
            return AndroidNotification(plyer_notification)
        except ImportError:
            pass
    return DesktopNotification()


def _platform() -> str:
    return "android" if "ANDROID_ARGUMENT" in os.environ or hasattr(sys, "getandroidapilevel") else sys.platform
