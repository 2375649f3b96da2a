"""Home: today's status at a glance, the sync state, and big buttons for the common actions."""
from __future__ import annotations

from kivy.clock import Clock
from kivy.properties import StringProperty

from ..format import clock_time, countdown
from ..kv import load_kv
from .base import BaseScreen


class HomeScreen(BaseScreen):
    """Reads the controller's ``today``/``status`` (the core's today_status and sync_status)."""

    health = StringProperty("")
    health_tone = StringProperty("plain")
    duty = StringProperty("")
    duty_tone = StringProperty("plain")
    next_check_in = StringProperty("")
    next_tone = StringProperty("plain")
    sync_text = StringProperty("")
    sync_tone = StringProperty("plain")
    _ticker = None

    @staticmethod
    def side_by_side(width: float, *labels: str) -> bool:
        """True when each of ``labels`` fits whole in half of ``width`` as a BigButton (else stack them)."""
        from kivy.core.text import Label as CoreLabel
        from kivy.metrics import dp

        from .. import theme as T

        half = (width - T.GAP) / 2 - dp(16)
        return all(CoreLabel(text=w, font_size=T.FONT_BIG, bold=True).get_extents(w)[0] <= half
                   for label in labels for w in label.split())

    def on_kv_post(self, base_widget):
        """Follow the controller: any refresh redraws the cards."""
        self.app.sync.bind(today=self._redraw, status=self._redraw, network=self._redraw, syncing=self._redraw)

    def on_pre_enter(self, *args):
        """Refresh, and tick the countdown every second while visible."""
        super().on_pre_enter(*args)
        self._ticker = Clock.schedule_interval(lambda dt: self._redraw(), 1)

    def on_leave(self, *args):
        """Stop the countdown."""
        if self._ticker is not None:
            self._ticker.cancel()

    def refresh(self) -> None:
        """Ask the controller to re-read the store, then redraw."""
        self.app.sync.refresh()
        self._redraw()

    def _redraw(self, *_):
        today, status, now = self.app.sync.today, self.app.sync.status, self.device.settings.now()
        if not today:
            return
        if not today["health_check_done"]:
            self.health, self.health_tone = "Not done yet today", "warn"
        elif today["fit_for_duty"]:
            self.health, self.health_tone = f"Done at {clock_time(today['health_check_at'], now)}: fit for duty", "ok"
        else:
            self.health, self.health_tone = f"Done at {clock_time(today['health_check_at'], now)}: NOT fit for duty", "danger"
        self.duty, self.duty_tone = ("On duty", "ok") if today["on_duty"] else ("Not on duty", "plain")
        text, due = countdown(today["next_check_in_due_at"], now)
        if not today.get("last_check_in_at") or (due and not today.get("check_in_overdue")):
            text = "due now" if due else text
        self.next_check_in = f"Next check-in {text}"
        self.next_tone = "danger" if today.get("check_in_overdue") and due else ("warn" if due else "ok")
        pending = status.get("pending_total", 0)
        lines = [f"{pending} waiting to send" if pending else "Everything sent",
                 f"Last sync: {clock_time(status.get('last_success_at'), now)}"]
        error = status.get("last_error")
        if error:
            lines.append(f"Last error: {error['message']}")
        rejected = status.get("rejected_total", 0)
        if rejected:
            lines.append(f"{rejected} refused by the server: see Sync")
        self.sync_text = "\n".join(lines)
        self.sync_tone = "danger" if error or rejected else ("warn" if pending else "ok")


load_kv(__file__)
