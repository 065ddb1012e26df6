"""People (统一身份认证): staff who sign in through the identity provider, and the department and roles
their department's administrator (or the platform) gives them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ops import audit
from ops.auth import Principal, Role
from ops.codes import citizen_id_problem
from ops.db import check_if_match, utcnow
from ops.errors import Forbidden, HubError, Invalid, NotFound
from ops.identity import repository
from ops.identity.models import Person
from ops.identity.schemas import PersonAssign

# The roles a person can be given; department_system stays with systems (clients).
PERSON_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.WINDOW})
# What a department's administrator may give within their own department.
DEPARTMENT_GIVES = frozenset({Role.DEPARTMENT_ADMIN, Role.WINDOW})


class NoDepartment(HubError):
    """A person signed in whom nobody has given a department (or any role) yet."""

    status, code, title = 403, "no_department", "No department yet"


def verified_id_number(value: object) -> str | None:
    """The 公民身份号码 of a verified claim, if it passes its check digit (GB 11643), else None."""
    if not isinstance(value, str) or citizen_id_problem(value.strip().upper()):
        return None
    return value.strip().upper()


def signed_in_person(db: Session, *, issuer: str, subject: str, name: str, id_number: str | None) -> Person:
    """The person the provider vouched for, registered on their first sign-in; the name and number
    follow the provider's verified claims."""
    person = repository.person_by_provider(db, issuer=issuer, subject=subject)
    now = utcnow()
    if person is None:
        person = Person(issuer=issuer, subject=subject, name=name, id_number=id_number, roles=[], last_sign_in_at=now)
        db.add(person)
        db.flush()
        actor = Principal(subject=person.id, roles=frozenset(), person_id=person.id, display_name=name)
        audit.record(db, actor=actor, action="person.register", object_type="person", object_id=person.id)
        return person
    person.name, person.last_sign_in_at = name, now
    if id_number:
        person.id_number = id_number
    db.flush()
    return person


def person_principal(
    db: Session, person: Person, *, acr: str | None = None, amr: tuple[str, ...] = (), claims: dict[str, object] | None = None
) -> Principal:
    """The principal of a signed-in person; NoDepartment while nobody has placed them in one."""
    if not person.active:
        raise Forbidden("this person's access to the hub has been withdrawn; ask your department's administrator")
    roles = frozenset(Role(r) for r in person.roles) & PERSON_ROLES
    department = repository.department_by_id(db, person.department_id) if person.department_id else None
    platform_only = roles == {Role.PLATFORM_ADMIN}
    if (department is None and not platform_only) or not roles:
        raise NoDepartment(
            f"{person.name}, you are signed in, but no department has given you a department and roles on this hub yet. "
            f"Ask your department's administrator to add you (your person id: {person.id}). "
            f"(您已登录，但尚未被分配部门和角色，请联系本部门管理员)"
        )
    if department is not None and not department.active:
        raise Forbidden(f"your department {department.name} is deactivated on this hub; ask the platform's administrators")
    return Principal(
        subject=person.id,
        roles=roles,
        department_id=department.id if department else None,
        department_code=department.code if department else None,
        person_id=person.id,
        display_name=person.name,
        acr=acr,
        amr=amr,
        claims=dict(claims or {}),
    )


def get_person(db: Session, *, who: Principal, person_id: str) -> Person:
    """A person the caller may see (the platform: everyone; a department: its own and the unplaced)."""
    person = repository.get_person(db, who, person_id)
    if person is None:
        raise NotFound(f"person {person_id} not found")
    return person


def assign_person(db: Session, *, who: Principal, person_id: str, data: PersonAssign, if_match: str | None = None) -> Person:
    """Give a person a department and roles (or withdraw them): the platform anywhere, a department's
    administrator within their own department and only department_admin / window."""
    person = get_person(db, who=who, person_id=person_id)
    check_if_match(if_match, person.version, what="person")
    roles = sorted({Role(r) for r in data.roles})
    if set(roles) - PERSON_ROLES:
        raise Invalid(
            "a person can be given platform_admin, department_admin or window (department_system is for systems)",
            errors=[{"field": "roles", "message": "not a role for a person"}],
        )
    department_id = data.department_id
    if not who.is_platform_admin:
        if department_id != who.department_id and department_id is not None:
            raise Forbidden("a department's administrator places people in their own department only")
        if set(roles) - DEPARTMENT_GIVES:
            raise Forbidden("a department's administrator may give department_admin and window only")
        if person.department_id not in (None, who.department_id):
            raise NotFound(f"person {person_id} not found")
    if department_id is not None:
        department = repository.department_by_id(db, department_id)
        if department is None:
            raise Invalid(f"department {department_id} does not exist", errors=[{"field": "department_id", "message": "unknown"}])
    elif roles and roles != [Role.PLATFORM_ADMIN]:
        raise Invalid(
            "department_id is required for department_admin and window",
            errors=[{"field": "department_id", "message": "required"}],
        )
    before = {"department_id": person.department_id, "roles": list(person.roles), "active": person.active}
    person.department_id = department_id
    person.roles = [r.value for r in roles]
    if data.active is not None:
        person.active = data.active
    person.assigned_by = who.subject
    db.flush()
    audit.record(
        db,
        actor=who,
        action="person.assign",
        object_type="person",
        object_id=person.id,
        detail={"before": before, "department_id": department_id, "roles": person.roles, "active": person.active},
    )
    return person
