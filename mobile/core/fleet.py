"""A simulated fleet: N devices, each in its own data dir, enrolled, recording a realistic mix, syncing.

Everything goes through the real device core and real HTTP (one
``requests.Session`` per device), so a fleet run exercises exactly the path a
phone takes. Each device's clock is simulated: its records are spread over the
last ``days`` days and never lie in the future.
"""
from __future__ import annotations

import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable

import requests

from .config import DeviceSettings, local_now
from .errors import DeviceError
from .services import Device
from .simulate import simulate_records


class SimulatedClock:
    """A device clock that starts in the past and moves forward step by step, never past real time."""

    def __init__(self, start: datetime, step: timedelta, rng: random.Random):
        self.value, self.step, self.rng = start, step, rng
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return min(self.value, local_now())

    def advance(self) -> None:
        """Move on by about one step (0.5 to 1.5 steps, so records are not evenly spaced)."""
        with self._lock:
            self.value += self.step * self.rng.uniform(0.5, 1.5)


@dataclass
class FleetDeviceResult:
    """One simulated device's outcome."""

    index: int
    data_dir: str
    device_id: str | None = None
    saved: dict = field(default_factory=dict)
    refused: int = 0
    sync: dict | None = None
    error: dict | None = None


@dataclass
class FleetReport:
    """The whole fleet's outcome."""

    devices: list[FleetDeviceResult]
    elapsed_s: float

    def totals(self) -> dict:
        """Sums over devices."""
        saved: dict[str, int] = {}
        for d in self.devices:
            for kind, n in d.saved.items():
                saved[kind] = saved.get(kind, 0) + n
        syncs = [d.sync for d in self.devices if d.sync]
        return {
            "devices": len(self.devices), "saved": saved, "records": sum(saved.values()),
            "accepted": sum(s["accepted"] for s in syncs), "duplicate": sum(s["duplicate"] for s in syncs),
            "rejected": sum(s["rejected"] for s in syncs), "failed": sum(1 for d in self.devices if d.error),
            "elapsed_s": round(self.elapsed_s, 2),
        }

    def to_dict(self) -> dict:
        """Plain dict for ``--json`` output."""
        return {"totals": self.totals(), "devices": [asdict(d) for d in self.devices]}


@dataclass
class FleetPlan:
    """What to simulate."""

    base_dir: Path
    server_url: str
    codes: list[str]
    devices: int
    records: int
    pin: str
    days: float = 1.0
    workers: int = 4
    seed: int | None = None
    settings: dict = field(default_factory=dict)  # DeviceSettings overrides (tests: a cheap scrypt, no sleeps)


def read_codes(path: Path) -> list[str]:
    """Enrolment codes, one per line (blank lines and # comments skipped)."""
    lines = (line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def run_fleet(plan: FleetPlan, on_record: Callable[[], None] | None = None,
              session_factory: Callable[[], requests.Session] = requests.Session) -> FleetReport:
    """Simulate the fleet; ``on_record`` is called after each record (for a progress bar)."""
    if len(plan.codes) < plan.devices:
        raise DeviceError(f"{plan.devices} devices need {plan.devices} enrolment codes; the file has {len(plan.codes)}",
                          "not_enough_codes")
    master = random.Random(plan.seed)
    seeds = [master.randrange(2**32) for _ in range(plan.devices)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=max(1, plan.workers)) as pool:
        futures = [pool.submit(_run_device, plan, i, seeds[i], on_record, session_factory) for i in range(plan.devices)]
        results = [f.result() for f in futures]
    return FleetReport(results, time.monotonic() - started)


def _run_device(plan: FleetPlan, index: int, seed: int, on_record, session_factory) -> FleetDeviceResult:
    data_dir = Path(plan.base_dir) / f"device-{index + 1:03d}"
    result = FleetDeviceResult(index + 1, str(data_dir))
    rng = random.Random(seed)
    span = timedelta(days=plan.days)
    clock = SimulatedClock(local_now() - span, span / max(1, plan.records), rng)
    device = Device(DeviceSettings(data_dir=data_dir, now=clock, **plan.settings), session=session_factory())
    try:
        _enrol_or_unlock(device, plan, index)
        result.device_id = device.enrolment()["device_id"]
        device.sync_now()  # fetch jobs (and the sites list) before working
        sites = [s["code"] for s in _sites(device)]
        tally = simulate_records(device, plan.records, rng, sites, clock.advance, on_record)
        result.saved, result.refused = tally.saved, len(tally.refused)
        sync = device.sync_now()
        result.sync = sync.to_dict()
        if sync.error:
            result.error = sync.error.to_dict()
    except DeviceError as exc:
        result.error = exc.to_dict()
    finally:
        device.close()
    return result


def _enrol_or_unlock(device: Device, plan: FleetPlan, index: int) -> None:
    if device.is_enrolled:
        device.unlock(plan.pin)
    else:
        device.enrol(plan.server_url, plan.codes[index], f"simulated phone {index + 1:03d}", plan.pin)


def _sites(device: Device) -> list[dict]:
    try:
        return device.list_region_sites()
    except DeviceError:
        return []  # no sites known: the simulation records check-ins and health checks only
