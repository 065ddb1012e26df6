"""Health, metrics, and the schema built by migrations from an empty database."""

from __future__ import annotations

import os
import uuid

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from govhub.database import alembic_config, upgrade
from ops import audit
from ops.config import Settings
from ops.db import Base, make_engine
from tests.migrations import head_revisions


def test_health_readiness_and_metrics(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": "ok", "object_store": "ok"}
    client.get("/no-such-route")
    metrics = client.get("/metrics").text
    assert 'govhub_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics
    assert "govhub_http_request_duration_seconds_bucket" in metrics


def test_readiness_fails_clearly_when_the_object_store_is_broken(client: TestClient, tmp_path: object) -> None:
    from ops.storage import S3Store

    client.app.state.storage = S3Store(
        endpoint="127.0.0.1:9",
        access_key="a",
        secret_key="b",  # type: ignore[attr-defined]
        bucket="govhub-x",
        secure=False,
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "object_store" in response.json()["detail"]


def test_the_docs_list_the_endpoints(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/auth/token", "/departments", "/clients", "/.well-known/jwks.json"} <= set(paths)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_api_docs_work_on_a_machine_without_internet(client: TestClient, page: str) -> None:
    """Swagger UI and ReDoc load their scripts from the hub itself, never from a CDN."""
    import re

    html = client.get(page).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets and all(url.startswith("/") for url in assets), assets
    assert "cdn" not in html.lower() and "googleapis" not in html
    for url in assets:
        response = client.get(url)
        assert response.status_code == 200 and response.content, url


def test_migrations_from_empty_build_exactly_the_models(tmp_path: object, settings: Settings) -> None:
    """Upgrade a brand-new database to head, compare with the models, then downgrade to empty."""
    base = os.environ.get("GOVHUB_TEST_DATABASE_URL")
    if base:
        from ops.hubprocess import drop_postgres, fresh_postgres

        url, name = fresh_postgres(base)
    else:
        url, name = f"sqlite:///{tmp_path}/empty-{uuid.uuid4().hex}.db", ""
    engine = make_engine(url)
    try:
        upgrade(engine, settings)
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": False})
            diff = compare_metadata(context, Base.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        assert head_revisions()
    finally:
        engine.dispose()
        if name and base:
            drop_postgres(base, name)


def test_the_audit_trail_cannot_be_rewritten_even_with_raw_sql(db: object) -> None:
    from sqlalchemy import text
    from sqlalchemy.orm import Session

    assert isinstance(db, Session)
    entry = audit.record(db, actor=audit.SYSTEM, action="test.append", object_type="test", object_id="1")
    db.commit()
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE audit_records SET action = 'forged' WHERE id = :id"), {"id": entry.id})
    with pytest.raises(DBAPIError, match="append-only"), db.begin_nested():
        db.execute(text("DELETE FROM audit_records WHERE id = :id"), {"id": entry.id})
