"""HTTP API of the working-day calendar."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from ops.auth import AnyCaller, PlatformAdmin
from ops.db import DbSession, HubRoute
from ops.errors import Invalid
from ops.workdays import service
from ops.workdays.models import CalendarYear
from ops.workdays.schemas import CalendarDayRead, CalendarLoad, CalendarLoaded, CalendarYearRead, DeadlineRead

router = APIRouter(prefix="/calendar", tags=["calendar"], route_class=HubRoute)
Year = Annotated[int, Path(ge=2000, le=2100, description="calendar year")]


@router.get("/years/{year}", response_model=CalendarYearRead)
def read_year(year: Year, db: DbSession, who: AnyCaller) -> Any:
    """A year's calendar: whether it is loaded, published in the package, or missing; its special days."""
    row = db.get(CalendarYear, year)
    days = [CalendarDayRead(date=d, kind=k, name=n) for d, k, n in service.days_of_year(db, year)]
    return CalendarYearRead(
        year=year,
        status=service.calendar_status(db, year),
        source=row.source if row else None,
        loaded_at=row.loaded_at if row else None,
        days=days,
    )


@router.put("/years/{year}", response_model=CalendarLoaded)
def load_year(year: Year, body: CalendarLoad, request: Request, db: DbSession, who: PlatformAdmin) -> Any:
    """Load or replace a year's holidays and 调休 working days; open deadlines are recomputed."""
    _, changed = service.load_calendar(
        db,
        who=who,
        year=year,
        source=body.source,
        holidays=[service.DayEntry(d.date, d.name) for d in body.holidays],
        workdays=[service.DayEntry(d.date, d.name) for d in body.workdays],
        listeners=request.app.state.calendar_listeners,
    )
    return CalendarLoaded(year=year, deadlines_recomputed=changed)


@router.get("/deadline", response_model=DeadlineRead)
def deadline(
    db: DbSession,
    who: AnyCaller,
    days: Annotated[int, Query(ge=0, le=service.MAX_WORKING_DAYS, description="working days")],
    start: Annotated[datetime | None, Query(description="ISO 8601 with offset; default now")] = None,
) -> Any:
    """When a period of `days` working days starting at `start` ends."""
    start = start or datetime.now(UTC)
    if start.tzinfo is None:
        raise Invalid(
            "start needs a UTC offset, e.g. 2026-09-30T16:00:00+08:00", errors=[{"field": "start", "message": "no offset"}]
        )
    result = service.add_working_days(db, start, days)
    return DeadlineRead(
        start=start, working_days=days, due_at=result.due_at, last_day=result.last_day, provisional=result.provisional
    )
