"""Settings: server, device id, app version, change PIN, lock now."""
from __future__ import annotations

from ..kv import load_kv
from .base import BaseScreen


class SettingsScreen(BaseScreen):
    """Reads :meth:`Device.enrolment`; "lock now" calls :meth:`Device.lock`."""

    def refresh(self) -> None:
        """Show the enrolment facts (no secrets)."""
        try:
            info = self.device.enrolment()
        except Exception as exc:
            self.fail(exc)
            return
        self.ids.server.value = info["server_url"]
        self.ids.device_id.value = info["device_id"]
        self.ids.worker.value = f"{info['worker_id'] or 'shared phone'}  ·  team {info['team_id']}"
        self.ids.version.value = self.device.settings.app_version
        self.ids.server_key.value = info["server_key"]

    def lock_now(self) -> None:
        """Forget the keys; the PIN is needed again."""
        self.app.lock()

    def change_pin(self) -> None:
        """Open the PIN screen in change mode."""
        self.app.go("pin", mode="change")


load_kv(__file__)
