"""Calendar years loaded by administrators and their exceptional days."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, VersionedMixin, utcnow


class CalendarYear(VersionedMixin, Base):
    """A year whose calendar an administrator loaded (overrides the packaged calendar)."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(200))  # e.g. 国办发明电〔2026〕x号
    loaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    loaded_by: Mapped[str] = mapped_column(String(128))


class CalendarDay(Base):
    """An exception to Monday-to-Friday: a holiday on a weekday, or a working weekend day (调休)."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # "holiday" | "workday"
    name: Mapped[str] = mapped_column(String(100))
