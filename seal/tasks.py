"""Scheduled jobs of the seal domain."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ops.scheduler import Job
from seal import service


def expire_seals(db: Session) -> int:
    """Mark seals whose validity period has ended as expired."""
    return service.expire_seals(db)


JOBS: list[Job] = [Job(name="seal.expire", interval_seconds=300, run=expire_seals)]
