"""HTTP API of archive packages: 四性检测 of an uploaded package (no database involved in the check)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Request, UploadFile

from ops.archive import service
from ops.archive.schemas import CheckReportRead
from ops.auth import Principal, Role, require_roles
from ops.db import HubRoute
from ops.errors import Invalid, PayloadTooLarge

MAX_TRUST_BYTES = 1024 * 1024
router = APIRouter(prefix="/archive", tags=["archive"], route_class=HubRoute)
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
) -> Any:
    """Authenticity, integrity, usability and security of the package on its own, each check with its reason."""
    data = file.file.read(service.MAX_PACKAGE_BYTES + 1)
    if len(data) > service.MAX_PACKAGE_BYTES:
        raise PayloadTooLarge(f"a package is at most {service.MAX_PACKAGE_BYTES} bytes")
    anchors = None
    if trust:
        try:
            anchors = service.Trust.from_documents([json.loads(t.file.read(MAX_TRUST_BYTES)) for t in trust])
        except ValueError as exc:
            raise Invalid(f"a trust file cannot be read: {exc}", errors=[{"field": "trust", "message": str(exc)}]) from exc
    profiles = getattr(request.app.state, "archive_profiles", {})
    return service.check_bytes(data, profiles, anchors).as_dict()
