"""Console pages of the service items (政务服务事项): the platform's catalogue of services and the public lists,
and the window's prefill (免证办) with the material checklist.

Platform (and the staff of the department that owns a service): list, register, edit (a new version),
publish; the published lists 两个免于提交, 一证通办, 一照通办. Window: a holder's form filled from their
authorised certificates and the department's granted data, and what is still to be submitted.
Thin: every rule is in ``certhub.service``.
"""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from certhub import service as certhub
from certhub.service import PrefillRequest, ServiceAuthorisationCreate, ServiceCreate, ServiceUpdate
from govhub.console.pages import ConsolePage, Page, PostedPage, console_router, errors_of, nav
from ops.auth import Principal, Role
from ops.db import DbSession
from ops.errors import Forbidden, HubError, NotFound

router = console_router()
SHANGHAI = ZoneInfo("Asia/Shanghai")
STATE_NAMES = {"draft": "草稿", "published": "已发布", "superseded": "已被新版本替代"}
HOLDER_KINDS = {"person": "自然人", "enterprise": "法人"}
SOURCE_NAMES = {"certificate": "电子证照", "data": "共享数据"}
EXAMPLE_MATERIALS = [
    {"key": "id_card", "name": "居民身份证", "kind": "certificate", "type_code": "11100000000019713D001"},
    {"key": "photo", "name": "近期免冠照片", "kind": "submit"},
]
EXAMPLE_FIELDS = [{"name": "applicant_name", "label": "申请人姓名", "material": "id_card", "field": "name"}]


def _editor(page: Page) -> None:
    if not certhub.may_edit_services(page.principal):
        raise Forbidden("事项管理需要平台管理员或事项所属部门的管理员 (services are edited by the platform or their department)")


def _render(page: Page, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("errors", {})
    context.setdefault("values", {})
    return page.render(
        template,
        status=status,
        state_names=STATE_NAMES,
        holder_kinds=HOLDER_KINDS,
        kind_names=certhub.KIND_NAMES,
        missing_reasons=certhub.MISSING_REASONS,
        source_names=SOURCE_NAMES,
        lists=certhub.LISTS,
        **context,
    )


def _json_field(data: dict[str, str], name: str) -> tuple[Any, dict[str, str]]:
    try:
        value = json.loads(data.get(name) or "[]")
    except json.JSONDecodeError as exc:
        return None, {name: f"不是有效的 JSON：第 {exc.lineno} 行第 {exc.colno} 列 ({exc.msg})"}
    return value, {}


def _definition(data: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """The form's definition fields, with JSON parse errors at their field."""
    materials, errors = _json_field(data, "materials")
    form_fields, more = _json_field(data, "form_fields")
    body = {"name": data.get("name", ""), "holder_kind": data.get("holder_kind", "person")}
    body.update({"materials": materials, "form_fields": form_fields})
    return body, {**errors, **more}


def _pretty(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def _values_of(read: Any) -> dict[str, str]:
    return {
        "code": read.code,
        "name": read.name,
        "department_code": read.department_code,
        "holder_kind": read.holder_kind,
        "materials": _pretty([m.model_dump(exclude_none=True, exclude={"resource_name"}) for m in read.materials]),
        "form_fields": _pretty([f.model_dump(exclude_none=True) for f in read.form_fields]),
    }


# ---- platform: the services, their versions, the public lists -------------------------------------------------


@router.get("/services", response_class=HTMLResponse)
def services(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _editor(page)
    return _render(page, "services/services.html", services=certhub.editable_service_list(db, who=page.principal))


def _edit_page(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault(
        "values", {"holder_kind": "person", "materials": _pretty(EXAMPLE_MATERIALS), "form_fields": _pretty(EXAMPLE_FIELDS)}
    )
    types = certhub.list_types(db, include_inactive=False)
    return _render(
        page, "services/edit.html", status=status, types=types, departments=certhub.department_directory(db), **context
    )


@router.get("/services/new", response_class=HTMLResponse)
def new_service_form(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _editor(page)
    return _edit_page(page, db)


@router.post("/services/new", response_class=HTMLResponse, response_model=None)
def new_service(page: PostedPage, db: DbSession) -> HTMLResponse | RedirectResponse:
    _editor(page)
    data = page.form()
    values = {k: data.get(k, "") for k in ("code", "name", "department_code", "holder_kind", "materials", "form_fields")}
    body, errors = _definition(data)
    if errors:
        return _edit_page(page, db, status=422, error="请更正标出的字段", errors=errors, values=values)
    try:
        row = certhub.register_service(
            db,
            who=page.principal,
            data=ServiceCreate.model_validate(
                {**body, "code": data.get("code", ""), "department_code": data.get("department_code", "")}
            ),
        )
    except (HubError, ValidationError) as exc:
        db.rollback()
        message, errors = errors_of(exc)
        return _edit_page(page, db, status=getattr(exc, "status", 422), error=message, errors=errors, values=values)
    return RedirectResponse(f"/console/services/{row.code}", status_code=303)


@router.get("/services/lists", response_class=HTMLResponse)
def public_lists(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _editor(page)
    found = [certhub.public_list(db, name=name) for name in certhub.LISTS]
    return _render(page, "services/lists.html", found=found)


@router.get("/services/{code}", response_class=HTMLResponse)
def service_page(code: str, page: ConsolePage, db: DbSession) -> HTMLResponse:
    _editor(page)
    versions = certhub.service_history(db, code=code, who=page.principal)
    latest = versions[-1]
    return _render(page, "services/service.html", versions=versions, latest=latest, values=_values_of(latest))


@router.post("/services/{code}/versions/{number}/publish", response_class=HTMLResponse, response_model=None)
def publish(code: str, number: int, page: PostedPage, db: DbSession) -> HTMLResponse | RedirectResponse:
    _editor(page)
    page.form()
    try:
        certhub.publish_service(db, who=page.principal, code=code, number=number)
    except HubError as exc:
        db.rollback()
        versions = certhub.service_history(db, code=code, who=page.principal)
        return _render(
            page, "services/service.html", status=exc.status, error=exc.detail, versions=versions, latest=versions[-1],
            values=_values_of(versions[-1]),
        )  # fmt: skip
    return RedirectResponse(f"/console/services/{code}", status_code=303)


@router.post("/services/{code}/versions", response_class=HTMLResponse, response_model=None)
def save_version(code: str, page: PostedPage, db: DbSession) -> HTMLResponse | RedirectResponse:
    """A new version from the form; or, when the latest version is a draft, the draft changed."""
    _editor(page)
    data = page.form()
    versions = certhub.service_history(db, code=code, who=page.principal)
    latest = versions[-1]
    posted: dict[str, str] = {k: data[k] for k in ("name", "holder_kind", "materials", "form_fields") if k in data}
    values = {**_values_of(latest), **posted}
    body, errors = _definition(data)
    if errors:
        return _render(
            page, "services/service.html", status=422, error="请更正标出的字段", errors=errors, versions=versions, latest=latest,
            values=values,
        )  # fmt: skip
    try:
        update = ServiceUpdate.model_validate(body)
        if latest.state == "draft":
            certhub.edit_draft(
                db, who=page.principal, code=code, number=latest.number, data=update, if_match=data.get("version") or None
            )
        else:
            certhub.new_version(db, who=page.principal, code=code, data=update)
    except (HubError, ValidationError) as exc:
        db.rollback()
        message, errors = errors_of(exc)
        return _render(
            page, "services/service.html", status=getattr(exc, "status", 422), error=message, errors=errors, versions=versions,
            latest=latest, values=values,
        )  # fmt: skip
    return RedirectResponse(f"/console/services/{code}", status_code=303)


# ---- window: prefill with the material checklist (免证办) -----------------------------------------------------


def _window(page: Page) -> None:
    if not certhub.acts_as_verifier(page.principal):
        raise Forbidden("预填表单需要窗口或部门人员 (prefill is for windows and department staff)")


def _prefill_page(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    return _render(page, "services/prefill.html", status=status, services=certhub.published_service_choices(db), **context)


@router.get("/window/prefill", response_class=HTMLResponse)
def prefill_form(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _window(page)
    return _prefill_page(page, db)


@router.post("/window/prefill", response_class=HTMLResponse)
def prefill(page: PostedPage, db: DbSession) -> HTMLResponse:
    """预填 (the form's values and the checklist) or, with the other button, 一证通办 in one step (every
    certificate the service needs); either with the holder's authorisation or their ID card shown at the window."""
    _window(page)
    data = page.form()
    values = {k: data.get(k, "") for k in ("holder_code", "service_code", "use_cause", "presentation")}
    one_step = data.get("action") == "fetch"
    try:
        body = PrefillRequest.model_validate({**values, "presentation": values["presentation"].strip() or None})
        ask = {"who": page.principal, "settings": page.request.app.state.settings, "data": body}
        if one_step:
            found, certificates = certhub.service_certificates(db, **ask)
            done: Any = None
            missing_list = found.missing
        else:
            done = certhub.prefill(db, **ask)
            certificates, missing_list = [], done.missing
        service = certhub.get_service(db, code=body.service_code)
    except Forbidden as exc:  # recorded by the service, as a refused fetch is
        if values["presentation"].strip():
            errors = {"presentation": f"亮证码未被接受：{exc.detail}"}
        else:
            errors = {"holder_code": "无授权：持证人没有授权本部门使用该事项所需的证照，或授权已过期、已撤回"}
        values["presentation"] = ""  # a presentation is used once: the next scan goes in an empty box
        return _prefill_page(page, db, status=403, errors=errors, values=values, denied=exc.detail)
    except (HubError, ValidationError) as exc:
        db.rollback()
        message, errors = errors_of(exc)
        status = 404 if isinstance(exc, NotFound) else getattr(exc, "status", 422)
        if isinstance(exc, NotFound):
            errors = {"service_code": "没有该事项，或该事项尚未发布"}
        return _prefill_page(page, db, status=status, error=message, errors=errors, values=values)
    missing = {m.key: m.reason for m in missing_list}
    checklist = [(m, missing.get(m.key)) for m in service.materials]
    values["presentation"] = ""
    fetched = [(c, certhub.field_labels(db, type_code=c.type_code)) for c in certificates]
    return _prefill_page(
        page, db, values=values, done=done, one_step=one_step, fetched=fetched, service=service, checklist=checklist
    )


# ---- holder: one authorisation for a whole service (一次授权，一证通办) -------------------------------------


def _holder(page: Page) -> None:
    page.require(Role.HOLDER)


def _last_day(text: str) -> datetime | str:
    """A date typed in the form is the last day: the authorisation ends at 24:00 of it, Beijing time."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return text  # left to the schema, which says what is wrong
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=SHANGHAI)


def _service_authorisation_page(page: Page, db: Session, status: int = 200, **context: Any) -> HTMLResponse:
    return _render(
        page,
        "services/authorise.html",
        status=status,
        services=certhub.published_service_choices(db),
        departments=certhub.department_directory(db),
        **context,
    )


@router.get("/me/services", response_class=HTMLResponse)
def service_authorisation_form(page: ConsolePage, db: DbSession) -> HTMLResponse:
    _holder(page)
    return _service_authorisation_page(page, db)


@router.post("/me/services", response_class=HTMLResponse)
def authorise_service(page: PostedPage, db: DbSession) -> HTMLResponse:
    """One authorisation: the department may use every certificate the chosen service requires."""
    _holder(page)
    data = page.form()
    values = {k: data.get(k, "").strip() for k in ("service_code", "department_code", "purpose", "valid_until")}
    values["department_code"] = values["department_code"].upper()
    body = {k: values[k] for k in ("department_code", "purpose")}
    try:
        ask = ServiceAuthorisationCreate.model_validate({**body, "expires_at": _last_day(values["valid_until"])})
        granted = certhub.authorise_service(db, who=page.principal, service_code=values["service_code"], data=ask)
    except (HubError, ValidationError) as exc:
        db.rollback()
        message, errors = errors_of(exc)
        if "expires_at" in errors:  # the API's name of the form's 授权截止日期
            errors["valid_until"] = errors.pop("expires_at")
        if isinstance(exc, NotFound):
            errors = {"service_code": "没有该事项，或该事项尚未发布"}
        status = getattr(exc, "status", 422)
        return _service_authorisation_page(page, db, status=status, error=message, errors=errors, values=values)
    department = dict(certhub.department_directory(db)).get(values["department_code"], values["department_code"])
    types = {t.code: t.name for t in certhub.list_types(db, include_inactive=True)}
    names = "、".join(types.get(a.type_code, a.type_code) for a in granted)
    notice = f"已授权：{department}办理该事项时可以调取您的{names}（{len(granted)} 项授权，可在“授权用证”中逐项撤回）"
    return _service_authorisation_page(page, db, notice=notice, values={})


def _editor_nav(p: Principal) -> bool:
    return certhub.may_edit_services(p)


for _href, _label, _allowed in (
    ("/console/window/prefill", "预填表单", certhub.acts_as_verifier),
    ("/console/services", "政务服务事项", _editor_nav),
    ("/console/services/lists", "免证办清单", _editor_nav),
    ("/console/me/services", "授权办理事项", lambda p: p.has(Role.HOLDER)),
):
    nav(_href, _label, _allowed)
