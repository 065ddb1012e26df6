"""Scheduled jobs of the audit log: sequencing records into the tree and signing checkpoints."""

from __future__ import annotations

from sqlalchemy.orm import Session

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

    return [
        Job(name="audit_log.sequence", interval_seconds=5, run=sequence),
        Job(name="audit_log.checkpoint", interval_seconds=60, run=checkpoint),
    ]
