"""Push: the server half of DESIGN §3 that takes records in (:mod:`.feed` hands them out).

Push, per batch:

1. *Outside any transaction*: each item is checked alone: shape, open
   (server key), device signature, record schema. A bad item is answered
   with its reason and quarantined; it never stops the others.
2. *One transaction*: duplicates (same record id and revision, same
   content) are answered ``duplicate``; the same revision with other content
   is ``revision_conflict`` and never overwrites; permissions are checked;
   new revisions are stored as evidence, merged into the record's state with
   :mod:`shared.merge`, and appended to the change feed.

What keeps concurrent pushes correct:

- merges of one record never interleave: SQLite has one writer at a time; on
  PostgreSQL the states to merge are read ``FOR UPDATE`` (in record id order,
  so two pushes cannot wait on each other), and a record new to both sides
  meets the primary key and retries;
- a revision is stored once: the unique (record id, revision) makes the loser
  of a race retry, and the retry answers ``duplicate``;
- change numbers become visible in order, so a cursor never passes a change
  that commits late: on PostgreSQL the feed is appended under a
  transaction-scoped advisory lock taken *last*, just before the changes (and
  the sites' current observations, which many pushes share) are written, and
  held to commit. Only that short tail is serialised; pushes of different
  records do the rest of their writing side by side.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import JSON, bindparam, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from shared import envelope, merge
from shared.canonical import canonical_json, sha256_hex
from shared.clock import HybridLogicalClock, is_stamp
from shared.crypto import b64d, b64e
from shared.errors import EnvelopeError, ReasonCode
from shared.protocol import ITEM_ACCEPTED, ITEM_DUPLICATE, ITEM_REJECTED
from shared.schemas import KINDS, describe_errors, record_errors

from .. import json_codec
from ..errors import Invalid
from ..extensions import db
from ..models import Change, Device, QuarantineItem, RecordState, Revision, Site, Team, User, utcnow
from . import records
from .keys import KeyRing

try:
    import fcntl
except ImportError:  # not POSIX: SQLite's own busy wait serialises pushes alone
    fcntl = None

log = logging.getLogger(__name__)
PUSH_LOCK_ID = 0x6669656C64  # "field": one advisory lock for the push critical section


@dataclass(frozen=True)
class DeviceReport:
    """What a device says about itself on each sync."""

    outbox_depth: int | None = None
    oldest_unsent_age_s: int | None = None
    app_version: str | None = None
    device_time: datetime | None = None


@dataclass(frozen=True)
class Sender:
    """The facts about a device the push needs, read before the transaction."""

    device_id: str
    public_key: bytes
    worker_code: str | None
    team_id: int | None
    team_member_codes: frozenset[str]

    @classmethod
    def of(cls, device: Device) -> "Sender":
        members = frozenset()
        if device.team_id is not None:
            members = frozenset(db.session.scalars(select(User.code).where(User.team_id == device.team_id)))
        return cls(device.id, b64d(device.public_key), device.user.code if device.user else None, device.team_id, members)


@dataclass
class ItemResult:
    """The answer for one pushed item."""

    rid: str | None
    rev: str | None
    status: str
    reason: str | None = None
    message: str | None = None


@dataclass
class _Item:
    index: int
    wire: dict
    opened: envelope.Opened | None = None
    error: EnvelopeError | None = None
    content_hash: str = ""
    wire_hash: str = ""  # of the canonical wire form: what the receipt lists
    row: dict | None = None  # the revision row, made before the feed lock is taken

    @property
    def header(self) -> dict:
        h = self.wire.get("h") if isinstance(self.wire, dict) else None
        return h if isinstance(h, dict) else {}


def _check(index: int, wire, sender: Sender, ring: KeyRing, now: datetime) -> _Item:
    """Step 1 for one item: open, verify, validate, and make its revision row. Never raises."""
    item = _Item(index, wire)
    try:
        header = envelope.check_shape(wire)
        if not is_stamp(header["rev"]):
            raise EnvelopeError(ReasonCode.MALFORMED_ENVELOPE, "the revision must be a hybrid-logical-clock stamp")
        if header["dev"] != sender.device_id:
            raise EnvelopeError(ReasonCode.DEVICE_MISMATCH, "the envelope names another device than the one sending it")
        opened = envelope.open_envelope(wire, ring.box_privates)
        envelope.verify_signature(opened, sender.public_key)
        if header["kind"] not in KINDS:
            raise EnvelopeError(ReasonCode.INVALID_RECORD, f"unknown record kind {header['kind']!r}")
        errors = record_errors(header["kind"], opened.body)
        if errors:
            raise EnvelopeError(ReasonCode.INVALID_RECORD, describe_errors(errors), {"errors": errors})
        item.opened = opened
        item.content_hash = opened.content_hash
        raw = canonical_json(wire)
        item.wire_hash = sha256_hex(raw)
        item.row = _revision_row(header["kind"], header["rid"], header["rev"], opened.body, ring, now, device_id=sender.device_id,
                                 envelope=raw.decode(), envelope_hash=item.wire_hash, content_hash=item.content_hash,
                                 secret=b64e(opened.secret), signature=b64e(opened.signature),
                                 proof=records.disclosure_proof(header["kind"], opened.salts, opened.digests))
    except EnvelopeError as exc:
        item.error = exc
    return item


def push(sender: Sender, items: list, report: DeviceReport, ring: KeyRing) -> dict:
    """Judge and store a batch; returns ``{results, receipt, server_time}``."""
    db.session.rollback()  # end the read transaction of authentication before the work
    received = utcnow()
    checked = [_check(i, wire, sender, ring, received) for i, wire in enumerate(items)]
    for attempt in range(3):
        try:
            with _sqlite_write_gate():
                results = _store(sender, checked, report, ring)
                db.session.commit()
            break
        except (IntegrityError, OperationalError):
            db.session.rollback()
            if attempt == 2:
                raise
            log.warning("push transaction retried after a conflict (attempt %d)", attempt + 1)
    now = utcnow()
    receipt_items = [
        {"rid": r.rid, "rev": r.rev, "hash": checked[i].wire_hash}
        for i, r in enumerate(results) if r.status in (ITEM_ACCEPTED, ITEM_DUPLICATE)
    ]
    receipt = ring.sign({"device_id": sender.device_id, "issued_at": now.isoformat(), "items": receipt_items})
    return {"results": [r.__dict__ for r in results], "receipt": receipt, "server_time": now.isoformat()}


@contextmanager
def _sqlite_write_gate():
    """SQLite: one push transaction at a time across worker processes, by an OS file lock.

    SQLite's own wait for its write lock sleeps in growing steps and wakes late, so
    pushers queued behind each other left the CPUs idle. A blocked ``flock`` wakes the
    moment the lock is released. PostgreSQL needs none (its advisory lock queues).
    """
    path = _gate_path(db.engine.url)
    if path is None:
        yield
        return
    with open(path, "ab") as gate:
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)


def _gate_path(url) -> str | None:
    if fcntl is None or url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database + "-push.lock"


def _lock_feed() -> None:
    """PostgreSQL: serialise writers of the change feed until commit, so numbers become visible in order.

    Take it after the transaction's record-state row locks: a writer holding it never waits for another.
    Site rows are locked only under it (``_update_site_currents``).
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": PUSH_LOCK_ID})


def _revision_row(kind: str, record_id: str, rev: str, body: dict, ring: KeyRing, now: datetime, **evidence) -> dict:
    """A revision row: the body without health fields, those encrypted apart, the query columns."""
    stored, health, key_id = records.split_health(kind, body, ring)
    return {"record_id": record_id, "rev": rev, "kind": kind, "body": stored, "health": health, "health_key_id": key_id,
            "worker_id": stored.get("worker_id"), "occurred_at": records.occurred_at(kind, stored), "received_at": now, **evidence}


def _begin_write(sender: Sender, now: datetime) -> None:
    # On SQLite this first write takes the write lock (waiting, not failing) before any read;
    # on PostgreSQL it queues the pushes of one device behind each other.
    db.session.execute(update(Device).where(Device.id == sender.device_id).values(last_contact_at=now))


def _store(sender: Sender, checked: list[_Item], report: DeviceReport, ring: KeyRing) -> list[ItemResult]:
    now = utcnow()
    _begin_write(sender, now)
    good = [c for c in checked if c.opened is not None]
    pairs = {(c.header["rid"], c.header["rev"]) for c in good}
    existing = _existing_revisions(pairs)
    sites = _sites({c.opened.body.get("site_code") for c in good} - {None})
    teams = _teams({c.opened.body.get("team_id") for c in good} - {None})
    states = _load_states({p[0] for p in pairs})

    results: list[ItemResult] = []
    accepted: list[_Item] = []
    for item in checked:
        h = item.header
        rid, rev = h.get("rid"), h.get("rev")
        if item.error is None:
            key = (rid, rev)
            if key in existing:
                if existing[key] == item.content_hash:
                    results.append(ItemResult(rid, rev, ITEM_DUPLICATE))
                    continue
                item.error = EnvelopeError(ReasonCode.REVISION_CONFLICT, f"revision {rev} of record {rid} was accepted before with other content")
            else:
                item.error = _permission(sender, item, sites, teams, states.get(rid))
        if item.error is not None:
            results.append(ItemResult(rid, rev, ITEM_REJECTED, str(item.error.reason), item.error.message))
            continue
        existing[(rid, rev)] = item.content_hash  # a repeat inside the same batch is a duplicate
        accepted.append(item)
        results.append(ItemResult(rid, rev, ITEM_ACCEPTED))

    _insert_accepted(sender, accepted, sites, teams, states, now)
    _quarantine(sender.device_id, [c for c in checked if c.error is not None], now)
    _update_device(sender, report, now, len(accepted), sum(1 for c in checked if c.error is not None))
    return results


def _existing_revisions(pairs: set) -> dict:
    # By record id alone (the unique index's first column): a plain IN is one index seek per id on
    # both databases, where a row-value IN of (id, rev) pairs is not always planned as one.
    if not pairs:
        return {}
    found = {}
    record_ids = sorted({rid for rid, _ in pairs})
    table = Revision.__table__
    for start in range(0, len(record_ids), 500):
        rows = db.session.execute(
            select(table.c.record_id, table.c.rev, table.c.content_hash).where(table.c.record_id.in_(record_ids[start:start + 500]))
        )
        found.update({(r.record_id, r.rev): r.content_hash for r in rows if (r.record_id, r.rev) in pairs})
    return found


def _sites(codes: set) -> dict:
    if not codes:
        return {}
    return {s.code: (s.id, s.region_id) for s in db.session.execute(select(Site.code, Site.id, Site.region_id).where(Site.code.in_(codes)))}


def _teams(codes: set) -> dict:
    if not codes:
        return {}
    return {t.code: (t.id, t.region_id) for t in db.session.execute(select(Team.code, Team.id, Team.region_id).where(Team.code.in_(codes)))}


def _permission(sender: Sender, item: _Item, sites: dict, teams: dict, state: dict | None) -> EnvelopeError | None:
    body, kind = item.opened.body, item.header["kind"]
    site = body.get("site_code")
    if site is not None and site not in sites:
        return EnvelopeError(ReasonCode.INVALID_RECORD, f"site_code: there is no site {site!r}")
    if kind in ("safety_check", "check_in"):
        worker = body["worker_id"]
        allowed = worker == sender.worker_code if sender.worker_code else worker in sender.team_member_codes
        if not allowed:
            return EnvelopeError(ReasonCode.NOT_PERMITTED, f"this device may not record for worker {worker!r}")
    if kind == "repair_job":
        team = body.get("team_id")
        if team is not None and team not in teams:
            return EnvelopeError(ReasonCode.INVALID_RECORD, f"team_id: there is no team {team!r}")
        if state is not None and state["team_id"] not in (None, sender.team_id):
            return EnvelopeError(ReasonCode.NOT_PERMITTED, "this job belongs to another team")
    return None


def _routing(kind: str, body: dict, sender_team: int | None, sites: dict, teams: dict) -> tuple[int | None, int | None]:
    """(team id, region id) a change is visible to."""
    site = sites.get(body.get("site_code"))
    region = site[1] if site else None
    if kind == "repair_job":
        team = teams.get(body.get("team_id"))
        return (team[0] if team else None), region
    return sender_team, region


def _insert_accepted(sender, accepted, sites, teams, states, now) -> None:
    if not accepted:
        return
    rows = [item.row for item in accepted]
    ids = _reserve_revision_ids(len(rows))
    for row, revision_id in zip(rows, ids):
        row["id"] = revision_id
    _bulk_insert(Revision.__table__, rows)
    changes, touched = [], {}
    for row, revision_id in zip(rows, ids):
        team_id, region_id = _routing(row["kind"], row["body"], sender.team_id, sites, teams)
        if _merge_state(states, row, sender.device_id, team_id, region_id, now):
            touched[row["record_id"]] = states[row["record_id"]]
        changes.append({"record_id": row["record_id"], "rev": row["rev"], "kind": row["kind"], "revision_id": revision_id,
                        "worker_id": row["worker_id"], "team_id": team_id, "region_id": region_id, "created_at": now})
    _write_states(touched.values())
    _lock_feed()
    _bulk_insert(Change.__table__, changes)
    _update_site_currents(touched.values())


def _bulk_insert(table, rows: list[dict]) -> None:
    """Insert rows that all have the same keys: COPY on PostgreSQL, one DB-API executemany on SQLite.

    The push writes three rows per record while holding locks; SQLAlchemy's per-row
    parameter handling cost more than SQLite's inserts, and COPY costs PostgreSQL a
    fraction of an INSERT per row. Values still go through each column's own bind
    processing (UTC times, bytes), JSON through orjson.
    """
    if not rows:
        return
    connection = db.session.connection()
    names = list(rows[0])
    processors = [json_codec.dumps_text if isinstance(table.c[name].type, JSON) else table.c[name].type.bind_processor(connection.dialect)
                  for name in names]
    values = ([value if process is None else process(value) for process, value in zip(processors, (row[n] for n in names))]
              for row in rows)
    columns = ", ".join(f'"{name}"' for name in names)
    if connection.dialect.name == "postgresql":
        with connection.connection.driver_connection.cursor() as cursor:
            with cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
                for row in values:
                    copy.write_row(row)
    else:
        connection.exec_driver_sql(f'INSERT INTO "{table.name}" ({columns}) VALUES ({", ".join("?" * len(names))})', [tuple(v) for v in values])


def _reserve_revision_ids(n: int) -> list[int]:
    """Ids for ``n`` new revisions, taken before their insert so it needs no RETURNING.

    (psycopg parses a long multi-row INSERT ... RETURNING anew on every batch; a plain
    executemany is pipelined.) On PostgreSQL the ids come from the column's sequence;
    on SQLite the push holds the write lock (``_begin_write``), so max(id) cannot move.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        return list(db.session.scalars(text("SELECT nextval(pg_get_serial_sequence('revision', 'id')) FROM generate_series(1, :n)"), {"n": n}))
    start = (db.session.scalar(select(func.max(Revision.id))) or 0) + 1
    return list(range(start, start + n))


_STATE_COLUMNS = ("record_id", "kind", "rev", "body", "field_revs", "device_id", "worker_id", "site_code", "team_id",
                  "region_id", "status", "occurred_at", "updated_at")


def _load_states(record_ids) -> dict:
    """Current states as plain dicts (``_stored`` marks rows that exist), for merging in memory."""
    if not record_ids:
        return {}
    columns = [getattr(RecordState, c) for c in _STATE_COLUMNS]
    query = select(*columns).where(RecordState.record_id.in_(record_ids)).order_by(RecordState.record_id).with_for_update()
    return {r.record_id: {**r._mapping, "_stored": True} for r in db.session.execute(query)}


def _merge_state(states: dict, row: dict, device_id, team_id, region_id, now) -> bool:
    """Apply one revision to its record's state in ``states`` (shared.merge). True when it changed."""
    kind, body = row["kind"], row["body"]
    current = states.get(row["record_id"])
    before = None if current is None else {"rev": current["rev"], "body": current["body"], "field_revs": current["field_revs"]}
    after = merge.apply(kind, before, body, row["rev"])
    if before is not None and after is before:
        return False
    if current is None:
        current = states[row["record_id"]] = {"record_id": row["record_id"], "kind": kind, "device_id": device_id, "team_id": None, "_stored": False}
    merged = after["body"]
    current.update(
        rev=after["rev"], body=merged, field_revs=after["field_revs"], worker_id=merged.get("worker_id"), site_code=merged.get("site_code"),
        status=records.status_of(kind, merged), occurred_at=records.occurred_at(kind, merged), region_id=region_id, updated_at=now,
        team_id=team_id if kind == "repair_job" or current["team_id"] is None else current["team_id"],
    )
    return True


def _write_states(states) -> None:
    """Insert new states and update changed ones, in bulk."""
    fresh = [{c: s[c] for c in _STATE_COLUMNS} for s in states if not s["_stored"]]
    stored = [{c: s[c] for c in _STATE_COLUMNS} for s in states if s["_stored"]]
    _bulk_insert(RecordState.__table__, fresh)
    if stored:
        db.session.execute(update(RecordState), stored)  # bulk UPDATE by primary key
    for s in states:
        s["_stored"] = True


def _update_site_currents(states) -> None:
    """The sites' current observations. Call it holding the feed lock: many pushes report on the same
    sites, and a site row locked before the feed lock would queue them all behind each other's commit."""
    newest: dict = {}
    for s in states:
        if s["kind"] == "site_status":
            code = s["body"]["site_code"]
            newest[code] = merge.newest(newest.get(code), s)
    if newest:
        db.session.execute(_SITE_CURRENT, [_site_current_values(newest[code]["body"], newest[code]["rev"]) for code in sorted(newest)])


# Newest observation by HLC wins (shared.merge.newest); the guard keeps it order-independent across batches.
# One statement, executed once per site of the batch (executemany).
_sites_table = Site.__table__
_SITE_CURRENT = (
    update(_sites_table)
    .where(_sites_table.c.code == bindparam("b_code"), or_(_sites_table.c.status_rev.is_(None), _sites_table.c.status_rev < bindparam("b_rev")))
    .values(status_rev=bindparam("b_rev"), status_state=bindparam("b_state"), status_power=bindparam("b_power"),
            status_access=bindparam("b_access"), status_backup_tx=bindparam("b_backup_tx"), status_mobile_bts=bindparam("b_mobile_bts"),
            status_at=bindparam("b_at"), status_notes=bindparam("b_notes"))
)


def _site_current_values(body: dict, rev: str) -> dict:
    return {"b_code": body["site_code"], "b_rev": rev, "b_state": body["state"], "b_power": body["power_source"],
            "b_access": body["access"], "b_backup_tx": body["backup_transmission"], "b_mobile_bts": body["mobile_bts_deployed"],
            "b_at": datetime.fromisoformat(body["observed_at"]), "b_notes": body.get("notes") or None}


def _quarantine(device_id: str | None, rejected: list[_Item], now: datetime) -> None:
    if not rejected:
        return
    db.session.execute(insert(QuarantineItem), [
        {"device_id": device_id, "received_at": now, "reason": str(c.error.reason), "message": c.error.message,
         "raw": _raw(c.wire), "record_id": _short(c.header.get("rid")), "rev": _short(c.header.get("rev")),
         "kind": _short(c.header.get("kind"), 32)}
        for c in rejected
    ])


def _raw(wire) -> str:
    try:
        return canonical_json(wire).decode()
    except (TypeError, ValueError):
        return repr(wire)


def _short(value, limit: int = 64) -> str | None:
    # What a malformed header said, for people reviewing the quarantine; the raw envelope is kept whole
    # beside it. A NUL is shown as U+FFFD: PostgreSQL text cannot hold one.
    return value.replace("\x00", "\ufffd")[:limit] if isinstance(value, str) else None


def quarantine_revoked(device: Device, items: list, reason: ReasonCode = ReasonCode.DEVICE_REVOKED) -> int:
    """Keep everything a revoked device still sends, unopened, for review."""
    wrapped = [_Item(i, w, error=EnvelopeError(reason, "sent by a revoked device")) for i, w in enumerate(items)]
    _quarantine(device.id, wrapped, utcnow())
    device.rejected_count = (device.rejected_count or 0) + len(wrapped)
    db.session.commit()
    return len(wrapped)


def _update_device(sender: Sender, report: DeviceReport, now: datetime, accepted: int, rejected: int) -> None:
    values = report_values(report, now)
    values.update(last_push_at=now, accepted_count=Device.accepted_count + accepted, rejected_count=Device.rejected_count + rejected)
    db.session.execute(update(Device).where(Device.id == sender.device_id).values(**values))


def report_values(report: DeviceReport, now: datetime) -> dict:
    """The device columns a sync's self-report sets (push and pull)."""
    values = {"last_contact_at": now, "outbox_depth": report.outbox_depth, "oldest_unsent_age_s": report.oldest_unsent_age_s}
    if report.app_version:
        values["app_version"] = report.app_version
    if report.device_time is not None:
        values["clock_skew_ms"] = int((report.device_time - now).total_seconds() * 1000)
    return values


_server_clock = HybridLogicalClock("server")


def write_by_person(kind: str, record_id: str, body: dict, user_id: int, ring: KeyRing) -> str:
    """Store a revision made by a person on the dashboard (e.g. a supervisor assigns a job).

    It goes through the same merge and change feed as a device's, stamped by
    the server's HLC; it has no envelope (nothing to verify) and names its
    author. Returns the revision. The caller commits.
    """
    errors = record_errors(kind, body)
    if errors:
        raise Invalid(describe_errors(errors), ReasonCode.INVALID_RECORD, {"errors": errors})
    now = utcnow()
    states = _load_states({record_id})
    state = states.get(record_id)
    if state is not None:
        _server_clock.receive(state["rev"])
    rev = str(_server_clock.tick())
    revision = Revision(**_revision_row(kind, record_id, rev, body, ring, now, author_user_id=user_id,
                                        content_hash=sha256_hex(canonical_json(body))))
    stored = revision.body
    db.session.add(revision)
    db.session.flush()
    sites = _sites({body.get("site_code")} - {None})
    teams = _teams({body.get("team_id")} - {None})
    team_id, region_id = _routing(kind, body, state["team_id"] if state else None, sites, teams)
    changed = _merge_state(states, {"record_id": record_id, "rev": rev, "kind": kind, "body": stored}, None, team_id, region_id, now)
    if changed:
        _write_states([states[record_id]])
    _lock_feed()
    if changed:
        _update_site_currents([states[record_id]])
    db.session.add(Change(record_id=record_id, rev=rev, kind=kind, revision_id=revision.id, worker_id=body.get("worker_id"),
                          team_id=team_id, region_id=region_id, created_at=now))
    return rev
