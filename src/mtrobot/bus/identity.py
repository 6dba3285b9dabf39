"""Bus identities: which credentials each service connects with, and each agent's own NATS account.

- Embedded bus (``mtrobot up`` without ``MTROBOT_NATS_URL``): :func:`prepare_embedded` mints one user per
  service into ``DATA_DIR/run/nats-{service}.creds`` and the operator's ``DATA_DIR/run/nats-admin.creds``
  (0600); :func:`service_creds` finds them. :class:`BusAuthority` gives each agent its own account.
- External bus (``MTROBOT_NATS_URL``): every service uses ``MTROBOT_NATS_CREDS`` (or none); the platform
  cannot verify the server's per-agent permissions and says so (:func:`external_warning`).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats.errors

from mtrobot.bus import layout, subjects
from mtrobot.bus.authority import Trust, push_claims, server_config_lines
from mtrobot.bus.jwt import write_secret
from mtrobot.logging import get_logger
from mtrobot.settings import Settings

log = get_logger(__name__)

PROBE_TIMEOUT_S = 10.0
PROBE_REPEAT_S = 0.05

EXTERNAL_WARNING = (
    "external NATS (MTROBOT_NATS_URL): per-agent bus permissions are NOT verified by mtrobot; "
    "apply the layout of docs/security.md on that server"
)


def auth_dir(settings: Settings) -> Path:
    return settings.nats_store_dir / "auth"


def resolver_dir(settings: Settings) -> Path:
    return settings.nats_store_dir / "jwt"


def creds_path(settings: Settings, identity: str) -> Path:
    """``DATA_DIR/run/nats-{identity}.creds``; ``admin`` is the operator's (DESIGN.md 3.2)."""
    return settings.run_dir / f"nats-{identity}.creds"


def service_creds(settings: Settings, name: str) -> str | None:
    """The creds file ``name`` (web, hub, recorder, supervisor, launcher) connects with, or None.

    ``MTROBOT_NATS_CREDS`` wins when set (an external bus); else the file ``mtrobot up`` minted for this
    service on the embedded bus; None on an external bus without credentials."""
    if settings.nats_creds is not None:
        return str(settings.nats_creds)
    path = creds_path(settings, name)
    return str(path) if path.exists() else None


def service_inbox(name: str) -> str:
    return layout.inbox_prefix(name)


def verified(settings: Settings) -> bool:
    """True when this data dir's bus is the embedded one in JWT mode: the per-agent accounts are ours."""
    trusted = (auth_dir(settings) / "operator.nk").exists() and creds_path(settings, layout.ADMIN).exists()
    return settings.nats_creds is None and trusted


def external_warning(settings: Settings) -> str | None:
    """The loud line for logs and ``mtrobot status`` when the bus is not ours to verify."""
    return None if verified(settings) else EXTERNAL_WARNING


def prepare_embedded(settings: Settings) -> str:
    """Keys, account JWTs and every service's creds for the embedded server; returns its auth config.

    Each start revokes every platform user issued before it, so a copied creds file of an earlier run is
    worthless; the files of this run are written 0600 from creation."""
    trust = Trust(auth_dir(settings))
    with trust.locked():
        issued_at = trust.revoke_all("platform")
        config = server_config_lines(trust, resolver_dir(settings))
        for name in (*layout.SERVICES, layout.ADMIN):
            write_secret(creds_path(settings, name), trust.service_user(name, issued_at).creds)
    return config


def forget_service_creds(settings: Settings) -> None:
    """Remove this data dir's creds files (the bus they were minted for is gone)."""
    for name in (*layout.SERVICES, layout.ADMIN):
        creds_path(settings, name).unlink(missing_ok=True)


@dataclass(frozen=True)
class AgentBusGrant:
    """What an agent connects with: ``creds`` is the ``.creds`` *content* (the agent may not see the data
    dir), ``inbox_prefix`` its private reply prefix. Both None on an external bus without credentials."""

    creds: str | None
    inbox_prefix: str | None

    def to_handoff(self) -> dict[str, str | None]:
        return {"creds": self.creds, "inbox_prefix": self.inbox_prefix}


class BusAuthority:
    """Adds, revokes and removes agents' bus identities while the bus runs; creates their consumers.

    Used by whoever starts agents (the supervisor; the launcher for the demo connector until then), with
    that process's own platform connection ``nc`` for JetStream."""

    def __init__(self, settings: Settings, url: str, nc: Any) -> None:
        self.settings = settings
        self.url = url
        self.nc = nc
        self._trust = Trust(auth_dir(settings)) if verified(settings) else None

    @property
    def verified(self) -> bool:
        """True on the embedded bus, where the per-agent accounts are ours and enforced."""
        return self._trust is not None

    async def prepare_agent(self, account: str, *, own_account: bool = True) -> AgentBusGrant:
        """The agent's account live (claims pushed), a fresh user (older ones revoked), its consumer made.

        On an external bus (not verified) the agent connects with the operator's ``MTROBOT_NATS_CREDS``
        (or none): it holds the services' rights there anyway, so making its consumer here would protect
        nothing; its first ``pull_subscribe`` creates it, and the consumer still appears only once the
        agent is ready to take orders, as outside tools (the contract checks) expect."""
        from mtrobot.bus.connect import ensure_order_consumer

        if not self.verified:
            path = self.settings.nats_creds
            creds = await asyncio.to_thread(Path(path).read_text) if path else None
            return AgentBusGrant(creds=creds, inbox_prefix=None)
        assert self._trust is not None
        trust = self._trust
        if not own_account:  # the transitional layout, for tests of what it does not protect
            with trust.locked():
                user = trust.platform_agent_user(account)
                await self._push([trust.platform_jwt()])  # the agent's previous user revoked
            await ensure_order_consumer(self.nc.jetstream(timeout=5), account)
            await self._until_live(account, user.creds)
            log.info("agent bus identity ready", account=account, user=user.public, account_of_its_own=False)
            return AgentBusGrant(creds=user.creds, inbox_prefix=layout.agent_inbox_prefix(account))
        with trust.locked():
            new_account = account not in trust.agents()
            issued_at = trust.revoke_all(account)
            await self._push([trust.agent_jwt(account), *([trust.platform_jwt()] if new_account else [])])
            user = trust.agent_user(account, issued_at)
        await ensure_order_consumer(self.nc.jetstream(timeout=5), account)
        await self._until_live(account, user.creds)
        log.info("agent bus identity ready", account=account, user=user.public, new_account=new_account)
        return AgentBusGrant(creds=user.creds, inbox_prefix=layout.agent_inbox_prefix(account))

    async def revoke_agent(self, account: str) -> None:
        """Every user of the agent's account is disconnected now and can never connect again."""
        if self._trust is None:
            return
        with self._trust.locked():
            public = self._trust.platform_agent_public(account)
            if public is not None:
                self._trust.revoke_user(public)
                await self._push([self._trust.platform_jwt()])
            if account in self._trust.agents():
                self._trust.revoke_all(account)
                await self._push([self._trust.agent_jwt(account)])
        log.info("agent bus identity revoked", account=account)

    async def _until_live(self, account: str, creds: str) -> None:
        """Return once the new identity works both ways: a probe it publishes reaches this platform
        connection (the platform's import of its account is live: right after a push it was seen not to be
        for the first message) and a request through its own imports is answered (its snapshot key)."""
        from nats.js.errors import KeyNotFoundError

        from mtrobot.bus.connect import connect, own_key_value

        probe = subjects.bus_probe(account)
        arrived = asyncio.Event()

        async def on_probe(_msg: Any) -> None:
            arrived.set()

        sub = await self.nc.subscribe(probe, cb=on_probe)
        agent = await connect(
            self.url,
            f"probe-{account}",
            creds=creds,
            inbox_prefix=layout.agent_inbox_prefix(account),
            allow_reconnect=False,
        )
        try:
            await self.nc.flush(timeout=PROBE_TIMEOUT_S)
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                while not arrived.is_set():
                    await agent.publish(probe, b"")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(arrived.wait(), PROBE_REPEAT_S)
                kv = own_key_value(agent.jetstream(timeout=PROBE_REPEAT_S), subjects.SNAPSHOTS_BUCKET)
                while True:
                    try:
                        await kv.get(account)
                    except KeyNotFoundError:
                        pass  # answered: no snapshot yet
                    except (TimeoutError, nats.errors.Error):
                        continue  # not answered yet
                    break
        finally:
            await agent.close()
            await sub.unsubscribe()

    async def _push(self, tokens: list[str]) -> None:
        from mtrobot.bus.connect import connect

        assert self._trust is not None
        creds = self._trust.system_user().creds
        nc = await connect(self.url, "mtrobot-claims", creds=creds, allow_reconnect=False)
        try:
            for token in tokens:
                await push_claims(nc, token)
        finally:
            await nc.close()
