"""Device benchmark (printed, not asserted).

1. Save one record on the device (validate with the shared schema, seal, store
   the readable copy and the envelope in one SQLite transaction): median and
   p95 over ``--saves`` records, plus the median of each stage. Target: median <= 5 ms.
   Runs offline: the device is given a local server key pair, as if enrolled.
2. Sync ``--records`` queued records end to end (push in batches, then pull
   them back) against a server: ``--server URL --code CODE``, or else a local
   server started in a temporary directory. Target: 1,000 records <= 2 s.

    python bench/device_bench.py [--saves 500] [--records 1000] [--server URL --code CODE] [--no-sync]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from shared import crypto, schemas  # noqa: E402
from shared.envelope import make_header, seal  # noqa: E402

from mobile.core.config import DeviceSettings  # noqa: E402
from mobile.core.services import Device  # noqa: E402

PIN = "2468"


def offline_device(data_dir: Path, synchronous: str = "FULL") -> Device:
    """A device that looks enrolled (pinned local server key), for timing saves without a network."""
    device = Device(DeviceSettings(data_dir=data_dir, synchronous=synchronous))
    device.keystore.create(PIN)
    _, box_public = crypto.generate_box_keypair()
    _, sign_public = crypto.generate_signing_keypair()
    device.pins.pin_initial([{"kid": "bench", "box_public": crypto.b64e(box_public), "sign_public": crypto.b64e(sign_public),
                              "created_at": "2026-01-01T00:00:00+00:00", "current": True, "endorsement": None}])
    device.store.set_many_meta({"device_id": "bench-device", "worker_id": "W-BENCH", "team_id": "T-BENCH",
                                "server_url": "http://unused.invalid", "settings": {}, "region_codes": []})
    return device


def _record(device: Device, n: int) -> None:
    if n % 3 == 0:
        device.record_safety_check(36.6, ppe=["mask"], notes="ok")
    elif n % 3 == 1:
        device.record_check_in("ok", position={"lat": 21.0, "lon": 105.8})
    else:
        device.record_site_status("HN001", "degraded", power_source="generator", cause="grid outage")


def bench_saves(count: int, synchronous: str) -> None:
    """Print the median save time and the median of each stage."""
    with tempfile.TemporaryDirectory() as tmp:
        device = offline_device(Path(tmp) / "device", synchronous)
        for n in range(20):  # warm-up: imports, schema instances, SQLite pages
            _record(device, n)
        times = []
        for n in range(count):
            started = time.perf_counter()
            _record(device, n)
            times.append(time.perf_counter() - started)
        stages = _stage_times(device, min(count, 300))
        device.close()
    times.sort()
    print(f"save one record (validate + seal + store), {count} records, SQLite synchronous={synchronous}:")
    print(f"  median {statistics.median(times) * 1000:.2f} ms   p95 {times[int(len(times) * 0.95)] * 1000:.2f} ms"
          f"   (target: median <= 5 ms)")
    print("  stages (median): " + "   ".join(f"{k} {v * 1000:.2f} ms" for k, v in stages.items()))


def _stage_times(device: Device, count: int) -> dict:
    """Median of each stage of a save, measured one by one on check-in bodies."""
    keys, key = device.keystore.keys, device.pins.current()
    box = crypto.b64d(key["box_public"])
    body = {"schema_version": 1, "worker_id": "W-BENCH", "at": "2026-11-26T08:00:00+07:00", "site_code": "HN001",
            "status": "ok", "position": {"lat": 21.0, "lon": 105.8}, "notes": ""}
    validate, sealing, store = [], [], []
    for _ in range(count):
        t0 = time.perf_counter()
        schemas.record_errors("check_in", body)
        t1 = time.perf_counter()
        header = make_header(key["kid"], "bench-device", str(uuid.uuid4()), "check_in", f"{int(t1 * 1000):013d}-0000-bench")
        seal(header, body, keys.device_private, box)
        t2 = time.perf_counter()
        device.record_check_in("ok", site_code="HN001", position={"lat": 21.0, "lon": 105.8})
        t3 = time.perf_counter()
        validate.append(t1 - t0)
        sealing.append(t2 - t1)
        store.append(t3 - t2)
    store_only = statistics.median(store) - statistics.median(validate) - statistics.median(sealing)
    return {"validate": statistics.median(validate), "seal": statistics.median(sealing),
            "store+commit (fsync)": max(0.0, store_only)}


def bench_sync(records: int, server_url: str | None, code: str | None) -> None:
    """Queue ``records`` records offline, then time one sync of all of them."""
    import requests

    server = None
    if not server_url:
        server, server_url, code = _start_local_server()
        if server is None:
            print("sync: no --server given and no local server could be started; skipped")
            return
    try:
        with tempfile.TemporaryDirectory() as tmp:
            device = Device(DeviceSettings(data_dir=Path(tmp) / "device", scrypt_n=2**10), session=requests.Session())
            device.enrol(server_url, code, "device bench", PIN)
            device.sync_now()
            for n in range(records):
                _record(device, n)
            started = time.perf_counter()
            result = device.sync_now()
            elapsed = time.perf_counter() - started
            device.close()
        status = "ok" if result.ok else f"FAILED: {result.error.reason}: {result.error.message}"
        print(f"sync {records} queued records end to end ({server_url}): {elapsed:.2f} s   (target: 1,000 <= 2 s) [{status}]")
        print(f"  push {result.push_s:.2f} s in {result.batches} batch(es): {result.accepted} accepted, "
              f"{result.duplicate} duplicate, {result.rejected} rejected;  pull {result.pull_s:.2f} s "
              f"({result.pulled} changes, {result.pages} page(s))")
    finally:
        if server is not None:
            server.stop()


def _start_local_server():
    """A server in a temporary directory (same helper as the end-to-end tests)."""
    try:
        sys.path.insert(0, str(REPO / "tests" / "mobile" / "core"))
        from realserver import RealServer  # noqa: E402
    except ImportError as exc:
        print(f"(cannot start a local server: {exc})")
        return None, None, None
    import logging

    logging.getLogger("alembic").setLevel(logging.WARNING)
    server = RealServer(Path(tempfile.mkdtemp(prefix="fieldwatch-bench-")))
    server.prepare()
    server.start()
    return server, server.url, server.new_codes(1, "W001")[0]


def main() -> None:
    """Run the benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=500)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--server", help="a running server's address (else a local one is started)")
    parser.add_argument("--code", help="an enrolment code for --server")
    parser.add_argument("--no-sync", action="store_true")
    args = parser.parse_args()
    if args.server and not args.code:
        parser.error("--server needs --code")
    bench_saves(args.saves, "FULL")  # the default: a save survives a power cut
    bench_saves(args.saves, "NORMAL")  # survives an app kill; no fsync per save
    if not args.no_sync:
        bench_sync(args.records, args.server, args.code)


if __name__ == "__main__":
    main()
