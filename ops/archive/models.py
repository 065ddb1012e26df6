"""The archive packages the hub has written: one row each, the package itself in object storage."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, utcnow


class ArchivePackage(IdMixin, Base):
    __tablename__ = "archive_packages"
    __table_args__ = (Index("ix_archive_packages_record", "record_class", "record_id"),)

    record_class: Mapped[str] = mapped_column(String(40))  # e.g. certificate_version
    record_id: Mapped[str] = mapped_column(String(80))  # the record's identifier (a certificate's GB/T 36904 证照标识)
    department_id: Mapped[str | None] = mapped_column(String(36))  # the department the record belongs to
    object_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the zip, its key in object storage
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
