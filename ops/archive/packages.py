"""Writing an archive package to object storage, with the audit-log evidence of its record, and reading it back."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from sqlalchemy.orm import Session

from ops import audit
from ops.archive import repository
from ops.archive.bagit import digest, write_bag
from ops.archive.checks import CHECKPOINT, INCLUSIONS, PACKAGE_METADATA
from ops.archive.models import ArchivePackage
from ops.audit import AuditRecord
from ops.auditlog import repository as log_repository
from ops.auditlog.merkle import inclusion_ranges
from ops.auditlog.tree import canonical_record, subtree_hashes
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


def audit_evidence(db: Session, *, object_type: str, object_id: str) -> dict[str, bytes]:
    """The audit records about one object in the log, each with its inclusion proof against the latest checkpoint."""
    checkpoint = log_repository.latest_checkpoint(db)
    if checkpoint is None:
        raise Conflict("no audit-log checkpoint has been signed yet; the hub signs one within a minute, retry shortly")
    key = next((k for k in log_repository.all_keys(db) if k.key_id == checkpoint.key_id), None)
    records: list[AuditRecord] = audit.records_for(db, object_type=object_type, object_id=object_id, limit=1000)
    proofs = []
    for record in sorted(records, key=lambda r: r.id):
        entry = log_repository.entry_for(db, record.id)
        if entry is None or entry.index >= checkpoint.tree_size:
            continue  # logged after the checkpoint: a later package will carry it
        path = subtree_hashes(db, inclusion_ranges(entry.index, 0, checkpoint.tree_size))
        proofs.append(
            {
                "record": canonical_record(record).decode(),
                "leaf_index": entry.index,
                "tree_size": checkpoint.tree_size,
                "proof": [base64.b64encode(p).decode() for p in path],
            }
        )
    if not proofs:
        raise Conflict(
            f"no audit record of {object_type} {object_id} is in a signed checkpoint yet; retry within a minute",
            headers={"Retry-After": "60"},
        )
    document = {
        "body": checkpoint.body,
        "signature": checkpoint.signature,
        "key_id": checkpoint.key_id,
        "public_key": key.public_key if key else None,
    }
    return {CHECKPOINT: _json(document), INCLUSIONS: _json(proofs)}


def _json(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()


def build(db: Session, contents: Contents, *, organisation: str) -> bytes:
    """The zipped bag of a record: its files, the package metadata and the audit-log evidence."""
    files = dict(contents.files)
    files.update(audit_evidence(db, object_type=contents.audit_object[0], object_id=contents.audit_object[1]))
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
