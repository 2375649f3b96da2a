"""The sync client: error classification and retries (network, 5xx, 429 with Retry-After; never a 4xx)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from tests.mobile.core.fakeserver import BASE_URL, FakeServer, session_for
from mobile.core.sync.client import (
    AuthError, BadResponse, DeviceRevoked, LimitExceeded, RateLimited, RetryPolicy, ServerRejected,
    ServerUnavailable, SyncClient, TransportError, parse_retry_after,
)
from shared import protocol


@pytest.fixture
def server():
    return FakeServer()


@pytest.fixture
def make_client(server, sleeps):
    def make(max_attempts: int = 4, token: str | None = "t") -> SyncClient:
        if token == "t":
            server.devices["t"] = {"device_id": "dev-x", "public_key": b"", "worker_id": "W"}
        retry = RetryPolicy(max_attempts=max_attempts, base_s=1.0, max_s=8.0, sleep=sleeps, jitter=lambda: 1.0)
        return SyncClient(BASE_URL, session_for(server), token, retry)
    return make


def test_5xx_is_retried_with_growing_backoff(server, make_client, sleeps):
    server.fail(protocol.LIMITS_PATH, 503, times=3)
    assert make_client().limits()["max_items_per_batch"] == 500
    assert sleeps == [1.0, 2.0, 4.0]


def test_backoff_has_jitter_and_a_ceiling():
    policy = RetryPolicy(base_s=1.0, max_s=8.0, jitter=lambda: 0.0)
    assert [policy.delay(a) for a in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    policy.jitter = lambda: 1.0
    assert [policy.delay(a) for a in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_429_honours_retry_after(server, make_client, sleeps):
    server.fail(protocol.LIMITS_PATH, 429, "rate_limited", headers={"Retry-After": "7"})
    make_client().limits()
    assert sleeps == [7.0]


def test_retry_after_as_an_http_date():
    now = datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)
    header = format_datetime(now + timedelta(seconds=42), usegmt=True)
    assert parse_retry_after(header, now) == 42.0
    assert parse_retry_after("soon", now) is None and parse_retry_after(None) is None


def test_network_errors_are_retried_then_raised(server, make_client, sleeps):
    server.drop(protocol.LIMITS_PATH, times=10)
    with pytest.raises(TransportError):
        make_client(max_attempts=3).limits()
    assert len(sleeps) == 2


def test_5xx_gives_up_as_server_unavailable(server, make_client):
    server.fail(protocol.LIMITS_PATH, 500, times=10)
    with pytest.raises(ServerUnavailable) as err:
        make_client(max_attempts=2).limits()
    assert err.value.status == 500 and err.value.reason == "server_error"


def test_429_gives_up_as_rate_limited(server, make_client):
    server.fail(protocol.LIMITS_PATH, 429, "rate_limited", headers={"Retry-After": "1"}, times=10)
    with pytest.raises(RateLimited) as err:
        make_client(max_attempts=2).limits()
    assert err.value.retry_after == 1.0


@pytest.mark.parametrize("status, reason, error", [
    (400, "invalid_request", ServerRejected),
    (403, "forbidden", ServerRejected),
    (404, "not_found", ServerRejected),
    (409, "revision_conflict", ServerRejected),
    (422, "invalid_request", ServerRejected),
    (413, "batch_too_large", LimitExceeded),
    (401, "unauthorized", AuthError),
    (401, "device_revoked", DeviceRevoked),
])
def test_4xx_is_never_retried(server, make_client, sleeps, status, reason, error):
    server.fail(protocol.LIMITS_PATH, status, reason)
    with pytest.raises(error) as err:
        make_client().limits()
    assert sleeps == [] and err.value.reason == reason and err.value.status == status
    assert server.faults == type(server.faults)()  # exactly one request went out


def test_auth_error_without_token(make_client):
    with pytest.raises(AuthError):
        make_client(token=None).sites()


def test_an_answer_off_the_protocol_is_a_bad_response(server, make_client):
    server.fail(protocol.LIMITS_PATH, 200)  # 200 with an error-shaped body
    with pytest.raises(BadResponse):
        make_client().limits()


def test_enrolment_is_not_retried(server, sleeps):
    server.fail(protocol.ENROL_PATH, 503)
    client = SyncClient(BASE_URL, session_for(server), None, RetryPolicy(sleep=sleeps))
    with pytest.raises(ServerUnavailable):
        client.enrol("abcdef", "A" * 44, "phone", "v1")
    assert sleeps == []
