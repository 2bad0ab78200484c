"""run and step costs: what the LLM calls cost, from the operator's price table

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('runs', 'steps'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('llm_cost', sa.Float(), nullable=True))


def downgrade() -> None:
    for table in ('steps', 'runs'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('llm_cost')
