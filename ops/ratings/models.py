"""Tables of 好差评: one rating per served event, and the rectification (整改) a poor one opens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, VersionedMixin, utcnow


class RectificationStatus(StrEnum):
    OPEN = "open"
    REPLIED = "replied"


class ServiceRating(IdMixin, Base):
    """A rating (1–5) of one service event by whoever was served: a holder, or a department."""

    __tablename__ = "service_ratings"
    __table_args__ = (UniqueConstraint("event_kind", "event_id"),)

    event_kind: Mapped[str] = mapped_column(String(40))  # certificate.verify / certificate.fetch / sharing_request.decision / …
    event_id: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[str] = mapped_column(String(36), index=True)  # the department rated
    rater_kind: Mapped[str] = mapped_column(String(16))  # holder / department
    rater_ref: Mapped[str] = mapped_column(String(64), index=True)  # the holder's code, or the department's id
    rated_by: Mapped[str] = mapped_column(String(128))  # the signed-in subject that rated
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16), default="link")  # link (a rating token) / api
    rated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Rectification(IdMixin, VersionedMixin, Base):
    """整改: a poor rating's item, with a working-day deadline, closed by a reply to the rater."""

    __tablename__ = "rating_rectifications"

    rating_id: Mapped[str] = mapped_column(ForeignKey("service_ratings.id"), unique=True)
    department_id: Mapped[str] = mapped_column(String(36), index=True)
    status: Mapped[str] = mapped_column(String(16), default=RectificationStatus.OPEN.value, index=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    due_provisional: Mapped[bool] = mapped_column(default=False)
    reply: Mapped[str | None] = mapped_column(Text)
    replied_by: Mapped[str | None] = mapped_column(String(128))
    replied_at: Mapped[datetime | None] = mapped_column(default=None)
    late: Mapped[bool] = mapped_column(default=False)
