"""One codec for every message on the bus: pydantic models as compact JSON bytes."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(exclude_none=False).encode()


def decode(model: type[M], data: bytes) -> M:
    """Parse ``data`` into ``model``; raises ``pydantic.ValidationError`` naming every bad field."""
    return model.model_validate_json(data)
