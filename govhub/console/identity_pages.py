"""Console pages of 统一身份认证: sign-in at the identity provider (OpenID Connect), step-up, and the
people a department's administrator (or the platform) gives a department and roles.

Thin: the flow's rules are in ``govhub.console.service`` and ``ops.identity.oidc``, the people's in
``ops.identity.people`` (through ``ops.identity.service``)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from govhub.console import service
from govhub.console.pages import COOKIE, ConsolePage, Page, PostedPage, console_router, errors_of, nav, templates
from ops.auth import Role
from ops.config import Settings
from ops.db import DbSession, writes
from ops.errors import HubError, NotFound
from ops.identity import repository as identity_repo
from ops.identity import service as identity
from ops.identity.oidc import RelyingParty, SignInRefused
from ops.identity.schemas import PersonAssign

router = console_router()
STATE_COOKIE = "govhub_oidc_state"


def relying_party(request: Request) -> RelyingParty:
    """The hub's client of the identity provider, one per application (its discovery and keys cached)."""
    found: RelyingParty | None = getattr(request.app.state, "oidc_relying_party", None)
    if found is None:
        found = RelyingParty(request.app.state.settings)
        request.app.state.oidc_relying_party = found
    return found


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def sign_in_problem(request: Request, exc: HubError, *, audience: str = "staff") -> HTMLResponse:
    """A page saying why the sign-in did not complete and what to do, with a button to start again."""
    no_department = exc.code == "no_department"
    return templates.TemplateResponse(
        request,
        "sign_in_problem.html",
        status_code=exc.status,
        context={
            "error": None,
            "problem": exc.detail,
            "status": exc.status,
            "audience": audience,
            "no_department": no_department,
        },
    )


@router.get("/oidc/start")
@writes  # keeps the pending request (state, nonce, PKCE verifier) until the provider answers
def oidc_start(request: Request, db: DbSession) -> Response:
    """Send the browser to the identity provider (``?as=staff|holder``, ``&step_up=1`` for a second factor)."""
    settings = _settings(request)
    params = request.query_params
    audience = params.get("as", "staff")
    if not settings.oidc_enabled:
        return sign_in_problem(
            request,
            NotFound("single sign-on is not configured on this hub (GOVHUB_OIDC_ISSUER); use the sign-in form"),
            audience=audience,
        )
    try:
        url, state = service.start_sign_in(
            db,
            relying_party(request),
            settings,
            audience=audience,
            next_url=params.get("next", ""),
            step_up=params.get("step_up") == "1",
        )
    except HubError as exc:
        db.rollback()
        return sign_in_problem(request, exc, audience=audience)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        STATE_COOKIE,
        state,
        max_age=int(service.PENDING.total_seconds()),
        httponly=True,
        samesite="lax",  # sent on the provider's redirect back (a top-level GET)
        path="/console/oidc",
        secure=settings.public_url.startswith("https://"),
    )
    return response


@router.get("/oidc/callback")
@writes  # uses up the pending request, registers the person, opens the session
def oidc_callback(request: Request, db: DbSession) -> Response:
    """The identity provider's answer: check it, then open the console session."""
    settings = _settings(request)
    params = request.query_params
    audience, claimed = "staff", False
    try:
        pending = service.claim_pending(db, state=params.get("state", ""), browser_state=request.cookies.get(STATE_COOKIE))
        audience, claimed = pending.audience, True
        db.commit()  # the state is used up whatever happens next: a replayed answer finds nothing
        if params.get("error"):
            reason = params.get("error_description") or params.get("error")
            raise SignInRefused(f"the identity provider did not sign you in ({reason}); start the sign-in again")
        verified = service.verified_sign_in(relying_party(request), pending, code=params.get("code", ""))  # no transaction open
        signed = service.finish_sign_in(db, settings, pending, verified)
        service.sign_out(db, request.cookies.get(COOKIE))  # a step-up replaces the session it steps up
    except HubError as exc:
        problem = sign_in_problem(request, exc, audience=audience)
        if claimed:  # an answer with a wrong state leaves the sign-in this browser began alone
            problem.delete_cookie(STATE_COOKIE, path="/console/oidc")
        return problem  # what was written stands: a person's first sign-in is kept for the administrator
    response = RedirectResponse(pending.next_url or "/console/", status_code=303)
    response.set_cookie(
        COOKIE,
        signed.token,
        httponly=True,
        samesite="lax",
        path="/",
        max_age=int(service.ABSOLUTE.total_seconds()),
        secure=settings.public_url.startswith("https://"),
    )
    response.delete_cookie(STATE_COOKIE, path="/console/oidc")
    return response


# -- people: a department and roles for those who sign in --------------------------------------------------


def _people_page(page: Page, db: Session, status: int = 200, **extra: Any) -> HTMLResponse:
    people = identity_repo.all_people(db, page.principal)
    departments = identity_repo.all_departments(db, page.principal)
    names = {d.id: d.name for d in departments}
    return page.render(
        "people.html",
        status=status,
        people=people,
        departments=departments,
        department_names=names,
        errors=extra.pop("errors", {}),
        **extra,
    )


@router.get("/people", response_class=HTMLResponse)
def people(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN)
    return _people_page(page, db)


@router.post("/people/{person_id}", response_class=HTMLResponse)
def assign_person(person_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN)
    data = page.form()
    try:
        body = PersonAssign.model_validate(
            {
                "department_id": data.get("department_id") or None,
                "roles": [str(r) for r in page.submitted.getlist("roles")],
                "active": data.get("active", "1") == "1",
            }
        )
        person = identity.assign_person(db, who=page.principal, person_id=person_id, data=body)
    except (HubError, ValidationError) as exc:
        db.rollback()
        message, fields = errors_of(exc)
        return _people_page(page, db, status=exc.status if isinstance(exc, HubError) else 422, error=message, errors=fields)
    return _people_page(page, db, notice=f"已为 {person.name} 设置部门和角色")


nav("/console/people", "人员", lambda p: p.has(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN))
