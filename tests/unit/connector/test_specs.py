"""A symbol's specification is read once per session and TTL, and never trusted for a refusal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import OrderCheckResult, OrderSendResult, SymbolInfo, TradeRequest
from mtrobot.connector.specs import SymbolMemory
from mtrobot.core.lifecycle import OrderState

from .fake_terminal import SYMBOL, FakeTerminal, _zeros
from .test_executor import Rig

S = OrderState


class CountingTerminal(FakeTerminal):
    """Counts ``symbol_info`` reads; the broker's trade mode and the next send's refusal can be changed."""

    def __init__(self, rig: Rig) -> None:
        super().__init__(rig.broker)
        self.spec_reads = 0
        self.trade_mode = mt5.SYMBOL_TRADE_MODE_FULL
        self.refuse_next_send: int | None = None

    async def symbol_info(self, symbol: str, /) -> SymbolInfo | None:
        self.spec_reads += 1
        return SYMBOL._replace(trade_mode=self.trade_mode)

    async def order_check(self, request: dict[str, Any], /) -> OrderCheckResult:
        if self.trade_mode == mt5.SYMBOL_TRADE_MODE_SHORTONLY and request["type"] == mt5.ORDER_TYPE_BUY:
            return _zeros(OrderCheckResult, retcode=mt5.TRADE_RETCODE_SHORT_ONLY, request=TradeRequest())
        return await super().order_check(request)

    async def order_send(self, request: dict[str, Any], /) -> OrderSendResult | None:
        if self.refuse_next_send is not None:
            code, self.refuse_next_send = self.refuse_next_send, None
            self.b.sends.append(dict(request))
            return self._result(code, request)
        return await super().order_send(request)


def counting(tmp_path: Path, **opts: Any) -> tuple[Rig, CountingTerminal]:
    rig = Rig(tmp_path, **opts)
    terminal = CountingTerminal(rig)
    rig.link.terminal = terminal
    return rig, terminal


async def test_the_specification_is_read_once_per_session(tmp_path: Path) -> None:
    rig, terminal = counting(tmp_path)
    for seq in range(1, 4):
        assert (await rig.submit(seq, order_id=f"o{seq}")).state is S.FILLED
    assert terminal.spec_reads == 1
    reconnected = CountingTerminal(rig)  # a reconnect is a new terminal: nothing of the old one is kept
    rig.link.terminal = reconnected
    assert (await rig.submit(4, order_id="o4")).state is S.FILLED
    assert reconnected.spec_reads == 1


async def test_a_trade_mode_changed_at_the_broker_is_read_again_before_refusing(tmp_path: Path) -> None:
    rig, terminal = counting(tmp_path)
    assert (await rig.submit(1, order_id="o1")).state is S.FILLED  # FULL remembered
    terminal.trade_mode = mt5.SYMBOL_TRADE_MODE_SHORTONLY  # the broker's own check refuses a buy
    refused = await rig.submit(2, order_id="o2")
    [error] = rig.events("error")
    assert refused.state is S.REJECTED and error["retcode"] == mt5.TRADE_RETCODE_SHORT_ONLY
    assert terminal.spec_reads == 2 and rig.broker.sends == [rig.broker.sends[0]]
    terminal.trade_mode = mt5.SYMBOL_TRADE_MODE_FULL  # short only is remembered, the broker trades again
    assert (await rig.submit(3, order_id="o3")).state is S.FILLED
    assert terminal.spec_reads == 3  # the local refusal was not trusted: read again, checked again


async def test_a_broker_refusal_about_the_symbols_rules_forgets_its_specification(tmp_path: Path) -> None:
    rig, terminal = counting(tmp_path, validate_before_send=False)
    assert (await rig.submit(1, order_id="o1")).state is S.FILLED
    terminal.refuse_next_send = mt5.TRADE_RETCODE_INVALID_FILL
    assert (await rig.submit(2, order_id="o2")).state is S.REJECTED
    assert terminal.spec_reads == 1
    assert (await rig.submit(3, order_id="o3")).state is S.FILLED
    assert terminal.spec_reads == 2


def test_a_specification_is_forgotten_after_its_ttl_and_with_its_session() -> None:
    now = [100.0]
    memory = SymbolMemory(ttl_s=1.0, clock=lambda: now[0])
    session, other = object(), object()
    memory.remember(session, "EURUSD", SYMBOL)
    now[0] = 100.9
    assert memory.spec(session, "EURUSD") is SYMBOL
    now[0] = 101.0
    assert memory.spec(session, "EURUSD") is None
    memory.remember(session, "EURUSD", SYMBOL)
    memory.mark_selected(session, "EURUSD")
    assert memory.spec(other, "EURUSD") is None and not memory.selected(other, "EURUSD")
    assert not memory.forget("EURUSD")
