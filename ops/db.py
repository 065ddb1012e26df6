"""Database: engine, the declarative base, typed helpers, and the request-owned session."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import os
import re
import sqlite3
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import anyio
from fastapi import Depends, Request, Response
from fastapi.routing import APIRoute
from sqlalchemy import JSON, DateTime, Engine, MetaData, String, Table, create_engine, event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DisconnectionError
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
from ops.inputs import check as check_inputs
from ops.inputs import input_rule
from ops.private import create_private_file

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


def check_if_match(if_match: str | None, current_version: int, *, what: str = "record") -> None:
    """Refuse a change made against an older version (HTTP If-Match with the record's ETag): 412, the one
    answer to a stale version everywhere (the exchange's and the console's forms too)."""
    if if_match is None:
        return
    wanted = if_match.strip().removeprefix("W/").strip('"')
    if wanted != str(current_version):
        raise PreconditionFailed(
            f"the {what} is at version {current_version}, not {wanted}; it was changed meanwhile, reload it and retry",
            extra={"current_version": current_version},
        )


def check_version(expected_version: int | None, current_version: int, *, what: str = "record") -> None:
    """`check_if_match` for a version already read (a form's hidden field, a parsed ETag)."""
    if expected_version is not None:
        check_if_match(str(expected_version), current_version, what=what)


def etag(version: int) -> str:
    return f'"{version}"'


SQLITE_POOL_SIZE = 40  # FastAPI's worker threads (anyio's default limit)
DEFAULT_BUSY_TIMEOUT = 5.0  # seconds; GOVHUB_DATABASE_BUSY_TIMEOUT_SECONDS


# ---- which transactions write ------------------------------------------------------------------------
#
# SQLite has one writer at a time, and a transaction that began with a plain (deferred) BEGIN and read
# cannot become the writer once another connection has committed since its read: it fails at once
# (SQLITE_BUSY_SNAPSHOT), whatever the busy timeout. So a transaction that will write begins with
# BEGIN IMMEDIATE: it takes the write lock before its first read, waiting its turn, and can then never
# fail for want of it. Whether a transaction writes is decided here, for every kind of caller:
#
# - a request: by its route (see HubRoute): GET, HEAD and OPTIONS read, other methods write; a route
#   whose endpoint or a dependency is marked @writes writes whatever its method (a GET that records an
#   access), one marked @reads_only reads (a POST whose writes go to a group commit);
# - everything else (scheduled jobs, commands, group commits, start-up) writes, unless inside reading().

_WRITES: ContextVar[bool] = ContextVar("govhub_transactions_write", default=True)
_MARK = "__govhub_writes__"
_BEGAN_READING = "govhub_began_reading"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

Fn = TypeVar("Fn", bound=Callable[..., Any])


@contextmanager
def reading() -> Iterator[None]:
    """Transactions begun in this block only read: a plain BEGIN, no turn among the writers."""
    token = _WRITES.set(False)
    try:
        yield
    finally:
        _WRITES.reset(token)


@contextmanager
def writing() -> Iterator[None]:
    """Transactions begun in this block write (e.g. a trail recorded while serving a GET)."""
    token = _WRITES.set(True)
    try:
        yield
    finally:
        _WRITES.reset(token)


def writes(fn: Fn) -> Fn:
    """Declare that a route (its endpoint, or a dependency it uses) writes whatever its method."""
    setattr(fn, _MARK, True)
    return fn


def reads_only(fn: Fn) -> Fn:
    """Declare that a route's own transaction only reads whatever its method: its writes are made
    elsewhere (a group commit), and it must not hold the write lock meanwhile."""
    setattr(fn, _MARK, False)
    return fn


def route_writes(methods: Iterable[str], calls: Iterable[Callable[..., Any]]) -> bool:
    """Whether the transaction of a route with these methods, endpoint and dependencies writes."""
    declared = [mark for mark in (getattr(call, _MARK, None) for call in calls) if mark is not None]
    if True in declared:
        return True
    if declared:
        return False
    return not set(methods) <= _SAFE_METHODS


class ReadTransactionWrote(RuntimeError):
    """A statement wrote in a transaction begun to read (see check_write_intent)."""


_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


def check_write_intent(engine: Engine) -> None:
    """Make a statement that writes in a transaction begun to read raise ReadTransactionWrote (tests use
    it: a route that writes undeclared fails there, instead of failing now and then under load)."""

    @event.listens_for(engine, "before_cursor_execute")
    def _check(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITE_STATEMENT.match(statement) and (not _WRITES.get() or connection.info.get(_BEGAN_READING)):
            raise ReadTransactionWrote(
                f"{' '.join(statement.split(None, 3)[:3])} … in a transaction begun to read: declare the route @writes, "
                "or write inside ops.db.writing()"
            )


# ---- the writers' turn ---------------------------------------------------------------------------------


class _WriteGate:
    """The writers of one SQLite file in this process, served in order of arrival.

    SQLite's own wait for its lock is a poll (sleeps of up to 100 ms): sixteen threads polling leave the
    lock idle between polls and serve them in no order, so a writer could wait past any bound while
    the lock is free most of the time. Here a writer waits for its turn on the gate instead and is handed
    it by the previous writer's commit; SQLite's wait remains for writers of other processes."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._taken = False
        self._queue: deque[threading.Lock] = deque()

    def enter(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the turn; True when it was had."""
        with self._mutex:
            if not self._taken:
                self._taken = True
                return True
            if timeout <= 0:
                return False
            turn = threading.Lock()
            turn.acquire()
            self._queue.append(turn)
        if turn.acquire(timeout=timeout):
            return True
        with self._mutex:
            if turn in self._queue:
                self._queue.remove(turn)
                return False
        return True  # handed over just as the wait ended

    def leave(self) -> None:
        """End the turn: hand it to the writer waiting longest, if any."""
        with self._mutex:
            if self._queue:
                self._queue.popleft().release()
            else:
                self._taken = False


_GATES: dict[str, _WriteGate] = {}
_GATES_LOCK = threading.Lock()


def _file_of(database: Any) -> str | None:
    """The file of a SQLite database (as sqlite3.connect is given it); None for an in-memory database."""
    name = os.fsdecode(database)
    if name.startswith("file:"):
        name = name.removeprefix("file:").split("?", 1)[0]
    return None if name in ("", ":memory:") else name


def _gate_of(database: Any) -> _WriteGate | None:
    """The gate of a SQLite file (one per file and process); None for an in-memory database."""
    name = _file_of(database)
    if name is None:
        return None
    key = os.path.realpath(name)
    with _GATES_LOCK:
        return _GATES.setdefault(key, _WriteGate())


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class _SQLiteConnection(sqlite3.Connection):
    """A connection to a SQLite file whose write transactions take their turn on the file's gate; the
    turn ends with the transaction (commit, rollback or close)."""

    def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
        name = os.fsdecode(database)
        if _file_of(name) == name and os.path.isdir(os.path.dirname(name) or "."):  # a path, not a URI
            # A new database is made private; its -wal and -shm files take the database file's mode.
            create_private_file(Path(name))
        super().__init__(database, *args, **kwargs)
        self.gate = _gate_of(database)
        self.has_turn = False

    def take_turn(self, bound: float) -> float:
        """Wait (up to `bound` seconds) for this file's earlier writers of this process; returns how long
        SQLite may still wait for its lock (held by another process, or by a writer that came first)."""
        if self.gate is None or self.has_turn:
            return bound
        if _on_event_loop():  # the loop never waits for the gate (SQLite's own wait, as before, if any)
            self.has_turn = self.gate.enter(0)
            return bound
        started = time.monotonic()
        self.has_turn = self.gate.enter(bound)
        return max(0.0, bound - (time.monotonic() - started)) if self.has_turn else 0.0

    def end_turn(self) -> None:
        if self.has_turn:
            self.has_turn = False
            assert self.gate is not None
            self.gate.leave()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_turn()

    def __del__(self) -> None:  # a connection dropped without its rollback must not keep the turn
        if getattr(self, "has_turn", False):
            self.end_turn()


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


def _sqlite_setup(engine: Engine, *, busy_timeout: float, always_writes: bool = False, checkpoints: bool = True) -> None:
    """WAL, foreign keys and a busy timeout on every connection; every transaction begins as a reader's
    (BEGIN) or a writer's (its turn, then BEGIN IMMEDIATE), see `reading` above."""
    busy_ms = int(busy_timeout * 1000)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite begins transactions lazily and mishandles SAVEPOINT: let SQLAlchemy emit
        # BEGIN itself (its documented recipe), so nested transactions and rollbacks are real.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        if not checkpoints:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Any) -> None:
        writer = always_writes or _WRITES.get()
        connection.info[_BEGAN_READING] = not writer
        if not writer:
            connection.exec_driver_sql("BEGIN")
            return
        raw = connection.connection.dbapi_connection
        if not isinstance(raw, _SQLiteConnection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        left = raw.take_turn(busy_timeout)
        try:
            if left < busy_timeout:  # the bound is for the whole wait, the turn's and the lock's
                raw.execute(f"PRAGMA busy_timeout={int(left * 1000)}")
            try:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            finally:
                if left < busy_timeout:
                    raw.execute(f"PRAGMA busy_timeout={busy_ms}")
        except BaseException:
            raw.end_turn()
            raise


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    statement_timeout: float = 0,
    lock_timeout: float = 0,
) -> Engine:
    """Create the engine; SQLite gets WAL, foreign keys, and write transactions that wait their turn
    for up to `busy_timeout` seconds (then fail with "database is locked": 503 database_busy).

    The pool keeps `pool_size` connections open, and as many again under bursts; on SQLite at least
    SQLITE_POOL_SIZE (a SQLite connection costs little to keep and much to open). On PostgreSQL a
    statement that runs longer than `statement_timeout` or waits longer than `lock_timeout` for a lock
    (seconds, 0: no limit) is cancelled by the server: a stuck database gives an error, not a wait.
    """
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": busy_timeout, "factory": _SQLiteConnection}
        kwargs: dict[str, Any] = {"connect_args": connect_args}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
        else:
            # Opening a SQLite connection re-reads the schema and runs the pragmas: keep one open for
            # every worker thread that may query at once (the thread pool has 40), instead of churning.
            kwargs.update(pool_size=max(pool_size, SQLITE_POOL_SIZE), max_overflow=pool_size)
        engine = create_engine(url, **kwargs)

        _sqlite_setup(engine, busy_timeout=busy_timeout)
        return engine
    limits = {"statement_timeout": statement_timeout, "lock_timeout": lock_timeout}
    options = " ".join(f"-c {name}={round(seconds * 1000)}" for name, seconds in limits.items() if seconds > 0)
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        connect_args={"options": options} if options else {},
    )
    _ping_when_idle(engine, PING_AFTER_IDLE_SECONDS)
    return engine


# A pooled server connection unused for this long is checked (one round trip) before it is handed out.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine, idle_seconds: float) -> None:
    """Check a pooled connection before use only when it sat idle for `idle_seconds` or more.

    A check on every checkout (SQLAlchemy's ``pool_pre_ping``) is a round trip to the server on every
    transaction: on the busy paths, whose group commits check a connection out for every batch, it
    was a fifth of the writer's time (docs/operations.md, "Where the time goes"). A connection in
    steady use has just proved itself; one that sat idle (a restarted server, a firewall's timeout) is
    checked, and a dead one is replaced before anyone uses it. A connection that dies while in steady
    use fails that one transaction, and SQLAlchemy then refreshes the whole pool."""

    @event.listens_for(engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < idle_seconds:
            return  # new (just connected) or in steady use
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise DisconnectionError(f"a pooled connection idle for {idle_seconds:.0f} s is gone") from exc
        if not alive:
            raise DisconnectionError(f"a pooled connection idle for {idle_seconds:.0f} s is gone")


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
    never makes the loop wait: its transaction starts with BEGIN IMMEDIATE and a busy timeout of 0, and
    takes the writers' turn only if nobody has it, so a batch that finds another writer holding the
    database fails at once (and goes to the writer thread, which may wait); and its commits never
    checkpoint the log (a checkpoint syncs the disk), a thread of its own does that every
    LOOP_WRITER_CHECKPOINT_EVERY commits.
    """
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    connect_args = {"check_same_thread": False, "timeout": 0, "factory": _SQLiteConnection}
    loop_engine = create_engine(url, connect_args=connect_args, pool_size=2, max_overflow=2)
    _sqlite_setup(loop_engine, busy_timeout=0, always_writes=True, checkpoints=False)
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

    It also decides whether the request's transactions write (:func:`route_writes`), for everything
    the request runs: its dependencies, its endpoint and their commit; and it refuses, before anything
    runs, input the hub cannot take (:mod:`ops.inputs`: unstorable text, integers past BIGINT, NaN,
    dates out of range), with a 422 like every other.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _commit_in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    @functools.cached_property
    def writes(self) -> bool:
        calls, pending = [], [self.dependant]
        while pending:
            dependant = pending.pop()
            if dependant.call is not None:
                calls.append(dependant.call)
            pending.extend(dependant.dependencies)
        return route_writes(self.methods or (), calls)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler, writer, inputs = super().get_route_handler(), self.writes, input_rule(self)

        async def in_its_transactions(request: Request) -> Response:
            await check_inputs(request, inputs)
            # Kept until the request's exit stack closes: the session dependency commits after this returns.
            token = _WRITES.set(writer)
            request.scope["fastapi_inner_astack"].callback(_WRITES.reset, token)
            return await handler(request)

        return in_its_transactions
