"""Group commits settled on the event loop, where the database is a SQLite file in the process.

The loop must never wait: a batch that finds another writer holding the database goes to the writer
thread instead, a failing batch too, and the log is checkpointed by a thread of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from ops import db as ops_db
from ops.db import make_engine, make_loop_writer, make_sessionmaker, reading
from ops.groupcommit import HANDED_OVER, ON_LOOP, GroupCommit


@pytest.fixture()
def sqlite_file(tmp_path: Path) -> Iterator[tuple[Path, Engine]]:
    path = tmp_path / "loop-writer.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE notes (name TEXT PRIMARY KEY)")
    with reading(), engine.connect() as connection:  # a writer's transaction would keep the log from being emptied
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # the table is in the file itself
    yield path, engine
    engine.dispose()


def _write(db: Session, items: Sequence[str]) -> list[str]:
    """One row per item; an item named 'bad' breaks the batch."""
    if "bad" in items:
        raise ValueError("this item cannot be written")
    db.execute(text("INSERT INTO notes (name) VALUES (:name)"), [{"name": i} for i in items])
    return [f"written {i}" for i in items]


def _names(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return [r[0] for r in connection.execute(text("SELECT name FROM notes ORDER BY name"))]


def _writer(engine: Engine) -> GroupCommit[str, str]:
    loop_writer = make_loop_writer(engine)
    assert loop_writer is not None
    return GroupCommit(make_sessionmaker(engine), _write, name="loop-test", loop_writer=loop_writer)


def _handed_over() -> float:
    return HANDED_OVER.labels(writer="loop-test")._value.get()


def _on_loop() -> float:
    return ON_LOOP.labels(writer="loop-test")._value.get()


def test_window_batches_are_settled_on_the_loop_without_a_writer_thread(sqlite_file: tuple[Path, Engine]) -> None:
    _, engine = sqlite_file
    writer = _writer(engine)
    before, on_loop = _handed_over(), _on_loop()

    async def callers() -> list[str]:
        return list(await asyncio.gather(*(writer.run_async(f"n{i:02d}") for i in range(20))))

    assert asyncio.run(callers()) == [f"written n{i:02d}" for i in range(20)]
    assert not writer._threads  # nothing was handed over: no writer thread was started
    assert _handed_over() == before
    assert 1 <= _on_loop() - on_loop < 20  # settled on the loop, together
    writer.stop()
    assert _names(engine) == [f"n{i:02d}" for i in range(20)]


def test_a_busy_database_sends_the_batch_to_the_writer_thread_and_the_loop_goes_on(
    sqlite_file: tuple[Path, Engine],
) -> None:
    path, engine = sqlite_file
    writer = _writer(engine)
    before = _handed_over()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer (a dataset upload, another process) holds the database
    other.execute("INSERT INTO notes (name) VALUES ('other')")

    async def scenario() -> tuple[str, int]:
        waiting = asyncio.ensure_future(writer.run_async("late"))
        ticks = 0
        while ticks < 20:  # the loop keeps running while the writer thread waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not waiting.done()
        other.execute("COMMIT")
        return await waiting, ticks

    answer, ticks = asyncio.run(scenario())
    other.close()
    writer.stop()
    assert (answer, ticks) == ("written late", 20)
    assert _handed_over() == before + 1
    assert _names(engine) == ["late", "other"]


def test_a_failing_batch_on_the_loop_is_settled_by_the_writer_thread_item_by_item(sqlite_file: tuple[Path, Engine]) -> None:
    _, engine = sqlite_file
    writer = _writer(engine)

    async def callers() -> list[object]:
        return list(await asyncio.gather(*(writer.run_async(n) for n in ("a", "bad", "c")), return_exceptions=True))

    a, bad, c = asyncio.run(callers())
    writer.stop()
    assert (a, c) == ("written a", "written c")
    assert isinstance(bad, ValueError)
    assert _names(engine) == ["a", "c"]  # the loop's attempt left nothing behind; nothing twice


def test_the_log_is_checkpointed_by_a_thread_of_its_own(
    sqlite_file: tuple[Path, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, engine = sqlite_file
    monkeypatch.setattr(ops_db, "LOOP_WRITER_CHECKPOINT_EVERY", 3)
    loop_writer = make_loop_writer(engine)
    assert loop_writer is not None

    def in_database_file() -> list[str]:
        """What the database file holds without its log (immutable=1 reads the file alone)."""
        with contextlib.closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as view:
            return [r[0] for r in view.execute("SELECT name FROM notes ORDER BY name")]

    for name in ("a", "b"):
        with loop_writer() as session:
            _write(session, [name])
            session.commit()
    assert in_database_file() == []  # committed in the log; the commits themselves did not checkpoint
    with loop_writer() as session:
        _write(session, ["c"])
        session.commit()  # the third commit starts a checkpoint in the background
    deadline = time.monotonic() + 10
    while in_database_file() != ["a", "b", "c"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert in_database_file() == ["a", "b", "c"]


def test_only_a_sqlite_file_gets_a_loop_writer(sqlite_file: tuple[Path, Engine]) -> None:
    _, engine = sqlite_file
    assert isinstance(make_loop_writer(engine), sessionmaker)
    memory = make_engine("sqlite://")
    assert make_loop_writer(memory) is None
    server = make_engine("postgresql+psycopg://hub@db.invalid/hub")  # never connected: the URL decides
    assert make_loop_writer(server) is None
