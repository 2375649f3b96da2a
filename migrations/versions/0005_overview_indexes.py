"""overview indexes

Each on-duty technician's latest safety check and check-in by (kind, worker, time);
per-region site counts read from an index alone.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-26 06:25:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('record_state', schema=None) as batch_op:
        batch_op.create_index('ix_record_state_kind_worker_occurred', ['kind', 'worker_id', 'occurred_at'], unique=False)
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.create_index('ix_site_region_status', ['region_id', 'status_state', 'status_power', 'status_mobile_bts', 'status_access'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('site', schema=None) as batch_op:
        batch_op.drop_index('ix_site_region_status')
    with op.batch_alter_table('record_state', schema=None) as batch_op:
        batch_op.drop_index('ix_record_state_kind_worker_occurred')
