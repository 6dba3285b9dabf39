from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from mtrobot.storage.db import make_engine, upgrade_head
from mtrobot.storage.models import Base


def test_upgrading_twice_is_harmless_and_the_schema_matches_the_models(db_url: str) -> None:
    upgrade_head(db_url)
    upgrade_head(db_url)
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            tables = set(inspect(connection).get_table_names())
    finally:
        engine.dispose()
    assert diff == []
    assert {"traders", "mt5_accounts", "orders", "activity", "alembic_version"} <= tables
