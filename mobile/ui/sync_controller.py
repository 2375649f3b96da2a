"""Background sync and the network state the banner shows.

Electrum's pattern: the core knows nothing of Kivy; this controller runs
:meth:`Device.sync_now` on the :class:`~mobile.ui.worker.Worker` thread and
publishes plain properties (``online``, ``syncing``, ``status``, ``today``,
``changed``) that screens bind to. Refreshes are coalesced with
``Clock.create_trigger``.

When does it sync?

- "Sync now" (the sync screen, the banner), and right after an SOS or a call for help;
- every ``auto_sync_s`` seconds (a few minutes) while unlocked;
- when the connectivity probe sees the network come back.

Online/offline comes from two sources: the platform probe (every
``probe_s`` seconds, on its own short thread) and each sync's result (a
TransportError means offline whatever the probe said).
"""
from __future__ import annotations

import logging
import threading

from kivy.clock import Clock
from kivy.event import EventDispatcher
from kivy.properties import BooleanProperty, DictProperty, NumericProperty, ObjectProperty, OptionProperty

from mobile.core.errors import DeviceError
from mobile.core.sync.client import TransportError

log = logging.getLogger(__name__)


class SyncController(EventDispatcher):
    """Runs syncs off the UI thread and keeps the numbers the screens show."""

    network = OptionProperty("unknown", options=["unknown", "online", "offline"])
    syncing = BooleanProperty(False)
    status = DictProperty({})          # Device.sync_status()
    today = DictProperty({})           # Device.today_status()
    last_result = ObjectProperty(None, allownone=True)
    changed = NumericProperty(0)       # bumped whenever local data may have changed: screens refresh

    def __init__(self, device, worker, connectivity, *, auto_sync_s: float = 300, probe_s: float = 15, **kwargs):
        super().__init__(**kwargs)
        self.device, self.worker, self.connectivity = device, worker, connectivity
        self.auto_sync_s, self.probe_s = auto_sync_s, probe_s
        self._events = []
        self._probing = False
        self._again = False
        self.refresh_soon = Clock.create_trigger(lambda dt: self.refresh(), 0.05)

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the periodic sync and the connectivity probe."""
        if self.auto_sync_s:
            self._events.append(Clock.schedule_interval(lambda dt: self.sync_now("timer"), self.auto_sync_s))
        if self.probe_s:
            self._events.append(Clock.schedule_interval(lambda dt: self.check_network(), self.probe_s))
        self.check_network()
        self.refresh()

    def stop(self) -> None:
        """Stop the timers (a running sync finishes on the worker)."""
        for event in self._events:
            event.cancel()
        self._events.clear()

    # --- reading -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read sync status and today's status from the local store (fast, local only)."""
        if not (self.device.is_enrolled and self.device.is_unlocked):
            return
        try:
            self.status = self.device.sync_status()
            self.today = self.device.today_status()
        except DeviceError as exc:  # locked between the check and the read
            log.info("refresh skipped: %s", exc)
            return
        self.changed += 1

    @property
    def pending(self) -> int:
        """Items waiting to be sent."""
        return int(self.status.get("pending_total", 0))

    # --- sync --------------------------------------------------------------------------

    def sync_now(self, why: str = "button") -> bool:
        """Start a sync on the worker; False when one is running or the app is locked."""
        if not (self.device.is_enrolled and self.device.is_unlocked):
            return False
        if self.syncing:
            self._again = self._again or why in ("urgent", "button")
            return False
        self.syncing = True
        log.info("sync started (%s)", why)
        self.worker.submit(self.device.sync_now, self._synced, self._sync_failed)
        return True

    def _synced(self, result) -> None:
        self.syncing = False
        self.last_result = result
        error = result.error
        if error is None or not isinstance(error, TransportError):
            self.network = "online"
        else:
            self.network = "offline"
        self.refresh()
        if self._again:
            self._again = False
            self.sync_now("queued")

    def _sync_failed(self, exc: BaseException) -> None:
        # Locked mid-sync, or a bug: the status screen shows the last error from the log.
        self.syncing = False
        log.warning("sync did not run: %s", exc)
        self.refresh()

    # --- network -------------------------------------------------------------------------

    def check_network(self) -> None:
        """Probe the server's address on a short-lived thread; a return to online starts a sync."""
        if self._probing or not self.device.is_enrolled:
            return
        url = self.device.enrolment()["server_url"]
        self._probing = True

        def probe():
            online = self.connectivity.is_online(url)
            Clock.schedule_once(lambda dt: self._probed(online), 0)

        threading.Thread(target=probe, name="fieldwatch-probe", daemon=True).start()

    def _probed(self, online: bool) -> None:
        self._probing = False
        was = self.network
        self.network = "online" if online else "offline"
        if online and was == "offline":
            self.sync_now("network back")
