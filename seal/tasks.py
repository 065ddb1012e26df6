"""Scheduled jobs of the seal domain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ops.config import Settings
from ops.crypto import KeyVault
from ops.scheduler import Job
from seal import service


def expire_seals(db: Session) -> int:
    """Mark seals whose validity period has ended as expired."""
    return service.expire_seals(db)


def renew_time_stamps(settings: Settings) -> Job:
    """Add a document time stamp to every kept B-LTA PDF whose chain is due (seal/ltv.py), once an hour."""

    def run(db: Session) -> int:
        done = service.renew_due(db, vault=KeyVault.from_settings(settings), settings=settings)
        return len(done.renewed)

    return Job(name="seal.lta_renew", interval_seconds=3600, run=run)


def stamp_pending(settings: Settings) -> Job:
    """Time-stamp the detached seal signatures made while the TSA was unreachable (seal/stamplater.py), every
    five minutes; the lease runs it in one process at a time."""

    def run(db: Session) -> int:
        done = service.stamp_pending(db, vault=KeyVault.from_settings(settings), settings=settings)
        return len(done.stamped)

    return Job(name="seal.stamp_pending", interval_seconds=300, run=run)


JOBS: list[Job] = [Job(name="seal.expire", interval_seconds=300, run=expire_seals)]


def jobs(settings: Settings) -> list[Job]:
    """The seal domain's jobs; the renewal and late-stamping jobs need the settings (the TSA, the margin, the
    weakened digests)."""
    return [*JOBS, renew_time_stamps(settings), stamp_pending(settings)]
