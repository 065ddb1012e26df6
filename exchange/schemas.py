"""Request and response bodies of the exchange API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _stripped(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


class RequestCreate(BaseModel):
    """A sharing request (共享申请) for a published catalogue entry."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "resource_id": "3d9a6c1e-5b7f-4e2a-8c0d-1a2b3c4d5e6f",
                    "items": ["身份证号", "姓名", "户籍地址"],
                    "purpose": "办理社会救助资格审核",
                    "scenario": "窗口受理低保申请时核验申请人户籍",
                    "legal_basis": "《社会救助暂行办法》第十一条",
                    "valid_until": "2027-12-31",
                    "contact_name": "李四",
                    "contact_phone": "010-12345678",
                }
            ]
        },
    )

    resource_id: str = Field(min_length=1, max_length=36)
    items: list[str] = Field(min_length=1, max_length=500, description="the information items (信息项) wanted")
    clear_items: list[str] = Field(
        default_factory=list, max_length=500, description="sensitive items wanted in clear rather than masked"
    )
    purpose: str = Field(min_length=2, max_length=500, description="用途")
    scenario: str = Field(min_length=2, max_length=500, description="应用场景")
    legal_basis: str = Field(min_length=2, max_length=500)
    valid_from: date | None = Field(default=None, description="default: today (Asia/Shanghai)")
    valid_until: date
    contact_name: str = Field(min_length=1, max_length=100)
    contact_phone: str = Field(min_length=3, max_length=40, pattern=r"^[0-9+\-() ]+$")

    @field_validator("purpose", "scenario", "legal_basis", "contact_name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 1:
            raise ValueError("must not be blank")
        return value


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)

    @field_validator("reason")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if len(value) < 2:
            raise ValueError("a reason of at least 2 characters is required")
        return value


class OptionalReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class ProviderDecision(BaseModel):
    """The provider's decision; approval may narrow the fields, the clear fields or the period."""

    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str | None = Field(default=None, max_length=2000, description="required when refusing")
    fields: list[str] | None = Field(default=None, description="a subset of the requested items")
    clear_fields: list[str] | None = None
    valid_until: date | None = Field(default=None, description="no later than requested")

    _reason = field_validator("reason")(_stripped)


class ExtensionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1, le=60, description="extra working days")
    reason: str = Field(min_length=2, max_length=2000)


class ExtensionDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str | None = Field(default=None, max_length=2000, description="required when refusing")

    _reason = field_validator("reason")(_stripped)


class CoordinationOutcome(BaseModel):
    """The platform's coordination (协调) of a refused conditional request."""

    model_config = ConfigDict(extra="forbid")

    outcome: Literal["grant", "uphold"]
    reason: str = Field(min_length=2, max_length=2000)
    fields: list[str] | None = None


class RatingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal["good", "average", "poor"]
    comment: str | None = Field(default=None, max_length=1000)


class WebhookSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=500, pattern=r"^https?://\S+$")
    secret: str = Field(min_length=16, max_length=128)


class DataQuery(BaseModel):
    """A query of granted data by its control parameters (管控参数), e.g. {"身份证号": "…"}."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, str] = Field(default_factory=dict)
    fields: list[str] | None = Field(default=None, description="default: every granted field")
    use_cause: str | None = Field(default=None, max_length=200, description="申请事由 of this query")
    version: int | None = Field(
        default=None, ge=1, description="a dataset version by number (one the grant covers); default: the current one"
    )


class RequestDeadlineRead(BaseModel):
    step: str
    responsible: str  # a department id, or "platform"
    started_at: datetime
    working_days: int
    due_at: datetime
    due_last_day: date
    provisional: bool
    working_days_left: int
    overdue: bool
    extension_days: int | None = None
    extension_state: str | None = None


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    action: str
    from_state: str | None
    to_state: str
    actor: str
    actor_role: str
    actor_department_id: str | None
    reason: str | None
    detail: dict[str, Any]


class RequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    state: str
    consumer_department_id: str
    consumer_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    provider_department_id: str
    provider_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    resource_id: str
    version_id: str
    resource_version: int
    resource_code: str
    resource_name: str
    sharing_type: str
    route: str | None
    items: list[str]
    clear_items: list[str]
    purpose: str
    scenario: str
    legal_basis: str
    valid_from: date
    valid_until: date
    contact_name: str
    contact_phone: str
    filed_by: str
    filed_at: datetime
    decided_at: datetime | None
    reason: str | None
    grant_id: str | None
    version: int
    deadline: RequestDeadlineRead | None = None
    history: list[TransitionRead] | None = None


class GrantRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    request_id: str
    consumer_department_id: str
    consumer_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    provider_department_id: str
    provider_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    resource_id: str
    version_id: str
    resource_name: str
    fields: list[str]
    clear_fields: list[str]
    masked_fields: list[str]
    purpose: str
    valid_from: date
    valid_until: date
    expires_at: datetime
    rate_limit_per_minute: int
    control_parameters: list[dict[str, Any]]
    allows_export: bool
    region_scope: str | None = Field(
        default=None,
        description="数据回流: the administrative division (GB/T 2260) the grant is scoped to; only rows of it and "
        "the divisions below it are returned. None: every row",
    )
    region_scope_name: str | None = Field(default=None, description="the division's name, for a reader")
    state: str
    revoked_at: datetime | None
    revoke_reason: str | None
    version: int


class DataResult(BaseModel):
    grant_id: str
    fields: list[str]
    masked_fields: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None = None


class DataAccessRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    grant_id: str
    consumer_department_id: str
    consumer_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    provider_department_id: str
    provider_department_name: str | None = Field(default=None, description="the department's name, for a reader")
    resource_id: str
    actor: str
    kind: str
    purpose: str
    parameters: dict[str, Any]
    rows: int
    fields: list[str]
    outcome: str


class BreachRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    request_id: str
    step: str
    department_id: str | None
    due_at: datetime
    recorded_at: datetime


class NotificationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    department_id: str | None
    kind: str
    request_id: str | None
    message: str
    created_at: datetime
    delivered: bool
    attempts: int
    last_error: str | None


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    department_id: str | None
    at: datetime
    kind: str
    object_type: str
    object_id: str
    state: str
    data: dict[str, Any]


class EventFeed(BaseModel):
    items: list[EventRead]
    cursor: str = Field(description="pass back as `after` to read on; unchanged when nothing is new")


class RatingRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    request_id: str
    rating: str
    comment: str | None
    rated_by: str
    rated_at: datetime


class DepartmentReport(BaseModel):
    department_id: str  # or "platform"
    department_name: str  # 平台管理部门 for the platform's own steps
    steps_completed: int
    steps_on_time: int
    steps_overdue_open: int
    on_time_rate: float | None
    average_working_days: float | None
    ratings: dict[str, int]
    average_score: float | None = Field(default=None, description="好差评: mean score (1–5) of the period's ratings")
    rectifications_opened: int = Field(default=0, description="poor ratings (1–2) that opened a rectification item")
    rectification_rate: float | None = Field(default=None, description="整改率: items replied to, of those opened")
    reply_on_time_rate: float | None = Field(default=None, description="按时回复率: items replied to in time, of those opened")


class Report(BaseModel):
    start: date
    end: date
    departments: list[DepartmentReport]


class SubscriptionCreate(BaseModel):
    """Subscribe to a grant's changes: pushed to a webhook, or read from a change feed."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"kind": "webhook", "url": "https://mz.example.gov.cn/hooks/hj"}]}
    )

    kind: Literal["webhook", "feed"]
    url: str | None = Field(default=None, max_length=500, description="the webhook (kind webhook only)")


class SupervisionSubscriptionCreate(BaseModel):
    """Subscribe to supervision events (双推送): the platform to all, a department to its own requests'."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"event_types": ["request.filed", "request.overdue"], "kind": "feed"}]},
    )

    event_types: list[str] = Field(
        min_length=1, description="request.filed, request.accepted, request.decided, request.overdue, grant.revoked"
    )
    kind: Literal["webhook", "feed"]
    url: str | None = Field(default=None, max_length=500)


class SubscriptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    grant_id: str | None
    department_id: str | None
    kind: str
    url: str | None
    event_types: list[str]
    active: bool
    created_by: str
    created_at: datetime
    ended_at: datetime | None
    secret: str | None = Field(default=None, description="the webhook's signing secret: shown once, at creation")
    pending: int = 0
    delivered: int = 0
    parked: int = 0


class DeliveryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    subscription_id: str
    event_pk: int
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    delivered_at: datetime | None
    rows: int


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delivery_ids: list[int] | None = Field(default=None, description="default: every parked delivery")


class ReplayResult(BaseModel):
    replayed: int


class ChangeFeed(BaseModel):
    """A page of a change feed: events in order, and the hub-signed cursor to pass next."""

    items: list[dict[str, Any]]
    next_cursor: str
