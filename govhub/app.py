"""Build the FastAPI application from the platform and every domain."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from catalog_registry import endpoints as catalog_endpoints
from catalog_registry import tasks as catalog_tasks
from certhub import endpoints as certhub_endpoints
from certhub import service as certhub_service
from certhub import tasks as certhub_tasks
from exchange import endpoints as exchange_endpoints
from exchange import service as exchange_service
from exchange import tasks as exchange_tasks
from govhub import __version__
from govhub.archives import ARCHIVE_PROFILES
from govhub.console import endpoints as console
from govhub.console import service as console_service
from govhub.timestamping import configure_time_stamps
from ops import health
from ops.archive import endpoints as archive_endpoints
from ops.auditlog import endpoints as auditlog_endpoints
from ops.config import Settings, get_settings
from ops.crypto import KeyVault
from ops.db import make_engine, make_loop_writer, make_sessionmaker
from ops.divisions import endpoints as divisions_endpoints
from ops.errors import document_problems, install_handlers
from ops.groupcommit import GroupCommit, writers_for
from ops.identity import endpoints as identity_endpoints
from ops.identity.tokens import KeyRing
from ops.inputs import document_bounds
from ops.middleware import HubMiddleware
from ops.queryparams import KNOWN_QUERY_ONLY
from ops.ratings import endpoints as ratings_endpoints
from ops.scheduler import Job, LeaseRunner, Scheduler
from ops.storage import ObjectStore, make_store
from ops.tasks import platform_jobs
from ops.workdays import endpoints as workdays_endpoints
from ops.workdays.service import CalendarListener
from seal import endpoints as seal_endpoints
from seal import tasks as seal_tasks

log = logging.getLogger("govhub")

DESCRIPTION = """
govhub: the government data-sharing exchange and electronic-certificate hub.

Department systems authenticate with client credentials at `POST /auth/token` and send
`Authorization: Bearer <token>`. Errors are RFC 9457 `application/problem+json`.
"""


HOME = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>govhub</title></head>
<body>
<h1>govhub 政务数据共享交换与电子证照平台</h1>
<ul>
<li><a href="/console/">管理控制台</a> (console: sign in with a client id and secret)</li>
<li><a href="/docs">API 文档</a> (Swagger UI) · <a href="/redoc">ReDoc</a> · <a href="/openapi.json">OpenAPI</a></li>
<li><a href="/healthz">运行状态</a> (health)</li>
</ul>
</body></html>
"""


def operation_id(route: APIRoute) -> str:
    """An operation's id in the OpenAPI: its endpoint function's name (e.g. `list_grants`)."""
    return route.name


def home() -> HTMLResponse:
    """Where a visitor of `/` goes next: the console and the API documentation."""
    return HTMLResponse(HOME)


def all_jobs(settings: Settings) -> list[Job]:
    """Every periodic job the domains declare."""
    console_jobs = [Job("console.purge_sessions", 3600, console_service.purge_expired)]
    return [*catalog_tasks.JOBS, *exchange_tasks.jobs(settings), *seal_tasks.jobs(settings), *certhub_tasks.JOBS, *console_jobs]


def calendar_listeners(settings: Settings) -> list[CalendarListener]:
    """Every domain's recompute-deadlines hook, run when a year's calendar is loaded."""
    return [*exchange_tasks.CALENDAR_LISTENERS, *certhub_tasks.calendar_listeners(settings)]


def scheduled_jobs(*, vault: KeyVault, storage: ObjectStore | None, settings: Settings) -> list[Job]:
    """The domains' jobs and the platform's own (audit log, calendar warning)."""
    return [*all_jobs(settings), *platform_jobs(vault=vault, store=storage)]


def serving_engine(settings: Settings) -> Engine:
    """The engine of a serving hub: its pool, and on PostgreSQL its statement and lock timeouts."""
    return make_engine(
        settings.effective_database_url,
        pool_size=settings.database_pool_size,
        busy_timeout=settings.database_busy_timeout_seconds,
        statement_timeout=settings.database_statement_timeout_seconds,
        lock_timeout=settings.database_lock_timeout_seconds,
    )


def describe_answers(app: FastAPI) -> None:
    """The OpenAPI description says what the API really answers and takes: its errors as problems
    (``ops.errors.document_problems``), its integers within what the database holds
    (``ops.inputs.document_bounds``)."""
    describe = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_bounds(document_problems(describe()))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    session_factory: sessionmaker[Session] | None = None,
    storage: ObjectStore | None = None,
) -> FastAPI:
    """The hub application. Tests pass their own engine / session factory / storage."""
    settings = settings or get_settings()
    engine = engine or serving_engine(settings)
    factory = session_factory or make_sessionmaker(engine)
    # On a SQLite file the busiest writes are settled on the event loop when they need not wait
    # (ops.groupcommit); not under a caller's own session factory (the tests' rolled-back transaction).
    loop_writer = make_loop_writer(engine) if session_factory is None else None
    # On PostgreSQL several batches at once (ops.groupcommit); one under a caller's session factory.
    writers = writers_for(engine, settings.group_commit_writers) if session_factory is None else 1
    vault = KeyVault.from_settings(settings)
    store = storage or make_store(settings)
    configure_time_stamps(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        scheduler: Scheduler | None = None
        if settings.run_scheduler:
            runner = LeaseRunner(factory, scheduled_jobs(vault=vault, storage=store, settings=settings))
            scheduler = Scheduler(runner)
            scheduler.start()
        app.state.scheduler = scheduler
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown()
            app.state.verification_commits.stop()
            app.state.access_commits.stop()
            app.state.lookups.stop()

    # Swagger UI and ReDoc are served from the fastapi-offline package: the docs work without internet.
    app = FastAPIOffline(
        lifespan=lifespan,
        title="govhub",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
        static_url="/docs-assets",
        # Plain names in /openapi.json: the operation ids (and the multipart bodies named after them) are
        # the endpoint functions' names, unique across the hub (tests/ops/test_api_conventions.py).
        generate_unique_id_function=operation_id,
    )
    state: dict[str, Any] = {
        "settings": settings,
        "engine": engine,
        "sessionmaker": factory,
        "vault": vault,
        "storage": store,
        "keyring": KeyRing(factory, vault, settings),
        # The writes every window verification and every data query make: shared commits (ops.groupcommit).
        "verification_commits": GroupCommit(
            factory, certhub_service.settle_verifications, name="verifications", loop_writer=loop_writer, writers=writers
        ),
        "access_commits": GroupCommit(factory, exchange_service.settle_accesses, name="data_accesses", writers=writers),
        # Granted lookups, batched the same way: their reads and their writes, one transaction for many.
        "lookups": GroupCommit(factory, exchange_service.run_lookups, name="lookups", loop_writer=loop_writer, writers=writers),
        "calendar_listeners": calendar_listeners(settings),
        # 四性检测: each record class's own checks of its archive packages (POST /archive/check).
        "archive_profiles": ARCHIVE_PROFILES,
    }
    for key, value in state.items():
        setattr(app.state, key, value)

    install_handlers(app)
    describe_answers(app)
    app.add_middleware(
        HubMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    # Routes are matched in order, one by one (twice: to pick the router, then the route in it): the
    # busiest (verifications, granted lookups) are in small routers of their own, included first.
    app.add_api_route("/", home, methods=["GET"], include_in_schema=False)
    api_routers = [
        health.router,
        certhub_endpoints.busy,
        exchange_endpoints.busy,
        certhub_endpoints.router,
        exchange_endpoints.router,
        identity_endpoints.router,
        auditlog_endpoints.router,
        workdays_endpoints.router,
        catalog_endpoints.router,
        seal_endpoints.router,
        ratings_endpoints.router,
        divisions_endpoints.router,
        archive_endpoints.router,
    ]
    for router in api_routers:
        # One rule for the whole API: a query parameter an operation does not declare is refused.
        app.include_router(router, dependencies=[KNOWN_QUERY_ONLY])
    console.install(app)
    return app
