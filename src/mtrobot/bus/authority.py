"""The embedded bus's trust: operator, system and platform keys on disk, identities minted from them.

Keys live in ``DATA_DIR/nats/auth`` (0700; seeds 0600) and stay the same across restarts: JetStream keeps
each account's streams under its public key. Accounts change while the server runs by pushing their signed
claims to ``$SYS.REQ.CLAIMS.UPDATE`` (live in well under a second, no reload, no client dropped); a
revocation is such an update too, and the server disconnects the revoked users at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mtrobot.bus import jwt, layout
from mtrobot.bus.jwt import NKey
from mtrobot.core.errors import FatalError
from mtrobot.logging import get_logger

log = get_logger(__name__)

CLAIMS_UPDATE = "$SYS.REQ.CLAIMS.UPDATE"


@dataclass(frozen=True)
class Identity:
    """A user of an account: its ``.creds`` content and public key."""

    name: str
    account: str
    public: str
    creds: str


class Trust:
    """The keys of the embedded bus (operator, ``SYS``, ``PLATFORM``, one account per agent)."""

    def __init__(self, auth_dir: Path) -> None:
        self.dir = auth_dir
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.operator = self._key("operator", jwt.OPERATOR)
        self.system = self._key("sys", jwt.ACCOUNT)
        self.platform = self._key("platform", jwt.ACCOUNT)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """One writer of the accounts' claims at a time (the launcher and the supervisor share the dir)."""
        with open(self.dir / "lock", "a+") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            yield

    def _key(self, name: str, kind: int, folder: Path | None = None) -> NKey:
        path = (folder or self.dir) / f"{name}.nk"
        if path.exists():
            return NKey(path.read_text().strip())
        key = NKey.generate(kind)
        jwt.write_secret(path, key.seed + "\n")
        return key

    # -- agents' accounts ---------------------------------------------------------------------------

    @property
    def _agents_dir(self) -> Path:
        return self.dir / "agents"

    def agent_key(self, account: str) -> NKey:
        layout.agent_account_name(account)  # validates the id before it names a file
        self._agents_dir.mkdir(exist_ok=True, mode=0o700)
        return self._key(account, jwt.ACCOUNT, self._agents_dir)

    def agents(self) -> dict[str, str]:  # accounts of their own (``*.nk``), not transitional users
        """Every agent account known here: account id -> NATS account public key."""
        if not self._agents_dir.exists():
            return {}
        return {p.stem: NKey(p.read_text().strip()).public for p in sorted(self._agents_dir.glob("*.nk"))}

    def forget_agent(self, account: str) -> None:
        for suffix in (".nk", ".json"):
            (self._agents_dir / f"{account}{suffix}").unlink(missing_ok=True)

    def _revocations_path(self, name: str) -> Path:
        if name == "platform":
            return self.dir / "platform.revocations.json"
        return self._agents_dir / f"{name}.json"

    def _revocations(self, name: str) -> dict[str, int]:
        path = self._revocations_path(name)
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def revoke_all(self, name: str) -> int:
        """Revoke every user of account ``name`` (``platform`` or an agent id) issued so far; returns the
        issue time to give the next user, which this revocation does not cover.

        The server revokes by issue time in whole seconds (``iat`` at or before the revocation), so the
        revocation time only moves forward and users are issued one second after it: a hand-off repeated
        within the same second still revokes the one before."""
        ts = max(now_s(), self._revocations(name).get("*", 0) + 1)
        jwt.write_secret(self._revocations_path(name), json.dumps({"*": ts}))
        return ts + 1

    def revoke_user(self, public: str) -> None:
        """Revoke one platform user now (an agent's user in the platform account, transitional layout)."""
        revocations = self._revocations("platform")
        revocations[public] = now_s() + 3600  # one key: any time at or after its issue time revokes it
        jwt.write_secret(self._revocations_path("platform"), json.dumps(revocations))

    def platform_agent_user(self, account: str) -> Identity:
        """The agent's user in the platform account (until agents have their own); the previous one of
        the same agent is revoked (its public key is kept in ``agents/{account}.user``)."""
        layout.agent_account_name(account)
        self._agents_dir.mkdir(exist_ok=True, mode=0o700)
        marker = self._agents_dir / f"{account}.user"
        if marker.exists():
            self.revoke_user(marker.read_text().strip())
        permissions = layout.platform_agent_permissions(account)
        user = self._user(
            f"agent-{account}", self.platform, layout.PLATFORM_ACCOUNT, permissions, now_s() + 2
        )
        jwt.write_secret(marker, user.public)
        return user

    def platform_agent_public(self, account: str) -> str | None:
        marker = self._agents_dir / f"{account}.user"
        return marker.read_text().strip() if marker.exists() else None

    # -- claims -------------------------------------------------------------------------------------

    def operator_jwt(self) -> str:
        claims = {"type": "operator", "version": 2, "system_account": self.system.public}
        return jwt.encode(self.operator, self.operator.public, "mtrobot", claims)

    def system_jwt(self) -> str:
        claims = layout.account_claims(layout.AccountWiring(), jetstream=False)
        return jwt.encode(self.operator, self.system.public, layout.SYSTEM_ACCOUNT, claims)

    def platform_jwt(self) -> str:
        wiring = layout.platform_wiring(self.agents())
        claims = layout.account_claims(wiring, jetstream=True, revocations=self._revocations("platform"))
        return jwt.encode(self.operator, self.platform.public, layout.PLATFORM_ACCOUNT, claims)

    def agent_jwt(self, account: str) -> str:
        key = self.agent_key(account)
        wiring = layout.agent_wiring(account, self.platform.public)
        claims = layout.account_claims(wiring, jetstream=False, revocations=self._revocations(account))
        return jwt.encode(self.operator, key.public, layout.agent_account_name(account), claims)

    def preload(self) -> dict[str, str]:
        """Every account's JWT, for the server config's ``resolver_preload``."""
        jwts = {self.system.public: self.system_jwt(), self.platform.public: self.platform_jwt()}
        for account in self.agents():
            jwts[self.agent_key(account).public] = self.agent_jwt(account)
        return jwts

    # -- users --------------------------------------------------------------------------------------

    def _user(
        self,
        name: str,
        account: NKey,
        account_name: str,
        permissions: layout.Permissions,
        issued_at: int | None = None,
    ) -> Identity:
        user = NKey.generate(jwt.USER)
        token = jwt.encode(account, user.public, name, layout.user_claims(permissions), issued_at=issued_at)
        return Identity(name, account_name, user.public, jwt.creds_text(token, user))

    def service_user(self, service: str, issued_at: int | None = None) -> Identity:
        """A platform user for ``service`` (one of ``layout.SERVICES``, or ``layout.ADMIN``)."""
        permissions = layout.service_permissions(service)
        return self._user(service, self.platform, layout.PLATFORM_ACCOUNT, permissions, issued_at)

    def system_user(self) -> Identity:
        """A system-account user: the only one that may push accounts' claims."""
        return self._user("claims", self.system, layout.SYSTEM_ACCOUNT, layout.Permissions())

    def agent_user(self, account: str, issued_at: int | None = None) -> Identity:
        return self._user(
            f"agent-{account}",
            self.agent_key(account),
            layout.agent_account_name(account),
            layout.agent_permissions(account),
            issued_at,
        )


def server_config_lines(trust: Trust, resolver_dir: Path) -> str:
    """The nats-server configuration of decentralized auth: anonymous clients are refused."""
    resolver_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    operator_path = trust.dir / "operator.jwt"
    operator_path.write_text(trust.operator_jwt())
    preload = ",\n".join(f'  {public}: "{token}"' for public, token in trust.preload().items())
    return (
        f'operator: "{operator_path}"\n'
        f"system_account: {trust.system.public}\n"
        f'resolver {{\n  type: full\n  dir: "{resolver_dir}"\n  allow_delete: true\n'
        '  interval: "2m"\n  timeout: "1.9s"\n}\n'
        f"resolver_preload {{\n{preload}\n}}\n"
    )


async def push_claims(nc: object, token: str, timeout: float = 5.0) -> None:
    """Publish one account's signed claims to the server (through a system-account connection)."""
    from nats.aio.client import Client

    assert isinstance(nc, Client)
    reply = await nc.request(CLAIMS_UPDATE, token.encode(), timeout=timeout)
    answer = json.loads(reply.data or b"{}")
    if "error" in answer:
        raise FatalError(f"the bus refused an account update: {answer['error'].get('description', answer)}")
    log.debug("account claims pushed", account=answer.get("data", {}).get("account"))


def now_s() -> int:
    return int(time.time())
