"""Request and response models of the certhub API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from ops.timestamps import ZonedDatetime

HolderKindName = Literal["person", "enterprise"]
USE_CAUSE_MAX = 200
# A moment is `…_at` (`valid_until` is a date wherever it appears); `valid_until`, the former spelling of an
# authorisation's or a delegation's end, is still accepted (tests/certhub/test_use.py, the console's form).
EXPIRES_AT = AliasChoices("expires_at", "valid_until")


def _use_cause(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("use_cause (申请事由) is required: say why the certificate is needed")
    if len(value) > USE_CAUSE_MAX:
        raise ValueError(f"use_cause (申请事由) must be at most {USE_CAUSE_MAX} characters, got {len(value)}")
    return value


class Validity(BaseModel):
    """How long a certificate of the type is valid."""

    model_config = ConfigDict(extra="forbid")

    default_years: int | None = Field(default=None, ge=1, le=100, description="when the issuer gives no end date; null: 长期")
    max_years: int | None = Field(default=None, ge=1, le=100, description="longest period the issuer may set")
    end_required: bool = False


class CertificateTypeCreate(BaseModel):
    """A certificate type (证照目录 entry)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=21, max_length=21, description="defining body's 统一社会信用代码 + 3 digits")
    name: str = Field(min_length=1, max_length=100)
    holder_kind: HolderKindName
    face_schema: dict[str, Any] = Field(description="JSON Schema (2020-12) of the face fields")
    validity: Validity = Field(default_factory=Validity)
    issuer_codes: list[str] = Field(default_factory=list, description="统一社会信用代码 of the departments that may issue it")
    template: dict[str, Any] = Field(default_factory=dict, description='rendering template: {"title": …, "accent": "#rrggbb"}')
    public_fields: list[str] = Field(
        default_factory=list, max_length=50, description="face fields the public 验真 page may show (default: none)"
    )


class CertificateTypeUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=100)
    face_schema: dict[str, Any] | None = None
    validity: Validity | None = None
    issuer_codes: list[str] | None = None
    template: dict[str, Any] | None = None
    active: bool | None = None
    public_fields: list[str] | None = Field(default=None, max_length=50)


class CertificateTypeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    holder_kind: str
    face_schema: dict[str, Any]
    validity: dict[str, Any]
    issuer_codes: list[str]
    template: dict[str, Any]
    active: bool
    version: int
    public_fields: list[str] = Field(default_factory=list, description="face fields the public 验真 page shows")


class HolderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, max_length=30, description="公民身份号码 or 统一社会信用代码")
    kind: HolderKindName = "person"
    name: str = Field(min_length=1, max_length=200)


class IssueRequest(BaseModel):
    """签发: what an issuing department's system sends to put a certificate into the library."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type_code": "11100000000019713D001",
                    "holder": {"code": "110105199003074341", "kind": "person", "name": "张三"},
                    "face": {
                        "name": "张三",
                        "sex": "女",
                        "ethnicity": "汉",
                        "birth_date": "1990-03-07",
                        "address": "北京市朝阳区某某街道1号",
                        "id_number": "110105199003074341",
                        "authority": "北京市公安局朝阳分局",
                    },
                    "valid_until": "2036-03-07",
                }
            ]
        },
    )

    type_code: str = Field(min_length=1, max_length=21)
    holder: HolderIn
    face: dict[str, Any]
    number: str | None = Field(default=None, min_length=1, max_length=64, description="证照编号 printed on the face")
    valid_from: date | None = Field(default=None, description="default: today (Asia/Shanghai)")
    valid_until: date | None = Field(default=None, description="default: from the type's validity rule; null: 长期")
    render_pdf: bool = Field(default=True, description="make the sealed copy (OFD or PDF, see copy_format); false: none")
    copy_format: Literal["ofd", "pdf"] | None = Field(
        default=None,
        description="the copy's format; default: OFD when the issuing department has an SM2 seal the certificate hub "
        "may use (用印管理), else PDF",
    )


class ChangeRequest(BaseModel):
    """变更: the new face (complete, or only the changed fields) and why."""

    model_config = ConfigDict(extra="forbid")

    face: dict[str, Any] = Field(default_factory=dict)
    holder_name: str | None = Field(default=None, min_length=1, max_length=200)
    valid_until: date | None = None
    reason: str = Field(min_length=1, max_length=500)
    render_pdf: bool = Field(default=True, description="make the sealed copy (OFD or PDF, see copy_format); false: none")
    copy_format: Literal["ofd", "pdf"] | None = Field(default=None, description="as for issuance")


class ReasonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class CertificateRead(BaseModel):
    """A certificate as its issuer, its holder, or an authorised department sees it."""

    model_config = ConfigDict(from_attributes=True)

    identifier: str
    type_code: str
    issuer_code: str
    serial: str
    cert_version: int
    number: str
    holder_code: str
    holder_kind: str
    holder_name: str
    face: dict[str, Any]
    meta: dict[str, Any]
    valid_from: date
    valid_until: date | None
    issued_at: datetime
    status: str
    status_reason: str | None
    superseded_by: str | None
    status_index: int
    jws: str
    sd_jwt: str
    has_pdf: bool = False
    has_ofd: bool = False

    @classmethod
    def of(cls, certificate: Any) -> CertificateRead:
        read = cls.model_validate(certificate)
        read.has_pdf = certificate.pdf_key is not None
        read.has_ofd = certificate.ofd_key is not None
        return read


class CertificateSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    identifier: str
    type_code: str
    name: str = ""
    issuer_code: str
    cert_version: int
    holder_name: str
    valid_from: date
    valid_until: date | None
    status: str


class ShowRequest(BaseModel):
    """亮证: which fields to show, to whom, with which nonce."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(min_length=1, max_length=50)
    audience: str = Field(min_length=1, max_length=64, description="the verifying department's 统一社会信用代码")
    nonce: str | None = Field(
        default=None, min_length=8, max_length=128, description="the verifier's nonce; default: a fresh one"
    )
    ttl_seconds: int = Field(default=300, ge=30, le=600)


class Presentation(BaseModel):
    token: str
    nonce: str
    audience: str
    expires_at: datetime
    fields: list[str]
    qr_png_url: str | None = None


class VerifyRequest(BaseModel):
    """A scanned QR code or a posted presentation token."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=20000)
    nonce: str | None = Field(default=None, max_length=128, description="the nonce this verifier gave the holder, if any")


class ShortCodeCreate(BaseModel):
    """亮证码: which fields to show to which window, bound to the nonce that window showed."""

    fields: list[str] = Field(min_length=1, max_length=50)
    audience: str = Field(min_length=1, max_length=64, description="the verifying department's 统一社会信用代码")
    nonce: str = Field(min_length=8, max_length=128, description="the nonce the window showed (its QR code)")

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"fields": ["name", "id_number"], "audience": "11110000000000001X", "nonce": "n0nce-from-window"}]
        },
    )


class ShortCodeRead(BaseModel):
    code: str = Field(description="the 亮证码: show it as a QR code (version 10 or lower) or read it out")
    audience: str
    nonce: str
    fields: list[str]
    expires_at: datetime


class RedeemRequest(BaseModel):
    """A window redeems a 亮证码 with the nonce it showed the holder."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"code": "LZ1ABCDEFGHJKMNPQRSTVWXYZ0", "nonce": "n0nce-from-window"}]}
    )

    code: str = Field(min_length=1, max_length=64)
    nonce: str = Field(min_length=1, max_length=128)


class VerdictRead(BaseModel):
    valid: bool
    code: str
    message: str
    identifier: str | None = None
    issuer_hub: str | None = None
    type_code: str | None = None
    type_name: str | None = None
    issuer_name: str | None = None
    issuer_code: str | None = None
    status: str | None = None
    disclosed: dict[str, Any] = Field(default_factory=dict)


class NonceRead(BaseModel):
    nonce: str
    audience: str


class FetchRequest(BaseModel):
    """一证通办: fetch a holder's certificate of a type, with the reason."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"holder_code": "110105199003074341", "type_code": "11100000000019713D001", "use_cause": "办理居住证"}]
        },
    )

    holder_code: str = Field(min_length=1, max_length=30)
    type_code: str = Field(min_length=1, max_length=21)
    # `useCause` is the former spelling, still accepted (tests/certhub/test_use.py and the clients docs/certhub.md described).
    use_cause: str = Field(
        validation_alias=AliasChoices("use_cause", "useCause"), max_length=USE_CAUSE_MAX, description="申请事由"
    )

    _check = field_validator("use_cause")(_use_cause)


class AuthorisationCreate(BaseModel):
    """授权用证: let a department use one type of my certificates for a purpose until a time."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type_code": "11100000000019713D001",
                    "department_code": "11110000T5MY01MRN4",
                    "purpose": "办理居住证",
                    "expires_at": "2027-06-30T23:59:59+08:00",
                }
            ]
        },
    )

    type_code: str = Field(min_length=1, max_length=21)
    department_code: str = Field(min_length=18, max_length=18)
    purpose: str = Field(min_length=1, max_length=200)
    expires_at: ZonedDatetime = Field(validation_alias=EXPIRES_AT, description="the moment it stops working")


class AuthorisationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    holder_code: str
    type_code: str
    grantee_department_id: str
    purpose: str
    expires_at: datetime = Field(validation_alias=EXPIRES_AT)
    granted_by: str
    created_at: datetime
    revoked_at: datetime | None


class DelegationCreate(BaseModel):
    """委托用证: let an agent act for me within limits."""

    model_config = ConfigDict(extra="forbid")

    agent_code: str = Field(min_length=18, max_length=18, description="the agent's 公民身份号码")
    agent_name: str = Field(min_length=1, max_length=200)
    type_codes: list[str] = Field(default_factory=list, description="empty: every type")
    actions: list[Literal["list", "show", "authorise", "object"]] = Field(
        min_length=1, description="object: file an objection (异议), which suspends the certificate, or report an error"
    )
    expires_at: ZonedDatetime = Field(validation_alias=EXPIRES_AT, description="the moment it stops working")


class DelegationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    holder_code: str
    agent_code: str
    agent_name: str
    type_codes: list[str]
    actions: list[str]
    expires_at: datetime = Field(validation_alias=EXPIRES_AT)
    revoked_at: datetime | None


class CertificateAccessRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="a verification or fetch can be rated by its holder: POST …/me/accesses/{id}/rating-token")
    at: datetime
    certificate_identifier: str
    action: str
    accessor: str
    accessor_department_name: str | None
    use_cause: str | None
    fields: list[str]


class DownloadQuery(BaseModel):
    use_cause: str

    _check = field_validator("use_cause")(_use_cause)


class ObjectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


class ObjectionCorrect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face: dict[str, Any] = Field(default_factory=dict)
    holder_name: str | None = Field(default=None, min_length=1, max_length=200)
    resolution: str = Field(min_length=1, max_length=1000)


class ObjectionDismiss(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resolution: str = Field(min_length=1, max_length=1000)


class ObjectionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    certificate_identifier: str
    filed_by: str
    filer_kind: str
    reason: str
    status: str
    due_at: datetime
    due_provisional: bool
    overdue: bool
    resolution: str | None
    resolved_at: datetime | None
    corrected_identifier: str | None
    history: list[dict[str, Any]]
    created_at: datetime
    version: int


class FeedbackCreate(BaseModel):
    """反馈纠错: what looks wrong in the certificate (its status does not change)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


class FeedbackAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, max_length=1000, description="what the issuer found and did")


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    certificate_identifier: str
    filed_by: str
    filer_kind: str
    reason: str
    status: str
    answer: str | None
    answered_at: datetime | None
    created_at: datetime
    version: int


class TrustedHubCreate(BaseModel):
    """Another hub whose certificates verify here (互通互认)."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1, max_length=300, description="the hub's issuer URL (`iss` of its certificates)")
    name: str = Field(min_length=1, max_length=200)
    region_code: str = Field(min_length=6, max_length=6)
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = Field(default=None, max_length=500)
    status_list_urls: list[str] = Field(default_factory=list, description="URL prefixes of its status lists")

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/") if value else value


class TrustedHubUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    jwks: dict[str, Any] | None = None
    jwks_url: str | None = Field(default=None, max_length=500)
    status_list_urls: list[str] | None = None
    status: Literal["active", "suspended"] | None = None


class TrustedHubRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    issuer: str
    name: str
    region_code: str
    jwks: dict[str, Any] | None
    jwks_url: str | None
    status_list_urls: list[str]
    status: str
    version: int


class BulkRowError(BaseModel):
    row: int
    message: str
    errors: list[dict[str, Any]] = Field(default_factory=list)


class BulkReport(BaseModel):
    total: int
    issued: int = Field(description="rows issued a new certificate")
    replayed: int = Field(description="rows whose idempotency key was used before for the same request: the earlier certificate")
    failed: int
    identifiers: list[str] = Field(description="the certificate of each row that has one (issued or replayed), in row order")
    errors: list[BulkRowError]


# ---- service items (政务服务事项), prefill and 一证通办 in one step ------------------------------------------

MaterialKindName = Literal["certificate", "data", "submit"]


class MaterialSpec(BaseModel):
    """A material a service requires, and what satisfies it: a certificate type (`type_code`), an item of a
    shared data resource (`resource_id`, `item`, and `key_item`: the control parameter that takes the
    holder's code), or nothing the government holds (`submit`: the applicant brings it)."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z][A-Za-z0-9_]*$", description="unique in the service")
    name: str = Field(min_length=1, max_length=200)
    kind: MaterialKindName
    type_code: str | None = Field(default=None, max_length=21)
    resource_id: str | None = Field(default=None, max_length=36)
    item: str | None = Field(default=None, max_length=100)
    key_item: str | None = Field(default=None, max_length=100)


class FormFieldSpec(BaseModel):
    """A field of the service's form, filled from a material: a certificate's face field or a data item."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    label: str = Field(min_length=1, max_length=100)
    material: str = Field(min_length=1, max_length=40, description="the key of the material it is filled from")
    field: str | None = Field(default=None, max_length=100, description="the certificate's face field (data: the item)")


class ServiceCreate(BaseModel):
    """A service item (政务服务事项): its code, name, owning department, form fields and required materials."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "code": "11110000000019713D4000117001",
                    "name": "居住证申领",
                    "department_code": "11110000000019713D",
                    "holder_kind": "person",
                    "materials": [
                        {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": "11100000000019713D001"},
                        {"key": "photo", "name": "近期免冠照片", "kind": "submit"},
                    ],
                    "form_fields": [{"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"}],
                }
            ]
        },
    )

    code: str = Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z\-]+$", description="事项编码")
    name: str = Field(min_length=1, max_length=200)
    department_code: str = Field(min_length=18, max_length=18, description="the owning department's 统一社会信用代码")
    holder_kind: HolderKindName = "person"
    materials: list[MaterialSpec] = Field(max_length=100)
    form_fields: list[FormFieldSpec] = Field(default_factory=list, max_length=200)


class ServiceUpdate(BaseModel):
    """A new version's (or a draft's) definition: what a service item says, its code and department kept."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    holder_kind: HolderKindName = "person"
    materials: list[MaterialSpec] = Field(max_length=100)
    form_fields: list[FormFieldSpec] = Field(default_factory=list, max_length=200)


class MaterialRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    key: str
    name: str
    kind: str
    type_code: str | None
    resource_id: str | None
    resource_name: str | None
    item: str | None
    key_item: str | None


class ServiceRead(BaseModel):
    """One version of a service item."""

    code: str
    number: int
    name: str
    department_code: str
    department_name: str
    holder_kind: str
    state: str
    published_at: datetime | None
    version: int
    materials: list[MaterialRead]
    form_fields: list[FormFieldSpec]


class PrefillRequest(BaseModel):
    """Prefill a service's form for a holder, with the reason (申请事由); optionally the holder's ID-card (or
    business-licence) presentation scanned at the window, in place of an authorisation."""

    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {"holder_code": "110105199003074341", "service_code": "11110000000019713D4000117001", "use_cause": "办理居住证"}
            ]
        },
    )

    holder_code: str = Field(min_length=1, max_length=30)
    service_code: str = Field(min_length=1, max_length=40)
    use_cause: str = Field(
        validation_alias=AliasChoices("use_cause", "useCause"), max_length=USE_CAUSE_MAX, description="申请事由"
    )
    presentation: str | None = Field(default=None, max_length=20000, description="亮证: the holder's presentation token")
    nonce: str | None = Field(default=None, max_length=128, description="the nonce the window gave for the presentation")

    _check = field_validator("use_cause")(_use_cause)


class PrefillValue(BaseModel):
    """A form field's value and where it came from."""

    name: str
    label: str
    value: Any
    material: str
    source: str  # certificate / data
    source_name: str  # the certificate type's or the data resource's name
    source_ref: str  # the certificate identifier, or the grant id


class MissingMaterial(BaseModel):
    key: str
    name: str
    kind: str
    reason: str  # submit / not_authorised / not_held / not_granted / no_record / not_active


class PrefillRead(BaseModel):
    service_code: str
    service_version: int
    holder_code: str
    values: list[PrefillValue]
    missing: list[MissingMaterial]
    authorised_by: str  # authorisation / presentation / issuer


class ServiceCertificatesRead(BaseModel):
    """一证通办 in one step: every certificate the service needs that the holder has, and what is missing."""

    service_code: str
    service_version: int
    holder_code: str
    certificates: list[CertificateRead]
    missing: list[MissingMaterial]
    authorised_by: str


class ServiceAuthorisationCreate(BaseModel):
    """One authorisation for a whole service: the department may use every certificate type it requires."""

    model_config = ConfigDict(extra="forbid")

    department_code: str = Field(min_length=18, max_length=18)
    purpose: str = Field(min_length=1, max_length=200)
    expires_at: ZonedDatetime = Field(validation_alias=EXPIRES_AT, description="the moment it stops working")


class PublicField(BaseModel):
    name: str
    label: str
    value: str


class PublicCheckRead(BaseModel):
    """Public 验真: whether the certificate of a copy is valid now; no personal data beyond the type's public fields."""

    valid: bool
    state: Literal["valid", "suspended", "superseded", "revoked", "expired", "not_yet_valid"]
    message: str
    type_name: str
    issuer_name: str
    issuer_code: str
    valid_from: date
    valid_until: date | None
    checked_at: datetime
    fields: list[PublicField]

    @classmethod
    def of(cls, found: Any) -> PublicCheckRead:
        return cls(
            valid=found.valid,
            state=found.state,
            message=found.message,
            type_name=found.type_name,
            issuer_name=found.issuer_name,
            issuer_code=found.issuer_code,
            valid_from=found.valid_from,
            valid_until=found.valid_until,
            checked_at=found.checked_at,
            fields=[PublicField(name=n, label=label, value=v) for n, label, v in found.fields],
        )
