"""NATS decentralized auth without ``nsc``: nkeys (ed25519) and the small JWT format nats-server checks.

A NATS JWT is ``base64url(header).base64url(claims).base64url(signature)``, signed with the issuer's nkey
(algorithm ``ed25519-nkey``). Operators sign accounts, accounts sign their users. The ``.creds`` file a client
connects with holds a user JWT and that user's seed, in the format ``nats --creds`` reads.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nkeys

from mtrobot.files import PRIVATE, write_atomically

OPERATOR = nkeys.PREFIX_BYTE_OPERATOR
ACCOUNT = nkeys.PREFIX_BYTE_ACCOUNT
USER = nkeys.PREFIX_BYTE_USER

_HEADER = {"typ": "JWT", "alg": "ed25519-nkey"}


@dataclass(frozen=True)
class NKey:
    """One nkey pair: ``seed`` is the secret (``S...``), ``public`` its name (``O...``/``A...``/``U...``)."""

    seed: str

    @classmethod
    def generate(cls, kind: int) -> NKey:
        return cls(nkeys.encode_seed(secrets.token_bytes(32), kind).decode())

    @property
    def public(self) -> str:
        return str(nkeys.from_seed(self.seed.encode()).public_key.decode())

    def sign(self, data: bytes) -> bytes:
        return bytes(nkeys.from_seed(self.seed.encode()).sign(data))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def encode(
    issuer: NKey, subject: str, name: str, nats: dict[str, Any], *, issued_at: int | None = None
) -> str:
    """A signed JWT whose ``nats`` claims are ``nats`` (``type`` and ``version`` included by the caller)."""
    claims: dict[str, Any] = {
        "jti": "",
        "iat": int(time.time()) if issued_at is None else issued_at,
        "iss": issuer.public,
        "name": name,
        "sub": subject,
        "nats": nats,
    }
    # The id is a hash of the claims, as the Go library computes it (the server only needs it unique).
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).rstrip(b"=").decode()
    signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signing_input}.{_b64(issuer.sign(signing_input.encode()))}"


def decode_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, not verified (for tests and ``mtrobot status``)."""
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result


def creds_text(user_jwt: str, user: NKey) -> str:
    """The standard ``.creds`` file content (nats CLI, nats-py ``user_credentials``)."""
    return (
        "-----BEGIN NATS USER JWT-----\n"
        f"{user_jwt}\n"
        "------END NATS USER JWT------\n\n"
        "************************* IMPORTANT *************************\n"
        "NKEY Seed printed below can be used to sign and prove identity.\n"
        "NKEYs are sensitive and should be treated as secrets.\n\n"
        "-----BEGIN USER NKEY SEED-----\n"
        f"{user.seed}\n"
        "------END USER NKEY SEED------\n\n"
        "*************************************************************\n"
    )


def jwt_of_creds(text: str) -> str:
    """The user JWT inside ``.creds`` content."""
    lines = text.splitlines()
    return lines[lines.index("-----BEGIN NATS USER JWT-----") + 1].strip()


def write_secret(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (0600 from creation: never briefly world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomically(path, text, mode=PRIVATE)
