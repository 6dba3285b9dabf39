"""Runs inside the terminal's own Python (Windows, or Windows Python under Wine), sent there by mtrobot.

mtrobot's ``mt5linux`` backend executes this file's source in its rpyc classic session on the mt5linux server
(``python -m mt5linux`` / ``mt5server.exe``), then calls :func:`mtrobot_call` once per interface call. Every
result comes back as plain tuples of ``None``/bool/int/float/str/bytes, which rpyc copies by value in the same
reply: no remote proxies, no extra round trips, no pickling (the C result types cannot be pickled: mt5linux
issue #57), field names taken from the module's own ``_asdict()`` (so no client-side field table can be
out of order), numpy arrays as raw column bytes. Standard library and the MetaTrader5 module only.
"""

from __future__ import annotations  # this file may run on an older Python than mtrobot's

from typing import Any

import MetaTrader5 as mt5  # the Python next to the terminal has it; mtrobot's own never imports this file

TRADE_FUNCTIONS = ("order_send", "order_check")


def plain(value: Any) -> Any:
    """A by-value, tagged copy of an MT5 result. Only exact builtin types travel by value over rpyc (a numpy
    float is a float subclass and would go as a proxy), so everything else is turned into one."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    if hasattr(value, "_asdict"):
        items = tuple((str(key), plain(item)) for key, item in value._asdict().items())
        return ("struct", type(value).__name__, items)
    names = getattr(getattr(value, "dtype", None), "names", None)
    if names:
        columns = tuple((name, value.dtype[name].str, value[name].tobytes()) for name in names)
        return ("array", len(value), columns)
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):  # a numpy scalar
        return plain(value.item())
    for kind in (bool, int, float, str):  # other subclasses (an IntEnum, ...) as their base type
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, (tuple, list)):  # tuple-form isinstance: the remote Python may be old
        return ("tuple", tuple(plain(item) for item in value))
    return ("repr", repr(value))


def mtrobot_call(function: str, args: Any, kwargs: Any) -> tuple[Any, Any]:
    """Call one MetaTrader5 function; return (plain result, last_error if it failed or counted 0, else None).

    A trade request arrives as a tuple of (key, value) pairs and becomes a real dict here, because the C
    module refuses a proxy of the caller's dict.
    """
    args = tuple(args)
    if function in TRADE_FUNCTIONS and args and isinstance(args[0], tuple):
        args = (dict(args[0]), *args[1:])
    result = getattr(mt5, function)(*args, **dict(kwargs))
    failed = function != "shutdown" and (result is None or result is False)
    suspicious = function.endswith("_total") and result == 0  # how a failed count looks is undocumented
    return plain(result), (tuple(mt5.last_error()) if failed or suspicious else None)
