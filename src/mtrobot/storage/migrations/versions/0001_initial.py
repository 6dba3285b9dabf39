"""initial schema: traders, sessions, tokens, accounts, portfolios, orders, activity

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_throttle")),
    )
    op.create_table(
        "traders",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traders")),
        sa.UniqueConstraint("email", name=op.f("uq_traders_email")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("trader_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("scope", sa.String(length=10), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["trader_id"], ["traders.id"], name=op.f("fk_api_tokens_trader_id_traders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_tokens_trader_id"), ["trader_id"], unique=False)

    op.create_table(
        "mt5_accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("trader_id", sa.String(length=40), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("server", sa.String(length=128), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("backend", sa.String(length=32), nullable=False),
        sa.Column("company", sa.String(length=128), nullable=False),
        sa.Column("currency", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cred_key_id", sa.String(length=32), nullable=False),
        sa.Column("cred_wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("cred_nonce", sa.LargeBinary(), nullable=False),
        sa.Column("cred_ciphertext", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["trader_id"], ["traders.id"], name=op.f("fk_mt5_accounts_trader_id_traders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mt5_accounts")),
        sa.UniqueConstraint("server", "login", name="uq_mt5_accounts_server_login"),
    )
    with op.batch_alter_table("mt5_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mt5_accounts_cred_key_id"), ["cred_key_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_mt5_accounts_trader_id"), ["trader_id"], unique=False)

    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("trader_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trader_id"], ["traders.id"], name=op.f("fk_web_sessions_trader_id_traders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_web_sessions")),
    )
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_web_sessions_trader_id"), ["trader_id"], unique=False)

    op.create_table(
        "activity",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mt5_accounts.id"],
            name=op.f("fk_activity_account_id_mt5_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_activity")),
    )
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.create_index("ix_activity_account_id_id", ["account_id", "id"], unique=False)

    op.create_table(
        "orders",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=24), nullable=False),
        sa.Column("action", sa.String(length=10), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("order_type", sa.String(length=20), nullable=True),
        sa.Column("volume", sa.Float(), nullable=True),
        sa.Column("price", sa.Float(), nullable=True),
        sa.Column("stoplimit", sa.Float(), nullable=True),
        sa.Column("sl", sa.Float(), nullable=True),
        sa.Column("tp", sa.Float(), nullable=True),
        sa.Column("deviation", sa.Integer(), nullable=True),
        sa.Column("filling", sa.String(length=10), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.Column("ticket", sa.BigInteger(), nullable=True),
        sa.Column("comment", sa.String(length=64), nullable=True),
        sa.Column("parent_order_id", sa.String(length=24), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("filled_volume", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mt5_accounts.id"],
            name=op.f("fk_orders_account_id_mt5_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "order_id", name=op.f("pk_orders")),
    )
    op.create_table(
        "portfolios",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("robots", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["mt5_accounts.id"],
            name=op.f("fk_portfolios_account_id_mt5_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_portfolios")),
    )


def downgrade() -> None:
    op.drop_table("portfolios")
    op.drop_table("orders")
    with op.batch_alter_table("activity", schema=None) as batch_op:
        batch_op.drop_index("ix_activity_account_id_id")

    op.drop_table("activity")
    with op.batch_alter_table("web_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_web_sessions_trader_id"))

    op.drop_table("web_sessions")
    with op.batch_alter_table("mt5_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mt5_accounts_trader_id"))
        batch_op.drop_index(batch_op.f("ix_mt5_accounts_cred_key_id"))

    op.drop_table("mt5_accounts")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_trader_id"))

    op.drop_table("api_tokens")
    op.drop_table("traders")
    op.drop_table("login_throttle")
