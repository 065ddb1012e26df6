"""One ASGI middleware for every request: request id, body-size limit, metrics, access log."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ops.context import reset_request_id, set_request_id
from ops.errors import problem_response
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


class HubMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body = max_body_bytes
        self.max_upload = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        incoming = headers.get("x-request-id", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = set_request_id(request_id)
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        limit = self.max_upload if content_type in _STREAMED_TYPES else self.max_body
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500, "started": False, "refused": False}

        async def send_wrapper(message: Message) -> None:
            if status_holder["refused"] and not message.get("_govhub_refusal"):
                return  # the 413 has been sent; whatever the app says after is dropped
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._too_large(scope, receive, send_wrapper, limit)
                return
            received = 0

            async def receive_limited() -> Message:
                nonlocal received
                if status_holder["refused"]:
                    return {"type": "http.disconnect"}
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit and not status_holder["started"]:
                        # Answer 413 now; the app sees the client as gone.
                        await self._too_large(scope, receive, send_wrapper, limit)
                        status_holder["refused"] = True
                        return {"type": "http.disconnect"}
                return message

            try:
                await self.app(scope, receive_limited, send_wrapper)
            except Exception:
                if not status_holder["refused"]:
                    raise
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

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = problem_response(
            status=413,
            code="payload_too_large",
            title="Payload too large",
            detail=f"the request body is larger than the limit of {limit} bytes",
            instance=scope.get("path"),
        )

        async def mark(message: Message) -> None:
            message["_govhub_refusal"] = True
            await send(message)

        await response(scope, receive, mark)
