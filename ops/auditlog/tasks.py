"""Scheduled jobs of the audit log: sequencing records into the tree, signing checkpoints, time-stamping them
(a checkpoint the TSA could not stamp waits for the next run)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ops import timestamping
from ops.auditlog import service
from ops.crypto import KeyVault
from ops.scheduler import Job
from ops.storage import ObjectStore


def jobs(*, vault: KeyVault, store: ObjectStore | None) -> list[Job]:
    """The audit-log jobs; they need the vault (signing key) and the store (published checkpoints)."""

    def sequence(db: Session) -> int:
        return service.sequence(db)

    def checkpoint(db: Session) -> object:
        return service.checkpoint_now(db, vault=vault, store=store)

    def timestamp(db: Session) -> int:
        # the stamper the composition root configured (the hub's TSA or an external one)
        run = service.stamp_awaiting(db, stamper=timestamping.current_stamper())
        if run.failure is not None and run.awaiting:
            db.commit()  # keep the stamps this run got; the job's failure shows the wait (metrics, log)
            raise timestamping.StampUnavailable(f"{run.awaiting} checkpoint(s) await a time stamp: {run.failure}")
        return run.stamped

    return [
        Job(name="audit_log.sequence", interval_seconds=5, run=sequence),
        Job(name="audit_log.checkpoint", interval_seconds=60, run=checkpoint),
        Job(name="audit_log.timestamp", interval_seconds=30, run=timestamp),
    ]
