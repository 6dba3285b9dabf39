"""The dashboard in a real browser: a network drop and its restore, the phone layout, the kill switch, a
pending order placed and cancelled."""

from __future__ import annotations

import re
from datetime import datetime

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, Platform, shot
from tests.browser.helpers import buy, call, connected_card, csrf_of, started_demo_account


def test_after_a_network_drop_the_dashboard_shows_the_latest_state(context, platform: Platform):
    account = started_demo_account(context, platform, "drop")
    page = context.new_page()
    card = connected_card(page, platform, account)
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(0)

    platform.proxy.cut()
    expect(page.locator("#offline")).to_be_visible(timeout=10_000)
    # While the browser is cut off, a trade is made (through the API, not through the cut link).
    cookies = {c["name"]: c["value"] for c in context.cookies()}
    with httpx.Client(base_url=platform.direct_url, cookies=cookies, timeout=10) as direct:
        r = direct.post(f"/api/v1/accounts/{account}/orders", headers={"X-CSRF-Token": csrf_of(context)},
                        json={"symbol": "EURUSD", "order_type": "buy", "volume": 0.02})  # fmt: skip
        assert r.status_code == 202, r.text
    shot(page, "07-dashboard-offline")
    platform.wait_for(lambda: any(p["volume"] == 0.02 for p in platform.snapshot(account).positions))
    platform.proxy.restore()

    expect(page.locator("#offline")).to_be_hidden(timeout=20_000)
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(1, timeout=10_000)
    expect(card.locator("table.positions tbody tr[data-ticket]").first).to_contain_text("0.02")
    platform.wait_for(lambda: card.get_attribute("data-seq") == str(platform.snapshot(account).seq))
    shot(page, "08-dashboard-after-reconnect")


@pytest.mark.slow  # ~20 s: a trade opened and closed, three pages on a phone
def test_on_a_390_px_phone_everything_fits_and_works(phone, platform: Platform):
    account = started_demo_account(phone, platform, "phone")
    page = phone.new_page()
    card = connected_card(page, platform, account)
    buy(card)
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(1, timeout=20_000)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"the page is {width} px wide on a {PHONE['width']} px phone"
    for metric in (".balance", ".equity", ".profit", ".margin-level"):
        box = card.locator(metric).bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    shot(page, "09-dashboard-phone")
    card.locator("table.positions .close-position").first.click()
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(0, timeout=20_000)
    shot(page, "10-dashboard-phone-closed")
    for path, name in (("/signin", "11-sign-in-phone"), ("/onboarding", "12-onboarding-phone")):
        page.goto(platform.url + path)
        page.wait_for_load_state("networkidle")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"], path
        shot(page, name)


@pytest.mark.slow  # ~40-80 s on a busy machine: a fill, the kill switch, a refused order, resume, a fill
def test_the_kill_switch_closes_everything_and_pauses(context, platform: Platform):
    account = started_demo_account(context, platform, "kill")
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    card = connected_card(page, platform, account)
    buy(card)
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(1, timeout=20_000)
    card.get_by_role("button", name="Stop trading and close everything").click()
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(0, timeout=20_000)
    expect(card.locator(".control-result")).not_to_have_class(re.compile(r"\bbad\b"))
    shot(page, "13-dashboard-kill-switch")
    buy(card)  # paused: nothing new opens, and the trader reads why
    last = card.locator(".activity li").last
    expect(last).to_contain_text("not executed", timeout=15_000)
    expect(last).to_contain_text("paused", ignore_case=True)
    card.get_by_role("button", name="Resume robots").click()
    expect(card.locator(".control-result")).to_contain_text("resumed", ignore_case=True)
    buy(card)
    expect(card.locator("table.positions tbody tr[data-ticket]")).to_have_count(1, timeout=20_000)


def test_pending_orders_are_placed_and_cancelled_from_the_dashboard(context, platform: Platform):
    account = started_demo_account(context, platform, "pending")
    page = context.new_page()
    card = connected_card(page, platform, account)
    form = card.locator("form.new-order")
    form.locator("select[name=kind]").select_option("limit")
    price, error = form.get_by_label("Price", exact=True), form.locator('[data-error-for="price"]')
    # Refusals come from the API's own checks and sit beside the box they name.
    for typed, message in (
        ("-1", "Price must be 0 or more."),
        ("", "Price is required for a buy limit order."),
    ):
        price.fill(typed)
        form.get_by_role("button", name="Buy").click()
        expect(error).to_have_text(message)
        expect(price).to_have_class(re.compile(r"\binvalid\b"))
    price.fill("0.5")
    form.get_by_label("Lots").fill("0")
    form.get_by_role("button", name="Buy").click()
    expect(form.locator('[data-error-for="volume"]')).to_have_text("Volume must be more than 0.")
    shot(page, "16b-dashboard-pending-order-refused")
    form.get_by_label("Lots").fill("0.01")
    form.get_by_role("button", name="Buy").click()
    expect(form.locator(".notice")).to_contain_text("pending orders once the broker accepts it")
    rows = card.locator("table.orders tbody tr[data-ticket]")
    expect(rows).to_have_count(1, timeout=20_000)
    expect(rows.first).to_contain_text("buy limit")
    placed = call(context, platform, "GET", f"/accounts/{account}/orders")
    assert [(o["order_type"], o["price"]) for o in placed] == [("buy_limit", 0.5)]
    # An order id longer than the broker's comment allows travels as a hash: its snapshot names no order id.
    long_id = "dashboard-cancel-by-tkt"
    stop = {"symbol": "EURUSD", "order_type": "sell_stop", "volume": 0.02, "price": 0.6, "order_id": long_id}
    call(context, platform, "POST", f"/accounts/{account}/orders", stop)
    expect(rows).to_have_count(2, timeout=20_000)
    pending = {o["type"]: o for o in platform.snapshot(account).orders}
    assert (
        pending["buy_limit"]["order_id"] == placed[0]["order_id"] and pending["sell_stop"]["order_id"] == ""
    )
    shot(page, "16-dashboard-pending-order")

    for kind in ("sell_stop", "buy_limit"):
        ticket = pending[kind]["ticket"]
        card.locator(f'table.orders tr[data-ticket="{ticket}"]').get_by_role("button", name="Cancel").click()
        expect(card.locator(f'table.orders tr[data-ticket="{ticket}"]')).to_have_count(0, timeout=20_000)
        expect(card.locator(".activity")).to_contain_text(f"cancel pending order {ticket}", timeout=10_000)
    expect(rows).to_have_count(0)
    platform.wait_for(lambda: not platform.snapshot(account).orders)  # gone at the broker, not only the page
    # The agent loaded the (empty) portfolio once, and says so once (it once said it twice).
    expect(card.locator(".activity li", has_text="Portfolio loaded")).to_have_count(1)
    expect(card.locator(".activity li", has_text="Portfolio loaded")).to_contain_text(
        "Portfolio loaded: no robot."
    )


def test_trade_and_activity_times_are_the_traders_own_and_the_chart_axis_repeats_no_label(
    browser, platform: Platform
):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="America/New_York")
    try:
        account = started_demo_account(context, platform, "zone")
        page = context.new_page()
        card = connected_card(page, platform, account)
        buy(card)
        trade = card.locator("table.trades tbody tr[data-deal] time")
        expect(trade).to_have_count(1, timeout=20_000)
        expect(card.locator(".activity li[data-kind=fill]")).to_have_count(1, timeout=15_000)
        expect(card.locator("h3 .zone").first).to_have_text("times in your time zone (America/New_York)")
        # The trade's instant (from the broker's server clock, hours away from UTC) is the instant of the
        # fill's activity line, within the time it took the web to hear of it.
        traded = datetime.fromisoformat(trade.get_attribute("datetime").replace("Z", "+00:00"))
        logged = card.locator(".activity li[data-kind=fill] time").get_attribute("datetime")
        assert abs((datetime.fromisoformat(logged) - traded).total_seconds()) < 30, (traded, logged)
        assert trade.get_attribute("datetime") in [t["ts"] for t in platform.snapshot(account).recent_trades]
        assert "broker server time" in trade.locator("xpath=..").get_attribute("title")
        labels = page.evaluate("Object.values(Chart.instances)[0].scales.x.ticks.map((t) => t.label)")
        assert labels and len(labels) == len(set(labels)), labels
        shot(page, "17-dashboard-times-new-york")
    finally:
        context.close()
