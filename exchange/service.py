"""The rules of the sharing exchange (统一受理、平台授权, seed 002 §六(一)).

A request moves through an explicit state machine (see `TRANSITIONS`); each timed step has a deadline
counted in working days (ops.workdays: the filing day never counts, day one is the next working day,
the period ends at 24:00 Asia/Shanghai of its last working day). Every change is recorded (who, when,
why), audited, published to the departments' event feed, and guarded by the request's version so that
two people acting at once cannot both succeed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, case, insert, literal, select, update
from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.models import (
    OPEN_STATES,
    DataAccess,
    DeadlineBreach,
    ExchangeEvent,
    Grant,
    GrantState,
    Notification,
    Rating,
    RequestState,
    RequestStep,
    RequestTransition,
    SharingRequest,
    Step,
    Webhook,
)
from exchange.repository import GrantTerms
from exchange.schemas import (
    CoordinationOutcome,
    DeadlineRead,
    DepartmentReport,
    ExtensionCreate,
    ExtensionDecision,
    ProviderDecision,
    RatingCreate,
    Report,
    RequestCreate,
)
from ops import audit, metrics
from ops.audit import Actor
from ops.auth import Principal
from ops.config import Settings
from ops.db import UTCDateTime, table_of, utcnow
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound, TooManyRequests
from ops.groupcommit import GroupCommit
from ops.identity.models import Department
from ops.workdays.service import SHANGHAI, WorkCalendar, calendar

SENSITIVE_GRADES = frozenset({"sensitive", "secret"})
PLATFORM = "platform"
DEFAULT_LOOKUP_ROWS = 100
MAX_EXPORT_PAGE = 1000

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


class GrantNotUsable(HubError):
    status, code, title = 403, "grant_not_usable", "Grant not usable"


class FieldsNotGranted(HubError):
    status, code, title = 403, "fields_not_granted", "Fields not granted"


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
# Helpers: steps, transitions, events, notifications


def now() -> datetime:
    """The exchange's clock, in UTC."""
    return utcnow()


def today() -> date:
    """Today in Asia/Shanghai (the calendar day deadlines and validity are counted in)."""
    return utcnow().astimezone(SHANGHAI).date()


def _end_of_day(day: date) -> datetime:
    """24:00 Asia/Shanghai of `day`, in UTC."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=SHANGHAI).astimezone(UTC)


def _open_step(
    db: Session, req: SharingRequest, *, step: Step, department_id: str | None, start: datetime, days: int
) -> RequestStep:
    deadline = calendar(db).add_working_days(start, days)
    row = RequestStep(
        request_id=req.id,
        step=step.value,
        department_id=department_id,
        started_at=start,
        working_days=days,
        due_at=deadline.due_at,
        due_last_day=deadline.last_day,
        provisional=deadline.provisional,
        open=True,
        overdue=False,
    )
    db.add(row)
    return row


def _close_step(db: Session, req: SharingRequest, *, outcome: str, at: datetime) -> RequestStep | None:
    step = repo.open_step(db, req.id)
    if step is not None:
        step.open = False
        step.completed_at = at
        step.outcome = outcome
        if step.extension_state == "pending":
            step.extension_state = "lapsed"
    return step


def _event(
    db: Session,
    req: SharingRequest,
    kind: str,
    *,
    object_type: str = "request",
    object_id: str | None = None,
    state: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    for department in {req.consumer_department_id, req.provider_department_id}:
        db.add(
            ExchangeEvent(
                department_id=department,
                at=utcnow(),
                kind=kind,
                object_type=object_type,
                object_id=object_id or req.id,
                state=state or req.state,
                data={"request_id": req.id, "resource_id": req.resource_id, **(data or {})},
            )
        )


def _notify(db: Session, department_id: str | None, kind: str, req: SharingRequest, message: str) -> None:
    now = utcnow()
    db.add(
        Notification(
            department_id=department_id,
            kind=kind,
            request_id=req.id,
            message=message,
            created_at=now,
            delivered=False,
            attempts=0,
            next_attempt_at=now,
        )
    )


def _history(
    db: Session,
    req: SharingRequest,
    *,
    who: Actor,
    action: str,
    from_state: str | None,
    reason: str | None,
    detail: dict[str, Any],
) -> None:
    """Append one row to the request's history: who did what, from which state to its current one."""
    db.add(
        RequestTransition(
            request_id=req.id,
            at=utcnow(),
            action=action,
            from_state=from_state,
            to_state=req.state,
            actor=who.subject,
            actor_role=who.primary_role,
            actor_department_id=who.department_id,
            reason=reason,
            detail=detail,
        )
    )


def _transition(
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
    _history(db, req, who=who, action=action, from_state=current.value, reason=reason, detail=detail or {})
    _event(db, req, f"request.{target.value}", data={"action": action})
    audit.record(
        db,
        actor=who,
        action=f"sharing_request.{action}",
        object_type="sharing_request",
        object_id=req.id,
        purpose=reason,
        detail={"from": current.value, "to": target.value, **(detail or {})},
    )
    metrics.SHARING_REQUEST_EVENTS.labels(event=action).inc()


def _get(db: Session, who: Principal, request_id: str) -> SharingRequest:
    req = repo.get_request(db, who, request_id)
    if req is None:
        raise NotFound(f"no sharing request {request_id}")
    return req


def _check_version(req: SharingRequest, expected: int | None) -> None:
    if expected is not None and expected != req.version:
        raise Conflict(
            f"the request is at version {req.version}, not {expected}; it was changed meanwhile, reload it",
            extra={"current_version": req.version},
        )


def _require_reason(reason: str | None, what: str) -> str:
    if reason is None or len(reason.strip()) < 2:
        raise Invalid(f"{what} must give a reason", errors=[{"field": "reason", "message": "required"}])
    return reason.strip()


def _sensitive(item: sources.Item) -> bool:
    """Graded sensitive or secret (分级): returned masked unless the grant names it for clear text."""
    return item.sensitivity.lower() in SENSITIVE_GRADES


# ---------------------------------------------------------------------------------------------
# Filing and the platform's review


def file_request(db: Session, *, who: Principal, policy: Policy, data: RequestCreate) -> SharingRequest:
    """File a sharing request for the current published version of a catalogue entry."""
    consumer = who.require_department()
    view = sources.catalogue().get_published_for_sharing(db, resource_id=data.resource_id)
    if view.sharing_type == "not_shared":
        basis = view.legal_basis or "not stated in the catalogue"
        raise Invalid(
            f"resource {view.code} ({view.name}) is not shared (不予共享); legal basis: {basis}",
            errors=[{"field": "resource_id", "message": f"not shared; legal basis: {basis}"}],
            extra={"legal_basis": view.legal_basis},
        )
    sources.catalogue().ensure_shareable(view)
    if view.provider_department_id == consumer:
        raise Invalid(
            "a department does not request its own resource", errors=[{"field": "resource_id", "message": "own resource"}]
        )
    items = {item.name: item for item in sources.items_of(view)}
    errors: list[dict[str, str]] = []
    wanted = list(dict.fromkeys(i.strip() for i in data.items))
    for i, name in enumerate(wanted):
        if name not in items:
            errors.append({"field": f"items[{i}]", "message": f"'{name}' is not an information item of {view.code}"})
    clear = list(dict.fromkeys(i.strip() for i in data.clear_items))
    for i, name in enumerate(clear):
        if name not in wanted:
            errors.append({"field": f"clear_items[{i}]", "message": f"'{name}' is not among the requested items"})
        elif name in items and not _sensitive(items[name]):
            errors.append({"field": f"clear_items[{i}]", "message": f"'{name}' is not sensitive; it is never masked"})
    now_day = today()
    valid_from = data.valid_from or now_day
    if valid_from < now_day:
        errors.append({"field": "valid_from", "message": f"must not be before today ({now_day})"})
    if data.valid_until < valid_from:
        errors.append({"field": "valid_until", "message": "must not be before valid_from"})
    elif (data.valid_until - valid_from).days > policy.max_grant_days:
        errors.append({"field": "valid_until", "message": f"a grant lasts at most {policy.max_grant_days} days"})
    if errors:
        raise Invalid(
            f"the request has {len(errors)} error(s): " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]),
            errors=errors,
        )
    now = utcnow()
    req = SharingRequest(
        consumer_department_id=consumer,
        provider_department_id=view.provider_department_id,
        resource_id=view.resource_id,
        version_id=view.version_id,
        resource_version=view.version,
        resource_code=view.code,
        resource_name=view.name,
        sharing_type=view.sharing_type,
        has_control_parameters=bool(view.control_parameters),
        items=wanted,
        clear_items=clear,
        purpose=data.purpose,
        scenario=data.scenario,
        legal_basis=data.legal_basis,
        valid_from=valid_from,
        valid_until=data.valid_until,
        contact_name=data.contact_name,
        contact_phone=data.contact_phone,
        state=RequestState.SUBMITTED.value,
        filed_by=who.subject,
        filed_at=now,
    )
    db.add(req)
    db.flush()
    _open_step(db, req, step=Step.REVIEW, department_id=None, start=now, days=policy.review_days)
    _history(db, req, who=who, action="file", from_state=None, reason=None, detail={"items": wanted, "version": view.version})
    _event(db, req, "request.submitted", data={"action": "file"})
    _notify(db, None, "request.submitted", req, f"new sharing request for {view.code} {view.name} to review")
    audit.record(
        db,
        actor=who,
        action="sharing_request.file",
        object_type="sharing_request",
        object_id=req.id,
        purpose=data.purpose,
        detail={"resource_id": view.resource_id, "version": view.version, "items": wanted},
    )
    metrics.SHARING_REQUEST_EVENTS.labels(event="file").inc()
    return req


def routes_directly(req: SharingRequest) -> bool:
    """Unconditional, no control parameters, nothing asked in clear: the platform provides directly."""
    return req.sharing_type == "unconditional" and not req.has_control_parameters and not req.clear_items


def accept(
    db: Session, *, who: Principal, policy: Policy, request_id: str, expected_version: int | None = None
) -> SharingRequest:
    """Accept a request after the normative review, and route it (direct provision or the provider)."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    now = utcnow()
    if req.state != RequestState.SUBMITTED:
        raise Conflict(f"the request is {req.state}; only a submitted request can be accepted", extra={"state": req.state})
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    sources.catalogue().ensure_shareable(view)  # to be refused (不予受理) instead
    if routes_directly(req):
        req.route = "direct"
        _transition(db, req, who=who, action="accept_direct")
        _close_step(db, req, outcome="accepted", at=now)
        db.flush()
        _open_step(db, req, step=Step.PROVISION, department_id=None, start=now, days=policy.provision_days)
        if view.has_dataset or view.api is not None:
            _issue_grant(
                db,
                req,
                who=who,
                policy=policy,
                action="provide",
                fields=req.items,
                clear=req.clear_items,
                valid_until=req.valid_until,
                view=view,
            )
    else:
        req.route = "provider"
        _transition(db, req, who=who, action="accept_to_provider")
        _close_step(db, req, outcome="accepted", at=now)
        db.flush()
        _open_step(db, req, step=Step.DECISION, department_id=req.provider_department_id, start=now, days=policy.decision_days)
        _notify(
            db,
            req.provider_department_id,
            "request.to_decide",
            req,
            f"sharing request for {req.resource_code} {req.resource_name} awaits your decision",
        )
    return req


def refuse(db: Session, *, who: Principal, request_id: str, reason: str, expected_version: int | None = None) -> SharingRequest:
    """Refuse to accept a request (不予受理); the reason is required and sent to the consumer."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    reason = _require_reason(reason, "a refusal (不予受理)")
    _transition(db, req, who=who, action="refuse", reason=reason)
    _close_step(db, req, outcome="refused", at=utcnow())
    req.decided_at = utcnow()
    _notify(db, req.consumer_department_id, "request.refused", req, f"request not accepted: {reason}")
    return req


def provide(
    db: Session, *, who: Principal, policy: Policy, request_id: str, expected_version: int | None = None
) -> SharingRequest:
    """Issue the grant of a directly provided request once its data is available."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    if req.state == RequestState.PROVISIONING and not (view.has_dataset or view.api is not None):
        raise Conflict(f"{req.resource_code} has no loaded dataset and no API yet; nothing can be provided")
    _issue_grant(
        db,
        req,
        who=who,
        policy=policy,
        action="provide",
        fields=req.items,
        clear=req.clear_items,
        valid_until=req.valid_until,
        view=view,
    )
    return req


def _issue_grant(
    db: Session,
    req: SharingRequest,
    *,
    who: Actor,
    policy: Policy,
    action: str,
    fields: list[str],
    clear: list[str],
    valid_until: date,
    view: sources.Sharing,
    reason: str | None = None,
) -> Grant:
    sources.catalogue().ensure_shareable(view)  # no grant ever opens an entry holding classified items
    _transition(db, req, who=who, action=action, reason=reason, detail={"fields": fields})
    now = utcnow()
    _close_step(db, req, outcome="granted", at=now)
    items = {item.name: item for item in sources.items_of(view)}
    sensitive = [f for f in fields if f in items and _sensitive(items[f])]
    grant = Grant(
        request_id=req.id,
        consumer_department_id=req.consumer_department_id,
        provider_department_id=req.provider_department_id,
        resource_id=req.resource_id,
        version_id=req.version_id,
        resource_name=req.resource_name,
        fields=fields,
        clear_fields=[f for f in clear if f in fields],
        personal_fields=[f for f in fields if f in items and items[f].personal],
        masked_fields=[f for f in sensitive if f not in clear],
        purpose=req.purpose,
        valid_from=req.valid_from,
        valid_until=valid_until,
        expires_at=_end_of_day(valid_until),
        rate_limit_per_minute=policy.rate_limit_per_minute,
        control_parameters=[
            {"item": p.item, "required": p.required, "max_rows": p.max_rows} for p in sources.control_parameters_of(view)
        ],
        allows_export=bool(view.allows_export),
        state=GrantState.ACTIVE.value,
    )
    db.add(grant)
    db.flush()
    req.grant_id = grant.id
    req.decided_at = now
    _event(db, req, "grant.active", object_type="grant", object_id=grant.id, state=grant.state)
    _notify(
        db,
        req.consumer_department_id,
        "grant.issued",
        req,
        f"access granted to {req.resource_code} {req.resource_name} until {valid_until}",
    )
    audit.record(
        db,
        actor=who,
        action="grant.issue",
        object_type="grant",
        object_id=grant.id,
        purpose=req.purpose,
        detail={"request_id": req.id, "fields": fields, "valid_until": valid_until.isoformat()},
    )
    return grant


# ---------------------------------------------------------------------------------------------
# The provider's decision, withdrawal, extension, escalation


def decide(
    db: Session, *, who: Principal, policy: Policy, request_id: str, data: ProviderDecision, expected_version: int | None = None
) -> SharingRequest:
    """The provider approves (possibly narrowing fields or period) or refuses with a reason."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    if who.department_id != req.provider_department_id:
        raise Forbidden("only the provider department decides on this request")
    if not data.approve:
        reason = _require_reason(data.reason, "a refusal")
        _transition(db, req, who=who, action="reject", reason=reason)
        _close_step(db, req, outcome="refused", at=utcnow())
        req.decided_at = utcnow()
        _notify(db, req.consumer_department_id, "request.rejected", req, f"the provider refused: {reason}")
        return req
    fields = list(dict.fromkeys(data.fields)) if data.fields is not None else list(req.items)
    clear = list(dict.fromkeys(data.clear_fields)) if data.clear_fields is not None else list(req.clear_items)
    errors = [
        {"field": f"fields[{i}]", "message": f"'{f}' was not requested"} for i, f in enumerate(fields) if f not in req.items
    ]
    errors += [
        {"field": f"clear_fields[{i}]", "message": f"'{f}' was not requested in clear"}
        for i, f in enumerate(clear)
        if f not in req.clear_items
    ]
    if not fields:
        errors.append({"field": "fields", "message": "at least one field must be granted"})
    valid_until = data.valid_until or req.valid_until
    if valid_until > req.valid_until:
        errors.append({"field": "valid_until", "message": f"may narrow the period, not extend it past {req.valid_until}"})
    if valid_until < req.valid_from:
        errors.append({"field": "valid_until", "message": f"must not be before {req.valid_from}"})
    if errors:
        raise Invalid("the approval is invalid: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors=errors)
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    _issue_grant(
        db,
        req,
        who=who,
        policy=policy,
        action="approve",
        fields=fields,
        clear=clear,
        valid_until=valid_until,
        view=view,
        reason=data.reason,
    )
    return req


def withdraw(
    db: Session, *, who: Principal, request_id: str, reason: str | None, expected_version: int | None = None
) -> SharingRequest:
    """The consumer withdraws its request before a decision."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    if who.department_id != req.consumer_department_id:
        raise Forbidden("only the consumer department withdraws its request")
    _transition(db, req, who=who, action="withdraw", reason=reason)
    step = _close_step(db, req, outcome="withdrawn", at=utcnow())
    if step is not None and step.department_id is not None:
        _notify(db, step.department_id, "request.withdrawn", req, "the consumer withdrew the request")
    return req


def request_extension(
    db: Session, *, who: Principal, policy: Policy, request_id: str, data: ExtensionCreate, expected_version: int | None = None
) -> SharingRequest:
    """The provider asks the platform for more working days to decide (once per request, bounded)."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    if who.department_id != req.provider_department_id:
        raise Forbidden("only the provider department asks for an extension")
    step = repo.open_step(db, req.id)
    if req.state != RequestState.PROVIDER_REVIEW or step is None or step.step != Step.DECISION:
        raise Conflict(f"the request is {req.state}; an extension is possible only while the provider decides")
    if step.extension_state is not None:
        raise Conflict(f"an extension was already asked for this request ({step.extension_state})")
    if data.days > policy.max_extension_days:
        raise Invalid(
            f"an extension is at most {policy.max_extension_days} working days",
            errors=[{"field": "days", "message": f"at most {policy.max_extension_days}"}],
        )
    step.extension_days, step.extension_reason, step.extension_state = data.days, data.reason.strip(), "pending"
    req.updated_at = utcnow()
    db.flush()
    _record_side_action(db, req, who=who, action="extension_request", reason=data.reason, detail={"days": data.days})
    _notify(db, None, "extension.requested", req, f"extension of {data.days} working days asked: {data.reason}")
    return req


def decide_extension(
    db: Session, *, who: Principal, request_id: str, data: ExtensionDecision, expected_version: int | None = None
) -> SharingRequest:
    """The platform approves (the deadline moves) or refuses (with a reason) a pending extension."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    step = repo.open_step(db, req.id)
    if step is None or step.extension_state != "pending":
        raise Conflict("there is no pending extension on this request")
    if data.approve:
        step.working_days += step.extension_days or 0
        deadline = calendar(db).add_working_days(step.started_at, step.working_days)
        step.due_at, step.due_last_day, step.provisional = deadline.due_at, deadline.last_day, deadline.provisional
        step.overdue = step.overdue and deadline.due_at <= utcnow()
        step.extension_state = "approved"
    else:
        _require_reason(data.reason, "refusing an extension")
        step.extension_state = "refused"
    req.updated_at = utcnow()
    db.flush()
    _record_side_action(
        db,
        req,
        who=who,
        action=f"extension_{step.extension_state}",
        reason=data.reason,
        detail={"days": step.extension_days, "due_at": step.due_at.isoformat()},
    )
    _notify(
        db,
        req.provider_department_id,
        f"extension.{step.extension_state}",
        req,
        f"extension {step.extension_state}; the decision is due {step.due_last_day}",
    )
    return req


def _record_side_action(
    db: Session, req: SharingRequest, *, who: Actor, action: str, reason: str | None, detail: dict[str, Any]
) -> None:
    """Record an action that changes no state (an extension) in the history, the audit and the feed."""
    _history(db, req, who=who, action=action, from_state=req.state, reason=reason, detail=detail)
    _event(db, req, f"request.{action}", data=detail)
    audit.record(
        db,
        actor=who,
        action=f"sharing_request.{action}",
        object_type="sharing_request",
        object_id=req.id,
        purpose=reason,
        detail=detail,
    )
    metrics.SHARING_REQUEST_EVENTS.labels(event=action).inc()


def escalate(
    db: Session, *, who: Principal, policy: Policy, request_id: str, reason: str, expected_version: int | None = None
) -> SharingRequest:
    """The consumer escalates a refused conditional request to the platform for coordination (协调)."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    if who.department_id != req.consumer_department_id:
        raise Forbidden("only the consumer department escalates its request")
    reason = _require_reason(reason, "an escalation")
    _transition(db, req, who=who, action="escalate", reason=reason)
    db.flush()
    _open_step(db, req, step=Step.COORDINATION, department_id=None, start=utcnow(), days=policy.coordination_days)
    _notify(db, None, "request.escalated", req, f"coordination asked: {reason}")
    return req


def coordinate(
    db: Session,
    *,
    who: Principal,
    policy: Policy,
    request_id: str,
    data: CoordinationOutcome,
    expected_version: int | None = None,
) -> SharingRequest:
    """Record the platform's coordination outcome: a grant, or the refusal upheld."""
    req = _get(db, who, request_id)
    _check_version(req, expected_version)
    if data.outcome == "uphold":
        _transition(db, req, who=who, action="coordinate_uphold", reason=data.reason)
        _close_step(db, req, outcome="upheld", at=utcnow())
        req.decided_at = utcnow()
        return req
    fields = list(dict.fromkeys(data.fields)) if data.fields else list(req.items)
    bad = [f for f in fields if f not in req.items]
    if bad:
        raise Invalid(f"fields not requested: {', '.join(bad)}", errors=[{"field": "fields", "message": "not requested"}])
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    _issue_grant(
        db,
        req,
        who=who,
        policy=policy,
        action="coordinate_grant",
        fields=fields,
        clear=req.clear_items,
        valid_until=req.valid_until,
        view=view,
        reason=data.reason,
    )
    return req


def rate(db: Session, *, who: Principal, request_id: str, data: RatingCreate) -> Rating:
    """The consumer rates a fulfilled request (好差评: good / average / poor)."""
    req = _get(db, who, request_id)
    if who.department_id != req.consumer_department_id:
        raise Forbidden("only the consumer department rates its request")
    if req.state not in RATEABLE_STATES:
        raise Conflict(f"the request is {req.state}; only a decided request can be rated")
    if repo.rating_for(db, req.id) is not None:
        raise Conflict("this request was already rated")
    rating = Rating(
        request_id=req.id,
        provider_department_id=req.provider_department_id,
        rating=data.rating,
        comment=data.comment,
        rated_by=who.subject,
        rated_at=utcnow(),
    )
    db.add(rating)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="sharing_request.rate",
        object_type="sharing_request",
        object_id=req.id,
        detail={"rating": data.rating},
    )
    return rating


# ---------------------------------------------------------------------------------------------
# Reading requests with their deadline


def deadline_of(
    db: Session, step: RequestStep | None, now: datetime | None = None, *, cal: WorkCalendar | None = None
) -> DeadlineRead | None:
    """The current deadline of a request: due time, working days left, overdue."""
    if step is None:
        return None
    now = now or utcnow()
    left = (cal or calendar(db)).working_days_left(now, step.due_at)
    return DeadlineRead(
        step=step.step,
        responsible=step.department_id or PLATFORM,
        started_at=step.started_at,
        working_days=step.working_days,
        due_at=step.due_at,
        due_last_day=step.due_last_day,
        provisional=step.provisional,
        working_days_left=left,
        overdue=step.overdue or now >= step.due_at,
        extension_days=step.extension_days,
        extension_state=step.extension_state,
    )


def deadlines_of(db: Session, request_ids: list[str]) -> dict[str, DeadlineRead]:
    """The current deadline of each of these requests that has an open step."""
    steps, cal, at = repo.open_steps_for(db, request_ids), calendar(db), now()
    return {rid: deadline for rid, step in steps.items() if (deadline := deadline_of(db, step, at, cal=cal)) is not None}


def get_request(db: Session, *, who: Principal, request_id: str) -> SharingRequest:
    """A request the caller may see (404 otherwise)."""
    return _get(db, who, request_id)


# ---------------------------------------------------------------------------------------------
# Grants


def get_grant(db: Session, *, who: Principal, grant_id: str) -> Grant:
    grant = repo.get_grant(db, who, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}")
    return grant


def revoke_grant(db: Session, *, who: Principal, grant_id: str, reason: str, expected_version: int | None = None) -> Grant:
    """The provider or the platform revokes a grant, with a reason."""
    grant = get_grant(db, who=who, grant_id=grant_id)
    if not who.is_platform_admin and who.department_id != grant.provider_department_id:
        raise Forbidden("only the provider department or the platform revokes a grant")
    if expected_version is not None and expected_version != grant.version:
        raise Conflict(f"the grant is at version {grant.version}, not {expected_version}; reload it")
    reason = _require_reason(reason, "a revocation")
    if grant.state != GrantState.ACTIVE:
        raise Conflict(f"the grant is already {grant.state}")
    now = utcnow()
    grant.state, grant.revoked_at, grant.revoked_by, grant.revoke_reason = GrantState.REVOKED.value, now, who.subject, reason
    db.flush()
    req = db.get(SharingRequest, grant.request_id)
    assert req is not None
    _event(db, req, "grant.revoked", object_type="grant", object_id=grant.id, state=grant.state, data={"reason": reason})
    _notify(db, grant.consumer_department_id, "grant.revoked", req, f"grant revoked: {reason}")
    audit.record(db, actor=who, action="grant.revoke", object_type="grant", object_id=grant.id, purpose=reason)
    metrics.SHARING_REQUEST_EVENTS.labels(event="grant_revoked").inc()
    return grant


def expire_grants(db: Session, *, now: datetime | None = None) -> int:
    """Mark every active grant past its end date as expired (set-based); returns how many."""
    now = now or utcnow()
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
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(db, actor=audit.SYSTEM, action="grant.expire", object_type="grant", object_id="*", detail={"expired": count})
    return count


# ---------------------------------------------------------------------------------------------
# Data access through a grant


def mask(value: Any) -> Any:
    """Mask a sensitive value, keeping its first third and last quarter (110105********002X)."""
    if value is None:
        return None
    text = str(value)
    n = len(text)
    if n <= 1:
        return "*"
    head = max(1, n // 3)
    tail = n // 4
    return text[:head] + "*" * (n - head - tail) + text[n - tail :] if tail else text[:head] + "*" * (n - head)


def _usable_grant(
    db: Session, who: Principal, grant_id: str, now: datetime, read: dict[tuple[str, str | None], GrantTerms | None] | None = None
) -> GrantTerms:
    """The caller's grant if it can be used now; `read`: grants already read in this transaction."""
    who.require_department()
    if read is None:
        grant = repo.consumer_grant(db, who, grant_id)
    else:
        key = (grant_id, who.department_id)
        if key not in read:
            read[key] = repo.consumer_grant(db, who, grant_id)
        grant = read[key]
    if grant is None:
        raise NotFound(f"no grant {grant_id} held by your department")
    if grant.state == GrantState.REVOKED:
        raise GrantNotUsable(f"the grant was revoked on {grant.revoked_at}: {grant.revoke_reason}", extra={"state": "revoked"})
    if grant.state == GrantState.EXPIRED or now >= grant.expires_at:
        raise GrantNotUsable(f"the grant expired at the end of {grant.valid_until}", extra={"state": "expired"})
    if now < _end_of_day(grant.valid_from) - timedelta(days=1):
        raise GrantNotUsable(f"the grant is valid from {grant.valid_from}", extra={"state": "not_yet_valid"})
    return grant


def _rate_limited(grant: GrantTerms, now: datetime) -> TooManyRequests:
    metrics.DATA_ACCESSES.labels(kind="any", outcome="rate_limited").inc()
    return TooManyRequests(
        f"the grant allows {grant.rate_limit_per_minute} queries a minute; retry in the next minute",
        headers={"Retry-After": str(60 - now.second)},
    )


def _fields(grant: GrantTerms, wanted: list[str] | None) -> list[str]:
    if wanted is None:
        return list(grant.fields)
    wanted = list(dict.fromkeys(wanted))
    extra = [f for f in wanted if f not in grant.fields]
    if extra:
        raise FieldsNotGranted(
            f"fields not granted: {', '.join(extra)}; granted: {', '.join(grant.fields)}",
            errors=[{"field": "fields", "message": f"'{f}' is not granted"} for f in extra],
        )
    if not wanted:
        raise Invalid("ask for at least one field", errors=[{"field": "fields", "message": "empty"}])
    return wanted


def _check_params(grant: GrantTerms, params: dict[str, str]) -> int:
    """Validate control parameters; returns the most rows the query may return."""
    controls = {c["item"]: c for c in grant.control_parameters}
    if not controls:
        raise Invalid(
            "this resource has no control parameters to look up by; use the paged export",
            errors=[{"field": "params", "message": "no control parameters defined"}],
        )
    errors = [{"field": f"params.{k}", "message": f"'{k}' is not a control parameter"} for k in params if k not in controls]
    errors += [{"field": f"params.{k}", "message": "must not be empty"} for k, v in params.items() if not v.strip()]
    missing = [k for k, c in controls.items() if c["required"] and k not in params]
    errors += [{"field": f"params.{k}", "message": "required control parameter is missing"} for k in missing]
    if not params and not missing:
        errors.append({"field": "params", "message": f"give at least one of: {', '.join(controls)}"})
    if errors:
        names = ", ".join(controls)
        raise Invalid(
            "the query's control parameters are wrong ("
            + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            + f"); control parameters: {names}",
            errors=errors,
        )
    limits = [int(controls[k]["max_rows"]) for k in params if controls[k].get("max_rows")]
    return min(limits) if limits else DEFAULT_LOOKUP_ROWS


def _shape(grant: GrantTerms, rows: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """Only the asked fields, sensitive ones masked unless the grant names them for clear text."""
    masked = set(grant.masked_fields) & set(fields)
    out = []
    for row in rows:
        shaped = {f: row.get(f) for f in fields}
        for f in masked:
            shaped[f] = mask(shaped[f])
        out.append(shaped)
    return out


@dataclass(frozen=True)
class PendingAccess:
    """A data query that has run, waiting for its write: its count against the grant's limit, and its trail."""

    grant_id: str
    limit_per_minute: int
    window: datetime  # the minute it counts in
    access: dict[str, Any]  # the DataAccess row
    trail: dict[str, Any]  # the audit record
    kind: str


AccessJournal = GroupCommit[PendingAccess, bool]


def pending_access(
    grant: GrantTerms,
    who: Principal,
    *,
    kind: str,
    params: dict[str, str],
    rows: int,
    fields: list[str],
    use_cause: str | None,
    now: datetime,
) -> PendingAccess:
    personal = set(grant.personal_fields)
    logged = {k: ("sha256:" + audit.subject_ref(v) if k in personal else v) for k, v in params.items()}
    subject = next((v for k, v in params.items() if k in personal), None)
    purpose = (grant.purpose if not use_cause else f"{grant.purpose} / {use_cause}")[:500]
    access = {
        "at": now,
        "grant_id": grant.id,
        "consumer_department_id": grant.consumer_department_id,
        "provider_department_id": grant.provider_department_id,
        "resource_id": grant.resource_id,
        "actor": who.subject,
        "kind": kind,
        "purpose": purpose,
        "parameters": logged,
        "subject_ref": audit.subject_ref(subject) if subject else None,
        "rows": rows,
        "fields": fields,
        "outcome": "success",
    }
    trail = audit.entry(
        actor=who,
        action=f"data.{kind}",
        object_type="grant",
        object_id=grant.id,
        purpose=purpose,
        subject=subject,
        detail={"parameters": logged, "rows": rows, "fields": fields},
    )
    window = now.replace(second=0, microsecond=0)
    return PendingAccess(grant.id, grant.rate_limit_per_minute, window, access, trail, kind)


def settle_accesses(db: Session, items: Sequence[PendingAccess]) -> list[bool]:
    """Count and record many data queries at once (a few statements for the whole batch).

    True where a query is within its grant's per-minute limit: counted, its access row and audit
    record written. False where it is over: nothing written, the caller refuses it with 429.
    """
    groups: dict[tuple[str, datetime], list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault((item.grant_id, item.window), []).append(index)
    allowed = [False] * len(items)
    for (grant_id, window), indexes in sorted(groups.items(), key=lambda g: g[0][1]):
        wanted = len(indexes)
        before = repo.count_uses(db, grant_id, window, wanted) - wanted
        room = max(0, min(wanted, items[indexes[0]].limit_per_minute - before))
        if room < wanted:
            repo.give_back_uses(db, grant_id, wanted - room)
        for index in indexes[:room]:
            allowed[index] = True
    admitted = [item for item, ok in zip(items, allowed, strict=True) if ok]
    if admitted:
        db.connection().execute(insert(table_of(DataAccess)), [item.access for item in admitted])
        audit.append(db, [item.trail for item in admitted])
    return allowed


def _settle_query(db: Session, pending: PendingAccess, grant: GrantTerms, journal: AccessJournal | None) -> None:
    """Count the query and write its trail (with other queries' in one commit, given a journal); 429 over the limit."""
    ok = journal.run(pending) if journal is not None else settle_accesses(db, [pending])[0]
    if not ok:
        raise _rate_limited(grant, pending.access["at"])
    metrics.DATA_ACCESSES.labels(kind=pending.kind, outcome="success").inc()


@dataclass
class _BatchRead:
    """What a batch of lookups has read once in its transaction: grants, and the entries' datasets."""

    grants: dict[tuple[str, str | None], GrantTerms | None] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LookupAsk:
    """A granted lookup waiting for its batch (see :func:`run_lookups`)."""

    who: Principal
    grant_id: str
    params: dict[str, str]
    fields: list[str] | None
    use_cause: str | None


LookupRead = tuple[GrantTerms, list[str], list[dict[str, Any]], PendingAccess]
LookupResult = tuple[GrantTerms, list[str], list[dict[str, Any]]]
Lookups = GroupCommit[LookupAsk, LookupResult | HubError]


def run_lookups(db: Session, asks: Sequence[LookupAsk]) -> list[LookupResult | HubError]:
    """Many granted lookups in one transaction: their checks (each grant and each entry's dataset read
    once), their rows (read ahead in one statement per entry), then their counts and trails together
    (:func:`settle_accesses`). A refused lookup is recorded too, and its error is its own result: one
    department's bad query never touches another's."""
    read = _BatchRead()
    checked: list[_CheckedLookup | HubError] = []
    for ask in asks:
        try:
            checked.append(_check_lookup(db, ask, read))
        except HubError as exc:
            checked.append(exc)
    wanted: dict[str, list[dict[str, str]]] = {}
    for check in checked:
        if not isinstance(check, HubError):
            wanted.setdefault(check.grant.resource_id, []).append(check.ask.params)
    for resource_id, params in wanted.items():
        sources.catalogue().prefetch_rows(db, resource_id=resource_id, params=params, served_read=read.served)
    results: list[LookupRead | HubError] = []
    for check in checked:
        try:
            results.append(check if isinstance(check, HubError) else _lookup_read(db, check, read))
        except HubError as exc:
            results.append(exc)
    found = [(index, result) for index, result in enumerate(results) if not isinstance(result, HubError)]
    allowed = settle_accesses(db, [result[3] for _, result in found])
    for (index, (grant, _, _, pending)), ok in zip(found, allowed, strict=True):
        if not ok:
            results[index] = _rate_limited(grant, pending.access["at"])
    out: list[LookupResult | HubError] = []
    for ask, result in zip(asks, results, strict=True):
        if isinstance(result, HubError):
            if result.status < 500:
                record_refused_access(
                    db, who=ask.who, grant_id=ask.grant_id, kind="lookup", code=result.code, detail=result.detail
                )
            out.append(result)
        else:
            metrics.DATA_ACCESSES.labels(kind="lookup", outcome="success").inc()
            out.append(result[:3])
    return out


async def lookup(ask: LookupAsk, *, lookups: Lookups) -> LookupResult:
    """Look up granted dataset rows by control parameters; only granted fields, sensitive ones masked.
    The lookup waits on the event loop, without a thread, for the next batch of :func:`run_lookups`."""
    result = await lookups.run_async(ask)
    if isinstance(result, HubError):
        raise result
    return result


@dataclass(frozen=True)
class _CheckedLookup:
    """A lookup whose grant, fields and parameters passed: what reading its rows needs."""

    ask: LookupAsk
    grant: GrantTerms
    fields: list[str]
    limit: int
    now: datetime


def _check_lookup(db: Session, ask: LookupAsk, read: _BatchRead) -> _CheckedLookup:
    """The checks of a lookup before its rows: a usable grant of the caller's, granted fields, valid parameters."""
    now = utcnow()
    try:
        grant = _usable_grant(db, ask.who, ask.grant_id, now, read.grants)
        chosen = _fields(grant, ask.fields)
        limit = _check_params(grant, {k.strip(): v.strip() for k, v in ask.params.items()})
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="lookup", outcome=exc.code).inc()
        raise
    return _CheckedLookup(ask, grant, chosen, limit, now)


def _lookup_read(db: Session, check: _CheckedLookup, read: _BatchRead) -> LookupRead:
    """The rows of a checked lookup, shaped; and the access waiting to be counted."""
    grant, ask = check.grant, check.ask
    rows = sources.catalogue().lookup_rows(
        db, resource_id=grant.resource_id, params=ask.params, fields=check.fields, limit=check.limit, served_read=read.served
    )
    shaped = _shape(grant, rows, check.fields)
    pending = pending_access(
        grant, ask.who, kind="lookup", params=ask.params, rows=len(shaped), fields=check.fields, use_cause=ask.use_cause,
        now=check.now,
    )  # fmt: skip
    return grant, check.fields, shaped, pending


def export(
    db: Session,
    *,
    who: Principal,
    grant_id: str,
    fields: list[str] | None,
    cursor: str | None,
    limit: int,
    use_cause: str | None = None,
    journal: AccessJournal | None = None,
) -> tuple[GrantTerms, list[str], list[dict[str, Any]], str | None]:
    """A page of the granted dataset, where the catalogue entry allows export."""
    now = utcnow()
    try:
        grant = _usable_grant(db, who, grant_id, now)
        if not grant.allows_export:
            raise Forbidden("this resource is shared by lookup on its control parameters only; export is not allowed")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise Invalid(f"limit must be 1 to {MAX_EXPORT_PAGE}", errors=[{"field": "limit", "message": "out of range"}])
        chosen = _fields(grant, fields)
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="export", outcome=exc.code).inc()
        raise
    rows, next_cursor = sources.catalogue().export_rows(
        db, resource_id=grant.resource_id, fields=chosen, cursor=cursor, limit=limit
    )
    shaped = _shape(grant, rows, chosen)
    pending = pending_access(
        grant, who, kind="export", params={"cursor": cursor or ""}, rows=len(shaped), fields=chosen, use_cause=use_cause, now=now
    )
    _settle_query(db, pending, grant, journal)
    return grant, chosen, shaped, next_cursor


def call_api(
    db: Session,
    *,
    who: Principal,
    grant_id: str,
    params: dict[str, str],
    fields: list[str] | None,
    use_cause: str | None = None,
    journal: AccessJournal | None = None,
) -> tuple[GrantTerms, list[str], list[dict[str, Any]]]:
    """Query the provider's API through the hub; the answer is filtered to the granted fields and masked."""
    from exchange import upstream

    now = utcnow()
    try:
        grant = _usable_grant(db, who, grant_id, now)
        chosen = _fields(grant, fields)
        if grant.control_parameters:
            _check_params(grant, params)
        view = sources.catalogue().get_version_for_sharing(db, version_id=grant.version_id)
        sources.catalogue().ensure_shareable(view)
        if view.api is None:
            raise Conflict("this resource has no API distribution; use the lookup")
        # Checked before the call too: the provider's service is what the limit protects.
        if repo.current_use(db, grant.id, now.replace(second=0, microsecond=0)) >= grant.rate_limit_per_minute:
            raise _rate_limited(grant, now)
        rows = upstream.call(view.api, params)
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="api", outcome=exc.code).inc()
        raise
    shaped = _shape(grant, rows, chosen)
    pending = pending_access(grant, who, kind="api", params=params, rows=len(shaped), fields=chosen, use_cause=use_cause, now=now)
    _settle_query(db, pending, grant, journal)  # counted after the call: no write waits on the provider
    return grant, chosen, shaped


@dataclass(frozen=True)
class SubjectAccess:
    """One query of records about a holder, as the holder reads it: which department, which resource, why."""

    access: DataAccess
    consumer_name: str
    resource_name: str


def accesses_about_holder(
    db: Session, *, who: Principal, cursor: str | None, limit: int
) -> tuple[list[SubjectAccess], str | None]:
    """A citizen or enterprise sees which departments queried records about them, and why (newest first)."""
    if who.holder_code is None:
        raise Forbidden("this list is for citizens and enterprises (holders)")
    rows, next_cursor = repo.accesses_about(db, subject_ref=audit.subject_ref(who.holder_code), cursor=cursor, limit=limit)
    resources = repo.resource_names(db, {r.grant_id for r in rows})
    departments = repo.department_names(db, {r.consumer_department_id for r in rows})
    items = [
        SubjectAccess(
            access=r,
            consumer_name=departments.get(r.consumer_department_id, r.consumer_department_id),
            resource_name=resources.get(r.grant_id, r.resource_id),
        )
        for r in rows
    ]
    return items, next_cursor


# ---------------------------------------------------------------------------------------------
# Supervision: overdue sweep, calendar recompute, webhooks, report


def sweep_overdue(db: Session, *, now: datetime | None = None) -> int:
    """Mark every open step past its deadline overdue, record the breach and notify (a few SQL statements)."""
    now = now or utcnow()
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
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        audit.record(
            db,
            actor=audit.SYSTEM,
            action="sharing_request.overdue_sweep",
            object_type="sharing_request",
            object_id="*",
            detail={"overdue": count},
        )
        metrics.SHARING_REQUEST_EVENTS.labels(event="overdue").inc(count)
    return count


def recompute_deadlines(db: Session, year: int) -> int:
    """After a year's calendar is loaded: recompute every open deadline that is provisional or reaches it."""
    cal = calendar(db)
    first = date(year, 1, 1)
    now = utcnow()
    steps = db.scalars(
        select(RequestStep).where(
            RequestStep.open.is_(True),
            (RequestStep.provisional.is_(True)) | (RequestStep.due_last_day >= first),
        )
    )
    changed = 0
    for step in steps:
        deadline = cal.add_working_days(step.started_at, step.working_days)
        if (deadline.due_at, deadline.provisional) != (step.due_at, step.provisional):
            step.due_at, step.due_last_day, step.provisional = deadline.due_at, deadline.last_day, deadline.provisional
            if step.overdue and deadline.due_at > now:
                step.overdue = False
            changed += 1
    db.flush()
    return changed


def set_webhook(db: Session, *, who: Principal, url: str, secret: str) -> Webhook:
    """Set where the caller's department receives its notifications (signed with `secret`)."""
    department = who.require_department()
    hook = db.get(Webhook, department)
    if hook is None:
        hook = Webhook(department_id=department, url=url, secret=secret)
        db.add(hook)
    else:
        hook.url, hook.secret = url, secret
    db.flush()
    audit.record(db, actor=who, action="webhook.set", object_type="webhook", object_id=department, detail={"url": url})
    return hook


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header value of a webhook delivery: HMAC-SHA256 over "<timestamp>.<body>"."""
    import hmac

    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def report(db: Session, *, start: date, end: date) -> Report:
    """Each department's on-time rate, average handling time (working days) and ratings for [start, end]."""
    if end < start:
        raise Invalid("end must not be before start", errors=[{"field": "end", "message": "before start"}])
    lo, hi = _end_of_day(start) - timedelta(days=1), _end_of_day(end)
    cal = calendar(db)
    stats: dict[str, dict[str, Any]] = {}

    def entry(key: str) -> dict[str, Any]:
        return stats.setdefault(key, {"done": 0, "on_time": 0, "late_open": 0, "days": [], "ratings": {}})

    for step in repo.steps_in_period(db, lo, hi):
        e = entry(step.department_id or PLATFORM)
        if step.completed_at is None:
            e["late_open"] += 1 if step.due_at < utcnow() else 0
            continue
        e["done"] += 1
        e["on_time"] += 1 if step.completed_at <= step.due_at else 0
        e["days"].append(
            cal.working_days_between(step.started_at.astimezone(SHANGHAI).date(), step.completed_at.astimezone(SHANGHAI).date())
        )
    for rating in repo.ratings_in_period(db, lo, hi):
        ratings = entry(rating.provider_department_id)["ratings"]
        ratings[rating.rating] = ratings.get(rating.rating, 0) + 1
    names = {PLATFORM: "平台管理部门"} | {
        d.id: d.name for d in db.scalars(select(Department).where(Department.id.in_([k for k in stats if k != PLATFORM])))
    }
    departments = []
    for key, e in sorted(stats.items()):
        judged = e["done"] + e["late_open"]
        departments.append(
            DepartmentReport(
                department_id=key,
                department_name=names.get(key, key),
                steps_completed=e["done"],
                steps_on_time=e["on_time"],
                steps_overdue_open=e["late_open"],
                on_time_rate=round(e["on_time"] / judged, 4) if judged else None,
                average_working_days=round(sum(e["days"]) / len(e["days"]), 2) if e["days"] else None,
                ratings=e["ratings"],
            )
        )
    return Report(start=start, end=end, departments=departments)


def record_refused_access(db: Session, *, who: Principal, grant_id: str, kind: str, code: str, detail: str) -> None:
    """Record a refused query: in a lookup batch's transaction, or in a transaction of its own after a
    refused request's was rolled back."""
    grant = db.get(Grant, grant_id)
    if grant is not None and grant.consumer_department_id == who.department_id:
        db.add(
            DataAccess(
                at=utcnow(),
                grant_id=grant.id,
                consumer_department_id=grant.consumer_department_id,
                provider_department_id=grant.provider_department_id,
                resource_id=grant.resource_id,
                actor=who.subject,
                kind=kind,
                purpose=grant.purpose,
                parameters={},
                subject_ref=None,
                rows=0,
                fields=[],
                outcome=code,
            )
        )
    audit.record(
        db,
        actor=who,
        action=f"data.{kind}",
        object_type="grant",
        object_id=grant_id,
        outcome=code,
        detail={"refused": detail[:500]},
    )


def publish_gauges(db: Session, *, now: datetime | None = None) -> dict[str, Any]:
    """Set the exchange's state gauges (requests by state, overdue by department, on-time rate, active grants)."""
    from sqlalchemy import func

    now = now or utcnow()
    by_state = {state.value: 0 for state in RequestState}
    by_state.update(
        {str(k): int(v) for k, v in db.execute(select(SharingRequest.state, func.count()).group_by(SharingRequest.state))}
    )
    for state, count in by_state.items():
        metrics.SHARING_REQUESTS_BY_STATE.labels(state=state).set(count)
    overdue = {
        str(k or PLATFORM): int(v)
        for k, v in db.execute(
            select(RequestStep.department_id, func.count())
            .where(RequestStep.open.is_(True), RequestStep.overdue.is_(True))
            .group_by(RequestStep.department_id)
        )
    }
    metrics.OVERDUE_BY_DEPARTMENT.clear()
    for department, count in overdue.items():
        metrics.OVERDUE_BY_DEPARTMENT.labels(department=department).set(count)
    done, on_time = db.execute(
        select(
            func.count(), func.coalesce(func.sum(case((RequestStep.completed_at <= RequestStep.due_at, 1), else_=0)), 0)
        ).where(RequestStep.completed_at >= now - timedelta(days=30))
    ).one()
    rate = (int(on_time) / int(done)) if done else 1.0
    metrics.ON_TIME_RATE.set(rate)
    active = int(db.scalar(select(func.count()).select_from(Grant).where(Grant.state == GrantState.ACTIVE.value)) or 0)
    metrics.GRANTS_ACTIVE.set(active)
    return {"by_state": by_state, "overdue": overdue, "on_time_rate": rate, "grants_active": active}


# ---------------------------------------------------------------------------------------------
# The exchange as the console sees it (issue 16: the console is a thin client and imports this
# module only). What a viewer may do on a request comes from the state machine and the parties
# above; the API enforces the same rules when the action is sent. Kept as one block at the end;
# a name is listed even when imported above, for when the imports move.

from exchange.models import OPEN_STATES  # noqa: E402
from exchange.models import RequestState as RequestState  # noqa: E402
from exchange.models import SharingRequest as SharingRequest  # noqa: E402, F811
from exchange.repository import history as history  # noqa: E402
from exchange.repository import list_accesses as list_accesses  # noqa: E402
from exchange.repository import list_requests as list_requests  # noqa: E402
from exchange.repository import rating_for as rating_for  # noqa: E402
from exchange.schemas import CoordinationOutcome as CoordinationOutcome  # noqa: E402, F811
from exchange.schemas import DeadlineRead as DeadlineRead  # noqa: E402, F811
from exchange.schemas import ExtensionCreate as ExtensionCreate  # noqa: E402, F811
from exchange.schemas import ExtensionDecision as ExtensionDecision  # noqa: E402, F811
from exchange.schemas import ProviderDecision as ProviderDecision  # noqa: E402, F811
from exchange.schemas import RatingCreate as RatingCreate  # noqa: E402, F811
from exchange.schemas import Reason as Reason  # noqa: E402
from exchange.schemas import RequestCreate as RequestCreate  # noqa: E402, F811
from ops.auth import STAFF_ROLES, Principal  # noqa: E402, F811


def available_actions(who: Principal, req: SharingRequest, *, deadline: DeadlineRead | None, rated: bool) -> dict[str, bool]:
    """Which actions `who` may take on `req` now: the forms the console shows. Each action checks again when sent.

    `deadline` is the request's open step (`deadlines_of`); `rated` whether its consumer rated it already."""

    def possible(action: str) -> bool:
        return RequestState(req.state) in TRANSITIONS[action][0]

    admin = who.is_platform_admin
    staff = who.has(*STAFF_ROLES)
    provider = staff and who.department_id == req.provider_department_id
    consumer = staff and who.department_id == req.consumer_department_id
    # The extension of the provider's decision step: None when none was asked yet.
    extension = deadline.extension_state if deadline is not None and deadline.step == "decision" else "no decision step"
    return {
        "accept": admin and possible("accept_to_provider"),
        "provide": admin and possible("provide"),
        "extension_decision": admin and extension == "pending",
        "coordinate": admin and possible("coordinate_grant"),
        "decide": provider and possible("approve"),
        "extension": provider and extension is None,
        "withdraw": consumer and RequestState(req.state) in OPEN_STATES,
        "escalate": consumer and possible("escalate"),
        "rate": consumer and not rated and RequestState(req.state) in RATEABLE_STATES,
    }
