"""RFC 9457 problem details for every error, one mapping from error type to HTTP answer."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter
from starlette.exceptions import HTTPException

from domain.errors import Conflict, NotFound, RuleViolation, TooLarge, TooSoon, Unavailable
from starter.api.deps import current_firm, firm_of_request
from starter.api.limits import BODY_DEADLINE, BODY_IDLE_TIMEOUT, BODY_TITLES, CONTENT_TOO_LARGE, UNAUTHORIZED
from store.database import DATABASE_UNAVAILABLE

log = structlog.get_logger(__name__)
PROBLEM = "application/problem+json"


def problem(
    status: int, title: str, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _json_time(instant: datetime) -> str:
    # The same format as every other time in the API's bodies.
    return TypeAdapter(datetime).dump_python(instant, mode="json")


def _retry_at(instant: datetime) -> dict[str, Any]:
    """Retry-After in seconds until the next reminder, and that instant in the body."""
    wait = max(1, math.ceil((instant - datetime.now(UTC)).total_seconds()))
    return {"headers": {"Retry-After": str(wait)}, "next_reminder_allowed_at": _json_time(instant)}


def _field_name(loc: tuple[Any, ...]) -> str:
    # Drop where the value came from ("body", "query"...) and pydantic's validator names.
    parts = [str(p) for p in loc[1:] if not str(p).startswith("function-")] if len(loc) > 1 else [str(loc[0])]
    return ".".join(parts) or str(loc[0])


def validation_problem(errors: list[dict[str, str]], status: int = 422) -> JSONResponse:
    fields = ", ".join(e["field"] for e in errors)
    title = CONTENT_TOO_LARGE if status == 413 else "Invalid request"
    return problem(status, title, f"invalid fields: {fields}", errors=errors)


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "string_too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty (spaces alone do not count)"  # the value was stripped first
    message = error["msg"].removeprefix("Value error, ")
    if message.startswith("Expected UploadFile"):  # a form's text value where a file part goes
        return "must be a file, not a text value (curl: -F name=@path)"
    return message


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _body_not_sent_as_json(request: Request, error: RequestValidationError) -> bool:
    """A JSON body declared as something else (curl -d's form type, text/plain) is not parsed, and
    pydantic then finds no object: the client is told what to send, not that the body is invalid."""
    media_type = _media_type(request)
    if media_type == "json" or media_type.endswith(("/json", "+json")):
        return False
    return any(
        tuple(e["loc"]) == ("body",) and e["type"] in ("model_attributes_type", "dict_type")
        for e in error.errors()
    )


def _form_sent_as_json(request: Request) -> bool:
    """A JSON body sent to an operation that takes a form (fields and files): every field would be
    reported missing, when the client only has to change its encoding."""
    media_type = _media_type(request)
    body_field = getattr(request.scope.get("route"), "body_field", None)
    return media_type.endswith(("/json", "+json")) and isinstance(
        getattr(body_field, "field_info", None), params.Form
    )


def _depends_on(dependant: Any, call: Any) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in getattr(dependant, "dependencies", ()))


async def _unauthenticated(request: Request) -> JSONResponse | None:
    """A body FastAPI cannot read is refused before the route's dependencies run: a caller
    without a valid key is told that first, as for any other request, not what its body lacks.
    (A request whose key was checked already, refused by its route after, is left as it is.)"""
    route = request.scope.get("route")
    if getattr(request.state, "firm_id", None) or not _depends_on(
        getattr(route, "dependant", None), current_firm
    ):
        return None
    try:
        if await firm_of_request(request):
            return None
    except DATABASE_UNAVAILABLE as error:  # the key cannot be checked: as any route then, a 503
        return database_unavailable(error)
    return problem(401, "Unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


def _unreadable_body(cause: BaseException | None) -> str:
    """Why FastAPI could not read a body, where the reason is the client's to fix."""
    if isinstance(cause, RecursionError):
        return "the body could not be read: its JSON is nested too deeply"
    if isinstance(cause, ValueError) and "integer string conversion" in str(cause):
        return "the body could not be read: a number in it has more than 4,300 digits"
    return "the body could not be read: send JSON in UTF-8 (or the form the operation takes)"


def database_unavailable(error: Exception) -> JSONResponse:
    """The 503 to retry when PostgreSQL is out of reach, whichever route met it."""
    log.warning("database unavailable", error=type(error).__name__)
    return problem(
        503,
        "Service unavailable",
        f"the database did not answer ({type(error).__name__}): retry in a moment",
        headers={"Retry-After": "5"},
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        allowed = allowed_methods(app, request)
        if request.method not in allowed:
            # `PATCH /v1/dossiers/status-counts` reaches `/{dossier_id}`, whose id it is not: the
            # literal path takes no PATCH.
            return method_not_allowed(allowed)
        unreadable = [e for e in error.errors() if e["type"] == "json_invalid"]
        if unreadable and (refused := await _unauthenticated(request)):  # the only one before the key's
            return refused
        if _form_sent_as_json(request):
            return problem(
                415,
                "Unsupported Media Type",
                "this operation takes multipart/form-data (its fields and files), not JSON",
            )
        if _body_not_sent_as_json(request, error):
            return problem(
                415,
                "Unsupported Media Type",
                "the body must be JSON, sent with Content-Type: application/json (this request's is"
                f" {request.headers.get('content-type') or 'missing'}; `curl -d` sends"
                " application/x-www-form-urlencoded unless told with -H)",
            )
        if unreadable:  # its loc ends with the character position where decoding stopped
            where, why = unreadable[0]["loc"][-1], unreadable[0].get("ctx", {}).get("error", "")
            return problem(400, "Bad Request", f"the body is not valid JSON: {why} (at character {where})")
        errors = [{"field": _field_name(tuple(e["loc"])), "message": _message(e)} for e in error.errors()]
        return validation_problem(errors)

    @app.exception_handler(TooLarge)
    async def too_large(_: Request, error: TooLarge) -> JSONResponse:
        return validation_problem([{"field": error.field, "message": error.message}], status=413)

    @app.exception_handler(RuleViolation)
    async def rule_violation(_: Request, error: RuleViolation) -> JSONResponse:
        return validation_problem([{"field": error.field, "message": error.message}])

    @app.exception_handler(NotFound)
    async def not_found(_: Request, error: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(error))

    @app.exception_handler(Conflict)
    async def conflict(_: Request, error: Conflict) -> JSONResponse:
        return problem(409, "Conflict", str(error))

    @app.exception_handler(TooSoon)
    async def too_soon(_: Request, error: TooSoon) -> JSONResponse:
        return problem(429, "Too many requests", str(error), **_retry_at(error.retry_at))

    @app.exception_handler(Unavailable)
    async def unavailable(_: Request, error: Unavailable) -> JSONResponse:
        log.warning("dependency unavailable", error=str(error))
        if error.retry_at is not None:
            return problem(503, "Service unavailable", str(error), **_retry_at(error.retry_at))
        return problem(503, "Service unavailable", str(error), headers={"Retry-After": "5"})

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 405:
            # Starlette names the methods of the first route on the path; a path has several.
            return method_not_allowed(allowed_methods(app, request))
        titles = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            422: "Invalid request",
            **BODY_TITLES,
        }
        title = titles.get(error.status_code, "Error")
        detail = str(error.detail)
        # A body FastAPI or Starlette could not even decode (bytes that are not UTF-8, a multipart
        # without its boundary...) is refused before the route's dependencies: the key comes first.
        if error.status_code == 400 and (refused := await _unauthenticated(request)):
            return refused
        if error.status_code == 400 and detail == "There was an error parsing the body":
            detail = _unreadable_body(error.__cause__)
        return problem(error.status_code, title, detail, headers=getattr(error, "headers", None))

    async def database_down(_: Request, error: Exception) -> JSONResponse:
        return database_unavailable(error)

    for kind in DATABASE_UNAVAILABLE:  # a 503 to retry, not a 500
        app.add_exception_handler(kind, database_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled error", path=request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def method_not_allowed(allowed: list[str]) -> JSONResponse:
    return problem(405, "Method not allowed", "Method Not Allowed", headers={"Allow": ", ".join(allowed)})


HTTP_METHODS = frozenset({"get", "head", "post", "put", "patch", "delete"})


def allowed_methods(app: FastAPI, request: Request) -> list[str]:
    """The methods the API's contract (its OpenAPI paths) gives the request's path.

    A literal path (`/v1/dossiers/status-counts`) is a resource of its own: a template that
    happens to match it too (`/v1/dossiers/{dossier_id}`) adds none of its methods.
    """
    matching = [
        (template, operations)
        for template, operations in app.openapi()["paths"].items()
        if re.fullmatch(re.sub(r"\{[^/}]+\}", "[^/]+", template), request.url.path)
    ]
    chosen = [m for m in matching if "{" not in m[0]] or matching
    return sorted(
        {method.upper() for _, operations in chosen for method in operations if method in HTTP_METHODS}
    )


class FieldError(BaseModel):
    field: str = Field(description="The field, dotted for a nested one (legal_representative.email)")
    message: str = Field(description="What is wrong with it")


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of this API is answered."""

    type: str = Field(default="about:blank", description="Always about:blank: `status` says the kind")
    title: str = Field(description="A short summary of the kind of problem")
    status: int = Field(description="The HTTP status")
    detail: str = Field(description="What went wrong and, where it helps, what to do")
    errors: list[FieldError] | None = Field(
        default=None, description="Each invalid field (a 422, or a 413 for a file too large)"
    )
    next_reminder_allowed_at: datetime | None = Field(
        default=None,
        description="429 to a reminder, or 503 when YouSign did not confirm it (the day is spent all"
        " the same): from when the next one is allowed",
    )


_MEANINGS = {
    400: "The body cannot be read (not JSON, not a form, not a YouSign event)",
    401: "No valid API key",
    403: "Not allowed from here",
    404: "Not found for this firm",
    408: f"The body stopped coming for {BODY_IDLE_TIMEOUT:g} s before its end, or took over"
    f" {BODY_DEADLINE:g} s",
    409: "The resource's state forbids it",
    413: "Body or file too large",
    415: "A JSON body sent without Content-Type: application/json",
    422: "Invalid fields, each named in `errors`",
    429: "Too soon: retry after the seconds of Retry-After",
    503: "Temporal or the database unavailable: retry after the seconds of Retry-After",
}


def problem_responses(
    *statuses: int, meanings: dict[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the problem answers a route may give (`meanings` where a route's
    differ from the API's usual ones)."""
    meanings = _MEANINGS | (meanings or {})
    return {
        status: {
            "model": Problem,  # registers the schema (FastAPI also lists it under application/json)
            "description": meanings[status],
            "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}},
            **({"headers": {"Retry-After": RETRY_AFTER}} if status in (429, 503) else {}),
        }
        for status in statuses
    }


RETRY_AFTER = {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}


def located(status: int, what: str) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI declaration of a success answer's `Location` header."""
    return {status: {"headers": {"Location": {"description": what, "schema": {"type": "string"}}}}}
