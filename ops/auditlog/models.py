"""Tables of the audit log: leaves in log order, signed checkpoints, and the log's signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ops.db import Base, utcnow


class LogEntry(Base):
    """One leaf of the log: which audit record sits at which position, and its leaf hash."""

    __tablename__ = "audit_log_entries"

    # 0-based leaf index; the primary key makes two sequencers racing for one slot impossible.
    index: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    # No foreign key on purpose: the log must outlive, and report, a record removed behind its back.
    audit_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    appended_at: Mapped[datetime] = mapped_column(default=utcnow)


class LogNode(Base):
    """The hash of a complete (perfect) subtree above the leaves, so proofs need O(log n) reads."""

    __tablename__ = "audit_log_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # 1 = pairs of leaves
    position: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False)
    hash: Mapped[str] = mapped_column(String(64))


class LogCheckpoint(Base):
    """A signed statement of the log's size and root hash at a moment."""

    __tablename__ = "audit_log_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)
    key_id: Mapped[str] = mapped_column(String(64), ForeignKey("audit_log_keys.key_id"))
    # The exact signed text (see service.checkpoint_body) and its Ed25519 signature, base64.
    body: Mapped[str] = mapped_column(Text)
    signature: Mapped[str] = mapped_column(String(128))
    # Its RFC 3161 time stamp, once the TSA gave one (read only: the stamp is a row of its own).
    timestamp: Mapped[LogTimestamp | None] = relationship(
        primaryjoin="LogCheckpoint.id == foreign(LogTimestamp.checkpoint_id)", viewonly=True, uselist=False
    )

    @property
    def timestamp_state(self) -> str:
        """ "stamped", or "awaiting" its time stamp (the TSA was unreachable; the audit-log job stamps it later)."""
        return "stamped" if self.timestamp is not None else "awaiting"

    @property
    def timestamped_at(self) -> datetime | None:
        return self.timestamp.gen_time if self.timestamp is not None else None

    @property
    def timestamp_token(self) -> bytes | None:
        return self.timestamp.token if self.timestamp is not None else None


class LogTimestamp(Base):
    """The RFC 3161 time stamp of a signed checkpoint, over `checkpoints.stamped_bytes` (append-only, like the
    checkpoint). A checkpoint without one is awaiting its time stamp: the audit-log job adds it later."""

    __tablename__ = "audit_log_timestamps"

    # No foreign key on purpose, as for the leaves: the log must outlive, and report, a checkpoint removed.
    checkpoint_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    token: Mapped[bytes] = mapped_column(LargeBinary)  # DER ContentInfo (SignedData over a TSTInfo)
    gen_time: Mapped[datetime]  # the time the token states
    stamped_at: Mapped[datetime] = mapped_column(default=utcnow)  # when the hub got it (later, after a wait)


class LogKey(Base):
    """An Ed25519 key that signs checkpoints; the private half is wrapped by the KeyVault."""

    __tablename__ = "audit_log_keys"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(64))  # raw 32 bytes, base64
    private_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # WrappedSecret.as_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)
