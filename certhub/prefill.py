"""免证办 at the window: a service's form filled from what the government holds (seed 003 §23), and 一证通办
in one step (seed 003 §24): every certificate a service needs, with one authorisation or one ID-card
(business-licence) presentation.

A window or a department system asks with a holder's code, a service and the reason (use_cause). The
holder's certificates are read with the holder's authorisation (授权用证) of the caller's department, for
the service as a whole (:func:`authorise_service`) or type by type, or with the holder's identity document
presented at the window and verified there; data items are read through the caller's grants, on the
exchange's path (its trail and the holder's). Every certificate read is in the holder's access list; a
request with no authorisation at all is refused and recorded, as a fetch is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from certhub import repository
from certhub.accesses import access_records, write_accesses
from certhub.caches import department_name
from certhub.holders import authorise
from certhub.models import Authorisation, Certificate, CertificateStatus, MaterialKind, ServiceItem, ServiceMaterial
from certhub.schemas import AuthorisationCreate, MissingMaterial, PrefillRequest, PrefillValue, ServiceAuthorisationCreate
from certhub.verification import verify
from exchange import service as exchange
from ops import audit
from ops.auth import Principal
from ops.codes import citizen_id_problem, uscc_problem
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Forbidden, HubError, Invalid, NotFound

# The identity documents a holder may present at the window in place of an authorisation (一证 / 一照).
IDENTITY_TYPES = {"11100000000019713D001": "person", "11100000MB0143028R001": "enterprise"}  # 居民身份证, 营业执照
MISSING_REASONS = {
    "submit": "申请人提交",
    "not_authorised": "持证人未授权本部门",
    "not_held": "持证人没有该证照",
    "not_active": "证照不在有效状态",
    "not_granted": "本部门没有该数据资源的共享授权",
    "no_record": "共享数据中没有该持证人的记录",
    "refused": "共享数据查询被拒绝",
}


def holder_code_of(value: str, *, field_name: str = "holder_code") -> str:
    """A holder's code, checked: a 公民身份号码 or a 统一社会信用代码 with its right check character."""
    holder = value.strip().upper()
    if citizen_id_problem(holder) and uscc_problem(holder):
        # Name the problem of the kind of code it looks like: 18 digits (or 17 and X) is a 公民身份号码.
        personal = len(holder) == 18 and holder[:17].isdigit() and holder[17] in "0123456789X"
        what, problem = ("公民身份号码", citizen_id_problem(holder)) if personal else ("统一社会信用代码", uscc_problem(holder))
        raise Invalid(
            f"{field_name} is neither a valid 公民身份号码 nor a valid 统一社会信用代码",
            errors=[{"field": field_name, "message": f"not a valid {what}: {problem}"}],
        )
    return holder


@dataclass
class Gathered:
    """What a service's materials found for a holder: certificates and data items by material key, what is missing."""

    service: ServiceItem
    materials: list[ServiceMaterial]
    holder_code: str
    authorised_by: str  # authorisation / presentation / issuer / grant
    certificates: dict[str, Certificate] = field(default_factory=dict)
    data: dict[str, tuple[Any, str]] = field(default_factory=dict)  # key -> (value, grant id)
    missing: list[MissingMaterial] = field(default_factory=list)

    def lack(self, material: ServiceMaterial, reason: str) -> None:
        self.missing.append(MissingMaterial(key=material.key, name=material.name, kind=material.kind, reason=reason))


def _published(db: Session, code: str) -> tuple[ServiceItem, list[ServiceMaterial]]:
    service = repository.current_service(db, code.strip().upper())
    if service is None:
        raise NotFound(f"no published service {code}")
    return service, repository.materials_of(db, [service.id])[service.id]


def _presented_identity(db: Session, *, who: Principal, settings: Settings, holder: str, token: str, nonce: str | None) -> None:
    """Check the holder's identity document presented at the window: valid, this holder's, an ID card or licence."""
    verdict = verify(db, who=who, settings=settings, token=token, nonce=nonce)
    if not verdict.valid:
        raise Forbidden(f"the presentation was not accepted ({verdict.code}): {verdict.message}")
    certificate = repository.certificate_by_identifier(db, verdict.identifier or "")
    if certificate is None or certificate.holder_code != holder:
        raise Forbidden("the presented certificate is not the holder's")
    if certificate.type_code not in IDENTITY_TYPES:
        raise Forbidden("the presentation must be of the holder's 居民身份证 or 营业执照")


def gather(
    db: Session,
    *,
    who: Principal,
    settings: Settings,
    data: PrefillRequest,
    read_data: bool = True,
) -> Gathered:
    """Find what satisfies each material of a service for a holder, on the caller's authority. Refused (403, and
    recorded) when the service needs certificates and the holder authorised the caller for none of them."""
    department_id = who.require_department()
    holder = holder_code_of(data.holder_code)
    service, materials = _published(db, data.service_code)
    personal = citizen_id_problem(holder) is None
    if personal != (service.holder_kind == "person"):
        who_applies = "persons (a 公民身份号码)" if service.holder_kind == "person" else "enterprises (a 统一社会信用代码)"
        raise Invalid(
            f"service {service.code} is applied for by {who_applies}",
            errors=[{"field": "holder_code", "message": f"service {service.code} is for {who_applies}"}],
        )
    certificate_materials = [m for m in materials if m.kind == MaterialKind.CERTIFICATE.value]
    try:
        if data.presentation:
            _presented_identity(db, who=who, settings=settings, holder=holder, token=data.presentation, nonce=data.nonce)
            allowed = {m.key: "presentation" for m in certificate_materials}
        else:
            allowed = {}
            now = utcnow()
            for m in certificate_materials:
                code = m.type_code or ""
                if repository.active_authorisation(db, holder_code=holder, department_id=department_id, type_code=code, now=now):
                    allowed[m.key] = "authorisation"
                else:
                    current = repository.current_for_holder(db, holder, code)
                    if current is not None and current.issuer_department_id == department_id:
                        allowed[m.key] = "issuer"
            if certificate_materials and not allowed:
                raise Forbidden(
                    f"no authorisation exists: the holder has not authorised your department to use the certificates "
                    f"service {service.code} needs, or the authorisation has expired or been withdrawn"
                )
    except Forbidden as exc:
        denied = partial(
            record_denied_prefill,
            who=who,
            holder_code=holder,
            service_code=service.code,
            use_cause=data.use_cause,
            reason=exc.detail,
        )
        audit.record_refusal(db, denied)
        raise
    found = Gathered(service, materials, holder, authorised_by=_authority(set(allowed.values())) if allowed else "grant")
    for m in materials:
        if m.kind == MaterialKind.SUBMIT.value:
            found.lack(m, "submit")
        elif m.kind == MaterialKind.CERTIFICATE.value:
            if m.key not in allowed:
                found.lack(m, "not_authorised")
                continue
            certificate = repository.current_for_holder(db, holder, m.type_code or "")
            if certificate is None:
                found.lack(m, "not_held")
            elif certificate.status != CertificateStatus.ACTIVE.value:
                found.lack(m, "not_active")
            else:
                found.certificates[m.key] = certificate
    if read_data:
        _read_data(db, who=who, found=found, use_cause=data.use_cause)
    return found


def _authority(kinds: set[str]) -> str:
    for kind in ("presentation", "authorisation", "issuer"):
        if kind in kinds:
            return kind
    return "grant"


def _read_data(db: Session, *, who: Principal, found: Gathered, use_cause: str) -> None:
    """Each data material's item, looked up by the holder's code through the caller's grant: one batch of the
    exchange's lookups, counted and recorded on its trail (and the holder's, by the personal control parameter)."""
    asks: list[tuple[ServiceMaterial, str, exchange.LookupAsk]] = []
    for m in found.materials:
        if m.kind != MaterialKind.DATA.value:
            continue
        grant_id = exchange.usable_grant_on(db, who=who, resource_id=m.resource_id or "")
        if grant_id is None:
            found.lack(m, "not_granted")
            continue
        ask = exchange.LookupAsk(who, grant_id, {m.key_item or "": found.holder_code}, [m.item or ""], use_cause)
        asks.append((m, grant_id, ask))
    if not asks:
        return
    results = exchange.run_lookups(db, [ask for _, _, ask in asks])
    for (m, grant_id, _), result in zip(asks, results, strict=True):
        if isinstance(result, HubError):
            found.lack(m, "not_granted" if result.status == 403 else "refused")
        elif not result.rows:
            found.lack(m, "no_record")
        else:
            found.data[m.key] = (result.rows[0].get(m.item or ""), grant_id)


def record_denied_prefill(
    db: Session, *, who: Principal, holder_code: str, service_code: str, use_cause: str, reason: str
) -> None:
    """A refused prefill or one-step fetch is recorded (through :func:`ops.audit.record_refusal`)."""
    audit.record(
        db,
        actor=who,
        action="certificate.prefill",
        object_type="service",
        object_id=service_code[:200],
        purpose=use_cause,
        outcome="denied",
        subject=holder_code,
        detail={"reason": reason[:500]},
    )


def _record_uses(
    db: Session, *, who: Principal, found: Gathered, action: str, use_cause: str, fields: dict[str, list[str]]
) -> None:
    """One access-list row and audit record for each certificate read (one statement each)."""
    name = department_name(db, who.department_id)
    accesses: list[dict[str, Any]] = []
    trails: list[dict[str, Any]] = []
    for key, certificate in found.certificates.items():
        access, trail = access_records(
            who,
            known=True,
            holder_code=found.holder_code,
            identifier=certificate.identifier,
            action=action,
            use_cause=use_cause,
            fields=fields.get(key, []),
            department_name=name,
        )
        if access is not None:
            accesses.append(access)
        trails.append(trail)
    write_accesses(db, accesses, trails)


@dataclass(frozen=True)
class Prefilled:
    """A prefilled form: each value with its source, and the materials still missing."""

    service: ServiceItem
    holder_code: str
    values: list[PrefillValue]
    missing: list[MissingMaterial]
    authorised_by: str


def prefill(
    db: Session,
    *,
    who: Principal,
    settings: Settings,
    data: PrefillRequest,
) -> Prefilled:
    """Fill a service's form for a holder from their authorised certificates and the caller's granted data."""
    found = gather(db, who=who, settings=settings, data=data)
    by_key = {m.key: m for m in found.materials}
    types = {t.code: t.name for t in repository.list_types(db, include_inactive=True)}
    values: list[PrefillValue] = []
    read: dict[str, list[str]] = {}
    for spec in found.service.form_fields:
        material = by_key[spec["material"]]
        if material.key in found.certificates:
            certificate = found.certificates[material.key]
            values.append(
                PrefillValue(
                    name=spec["name"],
                    label=spec["label"],
                    value=certificate.face.get(spec["field"]),
                    material=material.key,
                    source="certificate",
                    source_name=types.get(certificate.type_code, certificate.type_code),
                    source_ref=certificate.identifier,
                )
            )
            read.setdefault(material.key, []).append(spec["field"])
        elif material.key in found.data:
            value, grant_id = found.data[material.key]
            values.append(
                PrefillValue(
                    name=spec["name"],
                    label=spec["label"],
                    value=value,
                    material=material.key,
                    source="data",
                    source_name=f"{material.resource_name}·{material.item}",
                    source_ref=grant_id,
                )
            )
    _record_uses(
        db, who=who, found=found, action="prefill", use_cause=data.use_cause, fields={k: sorted(set(v)) for k, v in read.items()}
    )
    return Prefilled(found.service, found.holder_code, values, found.missing, found.authorised_by)


def service_certificates(
    db: Session,
    *,
    who: Principal,
    settings: Settings,
    data: PrefillRequest,
) -> tuple[Gathered, list[Certificate]]:
    """一证通办 in one step: every certificate the service needs that the holder has, in one call; each fetch recorded."""
    found = gather(db, who=who, settings=settings, data=data, read_data=False)
    _record_uses(db, who=who, found=found, action="fetch", use_cause=data.use_cause, fields={})
    return found, list(found.certificates.values())


def authorise_service(
    db: Session, *, who: Principal, service_code: str, data: ServiceAuthorisationCreate, on_behalf_of: str | None = None
) -> list[Authorisation]:
    """One authorisation for a service: the department may use each certificate type the service requires."""
    service, materials = _published(db, service_code)
    type_codes = list(dict.fromkeys(m.type_code for m in materials if m.kind == MaterialKind.CERTIFICATE.value and m.type_code))
    if not type_codes:
        raise Invalid(f"service {service.code} requires no certificate: there is nothing to authorise")
    expires_at: datetime = data.expires_at
    return [
        authorise(
            db,
            who=who,
            data=AuthorisationCreate(
                type_code=code, department_code=data.department_code, purpose=data.purpose, expires_at=expires_at
            ),
            on_behalf_of=on_behalf_of,
        )
        for code in type_codes
    ]
