"""The audit trail: one append-only record for every state change and every data access."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import JSON, BigInteger, Integer, String, Text, event, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ops.context import current_request_id
from ops.db import Base, table_of, utcnow, writing


class Actor(Protocol):
    """What the audit needs to know of whoever acted (a Principal satisfies it)."""

    @property
    def subject(self) -> str: ...
    @property
    def primary_role(self) -> str: ...
    @property
    def department_id(self) -> str | None: ...


class AuditRecord(Base):
    """One audited action. Rows are never updated or deleted (enforced by triggers too)."""

    __tablename__ = "audit_records"

    # Integer on SQLite so that it is the rowid alias and autoincrements.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(200))
    purpose: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32), default="success")
    # Keyed hash of the personal identifier the action concerns (a holder looks up by it).
    subject_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


@event.listens_for(AuditRecord, "before_update")
def _no_update(*_args: Any) -> None:
    raise RuntimeError("audit records are append-only")


@event.listens_for(AuditRecord, "before_delete")
def _no_delete(*_args: Any) -> None:
    raise RuntimeError("audit records are append-only")


@dataclass(frozen=True)
class SystemActor:
    """The hub itself, acting from a scheduled job or the command line."""

    subject: str = "system"
    primary_role: str = "system"
    department_id: str | None = None


SYSTEM = SystemActor()


def subject_ref(personal_id: str) -> str:
    """A stable pseudonymous reference to a person or enterprise code, for lookups."""
    return hashlib.sha256(b"govhub-subject:" + personal_id.strip().upper().encode()).hexdigest()


def entry(
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    purpose: str | None = None,
    outcome: str = "success",
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The columns of one audit record (for :func:`append`). A person (signed in through the identity
    provider, or a holder in the console) is named in the detail too: ``person_id`` and ``actor_name``."""
    person_id, name = getattr(actor, "person_id", None), getattr(actor, "display_name", None)
    if person_id or name:
        detail = {**(detail or {}), **({"person_id": person_id} if person_id else {}), "actor_name": name}
    return {
        "at": utcnow(),
        "request_id": current_request_id(),
        "actor": actor.subject,
        "role": actor.primary_role,
        "department_id": actor.department_id,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "purpose": purpose,
        "outcome": outcome,
        "subject_ref": subject_ref(subject) if subject else None,
        "detail": detail or {},
    }


def record(
    db: Session,
    *,
    actor: Actor,
    action: str,
    object_type: str,
    object_id: str,
    purpose: str | None = None,
    outcome: str = "success",
    subject: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditRecord:
    """Append an audit record inside the caller's transaction."""
    record = AuditRecord(
        **entry(
            actor=actor,
            action=action,
            object_type=object_type,
            object_id=object_id,
            purpose=purpose,
            outcome=outcome,
            subject=subject,
            detail=detail,
        )
    )
    db.add(record)
    db.flush()
    return record


def record_refusal(db: Session, write: Callable[[Session], object], *, in_batch: bool = False) -> None:
    """Record a refused access: the one way every domain does it. `write` adds what the domain keeps of
    the refusal (an audit record whose outcome names it, and the domain's own trail, if any).

    After a refused request (the default) the request's transaction is rolled back first: nothing the
    refused request wrote stays (a rate-limit count) and its locks are released. The record is then
    written and committed in a transaction of its own, one that writes even where the request's only
    read (a GET, a @reads_only route), so that it stays although the request fails. In a batch
    (`in_batch`: a group commit's items), the refusal is one item among others: its record is written
    in the batch's transaction, which the group commit commits."""
    if in_batch:
        write(db)
        return
    db.rollback()
    with writing():
        write(db)
        db.commit()


def append(db: Session, entries: list[dict[str, Any]]) -> None:
    """Append many audit records (made by :func:`entry`) with one statement: for the hot paths."""
    if entries:
        db.connection().execute(insert(table_of(AuditRecord)), entries)


def records_for(
    db: Session,
    *,
    object_type: str | None = None,
    object_id: str | None = None,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[AuditRecord]:
    """Recent audit records, optionally for one object and a time window [since, until) (newest first)."""
    query = select(AuditRecord).order_by(AuditRecord.id.desc()).limit(limit)
    if object_type:
        query = query.where(AuditRecord.object_type == object_type)
    if object_id:
        query = query.where(AuditRecord.object_id == object_id)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    if until is not None:
        query = query.where(AuditRecord.at < until)
    return list(db.scalars(query))
