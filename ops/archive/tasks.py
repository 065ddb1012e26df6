"""Scheduled job of the archive: time-stamping the packages written while the time-stamp authority was unreachable
(once across processes: the lease runner decides which process runs it)."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from ops import timestamping
from ops.archive import packages
from ops.scheduler import Job
from ops.storage import ObjectStore

log = logging.getLogger("govhub.archive")


def stamp_and_clean(db: Session, storage: ObjectStore) -> packages.StampRun:
    """Stamp what awaits, commit, then delete the unstamped objects no package uses any more."""
    run = packages.stamp_awaiting(db, storage=storage)
    db.commit()
    for key in run.replaced:
        try:
            storage.delete(key)
        except Exception:  # an object left behind is garbage, not a loss: the package points at its stamped one
            log.exception("could not delete the unstamped object %s", key)
    return run


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

    return [Job(name="archive.timestamp", interval_seconds=60, run=timestamp)]
