"""The dashboard in a real browser (Playwright + Debian's Chromium) against a real server on a free port.

A supervisor signs in, sees an SOS that a simulated phone just synced over
HTTP appear on the overview (the alarm panel polls), acknowledges it,
revokes the phone, and creates an enrolment code (text and QR code).
Screenshots go to docs/screenshots/dashboard-*.png (shown in the README).
"""
from __future__ import annotations

import os
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]

if not os.path.exists(CHROMIUM):
    # CI installs chromium (.ci/run): there a missing browser is a failure, never a quiet skip.
    if os.environ.get("CI"):
        pytest.fail(f"CI must install Debian's chromium at {CHROMIUM}", pytrace=False)
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


class _Answer:
    def __init__(self, response):
        self.status_code = response.status_code
        self._response = response

    def get_json(self):
        return self._response.json()


class HttpClient:
    """The test-client calls tests.server.conftest.Phone makes, over real HTTP."""

    def __init__(self, base):
        self.base = base

    def post(self, path, json=None, headers=None):
        return _Answer(requests.post(self.base + path, json=json, headers=headers, timeout=30))

    def get(self, path, query_string=None, headers=None):
        return _Answer(requests.get(self.base + path, params=query_string, headers=headers, timeout=30))


@pytest.fixture
def live(tmp_path):
    """A migrated SQLite database, an organisation, and the app served on a free port."""
    from flask_migrate import upgrade
    from werkzeug.serving import make_server

    from server import create_app
    from server.extensions import db
    from server.models import DutyShift
    from tests.server.conftest import make_org
    from tests.server.dashboard.conftest import set_passwords

    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'fw.db'}", "KEYS_DIR": str(tmp_path / "keys"), "TESTING": True,
                      "DASHBOARD_POLL_SECONDS": 1, "SECRET_KEY": "browser-test"})
    with app.app_context():
        upgrade()
        org = make_org()
        set_passwords(org)
        now = datetime.now(timezone.utc)
        db.session.add(DutyShift(team_id=org.teams["HN-T1"].id, starts_at=now - timedelta(hours=2), ends_at=now + timedelta(hours=6)))
        db.session.commit()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield app, f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            thread.join(5)
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        pg = context.new_page()
        pg.on("dialog", lambda dialog: dialog.accept())  # the revoke confirmation
        yield pg
        context.close()
        browser.close()


def test_supervisor_sees_sos_acknowledges_revokes_and_enrols(live, page):
    from playwright.sync_api import expect

    from server.services import enrolment
    from server.extensions import db
    from tests.server.conftest import check_in, safety_check, site_status, enrol_phone

    app, base = live
    SHOTS.mkdir(parents=True, exist_ok=True)
    phone = enrol_phone(HttpClient(base), label="Tower crew phone")
    now = datetime.now(timezone.utc).isoformat()
    assert phone.push([phone.seal("safety_check", safety_check(taken_at=now)),
                       phone.seal("site_status", site_status(observed_at=now, power_source="generator", mobile_bts_deployed=True))],
                      outbox_depth=0, app_version="1.0.0").status_code == 200

    page.goto(base + "/dashboard/")
    expect(page).to_have_url(base + "/dashboard/login?next=/dashboard/")
    page.fill("input[name=username]", "super")
    page.fill("input[name=password]", "correct horse battery")
    page.screenshot(path=str(SHOTS / "dashboard-login.png"))
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_contain_text("Overview")
    expect(page.locator("#alarms")).to_contain_text("No open SOS")

    # the phone syncs an SOS; the open page shows it without a reload
    sos = phone.seal("check_in", check_in(status="sos", at=datetime.now(timezone.utc).isoformat(), notes="fell, cannot move"))
    assert phone.push([sos]).status_code == 200
    alarm = page.locator(f"#alarms li[data-record='{sos['h']['rid']}']")
    expect(alarm).to_be_visible(timeout=10_000)
    expect(alarm).to_contain_text("fell, cannot move")
    page.screenshot(path=str(SHOTS / "dashboard-overview-sos.png"), full_page=True)

    alarm.locator("button.ack").click()
    expect(page.locator(".flash.ok")).to_contain_text("Acknowledged")
    expect(page.locator("#alarms")).to_contain_text("No open SOS")
    page.screenshot(path=str(SHOTS / "dashboard-overview.png"), full_page=True)

    page.click("text=Devices")
    row = page.locator(f"tr[data-device='{phone.device_id}']")
    expect(row).to_contain_text("active")
    row.locator("button.danger").click()
    expect(page.locator(".flash.ok")).to_contain_text("is revoked")
    expect(row).to_contain_text("revoked")
    assert phone.pull().status_code == 401

    page.select_option("select[name=team]", "HN-T1")
    page.fill("input[name=worker]", "W002")
    page.click("text=Create code")
    code = page.locator("#enrol-code .code")
    expect(code).to_be_visible()
    expect(page.locator("#enrol-code .qr svg")).to_be_visible()
    page.screenshot(path=str(SHOTS / "dashboard-devices-enrol-code.png"), full_page=True)
    code_text = code.inner_text()
    page.click("text=Charts")
    expect(page.locator("svg.chart")).to_have_count(4)
    page.screenshot(path=str(SHOTS / "dashboard-charts.png"), full_page=True)
    with app.app_context():
        from sqlalchemy import select

        from server.models import EnrolCode

        row = db.session.scalar(select(EnrolCode).where(EnrolCode.code_hash == enrolment._hash(enrolment.normalise_code(code_text))))
        assert row is not None and row.used_at is None
