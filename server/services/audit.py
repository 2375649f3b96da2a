"""Writing the audit log. Callers pass ids and counts, never health values."""
from __future__ import annotations

from ..extensions import db
from ..models import AuditEntry


def record(action: str, *, user_id: int | None = None, device_id: str | None = None, target: str | None = None, **details) -> AuditEntry:
    """Add an audit entry to the current transaction (the caller commits)."""
    entry = AuditEntry(action=action, actor_user_id=user_id, actor_device_id=device_id, target=target, details=details)
    db.session.add(entry)
    return entry
