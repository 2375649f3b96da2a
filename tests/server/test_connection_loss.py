"""A database connection that breaks (a database restart) costs at most one retried request, never a wrong answer."""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from server import extensions
from server.extensions import db

from .conftest import enrol_phone


def _break(conn) -> None:
    """Break a connection as a database restart does (PostgreSQL: its server process is terminated)."""
    if conn.dialect.name == "postgresql":
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        other = sa.create_engine(db.engine.url, poolclass=NullPool)
        with other.begin() as admin:
            assert admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        other.dispose()
    else:
        conn.connection.dbapi_connection.close()


def _one_pooled_connection_broken() -> None:
    """The pool holds one connection, and it is broken: on PostgreSQL its server process is terminated (as a
    restart does); SQLite has no server, so the connection is closed under the pool."""
    db.session.remove()
    db.engine.dispose()
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
        else:
            raw = conn.connection.dbapi_connection
    if db.engine.dialect.name == "postgresql":
        other = sa.create_engine(db.engine.url, poolclass=NullPool)
        with other.begin() as conn:
            assert conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
        other.dispose()
    else:
        raw.close()


def _in_transaction(raw) -> bool:
    info = getattr(raw, "info", None)  # psycopg
    if info is not None and hasattr(info, "transaction_status"):
        return info.transaction_status.name != "IDLE"
    return raw.in_transaction  # sqlite3


def test_an_idle_connection_that_broke_is_replaced_before_use(app, monkeypatch):
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.0)  # every pooled connection counts as idle
    _one_pooled_connection_broken()
    with db.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_the_test_of_an_idle_connection_leaves_it_out_of_any_transaction(app, monkeypatch):
    # else a pull could not switch it to autocommit (feed.without_transaction)
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 0.0)
    db.session.remove()
    db.engine.dispose()
    with db.engine.connect():
        pass
    with db.engine.connect() as conn:  # tested at this checkout
        assert not _in_transaction(conn.connection.dbapi_connection)


def test_a_connection_lost_in_use_is_answered_503_and_the_retry_works(app, client, org, monkeypatch):
    phone = enrol_phone(client)
    # recently used, so not tested before use (no round trip more on every request): the request fails
    monkeypatch.setattr(extensions, "PING_AFTER_IDLE_SECONDS", 3600.0)
    _one_pooled_connection_broken()
    r = phone.pull()
    assert r.status_code == 503
    body = r.get_json()
    assert body["reason"] == "database_unavailable" and body["code"] == 503 and "try again" in body["message"]
    assert r.headers["Retry-After"] == "5"
    db.session.remove()  # what the end of the request's app context does in the server (the test keeps one open)
    assert phone.pull().status_code == 200  # the pool dropped the broken connection


def test_a_connection_lost_while_the_page_is_read_is_answered_503_too(app, client, org, monkeypatch):
    # the page is read with the driver's own cursor (feed._page_rows), past SQLAlchemy's error handling
    from server.services import feed

    phone = enrol_phone(client)
    real = feed._compiled_pull

    def break_first(dialect, shape):
        _break(db.session.connection())  # after authentication, before the page
        return real(dialect, shape)

    monkeypatch.setattr(feed, "_compiled_pull", break_first)
    r = phone.pull()
    assert r.status_code == 503 and r.get_json()["reason"] == "database_unavailable"
    monkeypatch.setattr(feed, "_compiled_pull", real)
    db.session.remove()
    assert phone.pull().status_code == 200
