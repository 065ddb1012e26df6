"""Tables of the seal domain: the hub's certificate authority, seals, their history and every use."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, TimestampMixin, VersionedMixin, utcnow
from ops.identity import models as _identity_models  # noqa: F401 (seals refer to departments)


class SealStatus(StrEnum):
    """Lifecycle of a seal (印章状态)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"


class AuthorityKey(Base):
    """A key of the hub's certificate authority: the platform root, the issuing CA, the seal maker (制章人)."""

    __tablename__ = "seal_authority_keys"
    __table_args__ = (Index("ix_seal_authority_keys_role_active", "role", "retired_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # root | issuing | maker
    alg: Mapped[str] = mapped_column(String(16))
    certificate_pem: Mapped[str] = mapped_column(Text)
    private_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # WrappedSecret.as_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class Seal(IdMixin, TimestampMixin, VersionedMixin, Base):
    """An electronic seal (电子印章) of a department: its key, certificate, picture and signed structure."""

    __tablename__ = "seals"
    __table_args__ = (Index("ix_seals_department_status", "department_id", "status"),)

    code: Mapped[str] = mapped_column(String(64), unique=True)  # esID of the seal structure
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    department_code: Mapped[str] = mapped_column(String(18))
    department_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    seal_type: Mapped[str] = mapped_column(String(32))
    alg: Mapped[str] = mapped_column(String(16))
    kid: Mapped[str] = mapped_column(String(64), unique=True)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # WrappedSecret.as_dict(); never leaves the hub
    certificate_pem: Mapped[str] = mapped_column(Text)
    certificate_serial: Mapped[str] = mapped_column(String(64), unique=True)
    picture_type: Mapped[str] = mapped_column(String(8))
    picture: Mapped[bytes] = mapped_column(LargeBinary)
    picture_width_mm: Mapped[float] = mapped_column(Float)
    picture_height_mm: Mapped[float] = mapped_column(Float)
    valid_from: Mapped[datetime]
    valid_to: Mapped[datetime]
    structure: Mapped[dict[str, Any]] = mapped_column(JSON)  # a readable JSON view of the seal (structure_der)
    # The GB/T 38540 v4 SESeal in DER, signed by the SM2 seal maker (None: made before DER; `govhub seals migrate-der`)
    structure_der: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    status: Mapped[str] = mapped_column(String(16), default=SealStatus.ACTIVE.value)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(128))
    # 用印审批: each use needs another authorised person's approval, valid this many hours, used once.
    requires_approval: Mapped[bool] = mapped_column(default=False, server_default=false())
    approval_valid_hours: Mapped[int] = mapped_column(default=24, server_default="24")


class SealCrl(IdMixin, Base):
    """A certificate revocation list the hub's issuing CA published (the newest is served)."""

    __tablename__ = "seal_crls"
    __table_args__ = (Index("ix_seal_crls_issuer_number", "issuer_key_id", "number"),)

    issuer_key_id: Mapped[str] = mapped_column(String(64))  # seal_authority_keys.id of the issuing CA
    number: Mapped[int] = mapped_column(Integer)  # cRLNumber
    this_update: Mapped[datetime]
    next_update: Mapped[datetime]
    entries_hash: Mapped[str] = mapped_column(String(64))  # what it lists, to know when a new one is due
    der: Mapped[bytes] = mapped_column(LargeBinary)


class SealEvent(IdMixin, Base):
    """One change of a seal's status: answers "was the seal usable at that instant?"."""

    __tablename__ = "seal_events"
    __table_args__ = (Index("ix_seal_events_seal_at", "seal_id", "at"),)

    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16))  # the status from this instant
    reason: Mapped[str | None] = mapped_column(String(500))
    actor: Mapped[str] = mapped_column(String(128))


class SealUse(IdMixin, Base):
    """One use of a seal (用印): who, which seal, the document's hash, and the purpose."""

    __tablename__ = "seal_uses"
    __table_args__ = (
        Index("ix_seal_uses_seal_at", "seal_id", "at"),
        Index("ix_seal_uses_document_hash", "document_hash"),
        Index("ix_seal_uses_signature_hash", "signature_hash"),
    )

    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    department_id: Mapped[str] = mapped_column(String(36), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # pdf | data | jose
    document_hash: Mapped[str] = mapped_column(String(128))  # hex
    hash_alg: Mapped[str] = mapped_column(String(16))
    # SHA-256 of the signature value: the hub's own proof that the signature existed at `at`.
    signature_hash: Mapped[str] = mapped_column(String(64))
    purpose: Mapped[str] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(36), default=None)  # the approved request it used
    # The sealed output (the sealed PDF, the DER seal signature) in object storage, for its archive package.
    object_key: Mapped[str | None] = mapped_column(String(64), default=None)
    # The RFC 3161 time stamp over the signature value (detached signatures): "stamped" at signing, "awaiting"
    # (the TSA did not answer: the signature was made without it and waits for the stamp_pending job),
    # "stamped_later" (the job added it), or None (no stamp asked: a PDF at B-B, an OFD, older uses).
    timestamp_state: Mapped[str | None] = mapped_column(String(16), default=None, index=True)
    # The DER SES_Signature as returned without its time stamp, kept while it waits and after (the stamped form
    # is this DER with `timestamp_token` in its timeStamp member).
    signature_der: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    timestamp_token: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)  # the late token (DER)
    stamped_at: Mapped[datetime | None] = mapped_column(default=None)  # the token's genTime
    timestamp_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timestamp_error: Mapped[str | None] = mapped_column(Text, default=None)  # why the last try failed


class SealAuthorisation(IdMixin, Base):
    """Who may use a seal (用印授权), and who may approve its uses: a person or a system, by subject,
    authorised by the seal's department administrator."""

    __tablename__ = "seal_authorisations"
    __table_args__ = (Index("ix_seal_authorisations_seal_subject", "seal_id", "subject"),)

    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    subject: Mapped[str] = mapped_column(String(128))  # a client id, a person's id, or a hub system's name
    subject_kind: Mapped[str] = mapped_column(String(16))  # client | person | system
    may_use: Mapped[bool]
    may_approve: Mapped[bool]
    note: Mapped[str | None] = mapped_column(String(500))
    granted_by: Mapped[str] = mapped_column(String(128))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    withdrawn_by: Mapped[str | None] = mapped_column(String(128))
    withdrawn_at: Mapped[datetime | None] = mapped_column(default=None)


class SealUseRequest(IdMixin, Base):
    """A request to use a seal on one document (用印申请), approved or refused by another authorised person;
    an approval is used once, before it expires."""

    __tablename__ = "seal_use_requests"
    __table_args__ = (Index("ix_seal_use_requests_seal_created", "seal_id", "created_at"),)

    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    requested_by: Mapped[str] = mapped_column(String(128))
    document_name: Mapped[str] = mapped_column(String(300))
    document_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 (hex) of the document to seal
    purpose: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(16))  # pending | approved | refused | used
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(default=None)
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    expires_at: Mapped[datetime | None] = mapped_column(default=None)  # of the approval
    used_at: Mapped[datetime | None] = mapped_column(default=None)
    use_id: Mapped[str | None] = mapped_column(String(36))


class LtaRecord(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A PDF sealed at PAdES B-LTA that the hub keeps verifiable: its newest form (each renewal adds a document
    time stamp, a chain as RFC 4998 does) and what decides the next renewal (the last stamp's TSA certificate
    expiry and its digest algorithm)."""

    __tablename__ = "seal_lta_records"
    __table_args__ = (Index("ix_seal_lta_records_due", "renew_after"),)

    department_id: Mapped[str] = mapped_column(String(36), index=True)
    seal_id: Mapped[str] = mapped_column(ForeignKey("seals.id"))
    use_id: Mapped[str] = mapped_column(String(36))  # seal_uses.id of the sealing
    field_name: Mapped[str] = mapped_column(String(100))  # the seal's signature field
    document: Mapped[bytes] = mapped_column(LargeBinary)  # the newest form of the PDF
    document_sha256: Mapped[str] = mapped_column(String(64))
    timestamps: Mapped[int] = mapped_column(Integer)  # document time stamps in the chain
    last_timestamp_at: Mapped[datetime]
    last_tsa_subject: Mapped[str] = mapped_column(String(500))
    last_tsa_expires_at: Mapped[datetime]
    last_digest_algorithm: Mapped[str] = mapped_column(String(32))
    renew_after: Mapped[datetime]  # the TSA certificate's expiry less the configured margin
    renewals: Mapped[int] = mapped_column(Integer, default=0)
    last_renewed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)  # why the last renewal failed, if it did
