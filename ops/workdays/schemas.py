"""Request and response models of the working-day calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field


class Day(BaseModel):
    date: date
    name: str = Field(min_length=1, max_length=100, description="e.g. 国庆节, 春节, 国庆节调休")


class CalendarLoad(BaseModel):
    """A year's calendar as the State Council publishes it (国务院办公厅关于…部分节假日安排的通知)."""

    source: str = Field(min_length=2, max_length=200, description="where the calendar comes from")
    holidays: list[Day] = Field(description="days off (法定节假日 and the days added to them)")
    workdays: list[Day] = Field(default_factory=list, description="weekend days that are working days (调休)")


class CalendarDayRead(BaseModel):
    date: date
    kind: Literal["holiday", "workday"]
    name: str


class CalendarYearRead(BaseModel):
    year: int
    status: Literal["loaded", "published", "missing"]
    source: str | None = None
    loaded_at: datetime | None = None
    days: list[CalendarDayRead] = Field(description="weekdays off and weekend days worked")


class CalendarLoaded(BaseModel):
    year: int
    deadlines_recomputed: int


class DeadlineRead(BaseModel):
    start: datetime
    working_days: int
    due_at: datetime = Field(description="the instant the period ends (24:00 Asia/Shanghai of its last day)")
    last_day: date
    provisional: bool = Field(description="true when the period reaches a year whose calendar is not known yet")
