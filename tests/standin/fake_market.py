"""The little trade world behind the stand-in module: one account, two symbols, positions, orders, deals.

It is not a simulator (that is ``mtrobot.sim``): it answers with correctly shaped, self-consistent values so
the backends can be proven to carry every field across. Prices are fixed quotes that a test may move; bars and
ticks are a deterministic function of time, so two calls for the same window return the same data.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mtrobot.broker import constants as c

from .ctypes_like import defaults

RATES_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("open", "<f8"),
        ("high", "<f8"),
        ("low", "<f8"),
        ("close", "<f8"),
        ("tick_volume", "<u8"),
        ("spread", "<i4"),
        ("real_volume", "<u8"),
    ]
)
TICKS_DTYPE = np.dtype(
    [
        ("time", "<i8"),
        ("bid", "<f8"),
        ("ask", "<f8"),
        ("last", "<f8"),
        ("volume", "<u8"),
        ("time_msc", "<i8"),
        ("flags", "<u4"),
        ("volume_real", "<f8"),
    ]
)
"""The dtypes the real package returns (MT5_REFERENCE.md §3.11), written here independently of ``mtrobot``
so the stand-in checks the backends instead of agreeing with them by construction."""

START_TIME = 1_790_000_000  # server clock at start (2026-09-21 13:33:20)
TICK_STEP_MS = 500


def timeframe_seconds(timeframe: int) -> int:
    if timeframe == c.TIMEFRAME_MN1:
        return 30 * 86_400
    if timeframe == c.TIMEFRAME_W1:
        return 7 * 86_400
    if timeframe & 0x4000:
        return (timeframe & 0x3FFF) * 3_600
    return timeframe * 60


@dataclass
class Market:
    """Quotes and the account's book. Every method may raise ``KeyError`` for an unknown symbol."""

    login: int = 5001
    server: str = "Standin-Demo"
    currency: str = "USD"
    leverage: int = 100
    balance: float = 10_000.0
    clock: int = START_TIME
    symbols: dict[str, dict[str, Any]] = field(default_factory=dict)
    positions: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    history_orders: list[dict[str, Any]] = field(default_factory=list)
    deals: list[dict[str, Any]] = field(default_factory=list)
    next_ticket: int = 700_001
    next_deal: int = 900_001

    def __post_init__(self) -> None:
        self.add_symbol("EURUSD", digits=5, bid=1.10000, ask=1.10012, base="EUR", profit="USD")
        self.add_symbol("USDJPY", digits=3, bid=150.000, ask=150.014, base="USD", profit="JPY")
        self.deals.append(self._deal_values(0, c.DEAL_TYPE_BALANCE, c.DEAL_ENTRY_IN, "", 0.0, 0.0, 0))
        self.deals[-1]["profit"] = self.balance
        self.deals[-1].update(time=self.clock - 86_400, time_msc=(self.clock - 86_400) * 1000)

    # ----- symbols and quotes -------------------------------------------------------------------
    def add_symbol(self, name: str, *, digits: int, bid: float, ask: float, base: str, profit: str) -> None:
        values = defaults("SymbolInfo")
        point = 10.0**-digits
        values.update(
            name=name,
            path=f"Forex\\{name}",
            description=f"{base} vs {profit}",
            digits=digits,
            point=point,
            bid=bid,
            ask=ask,
            bidhigh=bid,
            bidlow=bid,
            askhigh=ask,
            asklow=ask,
            time=self.clock,
            spread=round((ask - bid) / point),
            spread_float=True,
            select=True,
            visible=True,
            trade_calc_mode=c.SYMBOL_CALC_MODE_FOREX,
            trade_mode=c.SYMBOL_TRADE_MODE_FULL,
            trade_exemode=c.SYMBOL_TRADE_EXECUTION_MARKET,
            swap_mode=c.SYMBOL_SWAP_MODE_POINTS,
            swap_rollover3days=3,
            expiration_mode=15,
            filling_mode=c.SYMBOL_FILLING_FOK | c.SYMBOL_FILLING_IOC,
            order_mode=127,
            trade_tick_size=point,
            trade_tick_value=1.0,
            trade_tick_value_profit=1.0,
            trade_tick_value_loss=1.0,
            trade_contract_size=100_000.0,
            volume_min=0.01,
            volume_max=500.0,
            volume_step=0.01,
            margin_hedged=100_000.0,
            currency_base=base,
            currency_profit=profit,
            currency_margin=base,
            swap_long=-7.5,
            swap_short=2.1,
        )
        self.symbols[name] = values

    def quote(self, symbol: str) -> tuple[float, float]:
        info = self.symbols[symbol]
        return info["bid"], info["ask"]

    def set_quote(self, symbol: str, bid: float, ask: float) -> None:
        self.symbols[symbol].update(bid=bid, ask=ask, time=self.clock)

    def tick(self, symbol: str) -> dict[str, Any]:
        bid, ask = self.quote(symbol)
        return {
            "time": self.clock,
            "bid": bid,
            "ask": ask,
            "last": 0.0,
            "volume": 0,
            "time_msc": self.clock * 1000 + 250,
            "flags": c.TICK_FLAG_BID | c.TICK_FLAG_ASK | 0x80,
            "volume_real": 0.0,
        }

    # ----- money ---------------------------------------------------------------------------------
    def to_account(self, amount: float, currency: str, rate: float) -> float:
        return amount if currency == self.currency else amount / rate

    def margin(self, symbol: str, volume: float, price: float) -> float:
        info = self.symbols[symbol]
        notional = volume * info["trade_contract_size"] / self.leverage
        return round(notional if info["currency_margin"] == self.currency else notional * price, 2)

    def profit(
        self, order_type: int, symbol: str, volume: float, price_open: float, price_close: float
    ) -> float:
        info = self.symbols[symbol]
        sign = 1.0 if order_type == c.ORDER_TYPE_BUY else -1.0
        raw = sign * (price_close - price_open) * info["trade_contract_size"] * volume
        return round(self.to_account(raw, info["currency_profit"], price_close), 2)

    def account(self) -> dict[str, Any]:
        floating = sum(p["profit"] for p in self.refreshed_positions())
        used = sum(self.margin(p["symbol"], p["volume"], p["price_open"]) for p in self.positions.values())
        equity = round(self.balance + floating, 2)
        values = defaults("AccountInfo")
        values.update(
            login=self.login,
            trade_mode=c.ACCOUNT_TRADE_MODE_DEMO,
            leverage=self.leverage,
            limit_orders=200,
            margin_so_mode=c.ACCOUNT_STOPOUT_MODE_PERCENT,
            trade_allowed=True,
            trade_expert=True,
            margin_mode=c.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING,
            currency_digits=2,
            balance=self.balance,
            profit=round(floating, 2),
            equity=equity,
            margin=used,
            margin_free=round(equity - used, 2),
            margin_level=round(equity / used * 100, 2) if used else 0.0,
            margin_so_call=50.0,
            margin_so_so=30.0,
            name="Stand-in Trader",
            server=self.server,
            currency=self.currency,
            company="Stand-in Markets Ltd.",
        )
        return values

    def refreshed_positions(self) -> list[dict[str, Any]]:
        for position in self.positions.values():
            bid, ask = self.quote(position["symbol"])
            close = bid if position["type"] == c.POSITION_TYPE_BUY else ask
            position["price_current"] = close
            position["profit"] = self.profit(
                position["type"], position["symbol"], position["volume"], position["price_open"], close
            )
        return list(self.positions.values())

    # ----- bars and ticks ------------------------------------------------------------------------
    def rates(self, symbol: str, timeframe: int, times: np.ndarray) -> np.ndarray:
        bid, _ = self.quote(symbol)
        seconds = timeframe_seconds(timeframe)
        point = self.symbols[symbol]["point"]
        wave = np.sin(times / 7_200.0) * 200 * point
        out = np.zeros(len(times), dtype=RATES_DTYPE)
        out["time"] = times
        out["open"] = np.round(bid + wave, 5)
        out["close"] = np.round(bid + np.sin((times + seconds) / 7_200.0) * 200 * point, 5)
        out["high"] = np.maximum(out["open"], out["close"]) + 5 * point
        out["low"] = np.minimum(out["open"], out["close"]) - 5 * point
        out["tick_volume"] = 100 + (times // seconds) % 50
        out["spread"] = self.symbols[symbol]["spread"]
        return out

    def bar_times_back(self, timeframe: int, last_open: int, skip: int, count: int) -> np.ndarray:
        seconds = timeframe_seconds(timeframe)
        newest = last_open - last_open % seconds - skip * seconds
        return newest - seconds * np.arange(count - 1, -1, -1, dtype=np.int64)

    def bar_times_range(self, timeframe: int, start: int, end: int) -> np.ndarray:
        seconds = timeframe_seconds(timeframe)
        first = -(-start // seconds) * seconds
        return np.arange(first, end + 1, seconds, dtype=np.int64)

    def ticks(self, symbol: str, start_msc: int, count: int) -> np.ndarray:
        bid, ask = self.quote(symbol)
        point = self.symbols[symbol]["point"]
        first = -(-start_msc // TICK_STEP_MS) * TICK_STEP_MS
        msc = first + TICK_STEP_MS * np.arange(count, dtype=np.int64)
        drift = np.round(np.sin(msc / 60_000.0) * 10) * point
        out = np.zeros(count, dtype=TICKS_DTYPE)
        out["time"] = msc // 1000
        out["time_msc"] = msc
        out["bid"] = np.round(bid + drift, 5)
        out["ask"] = np.round(ask + drift, 5)
        out["flags"] = c.TICK_FLAG_BID | c.TICK_FLAG_ASK
        return out

    # ----- the book ------------------------------------------------------------------------------
    def take_ticket(self) -> int:
        self.next_ticket += 1
        return self.next_ticket - 1

    def _deal_values(
        self, order: int, deal_type: int, entry: int, symbol: str, volume: float, price: float, position: int
    ) -> dict[str, Any]:
        values = defaults("TradeDeal")
        values.update(
            ticket=self.next_deal,
            order=order,
            time=self.clock,
            time_msc=self.clock * 1000,
            type=deal_type,
            entry=entry,
            position_id=position,
            reason=c.DEAL_REASON_EXPERT,
            volume=volume,
            price=price,
            symbol=symbol,
        )
        self.next_deal += 1
        return values

    def record_fill(
        self, request: dict[str, Any], order: int, price: float, entry: int, position: int
    ) -> int:
        """The history order (filled) and the deal of a market request; returns the deal ticket."""
        values = defaults("TradeOrder")
        values.update(
            ticket=order,
            time_setup=self.clock,
            time_setup_msc=self.clock * 1000,
            time_done=self.clock,
            time_done_msc=self.clock * 1000 + 1,
            type=request["type"],
            type_filling=request.get("type_filling", 0),
            state=c.ORDER_STATE_FILLED,
            magic=request.get("magic", 0),
            position_id=position,
            reason=c.ORDER_REASON_EXPERT,
            volume_initial=request["volume"],
            price_open=price,
            price_current=price,
            symbol=request["symbol"],
            comment=request.get("comment", ""),
        )
        self.history_orders.append(values)
        deal = self._deal_values(
            order, request["type"], entry, request["symbol"], request["volume"], price, position
        )
        deal.update(magic=request.get("magic", 0), comment=request.get("comment", "")[:16])
        self.deals.append(deal)
        return int(deal["ticket"])

    def open_position(self, request: dict[str, Any], ticket: int, price: float) -> None:
        values = defaults("TradePosition")
        values.update(
            ticket=ticket,
            time=self.clock,
            time_msc=self.clock * 1000,
            time_update=self.clock,
            time_update_msc=self.clock * 1000,
            type=request["type"],
            magic=request.get("magic", 0),
            identifier=ticket,
            reason=c.POSITION_REASON_EXPERT,
            volume=request["volume"],
            price_open=price,
            sl=request.get("sl", 0.0),
            tp=request.get("tp", 0.0),
            price_current=price,
            symbol=request["symbol"],
            comment=request.get("comment", "")[:16],
        )
        self.positions[ticket] = values

    def place_order(self, request: dict[str, Any], ticket: int) -> None:
        values = defaults("TradeOrder")
        values.update(
            ticket=ticket,
            time_setup=self.clock,
            time_setup_msc=self.clock * 1000,
            type=request["type"],
            type_time=request.get("type_time", 0),
            type_filling=request.get("type_filling", 0),
            time_expiration=request.get("expiration", 0),
            state=c.ORDER_STATE_PLACED,
            magic=request.get("magic", 0),
            reason=c.ORDER_REASON_EXPERT,
            volume_initial=request["volume"],
            volume_current=request["volume"],
            price_open=request["price"],
            sl=request.get("sl", 0.0),
            tp=request.get("tp", 0.0),
            price_stoplimit=request.get("stoplimit", 0.0),
            price_current=self.quote(request["symbol"])[0],
            symbol=request["symbol"],
            comment=request.get("comment", "")[:16],
        )
        self.orders[ticket] = values

    def cancel_order(self, ticket: int) -> None:
        values = self.orders.pop(ticket)
        values.update(state=c.ORDER_STATE_CANCELED, time_done=self.clock, time_done_msc=self.clock * 1000)
        self.history_orders.append(values)

    def advance(self, seconds: int = 1) -> None:
        self.clock += seconds


def matches_group(name: str, group: str | None) -> bool:
    """MT5's symbol filter: comma-separated ``*`` masks applied left to right, ``!`` excludes."""
    if not group:
        return True
    selected = False
    for mask in (part.strip() for part in group.split(",")):
        if mask.startswith("!"):
            if fnmatch.fnmatchcase(name, mask[1:]):
                selected = False
        elif fnmatch.fnmatchcase(name, mask):
            selected = True
    return selected
