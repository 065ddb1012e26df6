"""Scheduled jobs of the certhub domain."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session

from certhub import repository, service
from ops.config import Settings
from ops.db import utcnow
from ops.scheduler import Job
from ops.workdays.service import CalendarListener


def check_objection_deadlines(db: Session) -> int:
    """Flag objections whose working-day deadline has passed."""
    return service.mark_overdue_objections(db)


def purge_used_nonces(db: Session) -> int:
    """Forget presentation nonces that can no longer be replayed (their presentation has expired)."""
    return repository.purge_nonces(db, utcnow())


def purge_short_codes(db: Session) -> int:
    """Forget 亮证码 a day after they expired (redeemed or not: the access record and the audit trail remain)."""
    return repository.purge_short_codes(db, utcnow() - timedelta(days=1))


def recompute_objection_deadlines(db: Session, year: int, *, settings: Settings) -> int:
    """Recompute open objection deadlines after a year's working-day calendar is loaded."""
    return service.recompute_objection_deadlines(db, year, settings=settings)


JOBS: list[Job] = [
    Job(name="certhub.objection_deadlines", interval_seconds=600, run=check_objection_deadlines),
    Job(name="certhub.purge_nonces", interval_seconds=3600, run=purge_used_nonces),
    Job(name="certhub.purge_short_codes", interval_seconds=3600, run=purge_short_codes),
]


def calendar_listeners(settings: Settings) -> list[CalendarListener]:
    """Called when a year's working-day calendar is loaded, to recompute open deadlines of this domain."""

    def objection_deadlines(db: Session, year: int) -> int:
        return recompute_objection_deadlines(db, year, settings=settings)

    return [objection_deadlines]
