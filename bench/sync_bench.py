"""Sync benchmark: prints figures, asserts nothing.

A real server under gunicorn with the repository's gunicorn.conf.py (on SQLite, and on PostgreSQL with --pg URL or
FIELDWATCH_TEST_DATABASE_URL), real HTTP, records of about 1 KB sealed like a
phone seals them. Measures:

- push throughput with 1 and with 8 concurrent devices (every record opened,
  verified, validated, merged); the request bodies are sealed, serialised and gzipped before the clock
  starts, as phones make them on their own CPUs (the bench client shares the server's two cores);
- full pull throughput (median of 3 passes, and the first pass); incremental pull latency for 100 new changes (median, p95 of 20, once
  every worker has served a pull);
- server peak memory (largest process: private memory sampled, and VmHWM with mmap'd database pages); bytes on the wire per pushed record;
- the ceiling: records per second one core opens and verifies with no database.

    .venv/bin/python bench/sync_bench.py [--records 20000] [--pg postgresql://...] [--sqlite-only]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.procfs import cpu_seconds, status_kb  # noqa: E402
from shared import crypto, envelope  # noqa: E402
from shared.clock import HybridLogicalClock  # noqa: E402

WORDS = ("generator fuel rectifier battery feeder fibre splice cabinet tower antenna alarm shelter door cooling "
         "transmission microwave link outage restored crew access road flooded landslide checked replaced").split()


WORKERS = 2 * os.cpu_count()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def note(rng: random.Random, size: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < size:
        words.append(rng.choice(WORDS))
    return " ".join(words)


class BenchDevice:
    def __init__(self, url: str, code: str, n: int):
        self.private, public = crypto.generate_signing_keypair()
        r = requests.post(url + "/api/v1/devices/enrol", json={"code": code, "public_key": crypto.b64e(public), "label": f"bench {n}", "app_version": "bench"})
        r.raise_for_status()
        data = r.json()
        self.id, self.token = data["device_id"], data["token"]
        key = next(k for k in data["keys"] if k["current"])
        self.kid, self.box = key["kid"], crypto.b64d(key["box_public"])
        self.clock = HybridLogicalClock(self.id)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def seal_many(self, count: int, rng: random.Random, sites: list[str]) -> list[dict]:
        out = []
        base = datetime.now(timezone(timedelta(hours=7)))
        for i in range(count):
            body = {"schema_version": 1, "site_code": rng.choice(sites), "observed_at": (base - timedelta(seconds=i)).isoformat(timespec="seconds"),
                    "state": rng.choice(["up", "degraded", "down"]), "power_source": rng.choice(["grid", "generator", "battery"]),
                    "backup_transmission": rng.random() < 0.3, "mobile_bts_deployed": rng.random() < 0.05, "access": "open",
                    "cause": note(rng, 60), "notes": note(rng, 650), "reported_by": None}
            header = envelope.make_header(self.kid, self.id, str(uuid.uuid4()), "site_status", str(self.clock.tick()))
            out.append(envelope.seal(header, body, self.private, self.box))
        return out


def setup_database(env: dict, sites_per_region: int = 50) -> list[str]:
    """Migrate, make an org, return enrolment codes (run in a child process with the server's env)."""
    script = """
import json, sys
from datetime import timedelta
from flask_migrate import upgrade
from server import create_app
from server.extensions import db
from server.models import Organisation, Region, Site, Team
from server.services import enrolment
app = create_app()
with app.app_context():
    upgrade()
    op = Organisation(code="OP", name="Operator"); db.session.add(op)
    r = Region(code="HN", name="Ha Noi"); db.session.add(r); db.session.flush()
    db.session.add_all([Site(code=f"HN{i:04d}", name=f"site {i}", region_id=r.id) for i in range(%d)])
    t = Team(code="HN-T1", name="crew", organisation_id=op.id, region_id=r.id); db.session.add(t); db.session.flush()
    codes = [enrolment.create_code("HN-T1", timedelta(hours=2))[0] for _ in range(12)]
    db.session.commit()
    print(json.dumps(codes))
""" % sites_per_region
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_server(env: dict, port: int) -> subprocess.Popen:
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    config = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gunicorn.conf.py")  # the one the README runs
    proc = subprocess.Popen([gunicorn, "-c", config, "-w", str(WORKERS), "-b", f"127.0.0.1:{port}", "--log-level", "warning", "--access-logfile", "/dev/null",
                             "server:create_app()"], env=env)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


class MemoryWatch:
    """Peak memory of the server's processes: the kernel's VmHWM, and the private (anonymous) part, sampled.

    On SQLite the workers read the database through mmap: its pages count into RSS (and VmHWM) although they
    are the OS's page cache, shared and dropped under pressure. The kernel keeps no peak of the private part
    alone, so a thread samples RssAnon every 20 ms.
    """

    def __init__(self, server: subprocess.Popen):
        self.server, self.anon_kb, self._stop = server, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _pids(self) -> list[str]:
        pid = str(self.server.pid)
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:  # no pgrep process every second beside the measurement
                return [pid] + f.read().split()
        except OSError:
            return [pid]

    def _run(self) -> None:
        pids, last = self._pids(), time.monotonic()
        while not self._stop.wait(0.02):
            if time.monotonic() - last > 1:  # gunicorn restarts workers now and then
                pids, last = self._pids(), time.monotonic()
            for pid in pids:
                anon = status_kb(pid, "RssAnon")
                if anon:
                    self.anon_kb = max(self.anon_kb, anon[0])

    def stop(self) -> tuple[float, float]:
        """(largest VmHWM, largest sampled RssAnon) of the server's processes, in MB."""
        self._stop.set()
        self._thread.join()
        peaks = [kb[0] for kb in (status_kb(pid, "VmHWM") for pid in self._pids()) if kb]
        return (max(peaks) / 1024 if peaks else float("nan")), self.anon_kb / 1024


def cpu_by_role(server: subprocess.Popen) -> dict:
    """CPU seconds used so far by the server's processes, the database server's, and this client."""
    workers = subprocess.run(["pgrep", "-P", str(server.pid)], capture_output=True, text=True).stdout.split()
    postgres = subprocess.run(["pgrep", "-x", "postgres"], capture_output=True, text=True).stdout.split()
    client = os.times()
    return {"server": sum(cpu_seconds(p) for p in [str(server.pid)] + workers),
            "database": sum(cpu_seconds(p) for p in postgres), "client": client.user + client.system}


class Wire:
    def __init__(self):
        self.lock = threading.Lock()
        self.bytes = 0

    def add(self, n: int):
        with self.lock:
            self.bytes += n


def request_bodies(items: list[dict], batch: int = 500) -> list[bytes]:
    """Gzip JSON push bodies of ``batch`` items each, as a phone makes them (on its own CPU, before it sends)."""
    return [gzip.compress(json.dumps({"items": items[i:i + batch], "outbox_depth": max(0, len(items) - i - batch)}).encode(), 6)
            for i in range(0, len(items), batch)]


def push_all(url: str, device: BenchDevice, bodies: list[bytes], wire: Wire) -> None:
    with requests.Session() as s:
        for body in bodies:
            r = s.post(url + "/api/v1/sync/push", data=body, headers={**device.headers, "Content-Type": "application/json", "Content-Encoding": "gzip"})
            r.raise_for_status()
            statuses = {x["status"] for x in r.json()["results"]}
            assert statuses == {"accepted"}, statuses
            response_bytes = int(r.headers.get("Content-Length") or len(r.content))
            wire.add(len(body) + response_bytes + 300)  # 300: request and response headers, roughly


def full_pull(url: str, reader: BenchDevice, accept_encoding: str) -> tuple[float, int, int]:
    """(records per second, records, final cursor) of pulling everything in pages of 5,000."""
    total, cursor, t0 = 0, 0, time.perf_counter()
    with requests.Session() as s:
        while True:
            r = s.get(url + "/api/v1/sync/pull", params={"cursor": cursor, "limit": 5000}, headers={**reader.headers, "Accept-Encoding": accept_encoding})
            assert r.headers.get("Content-Encoding") in (accept_encoding.split(",")[0], None), r.headers.get("Content-Encoding")  # None: a small page
            page = r.json()
            total += len(page["changes"])
            cursor = page["next_cursor"]
            if not page["has_more"]:
                return total / (time.perf_counter() - t0), total, cursor


def run_backend(name: str, database_url: str, records: int, tmp: str) -> dict:
    env = {**os.environ, "FIELDWATCH_DATABASE_URL": database_url, "FIELDWATCH_KEYS_DIR": os.path.join(tmp, "keys"),
           "FIELDWATCH_MAX_PAGE_SIZE": "5000"}
    codes = setup_database(env)
    port = free_port()
    server = start_server(env, port)
    memory = MemoryWatch(server)
    url = f"http://127.0.0.1:{port}"
    rng = random.Random(7)
    sites = [f"HN{i:04d}" for i in range(50)]
    result = {"backend": name}
    try:
        devices = [BenchDevice(url, codes[i], i) for i in range(10)]
        # 1 device
        bodies = request_bodies(devices[0].seal_many(records, rng, sites))
        wire = Wire()
        t0 = time.perf_counter()
        push_all(url, devices[0], bodies, wire)
        result["push_1_device_rps"] = records / (time.perf_counter() - t0)
        result["wire_bytes_per_record"] = wire.bytes / records
        # 8 devices at once
        per = records // 8
        batches = [(d, request_bodies(d.seal_many(per, rng, sites))) for d in devices[1:9]]
        wire8 = Wire()
        threads = [threading.Thread(target=push_all, args=(url, d, its, wire8)) for d, its in batches]
        cpu0, t0 = cpu_by_role(server), time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        result["push_8_devices_rps"] = per * 8 / (time.perf_counter() - t0)
        cpu1 = cpu_by_role(server)
        result["push_cpu_us"] = {role: (cpu1[role] - cpu0[role]) / (per * 8) * 1e6 for role in cpu0}
        # full pull by a device that sees every site status of the region: zstd answers (what requests asks for
        # when backports.zstd is installed, as the CLI device does), then gzip only (a phone without zstd)
        # Steady state: the median of 3 passes; the first pass, on workers that have served only pushes,
        # is printed beside it.
        reader = devices[9]
        for label, encoding in (("zstd", "zstd, gzip"), ("gzip", "gzip")):
            passes = [full_pull(url, reader, encoding) for _ in range(4)]
            result[f"full_pull_first_{label}"] = passes[0][0]
            result[f"full_pull_rps_{label}"] = statistics.median(p[0] for p in passes[1:])
            _, result["full_pull_records"], cursor = passes[-1]
        with requests.Session() as s:
            # incremental: 100 new changes, then one pull from the last cursor. Steady state: first a few
            # pulls so that every worker process has compiled its statements once (a fresh worker's first
            # pull pays that, a few ms, once).
            for _ in range(3 * WORKERS):
                s.get(url + "/api/v1/sync/pull", params={"cursor": cursor, "limit": 500}, headers=reader.headers).raise_for_status()
            latencies = []
            for _ in range(20):
                push_all(url, devices[1], request_bodies(devices[1].seal_many(100, rng, sites)), Wire())
                t0 = time.perf_counter()
                page = s.get(url + "/api/v1/sync/pull", params={"cursor": cursor, "limit": 500}, headers=reader.headers).json()
                latencies.append((time.perf_counter() - t0) * 1000)
                assert len(page["changes"]) == 100, len(page["changes"])
                cursor = page["next_cursor"]
        latencies.sort()
        result["incremental_pull_ms_median"] = statistics.median(latencies)
        result["incremental_pull_ms_p95"] = latencies[int(len(latencies) * 0.95) - 1]
        result["server_peak_worker_mb"] = memory.stop()
    finally:
        server.terminate()
        server.wait(10)
    return result


def crypto_ceiling(n: int = 3000) -> float:
    """Records per second one core can open and verify (no database, no HTTP)."""
    private, public = crypto.generate_signing_keypair()
    box_private, box_public = crypto.generate_box_keypair()
    rng = random.Random(1)
    clock = HybridLogicalClock("dev")
    items = []
    for i in range(n):
        body = {"schema_version": 1, "notes": note(rng, 650), "cause": note(rng, 60), "site_code": "HN0001", "state": "down"}
        items.append(envelope.seal(envelope.make_header("k1", "dev", str(uuid.uuid4()), "site_status", str(clock.tick())), body, private, box_public))
    ring = {"k1": box_private}
    t0 = time.perf_counter()
    for item in items:
        envelope.verify_signature(envelope.open_envelope(item, ring), public)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--pg", default=os.environ.get("FIELDWATCH_TEST_DATABASE_URL"))
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    ceiling = crypto_ceiling()
    print(f"crypto ceiling (one core, open + verify, no DB): {ceiling:,.0f} records/s")
    tmp = tempfile.mkdtemp(prefix="fw-bench-")
    results = []
    try:
        results.append(run_backend("sqlite", f"sqlite:///{tmp}/bench.db", args.records, tmp))
        if args.pg and not args.sqlite_only:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            import sqlalchemy as sa
            engine = sa.create_engine(args.pg.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as c:
                c.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            sep = "&" if "?" in args.pg else "?"
            try:
                results.append(run_backend("postgresql", f"{args.pg}{sep}options=-csearch_path%3D{schema}", args.records, tmp))
            finally:
                with engine.begin() as c:
                    c.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in results:
        print(f"\n== {r['backend']} ({args.records} records of ~1 KB, gunicorn, {WORKERS} sync workers) ==")
        print(f"push, 1 device:            {r['push_1_device_rps']:,.0f} records/s")
        print(f"push, 8 devices:           {r['push_8_devices_rps']:,.0f} records/s  ({r['push_8_devices_rps'] / ceiling:.0%} of the crypto ceiling)")
        cpu = r["push_cpu_us"]
        print(f"  CPU per pushed record:   server {cpu['server']:.0f} µs, database {cpu['database']:.0f} µs, bench client {cpu['client']:.0f} µs")
        print(f"full pull:                 {r['full_pull_rps_zstd']:,.0f} records/s with zstd answers, {r['full_pull_rps_gzip']:,.0f} with gzip "
              f"({r['full_pull_records']} records, median of 3; first pass {r['full_pull_first_zstd']:,.0f} / {r['full_pull_first_gzip']:,.0f})")
        print(f"incremental pull (100):    median {r['incremental_pull_ms_median']:.1f} ms, p95 {r['incremental_pull_ms_p95']:.1f} ms")
        peak, private = r["server_peak_worker_mb"]
        print(f"server peak memory:        {private:.0f} MB private (largest process, sampled); {peak:.0f} MB VmHWM with mapped database pages")
        print(f"bytes on the wire/record:  {r['wire_bytes_per_record']:.0f} (request + answer: gzip request, zstd answer)")


if __name__ == "__main__":
    main()
