"""Every query of the certhub domain, scoped to what the caller may see."""

from __future__ import annotations

import functools
import json
import os
import secrets
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Integer,
    Select,
    String,
    and_,
    any_,
    bindparam,
    delete,
    false,
    func,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from certhub.models import (
    Access,
    Authorisation,
    Certificate,
    CertificateStatus,
    CertificateType,
    Counter,
    Delegation,
    Feedback,
    HubKey,
    Objection,
    ObjectionStatus,
    ServiceItem,
    ServiceMaterial,
    ServiceState,
    ShortCode,
    StatusReservation,
    TrustedHub,
    UsedNonce,
)
from ops.auth import Principal, Role
from ops.db import table_of, utcnow
from ops.identity.models import Department
from ops.pagination import fetch_page, keyset, page_of

# ---- types ---------------------------------------------------------------------------------


def type_by_code(db: Session, code: str) -> CertificateType | None:
    return db.scalars(select(CertificateType).where(CertificateType.code == code)).first()


# The stamps of an issuance's type (by code) and issuing department (by id), in one statement: what the
# in-process snapshots of both (certhub.issuance) are checked against on every issuance.
_types = table_of(CertificateType)
_departments = table_of(Department)
_ISSUING_STAMPS = (
    select(_types.c.id, _types.c.version, _types.c.updated_at, _departments.c.version, _departments.c.updated_at)
    .select_from(_types.join(_departments, true()))  # one row of each: their product is one row
    .where(_types.c.code == bindparam("code"), _departments.c.id == bindparam("department_id"))
)


def issuing_stamps(db: Session, *, type_code: str, department_id: str) -> tuple[str, str, str] | None:
    """(type id, the type's stamp, the department's stamp), a stamp being its version and time of change;
    None when either is missing."""
    row = db.connection().execute(_ISSUING_STAMPS, {"code": type_code, "department_id": department_id}).first()
    if row is None:
        return None
    return row[0], f"{row[1]}:{row[2].isoformat()}", f"{row[3]}:{row[4].isoformat()}"


def type_by_id(db: Session, type_id: str) -> CertificateType | None:
    return db.get(CertificateType, type_id)


def list_types(db: Session, *, include_inactive: bool) -> list[CertificateType]:
    query = select(CertificateType).order_by(CertificateType.code)
    if not include_inactive:
        query = query.where(CertificateType.active.is_(True))
    return list(db.scalars(query))


# ---- certificates ----------------------------------------------------------------------------


# What a caller may do with a certificate is part of the query that finds it: a certificate the caller has
# no business with reads exactly like one that does not exist (identifiers can be computed from public data:
# the issuer code, sequential serials, the check character), so every refusal is the same 404.


def _issuer_staff(who: Principal) -> bool:
    return who.has(Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM) and who.department_id is not None


def _scoped(conditions: list[ColumnElement[bool]]) -> Select[Certificate]:
    return select(Certificate).where(or_(*conditions) if conditions else false())


def _held(holder_code: str | None, type_codes: Sequence[str] | None) -> list[ColumnElement[bool]]:
    """The certificates of the holder a caller acts for, limited to `type_codes` (None: every type)."""
    if not holder_code:
        return []
    held = Certificate.holder_code == holder_code
    return [and_(held, Certificate.type_code.in_(list(type_codes))) if type_codes is not None else held]


def readable_certificates(who: Principal) -> Select[Certificate]:
    """Certificates the caller may read: all (platform), the ones it issued (department), its own (holder)."""
    if who.is_platform_admin:
        return select(Certificate)
    conditions = _held(who.holder_code if who.has(Role.HOLDER) else None, None)
    if _issuer_staff(who):
        conditions.append(Certificate.issuer_department_id == who.department_id)
    return _scoped(conditions)


def get_certificate(db: Session, who: Principal, identifier: str) -> Certificate | None:
    return db.scalars(readable_certificates(who).where(Certificate.identifier == identifier)).first()


def disputable_certificates(
    who: Principal, *, holder_code: str | None = None, type_codes: Sequence[str] | None = None
) -> Select[Certificate]:
    """Certificates the caller may file an objection (异议) against, which suspends them: all (platform), the
    ones its department issued, and those of `holder_code`, the holder it acts for (itself, or one whose
    delegation lets it object) of `type_codes` (None: every type)."""
    if who.is_platform_admin:
        return select(Certificate)
    conditions = _held(holder_code, type_codes)
    if _issuer_staff(who):
        conditions.append(Certificate.issuer_department_id == who.department_id)
    return _scoped(conditions)


def _used_by_department(department_id: str) -> ColumnElement[bool]:
    """The department has a recorded use of the certificate (a verification, a fetch, a download)."""
    return (
        select(Access.id)
        .where(Access.certificate_identifier == Certificate.identifier, Access.accessor_department_id == department_id)
        .exists()
    )


def used_certificates(who: Principal) -> Select[Certificate]:
    """Certificates the caller's department has used (verified, fetched, downloaded)."""
    return _scoped([_used_by_department(who.department_id)] if who.department_id else [])


def reportable_certificates(
    who: Principal, *, holder_code: str | None = None, type_codes: Sequence[str] | None = None
) -> Select[Certificate]:
    """Certificates the caller may report a suspected error in (反馈纠错): the ones it may dispute, and the
    ones its department used."""
    if who.is_platform_admin:
        return select(Certificate)
    conditions = _held(holder_code, type_codes)
    if _issuer_staff(who):
        conditions.append(Certificate.issuer_department_id == who.department_id)
    if who.department_id:
        conditions.append(_used_by_department(who.department_id))
    return _scoped(conditions)


def downloadable_certificates(who: Principal, *, now: datetime) -> Select[Certificate]:
    """Certificates whose PDF copy the caller may download: all (platform), its own (holder), the ones its
    department issued or holds the holder's authorisation (授权用证) for, still in force, for the type."""
    if who.is_platform_admin:
        return select(Certificate)
    conditions = _held(who.holder_code, None)
    if who.department_id:
        authorised = (
            select(Authorisation.id)
            .where(
                Authorisation.holder_code == Certificate.holder_code,
                Authorisation.grantee_department_id == who.department_id,
                Authorisation.type_code == Certificate.type_code,
                Authorisation.revoked_at.is_(None),
                Authorisation.valid_until > now,
            )
            .exists()
        )
        conditions += [Certificate.issuer_department_id == who.department_id, authorised]
    return _scoped(conditions)


def one_certificate(db: Session, scope: Select[Certificate], identifier: str) -> Certificate | None:
    """The certificate `identifier` among `scope` (one of the scopes above)."""
    return db.scalars(scope.where(Certificate.identifier == identifier)).first()


def holder_certificate(
    db: Session, holder_code: str, identifier: str, *, type_codes: Sequence[str] | None = None
) -> Certificate | None:
    """One of the holder's certificates, of `type_codes` (None: every type)."""
    return one_certificate(db, _scoped(_held(holder_code, type_codes)), identifier)


def issued_certificate(db: Session, department_id: str, identifier: str) -> Certificate | None:
    """A certificate the department issued (for change, revocation, objections)."""
    query = select(Certificate).where(Certificate.identifier == identifier, Certificate.issuer_department_id == department_id)
    return db.scalars(query).first()


def certificate_by_identifier(db: Session, identifier: str) -> Certificate | None:
    """Any certificate: for the hub's own work (verification, tests), never to answer a caller about it."""
    return db.scalars(select(Certificate).where(Certificate.identifier == identifier)).first()


def certificate_by_id(db: Session, certificate_id: str) -> Certificate | None:
    return db.get(Certificate, certificate_id)


def insert_certificates(db: Session, rows: list[dict[str, Any]]) -> None:
    """Certificates already signed, in one multi-row INSERT (bulk issuance)."""
    db.connection().execute(insert(table_of(Certificate)), rows)


def statuses_of(db: Session, identifiers: Iterable[str]) -> dict[str, tuple[str, str]]:
    """identifier → (status, holder code) of the certificates among `identifiers` (one query)."""
    wanted = list(identifiers)
    if not wanted:
        return {}
    table = table_of(Certificate)
    query = select(table.c.identifier, table.c.status, table.c.holder_code).where(table.c.identifier.in_(wanted))
    return {row[0]: (row[1], row[2]) for row in db.connection().execute(query)}


def by_idempotency_key(db: Session, department_id: str, key: str) -> Certificate | None:
    query = select(Certificate).where(Certificate.issuer_department_id == department_id, Certificate.idempotency_key == key)
    return db.scalars(query).first()


def idempotency_keys(db: Session, department_id: str, keys: Iterable[str]) -> dict[str, tuple[str | None, str]]:
    """The department's certificates stored under any of `keys`: key → (request hash, identifier)."""
    query = select(Certificate.idempotency_key, Certificate.request_hash, Certificate.identifier).where(
        Certificate.issuer_department_id == department_id, Certificate.idempotency_key.in_(list(keys))
    )
    return {key: (digest, identifier) for key, digest, identifier in db.execute(query) if key is not None}


def list_certificates(
    db: Session,
    who: Principal,
    *,
    cursor: str | None,
    limit: int,
    holder_code: str | None = None,
    type_code: str | None = None,
    status: str | None = None,
) -> tuple[list[Certificate], str | None]:
    query = readable_certificates(who)
    if holder_code:
        query = query.where(Certificate.holder_code == holder_code)
    if type_code:
        query = query.where(Certificate.type_code == type_code)
    if status:
        query = query.where(Certificate.status == status)
    rows = list(db.scalars(keyset(query, created=Certificate.issued_at, ident=Certificate.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit, created="issued_at")


def issued_between(db: Session, *, since: datetime, until: datetime, department_id: str | None = None) -> list[str]:
    """The identifiers of the certificate versions issued in [since, until), oldest first (for archiving)."""
    query = select(Certificate.identifier).where(Certificate.issued_at >= since, Certificate.issued_at < until)
    if department_id:
        query = query.where(Certificate.issuer_department_id == department_id)
    return list(db.scalars(query.order_by(Certificate.issued_at, Certificate.id)))


def holder_certificates(db: Session, holder_code: str, *, type_codes: list[str] | None = None) -> list[Certificate]:
    """A holder's current certificates (superseded versions left out), newest first."""
    query = select(Certificate).where(
        Certificate.holder_code == holder_code, Certificate.status != CertificateStatus.SUPERSEDED.value
    )
    if type_codes:
        query = query.where(Certificate.type_code.in_(type_codes))
    return list(db.scalars(query.order_by(Certificate.issued_at.desc(), Certificate.id)))


def current_for_holder(db: Session, holder_code: str, type_code: str) -> Certificate | None:
    """The holder's current certificate of a type: active first, then suspended or revoked ones."""
    rows = holder_certificates(db, holder_code, type_codes=[type_code])
    order = {CertificateStatus.ACTIVE.value: 0, CertificateStatus.SUSPENDED.value: 1}
    rows.sort(key=lambda c: (order.get(c.status, 2), -c.issued_at.timestamp()))
    return rows[0] if rows else None


def flagged_indices(db: Session, statuses: list[str]) -> list[int]:
    return list(db.scalars(select(Certificate.status_index).where(Certificate.status.in_(statuses))))


def max_status_index(db: Session) -> int:
    return int(db.scalar(select(func.max(Certificate.status_index))) or 0)


# ---- counters ---------------------------------------------------------------------------------


_counters = table_of(Counter)
# Built once (a statement built per call costs more than it runs on SQLite); executed through the session,
# which flushes first as for any query.
_BUMP = (
    update(_counters)
    .where(_counters.c.name == bindparam("counter"))
    .values(next_value=_counters.c.next_value + bindparam("count"))
    .returning(_counters.c.next_value)
)


def allocate(db: Session, name: str, count: int = 1) -> int:
    """Reserve `count` consecutive values of a counter; returns the first (row-locked until commit).

    A counter's first use creates it; when two transactions create it at the same moment, the one whose
    insert meets the other's takes its values from the counter the other created."""
    params = {"counter": name, "count": count}
    row = db.execute(_BUMP, params).first()
    if row is not None:
        return int(row[0]) - count
    try:
        with db.begin_nested():
            db.execute(insert(Counter).values(name=name, next_value=1 + count))
    except IntegrityError:
        return int(db.execute(_BUMP, params).scalar_one()) - count
    return 1


# ---- status-list indices -----------------------------------------------------------------------

STATUS_LIST_BLOCK = 131_072  # statuslist.MIN_BITS: the lists grow by this many positions


def status_indices(db: Session, count: int = 1, *, taken: Collection[int] = ()) -> list[int]:
    """`count` free status-list positions, each drawn at random among the free ones (W3C Bitstring Status
    List, privacy considerations: a position must not reveal the order of issuance).

    Taking them takes the "status-index" counter's row lock until commit, so allocations take turns and
    each sees the certificates of those before it: no two certificates get one position, on SQLite or
    PostgreSQL. The counter counts the positions ever handed out, and the lists are kept at most half full
    (at least STATUS_LIST_BLOCK long), so a random position is free at least every other time: of
    4·count + 64 drawn at once, checked in one query, fewer than `count` are free with odds below 2⁻⁶⁰;
    then the positions after the highest one held make up the rest.

    `taken`: positions this transaction drew before but has not written yet (bulk issuance writes a chunk
    while it signs the next): they count as held."""
    handed_out = allocate(db, "status-index", count) + count - 1
    size = max(1, (2 * handed_out + STATUS_LIST_BLOCK - 1) // STATUS_LIST_BLOCK) * STATUS_LIST_BLOCK
    drawn = _random.sample(range(size), min(size, 4 * count + 64))
    held = _held_positions(db, drawn)
    if taken:
        held |= set(taken)
    found = [index for index in drawn if index not in held][:count]
    if len(found) < count:
        highest_reserved = db.scalar(select(func.max(StatusReservation.status_index))) or 0
        after = max([max_status_index(db), highest_reserved, *found, *taken]) + 1
        found += range(after, after + count - len(found))
    return found


# Reservations older than this are deleted: by then each is held by its certificate or was abandoned (a
# process uses a block of positions for at most certhub.reservations.BLOCK_SECONDS).
RESERVATION_KEEP = timedelta(hours=1)


def reserve_status_indices(db: Session, count: int) -> list[int]:
    """`count` free status-list positions, drawn as :func:`status_indices` draws them and recorded as
    reserved, so that no other allocation draws them until they are used: for a transaction of its own,
    committed at once (certhub.reservations), which also deletes the reservations past RESERVATION_KEEP."""
    found = status_indices(db, count)  # takes the counter's row lock: reservations take turns
    now = utcnow()
    db.execute(delete(StatusReservation).where(StatusReservation.reserved_at < now - RESERVATION_KEEP))
    db.execute(insert(table_of(StatusReservation)), [{"status_index": index, "reserved_at": now} for index in found])
    return found


_T = TypeVar("_T")


class _Positions(secrets.SystemRandom):
    """The system's random source, whose sample of a range reads it once for all the values drawn (random.sample
    reads it once per value: 2,064 reads for a bulk chunk of 500, about 10 µs a certificate)."""

    def sample(self, population: Sequence[_T], k: int, *, counts: Iterable[int] | None = None) -> list[_T]:
        if counts is not None or not isinstance(population, range) or population.step != 1 or not 0 <= k <= len(population):
            return super().sample(population, k, counts=counts)
        size = len(population)
        # 64-bit words below the largest multiple of `size` are kept (the rest refused): each is then uniform
        # over range(size); a value drawn twice counts once and another is drawn, as random.sample does.
        limit = (1 << 64) // size * size
        chosen: dict[int, None] = {}  # the values in the order drawn
        while len(chosen) < k:
            missing = k - len(chosen)
            for word in memoryview(os.urandom(8 * (missing + missing // 4 + 4))).cast("Q"):
                if word < limit:
                    chosen[word % size] = None
                    if len(chosen) == k:
                        break
        start = population.start
        return [start + value for value in chosen]  # type: ignore[misc]


_random = _Positions()


def _held_positions(db: Session, positions: list[int]) -> set[int]:
    """Those of `positions` a certificate holds or a hub process has reserved (one query). The positions go as
    one parameter, an array on PostgreSQL and a JSON array on SQLite: a bulk chunk draws thousands, and an IN
    list of that many parameters is a query text the driver parses again on every call (it keeps only short
    ones), and SQLAlchemy renders again for every call."""
    dialect = db.get_bind().dialect.name
    value: Any = positions if dialect == "postgresql" else json.dumps(positions)
    return set(db.scalars(_held_statement(dialect), {"positions": value}))


@functools.cache
def _held_statement(dialect: str) -> Any:
    certificates, reservations = table_of(Certificate), table_of(StatusReservation)

    def among(column: Any) -> ColumnElement[bool]:
        if dialect == "postgresql":
            return column == any_(bindparam("positions", type_=ARRAY(Integer)))  # type: ignore[no-any-return]
        drawn = func.json_each(bindparam("positions", type_=String)).table_valued("value")
        return column.in_(select(drawn.c.value))  # type: ignore[no-any-return]

    certified = select(certificates.c.status_index).where(among(certificates.c.status_index))
    reserved = select(reservations.c.status_index).where(among(reservations.c.status_index))
    return certified.union_all(reserved)


# ---- hub keys, nonces ---------------------------------------------------------------------------


def active_hub_key(db: Session) -> HubKey | None:
    query = select(HubKey).where(HubKey.retired_at.is_(None)).order_by(HubKey.created_at.desc())
    return db.scalars(query).first()


def hub_keys(db: Session) -> list[HubKey]:
    return list(db.scalars(select(HubKey).order_by(HubKey.created_at)))


def claim_nonces(db: Session, nonces: dict[str, str], *, expires_at: datetime) -> dict[str, bool]:
    """Record nonces (nonce → audience) as used, in one statement; which of them were new.

    Safe under concurrency: a nonce another transaction claimed first comes back False."""
    if not nonces:
        return {}
    now = utcnow()
    rows = [{"nonce": n, "audience": a, "used_at": now, "expires_at": expires_at} for n, a in nonces.items()]
    new = set(db.connection().execute(_claim_statement(db.get_bind().dialect.name), rows).scalars())
    return {n: n in new for n in nonces}


@functools.cache
def _claim_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING nonce: one statement, compiled once; executed with many
    rows, SQLAlchemy sends them as one multi-row INSERT ("insertmanyvalues")."""
    table = table_of(UsedNonce)
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement: Any = pg_insert(table).on_conflict_do_nothing(index_elements=["nonce"])
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(table).on_conflict_do_nothing(index_elements=["nonce"])
    return statement.returning(table.c.nonce)


def purge_nonces(db: Session, before: datetime) -> int:
    result = db.execute(delete(UsedNonce).where(UsedNonce.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# ---- authorisations, delegations, accesses -------------------------------------------------------


def active_authorisation(
    db: Session, *, holder_code: str, department_id: str, type_code: str, now: datetime
) -> Authorisation | None:
    query = select(Authorisation).where(
        Authorisation.holder_code == holder_code,
        Authorisation.grantee_department_id == department_id,
        Authorisation.type_code == type_code,
        Authorisation.revoked_at.is_(None),
        Authorisation.valid_until > now,
    )
    return db.scalars(query.order_by(Authorisation.valid_until.desc())).first()


def authorisations_of(db: Session, holder_code: str) -> list[Authorisation]:
    return list(db.scalars(_authorisations(holder_code).order_by(Authorisation.created_at.desc())))


def authorisations_page(
    db: Session, holder_code: str, *, cursor: str | None, limit: int
) -> tuple[list[Authorisation], str | None]:
    query = _authorisations(holder_code)
    return fetch_page(db, query, created=Authorisation.created_at, ident=Authorisation.id, cursor=cursor, limit=limit)


def _authorisations(holder_code: str) -> Select[Authorisation]:
    return select(Authorisation).where(Authorisation.holder_code == holder_code)


def authorisation_of(db: Session, holder_code: str, authorisation_id: str) -> Authorisation | None:
    query = select(Authorisation).where(Authorisation.id == authorisation_id, Authorisation.holder_code == holder_code)
    return db.scalars(query).first()


def delegations_of(db: Session, holder_code: str, *, cursor: str | None, limit: int) -> tuple[list[Delegation], str | None]:
    query = select(Delegation).where(Delegation.holder_code == holder_code)
    return fetch_page(db, query, created=Delegation.created_at, ident=Delegation.id, cursor=cursor, limit=limit)


def delegation_of(db: Session, holder_code: str, delegation_id: str) -> Delegation | None:
    query = select(Delegation).where(Delegation.id == delegation_id, Delegation.holder_code == holder_code)
    return db.scalars(query).first()


def active_delegation(db: Session, *, holder_code: str, agent_code: str, now: datetime) -> list[Delegation]:
    query = select(Delegation).where(
        Delegation.holder_code == holder_code,
        Delegation.agent_code == agent_code,
        Delegation.revoked_at.is_(None),
        Delegation.valid_until > now,
    )
    return list(db.scalars(query))


def active_departments(db: Session) -> list[tuple[str, str]]:
    """(code, name) of every active department, by name: the public directory of verifiers and grantees."""
    query = select(Department.code, Department.name).where(Department.active.is_(True)).order_by(Department.name)
    return [(code, name) for code, name in db.execute(query)]


def insert_accesses(db: Session, rows: list[dict[str, Any]]) -> None:
    """Access-list rows in one multi-row INSERT."""
    db.connection().execute(insert(table_of(Access)), rows)


def accesses_of(db: Session, holder_code: str, *, cursor: str | None, limit: int) -> tuple[list[Access], str | None]:
    query = select(Access).where(Access.holder_code == holder_code)
    rows = list(db.scalars(keyset(query, created=Access.at, ident=Access.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit, created="at")


def access_of(db: Session, holder_code: str, access_id: str) -> Access | None:
    """One use of the holder's certificates (another holder's is not found)."""
    return db.scalars(select(Access).where(Access.id == access_id, Access.holder_code == holder_code)).first()


# ---- objections -------------------------------------------------------------------------------


def _holders_certificate_ids(holder_code: str) -> Select[str]:
    return select(Certificate.id).where(Certificate.holder_code == holder_code)


def readable_objections(who: Principal) -> Select[Objection]:
    """Objections the caller may see: all (platform), those to its issued certificates or filed by it
    (department), those it filed or that concern its own certificates (holder)."""
    query = select(Objection)
    if who.is_platform_admin:
        return query
    conditions = []
    if who.department_id:
        conditions += [Objection.issuer_department_id == who.department_id, Objection.filer_department_id == who.department_id]
    if who.holder_code:
        own = Objection.certificate_id.in_(_holders_certificate_ids(who.holder_code))
        conditions += [Objection.filed_by == who.holder_code, own]
    return query.where(or_(*conditions) if conditions else false())


def get_objection(db: Session, who: Principal, objection_id: str) -> Objection | None:
    return db.scalars(readable_objections(who).where(Objection.id == objection_id)).first()


def issuer_objection(db: Session, department_id: str, objection_id: str) -> Objection | None:
    """An objection to a certificate the department issued (the issuer decides it)."""
    query = select(Objection).where(Objection.id == objection_id, Objection.issuer_department_id == department_id)
    return db.scalars(query).first()


def list_objections(
    db: Session, who: Principal, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Objection], str | None]:
    query = readable_objections(who)
    if status:
        query = query.where(Objection.status == status)
    return fetch_page(db, query, created=Objection.created_at, ident=Objection.id, cursor=cursor, limit=limit)


def open_objections(db: Session, *, certificate_id: str | None = None) -> list[Objection]:
    query = select(Objection).where(Objection.status == ObjectionStatus.OPEN.value)
    if certificate_id:
        query = query.where(Objection.certificate_id == certificate_id)
    return list(db.scalars(query))


# ---- reports of a suspected error (反馈纠错) ---------------------------------------------------------


def readable_feedback(who: Principal) -> Select[Feedback]:
    """Reports the caller may see: all (platform), those to its issued certificates or filed by it
    (department), those it filed or that concern its own certificates (holder)."""
    query = select(Feedback)
    if who.is_platform_admin:
        return query
    conditions = []
    if who.department_id:
        conditions += [Feedback.issuer_department_id == who.department_id, Feedback.filer_department_id == who.department_id]
    if who.holder_code:
        own = Feedback.certificate_id.in_(_holders_certificate_ids(who.holder_code))
        conditions += [Feedback.filed_by == who.holder_code, own]
    return query.where(or_(*conditions) if conditions else false())


def get_feedback(db: Session, who: Principal, feedback_id: str) -> Feedback | None:
    return db.scalars(readable_feedback(who).where(Feedback.id == feedback_id)).first()


def issuer_feedback(db: Session, department_id: str, feedback_id: str) -> Feedback | None:
    """A report about a certificate the department issued (the issuer answers it)."""
    query = select(Feedback).where(Feedback.id == feedback_id, Feedback.issuer_department_id == department_id)
    return db.scalars(query).first()


def list_feedback(
    db: Session, who: Principal, *, status: str | None, cursor: str | None, limit: int
) -> tuple[list[Feedback], str | None]:
    query = readable_feedback(who)
    if status:
        query = query.where(Feedback.status == status)
    return fetch_page(db, query, created=Feedback.created_at, ident=Feedback.id, cursor=cursor, limit=limit)


# ---- trust list -------------------------------------------------------------------------------


def trusted_hubs(db: Session) -> list[TrustedHub]:
    return list(db.scalars(select(TrustedHub).order_by(TrustedHub.issuer)))


def trusted_hub(db: Session, hub_id: str) -> TrustedHub | None:
    return db.get(TrustedHub, hub_id)


def trusted_hub_by_issuer(db: Session, issuer: str) -> TrustedHub | None:
    return db.scalars(select(TrustedHub).where(TrustedHub.issuer == issuer)).first()


# ---- service items (政务服务事项) ------------------------------------------------------------------


def editable_services(who: Principal) -> Select[ServiceItem]:
    """The service versions the caller may edit: every one for the platform, its own department's otherwise."""
    query = select(ServiceItem)
    if not who.is_platform_admin:
        query = query.where(ServiceItem.department_id == (who.department_id or ""))
    return query


def service_versions(db: Session, code: str, *, who: Principal | None = None) -> list[ServiceItem]:
    """A service's versions, oldest first: every one the caller may edit, or (no caller) the published ones."""
    query = editable_services(who) if who is not None else published_services_query(current_only=False)
    return list(db.scalars(query.where(ServiceItem.code == code).order_by(ServiceItem.number)))


def published_services_query(*, current_only: bool = True) -> Select[ServiceItem]:
    states = [ServiceState.PUBLISHED.value] if current_only else [ServiceState.PUBLISHED.value, ServiceState.SUPERSEDED.value]
    return select(ServiceItem).where(ServiceItem.state.in_(states))


def current_service(db: Session, code: str) -> ServiceItem | None:
    """The published (current) version of a service."""
    return db.scalars(published_services_query().where(ServiceItem.code == code)).first()


def any_service_version(db: Session, code: str) -> ServiceItem | None:
    """Whether a code is taken, by any department (codes are unique across the hub)."""
    return db.scalars(select(ServiceItem).where(ServiceItem.code == code).limit(1)).first()


def published_services(db: Session) -> list[ServiceItem]:
    return list(db.scalars(published_services_query().order_by(ServiceItem.code)))


def services_for(db: Session, who: Principal) -> list[ServiceItem]:
    """Every version of the services the caller may edit (the latest is the last of each code)."""
    return list(db.scalars(editable_services(who).order_by(ServiceItem.code, ServiceItem.number)))


def materials_of(db: Session, service_ids: Sequence[str]) -> dict[str, list[ServiceMaterial]]:
    """The materials of service versions, in their order, by version id (one statement)."""
    found: dict[str, list[ServiceMaterial]] = {i: [] for i in service_ids}
    if service_ids:
        query = select(ServiceMaterial).where(ServiceMaterial.service_id.in_(list(service_ids)))
        for row in db.scalars(query.order_by(ServiceMaterial.service_id, ServiceMaterial.position)):
            found[row.service_id].append(row)
    return found


def department_names_of(db: Session, department_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
    """(统一社会信用代码, name) of departments, by id."""
    ids = list(set(department_ids))
    if not ids:
        return {}
    rows = db.execute(select(Department.id, Department.code, Department.name).where(Department.id.in_(ids)))
    return {row.id: (row.code, row.name) for row in rows}


# ---- 亮证码 (short codes) and public 验真 -----------------------------------------------------------------


def short_code(db: Session, code_hash: str) -> ShortCode | None:
    return db.get(ShortCode, code_hash)


def claim_short_code(db: Session, code_hash: str, *, now: datetime, by: str) -> bool:
    """Mark a short code redeemed; False when another redemption got there first (one use, even in a race)."""
    result = db.execute(
        update(ShortCode)
        .where(ShortCode.code_hash == code_hash, ShortCode.redeemed_at.is_(None))
        .values(redeemed_at=now, redeemed_by=by)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def purge_short_codes(db: Session, before: datetime) -> int:
    result = db.execute(delete(ShortCode).where(ShortCode.expires_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def certificate_by_public_token(db: Session, token_hash: str) -> Certificate | None:
    return db.scalars(select(Certificate).where(Certificate.public_token_hash == token_hash)).first()
