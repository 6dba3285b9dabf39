"""Static files: the app's own pages, scripts and styles, and third-party assets served from the installed
packages that ship them (pinned in pyproject.toml). Nothing is fetched from anywhere at run time, and no
third-party file is copied into this repository.

| URL prefix | files | package |
|---|---|---|
| ``/static/`` | the app's own pages, scripts and styles | mtrobot (``web/static``) |
| ``/vendor/chart/`` | Chart.js 4 with its date adapter (``Chart.bundle.js``) | ``chartkick`` |
| ``/vendor/apidocs/`` | Swagger UI and ReDoc bundles | ``fastapi-offline`` |
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp

OWN_STATIC = Path(str(files("mtrobot.web"))) / "static"
CHART_JS = "/vendor/chart/Chart.bundle.js"
APIDOCS = "/vendor/apidocs"


def _package_dir(package: str, *parts: str) -> Path:
    path = Path(str(files(package))).joinpath(*parts)
    if not path.is_dir():  # an install without the package's data: say which package, not a 404 later
        raise RuntimeError(f"the installed {package} package has no {'/'.join(parts)}; reinstall mtrobot")
    return path


def _static(directory: Path) -> ASGIApp:
    # Compressed: Chart.js and the API-docs bundles are megabytes, a phone on a slow link feels each one.
    # Only static files: compressing API answers that carry secrets would invite BREACH-style attacks.
    return GZipMiddleware(StaticFiles(directory=directory), minimum_size=1024)


def mount_assets(app: FastAPI) -> None:
    app.mount("/static", _static(OWN_STATIC), name="static")
    app.mount("/vendor/chart", _static(_package_dir("chartkick", "django", "static", "chartkick")))
    app.mount(APIDOCS, _static(_package_dir("fastapi_offline", "static")), name="apidocs")


docs_router = APIRouter(include_in_schema=False)

DOCS_CSP = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",  # the pages' own one-line set-up scripts (FastAPI's templates)
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",  # ReDoc's sidebar asks a CDN for its logo: this refuses it before any request
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    )
)
"""Only this site's files for /docs and /redoc, whatever the bundles would fetch."""


def _only_this_site(page: HTMLResponse) -> HTMLResponse:
    page.headers["Content-Security-Policy"] = DOCS_CSP
    return page


@docs_router.get("/docs")
def swagger_ui() -> HTMLResponse:
    page = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="mtrobot API",
        swagger_js_url=f"{APIDOCS}/swagger-ui-bundle.js",
        swagger_css_url=f"{APIDOCS}/swagger-ui.css",
        swagger_favicon_url="/static/favicon.svg",
        # Swagger UI would otherwise send the document to a public validator for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )
    return _only_this_site(page)


@docs_router.get("/redoc")
def redoc() -> HTMLResponse:
    page = get_redoc_html(
        openapi_url="/openapi.json",
        title="mtrobot API",
        redoc_js_url=f"{APIDOCS}/redoc.standalone.js",
        redoc_favicon_url="/static/favicon.svg",
        with_google_fonts=False,
    )
    return _only_this_site(page)
