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


# What the technician must do next for each response measure (the core's RESPONSE_STEPS).
RESPONSE_VERBS = {"acknowledge": "accept", "arrive": "arrive", "restore": "restore"}
CHECK_IN_LABELS = {"sos": "SOS (urgent)", "need_help": "Call for help (urgent)", "ok": "Check-in: I'm OK"}


def minutes_text(minutes: float) -> str:
    """A target in plain words: '4 h', '1 h 30 min', '15 min'."""
    minutes = int(round(minutes))
    hours, rest = divmod(minutes, 60)
    if hours and rest:
        return f"{hours} h {rest} min"
    return f"{hours} h" if hours else f"{rest} min"


def response_text(response: dict | None, reported_at: str | None, now: datetime) -> tuple[str, bool]:
    """('2 h 10 min since reported · target 4 h to arrive · OVER', True) from a job's ``response`` (the core's).

    Only shows what the core measured; a job with nothing due says how long ago it was reported.
    """
    if not response:
        return (f"reported {age(reported_at, now)}" if reported_at else ""), False
    minutes = response["minutes_since_reported"]
    text = f"{duration(minutes * 60)} since reported" if minutes >= 1 else "Reported just now"
    if response.get("target_minutes") is not None:
        verb = RESPONSE_VERBS.get(response["step"], response["step"])
        text += f" · target {minutes_text(response['target_minutes'])} to {verb}"
        if response["breached"]:
            text += " · OVER"
    return text, bool(response.get("breached"))


def outbox_label(item: dict) -> str:
    """'SOS (urgent)', 'Check-in: I'm OK', 'Health check' for one outbox item (the core names a check-in's status)."""
    if item["kind"] == "check_in":
        status = item.get("check_in_status")
        if status in CHECK_IN_LABELS:
            return CHECK_IN_LABELS[status]
        return "Check-in (saved before this app version)"
    return words(item["kind"])


def words(value: str | None) -> str:
    """'fibre_cut' -> 'Fibre cut'."""
    return (value or "").replace("_", " ").capitalize()
