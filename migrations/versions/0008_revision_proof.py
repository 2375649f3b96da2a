"""Revision disclosure proof

A safety-log export discloses each device-signed revision with the salt of
every shown field and the digest of every withheld (health) field. Deriving
them at export time cost an HMAC per field and a decryption per record, about
half of the export's work; the push already makes both when it opens the
envelope, so it now keeps them (services.records.disclosure_proof). Revisions
stored before this have none and are exported the slower way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 11:00:00

"""
import sqlalchemy as sa
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("revision") as batch:
        batch.add_column(sa.Column("proof", sa.Text(), nullable=True))


def downgrade():
    with op.batch_alter_table("revision") as batch:
        batch.drop_column("proof")
