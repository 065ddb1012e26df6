"""HTTP API of the exchange domain: sharing requests, grants, data access, supervision."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from functools import partial
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Header, Query, Request, Response
from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import service
from exchange.models import GrantState, RequestState, SharingRequest
from exchange.schemas import (
    BreachRead,
    ChangeFeed,
    CoordinationOutcome,
    DataAccessRead,
    DataQuery,
    DataResult,
    DeliveryRead,
    EventFeed,
    EventRead,
    ExtensionCreate,
    ExtensionDecision,
    GrantRead,
    NotificationRead,
    OptionalReason,
    ProviderDecision,
    RatingCreate,
    RatingRead,
    Reason,
    ReplayRequest,
    ReplayResult,
    Report,
    RequestCreate,
    RequestRead,
    SubscriptionCreate,
    SubscriptionRead,
    SupervisionSubscriptionCreate,
    TransitionRead,
    WebhookSet,
)
from ops import audit
from ops.archive.schemas import ArchivePackageRead
from ops.auth import DepartmentOrAdmin, DepartmentStaff, Holder, PlatformAdmin, Principal
from ops.db import DbSession, HubRoute, etag, reads_only, writes
from ops.divisions import service as divisions
from ops.errors import HubError, Invalid
from ops.pagination import Page, whole_page
from ops.ratings.schemas import RatingTokenRead

router = APIRouter(prefix="/exchange", tags=["exchange"], route_class=HubRoute)
# The busiest route, in a router of its own that the app includes before all others: routes are
# matched one by one, so a lookup does not first try every other route of the hub.
busy = APIRouter(prefix="/exchange", tags=["exchange"], route_class=HubRoute)
IfMatch = Annotated[str | None, Header(description="the ETag you read; a stale one gets 412")]
Limit = Annotated[int, Query(ge=1, le=200)]


Named = TypeVar("Named", RequestRead, GrantRead, DataAccessRead)


def _named(db: Session, reads: list[Named]) -> list[Named]:
    """Requests, grants or access records with the names of both departments (one query for the page)."""
    ids = {r.consumer_department_id for r in reads} | {r.provider_department_id for r in reads}
    names = repo.department_names(db, ids)
    return [
        r.model_copy(
            update={
                "consumer_department_name": names.get(r.consumer_department_id),
                "provider_department_name": names.get(r.provider_department_id),
            }
        )
        for r in reads
    ]


def _scope_named(db: Session, grants: list[GrantRead]) -> list[GrantRead]:
    """Grants with the name of the division each is scoped to (数据回流), one query for the page."""
    names = divisions.names_of(db, {g.region_scope for g in grants if g.region_scope})
    return [g.model_copy(update={"region_scope_name": names.get(g.region_scope)}) if g.region_scope else g for g in grants]


def _policy(request: Request) -> service.Policy:
    return service.Policy.from_settings(request.app.state.settings)


def _expected(if_match: str | None) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise Invalid("If-Match must be an ETag this hub returned", errors=[{"field": "If-Match", "message": "malformed"}])
    return int(raw)


@contextmanager
def _refusals_recorded(db: Session, who: Principal, grant_id: str, kind: str) -> Iterator[None]:
    """A refused query is recorded too, in a transaction of its own (the request's is rolled back first)."""
    try:
        yield
    except HubError as exc:
        if exc.status < 500:
            audit.record_refusal(
                db,
                partial(service.record_refused_access, who=who, grant_id=grant_id, kind=kind, code=exc.code, detail=exc.detail),
            )
        raise


def _read(db: DbSession, req: SharingRequest, response: Response | None = None, *, history: bool = False) -> RequestRead:
    db.flush()
    [out] = _named(db, [RequestRead.model_validate(req)])
    out.deadline = service.deadline_of(db, repo.open_step(db, req.id))
    if history:
        out.history = [TransitionRead.model_validate(t) for t in repo.history(db, req.id)]
    if response is not None:
        response.headers["ETag"] = etag(req.version)
    return out


# The busiest endpoint (see `busy`).


@busy.post("/grants/{grant_id}/lookup", response_model=DataResult)
async def lookup(grant_id: str, body: DataQuery, request: Request, who: DepartmentStaff) -> Response:
    """Look up granted dataset rows by control parameters (sent in the body, never in the URL)."""
    state = request.app.state
    ask = service.LookupAsk(
        who=who, grant_id=grant_id, params=body.params, fields=body.fields, use_cause=body.use_cause, version=body.version
    )
    grant, fields, rows = await service.lookup(ask, lookups=state.lookups)
    masked = [f for f in grant.masked_fields if f in fields]
    # Serialised here: FastAPI would otherwise validate the model it was just given once more.
    return Response(
        DataResult(grant_id=grant.id, fields=fields, masked_fields=masked, rows=rows).model_dump_json(),
        media_type="application/json",
    )


@router.post("/requests", status_code=201, response_model=RequestRead)
def file_request(body: RequestCreate, request: Request, response: Response, db: DbSession, who: DepartmentStaff) -> RequestRead:
    """File a sharing request (共享申请) for a published catalogue entry; the platform reviews it in 3 working days."""
    filed = service.file_request(db, who=who, policy=_policy(request), data=body)
    # Read from what the filing wrote, not read back: the departments' names are the one statement here.
    names = repo.department_names(db, {filed.consumer_department_id, filed.provider_department_id})
    out = RequestRead.model_validate(
        {
            **filed.row,
            "consumer_department_name": names.get(filed.consumer_department_id),
            "provider_department_name": names.get(filed.provider_department_id),
            "deadline": service.deadline_of(db, filed.step),
        }
    )
    response.headers["ETag"] = etag(filed.version)
    return out


@router.get("/requests", response_model=Page[RequestRead])
def list_requests(
    db: DbSession,
    who: DepartmentOrAdmin,
    state: RequestState | None = None,
    side: Literal["consumer", "provider"] | None = None,
    overdue: bool | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[RequestRead]:
    """Requests the caller's department filed or provides data for (all, for the platform), newest first."""
    rows, next_cursor = repo.list_requests(db, who, state=state, side=side, overdue=overdue, cursor=cursor, limit=limit)
    deadlines = service.deadlines_of(db, [r.id for r in rows])
    items = _named(db, [RequestRead.model_validate(req).model_copy(update={"deadline": deadlines.get(req.id)}) for req in rows])
    return Page(items=items, next_cursor=next_cursor)


@router.get("/requests/{request_id}", response_model=RequestRead)
def get_request(request_id: str, response: Response, db: DbSession, who: DepartmentOrAdmin) -> RequestRead:
    """A request with its current deadline (working days left, overdue) and its full history."""
    return _read(db, service.get_request(db, who=who, request_id=request_id), response, history=True)


@router.post("/requests/{request_id}/accept", response_model=RequestRead)
def accept(
    request_id: str, request: Request, response: Response, db: DbSession, who: PlatformAdmin, if_match: IfMatch = None
) -> RequestRead:
    """Accept after the normative review (规范性审查) and route: direct provision, or the provider decides."""
    req = service.accept(db, who=who, policy=_policy(request), request_id=request_id, expected_version=_expected(if_match))
    return _read(db, req, response)


@router.post("/requests/{request_id}/refuse", response_model=RequestRead)
def refuse(
    request_id: str, body: Reason, response: Response, db: DbSession, who: PlatformAdmin, if_match: IfMatch = None
) -> RequestRead:
    """Refuse to accept (不予受理), with the reason."""
    req = service.refuse(db, who=who, request_id=request_id, reason=body.reason, expected_version=_expected(if_match))
    return _read(db, req, response)


@router.post("/requests/{request_id}/provide", response_model=RequestRead)
def provide(request_id: str, request: Request, response: Response, db: DbSession, who: PlatformAdmin) -> RequestRead:
    """Issue the grant of a directly provided request whose data has become available."""
    return _read(db, service.provide(db, who=who, policy=_policy(request), request_id=request_id), response)


@router.post("/requests/{request_id}/decision", response_model=RequestRead)
def decide(
    request_id: str,
    body: ProviderDecision,
    request: Request,
    response: Response,
    db: DbSession,
    who: DepartmentStaff,
    if_match: IfMatch = None,
) -> RequestRead:
    """The provider approves (possibly narrowing fields or period) or refuses with a reason."""
    req = service.decide(
        db, who=who, policy=_policy(request), request_id=request_id, data=body, expected_version=_expected(if_match)
    )
    return _read(db, req, response)


@router.post("/requests/{request_id}/withdraw", response_model=RequestRead)
def withdraw(
    request_id: str, body: OptionalReason, response: Response, db: DbSession, who: DepartmentStaff, if_match: IfMatch = None
) -> RequestRead:
    """The consumer withdraws its request before a decision."""
    req = service.withdraw(db, who=who, request_id=request_id, reason=body.reason, expected_version=_expected(if_match))
    return _read(db, req, response)


@router.post("/requests/{request_id}/extension", response_model=RequestRead)
def request_extension(
    request_id: str, body: ExtensionCreate, request: Request, response: Response, db: DbSession, who: DepartmentStaff
) -> RequestRead:
    """The provider asks for more working days to decide, with a reason (the platform approves or refuses)."""
    req = service.request_extension(db, who=who, policy=_policy(request), request_id=request_id, data=body)
    return _read(db, req, response)


@router.post("/requests/{request_id}/extension/decision", response_model=RequestRead)
def decide_extension(
    request_id: str, body: ExtensionDecision, response: Response, db: DbSession, who: PlatformAdmin
) -> RequestRead:
    """The platform approves (the deadline moves) or refuses a pending extension."""
    return _read(db, service.decide_extension(db, who=who, request_id=request_id, data=body), response)


@router.post("/requests/{request_id}/escalate", response_model=RequestRead)
def escalate(
    request_id: str, body: Reason, request: Request, response: Response, db: DbSession, who: DepartmentStaff
) -> RequestRead:
    """The consumer escalates a refused request to the platform for coordination (协调)."""
    req = service.escalate(db, who=who, policy=_policy(request), request_id=request_id, reason=body.reason)
    return _read(db, req, response)


@router.post("/requests/{request_id}/coordination", response_model=RequestRead)
def coordinate(
    request_id: str, body: CoordinationOutcome, request: Request, response: Response, db: DbSession, who: PlatformAdmin
) -> RequestRead:
    """The platform records the outcome of coordination: grant, or uphold the refusal."""
    req = service.coordinate(db, who=who, policy=_policy(request), request_id=request_id, data=body)
    return _read(db, req, response)


@router.post("/requests/{request_id}/rating", status_code=201, response_model=RatingRead)
def rate(request_id: str, body: RatingCreate, request: Request, db: DbSession, who: DepartmentStaff) -> RatingRead:
    """Rate a decided request (好差评: good / average / poor, with a comment); poor opens a rectification item."""
    days = request.app.state.settings.rectification_working_days
    return RatingRead.model_validate(service.rate(db, who=who, request_id=request_id, data=body, rectification_days=days))


@router.post("/requests/{request_id}/rating-token", status_code=201, response_model=RatingTokenRead)
def request_rating_token(request_id: str, request: Request, db: DbSession, who: DepartmentStaff) -> RatingTokenRead:
    """好差评 by link or QR code: a signed token with which the consumer rates the request's decision once."""
    event = service.decision_event(db, who=who, request_id=request_id)
    return RatingTokenRead.issued(request.app.state, event)


@router.post("/grants/{grant_id}/rating-token", status_code=201, response_model=RatingTokenRead)
def grant_rating_token(grant_id: str, request: Request, db: DbSession, who: DepartmentStaff) -> RatingTokenRead:
    """好差评 by link or QR code: a signed token with which the consumer rates, once, the data delivered through a grant."""
    return RatingTokenRead.issued(request.app.state, service.delivery_event(db, who=who, grant_id=grant_id))


@router.get("/grants", response_model=Page[GrantRead])
def list_grants(
    db: DbSession, who: DepartmentOrAdmin, state: GrantState | None = None, cursor: str | None = None, limit: Limit = 50
) -> Page[GrantRead]:
    """Grants the caller's department holds or provides."""
    rows, next_cursor = repo.list_grants(db, who, state=state, cursor=cursor, limit=limit)
    return Page(items=_scope_named(db, _named(db, [GrantRead.model_validate(g) for g in rows])), next_cursor=next_cursor)


@router.get("/grants/{grant_id}", response_model=GrantRead)
def get_grant(grant_id: str, response: Response, db: DbSession, who: DepartmentOrAdmin) -> GrantRead:
    """A grant: consumer, resource version, fields, purpose, validity, rate limit, control parameters."""
    grant = service.get_grant(db, who=who, grant_id=grant_id)
    response.headers["ETag"] = etag(grant.version)
    return _scope_named(db, _named(db, [GrantRead.model_validate(grant)]))[0]


@router.post("/grants/{grant_id}/revoke", response_model=GrantRead)
def revoke_grant(grant_id: str, body: Reason, db: DbSession, who: DepartmentOrAdmin, if_match: IfMatch = None) -> GrantRead:
    """The provider or the platform revokes a grant, with a reason."""
    grant = service.revoke_grant(db, who=who, grant_id=grant_id, reason=body.reason, expected_version=_expected(if_match))
    return _scope_named(db, _named(db, [GrantRead.model_validate(grant)]))[0]


@router.get("/grants/{grant_id}/export", response_model=DataResult)
def export(
    grant_id: str,
    request: Request,
    db: DbSession,
    who: DepartmentStaff,
    fields: Annotated[list[str] | None, Query()] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    use_cause: Annotated[str | None, Query(max_length=200)] = None,
    version: Annotated[int | None, Query(ge=1, description="a dataset version the grant covers; default: the current")] = None,
) -> DataResult:
    """A page of the granted dataset, where the catalogue entry allows export."""
    with _refusals_recorded(db, who, grant_id, "export"):
        grant, chosen, rows, next_cursor = service.export(
            db,
            who=who,
            grant_id=grant_id,
            fields=fields,
            cursor=cursor,
            limit=limit,
            use_cause=use_cause,
            journal=request.app.state.access_commits,
            version=version,
        )
    return DataResult(
        grant_id=grant.id,
        fields=chosen,
        masked_fields=[f for f in grant.masked_fields if f in chosen],
        rows=rows,
        next_cursor=next_cursor,
    )


@router.post("/grants/{grant_id}/call", response_model=DataResult)
@reads_only  # the call is counted by the access journal: no write lock is held while the provider answers
def call_api(grant_id: str, body: DataQuery, request: Request, db: DbSession, who: DepartmentStaff) -> DataResult:
    """Query the provider's API through the hub; the answer is filtered to the granted fields and masked."""
    with _refusals_recorded(db, who, grant_id, "api"):
        grant, fields, rows = service.call_api(
            db,
            who=who,
            grant_id=grant_id,
            params=body.params,
            fields=body.fields,
            use_cause=body.use_cause,
            journal=request.app.state.access_commits,
        )
    return DataResult(grant_id=grant.id, fields=fields, masked_fields=[f for f in grant.masked_fields if f in fields], rows=rows)


@router.get("/accesses", response_model=Page[DataAccessRead])
def list_accesses(
    db: DbSession,
    who: DepartmentOrAdmin,
    grant_id: str | None = None,
    side: Literal["consumer", "provider"] | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[DataAccessRead]:
    """Who used the caller's data (provider), or what it queried (consumer); everything for the platform."""
    rows, next_cursor = repo.list_accesses(db, who, grant_id=grant_id, side=side, cursor=cursor, limit=limit)
    return Page(items=_named(db, [DataAccessRead.model_validate(r) for r in rows]), next_cursor=next_cursor)


@router.get("/my-accesses", response_model=Page[DataAccessRead], name="my_data_accesses")
def my_accesses(db: DbSession, who: Holder, cursor: str | None = None, limit: Limit = 50) -> Page[DataAccessRead]:
    """A citizen or enterprise sees which departments queried records about them, and why."""
    rows, next_cursor = service.accesses_about_holder(db, who=who, cursor=cursor, limit=limit)
    return Page(items=_named(db, [DataAccessRead.model_validate(r.access) for r in rows]), next_cursor=next_cursor)


@router.get("/breaches", response_model=Page[BreachRead])
def list_breaches(db: DbSession, who: DepartmentOrAdmin, cursor: str | None = None, limit: Limit = 50) -> Page[BreachRead]:
    """Deadlines the caller's department missed (all, for the platform)."""
    rows, next_cursor = repo.list_breaches(db, who, cursor=cursor, limit=limit)
    return Page(items=[BreachRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.get("/notifications", response_model=Page[NotificationRead])
def list_notifications(
    db: DbSession, who: DepartmentOrAdmin, cursor: str | None = None, limit: Limit = 50
) -> Page[NotificationRead]:
    """The caller's department's notifications (the platform's own, for a platform administrator)."""
    rows, next_cursor = repo.list_notifications(db, who, cursor=cursor, limit=limit)
    return Page(items=[NotificationRead.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.put("/webhook", status_code=204)
def set_webhook(body: WebhookSet, db: DbSession, who: DepartmentStaff) -> Response:
    """Have the department's notifications pushed to a URL, signed with HMAC-SHA256 (X-Govhub-Signature)."""
    service.set_webhook(db, who=who, url=body.url, secret=body.secret)
    return Response(status_code=204)


@router.get("/events", response_model=EventFeed)
def events(
    db: DbSession,
    who: DepartmentOrAdmin,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> EventFeed:
    """The department's feed of request and grant state changes; poll with `after` set to the last cursor."""
    rows = repo.events_after(db, who, after=after, limit=limit)
    return EventFeed(items=[EventRead.model_validate(r) for r in rows], cursor=str(rows[-1].id if rows else after))


@router.get("/report", response_model=Report)
def report(db: DbSession, who: PlatformAdmin, start: date, end: date) -> Report:
    """Each department's on-time rate, average handling time in working days, and ratings, for a period."""
    return service.report(db, start=start, end=end)


# -- subscriptions: changes of a grant pushed or read from a feed, supervision events (双推送) ----------


def _subscription_read(summary: service.SubscriptionSummary, secret: str | None = None) -> SubscriptionRead:
    read = SubscriptionRead.model_validate(summary.subscription)
    return read.model_copy(
        update={"secret": secret, "pending": summary.pending, "delivered": summary.delivered, "parked": summary.parked}
    )


@router.post("/grants/{grant_id}/subscriptions", status_code=201, response_model=SubscriptionRead)
def subscribe(grant_id: str, body: SubscriptionCreate, request: Request, db: DbSession, who: DepartmentStaff) -> SubscriptionRead:
    """Subscribe to the changes of the caller's grant: pushed to a webhook (signed; the secret is shown once)
    or read from a change feed. Only granted fields, masked as the grant says."""
    settings = request.app.state.settings
    made = service.subscribe(
        db,
        who=who,
        grant_id=grant_id,
        kind=body.kind,
        url=body.url,
        vault=request.app.state.vault,
        allow_private=settings.webhook_allow_private,
    )
    return _subscription_read(service.SubscriptionSummary(made.subscription, 0, 0, 0), made.secret)


@router.get("/grants/{grant_id}/subscriptions", response_model=Page[SubscriptionRead])
def grant_subscriptions(grant_id: str, db: DbSession, who: DepartmentOrAdmin) -> Page[SubscriptionRead]:
    """A grant's subscriptions and their deliveries: pending, delivered, parked."""
    return whole_page([_subscription_read(s) for s in service.subscriptions_of_grant(db, who=who, grant_id=grant_id)])


@router.post("/supervision/subscriptions", status_code=201, response_model=SubscriptionRead)
def subscribe_supervision(
    body: SupervisionSubscriptionCreate, request: Request, db: DbSession, who: DepartmentOrAdmin
) -> SubscriptionRead:
    """Subscribe to supervision events (双推送): the platform to every request's, a department to its own."""
    settings = request.app.state.settings
    made = service.subscribe_supervision(
        db,
        who=who,
        event_types=body.event_types,
        kind=body.kind,
        url=body.url,
        vault=request.app.state.vault,
        allow_private=settings.webhook_allow_private,
    )
    return _subscription_read(service.SubscriptionSummary(made.subscription, 0, 0, 0), made.secret)


@router.get("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
def get_subscription(subscription_id: str, db: DbSession, who: DepartmentOrAdmin) -> SubscriptionRead:
    """A subscription of the caller's department (the platform: any)."""
    sub = service.get_subscription(db, who=who, subscription_id=subscription_id)
    return _subscription_read(service.SubscriptionSummary(sub, 0, 0, 0))


@router.delete("/subscriptions/{subscription_id}", response_model=SubscriptionRead)
def end_subscription(subscription_id: str, db: DbSession, who: DepartmentOrAdmin) -> SubscriptionRead:
    """End a subscription: nothing more is delivered to it."""
    sub = service.end_subscription(db, who=who, subscription_id=subscription_id)
    return _subscription_read(service.SubscriptionSummary(sub, 0, 0, 0))


@router.get("/subscriptions/{subscription_id}/feed", response_model=ChangeFeed)
@writes  # each page read is recorded on the trail
def read_feed(
    subscription_id: str,
    request: Request,
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=20)] = 10,
) -> ChangeFeed:
    """The next events of a feed subscription: pass back `next_cursor` (signed by the hub) to read on."""
    page = service.read_feed(
        db,
        who=who,
        subscription_id=subscription_id,
        cursor=cursor,
        limit=limit,
        key=service.cursor_key(request.app.state.settings),
    )
    return ChangeFeed(items=page.events, next_cursor=page.next_cursor)


@router.get("/subscriptions/{subscription_id}/deliveries", response_model=Page[DeliveryRead])
def subscription_deliveries(
    subscription_id: str,
    db: DbSession,
    who: DepartmentOrAdmin,
    state: Literal["pending", "delivered", "parked"] | None = None,
) -> Page[DeliveryRead]:
    """A subscription's latest deliveries (100), or those in one state."""
    rows = service.deliveries(db, who=who, subscription_id=subscription_id, state=state)
    return whole_page([DeliveryRead.model_validate(r) for r in rows])


@router.post("/subscriptions/{subscription_id}/replay", response_model=ReplayResult)
def replay(subscription_id: str, body: ReplayRequest, db: DbSession, who: DepartmentOrAdmin) -> ReplayResult:
    """Deliver parked events again (all of them, or those named), from the first try."""
    return ReplayResult(replayed=service.replay(db, who=who, subscription_id=subscription_id, delivery_ids=body.delivery_ids))


@router.post(
    "/requests/{request_id}/archive",
    status_code=201,
    response_model=ArchivePackageRead,
    summary="Archive (归档) a decided request's dossier: a BagIt package in object storage",
)
def archive_request(request_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin) -> ArchivePackageRead:
    """The consumer's or provider's staff, or the platform: the package holds the request, every decision with
    its reason and person, the grant and a summary of its data accesses (counts, not the data), DA/T 46 metadata
    and the audit-log evidence; 409 while the request is open, or before a signed checkpoint covers it."""
    state = request.app.state
    package = service.archive_request(db, who=who, storage=state.storage, settings=state.settings, request_id=request_id)
    return ArchivePackageRead.model_validate(package)


@router.get("/requests/{request_id}/archive-packages", response_model=Page[ArchivePackageRead])
def list_request_packages(request_id: str, db: DbSession, who: DepartmentOrAdmin) -> Page[ArchivePackageRead]:
    """The archive packages written for this request's dossier, newest first."""
    return whole_page(
        [ArchivePackageRead.model_validate(p) for p in service.request_packages(db, who=who, request_id=request_id)]
    )


@router.get(
    "/requests/{request_id}/archive-packages/{package_id}",
    summary="Download an archive package of a dossier (zip)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the download is recorded in the audit trail
def download_request_package(
    request_id: str, package_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin
) -> Response:
    package, data = service.request_package(
        db, who=who, storage=request.app.state.storage, request_id=request_id, package_id=package_id
    )
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{package.file_name}"'}
    )
