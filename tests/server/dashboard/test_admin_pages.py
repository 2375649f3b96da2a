"""Admin pages: people, teams, regions, sites (CSV import), duty shifts, response targets, webhooks."""
from __future__ import annotations

import io
from datetime import datetime, timezone

from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry, DutyShift, Region, Site, Team, User, WebhookDelivery
from server.services import jobs
from tests.server.dashboard.conftest import PASSWORD, login


def _audits(action):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def _user(username):
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.username == username))


def test_people_create_role_deactivate_reset(client, people_org):
    login(client, "admin")
    page = client.post("/dashboard/admin/users", data={"username": "lan", "role": "supervisor", "name": "Do Thi Lan", "regions": ["HN", "HP"]}).data.decode()
    temporary = page.split('id="new-password"')[1].split('<p class="code">')[1].split("<")[0]
    assert len(temporary) >= 12 and temporary not in str([a.details for a in _audits("user.create")])
    lan = _user("lan")
    assert lan.role == "supervisor" and sorted(r.code for r in lan.regions) == ["HN", "HP"]
    r = client.post("/dashboard/admin/users", data={"username": "nobody", "role": "technician"}, follow_redirects=True)
    assert b"needs a team" in r.data and _user("nobody") is None
    # change role and team
    tech2 = _user("tech2")
    client.post(f"/dashboard/admin/users/{tech2.id}", data={"role": "technician", "team": "HP-T1", "name": "Tran Thi Binh"})
    assert _user("tech2").team.code == "HP-T1" and len(_audits("user.update")) == 1
    r = client.post(f"/dashboard/admin/users/{tech2.id}", data={"role": "supervisor"}, follow_redirects=True)
    assert b"needs at least one region" in r.data
    # the last admin stays an admin, and nobody deactivates themselves
    admin = _user("admin")
    assert b"last active admin" in client.post(f"/dashboard/admin/users/{admin.id}", data={"role": "auditor"}, follow_redirects=True).data
    assert b"your own account" in client.post(f"/dashboard/admin/users/{admin.id}/active", data={"active": "0"}, follow_redirects=True).data
    # deactivate: cannot sign in any more; reactivate
    tech1 = _user("tech1")
    client.post(f"/dashboard/admin/users/{tech1.id}/active", data={"active": "0"})
    other = client.application.test_client()
    assert login(other, "tech1").status_code == 401
    client.post(f"/dashboard/admin/users/{tech1.id}/active", data={"active": "1"})
    assert login(other, "tech1").status_code == 302
    # reset: the old password stops working, the temporary one works (and is shown once)
    page = client.post(f"/dashboard/admin/users/{tech1.id}/password").data.decode()
    new = page.split('id="new-password"')[1].split('<p class="code">')[1].split("<")[0]
    third = client.application.test_client()
    assert login(third, "tech1").status_code == 401 and login(third, "tech1", new).status_code == 302
    assert new not in client.get("/dashboard/admin/users").data.decode()
    assert len(_audits("user.password")) == 1 and len(_audits("user.deactivate")) == 1


def test_teams_organisations_regions(client, people_org):
    login(client, "admin")
    client.post("/dashboard/admin/organisations", data={"code": "VT", "name": "Viet Tel", "partner": "1"})
    client.post("/dashboard/admin/regions", data={"code": "QN", "name": "Quang Ninh", "province": "Quang Ninh", "min_fit": "3"})
    client.post("/dashboard/admin/teams", data={"code": "VT-QN", "name": "VT crew", "organisation": "VT", "region": "QN"})
    team = db.session.scalar(select(Team).where(Team.code == "VT-QN"))
    assert team.organisation.is_partner and team.region.code == "QN"
    assert b"is taken" in client.post("/dashboard/admin/teams", data={"code": "VT-QN", "name": "x", "organisation": "VT", "region": "QN"},
                                      follow_redirects=True).data
    client.post(f"/dashboard/admin/teams/{team.id}", data={"name": "VT crew Ha Noi", "region": "HN"})
    db.session.expire_all()
    assert db.session.get(Team, team.id).region.code == "HN"
    page = client.get("/dashboard/admin/teams").data.decode()  # one shared list of region codes, each row's region filled in
    assert page.count('<datalist id="region-codes">') == 1 and '<select name="region">' not in page.split('id="teams"')[1]
    assert 'list="region-codes" size="6" autocomplete="off" required value="HN"' in page
    assert b"there is no region" in client.post(f"/dashboard/admin/teams/{team.id}", data={"name": "x", "region": "ZZ"}, follow_redirects=True).data
    hn = people_org.regions["HN"]
    client.post(f"/dashboard/admin/regions/{hn.id}", data={"name": "Ha Noi", "province": "Ha Noi", "min_fit": "4"})
    db.session.expire_all()
    assert db.session.get(Region, hn.id).min_fit_on_duty == 4
    r = client.post(f"/dashboard/admin/regions/{hn.id}", data={"name": "Ha Noi", "min_fit": "-1"}, follow_redirects=True)
    assert b"from 0 to 10000" in r.data
    page = client.get("/dashboard/admin/regions").data.decode()
    assert "QN" in page and 'value="4"' in page


def test_site_csv_import_keeps_good_rows_and_names_bad_lines(client, people_org):
    login(client, "admin")
    csv_text = "\n".join([
        "code,name,region,lat,lon,criticality",
        "HN100,New tower,HN,21.05,105.85,high",        # 2 ok
        "HN101,Nowhere,XX,21.0,105.0,normal",           # 3 unknown region
        "HN102,Bad lat,HN,95,105.0,normal",             # 4 lat out of range
        "HN100,Twice,HN,21.0,105.0,normal",             # 5 duplicate of line 2
        "HN103,,HN,21.0,105.0,normal",                  # 6 no name
        "HN104,Short row,HN,21.0",                      # 7 wrong field count
        "HN105,Odd crit,HN,21.0,105.0,urgent",          # 8 criticality
        "HN001,Renamed site,HN,21.0,105.8,critical",    # 9 ok: updates
        "",
        "HP100,Port tower,HP,,,normal",                 # 11 ok: no position
    ]) + "\n"
    r = client.post("/dashboard/admin/sites/import", data={"file": (io.BytesIO(csv_text.encode()), "sites.csv")},
                    content_type="multipart/form-data")
    page = r.data.decode()
    assert r.status_code == 200 and "2 created, 1 updated, 6 rows refused" in page
    report = page.split('id="import-report"')[1].split("</section>")[0]
    for line, words in [(3, "no region 'XX'"), (4, "outside -90..90"), (5, "already on line 2"), (6, "name is empty"),
                        (7, "4 fields where the header has 6"), (8, "not one of critical, high, normal")]:
        assert f"<td>{line}</td><td>" in report and words.replace("'", "&#39;") in report
    db.session.expire_all()
    assert db.session.scalar(select(Site).where(Site.code == "HN001")).name == "Renamed site"
    assert db.session.scalar(select(Site).where(Site.code == "HP100")).lat is None
    assert db.session.scalar(select(Site).where(Site.code == "HN101")) is None
    bad = client.post("/dashboard/admin/sites/import", data={"file": (io.BytesIO(b"code,name,lat\nX,Y,1\n"), "s.csv")},
                      content_type="multipart/form-data").data.decode()
    assert "<td>1</td>" in bad and "lacks region, lon, criticality" in bad
    assert "HN100" in client.get("/dashboard/admin/sites?q=HN1").data.decode()
    assert len(_audits("site.import")) == 1  # the refused file changed nothing


def test_shifts_across_midnight_and_response_targets(client, people_org, app):
    login(client, "admin")
    app.config["DASHBOARD_TIMEZONE"] = "Asia/Ho_Chi_Minh"
    client.post("/dashboard/admin/shifts", data={"team": "HN-T1", "starts_at": "2026-11-26T22:00", "ends_at": "2026-11-27T06:00", "note": "night"})
    shift = db.session.scalar(select(DutyShift).where(DutyShift.note == "night"))
    assert shift.starts_at == datetime(2026, 11, 26, 15, tzinfo=timezone.utc) and shift.ends_at == datetime(2026, 11, 26, 23, tzinfo=timezone.utc)
    r = client.post("/dashboard/admin/shifts", data={"team": "HN-T1", "starts_at": "2026-11-27T06:00", "ends_at": "2026-11-26T22:00"},
                    follow_redirects=True)
    assert b"must end after it starts" in r.data
    client.post(f"/dashboard/admin/shifts/{shift.id}/delete")
    db.session.expire_all()
    assert db.session.get(DutyShift, shift.id) is None and len(_audits("shift.delete")) == 1
    client.post("/dashboard/admin/targets", data={"criticality": "critical", "acknowledge": "10", "arrive": "45", "restore": "180"})
    assert jobs.targets()["critical"] == (10, 45, 180)
    r = client.post("/dashboard/admin/targets", data={"criticality": "high", "acknowledge": "90", "arrive": "30", "restore": "180"},
                    follow_redirects=True)
    assert b"acknowledge &lt;= arrive &lt;= restore" in r.data
    page = client.get("/dashboard/admin/targets").data.decode()
    assert 'value="45"' in page and "built-in default" in page


def test_webhook_secret_is_shown_once_and_the_log_is_visible(client, people_org):
    from server.services import alerts

    login(client, "admin")
    page = client.post("/dashboard/admin/webhooks", data={"url": "http://127.0.0.1:9/hook", "description": "NOC"}).data.decode()
    secret = page.split('id="new-secret"')[1].split('<p class="code">')[1].split("<")[0]
    assert secret.startswith("whsec_")
    listing = client.get("/dashboard/admin/webhooks").data.decode()
    assert secret not in listing and secret[:10] in listing
    assert b"must be http" in client.post("/dashboard/admin/webhooks", data={"url": "file:///etc/passwd"}, follow_redirects=True).data
    alerts.raise_due_alerts()  # queued in the request's stead; nothing is sent by a page
    db.session.commit()
    assert {d.state for d in db.session.scalars(select(WebhookDelivery))} == {"pending"}
    log = client.get("/dashboard/admin/webhooks/deliveries").data.decode()
    assert "127.0.0.1:9" in log and "pending" in log and "below_minimum" in log
    hook_id = db.session.scalar(select(WebhookDelivery.webhook_id))
    client.post(f"/dashboard/admin/webhooks/{hook_id}/active", data={"active": "0"})
    db.session.expire_all()
    assert {d.state for d in db.session.scalars(select(WebhookDelivery))} == {"cancelled"}


def test_admin_forms_need_the_csrf_token(database_url, keys_dir, org):
    from server import create_app
    from tests.server.dashboard.conftest import set_passwords

    set_passwords(org)
    app = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": True, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    page = client.get("/dashboard/login").data.decode()
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/dashboard/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token}).status_code == 302
    assert client.post("/dashboard/admin/regions", data={"code": "QN", "name": "Quang Ninh"}).status_code == 400
    page = client.get("/dashboard/admin/regions").data.decode()  # signing in made a new session, so a new token
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    assert client.post("/dashboard/admin/regions", data={"code": "QN", "name": "Quang Ninh", "csrf_token": token}).status_code == 302


def test_people_page_lists_a_hundred_at_a_time_and_finds_anyone(client, people_org):
    # An operator has thousands of technicians: the page lists 100 at a time with one shared list of team codes
    # (a select of every team in every row made a 777 MB page at 10,000 people and 2,000 teams).
    team = people_org.teams["HN-T1"]
    db.session.add_all([User(code=f"T{i:04d}", username=f"tech-{i:04d}", display_name=f"Technician {i}", role="technician", team_id=team.id)
                        for i in range(150)])
    db.session.commit()
    login(client, "admin")
    page = client.get("/dashboard/admin/users").data.decode()
    assert page.count('data-user="') == 100 and "156 accounts; page 1 of 2" in page
    assert page.count('<datalist id="team-codes">') == 1 and page.count("<select name=\"team\"") == 0
    assert 'value="HN-T1"' in page  # a technician's row shows their team
    second = client.get("/dashboard/admin/users?page=2").data.decode()
    assert second.count('data-user="') == 56 and "← previous" in second and "next →" not in second
    found = client.get("/dashboard/admin/users?q=binh").data.decode()  # tech2 is Tran Thi Binh
    assert found.count('data-user="') == 1 and 'data-user="tech2"' in found and "1 account" in found
    assert 'data-user="' not in client.get("/dashboard/admin/users?q=%25").data.decode()  # % is a character, not a wildcard
    assert client.get("/dashboard/admin/users?page=x").status_code == 200
