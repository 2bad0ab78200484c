"""workflows ("agents"): one row per version of a definition

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('workflows',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('workflow_permanent_id', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('folder_id', sa.String(length=64), nullable=True),
    sa.Column('definition', sa.JSON(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('workflow_permanent_id', 'version', name='uq_workflows_permanent_id_version')
    )
    op.create_index('ix_workflows_org_permanent_id', 'workflows',
                    ['organization_id', 'workflow_permanent_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_workflows_org_permanent_id', table_name='workflows')
    op.drop_table('workflows')
