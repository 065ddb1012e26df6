"""What a holder does with its certificates: list, show (亮证), authorise (授权用证), delegate (委托用证)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from certhub import repository, sdjwt
from certhub.common import METADATA_LABELS
from certhub.hubkey import hub_signer
from certhub.issuance import IssueContext
from certhub.models import (
    Authorisation,
    Certificate,
    CertificateStatus,
    Delegation,
)
from certhub.schemas import (
    AuthorisationCreate,
    DelegationCreate,
    ShowRequest,
)
from ops import audit
from ops.auth import Principal
from ops.codes import citizen_id_problem, mask_identifier, uscc_problem
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.identity import repository as departments


def acting_holder(db: Session, *, who: Principal, on_behalf_of: str | None, action: str, type_code: str | None = None) -> str:
    """The holder the caller acts for: itself, or (委托用证) a holder who delegated `action` to it."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    if not on_behalf_of or on_behalf_of.upper() == who.holder_code:
        return who.holder_code
    holder = on_behalf_of.strip().upper()
    for delegation in repository.active_delegation(db, holder_code=holder, agent_code=who.holder_code, now=utcnow()):
        if action in delegation.actions and (
            not delegation.type_codes or type_code is None or type_code in delegation.type_codes
        ):
            return holder
    what = f"certificates of type {type_code}" if type_code else "certificates"
    verb = "object to" if action == "object" else action
    raise Forbidden(f"no delegation from {mask_identifier(holder)} lets you {verb} {what}")


def delegated_types(db: Session, *, who: Principal, holder_code: str, action: str) -> list[str] | None:
    """The certificate types the caller may `action` for the holder: None (every type) for the holder itself
    or under a delegation that names no type, else the types its delegations for `action` name."""
    if holder_code == who.holder_code:
        return None
    delegations = repository.active_delegation(db, holder_code=holder_code, agent_code=who.holder_code or "", now=utcnow())
    allowed = [d for d in delegations if action in d.actions]
    if any(not d.type_codes for d in allowed):
        return None
    return sorted({c for d in allowed for c in d.type_codes})


def acting_for(db: Session, *, who: Principal, on_behalf_of: str | None, action: str) -> tuple[str | None, list[str] | None]:
    """For a holder or an agent: the holder it acts for and the types it may `action` (None: every type).
    (None, None) for a caller that is no holder and acts for none."""
    if who.holder_code is None and not on_behalf_of:
        return None, None
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action=action)
    return holder, delegated_types(db, who=who, holder_code=holder, action=action)


def holder_certificates(db: Session, *, who: Principal, holder_code: str) -> list[Certificate]:
    """The holder's current certificates (for an agent: only the delegated types)."""
    type_codes = delegated_types(db, who=who, holder_code=holder_code, action="list")
    rows = repository.holder_certificates(db, holder_code, type_codes=type_codes)
    audit.record(
        db,
        actor=who,
        action="certificate.list_own",
        object_type="holder",
        object_id=mask_identifier(holder_code),
        subject=holder_code,
    )
    return rows


def _holder_certificate(db: Session, holder_code: str, identifier: str, *, type_codes: list[str] | None) -> Certificate:
    certificate = repository.holder_certificate(db, holder_code, identifier, type_codes=type_codes)
    if certificate is None:
        raise NotFound(f"certificate {identifier} not found among the holder's certificates")
    return certificate


def presentable_fields(certificate: Certificate) -> list[str]:
    """The names of the fields a holder may choose to show (the selectively disclosable ones), in signed order."""
    return [sdjwt.decode_disclosure(d)[0] for d in sdjwt.split_sd_jwt(certificate.sd_jwt)[1]]


def field_labels(db: Session, *, type_code: str | None) -> dict[str, str]:
    """Chinese labels of a certificate's fields: GB/T 36903 metadata, then the face fields' schema titles."""
    labels = dict(METADATA_LABELS)
    ctype = repository.type_by_code(db, type_code) if type_code else None
    if ctype is not None:
        for name, spec in ctype.face_schema.get("properties", {}).items():
            if isinstance(spec, dict) and spec.get("title"):
                labels[name] = str(spec["title"])
    return labels


def show(
    db: Session, *, who: Principal, ctx: IssueContext, identifier: str, data: ShowRequest, on_behalf_of: str | None = None
) -> tuple[str, str, datetime]:
    """亮证: a short-lived presentation of chosen fields, bound to an audience and nonce."""
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="show")
    types = delegated_types(db, who=who, holder_code=holder, action="show")
    certificate = _holder_certificate(db, holder, identifier, type_codes=types)
    if certificate.status != CertificateStatus.ACTIVE.value:
        raise Conflict(f"certificate {identifier} is {certificate.status} and cannot be shown")
    available = presentable_fields(certificate)
    unknown = [f for f in data.fields if f not in available]
    if unknown:
        raise Invalid(
            f"the certificate has no field {', '.join(unknown)}; it has {', '.join(sorted(available))}",
            errors=[{"field": "fields", "message": f"unknown: {f}"} for f in unknown],
        )
    problem = uscc_problem(data.audience)
    if problem:
        raise Invalid(
            f"audience must be the verifying department's 统一社会信用代码: {problem}",
            errors=[{"field": "audience", "message": problem}],
        )
    nonce = data.nonce or secrets.token_urlsafe(16)
    token = sdjwt.present(
        certificate.sd_jwt,
        data.fields,
        hub_signer=hub_signer(db, vault=ctx.vault),
        audience=data.audience,
        nonce=nonce,
        ttl_seconds=data.ttl_seconds,
    )
    audit.record(
        db,
        actor=who,
        action="certificate.show",
        object_type="certificate",
        object_id=identifier,
        subject=holder,
        detail={"fields": data.fields, "audience": data.audience},
    )
    return token, nonce, utcnow() + timedelta(seconds=data.ttl_seconds)


def authorise(db: Session, *, who: Principal, data: AuthorisationCreate, on_behalf_of: str | None = None) -> Authorisation:
    """授权用证: let a department fetch my certificate of a type for a purpose until a time."""
    type_code = data.type_code.strip().upper()
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="authorise", type_code=type_code)
    if repository.type_by_code(db, type_code) is None:
        raise Invalid(
            f"certificate type {type_code} is not in the catalogue",
            errors=[{"field": "type_code", "message": "not in the catalogue"}],
        )
    department = departments.department_by_code(db, data.department_code.upper())
    if department is None:
        raise Invalid(
            f"no department with code {data.department_code}",
            errors=[{"field": "department_code", "message": "no department has this code"}],
        )
    if data.expires_at <= utcnow():
        raise Invalid("expires_at must be in the future", errors=[{"field": "expires_at", "message": "must be in the future"}])
    row = Authorisation(
        holder_code=holder,
        type_code=type_code,
        grantee_department_id=department.id,
        purpose=data.purpose,
        valid_until=data.expires_at,
        granted_by=who.subject,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="authorisation.grant",
        object_type="cert_authorisation",
        object_id=row.id,
        purpose=data.purpose,
        subject=holder,
        detail={"type": type_code, "department": department.code},
    )
    return row


@dataclass(frozen=True)
class AuthorisationView:
    """An authorisation as its holder reads it: the type and department by name, and whether it still works."""

    authorisation: Authorisation
    type_name: str
    department_name: str
    department_code: str
    state: str  # active / expired / withdrawn


def holder_authorisations(db: Session, *, who: Principal) -> list[AuthorisationView]:
    """My authorisations (授权用证), newest first, with what each one names and whether it is in force."""
    if who.holder_code is None:
        raise Forbidden("this action is for certificate holders")
    now = utcnow()
    views = []
    for row in repository.authorisations_of(db, who.holder_code):
        ctype = repository.type_by_code(db, row.type_code)
        department = departments.department_by_id(db, row.grantee_department_id)
        state = "withdrawn" if row.revoked_at is not None else "expired" if row.valid_until <= now else "active"
        views.append(
            AuthorisationView(
                authorisation=row,
                type_name=ctype.name if ctype else row.type_code,
                department_name=department.name if department else row.grantee_department_id,
                department_code=department.code if department else "",
                state=state,
            )
        )
    return views


def department_directory(db: Session) -> list[tuple[str, str]]:
    """(统一社会信用代码, name) of every active department: whom a holder may show a certificate to or authorise."""
    return repository.active_departments(db)


def revoke_authorisation(db: Session, *, who: Principal, authorisation_id: str, on_behalf_of: str | None = None) -> Authorisation:
    """Withdraw an authorisation at once."""
    holder = acting_holder(db, who=who, on_behalf_of=on_behalf_of, action="authorise")
    row = repository.authorisation_of(db, holder, authorisation_id)
    if row is None:
        raise NotFound(f"authorisation {authorisation_id} not found")
    if row.revoked_at is not None:
        raise Conflict("the authorisation is already withdrawn")
    row.revoked_at = utcnow()
    db.flush()
    audit.record(db, actor=who, action="authorisation.revoke", object_type="cert_authorisation", object_id=row.id, subject=holder)
    return row


def delegate(db: Session, *, who: Principal, data: DelegationCreate) -> Delegation:
    """委托用证: let an agent list, show or authorise my certificates within limits."""
    if who.holder_code is None:
        raise Forbidden("only a holder can delegate")
    agent = data.agent_code.strip().upper()
    problem = citizen_id_problem(agent)
    if problem:
        raise Invalid(f"agent_code is not a valid 公民身份号码: {problem}", errors=[{"field": "agent_code", "message": problem}])
    if agent == who.holder_code:
        raise Invalid("a holder cannot delegate to itself", errors=[{"field": "agent_code", "message": "self"}])
    if data.expires_at <= utcnow():
        raise Invalid("expires_at must be in the future", errors=[{"field": "expires_at", "message": "in the past"}])
    row = Delegation(
        holder_code=who.holder_code,
        agent_code=agent,
        agent_name=data.agent_name,
        type_codes=sorted({c.upper() for c in data.type_codes}),
        actions=sorted(set(data.actions)),
        valid_until=data.expires_at,
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="delegation.grant",
        object_type="cert_delegation",
        object_id=row.id,
        subject=who.holder_code,
        detail={"agent": mask_identifier(agent), "actions": row.actions},
    )
    return row


def revoke_delegation(db: Session, *, who: Principal, delegation_id: str) -> Delegation:
    if who.holder_code is None:
        raise Forbidden("only a holder can withdraw a delegation")
    row = repository.delegation_of(db, who.holder_code, delegation_id)
    if row is None:
        raise NotFound(f"delegation {delegation_id} not found")
    if row.revoked_at is not None:
        raise Conflict("the delegation is already withdrawn")
    row.revoked_at = utcnow()
    db.flush()
    audit.record(
        db, actor=who, action="delegation.revoke", object_type="cert_delegation", object_id=row.id, subject=who.holder_code
    )
    return row
