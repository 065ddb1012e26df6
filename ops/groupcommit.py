"""Group commit: many requests' small writes in one transaction, each request answered once it is durable.

Some writes happen on every call of a busy endpoint: a window verification claims its nonce, reads
the certificate's status and records the access. Done one transaction per request, those commits
queue on the database's write lock (SQLite has one per database) and the queue, not the work,
decides latency. A :class:`GroupCommit` settles such items together with a *batch function* (a few
statements for the whole batch, not a few per item), commits once, then answers each caller with its
own item's result. Nothing is acknowledged before its commit, so nothing acknowledged can be lost.

Callers come two ways, and each way batches on its own side:

- **on the event loop** (``await run_async(item)``): items wait in a list on the loop; one flush at a
  time hands every waiting item to the writer thread as one batch and awaits its answers, which come
  back in one callback. Handing over a batch, not an item, keeps the loop and the writer from
  trading the interpreter lock once per request;
- **from a worker thread** (``run(item)``): items go to the writer thread one by one.

One writer thread per group commit takes everything waiting for it, from both ways, and settles it
in one transaction: the two ways never write at the same time, and share commits when they meet.

Where the database lives in the process (SQLite), its statements are work, not waits, and handing
them to a thread costs more than they do (the thread and the loop trade the interpreter lock at every
statement). Given a ``loop_writer`` (``ops.db.make_loop_writer``), the loop settles a batch itself
whenever it can do so without waiting: the loop writer's transactions never wait for the database's
write lock. A batch that finds the database busy, or fails, goes to the writer thread as above.

On a database server (PostgreSQL) a batch spends most of its time waiting for the server's answers,
one round trip per statement, during which one writer thread does nothing else. With ``writers`` above
one, that many writer threads take batches from the same queue and as many loop batches may be under
way at once: while one batch waits for the server, the next is already being settled. A further loop
batch is handed over only once EXTRA_WRITER_AFTER items wait: with few callers, one writer settling
them together costs less than several settling each alone. (On SQLite one
writer holds the database at a time, so one writer thread is all there is to have.) Two batches that
count against the same row (a grant's per-minute counter) still take that row in turn, the database's
row lock deciding; the batch functions take such rows in a fixed order so two batches never deadlock.

The batch function gets a Session and the items, returns one result per item, and only reads and
writes the database (no other side effects): if a batch fails, it is rolled back and each item is
settled again alone, so one bad item never sinks the others and its exception reaches its own caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Histogram
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import DatabaseBusy, Unavailable, is_database_busy

In = TypeVar("In")
Out = TypeVar("Out")

BATCH_SIZE = Histogram(
    "govhub_group_commit_batch_size",
    "Items committed together by a group commit",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)
ON_LOOP = Counter(
    "govhub_group_commit_loop_batches_total",
    "Batches the event loop settled itself with its loop writer (SQLite), not the writer thread",
    ["writer"],
)
HANDED_OVER = Counter(
    "govhub_group_commit_handed_over_total",
    "Batches the event loop handed to the writer thread though it has a loop writer (database busy, or a failure)",
    ["writer"],
)

_STOP = object()

# Writer threads of a group commit on a database server, unless configured (GOVHUB_GROUP_COMMIT_WRITERS).
SERVER_WRITERS = 3
# Items waiting on the event loop before a further writer takes a batch while another batch is under way.
EXTRA_WRITER_AFTER = 8


def writers_for(engine: Engine, configured: int = 0) -> int:
    """How many writer threads a group commit on `engine` gets: `configured` if not 0, else one on
    SQLite (one writer at a time holds the database) and SERVER_WRITERS on a database server."""
    if configured:
        return configured
    return 1 if engine.dialect.name == "sqlite" else SERVER_WRITERS


@dataclass
class _LoopBatch(Generic[In, Out]):
    """Items handed over together by an event loop, answered together on that loop."""

    items: list[In]
    loop: asyncio.AbstractEventLoop
    answered: asyncio.Future[list[_Outcome[Out]]]


_Outcome = tuple[Out | None, BaseException | None]  # (result, None) or (None, error)


class GroupCommit(Generic[In, Out]):
    """Settles the items of many callers in shared commits (see the module's docstring)."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        settle: Callable[[Session, Sequence[In]], Sequence[Out]],
        *,
        name: str,
        max_batch: int = 256,
        timeout: float = 30.0,
        loop_writer: sessionmaker[Session] | None = None,
        writers: int = 1,
    ) -> None:
        if writers < 1:
            raise ValueError("a group commit needs at least one writer thread")
        self.factory, self.settle, self.name, self.max_batch, self.timeout = factory, settle, name, max_batch, timeout
        self.writers = writers
        self.loop_writer = loop_writer
        self._handed_over = HANDED_OVER.labels(writer=name)
        self._on_loop = ON_LOOP.labels(writer=name)
        self._queue: queue.SimpleQueue[tuple[In, Future[Out]] | _LoopBatch[In, Out] | object] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()
        self._stopped = False
        self._batch_size = BATCH_SIZE.labels(writer=name)
        # The event loop's side: items waiting for the next flush, and the flushes under way (at most
        # one per writer thread).
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    # ---- from worker threads ----------------------------------------------------------------------

    def submit(self, item: In) -> Future[Out]:
        """Queue `item` for the next batch; the future is resolved once that batch has committed."""
        self._refuse_if_stopped()
        self._ensure_started()
        future: Future[Out] = Future()
        self._queue.put((item, future))
        return future

    def run(self, item: In) -> Out:
        """Settle `item` in the next batch and return its result once the batch has committed."""
        try:
            return self.submit(item).result(timeout=self.timeout)
        except TimeoutError as exc:
            raise self._too_slow() from exc

    # ---- from the event loop ----------------------------------------------------------------------

    async def run_async(self, item: In) -> Out:
        """:meth:`run` for the event loop: awaits the commit without holding a thread. If the caller
        goes away first, its item is still settled with the batch it joined; only the answer is dropped."""
        self._refuse_if_stopped()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Out] = loop.create_future()
        self._waiting.append((item, future))
        # Each flush under way is either settling a batch or about to take the next one (it takes
        # without waiting in between). A further one starts, while fewer than the writer threads, only
        # once a batch's worth waits: a few callers are better served together by the writer under way
        # than each alone by another (small batches cost more per item than the wait saves).
        if not self._flushes or (len(self._flushes) < self.writers and len(self._waiting) >= EXTRA_WRITER_AFTER):
            flush = loop.create_task(self._flush_waiting())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            raise self._too_slow() from exc

    async def _flush_waiting(self) -> None:
        """Hand every waiting item to the writer thread, batch after batch, until none is left."""
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                items = [item for item, _ in batch]
                outcomes = self._settle_on_loop(items)
                if outcomes is None:
                    self._ensure_started()
                    handed: _LoopBatch[In, Out] = _LoopBatch(items, loop, loop.create_future())
                    self._queue.put(handed)
                    outcomes = await handed.answered
                for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away (cancelled, timed out)
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(result)  # type: ignore[arg-type]
        finally:
            task = asyncio.current_task()
            if task is not None:
                self._flushes.discard(task)

    def _settle_on_loop(self, items: list[In]) -> list[_Outcome[Out]] | None:
        """Settle a batch right here with the loop writer; None when it cannot be done without waiting
        (another writer holds the database) or a statement failed: rolled back, nothing of it written,
        the writer thread takes the batch (and finds the failing item, if one failed)."""
        if self.loop_writer is None:
            return None
        try:
            results = self._settle_in(self.loop_writer, items)
        except Exception:
            self._handed_over.inc()
            return None
        self._batch_size.observe(len(items))
        self._on_loop.inc()
        return [(result, None) for result in results]

    # ---- shared -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Settle the items already queued, then end the writer thread."""
        self._stopped = True
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            thread.join(timeout=self.timeout)

    def _refuse_if_stopped(self) -> None:
        if self._stopped:
            raise Unavailable("the hub is shutting down; retry in a moment")

    def _too_slow(self) -> DatabaseBusy:
        return DatabaseBusy(f"the database is busy: it did not take the write within {self.timeout:.0f} s; retry")

    def _ensure_started(self) -> None:
        if self._threads:
            return
        with self._start_lock:
            if not self._threads:
                threads = [
                    threading.Thread(target=self._loop, name=f"group-commit-{self.name}-{n}", daemon=True)
                    for n in range(self.writers)
                ]
                for thread in threads:
                    thread.start()
                self._threads = threads

    def _loop(self) -> None:
        """The writer thread: take everything waiting (both ways), settle it together, answer each."""
        stop = False
        while not stop:
            waiting = [self._queue.get()]
            count = 0
            while True:
                last = waiting[-1]
                if last is _STOP:
                    waiting.pop()
                    stop = True
                    break
                count += len(last.items) if isinstance(last, _LoopBatch) else 1
                if count >= self.max_batch:
                    break
                try:
                    waiting.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if waiting:
                self._answer(waiting, self._settle_batch(waiting))  # type: ignore[arg-type]

    def _settle_batch(self, waiting: list[tuple[In, Future[Out]] | _LoopBatch[In, Out]]) -> list[_Outcome[Out]]:
        items = [i for w in waiting for i in (w.items if isinstance(w, _LoopBatch) else [w[0]])]
        self._batch_size.observe(len(items))
        return self._commit(items)

    @staticmethod
    def _answer(waiting: list[tuple[In, Future[Out]] | _LoopBatch[In, Out]], outcomes: list[_Outcome[Out]]) -> None:
        """Give each caller its outcome: a thread's future at once, a loop's batch in one callback on its loop."""
        at = 0
        for entry in waiting:
            if isinstance(entry, _LoopBatch):
                mine, at = outcomes[at : at + len(entry.items)], at + len(entry.items)
                with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for the answer
                    entry.loop.call_soon_threadsafe(_resolve, entry.answered, mine)
                continue
            (result, error), at = outcomes[at], at + 1
            if error is not None:
                entry[1].set_exception(error)
            else:
                entry[1].set_result(result)  # type: ignore[arg-type]

    def _settle_in(self, factory: sessionmaker[Session], items: list[In]) -> list[Out]:
        """Settle `items` in one transaction of a session from `factory`, and commit it."""
        with factory() as session:
            results = list(self.settle(session, items))
            if len(results) != len(items):
                raise RuntimeError(f"group commit {self.name}: {len(results)} results for {len(items)} items")
            session.commit()
        return results

    def _commit(self, items: list[In]) -> list[_Outcome[Out]]:
        try:
            results = self._settle_in(self.factory, items)
        except BaseException as exc:
            if len(items) == 1 or is_database_busy(exc):  # busy: no item is at fault, and each alone would wait again
                return [(None, exc) for _ in items]
            # Find the item that failed: each alone, in a transaction of its own.
            return [outcome for item in items for outcome in self._commit([item])]
        return [(result, None) for result in results]


def _resolve(answered: asyncio.Future[list[Any]], outcomes: list[Any]) -> None:
    if not answered.done():
        answered.set_result(outcomes)
