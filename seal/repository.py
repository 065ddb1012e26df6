"""Every query of the seal domain, scoped to what the caller may see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, load_only

from ops.auth import Principal
from ops.pagination import keyset, page_of
from seal.caches import SealState
from seal.models import LtaRecord, Seal, SealAuthorisation, SealEvent, SealStatus, SealUse, SealUseRequest


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


_SEAL_STATE_COLUMNS = (
    Seal.id,
    Seal.code,
    Seal.name,
    Seal.seal_type,
    Seal.alg,
    Seal.department_code,
    Seal.department_name,
    Seal.valid_from,
    Seal.valid_to,
    Seal.status,
    Seal.status_reason,
    Seal.revoked_at,
    Seal.certificate_pem,
)


def seal_state_by_serial(db: Session, serial: str, signature_hash: str | None) -> tuple[SealState | None, datetime | None]:
    """What verification needs of the seal behind a certificate serial, in one statement: the seal, its status
    history, and when it made the signature whose SHA-256 is `signature_hash` (its use record), if it did."""
    use_at = (
        select(func.min(SealUse.at))
        .where(SealUse.seal_id == Seal.id, SealUse.signature_hash == (signature_hash or ""))
        .scalar_subquery()
    )
    rows = db.execute(
        select(Seal, SealEvent.at, SealEvent.status, use_at)
        .outerjoin(SealEvent, SealEvent.seal_id == Seal.id)
        .where(Seal.certificate_serial == serial)
        .order_by(SealEvent.at, SealEvent.id)
        .options(load_only(*_SEAL_STATE_COLUMNS, raiseload=True))
    ).all()
    if not rows:
        return None, None
    seal: Seal = rows[0][0]
    history: tuple[tuple[datetime, str], ...] = tuple((at, status) for _, at, status, _ in rows if at is not None)
    state = SealState(
        id=seal.id,
        code=seal.code,
        name=seal.name,
        seal_type=seal.seal_type,
        alg=seal.alg,
        department_code=seal.department_code,
        department_name=seal.department_name,
        valid_from=seal.valid_from,
        valid_to=seal.valid_to,
        status=seal.status,
        status_reason=seal.status_reason,
        revoked_at=seal.revoked_at,
        certificate_pem=seal.certificate_pem,
        history=history,
    )
    used_at: datetime | None = rows[0][3]
    return state, used_at


def use_time_with_signature(db: Session, *, seal_id: str, signature_hash: str) -> datetime | None:
    """When the seal made the signature whose SHA-256 is `signature_hash` (its first use record), if it did."""
    query = select(func.min(SealUse.at)).where(SealUse.seal_id == seal_id, SealUse.signature_hash == signature_hash)
    return db.scalars(query).first()


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


# ---------------------------------------------------------------- PDFs kept at PAdES B-LTA


def readable_lta_records(who: Principal) -> Select[LtaRecord]:
    """Kept B-LTA PDFs the caller may read: all for a platform admin, else its own department's."""
    query = select(LtaRecord)
    if not who.is_platform_admin:
        query = query.where(LtaRecord.department_id == (who.department_id or ""))
    return query


def get_lta_record(db: Session, who: Principal, record_id: str) -> LtaRecord | None:
    return db.scalars(readable_lta_records(who).where(LtaRecord.id == record_id)).first()


def list_lta_records(db: Session, who: Principal, *, cursor: str | None, limit: int) -> tuple[list[LtaRecord], str | None]:
    query = readable_lta_records(who)
    rows = list(db.scalars(keyset(query, created=LtaRecord.created_at, ident=LtaRecord.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def lta_records_due(db: Session, *, now: datetime, weakened: set[str], limit: int = 100) -> list[LtaRecord]:
    """Kept PDFs whose time stamp chain is due for renewal (by date, or because its algorithm weakened)."""
    due = LtaRecord.renew_after <= now
    if weakened:
        due = or_(due, LtaRecord.last_digest_algorithm.in_(sorted(weakened)))
    return list(db.scalars(select(LtaRecord).where(due).order_by(LtaRecord.renew_after, LtaRecord.id).limit(limit)))


def archivable_use(db: Session, *, use_id: str, department_id: str | None) -> tuple[SealUse, Seal] | None:
    """A seal use and its seal, of the department's seals (any department's when `department_id` is None)."""
    query = select(SealUse, Seal).join(Seal, Seal.id == SealUse.seal_id).where(SealUse.id == use_id)
    if department_id is not None:
        query = query.where(SealUse.department_id == department_id)
    row = db.execute(query).first()
    return (row[0], row[1]) if row is not None else None


def uses_kept_between(db: Session, *, since: datetime, until: datetime, department_id: str | None) -> list[str]:
    """The uses in [since, until) whose sealed output is kept in object storage and archived, oldest first."""
    query = select(SealUse.id).where(SealUse.at >= since, SealUse.at < until, SealUse.object_key.is_not(None))
    if department_id is not None:
        query = query.where(SealUse.department_id == department_id)
    return list(db.scalars(query.order_by(SealUse.at, SealUse.id)))


def use_request_by_id(db: Session, request_id: str) -> SealUseRequest | None:
    return db.get(SealUseRequest, request_id)
