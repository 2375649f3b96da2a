"""HTTP client of the sync API (``/api/v1``), over an injected ``requests.Session``.

Errors form a tree so callers catch at the level they can act on::

    SyncError                        (a DeviceError) anything that stopped a sync; ``reason`` is stable
     ├── TransportError              retry later: no network, time-out, connection dropped
     │    ├── ServerUnavailable      HTTP 5xx (server_error)
     │    └── RateLimited            HTTP 429 (rate_limited); ``retry_after`` seconds
     ├── AuthError                   HTTP 401: the token is not accepted; re-enrol
     │    └── DeviceRevoked          reason device_revoked: a supervisor revoked this device
     ├── ServerRejected              any other 4xx: the same request will fail again
     │    └── LimitExceeded          HTTP 413: a batch or body over the server's limits; split smaller
     ├── ServerKeyChanged            the server's keys changed without an endorsed rotation: refuse to sync
     └── BadResponse                 the answer does not follow the protocol (or its receipt does not verify)

Retries (:class:`RetryPolicy`): :class:`TransportError` only, i.e. network errors,
5xx and 429, with exponential backoff and jitter; ``Retry-After`` is honoured.
A 4xx is never retried: resending cannot fix it. Every endpoint the engine
retries is idempotent (pushes are deduplicated by (record id, revision) on the
server). Enrolment is *not* retried: a code is single-use, and a retry after a
lost answer would be refused as already used.
"""
from __future__ import annotations

import gzip
import json
import random
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

import requests
from marshmallow import EXCLUDE

from shared import protocol
from shared.errors import ReasonCode

from ..errors import DeviceError

GZIP_MIN_BYTES = 1024
SITES_PATH = protocol.SITES_PATH


class SyncError(DeviceError):
    """Base of sync failures; carries the HTTP status (when there was one) and the server's reason."""

    reason = "sync_error"

    def __init__(self, message: str, reason: str | None = None, status: int | None = None):
        super().__init__(message, reason)
        self.status = status

    def to_dict(self) -> dict:
        """Adds the HTTP status."""
        return {**super().to_dict(), "status": self.status}


class TransportError(SyncError):
    """The request did not get an answer; retry later."""

    reason = "network_error"


class ServerUnavailable(TransportError):
    """The server answered 5xx."""

    reason = ReasonCode.SERVER_ERROR.value


class RateLimited(TransportError):
    """The server answered 429; ``retry_after`` is its advice in seconds (or None)."""

    reason = ReasonCode.RATE_LIMITED.value

    def __init__(self, message: str, retry_after: float | None, status: int = 429):
        super().__init__(message, status=status)
        self.retry_after = retry_after


class AuthError(SyncError):
    """The server does not accept this device's token; enrol again."""

    reason = ReasonCode.UNAUTHORIZED.value


class DeviceRevoked(AuthError):
    """A supervisor revoked this device."""

    reason = ReasonCode.DEVICE_REVOKED.value


class ServerRejected(SyncError):
    """A 4xx answer: the same request would be refused again."""

    reason = ReasonCode.INVALID_REQUEST.value


class LimitExceeded(ServerRejected):
    """413: the batch or body is over the server's limits."""

    reason = ReasonCode.BATCH_TOO_LARGE.value


class ServerKeyChanged(SyncError):
    """The server presents keys that no pinned key endorses."""

    reason = "server_key_changed"


class BadResponse(SyncError):
    """The server's answer does not follow the protocol."""

    reason = "bad_response"


@dataclass
class RetryPolicy:
    """Exponential backoff with jitter; ``sleep`` and ``jitter`` are injectable so tests never wait."""

    max_attempts: int = 5
    base_s: float = 0.5
    max_s: float = 30.0
    retry_after_max_s: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    slept: list[float] = field(default_factory=list)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 0)."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.retry_after_max_s)
        ceiling = min(self.max_s, self.base_s * 2**attempt)
        # "Equal jitter": at least half the ceiling (keeps backing off), the rest random
        # (so a fleet that lost signal together does not come back in lockstep).
        return ceiling / 2 + self.jitter() * ceiling / 2

    def wait(self, attempt: int, retry_after: float | None = None) -> None:
        """Sleep before the next attempt, and remember it (for sync status and tests)."""
        seconds = self.delay(attempt, retry_after)
        self.slept.append(seconds)
        self.sleep(seconds)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


def error_from_response(response: requests.Response) -> SyncError:
    """The SyncError for a non-2xx answer (reads the server's ``{code, status, message, reason}``)."""
    status = response.status_code
    try:
        payload = response.json()
    except ValueError:
        payload = {}
    payload = payload if isinstance(payload, dict) else {}
    reason = payload.get("reason")
    message = payload.get("message") or f"the server answered HTTP {status} {response.reason or ''}".strip()
    if status == 429:
        return RateLimited(message, parse_retry_after(response.headers.get("Retry-After")), status)
    if status >= 500:
        return ServerUnavailable(message, reason or ReasonCode.SERVER_ERROR.value, status)
    if status == 401:
        cls = DeviceRevoked if reason == ReasonCode.DEVICE_REVOKED.value else AuthError
        return cls(message, reason, status)
    if status == 413:
        return LimitExceeded(message, reason or ReasonCode.BODY_TOO_LARGE.value, status)
    return ServerRejected(message, reason, status)


class SyncClient:
    """One server's sync API. ``token`` is set after enrolment."""

    def __init__(self, base_url: str, session: requests.Session | None = None, token: str | None = None,
                 retry: RetryPolicy | None = None, timeout: tuple[float, float] = (5.0, 30.0), use_gzip: bool = True):
        self.base_url = base_url.rstrip("/")
        self.session = session or requests.Session()
        self.token = token
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self.use_gzip = use_gzip
        self.requests_sent = 0

    # --- endpoints ------------------------------------------------------------------

    def enrol(self, code: str, public_key: str, label: str, app_version: str) -> dict:
        """POST the enrolment; returns EnrolResponseSchema data. Never retried (codes are single-use)."""
        body = {"code": code, "public_key": public_key, "label": label, "app_version": app_version}
        response = self._send("POST", protocol.ENROL_PATH, retry=False, auth=False, json_body=body)
        return _checked(protocol.EnrolResponseSchema, response, "enrolment")

    def keys(self) -> dict:
        """GET the server's public keys."""
        return _checked(protocol.KeysResponseSchema, self._send("GET", protocol.KEYS_PATH), "keys")

    def limits(self) -> dict:
        """GET the server's published limits."""
        return _checked(protocol.LimitsSchema, self._send("GET", protocol.LIMITS_PATH), "limits")

    def sites(self) -> list[dict]:
        """GET the sites of the device's region."""
        data = self._send("GET", SITES_PATH)
        if not isinstance(data, dict) or not isinstance(data.get("sites"), list):
            raise BadResponse("the sites answer has no list of sites")
        return data["sites"]

    def push(self, body: dict) -> dict:
        """POST a batch (PushRequestSchema data); returns PushResponseSchema data."""
        return _checked(protocol.PushResponseSchema, self._send("POST", protocol.PUSH_PATH, json_body=body), "push")

    def pull(self, cursor: int, limit: int, report: dict) -> dict:
        """GET one page of changes after ``cursor``."""
        params = {"cursor": cursor, "limit": limit, **{k: v for k, v in report.items() if v is not None}}
        return _checked(protocol.PullResponseSchema, self._send("GET", protocol.PULL_PATH, params=params), "pull")

    # --- transport --------------------------------------------------------------------

    def _send(self, method: str, path: str, *, retry: bool = True, auth: bool = True,
              json_body: dict | None = None, params: dict | None = None):
        headers, data = self._prepare(auth, json_body)
        attempts = self.retry.max_attempts if retry else 1
        for attempt in range(attempts):
            try:
                return self._once(method, path, headers, data, params)
            except TransportError as exc:
                if attempt + 1 >= attempts:
                    raise
                self.retry.wait(attempt, getattr(exc, "retry_after", None))
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(self, auth: bool, json_body: dict | None) -> tuple[dict, bytes | None]:
        headers = {"Accept": "application/json"}
        if auth:
            if not self.token:
                raise AuthError("this device has no token; enrol first", ReasonCode.UNAUTHORIZED.value)
            headers["Authorization"] = f"Bearer {self.token}"
        if json_body is None:
            return headers, None
        data = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
        headers["Content-Type"] = "application/json"
        if self.use_gzip and len(data) >= GZIP_MIN_BYTES:
            # Envelopes are base64: gzip saves about a quarter of a phone's data bill.
            data = gzip.compress(data, 6)
            headers["Content-Encoding"] = "gzip"
        return headers, data

    def _once(self, method: str, path: str, headers: dict, data: bytes | None, params: dict | None):
        self.requests_sent += 1
        try:
            response = self.session.request(method, self.base_url + path, headers=headers, data=data,
                                            params=params, timeout=self.timeout)
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                requests.exceptions.InvalidSchema) as exc:
            raise SyncError(f"the server address {self.base_url!r} is not usable: {exc}", "bad_server_url") from exc
        except requests.RequestException as exc:
            raise TransportError(f"no answer from {self.base_url}: {_short(exc)}") from exc
        if not 200 <= response.status_code < 300:
            raise error_from_response(response)
        try:
            return response.json()
        except ValueError as exc:
            # A truncated body is a dropped connection in disguise: safe to retry.
            raise TransportError(f"the answer from {self.base_url} was cut off or is not JSON") from exc


def _checked(schema_cls, data, what: str) -> dict:
    """Return ``data`` unchanged after checking it against a protocol schema.

    The raw dict is returned (not the loaded one) because receipts are verified
    over the exact fields the server signed.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"the {what} answer is not a JSON object")
    errors = schema_cls(unknown=EXCLUDE).validate(data)
    if errors:
        raise BadResponse(f"the {what} answer does not follow the protocol: {errors}")
    return data


def _short(exc: Exception) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:197] + "..."
