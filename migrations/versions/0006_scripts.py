"""scripts (run_with code): scripts, their revisions and files; a run's script_run; an action's replay mark

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('scripts',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('organization_id', sa.String(length=64), nullable=False),
    sa.Column('cache_key', sa.String(length=500), nullable=False),
    sa.Column('deleted_at', sa.DateTime(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_scripts_org_cache_key', 'scripts', ['organization_id', 'cache_key'], unique=False)
    op.create_table('script_revisions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('script_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['script_id'], ['scripts.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_script_revisions_script_id'), 'script_revisions', ['script_id'], unique=False)
    op.create_table('script_files',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('revision_id', sa.String(length=64), nullable=False),
    sa.Column('path', sa.String(length=500), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('mime_type', sa.String(length=120), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('checksum', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('modified_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['revision_id'], ['script_revisions.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_script_files_revision_id'), 'script_files', ['revision_id'], unique=False)
    with op.batch_alter_table('runs') as batch:
        batch.add_column(sa.Column('script_run', sa.JSON(), nullable=True))
    with op.batch_alter_table('actions') as batch:
        batch.add_column(sa.Column('replay', sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('actions') as batch:
        batch.drop_column('replay')
    with op.batch_alter_table('runs') as batch:
        batch.drop_column('script_run')
    op.drop_index(op.f('ix_script_files_revision_id'), table_name='script_files')
    op.drop_table('script_files')
    op.drop_index(op.f('ix_script_revisions_script_id'), table_name='script_revisions')
    op.drop_table('script_revisions')
    op.drop_index('ix_scripts_org_cache_key', table_name='scripts')
    op.drop_table('scripts')
