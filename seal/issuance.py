"""Seal issuance (制发) and lifecycle: the seal picture, making a seal, suspend, resume, revoke, expire."""

from __future__ import annotations

import base64
import binascii
import io
import struct
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image, UnidentifiedImageError
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.auth import Principal
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import check_if_match, new_id, utcnow
from ops.errors import Conflict, NotFound, PayloadTooLarge
from seal import authority, caches, keys, repository, ses, sesder, sm2ca
from seal.common import field_error, key_purpose
from seal.models import Seal, SealEvent, SealStatus
from seal.schemas import SealCreate

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SVG_NS = "{http://www.w3.org/2000/svg}"


# ---------------------------------------------------------------- pictures


def check_picture(*, kind: str, data_base64: str, settings: Settings) -> bytes:
    """Decode and check a seal picture: a real PNG or a safe SVG, within the size limit."""
    try:
        data = base64.b64decode(data_base64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise field_error("picture.data_base64", "is not valid base64") from exc
    if len(data) > settings.seal_max_picture_bytes:
        raise PayloadTooLarge(
            f"the picture is {len(data)} bytes; at most {settings.seal_max_picture_bytes} are accepted",
            errors=[{"field": "picture.data_base64", "message": "too large"}],
        )
    if kind == "png":
        if not data.startswith(PNG_MAGIC):
            raise field_error("picture.data_base64", "is not a PNG file (type says png)")
        try:
            with Image.open(io.BytesIO(data)) as image:
                image.verify()
            width, height = struct.unpack(">II", data[16:24])
        except (UnidentifiedImageError, OSError, SyntaxError, struct.error) as exc:
            raise field_error("picture.data_base64", f"the PNG cannot be decoded: {exc}") from exc
        if not (16 <= width <= 4096 and 16 <= height <= 4096):
            raise field_error("picture.data_base64", f"the PNG is {width}x{height} pixels; use 16..4096 on each side")
        return data
    return _check_svg(data)


def _check_svg(data: bytes) -> bytes:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise field_error("picture.data_base64", "the SVG is not UTF-8 text") from exc
    upper = text.upper()
    if "<!DOCTYPE" in upper or "<!ENTITY" in upper:
        raise field_error("picture.data_base64", "the SVG may not contain a DOCTYPE or entities")
    try:
        root = ET.fromstring(text)  # noqa: S314 (no DTD is possible, refused above)
    except ET.ParseError as exc:
        raise field_error("picture.data_base64", f"the SVG is not well-formed XML: {exc}") from exc
    if root.tag != f"{SVG_NS}svg":
        raise field_error("picture.data_base64", "the file is not an SVG (root element must be svg in the SVG namespace)")
    for element in root.iter():
        tag = element.tag.split("}")[-1].lower()
        if tag in ("script", "foreignobject", "iframe"):
            raise field_error("picture.data_base64", f"the SVG may not contain <{tag}> elements")
        for name, value in element.attrib.items():
            local = name.split("}")[-1].lower()
            if local.startswith("on"):
                raise field_error("picture.data_base64", f"the SVG may not contain event attributes ({local})")
            if local == "href" and not value.startswith(("#", "data:image/")):
                raise field_error("picture.data_base64", "the SVG may not reference external resources")
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
        raise field_error("valid_from", "cannot be in the past; a seal is valid from when it is made at the earliest")
    if data.valid_to <= valid_from:
        raise field_error("valid_to", "must be after valid_from")
    if data.valid_to <= now:
        raise field_error("valid_to", "is in the past; a seal must be usable for some time")
    if data.valid_to - valid_from > timedelta(days=365 * 10):
        raise field_error("valid_to", "a seal is valid for at most 10 years")
    picture = check_picture(kind=data.picture.type, data_base64=data.picture.data_base64, settings=settings)
    seal = Seal(id=new_id(), version=1)
    seal.code = f"{settings.seal_vendor_id}{department.code}{now:%Y%m%d%H%M%S}{seal.id[:8]}".upper()
    pair = keys.generate(data.algorithm)
    if data.algorithm == keys.SM2:
        cert = x509.load_der_x509_certificate(
            sm2ca.issue_seal_certificate(
                sm2ca.ensure(db, vault, public_url=settings.public_url),
                spki_der=pair.spki_der,
                department_name=department.name,
                department_code=department.code,
                seal_name=data.name,
                seal_code=seal.code,
                not_before=valid_from,
                not_after=data.valid_to,
                public_url=settings.public_url,
            )
        )
    else:
        cert = authority.issue_seal_certificate(
            authority.ensure_authority(db, vault),
            key=pair,
            department_name=department.name,
            department_code=department.code,
            seal_name=data.name,
            seal_code=seal.code,
            not_before=valid_from,
            not_after=data.valid_to,
            crl_url=sm2ca.crl_url_p256(settings.public_url),
            aia=sm2ca.authority_access(settings.public_url, "p256"),
        )
    kid = f"seal-{keys.jwk_thumbprint(pair.public_jwk)[:24]}"
    seal.department_id = department.id
    seal.department_code = department.code
    seal.department_name = department.name
    seal.name = data.name
    seal.seal_type = data.seal_type
    seal.alg = data.algorithm
    seal.kid = kid
    seal.public_jwk = {**pair.public_jwk, "kid": kid, "alg": data.algorithm, "use": "sig"}
    seal.private_key = vault.wrap(pair.private_pem, purpose=key_purpose(seal.id)).as_dict()
    seal.certificate_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    seal.certificate_serial = format(cert.serial_number, "x")
    seal.picture_type = data.picture.type
    seal.picture = picture
    seal.picture_width_mm = data.picture.width_mm
    seal.picture_height_mm = data.picture.height_mm
    seal.valid_from = valid_from
    seal.valid_to = data.valid_to
    seal.created_at = now
    make_seal_der(db, vault=vault, seal=seal, settings=settings)
    seal.status = SealStatus.ACTIVE.value
    seal.created_by = who.subject
    db.add(seal)
    db.flush()
    caches.forget_use_choices_on_commit(db)  # a new seal may be the department's preferred one
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


def make_seal_der(db: Session, *, vault: KeyVault, seal: Seal, settings: Settings) -> bytes:
    """The seal's GB/T 38540 v4 SESeal in DER, signed by the SM2 seal maker; kept with its readable view."""
    maker = sm2ca.ensure(db, vault, public_url=settings.public_url).maker
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    info = sesder.seal_info(
        vendor_id=settings.seal_vendor_id,
        es_id=seal.code,
        seal_type=ses.SEAL_TYPE_ORGANISATION,
        name=seal.name,
        certificates=[cert.public_bytes(serialization.Encoding.DER)],
        created=seal.created_at,
        valid_start=seal.valid_from,
        valid_end=seal.valid_to,
        picture_type=seal.picture_type.upper(),
        picture=seal.picture,
        width_mm=round(seal.picture_width_mm),
        height_mm=round(seal.picture_height_mm),
        extensions=[
            sesder.Extension(sesder.EXT_DEPARTMENT_CODE, False, seal.department_code.encode()),
            sesder.Extension(sesder.EXT_DEPARTMENT_NAME, False, seal.department_name.encode()),
            sesder.Extension(sesder.EXT_SEAL_TYPE, False, seal.seal_type.encode()),
        ],
    )
    info_der = info.dump()
    der = sesder.seal(info, maker_cert=maker.certificate_der, alg=sesder.SM2_SM3, signed_value=maker.sign(info_der))
    seal.structure_der = der
    seal.structure = sesder.seal_view(sesder.parse_seal(der))
    return der


def migrate_der(db: Session, *, vault: KeyVault, settings: Settings) -> int:
    """Give every seal made before the DER form its SESeal in DER (same key and certificate); returns how many."""
    count = 0
    for seal in repository.seals_without_der(db):
        make_seal_der(db, vault=vault, seal=seal, settings=settings)
        audit.record(db, actor=audit.SYSTEM, action="seal.migrate_der", object_type="seal", object_id=seal.id)
        count += 1
    db.flush()
    return count


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
    db: Session,
    *,
    who: Actor,
    seal_id: str,
    action: str,
    reason: str,
    if_match: str | None = None,
    at: datetime | None = None,
    vault: KeyVault | None = None,
    public_url: str | None = None,
) -> Seal:
    """Suspend, resume or revoke a seal (with a reason); each change is an event and an audit record.

    With the vault, the issuing CAs' CRLs are re-issued at once (else when next fetched: `GET /seal/crl/...`)."""
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
    caches.forget_seal_on_commit(db, seal.certificate_serial)  # other processes: within seal_status_cache_seconds
    caches.forget_use_choices_on_commit(db)
    audit.record(db, actor=who, action=f"seal.{action}", object_type="seal", object_id=seal.id, detail={"reason": reason})
    if vault is not None and public_url is not None:
        sm2ca.publish(db, vault, public_url=public_url)
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
        caches.forget_seal_on_commit(db, seal.certificate_serial)
        audit.record(db, actor=audit.SYSTEM, action="seal.expire", object_type="seal", object_id=seal.id)
        count += 1
    db.flush()
    return count
