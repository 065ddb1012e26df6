"""Verification (核验) of seal signatures: the entry points (a detached signature, a sealed PDF, the audit
of a verification, the certificates verifiers trust), the checks, and the verdict in the spirit of
ETSI EN 319 102-1.

Verdicts: valid (TOTAL_PASSED), invalid (TOTAL_FAILED: the document or signature is broken, or the seal
was not usable when it signed), indeterminate (INDETERMINATE: the evidence is not enough either way, e.g.
no chain to a trusted root, or a seal revoked since with no proof that the signature existed before).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import HubError, Invalid, PayloadTooLarge
from seal import authority, caches, keys, ltv, ofd, repository, ses, sesder, sm2ca, timestamps
from seal import pdf as pades
from seal.caches import SealState
from seal.models import SealStatus
from seal.schemas import (
    Check,
    EvidenceRead,
    OfdReference,
    OfdSignatureReport,
    OfdVerificationReport,
    PdfVerificationReport,
    VerificationReport,
)


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: the memos of chains below are kept per Trust
class Trust:
    """Roots and intermediates a verification trusts: this hub's, and configured other hubs'. Not to be changed
    once made (the memos of chains and time stamps are kept per Trust)."""

    roots: list[x509.Certificate]
    intermediates: list[x509.Certificate]


# The last Trust made, and what it was made from (this hub's lists as remembered, the bundle's lists): made again
# only when one of them is another object (the hub's certificates read again, or the bundle file changed).
_last_trust: tuple[object, object, object, Trust] | None = None


def trust(db: Session, settings: Settings) -> Trust:
    """This hub's roots and issuing CAs (remembered for ``seal_status_cache_seconds``) and the configured bundle
    of other hubs' certificates (read again when the file changes)."""
    global _last_trust
    ttl = settings.seal_status_cache_seconds
    roots, intermediates = caches.trust(db, ttl, lambda: authority.trusted_certificates(db))
    bundle = settings.seal_trusted_roots_file
    other: tuple[list[x509.Certificate], list[x509.Certificate]] | None = None
    if bundle is not None and bundle.exists():
        stat = bundle.stat()
        other = _bundle(str(bundle), stat.st_mtime_ns, stat.st_size)
    last = _last_trust
    if last is not None and last[0] is roots and last[1] is intermediates and last[2] is other:
        return last[3]
    made = Trust(list(roots), list(intermediates))
    if other is not None:
        made.roots.extend(other[0])
        made.intermediates.extend(other[1])
    if ttl > 0:
        _last_trust = (roots, intermediates, other, made)
    return made


@lru_cache(maxsize=8)  # keyed by the file's path, modification time and size: an edited bundle is read again
def _bundle(path: str, _mtime_ns: int, _size: int) -> tuple[list[x509.Certificate], list[x509.Certificate]]:
    roots: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    for cert in x509.load_pem_x509_certificates(Path(path).read_bytes()):
        (roots if cert.issuer == cert.subject else intermediates).append(cert)
    return roots, intermediates


def _check(status: str, message: str) -> Check:
    return Check(status=status, message=message)


@lru_cache(maxsize=4096)  # a pure function of the two certificates (hashable by their DER)
def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    if cert.issuer != issuer.subject:
        return False
    if cert.signature_algorithm_oid.dotted_string == sm2ca.SM2_SM3:
        return sm2ca.issued_by(ses.der(cert), ses.der(issuer))
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, UnsupportedAlgorithm, ValueError, TypeError):
        return False
    return True


@lru_cache(maxsize=1024)  # a pure function of the certificates (the same seal's chain is built once)
def _path(
    cert: x509.Certificate, roots: tuple[x509.Certificate, ...], intermediates: tuple[x509.Certificate, ...]
) -> tuple[tuple[x509.Certificate, ...], str | None]:
    """The path seal certificate -> issuing CA -> trusted root, or the path found so far and why it stops."""
    path = [cert]
    current = cert
    for _ in range(4):
        root = next((r for r in roots if _issued_by(current, r)), None)
        if root is not None:
            path.append(root)
            return tuple(path), None
        nxt = next((i for i in intermediates if i not in path and _issued_by(current, i)), None)
        if nxt is None:
            return tuple(path), "no chain to a trusted root (NO_CERTIFICATE_CHAIN_FOUND)"
        path.append(nxt)
        current = nxt
    return tuple(path), "the certificate chain is too long"


@lru_cache(maxsize=1024)
def _validity(path: tuple[x509.Certificate, ...]) -> tuple[datetime, datetime]:
    """When every certificate of the path is valid: (the latest start, the earliest end)."""
    return max(c.not_valid_before_utc for c in path), min(c.not_valid_after_utc for c in path)


@dataclass(frozen=True)
class _Chain:
    path: tuple[x509.Certificate, ...]
    problem: str | None
    start: datetime  # when every certificate of the path is valid: the latest start…
    end: datetime  # …and the earliest end
    passed: str  # the message when the chain passes (a complete path)


@lru_cache(maxsize=1024)  # a pure function of the certificate and the Trust (kept per Trust object, bounded)
def _chain(cert: x509.Certificate, trusted: Trust) -> _Chain:
    found, problem = _path(cert, tuple(trusted.roots), tuple(trusted.intermediates))
    start, end = _validity(found)
    if problem is not None:
        return _Chain(found, problem, start, end, "")
    return _Chain(found, None, start, end, f"chain of {len(found)} certificates to the trusted root {_name(found[-1].subject)}")


def chain_check(cert: x509.Certificate, trusted: Trust, at: datetime) -> tuple[Check, list[x509.Certificate]]:
    """Build the path seal certificate -> issuing CA -> trusted root; every certificate valid at `at`."""
    chain = _chain(cert, trusted)
    path = list(chain.path)
    if chain.problem is not None:
        return _check("indeterminate", chain.problem), path
    if chain.start <= at <= chain.end:
        return _check("passed", chain.passed), path
    for member in path:
        if not member.not_valid_before_utc <= at <= member.not_valid_after_utc:
            name = _name(member.subject)
            return _check("failed", f"certificate {name} was not valid at the signing time {ses.timestamp(at)}"), path
    return _check("passed", f"chain of {len(path)} certificates to the trusted root {_name(path[-1].subject)}"), path


def status_at(seal: SealState, at: datetime) -> str:
    """The seal's status at an instant, from its recorded history."""
    status = None
    for when, recorded in seal.history:
        if when <= at:
            status = recorded
    if status is None:
        return "not_yet_issued"
    if status == SealStatus.ACTIVE.value and not seal.valid_from <= at < seal.valid_to:
        return SealStatus.EXPIRED.value if at >= seal.valid_to else "not_yet_valid"
    return status


def seal_checks(
    seal: SealState | None,
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
    then = status_at(seal, signing_time)
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


def _seal_summary(seal: SealState | None, cert: x509.Certificate | None) -> dict[str, Any] | None:
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


@lru_cache(maxsize=1024)  # a pure function of the name (hashable, immutable)
def _name(name: x509.Name) -> str:
    return name.rfc4514_string()


def _signer(cert: x509.Certificate | None) -> dict[str, Any] | None:
    return None if cert is None else dict(_signer_of(cert))


@lru_cache(maxsize=1024)  # a pure function of the certificate; callers get a copy
def _signer_of(cert: x509.Certificate) -> dict[str, Any]:
    return {
        "subject": _name(cert.subject),
        "organization": _attr(cert, x509.NameOID.ORGANIZATION_NAME),
        "organization_identifier": _attr(cert, x509.NameOID.ORGANIZATION_IDENTIFIER),
        "issuer": _name(cert.issuer),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
    }


def verdict(checks: dict[str, Check]) -> tuple[str, str, str | None, list[str]]:
    """Combine the checks: any failure is invalid; else any indeterminate is indeterminate; else valid."""
    sub_for = {
        "document_integrity": "HASH_FAILURE",
        "references": "HASH_FAILURE",
        "signature_xml": "HASH_FAILURE",
        "seal_file": "FORMAT_FAILURE",
        "signature": "SIG_CRYPTO_FAILURE",
        "seal_structure": "FORMAT_FAILURE",
        "chain": "NO_CERTIFICATE_CHAIN_FOUND",
        "seal_valid_at_signing": "EXPIRED",
        "seal_period": "EXPIRED",
        "seal_status_now": "REVOKED_NO_POE",
        "timestamp": "TIMESTAMP_FAILURE",
        "revocation": "REVOKED",
        "long_term": "OUT_OF_BOUNDS_NO_POE",
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
        return _parsed_certificate(der)
    except ValueError as exc:
        raise _bad(f"{where} is not a DER X.509 certificate") from exc


@lru_cache(maxsize=1024)  # a pure function of the bytes: every signature of a seal carries the same certificates
def _parsed_certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


@lru_cache(maxsize=1024)
def _spki(cert: x509.Certificate) -> bytes:
    return authority.spki_der(cert)


@lru_cache(maxsize=1024)
def _der_of(cert: x509.Certificate) -> bytes:
    return ses.der(cert)


@lru_cache(maxsize=1024)
def _certificate_der(pem: str) -> bytes:
    return ses.der(x509.load_pem_x509_certificate(pem.encode()))


def seal_evidence(
    db: Session, cert: x509.Certificate, signature_value: bytes, settings: Settings, *, cert_der: bytes | None = None
) -> tuple[SealState | None, datetime | None]:
    """This hub's seal whose certificate is `cert` (None for another producer's), and when the hub recorded the
    signature `signature_value` (None if it did not). The seal is remembered for ``seal_status_cache_seconds``
    and a use record for good (it never changes); what is not remembered is read in one statement."""
    ttl = settings.seal_status_cache_seconds
    serial = format(cert.serial_number, "x")
    signature_hash = hashlib.sha256(signature_value).hexdigest()
    known, seal = caches.seal(db, serial, ttl)
    use_remembered = False
    if known:
        if seal is None:
            return None, None
        use_at = caches.use_time(db, seal.id, signature_hash)
        use_remembered = use_at is not None
        if use_at is None:
            use_at = repository.use_time_with_signature(db, seal_id=seal.id, signature_hash=signature_hash)
    else:
        seal, use_at = repository.seal_state_by_serial(db, serial, signature_hash)
        caches.remember_seal(db, serial, seal, ttl)
    if seal is None or _certificate_der(seal.certificate_pem) != (cert_der if cert_der is not None else _der_of(cert)):
        return None, None  # not this hub's seal (another issuer's certificate with the same serial)
    if use_at is not None and not use_remembered:
        caches.remember_use(db, seal.id, signature_hash, use_at)
    return seal, use_at


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
    return _check("passed", f"seal {info.get('esID')} made by {_name(maker_cert.subject)}; structure intact")


# A time stamp more than this after the signing time the signature claims was added later (seal/stamplater.py).
LATE_STAMP = timedelta(minutes=2)


def _seal_and_time_evidence(
    db: Session,
    cert: x509.Certificate,
    value: bytes,
    token: bytes | None,
    trusted: Trust,
    checks: dict[str, Check],
    settings: Settings,
    signing_time: datetime | None = None,
    *,
    cert_der: bytes | None = None,
) -> tuple[SealState | None, datetime | None, datetime | None]:
    """This hub's seal whose certificate made a seal signature (None for another producer's), and the evidence
    of when it was signed: the hub's record of the use and an RFC 3161 time stamp over the signature value
    (checked into ``checks["timestamp"]``). Returns (seal, proof of existence, the time stamp's time)."""
    seal, poe = seal_evidence(db, cert, value, settings, cert_der=cert_der)
    stamp_time = None
    if token is not None:
        stamped = timestamps.check(token, value, roots=trusted.roots, intermediates=trusted.intermediates)
        # a token intact but from a TSA not trusted here proves nothing either way: indeterminate, not failed
        status = "passed" if stamped.ok else "indeterminate" if stamped.untrusted else "failed"
        message = stamped.message
        if stamped.ok and stamped.at is not None and signing_time is not None and stamped.at - signing_time > LATE_STAMP:
            # stamped later (the TSA was unreachable at signing): the token proves existence only from its own time
            message += (
                f"; stamped after the claimed signing time {ses.timestamp(signing_time)}, so it proves the signature "
                f"existed only from {ses.timestamp(stamped.at)}"
            )
        checks["timestamp"] = _check(status, message)
        if stamped.ok and stamped.at is not None:
            stamp_time = stamped.at
            poe = min(poe, stamped.at) if poe is not None else stamped.at
    elif poe is not None:
        checks["timestamp"] = _check(
            "passed", f"no time stamp; the hub recorded this signature when it was made ({ses.timestamp(poe)})"
        )
    else:
        checks["timestamp"] = _check("not_applicable", "no time stamp; the signing time is the one the signer claims")
    return seal, poe, stamp_time


def verify_detached(
    db: Session, *, signature: dict[str, Any] | bytes | str, data: bytes, settings: Settings
) -> VerificationReport:
    """Verify data against a detached seal signature: the DER SES_Signature (bytes, base64, or the
    {"der_base64": ...} answer of the sealing API), or a signature in the hub's earlier JSON encoding."""
    from ops.db import utcnow

    if isinstance(signature, dict) and "der_base64" in signature:
        signature = signature["der_base64"]
    if isinstance(signature, str):
        try:
            signature = ses.unb64(signature.strip(), "the seal signature")
        except ValueError as exc:
            raise _bad(str(exc)) from exc
    if isinstance(signature, bytes):
        return verify_der(db, der=signature, data=data, settings=settings)

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
    token = None
    if signature.get("timeStamp") is not None:
        try:
            token = ses.unb64(signature.get("timeStamp"), "timeStamp")
        except ValueError as exc:
            raise _bad(str(exc)) from exc
    seal, poe, stamp_time = _seal_and_time_evidence(db, cert, value, token, trusted, checks, settings, signing_time)
    checks["seal_valid_at_signing"], checks["seal_status_now"] = seal_checks(
        seal, signing_time=signing_time, poe=poe, now=now, foreign_chain_ok=checks["chain"].status == "passed"
    )
    return _report(
        "detached",
        checks,
        signer=_signer(cert),
        seal=_seal_summary(seal, cert),
        signing_time=signing_time,
        timestamp_time=stamp_time or poe,
    )


@lru_cache(maxsize=1024)  # a pure function of the certificate
def _well_formed(cert: x509.Certificate) -> bool:
    """cryptography parses a certificate lazily: a broken name, serial or time shows only when read."""
    try:
        _ = (cert.subject, cert.issuer, cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc)
        _ = cert.signature_algorithm_oid
    except ValueError:
        return False
    return True


def _load_any_cert(der: bytes, where: str) -> x509.Certificate:
    cert = _load_cert(der, where)
    if not _well_formed(cert):
        raise _bad(f"{where} is not a well-formed X.509 certificate")
    return cert


@dataclass(frozen=True)
class _SignerCertificate:
    """What a verification reads of a signer's certificate, read once per certificate's bytes."""

    cert: x509.Certificate
    spki: bytes | None  # None: no key this hub can read
    der: bytes
    summary: dict[str, Any]  # the report's "signer" (copied for each report)


@lru_cache(maxsize=1024)  # a pure function of the bytes (a broken certificate raises, and is not remembered)
def _signer_certificate(der: bytes) -> _SignerCertificate:
    cert = _load_any_cert(der, "the signer's certificate (cert)")
    try:
        spki: bytes | None = _spki(cert)
    except ValueError:
        spki = None
    return _SignerCertificate(cert, spki, _der_of(cert), _signer_of(cert))


@lru_cache(maxsize=1024)  # a pure function of its bytes: every signature of a seal carries the same seal
def _maker_signature_ok(alg: str, spki: bytes, signed: bytes, signature: bytes) -> bool:
    return keys.verify_der(alg, spki, signed, signature)


# The checks of version-4 seals already made: (the seal's DER, the signer's certificate, the Trust) -> (status,
# message). A pure function of the three, since a version-4 seal is read from its DER alone (every signature of a
# seal carries the same seal and certificate); bounded, emptied when full. Version-1 seals are checked every time.
_SEAL_CHECKS_REMEMBERED = 1024
_seal_checks: dict[tuple[bytes, bytes, Trust], tuple[str, str]] = {}


def _der_seal_check(parsed: sesder.ParsedSignature, trusted: Trust, signer_der: bytes) -> Check:
    """The seal inside the signature: its maker's signature over SES_SealInfo, the signer listed, the maker trusted
    (for a version-4 seal, remembered for the same seal bytes, signer certificate and trust)."""
    if parsed.seal.version < sesder.VERSION:
        return _der_seal_check_made(parsed, trusted, signer_der)
    key = (parsed.seal.der, signer_der, trusted)
    known = _seal_checks.get(key)
    if known is None:
        check = _der_seal_check_made(parsed, trusted, signer_der)
        known = (check.status, check.message)
        if len(_seal_checks) >= _SEAL_CHECKS_REMEMBERED:
            _seal_checks.clear()
        _seal_checks[key] = known
    return _check(*known)


def _der_seal_check_made(parsed: sesder.ParsedSignature, trusted: Trust, signer_der: bytes) -> Check:
    seal = parsed.seal
    maker_alg = keys.ALG_FOR_OID.get(seal.maker_alg)
    if maker_alg is None:
        return _check("failed", f"the seal maker's signature algorithm {seal.maker_alg} is not supported")
    try:
        maker_cert = _parsed_certificate(seal.maker_cert)
        maker_spki = _spki(maker_cert)
        if not _well_formed(maker_cert):
            raise ValueError("not well-formed")
    except ValueError:
        return _check("failed", "the seal maker's certificate (SESeal.cert) is not a DER X.509 certificate")
    if not _maker_signature_ok(maker_alg, maker_spki, seal.maker_signed, seal.maker_signature):
        if seal.version < sesder.VERSION:
            return _check(
                "failed",
                "the seal maker's signature does not verify over the DER of the version-1 seal information "
                "(the seal was altered, or its producer signed other bytes)",
            )
        return _check("failed", "the seal maker's signature over SES_SealInfo does not verify (the seal was altered)")
    if seal.cert_list_type == sesder.CERT_LIST_DIGESTS:
        digests = {hashlib.sha1(signer_der).digest(), hashlib.sha256(signer_der).digest(), keys.digest(keys.SM2, signer_der)}  # noqa: S324
        listed = any(d in digests for d in seal.certificates)
    else:
        listed = signer_der in seal.certificates
    if not listed:
        return _check("failed", "the signer's certificate is not one the seal lists (certList)")
    maker_chain, _ = chain_check(maker_cert, trusted, maker_cert.not_valid_before_utc)
    if maker_chain.status != "passed":
        return _check(
            "indeterminate", f"the seal maker's signature checks out but the maker is not trusted: {maker_chain.message}"
        )
    return _check("passed", f"seal {seal.es_id} made by {_name(maker_cert.subject)}; structure intact")


def _der_signature_check(parsed: sesder.ParsedSignature, alg: str | None, spki: bytes | None) -> Check:
    if alg is None:
        return _check(
            "failed",
            f"the signature algorithm {parsed.alg} is not supported (SM2 with SM3 is {sesder.SM2_SM3})",
        )
    if spki is None:
        return _check("failed", "the signer's certificate holds no key usable for the signature")
    name = "SM2 with SM3" if alg == keys.SM2 else alg
    if keys.verify_der(alg, spki, parsed.signed, parsed.signature):
        return _check("passed", f"the {name} signature over TBS_Sign verifies with the signer certificate's key")
    if parsed.version < sesder.VERSION and alg == keys.SM2 and keys.sm2_verify_digest(spki, parsed.data_hash, parsed.signature):
        return _check(
            "warning",
            "version-1 signature: the signer signed the data hash itself (as some GM/T 0031 producers did), "
            "so the seal and time inside TBS_Sign are not covered by it",
        )
    return _check("failed", "the signature value does not verify (signature or signed content altered)")


def verify_der(db: Session, *, der: bytes, data: bytes, settings: Settings) -> VerificationReport:
    """Verify data against a DER seal signature (GB/T 38540 v4, or the GM/T 0031 version-1 layout), from this
    hub or another producer: data hash, signature, the seal and its maker, the seal's validity period, the
    certificate chain, the seal's status (for this hub's seals) and the time stamp."""
    from ops.db import utcnow

    try:
        parsed = sesder.parse_signature(der)
    except sesder.DerError as exc:
        raise _bad(str(exc)) from exc
    signer = _signer_certificate(parsed.signer_cert)
    cert, spki = signer.cert, signer.spki
    alg = keys.ALG_FOR_OID.get(parsed.alg)
    trusted = trust(db, settings)
    now = utcnow()
    checks: dict[str, Check] = {}
    hash_alg = alg or keys.SM2
    if parsed.data_hash == keys.digest(hash_alg, data):
        checks["document_integrity"] = _check("passed", f"the data's {keys.HASH_NAME[hash_alg]} hash matches dataHash")
    else:
        checks["document_integrity"] = _check("failed", "the data is not what was sealed (hash mismatch)")
    checks["signature"] = _der_signature_check(parsed, alg, spki)
    checks["seal_structure"] = _der_seal_check(parsed, trusted, parsed.signer_cert)
    signing_time = parsed.time_info
    if signing_time is None:
        checks["seal_period"] = _check("indeterminate", f"the signing time {parsed.time_text!r} cannot be read")
        signing_time = now
    elif not parsed.seal.valid_start <= signing_time <= parsed.seal.valid_end:
        checks["seal_period"] = _check(
            "failed",
            f"signed at {ses.timestamp(signing_time)}, outside the seal's validity period "
            f"{ses.timestamp(parsed.seal.valid_start)} .. {ses.timestamp(parsed.seal.valid_end)}",
        )
    else:
        checks["seal_period"] = _check(
            "passed", f"signed within the seal's validity period (until {ses.timestamp(parsed.seal.valid_end)})"
        )
    checks["chain"], _ = chain_check(cert, trusted, signing_time)
    seal, poe, stamp_time = _seal_and_time_evidence(
        db, cert, parsed.signature, parsed.timestamp, trusted, checks, settings, parsed.time_info, cert_der=signer.der
    )
    checks["seal_valid_at_signing"], checks["seal_status_now"] = seal_checks(
        seal, signing_time=signing_time, poe=poe, now=now, foreign_chain_ok=checks["chain"].status == "passed"
    )
    summary = _seal_summary(seal, cert) or {}
    summary.update({"es_id": parsed.seal.es_id, "seal_name": parsed.seal.name, "version": parsed.seal.version})
    return _report(
        "detached",
        checks,
        signer=dict(signer.summary),
        seal=summary,
        signing_time=parsed.time_info,
        timestamp_time=stamp_time or poe,
        format=f"GB/T 38540 SES_Signature version {parsed.version} (DER)",
    )


ALLOWED_AFTER_SIGNING = {"NONE", "LTA_UPDATES"}
CLOCK_SKEW = timedelta(minutes=5)


def _as_of(as_of: datetime | None, now: datetime) -> datetime:
    """The time a PDF verdict is asked for: now, or a past instant (with a time zone)."""
    if as_of is None:
        return now
    if as_of.tzinfo is None:
        raise Invalid(
            "as_of must carry a time zone (e.g. 2027-01-01T00:00:00+08:00)",
            errors=[{"field": "as_of", "message": "no time zone"}],
        )
    if as_of > now + CLOCK_SKEW:
        raise Invalid(
            f"as_of {as_of.isoformat()} is in the future; a verdict can be given for now or a past time only",
            errors=[{"field": "as_of", "message": "in the future"}],
        )
    return as_of.astimezone(UTC)


def _status_as_of(seal: SealState, *, as_of: datetime, signing_time: datetime, poe: datetime | None) -> Check:
    """The seal's status as of a past instant, from its history (a revocation after `as_of` does not count)."""
    then = status_at(seal, as_of)
    when = ses.timestamp(as_of)
    if then == SealStatus.ACTIVE.value:
        return _check("passed", f"as of {when} the seal was active")
    if then == SealStatus.REVOKED.value and seal.revoked_at is not None:
        if seal.revoked_at > signing_time and poe is not None and poe < seal.revoked_at:
            return _check("warning", f"as of {when} the seal had been revoked ({ses.timestamp(seal.revoked_at)}), after this "
                          f"signature, which existed by {ses.timestamp(poe)}")  # fmt: skip
        if seal.revoked_at > signing_time:
            return _check("indeterminate", f"as of {when} the seal had been revoked ({ses.timestamp(seal.revoked_at)}); "
                          "nothing proves the signature existed before (REVOKED_NO_POE)")  # fmt: skip
        return _check("failed", f"the seal was revoked on {ses.timestamp(seal.revoked_at)} ({seal.status_reason})")
    return _check("warning", f"as of {when} the seal was {then}")


def _document_stamps(reader_pdf: bytes, trusted: Trust) -> list[ltv.DocumentStamp]:
    """The PDF's document time stamps; one whose TSA does not chain to a trusted root counts as broken."""
    stamps = ltv.document_stamps(pades.read_pdf(reader_pdf), roots=trusted.roots, intermediates=trusted.intermediates)
    out = []
    for stamp in stamps:
        trusted_tsa = (
            stamp.tsa_certificate is not None and chain_check(stamp.tsa_certificate, trusted, stamp.at)[0].status == "passed"
        )
        out.append(stamp if trusted_tsa else dataclasses.replace(stamp, intact=False))
    return out


def _level(result: pades.PdfSignatureResult, revocation: ltv.RevocationFinding, stamps: list[ltv.DocumentStamp]) -> str:
    if result.timestamp_time is None:
        return ltv.B_B
    if revocation.status == "not_applicable":
        return ltv.B_T
    return ltv.B_LTA if stamps else ltv.B_LT


def verify_pdf(db: Session, *, pdf_bytes: bytes, settings: Settings, as_of: datetime | None = None) -> PdfVerificationReport:
    """Verify every signature of a sealed PDF, now or as of a past time (`as_of`), and say which evidence carries
    each verdict: the signature, its time stamp, the embedded revocation data (DSS), the hub's own records, the
    chain of document time stamps (seal/ltv.py)."""
    from ops.db import utcnow

    if len(pdf_bytes) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the PDF is {len(pdf_bytes)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    now = utcnow()
    moment = _as_of(as_of, now)
    trusted = trust(db, settings)
    results = pades.validate(pdf_bytes, roots=trusted.roots, intermediates=trusted.intermediates)
    if not results:
        raise Invalid("the PDF carries no signature to verify", errors=[{"field": "file", "message": "no signature"}])
    store = ltv.security_store(pades.read_pdf(pdf_bytes))
    stamps = _document_stamps(pdf_bytes, trusted)
    weak = ltv.weakened(settings)
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
            seal, use_at = None, None
        else:
            checks["chain"], _ = chain_check(cert, trusted, signing_time)
            seal, use_at = seal_evidence(db, cert, result.signature_value, settings)
        poe_candidates = [t for t in (result.timestamp_time if result.timestamp_ok else None, use_at) if t]
        poe = min(poe_candidates) if poe_candidates else None
        checks["seal_valid_at_signing"], checks["seal_status_now"] = seal_checks(
            seal, signing_time=signing_time, poe=poe, now=now, foreign_chain_ok=checks["chain"].status == "passed"
        )
        if as_of is not None and seal is not None and (seal.revoked_at is None or seal.revoked_at > moment):
            checks["seal_status_now"] = _status_as_of(seal, as_of=moment, signing_time=signing_time, poe=poe)
        if result.timestamp_time is not None:
            checks["timestamp"] = (
                _check("passed", f"RFC 3161 time stamp at {ses.timestamp(result.timestamp_time)} (PAdES B-T)")
                if result.timestamp_ok
                else _check("failed", "the signature's time stamp does not verify or is not trusted")
            )
        elif use_at is not None:
            checks["timestamp"] = _check("passed", f"no time stamp; the hub recorded this sealing at {ses.timestamp(use_at)}")
        else:
            checks["timestamp"] = _check("not_applicable", "no time stamp (PAdES B-B); the signing time is the signer's claim")
        revocation = (
            ltv.revocation_at(store, cert, [*trusted.intermediates, *trusted.roots], signing_time)
            if cert is not None
            else ltv.RevocationFinding("not_applicable", "no signer certificate", None)
        )
        checks["revocation"] = _check(
            revocation.status,
            revocation.message
            if revocation.status != "not_applicable"
            else "no revocation data is embedded (DSS); the seal's status at signing comes from the hub's history",
        )
        evidence: list[EvidenceRead] = []
        carried: list[str] = []
        if cert is not None:
            assessment = ltv.assess(
                as_of=moment,
                signing_time=signing_time,
                certificate_expires_at=cert.not_valid_after_utc,
                signature_stamp=ltv.SignatureStamp(
                    result.timestamp_time, bool(result.timestamp_ok), result.timestamp_tsa_expires_at
                )
                if result.timestamp_time is not None
                else None,
                revocation=revocation,
                hub_record_at=use_at,
                stamps=stamps,
                weak=weak,
            )
            checks["long_term"] = _check(assessment.status, assessment.message)
            evidence = [EvidenceRead(**dataclasses.asdict(e)) for e in assessment.evidence]
            carried = assessment.carried_by
        reports.append(
            _report(
                "pdf",
                checks,
                signer=_signer(cert),
                seal=_seal_summary(seal, cert),
                signing_time=result.signer_reported_time,
                timestamp_time=result.timestamp_time,
                as_of=moment,
                level=_level(result, revocation, stamps),
                evidence=evidence,
                carried_by=carried,
            )
        )
    order = {"invalid": 0, "indeterminate": 1, "valid": 2}
    overall = min((r.verdict for r in reports), key=lambda v: order[v])
    return PdfVerificationReport(verdict=overall, signatures=reports)


def _ofd_signature(db: Session, package: ofd.Package, sig: ofd.OfdSignature, settings: Settings) -> OfdSignatureReport:
    """One seal signature of an OFD: its signed files' digests, then the DER seal signature over Signature.xml."""
    about: dict[str, Any] = {
        "signature_id": sig.id,
        "path": sig.path,
        "provider": sig.provider,
        "signature_method": sig.signature_method,
        "signature_date_time": sig.signature_date_time,
        "check_method": sig.check_method,
        "stamp_annots": sig.stamp_annots,
    }
    checks: dict[str, Check] = {}
    if sig.problem is not None:
        checks["signature_xml"] = _check("failed", sig.problem)
        return OfdSignatureReport(**_report("ofd", checks).model_dump(), **about)
    status, message, findings = ofd.reference_findings(package, sig)
    checks["references"] = _check(status, message)
    about["references"] = [OfdReference(**f) for f in findings]
    assert sig.signed_value is not None
    try:
        detached = verify_der(db, der=sig.signed_value, data=sig.xml, settings=settings)
    except HubError as exc:  # malformed DER, a broken certificate, too large: this signature fails, not the upload
        checks["seal_structure"] = _check(
            "failed", f"{sig.signed_value_path} is not a GB/T 38540 seal signature this hub reads: {exc.detail}"
        )
        return OfdSignatureReport(**_report("ofd", checks).model_dump(), **about)
    integrity = detached.checks.pop("document_integrity")
    checks["signature_xml"] = (
        _check("passed", f"{sig.path} is the file that was signed (its hash matches the seal signature's dataHash)")
        if integrity.status == "passed"
        else _check("failed", f"{sig.path} was changed after signing (its hash differs from the seal signature's dataHash)")
    )
    checks.update(detached.checks)
    checks["seal_file"] = _seal_file_check(package, sig)
    extra = detached.model_dump(include={"signer", "seal", "signing_time", "timestamp_time", "format"})
    return OfdSignatureReport(**_report("ofd", checks, **extra).model_dump(), **about)


def _seal_file_check(package: ofd.Package, sig: ofd.OfdSignature) -> Check:
    """The seal file Signature.xml names beside the signature (``Seal/BaseLoc``, e.g. Seal.esl) must be the seal
    inside the seal signature: a reader shows that one."""
    if sig.seal_path is None:
        return _check("not_applicable", "Signature.xml names no seal file; the seal is the one inside the seal signature")
    if not package.has(sig.seal_path):
        return _check("failed", f"the seal file {sig.seal_path} that Signature.xml names is not in the package")
    assert sig.signed_value is not None
    try:
        seal_der = sesder.parse_signature(sig.signed_value).seal.der
        same = package.read(sig.seal_path) == seal_der
    except (sesder.DerError, ofd.OfdError) as exc:
        return _check("failed", f"the seal file {sig.seal_path} cannot be compared: {exc}")
    if not same:
        return _check("failed", f"the seal file {sig.seal_path} is not the seal inside the seal signature")
    return _check("passed", f"the seal file {sig.seal_path} is the seal inside the seal signature")


def verify_ofd(db: Session, *, ofd_bytes: bytes, settings: Settings) -> OfdVerificationReport:
    """Verify every seal signature of an OFD document, this hub's or another producer's: each signed file's
    digest, Signature.xml against the seal signature, and the checks of :func:`verify_der`. A file that is not
    a safely readable OFD, or one with no signature, is refused with the reason."""
    if len(ofd_bytes) > settings.seal_max_pdf_bytes:
        raise PayloadTooLarge(f"the OFD is {len(ofd_bytes)} bytes; at most {settings.seal_max_pdf_bytes} are accepted")
    try:
        package = ofd.Package(ofd_bytes)
        document = ofd.read_document(package)
    except ofd.OfdError as exc:
        raise Invalid(f"the file cannot be verified as an OFD: {exc}", errors=[{"field": "file", "message": str(exc)}]) from exc
    if not document.signatures:
        raise Invalid("the OFD carries no signature to verify", errors=[{"field": "file", "message": "no signature"}])
    reports = [_ofd_signature(db, package, sig, settings) for sig in document.signatures]
    order = {"invalid": 0, "indeterminate": 1, "valid": 2}
    overall = min((r.verdict for r in reports), key=lambda v: order[v])
    return OfdVerificationReport(verdict=overall, doc_id=document.doc_id, signatures=reports)


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


def authority_certificates(db: Session, *, vault: KeyVault, settings: Settings | None = None) -> dict[str, Any]:
    """The hub's root and issuing CA certificates (PEM): what verifiers trust; with the settings, the SM2 chain
    and where the CRLs are published too."""
    hub = authority.ensure_authority(db, vault)
    out: dict[str, Any] = {
        "root": hub.root.certificate_pem,
        "issuing": hub.issuing.certificate_pem,
        "maker": hub.maker.certificate_pem,
        "roots": [c.public_bytes(serialization.Encoding.PEM).decode() for c in authority.root_certificates(db)],
    }
    if settings is not None:
        sm2 = sm2ca.ensure(db, vault, public_url=settings.public_url)
        out |= {
            "sm2_root": sm2.root.certificate_pem,
            "sm2_issuing": sm2.issuing.certificate_pem,
            "sm2_maker": sm2.maker.certificate_pem,
            "sm2_roots": [sm2ca.pem(c) for c in sm2ca.certificates(db, sm2ca.ROOT)],
            "crls": {"sm2": sm2ca.crl_url_sm2(settings.public_url), "p256": sm2ca.crl_url_p256(settings.public_url)},
        }
    return out
