"""The server-side alert check: SOS / need help, missed check-ins (silent phones too), regions short, response breaches.

Each condition raises one alert, however often the check runs; the timer
thread and ``fieldwatch alerts run-once`` run the same function.
"""
from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from server.errors import Forbidden, NotFound
from server.extensions import db
from server.models import Alert, AuditEntry
from server.services import alerts, safety
from server.services.admin import set_target
from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check
from tests.server.services.conftest import iso, minutes, now_utc, push_ok, scope_of, shift


def _of(kind, new):
    return [a for a in new if a.kind == kind]


def _audits(action):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_sos_and_need_help_raise_once_and_share_the_overviews_acknowledgement(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    sos = push_ok(phone, "check_in", check_in(status="sos", at=iso(now - minutes(3)), notes="fell from ladder"))
    help_ = push_ok(phone, "check_in", check_in(status="need_help", at=iso(now - minutes(1)), site_code=None))
    push_ok(phone, "check_in", check_in(status="ok", at=iso(now)))
    new = alerts.raise_due_alerts(now)
    db.session.commit()
    assert [a.ref for a in _of("sos", new)] == [sos["rid"]] and [a.ref for a in _of("need_help", new)] == [help_["rid"]]
    assert all(a.region_id == org.regions["HN"].id and a.subject == "W001" for a in _of("sos", new) + _of("need_help", new))
    assert all("ladder" not in a.message and "ladder" not in str(a.details) for a in new)  # free text stays on the server
    assert alerts.raise_due_alerts(now) == []  # idempotent
    assert alerts.raise_due_alerts(now + minutes(1)) == []
    # the overview still shows both until someone acknowledges
    assert {a.record_id for a in safety.open_alarms(None, now)} == {sos["rid"], help_["rid"]}
    sos_alert = _of("sos", new)[0]
    row, first = alerts.acknowledge(scope_of(org.users["supervisor"]), sos_alert.id)
    db.session.commit()
    assert first and row["acknowledged_by"] == "Pham Minh"
    assert [a.record_id for a in safety.open_alarms(None, now)] == [help_["rid"]]
    assert len(_audits("checkin.acknowledge")) == 1
    # acknowledged from the overview's panel: the alert is acknowledged too
    safety.acknowledge(scope_of(org.users["admin"]), help_["rid"])
    db.session.commit()
    open_kinds = {a["kind"] for a in alerts.list_alerts(scope_of(org.users["admin"]))}
    assert "sos" not in open_kinds and "need_help" not in open_kinds
    _, again = alerts.acknowledge(scope_of(org.users["admin"]), sos_alert.id)
    assert again is False and len(_audits("checkin.acknowledge")) == 2


def test_missed_check_in_is_raised_even_when_the_phone_is_silent(client, org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(180), now + minutes(300))
    phone = enrol_phone(client)  # W001's phone; W002 has none at all
    push_ok(phone, "check_in", check_in(at=iso(now - minutes(30))))
    new = _of("missed_check_in", alerts.raise_due_alerts(now))
    db.session.commit()
    assert [a.worker_id for a in new] == ["W002"]
    assert "never synced" in new[0].message and new[0].details["state"] == "unknown"
    # W001 due at now+30: inside the 10 minutes' grace nothing, after it an alert though the phone said nothing
    assert _of("missed_check_in", alerts.raise_due_alerts(now + minutes(38))) == []
    late = _of("missed_check_in", alerts.raise_due_alerts(now + minutes(41)))
    db.session.commit()
    assert [a.worker_id for a in late] == ["W001"] and "silent since" in late[0].message
    assert _of("missed_check_in", alerts.raise_due_alerts(now + minutes(45))) == []  # the same miss: once
    # W002 gets a phone and checks in: the open alert is cleared (still waits for acknowledgement); the next miss is new
    phone2 = enrol_phone(client, worker="W002", label="second")
    push_ok(phone2, "check_in", check_in(worker="W002", at=iso(now + minutes(46))))
    assert _of("missed_check_in", alerts.raise_due_alerts(now + minutes(47))) == []
    db.session.commit()
    w002 = db.session.scalar(select(Alert).where(Alert.kind == "missed_check_in", Alert.worker_id == "W002"))
    assert w002.cleared_at is not None and w002.acknowledged_at is None
    again = _of("missed_check_in", alerts.raise_due_alerts(now + minutes(46 + 60 + 11)))
    assert "W002" in [a.worker_id for a in again]
    assert db.session.scalar(select(Alert).where(Alert.kind == "missed_check_in", Alert.worker_id == "W002", Alert.cleared_at.is_(None))) is not None


def test_missed_check_in_of_a_night_shift_across_midnight(client, org):
    from datetime import datetime, timezone

    start = datetime(2026, 11, 26, 22, tzinfo=timezone.utc)
    shift(org.teams["HP-T1"], start, start + minutes(8 * 60))
    at = datetime(2026, 11, 27, 0, 15, tzinfo=timezone.utc)  # after midnight; due was 23:00 + grace
    new = _of("missed_check_in", alerts.raise_due_alerts(at))
    assert [(a.worker_id, a.details["due_at"]) for a in new] == [("W003", "2026-11-26T23:00:00+00:00")]
    assert new[0].region_id == org.regions["HP"].id


def test_region_below_minimum_raises_once_per_episode(client, org):
    now = now_utc()
    shift(org.teams["HN-T1"], now - minutes(60), now + minutes(420))
    phone = enrol_phone(client)
    push_ok(phone, "safety_check", safety_check(taken_at=iso(now - minutes(50))))
    first = _of("below_minimum", alerts.raise_due_alerts(now))
    db.session.commit()
    assert sorted(a.ref for a in first) == ["HN#1", "HP#1"]  # HN: 1 fit of 2; HP: nobody on duty
    hn = next(a for a in first if a.subject == "HN")
    assert hn.details["shortfall"] == 1 and "needs 2" in hn.message
    assert _of("below_minimum", alerts.raise_due_alerts(now + minutes(1))) == []
    phone2 = enrol_phone(client, worker="W002", label="second")
    push_ok(phone2, "safety_check", safety_check(worker="W002", taken_at=iso(now - minutes(10))))
    assert _of("below_minimum", alerts.raise_due_alerts(now + minutes(2))) == []
    db.session.commit()
    db.session.refresh(hn)
    assert hn.cleared_at is not None
    org.regions["HN"].min_fit_on_duty = 3
    db.session.commit()
    again = _of("below_minimum", alerts.raise_due_alerts(now + minutes(3)))
    assert [a.ref for a in again] == ["HN#2"]


def test_partner_technicians_do_not_fill_the_minimum(client, org):
    from server.models import User

    now = now_utc()
    org.regions["HP"].min_fit_on_duty = 0
    partner = User(code="P001", username="ptech", display_name="Partner tech", role="technician", team_id=org.teams["PT-HN"].id)
    db.session.add(partner)
    db.session.commit()
    shift(org.teams["PT-HN"], now - minutes(60), now + minutes(60))
    phone = enrol_phone(client, team="PT-HN", worker="P001", label="partner")
    push_ok(phone, "safety_check", safety_check(worker="P001", taken_at=iso(now - minutes(30))))
    new = _of("below_minimum", alerts.raise_due_alerts(now))
    assert [a.subject for a in new] == ["HN"] and new[0].details["partner_fit"] == 1 and "mutual aid" in new[0].message


def test_response_breach_uses_the_targets_and_raises_each_measure_once(client, org):
    now = now_utc()
    org.regions["HN"].min_fit_on_duty = org.regions["HP"].min_fit_on_duty = 0
    db.session.commit()
    phone = enrol_phone(client)
    reported = iso(now - minutes(120))
    job = push_ok(phone, "repair_job", repair_job(reported_at=reported, steps={"reported": reported}))  # HN001: critical 15/60/240
    late = iso(now - minutes(30))  # restored before its acknowledgement reached the server: not recorded, no breach
    push_ok(phone, "repair_job", repair_job(status="restored", reported_at=late, steps={"reported": late, "restored": iso(now - minutes(10))}))
    new = alerts.raise_due_alerts(now)
    db.session.commit()
    assert sorted(a.ref for a in new) == sorted([f"{job['rid']}:acknowledge", f"{job['rid']}:arrive"])
    assert all(a.kind == "response_breach" and a.region_id == org.regions["HN"].id for a in new)
    assert "target 15 min" in next(a.message for a in new if a.ref.endswith(":acknowledge"))
    assert alerts.raise_due_alerts(now + minutes(5)) == []
    later = alerts.raise_due_alerts(now + minutes(125))
    assert [a.ref for a in later] == [f"{job['rid']}:restore"]
    # a target raised by the admin counts from then on
    set_target(scope_of(org.users["admin"]), "high", 500, 600, 700)
    db.session.commit()
    job2 = push_ok(phone, "repair_job", repair_job(site_code="HN002", reported_at=reported, steps={"reported": reported}))
    assert [a.ref for a in alerts.raise_due_alerts(now + minutes(126)) if job2["rid"] in a.ref] == []


def test_list_and_acknowledge_respect_roles_and_regions(client, org):
    now = now_utc()
    new = alerts.raise_due_alerts(now)  # both regions below minimum (nobody on duty)
    db.session.commit()
    hp = next(a for a in new if a.subject == "HP")
    sup = scope_of(org.users["supervisor"])  # of HN only
    assert [a["region"] for a in alerts.list_alerts(sup)] == ["HN"]
    assert alerts.open_count(sup) == 1 and alerts.open_count(scope_of(org.users["admin"])) == 2
    with pytest.raises(Forbidden):
        alerts.acknowledge(sup, hp.id)
    with pytest.raises(Forbidden):
        alerts.list_alerts(scope_of(org.users["auditor"]))
    with pytest.raises(Forbidden):
        alerts.list_alerts(sup, region_code="HP")
    with pytest.raises(NotFound):
        alerts.acknowledge(sup, 999999)
    row, first = alerts.acknowledge(scope_of(org.users["admin"]), hp.id)
    db.session.commit()
    assert first and row["acknowledged_at"] is not None
    _, again = alerts.acknowledge(scope_of(org.users["admin"]), hp.id)
    assert again is False and len(_audits("alert.acknowledge")) == 1
    assert [a["id"] for a in alerts.list_alerts(scope_of(org.users["admin"]), "all", kind="below_minimum")][0] in {a.id for a in new}


def test_the_timer_thread_raises_without_anyone_looking(app, org):
    timer = alerts.AlertTimer(app, 0.05)
    timer.start()
    try:
        deadline = time.monotonic() + 10
        found = 0
        while time.monotonic() < deadline and not found:
            time.sleep(0.1)
            db.session.rollback()
            found = len(db.session.scalars(select(Alert).where(Alert.kind == "below_minimum")).all())
    finally:
        timer.stop()
        timer.join(5)
    assert found == 2 and not timer.is_alive()


def test_run_once_cli(app, org):
    result = app.test_cli_runner().invoke(args=["alerts", "run-once"])
    assert result.exit_code == 0, result.output
    assert "raised 2 alerts" in result.output
    assert "raised 0 alerts" in app.test_cli_runner().invoke(args=["alerts", "run-once"]).output


def test_the_app_starts_its_timer_only_when_asked(database_url, keys_dir):
    from server import create_app

    quiet = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": True, "ALERTS_TIMER_SECONDS": 60})
    assert "fieldwatch_alert_timer" not in quiet.extensions
    live = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": False, "ALERTS_TIMER_SECONDS": 30})
    timer = live.extensions["fieldwatch_alert_timer"]
    try:
        assert timer.is_alive() and timer.daemon
    finally:
        timer.stop()
        timer.join(5)
    off = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": False, "ALERTS_TIMER_SECONDS": 0})
    assert "fieldwatch_alert_timer" not in off.extensions
