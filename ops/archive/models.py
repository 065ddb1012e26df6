"""The archive packages the hub has written: one row each, the package itself in object storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, utcnow


class ArchivePackage(IdMixin, Base):
    __tablename__ = "archive_packages"
    __table_args__ = (
        Index("ix_archive_packages_record", "record_class", "record_id"),
        Index("ix_archive_packages_timestamp_state", "timestamp_state"),
        Index("ix_archive_packages_stamp_renewal_due_at", "stamp_renewal_due_at"),
    )

    record_class: Mapped[str] = mapped_column(String(40))  # e.g. certificate_version
    record_id: Mapped[str] = mapped_column(String(80))  # the record's identifier (a certificate's GB/T 36904 证照标识)
    department_id: Mapped[str | None] = mapped_column(String(36))  # the department the record belongs to
    object_key: Mapped[str] = mapped_column(String(64))  # SHA-256 of the zip, its key in object storage
    sm3: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    file_name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    # When the retention period starts (the record's end: expiry or revocation, closing, sealing); None: unknown.
    retention_from: Mapped[datetime | None] = mapped_column(default=None)
    disposed_at: Mapped[datetime | None] = mapped_column(default=None)  # the zip was destroyed; see ArchiveTombstone
    # The RFC 3161 time stamp over its tag manifest: stamped | awaiting (the TSA was unreachable; the
    # archive.timestamp job adds it, the stamped zip replacing this one) | none (written before packages had one).
    timestamp_state: Mapped[str] = mapped_column(String(16), default="stamped", server_default="none")
    timestamped_at: Mapped[datetime | None] = mapped_column(default=None)  # the token's genTime
    timestamp_error: Mapped[str | None] = mapped_column(String(300), default=None)  # why it awaits (the last try)
    # The chain of stamps (timestamp.tsr, timestamp-2.tsr, ...; the archive.renew_stamps job adds one before the last
    # stamp's authority certificate expires or its digest algorithm weakens): its length (0: none, or not read yet),
    # the last stamp's TSA certificate expiry and imprint digest algorithm, when the next renewal is due, the last
    # renewal error.
    stamp_chain_length: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    stamp_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    stamp_digest_algorithm: Mapped[str | None] = mapped_column(String(16), default=None)
    stamp_renewal_due_at: Mapped[datetime | None] = mapped_column(default=None)
    stamp_renewal_error: Mapped[str | None] = mapped_column(String(300), default=None)


class ArchiveHold(IdMixin, Base):
    """A legal hold (冻结) on a record: while it is not released, the record's packages are not disposed of."""

    __tablename__ = "archive_holds"
    __table_args__ = (Index("ix_archive_holds_record", "record_class", "record_id"),)

    record_class: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(80))
    reason: Mapped[str] = mapped_column(String(500))
    placed_by: Mapped[str] = mapped_column(String(128))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(128), default=None)
    released_at: Mapped[datetime | None] = mapped_column(default=None)
    release_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class DisposalList(IdMixin, Base):
    """A disposal list (销毁清单): records whose retention has run out, proposed, then approved by the platform."""

    __tablename__ = "archive_disposal_lists"

    as_of: Mapped[datetime]
    items: Mapped[list[Any]] = mapped_column(JSON)  # [{record_class, record_id, due_at, packages: [id, ...]}]
    status: Mapped[str] = mapped_column(String(16))  # proposed | disposed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(128), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(default=None)


class ArchiveTombstone(IdMixin, Base):
    """What a disposal destroyed: one row per package, kept for ever (never a silent delete)."""

    __tablename__ = "archive_tombstones"
    __table_args__ = (Index("ix_archive_tombstones_record", "record_class", "record_id"),)

    record_class: Mapped[str] = mapped_column(String(40))
    record_id: Mapped[str] = mapped_column(String(80))
    package_id: Mapped[str] = mapped_column(String(36))
    package_sha256: Mapped[str] = mapped_column(String(64))
    package_sm3: Mapped[str] = mapped_column(String(64))
    package_size: Mapped[int] = mapped_column(Integer)
    retention_from: Mapped[datetime | None]
    retention_years: Mapped[int] = mapped_column(Integer)
    disposal_list_id: Mapped[str] = mapped_column(String(36))
    proposed_by: Mapped[str] = mapped_column(String(128))
    approved_by: Mapped[str] = mapped_column(String(128))
    disposed_at: Mapped[datetime] = mapped_column(default=utcnow)
