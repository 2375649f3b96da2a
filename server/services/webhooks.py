"""Outbound webhooks: every new alert POSTed as signed JSON to the URLs an admin configured.

- *Signing*: ``X-Fieldwatch-Signature: sha256=<hex>``, the HMAC-SHA256 of the
  raw request body with the webhook's secret; ``X-Fieldwatch-Timestamp`` is
  the send time in Unix seconds, and the body carries the same ``sent_at``,
  so a receiver can refuse old replays. The secret is made here, shown to
  the admin once, and kept encrypted with the server's data key.
- *Retries*: an attempt that gets no 2xx answer is tried again after
  ``WEBHOOK_BACKOFF_SECONDS * 2**(attempt-1)`` (capped at an hour), up to
  ``WEBHOOK_MAX_ATTEMPTS`` attempts; then the delivery is ``gave_up``. Every
  attempt is a :class:`~server.models.WebhookDelivery` row: the delivery log.
- *No network inside a request*: requests only queue rows
  (:func:`enqueue`); the alert timer sends them (:func:`deliver_due`).
  A row is claimed with a conditional update before it is sent, so two
  timers (two processes) never send the same attempt twice.
- Nothing about the URL, the secret or the body goes to the log; errors
  are recorded as a short reason ("HTTP 500", "timed out", "connection refused").
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import socket
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from urllib.parse import urlparse

from sqlalchemy import select, update

from ..errors import Invalid, NotFound
from ..extensions import db
from ..models import Alert, Region, Webhook, WebhookDelivery, utcnow
from . import audit
from .keys import keyring
from .people import Scope

log = logging.getLogger(__name__)
SECRET_PREFIX = "whsec_"
SIGNATURE_HEADER = "X-Fieldwatch-Signature"
TIMESTAMP_HEADER = "X-Fieldwatch-Timestamp"
MAX_BACKOFF = timedelta(hours=1)
SENDING_LEASE = timedelta(minutes=5)


def _config(key: str, default):
    from flask import current_app, has_app_context

    return current_app.config.get(key, default) if has_app_context() else default


def sign(secret: str, body: bytes) -> str:
    """The signature header value: ``sha256=`` and the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: compare in constant time."""
    return hmac.compare_digest(sign(secret, body), header or "")


# --- admin: configuring ---------------------------------------------------------------------------------------------


def _check_url(url: str) -> str:
    url = (url or "").strip()
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or len(url) > 500:
        raise Invalid("the URL must be http:// or https:// with a host, at most 500 characters")
    if parsed.username or parsed.password:
        raise Invalid("put no user name or password in the URL; the receiver checks the signature instead")
    return url


def create(scope: Scope, url: str, description: str = "", ring=None) -> tuple[Webhook, str]:
    """Add a webhook. Returns (row, secret); the secret is shown once and kept only encrypted. The caller commits."""
    scope.require_role("admin")
    url = _check_url(url)
    description = (description or "").strip()
    if len(description) > 200:
        raise Invalid("the description is at most 200 characters")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    key_id, blob = (ring or keyring()).encrypt_health(secret.encode())
    hook = Webhook(url=url, description=description, secret_key_id=key_id, secret_blob=blob, secret_prefix=secret[:10],
                   active=True, created_by_id=scope.user_id)
    db.session.add(hook)
    db.session.flush()
    audit.record("webhook.create", user_id=scope.user_id, target=f"webhook:{hook.id}", host=urlparse(url).hostname)
    return hook, secret


def set_active(scope: Scope, webhook_id: int, active: bool) -> Webhook:
    """Switch a webhook on or off; switching off cancels its queued deliveries. The caller commits."""
    scope.require_role("admin")
    hook = db.session.get(Webhook, webhook_id)
    if hook is None:
        raise NotFound(f"there is no webhook {webhook_id}")
    if hook.active != active:
        hook.active = active
        if not active:
            db.session.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id, WebhookDelivery.state == "pending")
                               .values(state="cancelled", next_try_at=None).execution_options(synchronize_session=False))
        audit.record("webhook.activate" if active else "webhook.deactivate", user_id=scope.user_id, target=f"webhook:{hook.id}")
    return hook


def list_webhooks(scope: Scope) -> list[Webhook]:
    scope.require_role("admin")
    return list(db.session.scalars(select(Webhook).order_by(Webhook.id)))


def deliveries(scope: Scope, webhook_id: int | None = None, limit: int = 300) -> list[dict]:
    """The delivery log, newest first: one row per attempt."""
    scope.require_role("admin")
    query = select(WebhookDelivery, Alert.kind, Alert.subject).join(Alert, Alert.id == WebhookDelivery.alert_id)
    if webhook_id is not None:
        query = query.where(WebhookDelivery.webhook_id == webhook_id)
    rows = db.session.execute(query.order_by(WebhookDelivery.id.desc()).limit(limit)).all()
    return [{"id": d.id, "webhook_id": d.webhook_id, "host": urlparse(d.webhook.url).netloc, "alert_id": d.alert_id, "alert_kind": kind,
             "alert_subject": subject, "event": d.event, "attempt": d.attempt, "state": d.state, "created_at": d.created_at,
             "tried_at": d.tried_at, "status_code": d.status_code, "error": d.error, "duration_ms": d.duration_ms, "next_try_at": d.next_try_at}
            for d, kind, subject in rows]


# --- queueing and sending -------------------------------------------------------------------------------------------


def enqueue(alerts: list[Alert], now: datetime | None = None) -> int:
    """Queue each alert for each active webhook (first attempt due now). The caller commits."""
    if not alerts:
        return 0
    now = now or utcnow()
    hooks = list(db.session.scalars(select(Webhook.id).where(Webhook.active.is_(True))))
    rows = [WebhookDelivery(webhook_id=h, alert_id=a.id, event="alert.raised", attempt=1, state="pending", created_at=now, next_try_at=now)
            for a in alerts for h in hooks]
    db.session.add_all(rows)
    return len(rows)


def _payload(delivery: WebhookDelivery, alert: Alert, region_code: str | None, sent_at: int) -> bytes:
    doc = {
        "event": delivery.event, "delivery": delivery.id, "attempt": delivery.attempt, "sent_at": sent_at,
        "alert": {"id": alert.id, "kind": alert.kind, "region": region_code, "subject": alert.subject, "worker_id": alert.worker_id,
                  "message": alert.message, "raised_at": alert.raised_at.isoformat() if alert.raised_at else None,
                  "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None, "details": alert.details or {}},
    }
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # a redirect is an answer, not a place to send the alert again
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, body: bytes, headers: dict, timeout: float) -> tuple[int | None, str | None]:
    """(status code, error): error is None for a 2xx answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status, None
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code, f"HTTP {exc.code}"
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (socket.timeout, TimeoutError)):
            return None, "timed out"
        if isinstance(reason, ConnectionRefusedError):
            return None, "connection refused"
        if isinstance(reason, socket.gaierror):
            return None, "host name not found"
        return None, f"network error ({type(reason).__name__})"
    except (socket.timeout, TimeoutError):
        return None, "timed out"
    except OSError as exc:
        return None, f"network error ({type(exc).__name__})"


def backoff(attempt: int, base_seconds: float) -> timedelta:
    """The wait after failed attempt ``attempt`` (1-based): base, 2x, 4x, ..., at most an hour."""
    return min(timedelta(seconds=base_seconds * 2 ** (attempt - 1)), MAX_BACKOFF)


def _finish(delivery_id: int, attempt: int, webhook_id: int, alert_id: int, event: str, now: datetime, status: int | None,
            error: str | None, duration_ms: int | None, body: str | None, max_attempts: int, base_seconds: float) -> str:
    if error is None:
        state, next_at = "delivered", None
    elif attempt >= max_attempts:
        state, next_at = "gave_up", None
    else:
        state, next_at = "failed", now + backoff(attempt, base_seconds)
    db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id).values(
        state=state, status_code=status, error=error, duration_ms=duration_ms, body=body, next_try_at=next_at)
        .execution_options(synchronize_session=False))
    if next_at is not None:
        db.session.add(WebhookDelivery(webhook_id=webhook_id, alert_id=alert_id, event=event, attempt=attempt + 1, state="pending",
                                       created_at=now, next_try_at=next_at))
    db.session.commit()
    if error is not None:
        log.warning("webhook %s: delivery %s attempt %s failed (%s)%s", webhook_id, delivery_id, attempt, error,
                    "; giving up" if state == "gave_up" else "")
    return state


def deliver_due(now: datetime | None = None, *, ring=None, limit: int = 100) -> dict:
    """Send the deliveries due at ``now`` (commits after each). Returns counts by outcome."""
    now = now or utcnow()
    max_attempts = int(_config("WEBHOOK_MAX_ATTEMPTS", 6))
    base = float(_config("WEBHOOK_BACKOFF_SECONDS", 30))
    timeout = float(_config("WEBHOOK_TIMEOUT_SECONDS", 5))
    counts = {"attempted": 0, "delivered": 0, "failed": 0, "gave_up": 0}
    # attempts a dead process claimed and never finished count as failed
    stale = db.session.execute(select(WebhookDelivery.id, WebhookDelivery.attempt, WebhookDelivery.webhook_id, WebhookDelivery.alert_id,
                                      WebhookDelivery.event).where(WebhookDelivery.state == "sending",
                                                                   WebhookDelivery.tried_at < now - SENDING_LEASE)).all()
    for d in stale:
        _finish(d.id, d.attempt, d.webhook_id, d.alert_id, d.event, now, None, "interrupted: no answer recorded", None, None, max_attempts, base)
    due = db.session.execute(
        select(WebhookDelivery.id).join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.state == "pending", WebhookDelivery.next_try_at <= now, Webhook.active.is_(True))
        .order_by(WebhookDelivery.next_try_at, WebhookDelivery.id).limit(limit)).scalars().all()
    db.session.commit()
    if not due:
        return counts
    ring = ring or keyring()
    regions = dict(db.session.execute(select(Region.id, Region.code)).all())
    for delivery_id in due:
        claimed = db.session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending")
                                     .values(state="sending", tried_at=now).execution_options(synchronize_session=False))
        db.session.commit()
        if claimed.rowcount != 1:
            continue  # another timer took it
        delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
        hook, alert = delivery.webhook, db.session.get(Alert, delivery.alert_id)
        secret = ring.decrypt_health(hook.secret_key_id, hook.secret_blob).decode()
        sent_at = int(now.timestamp())
        body = _payload(delivery, alert, regions.get(alert.region_id), sent_at)
        headers = {"Content-Type": "application/json", "User-Agent": "fieldwatch-webhooks/1", SIGNATURE_HEADER: sign(secret, body),
                   TIMESTAMP_HEADER: str(sent_at), "X-Fieldwatch-Event": delivery.event, "X-Fieldwatch-Delivery": str(delivery.id)}
        url, info = hook.url, (delivery.id, delivery.attempt, delivery.webhook_id, delivery.alert_id, delivery.event)
        db.session.commit()  # no transaction held open across the network call
        started = time.monotonic()
        status, error = _post(url, body, headers, timeout)
        duration = int((time.monotonic() - started) * 1000)
        state = _finish(*info, now, status, error, duration, body.decode(), max_attempts, base)
        counts["attempted"] += 1
        counts[state] += 1
    return counts
