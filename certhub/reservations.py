"""Serials and status-list positions reserved in blocks by each process, so that issuers do not take turns.

A certificate's serial and its status-list position are signed into it, so they are needed before its two
signatures. Taken in the request's own transaction, the counter rows they come from stay locked until that
transaction commits, and every issuer of the same type and department (every issuer at all, for the
positions) waits through the others' signing and remaining statements. On PostgreSQL a process instead
reserves a block of each in a short transaction of its own, on a connection of its own (so a request never
waits for a second connection of the pool its peers hold), and hands them out to its requests:

- serials: SERIAL_BLOCK consecutive values of the (type, issuer) counter. A serial handed to a request that
  fails stays unused, as in bulk issuance, and so do the rest of a block when its process stops or the block
  is older than BLOCK_SECONDS: serials have gaps and, between processes, are not in the order of issuance.
- status-list positions: POSITION_BLOCK positions drawn at random among the free ones
  (``repository.reserve_status_indices``), recorded as reserved so that no other allocation draws them. The
  counter counts them as handed out, so the lists stay at most half full. A position whose request failed
  is never used: a bit of the list no certificate refers to, which is harmless (positions are random, the
  lists have many such bits).

On SQLite, whose writers take turns anyway, and for a session bound to a connection rather than to an
engine (the tests' transactions), both are taken in the request's transaction as before.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from certhub import repository

SERIAL_BLOCK = 32
POSITION_BLOCK = 64
BLOCK_SECONDS = 600.0  # a block older than this is dropped (repository.RESERVATION_KEEP is longer)
RESERVING_LOCK_TIMEOUT = "10s"  # a reservation waits this long for a bulk run holding the counter


@dataclass
class _Block:
    values: deque[int]
    until: float  # time.monotonic()


_lock = threading.Lock()  # one refill at a time: a process needs one extra connection, never more
_blocks: dict[tuple[str, str], _Block] = {}
_engines: dict[str, Engine] = {}


def _reserving_engine(db: Session) -> tuple[str, Engine] | None:
    """The connection reservations are made on, for a session bound to a PostgreSQL engine (else None)."""
    bind = db.get_bind()
    if not isinstance(bind, Engine) or bind.dialect.name != "postgresql":
        return None
    key = bind.url.render_as_string(hide_password=True)  # a name for the database, never its password
    engine = _engines.get(key)
    if engine is None:
        options = f"-c lock_timeout={RESERVING_LOCK_TIMEOUT}"
        engine = create_engine(bind.url, pool_size=1, max_overflow=0, pool_pre_ping=True, connect_args={"options": options})
        _engines[key] = engine
    return key, engine


def _take(key: tuple[str, str], refill: Callable[[], list[int]]) -> int:
    with _lock:
        now = time.monotonic()
        block = _blocks.get(key)
        if block is None or not block.values or block.until <= now:
            block = _blocks[key] = _Block(deque(refill()), now + BLOCK_SECONDS)
        return block.values.popleft()


def serial(db: Session, counter: str) -> int:
    """The next serial of a (type, issuer) counter for a certificate issued in `db`'s transaction."""
    reserving = _reserving_engine(db)
    if reserving is None:
        return repository.allocate(db, counter)
    url, engine = reserving

    def refill() -> list[int]:
        with Session(engine) as side, side.begin():
            first = repository.allocate(side, counter, SERIAL_BLOCK)
        return list(range(first, first + SERIAL_BLOCK))

    return _take((url, "serial:" + counter), refill)


def status_index(db: Session) -> int:
    """A free status-list position for a certificate issued in `db`'s transaction."""
    reserving = _reserving_engine(db)
    if reserving is None:
        return repository.status_indices(db)[0]
    url, engine = reserving

    def refill() -> list[int]:
        with Session(engine) as side, side.begin():
            return repository.reserve_status_indices(side, POSITION_BLOCK)

    return _take((url, "status-index"), refill)


def forget() -> None:
    """Drop this process's blocks (their values stay unused) and its reserving connections."""
    with _lock:
        _blocks.clear()
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
