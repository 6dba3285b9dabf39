"""Structured JSON logging with a redaction step that no event can bypass.

Redaction works on field names at any nesting depth (dicts, lists, tuples, pydantic models turned into
dicts) and on ``SecretStr`` values wherever they appear; a value under a secret-looking key is replaced
by ``"[REDACTED]"`` before the renderer ever sees it.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog
from pydantic import SecretBytes, SecretStr

REDACTED = "[REDACTED]"
SECRET_KEY_RE = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|master[_-]?key|data[_-]?key"
    r"|credential|authorization|cookie|session[_-]?id|^key$|_key$|csrf|otp|pin$",
    re.IGNORECASE,
)
_URL_CREDENTIALS_RE = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")


@functools.lru_cache(maxsize=4096)
def is_secret_key(name: str) -> bool:
    return bool(SECRET_KEY_RE.search(name))


_PLAIN = (int, float, bool, type(None), bytes)


def redact(value: Any) -> Any:
    """Return ``value`` with every secret removed; containers are copied, never mutated.

    On every broker call's audit record, so the common types are tried first by exact type (an ``isinstance``
    against the ``Mapping`` ABC costs more than the rest of the work on a number)."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is str:
        return _redact_url(value) if "://" in value else value
    if kind is dict:
        return _redact_mapping(value)
    if kind is list or kind is tuple:
        return [redact(v) for v in value]
    if isinstance(value, SecretStr | SecretBytes):
        return REDACTED
    if isinstance(value, Mapping):
        return _redact_mapping(value)
    fields = getattr(value, "_fields", None)
    if fields is not None and isinstance(value, tuple):  # named tuples, including the MT5 result structures
        return {k: REDACTED if _secret_field(k) else redact(v) for k, v in zip(fields, value, strict=True)}
    if hasattr(value, "_asdict"):
        return _redact_mapping(value._asdict())
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _redact_url(value)
    return value


def _secret_field(name: Any) -> bool:
    return isinstance(name, str) and is_secret_key(name)


def _redact_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
    return {k: REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v) for k, v in value.items()}


def _redact_url(value: str) -> str:
    return _URL_CREDENTIALS_RE.sub(lambda m: f"{m['scheme']}{m['user']}:{REDACTED}@", value)


def redact_processor(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> Any:
    return redact(event_dict)


def configure_logging(level: str = "INFO", stream: TextIO | None = None, service: str | None = None) -> None:
    """Configure structlog (and the stdlib root logger) to write redacted JSON lines to ``stream``."""
    out = stream or sys.stderr
    pre_chain: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    tail: list[Any] = [
        structlog.processors.format_exc_info,
        redact_processor,
        structlog.processors.JSONRenderer(),
    ]
    processors = pre_chain + tail
    if service:
        structlog.contextvars.bind_contextvars(service=service)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Third-party libraries log through stdlib logging: send them through the same redaction.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=pre_chain,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Alembic announces each of its plugins at INFO on every start: noise in front of the operator.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))


def get_logger(name: str | None = None, **bound: Any) -> Any:
    return structlog.get_logger(name, **bound)
