"""Benchmark of the overview (service and JSON), printed, not asserted (issue 5).

Full size: 10,000 technicians, 100,000 sites, 1,000,000 safety checks,
200,000 repair jobs. ``--scale 0.1`` makes a tenth of that. Data is written
straight into the tables (bulk inserts), not through sync: this measures
reading, not pushing.

    .venv/bin/python bench/overview_bench.py                      # SQLite in a temp dir, full size
    .venv/bin/python bench/overview_bench.py --scale 0.1
    .venv/bin/python bench/overview_bench.py --database-url postgresql://postgres@127.0.0.1:5432/test

On PostgreSQL it works in a schema of its own and drops it afterwards.
Target: <= 300 ms server time per overview.
"""
from __future__ import annotations

import argparse
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


def _build(scale: float, seed: int = 7) -> dict:
    from sqlalchemy import insert

    from server.extensions import db
    from server.models import DutyShift, Organisation, RecordState, Region, Site, Team, User
    from server.services import people

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

    def bulk(model, rows):
        for start in range(0, len(rows), 20_000):
            db.session.execute(insert(model), rows[start:start + 20_000])

    n_teams = max(1, n_tech // TEAM_SIZE)
    bulk(Team, [{"code": f"T{i:05d}", "name": f"Crew {i}", "organisation_id": (pt.id if i % 10 == 0 else op.id),
                 "region_id": region_ids[i % REGIONS]} for i in range(n_teams)])
    teams = {tid: rid for tid, rid in db.session.execute(db.select(Team.id, Team.region_id))}
    team_ids = list(teams)
    bulk(Site, [{"code": f"S{i:06d}", "name": f"Site {i}", "region_id": region_ids[i % REGIONS], "lat": 8 + rnd.random() * 15,
                 "lon": 102 + rnd.random() * 8, "criticality": rnd.choice(("critical", "high", "normal", "normal")),
                 "status_state": rnd.choices(("up", "degraded", "down"), (90, 6, 4))[0],
                 "status_power": rnd.choices(("grid", "generator", "battery"), (90, 6, 4))[0], "status_access": "open",
                 "status_backup_tx": False, "status_mobile_bts": rnd.random() < 0.01, "status_at": now} for i in range(n_sites)])
    bulk(User, [{"code": f"W{i:05d}", "username": f"w{i:05d}", "display_name": f"Tech {i}", "role": "technician",
                 "team_id": team_ids[i % n_teams], "active": True, "created_at": now} for i in range(n_tech)])
    bulk(DutyShift, [{"team_id": tid, "starts_at": now - timedelta(hours=3), "ends_at": now + timedelta(hours=5), "note": ""}
                     for tid in team_ids if rnd.random() < 0.5])
    site_region = {f"S{i:06d}": region_ids[i % REGIONS] for i in range(n_sites)}
    site_codes = list(site_region)
    checks = []
    for i in range(n_checks):
        w = i % max(1, n_tech)
        taken = now - timedelta(minutes=rnd.randint(0, 100 * 1440))
        fit = rnd.random() > 0.05
        checks.append({"record_id": str(uuid.uuid4()), "kind": "safety_check", "rev": "x", "field_revs": {},
                       "body": {"worker_id": f"W{w:05d}", "taken_at": taken.isoformat(), "fit_for_duty": fit, "ppe": ["mask"]},
                       "worker_id": f"W{w:05d}", "team_id": team_ids[w % n_teams], "region_id": None,
                       "status": "fit" if fit else "unfit", "occurred_at": taken, "updated_at": now})
        if len(checks) == 20_000:
            bulk(RecordState, checks)
            checks = []
    bulk(RecordState, checks)
    jobs = []
    for i in range(n_jobs):
        site = rnd.choice(site_codes)
        reported = now - timedelta(minutes=rnd.randint(0, 365 * 1440))
        status = "closed" if reported < now - timedelta(days=3) else rnd.choice(("reported", "assigned", "acknowledged", "on_site", "restored"))
        steps = {"reported": reported.isoformat()}
        for k, step in enumerate(("acknowledged", "on_site", "restored")):
            if status in ("closed", "restored") or (status == "on_site" and k < 2) or (status == "acknowledged" and k < 1):
                steps[step] = (reported + timedelta(minutes=rnd.randint(5, 60) * (k + 1))).isoformat()
        team = team_ids[rnd.randrange(n_teams)] if status != "reported" else None
        jobs.append({"record_id": str(uuid.uuid4()), "kind": "repair_job", "rev": "x", "field_revs": {},
                     "body": {"site_code": site, "status": status, "steps": steps, "title": "fault", "fault_type": "power", "priority": "high"},
                     "site_code": site, "team_id": team, "region_id": site_region[site], "status": status, "occurred_at": reported,
                     "updated_at": now})
        if len(jobs) == 20_000:
            bulk(RecordState, jobs)
            jobs = []
    bulk(RecordState, jobs)
    sup = people.create_user("bench-super", "supervisor", None, region_codes=["R01"])
    admin = people.create_user("bench-admin", "admin", None)
    sup_token, _ = people.create_token(sup, "bench")
    admin_token, _ = people.create_token(admin, "bench")
    db.session.commit()
    print(f"data: {n_tech} technicians, {n_sites} sites, {n_checks} safety checks, {n_jobs} jobs, {n_teams} teams "
          f"in {time.perf_counter() - t:.1f} s")
    return {"super": sup, "admin": admin, "tokens": {"super": sup_token, "admin": admin_token}}


def _time(fn, runs: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="PostgreSQL URL; default: SQLite in a temp dir")
    args = parser.parse_args(argv)

    import sqlalchemy as sa
    from flask_migrate import upgrade

    from server import create_app
    from server.extensions import db
    from server.services import overview
    from server.services.people import Scope

    tmp = tempfile.mkdtemp(prefix="fw-bench-")
    schema = None
    url = f"sqlite:///{tmp}/bench.db"
    if args.database_url:
        schema = f"fw_bench_{uuid.uuid4().hex[:8]}"
        engine = sa.create_engine(args.database_url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        sep = "&" if "?" in args.database_url else "?"
        url = f"{args.database_url}{sep}options=-csearch_path%3D{schema}"
    app = create_app({"DATABASE_URL": url, "KEYS_DIR": f"{tmp}/keys", "TESTING": True})
    try:
        with app.app_context():
            upgrade()
            made = _build(args.scale)
            if db.engine.dialect.name == "postgresql":
                with db.engine.begin() as conn:
                    conn.execute(sa.text("ANALYZE"))
            backend = db.engine.dialect.name
            client = app.test_client()
            cases = [
                ("service, supervisor of 1 region", lambda: overview.overview(Scope.of(made["super"]))),
                ("service, admin, all 63 regions", lambda: overview.overview(Scope.of(made["admin"]))),
                ("GET /api/v1/overview, supervisor", lambda: client.get("/api/v1/overview", headers={"Authorization": f"Bearer {made['tokens']['super']}"})),
                ("GET /api/v1/overview, admin", lambda: client.get("/api/v1/overview", headers={"Authorization": f"Bearer {made['tokens']['admin']}"})),
            ]
            print(f"backend: {backend}; {args.runs} runs each; target <= 300 ms")
            for name, fn in cases:
                ms = _time(fn, args.runs)
                print(f"  {name:<36} median {statistics.median(ms):8.1f} ms   max {max(ms):8.1f} ms")
            db.session.remove()
            db.engine.dispose()
    finally:
        if schema:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()


if __name__ == "__main__":
    main()
