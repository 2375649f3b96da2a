"""Jinja filters: times in the dashboard's time zone, durations."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app


def _local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(ZoneInfo(current_app.config["DASHBOARD_TIMEZONE"]))


def hm(value) -> str:
    """14:05 (local), or a dash."""
    local = _local(value)
    return local.strftime("%H:%M") if local else "–"


def when(value) -> str:
    """2026-11-26 14:05 (local), or a dash."""
    local = _local(value)
    return local.strftime("%Y-%m-%d %H:%M") if local else "–"


def minutes(value) -> str:
    """95 -> 1 h 35 min."""
    if value is None:
        return "–"
    value = int(round(value))
    return f"{value // 60} h {value % 60:02d} min" if value >= 60 else f"{value} min"


def register(app) -> None:
    """Add the filters to the app's Jinja environment."""
    app.jinja_env.filters.update(hm=hm, when=when, minutes=minutes)
