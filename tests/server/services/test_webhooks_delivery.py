"""Outbound webhooks against a real HTTP receiver on 127.0.0.1: signature, retry with backoff, giving up, the log."""
from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from server.errors import Forbidden, Invalid
from server.extensions import db
from server.models import Alert, Webhook, WebhookDelivery
from server.services import alerts, webhooks
from tests.server.services.conftest import now_utc, scope_of


class Receiver:
    """A local HTTP server that answers each POST with the next status of ``answers`` (then 200) and keeps what came."""

    def __init__(self, answers=(), delay: float = 0.0):
        self.answers, self.delay, self.requests = list(answers), delay, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/fieldwatch"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(answers=(), delay=0.0):
        made.append(Receiver(answers, delay))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _hook(org, url):
    hook, secret = webhooks.create(scope_of(org.users["admin"]), url, "NOC")
    db.session.commit()
    return hook, secret


def _alert(org, ref="HN#1"):
    alert = Alert(kind="below_minimum", ref=ref, region_id=org.regions["HN"].id, subject="HN", message="Region HN short", raised_at=now_utc(),
                  details={"fit": 1, "min_fit": 2})
    db.session.add(alert)
    db.session.flush()
    return alert


def _attempts(alert_id=None):
    query = select(WebhookDelivery).order_by(WebhookDelivery.id)
    if alert_id is not None:
        query = query.where(WebhookDelivery.alert_id == alert_id)
    db.session.expire_all()
    return db.session.scalars(query).all()


def test_each_new_alert_is_sent_signed(app, org, receiver):
    rx = receiver()
    hook, secret = _hook(org, rx.url)
    assert secret.startswith("whsec_") and secret.encode() not in hook.secret_blob  # kept encrypted
    now = now_utc()
    counts = alerts.run_once(now)  # nobody on duty: both regions below their minimum
    assert counts == {"raised": 2, "attempted": 2, "delivered": 2, "failed": 0, "gave_up": 0}
    assert len(rx.requests) == 2
    for headers, body in rx.requests:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert headers["X-Fieldwatch-Signature"] == expected and webhooks.verify(secret, body, headers["X-Fieldwatch-Signature"])
        doc = json.loads(body)
        assert headers["X-Fieldwatch-Timestamp"] == str(doc["sent_at"]) == str(int(now.timestamp()))
        assert headers["Content-Type"] == "application/json" and doc["event"] == "alert.raised" and doc["attempt"] == 1
        assert doc["alert"]["kind"] == "below_minimum" and doc["alert"]["region"] in ("HN", "HP")
        assert not webhooks.verify("whsec_wrong", body, headers["X-Fieldwatch-Signature"])
    assert {d.state for d in _attempts()} == {"delivered"} and all(d.status_code == 200 for d in _attempts())
    # nothing more to send, nothing raised twice
    assert alerts.run_once(now + timedelta(minutes=1)) == {"raised": 0, "attempted": 0, "delivered": 0, "failed": 0, "gave_up": 0}
    assert len(rx.requests) == 2


def test_a_500_is_retried_after_the_backoff(app, org, receiver):
    rx = receiver(answers=[500])
    _, secret = _hook(org, rx.url)
    now = now_utc()
    alert = _alert(org)
    webhooks.enqueue([alert], now)
    db.session.commit()
    assert webhooks.deliver_due(now)["failed"] == 1
    first, second = _attempts(alert.id)
    assert (first.attempt, first.state, first.status_code, first.error) == (1, "failed", 500, "HTTP 500")
    assert first.next_try_at == now + timedelta(seconds=30) and (second.attempt, second.state) == (2, "pending")
    assert webhooks.deliver_due(now + timedelta(seconds=29))["attempted"] == 0  # not before the backoff
    assert webhooks.deliver_due(now + timedelta(seconds=30))["delivered"] == 1
    assert [d.state for d in _attempts(alert.id)] == ["failed", "delivered"]
    assert [json.loads(b)["attempt"] for _, b in rx.requests] == [1, 2]
    assert all(webhooks.verify(secret, b, h["X-Fieldwatch-Signature"]) for h, b in rx.requests)
    log = webhooks.deliveries(scope_of(org.users["admin"]))
    assert [(r["attempt"], r["state"], r["status_code"]) for r in log] == [(2, "delivered", 200), (1, "failed", 500)]
    with pytest.raises(Forbidden):
        webhooks.deliveries(scope_of(org.users["supervisor"]))


def test_gives_up_after_the_last_attempt_with_growing_waits(app, org, receiver):
    app.config["WEBHOOK_MAX_ATTEMPTS"] = 3
    rx = receiver(answers=[500, 503, 502, 500])
    _hook(org, rx.url)
    now = now_utc()
    alert = _alert(org)
    webhooks.enqueue([alert], now)
    db.session.commit()
    t = now
    states = []
    for _ in range(5):
        counts = webhooks.deliver_due(t)
        states.append({k: v for k, v in counts.items() if v})
        t += timedelta(hours=2)
    assert states == [{"attempted": 1, "failed": 1}, {"attempted": 1, "failed": 1}, {"attempted": 1, "gave_up": 1}, {}, {}]
    rows = _attempts(alert.id)
    assert [(d.attempt, d.state) for d in rows] == [(1, "failed"), (2, "failed"), (3, "gave_up")]
    assert rows[1].next_try_at - rows[1].tried_at == timedelta(seconds=60) and rows[2].next_try_at is None  # 30 s, then 60 s
    assert len(rx.requests) == 3
    assert webhooks.backoff(20, 30) == timedelta(hours=1)  # capped


def test_unreachable_and_slow_receivers_are_recorded_without_the_url(app, org, receiver):
    app.config["WEBHOOK_TIMEOUT_SECONDS"] = 0.3
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    _hook(org, f"http://127.0.0.1:{closed_port}/secret-path-token")
    slow = receiver(delay=1.0)
    _hook(org, slow.url)
    now = now_utc()
    alert = _alert(org)
    webhooks.enqueue([alert], now)
    db.session.commit()
    assert webhooks.deliver_due(now)["failed"] == 2
    errors = sorted(d.error for d in _attempts(alert.id) if d.state == "failed")
    assert errors == ["connection refused", "timed out"]
    assert all("secret-path-token" not in (d.error or "") for d in _attempts())


def test_switched_off_webhooks_get_nothing_and_lose_their_queue(app, org, receiver):
    rx = receiver()
    hook, _ = _hook(org, rx.url)
    now = now_utc()
    alert = _alert(org)
    webhooks.enqueue([alert], now)
    webhooks.set_active(scope_of(org.users["admin"]), hook.id, False)
    db.session.commit()
    assert [d.state for d in _attempts()] == ["cancelled"]
    assert webhooks.enqueue([_alert(org, "HN#2")], now) == 0
    assert webhooks.deliver_due(now)["attempted"] == 0 and rx.requests == []
    webhooks.set_active(scope_of(org.users["admin"]), hook.id, True)
    db.session.commit()
    assert webhooks.enqueue([_alert(org, "HN#3")], now) == 1


def test_a_claimed_attempt_is_sent_once(app, org, receiver):
    rx = receiver()
    _hook(org, rx.url)
    now = now_utc()
    alert = _alert(org)
    webhooks.enqueue([alert], now)
    db.session.commit()
    (row,) = _attempts(alert.id)
    row.state, row.tried_at = "sending", now  # another timer holds it
    db.session.commit()
    assert webhooks.deliver_due(now)["attempted"] == 0 and rx.requests == []
    # ... and died: after the lease it counts as a failed attempt and is retried
    later = now + timedelta(minutes=6)
    webhooks.deliver_due(later)
    assert webhooks.deliver_due(later + timedelta(seconds=30))["delivered"] == 1
    assert [(d.attempt, d.state) for d in _attempts(alert.id)] == [(1, "failed"), (2, "delivered")]


def test_urls_and_roles_are_checked(app, org):
    admin = scope_of(org.users["admin"])
    for bad in ("ftp://x/y", "not a url", "http://user:pw@host/x", "https://" + "a" * 500):
        with pytest.raises(Invalid):
            webhooks.create(admin, bad)
    with pytest.raises(Forbidden):
        webhooks.create(scope_of(org.users["supervisor"]), "https://noc.example/hook")
    assert db.session.scalars(select(Webhook)).all() == []
