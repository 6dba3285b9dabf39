"""The hub's HTTP API (served by ``mtrobot hub``): a thin transport over :class:`HubStore`.

Errors are problem documents (RFC 9457, ``application/problem+json``); a refused configuration is a 422
whose ``errors`` name each offending field, and nothing is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any

import nats.errors
from fastapi import APIRouter, Body, Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

from mtrobot.core.errors import MtrobotError
from mtrobot.hub.documents import ConfigDocumentError, FieldError
from mtrobot.hub.errors import BusUnavailable, NotConfigured, RevisionConflict, UnknownRevision
from mtrobot.hub.registry import ServiceDirectory, ServiceInstance
from mtrobot.hub.store import HubStore, StoredConfig
from mtrobot.hub.token import token_matches

PROBLEM = "application/problem+json"
API = "/api/v1"


@dataclass
class HubContext:
    """What the routes need; filled in by the server once the bus answers (503 until then)."""

    store: HubStore | None = None
    directory: ServiceDirectory | None = None
    ready: bool = False


class ConfigOut(BaseModel):
    service: str
    revision: int
    updated_at: datetime | None
    schema_name: str | None = Field(description="the schema the document is validated against")
    config: dict[str, Any]


class ServiceSummary(BaseModel):
    service: str
    revision: int | None
    updated_at: datetime | None
    schema_name: str | None
    running: int


class HistoryItem(BaseModel):
    revision: int
    operation: str
    updated_at: datetime | None
    config: dict[str, Any] | None


class Written(BaseModel):
    service: str
    revision: int


MAX_REVISION = 2**63 - 1
"""A revision is a JetStream sequence number (unsigned 64-bit on the server, signed on the wire here)."""


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    revision: int = Field(ge=1, le=MAX_REVISION)


class ProblemOut(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, str]] | None = None


def _problem_responses() -> dict[int | str, dict[str, Any]]:
    """The problems every API route can answer with (each an ``application/problem+json`` document)."""
    described = {
        401: "no token, or not the hub's token",
        404: "no stored document for the service, or no such revision",
        412: "If-Match names a revision that is no longer the current one",
        422: "the document or the request was refused; 'errors' names each field",
        503: "the hub is not connected to the bus",
    }
    return {
        status: {"description": text, "model": ProblemOut, "content": {PROBLEM: {}}}
        for status, text in described.items()
    }


def problem(status: int, title: str, detail: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _expected_revision(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    text = if_match.strip().strip('"').removeprefix("W/").strip('"')
    if not text.isdigit() or len(text) > 19 or not 0 <= int(text) <= MAX_REVISION:
        message = "must be a revision number"
        raise ConfigDocumentError("(request)", [FieldError("If-Match", message)])
    return int(text)


def _context(request: Request) -> HubContext:
    ctx: HubContext = request.app.state.hub
    return ctx


def _store(request: Request) -> HubStore:
    store = _context(request).store
    if store is None:
        raise BusUnavailable("the hub is not connected to the bus yet")
    return store


def _directory(request: Request) -> ServiceDirectory:
    directory = _context(request).directory
    if directory is None:
        raise BusUnavailable("the hub is not connected to the bus yet")
    return directory


StoreDep = Annotated[HubStore, Depends(_store)]
DirectoryDep = Annotated[ServiceDirectory, Depends(_directory)]


def create_app(ctx: HubContext, token: str) -> FastAPI:
    """The hub API over ``ctx`` (tests pass a context holding a store on a real bus). Every ``/api/v1`` route
    needs ``Authorization: Bearer <token>`` (the token of ``DATA_DIR/hub.token``); health routes do not."""
    app = FastAPI(title="mtrobot hub", version="1", description="Central configuration and service registry.")
    app.state.hub = ctx
    _install_error_handlers(app)
    bearer = HTTPBearer(auto_error=False, description="the token in DATA_DIR/hub.token")

    responses = _problem_responses()
    api = APIRouter(prefix=API, dependencies=[Depends(bearer)], responses=responses)  # documents the scheme

    @app.middleware("http")
    async def token_first(request: Request, call_next: Any) -> Any:
        # Before anything else looks at the request (body, path parameters, the bus): no token, no answer.
        if request.url.path.startswith(API):
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not token_matches(token, given.strip()):
                return _unauthorized()
        return await call_next(request)

    def schema_name(hub: HubStore, service: str) -> str | None:
        schema = hub.registry.schema_for(service)
        return schema.__name__ if schema else None

    def config_out(hub: HubStore, stored: StoredConfig) -> ConfigOut:
        return ConfigOut(
            service=stored.service,
            revision=stored.revision,
            updated_at=stored.updated_at,
            schema_name=schema_name(hub, stored.service),
            config=stored.document,
        )

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        if ctx.ready and ctx.store is not None:
            return JSONResponse({"status": "ready"})
        return problem(503, "Not ready", "the hub is not connected to the bus yet")

    @api.get("/services", tags=["config"])
    async def list_services(hub: StoreDep, registry: DirectoryDep) -> list[ServiceSummary]:
        """Every service that has a stored configuration or a running instance."""
        stored = {s.service: s for s in await hub.services()}
        running: dict[str, int] = {}
        for instance in await registry.running():
            running[instance.service] = running.get(instance.service, 0) + 1
        return [
            ServiceSummary(
                service=name,
                revision=stored[name].revision if name in stored else None,
                updated_at=stored[name].updated_at if name in stored else None,
                schema_name=schema_name(hub, name),
                running=running.get(name, 0),
            )
            for name in sorted(stored.keys() | running.keys())
        ]

    @api.get("/services/{service}/config", tags=["config"])
    async def get_config(service: str, hub: StoreDep) -> ConfigOut:
        """The stored document (what was set; the service's safe defaults fill in the rest)."""
        return config_out(hub, await hub.get(service))

    @api.put("/services/{service}/config", tags=["config"])
    async def put_config(
        service: str,
        hub: StoreDep,
        document: Annotated[dict[str, Any], Body(description="the configuration document")],
        if_match: Annotated[str | None, Header(description="write only if still at this revision")] = None,
    ) -> Written:
        """Validate and store a new document; running services pick it up within a second."""
        revision = await hub.put(service, document, expected_revision=_expected_revision(if_match))
        return Written(service=service, revision=revision)

    @api.delete("/services/{service}/config", tags=["config"])
    async def delete_config(service: str, hub: StoreDep) -> dict[str, str]:
        """Remove the document: running services go back to their safe defaults."""
        await hub.delete(service)
        return {"service": service, "status": "deleted"}

    @api.get("/services/{service}/history", tags=["config"])
    async def history(service: str, hub: StoreDep) -> list[HistoryItem]:
        """Every revision kept (the last 20), oldest first."""
        return [HistoryItem(**{**asdict(e), "config": e.document}) for e in await hub.history(service)]

    @api.post("/services/{service}/rollback", tags=["config"])
    async def rollback(service: str, body: RollbackIn, hub: StoreDep) -> Written:
        """Store again the document of an earlier revision (as a new revision)."""
        return Written(service=service, revision=await hub.rollback(service, body.revision))

    @api.get("/schemas", tags=["config"])
    async def schemas(hub: StoreDep) -> dict[str, Any]:
        """The JSON Schema of every registered configuration schema, by service-name prefix."""
        return {prefix: model.model_json_schema() for prefix, model in hub.registry.prefixes().items()}

    @api.get("/registry", tags=["registry"])
    async def registry(registry: DirectoryDep, service: str | None = None) -> list[ServiceInstance]:
        """The service instances running now (each heartbeats; a stopped one is dropped)."""
        return await registry.running(service)

    app.include_router(api)
    return app


def _unauthorized() -> JSONResponse:
    response = problem(401, "Unauthorized", "send the token of DATA_DIR/hub.token as a Bearer token")
    response.headers["WWW-Authenticate"] = "Bearer"
    return response


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ConfigDocumentError)
    async def refused(_request: Request, exc: ConfigDocumentError) -> JSONResponse:
        errors = [{"field": e.field, "message": e.message} for e in exc.errors]
        return problem(422, "Configuration refused", str(exc), errors)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]), "message": e["msg"]}
            for e in exc.errors()
        ]
        return problem(422, "Invalid request", "the request does not have the expected shape", errors)

    @app.exception_handler(nats.errors.Error)
    async def bus_error(_request: Request, exc: nats.errors.Error) -> JSONResponse:
        return problem(503, "Bus unavailable", f"the bus did not answer: {exc!r}")

    statuses: dict[type[MtrobotError], tuple[int, str]] = {
        NotConfigured: (404, "Not configured"),
        UnknownRevision: (404, "Unknown revision"),
        RevisionConflict: (412, "Revision conflict"),
        BusUnavailable: (503, "Bus unavailable"),
    }
    for error_type, (status, title) in statuses.items():

        async def handler(
            _request: Request, exc: Exception, status: int = status, title: str = title
        ) -> JSONResponse:
            return problem(status, title, str(exc))

        app.add_exception_handler(error_type, handler)
