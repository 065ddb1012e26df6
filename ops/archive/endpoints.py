"""HTTP API of archive packages: 四性检测 of an uploaded package (no database involved in the check)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from ops.archive import service
from ops.archive.schemas import CheckReportRead
from ops.auth import Principal, Role, require_roles
from ops.db import HubRoute
from ops.errors import PayloadTooLarge

router = APIRouter(prefix="/archive", tags=["archive"], route_class=HubRoute)
Checker = Annotated[Principal, Depends(require_roles(Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM))]


@router.post("/check", response_model=CheckReportRead, summary="四性检测 of an archive package (zip)")
def check_package(
    request: Request, who: Checker, file: Annotated[UploadFile, File(description="the package: a zipped BagIt bag")]
) -> Any:
    """Authenticity, integrity, usability and security of the package on its own, each check with its reason."""
    data = file.file.read(service.MAX_PACKAGE_BYTES + 1)
    if len(data) > service.MAX_PACKAGE_BYTES:
        raise PayloadTooLarge(f"a package is at most {service.MAX_PACKAGE_BYTES} bytes")
    profiles = getattr(request.app.state, "archive_profiles", {})
    return service.check_bytes(data, profiles).as_dict()
