"""Writing an archive package to object storage, with the audit-log evidence of its record, and reading it back."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from ops import audit
from ops.archive import repository
from ops.archive.bagit import digest, write_bag
from ops.archive.checks import CHECKPOINT, INCLUSIONS, PACKAGE_METADATA
from ops.archive.models import ArchivePackage
from ops.audit import AuditRecord
from ops.auditlog import service as auditlog
from ops.auth import Principal
from ops.errors import Conflict, NotFound
from ops.storage import ObjectStore, get_bytes


@dataclass(frozen=True)
class Contents:
    """What a record class puts into its package: payload files (names under data/) and bag-info lines."""

    record_class: str
    identifier: str
    department_id: str | None
    files: dict[str, bytes]
    info: dict[str, str]
    audit_object: tuple[str, str]  # (object_type, object_id) of the audit records that concern the record
    # Which of those audit records are about this record (a seal's records cover all its uses: one use's only).
    audit_filter: Callable[[AuditRecord], bool] | None = None
    # When the record's retention period starts (its expiry or revocation, its closing, its sealing).
    retention_from: datetime | None = None
    # Only the object's audit records of [since, until) (one use among a busy seal's thousands).
    audit_window: tuple[datetime, datetime] | None = None


def audit_evidence(
    db: Session,
    *,
    object_type: str,
    object_id: str,
    keep: Callable[[AuditRecord], bool] | None = None,
    window: tuple[datetime, datetime] | None = None,
) -> dict[str, bytes]:
    """The audit records about one object in the log (of a time window, those `keep` keeps), each with its inclusion
    proof against the latest checkpoint."""
    since, until = window if window is not None else (None, None)
    records: list[AuditRecord] = audit.records_for(
        db, object_type=object_type, object_id=object_id, limit=1000, since=since, until=until
    )
    if keep is not None:
        records = [r for r in records if keep(r)]
    found = auditlog.evidence(db, records)
    if found is None:
        raise Conflict("no audit-log checkpoint has been signed yet; the hub signs one within a minute, retry shortly")
    proofs = [
        {
            "record": auditlog.canonical_record(record).decode(),
            "leaf_index": index,
            "tree_size": found.checkpoint.tree_size,
            "proof": [base64.b64encode(p).decode() for p in path],
        }
        for record, index, path in found.proofs
    ]
    if not proofs:
        raise Conflict(
            f"no audit record of {object_type} {object_id} is in a signed checkpoint yet; retry within a minute",
            headers={"Retry-After": "60"},
        )
    checkpoint = found.checkpoint
    document = {
        "body": checkpoint.body,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
        "public_key": found.public_key,
    }
    return {CHECKPOINT: _json(document), INCLUSIONS: _json(proofs)}


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()


def build(db: Session, contents: Contents, *, organisation: str) -> bytes:
    """The zipped bag of a record: its files, the package metadata and the audit-log evidence."""
    files = dict(contents.files)
    object_type, object_id = contents.audit_object
    files.update(
        audit_evidence(db, object_type=object_type, object_id=object_id, keep=contents.audit_filter, window=contents.audit_window)
    )
    files[PACKAGE_METADATA] = _json({"record_class": contents.record_class, "identifier": contents.identifier})
    info = {"Source-Organization": organisation, "External-Identifier": contents.identifier, **contents.info}
    return write_bag(files, info=info, root=_root(contents.identifier))


def _root(identifier: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in identifier)


def store_package(db: Session, *, who: Principal, storage: ObjectStore, contents: Contents, organisation: str) -> ArchivePackage:
    """Build the package, put it in object storage, record it (and the use in the audit trail)."""
    data = build(db, contents, organisation=organisation)
    stored = storage.put([data])
    package = ArchivePackage(
        record_class=contents.record_class,
        record_id=contents.identifier,
        department_id=contents.department_id,
        object_key=stored.key,
        sm3=digest("sm3", data),
        size=stored.size,
        file_name=f"{_root(contents.identifier)}.zip",
        created_by=who.subject,
        retention_from=contents.retention_from,
    )
    db.add(package)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="archive.package",
        object_type=contents.audit_object[0],
        object_id=contents.audit_object[1],
        purpose="电子档案归档",
        detail={"package": package.id, "sha256": stored.key, "size": stored.size},
    )
    return package


def packages(db: Session, *, record_class: str, record_id: str) -> list[ArchivePackage]:
    return repository.packages_of(db, record_class=record_class, record_id=record_id)


def package_bytes(
    db: Session, *, who: Principal, storage: ObjectStore, record_class: str, record_id: str, package_id: str
) -> tuple[ArchivePackage, bytes]:
    """A package's zip, read back from object storage (checked against its key), the download recorded."""
    package = repository.package_of(db, record_class=record_class, record_id=record_id, package_id=package_id)
    if package is None:
        raise NotFound(f"archive package {package_id} of {record_id} not found")
    if package.disposed_at is not None:
        raise NotFound(
            f"archive package {package_id} of {record_id} was disposed of on {package.disposed_at.date().isoformat()}; "
            "its tombstone is at /archive/tombstones"
        )
    data = get_bytes(storage, package.object_key)
    audit.record(
        db,
        actor=who,
        action="archive.download",
        object_type="archive_package",
        object_id=package.id,
        purpose="电子档案利用",
        detail={"record": record_id},
    )
    return package, data
