"""runs.workflow_schedule_id: the schedule whose slot started a workflow run (trigger_type scheduled)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('runs', sa.Column('workflow_schedule_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('runs') as batch_op:
        batch_op.drop_column('workflow_schedule_id')
