"""Console pages of 好差评 and public 验真.

Holder (持证人): my ratings and the replies to them, and the uses of my certificates I can still rate.
Anyone served: the rating page a rating link or QR code opens. Departments and the platform: the
rectification queue (整改), where the rated department replies. Anyone, without signing in: the public
验真 page a certificate copy's QR code opens. Thin: the rules are in ``ops.ratings.service`` and ``certhub.service``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from certhub import service as certhub
from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, errors_of, nav, templates
from govhub.console.qr import qr_svg
from ops.auth import STAFF_OR_ADMIN_ROLES, Principal, Role
from ops.db import DbSession, utcnow, writes
from ops.errors import HubError, Invalid
from ops.identity import repository as identity
from ops.ratings import service as ratings
from ops.ratings.schemas import RatingTokenRead

router = console_router()
SCORES = {5: "非常满意", 4: "满意", 3: "基本满意", 2: "不满意", 1: "非常不满意"}
EVENT_NAMES = {
    "certificate.verify": "窗口核验证照",
    "certificate.fetch": "部门调取证照",
    "sharing_request.decision": "共享申请的答复",
    "data.delivery": "数据提供",
}
templates.env.globals["rating_scores"] = SCORES
templates.env.globals["rating_events"] = EVENT_NAMES


def _names(db: Session, who: Principal) -> dict[str, str]:
    return {d.id: d.name for d in identity.all_departments(db, who)} if who.is_platform_admin else {}


# ---- holder: my ratings, and what I can still rate ---------------------------------------------------------


@router.get("/me/ratings", response_class=HTMLResponse)
def my_ratings(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.HOLDER)
    mine = ratings.my_ratings(db, who=page.principal)
    rows, _ = certhub.holder_accesses(db, who=page.principal, cursor=None, limit=50)
    rated = {(v.rating.event_kind, v.rating.event_id) for v in mine}
    ratable = [
        a
        for a in rows
        if a.action in ("verify", "fetch") and a.accessor_department_id and (f"certificate.{a.action}", a.id) not in rated
    ]
    return page.render("ratings/mine.html", ratings=mine, ratable=ratable[:10], now=utcnow())


@router.post("/me/accesses/{access_id}/rate", response_model=None)
def rate_access(access_id: str, page: PostedPage, db: DbSession) -> Response:
    """Start rating a use of my certificate: the same rating link the API gives, opened here."""
    page.require(Role.HOLDER)
    page.form()
    event = certhub.rating_event(db, who=page.principal, access_id=access_id)
    issued = RatingTokenRead.issued(page.request.app.state, event)
    return RedirectResponse(f"/console/ratings/new/{issued.token}", status_code=303)


# ---- anyone served: the rating page a link or QR code opens --------------------------------------------------


def _rating_form(page: Page, token: str, status: int = 200, **context: Any) -> HTMLResponse:
    link = ratings.rating_link(page.request.app.state.settings, token)
    context.setdefault("values", {})
    context.setdefault("errors", {})
    return page.render("ratings/new.html", status=status, token=token, link=link, qr=qr_svg(link, title="评价二维码"), **context)


@router.get("/ratings/new/{token}", response_class=HTMLResponse)
def rating_form(token: str, page: ConsolePage) -> HTMLResponse:
    return _rating_form(page, token)


@router.post("/ratings/new/{token}", response_class=HTMLResponse, response_model=None)
def rate(token: str, page: PostedPage, db: DbSession) -> Response:
    data = page.form()
    values = {"score": data.get("score", ""), "comment": data.get("comment", "")}
    state = page.request.app.state
    try:
        score = int(values["score"]) if values["score"].isdigit() else 0
        if score not in SCORES:
            raise Invalid("请选择评价等级", errors=[{"field": "score", "message": "请选择评价等级"}])
        comment = values["comment"].strip() or None
        if comment and len(comment) > 1000:
            raise Invalid("意见最多 1000 字", errors=[{"field": "comment", "message": "意见最多 1000 字"}])
        ratings.rate(
            db, who=page.principal, settings=state.settings, check=state.keyring.verify, token=token, score=score, comment=comment
        )
    except HubError as exc:
        db.rollback()
        message, errors = errors_of(exc)
        return _rating_form(page, token, status=exc.status, error=message, errors=errors, values=values)
    target = "/console/me/ratings" if page.principal.has(Role.HOLDER) else "/console/ratings/rectifications"
    return RedirectResponse(f"{target}?rated=1", status_code=303)


# ---- departments and the platform: the rectification queue ----------------------------------------------------


def _staff(p: Principal) -> bool:
    return p.has(*STAFF_OR_ADMIN_ROLES) and (p.is_platform_admin or p.department_id is not None)


def _queue(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    if not _staff(page.principal):
        page.require(*STAFF_OR_ADMIN_ROLES)
    wanted = page.request.query_params.get("status") or None
    items = ratings.rectifications(db, who=page.principal, status=wanted if wanted in ("open", "replied") else None)
    return page.render(
        "ratings/rectifications.html",
        status=status,
        items=items,
        names=_names(db, page.principal),
        now=utcnow(),
        wanted=wanted,
        can_reply=page.principal.department_id is not None,
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/ratings/rectifications", response_class=HTMLResponse)
def rectification_queue(page: ConsolePage, db: DbSession) -> HTMLResponse:
    return _queue(page, db)


@router.post("/ratings/rectifications/{rectification_id}/reply", response_class=HTMLResponse, response_model=None)
def reply(rectification_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF_OR_ADMIN_ROLES)
    data = page.form()
    try:
        item = ratings.reply(db, who=page.principal, rectification_id=rectification_id, text=data.get("reply", ""))
    except HubError as exc:
        db.rollback()
        message, errors = errors_of(exc)
        return _queue(page, db, status=exc.status, error=message, errors={rectification_id: errors.get("reply", message)})
    return RedirectResponse(f"/console/ratings/rectifications?replied={'late' if item.late else '1'}", status_code=303)


# ---- anyone: public 验真 of a certificate copy ------------------------------------------------------------------


@router.get("/public/verify/{token}", response_class=HTMLResponse)
@writes  # the check is recorded
def public_verify(token: Annotated[str, Path(max_length=64)], request: Request, db: DbSession) -> HTMLResponse:
    """The page a certificate copy's QR code opens: no sign-in, only what the type makes public."""
    settings = request.app.state.settings
    found = certhub.check_public(
        db,
        token=token,
        client=request.client.host if request.client else "unknown",
        per_minute=settings.public_verification_per_minute,
    )
    return templates.TemplateResponse(
        request,
        "ratings/public_verify.html",
        context={"found": found, "json_url": f"{certhub.PUBLIC_API_PATH}/{token}", "me": None},
    )


nav("/console/me/ratings", "我的评价", lambda p: p.has(Role.HOLDER))
nav("/console/ratings/rectifications", "差评整改", _staff)
