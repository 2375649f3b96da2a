"""pull indexes

One ordered index range per visibility rule of pull: (worker, seq), (team, kind, seq),
(region, kind, seq). They replace the single-column indexes on worker, team and region,
which are their prefixes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 09:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('change', schema=None) as batch_op:
        batch_op.create_index('ix_change_worker_seq', ['worker_id', 'seq'], unique=False)
        batch_op.create_index('ix_change_team_kind_seq', ['team_id', 'kind', 'seq'], unique=False)
        batch_op.create_index('ix_change_region_kind_seq', ['region_id', 'kind', 'seq'], unique=False)
        batch_op.drop_index('ix_change_worker_id')
        batch_op.drop_index('ix_change_team_id')
        batch_op.drop_index('ix_change_region_id')


def downgrade():
    with op.batch_alter_table('change', schema=None) as batch_op:
        batch_op.create_index('ix_change_region_id', ['region_id'], unique=False)
        batch_op.create_index('ix_change_team_id', ['team_id'], unique=False)
        batch_op.create_index('ix_change_worker_id', ['worker_id'], unique=False)
        batch_op.drop_index('ix_change_region_kind_seq')
        batch_op.drop_index('ix_change_team_kind_seq')
        batch_op.drop_index('ix_change_worker_seq')
