"""Getting a browser context to a signed-in trader with a started demo account quickly (through the API,
with the context's own cookies), for the tests whose subject is not the onboarding itself."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Platform

PASSWORD = "correct horse battery staple"


def csrf_of(context) -> str:
    return next(c["value"] for c in context.cookies() if c["name"] == "mtrobot_csrf")


def call(context, platform: Platform, method: str, path: str, body: Any = None) -> Any:
    headers = {"X-CSRF-Token": csrf_of(context)} if method != "GET" else {}
    r = context.request.fetch(platform.url + "/api/v1" + path, method=method, data=body, headers=headers)
    assert r.ok, f"{method} {path}: {r.status} {r.text()}"
    return r.json() if r.status != 204 else None


def started_demo_account(context, platform: Platform, name: str = "trader") -> str:
    """Register, open a simulated demo account, start its (empty) portfolio; returns the account id."""
    email = f"{name}-{secrets.token_hex(3)}@example.com"
    r = context.request.post(platform.url + "/api/v1/auth/register",
                             data={"email": email, "password": PASSWORD, "name": name})  # fmt: skip
    assert r.status == 201, r.text()
    account = call(context, platform, "POST", "/brokers/demo-accounts", {"deposit": 10000})
    call(context, platform, "PUT", f"/accounts/{account['id']}/portfolio", {"active": True, "robots": []})
    return str(account["id"])


def connected_card(page, platform: Platform, account: str):
    page.goto(platform.url + "/dashboard")
    card = page.locator(f'section.account[data-account="{account}"]')
    expect(card.locator(".connection")).to_have_text("Connected", timeout=30_000)
    return card


def buy(card, lots: str = "0.01") -> None:
    card.get_by_label("Lots").fill(lots)
    card.get_by_role("button", name="Buy").click()
    expect(card.locator(".new-order .notice")).to_contain_text("sent")
