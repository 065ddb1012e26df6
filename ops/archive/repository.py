"""Every query of the archive packages (the record's owner is checked by the record class before these run)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ops.archive.models import ArchiveHold, ArchivePackage, ArchiveTombstone, DisposalList


def packages_of(db: Session, *, record_class: str, record_id: str) -> list[ArchivePackage]:
    query = (
        select(ArchivePackage)
        .where(ArchivePackage.record_class == record_class, ArchivePackage.record_id == record_id)
        .order_by(ArchivePackage.created_at.desc(), ArchivePackage.id)
    )
    return list(db.scalars(query))


def package_of(db: Session, *, record_class: str, record_id: str, package_id: str) -> ArchivePackage | None:
    query = select(ArchivePackage).where(
        ArchivePackage.record_class == record_class, ArchivePackage.record_id == record_id, ArchivePackage.id == package_id
    )
    return db.scalars(query).first()


def live_packages(db: Session, *, record_class: str | None = None) -> list[ArchivePackage]:
    """Every package not disposed of (of one record class), oldest first."""
    query = select(ArchivePackage).where(ArchivePackage.disposed_at.is_(None))
    if record_class is not None:
        query = query.where(ArchivePackage.record_class == record_class)
    return list(db.scalars(query.order_by(ArchivePackage.created_at, ArchivePackage.id)))


def awaiting_timestamp(db: Session, limit: int) -> list[ArchivePackage]:
    """The packages not disposed of that still await their time stamp, oldest first, locked for this run."""
    query = (
        select(ArchivePackage)
        .where(ArchivePackage.timestamp_state == "awaiting", ArchivePackage.disposed_at.is_(None))
        .order_by(ArchivePackage.created_at, ArchivePackage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(db.scalars(query))


def due_for_renewal(db: Session, *, now: datetime, weakened: set[str], limit: int) -> list[ArchivePackage]:
    """The stamped packages not disposed of whose stamp chain is due for renewal (its last stamp's authority
    certificate expires within the margin, or its digest algorithm is weakened) or not read yet, oldest due first,
    locked for this run."""
    due = or_(ArchivePackage.stamp_chain_length == 0, ArchivePackage.stamp_renewal_due_at <= now)
    if weakened:
        due = or_(due, ArchivePackage.stamp_digest_algorithm.in_(sorted(weakened)))
    query = (
        select(ArchivePackage)
        .where(ArchivePackage.timestamp_state == "stamped", ArchivePackage.disposed_at.is_(None), due)
        .order_by(ArchivePackage.stamp_renewal_due_at, ArchivePackage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(db.scalars(query))


def count_awaiting_timestamp(db: Session) -> int:
    query = select(func.count()).where(ArchivePackage.timestamp_state == "awaiting", ArchivePackage.disposed_at.is_(None))
    return int(db.scalar(query) or 0)


def object_in_use(db: Session, key: str) -> bool:
    """Does a package not disposed of still point at this object (the store is content-addressed)?"""
    query = select(ArchivePackage.id).where(ArchivePackage.object_key == key, ArchivePackage.disposed_at.is_(None))
    return db.scalars(query.limit(1)).first() is not None


def live_packages_of(db: Session, *, record_class: str, record_id: str) -> list[ArchivePackage]:
    return [p for p in packages_of(db, record_class=record_class, record_id=record_id) if p.disposed_at is None]


def packages_between(db: Session, *, record_class: str, since: datetime, until: datetime) -> list[ArchivePackage]:
    """The packages of a class written in [since, until), not disposed of, oldest first."""
    query = (
        select(ArchivePackage)
        .where(
            ArchivePackage.record_class == record_class,
            ArchivePackage.disposed_at.is_(None),
            ArchivePackage.created_at >= since,
            ArchivePackage.created_at < until,
        )
        .order_by(ArchivePackage.created_at, ArchivePackage.id)
    )
    return list(db.scalars(query))


def key_still_used(db: Session, object_key: str) -> bool:
    """Whether a package not disposed of has these bytes (object storage is addressed by content)."""
    query = select(ArchivePackage.id).where(ArchivePackage.object_key == object_key, ArchivePackage.disposed_at.is_(None))
    return db.scalars(query.limit(1)).first() is not None


def active_holds(db: Session, *, record_class: str | None = None, record_id: str | None = None) -> list[ArchiveHold]:
    query = select(ArchiveHold).where(ArchiveHold.released_at.is_(None))
    if record_class is not None:
        query = query.where(ArchiveHold.record_class == record_class)
    if record_id is not None:
        query = query.where(ArchiveHold.record_id == record_id)
    return list(db.scalars(query.order_by(ArchiveHold.placed_at, ArchiveHold.id)))


def hold(db: Session, hold_id: str) -> ArchiveHold | None:
    return db.get(ArchiveHold, hold_id)


def disposal_list(db: Session, list_id: str) -> DisposalList | None:
    return db.get(DisposalList, list_id)


def package(db: Session, package_id: str) -> ArchivePackage | None:
    return db.get(ArchivePackage, package_id)


def tombstones(db: Session, *, record_class: str | None = None, record_id: str | None = None) -> list[ArchiveTombstone]:
    query = select(ArchiveTombstone)
    if record_class is not None:
        query = query.where(ArchiveTombstone.record_class == record_class)
    if record_id is not None:
        query = query.where(ArchiveTombstone.record_id == record_id)
    return list(db.scalars(query.order_by(ArchiveTombstone.disposed_at.desc(), ArchiveTombstone.id).limit(1000)))
