"""The pages and their JSON twins show the same figures; actions work through the forms."""
from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, Device, QuarantineItem, RecordState
from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check, site_status
from tests.server.dashboard.conftest import login, now_utc, on_duty, hours


def _audit(action):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_overview_page_and_json_agree(client, people_org, tokens):
    org = people_org
    now = now_utc()
    on_duty(org.teams["HN-T1"], now - hours(3), now + hours(5))
    phone = enrol_phone(client)
    sos = phone.seal("check_in", check_in(status="sos", at=now.isoformat(), notes="trapped in shelter"))
    phone.push([sos, phone.seal("safety_check", safety_check(taken_at=now.isoformat())),
                phone.seal("site_status", site_status(observed_at=now.isoformat())),
                phone.seal("repair_job", repair_job(team_id=None, team_operator=None, reported_at=now.isoformat(), steps={"reported": now.isoformat()}))])
    login(client, "super")
    page = client.get("/dashboard/").data.decode()
    data = client.get("/api/v1/overview", headers=tokens["supervisor"]).get_json()
    assert data["totals"]["sos"] == 1 and data["alarms"][0]["notes"] == "trapped in shelter"
    assert "trapped in shelter" in page and "Acknowledge" in page
    assert data["totals"]["on_duty"] == 2 and data["totals"]["fit"] == 1 and data["totals"]["no_check"] == 1
    assert data["totals"]["down"] == 1 and data["totals"]["battery"] == 1 and data["totals"]["without_responder"] == 1
    assert data["below_minimum"][0]["code"] == "HN" and data["below_minimum"][0]["shortfall"] == 1
    assert "below their minimum" in page and "1 fit of 2 needed" in page
    assert "unknown: device never synced" in page and data["totals"]["unknown"] == 1  # W002 has no phone
    # the live panel (polled by the page) and acknowledging
    panel = client.get("/dashboard/live/alarms").data.decode()
    assert "trapped in shelter" in panel and "1 SOS · 0 need help" in panel
    assert "trapped in shelter" in client.get("/dashboard/live/alarms?region=HN").data.decode()
    assert client.get("/dashboard/live/alarms?region=HP").status_code == 403
    r = client.post(f"/dashboard/checkins/{sos['h']['rid']}/ack", data={"back": "/dashboard/?region=HN"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/?region=HN")
    assert client.get("/api/v1/overview", headers=tokens["supervisor"]).get_json()["alarms"] == []
    assert len(_audit("checkin.acknowledge")) == 1
    assert client.get("/dashboard/?region=HN").status_code == 200
    assert client.get("/dashboard/?region=HP").status_code == 403


def test_overview_lists_the_worst_people_first_up_to_the_limit_and_says_so(app, client, people_org, tokens):
    # An admin's view of every region lists thousands on duty: the lists stop at the limit (worst first),
    # the totals count everyone, and the page says how many it shows.
    org = people_org
    now = now_utc()
    on_duty(org.teams["HN-T1"], now - hours(3), now + hours(5))
    phone = enrol_phone(client)  # W001's phone: W002 has none, so W002's check-in state is unknown (the worst)
    phone.push([phone.seal("check_in", check_in(at=now.isoformat()))])
    app.config["OVERVIEW_PERSON_LIST_LIMIT"] = 1
    data = client.get("/api/v1/overview", headers=tokens["supervisor"]).get_json()
    assert data["totals"]["on_duty"] == 2 and data["list_limit"] == 1
    assert [p["worker_id"] for p in data["on_duty"]] == ["W002"] and [p["worker_id"] for p in data["overdue"]] == ["W002"]
    login(client, "super")
    page = client.get("/dashboard/").data.decode()
    assert "The 1 needing attention first, of 2 on duty" in page
    app.config["OVERVIEW_PERSON_LIST_LIMIT"] = 200
    data = client.get("/api/v1/overview", headers=tokens["supervisor"]).get_json()
    assert [p["worker_id"] for p in data["on_duty"]] == ["W002", "W001"]
    assert "needing attention first" not in client.get("/dashboard/").data.decode()


def test_devices_page_revoke_and_enrol_code_qr(client, people_org, tokens):
    phone = enrol_phone(client, label="Tower phone")
    phone.push([phone.seal("check_in", check_in())], outbox_depth=3, app_version="1.4.0")
    login(client, "super")
    page = client.get("/dashboard/devices").data.decode()
    assert "Tower phone" in page and "1.4.0" in page
    client.post(f"/dashboard/devices/{phone.device_id}/revoke")
    assert db.session.get(Device, phone.device_id).status == "revoked"
    assert phone.pull().status_code == 401
    page = client.post("/dashboard/enrol-codes", data={"team": "HN-T1", "ttl": "2h", "worker": "W002"}).data.decode()
    code = page.split('data-code="')[1].split('"')[0]
    assert "<svg" in page and len(code) == 14
    enrolled = client.post("/api/v1/devices/enrol", json={"code": code, "public_key": "A" * 43 + "=", "label": "x", "app_version": "1"})
    assert enrolled.status_code in (201, 422)  # the code is real (422 only for the fake key)
    r = client.post("/dashboard/enrol-codes", data={"team": "HN-T1", "ttl": "forever"}, follow_redirects=True)
    assert r.status_code == 200 and b"TTL" in r.data
    api = client.post("/api/v1/enrol-codes", json={"team": "HN-T1", "ttl": "30m"}, headers=tokens["supervisor"])
    assert api.status_code == 201 and api.get_json()["qr_svg"].startswith("<svg")
    bad = client.post("/api/v1/enrol-codes", json={"ttl": "30m"}, headers=tokens["supervisor"])
    assert bad.status_code == 422 and "team" in bad.get_json()["errors"]


def test_quarantine_page_review(client, people_org):
    phone = enrol_phone(client)
    phone.push([phone.seal("safety_check", safety_check(temperature_c=51))])
    login(client, "super")
    page = client.get("/dashboard/quarantine").data.decode()
    assert "invalid_record" in page and "temperature must be between" in page and '"c":' not in page
    qid = db.session.scalar(select(QuarantineItem.id))
    r = client.post(f"/dashboard/quarantine/{qid}/review", data={"comment": ""}, follow_redirects=True)
    assert b"comment is required" in r.data
    client.post(f"/dashboard/quarantine/{qid}/review", data={"comment": "thermometer broken, re-measured"})
    assert "re-measured" in client.get("/dashboard/quarantine?show=reviewed").data.decode()
    assert client.get("/dashboard/quarantine?show=bogus").status_code == 422


def test_jobs_filter_assign_and_timeline_pages(client, people_org, tokens):
    phone = enrol_phone(client, label="crew phone")
    job = phone.seal("repair_job", repair_job())
    phone.push([job, phone.seal("repair_job", repair_job(site_code="HN002", title="Fibre cut", fault_type="fibre_cut"))])
    login(client, "super")
    assert "Fibre cut" in client.get("/dashboard/jobs?site=HN002").data.decode()
    assert "Fibre cut" not in client.get("/dashboard/jobs?site=HN001").data.decode()
    assert client.get("/dashboard/jobs?status=nonsense").status_code == 422
    assert client.get("/dashboard/jobs?region=HP").status_code == 422
    rid = job["h"]["rid"]
    r = client.post(f"/dashboard/jobs/{rid}/assign", data={"team": "PT-HN"})
    assert r.status_code == 302
    page = client.get(f"/dashboard/jobs/{rid}").data.decode()
    assert "mutual aid" in page and "Pham Minh (dashboard)" in page and "crew phone" in page
    assert db.session.get(RecordState, rid).team_id == people_org.teams["PT-HN"].id
    r = client.post(f"/dashboard/jobs/{rid}/assign", data={"team": "NOPE"}, follow_redirects=True)
    assert b"not one you can assign" in r.data
    api = client.get(f"/api/v1/jobs/{rid}", headers=tokens["supervisor"]).get_json()
    assert api["job"]["mutual_aid"] and len(api["timeline"]) == 2
    assert client.get("/dashboard/jobs/unknown-job").status_code == 404


def test_worker_page_health_on_request_and_logged(client, people_org, tokens):
    phone = enrol_phone(client)
    phone.push([phone.seal("safety_check", safety_check(taken_at=now_utc().isoformat(), temperature_c=37.1, notes="headache"))])
    login(client, "super")
    page = client.get("/dashboard/workers/W001").data.decode()
    assert "Show health details" in page and "37.1" not in page and not _audit("health.view")
    page = client.get("/dashboard/workers/W001?health=1").data.decode()
    assert "37.1" in page and "headache" in page and len(_audit("health.view")) == 1
    api = client.get("/api/v1/workers/W001?health=true", headers=tokens["admin"]).get_json()
    assert api["safety_checks"][0]["health"]["temperature_c"] == 37.1 and len(_audit("health.view")) == 2
    client.post("/dashboard/logout")
    login(client, "tech1")
    page = client.get("/dashboard/workers/W001").data.decode()
    assert "Show health details" not in page and "37.1" not in page
    assert client.get("/dashboard/").headers["Location"].endswith("/dashboard/workers/W001")


def test_no_health_values_in_logs(client, people_org, caplog):
    phone = enrol_phone(client)
    phone.push([phone.seal("safety_check", safety_check(taken_at=now_utc().isoformat(), temperature_c=36.8, notes="secret-note"))])
    login(client, "admin")
    with caplog.at_level("DEBUG"):
        client.get("/dashboard/workers/W001?health=1")
    assert "secret-note" not in caplog.text and "36.8" not in caplog.text


def test_audit_page_for_auditor(client, people_org):
    login(client, "auditor")
    assert client.get("/dashboard/").headers["Location"].endswith("/dashboard/audit")
    assert client.get("/dashboard/audit").status_code == 200
