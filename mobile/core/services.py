"""The use cases a screen (or the command-line device) calls: one :class:`Device` per data dir.

A screen reads its widgets, calls ONE method here, and shows the result or the
error (:mod:`mobile.core.errors`, :mod:`mobile.core.sync.client`). No SQL, HTTP or
crypto happens outside the core.

Life of a device::

    device = Device.open(data_dir)              # or Device(DeviceSettings(...), session=...)
    device.enrol(server_url, code, label, pin)  # pins the server's address and keys; unlocks
    device.unlock(pin)                          # every later start
    device.record_check_in("ok")                # validated, sealed, stored, queued: works offline
    device.sync_now()                           # -> SyncResult (errors inside, never raised)

Every record is validated with :mod:`shared.schemas` before sealing; a failure
raises :class:`ValidationFailed` carrying marshmallow's per-field messages.
Saving a record is one local transaction (readable copy + sealed envelope +
clock), so what the technician saw saved is saved.
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Iterable

import requests

from shared import crypto, schemas
from shared.clock import HybridLogicalClock
from shared.envelope import make_header, seal
from shared.schemas.base import RecordSchema
from shared.schemas.repair_job import PRIORITIES, STATE_RANK

from .config import DeviceSettings
from .errors import AlreadyEnrolled, DeviceError, NotEnrolled, NotFitForDuty, NotFound, TransitionNotAllowed, ValidationFailed
from .keystore import KeyStore, Keys
from .outbox import Outbox, label_of, priority_of
from .pinning import ServerPins
from .records import Records
from .store import Store
from .sync.client import RetryPolicy, SyncClient, SyncError
from .sync.engine import EngineContext, SyncEngine, SyncResult

DEFAULT_CHECK_IN_INTERVAL_MIN = 60
FINISHED_JOB_STATES = frozenset({"closed", "cancelled"})
SITES_MAX_AGE = timedelta(hours=12)
# The response measures, in the order they fall due, and the job step that ends each one
# (the server's server/services/jobs.py METRICS: targets are minutes from the report).
RESPONSE_STEPS = (("acknowledge", "acknowledged"), ("arrive", "on_site"), ("restore", "restored"))
DEFAULT_CRITICALITY = "normal"  # the server's fallback for a site whose criticality has no target
_ENROLMENT_KEYS = ("server_url", "device_id", "worker_id", "team_id", "region_codes", "settings", "label", "enrolled_at")

__all__ = ["Device", "SavedRecord", "SyncResult"]


@dataclass(frozen=True)
class SavedRecord:
    """What a save returns: enough to show "saved, waiting to send"."""

    record_id: str
    kind: str
    rev: str
    priority: int
    saved_at: str

    def to_dict(self) -> dict:
        """Plain dict for ``--json`` output."""
        return asdict(self)


class Device:
    """One technician's device: enrolment, PIN, records, jobs, sites, sync."""

    def __init__(self, settings: DeviceSettings, session: requests.Session | None = None):
        self.settings = settings
        self.store = Store(settings.db_path, settings.synchronous)
        self.keystore = KeyStore(self.store, settings)
        self.outbox = Outbox(self.store)
        self.pins = ServerPins(self.store)
        self.session = session or requests.Session()
        self._clock: HybridLogicalClock | None = None
        self._facts: dict = {}

    @classmethod
    def open(cls, data_dir, session: requests.Session | None = None, **settings) -> "Device":
        """A device over ``data_dir`` with default settings (overridable by keyword)."""
        return cls(DeviceSettings(data_dir=data_dir, **settings), session=session)

    def close(self) -> None:
        """Forget the keys and close the store."""
        self.keystore.lock()
        self.store.close()

    # --- enrolment and PIN ---------------------------------------------------------------

    @property
    def is_enrolled(self) -> bool:
        """True once enrolment with a server succeeded."""
        return self.store.get_meta("device_id") is not None

    def enrolment(self) -> dict:
        """The enrolment facts (server, device, worker, team, regions, settings); no secrets."""
        self._require_enrolled()
        info = {k: self.store.get_meta(k) for k in _ENROLMENT_KEYS}
        info["server_key"] = self.pins.current()["kid"]
        info["device_public_key"] = self.store.get_meta("device_public")
        return info

    def enrol(self, server_url: str, code: str, label: str, pin: str) -> dict:
        """Enrol with a one-time code, set the PIN, pin the server's address and keys. Leaves the device unlocked."""
        if self.is_enrolled:
            raise AlreadyEnrolled(f"{self.settings.data_dir} already holds device {self.store.get_meta('device_id')}")
        keys = self.keystore.create(pin)  # validates the PIN before anything goes over the network
        client = self._client(server_url.rstrip("/"), token=None)
        answer = client.enrol(code.strip(), crypto.b64e(keys.device_public), label, self.settings.app_version[:40])
        self.pins.pin_initial(answer["keys"])
        now = self._now_text()
        with self.store.transaction():
            for key in ("device_id", "worker_id", "team_id", "region_codes", "limits", "settings"):
                self.store.set_meta(key, answer[key])
            self.store.set_meta("server_url", server_url.rstrip("/"))
            self.store.set_meta("label", label)
            self.store.set_meta("enrolled_at", now)
            self.store.set_meta("token", crypto.b64e(keys.encrypt(answer["token"], "token")))
        self._clock, self._facts = None, {}
        return self.enrolment()

    def unlock(self, pin: str) -> None:
        """Open the keys with the PIN (WrongPin / PinLockedOut on failure)."""
        self.keystore.unlock(pin)

    def lock(self) -> None:
        """Forget the keys until the next unlock."""
        self.keystore.lock()

    def set_pin(self, old_pin: str, new_pin: str) -> None:
        """Change the PIN (the old one is checked, with the same lock-out)."""
        self.keystore.change_pin(old_pin, new_pin)

    @property
    def is_unlocked(self) -> bool:
        """True while the keys are open."""
        return self.keystore.is_unlocked

    def pin_status(self) -> dict:
        """Wrong PINs so far and any lock-out end."""
        return self.keystore.lockout()

    # --- records -----------------------------------------------------------------------------

    def record_safety_check(self, temperature_c: float, exposure: str = "none", *, symptoms: Iterable[str] = (),
                            ppe: Iterable[str] = (), fit_for_duty: bool | None = None, site_code: str | None = None,
                            in_quarantine_area: bool = False, notes: str = "", position: dict | None = None,
                            taken_at: str | None = None) -> SavedRecord:
        """Save a health-safety check. ``fit_for_duty`` defaults to the shared fitness rule."""
        symptoms, ppe = list(symptoms), list(ppe)
        if fit_for_duty is None:
            fit_for_duty = _assess(temperature_c, symptoms, exposure)
        body = {
            "worker_id": self._worker_id(), "taken_at": taken_at or self._now_text(), "temperature_c": temperature_c,
            "symptoms": symptoms, "exposure": exposure, "ppe": ppe, "site_code": site_code,
            "in_quarantine_area": in_quarantine_area, "fit_for_duty": fit_for_duty, "notes": notes, "position": position,
        }
        return self._save_new("safety_check", body)

    def record_check_in(self, status: str = "ok", *, site_code: str | None = None, position: dict | None = None,
                        notes: str = "", at: str | None = None) -> SavedRecord:
        """Save a check-in: ``ok``, ``need_help`` or ``sos`` (the last two travel first)."""
        body = {"worker_id": self._worker_id(), "at": at or self._now_text(), "site_code": site_code,
                "status": status, "position": position, "notes": notes}
        return self._save_new("check_in", body)

    def record_site_status(self, site_code: str, state: str, *, power_source: str = "grid",
                           backup_transmission: bool = False, mobile_bts_deployed: bool = False, access: str = "open",
                           cause: str = "", notes: str = "", observed_at: str | None = None) -> SavedRecord:
        """Save an observation of a site (up / degraded / down)."""
        body = {"site_code": site_code, "observed_at": observed_at or self._now_text(), "state": state,
                "power_source": power_source, "backup_transmission": backup_transmission,
                "mobile_bts_deployed": mobile_bts_deployed, "access": access, "cause": cause, "notes": notes,
                "reported_by": self._worker_id()}
        return self._save_new("site_status", body)

    def report_fault(self, site_code: str, fault_type: str, priority: str = "medium", title: str = "",
                     note: str | None = None) -> SavedRecord:
        """Open a repair job for a fault found on site (status ``reported``)."""
        now = self._now_text()
        body = {"site_code": site_code, "fault_type": fault_type, "priority": priority, "title": title,
                "status": "reported", "steps": {"reported": now}, "reported_at": now, "actions": [], "parts": [],
                "notes": [self._note(note, now)] if note else [], "team_id": self.store.get_meta("team_id"),
                "team_operator": None}
        body["changed"] = ["site_code", "fault_type", "priority", "title", "status", "steps", "reported_at", "team_id"]
        return self._save_new("repair_job", body)

    def update_job(self, job_id: str, *, to: str | None = None, note: str | None = None,
                   parts: Iterable[tuple[str, int]] | Iterable[dict] = (), actions: Iterable[str] = ()) -> dict:
        """Move a job to a next state its state machine allows, add a note, parts used and actions done."""
        state = self._job_state(job_id)
        body, now = copy.deepcopy(state["body"]), self._now_text()
        changed = []
        if to:
            self._check_move(body["status"], to)
            body["status"] = to
            body["steps"] = {**body.get("steps", {}), to: now}
            changed += ["status", "steps"]
        if note:
            body["notes"] = [*body.get("notes", []), self._note(note, now)]
            changed.append("notes")
        if parts:
            body["parts"] = _add_parts(body.get("parts", []), parts)
            changed.append("parts")
        if actions:
            body["actions"] = [*body.get("actions", []), *actions]
            changed.append("actions")
        if not changed:
            raise DeviceError("nothing to update: give a next state, a note, parts or actions", "nothing_to_update")
        body["changed"] = changed
        saved = self._save("repair_job", job_id, body)
        return {**self.get_job(job_id), "saved": saved.to_dict()}

    # --- reading -----------------------------------------------------------------------------

    def get_job(self, job_id: str) -> dict:
        """One job as this device sees it, with the states it may move to next and its ``response`` (see list_my_jobs)."""
        return _job_view(job_id, self._job_state(job_id), self._response_context())

    def list_my_jobs(self, include_finished: bool = False) -> list[dict]:
        """The team's repair jobs: open ones first by priority, then newest.

        Each job's ``response`` measures the time since it was reported against the
        target of the step now due (acknowledge until acknowledged, then arrive on
        site, then restore), for its site's criticality, from the response targets
        the server sent at enrolment::

            {"step": "arrive", "criticality": "high", "reported_at": ..., "minutes_since_reported": 130.0,
             "target_minutes": 120, "due_at": ..., "breached": True}

        ``None`` once nothing is due (restored, closed, cancelled). ``target_minutes``
        is None when the enrolment carried no targets. The site's criticality comes
        from the cached site list (no network here); an unknown site or criticality
        uses the ``normal`` target, as the server does.
        """
        team = self.store.get_meta("team_id")
        context = self._response_context()
        jobs = [_job_view(rid, state, context) for rid, state in self._records().of_kind("repair_job")]
        jobs = [j for j in jobs if team is None or j.get("team_id") in (None, team)]
        if not include_finished:
            jobs = [j for j in jobs if j["status"] not in FINISHED_JOB_STATES]
        jobs.sort(key=lambda j: j.get("reported_at") or "", reverse=True)
        jobs.sort(key=lambda j: (j["status"] in FINISHED_JOB_STATES, _priority_rank(j.get("priority"))))
        return jobs

    def list_region_sites(self, refresh: bool = False) -> list[dict]:
        """The region's sites with their current status (newest observation by HLC).

        Uses the cached list when offline; fetches it when asked, when it is
        missing, or when it is older than :data:`SITES_MAX_AGE`.
        """
        keys = self.keystore.keys
        cache = self.store.get_meta("sites")
        if refresh or cache is None or self._sites_stale(cache):
            try:
                self._refresh_sites(keys)
                cache = self.store.get_meta("sites")
            except SyncError:
                if cache is None:
                    raise
        sites = keys.decrypt(crypto.b64d(cache["blob"]), "sites") if cache else []
        current = self._current_site_status()
        return [{**site, "status": current.get(site["code"])} for site in sorted(sites, key=lambda s: s["code"])]

    def response_targets(self) -> dict:
        """{criticality: {acknowledge_minutes, arrive_minutes, restore_minutes}} from the enrolment settings ({} if none)."""
        return dict((self.store.get_meta("settings") or {}).get("response_targets") or {})

    def today_status(self) -> dict:
        """Health check done today? fit? on duty? when is the next check-in due?"""
        now = self.settings.now()
        check = self._latest_mine("safety_check", "taken_at")
        check_in = self._latest_mine("check_in", "at")
        done_today = check is not None and _local_day(check["taken_at"], now) == now.date()
        checked_in_today = check_in is not None and _local_day(check_in["at"], now) == now.date()
        interval = self._check_in_interval()
        due = _check_in_due(check_in, checked_in_today, interval, now)
        fit = bool(check["fit_for_duty"]) if done_today else None
        return {
            "date": now.date().isoformat(), "health_check_done": done_today,
            "health_check_at": check["taken_at"] if done_today else None, "fit_for_duty": fit,
            # On duty: today's check says fit and the technician has started work with a check-in.
            "on_duty": bool(fit and checked_in_today),
            "last_check_in_at": check_in["at"] if check_in else None,
            "last_check_in_status": check_in["status"] if check_in else None,
            "check_in_interval_minutes": interval, "next_check_in_due_at": due.isoformat(timespec="seconds"),
            "check_in_overdue": bool(checked_in_today and now > due),
            "pending_to_send": self.outbox.depth(),
        }

    # --- sync --------------------------------------------------------------------------------

    def sync_now(self) -> SyncResult:
        """Push the outbox and pull the feed now. Errors are in ``result.error``, never raised."""
        result = self._engine().run()
        if result.ok and self._sites_stale(self.store.get_meta("sites")):
            try:
                self._refresh_sites(self.keystore.keys)
            except SyncError:
                pass  # the sites list is a convenience; the sync itself succeeded
        return result

    def sync_status(self) -> dict:
        """Pending by kind, last success, last error, rejected items with the server's reasons."""
        counts = self.outbox.counts()
        last_ok, last = self.store.last_sync(ok=True), self.store.last_sync()
        last_failed = self.store.last_sync(ok=False)
        return {
            "pending": counts["pending"], "pending_total": sum(counts["pending"].values()),
            "rejected_total": sum(counts["rejected"].values()),
            "oldest_unsent_age_s": self.outbox.oldest_pending_age_s(self.settings.now()),
            "last_success_at": last_ok["finished_at"] if last_ok else None,
            "last_attempt_at": last["finished_at"] if last else None,
            "last_attempt_ok": bool(last["ok"]) if last else None,
            "last_error": _error_of(last_failed) if last_failed and (not last_ok or last_failed["id"] > last_ok["id"]) else None,
            "rejected": self.outbox.rejected(self.keystore.keys) if self.is_unlocked else [],
            "cursor": self.store.get_cursor(),
        }

    def recent_receipts(self, limit: int = 10) -> list[dict]:
        """The newest server-signed receipts (already verified when received)."""
        return self.store.receipts(limit)

    def outbox_items(self, limit: int = 1000) -> list[dict]:
        """What waits to be sent, in sending order (metadata only: the content is sealed).

        ``check_in_status`` is a check-in's ``ok``/``need_help``/``sos`` (None for other
        kinds, and for check-ins queued before the store kept it). Needs no PIN.
        """
        return [{"seq": i.seq, "record_id": i.record_id, "rev": i.rev, "kind": i.kind, "priority": i.priority,
                 "size": i.size, "created_at": i.created_at,
                 "check_in_status": i.label if i.kind == "check_in" else None} for i in self.outbox.items(limit=limit)]

    def waiting_to_send(self) -> int:
        """How many records wait in the outbox. Needs no PIN: the lock screen shows it (0 before enrolment)."""
        return self.outbox.depth()

    def retry_rejected(self) -> int:
        """Queue rejected items again (after the cause was fixed on the server); returns how many."""
        return self.outbox.requeue_rejected()

    # --- internals ---------------------------------------------------------------------------

    def _save_new(self, kind: str, body: dict) -> SavedRecord:
        return self._save(kind, str(uuid.uuid4()), body)

    def _save(self, kind: str, record_id: str, body: dict) -> SavedRecord:
        """Validate, seal, store and queue one revision in one transaction."""
        body = {"schema_version": RecordSchema.VERSION, **body}
        errors = schemas.record_errors(kind, body)
        if errors:
            raise ValidationFailed(kind, errors)
        keys, server_key, now = self.keystore.keys, self.pins.current(), self._now_text()
        priority = priority_of(kind, body)
        with self.store.transaction():
            rev = str(self._tick())
            header = make_header(server_key["kid"], self._device_id(), record_id, kind, rev)
            envelope = seal(header, body, keys.device_private, crypto.b64d(server_key["box_public"]))
            self._records(keys).apply(kind, record_id, body, rev, "device", now)
            self.outbox.add(envelope, kind, priority, now, label_of(kind, body))
            self.store.set_meta("hlc_last", rev)
        return SavedRecord(record_id, kind, rev, priority, now)

    def _tick(self):
        # Another process on this data dir may have stamped since we loaded the clock.
        clock = self._clock_for_device()
        stored = self.store.get_meta("hlc_last")
        if stored and stored > str(clock.last):
            clock.receive(stored)
        return clock.tick()

    def _clock_for_device(self) -> HybridLogicalClock:
        if self._clock is None:
            self._clock = HybridLogicalClock(self._device_id(), self.settings.now_ms, self.store.get_meta("hlc_last"))
        return self._clock

    def _engine(self) -> SyncEngine:
        keys = self.keystore.keys
        self._require_enrolled()
        ctx = EngineContext(self.store, keys, self._client(self.store.get_meta("server_url"), self._token(keys)),
                            self._clock_for_device(), self._device_id(), self.settings.app_version, self.settings.now)
        return SyncEngine(ctx)

    def _client(self, server_url: str, token: str | None) -> SyncClient:
        s = self.settings
        retry = RetryPolicy(s.max_attempts, s.backoff_base_s, s.backoff_max_s, s.retry_after_max_s, s.sleep, s.jitter)
        return SyncClient(server_url, self.session, token, retry, s.timeout, s.gzip)

    def _token(self, keys: Keys) -> str:
        return keys.decrypt(crypto.b64d(self.store.get_meta("token")), "token")

    def _records(self, keys: Keys | None = None) -> Records:
        return Records(self.store, keys or self.keystore.keys)

    def _refresh_sites(self, keys: Keys) -> None:
        client = self._client(self.store.get_meta("server_url"), self._token(keys))
        client.retry.max_attempts = 1  # a screen is waiting: one try, then the cached list
        sites = client.sites()
        blob = crypto.b64e(keys.encrypt(sites, "sites"))
        with self.store.transaction():
            self.store.set_meta("sites", {"fetched_at": self._now_text(), "blob": blob})

    def _sites_stale(self, cache: dict | None) -> bool:
        if not cache:
            return True
        return self.settings.now() - datetime.fromisoformat(cache["fetched_at"]) > SITES_MAX_AGE

    def _cached_sites(self) -> dict[str, dict]:
        """The region's sites by code from the local cache only (never the network; {} before the first fetch)."""
        cache = self.store.get_meta("sites")
        if not cache:
            return {}
        return {s["code"]: s for s in self.keystore.keys.decrypt(crypto.b64d(cache["blob"]), "sites")}

    def _response_context(self) -> dict:
        sites = self._cached_sites()
        return {"now": self.settings.now(), "targets": self.response_targets(),
                "criticality": {code: site.get("criticality") for code, site in sites.items()}}

    def _current_site_status(self) -> dict[str, dict]:
        current: dict[str, dict] = {}
        for _, state in self._records().of_kind("site_status", newest_first=True):
            current.setdefault(state["body"]["site_code"], {**state["body"], "rev": state["rev"]})
        return current

    def _latest_mine(self, kind: str, time_field: str, scan: int = 200) -> dict | None:
        """The newest record of ``kind`` by this worker (by its own time), among the newest ``scan``."""
        me, best = self.store.get_meta("worker_id"), None
        for _, state in self._records().of_kind(kind, newest_first=True, limit=scan):
            body = state["body"]
            if body.get("worker_id") != me:
                continue
            if best is None or datetime.fromisoformat(body[time_field]) > datetime.fromisoformat(best[time_field]):
                best = body
        return best

    def _check_in_interval(self) -> int:
        settings = self.store.get_meta("settings") or {}
        return int(settings.get("check_in_interval_minutes") or DEFAULT_CHECK_IN_INTERVAL_MIN)

    def _job_state(self, job_id: str) -> dict:
        found = self._records().get(job_id)
        if found is None or found[0] != "repair_job":
            raise NotFound(f"no repair job {job_id} on this device; sync to fetch new jobs", "job_not_found")
        return found[1]

    def _check_move(self, status: str, to: str) -> None:
        allowed = schemas.next_states(status)
        if to not in allowed:
            options = ", ".join(allowed) or "nothing (it is finished)"
            raise TransitionNotAllowed(f"a job that is {status} can move to: {options}; not to {to}")
        if to == "acknowledged" and (self.store.get_meta("settings") or {}).get("require_fit_for_accept"):
            if not self.today_status()["fit_for_duty"]:
                raise NotFitForDuty("accepting a job needs today's health check to say fit for duty")

    def _note(self, text: str, at: str) -> dict:
        return {"id": str(uuid.uuid4()), "at": at, "author": self._worker_id(), "text": text}

    def _worker_id(self) -> str:
        worker = self._fact("worker_id")
        if not worker:
            # A team code enrols a phone without a technician; records must name who made them.
            raise DeviceError("this device was enrolled with a team code and has no technician; "
                              "enrol it with a code made for a technician", "no_worker")
        return worker

    def _device_id(self) -> str:
        return self._fact("device_id")

    def _fact(self, key: str):
        # Enrolment facts never change once enrolled: read them once, not on every save.
        if key not in self._facts:
            self._require_enrolled()
            self._facts[key] = self.store.get_meta(key)
        return self._facts[key]

    def _require_enrolled(self) -> None:
        if not self.is_enrolled:
            raise NotEnrolled(f"no device is enrolled in {self.settings.data_dir}; run enrol first")

    def _now_text(self) -> str:
        return self.settings.now().isoformat(timespec="milliseconds")


# --- pure helpers ----------------------------------------------------------------------------

def _assess(temperature_c, symptoms: list, exposure: str) -> bool:
    try:
        return schemas.assess_fitness(float(temperature_c), symptoms, exposure)
    except (TypeError, ValueError):
        return False  # the schema will name the bad temperature


def _add_parts(current: list[dict], parts) -> list[dict]:
    """Add parts used, summing quantities of the same part name."""
    totals = {p["name"]: p["quantity"] for p in current}
    for part in parts:
        name, qty = (part["name"], part["quantity"]) if isinstance(part, dict) else part
        totals[name] = totals.get(name, 0) + int(qty)
    return [{"name": n, "quantity": q} for n, q in totals.items()]


def _job_view(job_id: str, state: dict, context: dict) -> dict:
    body = state["body"]
    criticality = context["criticality"].get(body.get("site_code"))
    return {"id": job_id, **body, "rev": state["rev"], "next_states": list(schemas.next_states(body["status"])),
            "finished": body["status"] in FINISHED_JOB_STATES, "stage": STATE_RANK.get(body["status"]),
            "response": response_of(body, criticality, context["targets"], context["now"])}


def response_of(body: dict, criticality: str | None, targets: dict, now: datetime) -> dict | None:
    """The response measure now due for a job body (pure; see :meth:`Device.list_my_jobs`)."""
    steps, status = body.get("steps") or {}, body.get("status")
    reported_text = steps.get("reported") or body.get("reported_at")
    if not reported_text or status in FINISHED_JOB_STATES:
        return None
    rank = STATE_RANK.get(status, 0)
    # A step counts as done once its time is known or the job went past it.
    due = next(((metric, step) for metric, step in RESPONSE_STEPS if step not in steps and rank < STATE_RANK[step]), None)
    if due is None:
        return None
    metric = due[0]
    reported = datetime.fromisoformat(reported_text)
    minutes = max(0.0, (now - reported).total_seconds() / 60)
    limits = targets.get(criticality) or targets.get(DEFAULT_CRITICALITY)
    target = int(limits[f"{metric}_minutes"]) if limits and limits.get(f"{metric}_minutes") is not None else None
    return {"step": metric, "criticality": criticality, "reported_at": reported_text,
            "minutes_since_reported": round(minutes, 1), "target_minutes": target,
            "due_at": (reported + timedelta(minutes=target)).isoformat(timespec="seconds") if target is not None else None,
            "breached": target is not None and minutes > target}


def _priority_rank(priority: str | None) -> int:
    return PRIORITIES.index(priority) if priority in PRIORITIES else len(PRIORITIES)


def _local_day(text: str, now: datetime):
    return datetime.fromisoformat(text).astimezone(now.tzinfo).date()


def _check_in_due(check_in: dict | None, checked_in_today: bool, interval_min: int, now: datetime) -> datetime:
    if not checked_in_today:
        return now  # the first check-in of the day is due now
    return datetime.fromisoformat(check_in["at"]).astimezone(now.tzinfo) + timedelta(minutes=interval_min)


def _error_of(row: dict) -> dict:
    return {"at": row["finished_at"], "reason": row["error_reason"], "message": row["error_message"]}
