"""PostgreSQL column storage for the sync hot paths

A revision row (opened body ~1 KB, sealed envelope ~1.4 KB) is over PostgreSQL's
2 KB TOAST threshold, so by default the body was compressed with pglz: every
pull decompressed it, and every push first tried (and failed) to compress the
envelope, which is random base64. The body is now compressed with lz4 (several
times faster both ways), and the envelope, read only as evidence, is stored
out of line without compression attempts. Nothing changes on SQLite.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 09:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def _postgresql_lz4() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    # lz4 column compression exists from PostgreSQL 14, in servers built with it.
    return bind.exec_driver_sql("SELECT current_setting('server_version_num')::int >= 140000").scalar()


def upgrade():
    if _postgresql_lz4():
        op.execute("ALTER TABLE revision ALTER COLUMN body SET COMPRESSION lz4")
        op.execute("ALTER TABLE record_state ALTER COLUMN body SET COMPRESSION lz4")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE revision ALTER COLUMN envelope SET STORAGE EXTERNAL")


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE revision ALTER COLUMN envelope SET STORAGE EXTENDED")
    if _postgresql_lz4():
        op.execute("ALTER TABLE record_state ALTER COLUMN body SET COMPRESSION DEFAULT")
        op.execute("ALTER TABLE revision ALTER COLUMN body SET COMPRESSION DEFAULT")
