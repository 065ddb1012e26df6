"""Test fixtures: a real database (SQLite, or PostgreSQL when GOVHUB_TEST_DATABASE_URL is set),
migrated once per run; each test runs inside a transaction that is rolled back at its end.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from certhub import service as certhub_service
from govhub.app import create_app
from govhub.cli import main
from govhub.database import ensure_keys, upgrade
from ops.auth import TOKENS, Role
from ops.config import Settings, get_settings
from ops.crypto import KeyVault
from ops.db import check_write_intent, make_engine
from ops.hubprocess import drop_postgres, fresh_postgres
from ops.identity import service as identity
from ops.identity.models import ApiClient, Department
from ops.identity.schemas import ClientCreate, DepartmentCreate
from ops.storage import LocalStore
from ops.workdays.service import forget_calendar
from tests.factories import uscc

MASTER_KEY = base64.b64encode(b"k" * 32).decode()
TEST_DB_ENV = "GOVHUB_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get(TEST_DB_ENV)
    if base:
        url, name = fresh_postgres(base)
        yield url
        drop_postgres(base, name)
    else:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'govhub-test.db'}"


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        master_key=MASTER_KEY,  # type: ignore[arg-type]
        public_url="http://hub.test",
        run_scheduler=False,
    )


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.effective_database_url)
    upgrade(engine, settings)
    check_write_intent(engine)  # a route that writes undeclared fails here, not now and then under load
    yield engine
    engine.dispose()


@pytest.fixture()
def session_factory(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Sessions on one connection whose outer transaction is rolled back after the test."""
    forget_calendar()  # each test's transaction starts from the database's calendar, not the last test's
    connection = engine.connect()
    outer = connection.begin()
    factory = sessionmaker(bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint")
    try:
        yield factory
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture()
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for calling services directly (inside the test's transaction)."""
    with session_factory() as session:
        yield session


@pytest.fixture()
def storage(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "objects")


@pytest.fixture()
def app(settings: Settings, engine: Engine, session_factory: sessionmaker[Session], storage: LocalStore) -> FastAPI:
    certhub_service.clear_caches()  # each test's database starts afresh: so do the certificate hub's caches
    with session_factory() as session:
        ensure_keys(session, KeyVault.from_settings(settings), settings)  # as govhub.database.prepare does
        session.commit()
    TOKENS.clear()  # each test's database starts afresh: so does this process's memory of tokens
    return create_app(settings, engine=engine, session_factory=session_factory, storage=storage)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Actor:
    """A caller in a test: its client row (if any) and the headers to send."""

    headers: dict[str, str]
    department: Department | None = None
    client: ApiClient | None = None
    holder_code: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def department_id(self) -> str:
        assert self.department is not None
        return self.department.id


class Hub:
    """Makes departments, clients and holders, and the tokens they call with."""

    def __init__(self, app: FastAPI, factory: sessionmaker[Session]) -> None:
        self.app = app
        self.factory = factory
        self.settings: Settings = app.state.settings
        self._admin: Actor | None = None

    def _token_for(self, client: ApiClient) -> str:
        with self.factory() as db:
            claims = identity.token_claims(db, client)
        return str(
            self.app.state.keyring.issue(
                subject=client.client_id,
                audience=self.settings.token_audience,
                issuer=self.settings.issuer,
                ttl=self.settings.token_ttl_seconds,
                **claims,
            )
        )

    def department(
        self,
        name: str = "测试局",
        *,
        code: str | None = None,
        region: str = "110000",
        level: str = "province",
        parent_id: str | None = None,
    ) -> Department:
        from tests.factories import uscc as make_uscc

        with self.factory() as db:
            department = identity.create_department(
                db,
                who=self.admin_principal(),
                data=DepartmentCreate(
                    code=code or make_uscc(region=region),
                    name=name,
                    level=level,  # type: ignore[arg-type]
                    region_code=region,
                    parent_id=parent_id,
                ),
            )
            db.commit()
            return department

    def admin_principal(self) -> Any:
        from ops.cli import CLI_ADMIN

        return CLI_ADMIN

    def actor(self, department: Department | None, *roles: str, name: str = "测试系统") -> Actor:
        with self.factory() as db:
            created = identity.create_client(
                db,
                who=self.admin_principal(),
                data=ClientCreate(name=name, roles=list(roles), department_id=department.id if department else None),
            )  # type: ignore[arg-type]
            db.commit()
        token = self._token_for(created.client)
        return Actor(
            headers={"Authorization": f"Bearer {token}"},
            department=department,
            client=created.client,
            extra={"secret": created.secret},
        )

    @property
    def admin(self) -> Actor:
        if self._admin is None:
            self._admin = self.actor(None, Role.PLATFORM_ADMIN.value, name="平台管理员")
        return self._admin

    def system(self, department: Department | None = None, name: str = "部门系统") -> Actor:
        """A department system client (creates a department when none is given)."""
        department = department or self.department(name + "所属部门")
        return self.actor(department, Role.DEPARTMENT_SYSTEM.value, name=name)

    def holder(self, code: str, *, kind: str = "person", name: str = "张三") -> Actor:
        token = self.app.state.keyring.issue(
            subject=code,
            audience=self.settings.token_audience,
            issuer=self.settings.holder_issuer,
            ttl=self.settings.token_ttl_seconds,
            holder_kind=kind,
            name=name,
        )
        return Actor(headers={"Authorization": f"Bearer {token}"}, holder_code=code)


@pytest.fixture()
def hub(app: FastAPI, session_factory: sessionmaker[Session]) -> Hub:
    return Hub(app, session_factory)


__all__ = ["Actor", "Hub", "uscc"]


@pytest.fixture()
def govhub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Callable[..., tuple[str, str]]]:
    """Run `govhub …` in this process on a fresh data directory; returns (stdout, stderr)."""
    monkeypatch.setenv("GOVHUB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GOVHUB_MASTER_KEY", MASTER_KEY)
    monkeypatch.delenv("GOVHUB_DATABASE_URL", raising=False)
    get_settings.cache_clear()

    def run(*args: str) -> tuple[str, str]:
        main(list(args))
        captured = capsys.readouterr()
        return captured.out, captured.err

    yield run
    get_settings.cache_clear()
