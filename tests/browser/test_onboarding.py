"""A new trader, from an empty database to a filled trade on the dashboard, in a real browser."""

from __future__ import annotations

import json
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS, Platform, shot

PASSWORD = "correct horse battery staple"


@pytest.mark.slow  # ~20-30 s: the whole onboarding; its must-show is < 60 s of wall time
def test_from_sign_up_to_a_filled_trade_on_the_dashboard_in_under_a_minute(context, platform: Platform):
    started = time.monotonic()
    page = context.new_page()
    page.goto(platform.url + "/")
    expect(page).to_have_url(re.compile(r"/signin"))
    shot(page, "01-sign-in")
    page.get_by_role("link", name="Create an account").first.click()
    page.wait_for_url(re.compile(r"/signup"))
    page.wait_for_load_state("load")  # the page's script listens for typing only once it has run
    page.get_by_label("Password").fill("short")
    expect(page.locator('[data-error-for="password"]')).to_have_text("5 more characters, please.")
    page.get_by_label("Your name").fill("Ada")
    page.get_by_label("E-mail address").fill("ada@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "02-sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page).to_have_url(re.compile(r"/onboarding$"))
    page.wait_for_load_state("load")  # as on sign-up: typing before the script ran is not checked live

    # The connect form checks each field as the trader types, in plain words.
    connect = page.locator("#connect")
    connect.get_by_label("Login (account number)").fill("12ab")
    expect(connect.locator('[data-error-for="login"]')).to_have_text(
        "the login is the account number: digits only"
    )
    connect.get_by_label("Server").fill("Nowhere-Demo")
    expect(connect.locator('[data-error-for="server"]')).to_contain_text("Nowhere-Demo")
    expect(page.locator("#demo")).to_be_visible()
    shot(page, "03-onboarding-connect")

    page.get_by_role("button", name="Open demo account").click()
    expect(page.locator("#step-robots")).to_be_visible(timeout=20_000)
    expect(page.locator("#robot-list .choice").first).to_be_visible()
    shot(page, "04-onboarding-robots")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("button", name="Start trading")).to_be_visible()
    shot(page, "05-onboarding-start")
    page.get_by_role("button", name="Start trading").click()

    expect(page).to_have_url(re.compile(r"/dashboard"))
    card = page.locator("section.account").first
    expect(card.locator(".connection")).to_have_text("Connected", timeout=30_000)
    expect(card.locator(".balance")).to_contain_text("USD")
    card.get_by_role("button", name="Buy").click()
    expect(card.locator(".new-order .notice")).to_contain_text("sent")
    position = card.locator("table.positions tbody tr[data-ticket]")
    expect(position).to_have_count(1, timeout=20_000)
    expect(position.first).to_contain_text("EURUSD")
    expect(card.locator("table.trades tbody tr[data-deal]").first).to_contain_text("EURUSD")
    expect(card.locator(".activity")).to_contain_text("filled", ignore_case=True, timeout=10_000)
    elapsed = time.monotonic() - started
    robot = card.locator("table.robots tbody tr").first
    robot.get_by_role("button", name="Pause").click()
    expect(robot.locator(".robot-state")).to_have_text("Paused by you")
    expect(robot.get_by_role("button", name="Resume")).to_be_visible()
    chart = page.evaluate("Object.values(Chart.instances)[0].data.datasets[0].data.map((p) => p.y)")
    assert chart and min(chart) > 0, chart
    shot(page, "06-dashboard-filled-trade")
    (SCREENSHOTS.parent / "onboarding.json").write_text(json.dumps({"wall_s": round(elapsed, 2)}))
    assert platform.supervisor.poll() is None, "the supervisor died"
    assert elapsed < 60, f"the onboarding took {elapsed:.1f} s"
