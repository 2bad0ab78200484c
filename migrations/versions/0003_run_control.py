"""run control: pause for a person, who holds control, hand-over events

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06 06:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('pause_requested', sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
        batch.add_column(sa.Column('pause_reason', sa.Text(), nullable=True))
        batch.add_column(sa.Column('control_key_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('paused_at', sa.DateTime(), nullable=True))
        batch.add_column(sa.Column('paused_seconds', sa.Float(), nullable=False, server_default='0'))
    with op.batch_alter_table('runs') as batch:  # the defaults only filled existing rows
        batch.alter_column('pause_requested', server_default=None)
        batch.alter_column('paused_seconds', server_default=None)
    op.create_table('run_events',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key_id', sa.String(length=64), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_run_events_run_id'), 'run_events', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_run_events_run_id'), table_name='run_events')
    op.drop_table('run_events')
    with op.batch_alter_table('runs') as batch:
        for column in ('paused_seconds', 'paused_at', 'control_key_id', 'pause_reason', 'pause_requested'):
            batch.drop_column(column)
