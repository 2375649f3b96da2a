"""``fieldwatch-device``: every device use case from the command line (one ``--data-dir`` per device).

Plain text by default, ``--json`` for scripts (errors too: ``{"error": {...}}`` on
stdout). The PIN comes from ``--pin``, else ``FIELDWATCH_DEVICE_PIN``, else a prompt
when a terminal is attached.

Exit codes:

==  ==========================================================================
0   done
1   refused by the device (no such job, a move the job cannot make, not fit, ...)
2   invalid input: a record failing its schema (field messages printed), or bad usage
3   PIN: missing, wrong, or locked out after too many wrong PINs
4   enrolment: not enrolled yet, or already enrolled
5   sync: no network or the server is unavailable / rate limiting; try again later
6   the server does not accept this device (unauthorized or revoked): enrol again
7   the server refused the request (4xx), or its keys or receipt do not verify
==  ==========================================================================

Examples::

    fieldwatch-device --data-dir ~/phone1 enrol --server http://127.0.0.1:5000 --code ABCD-1234 --label "Lan's phone"
    fieldwatch-device --data-dir ~/phone1 safety-check --temperature 36.6 --ppe mask --ppe helmet
    fieldwatch-device --data-dir ~/phone1 check-in --status ok --site HCM-001
    fieldwatch-device --data-dir ~/phone1 --json sync
    fieldwatch-device --data-dir ~/fleet fleet --devices 20 --records 50 --server http://127.0.0.1:5000 --code-file codes.txt
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from pathlib import Path

import requests

from shared.schemas.check_in import CHECK_IN_STATUSES
from shared.schemas.repair_job import FAULT_TYPES, JOB_STATES, PRIORITIES
from shared.schemas.safety_check import EXPOSURES, PPE, SYMPTOMS
from shared.schemas.site_status import ACCESS, POWER_SOURCES, SITE_STATES

from .core.errors import (
    AlreadyEnrolled, DeviceError, NotEnrolled, PinError, ValidationFailed,
)
from .core.services import Device
from .core.sync.client import AuthError, ServerRejected, SyncError, TransportError

PIN_ENV = "FIELDWATCH_DEVICE_PIN"
DIR_ENV = "FIELDWATCH_DEVICE_DIR"
FLEET_PIN = "2580"  # simulated devices only: a known PIN so a fleet can be re-run and inspected
EXIT_OK, EXIT_REFUSED, EXIT_INVALID, EXIT_PIN, EXIT_ENROLMENT, EXIT_RETRY, EXIT_AUTH, EXIT_SERVER = range(8)


class CliError(Exception):
    """A refusal by the command line itself (bad arguments, missing PIN)."""

    def __init__(self, message: str, code: int, reason: str):
        super().__init__(message)
        self.message, self.code, self.reason = message, code, reason


# --- parser ------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``fieldwatch-device``."""
    parser = argparse.ArgumentParser(prog="fieldwatch-device", description="A fieldwatch device on the command line.",
                                     epilog="Exit codes: see the module docstring (python -m pydoc mobile.device_cli).")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get(DIR_ENV, "~/.fieldwatch-device")).expanduser(),
                        help=f"this device's data directory (one per device; default ${DIR_ENV} or ~/.fieldwatch-device)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--pin", help=f"the device PIN (else ${PIN_ENV}, else a prompt)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _enrol_parser(sub)
    _record_parsers(sub)
    _job_parser(sub)
    sub.add_parser("sites", help="the region's sites with their current status").add_argument(
        "--refresh", action="store_true", help="fetch the list from the server")
    sub.add_parser("status", help="today's status and the sync status")
    sub.add_parser("sync", help="push the outbox and pull changes now")
    outbox = sub.add_parser("outbox", help="what waits to be sent, and what the server rejected")
    outbox.add_argument("--retry-rejected", action="store_true", help="queue rejected items again")
    sub.add_parser("receipts", help="the server's signed sync receipts").add_argument("--limit", type=int, default=10)
    sub.add_parser("change-pin", help="set a new PIN").add_argument("--new-pin", required=True)
    _fleet_parser(sub)
    return parser


def _enrol_parser(sub) -> None:
    p = sub.add_parser("enrol", help="enrol this device with a one-time code")
    p.add_argument("--server", required=True, help="server address, e.g. https://fieldwatch.example.org")
    p.add_argument("--code", required=True, help="the enrolment code from the supervisor")
    p.add_argument("--label", required=True, help="a name for this device, e.g. \"Lan's phone\"")


def _record_parsers(sub) -> None:
    p = sub.add_parser("safety-check", help="record a health-safety check")
    p.add_argument("--temperature", type=float, required=True, help="°C")
    p.add_argument("--symptom", action="append", default=[], help=f"repeatable: {', '.join(SYMPTOMS)}")
    p.add_argument("--exposure", default="none", help=f"one of: {', '.join(EXPOSURES)}")
    p.add_argument("--ppe", action="append", default=[], help=f"repeatable: {', '.join(PPE)}")
    p.add_argument("--site", help="site code")
    p.add_argument("--quarantine-area", action="store_true", help="working in a quarantined area")
    fit = p.add_mutually_exclusive_group()
    fit.add_argument("--fit", dest="fit", action="store_true", default=None, help="declare fit for duty")
    fit.add_argument("--not-fit", dest="fit", action="store_false", help="declare not fit for duty")
    p.add_argument("--notes", default="")
    p = sub.add_parser("check-in", help="check in: ok, need_help or sos")
    p.add_argument("--status", default="ok", help=f"one of: {', '.join(CHECK_IN_STATUSES)}")
    p.add_argument("--site")
    p.add_argument("--lat", type=float)
    p.add_argument("--lon", type=float)
    p.add_argument("--notes", default="")
    p = sub.add_parser("site-status", help="record a site's status")
    p.add_argument("--site", required=True)
    p.add_argument("--state", required=True, help=f"one of: {', '.join(SITE_STATES)}")
    p.add_argument("--power", default="grid", help=f"one of: {', '.join(POWER_SOURCES)}")
    p.add_argument("--backup-transmission", action="store_true")
    p.add_argument("--mobile-bts", action="store_true", help="a mobile BTS is deployed")
    p.add_argument("--access", default="open", help=f"one of: {', '.join(ACCESS)}")
    p.add_argument("--cause", default="")
    p.add_argument("--notes", default="")


def _job_parser(sub) -> None:
    job = sub.add_parser("job", help="repair jobs: list, show, update, report")
    jobs = job.add_subparsers(dest="job_command", required=True, metavar="ACTION")
    jobs.add_parser("list", help="the team's open jobs").add_argument("--all", action="store_true", help="include finished jobs")
    jobs.add_parser("show", help="one job").add_argument("job_id")
    p = jobs.add_parser("update", help="move a job on, add a note, parts or actions")
    p.add_argument("job_id")
    p.add_argument("--to", help=f"next state: {', '.join(JOB_STATES)}")
    p.add_argument("--note")
    p.add_argument("--part", action="append", default=[], type=_part, help="name:quantity (repeatable)")
    p.add_argument("--action", action="append", default=[], help="an action done (repeatable)")
    p = jobs.add_parser("report", help="report a fault found on site")
    p.add_argument("--site", required=True)
    p.add_argument("--fault-type", required=True, help=f"one of: {', '.join(FAULT_TYPES)}")
    p.add_argument("--priority", default="medium", help=f"one of: {', '.join(PRIORITIES)}")
    p.add_argument("--title", default="")
    p.add_argument("--note")


def _fleet_parser(sub) -> None:
    p = sub.add_parser("fleet", help="simulate a fleet of devices (each in --data-dir/device-NNN)")
    p.add_argument("--devices", type=int, required=True)
    p.add_argument("--records", type=int, required=True, help="records per device")
    p.add_argument("--server", required=True)
    p.add_argument("--code-file", type=Path, required=True, help="one enrolment code per line")
    p.add_argument("--days", type=float, default=1.0, help="spread the records over the last N days")
    p.add_argument("--workers", type=int, default=4, help="devices simulated at once")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-progress", action="store_true")


def _part(text: str) -> tuple[str, int]:
    name, sep, qty = text.rpartition(":")
    if not sep or not name or not qty.isdigit() or int(qty) < 1:
        raise argparse.ArgumentTypeError(f"a part is name:quantity, e.g. fuse:2 (got {text!r})")
    return name, int(qty)


# --- commands ----------------------------------------------------------------------------------

def cmd_enrol(device: Device, args) -> tuple[dict, str]:
    """Enrol with a code; the PIN given becomes the device PIN."""
    info = device.enrol(args.server, args.code, args.label, resolve_pin(args, confirm=True))
    return info, f"enrolled as device {info['device_id']} (worker {info['worker_id']}, team {info['team_id']}) with {info['server_url']}"


def cmd_safety_check(device: Device, args) -> tuple[dict, str]:
    """Record a safety check."""
    saved = device.record_safety_check(args.temperature, args.exposure, symptoms=args.symptom, ppe=args.ppe,
                                       fit_for_duty=args.fit, site_code=args.site,
                                       in_quarantine_area=args.quarantine_area, notes=args.notes)
    return saved.to_dict(), _saved_text(saved)


def cmd_check_in(device: Device, args) -> tuple[dict, str]:
    """Record a check-in."""
    if (args.lat is None) != (args.lon is None):
        raise CliError("give both --lat and --lon, or neither", EXIT_INVALID, "invalid_arguments")
    position = {"lat": args.lat, "lon": args.lon} if args.lat is not None else None
    saved = device.record_check_in(args.status, site_code=args.site, position=position, notes=args.notes)
    return saved.to_dict(), _saved_text(saved)


def cmd_site_status(device: Device, args) -> tuple[dict, str]:
    """Record a site status."""
    saved = device.record_site_status(args.site, args.state, power_source=args.power,
                                      backup_transmission=args.backup_transmission, mobile_bts_deployed=args.mobile_bts,
                                      access=args.access, cause=args.cause, notes=args.notes)
    return saved.to_dict(), _saved_text(saved)


def cmd_job(device: Device, args) -> tuple[object, str]:
    """List, show, update or report jobs."""
    if args.job_command == "list":
        jobs = device.list_my_jobs(include_finished=args.all)
        return jobs, _table(jobs, ("id", "priority", "status", "site_code", "title")) or "no jobs"
    if args.job_command == "show":
        job = device.get_job(args.job_id)
        return job, _job_text(job)
    if args.job_command == "report":
        saved = device.report_fault(args.site, args.fault_type, args.priority, args.title, args.note)
        return saved.to_dict(), _saved_text(saved)
    job = device.update_job(args.job_id, to=args.to, note=args.note, parts=args.part, actions=args.action)
    return job, f"job {job['id']} is {job['status']}; saved, waiting to send"


def cmd_sites(device: Device, args) -> tuple[list, str]:
    """The region's sites."""
    sites = device.list_region_sites(refresh=args.refresh)
    rows = [{**s, "state": (s["status"] or {}).get("state", "-")} for s in sites]
    return sites, _table(rows, ("code", "name", "criticality", "state")) or "no sites"


def cmd_status(device: Device, args) -> tuple[dict, str]:
    """Today's status and the sync status."""
    today, sync = device.today_status(), device.sync_status()
    text = "\n".join([
        f"health check today: {'yes' if today['health_check_done'] else 'NO'}"
        + (f" (fit for duty: {'yes' if today['fit_for_duty'] else 'NO'})" if today["health_check_done"] else ""),
        f"on duty: {'yes' if today['on_duty'] else 'no'}",
        f"next check-in due: {today['next_check_in_due_at']}" + (" (OVERDUE)" if today["check_in_overdue"] else ""),
        f"waiting to send: {sync['pending_total']} {_kinds(sync['pending'])}",
        f"rejected by the server: {sync['rejected_total']}",
        f"last successful sync: {sync['last_success_at'] or 'never'}",
    ] + ([f"last error: {sync['last_error']['reason']}: {sync['last_error']['message']}"] if sync["last_error"] else []))
    return {"today": today, "sync": sync}, text


def cmd_sync(device: Device, args) -> tuple[dict, str]:
    """Sync now; a failed sync exits non-zero with its reason."""
    result = device.sync_now()
    if result.error:
        raise result.error
    text = (f"sync ok: sent {result.pushed} ({result.accepted} accepted, {result.duplicate} already there, "
            f"{result.rejected} rejected), received {result.pulled} change(s)")
    for item in result.rejected_items:
        text += f"\n  rejected {item['kind']} {item['record_id']}: {item['reason']}: {item['message']}"
    return result.to_dict(), text


def cmd_outbox(device: Device, args) -> tuple[dict, str]:
    """The outbox (metadata only) and the rejected items with their reasons."""
    if args.retry_rejected:
        n = device.retry_rejected()
        return {"requeued": n}, f"{n} rejected item(s) queued again"
    items = device.outbox_items()
    rejected = device.sync_status()["rejected"] if device.is_unlocked else []
    text = _table(items, ("seq", "kind", "priority", "created_at", "record_id")) or "outbox is empty"
    for r in rejected:
        text += f"\nrejected {r['kind']} {r['record_id']}: {r['reason']}: {r['message']}"
    return {"items": items, "rejected": rejected}, text


def cmd_receipts(device: Device, args) -> tuple[list, str]:
    """The newest signed receipts."""
    receipts = device.recent_receipts(args.limit)
    rows = [{"issued_at": r["issued_at"], "kid": r["kid"], "items": len(r["items"])} for r in receipts]
    return receipts, _table(rows, ("issued_at", "kid", "items")) or "no receipts yet"


def cmd_change_pin(device: Device, args) -> tuple[dict, str]:
    """Change the PIN."""
    device.set_pin(resolve_pin(args), args.new_pin)
    return {"changed": True}, "PIN changed"


def cmd_fleet(args, session: requests.Session | None = None, settings: dict | None = None) -> int:
    """Simulate a fleet with a progress bar; exit non-zero when any device failed."""
    from tqdm import tqdm  # only the fleet needs it

    from .core.fleet import FleetPlan, read_codes, run_fleet

    try:
        plan = FleetPlan(args.data_dir, args.server, read_codes(args.code_file), args.devices, args.records,
                         args.pin or os.environ.get(PIN_ENV) or FLEET_PIN, args.days, args.workers, args.seed,
                         settings or {})
        with tqdm(total=args.devices * args.records, unit="rec", desc="fleet", disable=args.no_progress or args.json,
                  file=sys.stderr) as bar:
            report = run_fleet(plan, on_record=lambda: bar.update(1),
                               session_factory=(lambda: session) if session else requests.Session)
    except (DeviceError, OSError) as exc:
        emit_error(args, exc if isinstance(exc, DeviceError) else CliError(str(exc), EXIT_INVALID, "bad_code_file"))
        return exit_code_for(exc) if isinstance(exc, DeviceError) else EXIT_INVALID
    totals = report.totals()
    text = (f"{totals['devices']} devices saved {totals['records']} records {_kinds(totals['saved'])}; "
            f"server accepted {totals['accepted']}, duplicate {totals['duplicate']}, rejected {totals['rejected']}; "
            f"{totals['failed']} device(s) failed; {totals['elapsed_s']} s")
    for d in report.devices:
        if d.error:
            text += f"\n  device {d.index:03d}: {d.error['reason']}: {d.error['message']}"
    emit(args, report.to_dict(), text)
    return EXIT_OK if not totals["failed"] else EXIT_RETRY


COMMANDS = {
    "enrol": (cmd_enrol, False), "safety-check": (cmd_safety_check, True), "check-in": (cmd_check_in, True),
    "site-status": (cmd_site_status, True), "job": (cmd_job, True), "sites": (cmd_sites, True),
    "status": (cmd_status, True), "sync": (cmd_sync, True), "outbox": (cmd_outbox, False),
    "receipts": (cmd_receipts, False), "change-pin": (cmd_change_pin, False),
}


# --- plumbing --------------------------------------------------------------------------------------

def resolve_pin(args, confirm: bool = False) -> str:
    """The PIN from --pin, the environment, or a prompt."""
    pin = args.pin or os.environ.get(PIN_ENV)
    if pin:
        return pin
    if not sys.stdin.isatty():
        raise CliError(f"a PIN is needed: give --pin or set {PIN_ENV}", EXIT_PIN, "pin_required")
    pin = getpass.getpass("PIN: ")
    if confirm and getpass.getpass("PIN again: ") != pin:
        raise CliError("the two PINs differ", EXIT_PIN, "pin_mismatch")
    return pin


def exit_code_for(exc: Exception) -> int:
    """The exit code of an error (see the module docstring)."""
    if isinstance(exc, CliError):
        return exc.code
    for cls, code in ((ValidationFailed, EXIT_INVALID), (PinError, EXIT_PIN), (NotEnrolled, EXIT_ENROLMENT),
                      (AlreadyEnrolled, EXIT_ENROLMENT), (TransportError, EXIT_RETRY), (AuthError, EXIT_AUTH),
                      (ServerRejected, EXIT_SERVER), (SyncError, EXIT_SERVER)):
        if isinstance(exc, cls):
            return code
    return EXIT_REFUSED


def emit(args, data, text: str) -> None:
    """Print a result as JSON or text."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str) if args.json else text)


def emit_error(args, exc: Exception) -> None:
    """Print an error as JSON (stdout) or text (stderr), with field messages for invalid records."""
    if isinstance(exc, DeviceError):
        payload = exc.to_dict()
    else:
        payload = {"reason": getattr(exc, "reason", "error"), "message": getattr(exc, "message", str(exc))}
    if args.json:
        print(json.dumps({"error": payload}, indent=2, sort_keys=True, default=str))
        return
    if isinstance(exc, ValidationFailed):
        print(f"error: the {exc.kind.replace('_', ' ')} is not valid:", file=sys.stderr)
        for name, messages in exc.errors.items():
            print(f"  {name}: {'; '.join(map(str, messages)) if isinstance(messages, list) else messages}", file=sys.stderr)
        return
    print(f"error: {payload['message']}", file=sys.stderr)


def main(argv: list[str] | None = None, session: requests.Session | None = None, settings: dict | None = None) -> int:
    """Console-script entry point; returns the exit code.

    ``session`` and ``settings`` (DeviceSettings overrides such as ``sleep``) are for tests.
    """
    args = build_parser().parse_args(argv)
    if args.command == "fleet":
        return cmd_fleet(args, session, settings)
    try:
        device = Device.open(args.data_dir, session=session, **(settings or {}))
    except OSError as exc:  # a folder that cannot be made or written: say so, not a traceback
        emit_error(args, CliError(f"cannot use the data folder {args.data_dir}: {exc.strerror or exc}", EXIT_INVALID, "data_dir_unusable"))
        return EXIT_INVALID
    try:
        handler, needs_pin = COMMANDS[args.command]
        if needs_pin or (args.command == "outbox" and (args.pin or os.environ.get(PIN_ENV))):
            device.unlock(resolve_pin(args))
        data, text = handler(device, args)
        emit(args, data, text)
        return EXIT_OK
    except (DeviceError, CliError) as exc:
        emit_error(args, exc)
        return exit_code_for(exc)
    finally:
        device.close()


# --- text formatting ---------------------------------------------------------------------------------

def _saved_text(saved) -> str:
    return f"saved {saved.kind.replace('_', ' ')} {saved.record_id}; waiting to send (priority {saved.priority})"


def _kinds(counts: dict) -> str:
    return "(" + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ")" if counts else ""


def _table(rows: list[dict], columns: tuple[str, ...]) -> str:
    if not rows:
        return ""
    cells = [[str(r.get(c, "") if r.get(c) is not None else "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(line.rstrip() for line in lines)


def _job_text(job: dict) -> str:
    lines = [f"job {job['id']}: {job.get('title') or job['fault_type']} at {job['site_code']}",
             f"status: {job['status']} (next: {', '.join(job['next_states']) or 'none'}); priority {job['priority']}"]
    lines += [f"  {step}: {at}" for step, at in sorted(job.get("steps", {}).items(), key=lambda kv: kv[1])]
    lines += [f"  note {n['at']} {n['author']}: {n['text']}" for n in job.get("notes", [])]
    lines += [f"  part {p['name']} x{p['quantity']}" for p in job.get("parts", [])]
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
