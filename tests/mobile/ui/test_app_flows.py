"""Enrol through the screen, take a job through its states, sync to a real server, SOS first, lose the network."""
from __future__ import annotations

from tests.mobile.ui.conftest import PIN, screen_of
from tests.mobile.ui.kivy_helpers import advance, choose, screenshot, tap, type_into, wait_until
from tests.mobile.core.realserver import RealServer


def test_enrol_through_the_screen_then_sync_reaches_zero(make_app, server):
    app = make_app(enrol=False)
    enrol = screen_of(app, "enrol")
    type_into(enrol.ids.server, server.url)
    type_into(enrol.ids.code, server.new_codes(1, "W002")[0])
    type_into(enrol.ids.pin, PIN)
    type_into(enrol.ids.pin_again, "1111")
    tap(enrol.ids.submit)
    assert enrol.ids.f_pin_again.error == "the two PINs differ"
    type_into(enrol.ids.pin_again, PIN)
    screenshot("enrol")
    tap(enrol.ids.submit)
    wait_until(lambda: app.sm.current == "home", 15, "home after enrolment")
    assert app.device.is_enrolled and app.device.enrolment()["worker_id"] == "W002"
    # Entering the app starts a sync: let it end first, or it may send the records saved next.
    wait_until(lambda: not app.sync.syncing, 15, "the first sync")

    app.device.record_check_in("ok")
    app.device.record_site_status("HN003", "up")
    app.sync.refresh()
    app.go("sync")
    sync = screen_of(app, "sync")
    wait_until(lambda: "2 waiting to send" in sync.ids.pending.text, 5, "the two records shown as waiting")
    tap(sync.ids.sync_now)
    wait_until(lambda: app.sync.pending == 0 and not app.sync.syncing, 15, "pending to reach 0")
    wait_until(lambda: "Nothing waiting" in sync.ids.pending.text, 5, "the sync screen to redraw")
    assert "item(s) confirmed" in sync.ids.receipts.text
    assert app.shell.ids.banner.text == "Online: all sent"
    screenshot("sync")
    rows = server.query("SELECT COUNT(*) FROM revision WHERE device_id = :d", {"d": app.device.enrolment()["device_id"]})
    assert rows[0][0] == 2


def test_a_job_goes_through_its_states_and_needs_a_fit_check_to_accept(make_app, server):
    # REQUIRE_FIT_FOR_ACCEPT is on by default on the server (sent to the phone at enrolment).
    srv = server
    if True:
        app = make_app(srv)
        tap(app.sm.get_screen("home").ids.go_jobs)
        jobs = screen_of(app, "jobs")
        tap(jobs.ids.report)
        report = screen_of(app, "report_fault")
        wait_until(lambda: report.ids.site.values, 10, "the site list")
        report.ids.site.choose("HN001")
        choose(report.ids.fault_type, "power")
        choose(report.ids.priority, "high")
        type_into(report.ids.title, "Mains down")
        screenshot("report-fault")
        tap(report.ids.submit)
        detail = screen_of(app, "job_detail")
        job_id = detail.job_id
        assert [b.text for b in detail.ids.steps.children[::-1]] == ["Assign", "Accept job", "Cancel job"]

        step = lambda label: next(b for b in detail.ids.steps.children if b.text == label)  # noqa: E731
        tap(step("Accept job"))                      # no health check today: the core refuses
        assert "health check" in detail.message and detail.tone == "danger"
        assert app.device.get_job(job_id)["status"] == "reported"

        app.device.record_safety_check(36.5)
        app.go("jobs")
        jobs = screen_of(app, "jobs")
        assert "HN001" in jobs.ids.rows.children[0].text and "Reported" in jobs.ids.rows.children[0].text
        screenshot("jobs")
        tap(jobs.ids.rows.children[0])
        detail = screen_of(app, "job_detail")
        for label, state in (("Accept job", "acknowledged"), ("On my way", "en_route"), ("Arrived on site", "on_site")):
            tap(step(label))
            assert app.device.get_job(job_id)["status"] == state, detail.message
        type_into(detail.ids.part_name, "rectifier")
        type_into(detail.ids.part_qty, "2")
        tap(detail.ids.add_part_button)
        type_into(detail.ids.note, "replaced rectifier")
        tap(detail.ids.add_note_button)
        assert [b.text for b in detail.ids.steps.children] == ["Service restored"]
        assert "2 × rectifier" in detail.ids.parts_list.text and "replaced rectifier" in detail.ids.timeline.text
        screenshot("job-detail")
        tap(step("Service restored"))
        tap(step("Close job"))
        job = app.device.get_job(job_id)
        assert job["status"] == "closed" and job["finished"]
        assert "finished" in detail.ids.steps.children[0].text
        assert [s for s in ("acknowledged", "en_route", "on_site", "restored", "closed") if s not in job["steps"]] == []


def test_sos_goes_first_and_the_banner_follows_the_network(tmp_path_factory, make_app):
    srv = RealServer(tmp_path_factory.mktemp("flaky-server"))
    srv.prepare()
    srv.start()
    try:
        app = make_app(srv)
        wait_until(lambda: app.sync.network == "online", 10, "online")
        assert app.shell.ids.banner.text.startswith("Online")
        srv.stop()                                   # the network goes away
        app.sync.check_network()
        wait_until(lambda: app.sync.network == "offline", 10, "the offline banner")
        advance(2)
        assert app.shell.ids.banner.text.startswith("Offline")

        app.device.record_safety_check(36.4)
        app.device.record_site_status("HN001", "down")
        app.go("check_in")
        screen = screen_of(app, "check_in")
        tap(screen.ids.sos)
        assert screen.confirm is not None
        screenshot("sos-confirm")
        modal = screen.confirm
        tap(modal.ids.yes)
        assert "SOS saved" in screen.message
        wait_until(lambda: modal.parent is None, 5, "the confirmation to close")
        wait_until(lambda: not app.sync.syncing, 15, "the SOS sync attempt to fail")
        first = app.device.outbox_items()[0]
        assert (first["kind"], first["priority"]) == ("check_in", 0)
        assert app.device.today_status()["last_check_in_status"] == "sos"
        assert app.notification.sent and "SOS" in app.notification.sent[-1]["title"]
        app.go("sync")
        sync = screen_of(app, "sync")
        assert sync.ids.queue.text.startswith("1. SOS (urgent)")
        assert "3 waiting to send" in sync.ids.pending.text
        assert app.sync.network == "offline"
        screenshot("sync-offline")

        srv.start()                                  # the network comes back: the probe starts a sync by itself
        app.sync.check_network()
        wait_until(lambda: app.sync.network == "online", 10, "the online banner")
        wait_until(lambda: app.sync.pending == 0 and not app.sync.syncing, 15, "the automatic sync")
        advance(2)
        assert app.shell.ids.banner.text == "Online: all sent"
        statuses = srv.query("SELECT kind FROM revision ORDER BY id")
        assert statuses[0][0] == "check_in"       # the SOS left first
    finally:
        srv.stop()


def test_check_in_reminder_shows_and_notifies_once(make_app, server):
    app = make_app(server)
    app.reminder.check()
    advance(2)
    assert app.reminder.message == "Check-in due: tap to check in"  # first check-in of the day is due
    assert app.shell.ids.reminder.height > 0
    assert len(app.notification.sent) == 1
    app.reminder.check()
    assert len(app.notification.sent) == 1                          # once per due time
    screenshot("home-reminder")
    tap(app.shell.ids.reminder)
    screen = screen_of(app, "check_in")
    tap(screen.ids.ok)
    wait_until(lambda: app.reminder.message == "", 5, "the reminder to clear")
