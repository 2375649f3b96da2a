"""Time since a job was reported against the response target of the step now due, for its site's criticality."""
from __future__ import annotations

import sqlite3

from tests.mobile.core.fakeserver import RESPONSE_TARGETS
from mobile.core.services import response_of
from mobile.core.store import MIGRATIONS, SCHEMA_VERSION, Store

REPORTED = "2026-11-26T06:00:00+07:00"   # the fake clock starts at 08:00 (+07:00): 120 min later


def _job(fake, site="S-001", status="reported", **steps):
    return fake.add_job(site_code=site, status=status, steps={"reported": REPORTED, **steps}, reported_at=REPORTED)


def test_enrolment_keeps_the_response_targets(device):
    assert device.enrolment()["settings"]["response_targets"] == RESPONSE_TARGETS
    assert device.response_targets()["high"] == {"acknowledge_minutes": 30, "arrive_minutes": 120, "restore_minutes": 480}


def test_each_job_carries_the_target_of_the_step_now_due(device, fake, clock):
    device.list_region_sites()                    # caches S-001 (high) and S-002 (low)
    fresh = _job(fake, status="reported")
    accepted = _job(fake, status="acknowledged", acknowledged="2026-11-26T06:10:00+07:00")
    on_site = _job(fake, status="on_site", acknowledged="2026-11-26T06:10:00+07:00", en_route="2026-11-26T06:20:00+07:00",
                   on_site="2026-11-26T07:00:00+07:00")
    low_site = _job(fake, site="S-002", status="assigned", assigned="2026-11-26T06:01:00+07:00")
    unknown_site = _job(fake, site="S-999", status="reported")
    restored = _job(fake, status="restored", on_site="2026-11-26T07:00:00+07:00", restored="2026-11-26T07:30:00+07:00")
    device.sync_now()
    jobs = {j["id"]: j for j in device.list_my_jobs(include_finished=True)}

    r = jobs[fresh]["response"]                   # high site: acknowledge within 30 min; 120 min have passed
    assert (r["step"], r["criticality"], r["target_minutes"], r["minutes_since_reported"], r["breached"]) == \
        ("acknowledge", "high", 30, 120.0, True)
    assert r["due_at"] == "2026-11-26T06:30:00+07:00"
    r = jobs[accepted]["response"]                # acknowledged: now arrive, 120 min target, exactly 120 passed
    assert (r["step"], r["target_minutes"], r["breached"]) == ("arrive", 120, False)
    r = jobs[on_site]["response"]                 # on site: restore within 480 min
    assert (r["step"], r["target_minutes"], r["breached"]) == ("restore", 480, False)
    r = jobs[low_site]["response"]                # "low" has no target row: the server's fallback is "normal"
    assert (r["step"], r["criticality"], r["target_minutes"], r["breached"]) == ("acknowledge", "low", 60, True)
    r = jobs[unknown_site]["response"]            # not in the cached list: criticality unknown, normal target
    assert (r["criticality"], r["target_minutes"]) == (None, 60)
    assert jobs[restored]["response"] is None     # nothing due any more
    assert device.get_job(fresh)["response"] == jobs[fresh]["response"]

    clock.advance(minutes=1)                      # one more minute: the arrive target is passed too
    assert device.get_job(accepted)["response"]["breached"] is True


def test_a_step_the_job_went_past_is_not_due():
    # "on_site" synced without the "acknowledged" time: acknowledge is not due any more, restore is.
    from datetime import datetime
    body = {"status": "on_site", "steps": {"reported": REPORTED, "on_site": REPORTED}, "reported_at": REPORTED}
    now = datetime.fromisoformat("2026-11-26T07:00:00+07:00")
    assert response_of(body, "critical", RESPONSE_TARGETS, now)["step"] == "restore"
    assert response_of({**body, "status": "cancelled"}, "critical", RESPONSE_TARGETS, now) is None


def test_without_targets_the_time_is_still_measured():
    from datetime import datetime
    body = {"status": "reported", "steps": {"reported": REPORTED}, "reported_at": REPORTED}
    r = response_of(body, "high", {}, datetime.fromisoformat("2026-11-26T08:00:00+07:00"))
    assert (r["minutes_since_reported"], r["target_minutes"], r["due_at"], r["breached"]) == (120.0, None, None, False)


# --- the outbox label: a check-in's status, readable, nothing else ------------------------------

def test_outbox_items_name_each_check_in_status(device, fake):
    device.record_check_in("ok")
    device.record_check_in("need_help")
    device.record_check_in("sos")
    device.record_safety_check(36.6, notes="quiet day")
    items = device.outbox_items()
    assert [(i["kind"], i["check_in_status"]) for i in items] == [
        ("check_in", "need_help"), ("check_in", "sos"), ("check_in", "ok"), ("safety_check", None)]
    labels = [r["label"] for r in device.store.query("SELECT label FROM outbox ORDER BY seq")]
    assert labels == ["ok", "need_help", "sos", None]    # nothing readable for any other kind


def test_outbox_refuses_a_label_that_is_not_a_check_in_status(device):
    import pytest
    with pytest.raises(ValueError):
        device.outbox.add({"h": {"rid": "x", "rev": "1"}}, "safety_check", 2, "2026-11-26T08:00:00+07:00", "fever")


def test_a_version_1_store_gains_the_label_column(tmp_path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO outbox (record_id, rev, kind, priority, envelope, size, created_at) "
                 "VALUES ('r1', '1', 'check_in', 0, '{}', 2, '2026-11-26T08:00:00+07:00')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION == 2
    rows = store.query("SELECT record_id, label FROM outbox")
    assert [(r["record_id"], r["label"]) for r in rows] == [("r1", None)]   # kept, status unknown
    store.close()


def test_pending_count_needs_no_pin(device):
    device.record_check_in("ok")
    device.record_site_status("S-001", "up")
    device.lock()
    assert device.waiting_to_send() == 2
    assert [i["check_in_status"] for i in device.outbox_items()] == ["ok", None]


def test_new_targets_reach_an_enrolled_phone_on_its_next_sync(device, fake):
    fake.settings = {**fake.settings, "response_targets": {"normal": {"acknowledge_minutes": 5, "arrive_minutes": 10, "restore_minutes": 20}}}
    assert device.response_targets()["normal"]["acknowledge_minutes"] != 5
    assert device.sync_now().ok
    assert device.response_targets() == {"normal": {"acknowledge_minutes": 5, "arrive_minutes": 10, "restore_minutes": 20}}
