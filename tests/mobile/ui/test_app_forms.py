"""Fill in and submit each form through the real window; see validation messages next to the field."""
from __future__ import annotations

from tests.mobile.ui.conftest import screen_of
from tests.mobile.ui.kivy_helpers import advance, choose, screenshot, tap, type_into, wait_until


def test_health_check_rejects_50_degrees_next_to_the_field_then_saves(make_app, server):
    app = make_app(server)
    screenshot("home")
    home = app.sm.get_screen("home")
    tap(home.ids.go_safety)
    form = screen_of(app, "safety_check")
    wait_until(lambda: form.ids.site.values, 10, "the site list")

    type_into(form.ids.temperature, "50")
    tap(form.ids.submit)
    assert form.ids.f_temperature.error == "temperature must be between 30 and 45 °C"
    assert form.ids.f_temperature.ids.error_label.text == "temperature must be between 30 and 45 °C"
    assert app.device.sync_status()["pending_total"] == 0
    form.ids.scroll.scroll_y = 1
    screenshot("safety-check-error")

    type_into(form.ids.temperature, "36.6")
    choose(form.ids.symptoms, "headache")
    choose(form.ids.ppe, "mask", "gloves")
    form.ids.site.choose("HN001")
    tap(form.ids.submit)
    wait_until(lambda: app.sm.current == "home", 5, "home after saving")
    assert form.ids.f_temperature.error == ""
    today = app.device.today_status()
    assert today["health_check_done"] and today["fit_for_duty"] is True
    wait_until(lambda: "fit for duty" in home.health, 5, "home to show the check")
    assert app.sync.pending == 1


def test_site_status_form_saves_and_names_a_missing_state(make_app, server):
    app = make_app(server)
    tap(app.sm.get_screen("home").ids.go_site)
    form = screen_of(app, "site_status")
    wait_until(lambda: form.ids.site.values, 10, "the site list")
    form.ids.site.choose("HN002")
    tap(form.ids.submit)                      # no state chosen: the core's schema names the field
    assert form.ids.f_state.error, "a missing state is shown next to the state field"
    assert app.sm.current == "site_status"

    choose(form.ids.state, "degraded")
    choose(form.ids.power, "generator")
    choose(form.ids.bts, "yes")
    type_into(form.ids.cause, "mains cut")
    screenshot("site-status")
    tap(form.ids.submit)
    wait_until(lambda: app.sm.current == "home", 5, "home after saving")
    sites = {s["code"]: s for s in app.device.list_region_sites()}
    assert sites["HN002"]["status"]["state"] == "degraded"
    assert sites["HN002"]["status"]["mobile_bts_deployed"] is True


def test_check_in_ok_and_pin_and_settings(make_app, server):
    app = make_app(server)
    tap(app.sm.get_screen("home").ids.go_check_in)
    screen = screen_of(app, "check_in")
    screenshot("check-in")
    tap(screen.ids.ok)
    assert app.device.today_status()["last_check_in_status"] == "ok"
    assert "Checked in" in screen.message

    app.go("settings")
    settings = screen_of(app, "settings")
    assert settings.ids.server.value == server.url
    assert settings.ids.device_id.value == app.device.enrolment()["device_id"]
    screenshot("settings")
    tap(settings.ids.lock)
    pin = screen_of(app, "pin")
    assert not app.device.is_unlocked
    type_into(pin.ids.pin, "0000")
    tap(pin.ids.submit)
    assert "wrong PIN" in pin.ids.f_pin.error
    screenshot("pin")
    type_into(pin.ids.pin, "2468")
    tap(pin.ids.submit)
    wait_until(lambda: app.sm.current == "home", 5, "home after unlocking")
    assert app.device.is_unlocked
