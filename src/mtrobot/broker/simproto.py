"""Wire protocol between the ``sim`` terminal backend and the simulated trade server.

Frames are a 4-byte big-endian length followed by a msgpack map. Every map carries ``"v"``, the protocol
version. Client to server: ``{"v", "id", "t": "hello"|"call"|"admin", "op", "a": [args], "k": {kwargs}}``.
Server to client: ``{"v", "id", "r": result, "e": [code, description]}`` where ``e`` is the
``last_error()`` the call leaves behind. MT5 structures travel as ``{"$": "AccountInfo", "f": [...]}``,
numpy results as ``{"$": "ndarray", "k": "rates"|"ticks", "b": raw bytes}``.
"""

from __future__ import annotations

import struct
import sys
from typing import Any

import msgpack

from mtrobot.broker.structures import STRUCTURES

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">I")
MAX_FRAME = 8 * 1024 * 1024
"""Largest frame either side accepts (a copy_ticks answer of the whole tick buffer fits)."""
MAX_REQUEST_FRAME = 256 * 1024
"""Largest frame the server accepts from a client."""


class FrameError(ValueError):
    """A frame that cannot be decoded (bad length, not msgpack, not a map)."""


def pack_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    return HEADER.pack(len(body)) + body


def unpack_body(body: bytes) -> dict[str, Any]:
    try:
        message = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise FrameError(f"not a msgpack frame: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise FrameError("a frame must be a map")
    return message


def encode_value(value: Any) -> Any:
    """Result value -> msgpack-friendly data (structures tagged by name, arrays as raw bytes)."""
    if isinstance(value, tuple) and type(value).__name__ in STRUCTURES and hasattr(value, "_fields"):
        return {"$": type(value).__name__, "f": [encode_value(v) for v in value]}
    if _is_array(value):
        from mtrobot.broker.arrays import RATES_DTYPE

        kind = "rates" if value.dtype == RATES_DTYPE else "ticks"
        return {"$": "ndarray", "k": kind, "b": value.tobytes()}
    if isinstance(value, list | tuple):
        return [encode_value(v) for v in value]
    return value


def decode_value(value: Any) -> Any:
    """Inverse of :func:`encode_value`; lists come back as tuples, like the real module's results."""
    if isinstance(value, dict):
        tag = value.get("$")
        if tag == "ndarray":
            return _array(value["k"], value["b"])
        cls = STRUCTURES.get(tag) if isinstance(tag, str) else None
        if cls is not None:
            return cls(*(decode_value(v) for v in value["f"]))
        return {k: decode_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(decode_value(v) for v in value)
    return value


def _is_array(value: Any) -> bool:
    """A numpy array, without importing numpy: a process that never loaded it holds no array."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def _array(kind: str, raw: bytes) -> Any:
    """A rates or ticks array from its bytes; numpy is loaded here, by the first array that arrives."""
    import numpy as np

    from mtrobot.broker.arrays import DTYPES

    return np.frombuffer(raw, dtype=DTYPES[kind]).copy()
