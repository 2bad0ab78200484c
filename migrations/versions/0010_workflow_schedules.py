"""workflow schedules, and one firing row per (schedule, slot): the claim that makes a slot fire once

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 11:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workflow_schedules',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.String(length=64), nullable=False),
    sa.Column('workflow_permanent_id', sa.String(length=64), nullable=False),
    sa.Column('cron_expression', sa.String(length=200), nullable=False),
    sa.Column('timezone', sa.String(length=100), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('parameters', sa.JSON(), nullable=True),
    sa.Column('name', sa.String(length=500), nullable=True),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('api_key_encrypted', sa.Text(), nullable=False),
    sa.Column('next_fire_at', sa.DateTime(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_workflow_schedules_org_permanent_id', 'workflow_schedules',
                    ['organization_id', 'workflow_permanent_id'], unique=False)
    op.create_index('ix_workflow_schedules_due', 'workflow_schedules', ['enabled', 'next_fire_at'],
                    unique=False)
    op.create_table('schedule_firings',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('schedule_id', sa.String(length=64), nullable=False),
    sa.Column('slot_at', sa.DateTime(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['schedule_id'], ['workflow_schedules.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('schedule_id', 'slot_at', name='uq_schedule_firings_slot')
    )


def downgrade() -> None:
    op.drop_table('schedule_firings')
    op.drop_index('ix_workflow_schedules_due', table_name='workflow_schedules')
    op.drop_index('ix_workflow_schedules_org_permanent_id', table_name='workflow_schedules')
    op.drop_table('workflow_schedules')
