"""SOS acknowledgement, health details gating and audit, quarantine review, device rows."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from server.errors import Conflict, Forbidden, Invalid, NotFound
from server.extensions import db
from server.models import AuditEntry, Device
from server.services import devices_admin, enrolment, overview, quarantine_review, safety
from server.services.keys import keyring
from tests.server.conftest import check_in, enrol_phone, safety_check, site_status
from tests.server.services.conftest import iso, minutes, now_utc, push_ok, scope_of


def _audits(action):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_sos_open_then_acknowledged_once(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    sos = push_ok(phone, "check_in", check_in(status="sos", at=iso(now - minutes(3)), notes="fell from ladder"))
    help_ = push_ok(phone, "check_in", check_in(status="need_help", at=iso(now - minutes(1)), site_code=None))
    push_ok(phone, "check_in", check_in(status="ok", at=iso(now)))
    alarms = safety.open_alarms({org.regions["HN"].id}, now)
    assert [a.record_id for a in alarms] == [sos["rid"], help_["rid"]]  # SOS first
    assert alarms[1].region_id == org.regions["HN"].id  # no site: the team's region
    assert safety.open_alarms({org.regions["HP"].id}, now) == []
    with pytest.raises(Forbidden):
        safety.acknowledge(scope_of(org.users["tech1"]), sos["rid"])
    alert, new = safety.acknowledge(scope_of(org.users["supervisor"]), sos["rid"])
    db.session.commit()
    assert new and alert.acknowledged_by_id == org.users["supervisor"].id
    _, again = safety.acknowledge(scope_of(org.users["admin"]), sos["rid"])
    assert again is False and len(_audits("checkin.acknowledge")) == 1
    assert [a.record_id for a in safety.open_alarms(None, now)] == [help_["rid"]]
    with pytest.raises(NotFound):
        safety.acknowledge(scope_of(org.users["admin"]), "no-such-record")


def test_old_alarms_leave_the_window(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    push_ok(phone, "check_in", check_in(status="sos", at=iso(now - minutes(25 * 60))))
    assert safety.open_alarms(None, now, window_hours=24) == []


def test_health_details_only_for_allowed_roles_and_logged(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    push_ok(phone, "safety_check", safety_check(taken_at=iso(now - minutes(10)), temperature_c=36.9, notes="slept badly"))
    worker = org.users["tech1"]
    plain = safety.worker_records(scope_of(org.users["supervisor"]), worker, with_health=False, now=now)
    assert plain["safety_checks"][0]["health"] is None and plain["may_see_health"] and not _audits("health.view")
    shown = safety.worker_records(scope_of(org.users["supervisor"]), worker, with_health=True, ring=keyring(), now=now)
    assert shown["safety_checks"][0]["health"] == {"temperature_c": 36.9, "symptoms": [], "exposure": "none", "notes": "slept badly"}
    entry = _audits("health.view")[0]
    assert entry.target == "worker:W001" and "36.9" not in str(entry.details) and "slept" not in str(entry.details)
    for role in ("tech1", "auditor"):
        with pytest.raises(Forbidden):
            safety.worker_records(scope_of(org.users[role]), worker, with_health=True, ring=keyring(), now=now)
    org.users["supervisor"].regions = [org.regions["HP"]]
    db.session.commit()
    with pytest.raises(Forbidden):
        safety.worker_records(scope_of(org.users["supervisor"]), worker, with_health=True, ring=keyring(), now=now)


def test_quarantine_review(client, org):
    phone = enrol_phone(client)
    r = phone.push([phone.seal("safety_check", safety_check(temperature_c=51))])
    assert r.get_json()["results"][0]["status"] == "rejected"
    sup = scope_of(org.users["supervisor"])
    [item] = quarantine_review.items(sup)
    assert item.reason == "invalid_record" and item.device_label == "test phone"
    with pytest.raises(Invalid):
        quarantine_review.mark_reviewed(sup, item.id, "   ")
    quarantine_review.mark_reviewed(sup, item.id, "asked tech1 to measure again")
    db.session.commit()
    assert quarantine_review.items(sup) == [] and quarantine_review.items(sup, "reviewed")[0].review_comment.startswith("asked")
    with pytest.raises(Conflict):
        quarantine_review.mark_reviewed(sup, item.id, "again")
    assert len(_audits("quarantine.review")) == 1
    other = scope_of(org.users["supervisor"])
    org.users["supervisor"].regions = [org.regions["HP"]]
    db.session.commit()
    assert quarantine_review.items(scope_of(org.users["supervisor"]), "all") == []
    with pytest.raises(NotFound):
        quarantine_review.mark_reviewed(scope_of(org.users["supervisor"]), item.id, "x")
    assert other.region_ids == {org.regions["HN"].id}


def test_device_rows_stale_and_revoke(client, org):
    now = now_utc()
    fresh = enrol_phone(client, label="fresh")
    silent = enrol_phone(client, worker="W002", label="silent")
    fresh.push([fresh.seal("check_in", check_in())], outbox_depth=7, app_version="1.2.0", device_time=iso(now + minutes(2)))
    db.session.get(Device, silent.device_id).last_contact_at = now - minutes(300)
    db.session.commit()
    rows = {r.label: r for r in devices_admin.device_rows(scope_of(org.users["supervisor"]), now=now + minutes(1))}
    assert rows["silent"].stale and rows["silent"].since_contact_minutes == 301
    assert not rows["fresh"].stale and rows["fresh"].outbox_depth == 7 and rows["fresh"].app_version == "1.2.0"
    assert 100_000 < rows["fresh"].clock_skew_ms < 140_000 and rows["fresh"].last_push_at is not None
    devices_admin.revoke(scope_of(org.users["supervisor"]), silent.device_id)
    db.session.commit()
    assert db.session.get(Device, silent.device_id).status == "revoked" and _audits("device.revoke")
    org.users["supervisor"].regions = [org.regions["HP"]]
    db.session.commit()
    assert devices_admin.device_rows(scope_of(org.users["supervisor"])) == []
    with pytest.raises(Forbidden):
        devices_admin.revoke(scope_of(org.users["supervisor"]), fresh.device_id)


def test_enrol_code_with_qr(client, org):
    code = devices_admin.create_code(scope_of(org.users["supervisor"]), "HN-T1", "2h", "W001")
    db.session.commit()
    assert code["qr_svg"].startswith("<svg") and "<path" in code["qr_svg"]
    assert enrolment.normalise_code(code["code"]) and code["worker"] == "W001"
    with pytest.raises(Forbidden):
        devices_admin.create_code(scope_of(org.users["supervisor"]), "HP-T1")
    with pytest.raises(Invalid):
        devices_admin.create_code(scope_of(org.users["supervisor"]), "HN-T1", "forever")


def test_overview_has_every_section_and_respects_region(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    push_ok(phone, "site_status", site_status(observed_at=iso(now), state="down", power_source="generator", mobile_bts_deployed=True,
                                              access="quarantined"))
    data = overview.overview(scope_of(org.users["supervisor"]), None, now)
    t = data["totals"]
    assert (t["down"], t["generator"], t["mobile_bts"], t["quarantined"], t["battery"]) == (1, 1, 1, 1, 0)
    assert data["sites"][0]["code"] == "HN001" and [c.code for c in data["coverage"]] == ["HN"]
    with pytest.raises(Forbidden):
        overview.overview(scope_of(org.users["supervisor"]), "HP", now)
    with pytest.raises(NotFound):
        overview.overview(scope_of(org.users["admin"]), "XX", now)
    assert [c.code for c in overview.overview(scope_of(org.users["admin"]), None, now)["coverage"]] == ["HN", "HP"]


def test_charts_series_and_svg(client, org):
    from server.services import charts

    now = now_utc()
    phone = enrol_phone(client)
    push_ok(phone, "safety_check", safety_check(taken_at=iso(now)))
    push_ok(phone, "site_status", site_status(observed_at=iso(now), state="down"))
    out = charts.charts(scope_of(org.users["supervisor"]), days=7, now=now)
    data = out["data"]
    assert len(data["days"]) == 7 and data["technicians"] == 2
    assert data["health_check_compliance_pct"][-1] == 50.0 and data["sites_reported_down"][-1] == 1
    assert {s["code"] for s in data["sites"]} == {"HN001", "HN002", "HN003"}
    assert all(svg.startswith("<svg") and svg.endswith("</svg>") for svg in out["svg"].values())
    assert "HN001: down" in out["svg"]["map"]
    with pytest.raises(Forbidden):
        charts.series(scope_of(org.users["auditor"]))
