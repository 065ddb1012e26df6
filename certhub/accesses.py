"""The access list: every use of a certificate, recorded for its holder and in the audit trail."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from certhub import caches, repository, sdjwt
from certhub.models import Access
from ops import audit
from ops.auth import Principal
from ops.db import new_id, utcnow
from ops.errors import Conflict, Forbidden, NotFound
from ops.ratings import service as ratings


def access_records(
    who: Principal,
    *,
    known: bool,
    holder_code: str,
    identifier: str,
    action: str,
    use_cause: str | None,
    fields: list[str] | None = None,
    department_name: str | None = None,
    outcome: str = "success",
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The rows one use of a certificate writes: the holder's access-list row (None for a failed use of
    an unknown certificate) and the audit record."""
    access = None
    if known or outcome == "success":
        access = {
            "id": new_id(),
            "at": utcnow(),
            "holder_code": holder_code,
            "certificate_identifier": identifier,
            "action": action,
            "accessor": who.subject,
            "accessor_department_id": who.department_id,
            "accessor_department_name": department_name,
            "use_cause": use_cause,
            "fields": fields or [],
        }
    trail = audit.entry(
        actor=who,
        action=f"certificate.{action}",
        object_type="certificate",
        object_id=identifier,
        purpose=use_cause,
        outcome=outcome,
        subject=holder_code,
        detail={"fields": fields or []},
    )
    return access, trail


def write_accesses(db: Session, accesses: list[dict[str, Any]], trails: list[dict[str, Any]]) -> None:
    """Insert access-list rows and audit records, one statement each."""
    if accesses:
        repository.insert_accesses(db, accesses)
    audit.append(db, trails)


def record_access(
    db: Session,
    *,
    who: Principal,
    known: bool,
    holder_code: str,
    identifier: str,
    action: str,
    use_cause: str | None,
    fields: list[str] | None = None,
    outcome: str = "success",
) -> None:
    """One use of a certificate by `who`'s department: in the holder's access list and the audit trail."""
    access, trail = access_records(
        who,
        known=known,
        holder_code=holder_code,
        identifier=identifier,
        action=action,
        use_cause=use_cause,
        fields=fields,
        department_name=caches.department_name(db, who.department_id),
        outcome=outcome,
    )
    write_accesses(db, [access] if access else [], [trail])


@dataclass(frozen=True)
class Verified:
    """A settled window verification, as the access list and the audit trail record it."""

    who: Principal
    verdict: sdjwt.Verdict
    local_holder: str | None  # the holder, when the certificate is in this hub's library
    department_name: str | None
    request_id: str | None  # the verifying request's (the batch is written on another thread)


def record_verifications(db: Session, settled: Sequence[Verified]) -> None:
    """Record a batch of verifications: an access-list row for each use of a known certificate, an audit
    entry for each verification (one of the presentation when it names no certificate); one statement each."""
    accesses: list[dict[str, Any]] = []
    trails: list[dict[str, Any]] = []
    for item in settled:
        verdict = item.verdict
        holder = item.local_holder or verdict.holder_code or ""
        if verdict.identifier and holder:
            access, trail = access_records(
                item.who,
                known=item.local_holder is not None,
                holder_code=holder,
                identifier=verdict.identifier,
                action="verify",
                use_cause=None,
                fields=sorted(verdict.disclosed),
                department_name=item.department_name,
                outcome="success" if verdict.valid else verdict.code,
            )
            if access is not None:
                accesses.append(access)
        else:
            trail = audit.entry(
                actor=item.who,
                action="certificate.verify",
                object_type="presentation",
                object_id=verdict.identifier or "-",
                outcome=verdict.code,
                detail={"message": verdict.message},
            )
        trail["request_id"] = item.request_id
        trails.append(trail)
    write_accesses(db, accesses, trails)


def holder_accesses(db: Session, *, who: Principal, cursor: str | None, limit: int) -> tuple[list[Access], str | None]:
    """Every use of my certificates: who, when, why."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    return repository.accesses_of(db, who.holder_code, cursor=cursor, limit=limit)


# The uses of a certificate its holder may rate (好差评): a window's verification, a department's fetch (一证通办).
RATABLE_ACTIONS = {"verify": "certificate.verify", "fetch": "certificate.fetch"}


def rating_event(db: Session, *, who: Principal, access_id: str) -> ratings.RatableEvent:
    """The service a use of my certificate was, as I may rate it: the department that verified or fetched it."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    access = repository.access_of(db, who.holder_code, access_id)
    if access is None:
        raise NotFound(f"access {access_id} not found among the uses of your certificates")
    kind = RATABLE_ACTIONS.get(access.action)
    if kind is None or access.accessor_department_id is None:
        raise Conflict(f"a {access.action} of your certificate is not a service you can rate; rate a verification or a fetch")
    return ratings.RatableEvent(
        kind=kind, event_id=access.id, department_id=access.accessor_department_id, rater_ref=who.holder_code
    )
