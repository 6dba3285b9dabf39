"""Alembic environment: runs the package's migrations against the URL given by ``upgrade_head``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from mtrobot.storage.db import make_engine
from mtrobot.storage.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            is_postgres = connection.dialect.name == "postgresql"
            if is_postgres:
                # Two processes starting together must not both create the tables.
                connection.execute(text("SELECT pg_advisory_lock(727170001)"))
                connection.commit()
            try:
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=connection.dialect.name == "sqlite",
                    compare_type=True,
                )
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if is_postgres:
                    connection.execute(text("SELECT pg_advisory_unlock(727170001)"))
                    connection.commit()
    finally:
        engine.dispose()


run_migrations_online()
