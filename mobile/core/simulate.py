"""A realistic mix of a technician's records, for the fleet simulator, demos and benchmarks.

One call of :func:`simulate_records` plays ``count`` actions of a working day
through the device's real use cases (validated, sealed, queued), in the
proportions a supervisor sees: a health check at the start of each shift,
hourly "I am OK" check-ins, site observations, repair-job steps and notes, and
rarely a need-help or an SOS. Randomness comes from the ``rng`` given, so a
seed replays the same fleet.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from shared.schemas.repair_job import FAULT_TYPES

from .errors import DeviceError
from .services import Device

NOTES = ("checked rectifier", "battery bank low", "generator refuelled", "access road flooded",
         "waiting for spare part", "alarm cleared", "cabinet door damaged", "fibre spliced")


@dataclass
class SimulationTally:
    """What a simulation saved, by kind, and what the device refused (with reasons)."""

    saved: dict = field(default_factory=dict)
    refused: list = field(default_factory=list)

    def add(self, kind: str) -> None:
        """Count one saved record."""
        self.saved[kind] = self.saved.get(kind, 0) + 1

    @property
    def total(self) -> int:
        """Records saved."""
        return sum(self.saved.values())


def simulate_records(device: Device, count: int, rng: random.Random, sites: list[str],
                     advance=None, on_record=None) -> SimulationTally:
    """Save ``count`` records through ``device``'s use cases; ``advance()`` (if given) moves a simulated clock."""
    tally = SimulationTally()
    per_shift = max(6, min(14, count // 3 or 6))
    for n in range(count):
        if n % per_shift == 0:
            _safety_check(device, rng, sites, tally)
        else:
            _one_action(device, rng, sites, tally)
        if advance:
            advance()
        if on_record:
            on_record()
    return tally


def _one_action(device: Device, rng: random.Random, sites: list[str], tally: SimulationTally) -> None:
    roll = rng.random()
    try:
        if roll < 0.01:
            _save(tally, "check_in", device.record_check_in, "sos", site_code=_site(rng, sites), notes="fell from ladder")
        elif roll < 0.04:
            _save(tally, "check_in", device.record_check_in, "need_help", site_code=_site(rng, sites),
                  notes="vehicle stuck")
        elif roll < 0.55:
            _save(tally, "check_in", device.record_check_in, "ok", site_code=_site(rng, sites),
                  position=_position(rng))
        elif roll < 0.80 and sites:
            _site_status(device, rng, sites, tally)
        else:
            _job_step(device, rng, sites, tally)
    except DeviceError as exc:  # e.g. not fit to accept a job: a real technician sees the same refusal
        tally.refused.append({"reason": exc.reason, "message": exc.message})


def _save(tally: SimulationTally, kind: str, action, *args, **kwargs) -> None:
    action(*args, **kwargs)
    tally.add(kind)


def _safety_check(device: Device, rng: random.Random, sites: list[str], tally: SimulationTally) -> None:
    fever = rng.random() < 0.05
    temperature = round(rng.uniform(37.6, 39.2) if fever else rng.uniform(36.1, 37.2), 1)
    symptoms = rng.sample(["cough", "fatigue", "headache"], rng.randint(0, 1)) + (["fever"] if fever else [])
    quarantine = rng.random() < 0.1
    ppe = ["mask", "gloves"] + (["helmet", "harness"] if rng.random() < 0.7 else [])
    _save(tally, "safety_check", device.record_safety_check, temperature,
          rng.choice(["none"] * 8 + ["suspected_contact"]), symptoms=symptoms, ppe=ppe,
          site_code=_site(rng, sites), in_quarantine_area=quarantine, notes="feeling unwell" if fever else "")


def _site_status(device: Device, rng: random.Random, sites: list[str], tally: SimulationTally) -> None:
    state = rng.choices(["up", "degraded", "down"], [70, 20, 10])[0]
    power = {"up": "grid", "degraded": rng.choice(["generator", "battery"]), "down": rng.choice(["battery", "none"])}[state]
    _save(tally, "site_status", device.record_site_status, rng.choice(sites), state, power_source=power,
          backup_transmission=state != "up" and rng.random() < 0.5, mobile_bts_deployed=state == "down" and rng.random() < 0.3,
          access=rng.choices(["open", "restricted", "quarantined"], [85, 10, 5])[0],
          cause="" if state == "up" else rng.choice(["grid outage", "flood", "fibre cut", "theft"]))


def _job_step(device: Device, rng: random.Random, sites: list[str], tally: SimulationTally) -> None:
    jobs = device.list_my_jobs()
    if not jobs:
        if sites:
            _save(tally, "repair_job", device.report_fault, rng.choice(sites), rng.choice(FAULT_TYPES),
                  rng.choice(["critical", "high", "medium", "low"]), "Fault found on site", note=rng.choice(NOTES))
        return
    job = rng.choice(jobs)
    forward = [s for s in job["next_states"] if s not in ("cancelled", "closed")]  # supervisors close jobs
    step = forward[0] if forward and rng.random() < 0.7 else None
    parts = [("fuse", rng.randint(1, 3))] if step == "restored" else ()
    device.update_job(job["id"], to=step, note=rng.choice(NOTES), parts=parts)
    tally.add("repair_job")


def _site(rng: random.Random, sites: list[str]) -> str | None:
    return rng.choice(sites) if sites and rng.random() < 0.8 else None


def _position(rng: random.Random) -> dict | None:
    if rng.random() < 0.3:
        return None  # inside a shelter: no fix
    return {"lat": round(rng.uniform(10.0, 11.0), 5), "lon": round(rng.uniform(106.0, 107.0), 5),
            "accuracy_m": round(rng.uniform(3, 40), 1)}

