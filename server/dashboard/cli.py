"""``fieldwatch user create|password`` and ``fieldwatch token create``: accounts from the shell.

Passwords are read from stdin (``--password-stdin``), never from the
command line, so they stay out of shell history and ``ps``.
"""
from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from ..errors import DomainError


def _fail(exc: DomainError):
    click.echo(f"error: {exc.message}", err=True)
    sys.exit(2)


def _read_password(password_stdin: bool) -> str | None:
    if not password_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


@click.group()
def user():
    """People who sign in to the dashboard."""


@user.command("create")
@click.option("--username", required=True)
@click.option("--role", required=True, type=click.Choice(["technician", "supervisor", "admin", "auditor"]))
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of stdin")
@click.option("--name", "display_name", default=None, help="display name (default: the username)")
@click.option("--code", default=None, help="worker code records carry (default: the username in capitals)")
@click.option("--team", default=None, help="team code (technicians)")
@click.option("--region", "regions", multiple=True, help="region code (supervisors; repeat for several)")
@with_appcontext
def user_create(username, role, password_stdin, display_name, code, team, regions):
    """Create an account (technicians need --team, supervisors --region)."""
    from ..extensions import db
    from ..services import people

    try:
        u = people.create_user(username, role, _read_password(password_stdin), display_name=display_name, code=code,
                               team_code=team, region_codes=list(regions))
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(f"created {u.role} {u.username} (worker code {u.code})" + ("" if u.password_hash else "; no password: cannot sign in yet"))


@user.command("password")
@click.option("--username", required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="read the new password from stdin")
@with_appcontext
def user_password(username, password_stdin):
    """Set a new password (ends the person's sessions)."""
    from sqlalchemy import select

    from ..extensions import db
    from ..models import User
    from ..services import people

    u = db.session.scalar(select(User).where(User.username == username))
    if u is None:
        _fail(DomainError(f"there is no user {username!r}"))
    try:
        people.set_password(u, _read_password(True))
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(f"password set for {username}")


@click.group()
def token():
    """Personal access tokens for the JSON API."""


@token.command("create")
@click.option("--username", required=True)
@click.option("--name", required=True, help="what the token is for")
@click.option("--days", default=90, show_default=True)
@with_appcontext
def token_create(username, name, days):
    """Make a token for a user (printed once; only its hash is kept)."""
    from sqlalchemy import select

    from ..extensions import db
    from ..models import User
    from ..services import people

    u = db.session.scalar(select(User).where(User.username == username))
    if u is None:
        _fail(DomainError(f"there is no user {username!r}"))
    try:
        raw, _ = people.create_token(u, name, days)
        db.session.commit()
    except DomainError as exc:
        _fail(exc)
    click.echo(raw)
