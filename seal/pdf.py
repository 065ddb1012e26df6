"""PAdES sealing and validation of PDF documents (pyHanko)."""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from PIL import Image
from pyhanko.pdf_utils import images
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimeStamper, TimestampRequestError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from ops.errors import Conflict, Invalid, UpstreamError

log = logging.getLogger("govhub.seal")
MM = 72 / 25.4  # PDF points per millimetre
# pyHanko reports the error of a failed difference analysis through logging; the report says it.
logging.getLogger("pyhanko.sign.validation").setLevel(logging.CRITICAL)
logging.getLogger("pyhanko.sign.diff_analysis").setLevel(logging.CRITICAL)
logging.getLogger("pyhanko.pdf_utils.layout").setLevel(logging.ERROR)


def asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _why(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


def read_pdf(pdf: bytes) -> PdfFileReader:
    """Open a PDF, or Invalid saying why it cannot be read."""
    if b"%PDF-" not in pdf[:1024]:
        raise Invalid("the file is not a PDF (no %PDF- header)", errors=[{"field": "file", "message": "not a PDF"}])
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        if reader.encrypted:
            raise Invalid("encrypted PDFs cannot be sealed or verified here; remove the password first")
        reader.root["/Pages"]
    except Invalid:
        raise
    except Exception as exc:  # untrusted input: any parser failure (zlib, struct, ASN.1, ...) is the file's fault
        raise Invalid(f"the PDF cannot be read: {_why(exc)}", errors=[{"field": "file", "message": "unreadable PDF"}]) from exc
    return reader


@dataclass(frozen=True)
class StampSpec:
    """Where the visible seal goes and what it shows."""

    page: int
    box: tuple[float, float, float, float] | None
    width_mm: float
    height_mm: float
    picture_png: bytes | None  # None for SVG pictures (the stamp is drawn as text)
    label: str


def _page_box(reader: PdfFileReader, page: int) -> tuple[float, float, float, float]:
    try:
        pages = int(reader.root["/Pages"]["/Count"])
    except Exception as exc:  # untrusted input
        raise Invalid(f"the PDF's page tree cannot be read: {_why(exc)}") from exc
    if page < 0 or page >= pages:
        raise Invalid(
            f"page {page} does not exist; the document has {pages} page(s) (numbered from 0)",
            errors=[{"field": "page", "message": "out of range"}],
        )
    try:
        page_ref = reader.find_page_for_modification(page)[0]  # type: ignore[no-untyped-call]
        media = page_ref.get_object().get("/MediaBox") or [0, 0, 595, 842]
        x1, y1, x2, y2 = (float(v) for v in media)
    except Exception as exc:  # untrusted input
        raise Invalid(f"page {page} of the PDF cannot be read: {_why(exc)}") from exc
    return x1, y1, x2, y2


def _stamp_box(reader: PdfFileReader, spec: StampSpec) -> tuple[int, int, int, int]:
    px1, py1, px2, py2 = _page_box(reader, spec.page)
    if spec.box is None:
        width, height = spec.width_mm * MM, spec.height_mm * MM
        margin = 20 * MM
        x2, y1 = px2 - margin, py1 + margin
        return round(x2 - width), round(y1), round(x2), round(y1 + height)
    x1, y1, x2, y2 = spec.box
    if not (x1 < x2 and y1 < y2):
        raise Invalid("box must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2 (PDF points)", errors=[{"field": "box"}])
    if x1 < px1 or y1 < py1 or x2 > px2 or y2 > py2:
        raise Invalid(
            f"box {list(spec.box)} is outside the page ({px1:g}, {py1:g}, {px2:g}, {py2:g})",
            errors=[{"field": "box", "message": "outside the page"}],
        )
    return round(x1), round(y1), round(x2), round(y2)


def sign(
    pdf: bytes,
    *,
    cert: x509.Certificate,
    chain: list[x509.Certificate],
    private_pem: bytes,
    spec: StampSpec,
    reason: str,
    signer_name: str,
    field_name: str,
    timestamper: TimeStamper | None,
    validation_context: ValidationContext | None = None,
    archival: bool = False,
) -> bytes:
    """Add a PAdES signature with a visible stamp: B-B; B-T when a time stamper is given; B-LT when a
    validation context is given too (the certificates and revocation data it finds go into the DSS); B-LTA
    when `archival` (a document time stamp over all of it)."""
    reader = read_pdf(pdf)
    box = _stamp_box(reader, spec)
    signer = signers.SimpleSigner(
        signing_cert=asn1_cert(cert),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            serialization.load_pem_private_key(private_pem, password=None).private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore.from_certs([asn1_cert(c) for c in chain]),  # type: ignore[no-untyped-call]
    )
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
    except Exception as exc:  # untrusted input
        raise Invalid(f"the PDF cannot be updated: {_why(exc)}") from exc
    background: Any = None
    if spec.picture_png is not None:
        background = images.PdfImage(Image.open(io.BytesIO(spec.picture_png)), writer=writer)
    style = TextStampStyle(
        stamp_text=f"{spec.label}\n%(ts)s" if background is None else "%(ts)s",
        background=background,
        background_opacity=1.0,
        border_width=0 if background is not None else 1,
        timestamp_format="%Y-%m-%d %H:%M:%S %Z",
        text_box_style=TextBoxStyle(font_size=5),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=field_name,
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason[:200],
        name=signer_name,
        validation_context=validation_context,
        embed_validation_info=validation_context is not None,
        use_pades_lta=archival,
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer,
        timestamper=timestamper,
        stamp_style=style,
        new_field_spec=fields.SigFieldSpec(field_name, on_page=spec.page, box=box),
    )
    try:
        out = pdf_signer.sign_pdf(writer)
    except TimestampRequestError as exc:
        raise UpstreamError(f"the time-stamp authority did not answer: {_why(exc)}") from exc
    except SigningError as exc:
        cause = exc.__cause__
        if validation_context is not None and isinstance(cause, PathValidationError | PathBuildingError):
            # the seal's certificate (or the TSA's) fails validation with the hub's own revocation data
            raise Conflict(
                f"the validation data for a long-term signature cannot be gathered: {_why(exc)}: {_why(cause)}"
            ) from exc
        log.warning("PDF sealing failed on a readable document", exc_info=True)
        raise Invalid(f"the PDF cannot be sealed: {_why(exc)}") from exc
    except Exception as exc:  # the document read but its structure defeats the signer: the file's fault
        log.warning("PDF sealing failed on a readable document", exc_info=True)
        raise Invalid(f"the PDF cannot be sealed: {_why(exc)}") from exc
    return bytes(out.getvalue())


def signature_value(pdf: bytes, field_name: str) -> bytes:
    """The raw signature value of the named signature field (what the hub records as proof of the use)."""
    reader = PdfFileReader(io.BytesIO(pdf), strict=False)
    for sig in reader.embedded_signatures:
        if sig.field_name == field_name:
            return bytes(sig.signer_info["signature"].native)
    raise ValueError(f"no signature field {field_name!r}")


@dataclass(frozen=True)
class PdfSignatureResult:
    """What pyHanko found about one embedded signature."""

    field_name: str
    intact: bool
    valid: bool
    trusted: bool
    untouched: bool
    modification: str
    coverage: str
    signing_cert: x509.Certificate | None
    signer_reported_time: datetime | None
    timestamp_time: datetime | None
    timestamp_ok: bool | None
    timestamp_tsa_expires_at: datetime | None
    signature_value: bytes
    trust_problem: str | None


def _stamp_time(signer_info: Any) -> datetime | None:
    """The genTime of the signature's RFC 3161 time stamp (an unsigned attribute), or None when there is none or
    it cannot be read."""
    try:
        for attribute in signer_info["unsigned_attrs"] or ():
            if attribute["type"].native == "signature_time_stamp_token":
                token = attribute["values"][0]["content"]
                return token["encap_content_info"]["content"].parsed["gen_time"].native  # type: ignore[no-any-return]
    except Exception:  # untrusted input: the validation below reports a broken token
        return None
    return None


def validate(
    pdf: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate], moment: datetime | None = None
) -> list[PdfSignatureResult]:
    """Validate every signature of the PDF against the given trust roots."""
    reader = read_pdf(pdf)
    try:
        embedded = list(reader.embedded_regular_signatures)  # document time stamps: seal/ltv.py
    except Exception as exc:  # untrusted input
        raise Invalid(f"the PDF's signature fields cannot be read: {_why(exc)}") from exc
    results = []
    for sig in embedded:
        context = ValidationContext(
            trust_roots=[asn1_cert(c) for c in roots],
            other_certs=[asn1_cert(c) for c in intermediates],
            allow_fetching=False,
            moment=moment,
        )
        try:
            # The signature's time stamp is judged at its own time (its TSA certificate valid then); whether it is
            # still protected later is the long-term evidence's question (seal/ltv.py).
            stamped_at = _stamp_time(sig.signer_info)
            ts_context = ValidationContext(
                trust_roots=[asn1_cert(c) for c in roots],
                other_certs=[asn1_cert(c) for c in intermediates],
                allow_fetching=False,
                moment=stamped_at,
            )
            status = validate_pdf_signature(sig, context, ts_validation_context=ts_context)
            signature_value = bytes(sig.signer_info["signature"].native)
        except Exception as exc:  # untrusted input: a broken signature dictionary or CMS structure
            raise Invalid(f"signature {sig.field_name!r} cannot be read: {_why(exc)}") from exc
        ts = status.timestamp_validity
        cert = status.signing_cert
        tsa_cert = ts.signing_cert if ts is not None else None
        problem = None
        if not status.trusted:
            problem = str(getattr(status, "trust_problem_indic", None) or "no chain to a trusted root")
        results.append(
            PdfSignatureResult(
                field_name=str(sig.field_name),
                intact=bool(status.intact),
                valid=bool(status.valid),
                trusted=bool(status.trusted),
                untouched=status.coverage is not None and status.coverage.name == "ENTIRE_FILE",
                modification=status.modification_level.name if status.modification_level else "UNKNOWN",
                coverage=status.coverage.name if status.coverage is not None else "UNKNOWN",
                signing_cert=x509.load_der_x509_certificate(cert.dump()) if cert is not None else None,
                signer_reported_time=status.signer_reported_dt,
                timestamp_time=ts.timestamp if ts is not None else None,
                timestamp_ok=(bool(ts.intact and ts.valid and ts.trusted) if ts is not None else None),
                timestamp_tsa_expires_at=(
                    x509.load_der_x509_certificate(tsa_cert.dump()).not_valid_after_utc if tsa_cert is not None else None
                ),
                signature_value=signature_value,
                trust_problem=problem,
            )
        )
    return results
