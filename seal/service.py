"""Rules of the seal domain: key custody, seal issuance (制发), sealing (用印) and verification (核验)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import struct
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from PIL import Image, UnidentifiedImageError
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.auth import Principal
from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import check_if_match, new_id, utcnow
from ops.errors import Conflict, Invalid, NotFound, PayloadTooLarge, UpstreamError
from seal import authority, keys, repository, ses, timestamps
from seal import pdf as pades
from seal import verification as _verification
from seal.keys import ALGORITHMS, Signer, SoftwareSigner
from seal.models import Seal, SealEvent, SealStatus, SealUse
from seal.schemas import SEAL_TYPES, PdfVerificationReport, SealCreate, VerificationReport

__all__ = [
    "Signer",
    "department_jwks",
    "department_signer",
    "issue_seal",
    "revoke_seal",
    "seal_pdf",
    "sign_detached",
    "verify_detached",
    "verify_jose_signature",
    "verify_pdf",
]

# Which seal a department uses when the caller names no type.
PREFERRED_TYPES = ("公章", "电子证照专用章", "业务专用章", "合同专用章", "财务专用章", "发票专用章")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


def _purpose(seal_id: str) -> str:
    return f"seal-key:{seal_id}"


# ---------------------------------------------------------------- pictures


def _field_error(field: str, message: str) -> Invalid:
    return Invalid(f"{field}: {message}", errors=[{"field": field, "message": message}])


def check_picture(*, kind: str, data_base64: str, settings: Settings) -> bytes:
    """Decode and check a seal picture: a real PNG or a safe SVG, within the size limit."""
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _field_error("picture.data_base64", "is not valid base64") from exc
    if len(data) > settings.seal_max_picture_bytes:
        raise PayloadTooLarge(
            f"the picture is {len(data)} bytes; at most {settings.seal_max_picture_bytes} are accepted",
            errors=[{"field": "picture.data_base64", "message": "too large"}],
        )
    if kind == "png":
        if not data.startswith(PNG_MAGIC):
            raise _field_error("picture.data_base64", "is not a PNG file (type says png)")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            width, height = struct.unpack(">II", data[16:24])
        except (UnidentifiedImageError, OSError, SyntaxError, struct.error) as exc:
            raise _field_error("picture.data_base64", f"the PNG cannot be decoded: {exc}") from exc
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise _field_error("picture.data_base64", f"the PNG is {width}x{height} pixels; use 16..4096 on each side")
        return data
    return _check_svg(data)


def _check_svg(data: bytes) -> bytes:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _field_error("picture.data_base64", "the SVG is not UTF-8 text") from exc
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise _field_error("picture.data_base64", "the SVG may not contain a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 (no DTD is possible, refused above)
    except ET.ParseError as exc:
        raise _field_error("picture.data_base64", f"the SVG is not well-formed XML: {exc}") from exc
    if root.tag != f"{SVG_NS}svg":
        raise _field_error("picture.data_base64", "the file is not an SVG (root element must be svg in the SVG namespace)")
    for element in root.iter():
        tag = element.tag.split("}")[-1].lower()
        if tag in ("script", "foreignobject", "iframe"):
            raise _field_error("picture.data_base64", f"the SVG may not contain <{tag}> elements")
        for name, value in element.attrib.items():
            local = name.split("}")[-1].lower()
            if local.startswith("on"):
                raise _field_error("picture.data_base64", f"the SVG may not contain event attributes ({local})")
            if local == "href" and not value.startswith(("#", "data:image/")):
                raise _field_error("picture.data_base64", "the SVG may not reference external resources")
    return data


# ---------------------------------------------------------------- issuance and lifecycle


def _department(db: Session, department_id: str) -> Any:
    from ops.identity import repository as identity_repository

    department = identity_repository.department_by_id(db, department_id)
    if department is None:
        raise NotFound(f"no department {department_id}", errors=[{"field": "department_id", "message": "unknown"}])
    if not department.active:
        raise Conflict(f"department {department.name} is not active; it cannot get a seal")
    return department


def issue_seal(db: Session, *, who: Principal, vault: KeyVault, data: SealCreate, settings: Settings) -> Seal:
    """Make a seal for a department: key, certificate, picture and the seal structure signed by the maker."""
    department = _department(db, data.department_id)
    now = _now_seconds()
    valid_from = data.valid_from or now
    if valid_from < now - timedelta(minutes=5):
        raise _field_error("valid_from", "cannot be in the past; a seal is valid from when it is made at the earliest")
    if data.valid_to <= valid_from:
        raise _field_error("valid_to", "must be after valid_from")
    if data.valid_to <= now:
        raise _field_error("valid_to", "is in the past; a seal must be usable for some time")
    if data.valid_to - valid_from > timedelta(days=365 * 10):
        raise _field_error("valid_to", "a seal is valid for at most 10 years")
    picture = check_picture(kind=data.picture.type, data_base64=data.picture.data_base64, settings=settings)
    hub = authority.ensure_authority(db, vault)
    seal = Seal(id=new_id(), version=1)
    seal.code = f"{settings.seal_vendor_id}{department.code}{now:%Y%m%d%H%M%S}{seal.id[:8]}".upper()
    pair = keys.generate(data.algorithm)
    cert = authority.issue_seal_certificate(
        hub,
        key=pair,
        department_name=department.name,
        department_code=department.code,
        seal_name=data.name,
        seal_code=seal.code,
        not_before=valid_from,
        not_after=data.valid_to,
    )
    info = ses.seal_info(
        vendor_id=settings.seal_vendor_id,
        es_id=seal.code,
        type_name=data.seal_type,
        name=data.name,
        certificates=[cert],
        created=now,
        valid_from=valid_from,
        valid_to=data.valid_to,
        picture_type=data.picture.type,
        picture=picture,
        width_mm=data.picture.width_mm,
        height_mm=data.picture.height_mm,
        extensions=[
            {"extnID": "department", "critical": False, "extnValue": {"code": department.code, "name": department.name}},
            {"extnID": "algorithm", "critical": False, "extnValue": data.algorithm},
        ],
    )

    def maker_sign(payload: bytes) -> bytes:
        return keys.sign_with(keys.ES256, hub.maker.private, payload)

    kid = f"seal-{keys.jwk_thumbprint(pair.public_jwk)[:24]}"
    seal.department_id = department.id
    seal.department_code = department.code
    seal.department_name = department.name
    seal.name = data.name
    seal.seal_type = data.seal_type
    seal.alg = data.algorithm
    seal.kid = kid
    seal.public_jwk = {**pair.public_jwk, "kid": kid, "alg": data.algorithm, "use": "sig"}
    seal.private_key = vault.wrap(pair.private_pem, purpose=_purpose(seal.id)).as_dict()
    seal.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    seal.certificate_serial = format(cert.serial_number, "x")
    seal.picture_type = data.picture.type
    seal.picture = picture
    seal.picture_width_mm = data.picture.width_mm
    seal.picture_height_mm = data.picture.height_mm
    seal.valid_from = valid_from
    seal.valid_to = data.valid_to
    seal.structure = ses.sign_seal(info, maker_cert=hub.maker.certificate, maker_sign=maker_sign)
    seal.status = SealStatus.ACTIVE.value
    seal.created_by = who.subject
    seal.created_at = now
    db.add(seal)
    db.flush()
    db.add(SealEvent(seal_id=seal.id, at=now, status=SealStatus.ACTIVE.value, reason="issued", actor=who.subject))
    audit.record(
        db,
        actor=who,
        action="seal.issue",
        object_type="seal",
        object_id=seal.id,
        detail={"department_id": department.id, "type": data.seal_type, "alg": data.algorithm, "code": seal.code},
    )
    return seal


def get_seal(db: Session, *, who: Principal, seal_id: str) -> Seal:
    """A seal the caller may see (404 for another department's)."""
    seal = repository.get_seal(db, who, seal_id)
    if seal is None:
        raise NotFound(f"no seal {seal_id}")
    return seal


_TRANSITIONS = {
    "suspend": ({SealStatus.ACTIVE.value}, SealStatus.SUSPENDED.value),
    "resume": ({SealStatus.SUSPENDED.value}, SealStatus.ACTIVE.value),
    "revoke": ({SealStatus.ACTIVE.value, SealStatus.SUSPENDED.value}, SealStatus.REVOKED.value),
}


def change_status(
    db: Session, *, who: Actor, seal_id: str, action: str, reason: str, if_match: str | None = None, at: datetime | None = None
) -> Seal:
    """Suspend, resume or revoke a seal (with a reason); each change is an event and an audit record."""
    seal = db.get(Seal, seal_id)
    if seal is None:
        raise NotFound(f"no seal {seal_id}")
    check_if_match(if_match, seal.version)
    allowed, target = _TRANSITIONS[action]
    if seal.status not in allowed:
        raise Conflict(f"a {seal.status} seal cannot be {action}d")
    if action == "resume" and seal.valid_to <= utcnow():
        raise Conflict("the seal has passed its validity period; it cannot be resumed")
    now = at or utcnow()
    seal.status = target
    seal.status_reason = reason
    if target == SealStatus.REVOKED.value:
        seal.revoked_at = now
    db.add(SealEvent(seal_id=seal.id, at=now, status=target, reason=reason, actor=who.subject))
    db.flush()
    audit.record(db, actor=who, action=f"seal.{action}", object_type="seal", object_id=seal.id, detail={"reason": reason})
    return seal


def _now_seconds() -> datetime:
    # Seal structures and signatures carry whole seconds; the history is kept at the same precision.
    return utcnow().replace(microsecond=0)


def revoke_seal(db: Session, *, who: Actor, seal_id: str, reason: str, if_match: str | None = None) -> Seal:
    """Revoke a seal for good (what it signed before stays verifiable, reported as revoked since)."""
    return change_status(db, who=who, seal_id=seal_id, action="revoke", reason=reason, if_match=if_match)


def expire_seals(db: Session, *, now: datetime | None = None) -> int:
    """Mark seals past their validity period as expired; returns how many."""
    now = now or utcnow()
    count = 0
    for seal in repository.seals_expired_by(db, now):
        seal.status = SealStatus.EXPIRED.value
        seal.status_reason = "validity period ended"
        db.add(SealEvent(seal_id=seal.id, at=seal.valid_to, status=SealStatus.EXPIRED.value, reason=None, actor="system"))
        audit.record(db, actor=audit.SYSTEM, action="seal.expire", object_type="seal", object_id=seal.id)
        count += 1
    db.flush()
    return count


def rewrap_keys(db: Session, *, vault: KeyVault) -> int:
    """Re-wrap every seal and authority private key under the current master key (the keys do not change)."""
    from sqlalchemy import select

    changed = authority.rewrap(db, vault)
    for seal in db.scalars(select(Seal)):
        wrapped = WrappedSecret.from_dict(seal.private_key)
        new = vault.rewrap(wrapped, purpose=_purpose(seal.id))
        if new != wrapped:
            seal.private_key = new.as_dict()
            changed += 1
    db.flush()
    audit.record(db, actor=audit.SYSTEM, action="seal.rewrap", object_type="seal", object_id="*", detail={"rewrapped": changed})
    return changed


# ---------------------------------------------------------------- signers (the contract other domains use)


def _usable(seal: Seal, now: datetime) -> bool:
    return seal.status == SealStatus.ACTIVE.value and seal.valid_from <= now < seal.valid_to


def _chain_pem(db: Session, seal: Seal) -> list[str]:
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    for issuing in authority.intermediate_certificates(db):
        if issuing.subject == cert.issuer:
            try:
                cert.verify_directly_issued_by(issuing)
            except (InvalidSignature, ValueError, TypeError):
                continue  # another issuing CA with the same name (an older generation)
            return [seal.certificate_pem, issuing.public_bytes(serialization.Encoding.PEM).decode()]
    return [seal.certificate_pem]


# Unwrapped signers of this process, keyed by the seal, its wrapped key and the vault's master key:
# a re-wrapped key or another master key misses the cache and is unwrapped (and checked) again.
# Whether the seal may be used is checked against the database on every use, never cached.
_SIGNERS: OrderedDict[tuple[str, str, str, str], SoftwareSigner] = OrderedDict()
_SIGNERS_LOCK = threading.Lock()
_SIGNERS_MAX = 512


def signer_for(db: Session, *, seal: Seal, vault: KeyVault) -> SoftwareSigner:
    """The signer of one seal (its private key unwrapped in this process only)."""
    wrapped = WrappedSecret.from_dict(seal.private_key)
    cache_key = (seal.id, wrapped.kek_id, hashlib.sha256(wrapped.ciphertext.encode()).hexdigest(), vault.current_kek_id)
    with _SIGNERS_LOCK:
        cached = _SIGNERS.get(cache_key)
        if cached is not None:
            _SIGNERS.move_to_end(cache_key)
            return cached
    pem = vault.unwrap(wrapped, purpose=_purpose(seal.id))
    signer = SoftwareSigner(
        alg=seal.alg,
        kid=seal.kid,
        seal_id=seal.id,
        _private=keys.load_private(seal.alg, pem),
        _jwk=dict(seal.public_jwk),
        _chain=_chain_pem(db, seal),
    )
    with _SIGNERS_LOCK:
        _SIGNERS[cache_key] = signer
        while len(_SIGNERS) > _SIGNERS_MAX:
            _SIGNERS.popitem(last=False)
    return signer


def _choose(seals: list[Seal], now: datetime, *, algorithms: tuple[str, ...] = ALGORITHMS) -> Seal | None:
    usable = [s for s in seals if _usable(s, now) and s.alg in algorithms]
    if not usable:
        return None
    rank = {t: i for i, t in enumerate(PREFERRED_TYPES)}
    return min(usable, key=lambda s: (rank.get(s.seal_type, len(rank)), -s.created_at.timestamp()))


def _use_seal(
    db: Session, *, department_id: str, seal_id: str | None, seal_type: str | None, algorithms: tuple[str, ...] = ALGORITHMS
) -> Seal:
    now = utcnow()
    if seal_id:
        seal = repository.own_seal(db, department_id=department_id, seal_id=seal_id)
        if seal is None:
            raise NotFound(f"the department has no seal {seal_id}")
        if seal.status != SealStatus.ACTIVE.value:
            raise Conflict(f"seal {seal.name} ({seal.seal_type}) is {seal.status}; only active seals can be used")
        if not seal.valid_from <= now < seal.valid_to:
            raise Conflict(
                f"seal {seal.name} is outside its validity period ({seal.valid_from:%Y-%m-%d}..{seal.valid_to:%Y-%m-%d})"
            )
        if seal.alg not in algorithms:
            raise Conflict(
                f"seal {seal.name} uses {seal.alg}, which cannot seal this kind of document; use a seal with "
                + " or ".join(algorithms)
            )
        return seal
    if seal_type is not None and seal_type not in SEAL_TYPES:
        raise _field_error("seal_type", f"unknown seal type {seal_type!r}; use one of {', '.join(SEAL_TYPES)}")
    chosen = _choose(repository.active_seals(db, department_id=department_id, seal_type=seal_type), now, algorithms=algorithms)
    if chosen is None:
        what = f"active {seal_type}" if seal_type else "active seal"
        if algorithms != ALGORITHMS:
            what += f" using {' or '.join(algorithms)}"
        raise Conflict(f"the department has no {what}; ask the platform administrator to issue one (电子印章制发)")
    return chosen


def department_signer(db: Session, *, department_id: str, vault: KeyVault, seal_type: str | None = None) -> Signer:
    """The signer of the department's active seal (a given type, or its preferred one);
    Conflict with a clear message if the department has no active seal."""
    seal = _use_seal(db, department_id=department_id, seal_id=None, seal_type=seal_type)
    return signer_for(db, seal=seal, vault=vault)


def verify_jose_signature(*, alg: str, jwk: dict[str, Any], data: bytes, signature: bytes) -> bool:
    """Verify a signature made by a Signer, given its public JWK (all three algorithms)."""
    if jwk.get("alg") not in (None, alg):
        return False
    try:
        public = keys.public_from_jwk(alg, jwk)
    except ValueError:
        return False
    return keys.verify_with(alg, public, data, signature)


def department_jwks(db: Session, *, department_id: str | None = None) -> dict[str, Any]:
    """Public keys of active and previously active seals (for verifying what they signed), as a JWK set,
    each key with its `kid`, `alg`, the department code (custom member `dept_code`) and `status`."""
    entries = []
    for seal in repository.published_seals(db, department_id=department_id):
        jwk = dict(seal.public_jwk)
        jwk.update(
            {
                "kid": seal.kid,
                "alg": seal.alg,
                "use": "sig",
                "dept_code": seal.department_code,
                "status": seal.status,
                "seal_id": seal.id,
                "seal_type": seal.seal_type,
                "x5c": [_pem_body(p) for p in _chain_pem(db, seal)],
            }
        )
        if seal.revoked_at is not None:
            jwk["revoked_at"] = ses.timestamp(seal.revoked_at)
        entries.append(jwk)
    return {"keys": entries}


def _pem_body(pem_text: str) -> str:
    return "".join(line for line in pem_text.strip().splitlines() if not line.startswith("-----"))


# ---------------------------------------------------------------- sealing (用印)


def _record_use(
    db: Session, *, seal: Seal, actor: Actor, kind: str, document_hash: str, hash_alg: str, signature: bytes, purpose: str
) -> SealUse:
    use = SealUse(
        seal_id=seal.id,
        department_id=seal.department_id,
        at=utcnow(),
        actor=actor.subject,
        kind=kind,
        document_hash=document_hash,
        hash_alg=hash_alg,
        signature_hash=hashlib.sha256(signature).hexdigest(),
        purpose=purpose,
    )
    db.add(use)
    db.flush()
    audit.record(
        db,
        actor=actor,
        action=f"seal.use.{kind}",
        object_type="seal",
        object_id=seal.id,
        purpose=purpose,
        detail={"document_hash": document_hash, "hash_alg": hash_alg, "use_id": use.id},
    )
    return use


def _check_purpose(purpose: str) -> str:
    purpose = (purpose or "").strip()
    if len(purpose) < 2 or len(purpose) > 500:
        raise _field_error("purpose", "state why the seal is used (2..500 characters)")
    return purpose


def _timestamper(settings: Settings) -> TimeStamper | None:
    return HTTPTimeStamper(settings.seal_tsa_url, timeout=10) if settings.seal_tsa_url else None


def seal_pdf(
    db: Session,
    *,
    vault: KeyVault,
    department_id: str,
    pdf: bytes,
    purpose: str,
    seal_id: str | None = None,
    page: int = 0,
    box: tuple[float, float, float, float] | None = None,
    actor: Actor,
    timestamper: TimeStamper | None = None,
    settings: Settings,
) -> bytes:
    """PAdES-seal a PDF with the department's seal (visible stamp), record the use; return the sealed PDF."""
    # The HTTP API passes the caller's own department; a domain calling this acts for `department_id`
    # (e.g. the certificate hub sealing a copy of a certificate that department issued) and `actor` is audited.
    purpose = _check_purpose(purpose)
    if len(pdf) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the PDF is {len(pdf)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    # pyHanko signs with Ed25519 and P-256; PAdES has no SM2 profile it can produce (see docs/seal.md).
    seal = _use_seal(db, department_id=department_id, seal_id=seal_id, seal_type=None, algorithms=(keys.ES256, keys.EDDSA))
    pem = vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=_purpose(seal.id))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in _chain_pem(db, seal)[1:]]
    roots = authority.root_certificates(db)
    field_name = f"Seal-{seal.code[-8:]}-{utcnow():%Y%m%d%H%M%S%f}"
    sealed = pades.sign(
        pdf,
        cert=cert,
        chain=chain + roots[-1:],
        private_pem=pem,
        spec=pades.StampSpec(
            page=page,
            box=box,
            width_mm=seal.picture_width_mm,
            height_mm=seal.picture_height_mm,
            picture_png=seal.picture if seal.picture_type == "png" else None,
            label=f"Seal {seal.code}",
        ),
        reason=purpose,
        signer_name=f"{seal.department_name} {seal.name}",
        field_name=field_name,
        timestamper=timestamper or _timestamper(settings),
    )
    signature_value = pades.signature_value(sealed, field_name)
    _record_use(
        db,
        seal=seal,
        actor=actor,
        kind="pdf",
        document_hash=hashlib.sha256(sealed).hexdigest(),
        hash_alg="SHA-256",
        signature=signature_value,
        purpose=purpose,
    )
    return sealed


def document_bytes(*, data_base64: str | None, document: Any, max_bytes: int) -> bytes:
    """The bytes a detached signature covers: decoded data, or the canonical form of a JSON document."""
    if (data_base64 is None) == (document is None):
        raise Invalid(
            "give exactly one of data_base64 (bytes) and document (JSON)",
            errors=[{"field": "data_base64", "message": "exactly one of data_base64 and document"}],
        )
    if data_base64 is not None:
        try:
            data = base64.b64decode(data_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise _field_error("data_base64", "is not valid base64") from exc
    else:
        data = ses.canonical(document)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the data is {len(data)} bytes; at most {max_bytes} are accepted")
    return data


def sign_detached(
    db: Session,
    *,
    vault: KeyVault,
    department_id: str,
    data: bytes,
    purpose: str,
    actor: Actor,
    content_type: str = "application/octet-stream",
    seal_id: str | None = None,
    seal_type: str | None = None,
    timestamper: TimeStamper | None = None,
    settings: Settings,
) -> dict[str, Any]:
    """Seal bytes with a detached GB/T 38540 seal signature (SES_Signature, JSON encoding); record the use."""
    purpose = _check_purpose(purpose)
    seal = _use_seal(db, department_id=department_id, seal_id=seal_id, seal_type=seal_type)
    signer = signer_for(db, seal=seal, vault=vault)
    data_hash = keys.digest(seal.alg, data)
    tbs = ses.to_sign(
        eseal=seal.structure,
        at=utcnow(),
        data_hash=data_hash,
        property_info=content_type,
        extensions=[{"extnID": "purpose", "critical": False, "extnValue": purpose}],
    )
    value = signer.sign(ses.canonical(tbs))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    result = ses.signature(tbs, cert=cert, alg=seal.alg, value=value)
    stamper = timestamper or _timestamper(settings)
    if stamper is not None:
        try:
            result["timeStamp"] = ses.b64(timestamps.stamp(value, stamper))
        except (OSError, ValueError) as exc:  # TimestampRequestError and network errors are OSErrors
            raise UpstreamError(f"the time-stamp authority did not answer: {exc}") from exc
    _record_use(
        db,
        seal=seal,
        actor=actor,
        kind="data",
        document_hash=data_hash.hex(),
        hash_alg=keys.HASH_NAME[seal.alg],
        signature=value,
        purpose=purpose,
    )
    return result


# ---------------------------------------------------------------- verification (核验)


def verify_detached(db: Session, *, signature: dict[str, Any], data: bytes, settings: Settings) -> VerificationReport:
    """Verify data against its detached seal signature and report, ETSI-style."""
    return _verification.verify_detached(db, signature=signature, data=data, settings=settings)


def verify_pdf(db: Session, *, pdf_bytes: bytes, settings: Settings) -> PdfVerificationReport:
    """Verify every seal signature of a PDF and report, ETSI-style."""
    if len(pdf_bytes) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the PDF is {len(pdf_bytes)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    return _verification.verify_pdf(db, pdf_bytes=pdf_bytes, settings=settings)


def record_verification(db: Session, *, who: Actor, kind: str, verdict: str, document_hash: str) -> None:
    """Audit a verification (anyone may verify; the trail says what was checked and the verdict)."""
    audit.record(
        db,
        actor=who,
        action=f"seal.verify.{kind}",
        object_type="seal_document",
        object_id=document_hash,
        outcome=verdict,
    )


def authority_certificates(db: Session, *, vault: KeyVault) -> dict[str, Any]:
    """The hub's root and issuing CA certificates (PEM): what verifiers trust."""
    hub = authority.ensure_authority(db, vault)
    return {
        "root": hub.root.certificate_pem,
        "issuing": hub.issuing.certificate_pem,
        "maker": hub.maker.certificate_pem,
        "roots": [c.public_bytes(serialization.Encoding.PEM).decode() for c in authority.root_certificates(db)],
    }
