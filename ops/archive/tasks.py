"""Scheduled jobs of the archive: time-stamping the packages written while the time-stamp authority was unreachable,
and renewing stamp chains before their last stamp's certificate expires or its algorithm weakens (each once across
processes: the lease runner decides which process runs it)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ops import timestamping
from ops.archive import packages
from ops.config import Settings, get_settings
from ops.scheduler import Job
from ops.storage import ObjectStore

log = logging.getLogger("govhub.archive")


def stamp_and_clean(db: Session, storage: ObjectStore) -> packages.StampRun:
    """Stamp what awaits, commit, then delete the unstamped objects no package uses any more."""
    run = packages.stamp_awaiting(db, storage=storage)
    db.commit()
    _delete(storage, run.replaced, "could not delete the unstamped object %s")
    return run


def renew_and_clean(db: Session, storage: ObjectStore, settings: Settings | None = None) -> packages.RenewalRun:
    """Renew the stamp chains that are due, commit, then delete the objects no package uses any more."""
    run = packages.renew_stamps(db, storage=storage, settings=settings or get_settings())
    db.commit()
    _delete(storage, run.replaced, "could not delete the object %s replaced by a renewal")
    return run


def _delete(storage: ObjectStore, keys: list[str], failure: str) -> None:
    """Delete the objects a committed run replaced; one that cannot be deleted is logged (`failure`, its key) and
    left, as its package points at the new one."""
    for key in keys:
        try:
            storage.delete(key)
        except Exception:  # an object left behind is garbage, not a loss
            log.exception(failure, key)


def jobs(*, store: ObjectStore | None) -> list[Job]:
    """The archive's jobs; without object storage there are no packages to stamp."""
    if store is None:
        return []
    storage = store

    def timestamp(db: Session) -> int:
        run = stamp_and_clean(db, storage)
        if run.failure is not None and run.awaiting:
            raise timestamping.StampUnavailable(f"{run.awaiting} archive package(s) await a time stamp: {run.failure}")
        return run.stamped

    def renew(db: Session) -> int:
        run = renew_and_clean(db, storage)
        if run.failure is not None:
            raise timestamping.StampUnavailable(f"archive time-stamp renewal stopped: {run.failure}")
        return run.renewed

    return [
        Job(name="archive.timestamp", interval_seconds=60, run=timestamp),
        Job(name="archive.renew_stamps", interval_seconds=3600, run=renew),
    ]
