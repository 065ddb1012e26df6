"""Request and response models of 好差评."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ops.ratings import service


class RatingTokenRead(BaseModel):
    """A rating token for the party a service was given to: open `link` (or its QR code) to rate it once."""

    token: str
    link: str
    event_kind: str
    expires_at: datetime

    @classmethod
    def issued(cls, state: Any, event: service.RatableEvent) -> RatingTokenRead:
        """A token signed with the hub's key ring (`state`: the app's state, with `keyring` and `settings`)."""
        token, expires_at = service.rating_token(state.keyring.issue, state.settings, event)
        return cls(token=token, link=service.rating_link(state.settings, token), event_kind=event.kind, expires_at=expires_at)


class ServiceRatingCreate(BaseModel):
    """好差评: the rating token given for the service, a score from 1 (very poor) to 5 (very good), a comment."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"token": "eyJhbGciOiJFZERTQSJ9…", "score": 2, "comment": "等了很久"}]}
    )

    token: str = Field(min_length=1, max_length=4000)
    score: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=1000)


class ReplyCreate(BaseModel):
    """The rated department's reply to the rater: what it did about the poor rating (整改情况)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"reply": "已增加窗口人手，并致电说明。"}]})

    reply: str = Field(min_length=2, max_length=2000)


class RectificationBrief(BaseModel):
    id: str
    status: str
    due_at: datetime
    reply: str | None
    replied_at: datetime | None
    late: bool


class ServiceRatingRead(BaseModel):
    id: str
    event_kind: str
    event_id: str
    department_id: str
    score: int
    comment: str | None
    rated_at: datetime
    rectification: RectificationBrief | None = None

    @classmethod
    def of(cls, view: service.RatingView) -> ServiceRatingRead:
        r, item = view.rating, view.rectification
        brief = None
        if item is not None:
            brief = RectificationBrief(
                id=item.id, status=item.status, due_at=item.due_at, reply=item.reply, replied_at=item.replied_at, late=item.late
            )
        return cls(
            id=r.id,
            event_kind=r.event_kind,
            event_id=r.event_id,
            department_id=r.department_id,
            score=r.score,
            comment=r.comment,
            rated_at=r.rated_at,
            rectification=brief,
        )


class RectificationRead(BaseModel):
    id: str
    rating_id: str
    department_id: str
    status: str
    opened_at: datetime
    due_at: datetime
    due_provisional: bool
    overdue: bool = Field(description="open past its deadline")
    reply: str | None
    replied_at: datetime | None
    late: bool = Field(description="replied after its deadline")
    event_kind: str
    score: int
    comment: str | None

    @classmethod
    def of(cls, view: service.RatingView, *, now: datetime) -> RectificationRead:
        item, r = view.rectification, view.rating
        assert item is not None
        return cls(
            id=item.id,
            rating_id=r.id,
            department_id=item.department_id,
            status=item.status,
            opened_at=item.opened_at,
            due_at=item.due_at,
            due_provisional=item.due_provisional,
            overdue=item.status == "open" and item.due_at < now,
            reply=item.reply,
            replied_at=item.replied_at,
            late=item.late,
            event_kind=r.event_kind,
            score=r.score,
            comment=r.comment,
        )
