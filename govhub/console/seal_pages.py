"""Console pages of seals (电子印章): a department's seals and, on each seal's page, its use under control
(用印管理): who may use and approve it, the approval policy, use requests with their decisions, the uses
and the refused attempts. Thin: every rule is the seal domain's (``seal.service``)."""

from __future__ import annotations

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, errors_of, nav
from ops.auth import STAFF_OR_ADMIN_ROLES, STAFF_ROLES
from ops.db import DbSession
from ops.errors import HubError, Invalid, NotFound
from seal import service

router = console_router()

STATUS_NAMES = {"active": "有效", "suspended": "暂停", "revoked": "注销", "expired": "过期"}
REQUEST_STATUS = {"pending": "待审批", "approved": "已批准", "refused": "已驳回", "used": "已用印"}
KIND_NAMES = {"client": "系统（客户端）", "person": "人员", "system": "平台系统"}
ACTION_NAMES = {
    "seal.use": "用印",
    "seal.use_request": "用印申请",
    "seal.use_request.approve": "批准用印",
    "seal.use_request.refuse": "驳回用印",
}


def _seal_page(page: Page, db: Session, seal_id: str, status: int = 200, **context: object) -> HTMLResponse:
    who = page.principal
    seal = service.get_seal(db, who=who, seal_id=seal_id)
    requests, _ = service.use_requests(db, who=who, seal_id=seal.id)
    return page.render(
        "seal/seal.html",
        status=status,
        seal=seal,
        actions=service.use_actions(db, who=who, seal=seal),
        authorisations=service.seal_authorisations(db, who=who, seal_id=seal.id),
        requests=requests,
        uses=service.recent_uses(db, who=who, seal_id=seal.id),
        refusals=service.refused_attempts(db, who=who, seal_id=seal.id),
        status_names=STATUS_NAMES,
        request_status=REQUEST_STATUS,
        kind_names=KIND_NAMES,
        refusal_names=ACTION_NAMES,
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/seals", response_class=HTMLResponse)
def seals(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(*STAFF_OR_ADMIN_ROLES)
    return page.render("seal/seals.html", seals=service.visible_seals(db, who=page.principal), status_names=STATUS_NAMES)


@router.get("/seals/{seal_id}", response_class=HTMLResponse)
def seal_page(seal_id: str, page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(*STAFF_OR_ADMIN_ROLES)
    return _seal_page(page, db, seal_id)


def _done(seal_id: str) -> Response:
    return RedirectResponse(f"/console/seals/{seal_id}", status_code=303)


def _failed(page: Page, db: Session, seal_id: str, exc: HubError) -> HTMLResponse:
    db.rollback()
    message, fields = errors_of(exc)
    return _seal_page(page, db, seal_id, status=exc.status, error=message, errors=fields)


@router.post("/seals/{seal_id}/authorisations", response_model=None)
def authorise(seal_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF_ROLES)
    form = page.form()
    try:
        service.authorise(
            db, who=page.principal, seal_id=seal_id, subject=form.get("subject", ""), subject_kind=form.get("subject_kind", ""),
            may_use="may_use" in form, may_approve="may_approve" in form, note=(form.get("note") or "").strip()[:500] or None,
        )  # fmt: skip
    except HubError as exc:
        return _failed(page, db, seal_id, exc)
    return _done(seal_id)


@router.post("/seals/{seal_id}/authorisations/{authorisation_id}/withdraw", response_model=None)
def withdraw(seal_id: str, authorisation_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF_ROLES)
    form = page.form()
    try:
        service.withdraw(
            db, who=page.principal, seal_id=seal_id, authorisation_id=authorisation_id, reason=form.get("reason") or "撤销授权"
        )
    except HubError as exc:
        return _failed(page, db, seal_id, exc)
    return _done(seal_id)


@router.post("/seals/{seal_id}/use-policy", response_model=None)
def use_policy(seal_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF_ROLES)
    form = page.form()
    try:
        hours = form.get("approval_valid_hours") or "24"
        if not hours.isdigit():
            raise Invalid("审批有效期须为整数小时", errors=[{"field": "approval_valid_hours", "message": "not a whole number"}])
        service.set_policy(
            db, who=page.principal, seal_id=seal_id, requires_approval="requires_approval" in form,
            approval_valid_hours=int(hours), if_match=form.get("version"),
        )  # fmt: skip
    except HubError as exc:
        return _failed(page, db, seal_id, exc)
    return _done(seal_id)


@router.post("/seals/{seal_id}/use-requests/{request_id}/{decision}", response_model=None)
def decide(seal_id: str, request_id: str, decision: str, page: PostedPage, db: DbSession) -> Response:
    page.require(*STAFF_ROLES)
    form = page.form()
    try:
        if decision not in ("approve", "refuse"):
            raise NotFound(f"unknown decision {decision!r}")
        service.decide(
            db, who=page.principal, request_id=request_id, approve=decision == "approve", reason=form.get("reason") or None
        )
    except service.SealUseRefused as exc:
        from ops import audit

        audit.record_refusal(db, exc.record)
        return _seal_page(page, db, seal_id, status=exc.status, error=exc.detail)
    except HubError as exc:
        return _failed(page, db, seal_id, exc)
    return _done(seal_id)


nav("/console/seals", "电子印章", lambda p: p.has(*STAFF_OR_ADMIN_ROLES))
