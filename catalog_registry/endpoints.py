"""HTTP API of the catalogue (政务数据资源目录)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Header, Query, Request, Response, UploadFile

from catalog_registry import service
from catalog_registry.schemas import (
    DatasetRead,
    DemandAnswer,
    DemandCreate,
    DemandDecline,
    DemandRead,
    EntryCreate,
    EntryRead,
    EntryUpdate,
    ImportResult,
    ResponsibilityList,
    RetireRequest,
    ReviewDecision,
    SearchHit,
    VersionRead,
)
from ops.auth import DepartmentOrAdmin, DepartmentStaff, PlatformAdmin, Principal, require_roles
from ops.db import DbSession, HubRoute, etag, writes
from ops.pagination import Page, whole_page
from ops.storage import read_file_chunks

router = APIRouter(prefix="/catalog", tags=["catalogue"], route_class=HubRoute)

# Anyone acting for the government side: departments, the platform, window systems (not holders).
ClientCaller = Annotated[Principal, Depends(require_roles(*service.SEARCHER_ROLES))]


def _entry(db: DbSession, who: Principal, entry: Any, response: Response | None = None) -> EntryRead:
    view = service.entry_read(db, who=who, entry=entry)
    if response is not None:
        response.headers["ETag"] = etag(view.version.version)
    return view


@router.post("/entries", status_code=201, response_model=EntryRead, summary="Register a catalogue entry (draft)")
def create_entry(body: EntryCreate, db: DbSession, who: DepartmentOrAdmin, response: Response) -> EntryRead:
    """The provider department drafts an entry; the platform may register one for a named provider."""
    entry = service.create_entry(db, who=who, data=body)
    return _entry(db, who, entry, response)


@router.get("/entries", response_model=Page[EntryRead], summary="List catalogue entries the caller may see")
def list_entries(
    db: DbSession,
    who: ClientCaller,
    provider_department_id: str | None = None,
    state: str | None = Query(default=None, description="draft / published / retired"),
    version_state: str | None = Query(default=None, description="e.g. submitted: entries waiting for review"),
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[EntryRead]:
    """Consumers see published and retired entries; providers also their own drafts; the platform everything."""
    items, next_cursor = service.list_entries(
        db,
        who=who,
        provider_department_id=provider_department_id,
        state=state,
        version_state=version_state,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/entries/{entry_id}", response_model=EntryRead, summary="One catalogue entry")
def get_entry(entry_id: str, db: DbSession, who: ClientCaller, response: Response) -> EntryRead:
    """The published version for consumers; the latest version for its provider and the platform."""
    return _entry(db, who, service.get_entry(db, who=who, entry_id=entry_id), response)


@router.put("/entries/{entry_id}/draft", response_model=EntryRead, summary="Edit the entry's draft")
def update_draft(
    entry_id: str,
    body: EntryUpdate,
    db: DbSession,
    who: DepartmentOrAdmin,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EntryRead:
    """Replace the metadata of a draft or returned version (If-Match: the ETag you read)."""
    entry = service.update_draft(db, who=who, entry_id=entry_id, data=body, if_match=if_match)
    return _entry(db, who, entry, response)


@router.post("/entries/{entry_id}/versions", status_code=201, response_model=EntryRead, summary="Start a new version")
def new_version(entry_id: str, body: EntryUpdate, db: DbSession, who: DepartmentOrAdmin, response: Response) -> EntryRead:
    """A change to a published entry: a new draft version that goes through review."""
    entry = service.new_version(db, who=who, entry_id=entry_id, data=body)
    return _entry(db, who, entry, response)


@router.get("/entries/{entry_id}/versions", response_model=Page[VersionRead], summary="Versions of an entry")
def list_versions(entry_id: str, db: DbSession, who: ClientCaller) -> Page[VersionRead]:
    """Every version for the provider and the platform; published ones for everyone else (one page)."""
    return whole_page([VersionRead.model_validate(v) for v in service.list_versions(db, who=who, entry_id=entry_id)])


@router.post("/entries/{entry_id}/submit", response_model=EntryRead, summary="Submit the draft for review")
def submit(
    entry_id: str,
    db: DbSession,
    who: DepartmentOrAdmin,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EntryRead:
    """The provider submits its draft; the platform reviews it."""
    return _entry(db, who, service.submit(db, who=who, entry_id=entry_id, if_match=if_match), response)


@router.post("/entries/{entry_id}/review", response_model=EntryRead, summary="Publish or return a submitted version")
def review(
    entry_id: str,
    body: ReviewDecision,
    db: DbSession,
    who: PlatformAdmin,
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> EntryRead:
    """The platform publishes the submitted version, or returns it with the reason."""
    entry = service.review(db, who=who, entry_id=entry_id, decision=body.decision, reason=body.reason, if_match=if_match)
    return _entry(db, who, entry, response)


@router.post("/entries/{entry_id}/retire", response_model=EntryRead, summary="Retire an entry")
def retire(entry_id: str, body: RetireRequest, db: DbSession, who: DepartmentOrAdmin, response: Response) -> EntryRead:
    """The entry can no longer be shared; it stays readable for history."""
    return _entry(db, who, service.retire(db, who=who, entry_id=entry_id, reason=body.reason), response)


@router.post(
    "/entries/{entry_id}/datasets",
    status_code=201,
    response_model=DatasetRead,
    summary="Upload a new dataset version (CSV or JSON Lines)",
)
def upload_dataset(
    entry_id: str,
    request: Request,
    db: DbSession,
    who: DepartmentOrAdmin,
    file: Annotated[UploadFile, File(description="CSV with a header of item names, or JSON Lines objects")],
) -> Any:
    """The columns must be exactly the entry's information items; every row is checked; all or nothing."""
    media_type = service.media_type_of(file.content_type, file.filename)
    return service.upload_dataset(
        db,
        who=who,
        storage=request.app.state.storage,
        entry_id=entry_id,
        chunks=read_file_chunks(file.file),
        media_type=media_type,
        max_bytes=request.app.state.settings.max_upload_bytes,
    )


@router.get("/entries/{entry_id}/datasets", response_model=Page[DatasetRead], summary="Dataset versions of an entry")
def list_datasets(entry_id: str, db: DbSession, who: DepartmentOrAdmin) -> Page[DatasetRead]:
    """Provider and platform only (one page)."""
    return whole_page(service.list_datasets(db, who=who, entry_id=entry_id))


@router.get("/search", response_model=Page[SearchHit], summary="Search the published catalogue")
def search(
    db: DbSession,
    who: ClientCaller,
    q: str | None = Query(default=None, max_length=100, description="Words to find (Chinese: two characters or more)"),
    provider_department_id: str | None = None,
    sharing_type: str | None = None,
    classification: str | None = None,
    update_cycle: str | None = None,
    is_certificate: bool | None = None,
    cursor: str | None = None,
    limit: int = Query(default=20, ge=1, le=200),
) -> Page[SearchHit]:
    """Full text over name, abstract, item names and provider name; name matches first."""
    hits, next_cursor = service.search(
        db,
        who=who,
        q=q,
        provider_department_id=provider_department_id,
        sharing_type=sharing_type,
        classification=classification,
        update_cycle=update_cycle,
        is_certificate=is_certificate,
        cursor=cursor,
        limit=limit,
    )
    return Page(items=hits, next_cursor=next_cursor)


@router.post("/demands", status_code=201, response_model=DemandRead, summary="Post a data demand (供需对接)")
def post_demand(body: DemandCreate, db: DbSession, who: DepartmentStaff) -> Any:
    """A consumer department asks for data no entry offers yet; name the department you believe holds it."""
    return service.post_demand(db, who=who, data=body)


@router.get("/demands", response_model=Page[DemandRead], summary="Demands of a department")
def list_demands(
    db: DbSession,
    who: DepartmentOrAdmin,
    box: str | None = Query(default=None, description="posted (by the department) or incoming (to it); both if absent"),
    department_id: str | None = Query(default=None, description="Platform only: whose demands"),
    state: str | None = Query(default=None, description="open / answered / declined / withdrawn"),
    cursor: str | None = None,
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[Any]:
    """A department sees what it posted and what is addressed to it (or to any provider)."""
    items, next_cursor = service.list_demands(
        db, who=who, box=box, department_id=department_id, state=state, cursor=cursor, limit=limit
    )
    return Page(items=items, next_cursor=next_cursor)


@router.get("/demands/{demand_id}", response_model=DemandRead, summary="One demand")
def get_demand(demand_id: str, db: DbSession, who: DepartmentOrAdmin, response: Response) -> Any:
    demand = service.get_demand(db, who=who, demand_id=demand_id)
    response.headers["ETag"] = etag(demand.version)
    return demand


@router.post("/demands/{demand_id}/answer", response_model=DemandRead, summary="Answer a demand with an entry")
def answer_demand(
    demand_id: str,
    body: DemandAnswer,
    db: DbSession,
    who: DepartmentStaff,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    """The provider links one of its entries (published, or a new draft it has just registered)."""
    return service.answer_demand(db, who=who, demand_id=demand_id, data=body, if_match=if_match)


@router.post("/demands/{demand_id}/decline", response_model=DemandRead, summary="Decline a demand with the reason")
def decline_demand(
    demand_id: str,
    body: DemandDecline,
    db: DbSession,
    who: DepartmentOrAdmin,
    if_match: Annotated[str | None, Header()] = None,
) -> Any:
    return service.decline_demand(db, who=who, demand_id=demand_id, reason=body.reason, if_match=if_match)


@router.post("/demands/{demand_id}/withdraw", response_model=DemandRead, summary="Withdraw your open demand")
def withdraw_demand(demand_id: str, db: DbSession, who: DepartmentStaff, if_match: Annotated[str | None, Header()] = None) -> Any:
    return service.withdraw_demand(db, who=who, demand_id=demand_id, if_match=if_match)


@router.get(
    "/responsibility-lists/{department_id}",
    response_model=ResponsibilityList,
    summary="A department's sharing responsibility list (共享责任清单)",
    responses={200: {"content": {"text/csv": {}}}},
)
@writes  # the reading is recorded in the audit log
def responsibility_list(
    department_id: str,
    db: DbSession,
    who: ClientCaller,
    format: str = Query(default="json", pattern="^(json|csv)$", description="json, or csv for a spreadsheet"),
) -> Any:
    """The published resources the department is responsible for providing, with their sharing type."""
    report = service.responsibility_list(db, who=who, department_id=department_id)
    if format == "csv":
        return Response(
            service.responsibility_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="responsibility-{report.department_code}.csv"'},
        )
    return report


@router.post(
    "/imports",
    status_code=201,
    response_model=ImportResult,
    summary="Import entries from the catalogue spreadsheet template (CSV)",
)
def import_entries(
    request: Request,
    db: DbSession,
    who: DepartmentOrAdmin,
    file: Annotated[UploadFile, File(description="CSV in the catalogue template; UTF-8")],
    mode: str = Query(default="draft", pattern="^(draft|submit|publish)$", description="draft, submit, or publish (platform)"),
) -> ImportResult:
    """Every row is checked first; if any row is wrong, nothing is imported and each problem names row and column."""
    storage = request.app.state.storage
    stored = storage.put(read_file_chunks(file.file), max_bytes=request.app.state.settings.max_upload_bytes)

    def open_text() -> Any:
        return service.text_lines(storage.open(stored.key))

    report = service.import_entries(db, who=who, open_text=open_text, mode=mode)
    return ImportResult(created=report.created, entry_ids=report.entry_ids)


@router.get(
    "/dcat.jsonld",
    summary="The published catalogue as DCAT-AP JSON-LD",
    responses={200: {"content": {"application/ld+json": {}}}},
)
@writes  # the export is recorded in the audit log
def dcat(
    request: Request,
    db: DbSession,
    who: ClientCaller,
    cursor: str | None = None,
    limit: int = Query(default=service.DCAT_PAGE, ge=1, le=2000),
) -> Response:
    """Catalog, Dataset, Distribution and DataService with their mandatory properties; paged with hydra:next."""
    base = str(request.app.state.settings.public_url).rstrip("/")
    document = service.dcat_catalog(db, who=who, base_url=base, cursor=cursor, limit=limit)
    return Response(json.dumps(document, ensure_ascii=False), media_type="application/ld+json")
