"""Tables of the certhub domain: certificate types, certificates, status, use and trust."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from ops.db import Base, IdMixin, TimestampMixin, VersionedMixin, utcnow


class CertificateStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"  # 异议处理中 (objection open): reversible
    SUPERSEDED = "superseded"  # replaced by a newer version (变更)
    REVOKED = "revoked"  # 注销: final


class CertificateType(IdMixin, TimestampMixin, VersionedMixin, Base):
    """A certificate type of the catalogue (证照目录): face schema, validity, issuers, template."""

    __tablename__ = "cert_types"

    # The defining body's 统一社会信用代码 + 3 digits (GB/T 36904 证照类型代码).
    code: Mapped[str] = mapped_column(String(21), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    holder_kind: Mapped[str] = mapped_column(String(16))
    face_schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    # {"years": 10} / {"years": null} (长期) and whether the issuer may set the end date itself.
    validity: Mapped[dict[str, Any]] = mapped_column(JSON)
    # 统一社会信用代码 of the departments that may issue it.
    issuer_codes: Mapped[list[Any]] = mapped_column(JSON)
    template: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    # Face fields the public 验真 page may show besides the type, issuer and validity (default: none).
    public_fields: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Certificate(IdMixin, VersionedMixin, Base):
    """One version of an issued certificate (电子证照), as signed and published."""

    __tablename__ = "certificates"
    __table_args__ = (
        UniqueConstraint("issuer_department_id", "idempotency_key", name="uq_certificates_idempotency"),
        Index("ix_certificates_holder", "holder_code", "type_code"),
        Index("ix_certificates_series", "type_code", "issuer_code", "serial"),
    )

    identifier: Mapped[str] = mapped_column(String(80), unique=True)  # GB/T 36904 证照标识
    type_id: Mapped[str] = mapped_column(ForeignKey("cert_types.id"), index=True)
    type_code: Mapped[str] = mapped_column(String(21))
    issuer_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    issuer_code: Mapped[str] = mapped_column(String(18))
    serial: Mapped[str] = mapped_column(String(20))
    cert_version: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(64))  # 证照编号 printed on the face
    holder_code: Mapped[str] = mapped_column(String(18))
    holder_kind: Mapped[str] = mapped_column(String(16))
    holder_name: Mapped[str] = mapped_column(String(200))
    face: Mapped[dict[str, Any]] = mapped_column(JSON)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON)  # GB/T 36903 metadata (ZZMC, ZZBS, …)
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=CertificateStatus.ACTIVE.value, index=True)
    status_index: Mapped[int] = mapped_column(Integer, unique=True)  # position in the status lists
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_reason: Mapped[str | None] = mapped_column(String(500))
    previous_id: Mapped[str | None] = mapped_column(String(36))
    superseded_by: Mapped[str | None] = mapped_column(String(80))
    alg: Mapped[str] = mapped_column(String(16))
    kid: Mapped[str] = mapped_column(String(128))
    jws: Mapped[str] = mapped_column(Text)  # compact JWS (VC-JWT) over the whole certificate
    sd_jwt: Mapped[str] = mapped_column(Text)  # SD-JWT VC with every disclosure
    pdf_key: Mapped[str | None] = mapped_column(String(64))
    ofd_key: Mapped[str | None] = mapped_column(String(64))  # the sealed OFD copy (GB/T 33190), in object storage
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    # SHA-256 of the unguessable token in the copy's QR code (public 验真); the token itself is not kept.
    public_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class Counter(Base):
    """Allocators: the next serial of a (type, issuer) series, the next status-list index."""

    __tablename__ = "cert_counters"

    name: Mapped[str] = mapped_column(String(80), primary_key=True)
    next_value: Mapped[int] = mapped_column(Integer)


class StatusReservation(Base):
    """A status-list position a hub process reserved for a certificate it is about to issue (see
    certhub.reservations); kept until RESERVATION_KEEP has passed, by then used or abandoned."""

    __tablename__ = "cert_status_reservations"

    status_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    reserved_at: Mapped[datetime] = mapped_column(index=True)


class HubKey(Base):
    """The hub's own key: signs status lists and holder presentations; private half encrypted."""

    __tablename__ = "cert_hub_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(16))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    private_key: Mapped[dict[str, Any]] = mapped_column(JSON)  # WrappedSecret.as_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(default=None)


class UsedNonce(Base):
    """A presentation nonce already accepted by a verifier (replay protection)."""

    __tablename__ = "cert_used_nonces"

    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    audience: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Authorisation(IdMixin, TimestampMixin, Base):
    """授权用证: a holder lets a department use a certificate type for a purpose until a time."""

    __tablename__ = "cert_authorisations"
    __table_args__ = (Index("ix_cert_authorisations_lookup", "holder_code", "grantee_department_id", "type_code"),)

    holder_code: Mapped[str] = mapped_column(String(18))
    type_code: Mapped[str] = mapped_column(String(21))
    certificate_identifier: Mapped[str | None] = mapped_column(String(80))
    grantee_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"))
    purpose: Mapped[str] = mapped_column(String(200))
    valid_until: Mapped[datetime]
    granted_by: Mapped[str] = mapped_column(String(128))  # the holder, or the agent acting for them
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Delegation(IdMixin, TimestampMixin, Base):
    """委托用证: an agent may act for the holder within limits (types, actions, time)."""

    __tablename__ = "cert_delegations"

    holder_code: Mapped[str] = mapped_column(String(18), index=True)
    agent_code: Mapped[str] = mapped_column(String(18), index=True)
    agent_name: Mapped[str] = mapped_column(String(200))
    type_codes: Mapped[list[Any]] = mapped_column(JSON)  # empty: every type
    actions: Mapped[list[Any]] = mapped_column(JSON)  # "list", "show", "authorise", "object"
    valid_until: Mapped[datetime]
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Access(IdMixin, Base):
    """One use of a certificate (verify, fetch, download, view): who, when and why (use_cause)."""

    __tablename__ = "cert_accesses"
    __table_args__ = (Index("ix_cert_accesses_holder", "holder_code", "at"),)

    at: Mapped[datetime] = mapped_column(default=utcnow)
    holder_code: Mapped[str] = mapped_column(String(18))
    certificate_identifier: Mapped[str] = mapped_column(String(80), index=True)
    action: Mapped[str] = mapped_column(String(32))
    accessor: Mapped[str] = mapped_column(String(128))
    accessor_department_id: Mapped[str | None] = mapped_column(String(36))
    accessor_department_name: Mapped[str | None] = mapped_column(String(200))
    use_cause: Mapped[str | None] = mapped_column(String(200))
    fields: Mapped[list[Any]] = mapped_column(JSON, default=list)


class ObjectionStatus(StrEnum):
    OPEN = "open"
    CORRECTED = "corrected"
    DISMISSED = "dismissed"


class Objection(IdMixin, TimestampMixin, VersionedMixin, Base):
    """异议处理: a dispute of a certificate, suspended while open, decided by its issuer."""

    __tablename__ = "cert_objections"

    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    certificate_identifier: Mapped[str] = mapped_column(String(80))
    issuer_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    filed_by: Mapped[str] = mapped_column(String(128))
    filer_kind: Mapped[str] = mapped_column(String(16))  # holder / agent / issuer / platform (older rows: department)
    filer_department_id: Mapped[str | None] = mapped_column(String(36))
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=ObjectionStatus.OPEN.value, index=True)
    due_at: Mapped[datetime]
    due_provisional: Mapped[bool] = mapped_column(default=False)
    overdue: Mapped[bool] = mapped_column(default=False)
    resolution: Mapped[str | None] = mapped_column(String(1000))
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    corrected_identifier: Mapped[str | None] = mapped_column(String(80))
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)


class FeedbackStatus(StrEnum):
    OPEN = "open"
    ANSWERED = "answered"


class Feedback(IdMixin, TimestampMixin, VersionedMixin, Base):
    """反馈纠错: a suspected error in a certificate, reported to its issuer by one who used it; the status stays."""

    __tablename__ = "cert_feedback"

    certificate_id: Mapped[str] = mapped_column(ForeignKey("certificates.id"), index=True)
    certificate_identifier: Mapped[str] = mapped_column(String(80))
    issuer_department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    filed_by: Mapped[str] = mapped_column(String(128))
    filer_kind: Mapped[str] = mapped_column(String(16))  # department / holder / agent / issuer / platform
    filer_department_id: Mapped[str | None] = mapped_column(String(36), index=True)
    reason: Mapped[str] = mapped_column(String(1000))
    status: Mapped[str] = mapped_column(String(16), default=FeedbackStatus.OPEN.value, index=True)
    answer: Mapped[str | None] = mapped_column(String(1000))
    answered_by: Mapped[str | None] = mapped_column(String(128))
    answered_at: Mapped[datetime | None] = mapped_column(default=None)


class TrustedHub(IdMixin, TimestampMixin, VersionedMixin, Base):
    """互通互认: another region's certificate hub whose certificates verify here."""

    __tablename__ = "cert_trusted_hubs"

    issuer: Mapped[str] = mapped_column(String(300), unique=True)  # its `iss` (base URL)
    name: Mapped[str] = mapped_column(String(200))
    region_code: Mapped[str] = mapped_column(String(6))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    jwks_url: Mapped[str | None] = mapped_column(String(500))
    status_list_urls: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active / suspended
    jwks_fetched_at: Mapped[datetime | None] = mapped_column(default=None)


class ServiceState(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    SUPERSEDED = "superseded"  # a newer version was published; still readable


class MaterialKind(StrEnum):
    CERTIFICATE = "certificate"  # satisfied by an electronic certificate of a type (免于提交)
    DATA = "data"  # satisfied by an item of a shared data resource (免于提交)
    SUBMIT = "submit"  # the applicant submits it


class ServiceItem(IdMixin, TimestampMixin, VersionedMixin, Base):
    """One version of a service item (政务服务事项): its form fields and required materials. Edits make a new
    version (a draft), which is published; earlier versions stay readable."""

    __tablename__ = "cert_services"
    __table_args__ = (UniqueConstraint("code", "number", name="uq_cert_services_code_number"),)

    code: Mapped[str] = mapped_column(String(40), index=True)  # 事项编码
    number: Mapped[int] = mapped_column(Integer)  # the version's number, 1, 2, …
    name: Mapped[str] = mapped_column(String(200))
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)  # the owning department
    holder_kind: Mapped[str] = mapped_column(String(16))  # who applies: person / enterprise
    # [{"name", "label", "material", "field"}]: a form field, and the material (by key) and field it is filled from.
    form_fields: Mapped[list[Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16), default=ServiceState.DRAFT.value, index=True)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    created_by: Mapped[str] = mapped_column(String(128))


class ServiceMaterial(IdMixin, Base):
    """A material a service version requires, and what satisfies it: a certificate type, an item of a shared
    data resource (looked up by the holder's code in one of its control parameters), or the applicant."""

    __tablename__ = "cert_service_materials"
    __table_args__ = (UniqueConstraint("service_id", "key", name="uq_cert_service_materials_key"),)

    service_id: Mapped[str] = mapped_column(ForeignKey("cert_services.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16), index=True)
    type_code: Mapped[str | None] = mapped_column(String(21))
    resource_id: Mapped[str | None] = mapped_column(String(36))
    resource_name: Mapped[str | None] = mapped_column(String(200))
    item: Mapped[str | None] = mapped_column(String(100))
    key_item: Mapped[str | None] = mapped_column(String(100))  # the control parameter that takes the holder's code


class ShortCode(Base):
    """亮证码: a short reference to a presentation, redeemed once by the window it was made for.

    Only a hash of the code is kept; the presentation is kept encrypted under a key derived from the code,
    so the table alone reveals neither."""

    __tablename__ = "cert_short_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    certificate_identifier: Mapped[str] = mapped_column(String(80), index=True)
    holder_code: Mapped[str] = mapped_column(String(18))
    audience: Mapped[str] = mapped_column(String(64))  # the window's department (统一社会信用代码)
    nonce: Mapped[str] = mapped_column(String(128))
    sealed: Mapped[str] = mapped_column(Text)  # the presentation, AES-GCM under a key derived from the code
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(default=None)
    redeemed_by: Mapped[str | None] = mapped_column(String(128))
