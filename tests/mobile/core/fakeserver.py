"""An in-process fake of the sync API, built on ``shared/`` only, for fast unit tests of the device core.

It is mounted on a ``requests.Session`` through a transport adapter (requests'
``BaseAdapter`` seam), so the device's real client code runs unchanged. It does
what the real server promises at the protocol level (open, verify, validate,
dedup by (record id, revision), signed receipts, a cursor feed) and lets tests
inject faults: a canned error answer, a dropped request, or an answer lost
after the server committed. End-to-end behaviour is tested against the real
Flask app elsewhere; this fake is for retry, batching and crash-safety units.
"""
from __future__ import annotations

import gzip
import json
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from shared import crypto, merge, protocol, schemas
from shared.canonical import canonical_json
from shared.clock import HybridLogicalClock
from shared.envelope import EnvelopeError, envelope_hash, open_envelope, verify_signature
from shared.signing import sign_document

BASE_URL = "http://fake.fieldwatch.test"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class Fault:
    """One injected fault on a path: an answer to return, or a connection drop (before or after handling)."""

    path: str
    status: int | None = None
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    drop: str | None = None  # "before" (request lost) or "after" (answer lost after commit)


# The real server's defaults (server/services/jobs.py DEFAULT_TARGETS), as its enrolment answer carries them.
RESPONSE_TARGETS = {crit: {"acknowledge_minutes": a, "arrive_minutes": b, "restore_minutes": r}
                    for crit, (a, b, r) in {"critical": (15, 60, 240), "high": (30, 120, 480), "normal": (60, 240, 1440)}.items()}


class FakeServer:
    """Keys, devices, revisions and a change feed in memory."""

    def __init__(self, limits: protocol.Limits | None = None, settings: dict | None = None):
        self.limits = limits or protocol.Limits()
        self.settings = settings or {"require_fit_for_accept": False, "check_in_interval_minutes": 60,
                                     "response_targets": dict(RESPONSE_TARGETS)}
        self.keys: list[dict] = []
        self.box_private: dict[str, bytes] = {}
        self.sign_private: dict[str, bytes] = {}
        self.rotate(endorse=False)
        self.codes: set[str] = set()
        self.devices: dict[str, dict] = {}  # token -> device
        self.revisions: dict[tuple[str, str], str] = {}  # (rid, rev) -> content hash
        self.feed: list[dict] = []
        self.faults: deque[Fault] = deque()
        self.log: list[tuple[str, str, int]] = []  # (method, path, n items)
        self.pushed_items: list[dict] = []  # accepted envelopes, in the order they arrived
        self.sites = [
            {"code": "S-001", "name": "Hill top", "region_code": "R1", "lat": 10.1, "lon": 106.2, "criticality": "high"},
            {"code": "S-002", "name": "River bend", "region_code": "R1", "lat": 10.2, "lon": 106.3, "criticality": "low"},
        ]
        self.clock = HybridLogicalClock("server")
        self.rejections: dict[str, tuple[str, str]] = {}  # rid -> (reason, message) to force

    # --- set-up helpers -----------------------------------------------------------------

    def new_code(self) -> str:
        """A fresh one-time enrolment code."""
        code = uuid.uuid4().hex[:12]
        self.codes.add(code)
        return code

    def rotate(self, endorse: bool = True, endorser: bytes | None = None) -> str:
        """Make a new current key, endorsed by the previous current sign key (or ``endorser``)."""
        box_priv, box_pub = crypto.generate_box_keypair()
        sign_priv, sign_pub = crypto.generate_signing_keypair()
        kid = f"k{len(self.keys) + 1}"
        key = {"kid": kid, "box_public": crypto.b64e(box_pub), "sign_public": crypto.b64e(sign_pub),
               "created_at": _now(), "current": True, "endorsement": None}
        previous = next((k for k in self.keys if k["current"]), None)
        if endorse and (previous or endorser):
            signer = endorser or self.sign_private[previous["kid"]]
            message = canonical_json({f: key[f] for f in ("kid", "box_public", "sign_public")})
            key["endorsement"] = crypto.b64e(crypto.sign(signer, message))
        for k in self.keys:
            k["current"] = False
        self.keys.append(key)
        self.box_private[kid], self.sign_private[kid] = box_priv, sign_priv
        return kid

    def replace_keys_unendorsed(self) -> None:
        """A server whose keys changed without rotation (another server, or a MITM)."""
        self.keys.clear()
        self.rotate(endorse=False)

    def add_job(self, **fields) -> str:
        """A repair job made on the server (e.g. by a supervisor); returns its id."""
        rid = str(uuid.uuid4())
        now = datetime.now(timezone.utc).isoformat()
        body = {"schema_version": 1, "site_code": "S-001", "fault_type": "power", "priority": "high",
                "title": "Generator fault", "status": "assigned", "steps": {"reported": now, "assigned": now},
                "reported_at": now, "actions": [], "parts": [], "notes": [], "team_id": "T1", "team_operator": None,
                "changed": ["site_code", "fault_type", "priority", "title", "status", "steps", "reported_at", "team_id"]}
        body.update(fields)
        self._publish("repair_job", rid, str(self.clock.tick()), body, owner=None)
        return rid

    def fail(self, path: str, status: int, reason: str = "server_error", headers: dict | None = None, times: int = 1) -> None:
        """Answer the next ``times`` requests to ``path`` with an error."""
        body = {"code": status, "status": HTTPStatus(status).phrase, "message": f"injected {status}", "reason": reason}
        for _ in range(times):
            self.faults.append(Fault(path, status, body, headers or {}))

    def drop(self, path: str, when: str = "before", times: int = 1) -> None:
        """Drop the connection of the next ``times`` requests to ``path`` (``after``: once the server committed)."""
        for _ in range(times):
            self.faults.append(Fault(path, drop=when))

    def pushes(self) -> list[int]:
        """Item counts of the push requests that reached the handler."""
        return [n for m, p, n in self.log if p == protocol.PUSH_PATH]

    # --- request handling ----------------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict, headers: dict, body: bytes) -> tuple[int, dict, dict]:
        """Dispatch one request; returns (status, headers, JSON)."""
        fault = self._take_fault(path)
        if fault and fault.drop == "before":
            raise requests.ConnectionError("injected: connection reset before the server read the request")
        if fault and fault.status:
            return fault.status, fault.headers, fault.body
        status, out_headers, payload = self._route(method, path, query, headers, body)
        if fault and fault.drop == "after":
            raise requests.ConnectionError("injected: connection reset after the server committed")
        return status, out_headers, payload

    def _take_fault(self, path: str) -> Fault | None:
        for fault in list(self.faults):
            if fault.path == path:
                self.faults.remove(fault)
                return fault
        return None

    def _route(self, method, path, query, headers, body):
        if path == protocol.ENROL_PATH:
            return self._enrol(json.loads(body))
        if path == protocol.KEYS_PATH:
            return 200, {}, {"keys": [dict(k) for k in self.keys], "export_public": self.keys[-1]["sign_public"]}
        if path == protocol.LIMITS_PATH:
            return 200, {}, self.limits.to_dict()
        device = self.devices.get(headers.get("Authorization", "").removeprefix("Bearer "))
        if device is None:
            return _error(401, "unauthorized", "no valid token")
        if device.get("revoked"):
            return _error(401, "device_revoked", "this device was revoked")
        if path == "/api/v1/sites":
            return 200, {}, {"sites": self.sites}
        if path == protocol.PUSH_PATH:
            raw = gzip.decompress(body) if headers.get("Content-Encoding") == "gzip" else body
            return self._push(device, json.loads(raw), len(raw))
        if path == protocol.PULL_PATH:
            return self._pull(device, int(query.get("cursor", 0)), int(query.get("limit") or self.limits.default_page_size))
        return _error(404, "not_found", f"no route {path}")

    def _enrol(self, request: dict):
        if request["code"] not in self.codes:
            return _error(400, "enrol_code_invalid", "no such enrolment code")
        self.codes.discard(request["code"])
        n = len(self.devices) + 1
        token = uuid.uuid4().hex
        device = {"device_id": f"dev-{n}", "public_key": crypto.b64d(request["public_key"]), "worker_id": f"W{n}"}
        self.devices[token] = device
        return 201, {}, {"device_id": device["device_id"], "token": token, "worker_id": device["worker_id"],
                         "team_id": "T1", "region_codes": ["R1"], "keys": [dict(k) for k in self.keys],
                         "limits": self.limits.to_dict(), "settings": dict(self.settings)}

    def _push(self, device: dict, request: dict, size: int):
        items = request["items"]
        self.log.append(("POST", protocol.PUSH_PATH, len(items)))
        if len(items) > self.limits.max_items_per_batch:
            return _error(413, "batch_too_large", "too many items")
        if size > self.limits.max_body_bytes:
            return _error(413, "body_too_large", "body too large")
        results = [self._judge(device, item) for item in items]
        accepted = [{"rid": r["rid"], "rev": r["rev"], "hash": envelope_hash(i)}
                    for r, i in zip(results, items) if r["status"] == "accepted"]
        kid = next(k["kid"] for k in self.keys if k["current"])
        receipt = sign_document(self.sign_private[kid], {"device_id": device["device_id"], "issued_at": _now(),
                                                         "kid": kid, "items": accepted})
        return 200, {}, {"results": results, "receipt": receipt, "server_time": _now()}

    def _judge(self, device: dict, item: dict) -> dict:
        header = item["h"]
        rid, rev = header["rid"], header["rev"]
        if rid in self.rejections:
            reason, message = self.rejections[rid]
            return {"rid": rid, "rev": rev, "status": "rejected", "reason": reason, "message": message}
        try:
            opened = open_envelope(item, self.box_private)
            verify_signature(opened, device["public_key"])
        except EnvelopeError as exc:
            return {"rid": rid, "rev": rev, "status": "rejected", "reason": exc.reason.value, "message": exc.message}
        errors = schemas.record_errors(header["kind"], opened.body)
        if errors:
            return {"rid": rid, "rev": rev, "status": "rejected", "reason": "invalid_record",
                    "message": schemas.describe_errors(errors)}
        if (rid, rev) in self.revisions:
            return {"rid": rid, "rev": rev, "status": "duplicate", "reason": None, "message": None}
        self.revisions[(rid, rev)] = opened.content_hash
        self.pushed_items.append(item)
        self._publish(header["kind"], rid, rev, opened.body, owner=device["device_id"])
        return {"rid": rid, "rev": rev, "status": "accepted", "reason": None, "message": None}

    def _publish(self, kind: str, rid: str, rev: str, body: dict, owner: str | None) -> None:
        self.feed.append({"seq": len(self.feed) + 1, "kind": kind, "rid": rid, "rev": rev, "body": body, "owner": owner})

    def _pull(self, device: dict, cursor: int, limit: int):
        self.log.append(("GET", protocol.PULL_PATH, 0))
        visible = [c for c in self.feed if c["seq"] > cursor and
                   (c["owner"] == device["device_id"] or c["kind"] in ("repair_job", "site_status"))]
        page = visible[:limit]
        changes = [{k: c[k] for k in ("seq", "kind", "rid", "rev", "body")} for c in page]
        next_cursor = page[-1]["seq"] if page else cursor
        return 200, {}, {"changes": changes, "next_cursor": next_cursor, "has_more": len(visible) > limit,
                         "server_time": _now(), "settings": dict(self.settings)}

    def state_of(self, rid: str) -> dict | None:
        """The server's merged state of one record (from its feed)."""
        state = None
        for change in self.feed:
            if change["rid"] == rid:
                state = merge.apply(change["kind"], state, change["body"], change["rev"])
        return state


def _error(status: int, reason: str, message: str):
    return status, {}, {"code": status, "status": HTTPStatus(status).phrase, "message": message, "reason": reason}


class FakeAdapter(BaseAdapter):
    """Routes a Session's requests to a :class:`FakeServer`."""

    def __init__(self, server: FakeServer):
        super().__init__()
        self.server = server

    def send(self, request, **kwargs):
        """Hand the request to the fake and wrap its answer in a requests.Response."""
        url = urlsplit(request.url)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        status, headers, payload = self.server.handle(request.method, url.path, query, dict(request.headers), body)
        response = requests.Response()
        response.status_code = status
        response.reason = HTTPStatus(status).phrase
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json", **headers})
        response._content = json.dumps(payload).encode("utf-8")
        response.url = request.url
        response.request = request
        return response

    def close(self):
        """Nothing to release."""


def session_for(server: FakeServer) -> requests.Session:
    """A Session whose requests to BASE_URL reach ``server``."""
    session = requests.Session()
    session.mount(BASE_URL, FakeAdapter(server))
    return session
