"""Every page loads only from the platform itself: with every other host unreachable, the pages and the API
documentation (/docs, /redoc) render, and nothing was even asked of another host."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.integration.web.conftest import LiveWeb


@pytest.mark.parametrize(
    ("path", "ready", "name"),
    [
        ("/docs", ".swagger-ui .info .title", "14-api-docs-swagger"),
        pytest.param("/redoc", "redoc-wrap h1, .api-info h1", "15-api-docs-redoc", marks=pytest.mark.slow),
        ("/signup", "form#signup", "02b-sign-up-offline"),
    ],
)
def test_pages_render_offline_and_ask_nothing_of_another_host(context, web_only: LiveWeb, path, ready, name):
    own = urlsplit(web_only.url).netloc
    elsewhere: list[str] = []

    def only_here(route) -> None:
        if urlsplit(route.request.url).netloc in (own, ""):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_here)
    page = context.new_page()
    failed: list[tuple[str, str | None]] = []
    page.on("requestfailed", lambda r: failed.append((r.url, r.failure)))
    page.goto(web_only.url + path)
    expect(page.locator(ready).first).to_be_visible(timeout=20_000)
    page.wait_for_load_state("networkidle")
    shot(page, name)
    assert elsewhere == [], "asked another host"
    # ReDoc's sidebar wants its logo from a CDN: the page's Content-Security-Policy refuses it unsent.
    assert [(u, why) for u, why in failed if urlsplit(u).netloc == own or why != "csp"] == []
