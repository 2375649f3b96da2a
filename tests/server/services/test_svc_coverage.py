"""On duty, fitness for the shift, overdue vs unknown check-ins, regions below their minimum."""
from __future__ import annotations

from datetime import datetime, timezone

from server.extensions import db
from server.models import Device, User
from server.services import coverage
from tests.server.conftest import check_in, enrol_phone, safety_check
from tests.server.services.conftest import iso, minutes, now_utc, push_ok, shift


def _by_worker(rows):
    return {r.worker_id: r for r in rows}


def test_fit_unfit_and_no_check_this_shift(client, org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(120), now + minutes(360))
    p1 = enrol_phone(client, worker="W001")
    p2 = enrol_phone(client, worker="W002")
    push_ok(p1, "safety_check", safety_check("W001", taken_at=iso(now - minutes(100))))
    push_ok(p2, "safety_check", safety_check("W002", taken_at=iso(now - minutes(300))))  # before the shift's lead window
    rows = _by_worker(coverage.on_duty({org.regions["HN"].id}, now))
    assert set(rows) == {"W001", "W002"}  # W003 (Hai Phong) has no shift
    assert rows["W001"].fitness == "fit" and rows["W002"].fitness == "no_check"
    push_ok(p2, "safety_check", safety_check("W002", taken_at=iso(now - minutes(5)), fit_for_duty=False, temperature_c=38.2))
    assert _by_worker(coverage.on_duty(None, now))["W002"].fitness == "unfit"


def test_shift_crossing_midnight(client, org):
    # 22:00-06:00 in Ha Noi (UTC+7) is 15:00-23:00 UTC; at 01:00 local the team is on duty,
    # and a check at 21:50 the evening before counts for this shift.
    start, end = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc), datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)
    shift(org.teams["HN-T1"], start, end)
    phone = enrol_phone(client, worker="W001")
    push_ok(phone, "safety_check", safety_check("W001", taken_at="2026-11-25T21:50:00+07:00"))
    at_one_am = datetime(2026, 11, 25, 18, 0, tzinfo=timezone.utc)
    rows = _by_worker(coverage.on_duty(None, at_one_am))
    assert rows["W001"].fitness == "fit" and rows["W001"].shift_start == start
    assert coverage.on_duty(None, datetime(2026, 11, 25, 14, 59, tzinfo=timezone.utc)) == []
    assert coverage.on_duty(None, end) == []  # the end is exclusive


def test_overdue_when_device_synced_unknown_when_silent(client, org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(180), now + minutes(300))
    p1 = enrol_phone(client, worker="W001")
    p2 = enrol_phone(client, worker="W002")
    push_ok(p1, "check_in", check_in("W001", at=iso(now - minutes(120))))
    push_ok(p2, "check_in", check_in("W002", at=iso(now - minutes(120))))
    silent = now - minutes(110)
    db.session.get(Device, p2.device_id).last_contact_at = silent
    db.session.commit()
    rows = _by_worker(coverage.on_duty(None, now + minutes(1)))
    assert rows["W001"].checkin == "overdue" and rows["W001"].silent_since is None
    assert rows["W002"].checkin == "unknown" and rows["W002"].silent_since == silent
    assert rows["W001"].due_at == now - minutes(60)
    # a fresh check-in puts W001 back to ok
    push_ok(p1, "check_in", check_in("W001", at=iso(now)))
    assert _by_worker(coverage.on_duty(None, now + minutes(1)))["W001"].checkin == "ok"


def test_technician_without_any_device_is_unknown_never_synced(client, org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(90), now + minutes(60))
    rows = _by_worker(coverage.on_duty(None, now))
    assert rows["W002"].checkin == "unknown" and rows["W002"].ever_synced is False


def test_region_below_minimum_counts_own_fit_only(client, org):
    now = now_utc()
    partner_tech = User(code="P001", username="ptech", display_name="Partner tech", role="technician", team_id=org.teams["PT-HN"].id)
    db.session.add(partner_tech)
    db.session.commit()
    shift(org.teams["HN-T1"], now - minutes(60), now + minutes(60))
    shift(org.teams["PT-HN"], now - minutes(60), now + minutes(60))
    p1 = enrol_phone(client, worker="W001")
    pp = enrol_phone(client, team="PT-HN", worker="P001")
    push_ok(p1, "safety_check", safety_check("W001", taken_at=iso(now - minutes(30))))
    push_ok(pp, "safety_check", safety_check("P001", taken_at=iso(now - minutes(30))))
    duty = coverage.on_duty(None, now)
    cov = {c.code: c for c in coverage.region_coverage(None, duty)}
    hn, hp = cov["HN"], cov["HP"]
    assert (hn.fit, hn.partner_fit, hn.no_check, hn.min_fit) == (1, 1, 1, 2)
    assert hn.below_minimum and hn.shortfall == 1
    assert hp.below_minimum and hp.on_duty == 0  # nobody on duty in Hai Phong, minimum 1
    assert [c.code for c in coverage.region_coverage({org.regions["HN"].id}, duty)] == ["HN"]


def test_overlapping_shifts_merge(org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(60), now + minutes(30))
    shift(org.teams["HN-T1"], now - minutes(10), now + minutes(600))
    start, end = coverage.shifts_now(None, now)[org.teams["HN-T1"].id]
    assert start == now - minutes(60) and end == now + minutes(600)
