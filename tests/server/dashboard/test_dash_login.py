"""Signing in and out, session expiry, CSRF, the user CLI, personal access tokens."""
from __future__ import annotations

import time

from sqlalchemy import select

from server.extensions import db
from server.models import AccessToken, User
from server.services import people
from tests.server.dashboard.conftest import PASSWORD, login


def test_login_then_overview_then_logout(client, people_org):
    assert client.get("/dashboard/").status_code == 302
    r = login(client, "super")
    assert r.status_code == 302 and r.headers["Location"].endswith("/dashboard/")
    page = client.get("/dashboard/")
    assert page.status_code == 200 and b"Overview" in page.data
    client.post("/dashboard/logout")
    r = client.get("/dashboard/")
    assert r.status_code == 302 and "/dashboard/login" in r.headers["Location"]


def test_wrong_password_and_unknown_user_get_the_same_answer(client, people_org):
    a = login(client, "super", "wrong password!")
    b = login(client, "nobody", "wrong password!")
    assert a.status_code == b.status_code == 401
    assert b"not right" in a.data and b"not right" in b.data


def test_passwords_are_scrypt_hashes(people_org):
    user = people_org.users["supervisor"]
    assert user.password_hash.startswith("scrypt:") and PASSWORD not in user.password_hash


def test_disabled_user_cannot_sign_in_and_is_signed_out(client, people_org):
    assert login(client, "super").status_code == 302
    people_org.users["supervisor"].active = False
    db.session.commit()
    assert client.get("/dashboard/").status_code == 302
    assert login(client, "super").status_code == 401


def test_session_expires_after_session_minutes(client, people_org, app):
    login(client, "super")
    assert client.get("/dashboard/").status_code == 200
    with client.session_transaction() as s:
        s["seen"] = int(time.time()) - app.config["SESSION_MINUTES"] * 60 - 5
    r = client.get("/dashboard/")
    assert r.status_code == 302 and "/dashboard/login" in r.headers["Location"]
    assert client.get("/dashboard/").status_code == 302  # really signed out


def test_password_change_ends_sessions(client, people_org):
    login(client, "super")
    people.set_password(people_org.users["supervisor"], "another good password")
    db.session.commit()
    assert client.get("/dashboard/").status_code == 302


def test_next_is_only_followed_to_this_site(client, people_org):
    r = client.post("/dashboard/login?next=//evil.example/x", data={"username": "super", "password": PASSWORD})
    assert r.headers["Location"].endswith("/dashboard/")
    client.post("/dashboard/logout")
    r = client.post("/dashboard/login?next=/dashboard/devices", data={"username": "super", "password": PASSWORD})
    assert r.headers["Location"].endswith("/dashboard/devices")


def test_csrf_is_required_on_every_form(database_url, keys_dir, org):
    from server import create_app
    from tests.server.dashboard.conftest import set_passwords

    set_passwords(org)
    app = create_app({"DATABASE_URL": database_url, "KEYS_DIR": keys_dir, "TESTING": True, "WTF_CSRF_ENABLED": True})
    client = app.test_client()
    r = client.post("/dashboard/login", data={"username": "super", "password": PASSWORD})
    assert r.status_code == 400 and b"reload the page" in r.data
    page = client.get("/dashboard/login").data.decode()
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/dashboard/login", data={"username": "super", "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 302
    assert client.post("/dashboard/logout").status_code == 400  # no token: still signed in
    assert client.get("/dashboard/").status_code == 200


def test_user_create_cli(app):
    from tests.server.conftest import make_org

    make_org()
    runner = app.test_cli_runner()
    r = runner.invoke(args=["user", "create", "--username", "sup2", "--role", "supervisor", "--region", "HN", "--region", "HP",
                            "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 0, r.output
    user = db.session.scalar(select(User).where(User.username == "sup2"))
    assert {r.code for r in user.regions} == {"HN", "HP"} and user.password_hash.startswith("scrypt:")
    r = runner.invoke(args=["user", "create", "--username", "sup3", "--role", "supervisor", "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 2 and "region" in r.output
    r = runner.invoke(args=["user", "create", "--username", "t9", "--role", "technician", "--team", "HN-T1", "--password-stdin"], input="short\n")
    assert r.exit_code == 2 and "at least" in r.output
    r = runner.invoke(args=["token", "create", "--username", "sup2", "--name", "noc screen"])
    assert r.exit_code == 0 and r.output.startswith("fwp_")


def test_tokens_are_hashed_expire_and_can_be_revoked(client, people_org, tokens):
    assert client.get("/api/v1/me", headers=tokens["supervisor"]).get_json()["role"] == "supervisor"
    raw = tokens["supervisor"]["Authorization"].split()[1]
    rows = db.session.scalars(select(AccessToken)).all()
    assert all(raw != t.token_hash and raw not in t.token_hash for t in rows)
    row = next(t for t in rows if t.user.username == "super")
    from datetime import timedelta

    row.expires_at = row.created_at - timedelta(seconds=1)
    db.session.commit()
    r = client.get("/api/v1/me", headers=tokens["supervisor"])
    assert r.status_code == 401 and "expired" in r.get_json()["message"]
    assert client.get("/api/v1/me", headers={"Authorization": "Bearer fwp_nonsense"}).status_code == 401
    assert client.get("/api/v1/me").get_json()["reason"] == "unauthorized"


def test_token_page_creates_and_revokes(client, people_org):
    login(client, "super")
    r = client.post("/dashboard/tokens", data={"name": "wallboard", "days": "30"})
    raw = r.data.decode().split('id="new-token">')[1].split("<")[0]
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    row = db.session.scalar(select(AccessToken).where(AccessToken.name == "wallboard"))
    client.post(f"/dashboard/tokens/{row.id}/revoke")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert client.post("/dashboard/tokens", data={"name": "x", "days": "many"}).status_code == 302  # flashed, not a 500


def test_device_token_is_not_a_person_token(client, people_org, phone):
    r = client.get("/api/v1/overview", headers=phone.auth)
    assert r.status_code == 401
