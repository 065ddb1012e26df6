"""Sealing (用印): a PAdES-sealed PDF, a sealed OFD document or a detached GB/T 38540 seal signature (DER), each use
recorded."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Protocol

from cryptography import x509
from pyhanko.sign.timestamps import TimeStamper
from sqlalchemy import insert
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import new_id, table_of, utcnow
from ops.errors import Conflict, Invalid, NotFound, PayloadTooLarge, UpstreamError
from ops.metrics import SEAL_TIMESTAMP_EVENTS
from ops.storage import ObjectStore
from seal import authority, caches, keys, ltv, ofd, ofdsign, repository, ses, sesder, stamplater, timestamps, tsa, usage
from seal import pdf as pades
from seal.common import field_error, key_purpose
from seal.custody import chain_pem, seal_to_use, signer_for
from seal.issuance import make_seal_der
from seal.keys import SoftwareSigner
from seal.models import Seal, SealUse, SealUseRequest


def _record_use(
    db: Session,
    *,
    seal: _SealRef,
    actor: Actor,
    kind: str,
    document_hash: str,
    hash_alg: str,
    signature: bytes,
    purpose: str,
    approval: SealUseRequest | None,
    system: str | None,
    output: bytes,
    storage: ObjectStore | None,
    timestamp_state: str | None = None,
    signature_der: bytes | None = None,
    timestamp_error: str | None = None,
) -> str:
    """The use row and its audit record, each one statement in the caller's transaction (no ORM flush of their
    own); the use's id returned."""
    # The sealed output is kept in object storage when the caller passes a store: its archive package holds it.
    object_key = storage.put([output]).key if storage is not None else None
    use_id = new_id()
    db.connection().execute(
        insert(table_of(SealUse)),
        {
            "id": use_id,
            "seal_id": seal.id,
            "department_id": seal.department_id,
            "at": utcnow(),
            "actor": actor.subject,
            "kind": kind,
            "document_hash": document_hash,
            "hash_alg": hash_alg,
            "signature_hash": hashlib.sha256(signature).hexdigest(),
            "purpose": purpose,
            "request_id": approval.id if approval else None,
            "object_key": object_key,
            "timestamp_state": timestamp_state,
            "signature_der": signature_der,
            "timestamp_error": timestamp_error,
        },
    )
    if approval is not None:
        approval.use_id = use_id
    detail: dict[str, Any] = {"document_hash": document_hash, "hash_alg": hash_alg, "use_id": use_id}
    if approval is not None:
        detail.update(approval_id=approval.id, approved_by=approval.decided_by)
    if system is not None:
        detail["through"] = system
    if timestamp_state == stamplater.AWAITING:
        detail["timestamp_state"] = timestamp_state
    audit.append(
        db,
        [
            audit.entry(
                actor=actor, action=f"seal.use.{kind}", object_type="seal", object_id=seal.id, purpose=purpose, detail=detail
            )
        ],
    )
    return use_id


def _user(actor: Actor, system: str | None) -> Actor:
    """Whose authorisation a use needs: the caller's, or the hub system's that seals on the caller's behalf."""
    return audit.SystemActor(subject=system, primary_role="system") if system is not None else actor


def _seal_for_use(
    db: Session,
    *,
    user: Actor,
    department_id: str,
    seal_id: str | None,
    seal_type: str | None,
    approval_id: str | None,
    algorithms: tuple[str, ...] = keys.ALGORITHMS,
) -> Seal:
    """The seal to use (named, the approval's, or the department's preferred one the user is authorised for)."""
    if seal_id is None and approval_id is not None:
        seal_id = repository.use_request_seal(db, department_id=department_id, request_id=approval_id)
        if seal_id is None:
            raise NotFound(f"no use request {approval_id} of your department's seals")
    if seal_id is not None:
        return seal_to_use(db, department_id=department_id, seal_id=seal_id, seal_type=seal_type, algorithms=algorithms)
    active, among = repository.active_seals_for(
        db, department_id=department_id, subject=user.subject, kinds=usage.kinds_of(user), seal_type=seal_type
    )  # one query: the active seals, and which of them the user may use
    return seal_to_use(
        db, department_id=department_id, seal_id=None, seal_type=seal_type, algorithms=algorithms, among=among, active=active
    )


def _choice_key(user: Actor, department_id: str, algorithms: tuple[str, ...]) -> tuple[str, ...]:
    return (department_id, user.subject, *usage.kinds_of(user), "|", *algorithms)


class _SealRef(Protocol):
    """What recording a use and making a seal signature read of a seal: its row, or a :class:`_SealInUse`."""

    @property
    def id(self) -> str: ...
    @property
    def department_id(self) -> str: ...
    @property
    def alg(self) -> str: ...
    @property
    def certificate_pem(self) -> str: ...


@dataclass(frozen=True)
class _SealInUse:
    """What sealing an OFD needs of a seal, taken from its row when the use checks passed; remembered with the
    choice (``seal/caches.py``, ``choices``), with its signer."""

    id: str
    department_id: str
    alg: str
    certificate_pem: str
    structure_der: bytes
    picture_width_mm: float
    picture_height_mm: float
    valid_from: datetime
    valid_to: datetime
    signer: SoftwareSigner

    @classmethod
    def of(cls, seal: Seal, signer: SoftwareSigner, structure_der: bytes) -> _SealInUse:
        return cls(
            id=seal.id,
            department_id=seal.department_id,
            alg=seal.alg,
            certificate_pem=seal.certificate_pem,
            structure_der=structure_der,
            picture_width_mm=seal.picture_width_mm,
            picture_height_mm=seal.picture_height_mm,
            valid_from=seal.valid_from,
            valid_to=seal.valid_to,
            signer=signer,
        )


def _remembered_seal(
    db: Session, key: tuple[str, ...], ttl: float, department_id: str, algorithms: tuple[str, ...]
) -> _SealInUse | None:
    """The seal this user was found authorised to use without an approval, active, within its validity period
    and needing no approval, remembered (``seal/caches.py``, ``choices``) for `ttl` seconds: a change to the seal,
    its approval policy or its authorisations in this process forgets it at once, in another within `ttl`. None
    when nothing is remembered or the seal's validity period has ended (the full checks then run)."""
    held = caches.use_choice(db, key, ttl)
    if not isinstance(held, _SealInUse):
        return None
    if held.department_id != department_id or held.alg not in algorithms or not held.valid_from <= utcnow() < held.valid_to:
        return None
    return held


def can_seal_with(db: Session, *, department_id: str, algorithm: str, actor: Actor, system: str | None = None) -> bool:
    """Whether the department has a seal of `algorithm` this user (`system` sealing for `actor`, or the actor) may
    seal with now: active, within its validity period, and authorised for the user (用印管理). Nothing is recorded."""
    user = _user(actor, system)
    among = repository.seals_usable_by(db, department_id=department_id, subject=user.subject, kinds=usage.kinds_of(user))
    try:
        seal = seal_to_use(db, department_id=department_id, seal_id=None, seal_type=None, algorithms=(algorithm,), among=among)
    except Conflict:
        return False
    return seal.id in among


def _check_purpose(purpose: str) -> str:
    purpose = (purpose or "").strip()
    if len(purpose) < 2 or len(purpose) > 500:
        raise field_error("purpose", "state why the seal is used (2..500 characters)")
    return purpose


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
    approval_id: str | None = None,
    system: str | None = None,
    level: str | None = None,
    storage: ObjectStore | None = None,
) -> bytes:
    """PAdES-seal a PDF with the department's seal (visible stamp), record the use; return the sealed PDF.

    The user must be authorised for the seal (`system`: one of the hub's systems sealing for `actor`), and
    hold an approval of this PDF (`approval_id`) where the seal requires one (用印管理, seal/usage.py).
    `level`: B-B, B-T, B-LT or B-LTA (seal/ltv.py); none: B-T. A B-LTA PDF is kept, and its time stamp chain
    renewed on schedule."""
    # The HTTP API passes the caller's own department; a domain calling this acts for `department_id`
    # (e.g. the certificate hub sealing a copy of a certificate that department issued) and `actor` is audited.
    purpose = _check_purpose(purpose)
    chosen = ltv.check_level(level) if level is not None else ltv.B_T
    if len(pdf) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the PDF is {len(pdf)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    # B-B: no time stamp; any other level: the time stamper the settings choose (the hub's own TSA by default)
    stamper = None if chosen == ltv.B_B else (timestamper or ltv.timestamper_for(db, vault, settings))
    # pyHanko signs with Ed25519 and P-256; PAdES has no SM2 profile it can produce (see docs/seal.md).
    user = _user(actor, system)
    seal = _seal_for_use(
        db, user=user, department_id=department_id, seal_id=seal_id, seal_type=None, approval_id=approval_id,
        algorithms=(keys.ES256, keys.EDDSA),
    )  # fmt: skip
    approval = usage.check_use(db, seal=seal, actor=user, document=pdf, approval_id=approval_id)
    pem = vault.unwrap(WrappedSecret.from_dict(seal.private_key), purpose=key_purpose(seal.id))
    cert = x509.load_pem_x509_certificate(seal.certificate_pem.encode())
    chain = [x509.load_pem_x509_certificate(p.encode()) for p in chain_pem(db, seal)[1:]]
    roots = authority.root_certificates(db)
    field_name = f"Seal-{seal.code[-8:]}-{utcnow():%Y%m%d%H%M%S%f}"
    long_term = chosen in (ltv.B_LT, ltv.B_LTA)
    context = None
    if long_term:  # the CRLs, and the hub's OCSP answer for the seal's certificate
        answer = ltv.ocsp_answer(db, vault, settings, cert)
        context = ltv.signing_context(db, vault, settings, ocsps=[answer] if answer is not None else [])
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
        timestamper=stamper,
        validation_context=context,
        archival=chosen == ltv.B_LTA,
    )
    signature_value = pades.signature_value(sealed, field_name)
    use_id = _record_use(
        db,
        seal=seal,
        actor=actor,
        kind="pdf",
        document_hash=hashlib.sha256(sealed).hexdigest(),
        hash_alg="SHA-256",
        signature=signature_value,
        purpose=purpose,
        approval=approval,
        system=system,
        output=sealed,
        storage=storage,
    )
    if chosen == ltv.B_LTA:
        ltv.keep(
            db, seal_id=seal.id, department_id=seal.department_id, use_id=use_id, field_name=field_name, document=sealed,
            settings=settings,
        )  # fmt: skip
    return sealed


@dataclass(frozen=True)
class SealedOfd:
    """A sealed OFD document and what was recorded of the use."""

    data: bytes  # the sealed OFD package
    seal_id: str
    use_id: str
    signature_id: str  # the new signature's ID in Signatures.xml
    signature_path: str  # its Signature.xml in the package, e.g. Doc_0/Signs/Sign_0/Signature.xml
    page_id: str  # the page the seal picture is on (the StampAnnot's PageRef)
    boundary: tuple[float, float, float, float]  # where the picture sits: x, y, width, height (mm)
    sha256: str  # of `data`, as recorded with the use


def seal_ofd(
    db: Session,
    *,
    vault: KeyVault,
    settings: Settings,
    department_id: str,
    ofd_bytes: bytes,
    purpose: str,
    actor: Actor,
    seal_id: str | None = None,
    page: int = 0,
    x_mm: float | None = None,
    y_mm: float | None = None,
    size_mm: float | None = None,
    approval_id: str | None = None,
    system: str | None = None,
    timestamper: TimeStamper | None = None,
    storage: ObjectStore | None = None,
) -> SealedOfd:
    """Seal an OFD document (GB/T 33190 §18) with the department's SM2 seal; record the use; return the sealed OFD.

    The package is read under the limits of :class:`seal.ofd.Package`. `page` is the page's index (0 = the first)
    in the first document; `x_mm`, `y_mm` the seal picture's top left corner in mm from the page's top left
    (both None: the bottom right corner); `size_mm` the picture's width (its height follows the seal picture's
    proportions; None: the seal's own size). The new signature protects, by SM3 digest, every file of the package
    except the list of signatures and its own files; its SignedValue.dat is the DER GB/T 38540 SES_Signature over
    the Signature.xml file, signed SM2/SM3 with the default user ID (see seal/ofdsign.py). Signatures already in
    the document are kept and stay intact.

    Use control as for :func:`seal_pdf`: the user (`system`, one of the hub's systems sealing for `actor`, or the
    actor) must be authorised for the seal and hold an approval of these very bytes (`approval_id`) where the seal
    requires one. Bad input (not an OFD, hostile ZIP or XML, no such page, off the page) is an Invalid (422);
    a seal that is not SM2, not active or outside its validity period a Conflict (409); nothing is written then."""
    if len(ofd_bytes) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the OFD is {len(ofd_bytes)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")

    def make(sign_value: ofdsign.SignValue, seal_der: bytes, at: datetime, width: float, height: float) -> ofdsign.OfdSealing:
        return ofdsign.seal_package(
            ofd_bytes, seal_der=seal_der, sign_value=sign_value, at=at, page=page, x_mm=x_mm, y_mm=y_mm, width_mm=width,
            height_mm=height,
        )  # fmt: skip

    return _seal_ofd(
        db, vault=vault, settings=settings, department_id=department_id, document=ofd_bytes, make=make, purpose=purpose,
        actor=actor, seal_id=seal_id, size_mm=size_mm, approval_id=approval_id, system=system, timestamper=timestamper,
        storage=storage,
    )  # fmt: skip


def seal_written_ofd(
    db: Session,
    *,
    vault: KeyVault,
    settings: Settings,
    department_id: str,
    written: ofdsign.WrittenOfd,
    purpose: str,
    actor: Actor,
    system: str,
    x_mm: float | None = None,
    y_mm: float | None = None,
    size_mm: float | None = None,
    timestamper: TimeStamper | None = None,
) -> SealedOfd:
    """Seal an OFD package one of the hub's systems (`system`, for `actor`) has just made in this process, as
    :func:`seal_ofd` does, without reading it back through the safe reader (see :class:`ofdsign.WrittenOfd`):
    the same use checks (the system must be authorised for the seal; a seal that requires an approval for each
    use cannot be used this way), the same signature over every file, the use recorded."""

    def make(sign_value: ofdsign.SignValue, seal_der: bytes, at: datetime, width: float, height: float) -> ofdsign.OfdSealing:
        return ofdsign.seal_written(
            written, seal_der=seal_der, sign_value=sign_value, at=at, x_mm=x_mm, y_mm=y_mm, width_mm=width, height_mm=height
        )

    return _seal_ofd(
        db, vault=vault, settings=settings, department_id=department_id, document=None, make=make, purpose=purpose,
        actor=actor, seal_id=None, size_mm=size_mm, approval_id=None, system=system, timestamper=timestamper,
    )  # fmt: skip


def _seal_ofd(
    db: Session,
    *,
    vault: KeyVault,
    settings: Settings,
    department_id: str,
    document: bytes | None,
    make: Callable[[ofdsign.SignValue, bytes, datetime, float, float], ofdsign.OfdSealing],
    purpose: str,
    actor: Actor,
    seal_id: str | None,
    size_mm: float | None,
    approval_id: str | None,
    system: str | None,
    timestamper: TimeStamper | None,
    storage: ObjectStore | None = None,
) -> SealedOfd:
    """The use checks, the seal's signer and DER, `make` sealing the package, the use recorded (the sealed output
    kept in `storage` when given). `document` is the package as received (an approval names its SHA-256); None
    for a package the hub wrote (no approval then)."""
    purpose = _check_purpose(purpose)
    if size_mm is not None and not ofdsign.MIN_SIZE_MM <= size_mm <= ofdsign.MAX_SIZE_MM:
        raise field_error("size_mm", f"must be {ofdsign.MIN_SIZE_MM:g} to {ofdsign.MAX_SIZE_MM:g} mm")
    user = _user(actor, system)
    choice = _choice_key(user, department_id, (keys.SM2,)) if seal_id is None and approval_id is None else None
    ttl = settings.seal_status_cache_seconds
    in_use, approval = (_remembered_seal(db, choice, ttl, department_id, (keys.SM2,)) if choice else None), None
    if in_use is None:
        seal = _seal_for_use(
            db, user=user, department_id=department_id, seal_id=seal_id, seal_type=None, approval_id=approval_id,
            algorithms=(keys.SM2,),
        )  # fmt: skip
        approval = usage.check_use(db, seal=seal, actor=user, document=document or b"", approval_id=approval_id)
        seal_der = seal.structure_der or make_seal_der(db, vault=vault, seal=seal, settings=settings)
        in_use = _SealInUse.of(seal, signer_for(db, seal=seal, vault=vault), seal_der)
        if choice is not None and approval is None and not seal.requires_approval:  # authorised, no approval needed
            caches.remember_use_choice(db, choice, in_use, ttl)
    signer, seal_der = in_use.signer, in_use.structure_der
    width = size_mm if size_mm is not None else in_use.picture_width_mm
    height = width * in_use.picture_height_mm / in_use.picture_width_mm if size_mm is not None else in_use.picture_height_mm
    at = utcnow()
    stamper = timestamper or ltv.timestamper_for(db, vault, settings)
    values: list[bytes] = []

    def sign_value(signature_xml: bytes, property_info: str) -> bytes:
        der, value, _ = _seal_signature(
            seal=in_use,
            signer=signer,
            seal_der=seal_der,
            at=at,
            data_hash=keys.digest(keys.SM2, signature_xml),
            property_info=property_info,
            purpose=purpose,
            stamper=stamper,
            wait=False,  # the signature sits inside the package's signed files: no later stamp, refused instead
        )
        values.append(value)
        return der

    try:
        sealed = make(sign_value, seal_der, at, width, height)
    except ofd.OfdError as exc:
        raise Invalid(f"the OFD cannot be sealed: {exc}", errors=[{"field": "file", "message": str(exc)}]) from exc
    sha256 = hashlib.sha256(sealed.data).hexdigest()
    use_id = _record_use(
        db,
        seal=in_use,
        actor=actor,
        kind="ofd",
        document_hash=sha256,
        hash_alg="SHA-256",
        signature=values[0],
        purpose=purpose,
        approval=approval,
        system=system,
        output=sealed.data,
        storage=storage,
    )
    return SealedOfd(
        data=sealed.data,
        seal_id=in_use.id,
        use_id=use_id,
        signature_id=sealed.signature_id,
        signature_path=sealed.signature_path,
        page_id=sealed.page_id,
        boundary=sealed.boundary,
        sha256=sha256,
    )


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


@lru_cache(maxsize=256)  # a pure function of the PEM
def _certificate_der(pem: str) -> bytes:
    return ses.der(x509.load_pem_x509_certificate(pem.encode()))


def _seal_signature(
    *,
    seal: _SealRef,
    signer: SoftwareSigner,
    seal_der: bytes,
    at: datetime,
    data_hash: bytes,
    property_info: str,
    purpose: str,
    stamper: TimeStamper | None,
    wait: bool,
) -> tuple[bytes, bytes, str | None]:
    """The DER SES_Signature (v4) of the seal over `data_hash`, its signature value, and why it carries no time
    stamp when the TSA did not answer (None when it was stamped, or no stamper was given). The seal's key signs
    the DER of TBS_Sign (SM2 with SM3 and the default user ID for SM2 seals). A TSA that does not answer is an
    UpstreamError (502) unless `wait`: the signature is then made without its timeStamp member."""
    tbs = sesder.to_sign_der(
        seal_der=seal_der,
        at=at,
        data_hash=data_hash,
        property_info=property_info,
        extensions=[sesder.Extension(sesder.EXT_PURPOSE, False, purpose.encode())],
    )
    value = keys.raw_to_der(seal.alg, signer.sign(tbs))
    token = None
    missing = None
    if stamper is not None:
        try:
            if isinstance(stamper, tsa.HubTimeStamper):  # the hub's own TSA, in process: the token made directly
                token = stamper.stamp_sha256(hashlib.sha256(value).digest())
            else:
                token = timestamps.stamp(value, stamper)
        except stamplater.TSA_ERRORS as exc:  # TimestampRequestError and network errors are OSErrors
            missing = stamplater.reason(exc)
            if not wait:
                raise UpstreamError(missing) from exc
    cert = _certificate_der(seal.certificate_pem)
    der = sesder.signature_der(tbs, cert=cert, alg=keys.SIGNATURE_OID[seal.alg], value=value, timestamp=token)
    return der, value, missing


@dataclass(frozen=True)
class DetachedSignature:
    """A detached seal signature just made, and what was recorded of its use."""

    der: bytes
    use_id: str
    # "stamped" (timeStamp inside), "awaiting" (the TSA did not answer: made without it, stamped later) or None
    timestamp_state: str | None


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
    approval_id: str | None = None,
    storage: ObjectStore | None = None,
) -> bytes:
    """Seal bytes with a detached GB/T 38540 v4 seal signature; return the DER SES_Signature (see
    :func:`sign_detached_use`, which also says whether it awaits its time stamp)."""
    return sign_detached_use(
        db, vault=vault, department_id=department_id, data=data, purpose=purpose, actor=actor, content_type=content_type,
        seal_id=seal_id, seal_type=seal_type, timestamper=timestamper, settings=settings, approval_id=approval_id,
        storage=storage,
    ).der  # fmt: skip


def sign_detached_use(
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
    approval_id: str | None = None,
    storage: ObjectStore | None = None,
) -> DetachedSignature:
    """Seal bytes with a detached GB/T 38540 v4 seal signature; record the use; return the DER and the use.

    The seal's key signs the DER of TBS_Sign (SM2 with SM3 and the default user ID for SM2 seals); dataHash is
    the SM3 hash of the data (SHA-256 for the P-256 and Ed25519 seals PAdES uses). The caller must be authorised
    for the seal, with an approval of these bytes where the seal requires one (用印管理, seal/usage.py).

    The signature value is time-stamped (RFC 3161). When the TSA does not answer and `seal_stamp_later` is on,
    the signature is returned without its timeStamp member, the use is recorded "awaiting" with the DER, and the
    `seal.stamp_pending` job stamps it later (seal/stamplater.py); with it off, the TSA's silence is a 502."""
    purpose = _check_purpose(purpose)
    if not content_type.isascii() or not content_type.isprintable():
        raise field_error("content_type", "must be printable ASCII (it is the IA5String propertyInfo)")
    seal = _seal_for_use(
        db, user=actor, department_id=department_id, seal_id=seal_id, seal_type=seal_type, approval_id=approval_id
    )
    approval = usage.check_use(db, seal=seal, actor=actor, document=data, approval_id=approval_id)
    signer = signer_for(db, seal=seal, vault=vault)
    seal_der = seal.structure_der or make_seal_der(db, vault=vault, seal=seal, settings=settings)
    data_hash = keys.digest(seal.alg, data)
    stamper = timestamper or ltv.timestamper_for(db, vault, settings)
    der, value, missing = _seal_signature(
        seal=seal,
        signer=signer,
        seal_der=seal_der,
        at=utcnow(),
        data_hash=data_hash,
        property_info=content_type,
        purpose=purpose,
        stamper=stamper,
        wait=settings.seal_stamp_later,
    )
    state = stamplater.AWAITING if missing is not None else stamplater.STAMPED if stamper is not None else None
    use_id = _record_use(
        db,
        seal=seal,
        actor=actor,
        kind="data",
        document_hash=data_hash.hex(),
        hash_alg=keys.HASH_NAME[seal.alg],
        signature=value,
        purpose=purpose,
        approval=approval,
        system=None,
        output=der,
        storage=storage,
        timestamp_state=state,
        signature_der=der if missing is not None else None,
        timestamp_error=missing,
    )
    if missing is not None:
        SEAL_TIMESTAMP_EVENTS.labels(event="awaiting").inc()
    return DetachedSignature(der=der, use_id=use_id, timestamp_state=state)


def detached_result(der: bytes, signed: DetachedSignature | None = None) -> dict[str, Any]:
    """The JSON answer for a DER seal signature: the DER (base64) and a readable view of it; for one just made,
    its use and whether its time stamp is inside or awaited (`timestamp_state`)."""
    answer: dict[str, Any] = {
        "format": "GB/T 38540-2020 SES_Signature, DER",
        "der_base64": ses.b64(der),
        "view": sesder.signature_view(sesder.parse_signature(der)),
    }
    if signed is not None:
        answer["use_id"] = signed.use_id
        answer["timestamp_state"] = signed.timestamp_state
        if signed.timestamp_state == stamplater.AWAITING:
            answer["timestamp_note"] = (
                "the time-stamp authority did not answer: this signature carries no time stamp yet; the hub stamps it "
                f"later, and GET /seal/uses/{signed.use_id}/signature then returns it with its time stamp"
            )
    return answer


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
    approval_id: str | None = None,
) -> dict[str, Any]:
    """Seal bytes with a detached GB/T 38540 seal signature: {"der_base64": the DER SES_Signature, "view", "use_id",
    "timestamp_state"} (see :func:`sign_detached_use`)."""
    signed = sign_detached_use(
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
        approval_id=approval_id,
    )
    return detached_result(signed.der, signed)
