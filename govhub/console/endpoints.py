"""Console pages for signing in and platform set-up (departments, clients, the calendar).

Thin: every rule lives in a domain's service. Shared page machinery is in ``pages``."""

from __future__ import annotations

import inspect
import secrets
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from govhub.console import service
from govhub.console.identity_pages import relying_party
from govhub.console.pages import (
    COOKIE,
    HERE,
    LOGIN_CSRF,
    ConsolePage,
    LoginRequired,
    Page,
    PostedPage,
    console_router,
    errors_of,
    nav,
    templates,
)
from ops.auth import Role, SecondFactorRequired
from ops.db import DbSession
from ops.errors import Forbidden, HubError
from ops.identity import repository as identity_repo
from ops.identity import service as identity
from ops.identity.models import Department
from ops.identity.schemas import ClientCreate, DepartmentCreate
from ops.workdays import service as workdays

router = console_router()
# Further page modules of govhub.console, each with a ``router``.
PAGE_MODULES: tuple[str, ...] = (
    "exchange_pages",
    "catalog_pages",
    "certhub_pages",
    "service_pages",
    "ratings_pages",
    "identity_pages",
    "seal_pages",
)


def install(app: FastAPI) -> None:
    """Mount the console: its routes, static files and the sign-in redirect."""
    import importlib

    app.include_router(router)
    for name in PAGE_MODULES:
        app.include_router(importlib.import_module(f"govhub.console.{name}").router)
    app.mount("/console/static", StaticFiles(directory=str(HERE / "static")), name="console-static")

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        # A cookie that no longer opens a session: it expired (idle or absolute); say so on the sign-in page.
        expired = "&expired=1" if request.cookies.get(COOKIE) else ""
        return RedirectResponse(f"/console/login?next={request.url.path}{expired}", status_code=303)

    api_handler = app.exception_handlers[HubError]

    async def _hub_error(request: Request, exc: Exception) -> Response:
        # People get a page; API clients keep their problem+json.
        if request.url.path.startswith("/console/") and isinstance(exc, SecondFactorRequired):
            # Back to the page after the step-up (a form's target cannot be opened again: the home page).
            back = request.url.path if request.method == "GET" else "/console/"
            return templates.TemplateResponse(
                request, "step_up.html", status_code=exc.status, context={"error": None, "problem": exc.detail, "next": back}
            )
        if request.url.path.startswith("/console/") and isinstance(exc, HubError):
            return templates.TemplateResponse(
                request,
                "error.html",
                status_code=exc.status,
                context={"error": exc.detail, "status": exc.status},
                headers=exc.headers,
            )
        result = api_handler(request, exc)
        response: Response = await result if inspect.isawaitable(result) else result
        return response

    app.add_exception_handler(HubError, _hub_error)


def _login_page(
    request: Request,
    *,
    status: int = 200,
    error: str | None = None,
    values: dict[str, str] | None = None,
    holder_error: str | None = None,
) -> HTMLResponse:
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    settings = request.app.state.settings
    response = templates.TemplateResponse(
        request,
        "login.html",
        status_code=status,
        context={
            "login_csrf": token,
            "error": error,
            "holder_error": holder_error,
            "values": values or {},
            "builtin_holder": settings.holder_idp == "builtin",
            "oidc": settings.oidc_enabled,
            "client_sign_in": settings.console_client_sign_in,
            "expired": request.query_params.get("expired") == "1",
            "next": request.query_params.get("next", ""),
        },
    )
    response.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", path="/console", secure=settings.public_url.startswith("https://")
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request)


def _signed_in(request: Request, signed: service.SignedIn, next_url: str) -> RedirectResponse:
    target = next_url if next_url.startswith("/console/") else "/console/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        COOKIE,
        signed.token,
        httponly=True,
        samesite="lax",
        path="/",
        max_age=int(service.ABSOLUTE.total_seconds()),
        secure=request.app.state.settings.public_url.startswith("https://"),
    )
    response.delete_cookie(LOGIN_CSRF, path="/console")
    return response


async def _login_fields(request: Request) -> dict[str, str]:
    """The submitted sign-in form (read on the event loop), after its CSRF check."""
    data = {k: str(v) for k, v in (await request.form()).items()}
    cookie = request.cookies.get(LOGIN_CSRF)
    if not cookie or not secrets.compare_digest(cookie, data.get("csrf", "")):
        raise Forbidden("登录表单已过期，请刷新页面后重试 (the sign-in form is stale; reload it)")
    return data


LoginForm = Annotated[dict[str, str], Depends(_login_fields)]


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, data: LoginForm, db: DbSession) -> Response:
    if not request.app.state.settings.console_client_sign_in:
        return _login_page(
            request,
            status=403,
            error="此枢纽已关闭以客户端密钥登录控制台，请通过统一身份认证登录 "
            "(console sign-in with a client secret is turned off here: sign in through single sign-on)",
        )
    try:
        signed = service.sign_in_client(db, client_id=data.get("client_id", ""), client_secret=data.get("client_secret", ""))
    except HubError:
        return _login_page(
            request,
            status=401,
            error="客户端标识或密钥不正确 (wrong client id or secret)",
            values={"client_id": data.get("client_id", "")},
        )
    return _signed_in(request, signed, data.get("next", ""))


@router.post("/holder-login", response_class=HTMLResponse)
def holder_login(request: Request, data: LoginForm, db: DbSession) -> Response:
    """Development sign-in for holders (the built-in identity provider only)."""
    settings = request.app.state.settings
    if settings.holder_idp != "builtin":
        return _login_page(
            request,
            status=403,
            holder_error="持证人请通过统一身份认证登录 (holders sign in through the identity provider: use its button)",
        )
    kind = data.get("holder_kind", "person")
    try:
        code = identity.check_holder_token_request(settings, data.get("holder_code", ""), kind)
    except HubError as exc:
        return _login_page(request, status=422, holder_error=exc.detail, values=data)
    signed = service.sign_in_holder(db, code=code, kind=kind, name=data.get("name") or code)
    return _signed_in(request, signed, data.get("next", ""))


@router.post("/logout")
def logout(page: PostedPage, db: DbSession) -> Response:
    page.form()
    service.sign_out(db, page.request.cookies.get(COOKIE))
    settings = page.request.app.state.settings
    target = "/console/login"
    if settings.oidc_enabled and (page.session.kind == "person" or page.session.acr is not None):
        # RP-initiated logout: the provider's session ends too, then it sends the browser back here.
        target = relying_party(page.request).logout_url(post_logout_redirect_uri=f"{settings.public_url}/console/login") or target
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


@router.get("/", response_class=HTMLResponse)
def home(page: ConsolePage, db: DbSession) -> HTMLResponse:
    department = identity_repo.department_by_id(db, page.principal.department_id) if page.principal.department_id else None
    return page.render("home.html", department=department)


# -- platform administration: departments, clients, the calendar ------------------------------------------


def _departments(db: DbSession, page: Page) -> list[Department]:
    return identity_repo.all_departments(db, page.principal)


@router.get("/departments", response_class=HTMLResponse)
def departments(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.PLATFORM_ADMIN)
    return page.render("departments.html", departments=_departments(db, page), errors={}, values={})


@router.post("/departments", response_class=HTMLResponse)
def create_department(page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    try:
        body = DepartmentCreate(
            code=data.get("code", ""),
            name=data.get("name", ""),
            level=data.get("level", ""),
            region_code=data.get("region_code", ""),
            parent_id=data.get("parent_id") or None,
        )
        department = identity.create_department(db, who=page.principal, data=body)
    except (HubError, ValidationError) as exc:
        message, fields = errors_of(exc)
        return page.render(
            "departments.html", status=422, departments=_departments(db, page), error=message, errors=fields, values=data
        )
    return page.render(
        "departments.html",
        departments=_departments(db, page),
        errors={},
        values={},
        notice=f"已登记部门：{department.name}（{department.code}）",
    )


def _clients(db: DbSession, page: Page) -> list[Any]:
    return identity_repo.all_clients(db, page.principal)


@router.get("/clients", response_class=HTMLResponse)
def clients(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN)
    return page.render("clients.html", clients=_clients(db, page), departments=_departments(db, page), errors={}, values={})


@router.post("/clients", response_class=HTMLResponse)
def create_client(page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN)
    data = page.form()
    try:
        body = ClientCreate(
            name=data.get("name", ""),
            roles=[str(r) for r in page.submitted.getlist("roles")],
            department_id=data.get("department_id") or None,
        )
        created = identity.create_client(db, who=page.principal, data=body)
    except (HubError, ValidationError) as exc:
        message, fields = errors_of(exc)
        return page.render(
            "clients.html",
            status=422,
            clients=_clients(db, page),
            departments=_departments(db, page),
            error=message,
            errors=fields,
            values=data,
        )
    return page.render(
        "clients.html", clients=_clients(db, page), departments=_departments(db, page), errors={}, values={}, created=created
    )


@router.post("/clients/{client_id}/revoke", response_class=HTMLResponse)
def revoke_client(client_id: str, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN)
    data = page.form()
    try:
        identity.revoke_client(db, who=page.principal, client_id=client_id, reason=data.get("reason") or "在控制台吊销")
    except HubError as exc:
        return page.render(
            "clients.html",
            status=exc.status,
            clients=_clients(db, page),
            departments=_departments(db, page),
            error=exc.detail,
            errors={},
            values={},
        )
    return RedirectResponse("/console/clients", status_code=303)


@router.get("/calendar", response_class=HTMLResponse)
def calendar(page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.PLATFORM_ADMIN)
    this_year = date.today().year
    years = [(y, workdays.calendar_status(db, y)) for y in range(this_year - 1, this_year + 3)]
    return page.render("calendar.html", years=years)


def _year_page(page: Page, db: DbSession, year: int, status: int = 200, **extra: Any) -> HTMLResponse:
    row = workdays.loaded_year(db, year)
    return page.render(
        "calendar_year.html",
        status=status,
        year=year,
        status_name=workdays.calendar_status(db, year),
        row=row,
        days=workdays.days_of_year(db, year),
        errors=extra.pop("errors", {}),
        values=extra.pop("values", {}),
        **extra,
    )


@router.get("/calendar/{year}", response_class=HTMLResponse)
def calendar_year(year: int, page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(Role.PLATFORM_ADMIN)
    return _year_page(page, db, year)


def _parse_days(text: str, field: str, errors: dict[str, str]) -> list[workdays.DayEntry]:
    entries = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        day_text, _, name = line.partition(" ")
        try:
            entries.append(workdays.DayEntry(date.fromisoformat(day_text), name.strip() or "节假日"))
        except ValueError:
            errors[field] = f"第 {number} 行 “{line}” 不是 “YYYY-MM-DD 名称” 格式"
    return entries


@router.post("/calendar/{year}", response_class=HTMLResponse)
def load_year(year: int, page: PostedPage, db: DbSession) -> Response:
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()
    errors: dict[str, str] = {}
    if len(data.get("source", "").strip()) < 2:
        errors["source"] = "请填写来源（如国务院办公厅通知文号）"
    holidays = _parse_days(data.get("holidays", ""), "holidays", errors)
    extra = _parse_days(data.get("workdays", ""), "workdays", errors)
    if errors:
        return _year_page(page, db, year, status=422, error="请更正标出的字段", errors=errors, values=data)
    try:
        _, changed = workdays.load_calendar(
            db,
            who=page.principal,
            year=year,
            source=data["source"].strip(),
            holidays=holidays,
            workdays=extra,
            listeners=page.request.app.state.calendar_listeners,
        )
    except HubError as exc:
        message, fields = errors_of(exc)
        return _year_page(page, db, year, status=422, error=message, errors=fields, values=data)
    return _year_page(page, db, year, notice=f"已载入 {year} 年日历；重新计算了 {changed} 个期限")


nav("/console/departments", "部门", lambda p: p.is_platform_admin)
nav("/console/clients", "接入客户端", lambda p: p.has(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN))
nav("/console/calendar", "工作日历", lambda p: p.is_platform_admin)
