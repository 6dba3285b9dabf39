"""Persistence: SQLAlchemy models and repositories, Alembic migrations, executions and audit sinks."""
