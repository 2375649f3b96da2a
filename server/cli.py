"""The ``fieldwatch`` command: Flask's CLI group plus the server's own commands.

``fieldwatch db upgrade`` (Flask-Migrate), ``fieldwatch keys init|rotate``,
``fieldwatch enrol-code create``, ``fieldwatch stats``, ``fieldwatch proofs backfill``, ``fieldwatch demo``.
"""
from __future__ import annotations

import json
import sys

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext

from .errors import DomainError


def _create_app():
    from . import create_app

    return create_app()


class _Group(FlaskGroup):
    """Flask's CLI group, telling a database without fieldwatch's tables apart from other failures."""

    def invoke(self, ctx):
        from sqlalchemy.exc import DBAPIError

        try:
            return super().invoke(ctx)
        except DBAPIError as exc:
            if not _no_tables(exc):
                raise
            click.echo("error: the database has no fieldwatch tables yet; run `fieldwatch db upgrade` first", err=True)
            sys.exit(2)


def _no_tables(exc) -> bool:
    # SQLite says so in words; PostgreSQL with SQLSTATE 42P01 (undefined_table)
    return "no such table" in str(exc.orig) or getattr(exc.orig, "sqlstate", None) == "42P01"


@click.group(cls=_Group, create_app=_create_app, add_default_commands=True)
def main():
    """fieldwatch server: field-crew safety and fault-response coverage."""


def _fail(exc: DomainError):
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(2)


@main.group()
def keys():
    """Server keys (kept outside the database, in KEYS_DIR)."""


@keys.command("init")
@with_appcontext
def keys_init():
    """Make the server keys if there are none yet."""
    from .services.keys import init_keys, load_keyring

    made = init_keys(current_app.config["KEYS_DIR"])
    ring = load_keyring(current_app.config["KEYS_DIR"])
    click.echo(("made" if made else "already there") + f": current key {ring.current_kid} in {current_app.config['KEYS_DIR']}")


@keys.command("rotate")
@with_appcontext
def keys_rotate():
    """Add a new server key pair and data key; old private keys stay to open old envelopes."""
    from .services.keys import rotate_keys

    kid = rotate_keys(current_app.config["KEYS_DIR"])
    click.echo(f"rotated: current key is now {kid}; devices accept it through the old key's endorsement")


@main.group("enrol-code")
def enrol_code():
    """One-time enrolment codes for phones."""


@enrol_code.command("create")
@click.option("--team", "team", required=True, help="team code, e.g. HN-T1")
@click.option("--worker", default=None, help="the technician's code, when the phone is personal")
@click.option("--ttl", default="24h", show_default=True, help="how long the code works: 30m, 24h, 7d")
@click.option("--count", default=1, show_default=True, help="how many codes to make")
@with_appcontext
def enrol_code_create(team, worker, ttl, count):
    """Make one-time, expiring enrolment codes (printed once; only their hash is kept)."""
    from .extensions import db
    from .services import enrolment

    try:
        lifetime = enrolment.parse_ttl(ttl)
        for _ in range(count):
            code, row = enrolment.create_code(team, lifetime, worker)
            click.echo(f"{code}  (team {team}, expires {row.expires_at:%Y-%m-%d %H:%M} UTC)")
        db.session.commit()
    except DomainError as exc:
        _fail(exc)


@main.command("stats")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@with_appcontext
def stats(as_json):
    """Counts per record kind, per device, of quarantined items and of the change feed."""
    from .services.stats import collect

    data = collect()
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    click.echo("records by kind:   " + ", ".join(f"{k}={v}" for k, v in sorted(data["records_by_kind"].items())) or "none")
    click.echo(f"revisions:         {data['revisions']}")
    click.echo(f"change feed:       {data['change_feed']['count']} changes, last seq {data['change_feed']['last_seq']}")
    click.echo("quarantine:        " + (", ".join(f"{k}={v}" for k, v in sorted(data['quarantine_by_reason'].items())) or "empty"))
    click.echo(f"devices:           {len(data['devices'])}")
    for d in data["devices"]:
        click.echo(f"  {d['device_id']}  {d['label']:<24} {d['status']:<8} revisions={d['revisions']} rejected={d['rejected']}")


@main.group()
def proofs():
    """Disclosure proofs that exports embed (kept with each revision since migration 0008)."""


@proofs.command("backfill")
@click.option("--quiet", is_flag=True, help="no progress bar")
@with_appcontext
def proofs_backfill(quiet):
    """Store the proofs of revisions pushed before migration 0008, so their exports need no decryption."""
    from tqdm import tqdm

    from .services import proofs as service
    from .services.keys import keyring

    total = service.missing_count()
    with tqdm(total=total, unit="rev", disable=quiet, desc="proofs", file=sys.stderr) as bar:
        done = service.backfill(keyring(), progress=bar.update)
    click.echo(f"stored {done} proofs" if done else "every device-signed revision already has its proof")


def _register_commands() -> None:
    from .demo import demo
    from .export_cli import COMMANDS

    for command in (demo, *COMMANDS):
        main.add_command(command)


_register_commands()
