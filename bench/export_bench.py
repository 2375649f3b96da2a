"""Export benchmark: N safety checks exported to CSV and JSON Lines, then verified. Printed, not asserted.

    .venv/bin/python bench/export_bench.py                 # 1,000,000 rows on SQLite
    .venv/bin/python bench/export_bench.py --rows 200000 --pg postgresql://postgres@127.0.0.1:5432/test

PostgreSQL runs too when ``--pg URL`` or FIELDWATCH_TEST_DATABASE_URL is given (in a schema of its own,
dropped afterwards). Each export and each verification runs in a fresh process, so its peak memory
(ru_maxrss) is its own; "growth" is the peak minus the process's size before the export started.
Targets (issue 6): >= 50,000 rows/s exported, >= 20,000 records/s verified, peak memory <= 200 MB.
``--repeat N`` runs each export and verification N times and prints the median (and every run). Beside the
wall-clock rate it prints the CPU time per row of the process and its worker processes (and, on PostgreSQL,
of the database server process that streams the rows), which another load on the machine changes much
less; the load average is printed with each figure.

The rows are made with Core bulk inserts of pre-made revisions: real Ed25519 signatures by 20
enrolled-style devices over salted per-field digests (so verify-export checks real signatures),
health fields encrypted at rest and the disclosure proof kept, like a push stores them.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from bench.procfs import cpu_seconds, status_kb  # noqa: E402

TZ = timezone(timedelta(hours=7))
START = datetime(2026, 11, 1, 6, 0, tzinfo=TZ)


def _status_mb(key: str) -> float | None:
    kb = status_kb("self", key)
    return kb[0] / 1024 if kb else None


def _rss_mb() -> float:
    """Resident size now (Linux), else the peak so far."""
    now = _status_mb("VmRSS")
    return now if now is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    # ru_maxrss survives exec (it would report the parent's peak): reset the kernel's high-water mark instead
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    """CPU seconds (user + system) of this process and of its children that have ended (worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --- making rows -------------------------------------------------------------------------

def ensure_org():
    """A minimal organisation when the database has none (the tests bring their own)."""
    from server.extensions import db
    from server.models import Organisation, Region, Site, Team, User

    if db.session.query(Team).first() is not None:
        return
    op = Organisation(code="OP", name="Operator", is_partner=False)
    regions = [Region(code=c, name=c, province=c, min_fit_on_duty=2) for c in ("HN", "HP", "DN", "HCM")]
    db.session.add_all([op] + regions)
    db.session.flush()
    for r in regions:
        db.session.add_all([Site(code=f"{r.code}{i:03d}", name=f"{r.code} {i}", region_id=r.id) for i in range(1, 11)])
        db.session.add(Team(code=f"{r.code}-T1", name=f"{r.code} crew", organisation_id=op.id, region_id=r.id))
    db.session.flush()
    teams = db.session.query(Team).all()
    for i in range(40):
        db.session.add(User(code=f"W{i + 1:03d}", username=f"tech{i + 1}", display_name=f"Tech {i + 1}", role="technician",
                            team_id=teams[i % len(teams)].id))
    db.session.commit()


def _sign_chunk(args):
    """Worker: signatures for a chunk of (device index, header, digests)."""
    from shared import crypto, envelope

    privates, items = args
    return [crypto.b64e(crypto.sign(privates[d], envelope.signed_message(h, g))) for d, h, g in items]


def seed_revisions(n: int, *, signed: bool = True, devices: int = 20, chunk: int = 5000, workers: int | None = None,
                   progress=None) -> dict:
    """Insert ``n`` safety-check revisions (and their change rows) with Core bulk inserts. Returns device keys.

    Bench data: every revision has its own record id, worker, time and signature; the field-salt
    secret is shared (a phone makes a new one per revision) so digests can be cached. With
    ``signed=False`` signatures are random bytes (fast; for memory tests only).
    """
    from multiprocessing import Pool

    from sqlalchemy import insert, select

    from server.extensions import db
    from server.models import Change, Device, Site, Team, User
    from server.models.record import Revision
    from server.services import records
    from server.services.keys import keyring
    from shared import crypto, envelope
    from shared.canonical import canonical_json, sha256_hex

    ensure_org()
    ring = keyring()
    teams = list(db.session.execute(select(Team.id, Team.region_id)).all())
    workers_by_team = {}
    for code, team_id in db.session.execute(select(User.code, User.team_id).where(User.role == "technician")):
        workers_by_team.setdefault(team_id, []).append(code)
    sites_by_region = {}
    for code, region_id in db.session.execute(select(Site.code, Site.region_id)):
        sites_by_region.setdefault(region_id, []).append(code)
    devs = []
    for i in range(devices):
        private, public = crypto.generate_signing_keypair()
        team_id, region_id = teams[i % len(teams)]
        device_id = str(uuid.uuid4())
        db.session.add(Device(id=device_id, label=f"bench phone {i}", public_key=crypto.b64e(public),
                              token_hash=sha256_hex(device_id.encode()), team_id=team_id))
        devs.append((device_id, private, team_id, region_id, workers_by_team.get(team_id) or ["W001"],
                     sites_by_region.get(region_id) or [None]))
    db.session.commit()

    secret = b"bench-secret-16b"
    secret_b64 = crypto.b64e(secret)
    salts: dict[str, bytes] = {}
    digest_cache: dict[tuple, str] = {}

    def digest(name, value):
        key = (name, canonical_json(value))
        d = digest_cache.get(key)
        if d is None:
            salt = salts.get(name) or salts.setdefault(name, envelope.field_salt(secret, name))
            d = digest_cache[key] = sha256_hex(salt + key[1])
        return d

    health_variants = [
        {"temperature_c": 36.6, "symptoms": [], "exposure": "none", "notes": ""},
        {"temperature_c": 36.9, "symptoms": [], "exposure": "none", "notes": ""},
        {"temperature_c": 38.4, "symptoms": ["fever", "cough"], "exposure": "suspected_contact", "notes": "sent home"},
    ]
    blobs = [ring.encrypt_health(json.dumps(h, separators=(",", ":")).encode()) for h in health_variants]
    privates = [d[1] for d in devs]
    pool = Pool(workers or os.cpu_count() or 1) if signed else None
    made = 0
    try:
        while made < n:
            size = min(chunk, n - made)
            rows, changes, to_sign = [], [], []
            for j in range(made, made + size):
                d = j % len(devs)
                device_id, _private, team_id, region_id, crew, sites = devs[d]
                at = START + timedelta(seconds=(j * 7) % (29 * 86400))
                hv = j % 97 == 0 and 2 or j % 2
                body = {"schema_version": 1, "worker_id": crew[j % len(crew)], "taken_at": at.isoformat(), "ppe": ["mask", "gloves"],
                        "site_code": sites[j % len(sites)], "in_quarantine_area": False, "fit_for_duty": hv != 2, "position": None}
                full = {**body, **health_variants[hv]}
                rid = str(uuid.UUID(int=j + 1))
                rev = f"{int(at.timestamp() * 1000):013d}-0000-{device_id[:8]}"
                header = {"v": 1, "dev": device_id, "rid": rid, "kind": "safety_check", "rev": rev}
                digests = {k: digest(k, v) for k, v in full.items()}
                if signed:
                    to_sign.append((d, header, digests))
                key_id, blob = blobs[hv]
                rows.append({"record_id": rid, "rev": rev, "kind": "safety_check", "device_id": device_id, "envelope": None,
                             "envelope_hash": None, "content_hash": sha256_hex(envelope.signed_message(header, digests)),
                             "body": body, "health": blob, "health_key_id": key_id, "secret": secret_b64,
                             "signature": None if signed else crypto.b64e(os.urandom(64)), "worker_id": body["worker_id"],
                             "proof": records.disclosure_proof("safety_check", {k: salts[k] for k in full}, digests),
                             "occurred_at": records.occurred_at("safety_check", body), "received_at": at + timedelta(minutes=3)})
                changes.append({"record_id": rid, "rev": rev, "kind": "safety_check", "worker_id": body["worker_id"],
                                "team_id": team_id, "region_id": region_id, "created_at": at + timedelta(minutes=3)})
            if signed:
                parts = [to_sign[i:i + 500] for i in range(0, len(to_sign), 500)]
                sigs = [s for part in pool.map(_sign_chunk, [(privates, p) for p in parts]) for s in part]
                for row, sig in zip(rows, sigs):
                    row["signature"] = sig
            ids = db.session.execute(insert(Revision).returning(Revision.id, sort_by_parameter_order=True), rows).scalars().all()
            for c, revision_id in zip(changes, ids):
                c["revision_id"] = revision_id
            db.session.execute(insert(Change), changes)
            db.session.commit()
            made += size
            if progress:
                progress(size)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return {d[0]: crypto.b64e(crypto.signing_public_key(d[1])) for d in devs}


# --- one measured run, in a process of its own -----------------------------------------------------

def child(argv: list[str]) -> None:
    """``--child export URL KEYS FORMAT OUT`` or ``--child verify BUNDLE``: prints one JSON line."""
    mode = argv[0]
    if mode == "verify":
        from shared import export_verify

        before = _rss_mb()
        _reset_peak()
        cpu0, t0 = _cpu_s(), time.perf_counter()
        result = export_verify.verify_bundle(argv[1], None)
        seconds = time.perf_counter() - t0
        print(json.dumps({"records": result.records, "ok": result.ok, "problems": [str(p) for p in result.problems[:3]],
                          "seconds": seconds, "cpu_s": _cpu_s() - cpu0, "rss_before_mb": before, "rss_peak_mb": _peak_mb()}))
        return
    _, url, keys_dir, fmt_name, out = argv[:5]
    from server import create_app
    from server.services import exports
    from server.extensions import db
    from sqlalchemy import text

    app = create_app({"DATABASE_URL": url, "KEYS_DIR": keys_dir})
    with app.app_context():
        backend = db.session.execute(text("SELECT pg_backend_pid()" if db.engine.dialect.name == "postgresql" else "SELECT 0")).scalar()
        db.session.rollback()
        filt = exports.ExportFilter.parse("2026-11-01", "2026-11-30", kinds="safety_check")
        before = _rss_mb()
        _reset_peak()
        cpu0, db0, t0 = _cpu_s(), cpu_seconds(backend), time.perf_counter()
        summary = exports.write_bundle(filt, exports.Exporter.command_line(), fmt_name, out)
        seconds = time.perf_counter() - t0
        print(json.dumps({"records": summary.records, "seconds": seconds, "cpu_s": _cpu_s() - cpu0, "db_cpu_s": cpu_seconds(backend) - db0, "rss_before_mb": before, "rss_peak_mb": _peak_mb(),
                          "bytes": sum(f["bytes"] for f in summary.files.values())}))


def run_child(*args: str) -> dict:
    # The writes of the phase before (gigabytes of freshly inserted database, the bundle before) reach the disk
    # first: the kernel's writeback of them would otherwise throttle this run's own writes.
    os.sync()
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", *args], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


# --- the benchmark ----------------------------------------------------------------------------

def _backend(name: str, url: str, keys_dir: str, rows: int, workdir: str, repeat: int = 1) -> None:
    from flask_migrate import upgrade
    from tqdm import tqdm

    from server import create_app

    app = create_app({"DATABASE_URL": url, "KEYS_DIR": keys_dir})
    with app.app_context():
        upgrade(directory=os.path.join(ROOT, "migrations"))
        t0 = time.perf_counter()
        with tqdm(total=rows, unit="row", desc=f"{name}: insert", file=sys.stderr) as bar:
            seed_revisions(rows, progress=bar.update)
        insert_s = time.perf_counter() - t0
        from server.extensions import db

        db.engine.dispose()
    print(f"\n{name}: {rows:,} signed safety checks inserted in {insert_s:.1f} s")
    for fmt_name in ("csv", "jsonl"):
        out = os.path.join(workdir, f"{name}-{fmt_name}")
        runs = []
        for i in range(repeat):
            if i:
                shutil.rmtree(out, ignore_errors=True)
            runs.append({**run_child("export", url, keys_dir, fmt_name, out), "load": os.getloadavg()[0]})
        m = _median(runs)
        print(f"{name:10} export {fmt_name:5}: {m['records']:,} rows in {m['seconds']:.2f} s = {m['records'] / m['seconds']:,.0f} rows/s"
              f"{_spread(runs)}; CPU {m['cpu_s'] / m['records'] * 1e6:.1f} µs/row (all processes)"
              + (f" + {m['db_cpu_s'] / m['records'] * 1e6:.1f} µs in the database server" if m["db_cpu_s"] else "")
              + f"; peak RSS {m['rss_peak_mb']:.0f} MB (growth {m['rss_peak_mb'] - m['rss_before_mb']:.0f} MB); "
              f"bundle {m['bytes'] / 1e6:.0f} MB; load {m['load']:.1f}")
        runs = [{**run_child("verify", out), "load": os.getloadavg()[0]} for _ in range(repeat)]
        v = _median(runs)
        print(f"{name:10} verify {fmt_name:5}: {v['records']:,} records in {v['seconds']:.2f} s = {v['records'] / v['seconds']:,.0f} records/s"
              f"{_spread(runs)}; CPU {v['cpu_s'] / v['records'] * 1e6:.1f} µs/record (all processes); "
              f"peak RSS {v['rss_peak_mb']:.0f} MB in the main process ({os.cpu_count()} processes check); "
              f"load {v['load']:.1f}; ok={v['ok']} {v['problems']}")


def verify_cost_us(n: int = 3000) -> float:
    """One Ed25519 verification here, in µs: this machine's speed at the time, to compare runs on machines (or
    moments) of different speed (verify-export is mostly this)."""
    from shared import crypto

    private, public = crypto.generate_signing_keypair()
    message = b"x" * 300
    signature = crypto.sign(private, message)
    t0 = time.perf_counter()
    for _ in range(n):
        crypto.verify(public, signature, message)
    return (time.perf_counter() - t0) / n * 1e6


def _median(runs: list[dict]) -> dict:
    """The run with the median time."""
    return sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]


def _spread(runs: list[dict]) -> str:
    if len(runs) < 2:
        return ""
    return f" (median of {len(runs)}: " + ", ".join(f"{r['records'] / r['seconds']:,.0f}" for r in runs) + ")"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--pg", default=os.environ.get("FIELDWATCH_TEST_DATABASE_URL"), help="PostgreSQL URL (also from FIELDWATCH_TEST_DATABASE_URL)")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--workdir", default=None, help="where databases and bundles go (default: a temporary folder, removed)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each export and verification; the median is printed")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="fw-export-bench-")
    os.makedirs(workdir, exist_ok=True)
    keys_dir = os.path.join(workdir, "keys")
    from server.services.keys import init_keys

    init_keys(keys_dir)
    print(f"export benchmark: {args.rows:,} rows, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
          f"Ed25519 verify {verify_cost_us():.0f} µs, work in {workdir}")
    try:
        if not args.no_sqlite:
            _backend("sqlite", f"sqlite:///{os.path.join(workdir, 'bench.db')}", keys_dir, args.rows, workdir, args.repeat)
        if args.pg:
            import sqlalchemy as sa

            schema = f"fw_bench_{uuid.uuid4().hex[:8]}"
            base = args.pg.replace("postgresql://", "postgresql+psycopg://", 1)
            engine = sa.create_engine(base)
            with engine.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.pg else "?"
            try:
                _backend("postgresql", f"{args.pg}{sep}options=-csearch_path%3D{schema}", keys_dir, args.rows, workdir, args.repeat)
            finally:
                with engine.begin() as conn:
                    conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                engine.dispose()
    finally:
        print(f"Ed25519 verify at the end: {verify_cost_us():.0f} µs")
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
