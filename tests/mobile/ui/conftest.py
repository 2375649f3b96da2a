"""A real Kivy window (offscreen, 360x640), a real server process, and the app on a fresh phone data dir.

The window is a process singleton: made once per session at phone size. Each
test builds a new FieldwatchApp on its own data dir, puts its root in the
window, and drives frames itself (no App.run(), no sleeps: ``wait_until``).
"""
from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

from tests.mobile.ui.kivy_helpers import advance, tap, type_into, wait_until  # noqa: E402
from tests.mobile.core.realserver import RealServer  # noqa: E402

PIN = "2468"
FAST = dict(scrypt_n=2**4, max_attempts=1, sleep=lambda s: None, jitter=lambda: 0.0, timeout=(2.0, 10.0))


@pytest.fixture(scope="session")
def kivy_window():
    from kivy.config import Config

    Config.set("graphics", "width", "360")
    Config.set("graphics", "height", "640")
    Config.set("graphics", "maxfps", "0")  # frames as fast as they draw: tests never wait for the clock
    for key, _ in Config.items("input"):  # only our own touches
        Config.remove_option("input", key)
    from kivy.base import EventLoop
    from kivy.core.window import Window

    EventLoop.ensure_window()
    Window.size = (360, 640)
    Window.register()
    Window.initialized = True
    yield Window


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the session (a test that stops a server makes its own)."""
    srv = RealServer(tmp_path_factory.mktemp("server"))
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


class NullNotification:
    """The desktop facade's behaviour, kept for assertions."""

    def __init__(self):
        self.sent = []

    def notify(self, title, message, **kwargs):
        self.sent.append({"title": title, "message": message})


def enrol_offline_setup(data_dir: Path, srv: RealServer, worker: str = "W001") -> None:
    """Enrol a phone's data dir through the core (the UI enrolment has its own test)."""
    from mobile.core.services import Device

    device = Device.open(data_dir, **FAST)
    device.enrol(srv.url, srv.new_codes(1, worker)[0], "ui phone", PIN)
    device.close()


@pytest.fixture
def make_app(kivy_window, tmp_path):
    """``make_app(server=None, enrol=True, unlock=True, data_dir=None)`` -> a running FieldwatchApp.

    On a fresh data dir unless ``data_dir`` names one prepared by the test (then pass ``enrol=False``).
    """
    made = []

    def make(srv: RealServer | None = None, *, enrol: bool = True, unlock: bool = True, worker: str = "W001",
             data_dir: Path | None = None, **kw):
        from mobile.ui.app import FieldwatchApp

        data_dir = data_dir or tmp_path / f"phone{len(made)}"
        if enrol:
            enrol_offline_setup(data_dir, srv, worker)
        options = dict(device_settings=FAST, notification=NullNotification(), auto_sync_s=0, probe_s=0,
                       reminder_s=0, transitions=False)
        options.update(kw)
        app = FieldwatchApp(data_dir, **options)
        root = app.build()
        kivy_window.add_widget(root)
        app.dispatch("on_start")
        made.append((app, root))
        advance(3)
        if enrol and unlock:
            unlock_with_pin(app)
        return app

    yield make
    from kivy.base import EventLoop

    for app, root in made:
        wait_until(lambda: not app.worker.busy, 20, "the worker to finish")
        advance(2)
        app.dispatch("on_stop")  # also resets kv's cached `app` proxy
        kivy_window.remove_widget(root)
    EventLoop.touches.clear()
    advance(1)


def unlock_with_pin(app, pin: str = PIN) -> None:
    """Type the PIN on the PIN screen and wait for home."""
    screen = app.sm.get_screen("pin")
    assert app.sm.current == "pin"
    type_into(screen.ids.pin, pin)
    tap(screen.ids.submit)
    wait_until(lambda: app.sm.current == "home", 10, "the home screen")
    wait_until(lambda: not app.sync.syncing, 20, "the first sync")


def screen_of(app, name: str):
    """The screen object called ``name`` (asserts it is showing)."""
    wait_until(lambda: app.sm.current == name, 5, f"screen {name}")
    advance(2)
    return app.sm.get_screen(name)
