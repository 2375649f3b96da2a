"""Pull: what a device reads from the change feed (DESIGN §3.5), and its sync status.

A page is the first N changes after the device's cursor that it may see (its own
records, its team's jobs, unassigned jobs in its region, its region's site
statuses), read as one ordered index range per rule (migration 0006): a page
costs its own size, however long the feed behind the cursor. Changes become
visible in number order (see :mod:`.sync`), so the cursor can move to the last
change sent without ever passing one that commits late.
"""
from __future__ import annotations

from functools import lru_cache

import orjson
from sqlalchemy import Integer, Select, Text, bindparam, cast, func, select, union_all, update
from sqlalchemy.exc import DBAPIError

from ..extensions import db
from ..models import Change, Device, Revision, utcnow
from . import records
from .enrolment import DeviceIdentity
from .keys import KeyRing
from .sync import DeviceReport, report_values


def without_transaction() -> None:
    """PostgreSQL: a pull's statements each commit alone (autocommit), saving the BEGIN and COMMIT round trips.

    Its reads need no shared snapshot: the page is one statement, and what it writes is the device's
    own report. Call before the request's first statement; a session already in a transaction (a caller
    that read before) keeps it.
    """
    if db.session.get_bind().dialect.name == "postgresql" and not db.session().in_transaction():
        db.session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def pull(device: DeviceIdentity, cursor: int, limit: int, report: DeviceReport, ring: KeyRing) -> dict:
    """Changes the device may see after ``cursor``, in order, with the next cursor."""
    now = utcnow()
    worker, team, region = device.worker, device.team_id, device.region_id
    params = {"cursor": cursor, "n": limit + 1, "worker": worker, "team": team, "region": region}
    rows = _page_rows((worker is not None, team is not None, region is not None), params)
    rows.sort()  # by seq, their first value (unique)
    has_more = len(rows) > limit
    rows = rows[:limit]
    # The last change sent (every one below it this device may see has been sent: numbers become
    # visible in order), or where it was: changes it may not see cost it nothing to pass again.
    next_cursor = rows[-1][0] if rows else cursor
    changes = [{"seq": seq, "kind": kind, "rid": rid, "rev": rev, "body": _pull_body(body, health, key_id, ring)}
               for seq, kind, rid, rev, body, health, key_id in rows]
    values = report_values(report, now)
    values.update(last_pull_at=now, last_cursor=next_cursor)
    devices = Device.__table__  # Core: the session's objects expire at commit anyway
    statement = update(devices).where(devices.c.id == device.id).values(**values)
    if db.session.get_bind().dialect.name == "postgresql":
        # A pull writes only what the device reported about itself: losing it in a crash costs
        # nothing (the next sync reports again), so its commit does not wait for the disk. The
        # setting rides in the update's WHERE (set_config(..., true) lasts to the end of the
        # transaction, here the statement's own): one round trip fewer on the path every phone polls.
        statement = statement.where(func.set_config("synchronous_commit", "off", True) == "off")
    db.session.execute(statement)
    db.session.commit()
    return {"changes": changes, "next_cursor": next_cursor, "has_more": has_more, "server_time": now.isoformat()}


def _pull_body(body: str, health: bytes | None, key_id: str | None, ring: KeyRing):
    # Pull is JSON-bound: a body without health fields goes out as the stored JSON text, never parsed.
    if health is None:
        return orjson.Fragment(body)
    return records.join_health(orjson.loads(body), health, key_id, ring)


def _page_rows(shape: tuple[bool, bool, bool], params: dict) -> list[tuple]:
    """The rows of :func:`_pull_query` as the driver's tuples, read with its own cursor on the session's connection.

    A pull page is thousands of rows on the path every phone polls: SQLAlchemy's row objects cost about as
    much as reading the rows did (measured on a page of 5,000: 9 ms of 50). The statement is still
    SQLAlchemy's, compiled once per database dialect and shape.
    """
    conn = db.session.connection()
    compiled = _compiled_pull(conn.dialect, shape)
    if compiled is None:
        return []  # a device with no worker, team or region sees nothing
    values = compiled.construct_params(params)
    args = tuple(values[name] for name in compiled.positiontup) if compiled.positional else values
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(compiled.string, args)
            return cursor.fetchall()
        finally:
            cursor.close()
    except dbapi_error as e:
        # What SQLAlchemy does for its own statements: a lost connection is dropped from the pool, and the
        # error is one server.errors answers (503 database_unavailable when the connection was lost).
        lost = conn.dialect.is_disconnect(e, conn.connection, None)
        if lost:
            conn.invalidate(e)
        raise DBAPIError.instance(compiled.string, args, e, dbapi_error, connection_invalidated=lost, dialect=conn.dialect) from e


@lru_cache(maxsize=32)
def _compiled_pull(dialect, shape: tuple[bool, bool, bool]):
    query = _pull_query(*shape)
    return None if query is None else query.compile(dialect=dialect)


def _pull_query(worker: bool, team: bool, region: bool) -> Select | None:
    """The pull statement for a device with a worker / a team / a region (compiled once per shape, bound per call).

    The first ``:n`` changes after ``:cursor`` the device may see: one arm per visibility
    rule (own records, the team's jobs, unassigned jobs in its region, the region's site
    statuses), each an ordered range of its own index (migration 0006) cut at ``:n``, so a
    page costs its size however long the feed behind the cursor.
    """
    c = Change.__table__.c
    n = bindparam("n", type_=Integer)
    rules = []
    if worker:
        # not kind IN (...): an IN list is bound at execution (SQLAlchemy's "expanding" parameter), and the
        # statement is compiled once for the driver (_page_rows)
        rules.append((c.worker_id == bindparam("worker")) & ((c.kind == "safety_check") | (c.kind == "check_in")))
    if team:
        rules.append((c.team_id == bindparam("team")) & (c.kind == "repair_job"))
    if region:
        rules.append((c.region_id == bindparam("region")) & (c.kind == "repair_job") & c.team_id.is_(None))
        rules.append((c.region_id == bindparam("region")) & (c.kind == "site_status"))
    if not rules:
        return None  # a device with no worker, team or region sees nothing
    revisions = Revision.__table__.c
    columns = (c.seq, c.kind, c.record_id, c.rev, c.revision_id)
    arms = [select(*columns).where(c.seq > bindparam("cursor"), rule).order_by(c.seq).limit(n).subquery() for rule in rules]
    candidates = union_all(*(select(*arm.c) for arm in arms)).subquery()
    # The page is chosen (merged in order, cut) from the feed's narrow rows before the bodies are
    # joined: sorting bodies spilled to disk, and going back to the feed's rows cost a lookup each.
    page = select(candidates).order_by(candidates.c.seq).limit(n).subquery()
    return (
        select(page.c.seq, page.c.kind, page.c.record_id, page.c.rev, cast(revisions.body, Text).label("body"), revisions.health,
               revisions.health_key_id)
        .join_from(page, Revision.__table__, revisions.id == page.c.revision_id)
    )  # unordered: the caller sorts the page by seq (its first column)


def device_status(device: Device) -> dict:
    """What the server knows of a device's syncing."""
    iso = lambda d: d.isoformat() if d else None  # noqa: E731
    return {"device_id": device.id, "label": device.label, "status": device.status, "last_push_at": iso(device.last_push_at),
            "last_pull_at": iso(device.last_pull_at), "accepted": device.accepted_count or 0,
            "rejected": device.rejected_count or 0, "server_time": utcnow().isoformat()}
