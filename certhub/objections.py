"""Objections (异议处理) that suspend a certificate, and reports of suspected errors (反馈纠错)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from certhub import repository
from certhub.common import SHANGHAI, close_objection, not_found
from certhub.holders import acting_for
from certhub.issuance import IssueContext, next_version, reinstate, suspend
from certhub.models import (
    Certificate,
    CertificateStatus,
    Feedback,
    FeedbackStatus,
    Objection,
    ObjectionStatus,
)
from ops import audit
from ops.auth import Principal, Role
from ops.codes import mask_identifier
from ops.config import Settings
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, NotFound
from ops.metrics import CERTIFICATE_EVENTS
from ops.workdays import add_working_days


def _filer_kind(who: Principal, certificate: Certificate) -> str:
    if who.is_platform_admin:
        return "platform"
    if (
        who.department_id is not None
        and certificate.issuer_department_id == who.department_id
        and who.has(Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM)
    ):
        return "issuer"
    if who.holder_code is not None:
        return "holder" if certificate.holder_code == who.holder_code else "agent"
    return "department"


def _filing(who: Principal, certificate: Certificate, identifier: str, reason: str) -> dict[str, Any]:
    """What an objection and a report both hold: the certificate, its issuer, who filed it and why."""
    return {
        "certificate_id": certificate.id,
        "certificate_identifier": identifier,
        "issuer_department_id": certificate.issuer_department_id,
        "filed_by": who.holder_code or who.subject,
        "filer_kind": _filer_kind(who, certificate),
        "filer_department_id": who.department_id,
        "reason": reason,
    }


def _audit_filing(db: Session, who: Principal, filed: Objection | Feedback, certificate: Certificate) -> None:
    """Put a filed objection or report on the audit trail (objection.file, feedback.file)."""
    kind = "objection" if isinstance(filed, Objection) else "feedback"
    audit.record(
        db,
        actor=who,
        action=f"{kind}.file",
        object_type=f"cert_{kind}",
        object_id=filed.id,
        purpose=filed.reason,
        subject=certificate.holder_code,
        detail={"certificate": filed.certificate_identifier, "filer_kind": filed.filer_kind},
    )


def file_objection(
    db: Session, *, who: Principal, settings: Settings, identifier: str, reason: str, on_behalf_of: str | None = None
) -> Objection:
    """异议: the holder (or an agent whose delegation lets it object), the issuing department or the platform
    disputes a certificate; it is suspended while the objection is open. A department that only used the
    certificate is pointed to 反馈纠错; to anyone else the certificate does not exist."""
    holder, types = acting_for(db, who=who, on_behalf_of=on_behalf_of, action="object")
    scope = repository.disputable_certificates(who, holder_code=holder, type_codes=types)
    certificate = repository.one_certificate(db, scope, identifier)
    if certificate is None:
        if repository.one_certificate(db, repository.used_certificates(who), identifier) is not None:
            raise Forbidden(
                "an objection suspends the certificate and is filed by its holder, its issuer or the platform; "
                f"your department used it and can report a suspected error (反馈纠错) to its issuer instead: "
                f"POST /certhub/certificates/{identifier}/feedback"
            )
        raise not_found(identifier)
    if certificate.status != CertificateStatus.ACTIVE.value:
        raise Conflict(f"certificate {identifier} is {certificate.status}; only an active certificate can be disputed")
    now = utcnow()
    deadline = add_working_days(db, now, settings.certificate_objection_working_days)
    step: dict[str, Any] = {"at": now.isoformat(), "by": who.subject, "step": "filed", "note": reason}
    if holder and holder != who.holder_code:
        step["on_behalf_of"] = mask_identifier(holder)
    objection = Objection(
        **_filing(who, certificate, identifier, reason),
        due_at=deadline.due_at,
        due_provisional=deadline.provisional,
        history=[step],
    )
    db.add(objection)
    db.flush()
    suspend(db, who=who, certificate=certificate, reason=f"objection: {reason}"[:500])
    _audit_filing(db, who, objection, certificate)
    return objection


def _objection_for_issuer(db: Session, who: Principal, objection_id: str) -> Objection:
    objection = repository.issuer_objection(db, who.require_department(), objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} not found among the objections to your department's certificates")
    if objection.status != ObjectionStatus.OPEN.value:
        raise Conflict(f"objection {objection_id} is already {objection.status}")
    return objection


def correct_objection(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    objection_id: str,
    face: dict[str, Any],
    holder_name: str | None,
    resolution: str,
    if_match: str | None = None,
) -> tuple[Objection, Certificate]:
    """反馈纠错: the issuer corrects the certificate (a new version) and closes the objection."""
    objection = _objection_for_issuer(db, who, objection_id)
    check_if_match(if_match, objection.version)
    old = repository.certificate_by_id(db, objection.certificate_id)
    assert old is not None
    new = next_version(
        db,
        who=who,
        ctx=ctx,
        old=old,
        face=face,
        holder_name=holder_name,
        valid_until=None,
        render_pdf=old.pdf_key is not None or old.ofd_key is not None,
        copy_format="ofd" if old.ofd_key else "pdf" if old.pdf_key else None,
    )
    close_objection(objection, ObjectionStatus.CORRECTED, resolution, who.subject)
    objection.corrected_identifier = new.identifier
    db.flush()
    audit.record(
        db,
        actor=who,
        action="objection.correct",
        object_type="cert_objection",
        object_id=objection.id,
        purpose=resolution,
        subject=old.holder_code,
        detail={"new": new.identifier},
    )
    CERTIFICATE_EVENTS.labels(event="changed").inc()
    return objection, new


def dismiss_objection(
    db: Session, *, who: Principal, objection_id: str, resolution: str, if_match: str | None = None
) -> Objection:
    """The issuer finds the certificate right: the objection is dismissed and the suspension lifted."""
    objection = _objection_for_issuer(db, who, objection_id)
    check_if_match(if_match, objection.version)
    close_objection(objection, ObjectionStatus.DISMISSED, resolution, who.subject)
    db.flush()
    certificate = repository.certificate_by_id(db, objection.certificate_id)
    assert certificate is not None
    if certificate.status == CertificateStatus.SUSPENDED.value and not repository.open_objections(
        db, certificate_id=certificate.id
    ):
        reinstate(db, who=who, certificate=certificate, reason=f"objection dismissed: {resolution}"[:500])
    audit.record(
        db,
        actor=who,
        action="objection.dismiss",
        object_type="cert_objection",
        object_id=objection.id,
        purpose=resolution,
        subject=certificate.holder_code,
    )
    return objection


def get_objection(db: Session, *, who: Principal, objection_id: str) -> Objection:
    objection = repository.get_objection(db, who, objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} not found")
    return objection


def file_feedback(db: Session, *, who: Principal, identifier: str, reason: str, on_behalf_of: str | None = None) -> Feedback:
    """反馈纠错: one who used a certificate (a department that verified, fetched or downloaded it), or one who
    may dispute it, reports a suspected error to its issuer; the certificate's status does not change."""
    holder, types = acting_for(db, who=who, on_behalf_of=on_behalf_of, action="object")
    scope = repository.reportable_certificates(who, holder_code=holder, type_codes=types)
    certificate = repository.one_certificate(db, scope, identifier)
    if certificate is None:
        raise not_found(identifier)
    feedback = Feedback(**_filing(who, certificate, identifier, reason))
    db.add(feedback)
    db.flush()
    _audit_filing(db, who, feedback, certificate)
    return feedback


def get_feedback(db: Session, *, who: Principal, feedback_id: str) -> Feedback:
    feedback = repository.get_feedback(db, who, feedback_id)
    if feedback is None:
        raise NotFound(f"report {feedback_id} not found")
    return feedback


def answer_feedback(db: Session, *, who: Principal, feedback_id: str, answer: str, if_match: str | None = None) -> Feedback:
    """The issuer answers a report (what it found, what it changed) and closes it."""
    feedback = repository.issuer_feedback(db, who.require_department(), feedback_id)
    if feedback is None:
        raise NotFound(f"report {feedback_id} not found among the reports about your department's certificates")
    check_if_match(if_match, feedback.version)
    if feedback.status != FeedbackStatus.OPEN.value:
        raise Conflict(f"report {feedback_id} is already {feedback.status}")
    feedback.status = FeedbackStatus.ANSWERED.value
    feedback.answer = answer
    feedback.answered_by = who.subject
    feedback.answered_at = utcnow()
    db.flush()
    certificate = repository.certificate_by_id(db, feedback.certificate_id)
    assert certificate is not None
    audit.record(
        db,
        actor=who,
        action="feedback.answer",
        object_type="cert_feedback",
        object_id=feedback.id,
        purpose=answer,
        subject=certificate.holder_code,
        detail={"certificate": feedback.certificate_identifier},
    )
    return feedback


def mark_overdue_objections(db: Session, *, now: datetime | None = None) -> int:
    """Flag open objections past their deadline (the platform follows them up); returns how many."""
    now = now or utcnow()
    count = 0
    for objection in repository.open_objections(db):
        if not objection.overdue and objection.due_at <= now:
            objection.overdue = True
            objection.history = [
                *objection.history,
                {"at": now.isoformat(), "by": "system", "step": "overdue", "note": "deadline passed"},
            ]
            audit.record(db, actor=audit.SYSTEM, action="objection.overdue", object_type="cert_objection", object_id=objection.id)
            count += 1
    db.flush()
    return count


def recompute_objection_deadlines(db: Session, year: int, *, settings: Settings) -> int:
    """After a year's calendar is loaded: recompute open deadlines that fall into or past that year."""
    days = settings.certificate_objection_working_days
    changed = 0
    for objection in repository.open_objections(db):
        if objection.due_at.astimezone(SHANGHAI).year < year and not objection.due_provisional:
            continue
        deadline = add_working_days(db, objection.created_at, days)
        if deadline.due_at != objection.due_at or deadline.provisional != objection.due_provisional:
            objection.due_at, objection.due_provisional = deadline.due_at, deadline.provisional
            changed += 1
    db.flush()
    return changed
