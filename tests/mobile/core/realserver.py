"""A real fieldwatch server process for end-to-end device tests (real HTTP, real sockets).

The database is migrated and seeded in the test process (one organisation,
one region with sites, one team, technicians); the server runs in a child
process (werkzeug, threaded) on a free port, and can be killed with SIGKILL
and restarted on the same port and database.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]
TEAM, REGION = "HN-T1", "HN"
WORKERS = ("W001", "W002", "W003", "W004")
SITES = ("HN001", "HN002", "HN003")

_SERVE = textwrap.dedent("""
    import sys
    from werkzeug.serving import make_server
    from server import create_app
    server = make_server("127.0.0.1", int(sys.argv[1]), create_app(), threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()
""")


class RealServer:
    """One server: its database, keys, process and address."""

    def __init__(self, base: Path, **config):
        self.base = Path(base)
        self.base.mkdir(parents=True, exist_ok=True)
        self.db_url = f"sqlite:///{self.base / 'fieldwatch.db'}"
        self.keys_dir = str(self.base / "keys")
        self.config = config
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self._app = None

    # --- database -----------------------------------------------------------------------

    @property
    def app(self):
        """A Flask app on the same database, for seeding and checking from the test."""
        if self._app is None:
            from server import create_app
            self._app = create_app({"DATABASE_URL": self.db_url, "KEYS_DIR": self.keys_dir, "SECRET_KEY": "t",
                                    "TESTING": True, **self.config})
        return self._app

    def prepare(self) -> None:
        """Migrate and seed the database."""
        from flask_migrate import upgrade

        with self.app.app_context():
            upgrade(directory=str(REPO / "migrations"))
            _seed()

    def new_codes(self, n: int = 1, worker: str | None = None) -> list[str]:
        """Fresh one-time enrolment codes for the team (personal to ``worker`` when given)."""
        from server.extensions import db
        from server.services import enrolment

        with self.app.app_context():
            codes = [enrolment.create_code(TEAM, timedelta(hours=1), worker)[0] for _ in range(n)]
            db.session.commit()
        return codes

    def revoke(self, device_id: str) -> None:
        """Revoke a device as a supervisor would."""
        from server.extensions import db
        from server.services import enrolment

        with self.app.app_context():
            enrolment.revoke(device_id)
            db.session.commit()

    def query(self, sql: str, params: dict | None = None) -> list:
        """Rows from the server's database (checks only)."""
        import sqlalchemy as sa
        from server.extensions import db

        with self.app.app_context():
            return db.session.execute(sa.text(sql), params or {}).all()

    # --- process ----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The server's base address."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RealServer":
        """Start (or restart, on the same port) the server process and wait until it answers."""
        env = {**os.environ, "FIELDWATCH_DATABASE_URL": self.db_url, "FIELDWATCH_KEYS_DIR": self.keys_dir,
               "FIELDWATCH_SECRET_KEY": "e2e-secret", "FIELDWATCH_LOG_LEVEL": "WARNING",
               **{f"FIELDWATCH_{k}": str(v) for k, v in self.config.items()}}
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVE, str(self.port)], cwd=REPO, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.isdigit():
            self.proc.kill()
            raise RuntimeError(f"the server did not start (got {line!r})")
        self.port = int(line)
        requests.get(self.url + "/healthz", timeout=10).raise_for_status()
        return self

    def kill(self) -> None:
        """SIGKILL the server process (no clean shutdown)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """Terminate the server process and drop the test's database connections."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        if self._app is not None:
            from server.extensions import db
            with self._app.app_context():
                db.engine.dispose()


def _seed() -> None:
    """One operator, one region with sites, one team of technicians."""
    from server.extensions import db
    from server.models import Organisation, Region, Site, Team, User

    op = Organisation(code="OP", name="Operator", is_partner=False)
    region = Region(code=REGION, name="Ha Noi", province="Ha Noi", min_fit_on_duty=1)
    db.session.add_all([op, region])
    db.session.flush()
    sites = [Site(code=c, name=f"Site {c}", region_id=region.id, lat=21.0 + i / 100, lon=105.8 + i / 100,
                  criticality="high") for i, c in enumerate(SITES)]
    team = Team(code=TEAM, name="Ha Noi crew 1", organisation_id=op.id, region_id=region.id)
    db.session.add_all([*sites, team])
    db.session.flush()
    db.session.add_all([User(code=w, username=w.lower(), display_name=f"Tech {w}", role="technician", team_id=team.id)
                        for w in WORKERS])
    db.session.commit()
