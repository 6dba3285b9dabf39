"""Configuration documents: parsing, the secret check, merging over defaults and validation.

A stored document holds only what an operator chose to set; the service's defaults fill in the rest
(``deep_merge``). Both the hub (before it writes) and every client (before it applies) run
:func:`validate_document`, so an invalid document is refused at the door and ignored if it got in anyway.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mtrobot.core.errors import ConfigError
from mtrobot.logging import is_secret_key

M = TypeVar("M", bound=BaseModel)

MAX_DOCUMENT_BYTES = 256 * 1024
"""The ``central_hub`` bucket's value limit."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason a document was refused: the dotted path of the field and a sentence about it."""

    field: str
    message: str


class ConfigDocumentError(ConfigError):
    """A configuration document was refused; ``errors`` names every offending field."""

    def __init__(self, service: str, errors: list[FieldError]) -> None:
        self.service = service
        self.errors = tuple(errors)
        detail = "; ".join(f"{e.field or '(document)'}: {e.message}" for e in self.errors)
        super().__init__(f"configuration of {service!r} refused: {detail}")


def parse_document(service: str, raw: bytes) -> dict[str, Any]:
    """The JSON object in ``raw``; anything else is a :class:`ConfigDocumentError`."""
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise ConfigDocumentError(service, [FieldError("", f"larger than {MAX_DOCUMENT_BYTES} bytes")])
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigDocumentError(service, [FieldError("", f"not valid JSON: {exc}")]) from None
    return require_object(service, document)


def require_object(service: str, document: object) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigDocumentError(service, [FieldError("", "must be a JSON object")])
    return document


def secret_paths(document: object, prefix: str = "") -> list[str]:
    """The dotted path of every key, at any depth, whose name looks like a secret."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            path = f"{prefix}{key}"
            if is_secret_key(str(key)):
                found.append(path)
            found.extend(secret_paths(value, f"{path}."))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found.extend(secret_paths(value, f"{prefix}{index}."))
    return found


def refuse_secrets(service: str, document: Mapping[str, Any]) -> None:
    paths = secret_paths(document)
    if paths:
        message = "looks like a secret; secrets never live in the hub (use the vault or MT5_PASSWORD)"
        raise ConfigDocumentError(service, [FieldError(p, message) for p in paths])


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``: nested objects merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = deep_merge(below, value)
        else:
            merged[key] = value
    return merged


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def validate_document(
    service: str, schema: type[M], document: Mapping[str, Any], defaults: M | None = None
) -> M:
    """The ``schema`` model of ``document`` laid over ``defaults`` (or the schema's own defaults).

    Raises :class:`ConfigDocumentError` naming each field that is unknown, of the wrong type, out of
    bounds, or named like a secret.
    """
    refuse_secrets(service, document)
    if defaults is not None:
        base: dict[str, Any] = defaults.model_dump()
    else:
        try:
            base = schema().model_dump()
        except ValidationError:  # a schema with required fields: the document must be complete
            base = {}
    try:
        return schema.model_validate(deep_merge(base, document))
    except ValidationError as exc:
        errors = [FieldError(_field(e["loc"]), e["msg"]) for e in exc.errors(include_url=False)]
        raise ConfigDocumentError(service, errors) from None
