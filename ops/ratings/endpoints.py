"""HTTP API of 好差评: rate with a rating token, my ratings, the rectification queue, replies, the export."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from ops.auth import AnyCaller, DepartmentOrAdmin, PlatformAdmin
from ops.db import DbSession, HubRoute, utcnow, writes
from ops.identity import repository as identity
from ops.pagination import Page, whole_page
from ops.ratings import service
from ops.ratings.schemas import RectificationRead, ReplyCreate, ServiceRatingCreate, ServiceRatingRead

router = APIRouter(prefix="/ratings", tags=["ratings"], route_class=HubRoute)


@router.post("", status_code=201, response_model=ServiceRatingRead)
def rate_service(body: ServiceRatingCreate, request: Request, db: DbSession, who: AnyCaller) -> Any:
    """好差评: rate the service a rating token names, once, as the party it was given to; 1–2 opens a rectification."""
    state = request.app.state
    rating = service.rate(
        db, who=who, settings=state.settings, check=state.keyring.verify, token=body.token, score=body.score, comment=body.comment
    )
    return ServiceRatingRead.of(service.RatingView(rating, service.rectification_of(db, rating.id)))


@router.get("/mine", response_model=Page[ServiceRatingRead])
def my_ratings(db: DbSession, who: AnyCaller) -> Any:
    """The ratings I (or my department) gave, newest first, with each rectification's reply."""
    return whole_page([ServiceRatingRead.of(v) for v in service.my_ratings(db, who=who)])


@router.get("/rectifications", response_model=Page[RectificationRead])
def list_rectifications(db: DbSession, who: DepartmentOrAdmin, status: Literal["open", "replied"] | None = None) -> Any:
    """The rectification queue (整改): the platform sees every department's, a department its own."""
    now = utcnow()
    return whole_page([RectificationRead.of(v, now=now) for v in service.rectifications(db, who=who, status=status)])


@router.post("/rectifications/{rectification_id}/reply", response_model=RectificationRead)
def reply_to_rating(rectification_id: str, body: ReplyCreate, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The rated department replies to the rater; after the deadline the reply is accepted and recorded as late."""
    item = service.reply(db, who=who, rectification_id=rectification_id, text=body.reply)
    rating = service.rating_by_id(db, item.rating_id)
    assert rating is not None
    return RectificationRead.of(service.RatingView(rating, item), now=utcnow())


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}, "text/csv": {}}}},
    summary="The period's ratings for the provincial evaluation system (JSON Lines or CSV)",
)
@writes  # the export is recorded in the audit trail
def export_ratings(
    db: DbSession,
    who: PlatformAdmin,
    start: date,
    end: date,
    format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl (default) or csv")] = "jsonl",
) -> StreamingResponse:
    """One record per rating with its rectification (fields in docs/ops.md, `EXPORT_FIELDS`)."""
    names = {d.id: (d.code, d.name) for d in identity.all_departments(db, who)}
    body = list(service.export(db, who=who, start=start, end=end, fmt=format, names=names))
    media = "application/x-ndjson" if format == "jsonl" else "text/csv; charset=utf-8"
    filename = f"ratings-{start.isoformat()}-{end.isoformat()}.{format}"
    return StreamingResponse(iter(body), media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
