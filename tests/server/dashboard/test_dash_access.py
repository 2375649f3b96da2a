"""The access-control matrix: every dashboard page and every API route, for every role and for nobody.

Each row names the exact status expected per caller. Pages answer a
sign-in redirect (302) to nobody; the API answers 401. A role without the
right gets 403; a thing of another region 403 too (its existence is no
secret inside one operator). ``test_matrix_covers_every_route`` fails when
a route is added without a row here.
"""
from __future__ import annotations

import pytest

from server.extensions import db
from server.services import people
from tests.server.conftest import check_in, enrol_phone, repair_job, safety_check
from tests.server.dashboard.conftest import login, set_passwords

ROLES = ("anon", "technician", "supervisor", "admin", "auditor")
USERS = {"technician": "tech1", "supervisor": "super", "admin": "admin", "auditor": "auditor"}


def row(method, path, anon, tech, sup, admin, aud, data=None):
    return (method, path, data, dict(zip(ROLES, (anon, tech, sup, admin, aud))))


PAGES = [
    row("GET", "/dashboard/login", 200, 200, 200, 200, 200),
    row("GET", "/dashboard/", 302, 302, 200, 200, 302),
    row("GET", "/dashboard/live/alarms", 302, 403, 200, 200, 403),
    row("POST", "/dashboard/checkins/{sos}/ack", 302, 403, 302, 302, 403),
    row("GET", "/dashboard/devices", 302, 403, 200, 200, 403),
    row("POST", "/dashboard/enrol-codes", 302, 403, 200, 200, 403, {"team": "HN-T1", "ttl": "1h"}),
    row("GET", "/dashboard/quarantine", 302, 403, 200, 200, 403),
    row("POST", "/dashboard/quarantine/{qid}/review", 302, 403, 302, 302, 403, {"comment": "checked"}),
    row("GET", "/dashboard/jobs", 302, 200, 200, 200, 403),
    row("GET", "/dashboard/jobs/{job}", 302, 200, 200, 200, 403),
    row("GET", "/dashboard/jobs/{hp_job}", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/jobs/{job}/assign", 302, 403, 302, 302, 403, {"team": "PT-HN"}),
    row("GET", "/dashboard/workers/W001", 302, 200, 200, 200, 403),
    row("GET", "/dashboard/workers/W001?health=1", 302, 403, 200, 200, 403),
    row("GET", "/dashboard/workers/W003", 302, 403, 403, 200, 403),
    row("GET", "/dashboard/tokens", 302, 200, 200, 200, 200),
    row("POST", "/dashboard/tokens", 302, 200, 200, 200, 200, {"name": "matrix", "days": "1"}),
    row("POST", "/dashboard/tokens/{admin_token}/revoke", 302, 404, 404, 302, 404),
    row("GET", "/dashboard/charts", 302, 403, 200, 200, 403),
    row("GET", "/dashboard/audit", 302, 403, 403, 200, 200),
    # exports and reports (supervisors: own regions; auditors read-only)
    row("GET", "/dashboard/exports", 302, 403, 200, 200, 200),
    row("GET", "/dashboard/exports/safety?from=2026-11-26&to=2026-11-26&format=csv", 302, 403, 200, 200, 200),
    row("POST", "/dashboard/reports", 302, 403, 200, 200, 200, {"period": "2026-11", "region": "HN"}),
    row("GET", "/dashboard/static/dashboard.css", 200, 200, 200, 200, 200),
    # alerts (supervisors of the alert's region, admins)
    row("GET", "/dashboard/alerts", 302, 403, 200, 200, 403),
    row("POST", "/dashboard/alerts/{hn_alert}/ack", 302, 403, 302, 302, 403),
    row("POST", "/dashboard/alerts/{hp_alert}/ack", 302, 403, 403, 302, 403),
    # admin pages: admins only
    row("GET", "/dashboard/admin/", 302, 403, 403, 302, 403),
    row("GET", "/dashboard/admin/users", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/users", 302, 403, 403, 200, 403, {"username": "matrix1", "role": "auditor"}),
    row("POST", "/dashboard/admin/users/{tech2_id}", 302, 403, 403, 302, 403, {"role": "technician", "team": "HN-T1"}),
    row("POST", "/dashboard/admin/users/{tech2_id}/active", 302, 403, 403, 302, 403, {"active": "0"}),
    row("POST", "/dashboard/admin/users/{tech2_id}/password", 302, 403, 403, 200, 403),
    row("GET", "/dashboard/admin/teams", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/teams", 302, 403, 403, 302, 403, {"code": "HN-T9", "name": "Crew 9", "organisation": "OP", "region": "HN"}),
    row("POST", "/dashboard/admin/teams/{team_id}", 302, 403, 403, 302, 403, {"name": "Ha Noi crew 1", "region": "HN"}),
    row("POST", "/dashboard/admin/organisations", 302, 403, 403, 302, 403, {"code": "P2", "name": "Partner two", "partner": "1"}),
    row("GET", "/dashboard/admin/regions", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/regions", 302, 403, 403, 302, 403, {"code": "QN", "name": "Quang Ninh", "min_fit": "1"}),
    row("POST", "/dashboard/admin/regions/{region_id}", 302, 403, 403, 302, 403, {"name": "Ha Noi", "province": "Ha Noi", "min_fit": "2"}),
    row("GET", "/dashboard/admin/sites", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/sites/import", 302, 403, 403, 200, 403, {"csv": "code,name,region,lat,lon,criticality\nHN009,Nine,HN,21,105,normal\n"}),
    row("GET", "/dashboard/admin/shifts", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/shifts", 302, 403, 403, 302, 403, {"team": "HN-T1", "starts_at": "2026-11-26T22:00", "ends_at": "2026-11-27T06:00"}),
    row("POST", "/dashboard/admin/shifts/{shift}/delete", 302, 403, 403, 302, 403),
    row("GET", "/dashboard/admin/targets", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/targets", 302, 403, 403, 302, 403, {"criticality": "critical", "acknowledge": "15", "arrive": "60", "restore": "240"}),
    row("GET", "/dashboard/admin/webhooks", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/admin/webhooks", 302, 403, 403, 200, 403, {"url": "http://127.0.0.1:9/hook"}),
    row("POST", "/dashboard/admin/webhooks/{webhook}/active", 302, 403, 403, 302, 403, {"active": "0"}),
    row("GET", "/dashboard/admin/webhooks/deliveries", 302, 403, 403, 200, 403),
    row("POST", "/dashboard/devices/{device}/revoke", 302, 403, 302, 302, 403),
    row("POST", "/dashboard/login", 401, 401, 401, 401, 401, {"username": "nobody", "password": "wrong password"}),
    row("POST", "/dashboard/logout", 302, 302, 302, 302, 302),
]

API = [
    row("GET", "/api/v1/me", 401, 200, 200, 200, 200),
    row("GET", "/api/v1/overview", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/overview?region=HP", 401, 403, 403, 200, 403),
    row("POST", "/api/v1/check-ins/{sos}/acknowledge", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/devices", 401, 403, 200, 200, 403),
    row("POST", "/api/v1/enrol-codes", 401, 403, 201, 201, 403, {"team": "HN-T1"}),
    row("POST", "/api/v1/enrol-codes", 401, 403, 403, 201, 403, {"team": "HP-T1"}),
    row("GET", "/api/v1/quarantine", 401, 403, 200, 200, 403),
    row("POST", "/api/v1/quarantine/{qid2}/review", 401, 403, 200, 200, 403, {"comment": "checked"}),
    row("GET", "/api/v1/jobs", 401, 200, 200, 200, 403),
    row("GET", "/api/v1/jobs/{job}", 401, 200, 200, 200, 403),
    row("GET", "/api/v1/jobs/{hp_job}", 401, 403, 403, 200, 403),
    row("POST", "/api/v1/jobs/{job}/assign", 401, 403, 200, 200, 403, {"team": "PT-HN"}),
    row("GET", "/api/v1/workers/W001", 401, 200, 200, 200, 403),
    row("GET", "/api/v1/workers/W001?health=true", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/workers/W003", 401, 403, 403, 200, 403),
    row("GET", "/api/v1/charts", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/audit", 401, 403, 403, 200, 200),
    row("POST", "/api/v1/devices/{device}/revoke", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/alerts", 401, 403, 200, 200, 403),
    row("GET", "/api/v1/alerts?region=HP", 401, 403, 403, 200, 403),
    row("POST", "/api/v1/alerts/{hn_alert2}/acknowledge", 401, 403, 200, 200, 403),
    row("POST", "/api/v1/alerts/{hp_alert}/acknowledge", 401, 403, 403, 200, 403),
    # device routes: a person's token is not a device token
    row("POST", "/api/v1/sync/push", 401, 401, 401, 401, 401, {"items": []}),
    row("GET", "/api/v1/sync/pull?cursor=0", 401, 401, 401, 401, 401),
    row("GET", "/api/v1/sync/status", 401, 401, 401, 401, 401),
    row("GET", "/api/v1/sites", 401, 401, 401, 401, 401),
    row("GET", "/api/v1/sync/limits", 200, 200, 200, 200, 200),
    row("GET", "/api/v1/keys", 200, 200, 200, 200, 200),
    row("POST", "/api/v1/devices/enrol", 422, 422, 422, 422, 422, {"code": "x"}),
]


def _world(client, org):
    set_passwords(org)
    phone = enrol_phone(client)
    hp_phone = enrol_phone(client, team="HP-T1", worker="W003", label="hp")
    sos = phone.seal("check_in", check_in(status="sos"))
    job = phone.seal("repair_job", repair_job())
    hp_job = hp_phone.seal("repair_job", repair_job(site_code="HP001", team_id="HP-T1"))
    bad = [phone.seal("safety_check", safety_check(temperature_c=t)) for t in (51, 52)]
    phone.push([sos, job, *bad, phone.seal("safety_check", safety_check())])
    hp_phone.push([hp_job])
    from server.models import QuarantineItem

    qid, qid2 = sorted(q.id for q in db.session.query(QuarantineItem))
    _, admin_token = people.create_token(org.users["admin"], "admin's")
    from datetime import datetime, timedelta, timezone

    from server.models import Alert, DutyShift
    from server.services import webhooks

    alerts = [Alert(kind="below_minimum", ref=ref, region_id=org.regions[code].id, subject=code, message="matrix")
              for ref, code in (("HN#1", "HN"), ("HN#2", "HN"), ("HP#1", "HP"))]
    start = datetime(2026, 11, 26, 15, tzinfo=timezone.utc)
    shift = DutyShift(team_id=org.teams["HN-T1"].id, starts_at=start, ends_at=start + timedelta(hours=8))
    db.session.add_all([*alerts, shift])
    hook, _ = webhooks.create(people.Scope.of(org.users["admin"]), "http://127.0.0.1:9/matrix")
    db.session.commit()
    return {"sos": sos["h"]["rid"], "job": job["h"]["rid"], "hp_job": hp_job["h"]["rid"], "qid": qid, "qid2": qid2,
            "admin_token": admin_token.id, "device": phone.device_id, "hn_alert": alerts[0].id, "hn_alert2": alerts[1].id,
            "hp_alert": alerts[2].id, "tech2_id": org.users["tech2"].id, "team_id": org.teams["HN-T1"].id,
            "region_id": org.regions["HN"].id, "shift": shift.id, "webhook": hook.id}


def _call(client, method, path, data, headers=None, api=False):
    if method == "GET":
        return client.get(path, headers=headers)
    if api:
        return client.post(path, json=data or {}, headers=headers)
    return client.post(path, data=data or {}, headers=headers)


@pytest.mark.parametrize("role", ROLES)
def test_access_matrix(client, org, role):
    ids = _world(client, org)
    headers = None
    if role != "anon":
        user = next(u for u in org.users.values() if u.username == USERS[role])
        raw, _ = people.create_token(user, "matrix")
        db.session.commit()
        headers = {"Authorization": f"Bearer {raw}"}
        assert login(client, USERS[role]).status_code == 302
    wrong = []
    for method, path, data, expected in PAGES:
        r = _call(client, method, path.format(**ids), data)
        if r.status_code != expected[role]:
            wrong.append((method, path, expected[role], r.status_code))
    client.post("/dashboard/logout")  # the API must not take the session cookie either
    for method, path, data, expected in API:
        r = _call(client, method, path.format(**ids), data, headers, api=True)
        if r.status_code != expected[role]:
            wrong.append((method, path, expected[role], r.status_code, r.get_json()))
        if r.status_code >= 400:
            assert r.get_json()["reason"], path
    assert wrong == []


def test_api_ignores_session_cookies(client, org):
    set_passwords(org)
    login(client, "super")
    assert client.get("/dashboard/").status_code == 200
    assert client.get("/api/v1/overview").status_code == 401


def test_matrix_covers_every_route(app):
    listed = {(m, p.split("?")[0]) for m, p, _, _ in PAGES + API}
    import re

    missing = []
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/dashboard") or rule.endpoint.startswith(("dashboard_api.", "sync.", "devices."))):
            continue
        pattern = re.sub(r"<[^>]+>", "[^/]+", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            if not any(m == method and re.fullmatch(pattern, p) for m, p in listed):
                missing.append((method, rule.rule))
    assert missing == []
