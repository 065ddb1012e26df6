"""Console pages of the certificate hub: the window clerk's verification and the holder's own certificates.

Window (窗口, and department staff who may verify): verify a presentation scanned or pasted at the counter,
fetch a holder's certificate with their authorisation (一证通办), verify a sealed PDF or OFD.
Holder (持证人): my certificates, 亮证 as a QR code, 授权用证, and who used my certificates and my data.
Thin: every rule is in ``certhub.service``, ``seal.service`` and ``exchange.service``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from certhub import service as certhub
from certhub.service import AuthorisationCreate, Certificate, DownloadQuery, FetchRequest, ShowRequest, VerifyRequest
from exchange import service as exchange
from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, errors_of, nav, templates
from govhub.console.qr import MAX_BYTES, TooLong, qr_svg
from ops import audit
from ops.auth import Principal, Role
from ops.db import DbSession
from ops.errors import Forbidden, HubError, Invalid, PayloadTooLarge
from seal import service as seal

router = console_router()
SHANGHAI = ZoneInfo("Asia/Shanghai")
VERIFIERS = certhub.VERIFIER_ROLES  # as POST /certhub/verifications
PAGE_SIZE = 50

# Why a presentation was accepted or refused, in the words a window clerk reads (codes: docs/certhub.md).
REASONS = {
    "valid": "证照真实、在有效期内、状态正常",
    "malformed": "无法识别：不是亮证二维码，或内容不完整、被改动",
    "untrusted_issuer": "签发方不在信任列表中（不是本枢纽或互认枢纽签发的证照）",
    "bad_signature": "签名验证失败：内容已被篡改",
    "not_yet_valid": "证照尚未生效",
    "expired": "证照已过有效期",
    "wrong_audience": "该亮证码是出示给其他部门的，不是本部门",
    "nonce_mismatch": "亮证码与本窗口给出的随机码不一致",
    "presentation_expired": "亮证码已过期，请持证人重新亮证",
    "replayed": "该亮证码已使用过（重放），请持证人重新亮证",
    "revoked": "已注销",
    "suspended": "已暂停使用（异议处理中）",
    "superseded": "已变更，请持证人出示最新版本",
    "unknown_certificate": "本枢纽证照库中没有该证照",
    "status_unavailable": "暂时无法确认证照状态",
}
OUTCOMES = {"valid": "有效", "invalid": "无效", "indeterminate": "无法确定"}
UNREADABLE = frozenset({"malformed", "bad_signature"})  # the pasted text itself is wrong: say so at the field
STATUS_NAMES = {"active": "有效", "suspended": "已暂停", "superseded": "已变更", "revoked": "已注销"}
ACTION_NAMES = {"verify": "核验", "fetch": "调取", "download": "下载", "view": "查看", "prefill": "预填表单"}
CHECK_NAMES = {
    "document_integrity": "文档完整性",
    "signature": "签名",
    "seal_structure": "印章结构",
    "chain": "证书链",
    "seal_valid_at_signing": "盖章时印章有效",
    "seal_status_now": "印章当前状态",
    "timestamp": "时间戳",
    "references": "受保护文件摘要",
    "signature_xml": "签名描述文件（Signature.xml）",
    "seal_period": "印章有效期",
    "seal_file": "印章文件",
    "revocation": "嵌入的吊销信息",
    "long_term": "长期验证",
}
CHECK_STATUS = {"passed": "通过", "failed": "未通过", "indeterminate": "无法确定", "warning": "警告", "not_applicable": "不适用"}
TTL_CHOICES = (60, 120, 300, 600)
# What a seal check found, in Chinese, by check and outcome: the seal domain's own messages are English
# (they are the API's); the page names the times itself, in Beijing time.
CHECK_FINDINGS: dict[tuple[str, str], str] = {
    ("document_integrity", "passed"): "盖章后文档未被改动（后来追加的签章除外）",
    ("document_integrity", "failed"): "盖章后文档被改动过",
    ("signature", "passed"): "签名值验证通过",
    ("signature", "failed"): "签名值验证失败：签名或所签内容被改动",
    ("seal_structure", "passed"): "印章结构完整，制章者可信",
    ("seal_structure", "failed"): "印章结构无效或被改动",
    ("seal_structure", "indeterminate"): "制章者不受信任",
    ("chain", "passed"): "证书链可追溯到受信任的根证书",
    ("chain", "failed"): "签章证书缺失，或签署时不在有效期内",
    ("chain", "indeterminate"): "无法建立到受信任根证书的证书链",
    ("seal_valid_at_signing", "passed"): "盖章时印章有效",
    ("seal_valid_at_signing", "failed"): "盖章时印章已失效（暂停、注销或过期）",
    ("seal_valid_at_signing", "indeterminate"): "印章未在本平台登记，其证书也不受信任",
    ("seal_status_now", "passed"): "印章当前有效",
    ("seal_status_now", "failed"): "印章在盖章前已注销",
    ("seal_status_now", "warning"): "印章现已暂停、注销或过期，但签章早于该变更",
    ("seal_status_now", "indeterminate"): "无法确认印章当前状态（其他平台的印章，或无法证明签章早于注销）",
    ("timestamp", "passed"): "时间戳或本平台的用印记录证明签章当时已存在",
    ("timestamp", "failed"): "时间戳无法验证或不受信任",
    ("timestamp", "not_applicable"): "无时间戳，签署时间为签署者自报",
    ("references", "passed"): "签章保护的每个文件的摘要均一致，签署后未被改动",
    ("references", "failed"): "有受保护的文件在签署后被改动、缺失，或校验方法不受支持",
    ("signature_xml", "passed"): "签名描述文件与签章签名所签内容一致",
    ("signature_xml", "failed"): "签名描述文件缺失、无法读取，或在签署后被改动",
    ("seal_period", "passed"): "签署时间在印章有效期内",
    ("seal_period", "failed"): "签署时间不在印章有效期内",
    ("seal_period", "indeterminate"): "无法读取签署时间",
    ("seal_file", "passed"): "签章旁的印章文件与签章中的印章一致",
    ("seal_file", "failed"): "签章旁的印章文件缺失，或与签章中的印章不一致",
    ("seal_file", "not_applicable"): "未单独存放印章文件，以签章中的印章为准",
    ("revocation", "passed"): "文档内嵌的吊销列表表明签署时证书未被吊销",
    ("revocation", "failed"): "文档内嵌的吊销列表表明签署前证书已被吊销",
    ("revocation", "not_applicable"): "文档未嵌入吊销信息，以本平台的印章记录为准",
    ("long_term", "passed"): "现有证据（签名、时间戳、吊销信息、文档时间戳链）足以支持结论",
    ("long_term", "failed"): "长期验证证据表明签章无效",
    ("long_term", "indeterminate"): "证书过期后缺少证明签章当时已存在的有效证据（时间戳链中断）",
}
# What was wrong with one signed file of an OFD, by the seal domain's finding.
REFERENCE_PROBLEMS = {
    "the file is missing": "文件缺失",
    "names a path outside the package": "路径超出文件包",
    "its CheckValue is not base64": "校验值格式错误",
}
# Why a file could not be verified at all, by the field error the seal domain gives.
PDF_PROBLEMS = {"not a PDF": "不是 PDF 文件", "no signature": "PDF 中没有可验证的签章"}


# Why an uploaded file could not be verified as an OFD, by what the seal domain's reason says.
OFD_PROBLEMS = (
    ("no signature", "OFD 中没有可验证的签章"),
    ("zip bomb", "压缩比异常（疑似压缩炸弹），已拒绝"),
    ("entry name", "文件包中有不安全的路径（绝对路径、“..” 或反斜杠），已拒绝"),
    ("DTD or entities", "XML 中含有 DTD 或实体声明，已拒绝"),
    ("not a readable OFD package", "不是 OFD 文件（无法作为 ZIP 文件包读取）"),
    ("no OFD.xml", "不是 OFD 文件（缺少 OFD.xml）"),
    ("cannot be read", "文件包损坏或被截断"),
    ("entries", "文件包中的文件过多，已拒绝"),
    ("unpacks to", "解压后过大，已拒绝"),
    ("not well-formed XML", "XML 格式错误"),
)


def _ofd_problem(exc: HubError) -> str:
    said = str(exc.errors[0].get("message", "")) if exc.errors else exc.detail
    if not said.isascii():
        return said
    return next((chinese for key, chinese in OFD_PROBLEMS if key in said), "文件无法读取或验证")


def reference_problem(message: str) -> str:
    if "digest differs" in message:
        return "摘要不一致（签署后被改动）"
    return REFERENCE_PROBLEMS.get(message, "无法读取")


def _pdf_problem(exc: HubError) -> str:
    """Why a file could not be verified, in Chinese (the page's own reasons are; the seal domain's are English)."""
    said = str(exc.errors[0].get("message", "")) if exc.errors else exc.detail
    said = PDF_PROBLEMS.get(said, said)
    return "文件无法读取或验证" if said.isascii() else said


def check_finding(name: str, status: str) -> str:
    return CHECK_FINDINGS.get((name, status), f"{CHECK_NAMES.get(name, name)}：{CHECK_STATUS.get(status, status)}")


def _beijing(value: datetime | None) -> str:
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _until_beijing(value: datetime | None) -> str:
    """The end of a period: midnight is written as 24:00 of the day before (the day still counts)."""
    if value is None:
        return ""
    local = value.astimezone(SHANGHAI)
    if local.time() == time(0):
        return f"{(local - timedelta(days=1)):%Y-%m-%d} 24:00"
    return f"{local:%Y-%m-%d %H:%M}"


templates.env.filters["beijing"] = _beijing
templates.env.filters["until_beijing"] = _until_beijing
templates.env.globals.update(
    cert_status_names=STATUS_NAMES,
    cert_action_names=ACTION_NAMES,
    check_names=CHECK_NAMES,
    check_status=CHECK_STATUS,
    check_finding=check_finding,
    reference_problem=reference_problem,
    outcomes=OUTCOMES,
)


def _require_verifier(page: Page) -> None:
    page.require(*VERIFIERS)
    if page.principal.department_id is None:
        raise Forbidden("核验证照需要所属部门 (a verifier must belong to a department)")


def _failed(db: Session, exc: HubError | ValidationError) -> tuple[str, dict[str, str]]:
    """Undo whatever the refused action wrote, and say why next to the fields."""
    db.rollback()
    return errors_of(exc)


# ---- window: verify a presentation (亮证核验) ----------------------------------------------------------------


def _window_page(page: Page, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    if template == "certhub/verify.html" and certhub.acts_as_verifier(page.principal):
        # The window's nonce for a short 亮证码: the holder binds the code to it, the window redeems with it.
        context.setdefault("window_nonce", certhub.new_nonce(who=page.principal)[0])
    return page.render(template, status=status, **context)


def _redeem(page: Page, db: Session, code: str, nonce: str) -> Any:
    """Redeem a short 亮证码 scanned at the window; a refusal is recorded and said on the page."""
    settings = page.request.app.state.settings
    try:
        return certhub.redeem_short_code(db, who=page.principal, settings=settings, code=code, nonce=nonce)
    except HubError as exc:
        audit.record_refusal(db, partial(certhub.record_refused_redeem, who=page.principal, code=code, reason=exc))
        raise


@router.get("/verify", response_class=HTMLResponse)
def verify_form(page: ConsolePage) -> HTMLResponse:
    _require_verifier(page)
    return _window_page(page, "certhub/verify.html")


@router.post("/verify", response_class=HTMLResponse)
def verify(page: PostedPage, db: DbSession) -> HTMLResponse:
    _require_verifier(page)
    data = page.form()
    token = data.get("token", "").strip()
    values = {"token": token}
    if not token:
        errors = {"token": "请扫描或粘贴持证人出示的二维码内容"}
        return _window_page(page, "certhub/verify.html", status=422, error="没有可核验的内容", errors=errors, values=values)
    try:
        body = VerifyRequest(token=token)
    except ValidationError as exc:
        message, errors = errors_of(exc)
        return _window_page(page, "certhub/verify.html", status=422, error=message, errors=errors, values=values)
    settings = page.request.app.state.settings
    if certhub.is_short_code(token):
        try:
            verdict = _redeem(page, db, token, data.get("nonce", ""))
        except HubError as exc:
            errors = {"token": exc.detail}
            return _window_page(page, "certhub/verify.html", status=exc.status, error=exc.detail, errors=errors, values=values)
    else:
        verdict = certhub.verify(db, who=page.principal, settings=settings, token=body.token, nonce=None)
    # As POST /certhub/verifications: commit here, so the nonce claim's write lock is released at once.
    db.commit()
    outcome = certhub.verdict_outcome(verdict.code)
    type_code = verdict.claims.get("ZZLXDM")
    labels = certhub.field_labels(db, type_code=type_code)
    result = {
        "outcome": outcome,
        "outcome_name": OUTCOMES[outcome],
        "code": verdict.code,
        "reason": REASONS.get(verdict.code, verdict.code),
        "message": verdict.message,
        "claims": verdict.claims,
        "status": verdict.status,
        "identifier": verdict.identifier,
        "issuer_hub": verdict.issuer_hub,
        "disclosed": [(labels.get(name, name), value) for name, value in verdict.disclosed.items()],
    }
    errors = {"token": f"{REASONS[verdict.code]}（{verdict.message}）"} if verdict.code in UNREADABLE else {}
    # The field is emptied after a verdict: the next scan goes straight in.
    return _window_page(page, "certhub/verify.html", status=422 if errors else 200, result=result, errors=errors)


# ---- window: fetch by holder code (一证通办) -----------------------------------------------------------------


def _fetch_page(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    types = certhub.list_types(db, include_inactive=False)
    return _window_page(page, "certhub/fetch.html", status=status, types=types, **context)


def _certificate_view(db: Session, certificate: Certificate) -> dict[str, Any]:
    labels = certhub.field_labels(db, type_code=certificate.type_code)
    order = {name: i for i, name in enumerate(labels)}  # the face in the type's order
    face = sorted(certificate.face.items(), key=lambda item: order.get(item[0], len(order)))
    return {
        "certificate": certificate,
        "name": certificate.meta.get("ZZMC", certificate.type_code),
        "issuer": certificate.meta.get("ZZBFJG", certificate.issuer_code),
        "face": [(labels.get(name, name), value) for name, value in face],
    }


@router.get("/verify/fetch", response_class=HTMLResponse)
def fetch_form(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _require_verifier(page)
    return _fetch_page(page, db)


@router.post("/verify/fetch", response_class=HTMLResponse)
def fetch(page: PostedPage, db: DbSession) -> HTMLResponse:
    _require_verifier(page)
    data = page.form()
    values = {k: data.get(k, "") for k in ("holder_code", "type_code", "use_cause")}
    try:
        body = FetchRequest.model_validate(values)
        certificate = certhub.fetch_for_department(
            db, who=page.principal, holder_code=body.holder_code, type_code=body.type_code, use_cause=body.use_cause
        )
    except Forbidden as exc:
        # As POST /certhub/fetch: the refusal is recorded, on its own.
        denied = partial(
            certhub.record_denied_fetch,
            who=page.principal,
            holder_code=values["holder_code"],
            type_code=values["type_code"],
            use_cause=values["use_cause"],
            reason=exc.detail,
        )
        audit.record_refusal(db, denied)
        errors = {"holder_code": "无授权：持证人没有授权本部门使用该类证照，或授权已过期、已撤回"}
        return _fetch_page(page, db, status=403, errors=errors, values=values, denied=exc.detail)
    except (HubError, ValidationError) as exc:
        message, errors = _failed(db, exc)
        return _fetch_page(page, db, status=getattr(exc, "status", 422), error=message, errors=errors, values=values)
    return _fetch_page(page, db, values=values, fetched=_certificate_view(db, certificate))


def _copy_download(certificate: Certificate, data: bytes, fmt: str) -> Response:
    filename = f"{certificate.serial}-{certificate.cert_version:03d}.{fmt}"
    return Response(
        data, media_type=certhub.COPY_MEDIA_TYPES[fmt], headers={"Content-Disposition": f'attachment; filename="{filename}"'}
    )


@router.get("/verify/fetch/{identifier}/{fmt}", response_model=None)
def fetch_copy(
    identifier: str,
    fmt: Literal["pdf", "ofd"],
    page: ConsolePage,
    db: DbSession,
    use_cause: Annotated[str, Query(max_length=1000)] = "",
) -> Response:
    """The sealed copy (PDF or OFD) of a fetched certificate; recorded with the same use_cause."""
    _require_verifier(page)
    try:
        cause = DownloadQuery(use_cause=use_cause).use_cause
    except ValidationError as exc:
        raise Invalid(errors_of(exc)[1].get("use_cause", "申请事由 (use_cause) is required")) from exc
    storage = page.request.app.state.storage
    certificate, data, chosen = certhub.sealed_copy(
        db, who=page.principal, storage=storage, identifier=identifier, use_cause=cause, fmt=fmt
    )
    return _copy_download(certificate, data, chosen)


# ---- window: verify a sealed PDF ----------------------------------------------------------------------------


@router.get("/verify/pdf", response_class=HTMLResponse)
def pdf_form(page: ConsolePage) -> HTMLResponse:
    page.require(*VERIFIERS, Role.PLATFORM_ADMIN)
    return _window_page(page, "certhub/verify_pdf.html")


@router.post("/verify/pdf", response_class=HTMLResponse)
def verify_pdf(page: PostedPage, db: DbSession) -> HTMLResponse:
    settings = page.request.app.state.settings
    return _verify_upload(
        page, db, kind="pdf", verify=lambda pdf: seal.verify_pdf(db, pdf_bytes=pdf, settings=settings), problem=_pdf_problem
    )


def _verify_upload(
    page: PostedPage, db: Session, *, kind: str, verify: Callable[[bytes], Any], problem: Callable[[HubError], str]
) -> HTMLResponse:
    """A window verifies an uploaded sealed document (`kind`: pdf or ofd): the report, or why the file cannot be
    verified, at the upload field; each verification recorded."""
    page.require(*VERIFIERS, Role.PLATFORM_ADMIN)
    page.form()
    template = f"certhub/verify_{kind}.html"
    upload = page.submitted.get("file")
    limit = page.request.app.state.settings.seal_max_pdf_bytes
    choose = f"请选择要验证的 {kind.upper()} 文件"
    try:
        if upload is None or isinstance(upload, str) or not upload.filename:
            raise Invalid(choose, errors=[{"field": "file", "message": choose}])
        document = upload.file.read(limit + 1)
        if len(document) > limit:
            raise PayloadTooLarge(f"文件超过 {limit} 字节", errors=[{"field": "file", "message": f"文件超过 {limit} 字节"}])
        report = verify(document)
    except HubError as exc:
        _failed(db, exc)
        message = problem(exc)
        errors = {"file": f"无法验证此文件：{message}"}
        return _window_page(page, template, status=exc.status, error=message, errors=errors)
    seal.record_verification(
        db, who=page.principal, kind=kind, verdict=report.verdict, document_hash=hashlib.sha256(document).hexdigest()
    )
    return _window_page(page, template, report=report, outcome_name=OUTCOMES[report.verdict], filename=upload.filename)


# ---- window: verify a sealed OFD ----------------------------------------------------------------------------


@router.get("/verify/ofd", response_class=HTMLResponse)
def ofd_form(page: ConsolePage) -> HTMLResponse:
    page.require(*VERIFIERS, Role.PLATFORM_ADMIN)
    return _window_page(page, "certhub/verify_ofd.html")


@router.post("/verify/ofd", response_class=HTMLResponse)
def verify_ofd(page: PostedPage, db: DbSession) -> HTMLResponse:
    settings = page.request.app.state.settings
    return _verify_upload(
        page, db, kind="ofd", verify=lambda ofd: seal.verify_ofd(db, ofd_bytes=ofd, settings=settings), problem=_ofd_problem
    )


# ---- holder: my certificates and 亮证 ---------------------------------------------------------------------


def _holder(page: Page) -> str:
    page.require(Role.HOLDER)
    assert page.principal.holder_code is not None
    return page.principal.holder_code


@router.get("/me/certificates", response_class=HTMLResponse)
def my_certificates(page: ConsolePage, db: DbSession) -> HTMLResponse:
    holder = _holder(page)
    rows = certhub.holder_certificates(db, who=page.principal, holder_code=holder)
    return page.render("certhub/my_certificates.html", certificates=[_certificate_view(db, c) for c in rows])


HOLDER_DOWNLOAD_CAUSE = "持证人下载留存"  # the use a holder's own download is recorded with


@router.get("/me/certificates/{identifier}/copy", response_model=None)
def my_copy(
    identifier: str,
    page: ConsolePage,
    db: DbSession,
    fmt: Annotated[Literal["pdf", "ofd"] | None, Query(alias="format")] = None,
) -> Response:
    """The holder downloads the sealed copy of one of their certificates (OFD or PDF; default: the one it has)."""
    _holder(page)
    storage = page.request.app.state.storage
    certificate, data, chosen = certhub.sealed_copy(
        db, who=page.principal, storage=storage, identifier=identifier, use_cause=HOLDER_DOWNLOAD_CAUSE, fmt=fmt
    )
    return _copy_download(certificate, data, chosen)


def _own_certificate(db: Session, page: Page, identifier: str) -> Certificate:
    _holder(page)
    return certhub.get_certificate(db, who=page.principal, identifier=identifier)


def _show_page(page: Page, db: Session, certificate: Certificate, status: int = 200, **context: Any) -> HTMLResponse:
    labels = certhub.field_labels(db, type_code=certificate.type_code)
    fields = [(name, labels.get(name, name)) for name in certhub.presentable_fields(certificate)]
    context.setdefault("values", {"fields": ["CZZT"], "ttl_seconds": "300"})
    return page.render(
        "certhub/show.html",
        status=status,
        view=_certificate_view(db, certificate),
        fields=fields,
        departments=certhub.department_directory(db),
        ttl_choices=TTL_CHOICES,
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/me/certificates/{identifier}/show", response_class=HTMLResponse)
def show_form(identifier: str, page: ConsolePage, db: DbSession) -> HTMLResponse:
    return _show_page(page, db, _own_certificate(db, page, identifier))


@router.post("/me/certificates/{identifier}/show", response_class=HTMLResponse)
def show(identifier: str, page: PostedPage, db: DbSession) -> HTMLResponse:
    certificate = _own_certificate(db, page, identifier)
    data = page.form()
    chosen = [str(f) for f in page.submitted.getlist("fields")]
    values: dict[str, Any] = {
        "fields": chosen,
        "audience": data.get("audience", "").strip().upper(),
        "ttl_seconds": data.get("ttl_seconds", "300"),
    }
    state = page.request.app.state
    ctx = certhub.IssueContext(vault=state.vault, settings=state.settings, storage=state.storage)
    try:
        if not chosen:
            raise Invalid("请至少选择一项要出示的信息", errors=[{"field": "fields", "message": "请至少选择一项要出示的信息"}])
        if data.get("mode") == "short":
            values["nonce"] = data.get("nonce", "").strip()
            return _short_code(page, db, certificate, ctx, values)
        body = ShowRequest.model_validate(values)
        token, _nonce, expires_at = certhub.show(db, who=page.principal, ctx=ctx, identifier=identifier, data=body)
    except (HubError, ValidationError) as exc:
        message, errors = _failed(db, exc)
        return _show_page(page, db, certificate, status=getattr(exc, "status", 422), error=message, errors=errors, values=values)
    try:
        qr = qr_svg(token, title=f"{certificate.meta.get('ZZMC', '')}亮证二维码")
    except TooLong:
        db.rollback()  # nothing was shown: no trace of a presentation that cannot be displayed
        message = f"所选信息太多，放不进一个二维码（{len(token)} 个字符，最多 {MAX_BYTES} 个）：请少选几项"
        return _show_page(page, db, certificate, status=422, error=message, errors={"fields": message}, values=values)
    names = dict(certhub.department_directory(db))
    presentation = {
        "token": token,
        "qr": qr,
        "expires_at": expires_at,
        "seconds": body.ttl_seconds,
        "audience": body.audience,
        "audience_name": names.get(body.audience, body.audience),
    }
    return _show_page(page, db, certificate, values=values, presentation=presentation)


def _short_code(
    page: Page, db: Session, certificate: Certificate, ctx: certhub.IssueContext, values: dict[str, Any]
) -> HTMLResponse:
    """亮证码: a short code bound to the window's nonce, in a QR code small enough for any scanner."""
    if not values["nonce"]:
        message = "短亮证码要绑定窗口的随机码：请扫描或输入窗口显示的随机码"
        raise Invalid(message, errors=[{"field": "nonce", "message": message}])
    body = ShowRequest.model_validate({**values, "ttl_seconds": ctx.settings.short_code_ttl_seconds})
    made = certhub.make_short_code(db, who=page.principal, ctx=ctx, identifier=certificate.identifier, data=body)
    names = dict(certhub.department_directory(db))
    presentation = {
        "token": made.code,
        "short": True,
        "qr": qr_svg(made.code, title=f"{certificate.meta.get('ZZMC', '')}亮证码"),
        "expires_at": made.expires_at,
        "seconds": ctx.settings.short_code_ttl_seconds,
        "audience": made.audience,
        "audience_name": names.get(made.audience, made.audience),
    }
    return _show_page(page, db, certificate, values=values, presentation=presentation)


# ---- holder: 授权用证 -----------------------------------------------------------------------------------------


def _until(text: str) -> datetime | str:
    """A date typed in the form is the last day: the authorisation ends at 24:00 of it, Beijing time."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return text  # left to the schema, which says what is wrong
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def _authorisations_page(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("values", {})
    return page.render(
        "certhub/authorisations.html",
        status=status,
        authorisations=certhub.holder_authorisations(db, who=page.principal),
        types=certhub.list_types(db, include_inactive=False),
        departments=certhub.department_directory(db),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("/me/authorisations", response_class=HTMLResponse)
def authorisations(page: ConsolePage, db: DbSession, type_code: str = "") -> HTMLResponse:
    _holder(page)
    return _authorisations_page(page, db, values={"type_code": type_code})


@router.post("/me/authorisations", response_class=HTMLResponse)
def authorise(page: PostedPage, db: DbSession) -> HTMLResponse:
    _holder(page)
    data = page.form()
    values = {k: data.get(k, "").strip() for k in ("type_code", "department_code", "purpose", "valid_until")}
    values["department_code"] = values["department_code"].upper()
    try:
        body = AuthorisationCreate.model_validate({**values, "valid_until": _until(values["valid_until"])})
        granted = certhub.authorise(db, who=page.principal, data=body)
    except (HubError, ValidationError) as exc:
        message, errors = _failed(db, exc)
        if "expires_at" in errors:  # the API's name of the form's 授权截止日期
            errors["valid_until"] = errors.pop("expires_at")
        return _authorisations_page(page, db, status=getattr(exc, "status", 422), error=message, errors=errors, values=values)
    department = dict(certhub.department_directory(db)).get(values["department_code"], values["department_code"])
    until = _until_beijing(granted.valid_until)
    notice = f"已授权：{department}在 {until} 前可以调取您的证照，用于“{granted.purpose}”"
    return _authorisations_page(page, db, notice=notice)


@router.post("/me/authorisations/{authorisation_id}/withdraw", response_model=None)
def withdraw(authorisation_id: str, page: PostedPage, db: DbSession) -> Response:
    _holder(page)
    page.form()
    try:
        certhub.revoke_authorisation(db, who=page.principal, authorisation_id=authorisation_id)
    except HubError as exc:
        message, _ = _failed(db, exc)
        return _authorisations_page(page, db, status=exc.status, error=message)
    return RedirectResponse("/console/me/authorisations?withdrawn=1", status_code=303)


# ---- holder: who used my certificates and my data ----------------------------------------------------------


def _paged(request: Request) -> str | None:
    return request.query_params.get("cursor") or None


@router.get("/me/accesses", response_class=HTMLResponse)
def certificate_accesses(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _holder(page)
    rows, next_cursor = certhub.holder_accesses(db, who=page.principal, cursor=_paged(page.request), limit=PAGE_SIZE)
    return page.render("certhub/accesses.html", accesses=rows, next_cursor=next_cursor)


@router.get("/me/data-accesses", response_class=HTMLResponse)
def data_accesses(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _holder(page)
    rows, next_cursor = exchange.accesses_about_holder(db, who=page.principal, cursor=_paged(page.request), limit=PAGE_SIZE)
    return page.render("certhub/data_accesses.html", accesses=rows, next_cursor=next_cursor)


def _holder_nav(p: Principal) -> bool:
    return p.has(Role.HOLDER)


_MENU: tuple[tuple[str, str, Callable[[Principal], bool]], ...] = (
    ("/console/verify", "亮证核验", certhub.acts_as_verifier),
    ("/console/verify/fetch", "一证通办", certhub.acts_as_verifier),
    ("/console/verify/pdf", "验证 PDF", lambda p: p.has(*VERIFIERS, Role.PLATFORM_ADMIN)),
    ("/console/me/certificates", "我的证照", _holder_nav),
    ("/console/me/authorisations", "授权用证", _holder_nav),
    ("/console/me/accesses", "证照使用记录", _holder_nav),
    ("/console/me/data-accesses", "数据使用记录", _holder_nav),
)
for _href, _label, _allowed in _MENU:
    nav(_href, _label, _allowed)
