"""Margin, profit and currency conversion (MT5_REFERENCE.md sections 6.4 and 6.5).

Amounts are computed in the symbol's margin or profit currency and converted to the deposit currency with
the broker's own quotes: multiply by the direct pair (FROM/TO) or divide by the inverse pair (TO/FROM),
using the ask or the bid side as MetaQuotes' reference implementation does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import Tick
from mtrobot.sim.config import SymbolSpec

QuoteFn = Callable[[str], Tick | None]


class NoConversion(LookupError):
    """No symbol on this server converts between two currencies."""


@dataclass(frozen=True)
class Leg:
    """A (possibly hypothetical) position leg used for margin: symbol, side, lots and open price."""

    symbol: str
    is_buy: bool
    volume: float
    price: float


class Money:
    def __init__(self, specs: dict[str, SymbolSpec], quote: QuoteFn) -> None:
        self._specs = specs
        self._quote = quote

    def rate(self, from_ccy: str, to_ccy: str, use_ask: bool) -> float:
        if from_ccy == to_ccy:
            return 1.0
        direct = self._quote(from_ccy + to_ccy) if from_ccy + to_ccy in self._specs else None
        if direct is not None and direct.bid > 0:
            return direct.ask if use_ask else direct.bid
        inverse = self._quote(to_ccy + from_ccy) if to_ccy + from_ccy in self._specs else None
        if inverse is not None and inverse.bid > 0:
            return 1.0 / (inverse.ask if use_ask else inverse.bid)
        raise NoConversion(f"no quote converts {from_ccy} to {to_ccy}")

    def convertible(self, from_ccy: str, to_ccy: str) -> bool:
        return from_ccy == to_ccy or from_ccy + to_ccy in self._specs or to_ccy + from_ccy in self._specs

    def margin(
        self, spec: SymbolSpec, is_buy: bool, volume: float, price: float, leverage: int, ccy: str
    ) -> float:
        """Margin of one leg in the deposit currency ``ccy`` (order_calc_margin)."""
        raw = margin_in_margin_currency(spec, volume, price, leverage)
        if spec.currency_margin == spec.currency_base and spec.currency_profit == ccy and price > 0:
            return raw * price  # the symbol is its own conversion pair: at the given price, as MT5 does
        return raw * self.rate(spec.currency_margin, ccy, use_ask=is_buy)

    def profit(
        self, spec: SymbolSpec, is_buy: bool, volume: float, price_open: float, price_close: float, ccy: str
    ) -> float:
        """Profit of closing a leg, in the deposit currency ``ccy`` (order_calc_profit)."""
        move = (price_close - price_open) if is_buy else (price_open - price_close)
        if spec.calc_mode in (mt5.SYMBOL_CALC_MODE_FUTURES, mt5.SYMBOL_CALC_MODE_EXCH_FUTURES):
            raw = move * volume * self.tick_value(spec, ccy) / spec.point
            return raw
        raw = move * spec.contract_size * volume
        return raw * self.rate(spec.currency_profit, ccy, use_ask=is_buy)

    def tick_value(self, spec: SymbolSpec, ccy: str, use_ask: bool = True) -> float:
        """Value of one tick (``point``) for one lot, in ``ccy``."""
        try:
            return spec.point * spec.contract_size * self.rate(spec.currency_profit, ccy, use_ask=use_ask)
        except NoConversion:
            return 0.0

    def account_margin(self, legs: Iterable[Leg], leverage: int, ccy: str, netting: bool) -> float:
        """Margin of a set of legs: netted per symbol, or with hedged volume charged at ``margin_hedged``."""
        by_symbol: dict[str, list[Leg]] = {}
        for leg in legs:
            by_symbol.setdefault(leg.symbol, []).append(leg)
        total = 0.0
        for symbol, group in by_symbol.items():
            spec = self._specs[symbol]
            buys = [g for g in group if g.is_buy]
            sells = [g for g in group if not g.is_buy]
            buy_vol, sell_vol = sum(g.volume for g in buys), sum(g.volume for g in sells)
            larger, larger_vol = (buys, buy_vol) if buy_vol >= sell_vol else (sells, sell_vol)
            if larger_vol <= 0:
                continue
            price = sum(g.price * g.volume for g in larger) / larger_vol
            is_buy = larger is buys
            if netting:
                net = abs(buy_vol - sell_vol)
                total += self.margin(spec, is_buy, net, price, leverage, ccy) if net > 1e-12 else 0.0
                continue
            covered = min(buy_vol, sell_vol)
            hedged_ratio = (spec.margin_hedged if spec.margin_hedged is not None else spec.contract_size) / (
                spec.contract_size
            )
            total += self.margin(spec, is_buy, larger_vol - covered, price, leverage, ccy)
            total += self.margin(spec, is_buy, covered, price, leverage, ccy) * hedged_ratio
        return total


def margin_in_margin_currency(spec: SymbolSpec, volume: float, price: float, leverage: int) -> float:
    mode, lots, contract, rate = spec.calc_mode, volume, spec.contract_size, spec.margin_rate
    if mode == mt5.SYMBOL_CALC_MODE_FOREX:
        return lots * contract / leverage * rate
    if mode == mt5.SYMBOL_CALC_MODE_FOREX_NO_LEVERAGE:
        return lots * contract * rate
    if mode in (mt5.SYMBOL_CALC_MODE_CFD, mt5.SYMBOL_CALC_MODE_EXCH_STOCKS):
        return lots * contract * price * rate
    if mode == mt5.SYMBOL_CALC_MODE_CFDLEVERAGE:
        return lots * contract * price / leverage * rate
    if mode == mt5.SYMBOL_CALC_MODE_CFDINDEX:
        return lots * contract * price * rate
    return lots * contract * price * rate
