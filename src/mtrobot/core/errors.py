"""Errors encode the reaction: refuse (validation), retry with backoff (retriable), or stop (fatal)."""

from __future__ import annotations


class MtrobotError(Exception):
    """Root of every error mtrobot raises on purpose."""


class ConfigError(MtrobotError):
    """A setting or configuration document is invalid; the message names the field."""


class RetriableError(MtrobotError):
    """Transient: the same action may succeed after a wait."""


class FatalError(MtrobotError):
    """Permanent: retrying cannot help until a person changes something."""
