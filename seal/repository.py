"""Every query of the seal domain, scoped to what the caller may see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ops.auth import Principal
from ops.pagination import keyset, page_of
from seal.models import Seal, SealEvent, SealStatus, SealUse


def readable_seals(who: Principal) -> Select[Seal]:
    """Seals the caller may read: all for a platform admin, else its own department's."""
    query = select(Seal)
    if not who.is_platform_admin:
        query = query.where(Seal.department_id == (who.department_id or ""))
    return query


def get_seal(db: Session, who: Principal, seal_id: str) -> Seal | None:
    return db.scalars(readable_seals(who).where(Seal.id == seal_id)).first()


def list_seals(
    db: Session, who: Principal, *, cursor: str | None, limit: int, department_id: str | None, status: str | None
) -> tuple[list[Seal], str | None]:
    query = readable_seals(who)
    if department_id:
        query = query.where(Seal.department_id == department_id)
    if status:
        query = query.where(Seal.status == status)
    rows = list(db.scalars(keyset(query, created=Seal.created_at, ident=Seal.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def own_seal(db: Session, *, department_id: str, seal_id: str) -> Seal | None:
    """A seal of the given department (another department's seal is not found)."""
    return db.scalars(select(Seal).where(Seal.id == seal_id, Seal.department_id == department_id)).first()


def active_seals(db: Session, *, department_id: str, seal_type: str | None = None) -> list[Seal]:
    query = select(Seal).where(Seal.department_id == department_id, Seal.status == SealStatus.ACTIVE.value)
    if seal_type:
        query = query.where(Seal.seal_type == seal_type)
    return list(db.scalars(query.order_by(Seal.created_at.desc(), Seal.id)))


def published_seals(db: Session, *, department_id: str | None) -> list[Seal]:
    """Seals whose keys verify what they signed: every seal ever made (revoked ones carry their status)."""
    query = select(Seal)
    if department_id:
        query = query.where(Seal.department_id == department_id)
    return list(db.scalars(query.order_by(Seal.created_at, Seal.id)))


def seal_by_certificate_serial(db: Session, serial: str) -> Seal | None:
    return db.scalars(select(Seal).where(Seal.certificate_serial == serial)).first()


def seals_expired_by(db: Session, moment: datetime) -> list[Seal]:
    query = select(Seal).where(Seal.valid_to <= moment, Seal.status.in_([SealStatus.ACTIVE.value, SealStatus.SUSPENDED.value]))
    return list(db.scalars(query))


def events(db: Session, seal_id: str) -> list[SealEvent]:
    return list(db.scalars(select(SealEvent).where(SealEvent.seal_id == seal_id).order_by(SealEvent.at, SealEvent.id)))


def use_with_signature(db: Session, *, seal_id: str, signature_hash: str) -> SealUse | None:
    query = select(SealUse).where(SealUse.seal_id == seal_id, SealUse.signature_hash == signature_hash)
    return db.scalars(query.order_by(SealUse.at)).first()


def list_uses(db: Session, *, seal_id: str, cursor: str | None, limit: int) -> tuple[list[SealUse], str | None]:
    query = select(SealUse).where(SealUse.seal_id == seal_id)
    rows = list(db.scalars(keyset(query, created=SealUse.at, ident=SealUse.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit, created="at")


def seals_without_der(db: Session) -> list[Seal]:
    """Seals made before the DER form of the seal (structure_der empty), oldest first."""
    return list(db.scalars(select(Seal).where(Seal.structure_der.is_(None)).order_by(Seal.created_at, Seal.id)))
