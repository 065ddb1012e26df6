"""HTTP API of the certhub domain."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from functools import partial
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse
from fastapi.security import HTTPBearer
from fastapi.telemetry import get_telemetry_data
from pydantic import ValidationError
from sqlalchemy.orm import Session

from certhub import repository, service
from certhub.schemas import (
    USE_CAUSE_MAX,
    AuthorisationCreate,
    AuthorisationRead,
    BulkReport,
    CertificateAccessRead,
    CertificateRead,
    CertificateSummary,
    CertificateTypeCreate,
    CertificateTypeRead,
    CertificateTypeUpdate,
    ChangeRequest,
    DelegationCreate,
    DelegationRead,
    DownloadQuery,
    FeedbackAnswer,
    FeedbackCreate,
    FeedbackRead,
    FetchRequest,
    IssueRequest,
    NonceRead,
    ObjectionCorrect,
    ObjectionCreate,
    ObjectionDismiss,
    ObjectionRead,
    PrefillRead,
    PrefillRequest,
    Presentation,
    PublicCheckRead,
    ReasonBody,
    RedeemRequest,
    ServiceAuthorisationCreate,
    ServiceCertificatesRead,
    ServiceCreate,
    ServiceRead,
    ServiceUpdate,
    ShortCodeCreate,
    ShortCodeRead,
    ShowRequest,
    TrustedHubCreate,
    TrustedHubRead,
    TrustedHubUpdate,
    VerdictRead,
    VerifyRequest,
)
from ops import audit
from ops.archive.schemas import ArchivePackageRead
from ops.auth import AnyCaller, DepartmentStaff, Holder, PlatformAdmin, Principal, Role, require_roles
from ops.db import DbSession, HubRoute, etag, writes
from ops.errors import BadRequest, Forbidden, HubError, Invalid, UnsupportedMediaType
from ops.inputs import unstorable_text
from ops.pagination import Page, PageLimit, whole_page
from ops.ratings.schemas import RatingTokenRead

router = APIRouter(prefix="/certhub", tags=["certhub"], route_class=HubRoute)
# The busiest route, in a router of its own that the app includes before all others: routes are
# matched one by one, so a verification does not first try every other route of the hub.
busy = APIRouter(prefix="/certhub", tags=["certhub"], route_class=HubRoute)

_verifier = require_roles(*service.VERIFIER_ROLES)
VerifierCaller = Annotated[Principal, Depends(_verifier)]
Staff = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM))]
OnBehalfOf = Annotated[str | None, Query(max_length=18, description="委托用证: the holder you act for")]


def _ctx(request: Request) -> service.IssueContext:
    state = request.app.state
    return service.IssueContext(vault=state.vault, settings=state.settings, storage=state.storage)


def _use_cause(value: str | None, *, spelt: str) -> str:
    try:
        return DownloadQuery(use_cause=value or "").use_cause
    except Exception as exc:  # pydantic ValidationError: one message, as a field error
        message = str(exc).split("\n")[2].strip() if "\n" in str(exc) else str(exc)
        message = message.removeprefix("Value error, ").split(" [type=")[0]
        raise Invalid(message, errors=[{"field": spelt, "in": "query", "message": message}]) from exc


# ---- window verification: the busiest endpoint (see `busy`) ------------------------------------------


class _VerifyRoute(HubRoute):
    """The verification route, whose ordinary requests skip FastAPI's generic request machinery.

    Declared like any route (its OpenAPI operation, its dependencies and the generic handler are FastAPI's),
    but a request that is ordinary (no query string, ``Content-Type: application/json``, a JSON object of
    storable text with no other keys than the body's, no dependency overrides, no FastAPI telemetry) is
    answered by :func:`_verify_plainly`: the body is read and parsed once, the caller resolved by the same
    dependency the route declares, and the endpoint called, with no dependency solving, no second walk of
    the body and no thread-pool round trip. Every other request, and an ordinary one whose body the model
    refuses, takes the generic handler, which answers it as every route does (the same problems, in the
    same order: the body's gate, the input rule, the query rule, the caller, the body's validation).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        generic = super().get_route_handler()
        # The plain path runs the caller's dependency itself, and knows of the router's `known_query_only`
        # (a query string goes to the generic handler): a dependency added to the route would be skipped.
        declared = [dependency.call for dependency in self.dependant.dependencies]
        if declared != [_verifier]:
            raise RuntimeError(f"{self.path}: the plain path knows only the caller's dependency, not {declared}")
        if not self.writes:  # the plain path leaves the request's write intent at its default, which writes
            return generic

        async def handler(request: Request) -> Response:
            answer = await _verify_plainly(request)
            return answer if answer is not None else await generic(request)

        return handler


_bearer = HTTPBearer(auto_error=False)  # reads the header as the route's own dependency does
_VERIFY_KEYS = frozenset(VerifyRequest.model_fields)


def _storable(value: object) -> bool:
    return type(value) is str and unstorable_text(value) is None


async def _verify_plainly(request: Request) -> Response | None:
    """The answer to an ordinary verification request, or None when the generic handler must answer."""
    if request.scope["query_string"] or request.app.dependency_overrides or get_telemetry_data() is not None:
        return None
    if request.headers.get("content-type") != "application/json":
        return None
    try:
        data = await request.json()  # kept by the request: the generic handler finds it again
    except ValueError:
        return None
    # What the input rule (ops.inputs) would refuse is left to it: here only storable text, nothing else.
    if type(data) is not dict or not data.keys() <= _VERIFY_KEYS or not _storable(data.get("token")):
        return None
    if data.get("nonce") is not None and not _storable(data["nonce"]):
        return None
    who = await _verifier(request, await _bearer(request))  # 401 / 403 raised as from the dependency
    try:
        body = VerifyRequest.model_validate(data)
    except ValidationError:
        return None  # the generic handler's 422 (the caller is remembered by the request: not checked twice)
    response: Response = await verify(body, request, who)
    return response


async def verify(body: VerifyRequest, request: Request, who: VerifierCaller) -> Response:
    """证照验证: signature, trust list, validity, status, audience and nonce; only the disclosed fields return."""
    state = request.app.state
    verdict = await service.verify_async(
        state.sessionmaker,
        who=who,
        settings=state.settings,
        token=body.token,
        nonce=body.nonce,
        journal=state.verification_commits,
    )
    # Serialised here: FastAPI would otherwise validate the model it was just given once more.
    return Response(_verdict_read(verdict).model_dump_json(), media_type="application/json")


busy.add_api_route(
    "/verifications",
    verify,
    methods=["POST"],
    response_model=VerdictRead,
    tags=["certhub verification"],
    name="verify_presentation",
    route_class_override=_VerifyRoute,
)


def _verdict_read(verdict: Any) -> VerdictRead:
    claims = verdict.claims
    return VerdictRead(
        valid=verdict.valid,
        code=verdict.code,
        message=verdict.message,
        identifier=verdict.identifier,
        issuer_hub=verdict.issuer_hub,
        type_code=claims.get("ZZLXDM"),
        type_name=claims.get("ZZMC"),
        issuer_name=claims.get("ZZBFJG"),
        issuer_code=claims.get("ZZBFJGDM"),
        status=verdict.status,
        disclosed=verdict.disclosed,
    )


# ---- types ----------------------------------------------------------------------------------------


@router.get("/types", response_model=Page[CertificateTypeRead], summary="The certificate catalogue (证照目录)")
def list_types(db: DbSession, who: AnyCaller, include_inactive: bool = False) -> Any:
    """Every certificate type: a short list, one page."""
    types = repository.list_types(db, include_inactive=include_inactive and who.is_platform_admin)
    return whole_page([CertificateTypeRead.model_validate(t) for t in types])


@router.get("/types/{code}", response_model=CertificateTypeRead)
def get_type(code: str, db: DbSession, who: AnyCaller, response: Response) -> Any:
    row = service.get_type(db, code=code)
    response.headers["ETag"] = etag(row.version)
    return row


@router.post("/types", status_code=201, response_model=CertificateTypeRead)
def create_type(body: CertificateTypeCreate, db: DbSession, who: PlatformAdmin) -> Any:
    """Add a certificate type: face schema, validity rule, issuing departments, template."""
    return service.create_type(db, who=who, data=body)


@router.patch("/types/{code}", response_model=CertificateTypeRead)
def update_type(
    code: str,
    body: CertificateTypeUpdate,
    db: DbSession,
    who: PlatformAdmin,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    row = service.update_type(db, who=who, code=code, data=body, if_match=if_match)
    response.headers["ETag"] = etag(row.version)
    return row


@router.post("/types/examples", summary="Load the shipped example types (居民身份证, 营业执照, …)")
def load_examples(db: DbSession, who: PlatformAdmin) -> dict[str, list[str]]:
    return {"loaded": service.load_types(db, who=who, definitions=service.example_types())}


# ---- issuing department ------------------------------------------------------------------------------


@router.post("/certificates", status_code=201, response_model=CertificateRead, summary="Issue a certificate (签发)")
def issue(
    body: IssueRequest,
    request: Request,
    db: DbSession,
    who: DepartmentStaff,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Any:
    """Issue a certificate; resending with the same Idempotency-Key returns the same certificate (200)."""
    certificate, created = service.issue(db, who=who, ctx=_ctx(request), data=body, idempotency_key=idempotency_key)
    # Serialised here: FastAPI would otherwise validate the model it was just given once more.
    return Response(
        CertificateRead.of(certificate).model_dump_json(),
        status_code=201 if created else 200,
        media_type="application/json",
        headers={"Location": f"/certhub/certificates/{certificate.identifier}"},
    )


@router.post(
    "/certificates/bulk",
    response_model=BulkReport,
    summary="Bulk issuance (归集) from JSON Lines",
    # Read by the endpoint itself; declared so that the body gate and the OpenAPI description know it.
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                kind: {"schema": {"type": "string"}} for kind in ("application/x-ndjson", "application/jsonl", "text/csv")
            },
        }
    },
)
async def bulk_issue(
    request: Request,
    who: DepartmentStaff,
    type_code: str | None = None,
    render_pdf: bool = False,
) -> Any:
    """Body: one issue request per line (application/x-ndjson), or CSV (text/csv). Each valid row is issued."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    fmt = {"application/x-ndjson": "jsonl", "application/jsonl": "jsonl", "text/csv": "csv"}.get(content_type)
    if fmt is None:
        raise UnsupportedMediaType("send application/x-ndjson (JSON Lines) or text/csv")
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("the file must be UTF-8") from exc
    factory = request.app.state.sessionmaker
    ctx = _ctx(request)

    def work() -> BulkReport:
        with factory() as db:
            rows = service.parse_rows(iter(text.splitlines()), fmt=fmt, type_code=type_code, render_pdf=render_pdf)
            report = service.bulk_issue(db, who=who, ctx=ctx, rows=rows)
            db.commit()
        return report

    return await run_in_threadpool(work)


@router.get("/certificates", response_model=Page[CertificateSummary])
def list_certificates(
    db: DbSession,
    who: Staff,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    type_code: str | None = None,
    status: str | None = None,
) -> Any:
    """Certificates your department issued (all, for the platform)."""
    items, next_cursor = repository.list_certificates(db, who, cursor=cursor, limit=limit, type_code=type_code, status=status)
    return Page[CertificateSummary](items=[_summary(c) for c in items], next_cursor=next_cursor)


def _summary(certificate: Any) -> CertificateSummary:
    summary = CertificateSummary.model_validate(certificate)
    summary.name = certificate.meta.get("ZZMC", "")
    return summary


@router.get("/certificates/{identifier}", response_model=CertificateRead)
def get_certificate(identifier: str, db: DbSession, who: AnyCaller) -> Any:
    """A certificate you issued, or your own."""
    return CertificateRead.of(service.get_certificate(db, who=who, identifier=identifier))


@router.post(
    "/certificates/{identifier}/changes", status_code=201, response_model=CertificateRead, summary="Change (变更): a new version"
)
def change(identifier: str, body: ChangeRequest, request: Request, db: DbSession, who: DepartmentStaff) -> Any:
    return CertificateRead.of(service.change(db, who=who, ctx=_ctx(request), identifier=identifier, data=body))


@router.post("/certificates/{identifier}/revoke", response_model=CertificateRead, summary="Revoke (注销) with a reason")
def revoke(identifier: str, body: ReasonBody, db: DbSession, who: DepartmentStaff) -> Any:
    return CertificateRead.of(service.revoke(db, who=who, identifier=identifier, reason=body.reason))


@router.post("/certificates/{identifier}/suspend", response_model=CertificateRead)
def suspend(identifier: str, body: ReasonBody, db: DbSession, who: DepartmentStaff) -> Any:
    return CertificateRead.of(service.suspend_issued(db, who=who, identifier=identifier, reason=body.reason))


@router.post("/certificates/{identifier}/reinstate", response_model=CertificateRead)
def reinstate(identifier: str, body: ReasonBody, db: DbSession, who: DepartmentStaff) -> Any:
    return CertificateRead.of(service.reinstate_issued(db, who=who, identifier=identifier, reason=body.reason))


def _cause(use_cause: str | None, former: str | None) -> str:
    # `useCause`, the former spelling, is still accepted: tests/certhub/test_use.py and tests/console send it.
    if use_cause is None and former is not None:
        return _use_cause(former, spelt="useCause")
    return _use_cause(use_cause, spelt="use_cause")


def _copy_response(request: Request, db: Session, who: Principal, identifier: str, cause: str, fmt: str | None) -> Response:
    certificate, data, chosen = service.sealed_copy(
        db, who=who, storage=request.app.state.storage, identifier=identifier, use_cause=cause, fmt=fmt
    )
    filename = f"{certificate.serial}-{certificate.cert_version:03d}.{chosen}"
    return Response(
        data,
        media_type=service.COPY_MEDIA_TYPES[chosen],
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Vary": "Accept"},
    )


def _accepted_format(accept: str | None) -> str | None:
    """The copy format an Accept header asks for (the first of application/ofd, application/pdf it names)."""
    for part in (accept or "").split(","):
        media = part.split(";", 1)[0].strip().lower()
        for fmt, media_type in service.COPY_MEDIA_TYPES.items():
            if media == media_type:
                return fmt
    return None


_USE_CAUSE = Annotated[str | None, Query(max_length=USE_CAUSE_MAX, description="申请事由")]
_FORMER_USE_CAUSE = Annotated[
    str | None, Query(alias="useCause", max_length=USE_CAUSE_MAX, deprecated=True, description="use `use_cause`")
]


@router.get(
    "/certificates/{identifier}/copy",
    summary="Download the sealed copy (OFD or PDF), with the reason",
    response_class=Response,
    # the answer is the file's bytes: a generated client must not read it as JSON (tests/test_generated_client.py)
    responses={
        200: {
            "content": {
                "application/ofd": {"schema": {"type": "string", "format": "binary"}},
                "application/pdf": {"schema": {"type": "string", "format": "binary"}},
            }
        }
    },
)
@writes  # the use is recorded (用证记录)
def download_copy(
    identifier: str,
    request: Request,
    db: DbSession,
    who: AnyCaller,
    use_cause: _USE_CAUSE = None,
    former: _FORMER_USE_CAUSE = None,
    fmt: Annotated[
        Literal["ofd", "pdf"] | None,
        Query(
            alias="format",
            description="ofd or pdf; default: the format the Accept header names, else the copy the certificate has",
        ),
    ] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    cause = _cause(use_cause, former)
    return _copy_response(request, db, who, identifier, cause, fmt or _accepted_format(accept))


@router.get(
    "/certificates/{identifier}/ofd",
    summary="Download the sealed OFD copy, with the reason",
    response_class=Response,
    responses={200: {"content": {"application/ofd": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the use is recorded (用证记录)
def download_ofd(
    identifier: str,
    request: Request,
    db: DbSession,
    who: AnyCaller,
    use_cause: _USE_CAUSE = None,
    former: _FORMER_USE_CAUSE = None,
) -> Response:
    return _copy_response(request, db, who, identifier, _cause(use_cause, former), "ofd")


@router.get(
    "/certificates/{identifier}/pdf",
    summary="Download the sealed PDF copy, with the reason",
    response_class=Response,
    # the answer is the PDF's bytes: a generated client must not read it as JSON (tests/test_generated_client.py)
    responses={200: {"content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the use is recorded (用证记录)
def download_pdf(
    identifier: str,
    request: Request,
    db: DbSession,
    who: AnyCaller,
    use_cause: _USE_CAUSE = None,
    former: _FORMER_USE_CAUSE = None,
) -> Response:
    return _copy_response(request, db, who, identifier, _cause(use_cause, former), "pdf")


@router.post(
    "/certificates/{identifier}/archive",
    status_code=201,
    response_model=ArchivePackageRead,
    summary="Archive (归档) this certificate version: a BagIt package in object storage",
)
def archive_certificate(identifier: str, request: Request, db: DbSession, who: Staff) -> Any:
    """The issuer's staff or the platform: the package holds the certificate as issued, its sealed PDF copy,
    DA/T 46 and GB/T 36903 metadata, SHA-256 and SM3 fixity and the audit-log evidence."""
    state = request.app.state
    return service.archive_certificate(
        db, who=who, storage=state.storage, settings=state.settings, vault=state.vault, identifier=identifier
    )


@router.get("/certificates/{identifier}/archive-packages", response_model=Page[ArchivePackageRead])
def list_archive_packages(identifier: str, db: DbSession, who: Staff) -> Any:
    """The archive packages written for this certificate version, newest first."""
    packages = service.archive_packages(db, who=who, identifier=identifier)
    return whole_page([ArchivePackageRead.model_validate(p) for p in packages])


@router.get(
    "/certificates/{identifier}/archive-packages/{package_id}",
    summary="Download an archive package (zip)",
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the download is recorded in the audit trail
def download_archive_package(identifier: str, package_id: str, request: Request, db: DbSession, who: Staff) -> Response:
    package, data = service.archive_package(
        db, who=who, storage=request.app.state.storage, identifier=identifier, package_id=package_id
    )
    disposition = f'attachment; filename="{package.file_name}"'
    return Response(data, media_type="application/zip", headers={"Content-Disposition": disposition})


@router.post(
    "/certificates/{identifier}/objections", status_code=201, response_model=ObjectionRead, summary="File an objection (异议)"
)
def file_objection(
    identifier: str, body: ObjectionCreate, request: Request, db: DbSession, who: AnyCaller, on_behalf_of: OnBehalfOf = None
) -> Any:
    """The holder (or an agent whose delegation allows `object`), the issuer or the platform disputes a
    certificate; it is suspended until the issuer decides. Anyone else: 404, as for an unknown certificate."""
    settings = request.app.state.settings
    return service.file_objection(
        db, who=who, settings=settings, identifier=identifier, reason=body.reason, on_behalf_of=on_behalf_of
    )


@router.post(
    "/certificates/{identifier}/feedback",
    status_code=201,
    response_model=FeedbackRead,
    summary="Report a suspected error (反馈纠错)",
)
def file_feedback(identifier: str, body: FeedbackCreate, db: DbSession, who: AnyCaller, on_behalf_of: OnBehalfOf = None) -> Any:
    """A department that used the certificate (or one who may dispute it) tells the issuer what looks wrong;
    the status does not change. Anyone else: 404, as for an unknown certificate."""
    return service.file_feedback(db, who=who, identifier=identifier, reason=body.reason, on_behalf_of=on_behalf_of)


# ---- objections -----------------------------------------------------------------------------------


@router.get("/objections", response_model=Page[ObjectionRead])
def list_objections(
    db: DbSession, who: AnyCaller, status: str | None = None, cursor: str | None = None, limit: PageLimit = 50
) -> Any:
    """Objections to your certificates (issuer), filed by you, or all (platform); newest first."""
    items, next_cursor = repository.list_objections(db, who, status=status, cursor=cursor, limit=limit)
    return Page[ObjectionRead](items=[ObjectionRead.model_validate(o) for o in items], next_cursor=next_cursor)


@router.get("/objections/{objection_id}", response_model=ObjectionRead)
def get_objection(objection_id: str, db: DbSession, who: AnyCaller, response: Response) -> Any:
    objection = service.get_objection(db, who=who, objection_id=objection_id)
    response.headers["ETag"] = etag(objection.version)
    return objection


@router.post("/objections/{objection_id}/correct", response_model=ObjectionRead, summary="Correct (纠错): a new version")
def correct_objection(
    objection_id: str,
    body: ObjectionCorrect,
    request: Request,
    db: DbSession,
    who: DepartmentStaff,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    objection, _ = service.correct_objection(
        db,
        who=who,
        ctx=_ctx(request),
        objection_id=objection_id,
        face=body.face,
        holder_name=body.holder_name,
        resolution=body.resolution,
        if_match=if_match,
    )
    return objection


@router.post("/objections/{objection_id}/dismiss", response_model=ObjectionRead)
def dismiss_objection(
    objection_id: str,
    body: ObjectionDismiss,
    db: DbSession,
    who: DepartmentStaff,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    return service.dismiss_objection(db, who=who, objection_id=objection_id, resolution=body.resolution, if_match=if_match)


# ---- reports of a suspected error (反馈纠错) ----------------------------------------------------------


@router.get("/feedback", response_model=Page[FeedbackRead])
def list_feedback(
    db: DbSession, who: AnyCaller, status: str | None = None, cursor: str | None = None, limit: PageLimit = 50
) -> Any:
    """Reports about your certificates (issuer), filed by you, or all (platform); newest first."""
    items, next_cursor = repository.list_feedback(db, who, status=status, cursor=cursor, limit=limit)
    return Page[FeedbackRead](items=[FeedbackRead.model_validate(f) for f in items], next_cursor=next_cursor)


@router.get("/feedback/{feedback_id}", response_model=FeedbackRead)
def get_feedback(feedback_id: str, db: DbSession, who: AnyCaller, response: Response) -> Any:
    feedback = service.get_feedback(db, who=who, feedback_id=feedback_id)
    response.headers["ETag"] = etag(feedback.version)
    return feedback


@router.post("/feedback/{feedback_id}/answer", response_model=FeedbackRead, summary="Answer and close a report")
def answer_feedback(
    feedback_id: str,
    body: FeedbackAnswer,
    db: DbSession,
    who: DepartmentStaff,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    return service.answer_feedback(db, who=who, feedback_id=feedback_id, answer=body.answer, if_match=if_match)


# ---- holder ---------------------------------------------------------------------------------------


@router.get("/me/certificates", response_model=Page[CertificateSummary], tags=["certhub holder"])
@writes  # the holder's look is recorded in the audit log
def my_certificates(db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None) -> Any:
    """My current certificates (or, as an agent, those of the holder I act for): one page, at most one per type."""
    holder = service.acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="list")
    return whole_page([_summary(c) for c in service.holder_certificates(db, who=who, holder_code=holder)])


@router.post("/me/certificates/{identifier}/presentations", status_code=201, response_model=Presentation, tags=["certhub holder"])
def show(
    identifier: str, body: ShowRequest, request: Request, db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None
) -> Any:
    """亮证: a short-lived, QR-sized presentation of the fields you choose, for one verifier and nonce."""
    token, nonce, expires_at = service.show(
        db, who=who, ctx=_ctx(request), identifier=identifier, data=body, on_behalf_of=on_behalf_of
    )
    return Presentation(token=token, nonce=nonce, audience=body.audience, expires_at=expires_at, fields=body.fields)


@router.post("/me/certificates/{identifier}/short-codes", status_code=201, response_model=ShortCodeRead, tags=["certhub holder"])
def make_short_code(
    identifier: str, body: ShortCodeCreate, request: Request, db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None
) -> Any:
    """亮证码: a short code (a QR code of version 10 or lower) that the window redeems once, within minutes."""
    shown = ShowRequest(fields=body.fields, audience=body.audience, nonce=body.nonce)
    made = service.make_short_code(db, who=who, ctx=_ctx(request), identifier=identifier, data=shown, on_behalf_of=on_behalf_of)
    return ShortCodeRead(code=made.code, audience=made.audience, nonce=made.nonce, fields=made.fields, expires_at=made.expires_at)


@router.get("/me/authorisations", response_model=Page[AuthorisationRead], tags=["certhub holder"])
def my_authorisations(db: DbSession, who: Holder, cursor: str | None = None, limit: PageLimit = 50) -> Any:
    items, next_cursor = repository.authorisations_page(db, who.holder_code or "", cursor=cursor, limit=limit)
    return Page[AuthorisationRead](items=[AuthorisationRead.model_validate(a) for a in items], next_cursor=next_cursor)


@router.post("/me/authorisations", status_code=201, response_model=AuthorisationRead, tags=["certhub holder"])
def authorise(body: AuthorisationCreate, db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None) -> Any:
    """授权用证: let a department use my certificate of a type for a purpose until a time."""
    return service.authorise(db, who=who, data=body, on_behalf_of=on_behalf_of)


@router.delete("/me/authorisations/{authorisation_id}", response_model=AuthorisationRead, tags=["certhub holder"])
def withdraw_authorisation(authorisation_id: str, db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None) -> Any:
    return service.revoke_authorisation(db, who=who, authorisation_id=authorisation_id, on_behalf_of=on_behalf_of)


@router.get("/me/delegations", response_model=Page[DelegationRead], tags=["certhub holder"])
def my_delegations(db: DbSession, who: Holder, cursor: str | None = None, limit: PageLimit = 50) -> Any:
    items, next_cursor = repository.delegations_of(db, who.holder_code or "", cursor=cursor, limit=limit)
    return Page[DelegationRead](items=[DelegationRead.model_validate(d) for d in items], next_cursor=next_cursor)


@router.post("/me/delegations", status_code=201, response_model=DelegationRead, tags=["certhub holder"])
def delegate(body: DelegationCreate, db: DbSession, who: Holder) -> Any:
    """委托用证: let an agent list, show or authorise within the limits given."""
    return service.delegate(db, who=who, data=body)


@router.delete("/me/delegations/{delegation_id}", response_model=DelegationRead, tags=["certhub holder"])
def withdraw_delegation(delegation_id: str, db: DbSession, who: Holder) -> Any:
    return service.revoke_delegation(db, who=who, delegation_id=delegation_id)


@router.get("/me/accesses", response_model=Page[CertificateAccessRead], tags=["certhub holder"], name="my_certificate_accesses")
def my_accesses(db: DbSession, who: Holder, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Any:
    """Every use of my certificates: who, when, why (useCause)."""
    items, next_cursor = service.holder_accesses(db, who=who, cursor=cursor, limit=limit)
    return Page[CertificateAccessRead](items=[CertificateAccessRead.model_validate(a) for a in items], next_cursor=next_cursor)


@router.post("/me/accesses/{access_id}/rating-token", status_code=201, response_model=RatingTokenRead, tags=["certhub holder"])
def access_rating_token(access_id: str, request: Request, db: DbSession, who: Holder) -> Any:
    """好差评: a link (and QR code) to rate, once, the verification or fetch this use of my certificate was."""
    return RatingTokenRead.issued(request.app.state, service.rating_event(db, who=who, access_id=access_id))


# ---- window verification ------------------------------------------------------------------------------


@router.post("/verifier/nonces", status_code=201, response_model=NonceRead, tags=["certhub verification"])
def new_nonce(who: VerifierCaller) -> Any:
    """A nonce for the holder to bind the presentation to (show it as a QR code at the window)."""
    nonce, audience = service.new_nonce(who=who)
    return NonceRead(nonce=nonce, audience=audience)


@router.post("/short-codes/redeem", response_model=VerdictRead, tags=["certhub verification"])
def redeem_short_code(body: RedeemRequest, request: Request, db: DbSession, who: VerifierCaller) -> Any:
    """Redeem a 亮证码 once, with the nonce this window showed: the verdict a verification of the presentation gives."""
    try:
        verdict = service.redeem_short_code(db, who=who, settings=request.app.state.settings, code=body.code, nonce=body.nonce)
    except HubError as exc:
        audit.record_refusal(db, partial(service.record_refused_redeem, who=who, code=body.code, reason=exc))
        raise
    return _verdict_read(verdict)


# ---- public 验真 (no sign-in) ---------------------------------------------------------------------------


@router.get("/public/verifications/{token}", response_model=PublicCheckRead, tags=["certhub public"])
@writes  # the check is recorded in the audit trail
def public_check(token: Annotated[str, Path(max_length=64)], request: Request, db: DbSession) -> Any:
    """Public 验真 of a certificate copy from its QR code: valid now or not, type, issuer, validity and only the
    fields the type makes public. No sign-in; rate limited per client address (429 with Retry-After)."""
    found = service.check_public(
        db,
        token=token,
        client=request.client.host if request.client else "unknown",
        per_minute=request.app.state.settings.public_verification_per_minute,
    )
    return PublicCheckRead.of(found)


@router.post(
    "/fetch", response_model=CertificateRead, tags=["certhub verification"], summary="一证通办: fetch a holder's certificate"
)
def fetch(body: FetchRequest, db: DbSession, who: VerifierCaller) -> Any:
    """With the holder's authorisation (or as the issuer) and a useCause (申请事由, ≤ 200 characters)."""
    try:
        certificate = service.fetch_for_department(
            db, who=who, holder_code=body.holder_code, type_code=body.type_code, use_cause=body.use_cause
        )
    except Forbidden as exc:
        # The refusal is recorded too, in a transaction of its own.
        denied = partial(
            service.record_denied_fetch,
            who=who,
            holder_code=body.holder_code,
            type_code=body.type_code,
            use_cause=body.use_cause,
            reason=exc.detail,
        )
        audit.record_refusal(db, denied)
        raise
    return CertificateRead.of(certificate)


# ---- status lists, keys, trust ------------------------------------------------------------------------


@router.get("/status-lists/{purpose}", tags=["certhub trust"], summary="Bitstring status list (revocation / suspension)")
def status_list(purpose: str, request: Request, db: DbSession) -> Response:
    """The signed BitstringStatusListCredential (application/vc+jwt); reflects a change within seconds."""
    state = request.app.state
    token = service.status_list_jwt(db, purpose=purpose, vault=state.vault, settings=state.settings)
    return PlainTextResponse(
        token, media_type="application/vc+jwt", headers={"Cache-Control": f"public, max-age={int(service.STATUS_CACHE_SECONDS)}"}
    )


@router.get("/.well-known/issuer", tags=["certhub trust"], summary="This hub's issuer metadata")
def issuer_metadata(request: Request, db: DbSession) -> dict[str, Any]:
    return service.issuer_metadata(db, settings=request.app.state.settings)


@router.get(
    "/.well-known/jwks.json", tags=["certhub trust"], summary="Keys of this hub and its issuing departments", name="certhub_jwks"
)
def jwks(request: Request, db: DbSession, response: Response) -> dict[str, Any]:
    service.hub_signer(db, vault=request.app.state.vault)
    response.headers["Cache-Control"] = "public, max-age=60"
    return service.hub_jwks(db)


@router.get("/trust-bundle", tags=["certhub trust"], summary="The trust list for offline verification")
def trust_bundle(request: Request, db: DbSession, who: AnyCaller) -> dict[str, Any]:
    return service.trust_bundle(db, settings=request.app.state.settings)


@router.get("/trusted-hubs", response_model=Page[TrustedHubRead], tags=["certhub trust"])
def list_trusted_hubs(db: DbSession, who: PlatformAdmin) -> Any:
    """The hubs this hub trusts: a short list, one page."""
    return whole_page([TrustedHubRead.model_validate(h) for h in repository.trusted_hubs(db)])


@router.post("/trusted-hubs", status_code=201, response_model=TrustedHubRead, tags=["certhub trust"])
def add_trusted_hub(body: TrustedHubCreate, db: DbSession, who: PlatformAdmin) -> Any:
    """Trust another region's hub: its issuer URL, keys (or key URL) and status list URLs."""
    return service.add_trusted_hub(db, who=who, data=body)


@router.patch("/trusted-hubs/{hub_id}", response_model=TrustedHubRead, tags=["certhub trust"])
def update_trusted_hub(
    hub_id: str, body: TrustedHubUpdate, db: DbSession, who: PlatformAdmin, if_match: Annotated[str | None, Header()] = None
) -> Any:
    return service.update_trusted_hub(db, who=who, hub_id=hub_id, data=body, if_match=if_match)


@router.delete("/trusted-hubs/{hub_id}", status_code=204, tags=["certhub trust"])
def remove_trusted_hub(hub_id: str, db: DbSession, who: PlatformAdmin) -> Response:
    service.remove_trusted_hub(db, who=who, hub_id=hub_id)
    return Response(status_code=204)


# ---- service items (政务服务事项), their public lists, prefill and 一证通办 in one step ------------------------

ServiceEditor = Annotated[Principal, Depends(require_roles(*service.SERVICE_EDITOR_ROLES))]
LIST_MEDIA = {"json": "application/json", "csv": "text/csv; charset=utf-8"}


@router.get("/services", response_model=Page[ServiceRead], tags=["certhub services"])
def list_services(db: DbSession, who: ServiceEditor) -> Any:
    """The services you may edit (the platform: all; a department: its own), each at its latest version."""
    return whole_page(service.editable_service_list(db, who=who))


@router.post("/services", status_code=201, response_model=ServiceRead, tags=["certhub services"])
def register_service(body: ServiceCreate, db: DbSession, who: ServiceEditor, response: Response) -> Any:
    """Register a service item (事项) with its materials and form fields: version 1, a draft."""
    row = service.register_service(db, who=who, data=body)
    response.headers["ETag"] = etag(row.version)
    return service.get_service(db, code=row.code, number=row.number, who=who)


@router.get("/services/{code}", response_model=ServiceRead, tags=["certhub services"])
def get_service(code: str, db: DbSession, who: AnyCaller) -> Any:
    """A service's current published version."""
    return service.get_service(db, code=code, who=who)


@router.get("/services/{code}/versions", response_model=Page[ServiceRead], tags=["certhub services"])
def service_versions(code: str, db: DbSession, who: AnyCaller) -> Any:
    """Every version you may read (published and replaced ones; drafts for their editors), oldest first."""
    return whole_page(service.service_history(db, code=code, who=who))


@router.get("/services/{code}/versions/{number}", response_model=ServiceRead, tags=["certhub services"])
def service_version(code: str, number: int, db: DbSession, who: AnyCaller, response: Response) -> Any:
    read = service.get_service(db, code=code, number=number, who=who)
    response.headers["ETag"] = etag(read.version)
    return read


@router.post("/services/{code}/versions", status_code=201, response_model=ServiceRead, tags=["certhub services"])
def new_service_version(code: str, body: ServiceUpdate, db: DbSession, who: ServiceEditor, response: Response) -> Any:
    """Edit a service: a new version, a draft, until it is published."""
    row = service.new_version(db, who=who, code=code, data=body)
    response.headers["ETag"] = etag(row.version)
    return service.get_service(db, code=row.code, number=row.number, who=who)


@router.put("/services/{code}/versions/{number}", response_model=ServiceRead, tags=["certhub services"])
def edit_service_draft(
    code: str,
    number: int,
    body: ServiceUpdate,
    db: DbSession,
    who: ServiceEditor,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """Change a draft version (a published one cannot change: 409)."""
    row = service.edit_draft(db, who=who, code=code, number=number, data=body, if_match=if_match)
    response.headers["ETag"] = etag(row.version)
    return service.get_service(db, code=row.code, number=row.number, who=who)


@router.post("/services/{code}/versions/{number}/publish", response_model=ServiceRead, tags=["certhub services"])
def publish_service(code: str, number: int, db: DbSession, who: ServiceEditor) -> Any:
    """Publish a draft: it becomes the current version; the one it replaces stays readable."""
    row = service.publish_service(db, who=who, code=code, number=number)
    return service.get_service(db, code=row.code, number=row.number, who=who)


@router.get(
    "/service-lists/{name}",
    tags=["certhub services"],
    summary="The published lists: 两个免于提交 (exempt-materials), 一证通办 (one-id-card), 一照通办 (one-licence)",
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}, 304: {"description": "not modified"}},
)
def service_list(
    name: str,
    db: DbSession,
    format: Annotated[Literal["json", "csv"], Query(description="json or csv (formula-safe)")] = "json",
    if_none_match: Annotated[str | None, Header()] = None,
    if_modified_since: Annotated[str | None, Header()] = None,
) -> Response:
    """Public, no sign-in: built from the current published versions; ETag and Last-Modified for caches."""
    found = service.public_list(db, name=name)
    tag = f'"{format}-{found.etag.strip(chr(34))}"'
    headers = {"ETag": tag, "Cache-Control": "public, max-age=60"}
    if found.last_modified is not None:
        headers["Last-Modified"] = format_datetime(found.last_modified.astimezone(UTC), usegmt=True)
    if _not_modified(tag, found.last_modified, if_none_match=if_none_match, if_modified_since=if_modified_since):
        return Response(status_code=304, headers=headers)
    if format == "csv":
        disposition = f"attachment; filename=\"{name}.csv\"; filename*=UTF-8''{quote(found.title)}.csv"
        return Response(found.csv(), media_type=LIST_MEDIA["csv"], headers={**headers, "Content-Disposition": disposition})
    body = {"name": found.name, "title": found.title, "columns": found.columns, "items": found.rows}
    return Response(json.dumps(body, ensure_ascii=False), media_type=LIST_MEDIA["json"], headers=headers)


def _not_modified(tag: str, changed: datetime | None, *, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110 §13.1: If-None-Match decides when present; else If-Modified-Since against Last-Modified."""
    if if_none_match is not None:
        return any(t.strip() in (tag, f"W/{tag}", "*") for t in if_none_match.split(","))
    if if_modified_since and changed is not None:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError):
            return False
        return since.tzinfo is not None and changed.replace(microsecond=0) <= since
    return False


@router.post("/prefill", response_model=PrefillRead, tags=["certhub services"], summary="Prefill a service's form (免证办)")
def prefill(body: PrefillRequest, request: Request, db: DbSession, who: VerifierCaller) -> Any:
    """The form's values from the holder's authorised certificates and your granted data, each naming its source,
    and the materials still missing. Every value read is in the holder's access list; no authorisation: 403, recorded."""
    done = service.prefill(db, who=who, settings=request.app.state.settings, data=body)
    return PrefillRead(
        service_code=done.service.code,
        service_version=done.service.number,
        holder_code=done.holder_code,
        values=done.values,
        missing=done.missing,
        authorised_by=done.authorised_by,
    )


@router.post(
    "/service-fetch",
    response_model=ServiceCertificatesRead,
    tags=["certhub services"],
    summary="一证通办 in one step: every certificate a service needs",
)
def service_fetch(body: PrefillRequest, request: Request, db: DbSession, who: VerifierCaller) -> Any:
    """With one authorisation for the service (or the holder's ID card or business licence presented at the
    window): every certificate the service requires that the holder has, each fetch recorded."""
    found, certificates = service.service_certificates(db, who=who, settings=request.app.state.settings, data=body)
    return ServiceCertificatesRead(
        service_code=found.service.code,
        service_version=found.service.number,
        holder_code=found.holder_code,
        certificates=[CertificateRead.of(c) for c in certificates],
        missing=found.missing,
        authorised_by=found.authorised_by,
    )


@router.post(
    "/me/services/{code}/authorisations", status_code=201, response_model=Page[AuthorisationRead], tags=["certhub holder"]
)
def authorise_service(
    code: str, body: ServiceAuthorisationCreate, db: DbSession, who: Holder, on_behalf_of: OnBehalfOf = None
) -> Any:
    """One authorisation for a service: the department may use every certificate type the service requires."""
    rows = service.authorise_service(db, who=who, service_code=code, data=body, on_behalf_of=on_behalf_of)
    return whole_page([AuthorisationRead.model_validate(r) for r in rows])
