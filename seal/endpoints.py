"""HTTP API of the seal domain: seal issuance and lifecycle, sealing, public verification and keys."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, Response, UploadFile
from sqlalchemy.orm import Session

from ops import audit
from ops.archive.schemas import ArchivePackageRead
from ops.auth import DepartmentOrAdmin, DepartmentStaff, PlatformAdmin, require_second_factor
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import DbSession, HubRoute, etag, writes
from ops.errors import Invalid, PayloadTooLarge, UnsupportedMediaType
from ops.pagination import Page, whole_page
from seal import repository, service
from seal.schemas import (
    DetachedSignRequest,
    DetachedVerifyRequest,
    LtaRecordRead,
    OfdVerificationReport,
    PdfVerificationReport,
    SealAuthorisationCreate,
    SealAuthorisationRead,
    SealAuthorisationWithdraw,
    SealCreate,
    SealRead,
    SealUseDecision,
    SealUsePolicy,
    SealUseRead,
    SealUseRequestCreate,
    SealUseRequestRead,
    StatusChange,
    VerificationReport,
)

router = APIRouter(tags=["seals"], route_class=HubRoute)

PUBLIC_VERIFIER = audit.SystemActor(subject="public-verifier", primary_role="public")


def _vault(request: Request) -> KeyVault:
    vault: KeyVault = request.app.state.vault
    return vault


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _read_upload(upload: UploadFile, *, limit: int, what: str) -> bytes:
    data = upload.file.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLarge(f"the {what} is larger than {limit} bytes")
    if not data:
        raise Invalid(f"the {what} is empty", errors=[{"field": "file", "message": "empty"}])
    return data


@router.post("/seals", status_code=201, response_model=SealRead, summary="Make and issue a seal for a department (制发)")
def issue_seal(body: SealCreate, request: Request, response: Response, db: DbSession, who: PlatformAdmin) -> Any:
    """Create a seal: its key (kept encrypted in the hub), certificate, picture and signed seal structure."""
    seal = service.issue_seal(db, who=who, vault=_vault(request), data=body, settings=_settings(request))
    response.headers["ETag"] = etag(seal.version)
    response.headers["Location"] = f"/seals/{seal.id}"
    return seal


@router.get("/seals", response_model=Page[SealRead], summary="List seals (a department sees its own)")
def list_seals(
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    department_id: str | None = None,
    status: str | None = None,
) -> Any:
    """The seals the caller may see, newest first."""
    items, next_cursor = repository.list_seals(db, who, cursor=cursor, limit=limit, department_id=department_id, status=status)
    return Page[SealRead](items=[SealRead.model_validate(s) for s in items], next_cursor=next_cursor)


@router.get("/seals/{seal_id}", response_model=SealRead, summary="Read a seal")
@writes  # every reading of a seal is recorded in the audit log
def read_seal(seal_id: str, response: Response, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """One seal (404 for another department's)."""
    seal = service.get_seal(db, who=who, seal_id=seal_id)
    audit.record(db, actor=who, action="seal.read", object_type="seal", object_id=seal.id)
    response.headers["ETag"] = etag(seal.version)
    return seal


@router.get(
    "/seals/{seal_id}/structure",
    summary="The signed GB/T 38540 seal (SESeal): DER with Accept: application/octet-stream, else a readable JSON view",
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes
def seal_structure(seal_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The seal as signed by the seal maker (the DER is what is signed; the JSON only shows it)."""
    seal = service.get_seal(db, who=who, seal_id=seal_id)
    der = seal.structure_der or service.make_seal_der(db, vault=_vault(request), seal=seal, settings=_settings(request))
    audit.record(db, actor=who, action="seal.structure.read", object_type="seal", object_id=seal.id)
    if _wants_der(request):
        return Response(
            der, media_type="application/octet-stream", headers={"Content-Disposition": 'attachment; filename="seal.esl"'}
        )
    return {"format": "GB/T 38540-2020 SESeal, DER", "der_base64": base64.b64encode(der).decode(), "view": seal.structure}


def _wants_der(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/octet-stream" in accept and "application/json" not in accept


@router.get("/seals/{seal_id}/picture", summary="The seal's picture (PNG or SVG)")
def seal_picture(seal_id: str, db: DbSession, who: DepartmentOrAdmin) -> Response:
    """The picture file, with its type."""
    seal = service.get_seal(db, who=who, seal_id=seal_id)
    media = "image/png" if seal.picture_type == "png" else "image/svg+xml"
    return Response(
        seal.picture, media_type=media, headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"}
    )


@router.get("/seals/{seal_id}/uses", response_model=Page[SealUseRead], summary="Every use of a seal (用印记录)")
@writes
def seal_uses(
    seal_id: str,
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Who used the seal, when, on which document hash, and why."""
    seal = service.get_seal(db, who=who, seal_id=seal_id)
    items, next_cursor = repository.list_uses(db, seal_id=seal.id, cursor=cursor, limit=limit)
    audit.record(db, actor=who, action="seal.uses.read", object_type="seal", object_id=seal.id)
    return Page[SealUseRead](items=[SealUseRead.model_validate(u) for u in items], next_cursor=next_cursor)


def _status_endpoint(action: str, summary: str) -> None:
    @router.post(f"/seals/{{seal_id}}/{action}", response_model=SealRead, summary=summary, name=f"{action}_seal")
    def change(
        seal_id: str,
        body: StatusChange,
        request: Request,
        response: Response,
        db: DbSession,
        who: PlatformAdmin,
        if_match: Annotated[str | None, Header()] = None,
    ) -> Any:
        seal = service.change_status(
            db,
            who=who,
            seal_id=seal_id,
            action=action,
            reason=body.reason,
            if_match=if_match,
            vault=_vault(request),
            public_url=_settings(request).public_url,
        )
        response.headers["ETag"] = etag(seal.version)
        return seal

    change.__doc__ = summary


_status_endpoint("suspend", "Suspend a seal (it cannot be used until resumed)")
_status_endpoint("resume", "Resume a suspended seal")
_status_endpoint("revoke", "Revoke a seal for good, with the reason")


@router.post(
    "/seal/sign",
    summary="Seal bytes or a JSON document with a detached GB/T 38540 seal signature (用印)",
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def sign_detached(body: DetachedSignRequest, request: Request, db: DbSession, who: DepartmentStaff) -> Any:
    """Return the DER SES_Signature: base64 in JSON with a readable view, or the bytes themselves when the
    request asks for `Accept: application/octet-stream`; the use is recorded. The caller must be authorised to
    use the seal, and send the approval of these bytes (`approval_id`) where the seal requires one."""
    settings = _settings(request)
    require_second_factor(who, "seal_use", settings)  # a person signed in without one is asked to step up
    data = service.document_bytes(data_base64=body.data_base64, document=body.document, max_bytes=settings.seal_max_data_bytes)
    content_type = "application/json" if body.document is not None else body.content_type
    with _refusals_recorded(db):
        signed = service.sign_detached_use(
            db,
            vault=_vault(request),
            department_id=who.require_department(),
            data=data,
            purpose=body.purpose,
            actor=who,
            content_type=content_type,
            seal_id=body.seal_id,
            seal_type=body.seal_type,
            settings=settings,
            approval_id=body.approval_id,
            storage=request.app.state.storage,
        )
    if _wants_der(request):
        return Response(signed.der, media_type="application/octet-stream", headers=_signature_headers(signed))
    return service.detached_result(signed.der, signed)


TIMESTAMP_STATE_HEADER = "Govhub-Timestamp-State"


def _signature_headers(signed: service.DetachedSignature) -> dict[str, str]:
    """The DER answer's headers: the file name, and the time stamp's state where one was asked (awaiting: the TSA
    did not answer and the signature carries none yet)."""
    headers = {"Content-Disposition": 'attachment; filename="SignedValue.dat"', "Seal-Use-Id": signed.use_id}
    if signed.timestamp_state is not None:
        headers[TIMESTAMP_STATE_HEADER] = signed.timestamp_state
    return headers


@router.get(
    "/seal/uses/{use_id}/signature",
    summary="The seal signature of a use made while the TSA was unreachable, with its late time stamp once it has it",
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def use_signature(use_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The DER SES_Signature with the late RFC 3161 token in its timeStamp member (state `stamped_later`), or as
    it was returned while it still awaits one (`awaiting`); JSON (base64 and a readable view) unless the request
    asks for `Accept: application/octet-stream`. Another department's use is not found (404)."""
    kept = service.use_signature(db, who=who, use_id=use_id)
    use = kept.use
    if _wants_der(request):
        headers = {"Content-Disposition": 'attachment; filename="SignedValue.dat"', "Seal-Use-Id": use.id}
        headers[TIMESTAMP_STATE_HEADER] = use.timestamp_state or ""
        return Response(kept.der, media_type="application/octet-stream", headers=headers)
    answer = service.detached_result(kept.der)
    answer.update(
        use_id=use.id, timestamp_state=use.timestamp_state, signed_at=use.at, stamped_at=use.stamped_at,
        timestamp_error=use.timestamp_error,
    )  # fmt: skip
    return answer


@contextmanager
def _refusals_recorded(db: Session) -> Iterator[None]:
    """A use, request or approval refused for want of authorisation is recorded (in a transaction of its own)."""
    try:
        yield
    except service.SealUseRefused as exc:
        audit.record_refusal(db, exc.record)
        raise


@router.post(
    "/seal/pdf",
    summary="Seal a PDF with a visible PAdES seal (用印)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
def seal_pdf(
    request: Request,
    db: DbSession,
    who: DepartmentStaff,
    file: Annotated[UploadFile, File(description="the PDF to seal")],
    purpose: Annotated[str, Form(min_length=2, max_length=500)],
    seal_id: Annotated[str | None, Form()] = None,
    page: Annotated[int, Form(ge=0, le=100000)] = 0,
    box: Annotated[str | None, Form(description="x1,y1,x2,y2 in PDF points; default: bottom right")] = None,
    approval_id: Annotated[str | None, Form(description="the approved use request (用印审批) for this PDF")] = None,
    level: Annotated[
        str | None,
        Form(description="PAdES level: B-B, B-T, B-LT or B-LTA (default: B-T with a time-stamp authority, else B-B)"),
    ] = None,
) -> Response:
    """Return the sealed PDF; the use is recorded with the sealed document's hash. The caller must be authorised
    to use the seal, and send the approval of this PDF (`approval_id`) where the seal requires one. At B-LT the
    hub's certificates and revocation data are embedded; at B-LTA a document time stamp too, and the hub keeps the
    PDF to renew its time stamp chain (`GET /seal/lta-records`)."""
    settings = _settings(request)
    require_second_factor(who, "seal_use", settings)  # a person signed in without one is asked to step up
    data = _read_upload(file, limit=settings.seal_max_pdf_bytes, what="PDF")
    with _refusals_recorded(db):
        sealed = service.seal_pdf(
            db,
            vault=_vault(request),
            department_id=who.require_department(),
            pdf=data,
            purpose=purpose,
            seal_id=seal_id,
            page=page,
            box=_parse_box(box),
            actor=who,
            settings=settings,
            approval_id=approval_id or None,
            level=level or None,
            storage=request.app.state.storage,
        )
    return Response(sealed, media_type="application/pdf", headers={"Content-Disposition": 'attachment; filename="sealed.pdf"'})


@router.post(
    "/seal/ofd",
    summary="Seal an OFD document with an SM2 seal: a GB/T 33190 seal signature with the seal picture (用印)",
    response_class=Response,
    responses={200: {"content": {"application/ofd": {"schema": {"type": "string", "format": "binary"}}}}},
)
def seal_ofd(
    request: Request,
    db: DbSession,
    who: DepartmentStaff,
    file: Annotated[UploadFile, File(description="the OFD document to seal")],
    purpose: Annotated[str, Form(min_length=2, max_length=500)],
    seal_id: Annotated[str | None, Form(description="one of the department's SM2 seals; default: its preferred one")] = None,
    page: Annotated[int, Form(ge=0, le=100000, description="the page's index, 0 = the first")] = 0,
    x_mm: Annotated[float | None, Form(description="the seal picture's left edge, mm from the page's left")] = None,
    y_mm: Annotated[float | None, Form(description="the seal picture's top edge, mm from the page's top")] = None,
    size_mm: Annotated[float | None, Form(description="the picture's width in mm; default: the seal's size")] = None,
    approval_id: Annotated[str | None, Form(description="the approved use request (用印审批) for this OFD")] = None,
) -> Response:
    """Return the sealed OFD: the document gains a seal signature (Signatures.xml, Sign_N/Signature.xml with the
    SM3 digest of every file, the stamp annotation, the seal file, and SignedValue.dat, the DER GB/T 38540 seal
    signature over Signature.xml); signatures already in it are kept. Without x_mm and y_mm the seal sits at
    the bottom right of the page. The use is recorded with the sealed document's hash. The caller must be
    authorised to use the seal, and send the approval of this OFD (`approval_id`) where the seal requires one."""
    settings = _settings(request)
    require_second_factor(who, "seal_use", settings)  # a person signed in without one is asked to step up
    data = _read_upload(file, limit=settings.seal_max_pdf_bytes, what="OFD")
    with _refusals_recorded(db):
        sealed = service.seal_ofd(
            db,
            vault=_vault(request),
            settings=settings,
            department_id=who.require_department(),
            ofd_bytes=data,
            purpose=purpose,
            actor=who,
            seal_id=seal_id or None,
            page=page,
            x_mm=x_mm,
            y_mm=y_mm,
            size_mm=size_mm,
            approval_id=approval_id or None,
            storage=request.app.state.storage,
        )
    return Response(
        sealed.data,
        media_type="application/ofd",
        headers={
            "Content-Disposition": 'attachment; filename="sealed.ofd"',
            "X-Seal-Use-Id": sealed.use_id,
            "X-Seal-Signature": sealed.signature_path,
        },
    )


def _parse_box(box: str | None) -> tuple[float, float, float, float] | None:
    if box is None or not box.strip():
        return None
    try:
        values = [float(part) for part in box.split(",")]
    except ValueError as exc:
        raise Invalid("box must be four numbers x1,y1,x2,y2", errors=[{"field": "box", "message": "not numbers"}]) from exc
    if len(values) != 4:
        raise Invalid("box must be four numbers x1,y1,x2,y2", errors=[{"field": "box", "message": "not four numbers"}])
    return values[0], values[1], values[2], values[3]


@router.post("/seal/verify/pdf", response_model=PdfVerificationReport, summary="Verify a sealed PDF (public, 核验)")
def verify_pdf(
    request: Request,
    db: DbSession,
    file: Annotated[UploadFile, File(description="the sealed PDF")],
    as_of: Annotated[
        datetime | None, Query(description="give the verdict as of this past time (with a time zone); default now")
    ] = None,
) -> Any:
    """Anyone may verify: integrity, signature, signer and seal, chain, seal status, time stamp, revocation data,
    the long-term evidence (which of it carries the verdict, `carried_by`), verdict."""
    settings = _settings(request)
    data = _read_upload(file, limit=settings.seal_max_pdf_bytes, what="PDF")
    report = service.verify_pdf(db, pdf_bytes=data, settings=settings, as_of=as_of)
    service.record_verification(
        db, who=PUBLIC_VERIFIER, kind="pdf", verdict=report.verdict, document_hash=hashlib.sha256(data).hexdigest()
    )
    return report


@router.post("/seal/verify/ofd", response_model=OfdVerificationReport, summary="Verify a sealed OFD document (public, 核验)")
def verify_ofd(request: Request, db: DbSession, file: Annotated[UploadFile, File(description="the sealed OFD")]) -> Any:
    """Anyone may verify an OFD (GB/T 33190) sealed by this hub or another producer: each signed file's digest,
    the GB/T 38540 seal signature over Signature.xml, the seal and its maker, the chain, the seal's status and
    the time stamp, with a verdict per signature."""
    settings = _settings(request)
    data = _read_upload(file, limit=settings.seal_max_pdf_bytes, what="OFD")
    report = service.verify_ofd(db, ofd_bytes=data, settings=settings)
    service.record_verification(
        db, who=PUBLIC_VERIFIER, kind="ofd", verdict=report.verdict, document_hash=hashlib.sha256(data).hexdigest()
    )
    return report


@router.post(
    "/seal/verify/signature",
    response_model=VerificationReport,
    summary="Verify data against its detached seal signature (public, 核验)",
)
def verify_signature(body: DetachedVerifyRequest, request: Request, db: DbSession) -> Any:
    """Anyone may verify a detached GB/T 38540 seal signature over bytes or a JSON document."""
    settings = _settings(request)
    data = service.document_bytes(data_base64=body.data_base64, document=body.document, max_bytes=settings.seal_max_data_bytes)
    report = service.verify_detached(db, signature=body.signature, data=data, settings=settings)
    service.record_verification(
        db, who=PUBLIC_VERIFIER, kind="detached", verdict=report.verdict, document_hash=hashlib.sha256(data).hexdigest()
    )
    return report


@router.post(
    "/seal/verify/signature/der",
    response_model=VerificationReport,
    summary="Verify data against its DER seal signature, both uploaded as files (public, 核验)",
)
def verify_signature_der(
    request: Request,
    db: DbSession,
    file: Annotated[UploadFile, File(description="the signed data (for an OFD: its Signature.xml)")],
    signature: Annotated[UploadFile, File(description="the DER SES_Signature (for an OFD: its SignedValue.dat)")],
) -> Any:
    """A GB/T 38540 seal signature of this hub or of another producer, version 4 or the version-1 layout."""
    settings = _settings(request)
    data = _read_upload(file, limit=settings.seal_max_data_bytes, what="data")
    der = _read_upload(signature, limit=settings.seal_max_data_bytes, what="seal signature")
    report = service.verify_detached(db, signature=der, data=data, settings=settings)
    service.record_verification(
        db, who=PUBLIC_VERIFIER, kind="detached", verdict=report.verdict, document_hash=hashlib.sha256(data).hexdigest()
    )
    return report


@router.get(
    "/seal/crl/{chain}",
    summary="The certificate revocation list of the SM2 or P-256 issuing CA (public, DER)",
    response_class=Response,
    responses={200: {"content": {"application/pkix-crl": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # a CRL is issued anew when what it lists changed
def crl(chain: Literal["sm2", "p256"], request: Request, db: DbSession) -> Response:
    """What the certificates' CRL distribution point names: revoked seals' certificates (suspended ones on hold)."""
    der = service.current_crl(db, vault=_vault(request), chain=chain, public_url=_settings(request).public_url)
    return Response(der, media_type="application/pkix-crl", headers={"Cache-Control": "max-age=300"})


async def _ocsp_body(request: Request) -> bytes:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/ocsp-request":
        raise UnsupportedMediaType("send a DER OCSPRequest as application/ocsp-request (RFC 6960 A.1)")
    body = await request.body()
    if len(body) > service.OCSP_MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"an OCSP request is at most {service.OCSP_MAX_REQUEST_BYTES} bytes")
    return body


def _ocsp_reply(request: Request, db: Session, chain: str, request_der: bytes) -> Response:
    answer = service.ocsp_respond(
        db, _vault(request), chain=chain, request_der=request_der, public_url=_settings(request).public_url
    )
    # RFC 6960 answers a bad request in its own terms: malformedRequest (with HTTP 400 here), unauthorized
    return Response(
        answer.der,
        status_code=400 if answer.status == "malformed_request" else 200,
        media_type="application/ocsp-response",
        headers={"Cache-Control": "no-store"},
    )


_OCSP_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}}},
    400: {
        "description": "malformedRequest (an OCSPResponse without response bytes)",
        "content": {"application/ocsp-response": {"schema": {"type": "string", "format": "binary"}}},
    },
}


@router.post(
    "/seal/ocsp/{chain}",
    summary="OCSP responder of the SM2 or P-256 issuing CA (RFC 6960, public)",
    response_class=Response,
    responses=_OCSP_RESPONSES,
)
@writes  # the CA is made on first use
def ocsp_post(
    chain: Literal["sm2", "p256"], request: Request, db: DbSession, body: Annotated[bytes, Depends(_ocsp_body)]
) -> Response:
    """good, revoked (time and reason) or unknown for each certificate the request names, signed by the CA."""
    return _ocsp_reply(request, db, chain, body)


@router.get(
    "/seal/ocsp/{chain}/{encoded:path}",
    summary="OCSP responder, GET form (base64 of the DER request in the path, RFC 6960 A.1)",
    response_class=Response,
    responses=_OCSP_RESPONSES,
)
@writes  # the CA is made on first use
def ocsp_get(chain: Literal["sm2", "p256"], encoded: str, request: Request, db: DbSession) -> Response:
    try:
        der = service.ocsp_decode_get(encoded)
    except ValueError:
        der = b""  # answered as malformedRequest
    return _ocsp_reply(request, db, chain, der)


@router.get(
    "/seal/ca/{chain}/issuing.cer",
    summary="The SM2 or P-256 issuing CA certificate (DER), named by the certificates' AIA caIssuers (public)",
    response_class=Response,
    responses={200: {"content": {"application/pkix-cert": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the CA is made on first use
def issuing_certificate(chain: Literal["sm2", "p256"], request: Request, db: DbSession) -> Response:
    der = service.issuing_certificate_der(db, _vault(request), chain=chain, public_url=_settings(request).public_url)
    return Response(der, media_type="application/pkix-cert", headers={"Cache-Control": "max-age=3600"})


async def _timestamp_query(request: Request) -> bytes:
    """The body of an RFC 3161 request: `application/timestamp-query`, at most a few kilobytes."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/timestamp-query":
        raise UnsupportedMediaType("send a DER TimeStampReq as application/timestamp-query (RFC 3161 §3.4)")
    body = await request.body()
    if len(body) > service.TSA_MAX_REQUEST_BYTES:
        raise PayloadTooLarge(f"a time-stamp request is at most {service.TSA_MAX_REQUEST_BYTES} bytes")
    return body


@router.post(
    "/tsa",
    summary="The hub's time-stamp authority (RFC 3161, public)",
    response_class=Response,
    responses={
        200: {"content": {"application/timestamp-reply": {"schema": {"type": "string", "format": "binary"}}}},
        400: {"description": "a rejection (TimeStampResp with failInfo and statusString) for a malformed request"},
    },
)
@writes  # the TSA's key and certificate are made on first use
def time_stamp(request: Request, db: DbSession, query: Annotated[bytes, Depends(_timestamp_query)]) -> Response:
    """A DER TimeStampReq in, a DER TimeStampResp out: granted with a token signed by the hub's TSA certificate
    (under the P-256 issuing CA), or rejected with the RFC 3161 failInfo and a statusString saying why."""
    reply, granted = service.time_stamp_reply(db, _vault(request), query, public_url=_settings(request).public_url)
    return Response(reply, status_code=200 if granted else 400, media_type="application/timestamp-reply")


@router.get("/seal/jwks", summary="Public keys of the seals (JWK set), for verifying what they signed", name="seal_jwks")
def jwks(db: DbSession, department_code: str | None = None) -> Any:
    """Every seal key with its kid, alg, department code and status (public)."""
    department_id = None
    if department_code:
        from ops.identity import repository as identity_repository

        department = identity_repository.department_by_code(db, department_code.upper())
        if department is None:
            return {"keys": []}
        department_id = department.id
    return service.department_jwks(db, department_id=department_id)


@router.get("/seal/ca", summary="The hub's seal root and issuing CA certificates (public)")
def ca_certificates(request: Request, db: DbSession) -> Any:
    """What a verifier adds to its trust store to verify this hub's seals offline."""
    return service.authority_certificates(db, vault=_vault(request), settings=_settings(request))


# ---- use control (用印管理): authorisations, the approval policy, use requests and their decisions


@router.get(
    "/seals/{seal_id}/authorisations", response_model=Page[SealAuthorisationRead], summary="Who may use and approve a seal"
)
def list_seal_authorisations(seal_id: str, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The seal's authorisations, withdrawn ones too, newest first (a short list, one page)."""
    return whole_page(
        [SealAuthorisationRead.model_validate(a) for a in service.seal_authorisations(db, who=who, seal_id=seal_id)]
    )


@router.post(
    "/seals/{seal_id}/authorisations",
    status_code=201,
    response_model=SealAuthorisationRead,
    summary="Authorise a person or system to use a seal or approve its uses (用印授权)",
)
def authorise_seal_use(seal_id: str, body: SealAuthorisationCreate, db: DbSession, who: DepartmentStaff) -> Any:
    """The seal's department administrator decides; a new authorisation of a subject replaces its former one."""
    return service.authorise(
        db, who=who, seal_id=seal_id, subject=body.subject, subject_kind=body.subject_kind,
        may_use=body.may_use, may_approve=body.may_approve, note=body.note,
    )  # fmt: skip


@router.post(
    "/seals/{seal_id}/authorisations/{authorisation_id}/withdraw",
    response_model=SealAuthorisationRead,
    summary="Withdraw an authorisation",
)
def withdraw_seal_authorisation(
    seal_id: str, authorisation_id: str, body: SealAuthorisationWithdraw, db: DbSession, who: DepartmentStaff
) -> Any:
    """At once: the subject can no longer use the seal, nor use approvals it holds."""
    return service.withdraw(db, who=who, seal_id=seal_id, authorisation_id=authorisation_id, reason=body.reason)


@router.put(
    "/seals/{seal_id}/use-policy", response_model=SealRead, summary="Whether each use of a seal needs approval (用印审批)"
)
def set_seal_use_policy(
    seal_id: str,
    body: SealUsePolicy,
    response: Response,
    db: DbSession,
    who: DepartmentStaff,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """The seal's department administrator decides; send If-Match with the seal's ETag."""
    seal = service.set_policy(
        db, who=who, seal_id=seal_id, requires_approval=body.requires_approval,
        approval_valid_hours=body.approval_valid_hours, if_match=if_match,
    )  # fmt: skip
    response.headers["ETag"] = etag(seal.version)
    return seal


@router.post(
    "/seals/{seal_id}/use-requests",
    status_code=201,
    response_model=SealUseRequestRead,
    summary="Request to use a seal on a document (用印申请)",
)
def request_seal_use(seal_id: str, body: SealUseRequestCreate, db: DbSession, who: DepartmentStaff) -> Any:
    """Name the document by its SHA-256; another authorised person approves or refuses."""
    with _refusals_recorded(db):
        return service.request_use(
            db, who=who, seal_id=seal_id, document_name=body.document_name, document_hash=body.document_hash, purpose=body.purpose
        )


@router.get("/seals/{seal_id}/use-requests", response_model=Page[SealUseRequestRead], summary="A seal's use requests")
def list_seal_use_requests(
    seal_id: str,
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """Newest first, with their decisions and uses."""
    items, next_cursor = service.use_requests(db, who=who, seal_id=seal_id, cursor=cursor, limit=limit)
    return Page[SealUseRequestRead](items=[SealUseRequestRead.model_validate(r) for r in items], next_cursor=next_cursor)


def _decision_endpoint(action: str, approve: bool, summary: str) -> None:
    @router.post(
        f"/seal/use-requests/{{request_id}}/{action}",
        response_model=SealUseRequestRead,
        summary=summary,
        name=f"{action}_use_request",
    )
    def decide(request_id: str, body: SealUseDecision, db: DbSession, who: DepartmentStaff) -> Any:
        with _refusals_recorded(db):
            return service.decide(db, who=who, request_id=request_id, approve=approve, reason=body.reason)

    decide.__doc__ = summary


_decision_endpoint("approve", True, "Approve a use request (a second person authorised to approve; used once, before it expires)")
_decision_endpoint("refuse", False, "Refuse a use request")


@router.get("/seal/lta-records", response_model=Page[LtaRecordRead], summary="PDFs kept at PAdES B-LTA (长期验证)")
def list_lta_records(
    db: DbSession,
    who: DepartmentOrAdmin,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Any:
    """The department's PDFs sealed at B-LTA (every one for the platform), newest first: the time stamp chain,
    when it is next renewed, and why the last renewal failed, if it did."""
    items, next_cursor = repository.list_lta_records(db, who, cursor=cursor, limit=limit)
    return Page[LtaRecordRead](items=[LtaRecordRead.model_validate(r) for r in items], next_cursor=next_cursor)


@router.get("/seal/lta-records/{record_id}", response_model=LtaRecordRead, summary="A PDF kept at PAdES B-LTA")
def read_lta_record(record_id: str, db: DbSession, who: DepartmentOrAdmin) -> Any:
    return service.lta_record(db, who=who, record_id=record_id)


@router.get(
    "/seal/lta-records/{record_id}/document",
    summary="The newest form of a PDF kept at PAdES B-LTA (with every document time stamp)",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes
def lta_record_document(record_id: str, db: DbSession, who: DepartmentOrAdmin) -> Response:
    """The sealed PDF as the hub keeps it now; each download is audited."""
    record = service.lta_record(db, who=who, record_id=record_id)
    audit.record(db, actor=who, action="seal.lta.document.read", object_type="seal_lta_record", object_id=record.id)
    return Response(
        record.document, media_type="application/pdf", headers={"Content-Disposition": 'attachment; filename="sealed-lta.pdf"'}
    )


@router.post(
    "/seal/uses/{use_id}/archive",
    status_code=201,
    response_model=ArchivePackageRead,
    summary="Archive (归档) a sealed document: a BagIt package in object storage",
)
def archive_use(use_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The seal's department's staff or the platform: the package holds the sealed PDF or the DER seal signature,
    the seal, its certificates, the use record with its approval, DA/T 46 metadata and the audit-log evidence;
    409 when the use kept no sealed output, or before a signed audit-log checkpoint covers the use."""
    state = request.app.state
    return service.archive_use(db, who=who, storage=state.storage, settings=state.settings, vault=state.vault, use_id=use_id)


@router.get("/seal/uses/{use_id}/archive-packages", response_model=Page[ArchivePackageRead])
def list_use_packages(use_id: str, db: DbSession, who: DepartmentOrAdmin) -> Any:
    """The archive packages written for this sealed document, newest first."""
    return whole_page([ArchivePackageRead.model_validate(p) for p in service.use_packages(db, who=who, use_id=use_id)])


@router.get(
    "/seal/uses/{use_id}/archive-packages/{package_id}",
    summary="Download an archive package of a sealed document (zip)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the download is recorded in the audit trail
def download_use_package(use_id: str, package_id: str, request: Request, db: DbSession, who: DepartmentOrAdmin) -> Response:
    package, data = service.use_package(db, who=who, storage=request.app.state.storage, use_id=use_id, package_id=package_id)
    return Response(
        data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{package.file_name}"'}
    )
