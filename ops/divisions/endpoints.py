"""HTTP API of the division table (GB/T 2260)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Path, Query, UploadFile

from ops.auth import AnyCaller, PlatformAdmin
from ops.db import DbSession, HubRoute
from ops.divisions import service
from ops.divisions.schemas import DivisionPath, DivisionRead, DivisionsLoadedRead, UnknownRegionDepartment
from ops.errors import Invalid
from ops.pagination import Page, whole_page

router = APIRouter(prefix="/divisions", tags=["divisions"], route_class=HubRoute)
MAX_DIVISION_FILE = 2_000_000  # the full national list is about 120 kB


@router.get("", response_model=Page[DivisionRead])
def list_divisions(
    db: DbSession,
    who: AnyCaller,
    parent: Annotated[str | None, Query(max_length=6, description="the children of this division")] = None,
    level: Literal["province", "prefecture", "county"] | None = None,
) -> Page[DivisionRead]:
    """Divisions by code: the provinces, the children of `parent`, or every division of a level (one page)."""
    return whole_page([DivisionRead.model_validate(d) for d in service.list_divisions(db, parent=parent, level=level)])


@router.get("/{code}", response_model=DivisionPath)
def get_division(code: Annotated[str, Path(max_length=6)], db: DbSession, who: AnyCaller) -> Any:
    """A division and the divisions it lies in."""
    division = service.get_division(db, code)
    path = [DivisionRead.model_validate(d) for d in service.path_of(db, code)]
    return DivisionPath(**DivisionRead.model_validate(division).model_dump(), path=path)


@router.put("", response_model=DivisionsLoadedRead)
def replace_divisions(
    db: DbSession,
    who: PlatformAdmin,
    file: Annotated[UploadFile, File(description="CSV: code,name[,level,parent] (UTF-8)")],
    source: Annotated[str, Form(min_length=2, max_length=200, description="where the list comes from")],
) -> Any:
    """Replace the whole division table from a CSV; every line is checked, all or nothing."""
    data = file.file.read(MAX_DIVISION_FILE + 1)
    if len(data) > MAX_DIVISION_FILE:
        raise Invalid(f"a division file is at most {MAX_DIVISION_FILE} bytes", errors=[{"field": "file", "message": "too large"}])
    loaded = service.replace_divisions(db, who=who, rows=service.read_division_file(data), source=source)
    return DivisionsLoadedRead(
        source=loaded.source,
        divisions=loaded.divisions,
        provinces=loaded.provinces,
        prefectures=loaded.prefectures,
        counties=loaded.counties,
        departments_unknown=[UnknownRegionDepartment(id=i, name=n, region_code=c) for i, n, c in loaded.departments_unknown],
    )
