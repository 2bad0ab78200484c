"""workflow runs: the workflow version a run executes, its blocks as they ran, steps tied to blocks

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:25:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('workflow_id', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('workflow_permanent_id', sa.String(length=64), nullable=True))
        batch.create_index('ix_runs_workflow_permanent_id', ['workflow_permanent_id'], unique=False)
    with op.batch_alter_table('steps') as batch:
        batch.add_column(sa.Column('workflow_run_block_id', sa.String(length=64), nullable=True))
    op.create_table('workflow_run_blocks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=False),
    sa.Column('parent_id', sa.String(length=64), nullable=True),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('block_type', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('loop_index', sa.Integer(), nullable=True),
    sa.Column('loop_value', sa.JSON(), nullable=True),
    sa.Column('output', sa.JSON(), nullable=True),
    sa.Column('failure_reason', sa.Text(), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('finished_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_workflow_run_blocks_run_id'), 'workflow_run_blocks', ['run_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_workflow_run_blocks_run_id'), table_name='workflow_run_blocks')
    op.drop_table('workflow_run_blocks')
    with op.batch_alter_table('steps') as batch:
        batch.drop_column('workflow_run_block_id')
    with op.batch_alter_table('runs') as batch:
        batch.drop_index('ix_runs_workflow_permanent_id')
        batch.drop_column('workflow_permanent_id')
        batch.drop_column('workflow_id')
