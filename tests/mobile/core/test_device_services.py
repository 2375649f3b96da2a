"""Device use cases: validation, jobs and their state machine, today's status, sites, convergence."""
from __future__ import annotations

import pytest

from tests.mobile.core.fakeserver import BASE_URL, FakeServer
from mobile.core.errors import (
    AlreadyEnrolled, DeviceError, NotEnrolled, NotFitForDuty, NotFound, TransitionNotAllowed, ValidationFailed,
)
from mobile.core.sync.client import ServerRejected
from tests.mobile.core.conftest import PIN


def test_validation_errors_carry_per_field_messages(device):
    with pytest.raises(ValidationFailed) as err:
        device.record_safety_check(52.0, exposure="maybe")
    assert set(err.value.errors) == {"temperature_c", "exposure"}
    assert "between 30 and 45" in err.value.errors["temperature_c"][0]
    assert err.value.to_dict()["errors"] == err.value.errors
    assert device.outbox_items() == []


def test_fit_cannot_be_claimed_with_a_fever(device):
    with pytest.raises(ValidationFailed) as err:
        device.record_safety_check(38.2, fit_for_duty=True)
    assert "fit_for_duty" in err.value.errors


def test_fitness_defaults_to_the_shared_rule(device):
    device.record_safety_check(36.6)
    assert device.today_status()["fit_for_duty"] is True
    device.record_safety_check(36.6, symptoms=["shortness_of_breath"])
    assert device.today_status()["fit_for_duty"] is False


def test_bad_check_in_status_and_position(device):
    with pytest.raises(ValidationFailed) as err:
        device.record_check_in("fine", position={"lat": 91, "lon": 0})
    assert set(err.value.errors) == {"status", "position"}


def test_enrol_twice_and_not_enrolled(device, make_device):
    with pytest.raises(AlreadyEnrolled):
        device.enrol(BASE_URL, "whatever", "x", PIN)
    fresh = make_device("fresh", enrol=False)
    with pytest.raises(NotEnrolled):
        fresh.enrolment()


def test_enrol_with_a_bad_code_leaves_the_device_unenrolled(make_device, fake):
    fresh = make_device("fresh", enrol=False)
    with pytest.raises(ServerRejected) as err:
        fresh.enrol(BASE_URL, "nope-nope", "phone", PIN)
    assert err.value.reason == "enrol_code_invalid"
    assert not fresh.is_enrolled
    fresh.enrol(BASE_URL, fake.new_code(), "phone", PIN)
    assert fresh.enrolment()["worker_id"]


def test_enrolment_pins_address_keys_and_settings(device, fake):
    info = device.enrolment()
    assert info["server_url"] == BASE_URL and info["server_key"] == "k1"
    assert info["settings"]["check_in_interval_minutes"] == 60
    assert "token" not in info


# --- jobs ------------------------------------------------------------------------------------

def test_job_moves_only_to_allowed_next_states(device, fake):
    job = fake.add_job(status="assigned")
    device.sync_now()
    assert device.get_job(job)["next_states"] == ["acknowledged", "cancelled"]
    with pytest.raises(TransitionNotAllowed, match="can move to: acknowledged, cancelled"):
        device.update_job(job, to="restored")
    for step in ("acknowledged", "en_route", "on_site", "restored"):
        device.update_job(job, to=step)
    updated = device.update_job(job, note="replaced rectifier", parts=[("rectifier", 1), ("fuse", 2)],
                                actions=["swapped rectifier"])
    assert updated["status"] == "restored" and updated["parts"] == [{"name": "rectifier", "quantity": 1},
                                                                     {"name": "fuse", "quantity": 2}]
    assert updated["notes"][-1]["text"] == "replaced rectifier"
    assert set(updated["steps"]) >= {"acknowledged", "en_route", "on_site", "restored"}
    assert device.sync_now().accepted == 5
    assert fake.state_of(job)["body"]["status"] == "restored"


def test_update_unknown_job_or_nothing(device, fake):
    with pytest.raises(NotFound):
        device.update_job("no-such-job", to="acknowledged")
    job = fake.add_job()
    device.sync_now()
    with pytest.raises(DeviceError, match="nothing to update"):
        device.update_job(job)


def test_accepting_a_job_needs_fitness_when_required(make_device):
    server = FakeServer(settings={"require_fit_for_accept": True, "check_in_interval_minutes": 30})
    device = make_device("strict", server=server)
    job = server.add_job(status="assigned")
    device.sync_now()
    with pytest.raises(NotFitForDuty):
        device.update_job(job, to="acknowledged")
    device.record_safety_check(36.7)
    assert device.update_job(job, to="acknowledged")["status"] == "acknowledged"


def test_list_my_jobs_orders_open_by_priority(device, fake):
    low = fake.add_job(priority="low")
    crit = fake.add_job(priority="critical")
    done = fake.add_job(status="closed", steps={"reported": "2026-11-20T08:00:00+07:00", "closed": "2026-11-21T08:00:00+07:00"})
    device.sync_now()
    assert [j["id"] for j in device.list_my_jobs()] == [crit, low]
    assert done in [j["id"] for j in device.list_my_jobs(include_finished=True)]


def test_report_fault_makes_a_reported_job(device, fake):
    saved = device.report_fault("S-002", "fibre_cut", "critical", "Cable cut by road works", note="dug up")
    job = device.get_job(saved.record_id)
    assert job["status"] == "reported" and job["notes"][0]["text"] == "dug up"
    assert device.sync_now().accepted == 1


def test_two_devices_converge_on_a_job(make_device, fake, clock):
    job = fake.add_job(status="en_route", steps={"reported": "2026-11-26T06:00:00+07:00",
                                                 "assigned": "2026-11-26T06:10:00+07:00",
                                                 "acknowledged": "2026-11-26T06:20:00+07:00",
                                                 "en_route": "2026-11-26T06:30:00+07:00"})
    a, b = make_device("a"), make_device("b")
    a.sync_now()
    b.sync_now()
    a.update_job(job, to="on_site", note="A arrived")  # both offline
    clock.advance(minutes=5)
    b.update_job(job, to="on_site", note="B on site")
    clock.advance(minutes=40)
    b.update_job(job, to="restored", note="B restored power")
    for device in (b, a, b, a):
        assert device.sync_now().ok
    ja, jb, server = a.get_job(job), b.get_job(job), fake.state_of(job)["body"]
    assert ja["status"] == jb["status"] == server["status"] == "restored"
    assert [n["text"] for n in ja["notes"]] == [n["text"] for n in jb["notes"]] == ["A arrived", "B on site", "B restored power"]
    assert ja["steps"] == jb["steps"] == server["steps"]
    assert ja["steps"]["on_site"].startswith("2026-11-26T08:00")  # the first time on site wins


# --- today, sites, status ------------------------------------------------------------------------

def test_today_status_through_a_day(device, clock):
    start = device.today_status()
    assert (start["health_check_done"], start["on_duty"], start["fit_for_duty"]) == (False, False, None)
    assert start["next_check_in_due_at"].startswith("2026-11-26T08:00")
    device.record_safety_check(36.5)
    device.record_check_in("ok")
    now = device.today_status()
    assert now["health_check_done"] and now["fit_for_duty"] and now["on_duty"]
    assert now["next_check_in_due_at"].startswith("2026-11-26T09:00") and not now["check_in_overdue"]
    clock.advance(minutes=61)
    assert device.today_status()["check_in_overdue"]
    clock.advance(days=1)
    tomorrow = device.today_status()
    assert not tomorrow["health_check_done"] and not tomorrow["on_duty"]


def test_region_sites_with_current_status(device, fake, clock):
    device.record_site_status("S-001", "down", power_source="battery", cause="grid outage")
    clock.advance(minutes=10)
    device.record_site_status("S-001", "degraded", power_source="generator")
    sites = {s["code"]: s for s in device.list_region_sites()}
    assert sites["S-001"]["status"]["state"] == "degraded" and sites["S-002"]["status"] is None
    fake.drop("/api/v1/sites", times=100)
    assert len(device.list_region_sites(refresh=True)) == 2  # offline: the cached list


def test_sync_status_counts_pending_by_kind(device):
    device.record_check_in("ok")
    device.record_check_in("sos")
    device.record_safety_check(36.0)
    status = device.sync_status()
    assert status["pending"] == {"check_in": 2, "safety_check": 1} and status["pending_total"] == 3
    assert status["last_success_at"] is None
    device.sync_now()
    status = device.sync_status()
    assert status["pending_total"] == 0 and status["last_success_at"]


def test_set_pin(device):
    device.set_pin(PIN, "86420")
    device.lock()
    device.unlock("86420")
    assert device.is_unlocked
