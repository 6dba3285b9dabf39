"""Portfolios in the hub: the document an agent hot-loads (key ``portfolio.{account}`` of ``central_hub``)."""

from __future__ import annotations

from typing import Any

import nats.errors

from mtrobot.bus import subjects
from mtrobot.hub.errors import BusUnavailable as HubUnavailable
from mtrobot.hub.store import HubStore
from mtrobot.logging import get_logger
from mtrobot.web.bus import BusUnavailable
from mtrobot.web.state import AppState

log = get_logger(__name__)


async def publish_portfolio(state: AppState, account_id: str, document: dict[str, Any]) -> int | None:
    """Write the portfolio to the hub; its revision, or None when the bus or the hub did not answer (the
    database keeps it, and the agent is given it when it next starts)."""
    try:
        nc = await state.bus.client()
        store = HubStore(nc.jetstream(timeout=state.options.bus_timeout_s))
        return await store.put(subjects.portfolio_service(account_id), document)
    except (BusUnavailable, HubUnavailable, TimeoutError, nats.errors.Error) as exc:
        log.warning("portfolio saved but not delivered to the hub", account=account_id, error=repr(exc))
        return None
