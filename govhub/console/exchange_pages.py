"""Console pages of the sharing exchange: the platform's review queue, coordination and report; the provider's
decisions and the record of who used its data; the consumer's requests.

Thin: every rule lives in ``exchange.service``. Forms carry the request version they were drawn from, so that
of two people acting on the same request the second is told it changed instead of acting twice.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from exchange import service
from exchange.service import (
    CoordinationOutcome,
    ExtensionCreate,
    ExtensionDecision,
    ProviderDecision,
    RatingCreate,
    Reason,
    RequestState,
)
from govhub.console.forms import Failure, attempt, date_field, department_names, failure_of, form_lists, version_of
from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, nav
from ops.auth import STAFF_OR_ADMIN_ROLES, STAFF_ROLES, Principal, Role
from ops.db import DbSession
from ops.divisions import service as divisions
from ops.errors import Invalid

router = console_router()

STAFF = STAFF_ROLES  # as the API's DepartmentStaff
READERS = STAFF_OR_ADMIN_ROLES  # as the API's DepartmentOrAdmin
PAGE_SIZE = 50

# What the request page says after an action succeeded (?done=...).
DONE = {
    "file": "申请已提交，平台将在规定的工作日内完成规范性审查。",
    "accept": "已受理。",
    "refuse": "已不予受理，理由已告知申请部门。",
    "provide": "已提供数据，授权已生效。",
    "decision": "审批意见已提交。",
    "extension": "延期申请已提交平台审批。",
    "extension-decision": "延期申请已处理。",
    "withdraw": "申请已撤回。",
    "escalate": "已提请平台协调。",
    "coordination": "协调结果已记录。",
    "rating": "感谢评价。",
}

# The fields each form of the request page shows (errors of other fields go into the message).
FORM_FIELDS = {
    "refuse": {"reason"},
    "decision": {"fields", "clear_fields", "valid_until", "reason"},
    "extension": {"days", "reason"},
    "extension-decision": {"reason"},
    "withdraw": {"reason"},
    "escalate": {"reason"},
    "coordination": {"outcome", "fields", "reason"},
    "rating": {"rating", "comment"},
}


def _policy(page: Page) -> service.Policy:
    return service.Policy.from_settings(page.request.app.state.settings)


# -- lists of requests -----------------------------------------------------------------------------


def _list(
    page: Page,
    db: Session,
    *,
    title: str,
    here: str,
    intro: str,
    state: str | None = None,
    side: str | None = None,
    overdue: bool | None = None,
    extension: str | None = None,
    cursor: str | None = None,
    by_deadline: bool = False,
) -> HTMLResponse:
    rows, next_cursor = service.list_requests(
        db, page.principal, state=state, side=side, overdue=overdue, extension=extension, cursor=cursor, limit=PAGE_SIZE
    )
    deadlines = service.deadlines_of(db, [r.id for r in rows])
    if by_deadline:  # the most urgent first
        rows.sort(key=lambda r: deadlines[r.id].due_at.timestamp() if r.id in deadlines else float("inf"))
    names = department_names(db, [d for r in rows for d in (r.consumer_department_id, r.provider_department_id)])
    kept = {"state": state, "overdue": None if overdue is None else str(overdue).lower()}
    query = "&".join(f"{k}={v}" for k, v in kept.items() if v is not None)
    return page.render(
        "exchange/requests.html",
        title=title,
        intro=intro,
        here=here,
        rows=[(r, deadlines.get(r.id)) for r in rows],
        names=names,
        state=state,
        overdue=overdue,
        next_url=f"{here}?{query}&cursor={next_cursor}" if next_cursor else None,
        states=[s.value for s in RequestState],
    )


def _state_filter(state: str | None) -> str | None:
    if state and state not in {s.value for s in RequestState}:
        raise Invalid(f"未知的状态：{state}", errors=[{"field": "state", "message": "unknown"}])
    return state or None


@router.get("/exchange/review", response_class=HTMLResponse)
def review_queue(page: ConsolePage, db: DbSession, cursor: str | None = None) -> HTMLResponse:
    """The platform's queue: requests waiting for the normative review (规范性审查), most urgent first."""
    page.require(Role.PLATFORM_ADMIN)
    return _list(
        page,
        db,
        title="共享申请审查（规范性审查）",
        here="/console/exchange/review",
        intro="平台应在规定的工作日内完成规范性审查：受理，或说明理由不予受理。已超期的申请标红。",
        state=RequestState.SUBMITTED.value,
        cursor=cursor,
        by_deadline=True,
    )


@router.get("/exchange/requests", response_class=HTMLResponse)
def all_requests(
    page: ConsolePage,
    db: DbSession,
    state: str | None = None,
    overdue: str | None = None,
    cursor: str | None = None,
) -> HTMLResponse:
    """Every request the caller may see, by state and lateness."""
    page.require(*READERS)
    return _list(
        page,
        db,
        title="全部共享申请",
        here="/console/exchange/requests",
        intro="按状态或是否超期筛选。",
        state=_state_filter(state),
        overdue={"true": True, "false": False}.get(overdue or ""),
        cursor=cursor,
    )


@router.get("/exchange/decisions", response_class=HTMLResponse)
def provider_queue(page: ConsolePage, db: DbSession, cursor: str | None = None) -> HTMLResponse:
    """Requests for the department's data waiting for its decision, most urgent first."""
    page.require(*STAFF)
    return _list(
        page,
        db,
        title="待本部门审批的共享申请",
        here="/console/exchange/decisions",
        intro="平台受理后推送本部门审批：可批准（可缩小字段范围或有效期）、说明理由不予批准，或说明理由申请延期。",
        state=RequestState.PROVIDER_REVIEW.value,
        side="provider",
        cursor=cursor,
        by_deadline=True,
    )


@router.get("/exchange/mine", response_class=HTMLResponse)
def my_requests(page: ConsolePage, db: DbSession, state: str | None = None, cursor: str | None = None) -> HTMLResponse:
    """The requests the department filed: status, deadline; open one to withdraw, escalate or rate."""
    page.require(*STAFF)
    return _list(
        page,
        db,
        title="我的共享申请",
        here="/console/exchange/mine",
        intro="本部门提交的申请。打开申请可撤回、对不予批准的申请提请协调，或对已办结的申请进行评价（好差评）。",
        state=_state_filter(state),
        side="consumer",
        cursor=cursor,
    )


@router.get("/exchange/coordination", response_class=HTMLResponse)
def coordination(page: ConsolePage, db: DbSession) -> HTMLResponse:
    """Escalated refusals to coordinate (协调) and providers' extension requests to decide."""
    page.require(Role.PLATFORM_ADMIN)
    escalated, _ = service.list_requests(
        db, page.principal, state=RequestState.COORDINATING.value, side=None, overdue=None, cursor=None, limit=200
    )
    extensions, _ = service.list_requests(
        db, page.principal, state=None, side=None, overdue=None, extension="pending", cursor=None, limit=200
    )
    deadlines = service.deadlines_of(db, [r.id for r in escalated + extensions])
    departments = [d for r in escalated + extensions for d in (r.consumer_department_id, r.provider_department_id)]
    return page.render(
        "exchange/coordination.html",
        escalated=[(r, deadlines.get(r.id)) for r in escalated],
        extensions=[(r, deadlines.get(r.id)) for r in extensions],
        names=department_names(db, departments),
    )


# -- one request -----------------------------------------------------------------------------------


def _detail(
    page: Page,
    db: Session,
    request_id: str,
    *,
    failure: Failure | None = None,
    active: str | None = None,
    values: dict[str, str] | None = None,
    checked: dict[str, list[str]] | None = None,
    done: str | None = None,
) -> HTMLResponse:
    req = service.get_request(db, who=page.principal, request_id=request_id)
    deadline = service.deadlines_of(db, [req.id]).get(req.id)
    me = page.principal
    grant = service.get_grant(db, who=me, grant_id=req.grant_id) if req.grant_id else None
    rating = service.rating_for(db, req.id)
    shown = failure.placed(FORM_FIELDS.get(active or "", set())) if failure else None
    return page.render(
        "exchange/request.html",
        status=shown.status if shown else 200,
        req=req,
        deadline=deadline,
        history=service.history(db, req.id),
        grant=grant,
        scope_name=divisions.names_of(db, [grant.region_scope]).get(grant.region_scope) if grant and grant.region_scope else None,
        rating=rating,
        names=department_names(db, [req.consumer_department_id, req.provider_department_id]),
        can=service.available_actions(me, req, deadline=deadline, rated=rating is not None),
        active=active,
        error=shown.message if shown else None,
        errors=shown.fields if shown else {},
        values=values or {},
        checked=checked or {},
        notice=DONE.get(done or ""),
    )


@router.get("/exchange/requests/{request_id}", response_class=HTMLResponse)
def request_page(request_id: str, page: ConsolePage, db: DbSession, done: str | None = None) -> HTMLResponse:
    """A request: its items, purpose, deadline, history, grant, and the actions open to the viewer."""
    page.require(*READERS)
    return _detail(page, db, request_id, done=done)


def _after(page: Page, db: Session, request_id: str, name: str, outcome: object, **kept: Any) -> Response:
    """Back to the request page: with the notice on success, or the form again with the errors."""
    if not isinstance(outcome, Failure):
        return RedirectResponse(f"/console/exchange/requests/{request_id}?done={name}", status_code=303)
    return _detail(page, db, request_id, failure=outcome, active=name, **kept)


@router.post("/exchange/requests/{request_id}/accept")
def accept(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.accept(
            db, who=page.principal, policy=_policy(page), request_id=request_id, expected_version=version_of(data)
        ),
    )
    return _after(page, db, request_id, "accept", outcome)


@router.post("/exchange/requests/{request_id}/refuse")
def refuse(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.refuse(
            db,
            who=page.principal,
            request_id=request_id,
            reason=Reason(reason=data.get("reason", "").strip()).reason,
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "refuse", outcome, values=data)


@router.post("/exchange/requests/{request_id}/provide")
def provide(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.provide(
            db, who=page.principal, policy=_policy(page), request_id=request_id, expected_version=version_of(data)
        ),
    )
    return _after(page, db, request_id, "provide", outcome)


@router.post("/exchange/requests/{request_id}/decision")
def decide(request_id: str, page: PostedPage, db: DbSession) -> Response:
    """The provider approves (with the ticked fields and the validity end) or refuses with a reason."""
    page.require(*STAFF)
    data, lists = form_lists(page, "fields", "clear_fields")
    approve = data.get("approve") == "true"
    errors: dict[str, str] = {}
    valid_until = date_field(data, "valid_until", errors) if approve else None
    if errors:
        return _after(page, db, request_id, "decision", Failure("请更正标出的字段", errors), values=data, checked=lists)

    def act() -> None:
        body = ProviderDecision(
            approve=approve,
            reason=data.get("reason") or None,
            fields=lists["fields"] if approve else None,
            clear_fields=lists["clear_fields"] if approve else None,
            valid_until=valid_until,
        )
        service.decide(
            db, who=page.principal, policy=_policy(page), request_id=request_id, data=body, expected_version=version_of(data)
        )

    return _after(page, db, request_id, "decision", attempt(db, act), values=data, checked=lists)


@router.post("/exchange/requests/{request_id}/extension")
def ask_extension(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.request_extension(
            db,
            who=page.principal,
            policy=_policy(page),
            request_id=request_id,
            data=ExtensionCreate(days=data.get("days", ""), reason=data.get("reason", "")),
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "extension", outcome, values=data)


@router.post("/exchange/requests/{request_id}/extension-decision")
def decide_extension(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.decide_extension(
            db,
            who=page.principal,
            request_id=request_id,
            data=ExtensionDecision(approve=data.get("approve") == "true", reason=data.get("reason") or None),
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "extension-decision", outcome, values=data)


@router.post("/exchange/requests/{request_id}/withdraw")
def withdraw(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.withdraw(
            db,
            who=page.principal,
            request_id=request_id,
            reason=(data.get("reason") or "").strip() or None,
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "withdraw", outcome, values=data)


@router.post("/exchange/requests/{request_id}/escalate")
def escalate(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.escalate(
            db,
            who=page.principal,
            policy=_policy(page),
            request_id=request_id,
            reason=Reason(reason=data.get("reason", "").strip()).reason,
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "escalate", outcome, values=data)


@router.post("/exchange/requests/{request_id}/coordination")
def coordinate(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data, lists = form_lists(page, "fields")
    outcome = attempt(
        db,
        lambda: service.coordinate(
            db,
            who=page.principal,
            policy=_policy(page),
            request_id=request_id,
            data=CoordinationOutcome(
                outcome=data.get("outcome", ""),
                reason=data.get("reason", ""),
                fields=lists["fields"] or None,
            ),
            expected_version=version_of(data),
        ),
    )
    return _after(page, db, request_id, "coordination", outcome, values=data, checked=lists)


@router.post("/exchange/requests/{request_id}/rating")
def rate(request_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF)
    data = page.form()
    outcome = attempt(
        db,
        lambda: service.rate(
            db,
            who=page.principal,
            request_id=request_id,
            data=RatingCreate(rating=data.get("rating", ""), comment=(data.get("comment") or "").strip() or None),
            rectification_days=page.request.app.state.settings.rectification_working_days,
        ),
    )
    return _after(page, db, request_id, "rating", outcome, values=data)


# -- a grant: its subscriptions and parked deliveries ------------------------------------------------


def _grant_page(
    page: Page, db: Session, grant_id: str, *, notice: str | None = None, failure: Failure | None = None
) -> HTMLResponse:
    me = page.principal
    grant = service.get_grant(db, who=me, grant_id=grant_id)
    subscriptions = service.subscriptions_of_grant(db, who=me, grant_id=grant_id)
    parked = service.parked_of_grant(db, who=me, grant_id=grant_id)
    return page.render(
        "exchange/grant.html",
        status=failure.status if failure else 200,
        grant=grant,
        subscriptions=subscriptions,
        parked=parked,
        own={
            s.subscription.id for s in subscriptions if me.is_platform_admin or s.subscription.department_id == me.department_id
        },
        names=department_names(db, [grant.consumer_department_id, grant.provider_department_id]),
        notice=notice,
        error=failure.message if failure else None,
    )


@router.get("/exchange/grants/{grant_id}", response_class=HTMLResponse)
def grant_page(grant_id: str, page: ConsolePage, db: DbSession, replayed: int | None = None) -> HTMLResponse:
    """A grant: its terms, its subscriptions (pushed or read from a feed) and their parked deliveries."""
    page.require(*READERS)
    return _grant_page(page, db, grant_id, notice=f"已重新排队 {replayed} 条暂停的推送。" if replayed is not None else None)


@router.post("/exchange/grants/{grant_id}/subscriptions/{subscription_id}/replay")
def replay_parked(grant_id: str, subscription_id: str, page: PostedPage, db: DbSession) -> Response:
    """Put a subscription's parked deliveries back in line (its department, or the platform)."""
    page.require(*READERS)
    page.form()
    outcome = attempt(db, lambda: service.replay(db, who=page.principal, subscription_id=subscription_id))
    if isinstance(outcome, Failure):
        return _grant_page(page, db, grant_id, failure=outcome)
    return RedirectResponse(f"/console/exchange/grants/{grant_id}?replayed={outcome}", status_code=303)


# -- who used the data, and the report --------------------------------------------------------------


@router.get("/exchange/accesses", response_class=HTMLResponse)
def accesses(page: ConsolePage, db: DbSession, cursor: str | None = None) -> HTMLResponse:
    """Who used the department's data (every use, for the platform): when, which resource, why, what."""
    page.require(*READERS)
    side = None if page.principal.is_platform_admin else "provider"
    rows, next_cursor = service.list_accesses(db, page.principal, grant_id=None, side=side, cursor=cursor, limit=PAGE_SIZE)
    resources = {g: service.get_grant(db, who=page.principal, grant_id=g).resource_name for g in {r.grant_id for r in rows}}
    return page.render(
        "exchange/accesses.html",
        rows=rows,
        resources=resources,
        names=department_names(db, [d for r in rows for d in (r.consumer_department_id, r.provider_department_id)]),
        next_url=f"/console/exchange/accesses?cursor={next_cursor}" if next_cursor else None,
    )


@router.get("/exchange/report", response_class=HTMLResponse)
def report(page: ConsolePage, db: DbSession, start: str | None = Query(None), end: str | None = Query(None)) -> HTMLResponse:
    """Each department's on-time rate, handling time and ratings (好差评) for a chosen period, with bars."""
    page.require(Role.PLATFORM_ADMIN)
    today = service.today()
    values = {"start": start or (today - timedelta(days=30)).isoformat(), "end": end or today.isoformat()}
    errors: dict[str, str] = {}
    first, last = date_field(values, "start", errors, required=True), date_field(values, "end", errors, required=True)
    result = None
    failure = Failure("请更正标出的日期", errors) if errors else None
    if first is not None and last is not None and failure is None:
        try:
            result = service.report(db, start=first, end=last)
        except Invalid as exc:
            failure = failure_of(exc)
    return page.render(
        "exchange/report.html",
        status=failure.status if failure else 200,
        report=result,
        values=values,
        error=failure.message if failure else None,
        errors=failure.fields if failure else {},
    )


def _department_staff(p: Principal) -> bool:
    return p.has(*STAFF)


nav("/console/exchange/review", "共享申请审查", lambda p: p.is_platform_admin)
nav("/console/exchange/coordination", "协调与延期", lambda p: p.is_platform_admin)
nav("/console/exchange/report", "统计报表", lambda p: p.is_platform_admin)
nav("/console/exchange/decisions", "待本部门审批", _department_staff)
nav("/console/exchange/mine", "我的申请", _department_staff)
nav("/console/exchange/requests", "全部申请", lambda p: p.has(*READERS))
nav("/console/exchange/accesses", "数据使用记录", lambda p: p.has(*READERS))
