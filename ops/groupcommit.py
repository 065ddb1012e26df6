"""Group commit: many requests' small writes in one transaction, each request answered once it is durable.

Some writes happen on every call of a busy endpoint: a window verification claims its nonce, reads
the certificate's status and records the access. Done one transaction per request, those commits
queue on the database's write lock (SQLite has one per database) and the queue, not the work,
decides latency. A :class:`GroupCommit` hands such items to one writer thread, which takes every
item waiting, settles them together with a *batch function* (a few statements for the whole batch,
not a few per item), commits once, then answers each caller with its own item's result. Nothing is
acknowledged before its commit, so nothing acknowledged can be lost.

The batch function gets a Session and the items, returns one result per item, and only reads and
writes the database (no other side effects): if a batch fails, it is rolled back and each item is
settled again alone, so one bad item never sinks the others and its exception reaches its own caller.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
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
    """A writer thread settling the items of many callers in shared commits (see the module's docstring)."""

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
        self._stopped = False

    def submit(self, item: In) -> Future[Out]:
        """Queue `item` for the next batch; the future is resolved once that batch has committed."""
        if self._stopped:
            raise Unavailable("the hub is shutting down; retry in a moment")
        self._ensure_started()
        future: Future[Out] = Future()
        self._queue.put((item, future))
        return future

    def run(self, item: In) -> Out:
        """Settle `item` in the next batch and return its result once the batch has committed."""
        try:
            return self.submit(item).result(timeout=self.timeout)
        except TimeoutError as exc:
            raise Unavailable(f"the database did not take the write within {self.timeout:.0f} s; retry") from exc

    def stop(self) -> None:
        """Settle the items already queued, then end the writer thread."""
        self._stopped = True
        if self._thread is not None:
            self._queue.put(_STOP)
            self._thread.join(timeout=self.timeout)

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
            batch = [first]
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            BATCH_SIZE.labels(writer=self.name).observe(len(batch))
            self._commit(batch)  # type: ignore[arg-type]

    def _commit(self, batch: list[tuple[In, Future[Out]]]) -> None:
        try:
            with self.factory() as session:
                results = list(self.settle(session, [item for item, _ in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"group commit {self.name}: {len(results)} results for {len(batch)} items")
                session.commit()
        except BaseException as exc:
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for one in batch:  # find the item that failed: each alone, in a transaction of its own
                self._commit([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)
