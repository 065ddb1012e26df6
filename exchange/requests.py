"""Sharing requests (共享申请): filing, the platform's review, the provider's decision, withdrawal,
extension, escalation and coordination, rating, and reading a request with its deadline (seed 002 §六(一)).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.grants import issue_grant
from exchange.models import OPEN_STATES, RequestState, RequestStep, SharingRequest, Step
from exchange.schemas import (
    CoordinationOutcome,
    ExtensionCreate,
    ExtensionDecision,
    ProviderDecision,
    RatingCreate,
    RequestCreate,
    RequestDeadlineRead,
)
from exchange.states import (
    PLATFORM,
    RATEABLE_STATES,
    TRANSITIONS,
    Policy,
    append_history,
    close_step,
    is_sensitive,
    notify,
    now,
    open_step,
    publish_event,
    record_action,
    require_reason,
    step_values,
    today,
    transition,
)
from ops import audit, metrics
from ops.audit import Actor
from ops.auth import STAFF_ROLES, Principal
from ops.db import check_version, new_id, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.ratings import service as ratings
from ops.workdays.service import WorkCalendar, calendar


def _get(
    db: Session,
    who: Principal,
    request_id: str,
    expected_version: int | None = None,
    *,
    only: tuple[Literal["consumer", "provider"], str] | None = None,
) -> SharingRequest:
    """A request the caller may see (404 otherwise), at the version the caller last read when it says which
    (412 otherwise). `only`: a step only the consumer's or the provider's department takes, and what it
    does (403 to anyone else)."""
    req = repo.get_request(db, who, request_id)
    if req is None:
        raise NotFound(f"no sharing request {request_id}")
    check_version(expected_version, req.version, what="request")
    if only is not None:
        side, step = only
        if who.department_id != (req.consumer_department_id if side == "consumer" else req.provider_department_id):
            raise Forbidden(f"only the {side} department {step}")
    return req


# ---------------------------------------------------------------------------------------------
# Filing and the platform's review


@dataclass(frozen=True)
class OpenedStep:
    """A request's open step as it was written (what its deadline is read from)."""

    step: str
    department_id: str | None
    started_at: datetime
    working_days: int
    due_at: datetime
    due_last_day: date
    provisional: bool
    overdue: bool = False
    extension_days: int | None = None
    extension_state: str | None = None


OPENED_STEP_FIELDS = ("step", "department_id", "started_at", "working_days", "due_at", "due_last_day", "provisional")


@dataclass(frozen=True)
class Filed:
    """A request just filed: its row as written (the columns of `SharingRequest`) and its open review step."""

    row: dict[str, Any]
    step: OpenedStep

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def state(self) -> str:
        return str(self.row["state"])

    @property
    def resource_id(self) -> str:
        return str(self.row["resource_id"])

    @property
    def resource_name(self) -> str:
        return str(self.row["resource_name"])

    @property
    def consumer_department_id(self) -> str:
        return str(self.row["consumer_department_id"])

    @property
    def provider_department_id(self) -> str:
        return str(self.row["provider_department_id"])

    @property
    def version(self) -> int:
        return int(self.row["version"])


def file_request(db: Session, *, who: Principal, policy: Policy, data: RequestCreate) -> Filed:
    """File a sharing request for the current published version of a catalogue entry: the request, its review
    step (deadline in working days), its history, the departments' events, the supervision outbox, the
    platform's notification and the audit record, all in the caller's transaction."""
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
    sources.region_scope(db, view, consumer)  # 数据回流: a consumer whose division is unknown is told now
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
        elif name in items and not is_sensitive(items[name]):
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
    # The request and everything its filing records are written with Core inserts (one statement each,
    # no ORM unit of work): the request first, since what follows refers to it.
    row: dict[str, Any] = {
        "id": new_id(),
        "consumer_department_id": consumer,
        "provider_department_id": view.provider_department_id,
        "resource_id": view.resource_id,
        "version_id": view.version_id,
        "resource_version": view.version,
        "resource_code": view.code,
        "resource_name": view.name,
        "sharing_type": view.sharing_type,
        "has_control_parameters": bool(view.control_parameters),
        "route": None,
        "items": wanted,
        "clear_items": clear,
        "purpose": data.purpose,
        "scenario": data.scenario,
        "legal_basis": data.legal_basis,
        "valid_from": valid_from,
        "valid_until": data.valid_until,
        "contact_name": data.contact_name,
        "contact_phone": data.contact_phone,
        "state": RequestState.SUBMITTED.value,
        "filed_by": who.subject,
        "filed_at": now,
        "decided_at": None,
        "reason": None,
        "grant_id": None,
        "created_at": now,
        "updated_at": now,
        "version": 1,
    }
    repo.insert_rows(db, SharingRequest, [row])
    step = step_values(db, row["id"], step=Step.REVIEW, department_id=None, start=now, days=policy.review_days)
    repo.insert_rows(db, RequestStep, [step])
    req = Filed(row, OpenedStep(**{k: step[k] for k in OPENED_STEP_FIELDS}))
    append_history(
        db, req, who=who, action="file", from_state=None, reason=None, detail={"items": wanted, "version": view.version}
    )
    publish_event(db, req, "request.submitted", data={"action": "file"})
    notify(db, None, "request.submitted", req, f"new sharing request for {view.code} {view.name} to review")
    trail = audit.entry(
        actor=who,
        action="sharing_request.file",
        object_type="sharing_request",
        object_id=req.id,
        purpose=data.purpose,
        detail={"resource_id": view.resource_id, "version": view.version, "items": wanted},
    )
    audit.append(db, [trail])
    metrics.SHARING_REQUEST_EVENTS.labels(event="file").inc()
    return req


def routes_directly(req: SharingRequest) -> bool:
    """Unconditional, no control parameters, nothing asked in clear: the platform provides directly."""
    return req.sharing_type == "unconditional" and not req.has_control_parameters and not req.clear_items


def accept(
    db: Session, *, who: Principal, policy: Policy, request_id: str, expected_version: int | None = None
) -> SharingRequest:
    """Accept a request after the normative review, and route it (direct provision or the provider)."""
    req = _get(db, who, request_id, expected_version)
    now = utcnow()
    if req.state != RequestState.SUBMITTED:
        raise Conflict(f"the request is {req.state}; only a submitted request can be accepted", extra={"state": req.state})
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    sources.catalogue().ensure_shareable(view)  # to be refused (不予受理) instead
    if routes_directly(req):
        req.route = "direct"
        transition(db, req, who=who, action="accept_direct")
        close_step(db, req, outcome="accepted", at=now)
        db.flush()
        open_step(db, req, step=Step.PROVISION, department_id=None, start=now, days=policy.provision_days)
        if view.has_dataset or view.api is not None:
            _provide_grant(db, req, who=who, policy=policy, view=view)
    else:
        req.route = "provider"
        transition(db, req, who=who, action="accept_to_provider")
        close_step(db, req, outcome="accepted", at=now)
        db.flush()
        open_step(db, req, step=Step.DECISION, department_id=req.provider_department_id, start=now, days=policy.decision_days)
        notify(
            db,
            req.provider_department_id,
            "request.to_decide",
            req,
            f"sharing request for {req.resource_code} {req.resource_name} awaits your decision",
        )
    return req


def refuse(db: Session, *, who: Principal, request_id: str, reason: str, expected_version: int | None = None) -> SharingRequest:
    """Refuse to accept a request (不予受理); the reason is required and sent to the consumer."""
    req = _get(db, who, request_id, expected_version)
    reason = require_reason(reason, "a refusal (不予受理)")
    transition(db, req, who=who, action="refuse", reason=reason)
    close_step(db, req, outcome="refused", at=utcnow())
    req.decided_at = utcnow()
    notify(db, req.consumer_department_id, "request.refused", req, f"request not accepted: {reason}")
    return req


def provide(
    db: Session, *, who: Principal, policy: Policy, request_id: str, expected_version: int | None = None
) -> SharingRequest:
    """Issue the grant of a directly provided request once its data is available."""
    req = _get(db, who, request_id, expected_version)
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    if req.state == RequestState.PROVISIONING and not (view.has_dataset or view.api is not None):
        raise Conflict(f"{req.resource_code} has no loaded dataset and no API yet; nothing can be provided")
    _provide_grant(db, req, who=who, policy=policy, view=view)
    return req


def _provide_grant(db: Session, req: SharingRequest, *, who: Principal, policy: Policy, view: sources.Sharing) -> None:
    """The platform provides a directly routed request: a grant of what was asked, as asked."""
    issue_grant(
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


# ---------------------------------------------------------------------------------------------
# The provider's decision, withdrawal, extension, escalation


def decide(
    db: Session, *, who: Principal, policy: Policy, request_id: str, data: ProviderDecision, expected_version: int | None = None
) -> SharingRequest:
    """The provider approves (possibly narrowing fields or period) or refuses with a reason."""
    req = _get(db, who, request_id, expected_version, only=("provider", "decides on this request"))
    if not data.approve:
        reason = require_reason(data.reason, "a refusal")
        transition(db, req, who=who, action="reject", reason=reason)
        close_step(db, req, outcome="refused", at=utcnow())
        req.decided_at = utcnow()
        notify(db, req.consumer_department_id, "request.rejected", req, f"the provider refused: {reason}")
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
    issue_grant(
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
    req = _get(db, who, request_id, expected_version, only=("consumer", "withdraws its request"))
    transition(db, req, who=who, action="withdraw", reason=reason)
    step = close_step(db, req, outcome="withdrawn", at=utcnow())
    if step is not None and step.department_id is not None:
        notify(db, step.department_id, "request.withdrawn", req, "the consumer withdrew the request")
    return req


def request_extension(
    db: Session, *, who: Principal, policy: Policy, request_id: str, data: ExtensionCreate, expected_version: int | None = None
) -> SharingRequest:
    """The provider asks the platform for more working days to decide (once per request, bounded)."""
    req = _get(db, who, request_id, expected_version, only=("provider", "asks for an extension"))
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
    notify(db, None, "extension.requested", req, f"extension of {data.days} working days asked: {data.reason}")
    return req


def decide_extension(
    db: Session, *, who: Principal, request_id: str, data: ExtensionDecision, expected_version: int | None = None
) -> SharingRequest:
    """The platform approves (the deadline moves) or refuses (with a reason) a pending extension."""
    req = _get(db, who, request_id, expected_version)
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
        require_reason(data.reason, "refusing an extension")
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
    notify(
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
    record_action(
        db,
        req,
        who=who,
        action=action,
        from_state=req.state,
        reason=reason,
        detail=detail,
        event=(f"request.{action}", detail),
        audited=detail,
    )


def escalate(
    db: Session, *, who: Principal, policy: Policy, request_id: str, reason: str, expected_version: int | None = None
) -> SharingRequest:
    """The consumer escalates a refused conditional request to the platform for coordination (协调)."""
    req = _get(db, who, request_id, expected_version, only=("consumer", "escalates its request"))
    reason = require_reason(reason, "an escalation")
    transition(db, req, who=who, action="escalate", reason=reason)
    db.flush()
    open_step(db, req, step=Step.COORDINATION, department_id=None, start=utcnow(), days=policy.coordination_days)
    notify(db, None, "request.escalated", req, f"coordination asked: {reason}")
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
    req = _get(db, who, request_id, expected_version)
    if data.outcome == "uphold":
        transition(db, req, who=who, action="coordinate_uphold", reason=data.reason)
        close_step(db, req, outcome="upheld", at=utcnow())
        req.decided_at = utcnow()
        return req
    fields = list(dict.fromkeys(data.fields)) if data.fields else list(req.items)
    bad = [f for f in fields if f not in req.items]
    if bad:
        raise Invalid(f"fields not requested: {', '.join(bad)}", errors=[{"field": "fields", "message": "not requested"}])
    view = sources.catalogue().get_version_for_sharing(db, version_id=req.version_id)
    issue_grant(
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


# 好差评 of a decided request, on the hub's one rating scale (ops.ratings: 1–5; poor opens a rectification).
RATING_SCORES = {"good": 5, "average": 3, "poor": 1}


@dataclass(frozen=True)
class RequestRating:
    """A decided request's rating as the exchange shows it (good / average / poor)."""

    request_id: str
    rating: str
    comment: str | None
    rated_by: str
    rated_at: datetime


def rating_word(score: int) -> str:
    return "good" if score >= 4 else "average" if score == 3 else "poor"


def decision_event(db: Session, *, who: Principal, request_id: str) -> ratings.RatableEvent:
    """The decision of a request, as the consumer may rate it (a rating token names it)."""
    req = _get(db, who, request_id, only=("consumer", "rates its request"))
    if req.state not in RATEABLE_STATES:
        raise Conflict(f"the request is {req.state}; only a decided request can be rated")
    return ratings.RatableEvent(
        kind="sharing_request.decision",
        event_id=req.id,
        department_id=req.provider_department_id,
        rater_ref=req.consumer_department_id,
    )


def rate(
    db: Session,
    *,
    who: Principal,
    request_id: str,
    data: RatingCreate,
    rectification_days: int = ratings.DEFAULT_RECTIFICATION_DAYS,
) -> RequestRating:
    """The consumer rates a fulfilled request (好差评: good / average / poor), once; poor opens a rectification."""
    event = decision_event(db, who=who, request_id=request_id)
    if rating_for(db, request_id) is not None:
        raise Conflict("this request was already rated")
    stored = ratings.record(
        db,
        who=who,
        event=event,
        score=RATING_SCORES[data.rating],
        comment=data.comment,
        working_days=rectification_days,
        at=utcnow(),
    )
    audit.record(
        db,
        actor=who,
        action="sharing_request.rate",
        object_type="sharing_request",
        object_id=request_id,
        detail={"rating": data.rating},
    )
    return RequestRating(request_id, data.rating, stored.comment, stored.rated_by, stored.rated_at)


def rating_for(db: Session, request_id: str) -> RequestRating | None:
    """The request's rating, if the consumer gave one."""
    stored = ratings.rating_of_event(db, "sharing_request.decision", request_id)
    if stored is None:
        return None
    return RequestRating(request_id, rating_word(stored.score), stored.comment, stored.rated_by, stored.rated_at)


# ---------------------------------------------------------------------------------------------
# Reading requests with their deadline


class StepFacts(Protocol):
    """What a request's deadline is read from: a `RequestStep`, or an `OpenedStep` just written."""

    @property
    def step(self) -> str: ...
    @property
    def department_id(self) -> str | None: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def working_days(self) -> int: ...
    @property
    def due_at(self) -> datetime: ...
    @property
    def due_last_day(self) -> date: ...
    @property
    def provisional(self) -> bool: ...
    @property
    def overdue(self) -> bool: ...
    @property
    def extension_days(self) -> int | None: ...
    @property
    def extension_state(self) -> str | None: ...


def deadline_of(
    db: Session, step: StepFacts | None, now: datetime | None = None, *, cal: WorkCalendar | None = None
) -> RequestDeadlineRead | None:
    """The current deadline of a request: due time, working days left, overdue."""
    if step is None:
        return None
    now = now or utcnow()
    left = (cal or calendar(db)).working_days_left(now, step.due_at)
    return RequestDeadlineRead(
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


def deadlines_of(db: Session, request_ids: list[str]) -> dict[str, RequestDeadlineRead]:
    """The current deadline of each of these requests that has an open step."""
    steps, cal, at = repo.open_steps_for(db, request_ids), calendar(db), now()
    return {rid: deadline for rid, step in steps.items() if (deadline := deadline_of(db, step, at, cal=cal)) is not None}


def get_request(db: Session, *, who: Principal, request_id: str) -> SharingRequest:
    """A request the caller may see (404 otherwise)."""
    return _get(db, who, request_id)


def available_actions(
    who: Principal, req: SharingRequest, *, deadline: RequestDeadlineRead | None, rated: bool
) -> dict[str, bool]:
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
