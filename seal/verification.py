"""Verification (核验) of seal signatures: the entry points (a detached signature, a sealed PDF, the audit
of a verification, the certificates verifiers trust), the checks, and the verdict in the spirit of
ETSI EN 319 102-1.

Verdicts: valid (TOTAL_PASSED), invalid (TOTAL_FAILED: the document or signature is broken, or the seal
was not usable when it signed), indeterminate (INDETERMINATE: the evidence is not enough either way, e.g.
no chain to a trusted root, or a seal revoked since with no proof that the signature existed before).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import Invalid, PayloadTooLarge
from seal import authority, keys, repository, ses, timestamps
from seal import pdf as pades
from seal.models import Seal, SealStatus
from seal.schemas import Check, PdfVerificationReport, VerificationReport


@dataclass(frozen=True)
class Trust:
    """Roots and intermediates a verification trusts: this hub's, and configured other hubs'."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]


def trust(db: Session, settings: Settings) -> Trust:
    roots = authority.root_certificates(db)
    intermediates = authority.intermediate_certificates(db)
    if settings.seal_trusted_roots_file is not None and settings.seal_trusted_roots_file.exists():
        for cert in x509.load_pem_x509_certificates(settings.seal_trusted_roots_file.read_bytes()):
            (roots if cert.issuer == cert.subject else intermediates).append(cert)
    return Trust(roots, intermediates)


def _check(status: str, message: str) -> Check:
    return Check(status=status, message=message)


@lru_cache(maxsize=4096)  # a pure function of the two certificates (hashable by their DER)
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def chain_check(cert: x509.Certificate, trusted: Trust, at: datetime) -> tuple[Check, list[x509.Certificate]]:
    """Build the path seal certificate -> issuing CA -> trusted root; every certificate valid at `at`."""
    path = [cert]
    current = cert
    for _ in range(4):
        root = next((r for r in trusted.roots if _issued_by(current, r)), None)
        if root is not None:
            path.append(root)
            break
        nxt = next((i for i in trusted.intermediates if i not in path and _issued_by(current, i)), None)
        if nxt is None:
            return _check("indeterminate", "no chain to a trusted root (NO_CERTIFICATE_CHAIN_FOUND)"), path
        path.append(nxt)
        current = nxt
    else:
        return _check("indeterminate", "the certificate chain is too long"), path
    for member in path:
        if not member.not_valid_before_utc <= at <= member.not_valid_after_utc:
            name = member.subject.rfc4514_string()
            return _check("failed", f"certificate {name} was not valid at the signing time {ses.timestamp(at)}"), path
    return _check("passed", f"chain of {len(path)} certificates to the trusted root {path[-1].subject.rfc4514_string()}"), path


def status_at(db: Session, seal: Seal, at: datetime) -> str:
    """The seal's status at an instant, from its recorded history."""
    status = None
    for event in repository.events(db, seal.id):
        if event.at <= at:
            status = event.status
    if status is None:
        return "not_yet_issued"
    if status == SealStatus.ACTIVE.value and not seal.valid_from <= at < seal.valid_to:
        return SealStatus.EXPIRED.value if at >= seal.valid_to else "not_yet_valid"
    return status


def seal_checks(
    db: Session,
    seal: Seal | None,
    *,
    signing_time: datetime,
    poe: datetime | None,
    now: datetime,
    foreign_chain_ok: bool = False,
) -> tuple[Check, Check]:
    """(seal usable at signing time, seal status now)."""
    if seal is None:
        return (
            _check("passed", "a seal of another hub: its certificate was valid at the signing time (see chain)")
            if foreign_chain_ok
            else _check("indeterminate", "the seal is not registered at this hub and its certificate is not trusted"),
            _check("indeterminate", "a seal of another hub: its current status cannot be checked here (TRY_LATER)"),
        )
    then = status_at(db, seal, signing_time)
    if then == SealStatus.ACTIVE.value:
        at_signing = _check("passed", f"the seal was active at the signing time {ses.timestamp(signing_time)}")
    else:
        at_signing = _check("failed", f"the seal was {then} at the signing time {ses.timestamp(signing_time)}")
    current = seal.status
    if current == SealStatus.ACTIVE.value and now >= seal.valid_to:
        current = SealStatus.EXPIRED.value
    if current == SealStatus.ACTIVE.value:
        now_check = _check("passed", "the seal is active")
    elif current == SealStatus.REVOKED.value and seal.revoked_at is not None:
        since = ses.timestamp(seal.revoked_at)
        if seal.revoked_at > signing_time and poe is not None and poe < seal.revoked_at:
            now_check = _check(
                "warning",
                f"the seal was revoked on {since} ({seal.status_reason}), after this signature, "
                f"which existed by {ses.timestamp(poe)}",
            )
        elif seal.revoked_at > signing_time:
            now_check = _check(
                "indeterminate",
                f"the seal was revoked on {since} ({seal.status_reason}); nothing proves the signature existed before "
                "(REVOKED_NO_POE)",
            )
        else:
            now_check = _check("failed", f"the seal was revoked on {since} ({seal.status_reason})")
    else:
        now_check = _check("warning", f"the seal is {current} now ({seal.status_reason or 'no reason given'})")
    return at_signing, now_check


def _seal_summary(seal: Seal | None, cert: x509.Certificate | None) -> dict[str, Any] | None:
    if seal is not None:
        return {
            "id": seal.id,
            "code": seal.code,
            "name": seal.name,
            "type": seal.seal_type,
            "algorithm": seal.alg,
            "department_code": seal.department_code,
            "department_name": seal.department_name,
            "valid_from": seal.valid_from,
            "valid_to": seal.valid_to,
            "status": seal.status,
            "revoked_at": seal.revoked_at,
        }
    if cert is None:
        return None
    return {"code": _attr(cert, x509.NameOID.SERIAL_NUMBER), "name": _attr(cert, x509.NameOID.COMMON_NAME)}


def _attr(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> str | None:
    values = cert.subject.get_attributes_for_oid(oid)
    return str(values[0].value) if values else None


def _signer(cert: x509.Certificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "subject": cert.subject.rfc4514_string(),
        "organization": _attr(cert, x509.NameOID.ORGANIZATION_NAME),
        "organization_identifier": _attr(cert, x509.NameOID.ORGANIZATION_IDENTIFIER),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
    }


def verdict(checks: dict[str, Check]) -> tuple[str, str, str | None, list[str]]:
    """Combine the checks: any failure is invalid; else any indeterminate is indeterminate; else valid."""
    sub_for = {
        "document_integrity": "HASH_FAILURE",
        "signature": "SIG_CRYPTO_FAILURE",
        "seal_structure": "FORMAT_FAILURE",
        "chain": "NO_CERTIFICATE_CHAIN_FOUND",
        "seal_valid_at_signing": "EXPIRED",
        "seal_status_now": "REVOKED_NO_POE",
        "timestamp": "TIMESTAMP_FAILURE",
    }
    failed = [name for name, c in checks.items() if c.status == "failed"]
    undecided = [name for name, c in checks.items() if c.status == "indeterminate"]
    reasons = [f"{name}: {checks[name].message}" for name in failed + undecided]
    reasons += [f"{name}: {c.message}" for name, c in checks.items() if c.status == "warning"]
    if failed:
        sub = "REVOKED" if failed[0] == "seal_status_now" else sub_for.get(failed[0])
        if failed[0] == "seal_valid_at_signing" and "revoked" in checks[failed[0]].message:
            sub = "REVOKED"
        return "invalid", "TOTAL_FAILED", sub, reasons
    if undecided:
        first = "chain" if "chain" in undecided else undecided[0]
        if "TRY_LATER" in checks[first].message:
            sub = "TRY_LATER"
        elif first in ("chain", "seal_structure"):
            sub = "NO_CERTIFICATE_CHAIN_FOUND"
        else:
            sub = sub_for.get(first)
        return "indeterminate", "INDETERMINATE", sub, reasons
    return "valid", "TOTAL_PASSED", None, reasons


def _report(kind: str, checks: dict[str, Check], **extra: Any) -> VerificationReport:
    result, indication, sub, reasons = verdict(checks)
    return VerificationReport(
        verdict=result,
        indication=indication,
        sub_indication=sub,
        reasons=reasons,
        kind=kind,
        checks=checks,
        **extra,
    )


def _bad(message: str, field: str = "signature") -> Invalid:
    return Invalid(f"the seal signature is malformed: {message}", errors=[{"field": field, "message": message}])


def _member(obj: Any, name: str, kind: type, where: str) -> Any:
    if not isinstance(obj, dict) or name not in obj or not isinstance(obj[name], kind):
        raise _bad(f"{where}.{name} is missing or not a {kind.__name__}")
    return obj[name]


def _load_cert(der: bytes, where: str) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise _bad(f"{where} is not a DER X.509 certificate") from exc


def _maker_check(eseal: dict[str, Any], trusted: Trust, signer_cert: x509.Certificate) -> Check:
    info = _member(eseal, "eSealInfo", dict, "toSign.eseal")
    sign_info = _member(eseal, "signInfo", dict, "toSign.eseal")
    header = _member(info, "header", dict, "eSealInfo")
    if header.get("id") != ses.HEADER_ID:
        return _check("failed", f"the seal header id is {header.get('id')!r}, not 'ES'")
    prop = _member(info, "property", dict, "eSealInfo")
    cert_list = _member(prop, "certList", list, "eSealInfo.property")
    try:
        maker_cert = _load_cert(ses.unb64(sign_info.get("cert"), "signInfo.cert"), "signInfo.cert")
        value = ses.unb64(sign_info.get("signData"), "signInfo.signData")
        listed = [ses.unb64(c, "certList[]") for c in cert_list]
    except ValueError as exc:
        raise _bad(str(exc)) from exc
    if sign_info.get("signatureAlgorithm") != keys.SIGNATURE_OID[keys.ES256]:
        return _check("failed", "the seal maker's signature algorithm is not supported")
    try:
        maker_public = keys.public_from_spki(keys.ES256, authority.spki_der(maker_cert))
    except (ValueError, TypeError):
        return _check("failed", "the seal maker's certificate does not hold a P-256 key")
    if not keys.verify_with(keys.ES256, maker_public, ses.canonical(info), value):
        return _check("failed", "the seal structure's maker signature does not verify (the seal was altered)")
    if ses.der(signer_cert) not in listed:
        return _check("failed", "the signer's certificate is not one the seal lists (certList)")
    maker_chain, _ = chain_check(maker_cert, trusted, maker_cert.not_valid_before_utc)
    if maker_chain.status != "passed":
        return _check("indeterminate", f"the seal maker is not trusted: {maker_chain.message}")
    return _check("passed", f"seal {info.get('esID')} made by {maker_cert.subject.rfc4514_string()}; structure intact")


def verify_detached(db: Session, *, signature: dict[str, Any], data: bytes, settings: Settings) -> VerificationReport:
    """Verify data against a detached SES_Signature (the hub's JSON encoding)."""
    from ops.db import utcnow

    tbs = _member(signature, "toSign", dict, "signature")
    eseal = _member(tbs, "eseal", dict, "toSign")
    alg = ses.alg_for_oid(signature.get("signatureAlgorithm"))
    if alg is None:
        raise _bad(
            f"signatureAlgorithm {signature.get('signatureAlgorithm')!r} is not one of {sorted(keys.SIGNATURE_OID.values())}"
        )
    try:
        cert = _load_cert(ses.unb64(signature.get("cert"), "cert"), "cert")
        value = ses.unb64(signature.get("signature"), "signature")
        data_hash = ses.unb64(tbs.get("dataHash"), "toSign.dataHash")
        signing_time = ses.parse_time(tbs.get("timeInfo"), "toSign.timeInfo")
    except ValueError as exc:
        raise _bad(str(exc)) from exc
    trusted = trust(db, settings)
    now = utcnow()
    checks: dict[str, Check] = {}
    if data_hash == keys.digest(alg, data):
        checks["document_integrity"] = _check("passed", f"the data's {keys.HASH_NAME[alg]} hash matches the signed hash")
    else:
        checks["document_integrity"] = _check("failed", "the data is not what was sealed (hash mismatch)")
    try:
        public = keys.public_from_spki(alg, authority.spki_der(cert))
        ok = keys.verify_with(alg, public, ses.canonical(tbs), value)
    except (ValueError, TypeError):
        ok = False
    checks["signature"] = (
        _check("passed", f"the {alg} signature verifies with the seal certificate's key")
        if ok
        else _check("failed", "the signature value does not verify (signature or signed content altered)")
    )
    checks["seal_structure"] = _maker_check(eseal, trusted, cert)
    checks["chain"], _ = chain_check(cert, trusted, signing_time)
    seal = repository.seal_by_certificate_serial(db, format(cert.serial_number, "x"))
    if seal is not None and ses.der(cert) != ses.der(x509.load_pem_x509_certificate(seal.certificate_pem.encode())):
        seal = None
    use = repository.use_with_signature(db, seal_id=seal.id, signature_hash=hashlib.sha256(value).hexdigest()) if seal else None
    poe = use.at if use is not None else None
    stamp_time = None
    if signature.get("timeStamp") is not None:
        try:
            token = ses.unb64(signature.get("timeStamp"), "timeStamp")
        except ValueError as exc:
            raise _bad(str(exc)) from exc
        stamped = timestamps.check(token, value, roots=trusted.roots, intermediates=trusted.intermediates)
        checks["timestamp"] = _check("passed" if stamped.ok else "failed", stamped.message)
        if stamped.ok and stamped.at is not None:
            stamp_time = stamped.at
            poe = min(poe, stamped.at) if poe is not None else stamped.at
    elif poe is not None:
        checks["timestamp"] = _check(
            "passed", f"no time stamp; the hub recorded this signature when it was made ({ses.timestamp(poe)})"
        )
    else:
        checks["timestamp"] = _check("not_applicable", "no time stamp; the signing time is the one the signer claims")
    checks["seal_valid_at_signing"], checks["seal_status_now"] = seal_checks(
        db, seal, signing_time=signing_time, poe=poe, now=now, foreign_chain_ok=checks["chain"].status == "passed"
    )
    return _report(
        "detached",
        checks,
        signer=_signer(cert),
        seal=_seal_summary(seal, cert),
        signing_time=signing_time,
        timestamp_time=stamp_time or poe,
    )


ALLOWED_AFTER_SIGNING = {"NONE", "LTA_UPDATES"}


def verify_pdf(db: Session, *, pdf_bytes: bytes, settings: Settings) -> PdfVerificationReport:
    """Verify every signature of a sealed PDF."""
    from ops.db import utcnow

    if len(pdf_bytes) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the PDF is {len(pdf_bytes)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    trusted = trust(db, settings)
    results = pades.validate(pdf_bytes, roots=trusted.roots, intermediates=trusted.intermediates)
    if not results:
        raise Invalid("the PDF carries no signature to verify", errors=[{"field": "file", "message": "no signature"}])
    now = utcnow()
    reports = []
    for result in results:
        checks: dict[str, Check] = {}
        if not result.intact:
            checks["document_integrity"] = _check("failed", "the signed bytes of the PDF were altered")
        elif result.modification == "FORM_FILLING" and any(
            later.untouched and later.intact and later.valid and later.trusted for later in results if later is not result
        ):
            # a later seal (联合发文) adds a signature field: pyHanko ranks that as form filling
            checks["document_integrity"] = _check(
                "passed", "the PDF is unchanged since it was sealed, except for seals added later (which cover the whole file)"
            )
        elif result.modification not in ALLOWED_AFTER_SIGNING:
            checks["document_integrity"] = _check(
                "failed", f"the PDF was changed after sealing ({result.modification.lower().replace('_', ' ')})"
            )
        else:
            checks["document_integrity"] = _check("passed", "the PDF is unchanged since it was sealed")
        checks["signature"] = (
            _check("passed", "the PAdES signature verifies")
            if result.valid
            else _check("failed", "the signature value does not verify")
        )
        cert = result.signing_cert
        claimed = result.timestamp_time if result.timestamp_ok else result.signer_reported_time
        signing_time = claimed or now
        if cert is None:
            checks["chain"] = _check("failed", "the signature carries no signer certificate")
            seal = None
        else:
            checks["chain"], _ = chain_check(cert, trusted, signing_time)
            seal = repository.seal_by_certificate_serial(db, format(cert.serial_number, "x"))
            if seal is not None and ses.der(cert) != ses.der(x509.load_pem_x509_certificate(seal.certificate_pem.encode())):
                seal = None
        use = (
            repository.use_with_signature(db, seal_id=seal.id, signature_hash=hashlib.sha256(result.signature_value).hexdigest())
            if seal
            else None
        )
        poe_candidates = [t for t in (result.timestamp_time if result.timestamp_ok else None, use.at if use else None) if t]
        poe = min(poe_candidates) if poe_candidates else None
        checks["seal_valid_at_signing"], checks["seal_status_now"] = seal_checks(
            db, seal, signing_time=signing_time, poe=poe, now=now, foreign_chain_ok=checks["chain"].status == "passed"
        )
        if result.timestamp_time is not None:
            checks["timestamp"] = (
                _check("passed", f"RFC 3161 time stamp at {ses.timestamp(result.timestamp_time)} (PAdES B-T)")
                if result.timestamp_ok
                else _check("failed", "the signature's time stamp does not verify or is not trusted")
            )
        elif use is not None:
            checks["timestamp"] = _check("passed", f"no time stamp; the hub recorded this sealing at {ses.timestamp(use.at)}")
        else:
            checks["timestamp"] = _check("not_applicable", "no time stamp (PAdES B-B); the signing time is the signer's claim")
        reports.append(
            _report(
                "pdf",
                checks,
                signer=_signer(cert),
                seal=_seal_summary(seal, cert),
                signing_time=result.signer_reported_time,
                timestamp_time=result.timestamp_time,
            )
        )
    order = {"invalid": 0, "indeterminate": 1, "valid": 2}
    overall = min((r.verdict for r in reports), key=lambda v: order[v])
    return PdfVerificationReport(verdict=overall, signatures=reports)


def certificate_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


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
