"""Server fixtures: an app on SQLite (always) and PostgreSQL (when FIELDWATCH_TEST_DATABASE_URL is set).

PostgreSQL runs in a schema of its own per test session; an unreachable
database makes the tests error, never skip.
"""
from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from server import create_app
from server.extensions import db
from server.models import Organisation, Region, Site, Team, User
from shared import crypto, envelope
from shared.clock import HybridLogicalClock

PG_URL = os.environ.get("FIELDWATCH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


def _upgrade(app):
    from flask_migrate import upgrade

    with app.app_context():
        upgrade()
        db.engine.dispose()


def _checkpoint(path) -> None:
    # The template is copied file by file: fold the WAL into the main file first.
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory, keys_dir):
    path = tmp_path_factory.mktemp("template") / "template.db"
    _upgrade(create_app({"DATABASE_URL": f"sqlite:///{path}", "KEYS_DIR": keys_dir, "TESTING": True}))
    _checkpoint(path)
    return path


@pytest.fixture(scope="session")
def pg_schema(keys_dir):
    if not PG_URL:
        return None
    schema = f"fw_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:  # an unreachable database fails here, loudly
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = _pg_url(schema)
    _upgrade(create_app({"DATABASE_URL": url, "KEYS_DIR": keys_dir, "TESTING": True}))
    yield schema
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


def _pg_url(schema: str) -> str:
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "fieldwatch.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    schema = request.getfixturevalue("pg_schema")
    engine = sa.create_engine(_pg_url(schema).replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        tables = [t for t in db.metadata.sorted_tables]
        conn.execute(sa.text("TRUNCATE " + ", ".join(f'"{t.name}"' for t in tables) + " RESTART IDENTITY CASCADE"))
    engine.dispose()
    return _pg_url(schema)


@pytest.fixture
def app(database_url, keys_dir):
    app = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": True, "WTF_CSRF_ENABLED": False})
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@dataclass
class Org:
    """A small organisation: two regions, sites, an own and a partner team, people of every role."""

    operator: Organisation
    partner: Organisation
    regions: dict
    sites: dict
    teams: dict
    users: dict


def make_org() -> Org:
    op = Organisation(code="OP", name="Operator", is_partner=False)
    partner = Organisation(code="PT", name="Partner Telecom", is_partner=True)
    hn = Region(code="HN", name="Ha Noi", province="Ha Noi", min_fit_on_duty=2)
    hp = Region(code="HP", name="Hai Phong", province="Hai Phong", min_fit_on_duty=1)
    db.session.add_all([op, partner, hn, hp])
    db.session.flush()
    sites = {c: Site(code=c, name=f"Site {c}", region_id=r.id, lat=21.0 + i / 100, lon=105.8 + i / 100, criticality=crit)
             for i, (c, r, crit) in enumerate([("HN001", hn, "critical"), ("HN002", hn, "high"), ("HN003", hn, "normal"), ("HP001", hp, "normal")])}
    t1 = Team(code="HN-T1", name="Ha Noi crew 1", organisation_id=op.id, region_id=hn.id)
    t2 = Team(code="HP-T1", name="Hai Phong crew 1", organisation_id=op.id, region_id=hp.id)
    tp = Team(code="PT-HN", name="Partner crew Ha Noi", organisation_id=partner.id, region_id=hn.id)
    db.session.add_all(list(sites.values()) + [t1, t2, tp])
    db.session.flush()
    users = {
        "tech1": User(code="W001", username="tech1", display_name="Nguyen Van An", role="technician", team_id=t1.id),
        "tech2": User(code="W002", username="tech2", display_name="Tran Thi Binh", role="technician", team_id=t1.id),
        "tech3": User(code="W003", username="tech3", display_name="Le Van Cuong", role="technician", team_id=t2.id),
        "supervisor": User(code="S001", username="super", display_name="Pham Minh", role="supervisor"),
        "admin": User(code="A001", username="admin", display_name="Admin", role="admin"),
        "auditor": User(code="U001", username="auditor", display_name="Auditor", role="auditor"),
    }
    users["supervisor"].regions = [hn]
    db.session.add_all(users.values())
    db.session.commit()
    return Org(op, partner, {"HN": hn, "HP": hp}, sites, {"HN-T1": t1, "HP-T1": t2, "PT-HN": tp}, users)


@pytest.fixture
def org(app) -> Org:
    return make_org()


@dataclass
class Phone:
    """A test device: its keys, token, and the server keys it pinned; seals records like the app."""

    client: object
    device_id: str
    token: str
    private_key: bytes
    public_key: bytes
    server_keys: list
    worker_id: str | None
    hlc: HybridLogicalClock = field(init=False)

    def __post_init__(self):
        self.hlc = HybridLogicalClock(self.device_id)

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def current_key(self) -> dict:
        return next(k for k in self.server_keys if k["current"])

    def seal(self, kind: str, body: dict, rid: str | None = None, rev: str | None = None) -> dict:
        key = self.current_key()
        header = envelope.make_header(key["kid"], self.device_id, rid or str(uuid.uuid4()), kind, rev or str(self.hlc.tick()))
        return envelope.seal(header, body, self.private_key, crypto.b64d(key["box_public"]))

    def push(self, items: list, **report):
        return self.client.post("/api/v1/sync/push", json={"items": items, **report}, headers=self.auth)

    def pull(self, cursor: int = 0, limit: int | None = None):
        query = {"cursor": cursor} | ({"limit": limit} if limit else {})
        return self.client.get("/api/v1/sync/pull", query_string=query, headers=self.auth)


def enrol_phone(client, team: str = "HN-T1", worker: str | None = "W001", label: str = "test phone") -> Phone:
    from datetime import timedelta

    from server.services import enrolment

    code, _ = enrolment.create_code(team, timedelta(hours=1), worker)
    db.session.commit()
    private, public = crypto.generate_signing_keypair()
    r = client.post("/api/v1/devices/enrol", json={"code": code, "public_key": crypto.b64e(public), "label": label, "app_version": "1.0.0"})
    assert r.status_code == 201, r.get_json()
    data = r.get_json()
    return Phone(client, data["device_id"], data["token"], private, public, data["keys"], data["worker_id"])


@pytest.fixture
def phone(client, org) -> Phone:
    return enrol_phone(client)


NOW = "2026-11-26T08:00:00+07:00"


def safety_check(worker="W001", **over) -> dict:
    body = {"schema_version": 1, "worker_id": worker, "taken_at": NOW, "temperature_c": 36.6, "symptoms": [], "exposure": "none",
            "ppe": ["mask", "gloves"], "site_code": "HN001", "in_quarantine_area": False, "fit_for_duty": True, "notes": "", "position": None}
    return {**body, **over}


def check_in(worker="W001", status="ok", **over) -> dict:
    return {"schema_version": 1, "worker_id": worker, "at": NOW, "site_code": "HN001", "status": status,
            "position": {"lat": 21.0, "lon": 105.8, "accuracy_m": 10.0}, "notes": "", **over}


def site_status(site="HN001", state="down", **over) -> dict:
    return {"schema_version": 1, "site_code": site, "observed_at": NOW, "state": state, "power_source": "battery",
            "backup_transmission": False, "mobile_bts_deployed": False, "access": "open", "cause": "", "notes": "", "reported_by": "W001", **over}


def repair_job(status="reported", steps=None, **over) -> dict:
    return {"schema_version": 1, "site_code": "HN001", "fault_type": "power", "priority": "high", "title": "Power cut",
            "status": status, "steps": steps or {"reported": NOW}, "reported_at": NOW, "actions": [], "parts": [], "notes": [],
            "team_id": "HN-T1", "team_operator": "OP", "changed": [], **over}
