"""Migrations: the models and the migrated schema agree, and every migration goes down and up again."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from server.extensions import db


def _differences() -> list:
    with db.engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), db.metadata)


def test_models_match_the_migrated_schema(app):
    assert _differences() == []


def test_pull_indexes_exist(app):
    names = {ix["name"] for ix in db.inspect(db.engine).get_indexes("change")}
    assert {"ix_change_worker_seq", "ix_change_team_kind_seq", "ix_change_region_kind_seq"} <= names
    assert not names & {"ix_change_worker_id", "ix_change_team_id", "ix_change_region_id"}


def test_down_to_base_and_up_again(app):
    downgrade(revision="base")
    db.session.remove()
    assert set(db.inspect(db.engine).get_table_names()) <= {"alembic_version"}
    upgrade()
    db.session.remove()
    assert _differences() == []


def test_storage_settings_of_each_database(app):
    # PostgreSQL: bodies in lz4, envelopes out of line (migration 0007). SQLite: WAL, so pulls read while a push
    # writes, and pages read through mmap.
    if db.engine.dialect.name != "postgresql":
        from server.extensions import SQLITE_MMAP_BYTES

        assert db.session.execute(db.text("PRAGMA journal_mode")).scalar() == "wal"
        assert db.session.execute(db.text("PRAGMA mmap_size")).scalar() == SQLITE_MMAP_BYTES
        return
    rows = db.session.execute(db.text(
        "SELECT c.relname, a.attname, a.attstorage, a.attcompression FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "WHERE c.relname IN ('revision', 'record_state') AND a.attname IN ('body', 'envelope') AND c.relnamespace = to_regnamespace(current_schema())"
    )).all()
    got = {(r.relname, r.attname): (r.attstorage, r.attcompression) for r in rows}
    assert got[("revision", "body")][1] == "l" and got[("record_state", "body")][1] == "l"
    assert got[("revision", "envelope")][0] == "e"
