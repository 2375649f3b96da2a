"""Alerts on the overview, the alerts page and its JSON: shown, acknowledged by a person (audit-logged)."""
from __future__ import annotations

from sqlalchemy import select

from server.extensions import db
from server.models import AuditEntry
from server.services import alerts
from tests.server.dashboard.conftest import login, now_utc


def _audits(action):
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)).all()


def test_alerts_shown_on_overview_and_page_then_acknowledged(client, people_org, tokens):
    alerts.raise_due_alerts(now_utc())  # nobody on duty: HN and HP below their minimum
    db.session.commit()
    login(client, "super")
    overview = client.get("/dashboard/").data.decode()
    assert 'id="overview-alerts"' in overview and "1 alert wait" in overview and 'id="nav-alerts"' in overview
    page = client.get("/dashboard/alerts").data.decode()
    assert "Region HN" in page and "Region HP" not in page  # the supervisor's regions only
    listed = client.get("/api/v1/alerts", headers=tokens["supervisor"]).get_json()["alerts"]
    assert [a["region"] for a in listed] == ["HN"] and listed[0]["kind"] == "below_minimum"
    r = client.post(f"/dashboard/alerts/{listed[0]['id']}/ack", data={"back": "/dashboard/alerts?state=all"})
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/alerts?state=all")
    assert len(_audits("alert.acknowledge")) == 1
    assert client.get("/api/v1/alerts", headers=tokens["supervisor"]).get_json()["alerts"] == []
    assert "Pham Minh" in client.get("/dashboard/alerts?state=all").data.decode()
    assert 'id="overview-alerts"' not in client.get("/dashboard/").data.decode()
    again = client.post(f"/api/v1/alerts/{listed[0]['id']}/acknowledge", headers=tokens["admin"]).get_json()
    assert again["already"] is True and again["acknowledged_by"] == "Pham Minh"
    hp = client.get("/api/v1/alerts?region=HP", headers=tokens["admin"]).get_json()["alerts"][0]
    done = client.post(f"/api/v1/alerts/{hp['id']}/acknowledge", headers=tokens["admin"]).get_json()
    assert done["already"] is False and done["acknowledged_by"] == "Admin"
    assert client.get("/api/v1/alerts?state=bogus", headers=tokens["admin"]).status_code == 422


def test_alert_routes_are_in_the_openapi(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert "/api/v1/alerts" in paths and "/api/v1/alerts/{alert_id}/acknowledge" in paths
