"""The constants the official ``MetaTrader5`` package exports, with its values (MT5_REFERENCE.md sections 4,
7 and 8), taken from :mod:`mtrobot.broker.constants` minus what only MQL5 has.

A script proven here must not lean on a name the real package lacks: the ``SYMBOL_FILLING_*``,
``SYMBOL_EXPIRATION_*`` and ``SYMBOL_ORDER_*`` bit flags, ``TRADE_RETCODE_HEDGE_PROHIBITED`` (10046) and our
own ``TRADE_RETCODE_CHECK_OK`` are therefore *not* attributes of :mod:`mtrobot.mt5` (on a real terminal they
raise ``AttributeError``; scripts hard-code those numbers).
"""

from __future__ import annotations

from mtrobot.broker import constants as _ours

_NOT_IN_PACKAGE_PREFIXES = ("SYMBOL_FILLING_", "SYMBOL_EXPIRATION_")
_NOT_IN_PACKAGE = frozenset(
    {
        "SYMBOL_ORDER_MARKET",
        "SYMBOL_ORDER_LIMIT",
        "SYMBOL_ORDER_STOP",
        "SYMBOL_ORDER_STOP_LIMIT",
        "SYMBOL_ORDER_SL",
        "SYMBOL_ORDER_TP",
        "SYMBOL_ORDER_CLOSEBY",
        "TRADE_RETCODE_HEDGE_PROHIBITED",
        "TRADE_RETCODE_CHECK_OK",
    }
)


def _official(name: str) -> bool:
    return (
        name.isupper()
        and not name.startswith("_")
        and isinstance(getattr(_ours, name), int)
        and name not in _NOT_IN_PACKAGE
        and not name.startswith(_NOT_IN_PACKAGE_PREFIXES)
    )


CONSTANTS: dict[str, int] = {name: getattr(_ours, name) for name in dir(_ours) if _official(name)}
"""Every constant of the official package, name -> value."""
