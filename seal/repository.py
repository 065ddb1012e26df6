"""Every query of the seal domain, scoped to what the caller may see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ops.auth import Principal
from ops.pagination import keyset, page_of
from seal.models import Seal, SealAuthorisation, SealEvent, SealStatus, SealUse, SealUseRequest


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


# ---------------------------------------------------------------- use control (用印管理)


def standing_authorisation(db: Session, *, seal_id: str, subject: str, kinds: tuple[str, ...]) -> SealAuthorisation | None:
    """The subject's authorisation for the seal that has not been withdrawn, if any."""
    query = select(SealAuthorisation).where(
        SealAuthorisation.seal_id == seal_id,
        SealAuthorisation.subject == subject,
        SealAuthorisation.subject_kind.in_(kinds),
        SealAuthorisation.withdrawn_at.is_(None),
    )
    return db.scalars(query.order_by(SealAuthorisation.granted_at.desc())).first()


def active_seals_for(
    db: Session, *, department_id: str, subject: str, kinds: tuple[str, ...], seal_type: str | None = None
) -> tuple[list[Seal], set[str]]:
    """In one query: the department's active seals (as :func:`active_seals`) and the ids of those among them the
    subject is authorised to use (as :func:`seals_usable_by`)."""
    usable = (
        select(SealAuthorisation.id)
        .where(
            SealAuthorisation.seal_id == Seal.id,
            SealAuthorisation.subject == subject,
            SealAuthorisation.subject_kind.in_(kinds),
            SealAuthorisation.may_use.is_(True),
            SealAuthorisation.withdrawn_at.is_(None),
        )
        .exists()
    )
    query = select(Seal, usable).where(Seal.department_id == department_id, Seal.status == SealStatus.ACTIVE.value)
    if seal_type:
        query = query.where(Seal.seal_type == seal_type)
    rows = db.execute(query.order_by(Seal.created_at.desc(), Seal.id)).all()
    return [seal for seal, _ in rows], {seal.id for seal, may in rows if may}


def seals_usable_by(db: Session, *, department_id: str, subject: str, kinds: tuple[str, ...]) -> set[str]:
    """Ids of the department's seals the subject is authorised to use."""
    query = (
        select(SealAuthorisation.seal_id)
        .join(Seal, Seal.id == SealAuthorisation.seal_id)
        .where(
            Seal.department_id == department_id,
            SealAuthorisation.subject == subject,
            SealAuthorisation.subject_kind.in_(kinds),
            SealAuthorisation.may_use.is_(True),
            SealAuthorisation.withdrawn_at.is_(None),
        )
    )
    return set(db.scalars(query))


def authorisation(db: Session, *, seal_id: str, authorisation_id: str) -> SealAuthorisation | None:
    query = select(SealAuthorisation).where(SealAuthorisation.seal_id == seal_id, SealAuthorisation.id == authorisation_id)
    return db.scalars(query).first()


def authorisations(db: Session, *, seal_id: str) -> list[SealAuthorisation]:
    """Every authorisation of a seal, withdrawn ones too, newest first (a short list)."""
    query = select(SealAuthorisation).where(SealAuthorisation.seal_id == seal_id)
    return list(db.scalars(query.order_by(SealAuthorisation.granted_at.desc(), SealAuthorisation.id)))


def get_use_request(db: Session, who: Principal, request_id: str) -> tuple[SealUseRequest, Seal] | None:
    """A use request of a seal the caller may read, with its seal."""
    readable = readable_seals(who).subquery()
    row = db.execute(
        select(SealUseRequest, Seal)
        .join(Seal, Seal.id == SealUseRequest.seal_id)
        .where(SealUseRequest.id == request_id, Seal.id.in_(select(readable.c.id)))
    ).first()
    return None if row is None else (row[0], row[1])


def use_request(db: Session, *, seal_id: str, request_id: str) -> SealUseRequest | None:
    query = select(SealUseRequest).where(SealUseRequest.seal_id == seal_id, SealUseRequest.id == request_id)
    return db.scalars(query).first()


def use_request_seal(db: Session, *, department_id: str, request_id: str) -> str | None:
    """The seal a use request of the department's seals is for."""
    query = (
        select(SealUseRequest.seal_id)
        .join(Seal, Seal.id == SealUseRequest.seal_id)
        .where(SealUseRequest.id == request_id, Seal.department_id == department_id)
    )
    return db.scalars(query).first()


def list_use_requests(db: Session, *, seal_id: str, cursor: str | None, limit: int) -> tuple[list[SealUseRequest], str | None]:
    query = select(SealUseRequest).where(SealUseRequest.seal_id == seal_id)
    rows = list(db.scalars(keyset(query, created=SealUseRequest.created_at, ident=SealUseRequest.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)
