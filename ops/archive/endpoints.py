"""HTTP API of archive packages: 四性检测 of an uploaded package or transfer (no database involved in the check);
retention, legal holds, disposal lists and tombstones, transfers (the platform)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile

from ops.archive import service
from ops.archive.schemas import (
    CheckReportRead,
    DisposalCreate,
    DisposalRead,
    HoldCreate,
    HoldRead,
    HoldRelease,
    RecordDueRead,
    RetentionRead,
    TombstoneRead,
    TransferCreate,
    TransferReportRead,
)
from ops.auth import PlatformAdmin, Principal, Role, require_roles
from ops.db import DbSession, HubRoute, utcnow, writes
from ops.errors import Invalid, PayloadTooLarge
from ops.pagination import Page, whole_page
from ops.timestamps import ZonedDatetime

MAX_TRUST_BYTES = 1024 * 1024


def _single_query_values(request: Request) -> None:
    """Refuse (422) a query parameter given twice: every filter here takes one value, never the last of several."""
    repeated = sorted({k for k in request.query_params if len(request.query_params.getlist(k)) > 1})
    if repeated:
        raise Invalid(
            f"query parameter given more than once: {', '.join(repeated)}",
            errors=[{"field": k, "in": "query", "message": "give it once"} for k in repeated],
        )


router = APIRouter(prefix="/archive", tags=["archive"], route_class=HubRoute, dependencies=[Depends(_single_query_values)])
Checker = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM))]


@router.post("/check", response_model=CheckReportRead, summary="四性检测 of an archive package (zip)")
def check_package(
    request: Request,
    who: Checker,
    file: Annotated[UploadFile, File(description="the package: a zipped BagIt bag")],
    trust: Annotated[
        list[UploadFile] | None,
        File(description="keys known from outside the package: a JWKS, the page of /audit/log/keys (JSON, repeatable)"),
    ] = None,
    as_of: Annotated[
        str | None,
        Form(description="a past time (ISO 8601 with a zone): did the time-stamp evidence hold then, and which stamp carried it"),
    ] = None,
) -> Any:
    """Authenticity, integrity, usability and security of the package on its own, each check with its reason."""
    moment = service.parse_as_of(as_of, now=utcnow()) if as_of is not None else None
    data = _read(file)
    profiles = getattr(request.app.state, "archive_profiles", {})
    return service.check_bytes(data, profiles, _anchors(trust), moment).as_dict()


def _read(file: UploadFile) -> bytes:
    data = file.file.read(service.MAX_PACKAGE_BYTES + 1)
    if len(data) > service.MAX_PACKAGE_BYTES:
        raise PayloadTooLarge(f"a package is at most {service.MAX_PACKAGE_BYTES} bytes")
    return data


def _anchors(trust: list[UploadFile] | None) -> service.Trust | None:
    if not trust:
        return None
    try:
        return service.Trust.from_documents([json.loads(t.file.read(MAX_TRUST_BYTES)) for t in trust])
    except ValueError as exc:
        raise Invalid(f"a trust file cannot be read: {exc}", errors=[{"field": "trust", "message": str(exc)}]) from exc


@router.post("/check-transfer", response_model=TransferReportRead, summary="Check a transfer (移交) on receipt")
def check_transfer(
    request: Request,
    who: Checker,
    file: Annotated[UploadFile, File(description="the transfer: a zipped BagIt bag of packages")],
    trust: Annotated[list[UploadFile] | None, File(description="keys known from outside the packages (JSON)")] = None,
) -> Any:
    """The transfer's fixity, its manifest against the zips it holds, and 四性检测 of every package."""
    data = _read(file)
    profiles = getattr(request.app.state, "archive_profiles", {})
    return service.check_transfer_bytes(data, profiles, _anchors(trust)).as_dict()


def _retention(request: Request) -> dict[str, int]:
    years: dict[str, int] = request.app.state.settings.archive_retention
    return years


@router.get("/retention", response_model=RetentionRead, summary="The retention period (保管期限) of each record class")
def retention(request: Request, _who: PlatformAdmin) -> Any:
    return {"years": _retention(request)}


@router.get("/due", response_model=Page[RecordDueRead], summary="Records due for disposal (到期档案)")
def due(
    request: Request,
    db: DbSession,
    _who: PlatformAdmin,
    record_class: Annotated[str | None, Query(max_length=40)] = None,
    as_of: Annotated[ZonedDatetime | None, Query(description="the moment to compute at (default now)")] = None,
) -> Any:
    """Every record whose retention period has run out, held ones included (see /archive/holds)."""
    found = service.due_records(db, retention=_retention(request), as_of=as_of or utcnow(), record_class=record_class)
    return whole_page([RecordDueRead.model_validate(d.as_dict()) for d in found])


@router.post("/holds", status_code=201, response_model=HoldRead, summary="Put a record under legal hold (冻结)")
def place_hold(body: HoldCreate, db: DbSession, who: PlatformAdmin) -> Any:
    """While the hold is not released, the record is not disposed of: a disposal of it answers 409 naming the hold."""
    return service.place_hold(db, who=who, record_class=body.record_class, record_id=body.record_id, reason=body.reason)


@router.get("/holds", response_model=Page[HoldRead], summary="The legal holds in force")
def list_holds(
    db: DbSession,
    _who: PlatformAdmin,
    record_class: Annotated[str | None, Query(max_length=40)] = None,
    record_id: Annotated[str | None, Query(max_length=80)] = None,
) -> Any:
    return whole_page([HoldRead.model_validate(h) for h in service.holds(db, record_class=record_class, record_id=record_id)])


@router.post("/holds/{hold_id}/release", response_model=HoldRead, summary="Release a legal hold")
def release_hold(hold_id: str, body: HoldRelease, db: DbSession, who: PlatformAdmin) -> Any:
    return service.release_hold(db, who=who, hold_id=hold_id, reason=body.reason)


@router.post("/disposals", status_code=201, response_model=DisposalRead, summary="Propose a disposal list (销毁清单)")
def propose_disposal(body: DisposalCreate, request: Request, db: DbSession, who: PlatformAdmin) -> Any:
    """The records named (each must be due and not held: 409 names the hold or the date it is kept until), or every
    due record of `record_class` not under hold. Nothing is destroyed until the list is approved."""
    records = [(r.record_class, r.record_id) for r in body.records] if body.records else None
    if records is None and body.record_class is None:
        raise Invalid("name the records or a record_class", errors=[{"field": "records", "message": "records or record_class"}])
    return service.propose_disposal(db, who=who, retention=_retention(request), records=records, record_class=body.record_class)


@router.get("/disposals/{list_id}", response_model=DisposalRead, summary="A disposal list")
def read_disposal(list_id: str, db: DbSession, _who: PlatformAdmin) -> Any:
    return service.get_disposal(db, list_id)


@router.post("/disposals/{list_id}/approve", response_model=Page[TombstoneRead], summary="Approve a disposal list")
def approve_disposal(list_id: str, request: Request, db: DbSession, who: PlatformAdmin) -> Any:
    """A platform administrator (with a second factor) approves: each record is checked again, its packages are
    destroyed and each leaves a tombstone; answers the tombstones."""
    stones = service.approve_disposal(
        db, who=who, storage=request.app.state.storage, retention=_retention(request), list_id=list_id
    )
    return whole_page([TombstoneRead.model_validate(t) for t in stones])


@router.get("/tombstones", response_model=Page[TombstoneRead], summary="What was disposed of (销毁记录)")
def list_tombstones(
    db: DbSession,
    _who: PlatformAdmin,
    record_class: Annotated[str | None, Query(max_length=40)] = None,
    record_id: Annotated[str | None, Query(max_length=80)] = None,
) -> Any:
    stones = service.tombstones(db, record_class=record_class, record_id=record_id)
    return whole_page([TombstoneRead.model_validate(t) for t in stones])


@router.post(
    "/transfers",
    summary="Export a transfer (移交): the packages of a class written in a period, as one BagIt bag",
    response_class=Response,
    responses={200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}}},
)
@writes  # the transfer is in the audit trail
def transfer(body: TransferCreate, request: Request, db: DbSession, who: PlatformAdmin) -> Response:
    made = service.build_transfer(
        db, who=who, storage=request.app.state.storage, record_class=body.record_class, since=body.since,
        until=body.until, organisation=request.app.state.settings.public_url,
    )  # fmt: skip
    return Response(
        made.data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{made.file_name}"'}
    )
