"""A SQLite database that another writer holds: writes wait their turn (up to
GOVHUB_DATABASE_BUSY_TIMEOUT_SECONDS) and go on; past that bound the answer says the database is busy
(503 database_busy, Retry-After), in a page for the console, never "not reachable"."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from govhub.app import create_app
from govhub.database import prepare
from ops.config import Settings
from ops.db import DbSession, HubRoute, check_write_intent, make_engine, make_sessionmaker, writes
from ops.errors import ConcurrentUpdate, DatabaseBusy, DatabaseUnavailable, database_error, install_handlers
from tests.conftest import MASTER_KEY
from tests.console.test_pages import _csrf
from tests.factories import uscc

ADMIN_ID, ADMIN_SECRET = "gh_admin_busy", "busy-test-secret-0123456789"


@pytest.fixture()
def data_dir(tmp_path: Path) -> Path:
    return tmp_path


@contextmanager
def hub(data_dir: Path, *, bound: float) -> Iterator[TestClient]:
    """A hub on a SQLite file of its own whose writes wait at most `bound` seconds for their turn."""
    settings = Settings(
        data_dir=data_dir,
        master_key=MASTER_KEY,  # type: ignore[arg-type]
        public_url="http://hub.test",
        bootstrap_admin_client_id=ADMIN_ID,
        bootstrap_admin_secret=ADMIN_SECRET,  # type: ignore[arg-type]
        run_scheduler=False,
        database_busy_timeout_seconds=bound,
    )
    engine = make_engine(settings.effective_database_url, busy_timeout=bound)
    prepare(engine, settings)
    try:
        with TestClient(create_app(settings, engine=engine), raise_server_exceptions=False) as client:
            yield client
    finally:
        engine.dispose()


@contextmanager
def another_writer(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer (a command, another worker) holding the database's write lock."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute(
        "INSERT INTO scheduler_leases (name, next_run_at, lease_until) VALUES ('other.writer', '2000-01-01', '2000-01-01')"
    )
    try:
        yield other
    finally:
        if other.in_transaction:
            other.rollback()
        other.close()


def _admin_headers(client: TestClient) -> dict[str, str]:
    form = {"grant_type": "client_credentials", "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET}
    token = client.post("/auth/token", data=form).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


def _department() -> dict[str, str]:
    return {"code": uscc(), "name": "繁忙测试局", "level": "province", "region_code": "110000"}


def test_a_write_that_read_first_waits_for_another_writers_commit_and_goes_on(data_dir: Path) -> None:
    with hub(data_dir, bound=10) as client:
        headers = _admin_headers(client)
        with another_writer(data_dir / "govhub.db") as other:
            # The other writer commits while the request waits: a transaction that had read before it
            # wanted to write could not go on after that commit (it answered 503 at once).
            commit = threading.Timer(0.5, other.commit)
            commit.start()
            response = client.post("/departments", json=_department(), headers=headers)
            commit.join()
    assert response.status_code == 201, response.text


def test_an_api_write_past_the_bound_gets_503_database_busy_with_retry_after(data_dir: Path) -> None:
    with hub(data_dir, bound=0.5) as client:
        headers = _admin_headers(client)
        with another_writer(data_dir / "govhub.db"):
            started = time.monotonic()
            response = client.post("/departments", json=_department(), headers=headers)
            waited = time.monotonic() - started
            reading = client.get("/departments", headers=headers)  # a read never waits for the writers
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "database_busy" and "busy" in body["detail"] and "not reachable" not in body["detail"]
    assert response.headers["retry-after"] == "1"
    assert 0.5 <= waited < 5  # waited its turn up to the bound, not the old 30 s
    assert reading.status_code == 200


def test_the_console_sign_in_shows_a_page_not_json_when_the_database_stays_busy(data_dir: Path) -> None:
    with hub(data_dir, bound=0.5) as client:
        login = client.get("/console/login")
        with another_writer(data_dir / "govhub.db"):
            response = client.post(
                "/console/login", data={"csrf": _csrf(login.text), "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET}
            )
        signed_in = client.post(
            "/console/login",
            data={"csrf": _csrf(login.text), "client_id": ADMIN_ID, "client_secret": ADMIN_SECRET},
            follow_redirects=True,
        )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert "busy" in response.text and "请稍后重试" in response.text and "not reachable" not in response.text
    assert response.headers["retry-after"] == "1"
    assert signed_in.status_code == 200 and "退出" in signed_in.text  # once the other writer is gone, sign-in works


def test_sixteen_threads_that_read_then_write_all_commit(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER NOT NULL)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    factory = make_sessionmaker(engine)
    errors: list[Exception] = []
    start = threading.Barrier(16)

    def writer() -> None:
        start.wait()
        for _ in range(25):
            try:
                with factory() as db:
                    n = db.scalar(text("SELECT n FROM counter"))  # read first...
                    time.sleep(0.001)  # (another thread commits meanwhile)
                    db.execute(text("UPDATE counter SET n = :n"), {"n": n + 1})  # ...then write
                    db.commit()
            except OperationalError as exc:
                errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as connection:
        total = connection.scalar(text("SELECT n FROM counter"))
    engine.dispose()
    assert errors == []
    assert total == 16 * 25  # and no update was lost: each read saw the previous write


def _tiny_app(tmp_path: Path) -> TestClient:
    engine = make_engine(f"sqlite:///{tmp_path / 'tiny.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE seen (at TEXT)")
    check_write_intent(engine)
    router = APIRouter(route_class=HubRoute)

    @router.get("/undeclared")
    def undeclared(db: DbSession) -> dict[str, int]:
        db.execute(text("INSERT INTO seen VALUES ('undeclared')"))
        return {"ok": 1}

    @router.get("/declared")
    @writes
    def declared(db: DbSession) -> dict[str, int]:
        db.execute(text("INSERT INTO seen VALUES ('declared')"))
        return {"ok": 1}

    app = FastAPI()
    app.state.sessionmaker = make_sessionmaker(engine)
    install_handlers(app)
    app.include_router(router)
    return TestClient(app, raise_server_exceptions=False)


def test_a_get_route_that_writes_without_saying_so_fails_in_the_tests(tmp_path: Path) -> None:
    with _tiny_app(tmp_path) as client:
        assert client.get("/undeclared").status_code == 500
        assert client.get("/declared").status_code == 200


@pytest.mark.parametrize(
    ("orig", "expected"),
    [
        (sqlite3.OperationalError("database is locked"), DatabaseBusy),
        (sqlite3.OperationalError("unable to open database file"), DatabaseUnavailable),
    ],
)
def test_database_failures_are_told_apart(orig: Exception, expected: type[Exception]) -> None:
    assert type(database_error(OperationalError("BEGIN IMMEDIATE", None, orig))) is expected


def test_a_deadlock_or_serialization_failure_on_postgresql_is_a_409() -> None:
    errors = pytest.importorskip("psycopg.errors")
    for orig in (errors.DeadlockDetected("deadlock detected"), errors.SerializationFailure("could not serialize")):
        problem = database_error(OperationalError("UPDATE", None, orig))
        assert isinstance(problem, ConcurrentUpdate) and problem.status == 409
    locked = database_error(OperationalError("UPDATE", None, errors.LockNotAvailable("lock timeout")))
    assert isinstance(locked, DatabaseBusy)
