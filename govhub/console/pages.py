"""What every console page shares: templates, the signed-in page, form errors and the menu.

Pages live in one module per audience (``endpoints`` for sign-in and platform set-up, others beside it);
each registers its menu entries with :func:`nav` and its router in ``endpoints.install``.

Page handlers are plain functions: FastAPI runs them in a worker thread, so their database work and hashing
never hold up the event loop. A page that takes a form asks for :data:`PostedPage`, whose form is read on
the event loop (a wait on the network, not work) after the person is known, before the handler runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData

from govhub.console import service
from govhub.console.models import ConsoleSession
from ops.auth import Principal, Role, require_second_factor
from ops.db import DbSession, HubRoute, writes
from ops.errors import Forbidden, HubError

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
COOKIE = "govhub_session"
LOGIN_CSRF = "govhub_login_csrf"

ROLE_NAMES = {
    Role.PLATFORM_ADMIN: "平台管理员",
    Role.DEPARTMENT_ADMIN: "部门管理员",
    Role.DEPARTMENT_SYSTEM: "部门系统",
    Role.WINDOW: "窗口",
    Role.HOLDER: "持证人",
}
LEVEL_NAMES = {"province": "省级", "city": "市级", "county": "县级", "township": "乡级", "village": "村级"}


class LoginRequired(Exception):
    """Raised by page dependencies; answered with a redirect to the sign-in page."""


class Page:
    """What every page handler gets: the session, the principal and a renderer."""

    def __init__(self, request: Request, session: ConsoleSession, principal: Principal) -> None:
        self.request, self.session, self.principal = request, session, principal
        self.submitted = FormData()  # the form posted to the page (see PostedPage)

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(
            self.request,
            template,
            status_code=status,
            context={
                "me": self.principal,
                "session": self.session,
                "csrf": self.session.csrf,
                "role_names": ROLE_NAMES,
                "level_names": LEVEL_NAMES,
                **context,
            },
        )

    def form(self) -> dict[str, str]:
        """The submitted form, after the CSRF check."""
        data = {k: str(v) for k, v in self.submitted.items()}
        service.check_csrf(self.session, data.get("csrf"))
        return data

    def require(self, *roles: Role) -> None:
        if not self.principal.has(*roles):
            raise Forbidden("你没有访问此页面的权限 (this page needs the role: " + ", ".join(r.value for r in roles) + ")")
        if not self.principal.has(*(r for r in roles if r is not Role.PLATFORM_ADMIN)):
            # Admitted as a platform administrator only: platform administration needs a second factor.
            require_second_factor(self.principal, "platform_admin", self.request.app.state.settings)


@writes  # every page a signed-in person opens keeps their session alive (its last_seen_at)
def current_page(request: Request, db: DbSession) -> Page:
    found = service.resume(db, request.cookies.get(COOKIE))
    if found is None:
        raise LoginRequired
    return Page(request, *found)


ConsolePage = Annotated[Page, Depends(current_page)]


async def posted_page(page: ConsolePage) -> Page:
    """The signed-in page with its submitted form, read on the event loop."""
    page.submitted = await page.request.form()
    return page


PostedPage = Annotated[Page, Depends(posted_page)]


def errors_of(exc: HubError | ValidationError) -> tuple[str, dict[str, str]]:
    """A message and field → message map, for showing errors next to form fields."""
    if isinstance(exc, ValidationError):
        fields = {str(e["loc"][0]) if e["loc"] else "form": str(e["msg"]).removeprefix("Value error, ") for e in exc.errors()}
        return "请更正标出的字段 (please correct the marked fields)", fields
    # "holidays[2]" and "holidays.2" both belong to the form field "holidays".
    return exc.detail, {str(e["field"]).split("[")[0].split(".")[0]: str(e.get("message")) for e in exc.errors if e.get("field")}


NavRule = Callable[[Principal], bool]
NAV: list[tuple[str, str, NavRule]] = []
templates.env.globals["nav_pages"] = NAV


def nav(href: str, label: str, allowed: NavRule) -> None:
    """Add a menu entry, shown to those for whom ``allowed(principal)`` is true (order of registration)."""
    NAV.append((href, label, allowed))


def console_router() -> APIRouter:
    """A router for console pages: under /console, kept out of the API's OpenAPI document."""
    return APIRouter(prefix="/console", include_in_schema=False, route_class=HubRoute)
