"""Jobs against their response targets, check-in statuses in the sending order, the lock screen's waiting
count, and the change-PIN screen."""
from __future__ import annotations

from datetime import datetime, timedelta

from tests.mobile.ui.conftest import FAST, PIN, enrol_offline_setup, screen_of
from tests.mobile.ui.kivy_helpers import advance, screenshot, tap, type_into, wait_until


def scroll_to_top(widget) -> None:
    """Scroll the ScrollView holding ``widget`` back to its top (for a screenshot)."""
    from kivy.uix.scrollview import ScrollView

    while not isinstance(widget, ScrollView):
        widget = widget.parent
    widget.scroll_y = 1
    advance(2)


class MovableClock:
    """The phone's wall clock, moved by the test (no sleeping for an hour to pass)."""

    def __init__(self, value: datetime):
        self.value = value

    def __call__(self) -> datetime:
        return self.value


def test_jobs_show_time_since_reported_against_the_target_now_due(make_app, server):
    now = datetime.now().astimezone()
    clock = MovableClock(now - timedelta(minutes=100))
    app = make_app(server, device_settings={**FAST, "now": clock})   # the first sync caches the sites (all "high")
    job_id = app.device.report_fault("HN001", "power", "high", "Mains down").record_id
    clock.value = now                                # 1 h 40 min later: past "accept within 30 min", not "arrive within 2 h"
    app.device.record_safety_check(36.5)
    app.go("jobs")
    jobs = screen_of(app, "jobs")
    row = next(r for r in jobs.ids.rows.children if r.job_id == job_id)
    assert row.timing == "1 h 40 min since reported · target 30 min to accept · OVER" and row.over
    assert "OVER" in row.text and "Mains down" in row.text
    tap(row)
    detail = screen_of(app, "job_detail")
    assert detail.ids.timing.text == "1 h 40 min since reported · target 30 min to accept · OVER"
    assert detail.timing_tone == "danger"
    tap(next(b for b in detail.ids.steps.children if b.text == "Accept job"))
    assert app.device.get_job(job_id)["status"] == "acknowledged", detail.message
    assert detail.ids.timing.text == "1 h 40 min since reported · target 2 h to arrive"   # the next step's target
    assert detail.timing_tone == "plain"
    assert app.device.get_job(job_id)["response"]["criticality"] == "high"


def test_sending_order_names_each_check_in_from_the_core(make_app, server):
    app = make_app(server)
    for status in ("ok", "need_help", "sos"):
        app.device.record_check_in(status)
    app.sync.refresh()
    app.go("sync")
    sync = screen_of(app, "sync")
    assert sync.ids.queue.text.splitlines() == ["1. Call for help (urgent)", "2. SOS (urgent)", "3. Check-in: I'm OK"]


def test_locked_phone_says_what_waits_and_sends_it_after_unlock(make_app, server, tmp_path):
    from mobile.core.services import Device

    data_dir = tmp_path / "locked-phone"
    enrol_offline_setup(data_dir, server, "W003")
    device = Device.open(data_dir, **FAST)
    device.unlock(PIN)
    device.record_check_in("sos")
    device.record_check_in("ok")
    device.record_site_status("HN001", "up")
    device_id = device.enrolment()["device_id"]
    device.close()                                   # the phone restarts: cold start on the PIN screen

    app = make_app(enrol=False, data_dir=data_dir)
    pin = screen_of(app, "pin")
    assert not app.device.is_unlocked
    assert pin.ids.waiting.text == "3 records waiting; they will be sent after you unlock."
    assert pin.ids.waiting.opacity == 1
    assert app.sync.sync_now("timer") is False       # the token is sealed under the PIN: nothing leaves while locked
    assert server.query("SELECT COUNT(*) FROM revision WHERE device_id = :d", {"d": device_id})[0][0] == 0
    screenshot("pin-waiting")

    type_into(pin.ids.pin, PIN)
    tap(pin.ids.submit)
    wait_until(lambda: app.sm.current == "home", 10, "home after unlocking")
    wait_until(lambda: app.sync.pending == 0 and not app.sync.syncing, 15, "the waiting records to be sent")
    assert server.query("SELECT COUNT(*) FROM revision WHERE device_id = :d", {"d": device_id})[0][0] == 3
    app.lock()
    pin = screen_of(app, "pin")
    assert pin.ids.waiting.text == "" and pin.ids.waiting.opacity == 0   # nothing waits: no line


def test_change_pin_screen(make_app, server):
    app = make_app(server)
    app.go("settings")
    settings = screen_of(app, "settings")
    tap(settings.ids.change_pin)
    pin = screen_of(app, "pin")
    assert pin.mode == "change" and pin.ids.waiting.text == ""
    ids = pin.ids
    # current PIN, then new PIN, then new again, top to bottom, above the button
    ys = [w.to_window(w.x, w.y)[1] for w in (ids.f_pin, ids.f_new, ids.f_again, ids.submit)]
    assert ys == sorted(ys, reverse=True), ys

    type_into(ids.pin, "1357")                       # wrong current PIN: said under the current PIN
    type_into(ids.new_pin, "9753")
    type_into(ids.new_again, "9753")
    tap(ids.submit)
    assert "wrong PIN" in ids.f_pin.error and ids.f_new.error == "" and app.sm.current == "pin"

    type_into(ids.pin, PIN)                          # too short: said under the new PIN
    type_into(ids.new_pin, "12")
    type_into(ids.new_again, "12")
    tap(ids.submit)
    assert "at least 4" in ids.f_new.error and ids.f_pin.error == ""
    below = lambda a, b: a.to_window(a.x, a.y)[1] + a.height <= b.to_window(b.x, b.y)[1] + 0.5  # noqa: E731
    assert below(ids.f_new.ids.error_label, ids.new_pin), "the message sits right below its input"

    type_into(ids.pin, PIN)                          # the two new PINs differ
    type_into(ids.new_pin, "9753")
    type_into(ids.new_again, "9754")
    tap(ids.submit)
    assert ids.f_again.error == "the two PINs differ" and ids.f_new.error == ""   # the old message is gone
    scroll_to_top(ids.grid)
    screenshot("change-pin")

    type_into(ids.new_again, "9753")
    tap(ids.submit)
    screen_of(app, "settings")
    assert app.shell.toast_text == "PIN changed"

    tap(settings.ids.lock)
    pin = screen_of(app, "pin")
    assert pin.mode == "unlock" and pin.ids.change_box.parent is None
    type_into(pin.ids.pin, PIN)                      # the old PIN no longer opens the phone
    tap(pin.ids.submit)
    assert "wrong PIN" in pin.ids.f_pin.error and not app.device.is_unlocked
    type_into(pin.ids.pin, "9753")
    tap(pin.ids.submit)
    wait_until(lambda: app.sm.current == "home", 5, "home after unlocking with the new PIN")
