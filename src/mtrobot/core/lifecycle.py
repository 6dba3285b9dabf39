"""The order lifecycle: one table of legal transitions, and nothing else decides what may follow what.

``unknown`` is a real state: the broker's answer was lost and a lookup could not yet tell whether the order
executed. Reconciliation resolves it to a terminal state; nothing resends from there.
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    SENT = "sent"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DUPLICATE = "duplicate"
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {OrderState.FILLED, OrderState.REJECTED, OrderState.CANCELLED, OrderState.EXPIRED, OrderState.DUPLICATE}
)

_S = OrderState
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    _S.RECEIVED: frozenset({_S.VALIDATED, _S.REJECTED, _S.DUPLICATE}),
    _S.VALIDATED: frozenset({_S.SENT, _S.REJECTED}),
    # A retry after a retriable refusal goes sent -> sent; a lost answer goes to unknown.
    _S.SENT: frozenset(
        {_S.SENT, _S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCELLED, _S.UNKNOWN}
    ),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED, _S.REJECTED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELLED, _S.EXPIRED}),
    _S.UNKNOWN: frozenset(
        {_S.ACCEPTED, _S.PARTIALLY_FILLED, _S.FILLED, _S.REJECTED, _S.CANCELLED, _S.EXPIRED}
    ),
    _S.FILLED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.CANCELLED: frozenset(),
    _S.EXPIRED: frozenset(),
    _S.DUPLICATE: frozenset(),
}


class IllegalTransition(ValueError):
    def __init__(self, current: OrderState, target: OrderState) -> None:
        super().__init__(f"order cannot go from '{current.value}' to '{target.value}'")
        self.current = current
        self.target = target


def next_state(current: OrderState, target: OrderState) -> OrderState:
    """Return ``target`` if the lifecycle allows it from ``current``; raise :class:`IllegalTransition`."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(current, target)
    return target


def later_states(current: OrderState) -> frozenset[OrderState]:
    """Every state an order in ``current`` can still reach (through any number of transitions)."""
    seen: set[OrderState] = set()
    frontier = [current]
    while frontier:
        for target in TRANSITIONS[frontier.pop()]:
            if target not in seen:
                seen.add(target)
                frontier.append(target)
    seen.discard(current)
    return frozenset(seen)


def follow(current: OrderState, reported: OrderState) -> OrderState | None:
    """Where a copy of an order's state (the web's, say) moves when the order's owner reports ``reported``.

    The owner (the connector) already went through the table, so the copy only has to tell news from echo:
    a state the order can still reach is news, even if the copy missed the steps in between (``received`` to
    ``filled``); the state it is in, or one it has left behind (a re-published event after a reconnect), is
    an echo and gives ``None``. The table has no cycles but self-loops, so "reachable" means "later".
    """
    return reported if reported in later_states(current) else None
