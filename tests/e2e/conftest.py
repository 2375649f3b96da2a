"""Fixtures for the sync fault tests: one real server process per module, a fault proxy, devices.

The server is :class:`tests.mobile.core.realserver.RealServer` (a child process
on a free port, SQLite database, killable with SIGKILL and restartable on the
same port and database). Helpers are in :mod:`tests.e2e.syncrig`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.e2e.faultnet import FaultProxy  # noqa: E402
from tests.e2e.syncrig import PIN, Naps, RealServer, ServerDB  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A real server process; batches of at most 100 items so a big outbox takes several pushes."""
    srv = RealServer(tmp_path_factory.mktemp("server"), MAX_ITEMS_PER_BATCH=100)
    srv.prepare()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def server_db(server):
    return ServerDB(server)


@pytest.fixture
def proxy(server):
    p = FaultProxy(server.port)
    yield p
    p.close()


@pytest.fixture
def make_device(server, proxy, tmp_path):
    """Enrol a device (via the proxy unless ``via="direct"``); closed at the end."""
    from mobile.core.config import DeviceSettings
    from mobile.core.services import Device

    made = []

    def make(name: str, worker: str = "W001", via: str = "proxy", on: RealServer | None = None, **overrides):
        """``on``: enrol directly with that other server instead."""
        values = dict(data_dir=tmp_path / name, scrypt_n=2**4, sleep=Naps(), jitter=lambda: 0.5, timeout=(2.0, 15.0))
        values.update(overrides)
        device = Device(DeviceSettings(**values))
        home = on or server
        url = proxy.url if via == "proxy" and on is None else home.url
        device.enrol(url, home.new_codes(1, worker)[0], f"e2e {name}", PIN)
        made.append(device)
        return device

    yield make
    for device in made:
        try:
            device.close()
        except Exception:  # closed by the test already
            pass
