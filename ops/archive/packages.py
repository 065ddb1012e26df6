"""Writing an archive package to object storage, with the audit-log evidence of its record, and reading it back."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from ops import audit, timestamping
from ops.archive import repository
from ops.archive.bagit import digest, read_zip, stamp_files, stamp_name, stamped_data, stamped_digest, with_timestamp, write_bag
from ops.archive.checks import CHECKPOINT, INCLUSIONS, PACKAGE_METADATA
from ops.archive.models import ArchivePackage
from ops.audit import AuditRecord
from ops.auditlog import service as auditlog
from ops.auth import Principal
from ops.config import Settings, get_settings
from ops.db import utcnow
from ops.errors import Conflict, HubError, NotFound
from ops.metrics import ARCHIVE_PACKAGES_AWAITING_TIMESTAMP
from ops.storage import ObjectStore, get_bytes

log = logging.getLogger("govhub.archive")
STAMP_BATCH = 50


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
    data, stamp_state, stamped_at, stamp_error, token = _stamped(db, data)
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
        timestamp_state=stamp_state,
        timestamped_at=stamped_at,
        timestamp_error=stamp_error,
    )
    if token is not None:
        note_chain(package, 1, token, get_settings())
    db.add(package)
    db.flush()
    if stamp_state == "awaiting":
        log.warning("archive package %s awaits its time stamp: %s", package.id, stamp_error, extra={"package": package.id})
        ARCHIVE_PACKAGES_AWAITING_TIMESTAMP.set(repository.count_awaiting_timestamp(db))
    audit.record(
        db,
        actor=who,
        action="archive.package",
        object_type=contents.audit_object[0],
        object_id=contents.audit_object[1],
        purpose="电子档案归档",
        detail={"package": package.id, "sha256": stored.key, "size": stored.size, "timestamp": stamp_state},
    )
    return package


def store_each(
    record_ids: Iterable[str], store: Callable[[str], ArchivePackage]
) -> tuple[list[ArchivePackage], list[tuple[str, str]]]:
    """A record class's period: `store` each record's package; a record it refuses with a Conflict (its audit
    records not yet in a signed checkpoint, say) is left out. Returns the packages and, for each record left out,
    why."""
    written: list[ArchivePackage] = []
    skipped: list[tuple[str, str]] = []
    for record_id in record_ids:
        try:
            written.append(store(record_id))
        except Conflict as exc:
            skipped.append((record_id, exc.detail))
    return written, skipped


def _stamped(db: Session, data: bytes) -> tuple[bytes, str, datetime | None, str | None, bytes | None]:
    """The package with its time stamp (`stamped`, and the token), or as it was and why it must wait (`awaiting`)."""
    stamper = timestamping.current_stamper()
    if stamper is None:
        return data, "awaiting", None, "no time-stamp authority is configured", None
    try:
        token = stamper(db, stamped_digest(data))
    except timestamping.StampUnavailable as exc:
        return data, "awaiting", None, str(exc)[:300], None
    return with_timestamp(data, token), "stamped", timestamping.gen_time(token), None, token


def _replace_zip(
    db: Session, storage: ObjectStore, package: ArchivePackage, new: bytes, replaced: list[str], *, action: str, **detail: str
) -> None:
    """The package's zip becomes `new` (stamped): put in object storage, the package pointed at it (key, SM3, size),
    the previous object added to `replaced` once no package uses it, the change in the audit trail (`action`, with
    `detail`)."""
    stored = storage.put([new])
    previous = package.object_key
    package.object_key, package.sm3, package.size = stored.key, digest("sm3", new), stored.size
    db.flush()
    if not repository.object_in_use(db, previous):
        replaced.append(previous)
    audit.record(
        db,
        actor=audit.SYSTEM,
        action=action,
        object_type="archive_package",
        object_id=package.id,
        purpose="电子档案归档",
        detail={"record": package.record_id, **detail, "previous_sha256": previous, "sha256": stored.key, "size": stored.size},
    )


@dataclass(frozen=True)
class StampRun:
    stamped: int
    awaiting: int
    failure: str | None
    replaced: list[str]  # the objects the stamped packages no longer use: deleted once the run is committed


def stamp_awaiting(db: Session, *, storage: ObjectStore, limit: int = STAMP_BATCH) -> StampRun:
    """Time-stamp the packages that await one, oldest first: each stamped zip is put in object storage as the
    package's new object (its key, SM3 and size change; the change is in the audit trail). The unstamped objects
    no package uses any more are returned for the caller to delete after committing."""
    stamper = timestamping.current_stamper()
    stamped, failure = 0, None
    replaced: list[str] = []
    if stamper is None:
        failure = "no time-stamp authority is configured"
    else:
        for package in repository.awaiting_timestamp(db, limit):
            try:
                old = get_bytes(storage, package.object_key)
            except (HubError, OSError) as exc:  # missing or altered in storage: said on the package, the others go on
                package.timestamp_error = f"its object cannot be read from object storage: {exc}"[:300]
                log.error("archive package %s cannot be time-stamped: %s", package.id, exc, extra={"package": package.id})
                continue
            try:
                token = stamper(db, stamped_digest(old))
            except timestamping.StampUnavailable as exc:
                failure = str(exc)[:300]
                package.timestamp_error = failure
                break
            new = with_timestamp(old, token)
            package.timestamp_state, package.timestamped_at = "stamped", timestamping.gen_time(token)
            package.timestamp_error = None
            note_chain(package, 1, token, get_settings())
            _replace_zip(db, storage, package, new, replaced, action="archive.timestamp")
            stamped += 1
        db.flush()
    awaiting = repository.count_awaiting_timestamp(db)
    ARCHIVE_PACKAGES_AWAITING_TIMESTAMP.set(awaiting)
    if failure is not None and awaiting:
        log.warning("%d archive package(s) await a time stamp: %s", awaiting, failure, extra={"awaiting": awaiting})
    return StampRun(stamped=stamped, awaiting=awaiting, failure=failure, replaced=replaced)


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


def weakened(settings: Settings) -> set[str]:
    """Digest algorithms listed as weakened (GOVHUB_SEAL_LTA_WEAKENED_DIGESTS, shared with PDF B-LTA renewal)."""
    return {name.strip().lower().replace("-", "") for name in settings.seal_lta_weakened_digests.split(",") if name.strip()}


def note_chain(package: ArchivePackage, length: int, last: bytes, settings: Settings) -> None:
    """Record on the package its stamp chain: length, the last stamp's authority certificate expiry and digest
    algorithm, and when its renewal is due (the margin before that expiry; at once when it cannot be read)."""
    facts = timestamping.token_facts(last)
    package.stamp_chain_length = length
    package.stamp_expires_at = facts.signer_not_after
    package.stamp_digest_algorithm = (facts.digest_algorithm or "")[:16] or None
    margin = timedelta(days=settings.seal_lta_renewal_margin_days)
    package.stamp_renewal_due_at = facts.signer_not_after - margin if facts.signer_not_after is not None else utcnow()


@dataclass(frozen=True)
class RenewalRun:
    renewed: int
    noted: int  # chains read and recorded, not yet due
    failed: int
    failure: str | None  # why the run stopped (the TSA unreachable), if it did
    replaced: list[str]  # the objects the renewed packages no longer use: deleted once the run is committed


def renew_stamps(
    db: Session, *, storage: ObjectStore, settings: Settings, now: datetime | None = None, limit: int = STAMP_BATCH
) -> RenewalRun:
    """Renew the stamp chains that are due: each gets `timestamp-N.tsr`, a token over the hash of the previous
    token followed by the tag manifest, and the renewed zip becomes the package's new object (as a first stamp
    does). A chain not read yet (a package stamped before chains were recorded) is read and recorded; a failure is
    kept on the package (visible) and retried on the next run."""
    moment = now or utcnow()
    weak = weakened(settings)
    stamper = timestamping.current_stamper()
    renewed = noted = failed = 0
    failure: str | None = None
    replaced: list[str] = []
    for package in repository.due_for_renewal(db, now=moment, weakened=weak, limit=limit):
        try:
            old = get_bytes(storage, package.object_key)
            files = read_zip(old).files
        except (HubError, OSError) as exc:
            package.stamp_renewal_error = f"its object cannot be read from object storage: {exc}"[:300]
            log.error("archive package %s: stamp chain not renewed: %s", package.id, exc, extra={"package": package.id})
            failed += 1
            continue
        names = stamp_files(files)
        if not names:
            package.stamp_renewal_error = "the package holds no time stamp to renew"
            failed += 1
            continue
        if package.stamp_chain_length != len(names):
            note_chain(package, len(names), files[names[-1]], settings)
            if not _due(package, moment, weak):
                noted += 1
                continue
        if "sha256" in weak:
            package.stamp_renewal_error = "the renewal algorithm sha256 is itself listed as weakened; configure a stronger one"
            failed += 1
            continue
        if stamper is None:
            failure = package.stamp_renewal_error = "no time-stamp authority is configured"
            break
        position = len(names) + 1
        data = stamped_data(files, position)
        if data is None:
            package.stamp_renewal_error = "the package has no tag manifest to time-stamp"
            failed += 1
            continue
        try:
            token = stamper(db, hashlib.sha256(data).digest())
        except timestamping.StampUnavailable as exc:
            failure = package.stamp_renewal_error = str(exc)[:300]
            break
        gained = _no_gain(files[names[-1]], token, weak)
        if gained is not None:  # the same (or a shorter-lived) authority: another stamp would prove nothing more
            package.stamp_renewal_error = gained[:300]
            package.stamp_renewal_due_at = moment + timedelta(days=1)
            failed += 1
            continue
        new = with_timestamp(old, token, name=stamp_name(position))
        note_chain(package, position, token, settings)
        package.stamp_renewal_error = None
        _replace_zip(db, storage, package, new, replaced, action="archive.timestamp_renewal", stamp=stamp_name(position))
        renewed += 1
    db.flush()
    if failure is not None:
        log.warning("archive time-stamp renewal stopped: %s", failure)
    return RenewalRun(renewed=renewed, noted=noted, failed=failed, failure=failure, replaced=replaced)


def _no_gain(last: bytes, token: bytes, weak: set[str]) -> str | None:
    """Why a new token would not extend the chain's life (its authority's certificate expires no later than the last
    stamp's, and the last stamp's digest is not weakened), else None."""
    before, after = timestamping.token_facts(last), timestamping.token_facts(token)
    if (before.digest_algorithm or "") in weak:
        return None
    if before.signer_not_after is None or after.signer_not_after is None or after.signer_not_after > before.signer_not_after:
        return None
    return (
        f"the time-stamp authority's certificate expires {after.signer_not_after:%Y-%m-%d}, no later than the last "
        f"stamp's ({before.signer_not_after:%Y-%m-%d}): a renewal would prove nothing more; configure a longer-lived "
        "authority (retried daily)"
    )


def _due(package: ArchivePackage, now: datetime, weak: set[str]) -> bool:
    due_at = package.stamp_renewal_due_at
    return (due_at is not None and due_at <= now) or (package.stamp_digest_algorithm or "") in weak
