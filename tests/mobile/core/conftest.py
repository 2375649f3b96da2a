"""Fixtures for the device core: tmp_path stores, a fake clock, no sleeps, and the in-process fake server."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.mobile.core.fakeserver import BASE_URL, FakeServer, session_for

from mobile.core.config import DeviceSettings  # noqa: E402
from mobile.core.services import Device  # noqa: E402

PIN = "2468"
ICT = timezone(timedelta(hours=7))


class FakeClock:
    """An aware wall clock that only moves when a test moves it."""

    def __init__(self, start: datetime):
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **delta) -> None:
        """Move forward by a timedelta's keyword arguments."""
        self.value += timedelta(**delta)


class Sleeps(list):
    """Records the seconds the code asked to sleep, without sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def clock():
    return FakeClock(datetime(2026, 11, 26, 8, 0, tzinfo=ICT))


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def fake():
    return FakeServer()


@pytest.fixture
def make_settings(tmp_path, clock, sleeps):
    def make(name: str = "device", **overrides) -> DeviceSettings:
        values = dict(data_dir=tmp_path / name, scrypt_n=2**4, now=clock, sleep=sleeps, jitter=lambda: 0.5)
        values.update(overrides)
        return DeviceSettings(**values)
    return make


@pytest.fixture
def make_device(fake, make_settings):
    made = []

    def make(name: str = "device", enrol: bool = True, server: FakeServer | None = None, **overrides) -> Device:
        srv = server or fake
        device = Device(make_settings(name, **overrides), session=session_for(srv))
        if enrol:
            device.enrol(BASE_URL, srv.new_code(), f"phone {name}", PIN)
        made.append(device)
        return device

    yield make
    for device in made:
        try:
            device.close()
        except Exception:  # already closed by the test
            pass


@pytest.fixture
def device(make_device):
    return make_device()
