"""``mtrobot web``: migrate, build the app, serve it with uvicorn until SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib

import uvicorn

from mtrobot import eventloop
from mtrobot.bus.server import free_port
from mtrobot.logging import get_logger
from mtrobot.settings import Settings
from mtrobot.web.app import create_app
from mtrobot.web.config import WebOptions

log = get_logger(__name__)

WEB_URL_FILE = "web.url"


def web_url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"


def serve(
    settings: Settings,
    host: str,
    port: int,
    options: WebOptions | None = None,
    *,
    demo: bool = False,
    trusted_proxies: tuple[str, ...] = (),
) -> int:
    """Serve until stopped; ``port`` 0 picks a free one. Announces the URL in ``DATA_DIR/run/web.url``."""
    if port == 0:
        port = free_port(host or "127.0.0.1")
    # Plain http on loopback is the embedded default: browsers accept Secure cookies only over https, and on
    # http://localhost; an operator behind TLS keeps them Secure.
    opts = options or WebOptions(
        cookie_secure=host not in ("127.0.0.1", "localhost", "::1"),
        demo=demo,
        trusted_proxies=trusted_proxies,
    )
    app = create_app(settings, opts)
    url_file = settings.run_dir / WEB_URL_FILE
    # proxy_headers off: uvicorn would believe X-Forwarded-For from any loopback client; the app itself
    # believes it only from WebOptions.trusted_proxies (mtrobot.web.security_throttle.client_address).
    # No per-message deflate on the stream: it compressed the same snapshot again for every socket (each has
    # its own compression context), about a tenth of the worker's fan-out time at 1,000 sockets. The
    # websockets-sansio protocol is named, not left to "auto": the stream writes its frames straight to it
    # (mtrobot.web.frames).
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False, lifespan="on",
                            proxy_headers=False, ws="websockets-sansio",
                            ws_per_message_deflate=False)  # fmt: skip
    server = uvicorn.Server(config)
    url_file.write_text(web_url(host, port))
    log.info("web listening", url=web_url(host, port), event_loop=eventloop.loop_name())
    try:
        eventloop.run(server.serve())
    finally:
        with contextlib.suppress(FileNotFoundError):
            url_file.unlink()
    return 0
