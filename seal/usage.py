"""Seal use under control (用印管理): who may use a seal and who may approve its uses (用印授权, granted by
the seal's department administrator, per subject: a client, a person, or a hub system), use requests
and their approval by a second person (用印审批), and the check every sealing path makes before it signs.

A subject is a client id (``gh_…``), a person's id, or the name of one of the hub's own systems
(``certhub``, which seals the PDF copies of the certificates it issues). Client ids and person ids do not
overlap; a hub system acts only as a ``system`` subject.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor, SystemActor
from ops.auth import Principal, Role
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.identity import repository as identity_repository
from seal import caches, repository
from seal.models import Seal, SealAuthorisation, SealStatus, SealUse, SealUseRequest

SUBJECT_KINDS = ("client", "person", "system")
# The hub's own systems that use seals, each under its name as a `system` subject.
CERTHUB = "certhub"
HUB_SYSTEMS = (CERTHUB,)
MAX_APPROVAL_HOURS = 168


class SealUseRefused(Forbidden):
    """A use, request or approval refused because the caller is not authorised for the seal; the endpoint
    records it (``ops.audit.record_refusal``) with :attr:`record` before answering 403."""

    def __init__(self, detail: str, *, record: Callable[[Session], object]) -> None:
        super().__init__(detail)
        self.record = record


def kinds_of(actor: Actor) -> tuple[str, ...]:
    """The subject kinds an actor may be authorised as: the hub's systems as systems, callers as clients or persons."""
    return ("system",) if isinstance(actor, SystemActor) else ("client", "person")


def _write_refusal(db: Session, *, actor: Actor, seal_id: str, action: str, reason: str, detail: dict[str, Any]) -> None:
    audit.record(
        db, actor=actor, action=action, object_type="seal", object_id=seal_id, outcome="refused",
        detail={"reason": reason, **detail},
    )  # fmt: skip


def _refuse(actor: Actor, seal: Seal, *, action: str, reason: str, **detail: Any) -> SealUseRefused:
    return SealUseRefused(
        reason, record=partial(_write_refusal, actor=actor, seal_id=seal.id, action=action, reason=reason, detail=detail)
    )


def authorisation_of(db: Session, *, seal: Seal, actor: Actor) -> SealAuthorisation | None:
    """The actor's standing authorisation for the seal, if any."""
    return repository.standing_authorisation(db, seal_id=seal.id, subject=actor.subject, kinds=kinds_of(actor))


# ---------------------------------------------------------------- authorisations (the department administrator)


def _administered_seal(db: Session, who: Principal, seal_id: str) -> Seal:
    """A seal of the caller's department that the caller administers (its department administrator)."""
    seal = repository.get_seal(db, who, seal_id)
    if seal is None:
        raise NotFound(f"seal {seal_id} not found")
    if not (who.has(Role.DEPARTMENT_ADMIN) and who.department_id == seal.department_id):
        raise Forbidden("only the seal's department administrator decides who may use it and how")
    return seal


def authorise(
    db: Session,
    *,
    who: Principal,
    seal_id: str,
    subject: str,
    subject_kind: str,
    may_use: bool,
    may_approve: bool,
    note: str | None,
) -> SealAuthorisation:
    """Authorise a person or system to use the seal and/or approve its uses; replaces a standing authorisation
    of the same subject."""
    seal = _administered_seal(db, who, seal_id)
    subject = subject.strip()
    if not 1 <= len(subject) <= 128:
        raise Invalid(
            "subject must be 1..128 characters: a client id, a person's id or a hub system",
            errors=[{"field": "subject", "message": "required"}],
        )
    if note is not None and len(note) > 500:
        raise Invalid("note must be at most 500 characters", errors=[{"field": "note", "message": "too long"}])
    if subject_kind not in SUBJECT_KINDS:
        raise Invalid(
            f"subject_kind must be one of {', '.join(SUBJECT_KINDS)}", errors=[{"field": "subject_kind", "message": "unknown"}]
        )
    if not may_use and not may_approve:
        raise Invalid(
            "an authorisation lets its subject use the seal, approve its uses, or both",
            errors=[{"field": "may_use", "message": "nothing granted"}],
        )
    if subject_kind == "client":
        client = identity_repository.client_by_client_id(db, subject)
        if client is None or client.revoked_at is not None:
            raise Invalid(f"there is no active client {subject}", errors=[{"field": "subject", "message": "unknown client"}])
        if client.department_id != seal.department_id:
            raise Invalid(
                f"client {subject} acts for another department; a seal is used by its own department's systems",
                errors=[{"field": "subject", "message": "another department's client"}],
            )
    if subject_kind == "system":
        if subject not in HUB_SYSTEMS:
            raise Invalid(
                f"the hub has no system {subject!r}; systems: {', '.join(HUB_SYSTEMS)}",
                errors=[{"field": "subject", "message": "unknown system"}],
            )
        if may_approve:
            raise Invalid(
                "a hub system may use a seal but never approve a use",
                errors=[{"field": "may_approve", "message": "not for a system"}],
            )
    now = utcnow()
    previous = repository.standing_authorisation(db, seal_id=seal.id, subject=subject, kinds=(subject_kind,))
    if previous is not None:
        previous.withdrawn_at = now
        previous.withdrawn_by = who.subject
    granted = SealAuthorisation(
        seal_id=seal.id,
        subject=subject,
        subject_kind=subject_kind,
        may_use=may_use,
        may_approve=may_approve,
        note=note,
        granted_by=who.subject,
        granted_at=now,
    )
    db.add(granted)
    db.flush()
    caches.forget_use_choices_on_commit(db)  # other processes: within seal_status_cache_seconds
    audit.record(
        db,
        actor=who,
        action="seal.authorise",
        object_type="seal",
        object_id=seal.id,
        purpose=note,
        detail={"subject": subject, "subject_kind": subject_kind, "may_use": may_use, "may_approve": may_approve,
                "replaces": previous.id if previous else None},
    )  # fmt: skip
    return granted


def withdraw(db: Session, *, who: Principal, seal_id: str, authorisation_id: str, reason: str) -> SealAuthorisation:
    """Withdraw an authorisation at once; approvals its subject already holds can no longer be used."""
    seal = _administered_seal(db, who, seal_id)
    found = repository.authorisation(db, seal_id=seal.id, authorisation_id=authorisation_id)
    if found is None:
        raise NotFound(f"seal {seal.id} has no authorisation {authorisation_id}")
    if found.withdrawn_at is not None:
        raise Conflict(f"authorisation {authorisation_id} was already withdrawn")
    found.withdrawn_at = utcnow()
    found.withdrawn_by = who.subject
    db.flush()
    caches.forget_use_choices_on_commit(db)  # other processes: within seal_status_cache_seconds
    audit.record(
        db, actor=who, action="seal.authorisation.withdraw", object_type="seal", object_id=seal.id, purpose=reason,
        detail={"authorisation_id": found.id, "subject": found.subject, "subject_kind": found.subject_kind},
    )  # fmt: skip
    return found


def set_policy(
    db: Session, *, who: Principal, seal_id: str, requires_approval: bool, approval_valid_hours: int, if_match: str | None
) -> Seal:
    """Whether each use of the seal needs a second person's approval, and how long an approval lasts."""
    seal = _administered_seal(db, who, seal_id)
    check_if_match(if_match, seal.version, what="seal")
    if not 1 <= approval_valid_hours <= MAX_APPROVAL_HOURS:
        raise Invalid(
            f"approval_valid_hours must be 1..{MAX_APPROVAL_HOURS}",
            errors=[{"field": "approval_valid_hours", "message": "out of range"}],
        )
    seal.requires_approval = requires_approval
    seal.approval_valid_hours = approval_valid_hours
    db.flush()
    caches.forget_use_choices_on_commit(db)
    audit.record(
        db, actor=who, action="seal.use_policy", object_type="seal", object_id=seal.id,
        detail={"requires_approval": requires_approval, "approval_valid_hours": approval_valid_hours},
    )  # fmt: skip
    return seal


# ---------------------------------------------------------------- requests and approvals (用印审批)


def request_use(
    db: Session, *, who: Principal, seal_id: str, document_name: str, document_hash: str, purpose: str
) -> SealUseRequest:
    """Ask to use the seal on one document (its SHA-256); another authorised person approves or refuses."""
    seal = repository.get_seal(db, who, seal_id)
    if seal is None:
        raise NotFound(f"seal {seal_id} not found")
    document_hash = document_hash.strip().lower()
    if len(document_hash) != 64 or any(c not in "0123456789abcdef" for c in document_hash):
        raise Invalid(
            "document_hash must be the document's SHA-256, 64 hex digits",
            errors=[{"field": "document_hash", "message": "not a SHA-256"}],
        )
    granted = authorisation_of(db, seal=seal, actor=who)
    if granted is None or not granted.may_use:
        raise _refuse(
            who,
            seal,
            action="seal.use_request",
            reason=f"you are not authorised to use seal {seal.name} ({seal.seal_type}); "
            "its department administrator authorises its users",
        )
    if seal.status != SealStatus.ACTIVE.value:
        raise Conflict(f"seal {seal.name} is {seal.status}; no use of it can be requested")
    request = SealUseRequest(
        seal_id=seal.id, requested_by=who.subject, document_name=document_name.strip(), document_hash=document_hash,
        purpose=purpose.strip(), status="pending",
    )  # fmt: skip
    db.add(request)
    db.flush()
    audit.record(
        db, actor=who, action="seal.use_request", object_type="seal", object_id=seal.id, purpose=request.purpose,
        detail={"request_id": request.id, "document_name": request.document_name, "document_hash": document_hash},
    )  # fmt: skip
    return request


def decide(db: Session, *, who: Principal, request_id: str, approve: bool, reason: str | None) -> SealUseRequest:
    """Approve or refuse a use request: only another person authorised to approve uses of the seal."""
    found = repository.get_use_request(db, who, request_id)
    if found is None:
        raise NotFound(f"seal use request {request_id} not found")
    request, seal = found
    granted = authorisation_of(db, seal=seal, actor=who)
    action = "seal.use_request.approve" if approve else "seal.use_request.refuse"
    if granted is None or not granted.may_approve:
        raise _refuse(
            who, seal, action=action, reason=f"you are not authorised to approve uses of seal {seal.name}", request_id=request.id
        )
    if request.requested_by == who.subject:
        raise _refuse(
            who,
            seal,
            action=action,
            reason="a use request is decided by a second person, never by its requester",
            request_id=request.id,
        )
    if request.status != "pending":
        raise Conflict(f"this request is already {request.status}")
    if approve and seal.status != SealStatus.ACTIVE.value:
        raise Conflict(f"seal {seal.name} is {seal.status}; a use of it cannot be approved")
    now = utcnow()
    request.status = "approved" if approve else "refused"
    request.decided_by = who.subject
    request.decided_at = now
    request.decision_reason = reason
    request.expires_at = now + timedelta(hours=seal.approval_valid_hours) if approve else None
    db.flush()
    audit.record(
        db, actor=who, action=action, object_type="seal", object_id=seal.id, purpose=reason,
        detail={"request_id": request.id, "requested_by": request.requested_by,
                "expires_at": request.expires_at.isoformat() if request.expires_at else None},
    )  # fmt: skip
    return request


# ---------------------------------------------------------------- the check before every use


def check_use(db: Session, *, seal: Seal, actor: Actor, document: bytes, approval_id: str | None) -> SealUseRequest | None:
    """Before the seal signs: the actor must be authorised to use it and, where the seal requires it, hold an
    approval for this very document, unexpired and unused; the approval is used up here (once, whatever
    races it). Returns the approval used, if any; raises SealUseRefused (403, to be recorded) or Conflict."""
    granted = authorisation_of(db, seal=seal, actor=actor)
    if granted is None or not granted.may_use:
        raise _refuse(
            actor, seal, action="seal.use",
            reason=f"{actor.subject} is not authorised to use seal {seal.name} ({seal.seal_type}); "
            "its department administrator authorises its users",
        )  # fmt: skip
    if approval_id is None:
        if seal.requires_approval:
            if isinstance(actor, SystemActor):
                raise Conflict(
                    f"seal {seal.name} requires an approval for every use (用印审批), which {actor.subject} cannot ask for; "
                    "authorise it on a seal without approval"
                )
            raise _refuse(
                actor, seal, action="seal.use",
                reason=f"seal {seal.name} requires a second person's approval for every use (用印审批): "
                "request one (POST /seals/{id}/use-requests) and send its id as approval_id",
            )  # fmt: skip
        return None
    request = repository.use_request(db, seal_id=seal.id, request_id=approval_id)
    if request is None:
        raise NotFound(f"seal {seal.name} has no use request {approval_id}")
    if request.requested_by != actor.subject:
        raise _refuse(
            actor, seal, action="seal.use", reason="this approval was given to another requester", request_id=request.id
        )
    if request.status == "used":
        raise Conflict(
            f"approval {request.id} was already used (at {request.used_at:%Y-%m-%d %H:%M} UTC); "
            "an approval seals one document once"
        )
    if request.status != "approved":
        raise Conflict(f"use request {request.id} is {request.status}, not approved")
    now = utcnow()
    assert request.expires_at is not None
    if request.expires_at <= now:
        raise Conflict(f"approval {request.id} expired at {request.expires_at:%Y-%m-%d %H:%M} UTC; request a new one")
    if hashlib.sha256(document).hexdigest() != request.document_hash:
        raise Conflict(f"approval {request.id} is for another document ({request.document_name}); its SHA-256 differs")
    used = db.execute(
        update(SealUseRequest)
        .where(SealUseRequest.id == request.id, SealUseRequest.status == "approved")
        .values(status="used", used_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(used, "rowcount", 0) != 1:
        raise Conflict(f"approval {request.id} was used by another request just now")
    db.refresh(request)
    return request


# ---------------------------------------------------------------- what the seal's page shows


def readable_seal(db: Session, *, who: Principal, seal_id: str) -> Seal:
    seal = repository.get_seal(db, who, seal_id)
    if seal is None:
        raise NotFound(f"seal {seal_id} not found")
    return seal


def seal_authorisations(db: Session, *, who: Principal, seal_id: str) -> list[SealAuthorisation]:
    """Who may use and approve the seal (withdrawn authorisations too), for its department and the platform."""
    return repository.authorisations(db, seal_id=readable_seal(db, who=who, seal_id=seal_id).id)


def use_requests(
    db: Session, *, who: Principal, seal_id: str, cursor: str | None = None, limit: int = 50
) -> tuple[list[SealUseRequest], str | None]:
    """The seal's use requests, newest first."""
    return repository.list_use_requests(db, seal_id=readable_seal(db, who=who, seal_id=seal_id).id, cursor=cursor, limit=limit)


def use_actions(db: Session, *, who: Principal, seal: Seal) -> dict[str, bool]:
    """What the viewer may do on the seal's use control now (the console asks, as the API decides)."""
    granted = authorisation_of(db, seal=seal, actor=who)
    administers = who.has(Role.DEPARTMENT_ADMIN) and who.department_id == seal.department_id
    return {
        "administer": administers,
        "request": bool(granted and granted.may_use) and seal.status == SealStatus.ACTIVE.value,
        "approve": bool(granted and granted.may_approve) and seal.status == SealStatus.ACTIVE.value,
    }


def visible_seals(db: Session, *, who: Principal) -> list[Seal]:
    """The seals the viewer may see (its department's; all for the platform), newest first (for a page)."""
    return repository.list_seals(db, who, cursor=None, limit=200, department_id=None, status=None)[0]


def recent_uses(db: Session, *, who: Principal, seal_id: str, limit: int = 50) -> list[SealUse]:
    """The seal's latest uses (用印记录)."""
    return repository.list_uses(db, seal_id=readable_seal(db, who=who, seal_id=seal_id).id, cursor=None, limit=limit)[0]


def refused_attempts(db: Session, *, who: Principal, seal_id: str, limit: int = 50) -> list[audit.AuditRecord]:
    """The latest refused uses, requests and approvals of the seal, from the audit trail."""
    seal = readable_seal(db, who=who, seal_id=seal_id)
    return [r for r in audit.records_for(db, object_type="seal", object_id=seal.id, limit=500) if r.outcome == "refused"][:limit]
