"""Dashboard fixtures: people who can sign in, tokens, duty shifts, a fixed 'now'."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server.extensions import db
from server.models import DutyShift
from server.services import people

PASSWORD = "correct horse battery"
ROLE_USERS = {"technician": "tech1", "supervisor": "super", "admin": "admin", "auditor": "auditor"}


_HASH: list[str] = []


def set_passwords(org) -> None:
    if not _HASH:  # scrypt is slow on purpose: hash once per test session
        _HASH.append(people.hash_password(PASSWORD))
    for user in org.users.values():
        user.password_hash = _HASH[0]
    db.session.commit()


@pytest.fixture
def people_org(org):
    set_passwords(org)
    return org


def login(client, username: str, password: str = PASSWORD):
    return client.post("/dashboard/login", data={"username": username, "password": password})


@pytest.fixture
def as_role(client, people_org):
    """as_role('supervisor') signs the test client in as that role's user."""

    def sign_in(role: str):
        client.post("/dashboard/logout")
        r = login(client, ROLE_USERS[role])
        assert r.status_code == 302, r.data
        return client

    return sign_in


@pytest.fixture
def tokens(people_org):
    """{role: bearer header} for every role."""
    out = {}
    for role, username in ROLE_USERS.items():
        user = next(u for u in people_org.users.values() if u.username == username)
        raw, _ = people.create_token(user, f"{role} test")
        out[role] = {"Authorization": f"Bearer {raw}"}
    db.session.commit()
    return out


def on_duty(team, start: datetime, end: datetime) -> DutyShift:
    shift = DutyShift(team_id=team.id, starts_at=start, ends_at=end)
    db.session.add(shift)
    db.session.commit()
    return shift


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
