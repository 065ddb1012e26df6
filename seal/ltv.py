"""Long-term validation of sealed PDFs: PAdES levels B-B … B-LTA, the document time stamp chain of a kept PDF
renewed before it weakens (as RFC 4998 renews an archive time stamp chain), and the evidence that carries a
verdict "as of" a given time.

Levels (ETSI EN 319 142-1): **B-B** the signature; **B-T** with an RFC 3161 time stamp over it; **B-LT** with the
certificates and the revocation data (the hub's CRLs, read in-process) in the document security store (DSS);
**B-LTA** with a document time stamp over all of it. Revocation data is gathered through a pyHanko validation
context that never fetches over the network: the hub's own CRL is handed to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import cms, tsp
from asn1crypto import ocsp as asn1_ocsp
from cryptography import x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from sqlalchemy.orm import Session

from ops import audit
from ops.auth import Principal
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import utcnow
from ops.errors import Conflict, HubError, Invalid, NotFound, UpstreamError
from seal import authority, ocsp, repository, sm2ca, tsa
from seal import pdf as pades
from seal.models import LtaRecord

log = logging.getLogger("govhub.seal.ltv")

B_B, B_T, B_LT, B_LTA = "B-B", "B-T", "B-LT", "B-LTA"
LEVELS = (B_B, B_T, B_LT, B_LTA)


def check_level(level: str) -> str:
    """The PAdES level asked for, or Invalid naming the levels there are."""
    value = level.strip().upper()
    if value not in LEVELS:
        raise Invalid(
            f"level {level!r} is not a PAdES level this hub makes; use one of {', '.join(LEVELS)}",
            errors=[{"field": "level", "message": f"one of {', '.join(LEVELS)}"}],
        )
    return value


def ocsp_answer(db: Session, vault: KeyVault, settings: Settings, certificate: x509.Certificate) -> bytes | None:
    """The hub's own OCSP answer (seal/ocsp.py, asked in-process) for a certificate its P-256 issuing CA issued,
    or None when the responder does not answer for it."""
    issuer_pem = authority.issuer_certificate_pem(db, certificate)
    if issuer_pem is None:
        return None
    issuer = pades.asn1_cert(x509.load_pem_x509_certificate(issuer_pem.encode()))
    request = asn1_ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha256"},
                            "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
                            "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
                            "serial_number": certificate.serial_number,
                        }
                    }
                ]
            }
        }
    )
    answer = ocsp.respond(db, vault, chain="p256", request_der=request.dump(), public_url=settings.public_url)
    return answer.der if answer.status == "successful" else None


def signing_context(
    db: Session,
    vault: KeyVault,
    settings: Settings,
    *,
    ocsps: Sequence[bytes] = (),
) -> ValidationContext:
    """A validation context for embedding validation data: the hub's P-256 chain (PAdES seals chain to it), the
    issuing CA's current CRL and the root's (for the issuing CA's certificate), issued in-process, and any other
    revocation data given; no network fetching; revocation is checked for every certificate that names where its
    status is published ("hard-fail")."""
    roots = authority.root_certificates(db)
    intermediates = authority.intermediate_certificates(db)
    crl = sm2ca.current_crl(db, vault, chain="p256", public_url=settings.public_url)
    arl = sm2ca.current_root_crl(db, vault)  # the issuing CA's own status: a validator sliding back in time needs it
    return ValidationContext(
        trust_roots=[pades.asn1_cert(c) for c in roots],
        other_certs=[pades.asn1_cert(c) for c in intermediates],
        crls=[crl, arl],
        ocsps=list(ocsps),
        allow_fetching=False,
        revocation_mode="hard-fail",
    )


def _why(exc: Exception) -> str:
    return (str(exc).strip() or type(exc).__name__)[:300]


@dataclass(frozen=True)
class DocumentStamp:
    """One document time stamp of a PDF (PAdES B-LTA), in the order they were added."""

    field_name: str
    at: datetime
    digest_algorithm: str
    tsa_subject: str
    tsa_expires_at: datetime | None
    tsa_certificate: x509.Certificate | None
    intact: bool  # the stamp's imprint is the digest of the revision it covers, and its signature verifies


def _tst_info(signed_data: cms.SignedData) -> tsp.TSTInfo:
    return signed_data["encap_content_info"]["content"].parsed


def document_stamps(
    reader: PdfFileReader, *, roots: Sequence[x509.Certificate] = (), intermediates: Sequence[x509.Certificate] = ()
) -> list[DocumentStamp]:
    """The PDF's document time stamps, oldest first (each checked for integrity; its TSA's trust is the caller's
    to judge, against `roots` here only to build the stamp's certificate path)."""
    out = []
    try:
        embedded = list(reader.embedded_timestamp_signatures)
    except Exception as exc:  # untrusted input
        raise Invalid(f"the PDF's document time stamps cannot be read: {_why(exc)}") from exc
    for sig in embedded:
        try:
            info = _tst_info(sig.signed_data)
            at = info["gen_time"].native
            algorithm = str(info["message_imprint"]["hash_algorithm"]["algorithm"].native)
            cert = sig.signer_cert
            context = ValidationContext(
                trust_roots=[pades.asn1_cert(c) for c in roots],
                other_certs=[pades.asn1_cert(c) for c in intermediates],
                allow_fetching=False,
                moment=at,
            )
            status = validate_pdf_timestamp(sig, context, skip_diff=True)
            intact = bool(status.intact and status.valid)
        except Exception as exc:  # untrusted input: a broken stamp is reported, not a crash
            log.info("unreadable document time stamp %s: %s", sig.field_name, _why(exc))
            continue
        parsed = x509.load_der_x509_certificate(cert.dump()) if cert is not None else None
        out.append(
            DocumentStamp(
                field_name=str(sig.field_name),
                at=at,
                digest_algorithm=algorithm,
                tsa_subject=parsed.subject.rfc4514_string() if parsed is not None else "unknown",
                tsa_expires_at=parsed.not_valid_after_utc if parsed is not None else None,
                tsa_certificate=parsed,
                intact=intact,
            )
        )
    return sorted(out, key=lambda s: s.at)


@dataclass(frozen=True)
class SecurityStore:
    """What a PDF's document security store (DSS) holds: revocation data and certificates."""

    crls: list[x509.CertificateRevocationList]
    ocsp_count: int
    certificates: list[x509.Certificate]


def security_store(reader: PdfFileReader) -> SecurityStore:
    """The DSS of the PDF (empty when it has none); unreadable entries are left out."""
    crls: list[x509.CertificateRevocationList] = []
    certs: list[x509.Certificate] = []
    ocsps = 0
    try:
        dss: Any = reader.root.get("/DSS")
        if dss is None:
            return SecurityStore([], 0, [])
        dss = dss.get_object()
        for ref in dss.get("/CRLs", []):
            try:
                crls.append(x509.load_der_x509_crl(ref.get_object().data))
            except ValueError:
                continue
        for ref in dss.get("/Certs", []):
            try:
                certs.append(x509.load_der_x509_certificate(ref.get_object().data))
            except ValueError:
                continue
        ocsps = len(dss.get("/OCSPs", []))
    except Exception as exc:  # untrusted input
        raise Invalid(f"the PDF's document security store (DSS) cannot be read: {_why(exc)}") from exc
    return SecurityStore(crls, ocsps, certs)


@dataclass(frozen=True)
class RevocationFinding:
    status: str  # passed | failed | not_applicable
    message: str
    issued_at: datetime | None


def revocation_at(
    store: SecurityStore, cert: x509.Certificate, issuers: Sequence[x509.Certificate], signing_time: datetime
) -> RevocationFinding:
    """What the embedded CRLs say of `cert` at `signing_time`: each CRL counts only if its issuer (the certificate's
    issuer, among `issuers` and the DSS's certificates) signed it."""
    candidates = [*issuers, *store.certificates]
    for crl in store.crls:
        if crl.issuer != cert.issuer:
            continue
        signer = next((c for c in candidates if c.subject == crl.issuer and _crl_signed_by(crl, c)), None)
        if signer is None:
            continue
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        issued = crl.last_update_utc
        if entry is not None and entry.revocation_date_utc <= signing_time:
            return RevocationFinding(
                "failed",
                f"the embedded CRL of {crl.issuer.rfc4514_string()} issued {issued:%Y-%m-%dT%H:%M:%SZ} lists the signing "
                f"certificate as revoked since {entry.revocation_date_utc:%Y-%m-%dT%H:%M:%SZ}, before the signing time",
                issued,
            )
        return RevocationFinding(
            "passed",
            f"the embedded CRL of {crl.issuer.rfc4514_string()} issued {issued:%Y-%m-%dT%H:%M:%SZ} shows the signing "
            "certificate was not revoked at the signing time",
            issued,
        )
    return RevocationFinding("not_applicable", "no revocation data for the signing certificate is embedded (DSS)", None)


def _crl_signed_by(crl: x509.CertificateRevocationList, issuer: x509.Certificate) -> bool:
    try:
        return crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def renew(pdf: bytes, *, timestamper: TimeStamper, context: ValidationContext, digest_algorithm: str) -> bytes:
    """Add a document time stamp to a B-LTA PDF: the validation data of the last stamp goes into the DSS first,
    then a new stamp (with `digest_algorithm`) covers it all, so the chain proves the earlier evidence existed
    while it was still sound."""
    reader = pades.read_pdf(pdf)
    stamps = list(reader.embedded_timestamp_signatures)
    if not stamps:
        raise Conflict("the PDF has no document time stamp to renew (it is not PAdES B-LTA)")
    last = stamps[-1]
    status = validate_pdf_timestamp(last, context, skip_diff=True)
    if not (status.intact and status.valid and status.trusted):
        raise Conflict(f"the last document time stamp ({last.field_name}) does not validate now; it cannot be renewed")
    out = io.BytesIO(pdf)
    writer = IncrementalPdfFileWriter(out, strict=False)
    DocumentSecurityStore.supply_dss_in_writer(
        writer, last.pkcs7_content, paths=(status.validation_path,), validation_context=context
    )
    stamper = signers.PdfTimeStamper(timestamper, field_name=f"Renewal-{status.timestamp:%Y%m%d%H%M%S%f}")
    result = asyncio.run(stamper.async_timestamp_pdf(writer, digest_algorithm, context, in_place=True))
    return bytes(result.getvalue())


def weakened(settings: Settings) -> set[str]:
    """Digest algorithms listed as weakened (GOVHUB_SEAL_LTA_WEAKENED_DIGESTS)."""
    return {name.strip().lower().replace("-", "") for name in settings.seal_lta_weakened_digests.split(",") if name.strip()}


def renew_after(stamp: DocumentStamp, settings: Settings) -> datetime:
    """When the chain ending with `stamp` is due for renewal: the configured margin before its TSA certificate
    expires, and at the latest half-way through what is left of it (a TSA certificate shorter than the margin
    does not make every run renew)."""
    if stamp.tsa_expires_at is None:
        return stamp.at
    margin = timedelta(days=settings.seal_lta_renewal_margin_days)
    return max(stamp.tsa_expires_at - margin, stamp.at + (stamp.tsa_expires_at - stamp.at) / 2)


def timestamper_for(db: Session, vault: KeyVault, settings: Settings) -> TimeStamper:
    """The time stamper sealing and renewal use: the external TSA at `GOVHUB_SEAL_TSA_URL`, else the hub's own
    (seal/tsa.py)."""
    return tsa.timestamper(db, vault, settings)


def _apply(record: LtaRecord, document: bytes, stamps: list[DocumentStamp], settings: Settings) -> None:
    last = stamps[-1]
    record.document = document
    record.document_sha256 = hashlib.sha256(document).hexdigest()
    record.timestamps = len(stamps)
    record.last_timestamp_at = last.at
    record.last_tsa_subject = last.tsa_subject[:500]
    record.last_tsa_expires_at = last.tsa_expires_at or last.at
    record.last_digest_algorithm = last.digest_algorithm
    record.renew_after = renew_after(last, settings)


def keep(
    db: Session, *, seal_id: str, department_id: str, use_id: str, field_name: str, document: bytes, settings: Settings
) -> LtaRecord:
    """Keep a PDF just sealed at B-LTA so that its time stamp chain is renewed on schedule."""
    stamps = document_stamps(pades.read_pdf(document), roots=authority.root_certificates(db))
    if not stamps:
        raise Conflict("the sealed PDF carries no document time stamp; it cannot be kept at B-LTA")
    record = LtaRecord(seal_id=seal_id, department_id=department_id, use_id=use_id, field_name=field_name, renewals=0)
    _apply(record, document, stamps, settings)
    db.add(record)
    db.flush()
    return record


@dataclass(frozen=True)
class RenewalRun:
    """What one run of the renewal job did."""

    renewed: list[str]
    failed: dict[str, str]  # record id -> why (the record keeps it in last_error; it is tried again next run)


def renew_record(
    db: Session, record: LtaRecord, *, vault: KeyVault, settings: Settings, timestamper: TimeStamper, now: datetime
) -> None:
    """Add a document time stamp to a kept PDF now; on failure the record says why and stays due."""
    record.last_attempt_at = now
    try:
        context = signing_context(db, vault, settings)
        renewed = renew(
            record.document, timestamper=timestamper, context=context, digest_algorithm=settings.seal_lta_digest_algorithm
        )
    except HubError as exc:
        record.last_error = exc.detail
        raise
    except (OSError, ValueError) as exc:  # the TSA did not answer (TimestampRequestError is an OSError)
        record.last_error = f"the time-stamp authority did not answer: {_why(exc)}"
        raise UpstreamError(record.last_error) from exc
    except Exception as exc:  # pyHanko's validation errors: the chain cannot be extended as it stands
        record.last_error = f"the time stamp chain cannot be renewed: {_why(exc)}"
        raise Conflict(record.last_error) from exc
    previous = record.last_digest_algorithm
    _apply(record, renewed, document_stamps(pades.read_pdf(renewed), roots=authority.root_certificates(db)), settings)
    record.renewals += 1
    record.last_renewed_at = now
    record.last_error = None
    audit.record(
        db,
        actor=RENEWER,
        action="seal.lta.renew",
        object_type="seal_lta_record",
        object_id=record.id,
        detail={
            "timestamps": record.timestamps,
            "previous_digest_algorithm": previous,
            "digest_algorithm": record.last_digest_algorithm,
            "tsa_expires_at": record.last_tsa_expires_at.isoformat(),
            "document_sha256": record.document_sha256,
        },
    )
    db.flush()


RENEWER = audit.SystemActor(subject="seal.lta", primary_role="system")


def renew_due(
    db: Session, *, vault: KeyVault, settings: Settings, timestamper: TimeStamper | None = None, now: datetime | None = None
) -> RenewalRun:
    """Renew every kept PDF whose chain is due: its TSA certificate expires within the margin, or its digest
    algorithm is listed as weakened. A failure is kept on the record (visible) and retried on the next run."""
    moment = now or utcnow()
    stamper = timestamper or timestamper_for(db, vault, settings)
    renewed: list[str] = []
    failed: dict[str, str] = {}
    weak = weakened(settings)
    algorithm = settings.seal_lta_digest_algorithm
    for record in repository.lta_records_due(db, now=moment, weakened=weak):
        if algorithm.replace("-", "") in weak:  # renewing would only make another weak stamp, every run
            record.last_attempt_at = moment
            record.last_error = f"the renewal algorithm {algorithm} is itself listed as weakened; configure a stronger one"
            failed[record.id] = record.last_error
            continue
        try:
            with db.begin_nested():
                renew_record(db, record, vault=vault, settings=settings, timestamper=stamper, now=moment)
        except HubError as exc:
            record.last_attempt_at = moment
            record.last_error = exc.detail
            failed[record.id] = exc.detail
            log.warning("time stamp chain of %s not renewed: %s", record.id, exc.detail)
            continue
        renewed.append(record.id)
    db.flush()
    return RenewalRun(renewed=renewed, failed=failed)


def _t(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%SZ}" if moment is not None else "unknown"


@dataclass(frozen=True)
class Evidence:
    """One piece of evidence about a signature and how long it holds."""

    kind: str  # signature | signature_timestamp | dss_revocation | hub_record | document_timestamp
    status: str  # passed | failed | not_applicable
    at: datetime | None
    expires_at: datetime | None
    message: str


@dataclass(frozen=True)
class SignatureStamp:
    at: datetime
    ok: bool
    tsa_expires_at: datetime | None


@dataclass(frozen=True)
class Assessment:
    status: str  # passed | failed | indeterminate
    message: str
    evidence: list[Evidence]
    carried_by: list[str]


def _chain_holds(start_expiry: datetime | None, stamps: list[DocumentStamp], as_of: datetime) -> tuple[bool, str, list[str]]:
    """Whether document time stamps renew the evidence without a gap up to `as_of` (RFC 4998's rule: each stamp is
    made while the one before it is still sound). Returns (holds, why, the stamps that carry it)."""
    expiry = start_expiry
    used: list[str] = []
    for stamp in stamps:
        if stamp.at > as_of:
            break
        if expiry is not None and expiry >= as_of:
            break  # what came before still holds at as_of
        if not stamp.intact:
            return False, f"the document time stamp {stamp.field_name} at {_t(stamp.at)} does not verify", used
        if expiry is not None and stamp.at > expiry:
            return False, f"the evidence lapsed on {_t(expiry)}, before the next document time stamp ({_t(stamp.at)})", used
        used.append(stamp.field_name)
        expiry = stamp.tsa_expires_at
    if expiry is None or expiry < as_of:
        return False, f"the evidence lapsed on {_t(expiry)} and no document time stamp renewed it", used
    return True, f"valid until {_t(expiry)}", used


def assess(
    *,
    as_of: datetime,
    signing_time: datetime,
    certificate_expires_at: datetime,
    signature_stamp: SignatureStamp | None,
    revocation: RevocationFinding,
    hub_record_at: datetime | None,
    stamps: list[DocumentStamp],
    weak: set[str],
) -> Assessment:
    """Which evidence carries a PDF signature's verdict as of `as_of` (ETSI EN 319 102-1's long-term validation,
    simplified): while the signing certificate is valid, the signature itself; after, proof that the signature
    existed before the certificate expired (its time stamp, or the hub's record of the sealing), the revocation
    status at signing time (the embedded DSS data, or the hub's seal history), and, once the time stamp's own
    certificate has expired, the chain of document time stamps."""
    evidence = [
        Evidence(
            "signature",
            "passed",
            signing_time,
            certificate_expires_at,
            f"the seal's certificate is valid until {_t(certificate_expires_at)}",
        )
    ]
    if signature_stamp is not None:
        evidence.append(
            Evidence(
                "signature_timestamp",
                "passed" if signature_stamp.ok else "failed",
                signature_stamp.at,
                signature_stamp.tsa_expires_at,
                f"RFC 3161 time stamp over the signature at {_t(signature_stamp.at)}"
                + ("" if signature_stamp.ok else " does not verify or is not trusted"),
            )
        )
    evidence.append(Evidence("dss_revocation", revocation.status, revocation.issued_at, None, revocation.message))
    if hub_record_at is not None:
        evidence.append(
            Evidence("hub_record", "passed", hub_record_at, None, f"the hub recorded this sealing at {_t(hub_record_at)}")
        )
    for stamp in stamps:
        note = f"document time stamp {stamp.field_name} ({stamp.digest_algorithm}) by {stamp.tsa_subject}"
        if stamp.digest_algorithm.lower().replace("-", "") in weak:
            note += f"; {stamp.digest_algorithm} is listed as weakened"
        evidence.append(
            Evidence("document_timestamp", "passed" if stamp.intact else "failed", stamp.at, stamp.tsa_expires_at, note)
        )

    def result(status: str, message: str, carried: list[str]) -> Assessment:
        return Assessment(status, message, evidence, carried)

    if as_of < signing_time:
        return result("indeterminate", f"as of {_t(as_of)} the signature did not exist yet (signed {_t(signing_time)})", [])
    if revocation.status == "failed":
        return result("failed", revocation.message, ["dss_revocation"])
    status_source = "dss_revocation" if revocation.status == "passed" else "hub_record"
    if as_of <= certificate_expires_at:
        return result(
            "passed",
            f"as of {_t(as_of)} the seal's certificate was still valid (until {_t(certificate_expires_at)}): the signature "
            "carries the verdict",
            ["signature", status_source],
        )
    stamp_ok = signature_stamp is not None and signature_stamp.ok and signature_stamp.at <= certificate_expires_at
    if stamp_ok:
        assert signature_stamp is not None
        holds, why, used = _chain_holds(signature_stamp.tsa_expires_at, stamps, as_of)
        if not holds:
            return result(
                "indeterminate", f"as of {_t(as_of)} the seal's certificate had expired and {why}", ["signature_timestamp"]
            )
        carried = ["signature_timestamp", status_source] + (["document_timestamp"] if used else [])
        via = f"; renewed by {len(used)} document time stamp(s), {why}" if used else f"; the time stamp is {why}"
        return result(
            "passed",
            f"as of {_t(as_of)} the seal's certificate had expired ({_t(certificate_expires_at)}); the signature time stamp "
            f"proves it was made at {_t(signature_stamp.at)}, while it was valid{via}",
            carried,
        )
    if hub_record_at is not None and hub_record_at <= certificate_expires_at:
        return result(
            "passed",
            f"as of {_t(as_of)} the seal's certificate had expired; only the hub's record of the sealing at "
            f"{_t(hub_record_at)} proves the signature existed while it was valid (not verifiable outside this hub)",
            ["hub_record"],
        )
    return result(
        "indeterminate",
        f"as of {_t(as_of)} the seal's certificate had expired ({_t(certificate_expires_at)}) and nothing proves the "
        "signature existed before (no time stamp)",
        [],
    )


def lta_record(db: Session, *, who: Principal, record_id: str) -> LtaRecord:
    """A kept B-LTA PDF the caller may read (another department's is not found)."""
    record = repository.get_lta_record(db, who, record_id)
    if record is None:
        raise NotFound(f"no PDF kept at B-LTA with id {record_id}")
    return record
