"""Issuing certificates (签发) and changing their state: change (变更), revoke (注销), suspend and reinstate."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as dtime
from functools import lru_cache
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session, make_transient_to_detached

from certhub import caches, ofdcopy, repository, reservations, sdjwt, sealing, statuslist
from certhub import pdf as pdf_render
from certhub.caches import invalidate_status_cache
from certhub.cert_types import TypeDefinition, TypeSnapshot, validate_face
from certhub.common import HOLDER_CODE_TYPE, ROOT, SHANGHAI, close_objection, field_errors, not_found, status_base_of
from certhub.models import (
    Certificate,
    CertificateStatus,
    CertificateType,
    ObjectionStatus,
)
from certhub.public import new_public_token, public_link
from certhub.schemas import (
    ChangeRequest,
    IssueRequest,
)
from ops import audit
from ops.audit import Actor
from ops.auth import Principal
from ops.codes import citizen_id_problem, mask_identifier, mod37_36_check_char, uscc_problem
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import new_id, table_of, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.identity import service as identity
from ops.metrics import CERTIFICATE_EVENTS
from ops.storage import ObjectStore


def holder_code_problem(code: str, kind: str) -> str | None:
    if kind == "person":
        problem = citizen_id_problem(code)
        return f"not a valid 公民身份号码: {problem}" if problem else None
    problem = uscc_problem(code)
    return f"not a valid 统一社会信用代码: {problem}" if problem else None


def make_identifier(*, type_code: str, issuer_code: str, serial: str, version: int) -> str:
    """The GB/T 36904 identifier; its check character is ISO 7064 MOD 37,36 over the joined parts."""
    ver = f"{version:03d}"
    check = _mod37_36_after(_mod37_36_state(f"{type_code}{issuer_code}"), f"{serial}{ver}")
    return f"{ROOT}.{type_code}.{issuer_code}.{serial}.{ver}.{check}"


# ISO 7064 MOD 37,36 as python-stdnum computes it (ops.codes.mod37_36_check_char, the tests' oracle), in two steps
# so that the running state after a series' type and issuer codes is computed once: they are 39 of an
# identifier's 52 characters, and stdnum's check character of all 52 cost half an ES256 signature (13–18 µs).
_MOD36 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_MOD36_VALUES = {char: value for value, char in enumerate(_MOD36)}


def _mod37_36_step(state: int, chars: str) -> int:
    for char in chars:
        value = _MOD36_VALUES.get(char)
        if value is None:
            raise ValueError(f"character {char!r} is not in 0-9A-Z")
        state = (((state or 36) * 2) % 37 + value) % 36
    return state


@lru_cache(maxsize=1024)  # a pure function of its text: one entry per (type, issuer) series
def _mod37_36_state(prefix: str) -> int:
    return _mod37_36_step(18, prefix)


def _mod37_36_after(state: int, rest: str) -> str:
    """The check character of the text whose first part left `state`, followed by `rest`."""
    return _MOD36[(1 - ((_mod37_36_step(state, rest) or 36) * 2) % 37) % 36]


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


def _validity(ctype: TypeDefinition, valid_from: date, valid_until: date | None) -> date | None:
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


@lru_cache(maxsize=4096)  # a pure function of its day: a bulk run asks for the same few days again and again
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
    _copy_formats: dict[str, str] = field(default_factory=dict)

    def signer(self, db: Session, department_id: str) -> Any:
        if not self.bulk:
            return sealing.department_signer(db, department_id=department_id, vault=self.vault)
        if department_id not in self._signers:
            self._signers[department_id] = sealing.department_signer(db, department_id=department_id, vault=self.vault)
        return self._signers[department_id]

    def copy_format(self, db: Session, who: Actor, department_id: str) -> str:
        """The default format of a department's copies: OFD when it has an SM2 seal the certificate hub may
        seal with (an OFD copy is sealed as GB/T 38540 asks, SM2 only), else PDF (PAdES takes any seal)."""
        if self.bulk and department_id in self._copy_formats:
            return self._copy_formats[department_id]
        chosen = "ofd" if sealing.can_seal_ofd(db, department_id=department_id, actor=who) else "pdf"
        if self.bulk:
            self._copy_formats[department_id] = chosen
        return chosen

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


def check_replay(stored_hash: str | None, digest: str) -> None:
    """An Idempotency-Key used again must come with the same request."""
    if stored_hash != digest:
        raise Conflict(
            "this Idempotency-Key was already used for a different request; use a new key for a new certificate",
            errors=[{"field": "Idempotency-Key", "message": "reused with another body"}],
        )


@dataclass(frozen=True)
class Checked:
    """An issue request that passed every check, with what the checks looked up."""

    ctype: TypeDefinition
    department: Any
    holder_code: str
    valid_from: date
    valid_until: date | None

    @property
    def serial_counter(self) -> str:
        return f"serial:{self.ctype.code}:{self.department.code}"


def check_request(db: Session, *, who: Principal, ctx: IssueContext, data: IssueRequest) -> Checked:
    """Every rule an issue request must follow: type, issuer, holder, face, validity (HubError names the field)."""
    department_id = who.require_department()
    code = data.type_code.strip().upper()
    remembered = None if ctx.bulk else _remembered_parties(db, who, code, department_id)
    ctype: TypeDefinition | None
    department: Any
    if remembered is not None:
        ctype, department = remembered
    else:
        ctype, department = ctx.type_by_code(db, code), None
    if ctype is None or not ctype.active:
        raise Invalid(
            f"certificate type {data.type_code} is not in the catalogue", errors=[{"field": "type_code", "message": "unknown"}]
        )
    if department is None:
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
        raise field_errors(errors, "the holder is invalid")
    validate_face(ctype, data.face)
    valid_from = data.valid_from or _today()
    valid_until = _validity(ctype, valid_from, data.valid_until)
    return Checked(ctype, department, holder_code, valid_from, valid_until)


@dataclass(frozen=True)
class DepartmentSnapshot:
    """What an issuance reads of its issuing department, as it was at `stamp` (``caches.issuing_departments``)."""

    stamp: str
    id: str
    code: str
    name: str


def _remembered_parties(
    db: Session, who: Principal, code: str, department_id: str
) -> tuple[TypeSnapshot, DepartmentSnapshot] | None:
    """The type and the issuing department from this process's snapshots, each read again only when the
    database shows another stamp (one statement for both stamps); None when either is missing (the caller
    reads them as before, and refuses as before)."""
    stamps = repository.issuing_stamps(db, type_code=code, department_id=department_id)
    if stamps is None:
        return None
    type_id, type_stamp, department_stamp = stamps
    ctype = caches.issuing_types.get(code)
    if ctype is None or ctype.id != type_id or ctype.stamp != type_stamp:
        row = repository.type_by_code(db, code)
        if row is None:
            return None
        # Labelled with the stamp read first: were the row changed in between, the next issuance reads it again.
        ctype = TypeSnapshot.of(row, type_stamp)
        _remember(caches.issuing_types, code, ctype)
    department = caches.issuing_departments.get(department_id)
    if department is None or department.stamp != department_stamp:
        found = identity.get_department(db, who=who, department_id=department_id)
        department = DepartmentSnapshot(stamp=department_stamp, id=found.id, code=found.code, name=found.name)
        _remember(caches.issuing_departments, department_id, department)
    return ctype, department


def _remember(cache: dict[str, Any], key: str, value: Any) -> None:
    if len(cache) >= caches.ISSUING_MAX:
        cache.clear()
    cache[key] = value


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


def first_version(
    checked: Checked, data: IssueRequest, *, serial: str, idempotency_key: str | None, digest: str | None
) -> _Draft:
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


def issue_trail(who: Actor, *, identifier: str, holder_code: str, type_code: str) -> dict[str, Any]:
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
    # Kept to tell a replay from a new request under the same key: without a key there is nothing to compare.
    digest = request_hash(data) if idempotency_key else None
    if idempotency_key:
        assert digest is not None
        existing = repository.by_idempotency_key(db, department_id, idempotency_key)
        if existing is not None:
            check_replay(existing.request_hash, digest)
            return existing, False
    checked = check_request(db, who=who, ctx=ctx, data=data)
    serial = f"{reservations.serial(db, checked.serial_counter):010d}"
    draft = first_version(checked, data, serial=serial, idempotency_key=idempotency_key, digest=digest)
    certificate = _build(
        db, who=who, ctx=ctx, ctype=checked.ctype, draft=draft, render_pdf=data.render_pdf, copy_format=data.copy_format
    )
    trail = issue_trail(who, identifier=certificate.identifier, holder_code=draft.holder_code, type_code=draft.type_code)
    audit.append(db, [audit.entry(**trail)])  # one statement, no flush of its own
    CERTIFICATE_EVENTS.labels(event="issued").inc()
    return certificate, True


def signed_values(draft: _Draft, *, signer: sdjwt.JoseSigner, public_url: str, index: int, issued_at: datetime) -> dict[str, Any]:
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


def _build(
    db: Session,
    *,
    who: Actor,
    ctx: IssueContext,
    ctype: TypeDefinition,
    draft: _Draft,
    render_pdf: bool,
    copy_format: str | None = None,
) -> Certificate:
    """Sign and store one certificate version (with its sealed copy, OFD or PDF, if asked: `render_pdf`)."""
    signer = ctx.signer(db, draft.department_id)
    index = reservations.status_index(db)
    values = signed_values(draft, signer=signer, public_url=ctx.settings.public_url, index=index, issued_at=utcnow())
    if not (render_pdf and ctx.storage is not None):
        return _stored(db, values)
    certificate = Certificate(**values)
    db.add(certificate)
    db.flush()
    if (copy_format or ctx.copy_format(db, who, draft.department_id)) == "ofd":
        certificate.ofd_key = ofd_copy(db, who=who, ctx=ctx, ctype=ctype, certificate=certificate, issuer_name=draft.issuer_name)
    else:
        certificate.pdf_key = _render_pdf(
            db, who=who, ctx=ctx, ctype=ctype, certificate=certificate, issuer_name=draft.issuer_name
        )
    db.flush()
    return certificate


_INSERT_CERTIFICATE = insert(table_of(Certificate))


def _stored(db: Session, values: dict[str, Any]) -> Certificate:
    """A certificate without a copy, inserted with one Core statement (no unit-of-work flush) and returned
    as the session's persistent object of that row, as if it had been flushed: a later change to it is an
    UPDATE (version checked) like any other."""
    row = {**values, "id": new_id(), "version": 1, "ofd_key": None, "public_token_hash": None}
    db.connection().execute(_INSERT_CERTIFICATE, row)
    certificate = Certificate(**row)
    make_transient_to_detached(certificate)
    db.add(certificate)
    return certificate


def _render_pdf(
    db: Session, *, who: Actor, ctx: IssueContext, ctype: TypeDefinition, certificate: Certificate, issuer_name: str
) -> str:
    assert ctx.storage is not None
    token, certificate.public_token_hash = new_public_token()  # the copy's QR code opens the public 验真 page
    raw = pdf_render.render(
        certificate=certificate,
        type_name=ctype.name,
        schema=ctype.face_schema,
        template=ctype.template,
        issuer_name=issuer_name,
        qr=public_link(ctx.settings.public_url, token),
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


def ofd_copy(
    db: Session, *, who: Actor, ctx: IssueContext, ctype: TypeDefinition, certificate: Certificate, issuer_name: str
) -> str:
    """The OFD copy (``ofdcopy.py``) of an issued `certificate`, sealed with the department's SM2 seal where the
    page leaves it room; stored, its key returned (the caller sets ``certificate.ofd_key``)."""
    assert ctx.storage is not None
    token, token_hash = new_public_token()  # the same 2D code payload as the PDF copy's
    copy = ofdcopy.render_files(
        certificate=certificate,
        type_name=ctype.name,
        schema=ctype.face_schema,
        template=ctype.template,
        issuer_name=issuer_name,
        qr=public_link(ctx.settings.public_url, token),
        created=certificate.issued_at.astimezone(SHANGHAI),
        font_path=ctx.settings.ofd_font or None,
    )
    sealed = sealing.seal_ofd(
        db,
        vault=ctx.vault,
        settings=ctx.settings,
        department_id=certificate.issuer_department_id,
        copy=copy,
        purpose=f"电子证照 {ctype.name} {certificate.identifier}",
        actor=who,
        box=ofdcopy.SEAL_BOX,
    )
    # set once the copy is sealed: written with the copy's key in one UPDATE, not flushed by the seal's queries
    certificate.public_token_hash = token_hash
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
    new = next_version(
        db,
        who=who,
        ctx=ctx,
        old=old,
        face=data.face,
        holder_name=data.holder_name,
        valid_until=data.valid_until,
        render_pdf=data.render_pdf,
        copy_format=data.copy_format,
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


def next_version(
    db: Session,
    *,
    who: Principal,
    ctx: IssueContext,
    old: Certificate,
    face: dict[str, Any],
    holder_name: str | None,
    valid_until: date | None,
    render_pdf: bool,
    copy_format: str | None = None,
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
    new = _build(db, who=who, ctx=ctx, ctype=ctype, draft=draft, render_pdf=render_pdf, copy_format=copy_format)
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
        close_objection(objection, ObjectionStatus.DISMISSED, f"certificate revoked: {reason}", who.subject)
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


def get_certificate(db: Session, *, who: Principal, identifier: str) -> Certificate:
    """A certificate the caller may read (issuer, holder, platform), recorded as a view."""
    certificate = repository.get_certificate(db, who, identifier)
    if certificate is None:
        raise not_found(identifier)
    return certificate
