"""Platform jobs scheduled beside the domains' ones."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from ops.archive import tasks as archive_tasks
from ops.auditlog import tasks as auditlog_tasks
from ops.crypto import KeyVault
from ops.db import utcnow
from ops.metrics import HOLIDAY_CALENDAR_MISSING
from ops.scheduler import Job
from ops.storage import ObjectStore
from ops.workdays.service import SHANGHAI

log = logging.getLogger("govhub.calendar")

CalendarStatus = Callable[[Session, int], str]


def _calendar_status(db: Session, year: int) -> str:
    """ "published", "loaded" or "missing" for a year, as the working-day calendar sees it."""
    from ops.workdays import calendar_status

    return str(calendar_status(db, year))


def check_next_year_calendar(
    db: Session, *, now: datetime | None = None, status_of: CalendarStatus = _calendar_status
) -> str | None:
    """From 1 December (Beijing time, as working days are counted), warn when next year's holiday calendar is
    missing; returns the warning given."""
    local = (now or utcnow()).astimezone(SHANGHAI)
    year = local.year + 1
    if local.month != 12:
        HOLIDAY_CALENDAR_MISSING.labels(str(year)).set(0)
        return None
    status = status_of(db, year)
    if status != "missing":
        HOLIDAY_CALENDAR_MISSING.labels(str(year)).set(0)
        return None
    HOLIDAY_CALENDAR_MISSING.labels(str(year)).set(1)
    message = (
        f"the {year} holiday calendar (法定节假日安排) is not loaded; deadlines that reach into {year} "
        f"cannot be computed. Load it with `govhub calendar load {year} FILE` (or PUT /calendar/years/{year}) "
        "once the State Council publishes it."
    )
    log.warning(message, extra={"year": year})
    return message


def platform_jobs(*, vault: KeyVault, store: ObjectStore | None) -> list[Job]:
    """Jobs of the platform itself: the audit log, archive time stamps, and the next-year calendar warning."""
    return [
        *auditlog_tasks.jobs(vault=vault, store=store),
        *archive_tasks.jobs(store=store),
        Job(name="calendar.next_year_check", interval_seconds=3600, run=check_next_year_calendar),
    ]
