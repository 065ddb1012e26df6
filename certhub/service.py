"""Rules of the certificate hub: types, issuance, change and revocation, status, use, verification, trust."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from datetime import time as dtime
from importlib import resources
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import anyio.to_thread
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError
from sqlalchemy import insert
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from certhub import pdf as pdf_render
from certhub import repository, sdjwt, sealing, statuslist
from certhub.facecheck import QuickCheck, compile_quick_check
from certhub.models import (
    Access,
    Authorisation,
    Certificate,
    CertificateStatus,
    CertificateType,
    Delegation,
    Feedback,
    FeedbackStatus,
    HubKey,
    Objection,
    ObjectionStatus,
    TrustedHub,
)
from certhub.schemas import (
    AuthorisationCreate,
    BulkReport,
    BulkRowError,
    CertificateTypeCreate,
    CertificateTypeUpdate,
    ChangeRequest,
    DelegationCreate,
    IssueRequest,
    ShowRequest,
    TrustedHubCreate,
    TrustedHubUpdate,
)
from ops import audit
from ops.audit import Actor
from ops.auth import Principal, Role
from ops.codes import citizen_id_problem, mask_identifier, mod37_36_check_char, uscc_problem
from ops.config import Settings
from ops.context import current_request_id
from ops.crypto import KeyVault, WrappedSecret
from ops.db import check_if_match, new_id, reading, table_of, utcnow
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound, UpstreamError
from ops.groupcommit import GroupCommit
from ops.identity import service as identity
from ops.metrics import CERTIFICATE_EVENTS, VERIFICATION_LATENCY
from ops.storage import ObjectStore, get_bytes
from ops.workdays import add_working_days

ROOT = "1.2.156.3005.2"  # GB/T 36904 root of every certificate identifier
SHANGHAI = ZoneInfo("Asia/Shanghai")
HOLDER_CODE_TYPE = {"person": "111", "enterprise": "001"}  # CZZTDMLX: 公民身份号码 / 统一社会信用代码
# GB/T 36903 metadata items and their Chinese names.
METADATA_LABELS = {
    "ZZMC": "证照名称",
    "ZZLXDM": "证照类型代码",
    "ZZBH": "证照编号",
    "ZZBS": "证照标识",
    "ZZBFJG": "颁发机构",
    "ZZBFJGDM": "颁发机构代码",
    "ZZBFRQ": "颁发日期",
    "CZZT": "持证主体",
    "CZZTDM": "持证主体代码",
    "CZZTDMLX": "持证主体代码类型",
    "ZZYXQQSRQ": "有效期起始日期",
    "ZZYXQJZRQ": "有效期截止日期",
}
STATUS_LIST_TTL = 300  # seconds a verifier may cache a status list
STATUS_CACHE_SECONDS = 2.0  # the published list reflects a change within this many seconds
KEY_CACHE_SECONDS = 30.0
PRESENTATION_MAX_AGE = 600


def status_base_of(public_url: str) -> str:
    return f"{public_url}/certhub/status-lists"


def status_base(settings: Settings) -> str:
    return status_base_of(settings.public_url)


# ---- the hub's own key ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HubSigner:
    """The hub's Ed25519 key (status lists, presentations)."""

    kid: str
    _private: Ed25519PrivateKey = field(repr=False)
    alg: str = "EdDSA"

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


_hub_signers: dict[str, HubSigner] = {}


def _hub_purpose(kid: str) -> str:
    return f"certhub-hub-key:{kid}"


def hub_signer(db: Session, *, vault: KeyVault) -> HubSigner:
    """The hub's active signing key, made on first use."""
    key = repository.active_hub_key(db)
    if key is None:
        private = Ed25519PrivateKey.generate()
        kid = f"certhub-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        key = HubKey(
            kid=kid,
            alg="EdDSA",
            public_jwk={"kty": "OKP", "crv": "Ed25519", "x": sdjwt.b64u(raw), "kid": kid, "alg": "EdDSA", "use": "sig"},
            private_key=vault.wrap(pem, purpose=_hub_purpose(kid)).as_dict(),
        )
        db.add(key)
        db.flush()
    signer = _hub_signers.get(key.kid)
    if signer is None:
        pem = vault.unwrap(WrappedSecret.from_dict(key.private_key), purpose=_hub_purpose(key.kid))
        loaded = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(loaded, Ed25519PrivateKey)
        signer = HubSigner(kid=key.kid, _private=loaded)
        _hub_signers[key.kid] = signer
    return signer


def hub_jwks(db: Session) -> dict[str, Any]:
    """The hub's keys and every department seal key: what another hub needs to verify ours."""
    keys = [dict(k.public_jwk, use="presentation") for k in repository.hub_keys(db)]
    seals = sealing.department_jwks(db).get("keys", [])
    return {"keys": [*keys, *seals]}


def issuer_metadata(db: Session, *, settings: Settings) -> dict[str, Any]:
    """What this hub publishes for mutual recognition (互通互认)."""
    base = settings.public_url
    return {
        "issuer": base,
        "jwks_uri": f"{base}/certhub/.well-known/jwks.json",
        "status_list_uris": [f"{status_base(settings)}/{p}" for p in statuslist.PURPOSES],
        "credential_formats": [sdjwt.SD_JWT_TYP, sdjwt.VC_JWT_TYP],
        "identifier_root": ROOT,
        "certificate_types": [{"code": t.code, "name": t.name} for t in repository.list_types(db, include_inactive=False)],
    }


# ---- certificate types ---------------------------------------------------------------------------


def _field_errors(errors: list[dict[str, Any]], summary: str) -> Invalid:
    detail = summary + ": " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return Invalid(detail, errors=errors)


def _check_type_definition(code: str | None, schema: dict[str, Any] | None, issuer_codes: list[str] | None) -> None:
    errors: list[dict[str, Any]] = []
    if code is not None:
        problem = uscc_problem(code[:18])
        if problem:
            errors.append({"field": "code", "message": f"the first 18 characters must be a 统一社会信用代码: {problem}"})
        if not code[18:].isdigit() or len(code) != 21:
            errors.append({"field": "code", "message": "must end with 3 digits"})
    if schema is not None:
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            errors.append({"field": "face_schema", "message": f"not a valid JSON Schema: {exc.message}"})
        else:
            if schema.get("type") != "object" or not isinstance(schema.get("properties"), dict):
                errors.append({"field": "face_schema", "message": 'must be {"type": "object", "properties": {…}}'})
    for i, issuer in enumerate(issuer_codes or []):
        problem = uscc_problem(issuer)
        if problem:
            errors.append({"field": f"issuer_codes[{i}]", "message": problem})
    if errors:
        raise _field_errors(errors, "the certificate type is invalid")


def create_type(db: Session, *, who: Actor, data: CertificateTypeCreate) -> CertificateType:
    """Add a certificate type to the catalogue (证照目录)."""
    code = data.code.strip().upper()
    _check_type_definition(code, data.face_schema, data.issuer_codes)
    if repository.type_by_code(db, code):
        raise Conflict(f"certificate type {code} already exists", errors=[{"field": "code", "message": "duplicate"}])
    row = CertificateType(
        code=code,
        name=data.name,
        holder_kind=data.holder_kind,
        face_schema=data.face_schema,
        validity=data.validity.model_dump(),
        issuer_codes=sorted({c.upper() for c in data.issuer_codes}),
        template=data.template,
    )
    db.add(row)
    db.flush()
    audit.record(db, actor=who, action="cert_type.create", object_type="cert_type", object_id=code, detail={"name": data.name})
    return row


def get_type(db: Session, *, code: str) -> CertificateType:
    row = repository.type_by_code(db, code.strip().upper())
    if row is None:
        raise NotFound(f"certificate type {code} is not in the catalogue")
    return row


def update_type(db: Session, *, who: Actor, code: str, data: CertificateTypeUpdate, if_match: str | None) -> CertificateType:
    """Change a type: its schema, validity, issuers, template, or take it out of use."""
    row = get_type(db, code=code)
    check_if_match(if_match, row.version)
    changes = data.model_dump(exclude_unset=True)
    _check_type_definition(None, changes.get("face_schema"), changes.get("issuer_codes"))
    for key, value in changes.items():
        if key == "issuer_codes":
            value = sorted({c.upper() for c in value})
        setattr(row, key, value)
    db.flush()
    audit.record(
        db, actor=who, action="cert_type.update", object_type="cert_type", object_id=row.code, detail={"changed": sorted(changes)}
    )
    return row


def example_types() -> list[dict[str, Any]]:
    """The shipped example definitions (居民身份证, 营业执照, …)."""
    text = resources.files("certhub.catalog").joinpath("examples.json").read_text(encoding="utf-8")
    types: list[dict[str, Any]] = json.loads(text)["types"]
    return types


def load_types(
    db: Session, *, who: Actor, definitions: Iterable[dict[str, Any]], issuer_codes: dict[str, list[str]] | None = None
) -> list[str]:
    """Load type definitions (the shipped examples or a file); existing codes are left as they are."""
    loaded = []
    for definition in definitions:
        data = CertificateTypeCreate.model_validate(definition)
        if issuer_codes and data.code in issuer_codes:
            data.issuer_codes = issuer_codes[data.code]
        if repository.type_by_code(db, data.code):
            continue
        create_type(db, who=who, data=data)
        loaded.append(data.code)
    return loaded


def allow_issuer(db: Session, *, who: Actor, type_code: str, department_code: str) -> CertificateType:
    """Let a department issue a type."""
    row = get_type(db, code=type_code)
    problem = uscc_problem(department_code)
    if problem:
        raise Invalid(f"department code is not a valid 统一社会信用代码: {problem}")
    row.issuer_codes = sorted({*row.issuer_codes, department_code})
    db.flush()
    audit.record(
        db,
        actor=who,
        action="cert_type.allow_issuer",
        object_type="cert_type",
        object_id=row.code,
        detail={"department": department_code},
    )
    return row


@dataclass(frozen=True)
class _FaceValidator:
    stamp: str
    full: Draft202012Validator
    quick: QuickCheck | None


_validators: dict[str, _FaceValidator] = {}


def _validator(ctype: CertificateType) -> _FaceValidator:
    """The type's compiled validators, kept until the type changes."""
    stamp = f"{ctype.id}:{ctype.version}"
    cached = _validators.get(ctype.id)
    if cached is None or cached.stamp != stamp:
        cached = _FaceValidator(
            stamp=stamp,
            full=Draft202012Validator(ctype.face_schema, format_checker=FormatChecker()),
            quick=compile_quick_check(ctype.face_schema),
        )
        _validators[ctype.id] = cached
    return cached


def validate_face(ctype: CertificateType, face: dict[str, Any]) -> None:
    """Check the face fields against the type's schema; Invalid names every wrong field."""
    validator = _validator(ctype)
    if validator.quick is not None and validator.quick(face):
        return
    errors = []
    for err in sorted(validator.full.iter_errors(face), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in err.absolute_path)
        errors.append({"field": f"face.{path}" if path else "face", "message": err.message})
    if errors:
        raise _field_errors(errors, f"the face fields do not match the {ctype.name} schema")


# ---- issuance ---------------------------------------------------------------------------------


def holder_code_problem(code: str, kind: str) -> str | None:
    if kind == "person":
        problem = citizen_id_problem(code)
        return f"not a valid 公民身份号码: {problem}" if problem else None
    problem = uscc_problem(code)
    return f"not a valid 统一社会信用代码: {problem}" if problem else None


def make_identifier(*, type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """The GB/T 36904 identifier; its check character is ISO 7064 MOD 37,36 over the joined parts."""
    ver = f"{version:03d}"
    check = mod37_36_check_char(f"{type_code}{issuer_code}{serial}{ver}")
    return f"{ROOT}.{type_code}.{issuer_code}.{serial}.{ver}.{check}"


def identifier_problem(identifier: str) -> str | None:
    """Why a string is not a well-formed GB/T 36904 identifier, or None."""
    if not identifier.startswith(ROOT + "."):
        return f"must start with {ROOT}"
    parts = identifier[len(ROOT) + 1 :].split(".")
    if len(parts) != 5:
        return "must be root.type.issuer.serial.version.check"
    type_code, issuer, serial, version, check = parts
    try:
        expected = mod37_36_check_char(f"{type_code}{issuer}{serial}{version}")
    except ValueError:
        return "contains characters outside 0-9A-Z"
    return None if check == expected else f"check character is {check}, expected {expected} (ISO 7064 MOD 37,36)"


def _today() -> date:
    return datetime.now(SHANGHAI).date()


def _validity(ctype: CertificateType, valid_from: date, valid_until: date | None) -> date | None:
    rule = ctype.validity or {}
    if valid_until is None:
        if rule.get("end_required"):
            raise Invalid("valid_until is required for this type", errors=[{"field": "valid_until", "message": "required"}])
        years = rule.get("default_years")
        return _add_years(valid_from, int(years)) if years else None
    if valid_until <= valid_from:
        raise Invalid("valid_until must be after valid_from", errors=[{"field": "valid_until", "message": "before valid_from"}])
    max_years = rule.get("max_years")
    if max_years and valid_until > _add_years(valid_from, int(max_years)):
        raise Invalid(
            f"a {ctype.name} is valid for at most {max_years} years",
            errors=[{"field": "valid_until", "message": f"more than {max_years} years after valid_from"}],
        )
    return valid_until


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _epoch(day: date, *, end: bool = False) -> int:
    moment = datetime.combine(day + timedelta(days=1) if end else day, dtime.min, tzinfo=SHANGHAI)
    return int(moment.timestamp())


@dataclass
class IssueContext:
    """What issuing needs besides the database: keys, storage, settings.

    With `bulk`, what does not change during one bulk run is looked up once: the department's signer,
    the type, the department.
    """

    vault: KeyVault
    settings: Settings
    storage: ObjectStore | None = None
    bulk: bool = False
    _signers: dict[str, Any] = field(default_factory=dict)
    _types: dict[str, CertificateType | None] = field(default_factory=dict)
    _departments: dict[str, Any] = field(default_factory=dict)

    def signer(self, db: Session, department_id: str) -> Any:
        if not self.bulk:
            return sealing.department_signer(db, department_id=department_id, vault=self.vault)
        if department_id not in self._signers:
            self._signers[department_id] = sealing.department_signer(db, department_id=department_id, vault=self.vault)
        return self._signers[department_id]

    def type_by_code(self, db: Session, code: str) -> CertificateType | None:
        if not self.bulk:
            return repository.type_by_code(db, code)
        if code not in self._types:
            self._types[code] = repository.type_by_code(db, code)
        return self._types[code]

    def department(self, db: Session, who: Principal, department_id: str) -> Any:
        if not self.bulk:
            return identity.get_department(db, who=who, department_id=department_id)
        if department_id not in self._departments:
            self._departments[department_id] = identity.get_department(db, who=who, department_id=department_id)
        return self._departments[department_id]


_REQUEST_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True)


def request_hash(data: IssueRequest) -> str:
    return hashlib.sha256(_REQUEST_JSON.encode(data.model_dump(mode="json")).encode()).hexdigest()


def _check_replay(stored_hash: str | None, digest: str) -> None:
    """An Idempotency-Key used again must come with the same request."""
    if stored_hash != digest:
        raise Conflict(
            "this Idempotency-Key was already used for a different request; use a new key for a new certificate",
            errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
        )


@dataclass(frozen=True)
class _Checked:
    """An issue request that passed every check, with what the checks looked up."""

    ctype: CertificateType
    department: Any
    holder_code: str
    valid_from: date
    valid_until: date | None

    @property
    def serial_counter(self) -> str:
        return f"serial:{self.ctype.code}:{self.department.code}"


def _check_request(db: Session, *, who: Principal, ctx: IssueContext, data: IssueRequest) -> _Checked:
    """Every rule an issue request must follow: type, issuer, holder, face, validity (HubError names the field)."""
    department_id = who.require_department()
    ctype = ctx.type_by_code(db, data.type_code.strip().upper())
    if ctype is None or not ctype.active:
        raise Invalid(
            f"certificate type {data.type_code} is not in the catalogue", errors=[{"field": "type_code", "message": "unknown"}]
        )
    department = ctx.department(db, who, department_id)
    if department.code not in ctype.issuer_codes:
        raise Forbidden(f"{department.name} ({department.code}) may not issue {ctype.name} ({ctype.code})")
    holder_code = data.holder.code.strip().upper()
    errors: list[dict[str, Any]] = []
    if data.holder.kind != ctype.holder_kind:
        errors.append(
            {"field": "holder.kind", "message": f"a {ctype.name} is held by a {ctype.holder_kind}, not a {data.holder.kind}"}
        )
    problem = holder_code_problem(holder_code, data.holder.kind)
    if problem:
        errors.append({"field": "holder.code", "message": problem})
    if errors:
        raise _field_errors(errors, "the holder is invalid")
    validate_face(ctype, data.face)
    valid_from = data.valid_from or _today()
    valid_until = _validity(ctype, valid_from, data.valid_until)
    return _Checked(ctype, department, holder_code, valid_from, valid_until)


@dataclass(frozen=True)
class _Draft:
    """What one certificate version says, before its status index, issue time and signatures."""

    type_id: str
    type_code: str
    type_name: str
    department_id: str
    issuer_code: str
    issuer_name: str
    serial: str
    version: int
    number: str
    holder_code: str
    holder_kind: str
    holder_name: str
    face: dict[str, Any]
    valid_from: date
    valid_until: date | None
    previous_id: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None


def _first_version(checked: _Checked, data: IssueRequest, *, serial: str, idempotency_key: str | None, digest: str) -> _Draft:
    return _Draft(
        type_id=checked.ctype.id,
        type_code=checked.ctype.code,
        type_name=checked.ctype.name,
        department_id=checked.department.id,
        issuer_code=checked.department.code,
        issuer_name=checked.department.name,
        serial=serial,
        version=1,
        number=data.number or serial,
        holder_code=checked.holder_code,
        holder_kind=data.holder.kind,
        holder_name=data.holder.name,
        face=data.face,
        valid_from=checked.valid_from,
        valid_until=checked.valid_until,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )


def _issue_trail(who: Actor, *, identifier: str, holder_code: str, type_code: str) -> dict[str, Any]:
    """The audit record of one issued certificate, as arguments of audit.record or audit.entry."""
    return {
        "actor": who,
        "action": "certificate.issue",
        "object_type": "certificate",
        "object_id": identifier,
        "subject": holder_code,
        "detail": {"type": type_code, "holder": mask_identifier(holder_code)},
    }


def issue(
    db: Session, *, who: Principal, ctx: IssueContext, data: IssueRequest, idempotency_key: str | None = None
) -> tuple[Certificate, bool]:
    """签发: validate, identify, sign and store a certificate; returns (certificate, created)."""
    department_id = who.require_department()
    digest = request_hash(data)
    if idempotency_key:
        existing = repository.by_idempotency_key(db, department_id, idempotency_key)
        if existing is not None:
            _check_replay(existing.request_hash, digest)
            return existing, False
    checked = _check_request(db, who=who, ctx=ctx, data=data)
    serial = f"{repository.allocate(db, checked.serial_counter):010d}"
    draft = _first_version(checked, data, serial=serial, idempotency_key=idempotency_key, digest=digest)
    certificate = _build(db, who=who, ctx=ctx, ctype=checked.ctype, draft=draft, render_pdf=data.render_pdf)
    audit.record(
        db, **_issue_trail(who, identifier=certificate.identifier, holder_code=draft.holder_code, type_code=draft.type_code)
    )
    CERTIFICATE_EVENTS.labels(event="issued").inc()
    return certificate, True


def _signed_values(
    draft: _Draft, *, signer: sdjwt.JoseSigner, public_url: str, index: int, issued_at: datetime
) -> dict[str, Any]:
    """The columns of a certificate: its GB/T 36904 identifier, GB/T 36903 metadata, SD-JWT VC and JWS.

    Two signatures: the JWS signs the whole certificate in clear, the SD-JWT signs only digests of the
    holder and face fields (so that a holder can show some of them); neither signature verifies the other's bytes.
    """
    identifier = make_identifier(
        type_code=draft.type_code, issuer_code=draft.issuer_code, serial=draft.serial, version=draft.version
    )
    meta = {
        "ZZMC": draft.type_name,
        "ZZLXDM": draft.type_code,
        "ZZBH": draft.number,
        "ZZBS": identifier,
        "ZZBFJG": draft.issuer_name,
        "ZZBFJGDM": draft.issuer_code,
        "ZZBFRQ": issued_at.astimezone(SHANGHAI).date().isoformat(),
        "CZZT": draft.holder_name,
        "CZZTDM": draft.holder_code,
        "CZZTDMLX": HOLDER_CODE_TYPE[draft.holder_kind],
        "ZZYXQQSRQ": draft.valid_from.isoformat(),
        "ZZYXQJZRQ": draft.valid_until.isoformat() if draft.valid_until else "长期",
    }
    clear: dict[str, Any] = {
        "iss": public_url,
        "vct": f"urn:cn:gbt36904:{draft.type_code}",
        "jti": identifier,
        "iat": int(issued_at.timestamp()),
        "nbf": _epoch(draft.valid_from),
        "credentialStatus": statuslist.entries(base_url=status_base_of(public_url), index=index),
        **{k: meta[k] for k in sdjwt.CLEAR_CLAIMS},
    }
    if draft.valid_until:
        clear["exp"] = _epoch(draft.valid_until, end=True)
    disclosable = {k: v for k, v in meta.items() if k not in sdjwt.CLEAR_CLAIMS} | draft.face
    sd_jwt = sdjwt.issue_sd_jwt(signer, clear=clear, disclosable=disclosable)
    jws = sdjwt.sign_jws(signer, dict(clear, sub=draft.holder_code, meta=meta, face=draft.face), typ=sdjwt.VC_JWT_TYP)
    return {
        "identifier": identifier,
        "type_id": draft.type_id,
        "type_code": draft.type_code,
        "issuer_department_id": draft.department_id,
        "issuer_code": draft.issuer_code,
        "serial": draft.serial,
        "cert_version": draft.version,
        "number": draft.number,
        "holder_code": draft.holder_code,
        "holder_kind": draft.holder_kind,
        "holder_name": draft.holder_name,
        "face": draft.face,
        "meta": meta,
        "valid_from": draft.valid_from,
        "valid_until": draft.valid_until,
        "issued_at": issued_at,
        "status": CertificateStatus.ACTIVE.value,
        "status_index": index,
        "status_changed_at": issued_at,
        "status_reason": None,
        "previous_id": draft.previous_id,
        "superseded_by": None,
        "alg": signer.alg,
        "kid": signer.kid,
        "jws": jws,
        "sd_jwt": sd_jwt,
        "pdf_key": None,
        "idempotency_key": draft.idempotency_key,
        "request_hash": draft.request_hash,
    }


def _build(db: Session, *, who: Actor, ctx: IssueContext, ctype: CertificateType, draft: _Draft, render_pdf: bool) -> Certificate:
    """Sign and store one certificate version (with its sealed PDF copy if asked)."""
    index = repository.status_indices(db)[0]
    signer = ctx.signer(db, draft.department_id)
    certificate = Certificate(
        **_signed_values(draft, signer=signer, public_url=ctx.settings.public_url, index=index, issued_at=utcnow())
    )
    db.add(certificate)
    db.flush()
    if render_pdf and ctx.storage is not None:
        certificate.pdf_key = _render_pdf(
            db, who=who, ctx=ctx, ctype=ctype, certificate=certificate, issuer_name=draft.issuer_name
        )
        db.flush()
    return certificate


def _render_pdf(
    db: Session, *, who: Actor, ctx: IssueContext, ctype: CertificateType, certificate: Certificate, issuer_name: str
) -> str:
    assert ctx.storage is not None
    raw = pdf_render.render(
        certificate=certificate,
        type_name=ctype.name,
        schema=ctype.face_schema,
        template=ctype.template,
        issuer_name=issuer_name,
        qr=f"{ctx.settings.public_url}/certhub/certificates/{certificate.identifier}",
    )
    sealed = sealing.seal_pdf(
        db,
        vault=ctx.vault,
        settings=ctx.settings,
        department_id=certificate.issuer_department_id,
        pdf=raw,
        purpose=f"电子证照 {ctype.name} {certificate.identifier}",
        actor=who,
    )
    return ctx.storage.put([sealed]).key


def _issued(db: Session, who: Principal, identifier: str) -> Certificate:
    department_id = who.require_department()
    certificate = repository.issued_certificate(db, department_id, identifier)
    if certificate is None:
        raise NotFound(f"certificate {identifier} not found among the certificates your department issued")
    return certificate


def change(db: Session, *, who: Principal, ctx: IssueContext, identifier: str, data: ChangeRequest) -> Certificate:
    """变更: issue the next version with the changed face; the old version is superseded."""
    old = _issued(db, who, identifier)
    if old.status in (CertificateStatus.SUPERSEDED.value, CertificateStatus.REVOKED.value):
        detail = f"superseded by {old.superseded_by}" if old.superseded_by else "revoked"
        raise Conflict(f"certificate {identifier} is {detail}; change its current version")
    new = _next_version(
        db,
        who=who,
        ctx=ctx,
        old=old,
        face=data.face,
        holder_name=data.holder_name,
        valid_until=data.valid_until,
        render_pdf=data.render_pdf,
    )
    audit.record(
        db,
        actor=who,
        action="certificate.change",
        object_type="certificate",
        object_id=new.identifier,
        purpose=data.reason,
        subject=new.holder_code,
        detail={"previous": old.identifier},
    )
    CERTIFICATE_EVENTS.labels(event="changed").inc()
    return new


def _next_version(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    old: Certificate,
    face: dict[str, Any],
    holder_name: str | None,
    valid_until: date | None,
    render_pdf: bool,
) -> Certificate:
    ctype = repository.type_by_id(db, old.type_id)
    assert ctype is not None
    new_face = {**old.face, **face}
    validate_face(ctype, new_face)
    until = _validity(ctype, old.valid_from, valid_until) if valid_until else old.valid_until
    department = identity.get_department(db, who=who, department_id=old.issuer_department_id)
    draft = _Draft(
        type_id=ctype.id,
        type_code=ctype.code,
        type_name=ctype.name,
        department_id=old.issuer_department_id,
        issuer_code=old.issuer_code,
        issuer_name=department.name,
        serial=old.serial,
        version=old.cert_version + 1,
        number=old.number,
        holder_code=old.holder_code,
        holder_kind=old.holder_kind,
        holder_name=holder_name or old.holder_name,
        face=new_face,
        valid_from=old.valid_from,
        valid_until=until,
        previous_id=old.id,
    )
    new = _build(db, who=who, ctx=ctx, ctype=ctype, draft=draft, render_pdf=render_pdf)
    _set_status(old, CertificateStatus.SUPERSEDED, f"replaced by version {new.cert_version:03d}")
    old.superseded_by = new.identifier
    db.flush()
    return new


def _set_status(certificate: Certificate, status: CertificateStatus, reason: str | None) -> None:
    certificate.status = status.value
    certificate.status_reason = reason
    certificate.status_changed_at = utcnow()
    invalidate_status_cache()


def revoke(db: Session, *, who: Principal, identifier: str, reason: str) -> Certificate:
    """注销: the certificate is revoked for good, with the reason."""
    certificate = _issued(db, who, identifier)
    if certificate.status == CertificateStatus.REVOKED.value:
        raise Conflict(f"certificate {identifier} is already revoked")
    if certificate.status == CertificateStatus.SUPERSEDED.value:
        raise Conflict(f"certificate {identifier} is superseded by {certificate.superseded_by}; revoke that version")
    _set_status(certificate, CertificateStatus.REVOKED, reason)
    for objection in repository.open_objections(db, certificate_id=certificate.id):
        _close_objection(objection, ObjectionStatus.DISMISSED, f"certificate revoked: {reason}", who.subject)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="certificate.revoke",
        object_type="certificate",
        object_id=identifier,
        purpose=reason,
        subject=certificate.holder_code,
    )
    CERTIFICATE_EVENTS.labels(event="revoked").inc()
    return certificate


def suspend(db: Session, *, who: Actor, certificate: Certificate, reason: str) -> None:
    """Suspend an active certificate (reversible)."""
    if certificate.status != CertificateStatus.ACTIVE.value:
        raise Conflict(f"certificate {certificate.identifier} is {certificate.status}, not active")
    _set_status(certificate, CertificateStatus.SUSPENDED, reason)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="certificate.suspend",
        object_type="certificate",
        object_id=certificate.identifier,
        purpose=reason,
        subject=certificate.holder_code,
    )
    CERTIFICATE_EVENTS.labels(event="suspended").inc()


def reinstate(db: Session, *, who: Actor, certificate: Certificate, reason: str) -> None:
    """Lift a suspension."""
    if certificate.status != CertificateStatus.SUSPENDED.value:
        raise Conflict(f"certificate {certificate.identifier} is {certificate.status}, not suspended")
    if repository.open_objections(db, certificate_id=certificate.id):
        raise Conflict("the certificate has an open objection; correct or dismiss it first")
    _set_status(certificate, CertificateStatus.ACTIVE, None)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="certificate.reinstate",
        object_type="certificate",
        object_id=certificate.identifier,
        purpose=reason,
        subject=certificate.holder_code,
    )


def suspend_issued(db: Session, *, who: Principal, identifier: str, reason: str) -> Certificate:
    """The issuer suspends one of its certificates."""
    certificate = _issued(db, who, identifier)
    suspend(db, who=who, certificate=certificate, reason=reason)
    return certificate


def reinstate_issued(db: Session, *, who: Principal, identifier: str, reason: str) -> Certificate:
    """The issuer lifts a suspension it made."""
    certificate = _issued(db, who, identifier)
    reinstate(db, who=who, certificate=certificate, reason=reason)
    return certificate


def _not_found(identifier: str) -> NotFound:
    """The one refusal for a certificate the caller has no business with: word for word an unknown one's."""
    return NotFound(f"certificate {identifier} not found")


def get_certificate(db: Session, *, who: Principal, identifier: str) -> Certificate:
    """A certificate the caller may read (issuer, holder, platform), recorded as a view."""
    certificate = repository.get_certificate(db, who, identifier)
    if certificate is None:
        raise _not_found(identifier)
    return certificate


# ---- status lists ------------------------------------------------------------------------------

_status_lock = threading.Lock()
_status_cache: dict[str, tuple[float, str]] = {}


def invalidate_status_cache() -> None:
    """Drop the cached lists of this process (another process's cache expires within seconds)."""
    with _status_lock:
        _status_cache.clear()


def status_list_jwt(db: Session, *, purpose: str, vault: KeyVault, settings: Settings) -> str:
    """The signed BitstringStatusListCredential of a purpose, built from the current state."""
    if purpose not in statuslist.PURPOSES:
        raise NotFound(f"no status list {purpose!r}; there are {', '.join(statuslist.PURPOSES)}")
    signer = hub_signer(db, vault=vault)
    cache_key = f"{purpose}:{signer.kid}"
    now = time.monotonic()
    with _status_lock:
        cached = _status_cache.get(cache_key)
        if cached and now - cached[0] < STATUS_CACHE_SECONDS:
            return cached[1]
    flagged = {
        "revocation": [CertificateStatus.REVOKED.value, CertificateStatus.SUPERSEDED.value],
        "suspension": [CertificateStatus.SUSPENDED.value],
    }[purpose]
    encoded = statuslist.encode(repository.flagged_indices(db, flagged), length=repository.max_status_index(db) + 1)
    url = f"{status_base(settings)}/{purpose}"
    credential = statuslist.credential(
        hub=settings.public_url,
        url=url,
        purpose=purpose,
        encoded_list=encoded,
        issued_at=int(time.time()),
        ttl_seconds=STATUS_LIST_TTL,
    )
    token = sdjwt.sign_jws(signer, credential, typ=sdjwt.VC_JWT_TYP)
    with _status_lock:
        _status_cache[cache_key] = (now, token)
    return token


# ---- holders: list, show, authorise, delegate, accesses ---------------------------------------------


def acting_holder(db: Session, *, who: Principal, on_behalf_of: str | None, action: str, type_code: str | None = None) -> str:
    """The holder the caller acts for: itself, or (委托用证) a holder who delegated `action` to it."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    if not on_behalf_of or on_behalf_of.upper() == who.holder_code:
        return who.holder_code
    holder = on_behalf_of.strip().upper()
    for delegation in repository.active_delegation(db, holder_code=holder, agent_code=who.holder_code, now=utcnow()):
        if action in delegation.actions and (
            not delegation.type_codes or type_code is None or type_code in delegation.type_codes
        ):
            return holder
    what = f"certificates of type {type_code}" if type_code else "certificates"
    verb = "object to" if action == "object" else action
    raise Forbidden(f"no delegation from {mask_identifier(holder)} lets you {verb} {what}")


def delegated_types(db: Session, *, who: Principal, holder_code: str, action: str) -> list[str] | None:
    """The certificate types the caller may `action` for the holder: None (every type) for the holder itself
    or under a delegation that names no type, else the types its delegations for `action` name."""
    if holder_code == who.holder_code:
        return None
    delegations = repository.active_delegation(db, holder_code=holder_code, agent_code=who.holder_code or "", now=utcnow())
    allowed = [d for d in delegations if action in d.actions]
    if any(not d.type_codes for d in allowed):
        return None
    return sorted({c for d in allowed for c in d.type_codes})


def _acting_for(db: Session, *, who: Principal, on_behalf_of: str | None, action: str) -> tuple[str | None, list[str] | None]:
    """For a holder or an agent: the holder it acts for and the types it may `action` (None: every type).
    (None, None) for a caller that is no holder and acts for none."""
    if who.holder_code is None and not on_behalf_of:
        return None, None
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action=action)
    return holder, delegated_types(db, who=who, holder_code=holder, action=action)


def holder_certificates(db: Session, *, who: Principal, holder_code: str) -> list[Certificate]:
    """The holder's current certificates (for an agent: only the delegated types)."""
    type_codes = delegated_types(db, who=who, holder_code=holder_code, action="list")
    rows = repository.holder_certificates(db, holder_code, type_codes=type_codes)
    audit.record(
        db,
        actor=who,
        action="certificate.list_own",
        object_type="holder",
        object_id=mask_identifier(holder_code),
        subject=holder_code,
    )
    return rows


def _holder_certificate(db: Session, holder_code: str, identifier: str, *, type_codes: list[str] | None) -> Certificate:
    certificate = repository.holder_certificate(db, holder_code, identifier, type_codes=type_codes)
    if certificate is None:
        raise NotFound(f"certificate {identifier} not found among the holder's certificates")
    return certificate


def presentable_fields(certificate: Certificate) -> list[str]:
    """The names of the fields a holder may choose to show (the selectively disclosable ones), in signed order."""
    return [sdjwt.decode_disclosure(d)[0] for d in sdjwt.split_sd_jwt(certificate.sd_jwt)[1]]


def field_labels(db: Session, *, type_code: str | None) -> dict[str, str]:
    """Chinese labels of a certificate's fields: GB/T 36903 metadata, then the face fields' schema titles."""
    labels = dict(METADATA_LABELS)
    ctype = repository.type_by_code(db, type_code) if type_code else None
    if ctype is not None:
        for name, spec in ctype.face_schema.get("properties", {}).items():
            if isinstance(spec, dict) and spec.get("title"):
                labels[name] = str(spec["title"])
    return labels


def show(
    db: Session, *, who: Principal, ctx: IssueContext, identifier: str, data: ShowRequest, on_behalf_of: str | None = None
) -> tuple[str, str, datetime]:
    """亮证: a short-lived presentation of chosen fields, bound to an audience and nonce."""
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="show")
    types = delegated_types(db, who=who, holder_code=holder, action="show")
    certificate = _holder_certificate(db, holder, identifier, type_codes=types)
    if certificate.status != CertificateStatus.ACTIVE.value:
        raise Conflict(f"certificate {identifier} is {certificate.status} and cannot be shown")
    available = presentable_fields(certificate)
    unknown = [f for f in data.fields if f not in available]
    if unknown:
        raise Invalid(
            f"the certificate has no field {', '.join(unknown)}; it has {', '.join(sorted(available))}",
            errors=[{"field": "fields", "message": f"unknown: {f}"} for f in unknown],
        )
    problem = uscc_problem(data.audience)
    if problem:
        raise Invalid(
            f"audience must be the verifying department's 统一社会信用代码: {problem}",
            errors=[{"field": "audience", "message": problem}],
        )
    nonce = data.nonce or secrets.token_urlsafe(16)
    token = sdjwt.present(
        certificate.sd_jwt,
        data.fields,
        hub_signer=hub_signer(db, vault=ctx.vault),
        audience=data.audience,
        nonce=nonce,
        ttl_seconds=data.ttl_seconds,
    )
    audit.record(
        db,
        actor=who,
        action="certificate.show",
        object_type="certificate",
        object_id=identifier,
        subject=holder,
        detail={"fields": data.fields, "audience": data.audience},
    )
    return token, nonce, utcnow() + timedelta(seconds=data.ttl_seconds)


def authorise(db: Session, *, who: Principal, data: AuthorisationCreate, on_behalf_of: str | None = None) -> Authorisation:
    """授权用证: let a department fetch my certificate of a type for a purpose until a time."""
    type_code = data.type_code.strip().upper()
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="authorise", type_code=type_code)
    if repository.type_by_code(db, type_code) is None:
        raise Invalid(
            f"certificate type {type_code} is not in the catalogue",
            errors=[{"field": "type_code", "message": "not in the catalogue"}],
        )
    from ops.identity import repository as departments

    department = departments.department_by_code(db, data.department_code.upper())
    if department is None:
        raise Invalid(
            f"no department with code {data.department_code}",
            errors=[{"field": "department_code", "message": "no department has this code"}],
        )
    if data.valid_until <= utcnow():
        raise Invalid("valid_until must be in the future", errors=[{"field": "valid_until", "message": "must be in the future"}])
    row = Authorisation(
        holder_code=holder,
        type_code=type_code,
        grantee_department_id=department.id,
        purpose=data.purpose,
        valid_until=data.valid_until,
        granted_by=who.subject,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="authorisation.grant",
        object_type="cert_authorisation",
        object_id=row.id,
        purpose=data.purpose,
        subject=holder,
        detail={"type": type_code, "department": department.code},
    )
    return row


@dataclass(frozen=True)
class AuthorisationView:
    """An authorisation as its holder reads it: the type and department by name, and whether it still works."""

    authorisation: Authorisation
    type_name: str
    department_name: str
    department_code: str
    state: str  # active / expired / withdrawn


def holder_authorisations(db: Session, *, who: Principal) -> list[AuthorisationView]:
    """My authorisations (授权用证), newest first, with what each one names and whether it is in force."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    from ops.identity import repository as departments

    now = utcnow()
    views = []
    for row in repository.authorisations_of(db, who.holder_code):
        ctype = repository.type_by_code(db, row.type_code)
        department = departments.department_by_id(db, row.grantee_department_id)
        state = "withdrawn" if row.revoked_at is not None else "expired" if row.valid_until <= now else "active"
        views.append(
            AuthorisationView(
                authorisation=row,
                type_name=ctype.name if ctype else row.type_code,
                department_name=department.name if department else row.grantee_department_id,
                department_code=department.code if department else "",
                state=state,
            )
        )
    return views


def department_directory(db: Session) -> list[tuple[str, str]]:
    """(统一社会信用代码, name) of every active department: whom a holder may show a certificate to or authorise."""
    return repository.active_departments(db)


def revoke_authorisation(db: Session, *, who: Principal, authorisation_id: str, on_behalf_of: str | None = None) -> Authorisation:
    """Withdraw an authorisation at once."""
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="authorise")
    row = repository.authorisation_of(db, holder, authorisation_id)
    if row is None:
        raise NotFound(f"authorisation {authorisation_id} not found")
    if row.revoked_at is not None:
        raise Conflict("the authorisation is already withdrawn")
    row.revoked_at = utcnow()
    db.flush()
    audit.record(db, actor=who, action="authorisation.revoke", object_type="cert_authorisation", object_id=row.id, subject=holder)
    return row


def delegate(db: Session, *, who: Principal, data: DelegationCreate) -> Delegation:
    """委托用证: let an agent list, show or authorise my certificates within limits."""
    if who.holder_code is None:
        raise Forbidden("only a holder can delegate")
    agent = data.agent_code.strip().upper()
    problem = citizen_id_problem(agent)
    if problem:
        raise Invalid(f"agent_code is not a valid 公民身份号码: {problem}", errors=[{"field": "agent_code", "message": problem}])
    if agent == who.holder_code:
        raise Invalid("a holder cannot delegate to itself", errors=[{"field": "agent_code", "message": "self"}])
    if data.valid_until <= utcnow():
        raise Invalid("valid_until must be in the future", errors=[{"field": "valid_until", "message": "in the past"}])
    row = Delegation(
        holder_code=who.holder_code,
        agent_code=agent,
        agent_name=data.agent_name,
        type_codes=sorted({c.upper() for c in data.type_codes}),
        actions=sorted(set(data.actions)),
        valid_until=data.valid_until,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="delegation.grant",
        object_type="cert_delegation",
        object_id=row.id,
        subject=who.holder_code,
        detail={"agent": mask_identifier(agent), "actions": row.actions},
    )
    return row


def revoke_delegation(db: Session, *, who: Principal, delegation_id: str) -> Delegation:
    if who.holder_code is None:
        raise Forbidden("only a holder can withdraw a delegation")
    row = repository.delegation_of(db, who.holder_code, delegation_id)
    if row is None:
        raise NotFound(f"delegation {delegation_id} not found")
    if row.revoked_at is not None:
        raise Conflict("the delegation is already withdrawn")
    row.revoked_at = utcnow()
    db.flush()
    audit.record(
        db, actor=who, action="delegation.revoke", object_type="cert_delegation", object_id=row.id, subject=who.holder_code
    )
    return row


def access_records(
    who: Principal,
    *,
    known: bool,
    holder_code: str,
    identifier: str,
    action: str,
    use_cause: str | None,
    fields: list[str] | None = None,
    department_name: str | None = None,
    outcome: str = "success",
) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The rows one use of a certificate writes: the holder's access-list row (None for a failed use of
    an unknown certificate) and the audit record."""
    access = None
    if known or outcome == "success":
        access = {
            "id": new_id(),
            "at": utcnow(),
            "holder_code": holder_code,
            "certificate_identifier": identifier,
            "action": action,
            "accessor": who.subject,
            "accessor_department_id": who.department_id,
            "accessor_department_name": department_name,
            "use_cause": use_cause,
            "fields": fields or [],
        }
    trail = audit.entry(
        actor=who,
        action=f"certificate.{action}",
        object_type="certificate",
        object_id=identifier,
        purpose=use_cause,
        outcome=outcome,
        subject=holder_code,
        detail={"fields": fields or []},
    )
    return access, trail


def write_accesses(db: Session, accesses: list[dict[str, Any]], trails: list[dict[str, Any]]) -> None:
    """Insert access-list rows and audit records, one statement each."""
    if accesses:
        db.connection().execute(insert(table_of(Access)), accesses)
    audit.append(db, trails)


def record_access(
    db: Session,
    *,
    who: Principal,
    known: bool,
    holder_code: str,
    identifier: str,
    action: str,
    use_cause: str | None,
    fields: list[str] | None = None,
    department_name: str | None = None,
    outcome: str = "success",
) -> None:
    """One use of a certificate: in the holder's access list and the audit trail."""
    access, trail = access_records(
        who,
        known=known,
        holder_code=holder_code,
        identifier=identifier,
        action=action,
        use_cause=use_cause,
        fields=fields,
        department_name=department_name,
        outcome=outcome,
    )
    write_accesses(db, [access] if access else [], [trail])


_department_names: dict[str, tuple[float, str | None]] = {}


def _department_name(db: Session | None, department_id: str | None) -> str | None:
    """A department's name for the access list (cached a minute: names rarely change).
    Without a session only the cache answers (:class:`NeedsDatabase` on a miss)."""
    if not department_id:
        return None
    cached = _department_names.get(department_id)
    if cached and time.monotonic() - cached[0] < 60:
        return cached[1]
    if db is None:
        raise NeedsDatabase
    from ops.identity import repository as departments

    department = departments.department_by_id(db, department_id)
    name = department.name if department else None
    _department_names[department_id] = (time.monotonic(), name)
    return name


# ---- window verification -------------------------------------------------------------------------


class _KeyCache:
    """Keys of this hub's departments and of trusted hubs, refreshed on a miss or after a while."""

    def __init__(self) -> None:
        self.local: dict[str, sdjwt.ResolvedKey] = {}
        self.loaded_at = 0.0
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.local = {}
            self.loaded_at = 0.0


_keys = _KeyCache()


def _resolved(jwk: dict[str, Any], hub: str) -> sdjwt.ResolvedKey | None:
    alg = jwk.get("alg")
    if not isinstance(alg, str):
        return None
    dept = jwk.get("dept_code")
    return sdjwt.ResolvedKey(jwk=jwk, alg=alg, hub=hub, dept_code=str(dept) if dept else None)


def _local_key(db: Session | None, settings: Settings, kid: str) -> sdjwt.ResolvedKey | None:
    now = time.monotonic()
    with _keys.lock:
        key = _keys.local.get(kid)
        fresh = now - _keys.loaded_at < KEY_CACHE_SECONDS
    if key is not None and fresh:
        return key
    if db is None:
        raise NeedsDatabase
    keys: dict[str, sdjwt.ResolvedKey] = {}
    for jwk in hub_jwks(db)["keys"]:
        resolved = _resolved(jwk, settings.public_url)
        if resolved is not None and "kid" in jwk:
            if jwk.get("use") == "presentation":
                resolved = sdjwt.ResolvedKey(jwk=jwk, alg=resolved.alg, hub=settings.public_url)
            keys[str(jwk["kid"])] = resolved
    with _keys.lock:
        _keys.local, _keys.loaded_at = keys, now
    return keys.get(kid)


Fetcher = Callable[[str], bytes]


def fetch_url(url: str) -> bytes:
    """GET a trust-list resource (another hub's keys or status list), bounded in time and size."""
    import urllib.request

    if not url.startswith(("https://", "http://")):
        raise UpstreamError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json, application/vc+jwt"})  # noqa: S310 (scheme checked above)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
            return bytes(response.read(4 * 1024 * 1024))
    except OSError as exc:
        raise UpstreamError(f"cannot fetch {url}: {exc}") from exc


_remote_cache: dict[str, tuple[float, Any]] = {}


def _cached_fetch(url: str, fetcher: Fetcher, ttl: float) -> bytes:
    now = time.monotonic()
    cached = _remote_cache.get(url)
    if cached and now - cached[0] < ttl:
        result: bytes = cached[1]
        return result
    body = fetcher(url)
    _remote_cache[url] = (now, body)
    return body


def _trusted_jwks(hub: TrustedHub, fetcher: Fetcher) -> dict[str, Any]:
    if hub.jwks:
        return hub.jwks
    if hub.jwks_url:
        try:
            result: dict[str, Any] = json.loads(_cached_fetch(hub.jwks_url, fetcher, 300))
            return result
        except (ValueError, UpstreamError):
            return {"keys": []}
    return {"keys": []}


class NeedsDatabase(Exception):
    """A verification read without a session found no answer in the caches (a key, a department's
    name) or needs another hub's keys or status list: run it again with a session, in a thread."""


@dataclass
class Verifier:
    """Everything a window verification needs to resolve keys and status. Without a session (`db`
    None) it answers from the caches only, raising :class:`NeedsDatabase` for anything else."""

    db: Session | None
    settings: Settings
    fetcher: Fetcher

    def key(self, iss: str, kid: str) -> sdjwt.ResolvedKey | None:
        if iss == self.settings.public_url:
            return _local_key(self.db, self.settings, kid)
        if self.db is None:
            raise NeedsDatabase
        hub = repository.trusted_hub_by_issuer(self.db, iss)
        if hub is None or hub.status != "active":
            return None
        for jwk in _trusted_jwks(hub, self.fetcher).get("keys", []):
            if jwk.get("kid") == kid:
                resolved = _resolved(jwk, iss)
                if resolved and jwk.get("use") == "presentation":
                    return sdjwt.ResolvedKey(jwk=jwk, alg=resolved.alg, hub=iss)
                return resolved
        return None

    def status(self, entries: list[dict[str, Any]], identifier: str, iss: str) -> str:
        if iss == self.settings.public_url:
            return sdjwt.STATUS_LATER  # read in the same transaction that claims the nonce and records the access
        if self.db is None:
            raise NeedsDatabase
        hub = repository.trusted_hub_by_issuer(self.db, iss)
        assert hub is not None
        return remote_status(entries, hub=hub, fetcher=self.fetcher)


def remote_status(entries: list[dict[str, Any]], *, hub: TrustedHub, fetcher: Fetcher) -> str:
    """Status of another hub's certificate from its published (signed) status lists."""
    if not entries:
        raise sdjwt.Rejected("status_unavailable", "the certificate carries no status entry")
    result = "active"
    for entry in entries:
        url = str(entry.get("statusListCredential", ""))
        if not any(url.startswith(prefix) for prefix in hub.status_list_urls):
            raise sdjwt.Rejected("status_unavailable", f"status list {url} is not one the trust list names for {hub.issuer}")
        try:
            token = _cached_fetch(url, fetcher, 60).decode("ascii").strip()
        except (UpstreamError, UnicodeDecodeError) as exc:
            raise sdjwt.Rejected("status_unavailable", f"the status list of {hub.issuer} cannot be fetched: {exc}") from exc
        jwks = _trusted_jwks(hub, fetcher)
        set_bit = statuslist.status_bit(token, entry, jwks=jwks, hub=hub.issuer)
        if set_bit:
            purpose = entry.get("statusPurpose")
            result = "revoked" if purpose == "revocation" else "suspended" if result == "active" else result
    return result


# Verdicts a window cannot decide either way (ETSI "indeterminate"): the issuer is not one this hub trusts, or
# the certificate's status cannot be established. Every other refusal proves the presentation unacceptable.
INDETERMINATE_CODES = frozenset({"untrusted_issuer", "unknown_certificate", "status_unavailable"})


def verdict_outcome(code: str) -> str:
    """What a verification code means to the window: valid, invalid or indeterminate."""
    if code == "valid":
        return "valid"
    return "indeterminate" if code in INDETERMINATE_CODES else "invalid"


def new_nonce(*, who: Principal) -> tuple[str, str]:
    """A fresh nonce for a holder to bind a presentation to (the window shows it as a QR code)."""
    if who.department_code is None:
        raise Forbidden("a verifier must belong to a department")
    return secrets.token_urlsafe(16), who.department_code


@dataclass(frozen=True)
class PendingVerification:
    """A verification whose checks have run, waiting for its write (nonce, status, access record)."""

    who: Principal
    verdict: sdjwt.Verdict
    nonce: str | None
    department_name: str | None
    request_id: str | None


def verify(
    db: Session,
    *,
    who: Principal,
    settings: Settings,
    token: str,
    nonce: str | None,
    fetcher: Fetcher | None = None,
    now: datetime | None = None,
) -> sdjwt.Verdict:
    """证照验证: verify a presentation for the calling window; records the access and the nonce.

    The checks that need no write (format, keys, signatures, validity, audience, disclosures) run
    first; then one short write in `db` settles the verdict (:func:`settle_verifications`). The API's
    busy path is :func:`verify_async`, whose write shares its commit with other windows' verifications.
    """
    started = time.perf_counter()
    pending = _checked(db, who=who, settings=settings, token=token, nonce=nonce, fetcher=fetcher, now=now)
    return _counted(settle_verifications(db, [pending])[0], started)


async def verify_async(
    factory: sessionmaker[Session],
    *,
    who: Principal,
    settings: Settings,
    token: str,
    nonce: str | None,
    journal: GroupCommit[PendingVerification, sdjwt.Verdict],
) -> sdjwt.Verdict:
    """:func:`verify` for the event loop: the checks run on the loop when the caches hold what they
    need (this hub's keys, the window's department), else in a worker thread with a session; the
    write is awaited from the journal without holding a thread."""
    started = time.perf_counter()
    try:
        pending = _checked(None, who=who, settings=settings, token=token, nonce=nonce)
    except NeedsDatabase:

        def with_session() -> PendingVerification:
            with reading(), factory() as db:  # the checks only read; the writes are the journal's
                return _checked(db, who=who, settings=settings, token=token, nonce=nonce)

        pending = await anyio.to_thread.run_sync(with_session)
    return _counted(await journal.run_async(pending), started)


def _checked(
    db: Session | None,
    *,
    who: Principal,
    settings: Settings,
    token: str,
    nonce: str | None,
    fetcher: Fetcher | None = None,
    now: datetime | None = None,
) -> PendingVerification:
    """The checks of a verification that need no write; `db` None: from the caches only."""
    if who.department_code is None:
        raise Forbidden("a verifier must belong to a department")
    claimed: list[str] = []
    verifier = Verifier(db, settings, fetcher or fetch_url)
    verdict = sdjwt.verify_presentation(
        token,
        resolve_key=verifier.key,
        resolve_status=verifier.status,
        audience=who.department_code,
        nonce=nonce,
        max_age_seconds=PRESENTATION_MAX_AGE,
        now=now,
        claim_nonce=claimed.append,
    )
    return PendingVerification(
        who=who,
        verdict=verdict,
        nonce=claimed[0] if claimed else None,
        department_name=_department_name(db, who.department_id),
        request_id=current_request_id(),
    )


def _counted(verdict: sdjwt.Verdict, started: float) -> sdjwt.Verdict:
    CERTIFICATE_EVENTS.labels(event="verified" if verdict.valid else "verify_failed").inc()
    VERIFICATION_LATENCY.observe(time.perf_counter() - started)
    return verdict


REPLAYED = "this presentation was already used (its nonce was seen before); ask the holder to show it again"


def settle_verifications(db: Session, items: Sequence[PendingVerification]) -> list[sdjwt.Verdict]:
    """The write of many verifications at once: claim their nonces, read the status of this hub's
    certificates, record the accesses; four statements whatever the number of items."""
    expires_at = utcnow() + timedelta(seconds=PRESENTATION_MAX_AGE + 60)
    wanted = {item.nonce: str(item.who.department_code) for item in items if item.nonce is not None}
    claimed = repository.claim_nonces(db, wanted, expires_at=expires_at)
    local = {i.verdict.identifier for i in items if i.verdict.status == sdjwt.STATUS_LATER and i.verdict.identifier}
    statuses = repository.statuses_of(db, local)
    verdicts: list[sdjwt.Verdict] = []
    accesses: list[dict[str, Any]] = []
    trails: list[dict[str, Any]] = []
    for item in items:
        verdict = replace(item.verdict)
        local_holder: str | None = None
        if item.nonce is not None and not claimed.pop(item.nonce, False):  # pop: a nonce twice in a batch is a replay
            verdict = sdjwt.Verdict(valid=False, code="replayed", message=REPLAYED)
        elif verdict.status == sdjwt.STATUS_LATER:
            found = statuses.get(verdict.identifier or "")
            if found is None:
                message = f"certificate {verdict.identifier} is not in this hub's library"
                verdict = sdjwt.Verdict(valid=False, code="unknown_certificate", message=message)
            else:
                sdjwt.apply_status(verdict, found[0])
                local_holder = found[1]
        holder = local_holder or verdict.holder_code or ""
        if verdict.identifier and holder:
            access, trail = access_records(
                item.who,
                known=local_holder is not None,
                holder_code=holder,
                identifier=verdict.identifier,
                action="verify",
                use_cause=None,
                fields=sorted(verdict.disclosed),
                department_name=item.department_name,
                outcome="success" if verdict.valid else verdict.code,
            )
            if access is not None:
                accesses.append(access)
        else:
            trail = audit.entry(
                actor=item.who,
                action="certificate.verify",
                object_type="presentation",
                object_id=verdict.identifier or "-",
                outcome=verdict.code,
                detail={"message": verdict.message},
            )
        trail["request_id"] = item.request_id  # settled on the writer's thread: keep the request's id
        trails.append(trail)
        verdicts.append(verdict)
    write_accesses(db, accesses, trails)
    return verdicts


# ---- fetch by holder (一证通办) and downloads --------------------------------------------------------


def fetch_for_department(db: Session, *, who: Principal, holder_code: str, type_code: str, use_cause: str) -> Certificate:
    """A department fetches a holder's certificate of a type: with an authorisation or as its issuer."""
    department_id = who.require_department()
    holder = holder_code.strip().upper()
    type_code = type_code.strip().upper()
    if citizen_id_problem(holder) and uscc_problem(holder):
        # Name the problem of the kind of code it looks like: 18 digits (or 17 and X) is a 公民身份号码.
        personal = len(holder) == 18 and holder[:17].isdigit() and holder[17] in "0123456789X"
        what, problem = ("公民身份号码", citizen_id_problem(holder)) if personal else ("统一社会信用代码", uscc_problem(holder))
        raise Invalid(
            "holder_code is neither a valid 公民身份号码 nor a valid 统一社会信用代码",
            errors=[{"field": "holder_code", "message": f"not a valid {what}: {problem}"}],
        )
    ctype = repository.type_by_code(db, type_code)
    if ctype is None:
        raise Invalid(
            f"certificate type {type_code} is not in the catalogue", errors=[{"field": "type_code", "message": "unknown"}]
        )
    authorisation = repository.active_authorisation(
        db, holder_code=holder, department_id=department_id, type_code=type_code, now=utcnow()
    )
    certificate = repository.current_for_holder(db, holder, type_code)
    is_issuer = certificate is not None and certificate.issuer_department_id == department_id
    if authorisation is None and not is_issuer:
        raise Forbidden(
            f"no authorisation exists: the holder has not authorised your department to use their {ctype.name}, "
            "or the authorisation has expired or been withdrawn"
        )
    if certificate is None:
        raise NotFound(f"the holder has no {ctype.name}")
    record_access(
        db,
        who=who,
        known=True,
        holder_code=holder,
        identifier=certificate.identifier,
        action="fetch",
        use_cause=use_cause,
        department_name=_department_name(db, department_id),
    )
    return certificate


def record_denied_fetch(db: Session, *, who: Principal, holder_code: str, type_code: str, use_cause: str, reason: str) -> None:
    """A refused fetch is recorded too (in its own transaction, since the request's is rolled back)."""
    audit.record(
        db,
        actor=who,
        action="certificate.fetch",
        object_type="certificate_type",
        object_id=type_code[:200],
        purpose=use_cause,
        outcome="denied",
        subject=holder_code.strip().upper(),
        detail={"reason": reason},
    )


def pdf_copy(db: Session, *, who: Principal, storage: ObjectStore, identifier: str, use_cause: str) -> tuple[Certificate, bytes]:
    """The sealed PDF copy, for the holder, the issuer, or a department with an authorisation; recorded.
    Anyone else is told the certificate is not found, as for an unknown one."""
    certificate = repository.one_certificate(db, repository.downloadable_certificates(who, now=utcnow()), identifier)
    if certificate is None:
        raise _not_found(identifier)
    if certificate.pdf_key is None:
        raise NotFound(f"certificate {identifier} has no PDF copy (it was issued without one)")
    data = get_bytes(storage, certificate.pdf_key)
    record_access(
        db,
        who=who,
        known=True,
        holder_code=certificate.holder_code,
        identifier=identifier,
        action="download",
        use_cause=use_cause,
        department_name=_department_name(db, who.department_id),
    )
    return certificate, data


def holder_accesses(db: Session, *, who: Principal, cursor: str | None, limit: int) -> tuple[list[Access], str | None]:
    """Every use of my certificates: who, when, why."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    return repository.accesses_of(db, who.holder_code, cursor=cursor, limit=limit)


# ---- objections (异议处理, 反馈纠错) ----------------------------------------------------------------


def _filer_kind(who: Principal, certificate: Certificate) -> str:
    if who.is_platform_admin:
        return "platform"
    if (
        who.department_id is not None
        and certificate.issuer_department_id == who.department_id
        and who.has(Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM)
    ):
        return "issuer"
    if who.holder_code is not None:
        return "holder" if certificate.holder_code == who.holder_code else "agent"
    return "department"


def file_objection(
    db: Session, *, who: Principal, settings: Settings, identifier: str, reason: str, on_behalf_of: str | None = None
) -> Objection:
    """异议: the holder (or an agent whose delegation lets it object), the issuing department or the platform
    disputes a certificate; it is suspended while the objection is open. A department that only used the
    certificate is pointed to 反馈纠错; to anyone else the certificate does not exist."""
    holder, types = _acting_for(db, who=who, on_behalf_of=on_behalf_of, action="object")
    scope = repository.disputable_certificates(who, holder_code=holder, type_codes=types)
    certificate = repository.one_certificate(db, scope, identifier)
    if certificate is None:
        if repository.one_certificate(db, repository.used_certificates(who), identifier) is not None:
            raise Forbidden(
                "an objection suspends the certificate and is filed by its holder, its issuer or the platform; "
                f"your department used it and can report a suspected error (反馈纠错) to its issuer instead: "
                f"POST /certhub/certificates/{identifier}/feedback"
            )
        raise _not_found(identifier)
    if certificate.status != CertificateStatus.ACTIVE.value:
        raise Conflict(f"certificate {identifier} is {certificate.status}; only an active certificate can be disputed")
    now = utcnow()
    deadline = add_working_days(db, now, settings.certificate_objection_working_days)
    step: dict[str, Any] = {"at": now.isoformat(), "by": who.subject, "step": "filed", "note": reason}
    if holder and holder != who.holder_code:
        step["on_behalf_of"] = mask_identifier(holder)
    objection = Objection(
        certificate_id=certificate.id,
        certificate_identifier=identifier,
        issuer_department_id=certificate.issuer_department_id,
        filed_by=who.holder_code or who.subject,
        filer_kind=_filer_kind(who, certificate),
        filer_department_id=who.department_id,
        reason=reason,
        due_at=deadline.due_at,
        due_provisional=deadline.provisional,
        history=[step],
    )
    db.add(objection)
    db.flush()
    suspend(db, who=who, certificate=certificate, reason=f"objection: {reason}"[:500])
    audit.record(
        db,
        actor=who,
        action="objection.file",
        object_type="cert_objection",
        object_id=objection.id,
        purpose=reason,
        subject=certificate.holder_code,
        detail={"certificate": identifier, "filer_kind": objection.filer_kind},
    )
    return objection


def _objection_for_issuer(db: Session, who: Principal, objection_id: str) -> Objection:
    objection = repository.issuer_objection(db, who.require_department(), objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} not found among the objections to your department's certificates")
    if objection.status != ObjectionStatus.OPEN.value:
        raise Conflict(f"objection {objection_id} is already {objection.status}")
    return objection


def _close_objection(objection: Objection, status: ObjectionStatus, resolution: str, by: str) -> None:
    objection.status = status.value
    objection.resolution = resolution
    objection.resolved_at = utcnow()
    objection.history = [*objection.history, {"at": utcnow().isoformat(), "by": by, "step": status.value, "note": resolution}]


def correct_objection(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    objection_id: str,
    face: dict[str, Any],
    holder_name: str | None,
    resolution: str,
    if_match: str | None = None,
) -> tuple[Objection, Certificate]:
    """反馈纠错: the issuer corrects the certificate (a new version) and closes the objection."""
    objection = _objection_for_issuer(db, who, objection_id)
    check_if_match(if_match, objection.version)
    old = db.get(Certificate, objection.certificate_id)
    assert old is not None
    new = _next_version(
        db, who=who, ctx=ctx, old=old, face=face, holder_name=holder_name, valid_until=None, render_pdf=old.pdf_key is not None
    )
    _close_objection(objection, ObjectionStatus.CORRECTED, resolution, who.subject)
    objection.corrected_identifier = new.identifier
    db.flush()
    audit.record(
        db,
        actor=who,
        action="objection.correct",
        object_type="cert_objection",
        object_id=objection.id,
        purpose=resolution,
        subject=old.holder_code,
        detail={"new": new.identifier},
    )
    CERTIFICATE_EVENTS.labels(event="changed").inc()
    return objection, new


def dismiss_objection(
    db: Session, *, who: Principal, objection_id: str, resolution: str, if_match: str | None = None
) -> Objection:
    """The issuer finds the certificate right: the objection is dismissed and the suspension lifted."""
    objection = _objection_for_issuer(db, who, objection_id)
    check_if_match(if_match, objection.version)
    _close_objection(objection, ObjectionStatus.DISMISSED, resolution, who.subject)
    db.flush()
    certificate = db.get(Certificate, objection.certificate_id)
    assert certificate is not None
    if certificate.status == CertificateStatus.SUSPENDED.value and not repository.open_objections(
        db, certificate_id=certificate.id
    ):
        reinstate(db, who=who, certificate=certificate, reason=f"objection dismissed: {resolution}"[:500])
    audit.record(
        db,
        actor=who,
        action="objection.dismiss",
        object_type="cert_objection",
        object_id=objection.id,
        purpose=resolution,
        subject=certificate.holder_code,
    )
    return objection


def get_objection(db: Session, *, who: Principal, objection_id: str) -> Objection:
    objection = repository.get_objection(db, who, objection_id)
    if objection is None:
        raise NotFound(f"objection {objection_id} not found")
    return objection


def file_feedback(db: Session, *, who: Principal, identifier: str, reason: str, on_behalf_of: str | None = None) -> Feedback:
    """反馈纠错: one who used a certificate (a department that verified, fetched or downloaded it), or one who
    may dispute it, reports a suspected error to its issuer; the certificate's status does not change."""
    holder, types = _acting_for(db, who=who, on_behalf_of=on_behalf_of, action="object")
    scope = repository.reportable_certificates(who, holder_code=holder, type_codes=types)
    certificate = repository.one_certificate(db, scope, identifier)
    if certificate is None:
        raise _not_found(identifier)
    feedback = Feedback(
        certificate_id=certificate.id,
        certificate_identifier=identifier,
        issuer_department_id=certificate.issuer_department_id,
        filed_by=who.holder_code or who.subject,
        filer_kind=_filer_kind(who, certificate),
        filer_department_id=who.department_id,
        reason=reason,
    )
    db.add(feedback)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="feedback.file",
        object_type="cert_feedback",
        object_id=feedback.id,
        purpose=reason,
        subject=certificate.holder_code,
        detail={"certificate": identifier, "filer_kind": feedback.filer_kind},
    )
    return feedback


def get_feedback(db: Session, *, who: Principal, feedback_id: str) -> Feedback:
    feedback = repository.get_feedback(db, who, feedback_id)
    if feedback is None:
        raise NotFound(f"report {feedback_id} not found")
    return feedback


def answer_feedback(db: Session, *, who: Principal, feedback_id: str, answer: str, if_match: str | None = None) -> Feedback:
    """The issuer answers a report (what it found, what it changed) and closes it."""
    feedback = repository.issuer_feedback(db, who.require_department(), feedback_id)
    if feedback is None:
        raise NotFound(f"report {feedback_id} not found among the reports about your department's certificates")
    check_if_match(if_match, feedback.version)
    if feedback.status != FeedbackStatus.OPEN.value:
        raise Conflict(f"report {feedback_id} is already {feedback.status}")
    feedback.status = FeedbackStatus.ANSWERED.value
    feedback.answer = answer
    feedback.answered_by = who.subject
    feedback.answered_at = utcnow()
    db.flush()
    certificate = db.get(Certificate, feedback.certificate_id)
    assert certificate is not None
    audit.record(
        db,
        actor=who,
        action="feedback.answer",
        object_type="cert_feedback",
        object_id=feedback.id,
        purpose=answer,
        subject=certificate.holder_code,
        detail={"certificate": feedback.certificate_identifier},
    )
    return feedback


def mark_overdue_objections(db: Session, *, now: datetime | None = None) -> int:
    """Flag open objections past their deadline (the platform follows them up); returns how many."""
    now = now or utcnow()
    count = 0
    for objection in repository.open_objections(db):
        if not objection.overdue and objection.due_at <= now:
            objection.overdue = True
            objection.history = [
                *objection.history,
                {"at": now.isoformat(), "by": "system", "step": "overdue", "note": "deadline passed"},
            ]
            audit.record(db, actor=audit.SYSTEM, action="objection.overdue", object_type="cert_objection", object_id=objection.id)
            count += 1
    db.flush()
    return count


def recompute_objection_deadlines(db: Session, year: int, *, settings: Settings | None = None) -> int:
    """After a year's calendar is loaded: recompute open deadlines that fall into or past that year."""
    from ops.config import get_settings

    days = (settings or get_settings()).certificate_objection_working_days
    changed = 0
    for objection in repository.open_objections(db):
        if objection.due_at.astimezone(SHANGHAI).year < year and not objection.due_provisional:
            continue
        deadline = add_working_days(db, objection.created_at, days)
        if deadline.due_at != objection.due_at or deadline.provisional != objection.due_provisional:
            objection.due_at, objection.due_provisional = deadline.due_at, deadline.provisional
            changed += 1
    db.flush()
    return changed


# ---- trust list (互通互认) ---------------------------------------------------------------------------


def _check_jwks(jwks: dict[str, Any] | None) -> None:
    if jwks is None:
        return
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, dict) and k.get("kid") and k.get("alg") for k in keys):
        raise Invalid('jwks must be {"keys": [{"kid": …, "alg": …, …}]}', errors=[{"field": "jwks", "message": "not a JWK set"}])


def add_trusted_hub(db: Session, *, who: Actor, data: TrustedHubCreate) -> TrustedHub:
    """Trust another hub's certificates."""
    if not data.jwks and not data.jwks_url:
        raise Invalid(
            "give the hub's keys (jwks) or where to fetch them (jwks_url)", errors=[{"field": "jwks", "message": "required"}]
        )
    _check_jwks(data.jwks)
    if repository.trusted_hub_by_issuer(db, data.issuer):
        raise Conflict(f"hub {data.issuer} is already in the trust list")
    row = TrustedHub(**data.model_dump())
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="trusted_hub.add",
        object_type="cert_trusted_hub",
        object_id=row.issuer,
        detail={"region": row.region_code},
    )
    return row


def update_trusted_hub(db: Session, *, who: Actor, hub_id: str, data: TrustedHubUpdate, if_match: str | None) -> TrustedHub:
    row = repository.trusted_hub(db, hub_id)
    if row is None:
        raise NotFound(f"trusted hub {hub_id} not found")
    check_if_match(if_match, row.version)
    changes = data.model_dump(exclude_unset=True)
    _check_jwks(changes.get("jwks"))
    for key, value in changes.items():
        setattr(row, key, value)
    db.flush()
    _remote_cache.clear()
    audit.record(
        db,
        actor=who,
        action="trusted_hub.update",
        object_type="cert_trusted_hub",
        object_id=row.issuer,
        detail={"changed": sorted(changes)},
    )
    return row


def remove_trusted_hub(db: Session, *, who: Actor, hub_id: str) -> None:
    row = repository.trusted_hub(db, hub_id)
    if row is None:
        raise NotFound(f"trusted hub {hub_id} not found")
    db.delete(row)
    db.flush()
    _remote_cache.clear()
    audit.record(db, actor=who, action="trusted_hub.remove", object_type="cert_trusted_hub", object_id=row.issuer)


def trust_bundle(db: Session, *, settings: Settings) -> dict[str, Any]:
    """The trust list as the offline verifier caches it: this hub and every active trusted hub."""
    hubs = [{"issuer": settings.public_url, "jwks": hub_jwks(db), "status_list_urls": [status_base(settings)]}]
    for hub in repository.trusted_hubs(db):
        if hub.status == "active":
            hubs.append({"issuer": hub.issuer, "jwks": _trusted_jwks(hub, fetch_url), "status_list_urls": hub.status_list_urls})
    return {"hubs": hubs, "generated_at": utcnow().isoformat()}


# ---- bulk issuance (归集) -------------------------------------------------------------------------


BULK_CHUNK = 500  # rows checked, then signed and written together


@dataclass(frozen=True)
class _Pending:
    """A bulk row that passed every check, waiting for its chunk to be signed and written."""

    number: int
    data: IssueRequest
    checked: _Checked
    signer: Any
    key: str | None
    digest: str


class _BulkRun:
    """One bulk issuance: rows are checked as they come, and those that pass are signed and written a chunk
    at a time (one multi-row INSERT for the certificates, one for their audit records)."""

    def __init__(self, db: Session, *, who: Principal, ctx: IssueContext, progress: Callable[[int, int], None] | None) -> None:
        self.db, self.who, self.ctx, self.progress = db, who, ctx, progress
        self.department_id = who.require_department()
        self.total = 0
        self.issued: dict[int, str] = {}  # row number → identifier
        self.errors: list[BulkRowError] = []
        self.pending: list[_Pending] = []
        self.pending_keys: set[str] = set()
        # Idempotency keys stored before this run or during it: key → (request hash, identifier).
        self.keys: dict[str, tuple[str | None, str]] = {}

    def add(self, window: list[tuple[int, dict[str, Any] | str]]) -> None:
        """Check a window of rows, then sign and write the valid ones."""
        parsed: list[tuple[int, IssueRequest, str | None]] = []
        for number, row in window:
            self.total += 1
            if isinstance(row, str):
                self.errors.append(BulkRowError(row=number, message=row))
                continue
            key = row.pop("idempotency_key", None)
            from_csv = bool(row.pop("_csv", False))
            try:
                data = IssueRequest.model_validate(row)
            except ValidationError as exc:
                errs = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
                message = "; ".join(f"{e['field']}: {e['message']}" for e in errs[:5])
                self.errors.append(BulkRowError(row=number, message=message, errors=errs))
                continue
            if from_csv:
                data.face = _typed_csv_face(self.ctx.type_by_code(self.db, data.type_code.strip().upper()), data.face)
            parsed.append((number, data, str(key) if key else None))
        wanted = {key for _, _, key in parsed if key and key not in self.keys}
        if wanted:
            self.keys.update(repository.idempotency_keys(self.db, self.department_id, wanted))
        for number, data, key in parsed:
            try:
                self._check(number, data, key)
            except HubError as exc:
                self.errors.append(BulkRowError(row=number, message=exc.detail, errors=exc.errors))
        self.flush()
        if self.progress:
            self.progress(self.total, len(self.issued))

    def _check(self, number: int, data: IssueRequest, key: str | None) -> None:
        digest = request_hash(data)
        if key is not None and key in self.pending_keys:
            self.flush()  # the earlier row with this key is stored first, as if the rows came one by one
        if key is not None and key in self.keys:
            stored_hash, identifier = self.keys[key]
            _check_replay(stored_hash, digest)
            self.issued[number] = identifier
            return
        if data.render_pdf:
            # The sealed PDF and the seal's use record are written with the certificate: a row of its own.
            self.flush()
            with self.db.begin_nested():
                certificate, _ = issue(self.db, who=self.who, ctx=self.ctx, data=data, idempotency_key=key)
            self._stored(number, key, digest, certificate.identifier)
            return
        checked = _check_request(self.db, who=self.who, ctx=self.ctx, data=data)
        signer = self.ctx.signer(self.db, checked.department.id)
        self.pending.append(_Pending(number, data, checked, signer, key, digest))
        if key is not None:
            self.pending_keys.add(key)

    def flush(self) -> None:
        """Sign and write the pending rows; a row the database refuses is reported, the others are kept."""
        pending, self.pending = self.pending, []
        self.pending_keys.clear()
        if not pending:
            return
        serials = self._serials(pending)
        indices = repository.status_indices(self.db, len(pending))
        public_url = self.ctx.settings.public_url
        rows: list[dict[str, Any]] = []
        trails: list[dict[str, Any]] = []
        for offset, (item, serial) in enumerate(zip(pending, serials, strict=True)):
            draft = _first_version(item.checked, item.data, serial=serial, idempotency_key=item.key, digest=item.digest)
            values = _signed_values(draft, signer=item.signer, public_url=public_url, index=indices[offset], issued_at=utcnow())
            values.update(id=new_id(), version=1)
            rows.append(values)
            trails.append(
                audit.entry(
                    **_issue_trail(
                        self.who, identifier=values["identifier"], holder_code=draft.holder_code, type_code=draft.type_code
                    )
                )
            )
        try:
            with self.db.begin_nested():
                self._write(rows, trails)
            written = list(zip(pending, rows, strict=True))
        except (IntegrityError, DataError):
            written = []
            for item, row, trail in zip(pending, rows, trails, strict=True):
                try:
                    with self.db.begin_nested():
                        self._write([row], [trail])
                except (IntegrityError, DataError) as exc:
                    self.errors.append(_refused_by_database(item.number, exc))
                else:
                    written.append((item, row))
        for item, row in written:
            self._stored(item.number, item.key, item.digest, row["identifier"])
        CERTIFICATE_EVENTS.labels(event="issued").inc(len(written))

    def _serials(self, pending: list[_Pending]) -> list[str]:
        """One block of serials per (type, issuer) series, reserved with one UPDATE each."""
        counts: dict[str, int] = {}
        for item in pending:
            counts[item.checked.serial_counter] = counts.get(item.checked.serial_counter, 0) + 1
        following = {name: repository.allocate(self.db, name, counts[name]) for name in sorted(counts)}
        serials = []
        for item in pending:
            serials.append(f"{following[item.checked.serial_counter]:010d}")
            following[item.checked.serial_counter] += 1
        return serials

    def _write(self, rows: list[dict[str, Any]], trails: list[dict[str, Any]]) -> None:
        self.db.connection().execute(insert(table_of(Certificate)), rows)
        audit.append(self.db, trails)

    def _stored(self, number: int, key: str | None, digest: str, identifier: str) -> None:
        self.issued[number] = identifier
        if key is not None:
            self.keys[key] = (digest, identifier)

    def report(self) -> BulkReport:
        identifiers = [self.issued[n] for n in sorted(self.issued)]
        errors = sorted(self.errors, key=lambda e: e.row)
        return BulkReport(total=self.total, issued=len(identifiers), failed=len(errors), identifiers=identifiers, errors=errors)


def _refused_by_database(number: int, exc: IntegrityError | DataError) -> BulkRowError:
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
    return BulkRowError(
        row=number, message=f"the database refused the certificate: {reason}", errors=[{"field": "row", "message": reason}]
    )


def bulk_issue(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    rows: Iterable[tuple[int, dict[str, Any] | str]],
    progress: Callable[[int, int], None] | None = None,
) -> BulkReport:
    """Issue every valid row; invalid rows are reported with their number and field, none half-issued.

    `rows` yields (row number, parsed row or a message why the row could not be read). Rows are checked
    one by one with the rules of `issue`; the valid ones are signed and written a chunk at a time, so a row
    refused by a check never reaches the database, and a row the database refuses is reported alone.
    """
    run = _BulkRun(db, who=who, ctx=replace(ctx, bulk=True), progress=progress)
    source = iter(rows)
    while window := list(islice(source, BULK_CHUNK)):
        run.add(window)
    report = run.report()
    audit.record(
        db,
        actor=who,
        action="certificate.bulk_issue",
        object_type="bulk",
        object_id=f"{report.issued}/{report.total}",
        detail={"failed": report.failed},
    )
    return report


def _typed_csv_face(ctype: CertificateType | None, face: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are text: turn those the type's schema wants as numbers or booleans into them."""
    if ctype is None:
        return face
    properties = ctype.face_schema.get("properties", {})
    typed = dict(face)
    for name, value in face.items():
        wanted = properties.get(name, {}).get("type")
        if not isinstance(value, str):
            continue
        try:
            if wanted == "integer":
                typed[name] = int(value)
            elif wanted == "number":
                typed[name] = float(value)
            elif wanted == "boolean" and value.lower() in ("true", "false", "是", "否"):
                typed[name] = value.lower() in ("true", "是")
        except ValueError:
            pass  # left as text: the schema check names the field
    return typed


def parse_rows(
    lines: Iterator[str], *, fmt: str, type_code: str | None = None, render_pdf: bool = False
) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Rows of a JSON Lines or CSV file as issue requests.

    CSV columns: holder_code, holder_kind, holder_name, number, valid_from, valid_until, idempotency_key,
    and one column per face field (`face.<name>` or the bare name); `type_code` may be a column or given.
    """
    import csv

    if fmt == "jsonl":
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                yield number, f"not valid JSON: {exc.msg} at column {exc.colno}"
                continue
            if not isinstance(row, dict):
                yield number, "each line must be a JSON object"
                continue
            if type_code and "type_code" not in row:
                row["type_code"] = type_code
            row.setdefault("render_pdf", render_pdf)
            yield number, row
        return
    reader = csv.DictReader(lines)
    plain = {"holder_code", "holder_kind", "holder_name", "number", "valid_from", "valid_until", "idempotency_key", "type_code"}
    for number, record in enumerate(reader, start=2):
        if None in record:
            yield number, "the row has more cells than the header"
            continue
        face = {k.removeprefix("face."): v for k, v in record.items() if k not in plain and v not in (None, "")}
        parsed: dict[str, Any] = {
            "type_code": record.get("type_code") or type_code or "",
            "holder": {
                "code": record.get("holder_code") or "",
                "kind": record.get("holder_kind") or "person",
                "name": record.get("holder_name") or "",
            },
            "face": face,
            "render_pdf": render_pdf,
            "_csv": True,
        }
        for optional in ("number", "valid_from", "valid_until", "idempotency_key"):
            if record.get(optional):
                parsed[optional] = record[optional]
        yield number, parsed
