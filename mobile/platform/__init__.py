"""Platform facades in the style of plyer: a small public class per feature, a desktop fallback, lazy loading.

Each ``<feature>.py`` holds the facade (``notify()`` stores its arguments and
calls ``_notify()``) plus the implementations. :func:`notification` and
:func:`connectivity` pick the implementation for the running platform once and
fall back to the desktop one, so the app never has to ask where it runs.

Callbacks of a platform implementation may run on another thread (plyer warns
about the same): the UI hops back with ``Clock.schedule_once``.
"""
from __future__ import annotations

from .connectivity import Connectivity, connectivity_for
from .notification import Notification, notification_for

__all__ = ["Connectivity", "Notification", "connectivity_for", "notification_for"]
