"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from ops.db import HubRoute
from ops.errors import HubError, Unavailable
from ops.metrics import render

router = APIRouter(tags=["health"], route_class=HubRoute)


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database and object store are reachable")
def readyz(request: Request) -> dict[str, Any]:
    checks: dict[str, str] = {}
    try:
        with request.app.state.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means "not ready"
        checks["database"] = f"unreachable: {type(exc).__name__}"
    try:
        request.app.state.storage.ping()
        checks["object_store"] = "ok"
    except HubError as exc:
        checks["object_store"] = exc.detail
    except Exception as exc:
        checks["object_store"] = f"unreachable: {type(exc).__name__}"
    if any(v != "ok" for v in checks.values()):
        raise Unavailable(
            "the hub is not ready: " + "; ".join(f"{k} {v}" for k, v in checks.items()),
            extra={"checks": checks},
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True)
def metrics() -> Response:
    body, content_type = render()
    return Response(content=body, media_type=content_type)
