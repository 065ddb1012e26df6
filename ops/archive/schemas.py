"""Request and response models of archive packages."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class FindingRead(BaseModel):
    property: str  # authenticity 真实性, integrity 完整性, usability 可用性, security 安全性
    check: str
    ok: bool
    reason: str
    file: str | None


class CheckReportRead(BaseModel):
    ok: bool
    record_class: str | None
    identifier: str | None
    properties: dict[str, bool]
    findings: list[FindingRead]


class ArchivePackageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    record_class: str
    record_id: str
    file_name: str
    object_key: str  # SHA-256 of the zip
    sm3: str
    size: int
    created_at: datetime
    created_by: str
