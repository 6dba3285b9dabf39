"""Parity: the same robot over the same price file sends the same orders (time, side, volume) live as in
the backtest, order for order.

"Live" here is everything an agent runs, in process: the robot host with its own threads and tick pump,
reading through a TCP terminal on a simulator replaying the file; its orders published to JetStream on a
real NATS server; the real connector executing them on that simulator; the fills and order updates
coming back over the bus. The test moves the simulator's clock one replayed bar at a time and waits for
the host to be done with it (a condition, not a duration).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client
from nats.aio.msg import Msg
from pydantic import SecretStr

from mtrobot.bus import subjects
from mtrobot.bus.codec import decode, encode
from mtrobot.connector.backoff import Backoff
from mtrobot.connector.options import ConnectorOptions
from mtrobot.connector.service import Connector, ConnectorParts
from mtrobot.core.events import Fill, OrderUpdate
from mtrobot.core.orders import OrderRequest
from mtrobot.robots.backtest.data import load_prices, with_spread
from mtrobot.robots.backtest.engine import BacktestSpec, backtest_config, portfolio_of, run_backtest
from mtrobot.robots.catalogue import Catalogue
from mtrobot.robots.host import HostOptions, RobotHost
from mtrobot.robots.market import DirectCalls, TerminalMarketData
from mtrobot.robots.outbox import SentOrder
from mtrobot.settings import Settings
from mtrobot.sim.harness import sim_harness

from .rig import until

PASSWORD = "Parity-pass1"
SPEC = BacktestSpec(
    robot="ma_cross",
    symbol="EURUSD",
    params={"fast": 3, "slow": 8},
    date_from=datetime(2024, 1, 2, tzinfo=UTC),
    date_to=datetime(2024, 1, 5, tzinfo=UTC),
)


def shape(orders: list[SentOrder]) -> list[tuple[int, str, str, float | None]]:
    return [(o.time_msc, o.action, o.side, o.volume) for o in orders]


async def test_live_on_a_replaying_simulator_sends_the_backtests_orders_order_for_order(
    nats_url: str, nc: Client, tmp_path: Path
) -> None:
    backtest = await run_backtest(SPEC, Catalogue())
    assert len(backtest.sent) >= 6, "the window should hold several crosses"

    config, symbol = backtest_config(SPEC)
    ticks = with_spread(
        load_prices("EURUSD", "H1", symbol.point, date_from=SPEC.date_from, date_to=SPEC.date_to).ticks,
        symbol.point,
        None,
        symbol.spread_points,
    )
    start = datetime.fromtimestamp(ticks[0][0] / 1000, UTC)
    account = "parity-" + uuid.uuid4().hex[:6]
    async with sim_harness(start=start, config=config) as sim:
        server = config.servers[0].name
        sim.broker.load_replay(server, "EURUSD", ticks)
        login = await sim.admin.create_account(
            server=server, password=PASSWORD, investor_password="Parity-view1", balance=SPEC.balance
        )
        options = ConnectorOptions(
            login=login, server=server, retry_backoff=Backoff(0.01, 0.05), keepalive_s=1.0
        )
        connector = Connector(
            account,
            Settings(data_dir=tmp_path / "data"),
            SecretStr(PASSWORD),
            options,
            ConnectorParts(sim.terminal),
            nats_url=nats_url,
            use_hub=False,
        )
        await connector.start()
        assert await connector.session.wait_ready(10)
        terminal = sim.terminal()
        assert await terminal.initialize(login=login, password=PASSWORD, server=server)
        js = nc.jetstream(timeout=5)  # type: ignore[attr-defined]

        async def submit(request: OrderRequest) -> None:
            subject = subjects.orders_submitted(request.account, request.symbol)
            await js.publish(
                subject, encode(request), headers={"Nats-Msg-Id": f"{account}/{request.order_id}"}
            )

        host = RobotHost(
            account,
            TerminalMarketData(DirectCalls(terminal)),
            submit,
            Catalogue(),
            portfolio_of(SPEC),
            options=HostOptions(poll_interval_s=0.01, hook_timeout_s=5.0),
        )

        async def on_fill(msg: Msg) -> None:
            await host.on_fill(decode(Fill, msg.data))

        async def on_update(msg: Msg) -> None:
            await host.on_order_update(decode(OrderUpdate, msg.data))

        subs = [
            await nc.subscribe(f"broker.fill.{account}.>", cb=on_fill),  # type: ignore[attr-defined]
            await nc.subscribe(f"broker.order.{account}.>", cb=on_update),  # type: ignore[attr-defined]
        ]
        await host.start()
        try:
            bar_ends: dict[int, int] = {}  # each replayed bar, by its last tick
            for t, _, _ in ticks:
                bar_ends[t // 3_600_000] = t
            for moment in sorted(bar_ends.values()):
                now = sim.broker.servers[server].now_ms()
                if moment > now:
                    await sim.admin.advance_clock(seconds=(moment - now) / 1000)

                def done(moment: int = moment) -> bool:
                    status = host.robots()[0]
                    return host.market_time_ms >= moment and status["orders_in_flight"] == 0

                assert await until(done), (moment, host.robots())
                await host.drain()
                assert await until(lambda: host.robots()[0]["orders_in_flight"] == 0)
        finally:
            await host.stop()
            for sub in subs:
                await sub.unsubscribe()
            await terminal.shutdown()
            await connector.stop()
    assert shape(list(host.sent)) == shape(backtest.sent)
