"""Sealing (用印): a PAdES-sealed PDF or a detached GB/T 38540 seal signature (DER), each use recorded."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from cryptography import x509
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from ops.errors import Invalid, PayloadTooLarge, UpstreamError
from seal import authority, keys, ses, sesder, timestamps
from seal import pdf as pades
from seal.common import field_error, key_purpose
from seal.custody import chain_pem, seal_to_use, signer_for
from seal.issuance import make_seal_der
from seal.models import Seal, SealUse


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
        raise field_error("purpose", "state why the seal is used (2..500 characters)")
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
    seal = seal_to_use(db, department_id=department_id, seal_id=seal_id, seal_type=None, algorithms=(keys.ES256, keys.EDDSA))
    pem = vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=key_purpose(seal.id))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in chain_pem(db, seal)[1:]]
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
            raise field_error("data_base64", "is not valid base64") from exc
    else:
        data = ses.canonical(document)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"the data is {len(data)} bytes; at most {max_bytes} are accepted")
    return data


def sign_detached_der(
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
) -> bytes:
    """Seal bytes with a detached GB/T 38540 v4 seal signature; return the DER SES_Signature; record the use.

    The seal's key signs the DER of TBS_Sign (SM2 with SM3 and the default user ID for SM2 seals); dataHash is
    the SM3 hash of the data (SHA-256 for the P-256 and Ed25519 seals PAdES uses)."""
    purpose = _check_purpose(purpose)
    if not content_type.isascii() or not content_type.isprintable():
        raise field_error("content_type", "must be printable ASCII (it is the IA5String propertyInfo)")
    seal = seal_to_use(db, department_id=department_id, seal_id=seal_id, seal_type=seal_type)
    signer = signer_for(db, seal=seal, vault=vault)
    seal_der = seal.structure_der or make_seal_der(db, vault=vault, seal=seal, settings=settings)
    data_hash = keys.digest(seal.alg, data)
    tbs = sesder.to_sign(
        seal_der=seal_der,
        at=utcnow(),
        data_hash=data_hash,
        property_info=content_type,
        extensions=[sesder.Extension(sesder.EXT_PURPOSE, False, purpose.encode())],
    )
    value = keys.raw_to_der(seal.alg, signer.sign(tbs.dump()))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    token = None
    stamper = timestamper or _timestamper(settings)
    if stamper is not None:
        try:
            token = timestamps.stamp(value, stamper)
        except (OSError, ValueError) as exc:  # TimestampRequestError and network errors are OSErrors
            raise UpstreamError(f"the time-stamp authority did not answer: {exc}") from exc
    der = sesder.signature(tbs, cert=ses.der(cert), alg=keys.SIGNATURE_OID[seal.alg], value=value, timestamp=token)
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
    return der


def detached_result(der: bytes) -> dict[str, Any]:
    """The JSON answer for a DER seal signature: the DER (base64) and a readable view of it."""
    return {
        "format": "GB/T 38540-2020 SES_Signature, DER",
        "der_base64": ses.b64(der),
        "view": sesder.signature_view(sesder.parse_signature(der)),
    }


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
    """Seal bytes with a detached GB/T 38540 seal signature: {"der_base64": the DER SES_Signature, "view"}."""
    der = sign_detached_der(
        db,
        vault=vault,
        department_id=department_id,
        data=data,
        purpose=purpose,
        actor=actor,
        content_type=content_type,
        seal_id=seal_id,
        seal_type=seal_type,
        timestamper=timestamper,
        settings=settings,
    )
    return detached_result(der)
