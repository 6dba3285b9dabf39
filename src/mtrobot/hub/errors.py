"""The hub's own errors; each maps to one HTTP status in :mod:`mtrobot.hub.api`."""

from __future__ import annotations

from mtrobot.core.errors import ConfigError, RetriableError


class NotConfigured(ConfigError):
    """No document is stored for this service: it runs on its safe defaults."""


class UnknownRevision(ConfigError):
    """The revision does not exist for this service (never did, or is older than the history kept)."""


class RevisionConflict(ConfigError):
    """The document changed since the revision the caller read (optimistic concurrency)."""


class BusUnavailable(RetriableError):
    """NATS cannot be reached right now."""
