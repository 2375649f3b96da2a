"""Plain-language text for times, ages and kinds: pure functions, tested without a window."""
from __future__ import annotations

from datetime import datetime

KIND_LABELS = {"safety_check": "Health checks", "check_in": "Check-ins", "site_status": "Site status",
               "repair_job": "Job updates"}
STATE_LABELS = {"reported": "Reported", "assigned": "Assigned", "acknowledged": "Accepted", "en_route": "On the way",
                "on_site": "On site", "restored": "Restored", "closed": "Closed", "cancelled": "Cancelled"}
# What the button says for a move to each state.
ACTION_LABELS = {"assigned": "Assign", "acknowledged": "Accept job", "en_route": "On my way", "on_site": "Arrived on site",
                 "restored": "Service restored", "closed": "Close job", "cancelled": "Cancel job"}


def parse(text: str | None) -> datetime | None:
    """An ISO text as an aware datetime (None stays None)."""
    return datetime.fromisoformat(text) if text else None


def clock_time(text: str | None, now: datetime) -> str:
    """'14:05' today, '25 Nov 14:05' another day, 'never' for None."""
    when = parse(text)
    if when is None:
        return "never"
    when = when.astimezone(now.tzinfo)
    return when.strftime("%H:%M") if when.date() == now.date() else when.strftime("%d %b %H:%M")


def duration(seconds: float) -> str:
    """'1 h 05 min', '12 min', '45 s'."""
    seconds = int(abs(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def countdown(due_text: str | None, now: datetime) -> tuple[str, bool]:
    """('in 42 min', False) before the due time, ('overdue by 5 min', True) after it."""
    due = parse(due_text)
    if due is None:
        return "not scheduled", False
    left = (due - now).total_seconds()
    if left > 0:
        return f"in {duration(left)}", False
    if left > -60:
        return "due now", True
    return f"overdue by {duration(-left)}", True


def age(text: str | None, now: datetime) -> str:
    """'3 h 10 min ago'."""
    when = parse(text)
    return f"{duration((now - when).total_seconds())} ago" if when else ""


def words(value: str | None) -> str:
    """'fibre_cut' -> 'Fibre cut'."""
    return (value or "").replace("_", " ").capitalize()
