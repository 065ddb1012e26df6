"""好差评 (seed 000 §12, seed 003 §16, seed 004 三(六)): whoever was served rates that event once; a poor
rating (1–2 of 5) opens a rectification item (整改) with a working-day deadline, closed by a reply to the rater.

Every domain rates through this one module and one table: a domain that serves someone hands the served party
a **rating token** (:func:`rating_token`, a JWT the hub signs, naming the event, the department rated and who
was served), as a link or a QR code; :func:`rate` accepts it from that party only, once per event. The
exchange's rating of a decided request (``POST /exchange/requests/{id}/rating``) is recorded here too
(:func:`record`). The report's rates come from :func:`department_rates`, the provincial export from :func:`export`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ops import audit
from ops.auth import Principal
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ops.ratings.models import Rectification, RectificationStatus, ServiceRating
from ops.spreadsheet import csv_text
from ops.workdays.service import SHANGHAI, calendar

RATING_AUDIENCE = "govhub-rating"  # a rating token is no access token: it carries this audience only
POOR = 2  # a score of at most this opens a rectification item
DEFAULT_RECTIFICATION_DAYS = 5  # working days to reply (GOVHUB_RECTIFICATION_WORKING_DAYS sets the hub's own)
# The events that can be rated, and who was served at each.
EVENT_KINDS = {
    "certificate.verify": "holder",  # a window verified the holder's certificate
    "certificate.fetch": "holder",  # a department fetched the holder's certificate (一证通办)
    "sharing_request.decision": "department",  # a provider decided the consumer's request
    "data.delivery": "department",  # a provider delivered data through a grant
}
EXPORT_FIELDS = [
    "rating_id",
    "event_kind",
    "event_id",
    "department_id",
    "department_code",
    "department_name",
    "rater_kind",
    "score",
    "comment",
    "rated_at",
    "rectification_status",
    "rectification_due_at",
    "replied_at",
    "reply",
    "reply_late",
]


class RatingTokenRefused(Invalid):
    code = "invalid_rating_token"


@dataclass(frozen=True)
class RatableEvent:
    """A served event a rating token names: what happened, which department served, and who was served."""

    kind: str
    event_id: str
    department_id: str
    rater_ref: str  # the holder's code, or the served department's id


Signer = Callable[..., str]  # KeyRing.issue
Checker = Callable[..., dict[str, Any]]  # KeyRing.verify


def rating_token(issue: Signer, settings: Settings, event: RatableEvent) -> tuple[str, datetime]:
    """A signed rating token for the party `event` served, valid ``rating_token_days``, and when it expires."""
    if event.kind not in EVENT_KINDS:
        raise Invalid(f"events of kind {event.kind} are not rated")
    ttl = settings.rating_token_days * 86400
    token = issue(
        subject=event.rater_ref,
        audience=RATING_AUDIENCE,
        issuer=settings.token_issuer or settings.public_url,
        ttl=ttl,
        evk=event.kind,
        evi=event.event_id,
        dep=event.department_id,
    )
    return token, utcnow() + timedelta(seconds=ttl)


def rating_link(settings: Settings, token: str) -> str:
    """The link (and QR code) a served party opens to rate: the console's rating page."""
    return f"{settings.public_url}/console/ratings/new/{token}"


def _served_event(check: Checker, settings: Settings, token: str) -> RatableEvent:
    try:
        claims = check(token, issuers=[settings.token_issuer or settings.public_url], audience=RATING_AUDIENCE)
    except Unauthenticated as exc:
        reason = exc.detail.replace("the token", "the rating token")
        raise RatingTokenRefused(reason, errors=[{"field": "token", "message": reason}]) from exc
    kind, event_id, department = claims.get("evk"), claims.get("evi"), claims.get("dep")
    if kind not in EVENT_KINDS or not isinstance(event_id, str) or not isinstance(department, str):
        raise RatingTokenRefused("the rating token names no event", errors=[{"field": "token", "message": "no event"}])
    return RatableEvent(kind=str(kind), event_id=event_id, department_id=department, rater_ref=str(claims["sub"]))


def _rater_ref(who: Principal, kind: str) -> str | None:
    return who.holder_code if kind == "holder" else who.department_id


def rate(
    db: Session, *, who: Principal, settings: Settings, check: Checker, token: str, score: int, comment: str | None
) -> ServiceRating:
    """Rate the event a rating token names: only the party it served, once; a poor score opens a rectification."""
    event = _served_event(check, settings, token)
    rater_kind = EVENT_KINDS[event.kind]
    if _rater_ref(who, rater_kind) != event.rater_ref:
        raise Forbidden(f"only the {rater_kind} this service was given to may rate it")
    return record(
        db, who=who, event=event, score=score, comment=comment, channel="link", working_days=settings.rectification_working_days
    )


def record(
    db: Session,
    *,
    who: Principal,
    event: RatableEvent,
    score: int,
    comment: str | None,
    working_days: int,
    channel: str = "api",
    at: datetime | None = None,
) -> ServiceRating:
    """Store the one rating of `event` (409 for a second), and open a rectification item when it is poor."""
    if not 1 <= score <= 5:
        raise Invalid("score must be from 1 (very poor) to 5 (very good)", errors=[{"field": "score", "message": "1–5"}])
    if rating_of_event(db, event.kind, event.event_id) is not None:
        raise Conflict("this service was already rated: each event is rated once")
    rating = ServiceRating(
        event_kind=event.kind,
        event_id=event.event_id,
        department_id=event.department_id,
        rater_kind=EVENT_KINDS[event.kind],
        rater_ref=event.rater_ref,
        rated_by=who.subject,
        score=score,
        comment=comment,
        channel=channel,
        rated_at=at or utcnow(),
    )
    db.add(rating)
    try:
        with db.begin_nested():
            db.flush()
    except IntegrityError as exc:  # another request rated the same event a moment earlier
        raise Conflict("this service was already rated: each event is rated once") from exc
    audit.record(
        db,
        actor=who,
        action="rating.rate",
        object_type=event.kind,
        object_id=event.event_id,
        subject=event.rater_ref if EVENT_KINDS[event.kind] == "holder" else None,
        detail={"score": score, "department": event.department_id},
    )
    if score <= POOR:
        deadline = calendar(db).add_working_days(rating.rated_at, working_days)
        item = Rectification(
            rating_id=rating.id,
            department_id=event.department_id,
            opened_at=rating.rated_at,
            due_at=deadline.due_at,
            due_provisional=deadline.provisional,
        )
        db.add(item)
        db.flush()
        audit.record(
            db,
            actor=audit.SYSTEM,
            action="rectification.open",
            object_type="rectification",
            object_id=item.id,
            detail={"rating": rating.id, "department": event.department_id, "due_at": item.due_at.isoformat()},
        )
    return rating


def rating_of_event(db: Session, kind: str, event_id: str) -> ServiceRating | None:
    return db.scalars(select(ServiceRating).where(ServiceRating.event_kind == kind, ServiceRating.event_id == event_id)).first()


def rating_by_id(db: Session, rating_id: str) -> ServiceRating | None:
    return db.get(ServiceRating, rating_id)


def rectification_of(db: Session, rating_id: str) -> Rectification | None:
    return db.scalars(select(Rectification).where(Rectification.rating_id == rating_id)).first()


@dataclass(frozen=True)
class RatingView:
    rating: ServiceRating
    rectification: Rectification | None


def my_ratings(db: Session, *, who: Principal) -> list[RatingView]:
    """The ratings the caller gave (as a holder, or for its department), newest first, with each reply."""
    refs = [r for r in (who.holder_code, who.department_id) if r]
    if not refs:
        raise Forbidden("ratings are given by holders and departments")
    rows = db.execute(
        select(ServiceRating, Rectification)
        .outerjoin(Rectification, Rectification.rating_id == ServiceRating.id)
        .where(ServiceRating.rater_ref.in_(refs))
        .order_by(ServiceRating.rated_at.desc())
        .limit(200)
    ).all()
    return [RatingView(rating, item) for rating, item in rows]


def _visible_rectifications(who: Principal) -> Select[Rectification, ServiceRating]:
    """What the caller may see of the queue: all of it (platform), or its department's items."""
    query = select(Rectification, ServiceRating).join(ServiceRating, ServiceRating.id == Rectification.rating_id)
    if who.is_platform_admin:
        return query
    if who.department_id is None:
        raise Forbidden("the rectification queue is for departments and the platform")
    return query.where(Rectification.department_id == who.department_id)


def rectifications(db: Session, *, who: Principal, status: str | None = None) -> list[RatingView]:
    """The rectification queue: open items first by deadline, then the replied ones, newest first."""
    query = _visible_rectifications(who)
    if status:
        if status not in {s.value for s in RectificationStatus}:
            raise Invalid(f"status must be open or replied, not {status}", errors=[{"field": "status", "message": "unknown"}])
        query = query.where(Rectification.status == status)
    rows = db.execute(query.order_by(Rectification.status, Rectification.due_at).limit(500)).all()
    return [RatingView(rating, item) for item, rating in rows]


def reply(db: Session, *, who: Principal, rectification_id: str, text: str, now: datetime | None = None) -> Rectification:
    """The rated department replies to the rater; a reply after the deadline is accepted and recorded as late."""
    department = who.require_department()
    item = db.scalars(
        select(Rectification).where(Rectification.id == rectification_id, Rectification.department_id == department)
    ).first()
    if item is None:  # another department's item is not found, as an unknown one
        raise NotFound(f"rectification {rectification_id} not found among your department's items")
    if item.status == RectificationStatus.REPLIED.value:
        raise Conflict("this rectification was already replied to")
    text = text.strip()
    if len(text) < 2:
        raise Invalid("the reply must say what was done", errors=[{"field": "reply", "message": "too short"}])
    now = now or utcnow()
    item.status = RectificationStatus.REPLIED.value
    item.reply, item.replied_by, item.replied_at = text, who.subject, now
    item.late = now > item.due_at
    db.flush()
    audit.record(
        db,
        actor=who,
        action="rectification.reply",
        object_type="rectification",
        object_id=item.id,
        outcome="late" if item.late else "success",
        detail={"late": item.late, "due_at": item.due_at.isoformat()},
    )
    return item


@dataclass
class DepartmentRates:
    """A department's 好差评 for a period: ratings by score, and how its rectification items went."""

    ratings: int = 0
    score_total: int = 0
    poor: int = 0
    opened: int = 0
    replied: int = 0
    replied_on_time: int = 0

    good: int = 0
    average: int = 0

    @property
    def words(self) -> dict[str, int]:
        """The scores as the exchange's report has always counted them: good (4–5), average (3), poor (1–2)."""
        counts = {"good": self.good, "average": self.average, "poor": self.poor}
        return {k: v for k, v in counts.items() if v}

    @property
    def average_score(self) -> float | None:
        return round(self.score_total / self.ratings, 2) if self.ratings else None

    @property
    def rectification_rate(self) -> float | None:
        """整改率: rectification items replied to, of those opened."""
        return round(self.replied / self.opened, 4) if self.opened else None

    @property
    def reply_on_time_rate(self) -> float | None:
        """按时回复率: items replied to within their deadline, of those opened."""
        return round(self.replied_on_time / self.opened, 4) if self.opened else None


def _period(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise Invalid("end must not be before start", errors=[{"field": "end", "message": "before start"}])
    lo = datetime.combine(start, datetime.min.time(), SHANGHAI)
    return lo, datetime.combine(end + timedelta(days=1), datetime.min.time(), SHANGHAI)


def _rows(db: Session, start: date, end: date) -> list[tuple[ServiceRating, Rectification | None]]:
    lo, hi = _period(start, end)
    query = (
        select(ServiceRating, Rectification)
        .outerjoin(Rectification, Rectification.rating_id == ServiceRating.id)
        .where(ServiceRating.rated_at >= lo, ServiceRating.rated_at < hi)
        .order_by(ServiceRating.rated_at, ServiceRating.id)
    )
    return [(rating, item) for rating, item in db.execute(query).all()]


def department_rates(db: Session, *, start: date, end: date) -> dict[str, DepartmentRates]:
    """Each rated department's ratings and rectification figures for ratings given in [start, end] (Beijing dates)."""
    rates: dict[str, DepartmentRates] = {}
    for rating, item in _rows(db, start, end):
        entry = rates.setdefault(rating.department_id, DepartmentRates())
        entry.ratings += 1
        entry.score_total += rating.score
        entry.poor += 1 if rating.score <= POOR else 0
        entry.good += 1 if rating.score >= 4 else 0
        entry.average += 1 if rating.score == 3 else 0
        if item is not None:
            entry.opened += 1
            if item.status == RectificationStatus.REPLIED.value:
                entry.replied += 1
                entry.replied_on_time += 0 if item.late else 1
    return rates


def export(
    db: Session, *, who: Principal, start: date, end: date, fmt: Literal["jsonl", "csv"], names: dict[str, tuple[str, str]]
) -> Iterator[str]:
    """The period's ratings for the provincial evaluation system, one record per rating (fields: EXPORT_FIELDS;
    docs/ops.md). `names`: department id → (统一社会信用代码, name). The export is recorded."""
    rows = _rows(db, start, end)
    audit.record(
        db,
        actor=who,
        action="rating.export",
        object_type="service_ratings",
        object_id=f"{start.isoformat()}..{end.isoformat()}",
        detail={"format": fmt, "records": len(rows)},
    )
    records = []
    for rating, item in rows:
        code, name = names.get(rating.department_id, ("", ""))
        records.append(
            {
                "rating_id": rating.id,
                "event_kind": rating.event_kind,
                "event_id": rating.event_id,
                "department_id": rating.department_id,
                "department_code": code,
                "department_name": name,
                "rater_kind": rating.rater_kind,
                "score": rating.score,
                "comment": rating.comment or "",
                "rated_at": rating.rated_at.isoformat(),
                "rectification_status": item.status if item else "",
                "rectification_due_at": item.due_at.isoformat() if item else "",
                "replied_at": item.replied_at.isoformat() if item and item.replied_at else "",
                "reply": (item.reply or "") if item else "",
                "reply_late": bool(item.late) if item else False,
            }
        )
    if fmt == "jsonl":
        for record_ in records:
            yield json.dumps(record_, ensure_ascii=False) + "\n"
        return
    score_column = EXPORT_FIELDS.index("score")
    yield csv_text(EXPORT_FIELDS, ([r[f] for f in EXPORT_FIELDS] for r in records), numeric_columns=[score_column])
