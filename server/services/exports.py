"""Safety-log exports: signed bundles an auditor can verify offline (shared.export_verify).

One pass over the revisions, streamed from the database with the driver's own
cursor (no SQLAlchemy row objects; a server-side cursor on PostgreSQL), each
written straight to the bundle:

- every record in its disclosure form (shared.envelope.disclose): fields,
  salts, digests of withheld fields, the device signature, the key's
  fingerprint; plus the server's unsigned annotations (team, region,
  received time) and the chain value that names any changed line;
- ``keys.json``: the public keys of the devices that signed them;
- ``manifest.json``: filter, counts, SHA-256 of each file, who exported and
  when, what was withheld and why; signed with the server's export key.

Health fields (services.records.HEALTH_FIELDS_BY_KIND) are withheld unless the
exporting role may see them (:func:`may_see_health`); their salted digests
stay, so the rest of each record still verifies. Every export is written to
the audit log twice: when it starts (committed before any data leaves) and
when it ends, with the count.

For the dashboard: :func:`stream_safety_export` yields a zip bundle as bytes
(memory stays flat); :func:`write_bundle` writes a folder or ``.zip`` file.

Speed (issue 6): a record is encoded in one pass with orjson (shared.fast_json:
the same bytes as canonical JSON, or the reference path for the rare value
where orjson would differ); its field salts and withheld digests come from the
proof the push stored (``Revision.proof``; derived from the secret for older
revisions), so a withholding export decrypts nothing. Past POOL_AFTER rows,
worker processes encode batches (sent and returned as marshal bytes) while
this process reads, encodes when the workers are busy, numbers, chains and
writes.
Both encoders write the same bytes (tests compare them). A CSV row is chained over its own bytes (format
version 2; version 1 chained the canonical JSON of its cells, which cost a second rendering of every row).
"""
from __future__ import annotations

import binascii
import contextlib
import csv
import hashlib
import io
import json
import marshal
import multiprocessing
import os
import queue
import sys
import threading
import uuid
import zipfile
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterator

import orjson
from sqlalchemy import Text, cast, select

from shared import crypto, envelope
from shared import export_verify as fmt
from shared.canonical import canonical_json
from shared.envelope import FORMAT_VERSION as ENVELOPE_VERSION
from shared.fast_json import loads_tame as _loads_tame
from shared.signing import sign_document

from ..errors import Forbidden, Invalid
from ..extensions import SQLITE_MMAP_BYTES, db
from ..models import Device, Region, Site, Team, User, utcnow
from ..models.record import Revision
from . import audit, records
from .keys import KeyRing, keyring

FORMATS = ("csv", "jsonl", "pdf")
SAFETY_KINDS = ("safety_check", "check_in")
EXPORT_KINDS = ("safety_check", "check_in", "repair_job")
HEALTH_ROLES = ("admin",)
EXPORT_ROLES = ("admin", "supervisor", "auditor")
PDF_MAX_ROWS = 20_000  # fpdf2 keeps a document in memory: larger exports are CSV or JSON Lines
WITHHELD_REASON = ("health data (Decree 13/2023/ND-CP): only roles allowed to see health data receive the values; "
                   "each withheld field's salted digest is kept, so every other field still verifies against the device signature")
YIELD_PER = 2000
POOL_AFTER = 2000  # rows read before an export starts worker processes (small exports stay in one process)
POOL_BATCH = 500  # rows per task for a worker process (or for this one: see export_steps)
POOL_SWITCH_INTERVAL = 0.001  # seconds: see export_steps


@dataclass(frozen=True)
class ExportFilter:
    """What to export. Dates are whole days in ``utc_offset`` (inclusive); codes, not ids."""

    date_from: date
    date_to: date
    region: str | None = None
    team: str | None = None
    worker: str | None = None
    kinds: tuple[str, ...] = SAFETY_KINDS
    utc_offset: str = "+07:00"

    def __post_init__(self):
        if self.date_to < self.date_from:
            raise Invalid("the period ends before it starts (--to is before --from)")
        bad = [k for k in self.kinds if k not in EXPORT_KINDS]
        if bad or not self.kinds:
            raise Invalid(f"kind must be among {', '.join(EXPORT_KINDS)}, not {', '.join(bad) or 'nothing'}")
        self.tz  # validates the offset

    @property
    def tz(self) -> timezone:
        try:
            sign = -1 if self.utc_offset.startswith("-") else 1
            hours, minutes = self.utc_offset.lstrip("+-").split(":")
            return timezone(sign * timedelta(hours=int(hours), minutes=int(minutes)))
        except (ValueError, AttributeError) as exc:
            raise Invalid(f"utc offset must look like +07:00, not {self.utc_offset!r}") from exc

    @property
    def start(self) -> datetime:
        return datetime.combine(self.date_from, time(0), self.tz)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.date_to + timedelta(days=1), time(0), self.tz)

    def to_dict(self) -> dict:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat(), "region": self.region, "team": self.team,
                "worker": self.worker, "kinds": list(self.kinds), "utc_offset": self.utc_offset}

    @classmethod
    def parse(cls, date_from: str, date_to: str, region=None, team=None, worker=None, kinds=None, utc_offset="+07:00") -> "ExportFilter":
        """From text (CLI, query string). Raises Invalid with the field named."""
        def day(value, name):
            try:
                return date.fromisoformat(value)
            except (TypeError, ValueError) as exc:
                raise Invalid(f"{name} must be a date like 2026-11-01, not {value!r}") from exc
        if isinstance(kinds, str):
            kinds = [k.strip() for k in kinds.split(",") if k.strip()]
        return cls(day(date_from, "from"), day(date_to, "to"), region or None, team or None, worker or None,
                   tuple(kinds or SAFETY_KINDS), utc_offset or "+07:00")


@dataclass(frozen=True)
class Exporter:
    """Who exports: a dashboard user, or the command line (as admin)."""

    user_id: int | None
    name: str
    role: str
    region_ids: tuple[int, ...] = ()
    via: str = "dashboard"

    @classmethod
    def of_user(cls, user: User, via: str = "dashboard") -> "Exporter":
        return cls(user.id, user.username, user.role, tuple(r.id for r in user.regions or ()), via)

    @classmethod
    def command_line(cls) -> "Exporter":
        try:
            login = os.getlogin()
        except OSError:
            login = os.environ.get("USER", "unknown")
        return cls(None, f"cli:{login}", "admin", (), "cli")

    def to_dict(self) -> dict:
        return {"user_id": self.user_id, "name": self.name, "role": self.role, "via": self.via}


def may_see_health(role: str) -> bool:
    """Whether a role may receive health values in an export."""
    return role in HEALTH_ROLES


@dataclass
class ExportSummary:
    """What an export wrote."""

    export_id: str
    records: int = 0
    scanned: int = 0
    by_kind: dict = field(default_factory=dict)
    devices: int = 0
    unsigned: int = 0
    files: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    path: str | None = None


# --- sinks: where bundle files go ------------------------------------------------

class _Hashing(io.RawIOBase):
    """Write-through wrapper that hashes and counts what passes."""

    def __init__(self, raw):
        self._raw, self._h, self.size = raw, hashlib.sha256(), 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._raw.write(b)
        self._h.update(b)
        self.size += len(b)
        return len(b)

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()

    @property
    def sha256(self) -> str:
        return self._h.hexdigest()


class _Behind(io.RawIOBase):
    """Writes to ``raw`` in a thread of its own, a few batches behind the caller.

    What a write costs here (deflating a zip, hashing) runs in C without the GIL, so on a second CPU it
    leaves the exporting process's own work, which bounds an export on two CPUs. For zip files only: a
    folder's plain writes gain less than the hand-over costs, and a streamed download drains its sink after
    each step and needs the bytes there by then.
    """

    def __init__(self, raw, depth: int = 4):
        self._raw, self._queue, self._error = raw, queue.Queue(depth), None
        self._thread = threading.Thread(target=self._run, name="export-writer", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        if self._error is not None:
            raise self._error
        self._queue.put(bytes(b))
        return len(b)

    def _run(self) -> None:
        while (b := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._raw.write(b)
                except BaseException as exc:  # noqa: BLE001 - raised again in the exporting thread
                    self._error = exc

    def close(self) -> None:
        if not self.closed:
            self._queue.put(None)
            self._thread.join()
            self._raw.close()
        super().close()
        if self._error is not None:
            raise self._error


class _DirSink:
    deflates = False

    def __init__(self, path: str):
        os.makedirs(path, exist_ok=True)
        if os.listdir(path):
            raise Invalid(f"{path} is not empty: an export goes to a new folder")
        self.path = path

    def open(self, name: str):
        return open(os.path.join(self.path, name), "wb", buffering=1 << 16)

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


class _ZipSink:
    deflates = True  # worth a writer thread (_Behind): measured 22k -> 27k rows/s for a CSV zip; a folder gains nothing

    def __init__(self, fileobj, owned: bool = False):
        self._file, self._owned, self._finished = fileobj, owned, False
        self._zip = zipfile.ZipFile(fileobj, "w", zipfile.ZIP_DEFLATED, compresslevel=1, allowZip64=True)

    def open(self, name: str):
        info = zipfile.ZipInfo(name, date_time=datetime.now(timezone.utc).timetuple()[:6])
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        return io.BufferedWriter(self._zip.open(info, "w", force_zip64=True), 1 << 16)

    def close(self) -> None:
        self._zip.close()
        self._finished = True

    def release(self) -> None:
        if not self._finished:  # the export failed: the zip is abandoned, not finished when it is collected
            self._zip.fp = None
        if self._owned and not self._file.closed:
            self._file.close()
            if not self._finished:  # no half-written bundle left where the exporter asked for one
                with contextlib.suppress(OSError):
                    os.remove(self._file.name)


class _Pipe(io.RawIOBase):
    """An unseekable byte sink the streaming download drains."""

    def __init__(self):
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._chunks.append(bytes(b))
        self._pos += len(b)
        return len(b)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return False

    def drain(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


# --- the query ---------------------------------------------------------------------

def _lookup(model, code: str | None, what: str):
    if code is None:
        return None
    row = db.session.scalar(select(model).where(model.code == code))
    if row is None:
        raise Invalid(f"there is no {what} {code!r}")
    return row


@dataclass(frozen=True)
class _Routing:
    """Which team and region a revision belongs to, and whether the filter wants it.

    Decided like the change feed routes a revision (services.sync._routing):
    the team is the sending device's (a repair job's: the job's), the region is
    the site's, else the team's. Plain dicts, so worker processes get a copy.
    """

    team_id: int | None
    region_ids: set | None
    device_team: dict
    team_by_code: dict
    team_region: dict
    site_region: dict

    def route(self, kind: str, device_id: str | None, body: dict) -> tuple[int | None, int | None]:
        if kind == "repair_job" or device_id is None:
            team = self.team_by_code.get(body.get("team_id"))
        else:
            team = self.device_team.get(device_id)
        return team, self.site_region.get(body.get("site_code"))

    def wants(self, team: int | None, region: int | None) -> bool:
        if self.team_id is not None and team != self.team_id:
            return False
        if self.region_ids is not None:
            return (region if region is not None else self.team_region.get(team)) in self.region_ids
        return True


@dataclass
class _Scope:
    """A filter as this exporter may see it: SQL clauses (kind, period, worker) and the team / region routing.

    Team and region are tested in Python from small lookup tables, so the
    export reads ``revision`` alone, in time order, with no join.
    """

    clauses: list
    routing: _Routing
    filt: ExportFilter


def _scope(filt: ExportFilter, who: Exporter) -> _Scope:
    clauses = [Revision.kind.in_(filt.kinds), Revision.occurred_at >= filt.start, Revision.occurred_at < filt.end]
    region = _lookup(Region, filt.region, "region")
    team = _lookup(Team, filt.team, "team")
    if filt.worker is not None:
        _lookup(User, filt.worker, "worker")
        clauses.append(Revision.worker_id == filt.worker)
    regions = {region.id} if region is not None else None
    if who.role == "supervisor":
        mine = set(who.region_ids)
        if regions is not None and not regions <= mine:
            raise Forbidden(f"a supervisor exports only their own regions; {filt.region} is not one of them")
        regions = mine if regions is None else regions
    teams = db.session.execute(select(Team.id, Team.code, Team.region_id)).all()
    return _Scope(clauses, _Routing(
        team.id if team is not None else None, regions,
        dict(db.session.execute(select(Device.id, Device.team_id)).all()),
        {t.code: t.id for t in teams}, {t.id: t.region_id for t in teams},
        dict(db.session.execute(select(Site.code, Site.region_id)).all()),
    ), filt)


def _statement(scope: _Scope):
    return (
        # the body as its JSON text: the encoder parses it (in a worker process for large exports)
        select(Revision.record_id, Revision.rev, Revision.kind, Revision.device_id, Revision.author_user_id,
               cast(Revision.body, Text), Revision.health, Revision.health_key_id, Revision.secret, Revision.signature,
               Revision.worker_id, Revision.occurred_at, Revision.received_at, Revision.proof)
        .where(*scope.clauses)
        .order_by(Revision.occurred_at, Revision.id)
        .execution_options(yield_per=YIELD_PER, stream_results=True)
    )


_RAW_COLUMNS = ("record_id", "rev", "kind", "device_id", "author_user_id", "body", "health", "health_key_id", "secret",
                "signature", "worker_id", "occurred_at", "received_at", "proof")
_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
_SERVER_SIDE = ("psycopg", "psycopg2")  # drivers whose named cursors stream from the server


class _Rows:
    """The revisions :func:`_statement` selects, in batches of driver tuples (the encoder converts the values).

    Read with the driver's own cursor on the session's connection (same transaction), so no SQLAlchemy
    row object or type processing runs per row; on PostgreSQL a named (server-side) cursor, so memory
    stays flat. A driver whose parameter style is not known here goes through SQLAlchemy instead.
    """

    def __init__(self, scope: _Scope, batch: int = 0):
        self.batch = batch or YIELD_PER
        conn = db.session.connection()
        dialect = conn.dialect
        self._result = self._cursor = self._sqlite_raw = None
        mark = _PLACEHOLDERS.get(dialect.paramstyle)
        if mark is None or not RAW_CURSOR:
            self._result = conn.execute(_statement(scope))
            return
        table, c = Revision.__table__, Revision.__table__.c
        when = c.occurred_at.type.bind_processor(dialect) or (lambda v: v)
        filt = scope.filt
        columns = {"body": "CAST(body AS TEXT)"}
        if dialect.name == "postgresql":  # times as the text SQLite keeps (see _utc_iso): plain values cross to workers cheaply
            columns.update({n: f"to_char({n}, 'YYYY-MM-DD HH24:MI:SS.US')" for n in ("occurred_at", "received_at")})
        sql = (f"SELECT {', '.join(columns.get(n, n) for n in _RAW_COLUMNS)} FROM {table.name} "
               f"WHERE kind IN ({', '.join([mark] * len(filt.kinds))}) AND occurred_at >= {mark} AND occurred_at < {mark}")
        params = [*filt.kinds, when(filt.start), when(filt.end)]
        if filt.worker is not None:
            sql += f" AND worker_id = {mark}"
            params.append(filt.worker)
        sql += " ORDER BY occurred_at, id"
        raw = conn.connection
        if dialect.driver == "psycopg":  # binary: bytea and timestamps without text parsing
            self._cursor = raw.cursor(name=f"fieldwatch_export_{uuid.uuid4().hex[:12]}", binary=True)
        elif dialect.driver in _SERVER_SIDE:
            self._cursor = raw.cursor(name=f"fieldwatch_export_{uuid.uuid4().hex[:12]}")
        else:
            self._cursor = raw.cursor()
        if dialect.name == "sqlite":
            # Read through read(), not mmap (server.extensions): an export reads every page once, in order, and
            # mapped pages would count the whole database into this process's resident memory.
            self._cursor.execute("PRAGMA mmap_size=0")
            self._sqlite_raw = raw
        self._cursor.execute(sql, params)

    def batches(self) -> Iterator[list]:
        if self._result is not None:
            for part in self._result.partitions(self.batch):
                yield [tuple(r) for r in part]
            return
        fetch = self._cursor.fetchmany
        while True:
            rows = fetch(self.batch)
            if not rows:
                return
            yield rows

    def close(self) -> None:
        if self._result is not None:
            self._result.close()
        elif self._cursor is not None:
            try:
                self._cursor.close()
            except Exception:  # noqa: BLE001 - a cursor of an aborted transaction; the rollback that follows cleans up
                pass
        if self._sqlite_raw is not None:  # the pooled connection goes back as it came
            self._sqlite_raw.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")


RAW_CURSOR = True  # tests turn it off to cover the SQLAlchemy path


def count_records(filt: ExportFilter, who: Exporter) -> int:
    """How many revisions the export reads (kind, period, worker): an upper bound when a team or region is given."""
    from sqlalchemy import func

    return db.session.scalar(select(func.count()).select_from(Revision).where(*_scope(filt, who).clauses)) or 0


# --- one record ---------------------------------------------------------------------

_B64 = binascii.b2a_base64
_dumps = orjson.dumps
_SORT = orjson.OPT_SORT_KEYS
_Fragment = orjson.Fragment


class _Slow(Exception):
    """A row the fast path leaves to the reference encoder (a value orjson would not write canonically)."""


_csv_field = fmt.csv_field


def _readable(value) -> str:
    """shared.export_verify._cell for a value of a tame body."""
    kind = type(value)
    if kind is str:
        return value
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    return _dumps(value, option=_SORT).decode("utf-8")


def _utc_iso(value) -> str | None:
    """What the UTCDateTime column gives, as ISO text (``datetime.isoformat``), from the driver's value:
    a naive UTC datetime (PostgreSQL), or text (SQLite), which SQLAlchemy stores as 2026-11-01 06:00:00.000000."""
    if value is None:
        return None
    if type(value) is str:
        if len(value) == 26 and value[10] == " " and value[19] == "." and value[4] == value[7] == "-" and value[13] == value[16] == ":":
            # its own storage form, cut and pasted: 2026-11-01T06:00:00(.ffffff)+00:00 (tests compare with datetime)
            frac = value[20:]
            return f"{value[:10]}T{value[11:19]}+00:00" if frac == "000000" else f"{value[:10]}T{value[11:]}+00:00"
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=timezone.utc).isoformat()


class _Encoder:
    """Turns stored revisions into their bundle form: the disclosure form (shared.envelope.disclose), the
    server's annotations, and the bytes of the line around its number ``n`` (which only the writer knows).

    Everything it needs is given up front (no database), so a worker process can run it: the writer
    then only numbers, chains and writes. A row is the tuple :func:`_statement` selects as the driver
    gives it (body as JSON text; times as the driver's value, see :func:`_utc_iso`).

    Two paths give the same bytes: :meth:`encode` (orjson, one pass per row, for CSV and JSON Lines) and
    :meth:`record` + :meth:`pieces` (the reference: dicts, shared.export_verify's csv_cells and canonical
    JSON; for the PDF, and for any row whose values orjson would not write canonically). Tests compare them.
    """

    def __init__(self, spec: dict):
        self.spec = spec
        self.fmt = spec["fmt"]
        self._data_keys = spec["data_keys"]
        self._kid_bytes = {kid: kid.encode() for kid in spec["data_keys"]}
        self.with_health = spec["with_health"]
        self._withhold = {kind: (frozenset() if self.with_health else frozenset(names))
                          for kind, names in records.HEALTH_FIELDS_BY_KIND.items()}
        self._withhold_sorted = {kind: tuple(sorted(v)) for kind, v in self._withhold.items()}
        self.fingerprints = spec["fingerprints"]
        self.routing = spec["routing"]
        self.teams, self.regions, self.users = spec["teams"], spec["regions"], spec["users"]
        self._readable_keys = {}  # kind -> the body key of each readable CSV column

    def full_body(self, body: dict, health, kid) -> dict:
        if health is not None:
            body.update(json.loads(crypto.aead_decrypt(self._data_keys[kid], bytes(health), self._kid_bytes[kid])))
        return body

    def record(self, row) -> tuple[dict, dict, int | None, int | None] | None:
        """(disclosure form, annotations, team, region), or None when the filter's team / region leaves it out."""
        (record_id, rev, kind, device_id, author_user_id, body_text, health, kid, secret, signature, worker_id,
         occurred, received, _proof) = row  # the reference derives everything from the secret (tests compare the proof's use)
        body = json.loads(body_text)
        team, region = self.routing.route(kind, device_id, body)
        if not self.routing.wants(team, region):
            return None
        withhold = self._withhold.get(kind, frozenset())
        header = {"v": ENVELOPE_VERSION, "dev": device_id if signature is not None else None, "rid": record_id, "kind": kind, "rev": rev}
        context = {"worker_id": worker_id, "occurred_at": _utc_iso(occurred), "team": self.teams.get(team),
                   "region": self.regions.get(region), "received_at": _utc_iso(received)}
        if signature is None:  # made by a person on the dashboard: nothing a device signed
            if not withhold:
                body = self.full_body(body, health, kid)
            context["origin"] = "person"
            context["author"] = self.users.get(author_user_id)
            return ({"header": header, "fields": {k: v for k, v in body.items() if k not in withhold}, "salts": {},
                     "withheld": {}, "signature": None, "key": None}, context, team, region)
        context["origin"] = "device"
        body = self.full_body(body, health, kid)
        salts = envelope.field_salts(body, binascii.a2b_base64(secret))
        if withhold:
            shown = {k: v for k, v in body.items() if k not in withhold}
            withheld = {k: hashlib.sha256(salts[k] + canonical_json(body[k])).hexdigest()
                        for k in self._withhold_sorted[kind] if k in body}
        else:
            shown, withheld = body, {}
        return ({"header": header, "fields": shown, "salts": {k: _B64(salts[k], newline=False).decode("ascii") for k in shown},
                 "withheld": withheld, "signature": signature, "key": self.fingerprints.get(device_id)}, context, team, region)

    def pieces(self, record: dict, context: dict) -> tuple[bytes, bytes]:
        """The bytes of a line before and after its number: the chain is over ``before + n + after`` (CSV: before is
        empty, and the line is ``n,after``: see shared.export_verify.csv_line)."""
        if self.fmt == "csv":
            cells = fmt.csv_cells(0, record, context)
            del cells[0]
            return b"", ",".join(map(_csv_field, cells)).encode("utf-8")
        return (b'{"context":' + canonical_json(context) + b',"n":',
                b',"record":' + canonical_json(record) + b"}")

    def encode(self, rows) -> tuple[list, dict, set, int]:
        """For a batch of rows: ([(before n, after n) bytes of each line kept], by kind, devices, unsigned)."""
        out, by_kind, devices, unsigned = [], {}, set(), 0
        add = out.append
        line = self._line
        for row in rows:
            try:
                made = line(row)
            except _Slow:
                made = self.record(row)
                if made is not None:
                    record, context, _team, _region = made
                    made = (record["header"]["kind"], record["signature"] is not None, record["header"]["dev"],
                            self.pieces(record, context))
            if made is None:
                continue
            kind, signed, device, pieces = made
            by_kind[kind] = by_kind.get(kind, 0) + 1
            if signed:
                devices.add(device)
            else:
                unsigned += 1
            add(pieces)
        return out, by_kind, devices, unsigned

    def _add_health(self, body: dict, health: bytes | None, kid: str | None) -> None:
        """Put the decrypted health fields into ``body`` (the fast path: _Slow for a value orjson would write otherwise)."""
        if health is not None:
            extra, tame = _loads_tame(crypto.aead_decrypt(self._data_keys[kid], bytes(health), self._kid_bytes[kid]))
            if not tame:
                raise _Slow
            body.update(extra)

    def _disclosed(self, body: dict, health, kid, proof: str, withhold) -> tuple[dict, str, str]:
        """(shown fields, their salts and the withheld digests as canonical JSON) from the revision's stored
        proof (services.records.disclosure_proof), embedded as they are.

        Its split is the stored body's: health fields apart, which is what an export withholds (records.HEALTH_FIELDS_BY_KIND).
        """
        salts, health_salts, digests = proof.split("\n")
        if withhold:
            return body, salts, digests
        if health is not None:
            self._add_health(body, health, kid)
            salts = _dumps({**orjson.loads(salts), **orjson.loads(health_salts)}, option=_SORT).decode("ascii")
        return body, salts, "{}"

    def _derived(self, body: dict, health, kid, secret: str, withhold) -> tuple[dict, str, str]:
        """:meth:`_disclosed`, derived from the secret: revisions stored before the proof."""
        self._add_health(body, health, kid)
        salts = envelope.field_salts(body, binascii.a2b_base64(secret))
        sha, b64 = hashlib.sha256, _B64
        shown, salts_shown, withheld = {}, {}, {}
        for name, value in body.items():
            if name in withhold:
                withheld[name] = sha(salts[name] + _dumps(value, option=_SORT)).hexdigest()
            else:
                shown[name] = value
                salts_shown[name] = b64(salts[name], newline=False).decode("ascii")
        return shown, _dumps(salts_shown, option=_SORT).decode("ascii"), _dumps(withheld, option=_SORT).decode("ascii")

    def _line(self, row) -> tuple[str, bool, str | None, tuple[bytes, bytes]] | None:
        """The fast path for one row: (kind, signed, device, pieces), or None when the filter leaves it out.

        Raises _Slow for a row the reference path writes: made by a person (rare), or holding a value
        orjson would not write as canonical JSON does (shared.fast_json).
        """
        (record_id, rev, kind, device_id, _author, body_text, health, kid, secret, signature, worker_id,
         occurred, received, proof) = row
        if signature is None:
            raise _Slow
        body, tame = _loads_tame(body_text)
        if not tame or type(body) is not dict:
            raise _Slow
        routing = self.routing
        team, region = routing.route(kind, device_id, body)
        if not routing.wants(team, region):
            return None
        withhold = self._withhold.get(kind, _EMPTY)
        occurred, received = _utc_iso(occurred), _utc_iso(received)
        team, region = self.teams.get(team), self.regions.get(region)
        key = self.fingerprints.get(device_id)
        try:
            if proof is not None:
                shown, salts, withheld = self._disclosed(body, health, kid, proof, withhold)
            else:  # stored before the proof
                shown, salts, withheld = self._derived(body, health, kid, secret, withhold)
            if self.fmt != "csv":
                context = {"occurred_at": occurred, "origin": "device", "received_at": received, "region": region, "team": team,
                           "worker_id": worker_id}
                record = {"fields": shown, "header": {"dev": device_id, "kind": kind, "rev": rev, "rid": record_id, "v": ENVELOPE_VERSION},
                          "key": key, "salts": _Fragment(salts), "signature": signature, "withheld": _Fragment(withheld)}
                return kind, True, device_id, (b'{"context":' + _dumps(context, option=_SORT) + b',"n":',
                                               b',"record":' + _dumps(record, option=_SORT) + b"}")
            fields = _dumps(shown, option=_SORT).decode("utf-8")
        except TypeError:  # an integer outside 64 bits
            raise _Slow from None
        keys = self._readable_keys.get(kind)
        if keys is None:  # (body key, how it appears as a key in canonical JSON) of each readable column
            keys = self._readable_keys[kind] = [(key, f'"{key}":') for key in
                                                (fmt.TIME_FIELDS.get(kind, "") if name == "when" else name for name in fmt.CSV_READABLE)]
        # a withheld field's name is a key of the digests' JSON (their values are hex: no other '"name":' in it)
        readable = [WITHHELD_MARK if needle in withheld else _readable(shown.get(key)) for key, needle in keys]
        meta = [kind, record_id, rev, device_id or "", key or "", worker_id or "", occurred or "", team or "", region or "",
                received or "", "device"]
        text = ",".join((_csv_join(meta), _csv_join(readable), _V_TEXT, _csv_field(fields), _csv_field(salts), _csv_field(withheld),
                         _csv_field(signature)))
        return kind, True, device_id, (b"", text.encode("utf-8"))


def _csv_join(cells: list[str]) -> str:
    """The cells as csv.writer joins them (see _csv_field): at once when none needs quoting, the usual case."""
    text = ",".join(cells)
    if '"' in text or "\n" in text or "\r" in text or text.count(",") != len(cells) - 1:
        return ",".join([_csv_field(c) for c in cells])
    return text


_EMPTY: frozenset = frozenset()
_V_TEXT = str(ENVELOPE_VERSION)
WITHHELD_MARK = fmt.WITHHELD_MARK
_WORKER_ENCODER: _Encoder | None = None


def _init_encoder(spec: dict) -> None:
    global _WORKER_ENCODER
    _WORKER_ENCODER = _Encoder(spec)


def _encode_batch(packed) -> bytes | tuple:
    pieces, by_kind, devices, unsigned = _WORKER_ENCODER.encode(_unpack(packed))
    return _pack((pieces, by_kind, list(devices), unsigned))


def _pack(value):
    """marshal's bytes when the value has only plain types (rows as both drivers give them here, results): a
    batch crosses to a worker process and back as one bytes object, at a third of pickle's cost; else as is."""
    try:
        return marshal.dumps(value)
    except ValueError:  # e.g. a datetime from a driver the raw cursor does not format: pickled by the pool
        return value


def _unpack(value):
    return marshal.loads(value) if type(value) is bytes else value


def _pool_context():
    # fork: a worker starts at once, with the encoder's code already loaded (it touches no database
    # connection and no thread's state); elsewhere spawn
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


# --- PDF ---------------------------------------------------------------------------------

_FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")


def _unicode_font() -> tuple[str, str] | None:
    """(regular, bold) DejaVu Sans paths when installed (Vietnamese names need them)."""
    for d in _FONT_DIRS:
        regular, bold = os.path.join(d, "DejaVuSans.ttf"), os.path.join(d, "DejaVuSans-Bold.ttf")
        if os.path.exists(regular) and os.path.exists(bold):
            return regular, bold
    return None


class BundlePdf:
    """An A4 landscape document with a title block, a running header and 'page x of y'."""

    def __init__(self, title: str, subtitle: str, footer: str):
        from fpdf import FPDF

        outer = self

        class _Doc(FPDF):
            def header(self):
                self.set_font(outer.font, "B", 8)
                self.set_text_color(90)
                self.cell(0, 5, outer.title, new_x="LMARGIN", new_y="NEXT")
                self.set_text_color(0)
                if outer.columns and self.page_no() > 1:
                    outer._column_header()

            def footer(self):
                self.set_y(-10)
                self.set_font(outer.font, "", 7)
                self.set_text_color(90)
                self.cell(0, 5, outer.footer_text, align="L")
                self.set_x(self.l_margin)
                self.cell(0, 5, f"Page {self.page_no()} of {{nb}}", align="R")
                self.set_text_color(0)

        self.title, self.subtitle, self.footer_text = title, subtitle, footer
        self.columns: list[tuple[str, float]] = []
        self.doc = _Doc(orientation="L", unit="mm", format="A4")
        self.doc.set_auto_page_break(True, margin=14)
        self.doc.set_margins(10, 8, 10)
        fonts = _unicode_font()
        if fonts:
            self.doc.add_font("DejaVu", "", fonts[0])
            self.doc.add_font("DejaVu", "B", fonts[1])
            self.font = "DejaVu"
        else:
            self.font = "Helvetica"
        self.doc.add_page()

    def text(self, value: str) -> str:
        if self.font == "Helvetica":  # core fonts are Latin-1 only
            return value.encode("latin-1", "replace").decode("latin-1")
        return value

    def heading(self, text: str, size: int = 14) -> None:
        self.doc.set_font(self.font, "B", size)
        self.doc.multi_cell(0, size * 0.5, self.text(text), new_x="LMARGIN", new_y="NEXT")
        self.doc.ln(1)

    def paragraph(self, text: str, size: int = 8) -> None:
        self.doc.set_font(self.font, "", size)
        self.doc.multi_cell(0, 4, self.text(text), new_x="LMARGIN", new_y="NEXT")

    def key_values(self, pairs: list[tuple[str, str]]) -> None:
        for k, v in pairs:
            self.doc.set_font(self.font, "B", 8)
            self.doc.cell(38, 4.5, self.text(k))
            self.doc.set_font(self.font, "", 8)
            self.doc.multi_cell(0, 4.5, self.text(v), new_x="LMARGIN", new_y="NEXT")
        self.doc.ln(2)

    def table(self, columns: list[tuple[str, float]]) -> None:
        self.columns = columns
        self._column_header()

    def _column_header(self) -> None:
        d = self.doc
        d.set_font(self.font, "B", 7)
        d.set_fill_color(225, 230, 238)
        for name, width in self.columns:
            d.cell(width, 5, self.text(name), border=1, fill=True)
        d.ln(5)

    def row(self, cells: list[str], shade: bool = False) -> None:
        d = self.doc
        if d.will_page_break(4.5):
            d.add_page()
        d.set_font(self.font, "", 6.5)
        d.set_fill_color(246, 247, 250)
        for (name, width), value in zip(self.columns, cells):
            value = self.text(value)
            while value and d.get_string_width(value) > width - 1.5:
                value = value[:-2] + "…" if self.font != "Helvetica" else value[:-1]
            d.cell(width, 4.5, value, border="LR" if not shade else "LR", fill=shade)
        d.ln(4.5)

    def end_table(self) -> None:
        total = sum(w for _, w in self.columns)
        self.doc.cell(total, 0, "", border="T", new_x="LMARGIN", new_y="NEXT")
        self.columns = []
        self.doc.ln(3)

    def output(self) -> bytes:
        return bytes(self.doc.output())


_PDF_COLUMNS = [("#", 12), ("Time", 30), ("Kind", 18), ("Worker", 16), ("Site", 16), ("Status", 20), ("Temp °C", 14),
                ("Symptoms / exposure", 52), ("Team", 18), ("Region", 14), ("Device key", 32), ("Signature", 35)]


class SafetyLogPdf:
    """The readable rendering of a safety-log export (the proof is records.jsonl beside it)."""

    def __init__(self, filt: ExportFilter, export_id: str, created: datetime, who: Exporter, withheld: dict):
        self.filt, self.tz = filt, filt.tz
        f = filt.to_dict()
        scope = ", ".join(f"{k} {f[k]}" for k in ("region", "team", "worker") if f[k]) or "all regions, teams and workers"
        self.pdf = BundlePdf(f"fieldwatch safety log {f['from']} to {f['to']}: {scope}",
                             "", f"export {export_id} · verify: fieldwatch verify-export <bundle>")
        p = self.pdf
        p.heading("Safety log export")
        hidden = sorted({x for v in withheld.values() for x in v})
        p.key_values([
            ("Period", f"{f['from']} to {f['to']} (days in UTC{filt.utc_offset})"),
            ("Scope", scope),
            ("Kinds", ", ".join(filt.kinds)),
            ("Exported by", f"{who.name} ({who.role}, via {who.via}) at {created.astimezone(self.tz):%Y-%m-%d %H:%M} UTC{filt.utc_offset}"),
            ("Export id", export_id),
            ("Health fields", "included (the exporting role may see them)" if not hidden else
             f"withheld: {', '.join(hidden)}. Their salted digests are in records.jsonl, so every other field still verifies."),
            ("How to check", "This PDF is for reading. records.jsonl beside it carries each record's fields, salts and the device's "
                             "Ed25519 signature; manifest.json (signed with the operator's export key) holds the SHA-256 of every file. "
                             "Run: fieldwatch verify-export <bundle> --export-key <key from /api/v1/keys>."),
        ])
        p.table(_PDF_COLUMNS)

    def add(self, n: int, record: dict, context: dict) -> None:
        h, fields_ = record["header"], record["fields"]
        kind = h["kind"]
        when = fields_.get(fmt.TIME_FIELDS.get(kind, ""))
        try:
            when = datetime.fromisoformat(when).astimezone(self.tz).strftime("%Y-%m-%d %H:%M") if when else ""
        except (TypeError, ValueError):
            when = str(when)
        withheld = record["withheld"]
        if kind == "safety_check":
            status = "fit" if fields_.get("fit_for_duty") else "UNFIT"
            temp = "withheld" if "temperature_c" in withheld else str(fields_.get("temperature_c", ""))
            if "symptoms" in withheld or "exposure" in withheld:
                health = "withheld"
            else:
                health = ", ".join(fields_.get("symptoms") or []) or "no symptoms"
                health += f"; exposure {fields_.get('exposure', '')}"
        else:
            status, temp, health = str(fields_.get("status", "")), "", ""
        key = (record.get("key") or "")[:16]
        sig = (record.get("signature") or "unsigned (dashboard)")[:22]
        self.pdf.row([str(n), when, kind.replace("_", " "), str(fields_.get("worker_id", context.get("worker_id") or "")),
                      str(fields_.get("site_code") or ""), status, temp, health, context.get("team") or "",
                      context.get("region") or "", key, sig], shade=n % 2 == 0)

    def output(self, count: int) -> bytes:
        self.pdf.end_table()
        self.pdf.paragraph(f"{count} records. End of the safety log.")
        return self.pdf.output()


# --- the bundle ----------------------------------------------------------------------

def _check_allowed(who: Exporter, fmt_name: str, with_health: bool) -> None:
    if fmt_name not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}, not {fmt_name!r}")
    if who.role not in EXPORT_ROLES:
        raise Forbidden(f"a {who.role} may not export safety logs")
    if with_health and not may_see_health(who.role):
        raise Forbidden(f"a {who.role} may not export health data; export without it")


def export_steps(filt: ExportFilter, who: Exporter, fmt_name: str, sink, *, with_health: bool = False,
                 ring: KeyRing | None = None, tick: int = 5000, workers: int | None = None,
                 write_behind: bool = False) -> Iterator[int]:
    """Write a bundle into ``sink``, yielding the number of revisions read so far every ``tick`` of them.

    ``workers`` (default: the CPUs) is how many processes encode records: past POOL_AFTER rows, ``workers - 1``
    worker processes encode batches while this one reads the database, numbers, chains and writes, and encodes
    a batch itself whenever the workers have enough queued; 1 keeps everything in this process.

    ``write_behind``: the records file is written (deflated, hashed) by a thread a few batches behind
    (:class:`_Behind`); for a zip file, not for a streamed download.

    The generator's return value (``StopIteration.value``) is the :class:`ExportSummary`.
    If it is closed early (a download cut off), the audit log still gets the count sent.
    """
    _check_allowed(who, fmt_name, with_health)
    ring = ring or keyring()
    scope = _scope(filt, who)
    if fmt_name == "pdf":
        total = count_records(filt, who)
        if total > PDF_MAX_ROWS:
            raise Invalid(f"a PDF export holds at most {PDF_MAX_ROWS} records and this one has {total}: "
                          "narrow the filter or export CSV or JSON Lines")
    export_id = str(uuid.uuid4())
    created = utcnow()
    withheld = {k: sorted(v) for k, v in records.HEALTH_FIELDS_BY_KIND.items() if k in filt.kinds and not with_health}
    audit_details = {"export_id": export_id, "filter": filt.to_dict(), "format": fmt_name, "with_health": with_health,
                     "via": who.via, "exporter": who.name}
    audit.record("export.safety.start", user_id=who.user_id, target=export_id, **audit_details)
    db.session.commit()  # the start is on record before any data leaves

    summary = ExportSummary(export_id)
    device_keys = {d: (crypto.b64d(k) if k else b"") for d, k in db.session.execute(select(Device.id, Device.public_key))}
    spec = {
        "fmt": "csv" if fmt_name == "csv" else "jsonl", "with_health": with_health,
        "data_keys": {k["id"]: crypto.b64d(k["key"]) for k in ring.data["data_keys"]},
        "fingerprints": {d: crypto.fingerprint(k) for d, k in device_keys.items()},
        "routing": scope.routing,
        "teams": dict(db.session.execute(select(Team.id, Team.code)).all()),
        "regions": dict(db.session.execute(select(Region.id, Region.code)).all()),
        "users": dict(db.session.execute(select(User.id, User.username)).all()),
    }
    encoder = _Encoder(spec)
    devices: set[str] = set()
    chain = seed = fmt.chain_seed(export_id)
    data_name = fmt.RECORDS_CSV if fmt_name == "csv" else fmt.RECORDS_JSONL
    hashed = _Hashing(sink.open(data_name))
    out = _Behind(hashed) if write_behind else hashed
    csv_mode = fmt_name == "csv"
    if csv_mode:
        header = io.StringIO()
        csv.writer(header, lineterminator="\n").writerow(fmt.CSV_COLUMNS)
        out.write(header.getvalue().encode("utf-8"))
    pdf = SafetyLogPdf(filt, export_id, created, who, withheld) if fmt_name == "pdf" else None
    if workers is None:
        workers = os.cpu_count() or 1
    n = scanned = 0
    next_tick = tick
    completed = False
    pool = None
    switch_interval = sys.getswitchinterval()
    pending: deque = deque()
    sha256 = hashlib.sha256

    def write(pieces) -> None:
        # number, chain and write one batch: the only per-record work left to this process when workers encode
        nonlocal n, chain
        lines = []
        add = lines.append
        link = chain.encode("ascii")
        if csv_mode:
            for _before, after in pieces:  # the chain is over the row's bytes (shared.export_verify.csv_line)
                n += 1
                line = str(n).encode("ascii") + b"," + after
                link = sha256(link + line).hexdigest().encode("ascii")
                add(line + b"," + link + b"\n")
        else:
            for before, after in pieces:
                n += 1
                data = before + str(n).encode("ascii") + after
                link = sha256(link + data).hexdigest().encode("ascii")
                add(b'{"chain":"' + link + b'",' + data[1:] + b"\n")
        chain = link.decode("ascii")
        if lines:
            out.write(b"".join(lines))

    def collect(done) -> None:
        pieces, by_kind, devs, unsigned = done
        for kind, count in by_kind.items():
            summary.by_kind[kind] = summary.by_kind.get(kind, 0) + count
        devices.update(devs)
        summary.unsigned += unsigned
        write(pieces)

    result = _Rows(scope)
    try:
        for rows in result.batches():
            scanned += len(rows)
            if pdf is not None:  # at most PDF_MAX_ROWS, in this process: the PDF needs each record
                for row in rows:
                    made = encoder.record(row)
                    if made is None:
                        continue
                    if n + 1 > PDF_MAX_ROWS:
                        raise Invalid(f"a PDF export holds at most {PDF_MAX_ROWS} records: narrow the filter or export CSV or JSON Lines")
                    record, context, _team, _region = made
                    collect(([encoder.pieces(record, context)], {record["header"]["kind"]: 1},
                             () if record["signature"] is None else (record["header"]["dev"],), int(record["signature"] is None)))
                    pdf.add(n, record, context)
            elif pool is None and workers > 1 and scanned > POOL_AFTER:
                pool = ProcessPoolExecutor(workers - 1, mp_context=_pool_context(), initializer=_init_encoder, initargs=(spec,))
                # The pool's feeder and result threads share this process's GIL with the encoding done here: at the
                # default 5 ms switch interval they hand batches over late and the workers wait (~10% slower export)
                switch_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(switch_interval, POOL_SWITCH_INTERVAL))
            if pool is not None:
                # In order: a batch goes to the workers while they have fewer than two each queued, else this
                # process encodes it itself (no idle waiting, no copying for that batch). Memory stays flat.
                depth = 2 * (workers - 1)
                for i in range(0, len(rows), POOL_BATCH):
                    chunk = rows[i:i + POOL_BATCH]
                    if sum(1 for f in pending if type(f) is not tuple and not f.done()) < depth:
                        pending.append(pool.submit(_encode_batch, _pack(chunk)))
                    else:
                        pending.append(encoder.encode(chunk))
                    while pending and (len(pending) > depth + 2 or type(pending[0]) is tuple or pending[0].done()):
                        head = pending.popleft()
                        collect(head if type(head) is tuple else _unpack(head.result()))
            elif pdf is None:
                collect(encoder.encode(rows))
            if scanned >= next_tick:
                next_tick = (scanned // tick + 1) * tick
                yield scanned
        while pending:
            head = pending.popleft()
            collect(head if type(head) is tuple else _unpack(head.result()))
        out.close()  # inside: the writer thread may only now report a failed write (a full disk)
        completed = True
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            sys.setswitchinterval(switch_interval)
        result.close()
        summary.records, summary.scanned = n, scanned
        if not completed:
            with contextlib.suppress(Exception):  # stops the writer thread; the export has failed already
                out.close()
            db.session.rollback()
            audit.record("export.safety", user_id=who.user_id, target=export_id, records=n, completed=False, **audit_details)
            db.session.commit()
    summary.files[data_name] = {"role": "records", "sha256": hashed.sha256, "bytes": hashed.size, "records": n,
                                "chain_seed": seed, "chain_head": chain}

    if pdf is not None:
        blob = pdf.output(n)
        with _Hashing(sink.open(fmt.RECORDS_PDF)) as f:
            f.write(blob)
            summary.files[fmt.RECORDS_PDF] = {"role": "document", "sha256": f.sha256, "bytes": f.size}

    keys_doc = {"devices": {d: {"public_key": crypto.b64e(device_keys.get(d, b"")), "fingerprint": crypto.fingerprint(device_keys.get(d, b""))}
                            for d in sorted(devices)}}
    summary.devices = len(devices)
    write_file(sink, fmt.KEYS, json.dumps(keys_doc, indent=1, sort_keys=True).encode(), summary.files, "keys")

    manifest = {
        "format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION, "kind": "safety_export", "export_id": export_id,
        "created_at": created.isoformat(), "finished_at": utcnow().isoformat(), "exported_by": who.to_dict(),
        "filter": filt.to_dict(), "data_format": fmt_name,
        "counts": {"records": n, "by_kind": summary.by_kind, "devices": len(devices), "unsigned": summary.unsigned},
        "withheld": {"fields": sorted({f for v in withheld.values() for f in v}), "by_kind": withheld,
                     "reason": WITHHELD_REASON if withheld else None},
        "files": summary.files,
        "notes": ("Each record carries its fields, their salts, the digests of withheld fields and the device's Ed25519 signature; "
                  "'context' holds the server's annotations (not device-signed, covered by the chain and this manifest). "
                  "Records with origin 'person' were made on the dashboard and carry no device signature."),
    }
    summary.manifest = sign_manifest(manifest, ring)
    write_file(sink, fmt.MANIFEST, json.dumps(summary.manifest, indent=1, sort_keys=True, ensure_ascii=False).encode(), None, None)
    sink.close()
    audit.record("export.safety", user_id=who.user_id, target=export_id, records=n, by_kind=summary.by_kind,
                 devices=len(devices), completed=True, **audit_details)
    db.session.commit()
    return summary


def sign_manifest(manifest: dict, ring: KeyRing) -> dict:
    """Sign with the export key; names the key so a reader can compare it with /api/v1/keys."""
    public = ring.export_public
    manifest = {**manifest, "export_key": {"public": public, "fingerprint": crypto.fingerprint(crypto.b64d(public))}}
    return sign_document(ring.export_private, manifest)


def write_file(sink, name: str, data: bytes, files: dict | None, role: str | None) -> None:
    """Write a small file of a bundle in one piece; listed with its hash and size in ``files`` when given (not the manifest itself)."""
    with _Hashing(sink.open(name)) as f:
        f.write(data)
    if files is not None:
        files[name] = {"role": role, "sha256": f.sha256, "bytes": f.size}


def _run(steps: Iterator[int], progress: Callable[[int], None] | None) -> ExportSummary:
    last = 0
    while True:
        try:
            n = next(steps)
        except StopIteration as stop:
            if progress:
                progress(stop.value.scanned - last)
            return stop.value
        if progress:
            progress(n - last)
        last = n


def open_sink(path: str):
    """A zip when ``path`` ends with .zip, else a new folder; Invalid, saying why, when it cannot be written."""
    try:
        if path.lower().endswith(".zip"):
            if os.path.exists(path):
                raise Invalid(f"{path} exists already")
            return _ZipSink(open(path, "xb"), owned=True)
        return _DirSink(path)
    except FileNotFoundError:
        raise Invalid(f"cannot write {path}: the folder {os.path.dirname(path) or '.'} does not exist") from None
    except OSError as exc:  # no permission, a read-only disk, a file where a folder should be...
        raise Invalid(f"cannot write {path}: {exc.strerror or exc}") from None


def write_bundle(filt: ExportFilter, who: Exporter, fmt_name: str, path: str, *, with_health: bool = False,
                 progress: Callable[[int], None] | None = None, ring: KeyRing | None = None,
                 workers: int | None = None) -> ExportSummary:
    """Write a bundle to ``path`` (a folder, or a zip when it ends with .zip); ``workers``: see :func:`export_steps`."""
    sink = open_sink(path)
    try:
        summary = _run(export_steps(filt, who, fmt_name, sink, with_health=with_health, ring=ring, workers=workers,
                                    write_behind=sink.deflates), progress)
    finally:
        sink.release()
    summary.path = path
    return summary


def stream_safety_export(filt: ExportFilter, user: User | Exporter, fmt_name: str, *, with_health: bool = False,
                         ring: KeyRing | None = None, workers: int = 1) -> Iterator[bytes]:
    """The bundle as a zip, in chunks, for a download response (memory stays flat). In the web server's
    process by default (``workers=1``): a request does not fork the server; see :func:`export_steps`.

    Checks permissions and the filter *before* the first chunk, so a caller
    gets Forbidden / Invalid as an exception, not a broken download::

        chunks = stream_safety_export(filt, current_user, "csv", with_health=False)
        return Response(chunks, mimetype="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="safety-export.zip"'})
    """
    who = user if isinstance(user, Exporter) else Exporter.of_user(user)
    _check_allowed(who, fmt_name, with_health)
    _scope(filt, who)  # raises for an unknown region / team / worker, or a region the user may not see
    pipe = _Pipe()
    sink = _ZipSink(pipe)
    steps = export_steps(filt, who, fmt_name, sink, with_health=with_health, ring=ring, tick=YIELD_PER, workers=workers)

    def chunks() -> Iterator[bytes]:
        try:
            while True:
                try:
                    next(steps)
                except StopIteration:
                    break
                data = pipe.drain()
                if data:
                    yield data
            data = pipe.drain()
            if data:
                yield data
        finally:
            steps.close()

    return chunks()


def export_filename(filt: ExportFilter, fmt_name: str) -> str:
    """A file name for a download: safety-export_2026-11-01_2026-11-30_HN_csv.zip"""
    parts = ["safety-export", filt.date_from.isoformat(), filt.date_to.isoformat()] + [p for p in (filt.region, filt.team, filt.worker) if p]
    return "_".join(parts + [fmt_name]) + ".zip"


__all__ = ["ExportFilter", "Exporter", "ExportSummary", "FORMATS", "may_see_health", "write_bundle", "stream_safety_export",
           "export_steps", "export_filename", "count_records", "sign_manifest", "PDF_MAX_ROWS"]
