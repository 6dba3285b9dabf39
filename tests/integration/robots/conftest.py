"""Fixtures of the robots tests."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest
import structlog
from click.testing import Result
from typer.testing import CliRunner

from mtrobot.cli import app


@pytest.fixture
def cli() -> Iterator[Callable[..., Result]]:
    """Run an ``mtrobot`` command in process. The command configures logging onto the runner's captured
    stderr, which is closed afterwards: the process's logging configuration is put back after the test."""
    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    context = structlog.contextvars.get_contextvars()

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(app, list(args))

    try:
        yield invoke
    finally:
        structlog.configure(**saved)
        root.handlers[:], root.level = handlers, level
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(**context)
