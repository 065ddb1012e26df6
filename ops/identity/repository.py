"""Every query of departments, clients and people, scoped to what the caller may see."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from ops.auth import Principal
from ops.identity.models import ApiClient, ClientKey, Department, Person, RetiringSecret
from ops.pagination import keyset, page_of


def readable_departments(who: Principal) -> Select[Department]:
    """Departments the caller may read: all for a platform admin, else its own."""
    query = select(Department)
    if not who.is_platform_admin:
        query = query.where(Department.id == (who.department_id or ""))
    return query


def get_department(db: Session, who: Principal, department_id: str) -> Department | None:
    return db.scalars(readable_departments(who).where(Department.id == department_id)).first()


def department_by_id(db: Session, department_id: str) -> Department | None:
    return db.get(Department, department_id)


def department_by_code(db: Session, code: str) -> Department | None:
    return db.scalars(select(Department).where(Department.code == code)).first()


def list_departments(
    db: Session, who: Principal, *, cursor: str | None, limit: int, region_code: str | None = None, code: str | None = None
) -> tuple[list[Department], str | None]:
    query = readable_departments(who)
    if region_code:
        query = query.where(Department.region_code == region_code)
    if code:
        query = query.where(Department.code == code.strip().upper())
    rows = list(db.scalars(keyset(query, created=Department.created_at, ident=Department.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def readable_clients(who: Principal) -> Select[ApiClient]:
    """Clients the caller may read: all for a platform admin, else its department's."""
    query = select(ApiClient)
    if not who.is_platform_admin:
        query = query.where(ApiClient.department_id == (who.department_id or ""))
    return query


def get_client(db: Session, who: Principal, client_id: str) -> ApiClient | None:
    return db.scalars(readable_clients(who).where(ApiClient.client_id == client_id)).first()


def client_by_client_id(db: Session, client_id: str) -> ApiClient | None:
    return db.scalars(select(ApiClient).where(ApiClient.client_id == client_id)).first()


def client_and_department_active(db: Session, client_id: str) -> tuple[ApiClient, bool | None] | None:
    """A client and whether its department is active (None: it has none, or the department is gone): one query."""
    row = db.execute(
        select(ApiClient, Department.active)
        .outerjoin(Department, Department.id == ApiClient.department_id)
        .where(ApiClient.client_id == client_id)
    ).first()
    return None if row is None else (row[0], row[1])


def all_departments(db: Session, who: Principal) -> list[Department]:
    """Every department the caller may read, newest first (for a chooser, not a paged list)."""
    return list(db.scalars(readable_departments(who).order_by(Department.created_at.desc())))


def all_clients(db: Session, who: Principal) -> list[ApiClient]:
    """Every client the caller may read, newest first."""
    return list(db.scalars(readable_clients(who).order_by(ApiClient.created_at.desc())))


def list_clients(db: Session, who: Principal, *, cursor: str | None, limit: int) -> tuple[list[ApiClient], str | None]:
    query = readable_clients(who)
    rows = list(db.scalars(keyset(query, created=ApiClient.created_at, ident=ApiClient.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def readable_people(who: Principal) -> Select[Person]:
    """People the caller may read: all for a platform admin; for a department's administrator its own
    people and those nobody has placed yet (so that it can add them)."""
    query = select(Person)
    if not who.is_platform_admin:
        query = query.where(or_(Person.department_id == (who.department_id or ""), Person.department_id.is_(None)))
    return query


def get_person(db: Session, who: Principal, person_id: str) -> Person | None:
    return db.scalars(readable_people(who).where(Person.id == person_id)).first()


def person_by_id(db: Session, person_id: str) -> Person | None:
    return db.get(Person, person_id)


def person_by_provider(db: Session, *, issuer: str, subject: str) -> Person | None:
    return db.scalars(select(Person).where(Person.issuer == issuer, Person.subject == subject)).first()


def all_people(db: Session, who: Principal) -> list[Person]:
    """Every person the caller may read, newest first (for the console's list)."""
    return list(db.scalars(readable_people(who).order_by(Person.created_at.desc())))


def list_people(db: Session, who: Principal, *, cursor: str | None, limit: int) -> tuple[list[Person], str | None]:
    rows = list(db.scalars(keyset(readable_people(who), created=Person.created_at, ident=Person.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)
def client_keys(db: Session, client_id: str, *, include_removed: bool = False) -> list[ClientKey]:
    """A client's registered keys (active ones only, unless `include_removed`), oldest first."""
    query = select(ClientKey).where(ClientKey.client_id == client_id)
    if not include_removed:
        query = query.where(ClientKey.revoked_at.is_(None))
    return list(db.scalars(query.order_by(ClientKey.created_at, ClientKey.id)))


def retiring_secrets(db: Session, client_id: str, *, at: datetime | None) -> list[RetiringSecret]:
    """A client's former secrets, newest first; with `at`, only those still accepted at that moment."""
    query = select(RetiringSecret).where(RetiringSecret.client_id == client_id)
    if at is not None:
        query = query.where(RetiringSecret.revoked_at.is_(None), RetiringSecret.expires_at > at)
    return list(db.scalars(query.order_by(RetiringSecret.retired_at.desc(), RetiringSecret.id)))
