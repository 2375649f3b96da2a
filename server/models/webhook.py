"""Outbound webhooks: where alerts are sent, and every delivery attempt.

The signing secret is kept encrypted with the server's current data key
(``KEYS_DIR``, outside the database); it is shown to the admin once.
"""
from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .types import UTCDateTime, utcnow

DELIVERY_STATES = ("pending", "sending", "delivered", "failed", "gave_up", "cancelled")


class Webhook(db.Model):
    """A URL that receives every new alert as signed JSON."""

    __tablename__ = "webhook"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(String(200), default="")
    secret_key_id: Mapped[str] = mapped_column(String(32))
    secret_blob: Mapped[bytes] = mapped_column(LargeBinary)
    secret_prefix: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)


class WebhookDelivery(db.Model):
    """One attempt to send one alert to one webhook.

    A failed attempt that may be retried gets ``next_try_at`` and a new row
    (attempt + 1, ``pending``) due then; the last allowed attempt ends ``gave_up``.
    """

    __tablename__ = "webhook_delivery"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhook.id"), index=True)
    alert_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), ForeignKey("alert.id"), index=True)
    event: Mapped[str] = mapped_column(String(32), default="alert.raised")
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at = mapped_column(UTCDateTime, default=utcnow)
    next_try_at = mapped_column(UTCDateTime, nullable=True)
    tried_at = mapped_column(UTCDateTime, nullable=True)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    duration_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[str | None] = mapped_column(Text, nullable=True)

    webhook = relationship(Webhook, lazy="joined")


Index("ix_webhook_delivery_due", WebhookDelivery.state, WebhookDelivery.next_try_at)
