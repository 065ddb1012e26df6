"""Console pages of the catalogue (政务数据资源目录): search, an entry's page, the sharing request form
(申请共享, filed through the exchange) and the platform's review of submitted entries.

Thin: the rules live in ``catalog_registry.service`` and ``exchange.service``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from catalog_registry import service as catalogue
from catalog_registry.service import Classification, ReviewDecision, SharingType, UpdateCycle, VersionState
from exchange import service as exchange
from exchange.service import RequestCreate
from govhub.console.forms import Failure, attempt, form_lists, version_of
from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, nav
from ops.auth import STAFF_ROLES, Role
from ops.db import DbSession

router = console_router()

SEARCHERS = catalogue.SEARCHER_ROLES  # as the API's catalogue readers
STAFF = STAFF_ROLES  # as the API's DepartmentStaff, who file sharing requests
PAGE_SIZE = 20
SEARCH_FIELDS = ("q", "sharing_type", "provider", "classification", "update_cycle", "certificate")
REQUEST_TEXT = ("purpose", "scenario", "legal_basis", "valid_from", "valid_until", "contact_name", "contact_phone")
REQUEST_FIELDS = {"items", "clear_items", *REQUEST_TEXT}
SENSITIVE = {"sensitive"}  # masked unless asked in clear; a secret (涉密) item is never shared at all
DONE = {"publish": "已发布。", "return": "已退回提供部门修改。"}


# -- search ----------------------------------------------------------------------------------------


@router.get("/catalog", response_class=HTMLResponse)
def search(page: ConsolePage, db: DbSession, cursor: str | None = None) -> HTMLResponse:
    """Find published entries: words in Chinese (two characters or more match best), and filters."""
    page.require(*SEARCHERS)
    values = {name: page.request.query_params.get(name, "").strip() for name in SEARCH_FIELDS}
    certificate = {"yes": True, "no": False}.get(values["certificate"])
    found = attempt(
        db,
        lambda: catalogue.search(
            db,
            who=page.principal,
            q=values["q"] or None,
            provider_department_id=values["provider"] or None,
            sharing_type=values["sharing_type"] or None,
            classification=values["classification"] or None,
            update_cycle=values["update_cycle"] or None,
            is_certificate=certificate,
            cursor=cursor,
            limit=PAGE_SIZE,
        ),
    )
    failure = found.placed(SEARCH_FIELDS) if isinstance(found, Failure) else None
    hits, next_cursor = ([], None) if isinstance(found, Failure) else found
    query = "&".join(f"{k}={v}" for k, v in values.items() if v)
    return page.render(
        "catalog/search.html",
        status=failure.status if failure else 200,
        hits=hits,
        values=values,
        searched=any(values.values()),
        providers=catalogue.providers(db),
        choices={
            "sharing_type": [t.value for t in SharingType],
            "classification": [c.value for c in Classification],
            "update_cycle": [u.value for u in UpdateCycle],
        },
        next_url=f"/console/catalog?{query}&cursor={next_cursor}" if next_cursor else None,
        error=failure.message if failure else None,
        errors=failure.fields if failure else {},
    )


# -- an entry --------------------------------------------------------------------------------------


def _entry_page(
    page: Page, db: Session, entry_id: str, *, failure: Failure | None = None, values: dict[str, str] | None = None
) -> HTMLResponse:
    entry = catalogue.entry_read(db, who=page.principal, entry=catalogue.get_entry(db, who=page.principal, entry_id=entry_id))
    shown = failure.placed({"decision", "reason"}) if failure else None
    can = catalogue.entry_actions(page.principal, entry)
    return page.render(
        "catalog/entry.html",
        status=shown.status if shown else 200,
        entry=entry,
        may_request=can["request"],
        controls={p["item"]: p for p in entry.version.control_parameters},
        reviewable=can["review"],
        error=shown.message if shown else None,
        errors=shown.fields if shown else {},
        values=values or {},
    )


@router.get("/catalog/entries/{entry_id}", response_class=HTMLResponse)
def entry_page(entry_id: str, page: ConsolePage, db: DbSession) -> HTMLResponse:
    """An entry: information items, sharing type and conditions or legal basis, how it is served."""
    page.require(*SEARCHERS)
    return _entry_page(page, db, entry_id)


# -- the sharing request (申请共享) ------------------------------------------------------------------


def _request_form(
    page: Page,
    db: Session,
    entry_id: str,
    *,
    failure: Failure | None = None,
    values: dict[str, str] | None = None,
    checked: dict[str, list[str]] | None = None,
) -> HTMLResponse:
    entry = catalogue.entry_read(db, who=page.principal, entry=catalogue.get_entry(db, who=page.principal, entry_id=entry_id))
    shown = failure.placed(REQUEST_FIELDS) if failure else None
    items = entry.version.items
    sensitive = [i["name"] for i in items if i.get("sensitivity") in SENSITIVE]
    default_until = (exchange.today() + timedelta(days=365)).isoformat()
    return page.render(
        "catalog/request.html",
        status=shown.status if shown else 200,
        entry=entry,
        may_request=catalogue.entry_actions(page.principal, entry)["request"],
        item_names=[i["name"] for i in items],
        sensitive=sensitive,
        sensitive_notes=dict.fromkeys(sensitive, "敏感，默认脱敏"),
        values=values or {"valid_until": default_until},
        checked=checked or {},
        error=shown.message if shown else None,
        errors=shown.fields if shown else {},
    )


@router.get("/catalog/entries/{entry_id}/request", response_class=HTMLResponse)
def request_form(entry_id: str, page: ConsolePage, db: DbSession) -> HTMLResponse:
    page.require(*STAFF)
    return _request_form(page, db, entry_id)


@router.post("/catalog/entries/{entry_id}/request")
def file_request(entry_id: str, page: PostedPage, db: DbSession) -> Response:
    """File the sharing request through the exchange; the platform's review period starts now."""
    page.require(*STAFF)
    data, lists = form_lists(page, "items", "clear_items")
    # A field left empty is missing, and is reported as such.
    given: dict[str, Any] = {k: data[k].strip() for k in REQUEST_TEXT if data.get(k, "").strip()}

    def file() -> str:
        body = RequestCreate(resource_id=entry_id, items=lists["items"], clear_items=lists["clear_items"], **given)
        policy = exchange.Policy.from_settings(page.request.app.state.settings)
        return exchange.file_request(db, who=page.principal, policy=policy, data=body).id

    filed = attempt(db, file)
    if isinstance(filed, Failure):
        return _request_form(page, db, entry_id, failure=filed, values=data, checked=lists)
    return RedirectResponse(f"/console/exchange/requests/{filed}?done=file", status_code=303)


# -- the platform's review -------------------------------------------------------------------------


@router.get("/catalog/review", response_class=HTMLResponse)
def review_queue(page: ConsolePage, db: DbSession, done: str | None = None) -> HTMLResponse:
    """Entry versions the providers submitted, waiting to be published or returned."""
    page.require(Role.PLATFORM_ADMIN)
    entries, _ = catalogue.list_entries(db, who=page.principal, version_state=VersionState.SUBMITTED.value, limit=200)
    entries.sort(key=lambda e: e.version.submitted_at or e.created_at)
    return page.render("catalog/review.html", entries=entries, notice=DONE.get(done or ""))


@router.post("/catalog/entries/{entry_id}/review")
def review(entry_id: str, page: PostedPage, db: DbSession) -> Response:
    """Publish the submitted version, or return it to the provider with the reason."""
    page.require(Role.PLATFORM_ADMIN)
    data = page.form()

    def decide() -> str:
        body = ReviewDecision(decision=data.get("decision", ""), reason=(data.get("reason") or "").strip() or None)
        catalogue.review(
            db, who=page.principal, entry_id=entry_id, decision=body.decision, reason=body.reason, if_match=str(version_of(data))
        )
        return body.decision

    decided = attempt(db, decide)
    if isinstance(decided, Failure):
        return _entry_page(page, db, entry_id, failure=decided, values=data)
    return RedirectResponse(f"/console/catalog/review?done={decided}", status_code=303)


nav("/console/catalog", "资源目录", lambda p: p.has(*SEARCHERS))
nav("/console/catalog/review", "目录审核", lambda p: p.is_platform_admin)
