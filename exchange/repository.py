"""Every query of the exchange, scoped to what the caller may see.

A department sees the requests and grants it is the consumer or the provider of; the platform sees all.
Another department's record is simply not found.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from sqlalchemy import Insert, Integer, Select, and_, bindparam, case, func, insert, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from exchange.models import (
    OPEN_STATES,
    DataAccess,
    DeadlineBreach,
    Delivery,
    DeliveryState,
    ExchangeEvent,
    Grant,
    GrantState,
    GrantUsage,
    Notification,
    OutboxEvent,
    RequestStep,
    RequestTransition,
    SharingRequest,
    Subscription,
    Webhook,
)
from ops.auth import Principal
from ops.db import Base, UTCDateTime, table_of
from ops.errors import Invalid
from ops.identity.models import Department
from ops.pagination import MAX_LIMIT, decode_cursor, encode_cursor, keyset, page_of


@functools.cache
def insert_into(model: type[Base]) -> Insert:
    """INSERT INTO the model's table, built once: a statement object keeps its cache key, so the hot paths'
    inserts (a filing's rows) are not rebuilt and keyed again on every execution. The columns come with
    each execution's values."""
    return insert(table_of(model))


def insert_rows(db: Session, model: type[Base], rows: list[dict[str, Any]]) -> None:
    """Insert rows into the model's table in the session's transaction: one statement, no ORM unit of work
    (nothing the session holds is flushed first; what they refer to must be written already)."""
    if rows:
        db.connection().execute(insert_into(model), rows)


def readable_requests(who: Principal) -> Select[SharingRequest]:
    query = select(SharingRequest)
    if not who.is_platform_admin:
        mine = who.department_id or ""
        query = query.where(or_(SharingRequest.consumer_department_id == mine, SharingRequest.provider_department_id == mine))
    return query


def get_request(db: Session, who: Principal, request_id: str, *, lock: bool = False) -> SharingRequest | None:
    query = readable_requests(who).where(SharingRequest.id == request_id)
    return db.scalars(query).first()


def list_requests(
    db: Session,
    who: Principal,
    *,
    state: str | None,
    side: str | None,
    overdue: bool | None,
    cursor: str | None,
    limit: int,
    extension: str | None = None,
) -> tuple[list[SharingRequest], str | None]:
    """Requests the caller may see; `extension` keeps those whose open step has an extension in that state."""
    query = readable_requests(who)
    if state:
        query = query.where(SharingRequest.state == state)
    if side == "consumer":
        query = query.where(SharingRequest.consumer_department_id == (who.department_id or ""))
    elif side == "provider":
        query = query.where(SharingRequest.provider_department_id == (who.department_id or ""))
    if overdue is not None:
        late = select(RequestStep.request_id).where(RequestStep.open.is_(True), RequestStep.overdue.is_(True))
        query = query.where(SharingRequest.id.in_(late) if overdue else SharingRequest.id.not_in(late))
    if extension:
        asked = select(RequestStep.request_id).where(RequestStep.open.is_(True), RequestStep.extension_state == extension)
        query = query.where(SharingRequest.id.in_(asked))
    rows = list(db.scalars(keyset(query, created=SharingRequest.created_at, ident=SharingRequest.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def open_step(db: Session, request_id: str) -> RequestStep | None:
    return db.scalars(select(RequestStep).where(RequestStep.request_id == request_id, RequestStep.open.is_(True))).first()


def open_steps_for(db: Session, request_ids: list[str]) -> dict[str, RequestStep]:
    if not request_ids:
        return {}
    rows = db.scalars(select(RequestStep).where(RequestStep.request_id.in_(request_ids), RequestStep.open.is_(True)))
    return {row.request_id: row for row in rows}


def history(db: Session, request_id: str) -> list[RequestTransition]:
    return list(
        db.scalars(select(RequestTransition).where(RequestTransition.request_id == request_id).order_by(RequestTransition.id))
    )


def readable_grants(who: Principal) -> Select[Grant]:
    query = select(Grant)
    if not who.is_platform_admin:
        mine = who.department_id or ""
        query = query.where(or_(Grant.consumer_department_id == mine, Grant.provider_department_id == mine))
    return query


def get_grant(db: Session, who: Principal, grant_id: str) -> Grant | None:
    return db.scalars(readable_grants(who).where(Grant.id == grant_id)).first()


@dataclass(frozen=True, slots=True)
class GrantTerms:
    """What a data query needs of a grant: its columns of the same names, without the ORM object.

    Every lookup reads them; building the ORM object cost several times the query itself."""

    id: str
    consumer_department_id: str
    provider_department_id: str
    resource_id: str
    version_id: str
    fields: list[str]
    personal_fields: list[str]
    masked_fields: list[str]
    purpose: str
    valid_from: date
    valid_until: date
    expires_at: datetime
    rate_limit_per_minute: int
    control_parameters: list[dict[str, Any]]
    allows_export: bool
    state: str
    revoked_at: datetime | None
    revoke_reason: str | None
    region_scope: str | None  # the division its rows are kept to (数据回流); None: every row
    created_at: datetime  # when it was issued: it covers the dataset version then served and every later one


_CONSUMER_GRANT = select(*(getattr(Grant, f.name) for f in fields(GrantTerms))).where(
    Grant.id == bindparam("grant_id"), Grant.consumer_department_id == bindparam("department")
)


def consumer_grant(db: Session, who: Principal, grant_id: str) -> GrantTerms | None:
    """The terms of a grant the caller's department holds (only the consumer queries data through it)."""
    row = db.connection().execute(_CONSUMER_GRANT, {"grant_id": grant_id, "department": who.department_id or ""}).first()
    return GrantTerms(*row) if row is not None else None


def usable_grant_on(db: Session, who: Principal, resource_id: str, now: datetime) -> GrantTerms | None:
    """The caller's department's grant on a resource that can be used now (the one that lasts longest)."""
    query = (
        select(*(getattr(Grant, f.name) for f in fields(GrantTerms)))
        .where(
            Grant.consumer_department_id == (who.department_id or ""),
            Grant.resource_id == resource_id,
            Grant.state == GrantState.ACTIVE.value,
            Grant.expires_at > now,
        )
        .order_by(Grant.expires_at.desc())
        .limit(1)
    )
    row = db.connection().execute(query).first()
    return GrantTerms(*row) if row is not None else None


def list_grants(
    db: Session, who: Principal, *, state: str | None, cursor: str | None, limit: int
) -> tuple[list[Grant], str | None]:
    query = readable_grants(who)
    if state:
        query = query.where(Grant.state == state)
    rows = list(db.scalars(keyset(query, created=Grant.created_at, ident=Grant.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def current_use(db: Session, grant_id: str, window: datetime) -> int:
    """Queries counted against the grant in the minute `window` (0 when none)."""
    row = db.get(GrantUsage, grant_id)
    return row.count if row is not None and row.window_start == window else 0


_COUNT_USES: dict[str, Any] = {}  # the statement, built once per dialect


def _count_uses_statement(dialect: str) -> Any:
    statement = _COUNT_USES.get(dialect)
    if statement is None:
        upsert = pg_insert(GrantUsage) if dialect == "postgresql" else sqlite_insert(GrantUsage)
        same = GrantUsage.window_start == upsert.excluded.window_start
        uses: Any = bindparam("uses", type_=Integer())
        statement = (
            upsert.values(grant_id=bindparam("grant_id"), window_start=bindparam("window"), count=uses)
            .on_conflict_do_update(
                index_elements=[GrantUsage.grant_id],
                set_={"count": case((same, GrantUsage.count + uses), else_=uses), "window_start": upsert.excluded.window_start},
            )
            .returning(GrantUsage.count)
        )
        _COUNT_USES[dialect] = statement
    return statement


def count_uses(db: Session, grant_id: str, window: datetime, uses: int) -> int:
    """Add `uses` queries to the grant's counter for the minute `window`; returns the minute's count after."""
    statement = _count_uses_statement(db.get_bind().dialect.name)
    # On the connection: the ORM's bulk-update machinery costs more than this one statement.
    return int(db.connection().execute(statement, {"grant_id": grant_id, "window": window, "uses": uses}).scalar_one())


def give_back_uses(db: Session, grant_id: str, uses: int) -> None:
    """Take back queries counted by :func:`count_uses` that were refused."""
    db.execute(update(GrantUsage).where(GrantUsage.grant_id == grant_id).values(count=GrantUsage.count - uses))


def _by_id_desc(query: Select[Any], column: Any, cursor: str | None, limit: int) -> Select[Any]:
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", errors=[{"field": "limit", "message": "out of range"}])
    if cursor:
        (last,) = decode_cursor(cursor, 1)
        if not isinstance(last, int):
            raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
        query = query.where(column < last)
    return query.order_by(column.desc()).limit(limit + 1)


def _split(rows: list[Any], limit: int) -> tuple[list[Any], str | None]:
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], encode_cursor([rows[limit - 1].id])


def list_accesses(
    db: Session, who: Principal, *, grant_id: str | None, cursor: str | None, limit: int, side: str | None = None
) -> tuple[list[DataAccess], str | None]:
    """Accesses the caller may see: of its own data (provider) or by itself (consumer); all for the platform.

    `side` "provider" keeps the uses of the caller's data, "consumer" its own queries."""
    query = select(DataAccess)
    mine = who.department_id or ""
    if not who.is_platform_admin:
        query = query.where(or_(DataAccess.provider_department_id == mine, DataAccess.consumer_department_id == mine))
    if side == "provider":
        query = query.where(DataAccess.provider_department_id == mine)
    elif side == "consumer":
        query = query.where(DataAccess.consumer_department_id == mine)
    if grant_id:
        query = query.where(DataAccess.grant_id == grant_id)
    return _split(list(db.scalars(_by_id_desc(query, DataAccess.id, cursor, limit))), limit)


def accesses_about(db: Session, *, subject_ref: str, cursor: str | None, limit: int) -> tuple[list[DataAccess], str | None]:
    query = select(DataAccess).where(DataAccess.subject_ref == subject_ref)
    return _split(list(db.scalars(_by_id_desc(query, DataAccess.id, cursor, limit))), limit)


def resource_names(db: Session, grant_ids: set[str]) -> dict[str, str]:
    """Grant id → the name of the resource it grants."""
    if not grant_ids:
        return {}
    return {gid: name for gid, name in db.execute(select(Grant.id, Grant.resource_name).where(Grant.id.in_(grant_ids)))}


_DEPARTMENT_NAMES = select(Department.id, Department.name).where(Department.id.in_(bindparam("ids", expanding=True)))


def department_names(db: Session, department_ids: set[str]) -> dict[str, str]:
    """Department id → name: one Core statement, built once (departments are never written by the exchange's
    sessions, so nothing of theirs waits to be flushed)."""
    if not department_ids:
        return {}
    return {did: name for did, name in db.connection().execute(_DEPARTMENT_NAMES, {"ids": list(department_ids)})}


def list_breaches(db: Session, who: Principal, *, cursor: str | None, limit: int) -> tuple[list[DeadlineBreach], str | None]:
    query = select(DeadlineBreach)
    if not who.is_platform_admin:
        query = query.where(DeadlineBreach.department_id == (who.department_id or ""))
    return _split(list(db.scalars(_by_id_desc(query, DeadlineBreach.id, cursor, limit))), limit)


def list_notifications(db: Session, who: Principal, *, cursor: str | None, limit: int) -> tuple[list[Notification], str | None]:
    """A department's notifications; the platform's own (department NULL) for a platform administrator."""
    query = select(Notification)
    if who.is_platform_admin:
        query = query.where(Notification.department_id.is_(None))
    else:
        query = query.where(Notification.department_id == (who.department_id or ""))
    return _split(list(db.scalars(_by_id_desc(query, Notification.id, cursor, limit))), limit)


def events_after(db: Session, who: Principal, *, after: int, limit: int) -> list[ExchangeEvent]:
    query = select(ExchangeEvent).where(ExchangeEvent.id > after)
    if not who.is_platform_admin:
        query = query.where(ExchangeEvent.department_id == (who.department_id or ""))
    return list(db.scalars(query.order_by(ExchangeEvent.id).limit(limit)))


def steps_in_period(db: Session, start: datetime, end: datetime) -> list[RequestStep]:
    """Steps completed in [start, end), and open steps whose deadline fell in it."""
    return list(
        db.scalars(
            select(RequestStep).where(
                or_(
                    (RequestStep.completed_at >= start) & (RequestStep.completed_at < end),
                    RequestStep.open.is_(True) & (RequestStep.due_at >= start) & (RequestStep.due_at < end),
                )
            )
        )
    )


def webhook_deliveries_due(db: Session, *, now: datetime, max_attempts: int, limit: int) -> list[tuple[Notification, Webhook]]:
    """Notifications not yet delivered whose next attempt is due, with their department's webhook (oldest first)."""
    query = (
        select(Notification, Webhook)
        .join(Webhook, Webhook.department_id == Notification.department_id)
        .where(Notification.delivered.is_(False), Notification.attempts < max_attempts, Notification.next_attempt_at <= now)
        .order_by(Notification.id)
        .limit(limit)
    )
    return [(note, hook) for note, hook in db.execute(query)]


def insert_accesses(db: Session, rows: list[dict[str, Any]]) -> None:
    """Append data access rows (the columns of DataAccess) with one statement: the hot path's trail."""
    db.connection().execute(insert(table_of(DataAccess)), rows)


def mark_overdue(db: Session, now: datetime) -> int:
    """Mark every open step past its deadline overdue, recording its breach and a notification to the
    responsible department (three set-based statements); returns how many."""
    at = literal(now, UTCDateTime())
    due = and_(RequestStep.open.is_(True), RequestStep.overdue.is_(False), RequestStep.due_at <= now)
    db.execute(
        insert(DeadlineBreach).from_select(
            ["step_id", "request_id", "step", "department_id", "due_at", "recorded_at"],
            select(
                RequestStep.id, RequestStep.request_id, RequestStep.step, RequestStep.department_id, RequestStep.due_at, at
            ).where(due),
        )
    )
    db.execute(
        insert(Notification).from_select(
            ["department_id", "kind", "request_id", "message", "created_at", "delivered", "attempts", "next_attempt_at"],
            select(
                RequestStep.department_id,
                literal("deadline.overdue"),
                RequestStep.request_id,
                literal("overdue: the ")
                + RequestStep.step
                + literal(" step of request ")
                + RequestStep.request_id
                + literal(" passed its deadline"),
                at,
                literal(False),
                literal(0),
                at,
            ).where(due),
        )
    )
    result = db.execute(update(RequestStep).where(due).values(overdue=True))
    return int(getattr(result, "rowcount", 0) or 0)


def open_steps_reaching(db: Session, first: date) -> list[RequestStep]:
    """Open steps whose deadline is provisional or falls on or after `first`."""
    query = select(RequestStep).where(
        RequestStep.open.is_(True), (RequestStep.provisional.is_(True)) | (RequestStep.due_last_day >= first)
    )
    return list(db.scalars(query))


def expire_grants_due(db: Session, now: datetime) -> int:
    """Expire every active grant past its end (set-based), with a grant.expired event to both departments."""
    due = and_(Grant.state == GrantState.ACTIVE.value, Grant.expires_at <= now)
    at = literal(now, UTCDateTime())
    for department in (Grant.consumer_department_id, Grant.provider_department_id):
        db.execute(
            insert(ExchangeEvent).from_select(
                ["department_id", "at", "kind", "object_type", "object_id", "state", "data"],
                select(
                    department,
                    at,
                    literal("grant.expired"),
                    literal("grant"),
                    Grant.id,
                    literal("expired"),
                    literal({}, ExchangeEvent.data.type),
                ).where(due),
            )
        )
    result = db.execute(update(Grant).where(due).values(state=GrantState.EXPIRED.value, version=Grant.version + 1))
    return int(getattr(result, "rowcount", 0) or 0)


def requests_by_state(db: Session) -> dict[str, int]:
    query = select(SharingRequest.state, func.count()).group_by(SharingRequest.state)
    return {str(state): int(count) for state, count in db.execute(query)}


def overdue_steps_by_department(db: Session) -> dict[str | None, int]:
    """Open overdue steps by responsible department (None: the platform)."""
    query = (
        select(RequestStep.department_id, func.count())
        .where(RequestStep.open.is_(True), RequestStep.overdue.is_(True))
        .group_by(RequestStep.department_id)
    )
    return {department: int(count) for department, count in db.execute(query)}


def steps_completed_on_time_since(db: Session, since: datetime) -> tuple[int, int]:
    """Steps completed since `since`, and how many of them on time."""
    on_time = func.coalesce(func.sum(case((RequestStep.completed_at <= RequestStep.due_at, 1), else_=0)), 0)
    done, in_time = db.execute(select(func.count(), on_time).where(RequestStep.completed_at >= since)).one()
    return int(done), int(in_time)


def active_grant_count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Grant).where(Grant.state == GrantState.ACTIVE.value)) or 0)


# --- subscriptions and the outbox ------------------------------------------------------------------

_GRANT_TERMS = select(*(getattr(Grant, f.name) for f in fields(GrantTerms)))


def grant_terms(db: Session, grant_ids: set[str]) -> dict[str, GrantTerms]:
    """The terms of grants by id, for the hub's own jobs (delivery acts for the grant's consumer)."""
    if not grant_ids:
        return {}
    rows = db.execute(_GRANT_TERMS.where(Grant.id.in_(sorted(grant_ids))))
    return {row[0]: GrantTerms(*row) for row in rows}


def active_grant_ids(db: Session, resource_id: str) -> list[str]:
    query = select(Grant.id).where(Grant.resource_id == resource_id, Grant.state == GrantState.ACTIVE).order_by(Grant.id)
    return list(db.scalars(query))


def readable_subscriptions(who: Principal) -> Select[Subscription]:
    """The subscriptions the caller's department holds (the platform: all)."""
    query = select(Subscription)
    if not who.is_platform_admin:
        query = query.where(Subscription.department_id == (who.department_id or ""))
    return query


def get_subscription(db: Session, who: Principal, subscription_id: str) -> Subscription | None:
    return db.scalars(readable_subscriptions(who).where(Subscription.id == subscription_id)).first()


def subscriptions_of_grant(db: Session, grant_id: str) -> list[Subscription]:
    query = select(Subscription).where(Subscription.grant_id == grant_id).order_by(Subscription.created_at, Subscription.id)
    return list(db.scalars(query))


def active_webhooks(db: Session, grant_ids: list[str]) -> list[Subscription]:
    query = select(Subscription).where(
        Subscription.grant_id.in_(grant_ids), Subscription.active.is_(True), Subscription.kind == "webhook"
    )
    return list(db.scalars(query))


@dataclass(frozen=True)
class SupervisionHook:
    """An active supervision webhook subscription: what an event's deliveries are written from."""

    id: str
    department_id: str | None  # None: the platform
    event_types: list[Any]


_SUPERVISION_WEBHOOKS = select(Subscription.id, Subscription.department_id, Subscription.event_types).where(
    Subscription.grant_id.is_(None), Subscription.active.is_(True), Subscription.kind == "webhook"
)


def supervision_webhooks(db: Session) -> list[SupervisionHook]:
    """The active supervision webhooks: one Core statement (built once) on the session's connection, no ORM
    objects and no autoflush (what the caller added is flushed with the rest of its writes)."""
    return [SupervisionHook(i, d, list(e or [])) for i, d, e in db.connection().execute(_SUPERVISION_WEBHOOKS)]


def last_outbox_id(db: Session) -> int:
    return int(db.scalar(select(func.coalesce(func.max(OutboxEvent.id), 0))) or 0)


def outbox_of_grant(db: Session, grant_id: str, *, after: int, limit: int) -> list[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.grant_id == grant_id, OutboxEvent.id > after).order_by(OutboxEvent.id)
    return list(db.scalars(query.limit(limit)))


def supervision_outbox(db: Session, *, after: int, kinds: list[str], department_id: str | None, limit: int) -> list[OutboxEvent]:
    """Supervision events after a position, of some kinds: a department's (those concerning it) or the
    platform's (`department_id` None: every one)."""
    query = select(OutboxEvent).where(OutboxEvent.grant_id.is_(None), OutboxEvent.id > after, OutboxEvent.kind.in_(kinds))
    query = query.where(OutboxEvent.department_id == department_id if department_id else OutboxEvent.department_id.is_(None))
    return list(db.scalars(query.order_by(OutboxEvent.id).limit(limit)))


def unpublished_events(db: Session, *, limit: int) -> list[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.published_at.is_(None)).order_by(OutboxEvent.id).limit(limit)
    return list(db.scalars(query))


def mark_published(db: Session, ids: list[int], at: datetime) -> None:
    if ids:
        db.execute(update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(published_at=at))


def insert_deliveries(db: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        db.connection().execute(insert(table_of(Delivery)), rows)


def deliveries_due(db: Session, *, now: datetime, limit: int) -> list[tuple[Delivery, Subscription, OutboxEvent]]:
    query = (
        select(Delivery, Subscription, OutboxEvent)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .join(OutboxEvent, OutboxEvent.id == Delivery.event_pk)
        .where(Delivery.state == DeliveryState.PENDING, Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
    )
    return [(d, s, e) for d, s, e in db.execute(query)]


def deliveries_of(db: Session, subscription_ids: list[str], *, state: str | None, limit: int) -> list[Delivery]:
    query = select(Delivery).where(Delivery.subscription_id.in_(subscription_ids))
    if state is not None:
        query = query.where(Delivery.state == state)
    return list(db.scalars(query.order_by(Delivery.id.desc()).limit(limit)))


def delivery_counts(db: Session, subscription_ids: list[str]) -> dict[tuple[str, str], int]:
    if not subscription_ids:
        return {}
    query = (
        select(Delivery.subscription_id, Delivery.state, func.count())
        .where(Delivery.subscription_id.in_(subscription_ids))
        .group_by(Delivery.subscription_id, Delivery.state)
    )
    return {(s, st): int(n) for s, st, n in db.execute(query)}


def breaches_recorded_at(db: Session, at: datetime) -> list[DeadlineBreach]:
    """The deadline breaches one sweep recorded (at its moment)."""
    return list(db.scalars(select(DeadlineBreach).where(DeadlineBreach.recorded_at == at).order_by(DeadlineBreach.id)))


def archivable_request(db: Session, who: Principal, request_id: str) -> SharingRequest | None:
    """A request the caller may archive: its consumer's or provider's staff, or the platform (as it reads it)."""
    return get_request(db, who, request_id)


def grant_of_request(db: Session, request_id: str) -> Grant | None:
    return db.scalars(select(Grant).where(Grant.request_id == request_id)).first()


def access_summary(db: Session, grant_id: str) -> list[tuple[str, str, str, str, int, int]]:
    """(day UTC, purpose, kind, outcome, accesses, rows) of a grant's data accesses: counts, never the data."""
    day = func.date(DataAccess.at)
    query = (
        select(
            day,
            DataAccess.purpose,
            DataAccess.kind,
            DataAccess.outcome,
            func.count(),
            func.coalesce(func.sum(DataAccess.rows), 0),
        )
        .where(DataAccess.grant_id == grant_id)
        .group_by(day, DataAccess.purpose, DataAccess.kind, DataAccess.outcome)
        .order_by(day, DataAccess.purpose, DataAccess.kind, DataAccess.outcome)
    )
    return [(str(d), p, k, o, int(n), int(r)) for d, p, k, o, n, r in db.execute(query)]


def requests_filed_between(db: Session, who: Principal, *, since: datetime, until: datetime) -> list[str]:
    """The requests the caller reads filed in [since, until) that are no longer open, oldest first."""
    query = readable_requests(who).where(
        SharingRequest.filed_at >= since,
        SharingRequest.filed_at < until,
        SharingRequest.state.not_in([s.value for s in OPEN_STATES]),
    )
    return [r.id for r in db.scalars(query.order_by(SharingRequest.filed_at, SharingRequest.id))]
