"""One error hierarchy for the whole hub, rendered as RFC 9457 problem details.

Services raise these; only `install_handlers` turns them into HTTP responses.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from ops.context import current_request_id

log = logging.getLogger("govhub.errors")

PROBLEM_JSON = "application/problem+json"


class HubError(Exception):
    """Base of every error the hub reports to a caller."""

    status = 500
    code = "internal"
    title = "Internal error"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}
        self.extra = extra or {}


class Invalid(HubError):
    status, code, title = 422, "invalid", "Invalid input"


class BadRequest(HubError):
    status, code, title = 400, "bad_request", "Bad request"


class Unauthenticated(HubError):
    status, code, title = 401, "unauthenticated", "Authentication required"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(detail, **kwargs)


class Forbidden(HubError):
    status, code, title = 403, "forbidden", "Not allowed"


class NotFound(HubError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(HubError):
    status, code, title = 409, "conflict", "Conflict"


class PreconditionFailed(HubError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class PayloadTooLarge(HubError):
    status, code, title = 413, "payload_too_large", "Payload too large"


class UnsupportedMediaType(HubError):
    status, code, title = 415, "unsupported_media_type", "Unsupported media type"


class TooManyRequests(HubError):
    status, code, title = 429, "rate_limited", "Too many requests"


class UpstreamError(HubError):
    status, code, title = 502, "upstream_error", "Upstream error"


class Unavailable(HubError):
    status, code, title = 503, "unavailable", "Service unavailable"


class UpstreamTimeout(HubError):
    status, code, title = 504, "upstream_timeout", "Upstream timeout"


class DatabaseBusy(Unavailable):
    """Other writes held the database longer than this one could wait for its turn: retry soon."""

    code, title = "database_busy", "Database busy"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "1"})
        super().__init__(detail, **kwargs)


class DatabaseUnavailable(Unavailable):
    code, title = "database_unavailable", "Service unavailable"

    def __init__(self, detail: str, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"Retry-After": "5"})
        super().__init__(detail, **kwargs)


class ConcurrentUpdate(Conflict):
    code = "concurrent_update"


_SQLITE_BUSY_CODES = (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
# PostgreSQL cancelled a statement that waited too long for a lock (55P03 lock_not_available) or ran
# past its time (57014 query_canceled: GOVHUB_DATABASE_LOCK/STATEMENT_TIMEOUT_SECONDS).
_PG_BUSY_STATES = ("55P03", "57014")
_PG_CONFLICT_STATES = ("40001", "40P01")  # serialization_failure, deadlock_detected


def database_error(exc: DBAPIError) -> HubError:
    """What a failed database call means to its caller: the database was busy (503, retry in a moment),
    the change met a concurrent one (409), or the database could not be used (503)."""
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    if (isinstance(sqlite_code, int) and sqlite_code & 0xFF in _SQLITE_BUSY_CODES) or "database is locked" in str(orig):
        return DatabaseBusy("the database is busy: other writes held it longer than this one could wait; retry in a moment")
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate in _PG_BUSY_STATES:
        return DatabaseBusy(
            "the database did not answer in time (it is busy, or a lock this request needs is held); retry in a moment"
        )
    if sqlstate in _PG_CONFLICT_STATES:
        return ConcurrentUpdate("the change met another made at the same time; reload and retry")
    return DatabaseUnavailable("the database is not reachable right now; retry later")


def database_timed_out(exc: BaseException) -> bool:
    """Whether a database error is the database not answering in time (busy or stuck), not being gone."""
    return isinstance(exc, PoolTimeout) or is_database_busy(exc)


def is_database_busy(exc: BaseException) -> bool:
    """Whether `exc` says the database was busy (not that this particular change was wrong)."""
    if isinstance(exc, DatabaseBusy):
        return True
    return isinstance(exc, OperationalError) and isinstance(database_error(exc), DatabaseBusy)


def problem_response(
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    """Build an application/problem+json response (RFC 9457)."""
    body: dict[str, Any] = {
        "type": f"/problems/{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    if extra:
        body.update(extra)
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is the hub's stable error code, `errors` names each field at fault.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "description": "a URI reference naming the kind of problem"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "instance": {"type": "string"},
        "request_id": {"type": "string", "description": "the X-Request-ID of the request: quote it when reporting"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "in": {"type": "string", "description": "where the field was sent: path, query, header or body"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def document_problems(openapi: dict[str, Any]) -> dict[str, Any]:
    """Describe the errors as they are answered: every operation may answer a 4xx or 5xx problem
    (``application/problem+json``), including the 422 FastAPI documents as its own validation error."""
    content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    problem = {"description": "A problem (RFC 9457)", "content": content}
    for operations in openapi.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    # a protocol's own error answer (e.g. an OCSP malformedRequest) stays documented beside the problem
                    own = {k: v for k, v in response.get("content", {}).items() if k != "application/json"}
                    response["content"] = {**content, **own}
            for status in ("4XX", "5XX"):
                responses.setdefault(status, problem)
    schemas = openapi.setdefault("components", {}).setdefault("schemas", {})
    for name in _VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    schemas["Problem"] = PROBLEM_SCHEMA
    return openapi


def field_errors(found: Sequence[Any]) -> tuple[str, list[dict[str, Any]]]:
    """The summary and the field errors of a 422, from pydantic-style errors (``loc``, ``msg``, ``type``):
    FastAPI's validation errors and ``ops.inputs``' alike, so every 422 reads the same."""
    errors: list[dict[str, Any]] = []
    for err in found:
        loc = [str(part) for part in err.get("loc", ())]
        # Drop the "body"/"query" prefix for the field path, keep it as "in".
        where = loc[0] if loc else "body"
        field = ".".join(loc[1:]) if len(loc) > 1 else where
        message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
        if err.get("type") == "json_invalid":
            ctx = err.get("ctx") or {}
            message = f"malformed JSON: {ctx.get('error', 'cannot be parsed')}"
            field = "body"
        errors.append({"field": field, "in": where, "message": message, "type": err.get("type")})
    if len(errors) == 1:
        summary = f"{errors[0]['field']}: {errors[0]['message']}"
    else:
        summary = f"{len(errors)} fields are invalid: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return summary, errors


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """A 405's ``Allow``: the methods of the resource (RFC 9110), not only those of the one route the
    router tried. Where the OpenAPI description has the path, its most specific template decides, as
    OpenAPI reads paths (``/certhub/types/examples`` before ``/certhub/types/{code}``)."""
    routes = request.app.router.routes
    served = [m for m in _METHODS if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]
    path = request.url.path
    templates = [(t, ops) for t, ops in request.app.openapi().get("paths", {}).items() if _template(t).fullmatch(path)]
    if not templates:
        return served
    fewest = min(t.count("{") for t, _ in templates)
    documented = {m.upper() for t, ops in templates if t.count("{") == fewest for m in ops}
    return [m for m in served if m in documented]


def _template(path: str) -> re.Pattern[str]:
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in re.split(r"(\{[^}]+\})", path)))


def install_handlers(app: FastAPI) -> None:
    """Map every error to a problem response; nothing escapes as a bare 500 page."""

    @app.exception_handler(HubError)
    async def _hub_error(request: Request, exc: HubError) -> JSONResponse:
        return problem_response(
            status=exc.status,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        summary, errors = field_errors(exc.errors())
        malformed = any(e["type"] == "json_invalid" for e in errors)
        return problem_response(
            status=400 if malformed else 422,
            code="malformed_json" if malformed else "invalid",
            title="Malformed JSON" if malformed else "Invalid input",
            detail=summary,
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated"}
        detail = exc.detail if isinstance(exc.detail, str) else "request refused"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path}"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            detail = f"{request.method} is not allowed here; this resource takes {', '.join(allowed)}"
        return problem_response(
            status=exc.status_code,
            code=codes.get(exc.status_code, f"http_{exc.status_code}"),
            title=detail if exc.status_code not in (404, 405) else HTTPStatus(exc.status_code).phrase,
            detail=detail,
            instance=request.url.path,
            headers=headers,
        )

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return problem_response(
            status=409,
            code="concurrent_update",
            title="Conflict",
            detail="the record was changed by someone else at the same time; reload and retry",
            instance=request.url.path,
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        log.warning("integrity error on %s: %s", request.url.path, exc.orig)
        return problem_response(
            status=409,
            code="conflict",
            title="Conflict",
            detail="the change conflicts with an existing record (duplicate or missing reference)",
            instance=request.url.path,
        )

    async def _answer_as(request: Request, problem: HubError) -> Response:
        """Answer as the HubError a database failure means, by whichever handler renders those (the
        console's gives a page)."""
        handler = request.app.exception_handlers.get(HubError, _hub_error)
        answer = handler(request, problem)
        response: Response = await answer if inspect.isawaitable(answer) else answer
        return response

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError) -> Response:
        problem = database_error(exc)
        if isinstance(problem, DatabaseUnavailable):
            log.error("database error on %s: %s", request.url.path, exc.orig)
        else:
            log.warning("%s on %s: %s", problem.code, request.url.path, exc.orig)
        return await _answer_as(request, problem)

    @app.exception_handler(PoolTimeout)
    async def _no_connection(request: Request, exc: PoolTimeout) -> Response:
        # every pooled connection was busy for the pool's whole wait
        log.warning("no database connection free on %s: %s", request.url.path, exc)
        return await _answer_as(request, DatabaseBusy("the database is busy: no connection came free in time; retry in a moment"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return internal_error(request.method, request.url.path)


def internal_error(method: str, path: str) -> JSONResponse:
    """Log the error being handled and answer 500. Called while the request is served (by
    ``ops.middleware``, inside its request id) so that the log line, the problem and the
    ``X-Request-ID`` header all carry the id that ties them together."""
    log.exception("unhandled error on %s %s", method, path, extra={"request_id": current_request_id()})
    return problem_response(
        status=500,
        code="internal",
        title="Internal error",
        detail="an unexpected error occurred; it has been logged with the request id",
        instance=path,
    )
