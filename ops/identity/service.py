"""Rules of identity: who may create departments and clients, and how callers authenticate."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ops import audit
from ops.auth import CLIENT_ROLES, TOKENS, Principal, Role
from ops.codes import citizen_id_problem, uscc_problem
from ops.config import Settings
from ops.crypto import hash_secret, new_secret, verify_secret
from ops.db import check_if_match, utcnow
from ops.divisions.service import division_problem
from ops.errors import BadRequest, Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ops.identity import credentials, repository
from ops.identity.models import ApiClient, Department
from ops.identity.people import (  # people who sign in through the identity provider: ops/identity/people.py
    PERSON_ROLES as PERSON_ROLES,
)
from ops.identity.people import NoDepartment as NoDepartment
from ops.identity.people import assign_person as assign_person
from ops.identity.people import get_person as get_person
from ops.identity.people import person_principal as person_principal
from ops.identity.people import signed_in_person as signed_in_person
from ops.identity.people import verified_id_number as verified_id_number
from ops.identity.schemas import ClientCreate, DepartmentCreate, DepartmentUpdate

# A precomputed hash, checked when the client id is unknown so timing does not reveal it.
_DUMMY_HASH = hash_secret("not-a-real-secret")


def create_department(db: Session, *, who: Principal, data: DepartmentCreate) -> Department:
    """Register a department; only platform administrators may."""
    if repository.department_by_code(db, data.code):
        raise Conflict(
            f"a department with code {data.code} already exists",
            errors=[{"field": "code", "message": "duplicate"}],
        )
    if data.parent_id and repository.department_by_id(db, data.parent_id) is None:
        raise Invalid(
            f"parent department {data.parent_id} does not exist",
            errors=[{"field": "parent_id", "message": "unknown department"}],
        )
    department = Department(**data.model_dump())
    db.add(department)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="department.create",
        object_type="department",
        object_id=department.id,
        detail={"code": department.code, "name": department.name},
    )
    return department


def get_department(db: Session, *, who: Principal, department_id: str) -> Department:
    """A department the caller may see, or NotFound."""
    department = repository.get_department(db, who, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found")
    return department


def update_department(
    db: Session, *, who: Principal, department_id: str, data: DepartmentUpdate, if_match: str | None
) -> Department:
    """Change a department's name, parent, active flag or region code (a division the platform knows; optimistic
    concurrency)."""
    department = get_department(db, who=who, department_id=department_id)
    check_if_match(if_match, department.version)
    changes = data.model_dump(exclude_unset=True)
    if changes.get("parent_id"):
        if changes["parent_id"] == department.id:
            raise Invalid("a department cannot be its own parent", errors=[{"field": "parent_id", "message": "self"}])
        if repository.department_by_id(db, changes["parent_id"]) is None:
            raise Invalid("parent department does not exist", errors=[{"field": "parent_id", "message": "unknown"}])
    if "region_code" in changes and (problem := division_problem(db, changes["region_code"])):
        raise Invalid(f"region_code: {problem}", errors=[{"field": "region_code", "message": problem}])
    for key, value in changes.items():
        setattr(department, key, value)
    db.flush()
    if "active" in changes:
        TOKENS.clear_after_commit(db)
    audit.record(
        db,
        actor=who,
        action="department.update",
        object_type="department",
        object_id=department.id,
        detail={"changed": sorted(changes)},
    )
    return department


@dataclass(frozen=True)
class NewClient:
    client: ApiClient
    secret: str


def create_client(db: Session, *, who: Principal, data: ClientCreate) -> NewClient:
    """Create an API client; its secret is returned once and stored only as a hash."""
    roles = sorted(set(data.roles))
    secret = new_secret()
    secret_hash = hash_secret(secret)  # before the first statement: a writer holds the database from there
    if not who.is_platform_admin:
        if Role.PLATFORM_ADMIN in roles or Role.DEPARTMENT_ADMIN in roles:
            raise Forbidden("a department administrator may only create department_system and window clients")
        if data.department_id not in (None, who.department_id):
            raise NotFound(f"department {data.department_id} not found")
        department_id: str | None = who.department_id
    else:
        department_id = data.department_id
    if department_id is None and roles != [Role.PLATFORM_ADMIN]:
        raise Invalid(
            "department_id is required for department and window clients",
            errors=[{"field": "department_id", "message": "required"}],
        )
    if department_id is not None:
        department = repository.department_by_id(db, department_id)
        if department is None:
            raise Invalid(f"department {department_id} does not exist", errors=[{"field": "department_id", "message": "unknown"}])
        if not department.active:
            raise Conflict(f"department {department.name} is deactivated")
    client = ApiClient(
        client_id=f"gh_{secrets.token_hex(8)}",
        name=data.name,
        secret_hash=secret_hash,
        roles=roles,
        department_id=department_id,
        created_by=who.subject,
    )
    db.add(client)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="client.create",
        object_type="api_client",
        object_id=client.client_id,
        detail={"roles": roles, "department_id": department_id},
    )
    return NewClient(client, secret)


def revoke_client(db: Session, *, who: Principal, client_id: str, reason: str) -> ApiClient:
    """Revoke a client: its tokens stop working at once."""
    client = repository.get_client(db, who, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    if client.revoked_at is not None:
        raise Conflict(f"client {client_id} is already revoked")
    if Role.PLATFORM_ADMIN in client.roles and not who.is_platform_admin:
        raise Forbidden("only a platform administrator may revoke a platform administrator")
    client.revoked_at = utcnow()
    client.revoked_reason = reason
    db.flush()
    TOKENS.clear_after_commit(db)  # its tokens stop working in this process as soon as this commits
    audit.record(db, actor=who, action="client.revoke", object_type="api_client", object_id=client_id, purpose=reason)
    return client


def authenticate_client(db: Session, *, client_id: str, client_secret: str) -> ApiClient:
    """Check client credentials; the same error whatever part was wrong."""
    client = repository.client_by_client_id(db, client_id)
    valid = verify_secret(client_secret, client.secret_hash if client else _DUMMY_HASH)
    if client is not None and not valid:  # a former secret in its overlap after a rotation
        valid = credentials.retiring_secret_matches(db, client, client_secret)
    if client is None or not valid:
        raise Unauthenticated("invalid client credentials", extra={"error": "invalid_client"})
    if client.revoked_at is not None:
        raise Unauthenticated("this client has been revoked", extra={"error": "invalid_client"})
    return client


def token_claims(db: Session, client: ApiClient) -> dict[str, Any]:
    """The claims of an access token for `client`."""
    claims: dict[str, Any] = {"roles": list(client.roles), "client_name": client.name}
    if client.department_id:
        department = repository.department_by_id(db, client.department_id)
        if department is None or not department.active:
            raise Unauthenticated("the client's department is not active")
        claims["dept"] = department.id
        claims["dept_code"] = department.code
    return claims


def client_principal(db: Session, claims: dict[str, Any]) -> Principal:
    """The principal of a verified client token; refused if the client was revoked or its department
    deactivated since the token was issued."""
    found = repository.client_and_department_active(db, str(claims["sub"]))
    if found is None or found[0].revoked_at is not None:
        raise Unauthenticated("the token's client has been revoked")
    client, department_active = found
    if client.department_id is not None:
        if not department_active:
            raise Unauthenticated("the token's department has been deactivated")
        if claims.get("dept") != client.department_id:
            raise Unauthenticated("the token's department does not match its client; request a new token")
    try:
        roles = frozenset(Role(r) for r in claims.get("roles", []))
    except ValueError as exc:
        raise Unauthenticated("the token carries an unknown role") from exc
    if not roles <= CLIENT_ROLES or roles != frozenset(Role(r) for r in client.roles):
        raise Unauthenticated("the token's roles do not match its client; request a new token")
    return Principal(
        subject=client.client_id,
        roles=roles,
        department_id=claims.get("dept"),
        department_code=claims.get("dept_code"),
        token_id=claims.get("jti"),
        claims=claims,
    )


def holder_problem(code: str, kind: str) -> str | None:
    """Why `code` is not a valid holder code of `kind`, or None."""
    if kind == "person":
        return citizen_id_problem(code)
    if kind == "enterprise":
        return uscc_problem(code)
    return f"unknown holder kind {kind!r}"


def holder_principal(claims: dict[str, Any]) -> Principal:
    """The principal of a verified holder token (from the identity provider)."""
    code = str(claims["sub"]).upper()
    kind = str(claims.get("holder_kind", "person"))
    if holder_problem(code, kind):
        raise Unauthenticated("the holder token's subject is not a valid identity code")
    return Principal(
        subject=code,
        roles=frozenset({Role.HOLDER}),
        holder_code=code,
        holder_kind=kind,
        holder_name=claims.get("name"),
        token_id=claims.get("jti"),
        claims=claims,
    )


def check_holder_token_request(settings: Settings, code: str, kind: str) -> str:
    """Validate a request for a built-in holder token (development identity provider)."""
    if settings.holder_idp != "builtin":
        raise BadRequest("holder tokens come from the external identity provider on this hub")
    normalised = code.strip().upper()
    problem = holder_problem(normalised, kind)
    if problem:
        what = "公民身份号码" if kind == "person" else "统一社会信用代码"
        raise Invalid(f"holder_code is not a valid {what}: {problem}", errors=[{"field": "holder_code", "message": problem}])
    return normalised


def bootstrap_admin(db: Session, settings: Settings) -> NewClient | None:
    """Create the first platform administrator client if there is none yet."""
    from sqlalchemy import select

    existing = db.scalars(select(ApiClient).where(ApiClient.revoked_at.is_(None))).all()
    if any(Role.PLATFORM_ADMIN in c.roles for c in existing):
        return None
    wanted_id = settings.bootstrap_admin_client_id or f"gh_admin_{secrets.token_hex(4)}"
    secret = settings.bootstrap_admin_secret.get_secret_value() or new_secret()
    if repository.client_by_client_id(db, wanted_id):
        return None
    client = ApiClient(
        client_id=wanted_id,
        name="first platform administrator",
        secret_hash=hash_secret(secret),
        roles=[Role.PLATFORM_ADMIN.value],
        department_id=None,
        created_by="bootstrap",
    )
    db.add(client)
    db.flush()
    audit.record(db, actor=audit.SYSTEM, action="client.bootstrap", object_type="api_client", object_id=wanted_id)
    return NewClient(client, secret)
