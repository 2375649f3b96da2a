"""Export bundles: their format, and the offline verifier an auditor runs.

Imports only ``shared`` and the standard library (never ``server``, flask or
sqlalchemy): a reader with nothing but the bundle and fieldwatch installed
can check it, with ``fieldwatch verify-export PATH`` or
``python -m shared.export_verify PATH``.

A bundle is a folder or a ``.zip`` holding:

- ``manifest.json``: what the bundle is (kind, filter, counts, exporting
  user, time, format version, withheld fields and why), the SHA-256 and size
  of every other file, and the head of each data file's record chain; signed
  (``sig``) with the server's Ed25519 *export key*, named in
  ``export_key`` and published at ``/api/v1/keys``.
- ``keys.json``: the public key of every device that signed a record in it.
- the data: ``records.jsonl`` or ``records.csv`` (a PDF export carries
  ``records.pdf`` to read and ``records.jsonl`` to verify); a report carries
  ``report.csv`` and ``report.pdf``.

Each record carries its disclosure form (:func:`shared.envelope.disclose`):
the shown fields with their salts, the digests of withheld fields, the device
signature and the device key's fingerprint, so its signature is checked
without the withheld values. Each line also carries ``chain``:
``SHA-256(previous chain || the line without chain)``, seeded from the export
id, whose last value the signed manifest holds. A changed, removed, added or
reordered record is therefore *named*, whatever part of it changed, even the
server's unsigned annotations (``context``). "The line without chain" is, for
JSON Lines, the canonical JSON of the line's object without ``chain``; for CSV
(format version 2), the row's bytes as written up to the comma before its
chain cell. Version 1 bundles (CSV chained over the canonical JSON of the
row's cells) still verify.

Speed: records are read with orjson and their signed digests computed over
canonical JSON made by orjson (shared.fast_json: byte for byte canonical_json,
which it falls back to for the rare value orjson would write otherwise);
:func:`verify_disclosed` is shared.envelope's check, the same bytes, fewer
calls. A records file is read in blocks, hashed as it is read and cut into
chunks of whole lines; with ``workers`` > 1, ``workers - 1`` processes parse and
check chunks (raw bytes, cheap to send) and this one checks a chunk itself
whenever they have enough queued. A chunk of usual records (signed, chained,
numbered in turn) is checked by :func:`_fast_jsonl` / :func:`_fast_csv`, the
same checks as :func:`check_record` on values found tame at C speed, and comes
back as a summary; any other record goes through the reference functions, so
every failure is named exactly as the sequential reader
(:func:`_verify_records_sequential`) names it.
"""
from __future__ import annotations

import argparse
import binascii
import csv
import hashlib
import io
import itertools
import json
import os
import re
import sys
import zipfile
import zlib
from collections import Counter, deque
from operator import itemgetter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping

import orjson

from . import crypto
from .canonical import canonical_json
from .envelope import FORMAT_VERSION as ENVELOPE_VERSION
from .envelope import SIGNED_HEADER_KEYS
from .fast_json import canon, canon_trusted, loads, loads_tame, tame
from .schemas import TIME_FIELD
from .signing import verify_document

_dumps, _SORT = orjson.dumps, orjson.OPT_SORT_KEYS

FORMAT = "fieldwatch-export"
FORMAT_VERSION = 2  # 2: a CSV row's chain is over its bytes as written (1: over canonical JSON of its cells)
READABLE_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
KEYS = "keys.json"
RECORDS_JSONL = "records.jsonl"
RECORDS_CSV = "records.csv"
RECORDS_PDF = "records.pdf"
WITHHELD_MARK = "[withheld]"

# CSV: the server's annotations, then columns rendered from the signed fields
# (checked against them), then the proof (what the signature is checked on).
CSV_META = ["n", "kind", "record_id", "rev", "device_id", "key", "worker_id", "occurred_at", "team", "region", "received_at", "origin"]
CSV_READABLE = ["when", "site_code", "status", "fit_for_duty", "temperature_c", "symptoms", "exposure", "ppe",
                "in_quarantine_area", "position", "notes"]
CSV_PROOF = ["v", "fields", "salts", "withheld", "signature"]
CSV_COLUMNS = CSV_META + CSV_READABLE + CSV_PROOF + ["chain"]
_CONTEXT_KEYS = ("worker_id", "occurred_at", "team", "region", "received_at", "origin")
TIME_FIELDS = TIME_FIELD  # the record's own time, per kind (shared.schemas)
_CHAIN_PREFIX = b'{"chain":"'
_CHAIN_LEN = 64
BATCH = 2000  # per task: kB of a records file (the chunked pass), records (the sequential reader)


# --- writing (used by the server's exporter, so both sides agree byte for byte) ----------

def chain_seed(export_id: str) -> str:
    """The chain value before the first record of an export."""
    return hashlib.sha256(b"fieldwatch-export-chain:" + export_id.encode("utf-8")).hexdigest()


def chain_next(previous: str, data: bytes) -> str:
    """The chain value after a record whose canonical bytes (without ``chain``) are ``data``."""
    return hashlib.sha256(previous.encode("ascii") + data).hexdigest()


def jsonl_line(n: int, record: Mapping[str, Any], context: Mapping[str, Any], previous: str) -> tuple[bytes, str]:
    """(one canonical JSON line, the new chain value). ``chain`` sorts first, so the line stays canonical."""
    data = canonical_json({"context": context, "n": n, "record": record})
    chain = chain_next(previous, data)
    return _CHAIN_PREFIX + chain.encode("ascii") + b'",' + data[1:] + b"\n", chain


def csv_field(cell: str) -> str:
    """One CSV cell as written: csv.writer's minimal quoting, except that a lone carriage return is quoted too
    (csv.writer leaves it bare, and csv.reader would then end the row there)."""
    if '"' in cell:
        return '"' + cell.replace('"', '""') + '"'
    if "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell + '"'
    return cell


def csv_line(n: int, record: Mapping[str, Any], context: Mapping[str, Any], previous: str) -> tuple[bytes, str]:
    """(one CSV row with its line end, the new chain value): the chain is over the row's bytes before it."""
    data = ",".join(map(csv_field, csv_cells(n, record, context))).encode("utf-8")
    chain = chain_next(previous, data)
    return data + b"," + chain.encode("ascii") + b"\n", chain


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canon(value).decode("utf-8")


def _cell_tame(value: Any) -> str:
    """_cell for a value known to be tame (shared.fast_json)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return _dumps(value, option=_SORT).decode("utf-8")
    except TypeError:  # an integer outside 64 bits
        return canon(value).decode("utf-8")


def readable_cells(kind: str, fields: Mapping[str, Any], withheld: Iterable[str], *, tame: bool = False) -> list[str]:
    """The readable CSV columns of a record, rendered from its signed fields (``tame``: see verify_disclosed)."""
    cell = _cell_tame if tame else _cell
    time_key = TIME_FIELDS.get(kind, "")
    if not isinstance(withheld, (dict, set, frozenset)):
        withheld = set(withheld)
    return [WITHHELD_MARK if key in withheld else cell(fields.get(key))
            for key in (time_key if name == "when" else name for name in CSV_READABLE)]


def csv_cells(n: int, record: Mapping[str, Any], context: Mapping[str, Any], *, tame: bool = False) -> list[str]:
    """A record's CSV row without its chain column (``tame``: see verify_disclosed)."""
    cell = _cell_tame if tame else _cell
    h = record["header"]
    meta = [str(n), h["kind"], h["rid"], h["rev"], cell(h.get("dev")), cell(record.get("key"))]
    meta += [cell(context.get(k)) for k in _CONTEXT_KEYS]
    proof = [str(h["v"]), cell(record["fields"]), cell(record["salts"]), cell(record["withheld"]), cell(record.get("signature"))]
    return meta + readable_cells(h["kind"], record["fields"], record["withheld"], tame=tame) + proof


def canonical_strings(cells: list[str]) -> bytes:
    """canonical_json of a list of strings, byte for byte (tests compare), in one call of orjson."""
    return canon(cells)


def csv_chain_v1(previous: str, cells: list[str]) -> str:
    """A version 1 CSV row's chain value: over the canonical JSON of its cells (before the chain)."""
    return chain_next(previous, canonical_strings(cells))


def _parse_csv(cells: list[str]) -> tuple[int, dict, dict, bool]:
    """(n, record, annotations, whether its values are tame) from one CSV row."""
    row = dict(zip(CSV_COLUMNS, cells))
    fields, tame_f = loads_tame(row["fields"])
    salts, tame_s = loads_tame(row["salts"])
    hidden, tame_w = loads_tame(row["withheld"])
    record = {
        "header": {"v": int(row["v"]), "dev": row["device_id"] or None, "rid": row["record_id"], "kind": row["kind"], "rev": row["rev"]},
        "fields": fields, "salts": salts, "withheld": hidden,
        "signature": row["signature"] or None, "key": row["key"] or None,
    }
    context = {k: row[k] or None for k in _CONTEXT_KEYS}
    return int(row["n"]), record, context, tame_f and tame_s and tame_w


# --- reading a bundle ---------------------------------------------------------------

# A file that cannot be read to its end: a damaged zip (CRC, deflate stream, truncation) or disk.
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError)


def _damaged(exc: BaseException) -> str:
    return f"cannot be read to the end ({exc}): the file, or the zip holding it, is damaged"


# What zipfile raises, beside BadZipFile, for a zip whose version, flag or method bytes were damaged ("zip
# file version 23.5", "encrypted, password required", "compression method not supported"): a Bundle turns
# them into BadZipFile, so to its reader they are a damaged zip like any other.
_ZIP_REFUSALS = (RuntimeError, NotImplementedError)


class Bundle:
    """A folder or a zip, read-only."""

    def __init__(self, path: str):
        self.path = path
        self._zip = None
        if os.path.isfile(path):
            try:
                self._zip = zipfile.ZipFile(path)
            except _ZIP_REFUSALS as exc:
                raise zipfile.BadZipFile(str(exc)) from exc
        elif not os.path.isdir(path):
            raise FileNotFoundError(f"no bundle at {path}")

    def names(self) -> list[str]:
        if self._zip is not None:
            return sorted(i.filename for i in self._zip.infolist() if not i.is_dir())
        out = []
        for root, _dirs, files in os.walk(self.path):
            for f in files:
                out.append(os.path.relpath(os.path.join(root, f), self.path).replace(os.sep, "/"))
        return sorted(out)

    def open(self, name: str):
        if self._zip is not None:
            try:
                return self._zip.open(name)
            except _ZIP_REFUSALS as exc:
                raise zipfile.BadZipFile(f"{name}: {exc}") from exc
        return open(os.path.join(self.path, name), "rb")

    def read(self, name: str) -> bytes:
        with self.open(name) as f:
            return f.read()

    def close(self) -> None:
        if self._zip is not None:
            self._zip.close()


def file_digest(f, chunk: int = 1 << 20) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    while True:
        block = f.read(chunk)
        if not block:
            return h.hexdigest(), size
        h.update(block)
        size += len(block)


# --- verifying ----------------------------------------------------------------------

@dataclass
class Problem:
    """One failed check, naming the file or record."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Result:
    """What :func:`verify_bundle` found."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    records: int = 0
    verified: int = 0
    unsigned: int = 0
    by_kind: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    max_named: int = 1000
    hidden: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.hidden

    def fail(self, where: str, message: str) -> None:
        if len(self.problems) < self.max_named:
            self.problems.append(Problem(where, message))
        else:
            self.hidden += 1


def _record_name(n: Any, record: Any) -> str:
    rid = None
    if isinstance(record, dict) and isinstance(record.get("header"), dict):
        rid = record["header"].get("rid")
    return f"record #{n}" + (f" ({rid})" if rid else "")


# The per-record check runs in worker processes for large bundles.
_KEYS: dict[str, bytes] = {}
_WITHHELD: dict[str, frozenset] = {}
_FINGERPRINTS: dict[bytes, str] = {}  # public key -> crypto.fingerprint (one SHA-256 per key, not per record)


def _init_worker(keys: dict, withheld: dict) -> None:
    global _KEYS, _WITHHELD
    _KEYS, _WITHHELD = keys, {k: frozenset(v) for k, v in withheld.items()}


def _b64d(text: Any) -> bytes:
    """crypto.b64d (strict standard base64, ValueError otherwise) without its two Python calls (tests compare)."""
    if type(text) is str:
        return binascii.a2b_base64(text, strict_mode=True)
    return crypto.b64d(text)


def verify_disclosed(record: Mapping[str, Any], device_public: bytes, tame: bool = False) -> bool:
    """shared.envelope.verify_disclosed: the same check on the same bytes, with canonical JSON through orjson
    (shared.fast_json) and fewer calls per field, as a bundle holds a few hundred thousand records.

    ``tame``: the caller read ``record`` with shared.fast_json.loads_tame and found it tame, so no value
    needs the tameness check again (a value orjson cannot write still goes to canonical_json).
    """
    try:
        digests = dict(record["withheld"])
        salts = record["salts"]
        sha = hashlib.sha256
        if tame:
            a2b = binascii.a2b_base64
            for name, value in record["fields"].items():
                try:
                    data = _dumps(value, option=_SORT)
                except TypeError:  # an integer outside 64 bits
                    data = canon(value)
                salt = salts[name]
                salt = a2b(salt, strict_mode=True) if type(salt) is str else _b64d(salt)  # _b64d, inline
                digests[name] = sha(salt + data).hexdigest()
        else:
            for name, value in record["fields"].items():
                digests[name] = sha(_b64d(salts[name]) + canon(value)).hexdigest()
        signature = _b64d(record["signature"])
        header = record["header"]
        signed = {"h": {k: header[k] for k in SIGNED_HEADER_KEYS}, "d": digests}
        message = canon_trusted(signed) if tame else canon(signed)
    except (KeyError, TypeError, ValueError, AttributeError):
        return False
    return crypto.verify(device_public, signature, message)


def check_record(record: Any, context: Any, keys: Mapping[str, bytes], withheld: Mapping[str, frozenset],
                 tame: bool = False) -> tuple[str, str | None]:
    """('signed' | 'unsigned' | 'bad', message) for one record; ``tame``: see :func:`verify_disclosed`."""
    try:
        header = record["header"]
        kind, fields_, hidden = header["kind"], record["fields"], record["withheld"]
        if not isinstance(fields_, dict) or not isinstance(hidden, dict) or not isinstance(context, dict):
            return "bad", "fields, withheld and context must be objects"
    except (KeyError, TypeError):
        return "bad", "not a record (header, fields, withheld missing)"
    shown = sorted(set(withheld.get(kind, ())) & set(fields_))
    if shown:
        return "bad", f"shows {', '.join(shown)}, which the manifest says are withheld"
    if context.get("worker_id") is not None and "worker_id" in fields_ and fields_["worker_id"] != context["worker_id"]:
        return "bad", "worker_id annotation differs from the signed worker_id"
    if record.get("signature") is None:
        if context.get("origin") == "person":
            return "unsigned", None
        return "bad", "no device signature"
    device = header.get("dev")
    public = keys.get(device)
    if public is None:
        return "bad", f"device {device} is not in {KEYS}"
    fingerprint = _FINGERPRINTS.get(public)
    if fingerprint is None:
        if len(_FINGERPRINTS) > 4096:
            _FINGERPRINTS.clear()
        fingerprint = _FINGERPRINTS[public] = crypto.fingerprint(public)
    if record.get("key") != fingerprint:
        return "bad", f"device key fingerprint {record.get('key')} differs from {KEYS}'s key for device {device} ({fingerprint})"
    if header.get("v") != ENVELOPE_VERSION:
        return "bad", f"record format {header.get('v')} is not supported"
    if not verify_disclosed(record, public, tame):
        return "bad", "device signature does not verify: a field, salt, digest or header was changed"
    return "signed", None


def _check_batch_jsonl(lines: list[tuple[int, bytes]]) -> list[tuple]:
    out = []
    for lineno, line in lines:
        try:
            obj, tame = loads_tame(line)
            n, record, context = obj["n"], obj["record"], obj["context"]
        except (ValueError, KeyError, TypeError):
            out.append((lineno, None, None, None, "bad", "not a valid record line (JSON)"))
            continue
        status, message = check_record(record, context, _KEYS, _WITHHELD, tame)
        out.append((lineno, n, _rid(record), _kind(record), status, message))
    return out


def _check_batch_csv(rows: list[tuple[int, list[str]]]) -> list[tuple]:
    out = []
    for lineno, cells in rows:
        try:
            if len(cells) != len(CSV_COLUMNS):
                raise ValueError(f"{len(cells)} columns, expected {len(CSV_COLUMNS)}")
            n, record, context, tame = _parse_csv(cells)
        except (ValueError, KeyError, TypeError) as exc:
            out.append((lineno, None, None, None, "bad", f"not a valid record row ({exc})"))
            continue
        status, message = check_record(record, context, _KEYS, _WITHHELD, tame)
        if message is None:
            expected = csv_cells(n, record, context, tame=tame)
            differs = [c for c, a, b in zip(CSV_COLUMNS, cells, expected) if a != b]
            if differs:
                status, message = "bad", f"column(s) {', '.join(differs)} differ from the signed fields"
        out.append((lineno, n, _rid(record), _kind(record), status, message))
    return out


def _rid(record):
    try:
        return record["header"]["rid"]
    except (KeyError, TypeError):
        return None


def _kind(record):
    try:
        return record["header"]["kind"]
    except (KeyError, TypeError):
        return None


def _iter_jsonl(f) -> Iterator[tuple[int, bytes, str | None]]:
    """(line number, line, chain data or None when the line is not in chain form)."""
    for lineno, line in enumerate(f, 1):
        line = line.rstrip(b"\n")
        if line.startswith(_CHAIN_PREFIX) and line[len(_CHAIN_PREFIX) + _CHAIN_LEN:len(_CHAIN_PREFIX) + _CHAIN_LEN + 2] == b'",':
            chain = line[len(_CHAIN_PREFIX):len(_CHAIN_PREFIX) + _CHAIN_LEN].decode("ascii", "replace")
            yield lineno, line, chain
        else:
            yield lineno, line, None


class _HashingReader(io.RawIOBase):
    """Reads through ``raw``, hashing and counting: a records file is hashed in the pass that checks its records."""

    def __init__(self, raw):
        self._raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.size += n
        return n

    def finish(self) -> tuple[str, int]:
        """(SHA-256, size) of the whole file, reading what is left."""
        while True:
            data = self._raw.read(1 << 20)
            if not data:
                return self.sha256.hexdigest(), self.size
            self.sha256.update(data)
            self.size += len(data)


def _judge(result: Result, name: str, counted: int | None, next_n: int, lineno: int, n: Any, rid: Any, kind: Any,
           status: str, message: str | None, chained: bool) -> int:
    """Count one checked record into ``result``, naming what is wrong with it; returns the next number expected."""
    result.records += 1
    by_kind = result.by_kind
    if status == "signed" and type(n) is int and n == next_n and (counted is None or n <= counted) and chained:
        # the usual record: in its place, in the manifest, chained, signed
        result.verified += 1
        if kind is not None:
            by_kind[kind] = by_kind.get(kind, 0) + 1
        return n + 1
    where = f"{name} line {lineno}" if n is None else f"{name} record #{n}" + (f" ({rid})" if rid else "")
    if n is not None and isinstance(n, int):
        if n > next_n:
            missing = f"#{next_n}" if n == next_n + 1 else f"#{next_n} to #{n - 1}"
            result.fail(f"{name} record {missing}", "missing (the record numbers jump here)")
        elif n < next_n:
            result.fail(where, f"out of order or repeated (expected #{next_n})")
        next_n = max(next_n, n + 1)
    if isinstance(n, int) and counted is not None and n > counted:
        result.fail(where, f"not in the manifest, which counts {counted} records")
    if not chained:
        result.fail(where, "changed, added, removed or moved: its chain value does not follow from the record before it")
    if status == "bad":
        result.fail(where, message or "invalid")
        return next_n
    if status == "unsigned":
        result.unsigned += 1
    else:
        result.verified += 1
    if kind is not None:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    return next_n


def _verify_records_sequential(bundle: Bundle, name: str, entry: dict, result: Result, keys: dict, withheld: dict,
                               workers: int, progress: Callable[[int], None] | None, version: int) -> tuple[str, int]:
    """The sequential reader (csv.reader over the whole file): for a CSV file whose quoting defeats the chunks."""
    csv_mode = _csv_mode(name, version)
    expected_head = entry.get("chain_head")
    chain = entry.get("chain_seed")
    batch_size = BATCH
    pending: deque = deque()
    next_n = 1
    digest = (hashlib.sha256().hexdigest(), 0)

    def raw_items() -> Iterator[tuple[int, Any, bool]]:
        nonlocal chain, digest
        with bundle.open(name) as raw:
            hashing = _HashingReader(raw)
            f = io.BufferedReader(hashing, 1 << 16)
            if csv_mode:
                text = io.TextIOWrapper(f, encoding="utf-8", errors="replace", newline="")
                taken: list[str] = []  # the lines of the row csv.reader is reading (a quoted cell may hold line ends)

                def lines() -> Iterator[str]:
                    for line in text:
                        taken.append(line)
                        yield line

                reader = csv.reader(lines())
                header = next(reader, None)
                if header != CSV_COLUMNS:
                    result.fail(name, "the CSV header row is not the export's columns")
                taken.clear()
                for cells in reader:
                    lineno = reader.line_num
                    if csv_mode == CSV_V1:
                        data, stored, link = _csv_chain_parts(cells)
                    else:
                        data, stored, link = _csv_line_chain_parts(_without_line_end("".join(taken)).encode("utf-8"), cells)
                    taken.clear()
                    ok = _link(chain, data, stored)
                    chain = link
                    yield lineno, cells, ok
            else:
                for lineno, line, stored in _iter_jsonl(f):
                    if not line:
                        continue
                    # after a line that is not in chain form the next link cannot be checked (that line is named)
                    ok = chain is None or (stored is not None and chain_next(chain, b"{" + line[len(_CHAIN_PREFIX) + _CHAIN_LEN + 2:]) == stored)
                    chain = stored
                    yield lineno, line, ok
            f.read()  # to the end (a reader stops at its last row), so the hash covers every byte
            digest = hashing.finish()

    check = _check_batch_csv if csv_mode else _check_batch_jsonl
    chain_bad: set[int] = set()

    def consume(results) -> None:
        nonlocal next_n
        counted = entry.get("records")
        for lineno, n, rid, kind, status, message in results:
            next_n = _judge(result, name, counted, next_n, lineno, n, rid, kind, status, message, lineno not in chain_bad)
        if progress:
            progress(len(results))

    pool = None
    depth = 2 * (workers - 1)  # batches queued per worker process: it never waits for this one

    def dispatch(batch: list, more: bool) -> None:
        # In order: to a worker process while one has room, else checked here (this process works too).
        # A few batches in flight: memory stays flat. A bundle of one batch starts no process.
        nonlocal pool
        if pool is None and workers > 1 and more:
            pool = ProcessPoolExecutor(workers - 1, initializer=_init_worker, initargs=(keys, withheld))
        if pool is not None and sum(1 for f in pending if type(f) is not list and not f.done()) < depth:
            pending.append(pool.submit(check, batch))
        else:
            pending.append(check(batch))
        while pending and (len(pending) > depth + 2 or type(pending[0]) is list or pending[0].done()):
            head = pending.popleft()
            consume(head if type(head) is list else head.result())

    batch = []
    try:
        for lineno, item, chain_ok in raw_items():
            if not chain_ok:
                chain_bad.add(lineno)
            batch.append((lineno, item))
            if len(batch) >= batch_size:
                dispatch(batch, True)
                batch = []
        if batch:
            dispatch(batch, False)
        while pending:
            head = pending.popleft()
            consume(head if type(head) is list else head.result())
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if expected_head is not None and chain != expected_head:
        result.fail(name, "the last record's chain value differs from the manifest's: records were removed or added at the end")
    return digest


# --- the chunked pass: raw bytes to the worker processes, which parse, check and summarise ---------
#
# The file is read in blocks of about BATCH kB, hashed as it is read, and cut after a line end (CSV: after a
# line ending in ``,`` + 64 hex digits, the chain column, so a quoted multi-line cell is not cut in the usual
# case). Each chunk of bytes is parsed and checked by a worker process, or by this one, by _check_chunk: for a
# chunk whose every record is the usual one (signed, chained, numbered in turn) it sends back a summary, else
# the per-record results of _check_batch_jsonl / _check_batch_csv. The chain link into a chunk's first record
# is checked here, from the previous chunk's last chain value. A CSV chunk that was cut inside a quoted cell
# (found by a sentinel row after it) makes the whole file be checked again by the sequential reader.

_SIMPLE = frozenset({str, int, bool, type(None)})  # values fast_json.tame passes without looking further
_sha = hashlib.sha256
_hexdigest = type(hashlib.sha256()).hexdigest
_loads_orjson = orjson.loads
_HEX64 = re.compile(rb"[0-9a-f]{64}")
_CSV_SENTINEL = "fieldwatch:end-of-chunk\n"
CSV_V1, CSV_V2 = 1, 2  # csv_mode of a CSV records file: how its rows are chained (format version 1 or 2)
_N_CSV = len(CSV_COLUMNS)
_I_N, _I_V = CSV_COLUMNS.index("n"), CSV_COLUMNS.index("v")
_I_FIELDS, _I_SALTS, _I_WITHHELD = CSV_COLUMNS.index("fields"), CSV_COLUMNS.index("salts"), CSV_COLUMNS.index("withheld")
_I_READ0 = len(CSV_META)
_I_READ1 = _I_READ0 + len(CSV_READABLE)
_READABLE_KEYS: dict[Any, tuple] = {}  # kind -> the field read by each readable column
_KIND_OF = itemgetter(3)
_SIGNED_H = SIGNED_HEADER_KEYS
_SIGNED_SET = frozenset(SIGNED_HEADER_KEYS)


class _Misaligned(Exception):
    """A CSV chunk was cut inside a quoted cell: the file is read again in one sequential pass."""


def _fingerprint(public: bytes) -> str:
    fingerprint = _FINGERPRINTS.get(public)
    if fingerprint is None:
        if len(_FINGERPRINTS) > 4096:
            _FINGERPRINTS.clear()
        fingerprint = _FINGERPRINTS[public] = crypto.fingerprint(public)
    return fingerprint


def _fast_signed(kind: Any, device: Any, signature: Any, key: Any, worker: Any, fields_: dict, hidden: dict, salts: dict,
                 signed_header: dict) -> bool:
    """True only when check_record(..., tame=True) would give ('signed', None) for a record of these parts (each a
    dict where one is named; values already found tame; ``signed_header``: the header's SIGNED_HEADER_KEYS, ``v``
    already found to be ENVELOPE_VERSION); False when it may not: the caller then asks check_record."""
    w = _WITHHELD.get(kind)
    if w and not w.isdisjoint(fields_):
        return False
    if worker is not None and "worker_id" in fields_ and fields_["worker_id"] != worker:
        return False
    if type(signature) is not str or type(device) is not str:
        return False
    public = _KEYS.get(device)
    if public is None or key != (_FINGERPRINTS.get(public) or _fingerprint(public)):
        return False
    # verify_disclosed(tame=True): the digest of every shown field, sha256(salt + canonical value), over the withheld ones
    digests = dict(hidden)
    sha, a2b, dumps, sort = _sha, binascii.a2b_base64, _dumps, _SORT
    for name, value in fields_.items():
        digests[name] = sha(a2b(salts[name], strict_mode=True) + dumps(value, option=sort)).hexdigest()
    message = dumps({"h": signed_header, "d": digests}, option=sort)
    return crypto.verify(public, a2b(signature, strict_mode=True), message)


def _check_line_jsonl(lineno: int, line: bytes) -> tuple:
    return _check_batch_jsonl([(lineno, line)])[0]


def _check_row_csv(lineno: int, cells: list[str]) -> tuple:
    return _check_batch_csv([(lineno, cells)])[0]


_LINE_KEYS = frozenset(("chain", "context", "n", "record"))
_RECORD_KEYS = frozenset(("fields", "header", "key", "salts", "signature", "withheld"))


def _fast_jsonl(line: bytes) -> tuple | None:
    """(n, rid, kind) when the line is a usual signed record (see _fast_signed), else None."""
    obj = _loads_orjson(line)
    if type(obj) is not dict or obj.keys() != _LINE_KEYS:
        return None
    record, context, n = obj["record"], obj["context"], obj["n"]
    if type(record) is not dict or type(context) is not dict or type(n) is not int or record.keys() != _RECORD_KEYS:
        return None
    header, fields_, salts, hidden, signature = record["header"], record["fields"], record["salts"], record["withheld"], record["signature"]
    if type(header) is not dict or type(fields_) is not dict or type(salts) is not dict or type(hidden) is not dict:
        return None
    # fast_json.loads_tame's tameness: every value a scalar but the fields' (looked at by tame)
    simple = _SIMPLE
    if not (type(obj["chain"]) in simple and type(record["key"]) in simple and type(signature) in simple
            and simple.issuperset(map(type, context.values())) and simple.issuperset(map(type, header.values()))
            and simple.issuperset(map(type, salts.values())) and simple.issuperset(map(type, hidden.values()))):
        return None
    if not (_SIMPLE.issuperset(map(type, fields_.values())) or tame(fields_)):
        return None
    kind = header.get("kind")
    if type(kind) is not str or header.get("v") != ENVELOPE_VERSION:
        return None
    signed_header = header if header.keys() == _SIGNED_SET else {k: header[k] for k in _SIGNED_H}
    if not _fast_signed(kind, header.get("dev"), signature, record["key"], context.get("worker_id"), fields_, hidden, salts,
                        signed_header):
        return None
    return n, header["rid"], kind


_I_DEV, _I_KEY, _I_RID, _I_REV, _I_WORKER = (CSV_COLUMNS.index(c) for c in ("device_id", "key", "record_id", "rev", "worker_id"))
_I_SIGNATURE = CSV_COLUMNS.index("signature")


def _fast_csv(cells: list[str]) -> tuple | None:
    """(n, rid, kind) when the row is a usual signed record whose rendered columns are the ones csv_cells makes, else None."""
    if len(cells) != _N_CSV:
        return None
    text_n = cells[_I_N]
    n = int(text_n)
    if str(n) != text_n or cells[_I_V] != "1":
        return None
    t_fields, t_salts, t_hidden = cells[_I_FIELDS], cells[_I_SALTS], cells[_I_WITHHELD]
    fields_, salts, hidden = _loads_orjson(t_fields), _loads_orjson(t_salts), _loads_orjson(t_hidden)
    if type(fields_) is not dict or type(salts) is not dict or type(hidden) is not dict:
        return None
    if not (_SIMPLE.issuperset(map(type, salts.values())) and _SIMPLE.issuperset(map(type, hidden.values()))):
        return None
    if not (_SIMPLE.issuperset(map(type, fields_.values())) or tame(fields_)):
        return None
    # the cells csv_cells renders from the parsed values (the others come back as they were read)
    dumps, sort = _dumps, _SORT
    if dumps(fields_, option=sort) != t_fields.encode() or dumps(salts, option=sort) != t_salts.encode() \
            or dumps(hidden, option=sort) != t_hidden.encode():
        return None
    kind = cells[1]
    keys = _READABLE_KEYS.get(kind)
    if keys is None:
        keys = _READABLE_KEYS[kind] = tuple(TIME_FIELDS.get(kind, "") if c == "when" else c for c in CSV_READABLE)
    get = fields_.get
    for key, cell in zip(keys, cells[_I_READ0:_I_READ1]):
        if key in hidden:
            if cell != WITHHELD_MARK:
                return None
            continue
        value = get(key)
        if value is None:
            if cell:
                return None
        elif type(value) is str:
            if cell != value:
                return None
        elif dumps(value, option=sort) != cell.encode():
            return None
    device, rid = cells[_I_DEV] or None, cells[_I_RID]
    signed_header = {"v": 1, "dev": device, "rid": rid, "kind": kind, "rev": cells[_I_REV]}
    if not _fast_signed(kind, device, cells[_I_SIGNATURE] or None, cells[_I_KEY] or None, cells[_I_WORKER] or None,
                        fields_, hidden, salts, signed_header):
        return None
    return n, rid, kind


def _csv_rows(text: str, first: bool) -> tuple[list, int, bool | None] | None:
    """(rows, lines, header_ok) of a chunk of CSV text: csv.reader's rows, each on its own line; None when a row is
    not (a quoted line end or CR: csv.reader reads the chunk as it comes instead)."""
    if "\r" in text:
        return None
    lines = text.split("\n")
    if lines and not lines[-1]:
        lines.pop()
    count = len(lines)
    lines.append(_CSV_SENTINEL[:-1])
    rows = list(csv.reader(lines))
    if len(rows) != count + 1 or rows[-1] != [_CSV_SENTINEL[:-1]]:
        return None  # a line that does not end its row
    rows.pop()
    header_ok = None
    if first:
        header_ok = bool(rows) and rows[0] == CSV_COLUMNS
    return rows, count, header_ok


def _link(previous: str | bytes | None, data: bytes | None, stored: str | None) -> bool:
    """Whether a record whose chain data is ``data`` (None: not in chain form) and stored chain ``stored``
    follows from ``previous`` (None: nothing to check against)."""
    if previous is None:
        return True
    if data is None:
        return False
    if type(previous) is str:
        try:
            previous = previous.encode("ascii")
        except UnicodeEncodeError:  # not a chain value: no record follows from it
            return False
    return _hexdigest(_sha(previous + data)) == stored


def _csv_chain_parts(cells: list[str]) -> tuple[bytes | None, str | None, str | None]:
    """(chain data, stored chain value, what the next record links to) of a version 1 CSV row (None: not in chain form)."""
    if len(cells) != _N_CSV:
        return None, None, None
    # csv.reader gives lists of str: canonical JSON of them is orjson's (canonical_strings, tests compare)
    return _dumps(cells[:-1]), cells[-1], cells[-1]


def _csv_line_chain_parts(raw: bytes, cells: list[str]) -> tuple[bytes | None, str | None, str | None]:
    """The same for a CSV row whose bytes as written, without the line end, are ``raw`` (version 2): the chain is
    over the bytes before ``,`` + the chain cell, written bare."""
    if len(cells) != _N_CSV:
        return None, None, None
    stored = cells[-1]  # what the next record links to, even from a row whose own link cannot be checked
    if len(raw) <= _CHAIN_LEN or raw[-_CHAIN_LEN - 1] != 44 or raw[-_CHAIN_LEN:] != stored.encode("utf-8"):  # 44: ","
        return None, stored, stored
    return raw[:-_CHAIN_LEN - 1], stored, stored


def _csv_mode(name: str, version: int) -> int:
    """0 for a JSON Lines file; else how the CSV file's rows are chained (CSV_V1, CSV_V2)."""
    if not name.endswith(".csv"):
        return 0
    return CSV_V1 if version == 1 else CSV_V2


def _without_line_end(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    return text[:-1] if text.endswith(("\n", "\r")) else text


def _jsonl_chain_parts(line: bytes) -> tuple[bytes | None, str | None, bytes | None]:
    """(chain data, stored chain value, what the next record links to) of a JSON Lines line (None: not in chain form)."""
    skip = len(_CHAIN_PREFIX)
    end = skip + _CHAIN_LEN
    if line[:skip] != _CHAIN_PREFIX or line[end:end + 2] != b'",':
        return None, None, None
    raw = line[skip:end]
    return b"{" + line[end + 2:], raw.decode("ascii", "replace"), raw


def _check_chunk(chunk: bytes, csv_mode: int, first: bool, counted: Any, with_items: bool = False) -> tuple | None:
    """Check the records of one chunk of a records file (whole lines); ``csv_mode``: 0 (JSON Lines), CSV_V1 or CSV_V2.

    Returns None for a CSV chunk cut inside a quoted cell, else (plain, lines, count, first_n, last_n, by_kind,
    first_data, first_stored, last_chain, header_ok, items): ``plain`` when every record is the usual one (signed,
    numbered one after the other, each after the first chained to the one before it, within ``counted``); else
    ``items`` holds (line, n, rid, kind, status, message, chained) per record, line counted within the chunk,
    ``chained`` None for the first record (its link is checked by the caller from first_data and first_stored).
    """
    header_ok = None
    if csv_mode:
        text = chunk.decode("utf-8", "replace")  # a damaged byte: its record fails its signature, named
        quick = _csv_rows(text, first)
        if quick is not None:
            rows, lines, header_ok = quick
            # each row on a line of its own: its bytes are the chunk's line (UTF-8 has no 0x0A inside a character)
            raws = chunk.split(b"\n") if csv_mode == CSV_V2 else itertools.repeat(None)
            numbered = zip(itertools.count(1), rows, raws)
        else:
            physical = io.StringIO(text, newline="").readlines()
            physical.append(_CSV_SENTINEL)
            reader = csv.reader(physical)
            numbered = []
            start = 0
            for cells in reader:
                end = reader.line_num
                raw = _without_line_end("".join(physical[start:end])).encode("utf-8") if csv_mode == CSV_V2 else None
                numbered.append((end, cells, raw))
                start = end
            if not numbered or numbered[-1][1] != [_CSV_SENTINEL[:-1]]:
                return None
            lines = numbered.pop()[0] - 1
            if first:
                header_ok = bool(numbered) and numbered[0][1] == CSV_COLUMNS
        if first:
            numbered = itertools.islice(numbered, 1, None)
        if csv_mode == CSV_V1:
            records = ((lineno, cells, *_csv_chain_parts(cells)) for lineno, cells, _raw in numbered)
        else:
            records = ((lineno, cells, *_csv_line_chain_parts(raw, cells)) for lineno, cells, raw in numbered)
        fast_check, slow_check = _fast_csv, _check_row_csv
    else:
        split = chunk.split(b"\n")
        if split and not split[-1]:
            split.pop()
        lines = len(split)
        records = ((lineno, line, *_jsonl_chain_parts(line)) for lineno, line in enumerate(split, 1) if line)
        fast_check, slow_check = _fast_jsonl, _check_line_jsonl
    items: list = []
    plain = True
    expect = None
    first_data = first_stored = previous = None
    count = 0
    for lineno, record, data, stored, link in records:
        if count == 0:
            chained = None
            first_data, first_stored = data, stored
        else:
            chained = _link(previous, data, stored)
        previous = link
        count += 1
        try:
            fast = fast_check(record)
        except Exception:  # noqa: BLE001 - anything unusual is the reference check's to name
            fast = None
        if fast is None:
            items.append(slow_check(lineno, record) + (chained,))
            plain = False
            continue
        n = fast[0]
        items.append((lineno, n, fast[1], fast[2], "signed", None, chained))
        if plain:
            if chained is not False and (expect is None or n == expect) and (counted is None or n <= counted):
                expect = n + 1
            else:
                plain = False
    last_chain = None
    if count:
        if csv_mode:
            last_chain = previous
        else:
            last_chain = previous.decode("ascii", "replace") if previous is not None else None
    if plain and not with_items:
        kinds = Counter(map(_KIND_OF, items))
        first_n = items[0][1] if items else None
        return True, lines, count, first_n, (expect - 1 if expect is not None else None), dict(kinds), first_data, first_stored, \
            last_chain, header_ok, None
    return False, lines, count, None, None, None, first_data, first_stored, last_chain, header_ok, items


def _csv_cut(block: bytes) -> int:
    """Where to cut a CSV block: after its last line that ends in ``,`` and a chain value (0: none)."""
    end = len(block)
    for _ in range(64):
        i = block.rfind(b"\n", 0, end)
        if i < 0:
            return 0
        j = i - 1 if i and block[i - 1] == 13 else i
        if j >= 65 and block[j - 65] == 44 and _HEX64.fullmatch(block, j - 64, j):
            return i + 1
        end = i
    return 0


def _jsonl_cut(block: bytes) -> int:
    return block.rfind(b"\n") + 1


def _verify_records(bundle: Bundle, name: str, entry: dict, result: Result, keys: dict, withheld: dict,
                    workers: int, progress: Callable[[int], None] | None, version: int) -> tuple[str, int]:
    """Check every record of one data file; returns the file's (SHA-256, size), read in the same pass."""
    saved = (result.records, result.verified, result.unsigned, dict(result.by_kind), len(result.problems), result.hidden)
    try:
        return _verify_records_chunked(bundle, name, entry, result, keys, withheld, workers, progress, version)
    except _Misaligned:
        result.records, result.verified, result.unsigned, by_kind, problems, result.hidden = saved
        result.by_kind.clear()
        result.by_kind.update(by_kind)
        del result.problems[problems:]
        return _verify_records_sequential(bundle, name, entry, result, keys, withheld, workers, progress, version)


def _verify_records_chunked(bundle: Bundle, name: str, entry: dict, result: Result, keys: dict, withheld: dict,
                            workers: int, progress: Callable[[int], None] | None, version: int) -> tuple[str, int]:
    csv_mode = _csv_mode(name, version)
    expected_head = entry.get("chain_head")
    counted = entry.get("records")
    cut = _csv_cut if csv_mode else _jsonl_cut
    state = {"chain": entry.get("chain_seed"), "next_n": 1, "base": 0, "first": True}
    by_kind = result.by_kind
    pending: deque = deque()

    def consume(out, chunk: bytes, first: bool) -> None:
        if out is None:
            raise _Misaligned()
        plain, lines, count, first_n, last_n, kinds, first_data, first_stored, last_chain, header_ok, items = out
        if first and csv_mode and not header_ok:
            result.fail(name, "the CSV header row is not the export's columns")
        base = state["base"]
        state["base"] = base + lines
        if not count:
            return
        linked = _link(state["chain"], first_data, first_stored)
        if plain and linked and first_n == state["next_n"]:
            result.records += count
            result.verified += count
            for kind, k in kinds.items():
                by_kind[kind] = by_kind.get(kind, 0) + k
            state["next_n"] = last_n + 1
        else:
            if items is None:  # a summary that does not follow on: the records one by one
                items = _check_chunk(chunk, csv_mode, first, counted, True)[10]
            next_n = state["next_n"]
            for lineno, n, rid, kind, status, message, chained in items:
                next_n = _judge(result, name, counted, next_n, lineno + base, n, rid, kind, status, message,
                                linked if chained is None else chained)
            state["next_n"] = next_n
        state["chain"] = last_chain
        if progress:
            progress(count)

    pool = None
    depth = 2 * (workers - 1)  # chunks queued per worker process: it never waits for this one

    def dispatch(chunk: bytes, more: bool) -> None:
        # In order: to a worker process while one has room, else checked here (this process works too).
        # A few chunks in flight: memory stays flat. A file of one chunk starts no process.
        nonlocal pool
        first = state["first"]
        state["first"] = False
        if pool is None and workers > 1 and more:
            pool = ProcessPoolExecutor(workers - 1, initializer=_init_worker, initargs=(keys, withheld))
        if pool is not None and sum(1 for f, _c, _first in pending if _is_future(f) and not f.done()) < depth:
            pending.append((pool.submit(_check_chunk, chunk, csv_mode, first, counted), chunk, first))
        else:
            pending.append((_check_chunk(chunk, csv_mode, first, counted), chunk, first))
        while pending and (len(pending) > depth + 2 or _ready(pending[0][0])):
            head, c, f = pending.popleft()
            consume(head.result() if _is_future(head) else head, c, f)

    sha, size = _sha(), 0
    target = max(BATCH, 1) * 1024
    try:
        with bundle.open(name) as raw:
            pieces: list[bytes] = []
            ready = None
            while True:
                block = raw.read(target)
                if not block:
                    break
                sha.update(block)
                size += len(block)
                at = cut(block)
                if not at:
                    pieces.append(block)
                    continue
                pieces.append(block[:at])
                chunk = b"".join(pieces) if len(pieces) > 1 else pieces[0]
                pieces = [block[at:]] if at < len(block) else []
                if ready is not None:
                    dispatch(ready, True)
                ready = chunk
            rest = b"".join(pieces)
            if ready is not None:
                dispatch(ready, bool(rest))
            if rest:
                dispatch(rest, False)
        if csv_mode and state["first"]:  # an empty file: not even the header row
            result.fail(name, "the CSV header row is not the export's columns")
        while pending:
            head, c, f = pending.popleft()
            consume(head.result() if _is_future(head) else head, c, f)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    if expected_head is not None and state["chain"] != expected_head:
        result.fail(name, "the last record's chain value differs from the manifest's: records were removed or added at the end")
    return sha.hexdigest(), size


def _is_future(x) -> bool:
    return x is not None and type(x) is not tuple


def _ready(x) -> bool:
    return not _is_future(x) or x.done()


def verify_bundle(path: str, export_key: bytes | None = None, *, workers: int | None = None,
                  progress: Callable[[int], None] | None = None, max_named: int = 1000) -> Result:
    """Check a bundle offline: manifest signature, file hashes, every record's device signature, counts."""
    result = Result(max_named=max_named)
    try:
        bundle = Bundle(path)
    except _DAMAGED as exc:  # no such path, not a zip, a file this user may not read...
        result.fail(path, f"not a bundle: {exc}")
        return result
    try:
        _verify(bundle, export_key, result, workers, progress)
    finally:
        bundle.close()
    return result


def _manifest_shape(manifest: dict) -> str | None:
    """What makes ``manifest`` unusable (a field of the wrong type), or None. Checked before any field is used."""
    def kind_of(value, *types) -> bool:
        return isinstance(value, types) and not isinstance(value, bool)

    for field in ("export_key", "counts", "withheld", "exported_by"):
        if manifest.get(field) is not None and not isinstance(manifest[field], dict):
            return f"{field} must be an object"
    files = manifest.get("files")
    if not isinstance(files, dict):
        return "files must be an object"
    for name, entry in files.items():
        if not isinstance(entry, dict):
            return f"files.{name} must be an object"
        if not kind_of(entry.get("sha256"), str) or not kind_of(entry.get("bytes"), int):
            return f"files.{name} needs sha256 (text) and bytes (a number)"
        if entry.get("role") == "records":
            if entry.get("records") is not None and not kind_of(entry["records"], int):
                return f"files.{name}.records must be a number"
            if not kind_of(entry.get("chain_seed"), str) or not kind_of(entry.get("chain_head"), str, type(None)):
                return f"files.{name} needs chain_seed and chain_head (text)"
    withheld = manifest.get("withheld") or {}
    by_kind = withheld.get("by_kind") or {}
    if not isinstance(by_kind, dict) or not all(isinstance(v, list) for v in by_kind.values()):
        return "withheld.by_kind must map each kind to a list of fields"
    if not isinstance(withheld.get("fields") or [], list):
        return "withheld.fields must be a list"
    return None


def _verify(bundle: Bundle, export_key: bytes | None, result: Result, workers: int | None, progress) -> None:
    names = bundle.names()
    if MANIFEST not in names:
        result.fail(MANIFEST, "missing")
        return
    try:
        manifest = json.loads(bundle.read(MANIFEST))
        if not isinstance(manifest, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        result.fail(MANIFEST, f"not valid JSON ({exc})")
        return
    except _DAMAGED as exc:
        result.fail(MANIFEST, _damaged(exc))
        return
    version = manifest.get("format_version")
    if manifest.get("format") != FORMAT or version not in READABLE_VERSIONS:
        result.fail(MANIFEST, f"not a {FORMAT} manifest of a version this verifier reads ({', '.join(f'v{v}' for v in READABLE_VERSIONS)})")
        return
    shape = _manifest_shape(manifest)
    if shape is not None:
        result.fail(MANIFEST, f"not a well-formed manifest: {shape}")
        return
    result.manifest = manifest

    # 1. the manifest's signature
    claimed = (manifest.get("export_key") or {}).get("public")
    try:
        claimed_key = crypto.b64d(claimed) if claimed else None
    except ValueError:
        claimed_key = None
    key = export_key if export_key is not None else claimed_key
    if key is None:
        result.fail(MANIFEST, "names no export key and none was given")
    else:
        if export_key is not None and claimed_key is not None and claimed_key != export_key:
            result.fail(MANIFEST, f"signed-by key {crypto.fingerprint(claimed_key)} is not the given export key {crypto.fingerprint(export_key)}")
        if not verify_document(key, manifest):
            result.fail(MANIFEST, "signature does not verify: the manifest was changed or not signed by the export key")
        if export_key is None:
            result.warnings.append(
                f"the export key was not given: the manifest is checked against the key it names ({crypto.fingerprint(key)}); "
                "compare that fingerprint with the operator's published key (/api/v1/keys) or pass --export-key")

    files = manifest["files"]

    # 2. every file's hash and size; nothing unlisted
    for name in sorted(set(names) - set(files) - {MANIFEST}):
        result.fail(name, "in the bundle but not in the manifest")
    def check_hash(name: str, entry: dict, digest: str, size: int) -> None:
        if digest != entry.get("sha256") or size != entry.get("bytes"):
            result.fail(name, f"SHA-256 {digest[:16]}… ({size} bytes) differs from the manifest's {str(entry.get('sha256'))[:16]}… ({entry.get('bytes')} bytes)")

    for name, entry in sorted(files.items()):
        if name not in names:
            result.fail(name, "listed in the manifest but missing")
            continue
        if entry.get("role") == "records":
            continue  # hashed in the pass that checks its records (4. below)
        try:
            with bundle.open(name) as f:
                digest, size = file_digest(f)
        except _DAMAGED as exc:
            result.fail(name, _damaged(exc))
            continue
        check_hash(name, entry, digest, size)

    # 3. device keys
    keys: dict[str, bytes] = {}
    if KEYS in files and KEYS in names:
        try:
            listed = json.loads(bundle.read(KEYS)).get("devices", {})
            for device, info in listed.items():
                public = crypto.b64d(info["public_key"])
                if info.get("fingerprint") != crypto.fingerprint(public):
                    result.fail(f"{KEYS} device {device}", "fingerprint does not match its public key")
                keys[device] = public
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            result.fail(KEYS, f"not a key list ({exc})")
        except _DAMAGED as exc:
            result.fail(KEYS, _damaged(exc))
        expected_devices = (manifest.get("counts") or {}).get("devices")
        if expected_devices is not None and expected_devices != len(keys):
            result.fail(KEYS, f"holds {len(keys)} device keys, the manifest says {expected_devices}")

    # 4. every record, and the counts
    withheld = {k: list(v) for k, v in ((manifest.get("withheld") or {}).get("by_kind") or {}).items()}
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    _init_worker(keys, withheld)
    for name, entry in sorted(files.items()):
        if entry.get("role") != "records" or name not in names:
            continue
        before = result.records
        try:
            digest, size = _verify_records(bundle, name, entry, result, keys, withheld, workers, progress, version)
        except _DAMAGED as exc:
            result.fail(name, _damaged(exc))
            continue
        check_hash(name, entry, digest, size)
        found = result.records - before
        if entry.get("records") is not None and entry["records"] != found:
            result.fail(name, f"holds {found} records, the manifest says {entry['records']}")
    counts = manifest.get("counts") or {}
    if manifest.get("kind") == "safety_export":
        if counts.get("records") != result.records:
            result.fail(MANIFEST, f"counts {counts.get('records')} records, the bundle holds {result.records}")
        expected_kinds = counts.get("by_kind") or {}
        if expected_kinds != result.by_kind:
            result.fail(MANIFEST, f"counts by kind {expected_kinds} differ from the bundle's {result.by_kind}")


def render(result: Result, path: str) -> str:
    """A short text report for people."""
    m = result.manifest
    lines = [f"bundle:   {path}"]
    if m:
        lines.append(f"kind:     {m.get('kind')}  (export {m.get('export_id')}, made {m.get('created_at')} by {(m.get('exported_by') or {}).get('name')})")
    if result.records:
        lines.append(f"records:  {result.records} checked, {result.verified} device signatures verified, {result.unsigned} made by people (unsigned)")
    withheld = (m.get("withheld") or {}) if m else {}
    if withheld.get("fields"):
        lines.append(f"withheld: {', '.join(withheld['fields'])} ({withheld.get('reason')}); their digests are signed, their values are not in the bundle")
    for w in result.warnings:
        lines.append(f"warning:  {w}")
    for p in result.problems:
        lines.append(f"FAIL      {p}")
    if result.hidden:
        lines.append(f"FAIL      … and {result.hidden} more failures")
    lines.append("result:   " + ("OK, the bundle is intact" if result.ok else f"FAILED ({len(result.problems) + result.hidden} problems)"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.export_verify", description="Verify a fieldwatch export bundle offline.")
    parser.add_argument("path")
    parser.add_argument("--export-key", help="the operator's export public key (base64), as published at /api/v1/keys")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    key = crypto.b64d(args.export_key) if args.export_key else None
    result = verify_bundle(args.path, key, workers=args.workers)
    print(render(result, args.path))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
