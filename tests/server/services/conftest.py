"""Service-test helpers: times relative to now, pushing sealed records with chosen times."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from server.extensions import db
from server.models import DutyShift
from server.services.people import Scope


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.isoformat()


def shift(team, start: datetime, end: datetime) -> DutyShift:
    row = DutyShift(team_id=team.id, starts_at=start, ends_at=end)
    db.session.add(row)
    db.session.commit()
    return row


def scope_of(user) -> Scope:
    return Scope.of(user)


def push_ok(phone, kind: str, body: dict, **kw) -> dict:
    item = phone.seal(kind, body, **kw)
    r = phone.push([item])
    assert r.status_code == 200, r.get_json()
    result = r.get_json()["results"][0]
    assert result["status"] == "accepted", result
    return item["h"]


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
