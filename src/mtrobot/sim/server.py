"""One simulated trade server: its symbols and quotes, accounts, tickets, and what happens on every tick
(pending orders triggering and expiring, SL/TP, partial-fill remainders, stop-out)."""

from __future__ import annotations

import random
import zlib
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

from mtrobot.broker import constants as mt5
from mtrobot.broker.structures import Tick, TradeDeal
from mtrobot.core.errors import ConfigError
from mtrobot.sim.clock import Clock, ServerZone
from mtrobot.sim.config import ServerConfig, SymbolSpec
from mtrobot.sim.money import Leg, Money
from mtrobot.sim.prices import SymbolFeed, SyntheticFeed
from mtrobot.sim.schedule import DAY_MS, Schedule, day_start, weekday
from mtrobot.sim.state import Account, Deal, Order, Position, hash_password

LOGINS_KEPT = 20_000
"""Login requests remembered per server (300 agents back from a maintenance window make a few hundred)."""

VOLUME_EPS = 1e-8


def vround(volume: float) -> float:
    return round(volume + 0.0, 8)


@dataclass
class Faults:
    """Injected misbehaviour of one server (admin channel)."""

    latency_ms: int = 0
    requote_next: int = 0
    reject_next: int = 0
    reject_retcode: int = mt5.TRADE_RETCODE_REJECT
    reject_execute: bool = False
    lose_replies: int = 0
    lose_mode: Literal["drop", "timeout"] = "drop"
    quotes_off: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Figures:
    profit: float
    equity: float
    margin: float
    margin_free: float
    margin_level: float


class TradeServer:
    def __init__(
        self,
        config: ServerConfig,
        clock: Clock,
        seed: int,
        history_minutes: int,
        history_days: int = 0,
        correlated: bool = False,
    ) -> None:
        self.config = config
        self.name = config.name
        self.clock = clock
        self.zone = ServerZone(config.timezone)
        self.schedule = Schedule(config)
        self.specs: dict[str, SymbolSpec] = {s.name: s for s in config.symbols}
        self.faults = Faults()
        self.accounts: dict[int, Account] = {}
        self.logins: deque[int] = deque(maxlen=LOGINS_KEPT)
        """Server time (ms) of each login request it received, refused ones too: what a broker's own login
        rate limit counts, and what ``bench storm`` reads to show the agents kept to theirs."""
        self.rng = random.Random(seed ^ zlib.crc32(f"{config.name}/exec".encode()))
        self._last_ms = 0
        start = self.now_ms()
        self.feeds: dict[str, SymbolFeed] = {
            s.name: SyntheticFeed(
                s,
                seed ^ zlib.crc32(config.name.encode()),
                start,
                config.tick_interval_ms,
                history_minutes,
                history_days=history_days,
                correlated=correlated,
            )
            for s in config.symbols
        }
        self.money = Money(self.specs, self.quote)
        self._order_seq = 100_000_000
        self._deal_seq = 200_000_000
        self._next_login = config.login_base
        self._swap_day = day_start(start)
        self.revision = 0
        """Bumped by every change to the books (what persistence watches)."""
        for feed in self.feeds.values():  # an opening quote, so the server has prices from the start
            feed.force_quote(start, feed.spec.start_price, None)

    # -- time and quotes -------------------------------------------------------------------------------
    def now_ms(self) -> int:
        """Server wall clock, never going backwards (the autumn DST change repeats an hour otherwise)."""
        utc = self.clock.now_ms()
        self._last_ms = max(self._last_ms, self.zone.to_server_ms(utc))
        return self._last_ms

    def quote(self, symbol: str) -> Tick | None:
        feed = self.feeds.get(symbol)
        return feed.last if feed is not None else None

    def market_open(self, symbol: str) -> bool:
        spec = self.specs.get(symbol)
        return self.schedule.is_open(self.now_ms(), weekends=spec is not None and spec.weekend_trading)

    def sync(self) -> None:
        """Bring prices up to now and let every tick act on orders and positions, in time order."""
        now = self.now_ms()
        batch: list[tuple[int, int, str, Tick]] = []
        for index, (name, feed) in enumerate(self.feeds.items()):
            batch.extend((t.time_msc, index, name, t) for t in feed.advance_to(now, self.schedule))
        batch.sort(key=lambda item: (item[0], item[1]))
        for _, _, symbol, tick in batch:
            self.on_tick(symbol, tick)
        self.expire_orders(now)
        self.charge_swaps(now)

    def charge_swaps(self, now_ms: int) -> None:
        """Daily rollover at 00:00 server time: swap in points on every position, triple on Wednesday;
        SL/TP end with the day on symbols whose order_gtc_mode is SYMBOL_ORDERS_DAILY."""
        while self._swap_day + DAY_MS <= now_ms:
            closing_day = self._swap_day
            self._swap_day += DAY_MS
            day = weekday(closing_day)
            for account in self.accounts.values():
                for position in account.positions.values():
                    spec = self.specs[position.symbol]
                    if spec.order_gtc_mode == mt5.SYMBOL_ORDERS_DAILY:  # SL/TP live for the day only
                        position.sl = position.tp = 0.0
                    if day in (0, 6) and not spec.weekend_trading:
                        continue
                    points = spec.swap_long if position.is_buy else spec.swap_short
                    times = 3 if day == 3 and not spec.weekend_trading else 1
                    raw = points * spec.point * spec.contract_size * position.volume * times
                    try:
                        amount = raw * self.money.rate(
                            spec.currency_profit, account.currency, position.is_buy
                        )
                    except LookupError:
                        continue
                    position.swap = round(position.swap + amount, account.currency_digits)
                    self.revision += 1

    # -- tickets and accounts --------------------------------------------------------------------------
    def next_order_ticket(self) -> int:
        self.revision += 1
        self._order_seq += 1
        return self._order_seq

    def next_deal_ticket(self) -> int:
        self.revision += 1
        self._deal_seq += 1
        return self._deal_seq

    def create_account(
        self,
        *,
        balance: float,
        currency: str,
        leverage: int,
        password: str,
        investor_password: str,
        name: str = "",
        login: int | None = None,
        credit: float = 0.0,
    ) -> Account:
        if login is None:
            self._next_login += 1
            login = self._next_login
        if login in self.accounts:
            raise ConfigError(f"login: account {login} already exists on {self.name}")
        for spec in self.specs.values():
            for ccy in (spec.currency_margin, spec.currency_profit):
                if not self.money.convertible(ccy, currency):
                    raise ConfigError(f"currency: {currency} cannot be converted from {ccy} on {self.name}")
        account = Account(
            login=login,
            server=self.name,
            name=name or f"Trader {login}",
            currency=currency,
            leverage=leverage,
            balance=0.0,
            credit=credit,
            master_hash=hash_password(password),
            investor_hash=hash_password(investor_password),
        )
        self.accounts[login] = account
        self.revision += 1
        if balance:
            self.balance_operation(account, balance, "Deposit")
        return account

    def balance_operation(self, account: Account, amount: float, comment: str) -> Deal:
        """A back-office deposit or withdrawal (BALANCE deal): never reachable from a terminal."""
        deal = Deal(
            self.next_deal_ticket(),
            0,
            self.now_ms(),
            mt5.DEAL_TYPE_BALANCE,
            mt5.DEAL_ENTRY_IN,
            0,
            0,
            mt5.DEAL_REASON_CLIENT,
            0.0,
            0.0,
            0.0,
            0.0,
            round(amount, 2),
            "",
            comment[:31],
        )
        account.deals.append(deal)
        account.balance = round(account.balance + amount, 2)
        return deal

    # -- account figures -------------------------------------------------------------------------------
    def refresh_position(self, account: Account, position: Position) -> None:
        tick = self.quote(position.symbol)
        if tick is None:
            return
        spec = self.specs[position.symbol]
        position.price_current = tick.bid if position.is_buy else tick.ask
        try:
            position.profit = round(
                self.money.profit(
                    spec,
                    position.is_buy,
                    position.volume,
                    position.price_open,
                    position.price_current,
                    account.currency,
                ),
                account.currency_digits,
            )
        except LookupError:
            position.profit = 0.0

    def legs(self, account: Account) -> list[Leg]:
        return [Leg(p.symbol, p.is_buy, p.volume, p.price_open) for p in account.positions.values()]

    def netting(self) -> bool:
        return self.config.margin_mode != mt5.ACCOUNT_MARGIN_MODE_RETAIL_HEDGING

    def floating(self, account: Account) -> tuple[float, float]:
        """(profit, equity) at the current quotes: the part of :meth:`figures` without the margin, for a
        backtest sampling equity at every tick."""
        for position in account.positions.values():
            self.refresh_position(account, position)
        profit = round(
            float(sum(p.profit + p.swap for p in account.positions.values())), account.currency_digits
        )
        return profit, round(account.balance + account.credit + profit, account.currency_digits)

    def figures(self, account: Account, extra: list[Leg] | None = None) -> Figures:
        profit, equity = self.floating(account)
        try:
            margin = self.money.account_margin(
                self.legs(account) + (extra or []), account.leverage, account.currency, self.netting()
            )
        except LookupError:
            margin = 0.0
        margin = round(margin, account.currency_digits)
        level = round(equity / margin * 100, 2) if margin > 0 else 0.0
        return Figures(profit, equity, margin, round(equity - margin, account.currency_digits), level)

    # -- fills -----------------------------------------------------------------------------------------
    def fill(
        self,
        account: Account,
        order: Order,
        volume: float,
        price: float,
        reason: int,
        position: Position | None = None,
    ) -> Deal:
        """Execute ``volume`` of ``order`` at ``price``: open, add to, reduce, close or reverse a position
        (netting or hedging rules, MT5_REFERENCE.md 6.11) and book the deal."""
        now = self.now_ms()
        spec = self.specs[order.symbol]
        is_buy = order.is_buy
        if position is None and self.netting():
            position = next((p for p in account.positions.values() if p.symbol == order.symbol), None)
        if position is None and not self.netting():
            position = account.positions.get(order.ticket)  # a later partial fill of the same order
            if position is not None and position.is_buy != is_buy:
                position = None
        entry, profit, closed_volume, swap = mt5.DEAL_ENTRY_IN, 0.0, 0.0, 0.0
        if position is None:
            position = Position(
                ticket=order.ticket,
                identifier=order.ticket,
                symbol=order.symbol,
                type=mt5.POSITION_TYPE_BUY if is_buy else mt5.POSITION_TYPE_SELL,
                volume=volume,
                price_open=price,
                time_ms=now,
                time_update_ms=now,
                magic=order.magic,
                comment=order.comment,
                sl=order.sl,
                tp=order.tp,
                reason=_position_reason(reason),
            )
            account.positions[position.ticket] = position
        elif position.is_buy == is_buy:
            total = vround(position.volume + volume)
            position.price_open = round(
                (position.price_open * position.volume + price * volume) / total, spec.digits + 3
            )
            position.volume = total
            position.magic, position.time_update_ms = order.magic, now
        else:
            closed_volume = min(volume, position.volume)
            swap = round(position.swap * closed_volume / position.volume, account.currency_digits)
            position.swap = round(position.swap - swap, account.currency_digits)
            profit = self.money.profit(
                spec, position.is_buy, closed_volume, position.price_open, price, account.currency
            )
            remainder = vround(volume - position.volume)
            if remainder > VOLUME_EPS:  # netting reversal: new ticket, same identifier
                entry = mt5.DEAL_ENTRY_INOUT
                del account.positions[position.ticket]
                position.ticket, position.type = order.ticket, order.type & 1
                position.volume, position.price_open, position.time_update_ms = remainder, price, now
                position.sl = position.tp = 0.0
                position.magic = order.magic
                account.positions[position.ticket] = position
            else:
                entry = mt5.DEAL_ENTRY_OUT
                position.volume = vround(position.volume - volume)
                position.time_update_ms = now
                if position.volume <= VOLUME_EPS:
                    del account.positions[position.ticket]
                    account.closed_positions.add(position.identifier)
        commission = round(-spec.commission_per_lot * volume, 2) + 0.0
        profit = round(profit, account.currency_digits)
        deal = Deal(
            self.next_deal_ticket(),
            order.ticket,
            now,
            mt5.DEAL_TYPE_BUY if is_buy else mt5.DEAL_TYPE_SELL,
            entry,
            order.magic,
            position.identifier,
            reason,
            volume,
            price,
            commission,
            swap,
            profit,
            order.symbol,
            order.comment,
        )
        account.deals.append(deal)
        account.balance = round(account.balance + profit + commission + swap, account.currency_digits)
        order.position_id = position.identifier
        order.volume_current = vround(order.volume_current - volume)
        order.price_current = price
        return deal

    def archive(self, account: Account, order: Order, state: int) -> None:
        self.revision += 1
        order.state = state
        order.time_done_ms = self.now_ms()
        account.orders.pop(order.ticket, None)
        # A copy: the history is append-only (saved incrementally), whoever still holds the order.
        account.history_orders.append(replace(order))

    def market_price(self, symbol: str, buy: bool) -> float:
        tick = self.quote(symbol)
        assert tick is not None
        return tick.ask if buy else tick.bid

    def close_position(self, account: Account, position: Position, reason: int, comment: str) -> Deal:
        """Close a whole position at market (SL, TP, stop-out): its own order and deal."""
        buy = not position.is_buy
        now = self.now_ms()
        order = Order(
            ticket=self.next_order_ticket(),
            symbol=position.symbol,
            type=mt5.ORDER_TYPE_BUY if buy else mt5.ORDER_TYPE_SELL,
            volume_initial=position.volume,
            volume_current=position.volume,
            price_open=0.0,
            time_setup_ms=now,
            magic=position.magic,
            comment=comment,
            reason=reason,
            type_filling=mt5.ORDER_FILLING_FOK,
            state=mt5.ORDER_STATE_STARTED,
            position_id=position.identifier,
        )
        price = self.market_price(position.symbol, buy)
        order.price_open = price
        deal = self.fill(account, order, position.volume, price, reason, position)
        self.archive(account, order, mt5.ORDER_STATE_FILLED)
        return deal

    def fill_close_by(
        self, account: Account, order: Order, target: Position, volume: float, price: float
    ) -> Deal:
        """One leg of a close-by: reduce ``target`` by ``volume`` at ``price`` (OUT_BY, no commission)."""
        now = self.now_ms()
        spec = self.specs[target.symbol]
        profit = round(
            self.money.profit(spec, target.is_buy, volume, target.price_open, price, account.currency),
            account.currency_digits,
        )
        swap = round(target.swap * volume / target.volume, account.currency_digits)
        target.swap = round(target.swap - swap, account.currency_digits)
        deal = Deal(
            self.next_deal_ticket(),
            order.ticket,
            now,
            mt5.DEAL_TYPE_SELL if target.is_buy else mt5.DEAL_TYPE_BUY,
            mt5.DEAL_ENTRY_OUT_BY,
            order.magic,
            target.identifier,
            mt5.DEAL_REASON_EXPERT,
            volume,
            price,
            0.0,
            swap,
            profit,
            target.symbol,
            order.comment,
        )
        account.deals.append(deal)
        account.balance = round(account.balance + profit + swap, account.currency_digits)
        target.volume = vround(target.volume - volume)
        target.time_update_ms = now
        if target.volume <= VOLUME_EPS:
            del account.positions[target.ticket]
            account.closed_positions.add(target.identifier)
        return deal

    # -- what a tick does ------------------------------------------------------------------------------
    def on_tick(self, symbol: str, tick: Tick) -> None:
        from mtrobot.sim.triggers import process_tick

        process_tick(self, symbol, tick)

    def expire_orders(self, now_ms: int) -> None:
        now_s = now_ms // 1000
        for account in self.accounts.values():
            for order in list(account.orders.values()):
                if order.time_expiration and order.time_expiration <= now_s:
                    self.archive(account, order, mt5.ORDER_STATE_EXPIRED)

    def history_deal_structs(self, account: Account) -> list[TradeDeal]:
        return [d.to_struct() for d in account.deals]


def _position_reason(deal_reason: int) -> int:
    return deal_reason if deal_reason <= mt5.POSITION_REASON_EXPERT else mt5.POSITION_REASON_EXPERT
