"""Request and response models of the seal domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ops.timestamps import ZonedDatetime

SEAL_TYPES = ("公章", "合同专用章", "财务专用章", "业务专用章", "发票专用章", "电子证照专用章")
Algorithm = Literal["EdDSA", "ES256", "SM2"]


class SealPicture(BaseModel):
    """The seal's picture: PNG or SVG, base64, with its printed size in millimetres."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["png", "svg"]
    data_base64: str = Field(min_length=1, description="the PNG or SVG file, base64")
    width_mm: float = Field(ge=10, le=100, description="printed width, 10..100 mm (a 公章 is usually 40-42 mm)")
    height_mm: float = Field(ge=10, le=100)


class SealCreate(BaseModel):
    """A seal to make (制发) for a department."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "department_id": "6f1c2b7e-0d4a-4c1e-9a53-2f1f0c1d9e11",
                    "name": "北京市市场监督管理局",
                    "seal_type": "公章",
                    "algorithm": "SM2",
                    "picture": {
                        "type": "svg",
                        "data_base64": "PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciIHZpZXdCb3g9IjAgMCA0MiA0MiIvPg==",
                        "width_mm": 42,
                        "height_mm": 42,
                    },
                    "valid_to": "2031-12-31T23:59:59+08:00",
                }
            ]
        },
    )

    department_id: str = Field(min_length=1, max_length=36)
    name: str = Field(min_length=1, max_length=200, description="the text of the seal, e.g. 某某市市场监督管理局")
    seal_type: str = Field(description="公章, 合同专用章, 财务专用章, 业务专用章, 发票专用章 or 电子证照专用章")
    algorithm: Algorithm = "SM2"
    picture: SealPicture
    valid_from: ZonedDatetime | None = Field(default=None, description="default: now")
    valid_to: ZonedDatetime

    @field_validator("seal_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in SEAL_TYPES:
            raise ValueError(f"unknown seal type {value!r}; use one of {', '.join(SEAL_TYPES)}")
        return value


class SealRead(BaseModel):
    """A seal as its department and the platform see it (never its private key)."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    code: str
    department_id: str
    department_code: str
    department_name: str
    name: str
    seal_type: str
    algorithm: str = Field(validation_alias=AliasChoices("algorithm", "alg"), description="as given when it was made")
    kid: str
    public_jwk: dict[str, Any]
    certificate_pem: str
    picture_type: str
    picture_width_mm: float
    picture_height_mm: float
    valid_from: datetime
    valid_to: datetime
    status: str
    status_reason: str | None
    revoked_at: datetime | None
    created_at: datetime
    created_by: str
    version: int
    requires_approval: bool = Field(description="each use needs a second person's approval (用印审批)")
    approval_valid_hours: int


class StatusChange(BaseModel):
    """Suspend, resume or revoke a seal, with the reason."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=500)


class SealUseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seal_id: str
    at: datetime
    actor: str
    kind: str
    document_hash: str
    hash_alg: str
    purpose: str
    request_id: str | None = Field(default=None, description="the approved use request this use consumed")
    timestamp_state: str | None = Field(
        default=None,
        description="the signature's RFC 3161 time stamp: stamped (at signing), awaiting (the TSA did not answer; "
        "stamped later), stamped_later, or null (none asked)",
    )
    stamped_at: datetime | None = Field(default=None, description="the late time stamp's time (stamped_later)")
    timestamp_error: str | None = Field(default=None, description="why the TSA gave no time stamp yet (awaiting)")


class DetachedSignRequest(BaseModel):
    """Data to seal with a detached GB/T 38540 seal signature: bytes (base64) or a JSON document."""

    model_config = ConfigDict(extra="forbid")

    purpose: str = Field(min_length=2, max_length=500, description="why the seal is used (用印事由)")
    seal_id: str | None = None
    seal_type: str | None = None
    data_base64: str | None = Field(default=None, description="the bytes to seal, base64")
    document: dict[str, Any] | list[Any] | None = Field(
        default=None, description="a JSON document to seal; its canonical form (sorted keys, compact, UTF-8) is hashed"
    )
    content_type: str = Field(default="application/octet-stream", max_length=100)
    approval_id: str | None = Field(default=None, description="the approved use request (用印审批) for these bytes")


class DetachedVerifyRequest(BaseModel):
    """Data plus its detached seal signature, to verify."""

    model_config = ConfigDict(extra="forbid")

    signature: str | dict[str, Any] = Field(
        description="the DER SES_Signature in base64 (or the sealing API's answer, or a signature in the earlier JSON form)"
    )
    data_base64: str | None = None
    document: dict[str, Any] | list[Any] | None = None


class Check(BaseModel):
    status: Literal["passed", "failed", "indeterminate", "warning", "not_applicable"]
    message: str


class EvidenceRead(BaseModel):
    """One piece of evidence about a PDF signature and how long it holds (long-term validation)."""

    kind: Literal["signature", "signature_timestamp", "dss_revocation", "hub_record", "document_timestamp"]
    status: str = Field(description="passed, failed or not_applicable")
    at: datetime | None = None
    expires_at: datetime | None = Field(default=None, description="until when it holds (its certificate's expiry)")
    message: str


class VerificationReport(BaseModel):
    """What a verifier learns about one seal signature, ETSI-style (EU DSS simple report in spirit)."""

    verdict: Literal["valid", "invalid", "indeterminate"]
    indication: Literal["TOTAL_PASSED", "TOTAL_FAILED", "INDETERMINATE"]
    sub_indication: str | None = None
    reasons: list[str]
    kind: Literal["pdf", "detached", "ofd"]
    checks: dict[str, Check]
    signer: dict[str, Any] | None = None
    seal: dict[str, Any] | None = None
    signing_time: datetime | None = None
    timestamp_time: datetime | None = None
    format: str | None = Field(default=None, description="the seal signature's format, e.g. GB/T 38540 version 4 (DER)")
    as_of: datetime | None = Field(default=None, description="the time the verdict is given for (PDF: now, or as asked)")
    level: str | None = Field(default=None, description="the PAdES level the PDF signature reaches (B-B … B-LTA)")
    evidence: list[EvidenceRead] | None = Field(default=None, description="PDF: every piece of evidence found")
    carried_by: list[str] | None = Field(default=None, description="PDF: the evidence kinds that carry the verdict")


class PdfVerificationReport(BaseModel):
    """A report per seal signature found in the PDF, and the verdict of the whole document."""

    verdict: Literal["valid", "invalid", "indeterminate"]
    signatures: list[VerificationReport]


class OfdReference(BaseModel):
    file: str = Field(description="the FileRef as Signature.xml writes it")
    status: Literal["passed", "failed"]
    message: str = ""


class OfdSignatureReport(VerificationReport):
    """One seal signature of an OFD: what its Signature.xml says, each signed file, and the checks."""

    signature_id: str | None = None
    path: str | None = Field(default=None, description="the Signature.xml in the package")
    provider: dict[str, str] = Field(default_factory=dict)
    signature_method: str | None = None
    signature_date_time: str | None = Field(default=None, description="SignatureDateTime as the producer wrote it")
    check_method: str | None = None
    references: list[OfdReference] = Field(default_factory=list)
    stamp_annots: list[dict[str, str]] = Field(default_factory=list)


class OfdVerificationReport(BaseModel):
    """A report per seal signature of the OFD, and the verdict of the whole document."""

    verdict: Literal["valid", "invalid", "indeterminate"]
    doc_id: str | None = None
    signatures: list[OfdSignatureReport]


class SealAuthorisationCreate(BaseModel):
    """Authorise a person or a system to use a seal and/or approve its uses (用印授权)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"subject": "gh_3f9a1c2b7d4e5f60", "subject_kind": "client", "may_use": True}]},
    )

    subject: str = Field(min_length=1, max_length=128, description="a client id, a person's id, or a hub system (certhub)")
    subject_kind: Literal["client", "person", "system"]
    may_use: bool = True
    may_approve: bool = False
    note: str | None = Field(default=None, max_length=500)


class SealAuthorisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seal_id: str
    subject: str
    subject_kind: str
    may_use: bool
    may_approve: bool
    note: str | None
    granted_by: str
    granted_at: datetime
    withdrawn_by: str | None
    withdrawn_at: datetime | None


class SealAuthorisationWithdraw(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=2, max_length=500)


class SealUsePolicy(BaseModel):
    """Whether every use of the seal needs a second person's approval, and how long an approval lasts."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"requires_approval": True, "approval_valid_hours": 24}]}
    )

    requires_approval: bool
    approval_valid_hours: int = Field(default=24, ge=1, le=168)


class SealUseRequestCreate(BaseModel):
    """A request to use the seal on one document (用印申请)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "document_name": "关于开展数据共享工作的通知.pdf",
                    "document_hash": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "purpose": "发文用印",
                }
            ]
        },
    )

    document_name: str = Field(min_length=1, max_length=300)
    document_hash: str = Field(min_length=64, max_length=64, description="SHA-256 of the document to seal, hex")
    purpose: str = Field(min_length=2, max_length=500, description="why the seal is used (用印事由)")


class SealUseDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class SealUseRequestRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    seal_id: str
    requested_by: str
    document_name: str
    document_hash: str
    purpose: str
    status: str = Field(description="pending, approved, refused or used (an approval past expires_at cannot be used)")
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    expires_at: datetime | None
    used_at: datetime | None
    use_id: str | None


class LtaRecordRead(BaseModel):
    """A PDF the hub keeps at PAdES B-LTA: its document time stamp chain and when it is next renewed."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    seal_id: str
    use_id: str
    field_name: str = Field(description="the seal's signature field")
    document_sha256: str = Field(description="SHA-256 of the newest form of the PDF")
    timestamps: int = Field(description="document time stamps in the chain")
    last_timestamp_at: datetime
    last_tsa_subject: str
    last_tsa_expires_at: datetime = Field(description="when the last stamp's TSA certificate expires")
    last_digest_algorithm: str
    renew_after: datetime = Field(description="when the renewal job adds the next stamp")
    renewals: int
    last_renewed_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_error: str | None = Field(default=None, description="why the last renewal failed (it is tried again)")
    created_at: datetime
