"""order fills (each deal once) with the average fill price on orders, and equity points for the chart

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "equity_points",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("balance", sa.Float(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mt5_accounts.id"],
            name=op.f("fk_equity_points_account_id_mt5_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "ts", name=op.f("pk_equity_points")),
    )
    op.create_table(
        "order_fills",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("deal", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=False),
        sa.Column("volume", sa.Float(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mt5_accounts.id"],
            name=op.f("fk_order_fills_account_id_mt5_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "deal", name=op.f("pk_order_fills")),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("avg_price", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("avg_price")
    op.drop_table("order_fills")
    op.drop_table("equity_points")
