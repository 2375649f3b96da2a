"""Open faults and responders (mutual aid), response times against targets, assigning, timelines."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from server.errors import Forbidden, Invalid
from server.extensions import db
from server.models import AuditEntry, RecordState, ResponseTarget
from server.services import jobs
from server.services.keys import keyring
from tests.server.conftest import enrol_phone, repair_job
from tests.server.services.conftest import iso, minutes, now_utc, push_ok, scope_of


def test_measure_is_pure_and_marks_breaches():
    now = now_utc()
    t0 = now - minutes(100)
    body = {"status": "on_site", "steps": {"reported": iso(t0), "acknowledged": iso(t0 + minutes(20)), "on_site": iso(t0 + minutes(50))}}
    ack, arrive, restore = jobs.measure(body, "critical", now, jobs.DEFAULT_TARGETS)
    assert (ack.state, ack.minutes, ack.breach) == ("done", 20.0, True)  # critical: 15 min
    assert (arrive.state, arrive.breach) == ("done", False)  # 50 <= 60
    assert (restore.state, restore.minutes, restore.breach) == ("running", 100.0, False)
    cancelled = jobs.measure({"status": "cancelled", "steps": {"reported": iso(t0), "cancelled": iso(now)}}, "normal", now, jobs.DEFAULT_TARGETS)
    assert [m.state for m in cancelled] == ["not_applicable"] * 3 and not any(m.breach for m in cancelled)


def test_restored_before_acknowledged_synced_late(client, org):
    # Two phones of one team: B marks the job restored and syncs first; A's
    # "acknowledged" (made earlier, offline) arrives later.
    now = now_utc()
    t0 = now - minutes(200)
    a = enrol_phone(client, worker="W001", label="A")
    b = enrol_phone(client, worker="W002", label="B")
    rid = "job-late-ack"
    push_ok(a, "repair_job", repair_job(steps={"reported": iso(t0)}, reported_at=iso(t0)), rid=rid)
    push_ok(b, "repair_job", repair_job(status="restored", reported_at=iso(t0), changed=["status"],
                                        steps={"reported": iso(t0), "on_site": iso(t0 + minutes(40)), "restored": iso(t0 + minutes(90))}), rid=rid)
    job = jobs.list_jobs(scope_of(org.users["supervisor"]), status="all", now=now)[0]
    ack, arrive, restore = job.measures
    assert ack.state == "not_recorded" and not ack.breach  # not a breach growing forever
    assert (arrive.minutes, restore.minutes) == (40.0, 90.0)
    push_ok(a, "repair_job", repair_job(status="acknowledged", reported_at=iso(t0), changed=["status"],
                                        steps={"reported": iso(t0), "acknowledged": iso(t0 + minutes(10))}), rid=rid)
    state = db.session.get(RecordState, rid)
    assert state.status == "restored"  # the late step never moves the job back
    job = jobs.list_jobs(scope_of(org.users["supervisor"]), status="all", now=now)[0]
    assert (job.measures[0].state, job.measures[0].minutes, job.measures[0].breach) == ("done", 10.0, False)
    summary = jobs.response_summary({org.regions["HN"].id}, now)
    assert summary["measures"]["acknowledge"]["measured"] == 1 and summary["measures"]["restore"]["median_minutes"] == 90.0


def test_targets_come_from_the_table_and_running_breach(client, org):
    db.session.add(ResponseTarget(criticality="critical", acknowledge_minutes=5, arrive_minutes=30, restore_minutes=120))
    db.session.commit()
    now = now_utc()
    phone = enrol_phone(client)
    push_ok(phone, "repair_job", repair_job(steps={"reported": iso(now - minutes(10))}, reported_at=iso(now - minutes(10))))
    job = jobs.open_faults(None, now)[0]
    assert job.criticality == "critical" and job.breaches == ["acknowledge"] and job.measures[0].target == 5


def test_region_with_only_partner_responders(client, org):
    now = now_utc()
    phone = enrol_phone(client)
    h1 = push_ok(phone, "repair_job", repair_job(team_id=None, team_operator=None, reported_at=iso(now), steps={"reported": iso(now)}))
    h2 = push_ok(phone, "repair_job", repair_job(site_code="HN002", team_id=None, team_operator=None, reported_at=iso(now), steps={"reported": iso(now)}))
    hn = {org.regions["HN"].id}
    assert {j.record_id for j in jobs.open_faults(hn, now) if not j.has_responder} == {h1["rid"], h2["rid"]}
    sup = scope_of(org.users["supervisor"])
    for h in (h1, h2):
        jobs.assign(sup, h["rid"], "PT-HN", keyring())
    db.session.commit()
    faults = jobs.open_faults(hn, now)
    assert all(j.has_responder and j.mutual_aid and j.team_code == "PT-HN" for j in faults) and len(faults) == 2
    assert db.session.get(RecordState, h1["rid"]).status == "assigned"
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "job.assign")).all()[0].details["mutual_aid"] is True


def test_assign_timeline_and_who_may(client, org):
    now = now_utc()
    phone = enrol_phone(client, label="tech1 phone")
    h = push_ok(phone, "repair_job", repair_job(reported_at=iso(now), steps={"reported": iso(now)}))
    with pytest.raises(Forbidden):
        jobs.assign(scope_of(org.users["tech1"]), h["rid"], "PT-HN", keyring())
    with pytest.raises(Invalid):
        jobs.assign(scope_of(org.users["supervisor"]), h["rid"], "HP-T1", keyring())  # another region's own team
    jobs.assign(scope_of(org.users["supervisor"]), h["rid"], "PT-HN", keyring())
    db.session.commit()
    detail = jobs.job_detail(scope_of(org.users["admin"]), h["rid"])
    assert [t["by"] for t in detail["timeline"]] == ["tech1 phone", "Pham Minh"] and detail["timeline"][1]["by_person"]
    assert detail["timeline"][1]["changed"] == ["team_id", "team_operator", "status"]
    assert [s["step"] for s in detail["steps"]] == ["reported", "assigned"]
    # technicians see their own team's jobs only: the job now belongs to the partner team
    assert jobs.list_jobs(scope_of(org.users["tech1"]), status="all") == []
    with pytest.raises(Forbidden):
        jobs.job_detail(scope_of(org.users["tech1"]), h["rid"])
    # the phone pulls the person-made revision like any other
    assert phone.pull().status_code == 200


def test_supervisor_of_another_region_cannot_see_or_assign(client, org):
    now = now_utc()
    phone = enrol_phone(client, team="HP-T1", worker="W003")
    h = push_ok(phone, "repair_job", repair_job(site_code="HP001", team_id="HP-T1", reported_at=iso(now), steps={"reported": iso(now)}))
    sup = scope_of(org.users["supervisor"])  # of HN only
    assert jobs.list_jobs(sup, status="all") == []
    with pytest.raises(Forbidden):
        jobs.assign(sup, h["rid"], "PT-HN", keyring())
    with pytest.raises(Invalid):
        jobs.list_jobs(sup, status="bogus")
