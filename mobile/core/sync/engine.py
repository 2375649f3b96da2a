"""The sync engine: keys -> limits -> push the outbox -> pull the feed. ``SyncEngine.run() -> SyncResult``.

Push: the outbox goes out in priority order (:mod:`mobile.core.outbox`), in
batches that fit the server's published limits (items and bytes). Each answer
is settled in one local transaction: accepted and duplicate rows leave the
outbox, rejected rows stay with the server's reason, and the server's receipt is
kept after its signature verifies under a pinned server key. A row is deleted
only after the server answered for it, and the server deduplicates by (record
id, revision), so a kill at any instant neither loses nor duplicates a record.

Pull: pages after the saved cursor are applied with :func:`shared.merge.apply`
and the cursor is saved **in the same transaction** as its page, so a kill
between them re-pulls the page (merging is idempotent) and never skips one.
Pulled bodies are checked with the shared schemas; a change this app cannot
read (e.g. a newer schema version) is counted in ``SyncResult.skipped`` and
logged rather than stored half-understood.

Errors stop the run and are returned in :attr:`SyncResult.error` (never
raised): the screen shows them, the next run starts where this one stopped.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from shared import protocol, schemas
from shared.clock import HybridLogicalClock, is_stamp
from shared.envelope import envelope_hash
from shared.signing import verify_document

from ..keystore import Keys
from ..outbox import BODY_OVERHEAD, Outbox, OutboxItem
from ..pinning import ServerPins
from ..records import Records
from ..store import Store
from .client import BadResponse, LimitExceeded, SyncClient, SyncError, TransportError

log = logging.getLogger(__name__)


@dataclass
class SyncResult:
    """What one sync run did."""

    started_at: str = ""
    finished_at: str = ""
    ok: bool = False
    pushed: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    batches: int = 0
    pulled: int = 0
    pages: int = 0
    skipped: int = 0
    cursor: int = 0
    push_s: float = 0.0
    pull_s: float = 0.0
    new_keys: list[str] = field(default_factory=list)
    rejected_items: list[dict] = field(default_factory=list)
    error: SyncError | None = None

    def counts(self) -> dict:
        """The numbers kept in the sync log."""
        return {k: getattr(self, k) for k in ("pushed", "accepted", "duplicate", "rejected", "pulled")}

    def to_dict(self) -> dict:
        """Plain dict for ``--json`` output."""
        data = {k: v for k, v in self.__dict__.items() if k != "error"}
        data["error"] = self.error.to_dict() if self.error else None
        return data


@dataclass
class EngineContext:
    """What the engine needs from an unlocked, enrolled device."""

    store: Store
    keys: Keys
    client: SyncClient
    clock: HybridLogicalClock
    device_id: str
    app_version: str
    now: Callable


class SyncEngine:
    """Runs one sync at a time for one device."""

    def __init__(self, ctx: EngineContext):
        self.ctx = ctx
        self.store = ctx.store
        self.outbox = Outbox(ctx.store)
        self.records = Records(ctx.store, ctx.keys)
        self.pins = ServerPins(ctx.store)

    def run(self, push: bool = True, pull: bool = True) -> SyncResult:
        """Keys, limits, push, pull. Never raises a SyncError: it is returned in the result."""
        result = SyncResult(started_at=self._now())
        log_id = self.store.start_sync_log(result.started_at)
        try:
            result.new_keys = self.pins.update(self.ctx.client.keys()["keys"])
            limits = self._refresh_limits()
            if push:
                started = time.perf_counter()
                self.push_all(result, limits)
                result.push_s = round(time.perf_counter() - started, 4)
            if pull:
                started = time.perf_counter()
                self.pull_all(result, limits)
                result.pull_s = round(time.perf_counter() - started, 4)
            result.ok = True
        except SyncError as exc:
            result.error = exc
            log.warning("sync stopped: %s (%s)", exc.message, exc.reason)
        finally:
            result.finished_at = self._now()
            result.cursor = self.store.get_cursor()
            error = (result.error.reason, result.error.message) if result.error else None
            self.store.finish_sync_log(log_id, result.finished_at, result.ok, result.counts(), error)
        return result

    # --- limits -----------------------------------------------------------------------

    def _refresh_limits(self) -> dict:
        limits = self.ctx.client.limits()
        with self.store.transaction():
            self.store.set_meta("limits", limits)
        return limits

    # --- push -------------------------------------------------------------------------

    def push_all(self, result: SyncResult, limits: dict) -> None:
        """Send every pending outbox row, batch by batch, in priority order."""
        max_items, max_bytes = limits["max_items_per_batch"], limits["max_body_bytes"]
        while True:
            batch = self.outbox.next_batch(max_items, max_bytes)
            if not batch:
                return
            if len(batch) == 1 and batch[0].size + BODY_OVERHEAD > max_bytes:
                self._reject_locally(batch[0], result, max_bytes)
                continue
            try:
                response = self.ctx.client.push(self._push_body(batch))
            except LimitExceeded:
                # The server's limits shrank since we read them: halve and go on.
                if len(batch) == 1:
                    self._reject_locally(batch[0], result, max_bytes)
                    continue
                max_items = max(1, len(batch) // 2)
                continue
            except TransportError:
                with self.store.transaction():
                    self.outbox.note_attempt([i.seq for i in batch], self._now())
                raise
            self._settle(batch, response, result)

    def _push_body(self, batch: list[OutboxItem]) -> dict:
        return {"items": [item.envelope for item in batch], **self._report()}

    def _report(self) -> dict:
        now = self.ctx.now()
        return {
            "outbox_depth": self.outbox.depth(),
            "oldest_unsent_age_s": self.outbox.oldest_pending_age_s(now),
            "app_version": self.ctx.app_version[:40],
            "device_time": now.isoformat(),
        }

    def _settle(self, batch: list[OutboxItem], response: dict, result: SyncResult) -> None:
        results = response["results"]
        if len(results) != len(batch):
            raise BadResponse(f"the server answered {len(results)} results for {len(batch)} items")
        for item, answer in zip(batch, results):
            if (answer.get("rid"), answer.get("rev")) != (item.record_id, item.rev):
                raise BadResponse("the server's results are not in the order of the items sent")
        receipt = self._verified_receipt(batch, results, response["receipt"])
        now = self._now()
        with self.store.transaction():
            done = [i.seq for i, a in zip(batch, results) if a["status"] != protocol.ITEM_REJECTED]
            if done:
                self.outbox.remove(done)
            for item, answer in zip(batch, results):
                if answer["status"] == protocol.ITEM_REJECTED:
                    self.outbox.reject(item, answer.get("reason"), answer.get("message") or "", now, self.ctx.keys)
            self.store.add_receipt(receipt, now)
        self._count(batch, results, result)

    def _verified_receipt(self, batch: list[OutboxItem], results: list[dict], receipt: dict) -> dict:
        """Check the receipt's signature and that it lists exactly what we sent and it accepted."""
        key = self.pins.sign_key(receipt.get("kid", ""))
        if key is None or not verify_document(key, receipt):
            raise BadResponse("the sync receipt is not signed by a pinned server key", "receipt_invalid")
        if receipt.get("device_id") != self.ctx.device_id:
            raise BadResponse("the sync receipt names another device", "receipt_invalid")
        sent = {(i.record_id, i.rev): envelope_hash(i.envelope) for i in batch}
        listed = {(r["rid"], r["rev"]): r["hash"] for r in receipt["items"]}
        for key_, digest in listed.items():
            if sent.get(key_) != digest:
                raise BadResponse(f"the sync receipt lists {key_[0]} with a hash we did not send", "receipt_invalid")
        for item, answer in zip(batch, results):
            if answer["status"] == protocol.ITEM_ACCEPTED and (item.record_id, item.rev) not in listed:
                raise BadResponse(f"the sync receipt omits accepted record {item.record_id}", "receipt_invalid")
        return receipt

    def _count(self, batch: list[OutboxItem], results: list[dict], result: SyncResult) -> None:
        result.batches += 1
        result.pushed += len(batch)
        for item, answer in zip(batch, results):
            status = answer["status"]
            if status == protocol.ITEM_ACCEPTED:
                result.accepted += 1
            elif status == protocol.ITEM_DUPLICATE:
                result.duplicate += 1
            else:
                result.rejected += 1
                result.rejected_items.append({"record_id": item.record_id, "kind": item.kind,
                                              "reason": answer.get("reason"), "message": answer.get("message")})

    def _reject_locally(self, item: OutboxItem, result: SyncResult, max_bytes: int) -> None:
        # One envelope over the body limit can never be sent; park it visibly instead of looping.
        message = f"this record ({item.size} bytes) is over the server's limit of {max_bytes} bytes per request"
        with self.store.transaction():
            self.outbox.reject(item, "body_too_large", message, self._now(), self.ctx.keys)
        result.rejected += 1
        result.rejected_items.append({"record_id": item.record_id, "kind": item.kind,
                                      "reason": "body_too_large", "message": message})

    # --- pull -------------------------------------------------------------------------

    def pull_all(self, result: SyncResult, limits: dict) -> None:
        """Pull and apply pages after the cursor until the server has no more."""
        page_size = min(limits.get("default_page_size") or 500, limits.get("max_page_size") or 500)
        cursor = self.store.get_cursor()
        while True:
            page = self.ctx.client.pull(cursor, page_size, self._report())
            self.apply_page(page, result)
            result.pages += 1
            next_cursor = page["next_cursor"]
            if page["has_more"] and next_cursor <= cursor:
                raise BadResponse(f"the feed did not move past cursor {cursor}")
            cursor = next_cursor
            if not page["has_more"]:
                return

    def apply_page(self, page: dict, result: SyncResult) -> None:
        """Merge one page and save its cursor in ONE transaction (a kill re-pulls, never skips)."""
        now = self._now()
        with self.store.transaction():
            for change in page["changes"]:
                if self._apply_change(change, now):
                    result.pulled += 1
                else:
                    result.skipped += 1
            self.store.set_meta("hlc_last", str(self.ctx.clock.last))
            if page.get("settings"):
                self.store.set_meta("settings", page["settings"])  # e.g. new response targets
            self.store.set_cursor(max(page["next_cursor"], self.store.get_cursor()), now)

    def _apply_change(self, change: dict, now: str) -> bool:
        kind, body, rev = change["kind"], change["body"], change["rev"]
        row = self.store.get_record_row(change["rid"])
        if row is not None and row["rev"] == rev and is_stamp(rev):
            # This exact revision is already merged (our own record coming back): nothing to do.
            self.ctx.clock.receive(rev)
            return True
        errors = schemas.record_errors(kind, body) if kind in schemas.RECORD_SCHEMAS else {"kind": ["unknown kind"]}
        if errors or not is_stamp(rev):
            log.warning("skipped change %s of %s %s: %s", change["seq"], kind, change["rid"], errors or "bad revision")
            return False
        # Our next edit of this record must stamp after every revision we have seen.
        self.ctx.clock.receive(rev)
        self.records.apply(kind, change["rid"], body, rev, "server", now)
        return True

    def _now(self) -> str:
        return self.ctx.now().isoformat()

