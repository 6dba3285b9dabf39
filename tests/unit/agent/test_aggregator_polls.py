"""When the aggregator reads the terminal: an order's update polls at once only when the broker answered."""

from __future__ import annotations

import asyncio

from mtrobot.agent.aggregator import Aggregator
from mtrobot.core.events import AccountSnapshot, ConnectionState, OrderUpdate
from mtrobot.core.lifecycle import OrderState


class CountingReader:
    """An idle account's terminal that counts the polls (one ``account_info`` each)."""

    def __init__(self) -> None:
        self.polls = 0

    def connection(self) -> ConnectionState:
        return ConnectionState.CONNECTED

    async def account_info(self) -> None:
        self.polls += 1

    async def positions_get(self) -> tuple[()]:
        return ()

    async def orders_get(self) -> tuple[()]:
        return ()

    async def history_deals_get(self, date_from: int, date_to: int) -> tuple[()]:
        return ()


class NoSink:
    async def last_seq(self) -> int | None:
        return None

    async def publish(self, snapshot: AccountSnapshot) -> None:
        pass


async def turns(n: int = 20) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_an_order_update_reads_the_terminal_at_once_only_once_the_broker_answered() -> None:
    reader = CountingReader()
    aggregator = Aggregator("acc", reader, NoSink(), poll_idle_s=60, poll_min_s=0)
    await aggregator.start()
    try:
        await turns()
        started = reader.polls  # at start (and again on connecting); the next regular one is a minute away
        assert started >= 1

        def update(n: int, state: OrderState) -> None:
            aggregator.on_order_update(
                OrderUpdate(order_id=f"o{n}", account="acc", symbol="EURUSD", state=state)
            )

        for n, state in enumerate((OrderState.RECEIVED, OrderState.VALIDATED, OrderState.SENT)):
            update(n, state)
            await turns()
        assert reader.polls == started  # nothing at the broker changed yet
        for n, state in enumerate((OrderState.ACCEPTED, OrderState.FILLED, OrderState.UNKNOWN), start=3):
            update(n, state)
            await turns()
        assert reader.polls == started + 3
        assert aggregator.events_in >= 6
    finally:
        await aggregator.stop()
