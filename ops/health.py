"""Liveness, readiness and metrics endpoints."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from sqlalchemy import Engine, text

from ops.db import HubRoute
from ops.errors import HubError, Unavailable, database_timed_out
from ops.metrics import render

router = APIRouter(tags=["health"], route_class=HubRoute)

# The readiness probe's own limit (PostgreSQL): a database that cannot answer it this fast is not ready.
READINESS_TIMEOUT_SECONDS = 2
# What every request needs (the caller's client and department) and every change writes (its audit record).
_PROBED_TABLES = ("api_clients", "departments", "audit_records")


def database_check(engine: Engine) -> str:
    """Whether the database can serve requests now: "ok", or why not: unreachable, or stuck (a statement does not
    finish, or a lock that reads or writes of the hub's core tables need is held elsewhere)."""
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                limit = READINESS_TIMEOUT_SECONDS * 1000
                connection.execute(text(f"SET LOCAL statement_timeout = {limit}"))
                connection.execute(text(f"SET LOCAL lock_timeout = {limit}"))
                # The lock an INSERT takes: refused only while someone holds a table against writers (or readers).
                connection.execute(text(f"LOCK TABLE {', '.join(_PROBED_TABLES)} IN ROW EXCLUSIVE MODE"))
            else:
                for table in _PROBED_TABLES:
                    connection.execute(text(f"SELECT 1 FROM {table} LIMIT 1"))  # noqa: S608 (fixed names)
            connection.rollback()
        return "ok"
    except Exception as exc:  # any failure means "not ready"
        if database_timed_out(exc):
            return f"busy: it did not answer within {READINESS_TIMEOUT_SECONDS} s (stuck, or a lock is held)"
        return f"unreachable: {type(exc).__name__}"


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers in time and the object store is reachable")
def readyz(request: Request) -> dict[str, Any]:
    checks: dict[str, str] = {"database": database_check(request.app.state.engine)}
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


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=True, response_class=PlainTextResponse)
def metrics() -> Response:
    body, content_type = render()
    return Response(content=body, media_type=content_type)
