"""Save and restore the simulated broker's books, so a restarted ``mtrobot simbroker`` (a second ``mtrobot
up`` on the same data dir) still has its accounts, positions, orders and history, and prices resume from
the last quotes. The files hold password hashes (scrypt), never passwords; mode 0600.

Two files. The *head* (``state.json``) holds what changes in place (accounts, balances, positions, working
orders, sequences, quotes) and, per account, how many ended orders and deals of the history are its own; it
is replaced atomically at every save. The *history* (``state.history.jsonl``) holds the ended orders and the
deals, one JSON line each, and is only appended to: a save writes what the history gained since the last
one, never the whole of it again (at 10,000 ended orders and deals the whole document took 30–150 ms to
write, on the simulator's loop, every few seconds, and it only grew).

A save appends and fsyncs the history before it replaces the head, so the head never counts a line that
is not on disk. A crash between the two leaves lines the head does not count: a restore takes, per account,
the first lines the head counts and nothing else, and the next save writes the history afresh without the
rest. Files written before the history file existed (version 1: every record in the one document) are read
as they are; the first save moves their history into the history file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mtrobot.files import PRIVATE, write_atomically
from mtrobot.logging import get_logger
from mtrobot.sim.broker import SimBroker
from mtrobot.sim.server import TradeServer
from mtrobot.sim.state import Account, Deal, Order, Position

log = get_logger(__name__)

INLINE_VERSION = 1
"""The books as one document, every record inline: :func:`snapshot`, and the files before version 2."""
FORMAT_VERSION = 2
"""The head and its append-only history file."""
_LISTS = ("positions", "orders", "history_orders", "deals", "closed_positions")
_SCALARS = [f.name for f in fields(Account) if f.init and f.name not in _LISTS]
_KINDS = (("order", "history_orders"), ("deal", "deals"))
"""A history line's kind (its key) and the account's list it belongs to."""

AccountKey = tuple[str, int]
"""(server, login)."""


def history_path(path: Path) -> Path:
    """The history file beside the head ``path``: ``state.json`` -> ``state.history.jsonl``."""
    return path.with_name(f"{path.stem}.history.jsonl")


def snapshot(broker: SimBroker) -> dict[str, Any]:
    """The books as one document, every record inline: what :func:`restore` rebuilds a broker from."""
    servers: dict[str, Any] = {}
    for name, server in broker.servers.items():
        servers[name] = _server_head(server) | {"accounts": [_account(a) for a in server.accounts.values()]}
    return {"version": INLINE_VERSION, "servers": servers}


def _record(item: Position | Order | Deal) -> dict[str, Any]:
    """A record's fields as a dict. Every field of these records is a plain value, so a shallow copy is
    what ``dataclasses.asdict`` gives, at a tenth of its cost."""
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


def _server_head(server: TradeServer) -> dict[str, Any]:
    return {
        "order_seq": server._order_seq,
        "deal_seq": server._deal_seq,
        "next_login": server._next_login,
        "quotes": {s: [f.last.bid, f.last.ask] for s, f in server.feeds.items() if f.last is not None},
    }


@dataclass(frozen=True)
class _Written:
    """How much of an account's history the history file holds: the lists it was written from, and how
    many of each (a list replaced or shortened, as by a restore, means the file must be written afresh)."""

    orders: list[Order]
    deals: list[Deal]
    order_count: int
    deal_count: int

    @classmethod
    def of(cls, account: Account) -> _Written:
        orders, deals = account.history_orders, account.deals
        return cls(orders, deals, len(orders), len(deals))

    def still_prefix_of(self, account: Account) -> bool:
        return (
            self.orders is account.history_orders
            and self.deals is account.deals
            and len(self.orders) >= self.order_count
            and len(self.deals) >= self.deal_count
        )


class BooksWriter:
    """Saves and loads the books at ``path`` (the head) and :func:`history_path` beside it; see the module
    docstring. One per process: it remembers how much of the history the file already holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.history = history_path(path)
        self._written: dict[AccountKey, _Written] = {}
        self._valid = 0
        """Bytes of the history file that the head written last counts (an append that failed is cut)."""
        self._afresh = True
        """The next save writes the history file whole (nothing known of it yet, or it holds lines no head
        counts)."""

    def load(self, broker: SimBroker) -> int:
        """Restore the books into a fresh broker; returns the accounts restored (0: nothing saved, or
        unreadable: logged). Saves after this one append to the history file as it is."""
        document, clean = self._read()
        if document is None:
            return 0
        restored = restore(broker, document)
        self._written = {key: _Written.of(account) for key, account in _accounts(broker).items()}
        self._afresh = not clean or set(self._written) != _accounts_in(document)
        if not self._afresh:
            self._valid = self.history.stat().st_size if self.history.exists() else 0
        return restored

    def save(self, broker: SimBroker) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        accounts = _accounts(broker)
        afresh = self._afresh or any(
            key not in accounts or not written.still_prefix_of(accounts[key])
            for key, written in self._written.items()
        )
        lines = "".join(
            _history_lines(key, account, None if afresh else self._written.get(key))
            for key, account in accounts.items()
        ).encode()
        if afresh:
            write_atomically(self.history, lines, mode=PRIVATE, durable=True)
            valid = len(lines)
        else:
            valid = self._append(lines)
        write_atomically(self.path, json.dumps(self._head(broker)), mode=PRIVATE)
        self._written = {key: _Written.of(account) for key, account in accounts.items()}
        self._valid, self._afresh = valid, False

    def _append(self, data: bytes) -> int:
        """Write ``data`` after the counted lines (over what a failed save left there) and make it durable
        before the head that counts it is written."""
        if not data:
            return self._valid
        fd = os.open(self.history, os.O_WRONLY | os.O_CREAT, PRIVATE)
        try:
            os.lseek(fd, self._valid, os.SEEK_SET)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, self._valid + len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        return self._valid + len(data)

    def _head(self, broker: SimBroker) -> dict[str, Any]:
        servers: dict[str, Any] = {}
        for name, server in broker.servers.items():
            accounts = [
                _account(a, history=False)
                | {"history": {"orders": len(a.history_orders), "deals": len(a.deals)}}
                for a in server.accounts.values()
            ]
            servers[name] = _server_head(server) | {"accounts": accounts}
        return {"version": FORMAT_VERSION, "servers": servers}

    def _read(self) -> tuple[dict[str, Any] | None, bool]:
        """The saved books as one inline document (None: nothing saved, or unreadable), and whether the
        history file holds exactly the lines the head counts (else the next save writes it afresh)."""
        if not self.path.exists():
            return None, False
        try:
            head = json.loads(self.path.read_text())
        except (OSError, ValueError) as exc:
            log.error("simbroker state unreadable, starting empty", path=str(self.path), error=str(exc))
            return None, False
        if not isinstance(head, dict) or head.get("version") != FORMAT_VERSION:
            return head, False  # version 1 (history inline) or unknown: restore() decides
        try:
            found, unreadable = _read_history(self.history)
        except OSError as exc:
            log.error("simbroker history unreadable", path=str(self.history), error=str(exc))
            found, unreadable = {}, 1
        return _inline(head, found), not unreadable and _exact(head, found)


def _history_lines(key: AccountKey, account: Account, written: _Written | None) -> str:
    """The history lines of ``account`` the file does not hold yet (all of them when ``written`` is None)."""
    server, login = key
    start = {"order": written.order_count, "deal": written.deal_count} if written else {"order": 0, "deal": 0}
    return "".join(
        json.dumps({"server": server, "login": login, kind: _record(item)}) + "\n"
        for kind, attribute in _KINDS
        for item in getattr(account, attribute)[start[kind] :]
    )


History = dict[AccountKey, dict[str, list[dict[str, Any]]]]


def _read_history(path: Path) -> tuple[History, int]:
    """Every line of the history file by account and kind, in file order; and how many lines were not
    readable (a line cut short by a crash mid-append, at the end, is one of them)."""
    found: History = {}
    unreadable = 0
    if not path.exists():
        return found, 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                line = json.loads(raw)
                key = (str(line["server"]), int(line["login"]))
                kind = next(k for k, _ in _KINDS if k in line)
            except (ValueError, KeyError, TypeError, StopIteration):
                unreadable += 1
                continue
            found.setdefault(key, {"order": [], "deal": []})[kind].append(line[kind])
    return found, unreadable


def _inline(head: dict[str, Any], found: History) -> dict[str, Any]:
    """The head with each account's counted history lines put back inline (version 1's document)."""
    servers: dict[str, Any] = {}
    for name, saved in head.get("servers", {}).items():
        accounts = []
        for raw in saved.get("accounts", []):
            counts = raw.get("history", {})
            lines = found.get((name, int(raw["login"])), {"order": [], "deal": []})
            account = {k: v for k, v in raw.items() if k != "history"}
            for kind, attribute in _KINDS:
                wanted = int(counts.get(f"{kind}s", 0))
                account[attribute] = lines[kind][:wanted]
                if len(account[attribute]) < wanted:
                    log.error(
                        "simbroker history shorter than its head: the rest of this account's history is lost",
                        server=name, login=raw["login"], kind=kind, expected=wanted,
                        found=len(account[attribute]),
                    )  # fmt: skip
            accounts.append(account)
        servers[name] = {k: v for k, v in saved.items() if k != "accounts"} | {"accounts": accounts}
    return {"version": INLINE_VERSION, "servers": servers}


def _exact(head: dict[str, Any], found: History) -> bool:
    """Whether the history file holds the lines the head counts and not one more."""
    counted = {key: raw.get("history", {}) for key, raw in _saved_accounts(head)}
    if set(found) - set(counted):
        return False
    return all(
        len(found.get(key, {}).get(kind, [])) == int(counts.get(f"{kind}s", 0))
        for key, counts in counted.items()
        for kind, _ in _KINDS
    )


def _accounts_in(document: dict[str, Any]) -> set[AccountKey]:
    return {key for key, _ in _saved_accounts(document)}


def _saved_accounts(document: dict[str, Any]) -> Iterator[tuple[AccountKey, dict[str, Any]]]:
    """Each account of a saved document (a head or an inline one) with its key."""
    for name, saved in document.get("servers", {}).items():
        for raw in saved.get("accounts", []):
            yield (name, int(raw["login"])), raw


def _accounts(broker: SimBroker) -> dict[AccountKey, Account]:
    return {
        (name, account.login): account
        for name, server in broker.servers.items()
        for account in server.accounts.values()
    }


def restore(broker: SimBroker, data: dict[str, Any]) -> int:
    """Load an inline document (:func:`snapshot`'s) into a fresh broker; servers no longer configured are
    skipped. Returns the accounts restored."""
    if data.get("version") != INLINE_VERSION:
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
    """Once; a process that saves afterwards loads through its :class:`BooksWriter`."""
    return BooksWriter(path).load(broker)
