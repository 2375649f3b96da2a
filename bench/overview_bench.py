"""Benchmark of the overview (service and JSON), printed, not asserted (issue 5).

Full size: 10,000 technicians, 100,000 sites, 1,000,000 safety checks,
200,000 repair jobs (plus, so that the check-in part of the overview has
something to read: one phone per technician, a few check-ins each, and a
handful of open SOS / need-help). ``--scale 0.1`` makes a tenth of that.
Data is written straight into the tables (Core executemany on SQLite,
COPY on PostgreSQL), not through sync: this measures reading, not pushing.

    .venv/bin/python bench/overview_bench.py                      # SQLite in a temp dir, full size
    .venv/bin/python bench/overview_bench.py --scale 0.1
    .venv/bin/python bench/overview_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/overview_bench.py --sqlite-path /tmp/ov.db   # build once, reuse next time
    .venv/bin/python bench/overview_bench.py --profile               # queries per case, slowest first

On PostgreSQL it works in a schema of its own and drops it afterwards
(``--schema NAME --keep`` keeps it, and reuses it when it already holds data).
Target: <= 300 ms server time per overview. Printed per case: median and max
wall time, and median CPU time of this process (on SQLite that is the
server's work; on PostgreSQL the database's share is in the wall time only).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

REGIONS = 63  # Viet Nam's provinces
TEAM_SIZE = 5
CHUNK = 50_000
BENCH_PASSWORD = "bench-password-1"


def _writer(conn):
    """write(table, rows): COPY on PostgreSQL (psycopg), Core executemany elsewhere."""
    if conn.dialect.name != "postgresql":
        def write(table, rows):
            rows = list(rows)
            for start in range(0, len(rows), CHUNK):
                conn.execute(table.insert(), rows[start:start + CHUNK])
        return write

    raw = conn.connection.driver_connection

    def plain(value):
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).replace(tzinfo=None)
        return value

    def write(table, rows):
        cols = None
        with raw.cursor() as cur:
            copy_cm = None
            try:
                for row in rows:
                    if cols is None:
                        cols = list(row)
                        copy_cm = cur.copy(f'COPY {table.name} ({", ".join(cols)}) FROM STDIN')
                        copy = copy_cm.__enter__()
                    copy.write_row([plain(row[c]) for c in cols])
            finally:
                if copy_cm is not None:
                    copy_cm.__exit__(None, None, None)
    return write


def _build(scale: float, seed: int = 7) -> None:
    from server.extensions import db
    from server.models import Device, DutyShift, Organisation, RecordState, Region, Site, Team, User

    rnd = random.Random(seed)
    now = datetime.now(timezone.utc)
    n_tech, n_sites, n_checks, n_jobs = int(10_000 * scale), int(100_000 * scale), int(1_000_000 * scale), int(200_000 * scale)
    t = time.perf_counter()
    op = Organisation(code="OP", name="Operator")
    pt = Organisation(code="PT", name="Partner", is_partner=True)
    db.session.add_all([op, pt])
    regions = [Region(code=f"R{i:02d}", name=f"Province {i}", min_fit_on_duty=rnd.randint(2, 8)) for i in range(REGIONS)]
    db.session.add_all(regions)
    db.session.flush()
    region_ids = [r.id for r in regions]
    conn = db.session.connection()
    write = _writer(conn)

    n_teams = max(1, n_tech // TEAM_SIZE)
    write(Team.__table__, [{"id": i + 1, "code": f"T{i:05d}", "name": f"Crew {i}", "organisation_id": (pt.id if i % 10 == 0 else op.id),
                            "region_id": region_ids[i % REGIONS]} for i in range(n_teams)])
    team_ids = list(range(1, n_teams + 1))
    team_region = {tid: region_ids[(tid - 1) % REGIONS] for tid in team_ids}
    write(Site.__table__, ({"code": f"S{i:06d}", "name": f"Site {i}", "region_id": region_ids[i % REGIONS], "lat": 8 + rnd.random() * 15,
                            "lon": 102 + rnd.random() * 8, "criticality": rnd.choice(("critical", "high", "normal", "normal")),
                            "status_state": rnd.choices(("up", "degraded", "down"), (90, 6, 4))[0],
                            "status_power": rnd.choices(("grid", "generator", "battery"), (90, 6, 4))[0], "status_access": "open",
                            "status_backup_tx": False, "status_mobile_bts": rnd.random() < 0.01, "status_at": now} for i in range(n_sites)))
    write(User.__table__, ({"id": 1000 + i, "code": f"W{i:05d}", "username": f"w{i:05d}", "display_name": f"Tech {i}", "role": "technician",
                            "team_id": team_ids[i % n_teams], "active": True, "created_at": now} for i in range(n_tech)))
    on_duty = {tid for tid in team_ids if rnd.random() < 0.5}
    write(DutyShift.__table__, ({"team_id": tid, "starts_at": now - timedelta(hours=3), "ends_at": now + timedelta(hours=5), "note": ""}
                                for tid in team_ids if tid in on_duty))
    # one phone per technician, most of them heard from in the last hours, some silent for a day
    write(Device.__table__, ({"id": str(uuid.UUID(int=rnd.getrandbits(128))), "label": f"phone {i}", "public_key": "k" * 43,
                              "token_hash": f"{i:064d}", "user_id": 1000 + i, "team_id": team_ids[i % n_teams],
                              "status": "active" if rnd.random() > 0.02 else "revoked", "enrolled_at": now - timedelta(days=30),
                              "last_contact_at": now - timedelta(minutes=rnd.randint(0, 90) if rnd.random() > 0.1 else rnd.randint(120, 1440)),
                              "accepted_count": 0, "rejected_count": 0} for i in range(n_tech)))
    site_region = {f"S{i:06d}": region_ids[i % REGIONS] for i in range(n_sites)}
    site_codes = list(site_region)

    def checks():
        for i in range(n_checks):
            w = i % max(1, n_tech)
            taken = now - timedelta(minutes=rnd.randint(0, 100 * 1440))
            fit = rnd.random() > 0.05
            yield {"record_id": str(uuid.UUID(int=rnd.getrandbits(128))), "kind": "safety_check", "rev": "x", "field_revs": {},
                   "body": {"worker_id": f"W{w:05d}", "taken_at": taken.isoformat(), "fit_for_duty": fit, "ppe": ["mask"]},
                   "worker_id": f"W{w:05d}", "team_id": team_ids[w % n_teams], "region_id": None,
                   "status": "fit" if fit else "unfit", "occurred_at": taken, "updated_at": now}

    def checkins():
        n_alarm = max(2, int(40 * scale))
        for i in range(n_tech * 5):
            w = i % max(1, n_tech)
            tid = team_ids[w % n_teams]
            recent = tid in on_duty and i < n_tech * 2  # today's check-ins of the on-duty crews
            at = now - (timedelta(minutes=rnd.randint(0, 150)) if recent else timedelta(minutes=rnd.randint(300, 30 * 1440)))
            status = ("sos" if i % 2 else "need_help") if i < n_alarm else "ok"
            if status != "ok":
                at = now - timedelta(minutes=rnd.randint(0, 600))
            yield {"record_id": str(uuid.UUID(int=rnd.getrandbits(128))), "kind": "check_in", "rev": "x", "field_revs": {},
                   "body": {"worker_id": f"W{w:05d}", "status": status, "notes": ""},
                   "worker_id": f"W{w:05d}", "team_id": tid, "region_id": None, "status": status, "occurred_at": at, "updated_at": now}

    def jobs():
        for i in range(n_jobs):
            site = rnd.choice(site_codes)
            reported = now - timedelta(minutes=rnd.randint(0, 365 * 1440))
            status = "closed" if reported < now - timedelta(days=3) else rnd.choice(("reported", "assigned", "acknowledged", "on_site", "restored"))
            steps = {"reported": reported.isoformat()}
            for k, step in enumerate(("acknowledged", "on_site", "restored")):
                if status in ("closed", "restored") or (status == "on_site" and k < 2) or (status == "acknowledged" and k < 1):
                    steps[step] = (reported + timedelta(minutes=rnd.randint(5, 60) * (k + 1))).isoformat()
            team = team_ids[rnd.randrange(n_teams)] if status != "reported" else None
            yield {"record_id": str(uuid.UUID(int=rnd.getrandbits(128))), "kind": "repair_job", "rev": "x", "field_revs": {},
                   "body": {"site_code": site, "status": status, "steps": steps, "title": "fault", "fault_type": "power", "priority": "high"},
                   "site_code": site, "team_id": team, "region_id": site_region[site], "status": status, "occurred_at": reported,
                   "updated_at": now}

    for rows in (checks(), checkins(), jobs()):
        if conn.dialect.name == "postgresql":
            write(RecordState.__table__, rows)
        else:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == CHUNK:
                    write(RecordState.__table__, batch)
                    batch = []
            write(RecordState.__table__, batch)
    if conn.dialect.name == "postgresql":  # ids were given explicitly: move the sequences past them
        for table in ("team", "user_account"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    db.session.commit()
    print(f"data: {n_tech} technicians, {n_sites} sites, {n_checks} safety checks, {n_tech * 5} check-ins, {n_jobs} jobs, "
          f"{n_teams} teams ({len(on_duty)} on duty) in {time.perf_counter() - t:.1f} s")


def _accounts() -> dict:
    from sqlalchemy import select

    from server.extensions import db
    from server.models import User
    from server.services import people

    users = {}
    for key, role, regions in (("super", "supervisor", ["R01"]), ("admin", "admin", [])):
        user = db.session.scalar(select(User).where(User.username == f"bench-{key}"))
        if user is None:
            user = people.create_user(f"bench-{key}", role, None, region_codes=regions)
        users[key] = user
    tokens = {key: people.create_token(user, "bench")[0] for key, user in users.items()}
    for user in users.values():
        user.password_hash = people.hash_password(BENCH_PASSWORD)
    db.session.commit()
    return {**users, "tokens": tokens}


def _time(fn, runs: int) -> tuple[list[float], list[float]]:
    fn()  # warm up
    wall, cpu = [], []
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


def _profile(engine, name, fn) -> None:
    from sqlalchemy import event

    seen = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("fw_t", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        seen.append(((time.perf_counter() - conn.info["fw_t"].pop()) * 1000, " ".join(statement.split())))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        t = time.perf_counter()
        fn()
        total = (time.perf_counter() - t) * 1000
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    in_sql = sum(ms for ms, _ in seen)
    print(f"  profile {name}: {len(seen)} queries, {in_sql:.1f} ms in SQL (cursor) of {total:.1f} ms")
    for ms, sql in sorted(seen, reverse=True)[:6]:
        print(f"    {ms:8.1f} ms  {sql[:150]}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default: SQLite in a temp dir")
    parser.add_argument("--sqlite-path", default=None, help="SQLite file to use; reused when it already holds the data")
    parser.add_argument("--schema", default=None, help="PostgreSQL schema to use (default: a new one)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema afterwards")
    parser.add_argument("--profile", action="store_true", help="print each case's queries, slowest first")
    args = parser.parse_args(argv)

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from server import create_app
    from server.extensions import db
    from server.models import Site
    from server.services import overview
    from server.services.people import Scope

    tmp = tempfile.mkdtemp(prefix="fw-bench-")
    schema = None
    url = f"sqlite:///{os.path.abspath(args.sqlite_path) if args.sqlite_path else tmp + '/bench.db'}"
    if args.database_url:
        schema = args.schema or f"fw_bench_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(args.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    app = create_app({"DATABASE_URL": url, "KEYS_DIR": f"{tmp}/keys", "TESTING": True, "WTF_CSRF_ENABLED": False})
    try:
        with app.app_context():
            t = time.perf_counter()
            upgrade()
            print(f"migrations: {time.perf_counter() - t:.1f} s")
            if db.session.scalar(sa.select(sa.func.count()).select_from(Site)):
                print("data: reusing what is there")
            else:
                _build(args.scale)
            t = time.perf_counter()
            if db.engine.dialect.name == "postgresql":  # what autovacuum does soon after a load: statistics, visibility map
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(sa.text("VACUUM ANALYZE"))
            else:
                with db.engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE"))
            print(f"(VACUUM) ANALYZE: {time.perf_counter() - t:.1f} s")
            made = _accounts()
            gc.collect()
            gc.freeze()  # what gunicorn.conf.py's workers do once the app is loaded: the start-up objects stay out of full collections
            backend = db.engine.dialect.name
            client = app.test_client()
            pages = {}
            for key in ("super", "admin"):  # one signed-in browser each
                pages[key] = app.test_client()
                r = pages[key].post("/dashboard/login", data={"username": f"bench-{key}", "password": BENCH_PASSWORD})
                assert r.status_code == 302, r.status_code

            def page(key):
                r = pages[key].get("/dashboard/")
                assert r.status_code == 200, r.status_code
            cases = [
                ("service, supervisor of 1 region", lambda: overview.overview(Scope.of(made["super"]))),
                ("service, admin, all 63 regions", lambda: overview.overview(Scope.of(made["admin"]))),
                ("GET /api/v1/overview, supervisor", lambda: client.get("/api/v1/overview", headers={"Authorization": f"Bearer {made['tokens']['super']}"})),
                ("GET /api/v1/overview, admin", lambda: client.get("/api/v1/overview", headers={"Authorization": f"Bearer {made['tokens']['admin']}"})),
                ("GET /dashboard/ (page), supervisor", lambda: page("super")),
                ("GET /dashboard/ (page), admin", lambda: page("admin")),
            ]
            print(f"backend: {backend}; {args.runs} runs each; target <= 300 ms")
            for name, fn in cases:
                wall, cpu = _time(fn, args.runs)
                print(f"  {name:<36} median {statistics.median(wall):8.1f} ms   max {max(wall):8.1f} ms   cpu median {statistics.median(cpu):8.1f} ms")
            if args.profile:
                for name, fn in cases[:2]:
                    _profile(db.engine, name, fn)
            db.session.remove()
            db.engine.dispose()
    finally:
        if schema and not args.keep:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        if schema:
            engine.dispose()


if __name__ == "__main__":
    main()
