"""The server as the README runs it: gunicorn with the repository's gunicorn.conf.py, several worker
processes on one SQLite file, devices pushing at once over real HTTP.

Pushes from different processes queue on the SQLite write gate (an OS file lock); every record must
be stored once and numbered once in the change feed, whichever process took it.
"""
from __future__ import annotations

import gc
import os
import runpy
import socket
import subprocess
import sys
import threading
import time

import requests

from mobile.core.config import DeviceSettings
from mobile.core.services import Device
from tests.e2e.syncrig import PIN, Naps
from tests.mobile.core.realserver import REPO, SITES, WORKERS, RealServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "gunicorn exited"
        try:
            if requests.get(url + "/healthz", timeout=2).ok:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not answer in time")


def test_gunicorn_workers_share_one_sqlite_file(tmp_path):
    server = RealServer(tmp_path / "srv")
    server.prepare()
    port = _free_port()
    env = {**os.environ, "FIELDWATCH_DATABASE_URL": server.db_url, "FIELDWATCH_KEYS_DIR": server.keys_dir,
           "FIELDWATCH_SECRET_KEY": "gunicorn-test", "FIELDWATCH_BIND": f"127.0.0.1:{port}", "FIELDWATCH_WORKERS": "3",
           "FIELDWATCH_MAX_ITEMS_PER_BATCH": "40"}  # phones split their outboxes to the limit the server states
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen([gunicorn, "server:create_app()", "--access-logfile", "/dev/null"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    phones: list = []
    try:
        _wait_healthy(url, proc)
        for i in range(6):
            code = server.new_codes(1, WORKERS[i % len(WORKERS)])[0]
            phone = Device(DeviceSettings(data_dir=tmp_path / f"phone{i}", scrypt_n=2**4, sleep=Naps()))
            phone.enrol(url, code, f"gunicorn {i}", PIN)
            for n in range(120):  # three batches of 40 each
                phone.record_site_status(SITES[n % len(SITES)], "down", power_source="battery", cause="storm", notes=f"record {n}")
            phones.append(phone)
        results, errors = [], []

        def push(phone):
            try:
                results.append(phone.sync_now())
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(p,)) for p in phones]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(results) == 6 and all(r.ok and (r.accepted, r.rejected, r.batches) == (120, 0, 3) for r in results), results
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 3  # the config's worker count, set through FIELDWATCH_WORKERS
        (revisions,), = server.query("SELECT count(*) FROM revision")
        (changes, distinct, low, high), = server.query("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM change")
        assert revisions == changes == distinct == 6 * 3 * 40
        assert high - low + 1 == changes  # numbered without gaps or repeats
    finally:
        for phone in phones:
            phone.close()
        proc.terminate()
        proc.wait(30)
        server.stop()


def test_workers_keep_the_app_made_at_start_out_of_full_collections():
    config = runpy.run_path(os.path.join(REPO, "gunicorn.conf.py"))
    assert gc.get_freeze_count() == 0
    try:
        config["post_worker_init"](None)
        assert gc.get_freeze_count() > 10_000  # this test process's modules, like a worker's app
    finally:
        gc.unfreeze()
