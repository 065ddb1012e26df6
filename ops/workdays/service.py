"""The working-day engine and the loading of a year's calendar."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from time import monotonic
from typing import Literal
from zoneinfo import ZoneInfo

import chinese_calendar
from sqlalchemy import delete, event, func, select
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.errors import Invalid
from ops.workdays.models import CalendarDay, CalendarYear

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Safety bound: no deadline of the hub is longer than this many working days.
MAX_WORKING_DAYS = 366

CalendarStatus = Literal["loaded", "published", "missing"]
# Called after a year's calendar changes, to recompute the open deadlines that depend on it;
# returns how many deadlines changed.
CalendarListener = Callable[[Session, int], int]


@lru_cache(maxsize=64)
def package_knows(year: int) -> bool:
    """Whether the chinesecalendar package holds the State Council's calendar for `year`."""
    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return False
    return True


@dataclass(frozen=True)
class Deadline:
    """When a period ends: 24:00 Asia/Shanghai of its last working day, stored in UTC."""

    due_at: datetime  # aware, UTC
    last_day: date  # the last working day, in Asia/Shanghai
    provisional: bool  # some day of the period lies in a year whose calendar is not known yet


class WorkCalendar:
    """Which days are working days: loaded years first, then the package, then Monday to Friday."""

    def __init__(self, loaded: dict[int, dict[date, tuple[str, str]]]) -> None:
        self._loaded = loaded  # year -> {day: (kind, name)}

    def status(self, year: int) -> CalendarStatus:
        if year in self._loaded:
            return "loaded"
        return "published" if package_knows(year) else "missing"

    def is_working_day(self, day: date) -> bool:
        loaded = self._loaded.get(day.year)
        if loaded is not None:
            entry = loaded.get(day)
            if entry is not None:
                return entry[0] == "workday"
            return day.weekday() < 5
        if package_knows(day.year):
            return bool(chinese_calendar.is_workday(day))
        return day.weekday() < 5

    def day_name(self, day: date) -> str | None:
        """The holiday or 调休 name of a day, if it has one."""
        loaded = self._loaded.get(day.year)
        if loaded is not None:
            entry = loaded.get(day)
            return entry[1] if entry else None
        if package_knows(day.year):
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
            if name:
                return str(name) if on_holiday or chinese_calendar.is_workday(day) else None
        return None

    def add_working_days(self, start: datetime, days: int, *, zone: ZoneInfo = SHANGHAI) -> Deadline:
        """The deadline `days` working days after `start` (the start day itself never counts)."""
        if start.tzinfo is None:
            raise ValueError("start must be an aware datetime")
        if not 0 <= days <= MAX_WORKING_DAYS:
            raise Invalid(f"a period must be 0 to {MAX_WORKING_DAYS} working days, got {days}")
        day = start.astimezone(zone).date()
        provisional = False
        counted = 0
        while counted < days:
            day += timedelta(days=1)
            if self.status(day.year) == "missing":
                provisional = True
            if self.is_working_day(day):
                counted += 1
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        return Deadline(due_at=end.astimezone(UTC), last_day=day, provisional=provisional)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days d with start < d <= end (0 when end is not after start)."""
        count = 0
        day = start
        while day < end:
            day += timedelta(days=1)
            if self.is_working_day(day):
                count += 1
        return count

    def working_days_left(self, now: datetime, deadline: datetime, *, zone: ZoneInfo = SHANGHAI) -> int:
        """Working days still available before `deadline`, today included if it is one (negative: overdue)."""
        today = now.astimezone(zone).date()
        last = (deadline.astimezone(zone) - timedelta(microseconds=1)).date()
        if now >= deadline:
            return -self.working_days_between(last, today)
        left = self.working_days_between(today, last)
        return left + (1 if self.is_working_day(today) else 0)


# The calendar is read once per process and database, not per deadline: a deadline counted while filing a
# request would otherwise cost a round trip (the calendar's stamp) on every filing. A year loaded through
# this process is seen at once (the cache is emptied when the loading transaction commits, and the loading
# transaction itself reads its own changes); one loaded by another process (a replica, `govhub calendar
# load`) within CALENDAR_RECHECK_SECONDS, when the stamp (years, versions, last load) is read again.
CALENDAR_RECHECK_SECONDS = 5.0
_CHANGED = "govhub_calendar_changed"  # Session.info: this transaction loaded a year


@dataclass
class _Cached:
    stamp: tuple[int, int, str | None]
    calendar: WorkCalendar
    checked: float  # time.monotonic() of the last stamp read


_cache_lock = threading.Lock()
_cache: dict[str, _Cached] = {}


def _stamp(db: Session) -> tuple[int, int, str | None]:
    row = db.execute(
        select(func.count(CalendarYear.year), func.coalesce(func.sum(CalendarYear.version), 0), func.max(CalendarYear.loaded_at))
    ).one()
    return (int(row[0]), int(row[1]), str(row[2]) if row[2] else None)


def _read_calendar(db: Session) -> WorkCalendar:
    loaded: dict[int, dict[date, tuple[str, str]]] = {year: {} for year in db.scalars(select(CalendarYear.year))}
    for row in db.scalars(select(CalendarDay)):
        loaded.setdefault(row.year, {})[row.day] = (row.kind, row.name)
    return WorkCalendar(loaded)


def calendar(db: Session) -> WorkCalendar:
    """The calendar as the database has it (read once per process; see CALENDAR_RECHECK_SECONDS)."""
    if db.info.get(_CHANGED):  # this transaction loaded a year: its own view, never cached
        return _read_calendar(db)
    key = db.get_bind().engine.url.render_as_string(hide_password=True)
    at = monotonic()
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None and at - cached.checked < CALENDAR_RECHECK_SECONDS:
            return cached.calendar
    stamp = _stamp(db)
    if cached is not None and cached.stamp == stamp:
        cached.checked = at
        return cached.calendar
    result = _read_calendar(db)
    with _cache_lock:
        _cache[key] = _Cached(stamp, result, at)
    return result


def forget_calendar() -> None:
    """Empty this process's calendar cache (the next deadline reads the calendar again)."""
    with _cache_lock:
        _cache.clear()


@event.listens_for(Session, "after_commit")
def _loaded_year_committed(session: Session) -> None:
    if session.info.pop(_CHANGED, False):
        forget_calendar()


@event.listens_for(Session, "after_rollback")
def _loaded_year_rolled_back(session: Session) -> None:
    session.info.pop(_CHANGED, None)


def add_working_days(db: Session, start: datetime, days: int) -> Deadline:
    """The deadline `days` working days after `start`, on the database's calendar."""
    return calendar(db).add_working_days(start, days)


def working_days_between(db: Session, start: date, end: date) -> int:
    return calendar(db).working_days_between(start, end)


def working_days_left(db: Session, now: datetime, deadline: datetime) -> int:
    return calendar(db).working_days_left(now, deadline)


def loaded_year(db: Session, year: int) -> CalendarYear | None:
    """The calendar an administrator loaded for `year`, if any."""
    return db.get(CalendarYear, year)


def calendar_status(db: Session, year: int) -> CalendarStatus:
    """ "loaded" (by an administrator), "published" (in the package) or "missing"."""
    if db.get(CalendarYear, year) is not None:
        return "loaded"
    return "published" if package_knows(year) else "missing"


@dataclass(frozen=True)
class DayEntry:
    day: date
    name: str


def load_calendar(
    db: Session,
    *,
    who: Actor,
    year: int,
    holidays: Iterable[DayEntry],
    workdays: Iterable[DayEntry],
    source: str,
    listeners: Iterable[CalendarListener] = (),
) -> tuple[CalendarYear, int]:
    """Load (or replace) a year's calendar, then recompute the open deadlines that depend on it.

    `holidays` are the days off (法定节假日, weekends inside a holiday period may be listed too);
    `workdays` the weekend days made working days (调休). Returns the year and how many deadlines changed.
    """
    holidays, workdays = list(holidays), list(workdays)
    errors: list[dict[str, str]] = []
    if not 2000 <= year <= 2100:
        raise Invalid(f"year {year} is out of range", errors=[{"field": "year", "message": "2000 to 2100"}])
    seen: dict[date, str] = {}
    for field, entries in (("holidays", holidays), ("workdays", workdays)):
        for i, entry in enumerate(entries):
            where = f"{field}[{i}]"
            if entry.day.year != year:
                errors.append({"field": where, "message": f"{entry.day} is not in {year}"})
            elif entry.day in seen:
                errors.append({"field": where, "message": f"{entry.day} is also listed in {seen[entry.day]}"})
            elif field == "workdays" and entry.day.weekday() < 5:
                errors.append({"field": where, "message": f"{entry.day} is a weekday, already a working day"})
            seen[entry.day] = field
    if errors:
        raise Invalid(
            f"the calendar for {year} has {len(errors)} error(s): "
            + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            errors=errors,
        )
    db.info[_CHANGED] = True  # this transaction counts deadlines on the new calendar; others after its commit
    row = db.get(CalendarYear, year)
    if row is None:
        row = CalendarYear(year=year, source=source, loaded_by=who.subject, version=1)
        db.add(row)
    else:
        row.source, row.loaded_by, row.loaded_at = source, who.subject, datetime.now(UTC)
    db.flush()
    db.execute(delete(CalendarDay).where(CalendarDay.year == year))
    db.add_all(CalendarDay(day=e.day, year=year, kind="holiday", name=e.name) for e in holidays)
    db.add_all(CalendarDay(day=e.day, year=year, kind="workday", name=e.name) for e in workdays)
    db.flush()
    changed = sum(listener(db, year) for listener in listeners)
    audit.record(
        db,
        actor=who,
        action="calendar.load",
        object_type="calendar_year",
        object_id=str(year),
        purpose=source,
        detail={"holidays": len(holidays), "workdays": len(workdays), "deadlines_recomputed": changed},
    )
    return row, changed


def days_of_year(db: Session, year: int) -> list[tuple[date, str, str]]:
    """The non-ordinary days of a year: (day, "holiday" | "workday", name)."""
    cal = calendar(db)
    result = []
    day = date(year, 1, 1)
    while day.year == year:
        working = cal.is_working_day(day)
        weekend = day.weekday() >= 5
        if working == weekend:  # a weekday off, or a weekend day worked
            result.append((day, "workday" if working else "holiday", cal.day_name(day) or ""))
        day += timedelta(days=1)
    return result
