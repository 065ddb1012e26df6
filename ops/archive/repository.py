"""Every query of the archive packages (the record's owner is checked by the record class before these run)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.archive.models import ArchivePackage


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
