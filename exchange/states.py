"""The sharing request's state machine and what every step of it records.

A request moves through an explicit state machine (see `TRANSITIONS`); each timed step has a deadline
counted in working days (ops.workdays: the filing day never counts, day one is the next working day,
the period ends at 24:00 Asia/Shanghai of its last working day). Every change is recorded (who, when,
why), audited, published to the departments' event feed, and guarded by the request's version so that
two people acting at once cannot both succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.models import (
    OPEN_STATES,
    ExchangeEvent,
    Notification,
    RequestState,
    RequestStep,
    RequestTransition,
    SharingRequest,
    Step,
)
from exchange.outbox import SUPERVISED_KINDS, record_supervision_event
from ops import audit, metrics
from ops.audit import Actor
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Conflict, Invalid
from ops.workdays.service import SHANGHAI, calendar

SENSITIVE_GRADES = frozenset({"sensitive", "secret"})
PLATFORM = "platform"

# The state machine: action -> (states it may start from, state it leads to).
TRANSITIONS: dict[str, tuple[frozenset[RequestState], RequestState]] = {
    "accept_direct": (frozenset({RequestState.SUBMITTED}), RequestState.PROVISIONING),
    "accept_to_provider": (frozenset({RequestState.SUBMITTED}), RequestState.PROVIDER_REVIEW),
    "refuse": (frozenset({RequestState.SUBMITTED}), RequestState.REFUSED),
    "provide": (frozenset({RequestState.PROVISIONING}), RequestState.GRANTED),
    "approve": (frozenset({RequestState.PROVIDER_REVIEW}), RequestState.GRANTED),
    "reject": (frozenset({RequestState.PROVIDER_REVIEW}), RequestState.REJECTED),
    "withdraw": (frozenset(OPEN_STATES), RequestState.WITHDRAWN),
    "escalate": (frozenset({RequestState.REJECTED}), RequestState.COORDINATING),
    "coordinate_grant": (frozenset({RequestState.COORDINATING}), RequestState.GRANTED),
    "coordinate_uphold": (frozenset({RequestState.COORDINATING}), RequestState.CLOSED),
}


# A decided request can be rated once by its consumer (好差评).
RATEABLE_STATES = frozenset({RequestState.GRANTED, RequestState.REJECTED, RequestState.CLOSED, RequestState.REFUSED})


@dataclass(frozen=True)
class Policy:
    """The deployment's time limits and bounds, in working days (seed 002 default 3 / 3 / 10)."""

    review_days: int = 3
    provision_days: int = 3
    decision_days: int = 10
    coordination_days: int = 10
    max_extension_days: int = 10
    max_grant_days: int = 1096
    rate_limit_per_minute: int = 600

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            review_days=settings.review_working_days,
            provision_days=settings.direct_provision_working_days,
            decision_days=settings.provider_decision_working_days,
            coordination_days=settings.coordination_working_days,
            max_extension_days=settings.max_extension_working_days,
            max_grant_days=settings.max_grant_days,
            rate_limit_per_minute=settings.default_grant_rate_limit_per_minute,
        )


# ---------------------------------------------------------------------------------------------
# What every step records: steps, transitions, history, events, notifications


class RequestFacts(Protocol):
    """What a step records of its request: a `SharingRequest`, or a request just filed (written with Core
    inserts, `requests.Filed`)."""

    @property
    def id(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def resource_id(self) -> str: ...
    @property
    def resource_name(self) -> str: ...
    @property
    def consumer_department_id(self) -> str: ...
    @property
    def provider_department_id(self) -> str: ...


def now() -> datetime:
    """The exchange's clock, in UTC."""
    return utcnow()


def today() -> date:
    """Today in Asia/Shanghai (the calendar day deadlines and validity are counted in)."""
    return utcnow().astimezone(SHANGHAI).date()


def end_of_day(day: date) -> datetime:
    """24:00 Asia/Shanghai of `day`, in UTC."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=SHANGHAI).astimezone(UTC)


def step_values(
    db: Session, request_id: str, *, step: Step, department_id: str | None, start: datetime, days: int
) -> dict[str, Any]:
    """The columns of a request's new open step, its deadline counted in working days from `start`."""
    deadline = calendar(db).add_working_days(start, days)
    return {
        "request_id": request_id,
        "step": step.value,
        "department_id": department_id,
        "started_at": start,
        "working_days": days,
        "due_at": deadline.due_at,
        "due_last_day": deadline.last_day,
        "provisional": deadline.provisional,
        "open": True,
        "overdue": False,
    }


def open_step(
    db: Session, req: SharingRequest, *, step: Step, department_id: str | None, start: datetime, days: int
) -> RequestStep:
    row = RequestStep(**step_values(db, req.id, step=step, department_id=department_id, start=start, days=days))
    db.add(row)
    return row


def close_step(db: Session, req: SharingRequest, *, outcome: str, at: datetime) -> RequestStep | None:
    step = repo.open_step(db, req.id)
    if step is not None:
        step.open = False
        step.completed_at = at
        step.outcome = outcome
        if step.extension_state == "pending":
            step.extension_state = "lapsed"
    return step


def publish_event(
    db: Session,
    req: RequestFacts,
    kind: str,
    *,
    object_type: str = "request",
    object_id: str | None = None,
    state: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    at = utcnow()
    event = {
        "at": at,
        "kind": kind,
        "object_type": object_type,
        "object_id": object_id or req.id,
        "state": state or req.state,
        "data": {"request_id": req.id, "resource_id": req.resource_id, **(data or {})},
    }
    departments = dict.fromkeys((req.consumer_department_id, req.provider_department_id))
    repo.insert_rows(db, ExchangeEvent, [{**event, "department_id": d} for d in departments])
    if kind in SUPERVISED_KINDS:  # 双推送: to the supervising departments subscribed
        record_supervision_event(
            db,
            kind=SUPERVISED_KINDS[kind],
            department_ids=[req.consumer_department_id, req.provider_department_id],
            payload={
                "request_id": req.id,
                "resource_id": req.resource_id,
                "resource_name": req.resource_name,
                "state": state or req.state,
                "object_type": object_type,
                "object_id": object_id or req.id,
                "consumer_department_id": req.consumer_department_id,
                "provider_department_id": req.provider_department_id,
                **(data or {}),
            },
        )


def notify(db: Session, department_id: str | None, kind: str, req: RequestFacts, message: str) -> None:
    """A message to a department (None: the platform), listed by it and pushed to its webhook; one statement."""
    now = utcnow()
    row = {
        "department_id": department_id,
        "kind": kind,
        "request_id": req.id,
        "message": message,
        "created_at": now,
        "delivered": False,
        "attempts": 0,
        "next_attempt_at": now,
    }
    repo.insert_rows(db, Notification, [row])


def append_history(
    db: Session,
    req: RequestFacts,
    *,
    who: Actor,
    action: str,
    from_state: str | None,
    reason: str | None,
    detail: dict[str, Any],
) -> None:
    """Append one row to the request's history: who did what, from which state to its current one (one
    statement; the request's row must be written already)."""
    row = {
        "request_id": req.id,
        "at": utcnow(),
        "action": action,
        "from_state": from_state,
        "to_state": req.state,
        "actor": who.subject,
        "actor_role": who.primary_role,
        "actor_department_id": who.department_id,
        "reason": reason,
        "detail": detail,
    }
    repo.insert_rows(db, RequestTransition, [row])


def transition(
    db: Session,
    req: SharingRequest,
    *,
    who: Actor,
    action: str,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Move `req` along `action`; the version check makes a concurrent second actor fail with 409."""
    allowed, target = TRANSITIONS[action]
    current = RequestState(req.state)
    if current not in allowed:
        raise Conflict(
            f"the request is {current.value}; '{action}' is possible only when it is "
            + " or ".join(sorted(s.value for s in allowed)),
            extra={"state": current.value},
        )
    req.state = target.value
    req.updated_at = utcnow()
    if reason is not None:
        req.reason = reason
    db.flush()  # UPDATE ... WHERE version = n: StaleDataError (409) if someone else changed it first
    record_action(
        db,
        req,
        who=who,
        action=action,
        from_state=current.value,
        reason=reason,
        detail=detail or {},
        event=(f"request.{target.value}", {"action": action}),
        audited={"from": current.value, "to": target.value, **(detail or {})},
    )


def record_action(
    db: Session,
    req: SharingRequest,
    *,
    who: Actor,
    action: str,
    from_state: str,
    reason: str | None,
    detail: dict[str, Any],
    event: tuple[str, dict[str, Any]],
    audited: dict[str, Any],
) -> None:
    """Record an action on a request in its history, the departments' feed (`event`: kind and data), the
    audit (`audited`: its detail) and the metrics."""
    append_history(db, req, who=who, action=action, from_state=from_state, reason=reason, detail=detail)
    publish_event(db, req, event[0], data=event[1])
    audit.record(
        db,
        actor=who,
        action=f"sharing_request.{action}",
        object_type="sharing_request",
        object_id=req.id,
        purpose=reason,
        detail=audited,
    )
    metrics.SHARING_REQUEST_EVENTS.labels(event=action).inc()


def require_reason(reason: str | None, what: str) -> str:
    if reason is None or len(reason.strip()) < 2:
        raise Invalid(f"{what} must give a reason", errors=[{"field": "reason", "message": "required"}])
    return reason.strip()


def is_sensitive(item: sources.Item) -> bool:
    """Graded sensitive or secret (分级): returned masked unless the grant names it for clear text."""
    return item.sensitivity.lower() in SENSITIVE_GRADES
