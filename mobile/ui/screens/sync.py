"""Sync: what waits to be sent (by kind, in sending order), what the server refused and why, "sync now", receipts."""
from __future__ import annotations

from ..format import KIND_LABELS, clock_time, outbox_label, words
from ..kv import load_kv
from .base import BaseScreen


class SyncScreen(BaseScreen):
    """Reads :meth:`Device.sync_status`, :meth:`Device.outbox_items`, :meth:`Device.recent_receipts`."""

    def on_kv_post(self, base_widget):
        """Redraw after every sync or save."""
        self.app.sync.bind(changed=lambda *_: self.refresh() if self.manager and self.manager.current == self.name else None)

    def refresh(self) -> None:
        """Redraw from the core."""
        try:
            status = self.device.sync_status()
            queue = self.device.outbox_items(limit=20)
            receipts = self.device.recent_receipts(5)
        except Exception as exc:
            self.fail(exc)
            return
        now = self.device.settings.now()
        pending = status["pending"]
        lines = [f"{KIND_LABELS.get(kind, words(kind))}: {n}" for kind, n in sorted(pending.items())]
        self.ids.pending.text = (f"[b]{status['pending_total']} waiting to send[/b]\n" + "\n".join(lines)) if lines \
            else "[b]Nothing waiting: everything is sent.[/b]"
        self.ids.queue.text = "\n".join(f"{i + 1}. {outbox_label(item)}" for i, item in enumerate(queue[:8]))
        last = [f"Last successful sync: {clock_time(status['last_success_at'], now)}"]
        if status.get("last_error"):
            last.append(f"Last error: {status['last_error']['message']}")
        self.ids.last.text = "\n".join(last)
        rejected = status.get("rejected") or []
        self.ids.rejected.text = "\n".join(
            f"[b]{words(r['kind'])}[/b] saved {clock_time(r['created_at'], now)}: {r['message'] or r['reason']}" for r in rejected
        ) or "None."
        self.ids.receipts.text = "\n".join(
            f"{clock_time(r.get('received_at'), now)}: {len(r.get('items', []))} item(s) confirmed (key {r.get('kid')})"
            for r in receipts) or "None yet."

    def sync_now(self) -> None:
        """Start a sync in the background."""
        if self.app.sync.sync_now("button"):
            self.say("Syncing…")
        elif self.app.sync.syncing:
            self.say("A sync is already running; another one follows it.")

    def retry_rejected(self) -> None:
        """Queue the refused items again (after the cause was fixed on the server)."""
        n = self.device.retry_rejected()
        self.say(f"{n} item(s) queued again.")
        self.app.sync.refresh()


load_kv(__file__)
