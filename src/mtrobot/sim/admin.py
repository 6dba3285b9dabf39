"""Clients of the admin channel: :class:`SimAdmin` over TCP, :class:`LocalAdmin` for a broker in this
process. Both have the same async methods (those of :class:`~mtrobot.sim.broker.AdminApi`), keyword
arguments only, and raise :class:`AdminError` with the server's message when an operation is refused."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from pathlib import Path
from typing import Any

from mtrobot.broker.simproto import HEADER, MAX_FRAME, PROTOCOL_VERSION, decode_value, pack_frame, unpack_body
from mtrobot.core.errors import MtrobotError
from mtrobot.sim.broker import AdminApi, SimBroker


class AdminError(MtrobotError):
    """The simbroker refused an admin operation (the message names the field)."""


class _AdminMethods:
    async def _op(self, op: str, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def create_account(self, **kwargs: Any) -> int:
        """server, password, investor_password, balance=10000, currency="USD", leverage=100, name, login."""
        return int(await self._op("create_account", **kwargs))

    async def balance_operation(self, **kwargs: Any) -> int:
        return int(await self._op("balance_operation", **kwargs))

    async def set_account(self, **kwargs: Any) -> None:
        await self._op("set_account", **kwargs)

    async def drop_connections(self, **kwargs: Any) -> int:
        return int(await self._op("drop_connections", **kwargs))

    async def set_latency(self, **kwargs: Any) -> None:
        await self._op("set_latency", **kwargs)

    async def requote_next(self, **kwargs: Any) -> None:
        await self._op("requote_next", **kwargs)

    async def reject_next(self, **kwargs: Any) -> None:
        await self._op("reject_next", **kwargs)

    async def lose_replies(self, **kwargs: Any) -> None:
        await self._op("lose_replies", **kwargs)

    async def freeze_prices(self, **kwargs: Any) -> None:
        await self._op("freeze_prices", **kwargs)

    async def quotes_off(self, **kwargs: Any) -> None:
        await self._op("quotes_off", **kwargs)

    async def set_quote(self, **kwargs: Any) -> dict[str, Any]:
        return dict(await self._op("set_quote", **kwargs))

    async def start_maintenance(self, **kwargs: Any) -> int:
        return int(await self._op("start_maintenance", **kwargs))

    async def end_maintenance(self, **kwargs: Any) -> None:
        await self._op("end_maintenance", **kwargs)

    async def update_symbol(self, **kwargs: Any) -> None:
        await self._op("update_symbol", **kwargs)

    async def update_server(self, **kwargs: Any) -> None:
        await self._op("update_server", **kwargs)

    async def advance_clock(self, **kwargs: Any) -> int:
        return int(await self._op("advance_clock", **kwargs))

    async def reset_faults(self, **kwargs: Any) -> None:
        await self._op("reset_faults", **kwargs)

    async def info(self) -> dict[str, Any]:
        return dict(await self._op("info"))

    async def server_time(self, **kwargs: Any) -> int:
        return int(await self._op("server_time", **kwargs))

    async def account_state(self, **kwargs: Any) -> dict[str, Any]:
        return dict(await self._op("account_state", **kwargs))

    async def login_times(self, **kwargs: Any) -> list[int]:
        return [int(t) for t in await self._op("login_times", **kwargs)]


class LocalAdmin(_AdminMethods):
    """Admin operations on a broker in this process."""

    def __init__(self, broker: SimBroker) -> None:
        self._api = AdminApi(broker)

    async def _op(self, op: str, **kwargs: Any) -> Any:
        try:
            return self._api.call(op, kwargs)
        except (MtrobotError, TypeError, ValueError, OverflowError) as exc:
            raise AdminError(str(exc)) from exc


class SimAdmin(_AdminMethods):
    """Admin operations over TCP. One short-lived connection per operation keeps it simple and robust."""

    def __init__(self, host: str, port: int, *, token: str | None = None, timeout: float = 10.0) -> None:
        self._host, self._port, self._token, self._timeout = host, port, token, timeout
        self._ids = itertools.count(1)

    @classmethod
    def from_run_file(cls, path: Path) -> SimAdmin:
        """From ``DATA_DIR/run/simbroker.json`` written by ``mtrobot simbroker``."""
        info = json.loads(path.read_text())
        return cls(info["host"], int(info["port"]), token=info.get("admin_token"))

    async def _op(self, op: str, **kwargs: Any) -> Any:
        message: dict[str, Any] = {
            "v": PROTOCOL_VERSION,
            "id": next(self._ids),
            "t": "admin",
            "op": op,
            "k": kwargs,
        }
        if self._token is not None:
            message["token"] = self._token
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._host, self._port), self._timeout
        )
        try:
            writer.write(pack_frame(message))
            await writer.drain()
            size = HEADER.unpack(await asyncio.wait_for(reader.readexactly(HEADER.size), self._timeout))[0]
            if size > MAX_FRAME:
                raise AdminError("admin: answer too large")
            answer = unpack_body(await asyncio.wait_for(reader.readexactly(size), self._timeout))
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        code, text = answer.get("e", [-1, "no answer"])
        if code != 1:
            raise AdminError(str(text))
        result = answer.get("r")
        return decode_value(result) if not isinstance(result, dict) else result
