"""The pages people use: sign up, sign in, the onboarding wizard and the dashboard.

Each page is a static HTML file of ``web/static/pages`` whose script talks to the JSON API like any other
client (the session cookie, the CSRF header on writes). The pages carry a Content-Security-Policy that lets
them load only this site's own files: a script or style from a CDN would simply not run.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from mtrobot.web.assets import OWN_STATIC

PAGES = OWN_STATIC / "pages"

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(PAGES / f"{name}.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


@router.get("/")
def home() -> RedirectResponse:
    """The dashboard; its script sends a visitor who is not signed in to the sign-in page."""
    return RedirectResponse("/dashboard", status_code=307)


@router.get("/signin")
def signin() -> FileResponse:
    return _page("signin")


@router.get("/signup")
def signup() -> FileResponse:
    return _page("signup")


@router.get("/onboarding")
def onboarding() -> FileResponse:
    return _page("onboarding")


@router.get("/dashboard")
def dashboard() -> FileResponse:
    return _page("dashboard")
