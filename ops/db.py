"""Database: engine, the declarative base, typed helpers, and the request-owned session."""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import anyio
from fastapi import Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy import JSON, DateTime, Engine, MetaData, String, Table, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    declared_attr,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from ops.errors import PreconditionFailed

log = logging.getLogger("govhub.db")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (the only kind the hub stores)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A new random identifier for a record (UUID4, as text)."""
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; always returns aware UTC datetimes (SQLite included)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every table of the hub."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def table_of(model: type[Base]) -> Table:
    """A mapped class's Table, typed: for Core statements on hot paths (no ORM bookkeeping)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


class IdMixin:
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class VersionedMixin:
    """Optimistic concurrency: every UPDATE checks and bumps `version` (StaleDataError → 409)."""

    version: Mapped[int] = mapped_column(nullable=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]


def check_if_match(if_match: str | None, current_version: int) -> None:
    """Refuse a change made against an older version (HTTP If-Match with the record's ETag)."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(current_version):
        raise PreconditionFailed(
            f"the record is at version {current_version}, not {wanted}; reload it and retry",
            extra={"current_version": current_version},
        )


def etag(version: int) -> str:
    return f'"{version}"'


SQLITE_POOL_SIZE = 40  # FastAPI's worker threads (anyio's default limit)


def _enable_wal(cursor: Any) -> None:
    """Switch a SQLite database to WAL (kept in the file). Switching needs the database to itself for
    a moment, and the busy timeout does not cover it: two processes opening a new database together
    retry for a while instead of failing."""
    for attempt in range(100):
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)


def _sqlite_setup(engine: Engine, *, busy_timeout_ms: int, begin: str, checkpoints: bool = True) -> None:
    """WAL, foreign keys and a busy timeout on every connection; `begin` starts every transaction."""

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite begins transactions lazily and mishandles SAVEPOINT: let SQLAlchemy emit
        # BEGIN itself (its documented recipe), so nested transactions and rollbacks are real.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


def make_engine(url: str, *, pool_size: int = 10) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys and a busy timeout.

    The pool keeps `pool_size` connections open, and as many again under bursts; on SQLite at least
    SQLITE_POOL_SIZE (a SQLite connection costs little to keep and much to open).
    """
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            # Opening a SQLite connection re-reads the schema and runs the pragmas: keep one open for
            # every worker thread that may query at once (the thread pool has 40), instead of churning.
            kwargs.update(pool_size=max(pool_size, SQLITE_POOL_SIZE), max_overflow=pool_size)
        engine = create_engine(url, **kwargs)

        _sqlite_setup(engine, busy_timeout_ms=30000, begin="BEGIN")
        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True, pool_recycle=1800)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


# Checkpoints of the write-ahead log made by a thread of their own after this many commits of a
# loop writer (see make_loop_writer), instead of inside a commit.
LOOP_WRITER_CHECKPOINT_EVERY = 200


def make_loop_writer(engine: Engine) -> sessionmaker[Session] | None:
    """Sessions for settling group commits right on the event loop, where the database lives in the
    process (a SQLite file); None for a database server, whose statements are waits, not work.

    A SQLite statement is work done in this process, not a wait on a server: handing it to a thread
    only adds the trading of the interpreter lock between that thread and the event loop, which cost
    more than the statements themselves. So a batch is settled on the loop, on the condition that it
    never makes the loop wait: its transaction starts with BEGIN IMMEDIATE and a busy timeout of 0,
    so a batch that finds another writer holding the database fails at once (and goes to the writer
    thread, which may wait); and its commits never checkpoint the log (a checkpoint syncs the disk),
    a thread of its own does that every LOOP_WRITER_CHECKPOINT_EVERY commits.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    loop_engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 0}, pool_size=2, max_overflow=2)
    _sqlite_setup(loop_engine, busy_timeout_ms=0, begin="BEGIN IMMEDIATE", checkpoints=False)
    checkpointer = _Checkpointer(str(url.database))
    factory = make_sessionmaker(loop_engine)
    # Counted once the commit is done (the engine's "commit" event comes before it): a checkpoint
    # started by the commit must find that commit in the log.
    event.listen(factory, "after_commit", lambda _session: checkpointer.committed())
    return factory


class _Checkpointer:
    """Checkpoints a SQLite log from a thread of its own, every LOOP_WRITER_CHECKPOINT_EVERY commits."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.commits = 0
        self.running = threading.Lock()

    def committed(self) -> None:
        self.commits += 1
        if self.commits % LOOP_WRITER_CHECKPOINT_EVERY == 0 and self.running.acquire(blocking=False):
            threading.Thread(target=self._checkpoint, name="sqlite-checkpoint", daemon=True).start()

    def _checkpoint(self) -> None:
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as connection:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as exc:  # the next one will try again; nothing is lost meanwhile
            log.warning("checkpoint of %s failed: %s", self.path, exc)
        finally:
            self.running.release()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """The request's session: committed when the endpoint returns, rolled back if it raises.

    Synchronous endpoints commit in their own worker thread (see :class:`HubRoute`), so what is
    left here is the commit of async endpoints and the rollback after an error; both run in a
    worker thread, shielded from cancellation so a dropped connection never leaves a transaction open.
    """
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    session = factory()
    try:
        yield session
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(session.commit)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(session.rollback)
        raise
    finally:
        session.close()


# scope="function": commit runs before the response is sent, so a failed commit is an error
# reply, never a 200 for data that was not saved.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


@contextmanager
def request_session(request: Request) -> Iterator[Session]:
    """The request's session, opened by the endpoint itself: committed when the block ends, rolled back
    if it raises. The same contract as :data:`DbSession`, without FastAPI's machinery for generator
    dependencies, which costs more than the work on the busiest endpoints (verifications, lookups)."""
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _commit_in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def committing(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Session) and value.in_transaction():
                value.commit()
        return result

    return committing


class HubRoute(APIRoute):
    """A route whose synchronous endpoint commits the request's session in its own worker thread.

    Without this the commit would wait for another thread-pool slot after the endpoint returned,
    holding the transaction (on SQLite: the database's write lock) open meanwhile; under load that
    wait, not the work, dominated. A failed commit raises from the endpoint like any other error.
    Every router of the hub uses this class (``APIRouter(route_class=HubRoute)``).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _commit_in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)
