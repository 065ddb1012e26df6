"""Serials and status-list positions: reserved in blocks per process on PostgreSQL, so that issuers whose
transactions are still open (signing, storing) do not hold the next issuer back."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session

from certhub import repository, reservations
from certhub.models import Counter, StatusReservation
from ops.db import utcnow
from tests.certhub.conftest import World


@pytest.fixture()
def blocks() -> Iterator[None]:
    reservations.forget()
    yield
    reservations.forget()


def test_a_position_reserved_by_another_process_is_never_drawn(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    held = world.issue()["status_index"]
    with world.hub.factory() as db:
        db.add(StatusReservation(status_index=held + 7, reserved_at=utcnow()))
        db.flush()
        # The draw meets the certificate's position and the reserved one first: it takes the next free one.
        monkeypatch.setattr(repository._random, "sample", lambda _population, _k: [held, held + 7, held + 3, held + 5])
        assert repository.status_indices(db, 2) == [held + 3, held + 5]
        # A draw that meets only taken positions continues after the highest one, reserved ones included.
        monkeypatch.setattr(repository._random, "sample", lambda _population, _k: [held, held + 7])
        assert repository.status_indices(db, 1) == [held + 8]
        db.rollback()


def test_a_reservation_is_recorded_and_those_older_than_an_hour_are_forgotten(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    held = world.issue()["status_index"]
    with world.hub.factory() as db:
        abandoned = held + 11  # reserved two hours ago by a process that stopped before using it
        db.add(StatusReservation(status_index=abandoned, reserved_at=utcnow() - timedelta(hours=2)))
        db.flush()
        monkeypatch.setattr(repository._random, "sample", lambda _population, _k: [held, held + 2, held + 4])
        assert repository.reserve_status_indices(db, 2) == [held + 2, held + 4]
        reserved = set(db.scalars(select(StatusReservation.status_index)))
        assert reserved == {held + 2, held + 4}  # the abandoned one is free again; the certificate holds its own
        db.rollback()


def test_a_session_bound_to_one_connection_takes_its_position_in_its_own_transaction(world: World, blocks: None) -> None:
    cert = world.issue()
    with world.hub.factory() as db:
        assert db.scalar(select(StatusReservation).where(StatusReservation.status_index == cert["status_index"])) is None


def _postgres(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("blocks are reserved on PostgreSQL only (SQLite's writers take turns anyway)")


def test_an_issuer_whose_transaction_is_open_does_not_hold_the_next_one_back_on_postgresql(engine: Engine, blocks: None) -> None:
    _postgres(engine)
    counter = f"serial:TEST{uuid.uuid4().hex[:8]}"
    first_took = threading.Event()
    second_done = threading.Event()
    taken: dict[str, tuple[int, int]] = {}
    errors: list[BaseException] = []

    def issuer(name: str, *, hold: bool) -> None:
        try:
            with Session(engine) as db, db.begin():
                taken[name] = (reservations.serial(db, counter), reservations.status_index(db))
                if hold:  # still signing: its transaction stays open until the other one has its values
                    first_took.set()
                    assert second_done.wait(30), "the second issuer waited for the first one's commit"
                else:
                    second_done.set()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    first = threading.Thread(target=issuer, args=("first",), kwargs={"hold": True})
    first.start()
    assert first_took.wait(30)
    second = threading.Thread(target=issuer, args=("second",), kwargs={"hold": False})
    second.start()
    second.join(30)
    first.join(30)
    try:
        assert not errors, errors
        (serial_1, index_1), (serial_2, index_2) = taken["first"], taken["second"]
        assert (serial_1, serial_2) == (1, 2)  # one block of the (type, issuer) series, handed out in turn
        assert index_1 != index_2
        with Session(engine) as db:
            # The block's positions are recorded as reserved (committed at once): no other process draws them.
            reserved = set(db.scalars(select(StatusReservation.status_index)))
            assert {index_1, index_2} <= reserved and len(reserved) >= reservations.POSITION_BLOCK
            assert db.get(Counter, counter).next_value == 1 + reservations.SERIAL_BLOCK  # type: ignore[union-attr]
    finally:
        with Session(engine) as db, db.begin():
            db.execute(delete(StatusReservation))
            db.execute(delete(Counter).where(Counter.name == counter))
