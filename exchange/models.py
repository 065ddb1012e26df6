"""Tables of the exchange domain: sharing requests, their steps and history, grants, the data-access log,
deadline breaches, notifications, events and ratings."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, TimestampMixin, VersionedMixin, utcnow

BIGID = BigInteger().with_variant(Integer, "sqlite")


class RequestState(StrEnum):
    """Where a sharing request (共享申请) stands."""

    SUBMITTED = "submitted"  # waiting for the platform's normative review (规范性审查)
    REFUSED = "refused"  # not accepted by the platform (不予受理), with a reason
    PROVISIONING = "provisioning"  # accepted, the platform provides directly (no data loaded yet)
    PROVIDER_REVIEW = "provider_review"  # accepted, pushed to the provider department to decide
    GRANTED = "granted"  # a grant was issued
    REJECTED = "rejected"  # the provider refused, with a reason (the consumer may escalate)
    COORDINATING = "coordinating"  # escalated to the platform for coordination (协调)
    CLOSED = "closed"  # coordination upheld the refusal
    WITHDRAWN = "withdrawn"  # withdrawn by the consumer before a decision


OPEN_STATES = frozenset(
    {RequestState.SUBMITTED, RequestState.PROVISIONING, RequestState.PROVIDER_REVIEW, RequestState.COORDINATING}
)


class Step(StrEnum):
    """A timed step of the process, and who must act in it."""

    REVIEW = "review"  # platform
    PROVISION = "provision"  # platform
    DECISION = "decision"  # provider department
    COORDINATION = "coordination"  # platform


class GrantState(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class SharingRequest(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A consumer department's request to use a catalogue entry's data."""

    __tablename__ = "sharing_requests"

    consumer_department_id: Mapped[str] = mapped_column(String(36), ForeignKey("departments.id"), index=True)
    provider_department_id: Mapped[str] = mapped_column(String(36), ForeignKey("departments.id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(36), index=True)
    version_id: Mapped[str] = mapped_column(String(36))
    resource_version: Mapped[int] = mapped_column(Integer)
    resource_code: Mapped[str] = mapped_column(String(64))
    resource_name: Mapped[str] = mapped_column(String(200))
    sharing_type: Mapped[str] = mapped_column(String(16))
    has_control_parameters: Mapped[bool] = mapped_column(Boolean, default=False)
    route: Mapped[str | None] = mapped_column(String(16))  # "direct" | "provider", set at acceptance
    items: Mapped[list[Any]] = mapped_column(JSON)
    # Sensitive items asked for in clear (otherwise they are returned masked).
    clear_items: Mapped[list[Any]] = mapped_column(JSON)
    purpose: Mapped[str] = mapped_column(String(500))  # 用途
    scenario: Mapped[str] = mapped_column(String(500))  # 应用场景
    legal_basis: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    contact_name: Mapped[str] = mapped_column(String(100))
    contact_phone: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), index=True)
    filed_by: Mapped[str] = mapped_column(String(128))
    filed_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)  # the last refusal / withdrawal / coordination reason
    grant_id: Mapped[str | None] = mapped_column(String(36))


class RequestStep(Base):
    """A timed step of a request: who must act, by when (in working days), and how it ended."""

    __tablename__ = "sharing_request_steps"
    __table_args__ = (Index("ix_sharing_request_steps_open_due", "open", "overdue", "due_at"),)

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), ForeignKey("sharing_requests.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(16))
    # The responsible department; NULL means the platform (平台管理部门).
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    started_at: Mapped[datetime] = mapped_column()
    working_days: Mapped[int] = mapped_column(Integer)  # the period, extensions included
    due_at: Mapped[datetime] = mapped_column()
    due_last_day: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    open: Mapped[bool] = mapped_column(Boolean, default=True)
    overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(20))
    extension_days: Mapped[int | None] = mapped_column(Integer)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_state: Mapped[str | None] = mapped_column(String(16))  # pending / approved / refused


class RequestTransition(Base):
    """One recorded change of a request's state: who, when, why."""

    __tablename__ = "sharing_request_transitions"

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), ForeignKey("sharing_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str] = mapped_column(String(32))
    actor_department_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Grant(IdMixin, TimestampMixin, VersionedMixin, Base):
    """The right of a consumer to query a resource version's data: fields, purpose, validity, limits."""

    __tablename__ = "sharing_grants"

    request_id: Mapped[str] = mapped_column(String(36), ForeignKey("sharing_requests.id"), unique=True)
    consumer_department_id: Mapped[str] = mapped_column(String(36), ForeignKey("departments.id"), index=True)
    provider_department_id: Mapped[str] = mapped_column(String(36), ForeignKey("departments.id"), index=True)
    resource_id: Mapped[str] = mapped_column(String(36))
    version_id: Mapped[str] = mapped_column(String(36))
    resource_name: Mapped[str] = mapped_column(String(200))
    fields: Mapped[list[Any]] = mapped_column(JSON)
    clear_fields: Mapped[list[Any]] = mapped_column(JSON)  # sensitive fields named for clear text
    personal_fields: Mapped[list[Any]] = mapped_column(JSON)
    masked_fields: Mapped[list[Any]] = mapped_column(JSON)  # sensitive fields returned masked
    purpose: Mapped[str] = mapped_column(String(500))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    expires_at: Mapped[datetime] = mapped_column(index=True)  # 24:00 Asia/Shanghai of valid_until
    rate_limit_per_minute: Mapped[int] = mapped_column(Integer)
    control_parameters: Mapped[list[Any]] = mapped_column(JSON)
    allows_export: Mapped[bool] = mapped_column(Boolean, default=False)
    # 数据回流: the division (GB/T 2260) a grant to a lower-level government's department is scoped to:
    # only rows of that division and those below it are returned. None: every row.
    region_scope: Mapped[str | None] = mapped_column(String(6), default=None)
    state: Mapped[str] = mapped_column(String(16), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column()
    revoked_by: Mapped[str | None] = mapped_column(String(128))
    revoke_reason: Mapped[str | None] = mapped_column(Text)


class GrantUsage(Base):
    """Queries through a grant in the current minute (its rate limit), one row per grant."""

    __tablename__ = "sharing_grant_usage"

    grant_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    window_start: Mapped[datetime] = mapped_column()
    count: Mapped[int] = mapped_column(Integer)


class DataAccess(Base):
    """One query of shared data through a grant (全程留痕): what was asked, what was returned."""

    __tablename__ = "sharing_data_accesses"
    __table_args__ = (Index("ix_sharing_data_accesses_grant_at", "grant_id", "at"),)

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    grant_id: Mapped[str] = mapped_column(String(36))
    consumer_department_id: Mapped[str] = mapped_column(String(36), index=True)
    provider_department_id: Mapped[str] = mapped_column(String(36), index=True)
    resource_id: Mapped[str] = mapped_column(String(36))
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # lookup / export / api
    purpose: Mapped[str] = mapped_column(String(500))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)  # personal values replaced by their hash
    subject_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    rows: Mapped[int] = mapped_column(Integer, default=0)
    fields: Mapped[list[Any]] = mapped_column(JSON)
    outcome: Mapped[str] = mapped_column(String(32))


class DeadlineBreach(Base):
    """A step that passed its deadline, recorded against the responsible department."""

    __tablename__ = "sharing_deadline_breaches"

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    step_id: Mapped[int] = mapped_column(BIGID, unique=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    step: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    due_at: Mapped[datetime] = mapped_column()
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Notification(Base):
    """A message to a department (NULL: the platform), listed by it and optionally pushed to its webhook."""

    __tablename__ = "sharing_notifications"
    __table_args__ = (Index("ix_sharing_notifications_pending", "delivered", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    request_id: Mapped[str | None] = mapped_column(String(36))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)


class Webhook(TimestampMixin, Base):
    """Where a department wants its notifications pushed, and the secret that signs them."""

    __tablename__ = "sharing_webhooks"

    department_id: Mapped[str] = mapped_column(String(36), ForeignKey("departments.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(128))


class ExchangeEvent(Base):
    """A request or grant state change, in a per-department feed read with a cursor."""

    __tablename__ = "sharing_events"

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(40))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SubscriptionKind(StrEnum):
    WEBHOOK = "webhook"  # pushed to the subscriber's URL, signed
    FEED = "feed"  # pulled from the change feed with a hub-signed cursor


class Subscription(IdMixin, Base):
    """A consumer's subscription to a grant's changes (or a supervising department's to event types)."""

    __tablename__ = "exchange_subscriptions"

    # The grant whose data changes it receives; NULL for a supervision subscription (双推送).
    grant_id: Mapped[str | None] = mapped_column(String(36), index=True)
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)  # the subscriber; NULL: the platform
    kind: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(String(500))
    signing_secret: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # wrapped (ops.crypto)
    event_types: Mapped[list[Any]] = mapped_column(JSON, default=list)  # supervision subscriptions only
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # It receives the events after this outbox position (those recorded once it existed).
    start_after: Mapped[int] = mapped_column(BIGID, default=0)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column()


class OutboxEvent(Base):
    """An event in the database outbox (the source of truth): a slice of a dataset version's change set for
    one grant, or a supervision event. Its `id` orders the change feed; `event_id` is what a subscriber
    applies once (and NATS's Nats-Msg-Id); `published_at` is set when the broker acknowledged it."""

    __tablename__ = "exchange_outbox"
    __table_args__ = (
        UniqueConstraint("grant_id", "dataset_id", "first_seq"),
        Index("ix_exchange_outbox_unpublished", "published_at", "id"),
        Index("ix_exchange_outbox_grant_id", "grant_id", "id"),
    )

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(40))  # dataset.changed / request.filed / … / grant.revoked
    grant_id: Mapped[str | None] = mapped_column(String(36))
    department_id: Mapped[str | None] = mapped_column(String(36))  # a supervision event's department concerned
    resource_id: Mapped[str | None] = mapped_column(String(36))
    dataset_id: Mapped[str | None] = mapped_column(String(36))
    dataset_number: Mapped[int | None] = mapped_column(Integer)
    first_seq: Mapped[int] = mapped_column(Integer, default=0)  # changes first_seq..last_seq of the version
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # a supervision event's content
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column()


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    PARKED = "parked"  # failed too often: waits for a replay


class Delivery(Base):
    """One event to push to one webhook subscription: its attempts, backoff and outcome."""

    __tablename__ = "exchange_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_pk"),
        Index("ix_exchange_deliveries_due", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BIGID, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    event_pk: Mapped[int] = mapped_column(BIGID)
    state: Mapped[str] = mapped_column(String(16), default=DeliveryState.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()
    rows: Mapped[int] = mapped_column(Integer, default=0)
