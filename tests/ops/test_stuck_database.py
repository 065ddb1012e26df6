"""A stuck PostgreSQL (a lock held on a table the hub needs, a statement that does not finish) gives 503
problems in bounded time, and /readyz says so; both recover when the database does."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from ops.db import make_engine
from ops.errors import database_timed_out
from ops.hubprocess import ADMIN_ID, ADMIN_SECRET, HubProcess, drop_postgres, fresh_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not os.environ.get("GOVHUB_TEST_DATABASE_URL"), reason="statement and lock timeouts are PostgreSQL's"),
]

LOCK_TIMEOUT = 2


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    base = os.environ["GOVHUB_TEST_DATABASE_URL"]
    url, name = fresh_postgres(base)
    yield url
    drop_postgres(base, name)


def test_a_statement_past_its_time_is_cancelled_and_counts_as_the_database_not_answering(database: str) -> None:
    engine = make_engine(database, statement_timeout=0.2)
    try:
        with engine.connect() as connection, pytest.raises(OperationalError) as raised:
            connection.execute(text("SELECT pg_sleep(5)"))
        assert database_timed_out(raised.value)
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_table_locked_by_someone_else_gives_503_in_bounded_time_and_readyz_says_not_ready(database: str) -> None:
    env = {"GOVHUB_DATABASE_LOCK_TIMEOUT_SECONDS": str(LOCK_TIMEOUT), "GOVHUB_TOKEN_CACHE_SECONDS": "0"}
    with (
        HubProcess(database_url=database, env=env, scheduler=False) as hub,
        httpx.Client(base_url=hub.base, timeout=30) as client,
    ):
        form = {"grant_type": "client_credentials", "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET}
        admin = {"Authorization": f"Bearer {client.post('/auth/token', data=form).json()['access_token']}"}
        assert client.get("/departments", headers=admin).status_code == 200
        assert client.get("/readyz").status_code == 200

        holder = create_engine(database)
        try:
            with holder.connect() as other:
                other.execute(text("LOCK TABLE departments"))  # ACCESS EXCLUSIVE, held until rollback

                started = time.monotonic()
                stuck = client.get("/departments", headers=admin)
                took = time.monotonic() - started
                assert stuck.status_code == 503, stuck.text
                assert stuck.json()["code"] == "database_busy" and "did not answer in time" in stuck.json()["detail"]
                assert stuck.headers["Retry-After"] and stuck.headers["content-type"] == "application/problem+json"
                assert took < 3 * LOCK_TIMEOUT + 2, f"answered after {took:.1f} s"

                started = time.monotonic()
                ready = client.get("/readyz")
                assert ready.status_code == 503 and ready.json()["checks"]["database"].startswith("busy")
                assert time.monotonic() - started < 5

                other.rollback()

            assert client.get("/departments", headers=admin).status_code == 200
            assert client.get("/readyz").json()["checks"] == {"database": "ok", "object_store": "ok"}
        finally:
            holder.dispose()


def test_a_pooled_connection_that_died_while_idle_is_replaced_before_anyone_uses_it(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool checks a connection before use only after it sat idle (ops.db.PING_AFTER_IDLE_SECONDS):
    a connection the server ended meanwhile (a restart, an administrator) never reaches a request."""
    import ops.db

    monkeypatch.setattr(ops.db, "PING_AFTER_IDLE_SECONDS", 0.2)
    engine = make_engine(database, pool_size=1)
    killer = create_engine(database, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            first = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with killer.connect() as other:  # the server ends the pooled connection while it is idle
            assert other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
        time.sleep(0.3)
        with engine.connect() as connection:
            second = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()  # no error: a new connection
        assert second != first
        with engine.connect() as connection:  # in steady use: the same connection again, unchecked
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() == second
    finally:
        engine.dispose()
        killer.dispose()
