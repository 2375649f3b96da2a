"""The server as the README runs it: gunicorn with the repository's gunicorn.conf.py, several worker
processes on one SQLite file, devices pushing at once over real HTTP.

Pushes from different processes queue on the SQLite write gate (an OS file lock); every record must
be stored once and numbered once in the change feed, whichever process took it.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import requests

from shared import crypto, envelope
from shared.clock import HybridLogicalClock
from tests.mobile.core.realserver import REPO, SITES, RealServer


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


class _Phone:
    def __init__(self, url: str, code: str):
        self.private, public = crypto.generate_signing_keypair()
        r = requests.post(url + "/api/v1/devices/enrol", json={"code": code, "public_key": crypto.b64e(public), "label": "gunicorn test", "app_version": "1"}, timeout=10)
        r.raise_for_status()
        data = r.json()
        key = next(k for k in data["keys"] if k["current"])
        self.id, self.auth = data["device_id"], {"Authorization": f"Bearer {data['token']}"}
        self.kid, self.box, self.clock = key["kid"], crypto.b64d(key["box_public"]), HybridLogicalClock(data["device_id"])

    def site_statuses(self, n: int) -> list[dict]:
        now = datetime.now(timezone(timedelta(hours=7))).isoformat(timespec="seconds")
        return [envelope.seal(envelope.make_header(self.kid, self.id, str(uuid.uuid4()), "site_status", str(self.clock.tick())),
                              {"schema_version": 1, "site_code": SITES[i % len(SITES)], "observed_at": now, "state": "down",
                               "power_source": "battery", "backup_transmission": False, "mobile_bts_deployed": False,
                               "access": "open", "cause": "storm", "notes": f"record {i}", "reported_by": None},
                              self.private, self.box)
                for i in range(n)]


def test_gunicorn_workers_share_one_sqlite_file(tmp_path):
    server = RealServer(tmp_path / "srv")
    server.prepare()
    port = _free_port()
    env = {**os.environ, "FIELDWATCH_DATABASE_URL": server.db_url, "FIELDWATCH_KEYS_DIR": server.keys_dir,
           "FIELDWATCH_SECRET_KEY": "gunicorn-test", "FIELDWATCH_BIND": f"127.0.0.1:{port}", "FIELDWATCH_WORKERS": "3"}
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    proc = subprocess.Popen([gunicorn, "server:create_app()", "--access-logfile", "/dev/null"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        phones = [_Phone(url, code) for code in server.new_codes(6)]
        batches = {p.id: [p.site_statuses(40) for _ in range(3)] for p in phones}
        answers, errors = [], []

        def push(phone):
            try:
                for items in batches[phone.id]:
                    r = requests.post(url + "/api/v1/sync/push", json={"items": items}, headers=phone.auth, timeout=60)
                    answers.append((r.status_code, [x["status"] for x in r.json()["results"]]))
            except Exception as exc:  # surfaced below
                errors.append(exc)

        threads = [threading.Thread(target=push, args=(p,)) for p in phones]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not errors, errors
        assert len(answers) == 18 and all(code == 200 and set(statuses) == {"accepted"} for code, statuses in answers)
        workers = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(workers) == 3  # the config's worker count, set through FIELDWATCH_WORKERS
        (revisions,), = server.query("SELECT count(*) FROM revision")
        (changes, distinct, low, high), = server.query("SELECT count(*), count(DISTINCT seq), min(seq), max(seq) FROM change")
        assert revisions == changes == distinct == 6 * 3 * 40
        assert high - low + 1 == changes  # numbered without gaps or repeats
    finally:
        proc.terminate()
        proc.wait(30)
        server.stop()
