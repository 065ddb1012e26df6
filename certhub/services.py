"""Service items (政务服务事项) and their required materials; the published public lists.

Each material is satisfied by a certificate type, by an item of a shared data resource, or is submitted
by the applicant. A service is versioned: a new version starts as a draft, is edited, then published;
the version it replaces stays readable. The public lists are built from the published versions:
两个免于提交 (materials the government already holds, seed 000 §16, seed 004 四(二)), 一证通办 and
一照通办 (services an ID card or a business licence alone is enough for, seed 003 §24, seed 004 二(二)2).
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import service as catalogue
from certhub import repository
from certhub.models import MaterialKind, ServiceItem, ServiceMaterial, ServiceState
from certhub.schemas import FormFieldSpec, MaterialRead, MaterialSpec, ServiceCreate, ServiceRead, ServiceUpdate
from ops import audit
from ops.auth import Principal, Role
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.identity import repository as departments
from ops.spreadsheet import write_csv

# Who registers and edits services: the platform, or the staff of the department that owns the service.
SERVICE_EDITOR_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN})
LISTS = {
    "exempt-materials": "两个免于提交",
    "one-id-card": "一证通办",
    "one-licence": "一照通办",
}
KIND_NAMES = {"certificate": "电子证照", "data": "共享数据", "submit": "申请人提交"}


def may_edit_services(who: Principal) -> bool:
    return who.has(*SERVICE_EDITOR_ROLES)


def _definition_problems(db: Session, *, materials: list[MaterialSpec], form_fields: list[FormFieldSpec]) -> list[dict[str, Any]]:
    """What is wrong with a service's materials and form fields, each at its field (empty: nothing)."""
    errors: list[dict[str, Any]] = []
    if not materials:
        errors.append({"field": "materials", "message": "a service requires at least one material"})
    seen: set[str] = set()
    for i, m in enumerate(materials):
        at = f"materials[{i}]"
        if m.key in seen:
            errors.append({"field": f"{at}.key", "message": f"duplicate material key '{m.key}'"})
        seen.add(m.key)
        if m.kind == MaterialKind.CERTIFICATE.value:
            ctype = repository.type_by_code(db, (m.type_code or "").strip().upper()) if m.type_code else None
            if not m.type_code:
                errors.append({"field": f"{at}.type_code", "message": "a certificate material names its certificate type"})
            elif ctype is None:
                errors.append({"field": f"{at}.type_code", "message": f"certificate type {m.type_code} is not in the catalogue"})
            elif not ctype.active:
                errors.append(
                    {"field": f"{at}.type_code", "message": f"certificate type {ctype.code} ({ctype.name}) is inactive"}
                )
        elif m.kind == MaterialKind.DATA.value:
            for name in ("resource_id", "item", "key_item"):
                if not getattr(m, name):
                    errors.append({"field": f"{at}.{name}", "message": f"a data material names its {name}"})
            if m.resource_id and m.item and m.key_item:
                errors += _data_problems(db, m, at)
        elif m.type_code or m.resource_id:
            errors.append({"field": at, "message": "a submitted material names no certificate type or data resource"})
    by_key = {m.key: m for m in materials}
    names: set[str] = set()
    for i, f in enumerate(form_fields):
        at = f"form_fields[{i}]"
        if f.name in names:
            errors.append({"field": f"{at}.name", "message": f"duplicate form field name '{f.name}'"})
        names.add(f.name)
        material = by_key.get(f.material)
        if material is None:
            errors.append({"field": f"{at}.material", "message": f"no material has the key '{f.material}'"})
        elif material.kind == MaterialKind.SUBMIT.value:
            errors.append(
                {"field": f"{at}.material", "message": f"material '{f.material}' is submitted: nothing fills the field"}
            )
        elif material.kind == MaterialKind.CERTIFICATE.value and material.type_code:
            ctype = repository.type_by_code(db, material.type_code.strip().upper())
            face = ctype.face_schema.get("properties", {}) if ctype else {}
            if ctype is not None and f.field not in face:
                errors.append(
                    {
                        "field": f"{at}.field",
                        "message": f"{ctype.name} has no field '{f.field}'; it has {', '.join(sorted(face))}",
                    }
                )
        elif material.kind == MaterialKind.DATA.value and f.field not in (None, material.item):
            errors.append({"field": f"{at}.field", "message": f"material '{f.material}' gives the item '{material.item}' only"})
    return errors


def _data_problems(db: Session, m: MaterialSpec, at: str) -> list[dict[str, Any]]:
    try:
        view = catalogue.get_published_for_sharing(db, resource_id=m.resource_id or "")
    except (NotFound, Conflict) as exc:
        return [{"field": f"{at}.resource_id", "message": exc.detail}]
    errors = []
    items = [i.name for i in view.items]
    if m.item not in items:
        errors.append({"field": f"{at}.item", "message": f"{view.name} has no item '{m.item}'; it has {', '.join(items)}"})
    controls = [c.item for c in view.control_parameters]
    if m.key_item not in controls:
        errors.append(
            {
                "field": f"{at}.key_item",
                "message": f"'{m.key_item}' is not a control parameter of {view.name} ({', '.join(controls)})",
            }
        )
    return errors


def _check_definition(db: Session, *, materials: list[MaterialSpec], form_fields: list[FormFieldSpec]) -> None:
    errors = _definition_problems(db, materials=materials, form_fields=form_fields)
    if errors:
        raise Invalid(
            "the service's definition is wrong: " + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]), errors=errors
        )


def _write_version(
    db: Session, *, who: Principal, code: str, number: int, department_id: str, data: ServiceCreate | ServiceUpdate
) -> ServiceItem:
    row = ServiceItem(
        code=code,
        number=number,
        name=data.name,
        department_id=department_id,
        holder_kind=data.holder_kind,
        form_fields=[f.model_dump() for f in data.form_fields],
        state=ServiceState.DRAFT.value,
        created_by=who.subject,
    )
    db.add(row)
    db.flush()
    _write_materials(db, row, data.materials)
    return row


def _write_materials(db: Session, row: ServiceItem, materials: list[MaterialSpec]) -> None:
    for position, m in enumerate(materials):
        resource_name = None
        if m.kind == MaterialKind.DATA.value and m.resource_id:
            resource_name = catalogue.get_published_for_sharing(db, resource_id=m.resource_id).name
        db.add(
            ServiceMaterial(
                service_id=row.id,
                position=position,
                key=m.key,
                name=m.name,
                kind=m.kind,
                type_code=m.type_code.strip().upper() if m.kind == MaterialKind.CERTIFICATE.value and m.type_code else None,
                resource_id=m.resource_id if m.kind == MaterialKind.DATA.value else None,
                resource_name=resource_name,
                item=m.item if m.kind == MaterialKind.DATA.value else None,
                key_item=m.key_item if m.kind == MaterialKind.DATA.value else None,
            )
        )
    db.flush()


def register_service(db: Session, *, who: Principal, data: ServiceCreate) -> ServiceItem:
    """Register a service item: its first version, a draft."""
    if not may_edit_services(who):
        raise Forbidden("services are registered by the platform or the staff of the department that owns them")
    code = data.code.strip().upper()
    department = departments.department_by_code(db, data.department_code.strip().upper())
    if department is None:
        raise Invalid(
            f"no department with code {data.department_code}",
            errors=[{"field": "department_code", "message": "no department has this code"}],
        )
    if not who.is_platform_admin and department.id != who.department_id:
        raise Forbidden("a department registers only its own services")
    if repository.any_service_version(db, code) is not None:
        raise Conflict(f"service {code} is already registered; edit it with a new version")
    _check_definition(db, materials=data.materials, form_fields=data.form_fields)
    row = _write_version(db, who=who, code=code, number=1, department_id=department.id, data=data)
    audit.record(db, actor=who, action="service.register", object_type="service", object_id=f"{code}/1")
    return row


def _versions(db: Session, who: Principal, code: str) -> list[ServiceItem]:
    versions = repository.service_versions(db, code.strip().upper(), who=who)
    if not versions:
        raise NotFound(f"no service {code} that you may edit")
    return versions


def new_version(db: Session, *, who: Principal, code: str, data: ServiceUpdate) -> ServiceItem:
    """Edit a service: a new version (a draft) with the new definition; the published one stays until it is published."""
    versions = _versions(db, who, code)
    draft = next((v for v in versions if v.state == ServiceState.DRAFT.value), None)
    if draft is not None:
        raise Conflict(f"service {draft.code} has a draft already (version {draft.number}): edit or publish it")
    _check_definition(db, materials=data.materials, form_fields=data.form_fields)
    last = versions[-1]
    row = _write_version(db, who=who, code=last.code, number=last.number + 1, department_id=last.department_id, data=data)
    audit.record(db, actor=who, action="service.new_version", object_type="service", object_id=f"{row.code}/{row.number}")
    return row


def _version(db: Session, who: Principal, code: str, number: int) -> ServiceItem:
    row = next((v for v in _versions(db, who, code) if v.number == number), None)
    if row is None:
        raise NotFound(f"service {code} has no version {number}")
    return row


def edit_draft(
    db: Session, *, who: Principal, code: str, number: int, data: ServiceUpdate, if_match: str | None = None
) -> ServiceItem:
    """Change a draft version; a published (or replaced) version cannot change: make a new version."""
    row = _version(db, who, code, number)
    if row.state != ServiceState.DRAFT.value:
        raise Conflict(f"version {number} of service {row.code} is {row.state} and cannot be changed; make a new version")
    check_if_match(if_match, row.version, what="service version")
    _check_definition(db, materials=data.materials, form_fields=data.form_fields)
    row.name = data.name
    row.holder_kind = data.holder_kind
    row.form_fields = [f.model_dump() for f in data.form_fields]
    for old in repository.materials_of(db, [row.id])[row.id]:
        db.delete(old)
    db.flush()
    _write_materials(db, row, data.materials)
    audit.record(db, actor=who, action="service.edit", object_type="service", object_id=f"{row.code}/{row.number}")
    return row


def publish_service(db: Session, *, who: Principal, code: str, number: int) -> ServiceItem:
    """Publish a draft version: it becomes the service's current one, the one before it is kept, superseded."""
    versions = _versions(db, who, code)
    row = next((v for v in versions if v.number == number), None)
    if row is None:
        raise NotFound(f"service {code} has no version {number}")
    if row.state != ServiceState.DRAFT.value:
        raise Conflict(f"version {number} of service {row.code} is already {row.state}")
    # A certificate type may have been deactivated since the draft was written.
    spec = [MaterialSpec.model_validate(m, from_attributes=True) for m in repository.materials_of(db, [row.id])[row.id]]
    _check_definition(db, materials=spec, form_fields=[FormFieldSpec.model_validate(f) for f in row.form_fields])
    now = utcnow()
    for other in versions:
        if other.state == ServiceState.PUBLISHED.value:
            other.state = ServiceState.SUPERSEDED.value
    db.flush()  # one published version at a time
    row.state = ServiceState.PUBLISHED.value
    row.published_at = now
    db.flush()
    audit.record(db, actor=who, action="service.publish", object_type="service", object_id=f"{row.code}/{row.number}")
    return row


def service_reads(db: Session, rows: list[ServiceItem]) -> list[ServiceRead]:
    """Service versions as the API and the console read them (materials and departments in two statements)."""
    materials = repository.materials_of(db, [r.id for r in rows])
    names = repository.department_names_of(db, {r.department_id for r in rows})
    return [
        ServiceRead(
            code=r.code,
            number=r.number,
            name=r.name,
            department_code=names.get(r.department_id, ("", ""))[0],
            department_name=names.get(r.department_id, ("", r.department_id))[1],
            holder_kind=r.holder_kind,
            state=r.state,
            published_at=r.published_at,
            version=r.version,
            materials=[MaterialRead.model_validate(m) for m in materials[r.id]],
            form_fields=[FormFieldSpec.model_validate(f) for f in r.form_fields],
        )
        for r in rows
    ]


def get_service(db: Session, *, code: str, number: int | None = None, who: Principal | None = None) -> ServiceRead:
    """A service: its current published version, or one version by number. Anyone reads published and replaced
    versions; drafts only those who may edit the service."""
    code = code.strip().upper()
    versions = repository.service_versions(db, code, who=who) if who is not None and may_edit_services(who) else []
    public = repository.service_versions(db, code)
    merged = {v.id: v for v in [*public, *versions]}
    if number is None:
        row = next((v for v in merged.values() if v.state == ServiceState.PUBLISHED.value), None)
        if row is None:
            raise NotFound(f"no published service {code}")
    else:
        row = next((v for v in merged.values() if v.number == number), None)
        if row is None:
            raise NotFound(f"service {code} has no version {number} you may read")
    return service_reads(db, [row])[0]


def service_history(db: Session, *, code: str, who: Principal | None = None) -> list[ServiceRead]:
    """Every version of a service the caller may read, oldest first."""
    code = code.strip().upper()
    mine = repository.service_versions(db, code, who=who) if who is not None and may_edit_services(who) else []
    merged = {v.id: v for v in [*repository.service_versions(db, code), *mine]}
    if not merged:
        raise NotFound(f"no service {code}")
    return service_reads(db, sorted(merged.values(), key=lambda v: v.number))


def editable_service_list(db: Session, *, who: Principal) -> list[ServiceRead]:
    """The services the caller may edit, each at its latest version (a draft, if there is one)."""
    latest: dict[str, ServiceItem] = {}
    for row in repository.services_for(db, who):
        latest[row.code] = row
    return service_reads(db, list(latest.values()))


def published_service_choices(db: Session) -> list[tuple[str, str]]:
    """(事项编码, name) of every published service: what a window may prefill."""
    return [(s.code, s.name) for s in repository.published_services(db)]


# ---- the public lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublicList:
    """A published list, with what a cache needs: a strong validator and the time it last changed."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    etag: str
    last_modified: datetime | None

    def csv(self) -> str:
        out = io.StringIO()
        write_csv(out, self.columns, ([row[c] for c in self.columns] for row in self.rows))
        return out.getvalue()


def _satisfied_by(m: ServiceMaterial, type_names: dict[str, str]) -> str:
    if m.kind == MaterialKind.CERTIFICATE.value:
        return f"电子证照：{type_names.get(m.type_code or '', m.type_code)}（{m.type_code}）"
    if m.kind == MaterialKind.DATA.value:
        return f"共享数据：{m.resource_name}·{m.item}"
    return "申请人提交"


def public_list(db: Session, *, name: str) -> PublicList:
    """One of the published lists (两个免于提交, 一证通办, 一照通办) from the current service versions."""
    if name not in LISTS:
        raise NotFound(f"no list {name}; the lists are {', '.join(LISTS)}")
    services = repository.published_services(db)
    materials = repository.materials_of(db, [s.id for s in services])
    names = repository.department_names_of(db, {s.department_id for s in services})
    types = repository.list_types(db, include_inactive=True)
    type_names = {t.code: t.name for t in types}
    rows: list[dict[str, Any]] = []
    if name == "exempt-materials":
        columns = ["service_code", "service_name", "service_version", "department", "material", "satisfied_by"]
        for s in services:
            for m in materials[s.id]:
                if m.kind != MaterialKind.SUBMIT.value:
                    rows.append(
                        {
                            "service_code": s.code,
                            "service_name": s.name,
                            "service_version": s.number,
                            "department": names.get(s.department_id, ("", ""))[1],
                            "material": m.name,
                            "satisfied_by": _satisfied_by(m, type_names),
                        }
                    )
    else:
        columns = ["service_code", "service_name", "service_version", "department", "materials"]
        kind = "person" if name == "one-id-card" else "enterprise"
        for s in services:
            held = materials[s.id]
            if s.holder_kind == kind and held and all(m.kind != MaterialKind.SUBMIT.value for m in held):
                rows.append(
                    {
                        "service_code": s.code,
                        "service_name": s.name,
                        "service_version": s.number,
                        "department": names.get(s.department_id, ("", ""))[1],
                        "materials": "；".join(f"{m.name}（{_satisfied_by(m, type_names)}）" for m in held),
                    }
                )
    digest = hashlib.sha256(json.dumps([name, rows], ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:32]
    # The list changes when a service is published, and when a type it names is renamed.
    named = {m.type_code for held in materials.values() for m in held if m.type_code}
    changed = [s.published_at for s in services if s.published_at is not None]
    changed += [t.updated_at for t in types if t.code in named]
    return PublicList(name, LISTS[name], columns, rows, f'"{digest}"', max(changed) if changed else None)
