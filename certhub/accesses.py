"""The access list: every use of a certificate, recorded for its holder and in the audit trail."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy.orm import Session

from certhub import caches, repository
from certhub.common import NeedsDatabase
from certhub.models import (
    Access,
)
from ops import audit
from ops.auth import Principal
from ops.db import new_id, utcnow
from ops.errors import Forbidden
from ops.identity import repository as departments


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
    department_name: str | None = None,
    outcome: str = "success",
) -> None:
    """One use of a certificate: in the holder's access list and the audit trail."""
    access, trail = access_records(
        who,
        known=known,
        holder_code=holder_code,
        identifier=identifier,
        action=action,
        use_cause=use_cause,
        fields=fields,
        department_name=department_name,
        outcome=outcome,
    )
    write_accesses(db, [access] if access else [], [trail])


def department_name_of(db: Session | None, department_id: str | None) -> str | None:
    """A department's name for the access list (cached a minute: names rarely change).
    Without a session only the cache answers (:class:`NeedsDatabase` on a miss)."""
    if not department_id:
        return None
    cached = caches.department_names.get(department_id)
    if cached and time.monotonic() - cached[0] < caches.DEPARTMENT_NAME_SECONDS:
        return cached[1]
    if db is None:
        raise NeedsDatabase
    department = departments.department_by_id(db, department_id)
    name = department.name if department else None
    caches.department_names[department_id] = (time.monotonic(), name)
    return name


def holder_accesses(db: Session, *, who: Principal, cursor: str | None, limit: int) -> tuple[list[Access], str | None]:
    """Every use of my certificates: who, when, why."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    return repository.accesses_of(db, who.holder_code, cursor=cursor, limit=limit)
