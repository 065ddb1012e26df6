"""A department fetches a holder's certificate (一证通办); the sealed copy (OFD or PDF) is downloaded."""

from __future__ import annotations

from sqlalchemy.orm import Session

from certhub import repository
from certhub.accesses import record_access
from certhub.common import not_found
from certhub.models import (
    Certificate,
)
from ops import audit
from ops.auth import Principal
from ops.codes import citizen_id_problem, uscc_problem
from ops.db import utcnow
from ops.errors import Forbidden, Invalid, NotFound
from ops.storage import ObjectStore, get_bytes


def fetch_for_department(db: Session, *, who: Principal, holder_code: str, type_code: str, use_cause: str) -> Certificate:
    """A department fetches a holder's certificate of a type: with an authorisation or as its issuer."""
    department_id = who.require_department()
    holder = holder_code.strip().upper()
    type_code = type_code.strip().upper()
    if citizen_id_problem(holder) and uscc_problem(holder):
        # Name the problem of the kind of code it looks like: 18 digits (or 17 and X) is a 公民身份号码.
        personal = len(holder) == 18 and holder[:17].isdigit() and holder[17] in "0123456789X"
        what, problem = ("公民身份号码", citizen_id_problem(holder)) if personal else ("统一社会信用代码", uscc_problem(holder))
        raise Invalid(
            "holder_code is neither a valid 公民身份号码 nor a valid 统一社会信用代码",
            errors=[{"field": "holder_code", "message": f"not a valid {what}: {problem}"}],
        )
    ctype = repository.type_by_code(db, type_code)
    if ctype is None:
        raise Invalid(
            f"certificate type {type_code} is not in the catalogue", errors=[{"field": "type_code", "message": "unknown"}]
        )
    authorisation = repository.active_authorisation(
        db, holder_code=holder, department_id=department_id, type_code=type_code, now=utcnow()
    )
    certificate = repository.current_for_holder(db, holder, type_code)
    is_issuer = certificate is not None and certificate.issuer_department_id == department_id
    if authorisation is None and not is_issuer:
        raise Forbidden(
            f"no authorisation exists: the holder has not authorised your department to use their {ctype.name}, "
            "or the authorisation has expired or been withdrawn"
        )
    if certificate is None:
        raise NotFound(f"the holder has no {ctype.name}")
    record_access(
        db,
        who=who,
        known=True,
        holder_code=holder,
        identifier=certificate.identifier,
        action="fetch",
        use_cause=use_cause,
    )
    return certificate


def record_denied_fetch(db: Session, *, who: Principal, holder_code: str, type_code: str, use_cause: str, reason: str) -> None:
    """A refused fetch is recorded too (in its own transaction, since the request's is rolled back)."""
    audit.record(
        db,
        actor=who,
        action="certificate.fetch",
        object_type="certificate_type",
        object_id=type_code[:200],
        purpose=use_cause,
        outcome="denied",
        subject=holder_code.strip().upper(),
        detail={"reason": reason},
    )


COPY_MEDIA_TYPES = {"ofd": "application/ofd", "pdf": "application/pdf"}


def sealed_copy(
    db: Session, *, who: Principal, storage: ObjectStore, identifier: str, use_cause: str, fmt: str | None = None
) -> tuple[Certificate, bytes, str]:
    """The sealed copy in `fmt` (``ofd`` or ``pdf``; None: the one the certificate has), for the holder, the issuer,
    or a department with an authorisation; recorded. Returns (certificate, bytes, format).
    Anyone else is told the certificate is not found, as for an unknown one."""
    if fmt is not None and fmt not in COPY_MEDIA_TYPES:
        raise Invalid(f"unknown copy format {fmt!r}; ask for ofd or pdf", errors=[{"field": "format", "message": "ofd or pdf"}])
    certificate = repository.one_certificate(db, repository.downloadable_certificates(who, now=utcnow()), identifier)
    if certificate is None:
        raise not_found(identifier)
    keys = {"ofd": certificate.ofd_key, "pdf": certificate.pdf_key}
    has = [name for name, key in keys.items() if key is not None]
    if not has:
        raise NotFound(f"certificate {identifier} has no sealed copy (it was issued without one)")
    chosen = fmt or has[0]
    key = keys[chosen]
    if key is None:
        raise NotFound(f"certificate {identifier} has no {chosen.upper()} copy; its copy is {has[0].upper()}")
    data = get_bytes(storage, key)
    record_access(
        db,
        who=who,
        known=True,
        holder_code=certificate.holder_code,
        identifier=identifier,
        action="download",
        use_cause=use_cause,
    )
    return certificate, data, chosen


def pdf_copy(db: Session, *, who: Principal, storage: ObjectStore, identifier: str, use_cause: str) -> tuple[Certificate, bytes]:
    """The sealed PDF copy (see :func:`sealed_copy`)."""
    certificate, data, _ = sealed_copy(db, who=who, storage=storage, identifier=identifier, use_cause=use_cause, fmt="pdf")
    return certificate, data
