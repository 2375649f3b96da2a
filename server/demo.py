"""``fieldwatch demo``: a realistic demo organisation, with records made through the real sync path.

From an empty database it makes an operator and a partner, 5 regions, 200
sites, teams, supervisors and 40 technicians; then it starts the server on a
free local port, enrols one phone per technician with one-time codes over
HTTP, and pushes three days of sealed, signed records in batches over HTTP,
exactly as phones do: safety checks (one technician with a fever), check-ins
(a few late, one need-help, one SOS), site status (sites down, on generator,
a mobile base-station vehicle, a quarantined area) and repair jobs at every
stage, one of them handed to the partner's team (mutual aid).

The demo's phones are built on ``shared/`` and ``requests`` alone: the server
never imports the mobile app.
"""
from __future__ import annotations

import os
import random
import secrets
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone

import click
import requests
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select
from werkzeug.security import generate_password_hash
from werkzeug.serving import make_server

from shared import crypto, envelope
from shared.clock import HybridLogicalClock
from shared.protocol import ENROL_PATH, PUSH_PATH

from .extensions import db
from .models import DutyShift, Organisation, Region, ResponseTarget, Site, Team, User
from .services import enrolment

REGIONS = [  # code, name, centre
    ("HN", "Ha Noi", 21.03, 105.85), ("HP", "Hai Phong", 20.86, 106.68), ("DN", "Da Nang", 16.05, 108.20),
    ("HCM", "Ho Chi Minh City", 10.78, 106.70), ("CT", "Can Tho", 10.04, 105.78),
]
FIRST = ["An", "Binh", "Cuong", "Dung", "Giang", "Hai", "Hoa", "Khanh", "Lan", "Minh", "Nam", "Phuong", "Quang", "Son", "Thao", "Trung", "Tuan", "Vy"]
LAST = ["Nguyen", "Tran", "Le", "Pham", "Hoang", "Vu", "Dang", "Bui", "Do", "Ngo"]
TZ = timezone(timedelta(hours=7))


class DemoPhone:
    """A simulated phone: its own Ed25519 key and HLC, sealing to the server key, pushing over HTTP."""

    def __init__(self, base_url: str, code: str, label: str):
        self.base_url = base_url
        self.private, public = crypto.generate_signing_keypair()
        r = requests.post(base_url + ENROL_PATH, json={"code": code, "public_key": crypto.b64e(public), "label": label, "app_version": "1.0.0-demo"}, timeout=30)
        r.raise_for_status()
        data = r.json()
        self.device_id, self.token, self.worker_id = data["device_id"], data["token"], data["worker_id"]
        key = next(k for k in data["keys"] if k["current"])
        self.kid, self.server_public = key["kid"], crypto.b64d(key["box_public"])
        self.clock = HybridLogicalClock(self.device_id)
        self.outbox: list[dict] = []

    def save(self, kind: str, body: dict, record_id: str | None = None) -> str:
        """Seal a record into the outbox, as the app does at save time."""
        record_id = record_id or str(uuid.uuid4())
        header = envelope.make_header(self.kid, self.device_id, record_id, kind, str(self.clock.tick()))
        self.outbox.append(envelope.seal(header, {"schema_version": 1, **body}, self.private, self.server_public))
        return record_id

    def sync(self, session: requests.Session) -> int:
        """Push the outbox in batches; returns how many items were accepted or duplicate."""
        done = 0
        while self.outbox:
            batch, self.outbox = self.outbox[:200], self.outbox[200:]
            r = session.post(self.base_url + PUSH_PATH, json={"items": batch, "outbox_depth": len(self.outbox), "app_version": "1.0.0-demo",
                                                               "device_time": datetime.now(timezone.utc).isoformat()},
                             headers={"Authorization": f"Bearer {self.token}"}, timeout=60)
            r.raise_for_status()
            rejected = [x for x in r.json()["results"] if x["status"] == "rejected"]
            if rejected:
                raise click.ClickException(f"demo record rejected: {rejected[0]['reason']}: {rejected[0]['message']}")
            done += len(batch)
        return done


def _iso(t: datetime) -> str:
    return t.astimezone(TZ).isoformat(timespec="seconds")


def build_organisation(rng: random.Random, password: str) -> dict:
    """People, places and teams. Returns what the phones need: per technician, code, team, region sites."""
    op = Organisation(code="VNT", name="VN Telecom (demo)", is_partner=False)
    partner = Organisation(code="PTN", name="Partner Networks (demo)", is_partner=True)
    db.session.add_all([op, partner])
    db.session.flush()
    pw = generate_password_hash(password)
    people, plan = [], {"technicians": [], "sites": {}}
    for i, (code, name, lat, lon) in enumerate(REGIONS):
        region = Region(code=code, name=name, province=name, min_fit_on_duty=3)
        db.session.add(region)
        db.session.flush()
        sites = []
        for n in range(40):
            crit = "critical" if n < 5 else "high" if n < 15 else "normal"
            sites.append(Site(code=f"{code}{n + 1:03d}", name=f"{name} BTS {n + 1}", region_id=region.id, criticality=crit,
                              lat=round(lat + rng.uniform(-0.35, 0.35), 5), lon=round(lon + rng.uniform(-0.35, 0.35), 5)))
        db.session.add_all(sites)
        plan["sites"][code] = [s.code for s in sites]
        teams = [Team(code=f"{code}-T{t}", name=f"{name} crew {t}", organisation_id=op.id, region_id=region.id) for t in (1, 2)]
        if code in ("HN", "HCM"):
            teams.append(Team(code=f"PTN-{code}", name=f"Partner crew {name}", organisation_id=partner.id, region_id=region.id))
        db.session.add_all(teams)
        db.session.flush()
        for t, team in enumerate(teams[:2]):
            for k in range(4):
                n = i * 8 + t * 4 + k + 1
                user = User(code=f"W{n:03d}", username=f"tech{n:02d}", role="technician", team_id=team.id, password_hash=pw,
                            display_name=f"{rng.choice(LAST)} Van {rng.choice(FIRST)}")
                people.append(user)
                plan["technicians"].append({"code": user.code, "team": team.code, "region": code})
        people.append(User(code=f"S-{code}", username=f"super-{code.lower()}", role="supervisor", password_hash=pw,
                           display_name=f"Supervisor {name}", regions=[region]))
    people += [
        User(code="ADMIN", username="admin", role="admin", password_hash=pw, display_name="Operations admin"),
        User(code="AUDIT", username="auditor", role="auditor", password_hash=pw, display_name="Telecom Department auditor"),
    ]
    db.session.add_all(people)
    _rosters_and_targets(rng)
    db.session.commit()
    return plan


def _rosters_and_targets(rng: random.Random) -> None:
    """Day shifts for every crew (the current one started six hours ago), tonight's shift, response targets."""
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    db.session.flush()
    for team in db.session.scalars(select(Team)):
        for day in range(3, -1, -1):
            start = now - timedelta(days=day, hours=6)
            db.session.add(DutyShift(team_id=team.id, starts_at=start, ends_at=start + timedelta(hours=10), note="day shift"))
        night = now + timedelta(hours=4)
        db.session.add(DutyShift(team_id=team.id, starts_at=night, ends_at=night + timedelta(hours=10), note="night shift"))
    for crit, ack, arrive, restore in (("critical", 15, 60, 240), ("high", 30, 120, 480), ("normal", 60, 240, 1440)):
        db.session.add(ResponseTarget(criticality=crit, acknowledge_minutes=ack, arrive_minutes=arrive, restore_minutes=restore))


def _safety(worker: str, at: datetime, site: str, rng: random.Random, fever: bool = False) -> dict:
    temp = round(rng.uniform(38.1, 38.9), 1) if fever else round(rng.uniform(36.1, 37.1), 1)
    return {"worker_id": worker, "taken_at": _iso(at), "temperature_c": temp, "symptoms": ["fever", "cough"] if fever else [],
            "exposure": "none", "ppe": ["mask", "gloves", "sanitiser"], "site_code": site, "in_quarantine_area": False,
            "fit_for_duty": not fever, "notes": "", "position": None}


def _check_in(worker: str, at: datetime, site: str, status: str = "ok") -> dict:
    return {"worker_id": worker, "at": _iso(at), "site_code": site, "status": status, "position": None, "notes": ""}


def _site_status(site: str, at: datetime, state: str, power: str, worker: str, mobile_bts=False, access="open") -> dict:
    return {"site_code": site, "observed_at": _iso(at), "state": state, "power_source": power, "backup_transmission": state != "up",
            "mobile_bts_deployed": mobile_bts, "access": access, "cause": "" if state == "up" else "storm damage / power cut",
            "notes": "", "reported_by": worker}


JOB_PATH = ["reported", "assigned", "acknowledged", "en_route", "on_site", "restored", "closed"]


def _job_revisions(phone: DemoPhone, site: str, team: str, operator: str, final: str, start: datetime, rng: random.Random) -> None:
    """One job, saved step by step up to ``final`` (each step a revision)."""
    record_id = str(uuid.uuid4())
    steps, notes = {}, []
    at = start
    for state in JOB_PATH[: JOB_PATH.index(final) + 1]:
        steps[state] = _iso(at)
        if state == "on_site":
            notes.append({"id": str(uuid.uuid4()), "at": _iso(at), "author": phone.worker_id, "text": "On site; checking rectifier and batteries."})
        body = {"site_code": site, "fault_type": rng.choice(["power", "transmission", "fibre_cut", "equipment"]),
                "priority": rng.choice(["critical", "high", "medium"]), "title": f"Outage at {site}", "status": state,
                "steps": dict(steps), "reported_at": steps["reported"], "actions": ["replaced fuse"] if state in ("restored", "closed") else [],
                "parts": [{"name": "rectifier module", "quantity": 1}] if state in ("restored", "closed") else [], "notes": list(notes),
                "team_id": team, "team_operator": operator, "changed": ["status"] if state != "reported" else []}
        phone.save("repair_job", body, record_id)
        at += timedelta(minutes=rng.randint(8, 50))


def make_records(phones: dict, plan: dict, rng: random.Random, now: datetime, days: int = 3) -> None:
    """Three days of field work, ending now, with the situations supervisors must see."""
    techs = plan["technicians"]
    fever_worker = techs[5]["code"]
    silent = {techs[12]["code"], techs[27]["code"]}  # phones with no signal today: last records hours ago
    for t in techs:
        phone, sites = phones[t["code"]], plan["sites"][t["region"]]
        home = rng.choice(sites)
        for day in range(days, -1, -1):
            # every shift started about six hours before "now" on its day, so the demo looks the same at any hour
            start = (now - timedelta(days=day, hours=6, minutes=rng.randint(0, 40))).replace(second=0, microsecond=0)
            end = min(start + timedelta(hours=9), now - timedelta(hours=3) if t["code"] in silent and day == 0 else now)
            if end <= start:
                continue
            phone.save("safety_check", _safety(t["code"], start, home, rng, fever=t["code"] == fever_worker and day == 0))
            at = start + timedelta(minutes=30)
            while at < end:
                phone.save("check_in", _check_in(t["code"], at, home))
                at += timedelta(minutes=rng.randint(45, 65))
    _incidents(phones, plan, rng, now)


def _incidents(phones: dict, plan: dict, rng: random.Random, now: datetime) -> None:
    techs = plan["technicians"]
    by_region: dict[str, list] = {}
    for t in techs:
        by_region.setdefault(t["region"], []).append(t)
    sos, help_ = techs[3], techs[20]
    phones[sos["code"]].save("check_in", _check_in(sos["code"], now - timedelta(minutes=6), plan["sites"][sos["region"]][2], "sos"))
    phones[help_["code"]].save("check_in", _check_in(help_["code"], now - timedelta(minutes=25), plan["sites"][help_["region"]][7], "need_help"))
    finals = ["reported", "assigned", "acknowledged", "en_route", "on_site", "restored", "closed"]
    for region, crew in by_region.items():
        sites = plan["sites"][region]
        for n, site in enumerate(rng.sample(sites, 7)):
            reporter = crew[n % len(crew)]
            phone = phones[reporter["code"]]
            state, power = ("down", "none") if n < 3 else ("degraded", "generator") if n < 5 else ("degraded", "battery") if n < 6 else ("up", "grid")
            seen = now - timedelta(hours=rng.randint(1, 20))
            phone.save("site_status", _site_status(site, seen, state, power, reporter["code"], mobile_bts=(n == 1), access="quarantined" if n == 2 else "open"))
            final = finals[(n + len(region)) % len(finals)]
            operator, team = ("PTN", f"PTN-{region}") if region in ("HN", "HCM") and n == 0 else ("VNT", reporter["team"])
            _job_revisions(phone, site, team, operator, final, seen - timedelta(minutes=20), rng)


def _serve_in_thread(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


def run_demo(app, password: str, seed: int = 1103, echo=click.echo) -> dict:
    """Make the demo data (organisation in the database, records over HTTP). Returns a summary."""
    rng = random.Random(seed)
    with app.app_context():
        plan = build_organisation(rng, password)
        codes = {}
        for t in plan["technicians"]:
            code, _ = enrolment.create_code(t["team"], timedelta(hours=1), t["code"])
            codes[t["code"]] = code
        db.session.commit()
    server, url = _serve_in_thread(app)
    try:
        echo(f"demo: enrolling {len(codes)} phones over HTTP at {url}")
        phones = {w: DemoPhone(url, code, f"demo phone {w}") for w, code in codes.items()}
        make_records(phones, plan, rng, datetime.now(timezone.utc))
        total = sum(len(p.outbox) for p in phones.values())
        pushed = 0
        with requests.Session() as session, click.progressbar(list(phones.values()), label=f"demo: pushing {total} sealed records") as bar:
            for phone in bar:
                pushed += phone.sync(session)
    finally:
        server.shutdown()
    return {"phones": len(phones), "records": pushed, "technicians": len(plan["technicians"])}


@click.command("demo")
@click.option("--serve/--no-serve", default=False, help="serve the dashboard afterwards")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
@click.option("--reset", is_flag=True, help="delete the SQLite database first (never touches PostgreSQL)")
@with_appcontext
def demo(serve, host, port, reset):
    """Make a demo organisation and push three days of records through the real sync path."""
    from flask_migrate import upgrade

    app = current_app._get_current_object()
    if reset:
        _reset_sqlite(app)
    upgrade()
    password = os.environ.get("FIELDWATCH_DEMO_PASSWORD")
    if db.session.scalar(select(func.count()).select_from(Organisation)):
        click.echo("demo: the database already holds data; keeping it (use --reset to start again)")
        password = password or "(unchanged: the password printed when the demo was made)"
    else:
        generated = password is None
        password = password or secrets.token_urlsafe(9)
        summary = run_demo(app, password)
        click.echo(f"demo: {summary['phones']} phones pushed {summary['records']} records")
        if generated:
            click.echo("demo: password generated for every demo account (set FIELDWATCH_DEMO_PASSWORD to choose one)")
    click.echo(f"logins: admin, super-hn (supervisor of Ha Noi), auditor, tech01..tech40; password: {password}")
    if serve:
        click.echo(f"dashboard: http://{host}:{port}/dashboard/   API docs: http://{host}:{port}/api/docs")
        sys.stdout.flush()
        # Flask refuses app.run() inside its own CLI; serve with werkzeug directly (gunicorn for production).
        from werkzeug.serving import run_simple

        run_simple(host, port, app, threaded=True, use_reloader=False)


def _reset_sqlite(app) -> None:
    url = app.config["DATABASE_URL"]
    if not url.startswith("sqlite:///"):
        raise click.ClickException("--reset only deletes a SQLite database; drop a PostgreSQL database yourself")
    db.engine.dispose()
    path = url[len("sqlite:///"):]
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
