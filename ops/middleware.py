"""One ASGI middleware for every request: request id, request-body gate, metrics, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import HTTPBearer
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops.auth import bearer_principal
from ops.context import reset_request_id, set_request_id
from ops.errors import HubError, PayloadTooLarge, UnsupportedMediaType, internal_error, problem_response
from ops.metrics import HTTP_LATENCY, HTTP_REQUESTS

log = logging.getLogger("govhub.access")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_STREAMED_TYPES = (
    "multipart/form-data",
    "application/octet-stream",
    "text/csv",
    "application/x-ndjson",
    "application/jsonl",
    "application/pdf",
)
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


@dataclass(frozen=True)
class BodyRule:
    """What a route takes as a request body, read once from its declaration (the same that makes its
    OpenAPI description): a pydantic body is JSON, ``Form``/``File`` parameters a form, and an endpoint
    that reads the body itself lists its media types in ``openapi_extra={"requestBody": ...}``."""

    media_types: frozenset[str] | None  # None: no body declared (not checked; console pages read their forms)
    uploads: frozenset[str]  # the media types that take the upload limit (files)
    bearer: bool  # the route needs a bearer token: checked before its body is read

    def accepts(self, content_type: str) -> bool:
        if self.media_types is None or content_type in self.media_types:
            return True
        # application/json also stands for its structured-syntax relatives (application/problem+json, ...)
        structured = content_type.startswith("application/") and content_type.endswith("+json")
        return structured and "application/json" in self.media_types


_NO_RULE = BodyRule(media_types=None, uploads=frozenset(_STREAMED_TYPES), bearer=False)


def _needs_bearer(dependant: Dependant) -> bool:
    return isinstance(dependant.call, HTTPBearer) or any(_needs_bearer(d) for d in dependant.dependencies)


def body_rule(route: Any) -> BodyRule:
    """The body rule of a matched route (anything that is not a FastAPI route: not checked)."""
    if not isinstance(route, APIRoute):
        return _NO_RULE
    declared = (route.openapi_extra or {}).get("requestBody", {}).get("content")
    field = route.body_field
    if declared:
        media_types = frozenset(str(k).lower() for k in declared)
        uploads = media_types & frozenset(_STREAMED_TYPES)
    elif field is not None and isinstance(field.field_info, params.File):
        media_types = uploads = frozenset({"multipart/form-data"})
    elif field is not None and isinstance(field.field_info, params.Form):
        media_types, uploads = _FORM_TYPES, frozenset()
    elif field is not None:
        media_types, uploads = frozenset({"application/json"}), frozenset()
    else:
        media_types, uploads = None, frozenset(_STREAMED_TYPES)
    return BodyRule(media_types=media_types, uploads=uploads, bearer=_needs_bearer(route.dependant))


class HubMiddleware:
    """Request id, metrics and the access log; and the gate every request body passes as it arrives.

    An error no handler answered becomes a 500 problem here, where the request id is known: in its body,
    its ``X-Request-ID`` header and the log line.

    A body is refused before it is read: 413 when its declared length is over the limit (the upload
    limit for the routes that take files, the JSON limit otherwise), 415 when the route does not take its
    media type, 401 when the route needs a bearer token and the request has no valid one. A body sent
    without a length (chunked) is counted as it streams and cut off at the limit. The gate runs when the
    endpoint first asks for the body, so requests without one, and routes that never read one, cost
    nothing; the route is known then (scope["route"]).
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes
        self._rules: dict[int, BodyRule] = {}  # by id(route): routes live as long as the app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_id(request_id)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        declared = headers.get("content-length")
        has_body = (declared is not None and declared != "0") or "transfer-encoding" in headers
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "started": False, "refused": False}

        async def send_wrapper(message: Message) -> None:
            if status_holder["refused"] and not message.get("_govhub_refusal"):
                return  # the refusal has been sent; whatever the app says after is dropped
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            if declared is not None and (not declared.isdigit() or int(declared) > max(self.max_body, self.max_upload)):
                await self._refuse(scope, receive, send_wrapper, self._too_large(max(self.max_body, self.max_upload)))
                return
            received = 0
            limit: int | None = None  # set by the gate, when the endpoint first asks for the body

            async def receive_gated() -> Message:
                nonlocal received, limit
                if status_holder["refused"]:
                    return {"type": "http.disconnect"}
                if limit is None and has_body:
                    limit, refusal = await self._gate(scope, headers, content_type, declared)
                    if refusal is not None and not status_holder["started"]:
                        # Answer now, without reading the body; the app sees the client as gone.
                        await self._refuse(scope, receive, send_wrapper, refusal)
                        status_holder["refused"] = True
                        return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request" and limit is not None:
                    received += len(message.get("body", b""))
                    if received > limit and not status_holder["started"]:
                        await self._refuse(scope, receive, send_wrapper, self._too_large(limit))
                        status_holder["refused"] = True
                        return {"type": "http.disconnect"}
                return message

            try:
                await self.app(scope, receive_gated, send_wrapper)
            except Exception:
                if status_holder["refused"]:
                    return
                if status_holder["started"]:
                    raise  # too late for a problem response: the server ends the connection
                # Answered here, inside the request id, not by the outermost handler that runs after it.
                await internal_error(scope.get("method", "GET"), scope.get("path", ""))(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_path = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "GET")
            status = str(status_holder["status"])
            HTTP_REQUESTS.labels(method, route_path, status).inc()
            HTTP_LATENCY.labels(method, route_path).observe(elapsed)
            log.info(
                "%s %s %s %.1fms",
                method,
                route_path,
                status,
                elapsed * 1000,
                extra={"request_id": request_id, "route": route_path, "status": int(status)},
            )
            reset_request_id(token)

    def _rule(self, route: Any) -> BodyRule:
        rule = self._rules.get(id(route))
        if rule is None:
            rule = self._rules[id(route)] = body_rule(route)
        return rule

    async def _gate(
        self, scope: Scope, headers: dict[str, str], content_type: str, declared: str | None
    ) -> tuple[int, HubError | None]:
        """The limit of this request's body, and why it is refused before being read (or None)."""
        rule = self._rule(scope.get("route"))
        limit = self.max_upload if content_type in rule.uploads else self.max_body
        if declared is not None and int(declared) > limit:
            return limit, self._too_large(limit)
        if not rule.accepts(content_type):
            wanted = " or ".join(sorted(rule.media_types or ()))
            sent = content_type or "no Content-Type"
            return limit, UnsupportedMediaType(f"this endpoint takes {wanted}; the body was sent as {sent}")
        if rule.bearer:
            try:
                await bearer_principal(Request(scope), headers.get("authorization"))
            except HubError as exc:
                return limit, exc
            except Exception:  # noqa: S110 (the endpoint's own check meets it again and answers for it)
                pass
        return limit, None

    def _too_large(self, limit: int) -> HubError:
        return PayloadTooLarge(f"the request body is larger than the limit of {limit} bytes")

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, error: HubError) -> None:
        response = problem_response(
            status=error.status,
            code=error.code,
            title=error.title,
            detail=error.detail,
            instance=scope.get("path"),
            errors=error.errors,
            headers=error.headers,
            extra=error.extra,
        )

        async def mark(message: Message) -> None:
            message["_govhub_refusal"] = True
            await send(message)

        await response(scope, receive, mark)
