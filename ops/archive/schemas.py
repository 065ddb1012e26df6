"""Request and response models of archive packages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ops.timestamps import ZonedDatetime


class FindingRead(BaseModel):
    property: str  # authenticity 真实性, integrity 完整性, usability 可用性, security 安全性
    check: str
    ok: bool
    reason: str
    file: str | None


class AsOfRead(BaseModel):
    at: datetime
    proven: bool  # the time-stamp evidence held at that time
    stamp: str | None  # the stamp that carried it (timestamp.tsr, timestamp-2.tsr, ...)
    reason: str


class CheckReportRead(BaseModel):
    ok: bool
    record_class: str | None
    identifier: str | None
    properties: dict[str, bool]
    findings: list[FindingRead]
    as_of: AsOfRead | None = None


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
    retention_from: datetime | None = None
    disposed_at: datetime | None = None
    timestamp_state: str = Field(
        description="stamped: the package carries its RFC 3161 time stamp (timestamp.tsr); awaiting: the TSA was "
        "unreachable, the hub adds it later (the package's object then changes); none: written before packages had one"
    )
    timestamped_at: datetime | None = Field(default=None, description="the time stamp's genTime")
    timestamp_error: str | None = Field(default=None, description="why the package still awaits its time stamp")
    stamp_chain_length: int = Field(default=0, description="stamps in its chain (timestamp.tsr, timestamp-2.tsr, ...)")
    stamp_expires_at: datetime | None = Field(default=None, description="the last stamp's TSA certificate expiry")
    stamp_digest_algorithm: str | None = Field(default=None, description="the last stamp's imprint digest algorithm")
    stamp_renewal_due_at: datetime | None = Field(default=None, description="when the chain is next renewed")
    stamp_renewal_error: str | None = Field(default=None, description="why the last renewal failed")


class RecordRef(BaseModel):
    record_class: str = Field(min_length=1, max_length=40, description="certificate_version, sealed_document, sharing_dossier")
    record_id: str = Field(min_length=1, max_length=80)


class HoldCreate(RecordRef):
    reason: str = Field(min_length=2, max_length=500, description="why the record must be kept (a case, an audit)")


class HoldRelease(BaseModel):
    reason: str = Field(min_length=2, max_length=500)


class HoldRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    record_class: str
    record_id: str
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_reason: str | None


class RecordDueRead(BaseModel):
    record_class: str
    record_id: str
    retention_from: datetime | None
    retention_years: int | None
    due_at: datetime | None
    packages: list[str]


class DisposalCreate(BaseModel):
    """Either the records to dispose of, or a record class (every due record of it not under hold)."""

    records: list[RecordRef] | None = Field(default=None, max_length=10_000)
    record_class: str | None = Field(default=None, max_length=40)


class DisposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    as_of: datetime
    status: str  # proposed | disposed
    items: list[dict[str, Any]]
    created_at: datetime
    created_by: str
    approved_by: str | None
    approved_at: datetime | None


class TombstoneRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    record_class: str
    record_id: str
    package_id: str
    package_sha256: str
    package_sm3: str
    package_size: int
    retention_from: datetime | None
    retention_years: int
    disposal_list_id: str
    proposed_by: str
    approved_by: str
    disposed_at: datetime


class RetentionRead(BaseModel):
    years: dict[str, int]  # by record class; a class not listed is kept permanently


class TransferCreate(BaseModel):
    record_class: str = Field(min_length=1, max_length=40)
    since: ZonedDatetime
    until: ZonedDatetime


class PackageCheckRead(BaseModel):
    file: str
    ok: bool
    refused: str | None
    report: CheckReportRead | None


class TransferReportRead(BaseModel):
    ok: bool
    findings: list[FindingRead]
    packages: list[PackageCheckRead]
