"""Domain errors of the web part, and the one place they become HTTP problem documents (RFC 9457).

Routes and services raise these; nothing below the routes knows about HTTP status codes except this map.
Every problem carries a plain-language ``detail``; a validation problem also names each field in
``errors`` (``[{"field": ..., "message": ...}]``) so a form can show the message beside the right input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, SecretStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from mtrobot.logging import get_logger

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str = Field(description="the input the message is about, e.g. 'password' or 'body.volume'")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str = Field(description="a stable machine-readable reason, e.g. 'wrong_password'")
    errors: list[FieldError] = Field(default_factory=list)


class WebError(Exception):
    status = 400
    title = "Bad request"
    code = "bad_request"

    def __init__(self, detail: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or type(self).code
        self.field = field
        self.headers: dict[str, str] = {}

    def problem(self) -> Problem:
        errors = [FieldError(field=self.field, message=self.detail)] if self.field else []
        return Problem(
            title=self.title, status=self.status, detail=self.detail, code=self.code, errors=errors
        )


class NotAuthenticated(WebError):
    status, title, code = 401, "Not signed in", "not_authenticated"


class Forbidden(WebError):
    status, title, code = 403, "Forbidden", "forbidden"


class NotFound(WebError):
    status, title, code = 404, "Not found", "not_found"


class Conflict(WebError):
    status, title, code = 409, "Conflict", "conflict"


class InvalidInput(WebError):
    """Input that is well-formed but not acceptable; ``field`` names the input to fix."""

    status, title, code = 422, "Invalid input", "invalid"


class InvalidFields(InvalidInput):
    """Several inputs to fix at once, each named; ``code`` says what kind of problem it is."""

    def __init__(self, problems: list[tuple[str, str]], *, code: str) -> None:
        detail = "; ".join(f"{field}: {message}" for field, message in problems)
        super().__init__(detail, code=code)
        self.problems = problems

    def problem(self) -> Problem:
        errors = [FieldError(field=field, message=message) for field, message in self.problems]
        return Problem(
            title=self.title, status=self.status, detail=self.detail, code=self.code, errors=errors
        )


class TooManyAttempts(WebError):
    status, title, code = 429, "Too many attempts", "throttled"

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(max(1, retry_after_s))}


class Unavailable(WebError):
    status, title, code = 503, "Service unavailable", "unavailable"


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(mode="json"), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


async def _on_web_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WebError)
    return problem_response(exc.problem(), exc.headers)


_PLAIN: dict[str, str] = {
    "missing": "is required",
    "string_too_short": "must be at least {min_length} characters long",
    "string_too_long": "must be at most {max_length} characters long",
    "too_short": "needs at least {min_length} entries",
    "too_long": "can have at most {max_length} entries",
    "string_pattern_mismatch": "contains characters or a format that is not accepted here",
    "greater_than": "must be more than {gt}",
    "greater_than_equal": "must be {ge} or more",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be {le} or less",
    "finite_number": "must be a number",
    "extra_forbidden": "is not something this form accepts",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be text",
    "enum": "must be one of: {expected}",
    "literal_error": "must be one of: {expected}",
    "dict_type": "must be a set of named values",
    "model_type": "must be a set of named values",
    "model_attributes_type": "must be a set of named values",
    "list_type": "must be a list",
    "json_invalid": "is not valid JSON",
    "json_type": "is not valid JSON",
}
"""pydantic's error types in words a trader reads ("Value should have at least 10 items after validation" is
not). A type missing here keeps pydantic's own message."""


_FORMATS = {
    "email": "must be an e-mail address such as name@example.com",
    "symbol": "must be a symbol name such as EURUSD (up to 32 letters, digits or . _ # + -)",
    "order id": "may have up to 24 letters, digits, '_' or '-'",
    "robot": "must be a robot name from the catalogue",
}


def plain_message(error: Mapping[str, Any]) -> str:
    """One validation error as a sentence that names the field: "Password must be at least 10 characters"."""
    names = [p for p in _field_name(tuple(error.get("loc", ()))).split(".") if p and not p.isdigit()]
    label = names[-1].replace("_", " ") if names and error.get("type") != "json_invalid" else "the request"
    kind = str(error.get("type", ""))
    if kind in ("too_short", "too_long") and isinstance(error.get("input"), str | SecretStr):
        kind = f"string_{kind}"  # a SecretStr's length is checked as a sequence's: it is still text
    if kind == "string_pattern_mismatch" and label in _FORMATS:
        return f"{label.capitalize()} {_FORMATS[label]}."
    template = _PLAIN.get(kind)
    if template is None:
        phrase = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
        phrase = phrase[:1].lower() + phrase[1:]
        return f"{label.capitalize()}: {phrase}"
    context = {k: f"{v:g}" if isinstance(v, float) else v for k, v in (error.get("ctx") or {}).items()}
    try:
        phrase = template.format(**context)
    except (KeyError, IndexError):
        phrase = template.split(" {")[0].removesuffix(" one of:").removesuffix(":")
    return f"{label.capitalize()} {phrase}."


async def _on_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(field=_field_name(tuple(e.get("loc", ()))), message=plain_message(e)) for e in exc.errors()
    ]
    detail = " ".join(e.message for e in errors) or "The request is not valid."
    problem = Problem(title="Invalid input", status=422, detail=detail, code="invalid", errors=errors)
    return problem_response(problem)


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and isinstance(exc.__cause__, ValueError | RecursionError):
        # FastAPI's undocumented 400 for a body json cannot even decode (not UTF-8, nested past the
        # recursion limit, a 5,000-digit number): the same refusal as any other body that is not JSON.
        unreadable = {"type": "json_invalid", "loc": ("body",), "msg": "JSON decode error", "input": {}}
        return await _on_validation(request, RequestValidationError([unreadable]))
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "Error")
    detail = str(exc.detail) if exc.detail else title
    problem = Problem(
        title=title, status=exc.status_code, detail=detail, code=title.lower().replace(" ", "_")
    )
    return problem_response(problem, dict(exc.headers or {}))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error", path=request.url.path, error=repr(exc), exc_info=exc)
    problem = Problem(
        title="Internal error", status=500, detail="something went wrong on our side", code="internal"
    )
    return problem_response(problem)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(WebError, _on_web_error)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the problems a route can answer with (the content, a problem
    document, is filled in by :func:`document_problems`)."""
    return {s: {"description": _DESCRIBED[s]} for s in statuses}


_DESCRIBED = {
    400: "bad request",
    401: "not signed in, or the session expired",
    403: "signed in, but not allowed (e.g. a read token tried to trade, or the CSRF header is missing)",
    404: "no such resource for this trader",
    409: "conflicts with the current state",
    422: "invalid input; 'errors' names each field",
    429: "too many attempts; see Retry-After",
    503: "a dependency (the message bus) is unavailable; see the detail for what happened to the request",
}


def document_problems(schema: dict[str, Any], api_prefix: str) -> dict[str, Any]:
    """Make every error response of the OpenAPI document an ``application/problem+json`` Problem, and
    declare 401 and 422 on every API operation (any of them can answer so)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (FieldError, Problem):
        components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in schema.get("paths", {}).items():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if path.startswith(api_prefix):
                responses.setdefault("422", {"description": _DESCRIBED[422]})
                if not path.endswith(("/auth/register", "/auth/login")):
                    responses.setdefault("401", {"description": _DESCRIBED[401]})
            for status, response in responses.items():
                if int(status) >= 400:
                    response["description"] = _DESCRIBED.get(int(status), response.get("description", ""))
                    response["content"] = problem
    return schema
