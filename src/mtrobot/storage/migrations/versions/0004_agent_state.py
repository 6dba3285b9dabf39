"""agent state: whether an account's agent runs (active), is stopped by a person, or quarantined, and why

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mt5_accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("agent_state", sa.String(16), nullable=False, server_default=sa.text("'active'"))
        )
        batch_op.add_column(
            sa.Column("agent_reason", sa.Text(), nullable=False, server_default=sa.text("''"))
        )


def downgrade() -> None:
    with op.batch_alter_table("mt5_accounts", schema=None) as batch_op:
        batch_op.drop_column("agent_reason")
        batch_op.drop_column("agent_state")
