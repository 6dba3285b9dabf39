"""Save and restore the simulated broker's books, so a restarted ``mtrobot simbroker`` (a second ``mtrobot
up`` on the same data dir) still has its accounts, positions, orders and history, and prices resume from
the last quotes. The file holds password hashes (scrypt), never passwords; it is written atomically, mode
0600."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from mtrobot.files import PRIVATE, write_atomically
from mtrobot.logging import get_logger
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.server import TradeServer
from mtrobot.sim.state import Account, Deal, Order, Position

log = get_logger(__name__)

FORMAT_VERSION = 1
_LISTS = ("positions", "orders", "history_orders", "deals", "closed_positions")
_SCALARS = [f.name for f in fields(Account) if f.init and f.name not in _LISTS]


def snapshot(broker: SimBroker) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    for name, server in broker.servers.items():
        servers[name] = _server_head(server) | {"accounts": [_account(a) for a in server.accounts.values()]}
    return {"version": FORMAT_VERSION, "servers": servers}


def _record(item: Position | Order | Deal) -> dict[str, Any]:
    """A record's fields as a dict. Every field of these records is a plain value, so a shallow copy is
    what ``dataclasses.asdict`` gives, at a tenth of its cost: the books are saved every few seconds on
    the simulator's loop, history included, and ``asdict`` of 4,000 deals held it for 54 ms."""
    return dict(vars(item))


def _account(account: Account, *, history: bool = True) -> dict[str, Any]:
    data = {k: getattr(account, k) for k in _SCALARS}
    data["positions"] = [_record(p) for p in account.positions.values()]
    data["orders"] = [_record(o) for o in account.orders.values()]
    if history:
        data["history_orders"] = [_record(o) for o in account.history_orders]
        data["deals"] = [_record(d) for d in account.deals]
    data["closed_positions"] = sorted(account.closed_positions)
    return data


class _Encoded:
    """The JSON texts of an append-only list's records, each encoded once and kept between saves."""

    def __init__(self) -> None:
        self._source: list[Any] | None = None
        self.texts: list[str] = []

    def of(self, records: list[Any]) -> list[str]:
        if records is not self._source or len(records) < len(self.texts):  # a new history: start again
            self._source, self.texts = records, []
        self.texts.extend(json.dumps(_record(r)) for r in records[len(self.texts) :])
        return self.texts


class BooksWriter:
    """Writes the books to ``path``, the document :func:`snapshot` describes. The history (deals are frozen;
    an order enters the history as a copy when it ends, see ``TradeServer.archive``) only ever grows, so
    its records are encoded once rather than at every save: at 10,000 deals and 10,000 ended orders the
    whole document took 150 ms to encode, on the simulator's loop, every few seconds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._history: dict[tuple[str, int, str], _Encoded] = {}

    def save(self, broker: SimBroker) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomically(self.path, self.text(broker), mode=PRIVATE)

    def text(self, broker: SimBroker) -> str:
        kept: dict[tuple[str, int, str], _Encoded] = {}
        servers = []
        for name, server in broker.servers.items():
            accounts = ", ".join(self._account_text(name, a, kept) for a in server.accounts.values())
            head = json.dumps(_server_head(server))
            servers.append(f'{json.dumps(name)}: {head[:-1]}, "accounts": [{accounts}]}}')
        self._history = kept  # accounts gone since the last save are forgotten
        return f'{{"version": {FORMAT_VERSION}, "servers": {{{", ".join(servers)}}}}}'

    def _account_text(self, server: str, account: Account, kept: dict[tuple[str, int, str], _Encoded]) -> str:
        lists = []
        for field_name in ("history_orders", "deals"):
            key = (server, account.login, field_name)
            encoded = kept[key] = self._history.get(key) or _Encoded()
            lists.append(f'"{field_name}": [{", ".join(encoded.of(getattr(account, field_name)))}]')
        return f"{json.dumps(_account(account, history=False))[:-1]}, {', '.join(lists)}}}"


def _server_head(server: TradeServer) -> dict[str, Any]:
    return {
        "order_seq": server._order_seq,
        "deal_seq": server._deal_seq,
        "next_login": server._next_login,
        "quotes": {s: [f.last.bid, f.last.ask] for s, f in server.feeds.items() if f.last is not None},
    }


def restore(broker: SimBroker, data: dict[str, Any]) -> int:
    """Load a snapshot into a fresh broker; servers no longer configured are skipped. Returns accounts."""
    if data.get("version") != FORMAT_VERSION:
        log.warning("simbroker state: unknown format, starting empty", version=data.get("version"))
        return 0
    restored = 0
    for name, saved in data.get("servers", {}).items():
        server = broker.servers.get(name)
        if server is None:
            log.warning("simbroker state: server no longer configured, skipped", server=name)
            continue
        server._order_seq = max(server._order_seq, int(saved["order_seq"]))
        server._deal_seq = max(server._deal_seq, int(saved["deal_seq"]))
        server._next_login = max(server._next_login, int(saved["next_login"]))
        now = server.now_ms()
        for symbol, (bid, ask) in saved.get("quotes", {}).items():
            feed = server.feeds.get(symbol)
            if feed is not None:  # resume from the last quote, as if the broker had never stopped
                feed.ticks.clear()
                feed.bars.clear()
                feed.first_bid = None
                feed.force_quote(now, float(bid), float(ask))
        for raw in saved.get("accounts", []):
            account = Account(**{k: raw[k] for k in _SCALARS})
            account.positions = {p["ticket"]: Position(**p) for p in raw["positions"]}
            account.orders = {o["ticket"]: Order(**o) for o in raw["orders"]}
            account.history_orders = [Order(**o) for o in raw["history_orders"]]
            account.deals = [Deal(**d) for d in raw["deals"]]
            account.closed_positions = set(raw["closed_positions"])
            server.accounts[account.login] = account
            restored += 1
    return restored


def save(broker: SimBroker, path: Path) -> None:
    """Once; a process that saves again and again keeps a :class:`BooksWriter`."""
    BooksWriter(path).save(broker)


def load(broker: SimBroker, path: Path) -> int:
    if not path.exists():
        return 0
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        log.error("simbroker state unreadable, starting empty", path=str(path), error=str(exc))
        return 0
    return restore(broker, data)
