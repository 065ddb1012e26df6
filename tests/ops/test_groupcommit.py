"""Group commit as its callers see it: each gets its own answer once its write is committed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from ops.db import make_sessionmaker
from ops.errors import Unavailable
from ops.groupcommit import SERVER_WRITERS, GroupCommit, writers_for

NOTE = "groupcommit-test"


def _notes(db: Session) -> list[str]:
    rows = db.execute(text("SELECT object_id FROM audit_records WHERE action = :a ORDER BY object_id"), {"a": NOTE})
    return [r[0] for r in rows]


def _write_notes(db: Session, items: Sequence[str]) -> list[str]:
    """The batch function: one audit record per item; an item named 'bad' fails the batch."""
    from ops import audit

    for item in items:
        if item == "bad":
            raise ValueError("this item cannot be written")
    audit.append(db, [audit.entry(actor=audit.SYSTEM, action=NOTE, object_type="note", object_id=i) for i in items])
    return [f"written {i}" for i in items]


def test_many_callers_share_commits_and_each_gets_its_own_answer(session_factory: sessionmaker[Session]) -> None:
    seen_batches: list[int] = []

    def settle(db: Session, items: Sequence[str]) -> list[str]:
        seen_batches.append(len(items))
        return _write_notes(db, items)

    writer = GroupCommit(session_factory, settle, name="test")
    gate = threading.Event()
    writer.submit("first")  # starts the writer; the others queue meanwhile
    answers: dict[str, str] = {}

    def caller(name: str) -> None:
        gate.wait()
        answers[name] = writer.run(name)

    threads = [threading.Thread(target=caller, args=(f"n{i:02d}",)) for i in range(20)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(timeout=30)
    writer.stop()
    assert answers == {f"n{i:02d}": f"written n{i:02d}" for i in range(20)}
    assert sum(seen_batches) == 21
    with session_factory() as db:
        assert _notes(db) == ["first", *sorted(answers)]


def test_one_bad_item_fails_only_its_own_caller(session_factory: sessionmaker[Session]) -> None:
    writer = GroupCommit(session_factory, _write_notes, name="test")
    futures = {name: writer.submit(name) for name in ("a", "bad", "c")}
    assert futures["a"].result(timeout=30) == "written a"
    assert futures["c"].result(timeout=30) == "written c"
    with pytest.raises(ValueError, match="cannot be written"):
        futures["bad"].result(timeout=30)
    writer.stop()
    with session_factory() as db:
        assert _notes(db) == ["a", "c"]  # nothing of the bad item, nothing twice


def test_a_stopped_writer_refuses_new_items_with_a_retry_message(session_factory: sessionmaker[Session]) -> None:
    writer = GroupCommit(session_factory, _write_notes, name="test")
    assert writer.run("x") == "written x"
    writer.stop()
    with pytest.raises(Unavailable, match="shutting down"):
        writer.run("y")


def test_callers_on_the_event_loop_share_commits_and_each_gets_its_own_answer(
    session_factory: sessionmaker[Session],
) -> None:
    seen_batches: list[int] = []

    def settle(db: Session, items: Sequence[str]) -> list[str]:
        seen_batches.append(len(items))
        return _write_notes(db, items)

    writer = GroupCommit(session_factory, settle, name="test")

    async def windows() -> list[str]:
        return list(await asyncio.gather(*(writer.run_async(f"w{i:02d}") for i in range(30))))

    answers = asyncio.run(windows())
    writer.stop()
    assert answers == [f"written w{i:02d}" for i in range(30)]
    assert sum(seen_batches) == 30
    assert len(seen_batches) < 30  # they waited together: fewer commits than callers
    with session_factory() as db:
        assert _notes(db) == [f"w{i:02d}" for i in range(30)]


def test_on_the_event_loop_one_bad_item_fails_only_its_own_caller(session_factory: sessionmaker[Session]) -> None:
    writer = GroupCommit(session_factory, _write_notes, name="test")

    async def windows() -> list[object]:
        return list(await asyncio.gather(*(writer.run_async(n) for n in ("a", "bad", "c")), return_exceptions=True))

    a, bad, c = asyncio.run(windows())
    writer.stop()
    assert (a, c) == ("written a", "written c")
    assert isinstance(bad, ValueError)
    with session_factory() as db:
        assert _notes(db) == ["a", "c"]


def test_a_caller_that_goes_away_does_not_disturb_the_others(session_factory: sessionmaker[Session]) -> None:
    writer = GroupCommit(session_factory, _write_notes, name="test")

    async def windows() -> str:
        impatient = asyncio.ensure_future(writer.run_async("gone"))
        patient = asyncio.ensure_future(writer.run_async("stays"))
        await asyncio.sleep(0)
        impatient.cancel()  # the client hung up while its batch was being written
        return await patient

    assert asyncio.run(windows()) == "written stays"
    writer.stop()
    with session_factory() as db:
        assert _notes(db) == ["gone", "stays"]  # the batch it joined was still written, once


def test_a_stopped_writer_refuses_callers_on_the_event_loop(session_factory: sessionmaker[Session]) -> None:
    writer = GroupCommit(session_factory, _write_notes, name="test")
    writer.stop()
    with pytest.raises(Unavailable, match="shutting down"):
        asyncio.run(writer.run_async("late"))


def test_callers_on_the_loop_and_in_threads_share_one_commit_when_they_meet(session_factory: sessionmaker[Session]) -> None:
    seen_batches: list[list[str]] = []
    busy, release = threading.Event(), threading.Event()

    def settle(db: Session, items: Sequence[str]) -> list[str]:
        seen_batches.append(list(items))
        if items == ["first"]:
            busy.set()
            release.wait(timeout=30)  # the writer is busy while the others arrive
        return _write_notes(db, items)

    writer = GroupCommit(session_factory, settle, name="test")
    first = writer.submit("first")
    assert busy.wait(timeout=30)
    from_thread = writer.submit("thread")

    async def window() -> str:
        waiting = asyncio.ensure_future(writer.run_async("loop"))
        await asyncio.sleep(0.05)  # handed to the writer, queued behind the first batch
        release.set()
        return await waiting

    assert asyncio.run(window()) == "written loop"
    assert (first.result(timeout=30), from_thread.result(timeout=30)) == ("written first", "written thread")
    writer.stop()
    assert seen_batches == [["first"], ["thread", "loop"]]
    with session_factory() as db:
        assert _notes(db) == ["first", "loop", "thread"]


def test_with_several_writers_a_slow_batch_does_not_hold_up_the_callers_behind_it(engine: Engine) -> None:
    """On a database server a batch mostly waits for answers: with writers=2, callers that arrive
    while one batch is waiting are settled and answered by the other writer meanwhile."""
    factory = make_sessionmaker(engine)  # real transactions: two writers need two connections
    waiting, release = threading.Event(), threading.Event()
    seen_batches: list[list[str]] = []

    def settle(db: Session, items: Sequence[str]) -> list[str]:
        seen_batches.append(list(items))
        if "slow" in items:
            waiting.set()
            release.wait(timeout=30)  # as if the server were slow to answer this batch
        # Each batch reads in its own transaction on its own connection (the session database is
        # shared with other tests and its audit trail is append-only: nothing is written here).
        one = db.execute(text("SELECT 1")).scalar_one()
        return [f"answered {i} ({one})" for i in items]

    writer = GroupCommit(factory, settle, name="test", writers=2)

    async def windows() -> tuple[str, list[str], bool]:
        slow = asyncio.ensure_future(writer.run_async("slow"))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        fast = await asyncio.wait_for(asyncio.gather(*(writer.run_async(f"fast{i}") for i in range(10))), 30)
        still_waiting = not slow.done()
        release.set()
        return await slow, list(fast), still_waiting

    try:
        slow, fast, still_waiting = asyncio.run(windows())
    finally:
        release.set()
        writer.stop()
    assert still_waiting  # the fast callers were answered while the slow batch still waited
    assert slow == "answered slow (1)"
    assert fast == [f"answered fast{i} (1)" for i in range(10)]
    assert seen_batches[0] == ["slow"] and sorted(i for batch in seen_batches[1:] for i in batch) == [
        f"fast{i}" for i in range(10)
    ]


def test_a_group_commit_has_one_writer_on_sqlite_and_several_on_a_server(engine: Engine) -> None:
    assert writers_for(engine, 5) == 5  # as configured (GOVHUB_GROUP_COMMIT_WRITERS)
    assert writers_for(engine) == (1 if engine.dialect.name == "sqlite" else SERVER_WRITERS)
    with pytest.raises(ValueError, match="at least one writer"):
        GroupCommit(make_sessionmaker(engine), _write_notes, name="test", writers=0)


def test_a_few_callers_wait_for_the_writer_under_way_and_share_its_next_batch(engine: Engine) -> None:
    """Fewer than a batch's worth of callers (EXTRA_WRITER_AFTER) are not each sent to another writer:
    they wait for the one under way and are settled together."""
    factory = make_sessionmaker(engine)
    waiting, release = threading.Event(), threading.Event()
    seen_batches: list[list[str]] = []

    def settle(db: Session, items: Sequence[str]) -> list[str]:
        seen_batches.append(list(items))
        if "slow" in items:
            waiting.set()
            release.wait(timeout=30)
        db.execute(text("SELECT 1"))
        return [f"answered {i}" for i in items]

    writer = GroupCommit(factory, settle, name="test", writers=3)

    async def windows() -> tuple[list[str], bool]:
        slow = asyncio.ensure_future(writer.run_async("slow"))
        while not waiting.is_set():
            await asyncio.sleep(0.01)
        few = asyncio.ensure_future(asyncio.gather(*(writer.run_async(f"few{i}") for i in range(3))))
        await asyncio.sleep(0.3)
        answered_early = few.done()
        release.set()
        await slow
        return list(await few), answered_early

    try:
        few, answered_early = asyncio.run(windows())
    finally:
        release.set()
        writer.stop()
    assert not answered_early
    assert few == ["answered few0", "answered few1", "answered few2"]
    assert seen_batches == [["slow"], ["few0", "few1", "few2"]]
