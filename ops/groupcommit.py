"""Group commit: many requests' small writes in one transaction, each request answered once it is durable.

Some writes happen on every call of a busy endpoint: a window verification claims its nonce, reads
the certificate's status and records the access. Done one transaction per request, those commits
queue on the database's write lock (SQLite has one per database) and the queue, not the work,
decides latency. A :class:`GroupCommit` settles such items together with a *batch function* (a few
statements for the whole batch, not a few per item), commits once, then answers each caller with its
own item's result. Nothing is acknowledged before its commit, so nothing acknowledged can be lost.

Callers come two ways, and each way batches on its own side:

- **on the event loop** (``await run_async(item)``): items wait in a list on the loop; one flush at a
  time takes every waiting item to the writer thread and back. Handing over a batch, not an item,
  keeps the loop and the writer from trading the interpreter lock once per request;
- **from a worker thread** (``run(item)``): items go through a queue to a writer thread of their own,
  which takes every item waiting.

Both settle batches under one lock, so the two ways never write at the same time.

The batch function gets a Session and the items, returns one result per item, and only reads and
writes the database (no other side effects): if a batch fails, it is rolled back and each item is
settled again alone, so one bad item never sinks the others and its exception reaches its own caller.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

from prometheus_client import Histogram
from sqlalchemy.orm import Session, sessionmaker

from ops.errors import Unavailable

In = TypeVar("In")
Out = TypeVar("Out")

BATCH_SIZE = Histogram(
    "govhub_group_commit_batch_size",
    "Items committed together by a group commit",
    ["writer"],
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

_STOP = object()


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
    ) -> None:
        self.factory, self.settle, self.name, self.max_batch, self.timeout = factory, settle, name, max_batch, timeout
        self._queue: queue.SimpleQueue[tuple[In, Future[Out]] | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stopped = False
        # The event loop's side: items waiting for the next flush, and the flush under way.
        self._waiting: list[tuple[In, asyncio.Future[Out]]] = []
        self._flush: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

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
        if self._flush is None:
            self._flush = loop.create_task(self._flush_waiting())
        try:
            return await asyncio.wait_for(future, self.timeout)
        except TimeoutError as exc:
            raise self._too_slow() from exc

    async def _flush_waiting(self) -> None:
        """Hand every waiting item to the writer thread, batch after batch, until none is left."""
        loop = asyncio.get_running_loop()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"group-commit-{self.name}")
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                outcomes = await loop.run_in_executor(self._executor, self._settle_batch, [item for item, _ in batch])
                for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                    if future.done():  # the caller went away (cancelled, timed out)
                        continue
                    if error is not None:
                        future.set_exception(error)
                    else:
                        future.set_result(result)  # type: ignore[arg-type]
        finally:
            self._flush = None

    # ---- shared -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Settle the items already queued, then end the writer threads."""
        self._stopped = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    def _refuse_if_stopped(self) -> None:
        if self._stopped:
            raise Unavailable("the hub is shutting down; retry in a moment")

    def _too_slow(self) -> Unavailable:
        return Unavailable(f"the database did not take the write within {self.timeout:.0f} s; retry")

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"group-commit-{self.name}", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        stop = False
        while not stop:
            first = self._queue.get()
            if first is _STOP:
                return
            batch: list[tuple[In, Future[Out]]] = [first]  # type: ignore[list-item]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)  # type: ignore[arg-type]
            outcomes = self._settle_batch([item for item, _ in batch])
            for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                if error is not None:
                    future.set_exception(error)
                else:
                    future.set_result(result)  # type: ignore[arg-type]

    def _settle_batch(self, items: list[In]) -> list[tuple[Out | None, BaseException | None]]:
        """Settle and commit `items` together: (result, None) or (None, error) for each, in order."""
        with self._write_lock:
            BATCH_SIZE.labels(writer=self.name).observe(len(items))
            return self._commit(items)

    def _commit(self, items: list[In]) -> list[tuple[Out | None, BaseException | None]]:
        try:
            with self.factory() as session:
                results = list(self.settle(session, items))
                if len(results) != len(items):
                    raise RuntimeError(f"group commit {self.name}: {len(results)} results for {len(items)} items")
                session.commit()
        except BaseException as exc:
            if len(items) == 1:
                return [(None, exc)]
            # Find the item that failed: each alone, in a transaction of its own.
            return [outcome for item in items for outcome in self._commit([item])]
        return [(result, None) for result in results]
