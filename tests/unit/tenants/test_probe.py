"""The connection test's verdicts, against a fake terminal (our own Protocol's shape)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mtrobot.web.probe import check


class FakeTerminal:
    def __init__(self, *, ok: bool = True, error: tuple[int, str] = (1, "Success"),
                 raises: Exception | None = None, account: dict | None = None,
                 terminal: dict | None = None) -> None:  # fmt: skip
        self.ok, self.error, self.raises = ok, error, raises
        self.account = {"trade_allowed": True, "trade_expert": True, "login": 5, "currency": "USD"} | (
            account or {}
        )
        self.terminal = {"connected": True, "trade_allowed": True, "tradeapi_disabled": False} | (
            terminal or {}
        )
        self.shut = False

    async def initialize(self, **_kw: object) -> bool:
        if self.raises:
            raise self.raises
        return self.ok

    async def last_error(self) -> tuple[int, str]:
        return self.error

    async def account_info(self) -> SimpleNamespace:
        return SimpleNamespace(**self.account)

    async def terminal_info(self) -> SimpleNamespace:
        return SimpleNamespace(**self.terminal)

    async def shutdown(self) -> None:
        self.shut = True


@pytest.mark.parametrize(
    ("terminal", "code", "field"),
    [
        (FakeTerminal(), "ok", None),
        (FakeTerminal(ok=False, error=(-6, "Terminal: Authorization failed")), "wrong_password", "password"),
        (FakeTerminal(ok=False, error=(-10005, "IPC timeout")), "broker_unreachable", None),
        (FakeTerminal(ok=False, error=(-6, "unknown trade server")), "unknown_server", "server"),
        (FakeTerminal(account={"trade_allowed": False}), "investor_password", "password"),
        (FakeTerminal(account={"trade_expert": False}), "trading_disabled", None),
        (FakeTerminal(terminal={"tradeapi_disabled": True}), "trading_disabled", None),
        (FakeTerminal(raises=ConnectionRefusedError()), "broker_unreachable", None),
    ],
)
async def test_each_outcome_becomes_a_verdict_naming_what_to_fix(
    terminal: FakeTerminal, code: str, field
) -> None:
    outcome = await check(terminal, 5, "pw", "Sim-Demo", 1000)
    assert (outcome.code, outcome.field) == (code, field)
    assert outcome.message and "pw" not in outcome.message
    assert terminal.shut
