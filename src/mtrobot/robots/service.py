"""The robot host as a component of an agent: everything it needs from the bus, wired in one place.

- the portfolio: the hub key ``portfolio.{account}`` (``PortfolioConfig``), read at start and watched, so
  a change the trader saves is hot-loaded;
- orders: published to JetStream on ``orders.submitted.{account}.{symbol}`` with ``Nats-Msg-Id``
  ``{account}/{order_id}`` (the same id again is dropped by the stream's duplicate window);
- the robots' fills and order updates: ``broker.fill.{account}.>`` and ``broker.order.{account}.>``;
- RobotEvents for the activity log: ``robots.event.{account}``;
- market data: through the agent's terminal link (the connector's ``BrokerLink``), given as a callable
  because the session's link exists only once the connector started.

The agent adds it after the connector (``async start()`` / ``async stop()``) and routes the trader's
``pause`` / ``resume`` / ``flatten`` to :attr:`host`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import ValidationError

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.core.events import Fill, OrderUpdate, RobotEvent
from mtrobot.core.orders import OrderRequest
from mtrobot.hub.client import ConfigClient
from mtrobot.hub.schemas import PortfolioConfig
from mtrobot.logging import get_logger
from mtrobot.robots.catalogue import Catalogue
from mtrobot.robots.host import HostOptions, RobotHost
from mtrobot.robots.market import CallOutcome, MarketDataError, TerminalCalls, TerminalMarketData

log = get_logger(__name__)
PUBLISH_TIMEOUT_S = 5.0
M = TypeVar("M", Fill, OrderUpdate)


class LinkCalls:
    """:class:`TerminalCalls` over whatever link the agent's session has right now."""

    def __init__(self, link: Callable[[], TerminalCalls | None]) -> None:
        self._link = link

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> CallOutcome:
        link = self._link()
        if link is None:
            raise MarketDataError("the agent has no terminal session yet")
        return await link.call(operation, *args, **kwargs)


class RobotService:
    def __init__(
        self,
        account: str,
        nc: Client,
        link: Callable[[], TerminalCalls | None],
        catalogue: Catalogue,
        *,
        options: HostOptions | None = None,
    ) -> None:
        self.account = account
        self._nc = nc
        self._js = nc.jetstream(timeout=PUBLISH_TIMEOUT_S)
        self._config = ConfigClient(
            subjects.portfolio_service(account), PortfolioConfig(), nc=nc, register=False
        )
        self.host = RobotHost(
            account,
            TerminalMarketData(LinkCalls(link)),
            self._submit,
            catalogue,
            on_event=self._publish_event,
            options=options,
        )
        self._subscriptions: list[Any] = []

    async def start(self) -> None:
        await self._config.init_async()
        await self.host.set_portfolio(await self._config.get_config())
        self._config.on_change(self.host.set_portfolio)
        self._subscriptions = [
            await self._nc.subscribe(subjects.broker_fill_of(self.account), cb=self._on_fill),
            await self._nc.subscribe(subjects.broker_order_of(self.account), cb=self._on_update),
        ]
        await self.host.start()

    async def stop(self) -> None:
        await self.host.stop()
        for subscription in self._subscriptions:
            with contextlib.suppress(nats.errors.Error):  # the connection is closing anyway
                await subscription.unsubscribe()
        self._subscriptions = []
        await self._config.close()

    async def _submit(self, request: OrderRequest) -> None:
        subject = subjects.orders_submitted(request.account, request.symbol)
        headers = {"Nats-Msg-Id": f"{request.account}/{request.order_id}"}
        await self._js.publish(subject, encode(request), headers=headers, timeout=PUBLISH_TIMEOUT_S)

    async def _publish_event(self, event: RobotEvent) -> None:
        await self._nc.publish(subjects.robot_event(self.account), encode(event))

    async def _on_fill(self, msg: Msg) -> None:
        fill = _read(Fill, msg)
        if fill is not None:
            await self.host.on_fill(fill)

    async def _on_update(self, msg: Msg) -> None:
        update = _read(OrderUpdate, msg)
        if update is not None:
            await self.host.on_order_update(update)


def _read(model: type[M], msg: Msg) -> M | None:
    try:
        return decode(model, msg.data)
    except ValidationError:
        log.warning("unreadable broker event", subject=msg.subject)
        return None
