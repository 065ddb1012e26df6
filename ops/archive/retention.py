"""Retention (保管期限), legal holds, disposal (销毁) and its tombstones.

A record class keeps its packages for a number of years (`Settings.archive_retention`) from the record's end,
which the class gives when it writes a package (`Contents.retention_from`). A record whose period has run out
is due; the platform proposes a disposal list of due records and a platform administrator approves it (with a
second factor, as every platform administration). Approval destroys the packages' zips in object storage and
leaves one tombstone per package (what, when, by whose approval, its SHA-256 and SM3); the package rows stay,
marked disposed. A legal hold on a record blocks its disposal until released.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ops import audit
from ops.archive import repository
from ops.archive.models import ArchiveHold, ArchivePackage, ArchiveTombstone, DisposalList
from ops.auth import Principal, Role
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.storage import ObjectStore

PROPOSED, DISPOSED = "proposed", "disposed"


def add_years(moment: datetime, years: int) -> datetime:
    """`moment` plus whole calendar years (29 February becomes 28 February in a common year)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RecordDue:
    """A record's retention: its live packages, when its period started, how long it is, when it ends."""

    record_class: str
    record_id: str
    packages: list[ArchivePackage]
    retention_from: datetime | None
    years: int | None  # None: kept for ever
    due_at: datetime | None  # None: never (kept for ever, or the record's end is not known yet)

    def as_dict(self) -> dict[str, Any]:
        return {
            "record_class": self.record_class,
            "record_id": self.record_id,
            "retention_from": self.retention_from,
            "retention_years": self.years,
            "due_at": self.due_at,
            "packages": [p.id for p in self.packages],
        }


def _record_due(record_class: str, record_id: str, packages: list[ArchivePackage], retention: dict[str, int]) -> RecordDue:
    starts = [_aware(p.retention_from) for p in packages if p.retention_from is not None]
    start = max(starts) if starts else None  # the latest package knows the record's end best
    years = retention.get(record_class)
    due = add_years(start, years) if start is not None and years is not None else None
    return RecordDue(record_class, record_id, packages, start, years, due)


def record_due(db: Session, *, retention: dict[str, int], record_class: str, record_id: str) -> RecordDue:
    packages = repository.live_packages_of(db, record_class=record_class, record_id=record_id)
    if not packages:
        raise NotFound(f"no archive package of {record_class} {record_id} is kept (never archived, or disposed of)")
    return _record_due(record_class, record_id, packages, retention)


def due_records(db: Session, *, retention: dict[str, int], as_of: datetime, record_class: str | None = None) -> list[RecordDue]:
    """The records whose retention period has ended by `as_of` (held ones included: the list shows their holds)."""
    grouped: dict[tuple[str, str], list[ArchivePackage]] = {}
    for package in repository.live_packages(db, record_class=record_class):
        grouped.setdefault((package.record_class, package.record_id), []).append(package)
    out = [_record_due(c, r, ps, retention) for (c, r), ps in grouped.items()]
    return sorted((d for d in out if d.due_at is not None and d.due_at <= as_of), key=lambda d: (d.due_at, d.record_id))


def _hold_text(hold: ArchiveHold) -> str:
    return (
        f"{hold.record_class} {hold.record_id} is under legal hold {hold.id} "
        f"(placed by {hold.placed_by} on {_aware(hold.placed_at).date().isoformat()}: {hold.reason})"
    )


def _require_platform(who: Principal, action: str) -> None:
    if Role.PLATFORM_ADMIN not in who.roles:
        raise Forbidden(f"{action} needs the platform administrator role")


def _reason(text: str, what: str) -> str:
    text = (text or "").strip()
    if not 2 <= len(text) <= 500:
        raise Invalid(f"give the {what} (2..500 characters)", errors=[{"field": "reason", "message": "2..500 characters"}])
    return text


def place_hold(db: Session, *, who: Principal, record_class: str, record_id: str, reason: str) -> ArchiveHold:
    """Put a record under legal hold (the platform): its packages are kept until the hold is released."""
    _require_platform(who, "a legal hold")
    reason = _reason(reason, "reason for the hold")
    if not repository.packages_of(db, record_class=record_class, record_id=record_id):
        raise NotFound(f"no archive package of {record_class} {record_id}")
    hold = ArchiveHold(record_class=record_class, record_id=record_id, reason=reason, placed_by=who.subject, placed_at=utcnow())
    db.add(hold)
    db.flush()
    audit.record(
        db, actor=who, action="archive.hold", object_type="archive_record", object_id=f"{record_class}/{record_id}",
        purpose=reason, detail={"hold": hold.id},
    )  # fmt: skip
    return hold


def release_hold(db: Session, *, who: Principal, hold_id: str, reason: str) -> ArchiveHold:
    _require_platform(who, "releasing a legal hold")
    reason = _reason(reason, "reason for the release")
    hold = repository.hold(db, hold_id)
    if hold is None:
        raise NotFound(f"legal hold {hold_id} not found")
    if hold.released_at is not None:
        raise Conflict(f"legal hold {hold_id} was already released on {_aware(hold.released_at).date().isoformat()}")
    hold.released_at, hold.released_by, hold.release_reason = utcnow(), who.subject, reason
    db.flush()
    audit.record(
        db, actor=who, action="archive.hold.release", object_type="archive_record",
        object_id=f"{hold.record_class}/{hold.record_id}", purpose=reason, detail={"hold": hold.id},
    )  # fmt: skip
    return hold


def holds(db: Session, *, record_class: str | None = None, record_id: str | None = None) -> list[ArchiveHold]:
    return repository.active_holds(db, record_class=record_class, record_id=record_id)


def _refuse_held(db: Session, record_class: str, record_id: str) -> None:
    held = repository.active_holds(db, record_class=record_class, record_id=record_id)
    if held:
        raise Conflict(
            f"{_hold_text(held[0])}; release the hold before disposing of the record",
            extra={"hold": held[0].id, "record_class": record_class, "record_id": record_id},
        )


def _refuse_not_due(due: RecordDue, as_of: datetime) -> None:
    if due.years is None:
        raise Conflict(f"{due.record_class} records are kept permanently (永久): {due.record_id} is never due for disposal")
    if due.due_at is None:
        raise Conflict(f"the end of {due.record_class} {due.record_id} is not known yet: its retention has not started")
    if due.due_at > as_of:
        raise Conflict(
            f"{due.record_class} {due.record_id} is kept until {due.due_at.date().isoformat()} "
            f"({due.years} years from {due.retention_from.date().isoformat() if due.retention_from else '?'}); "
            "it is not due for disposal"
        )


def propose_disposal(
    db: Session,
    *,
    who: Principal,
    retention: dict[str, int],
    records: list[tuple[str, str]] | None = None,
    record_class: str | None = None,
    as_of: datetime | None = None,
) -> DisposalList:
    """A disposal list (the platform): the records named, each due and not held (else 409 naming why), or every
    due record of `record_class` not under hold."""
    _require_platform(who, "a disposal list")
    now = utcnow()
    as_of = now if as_of is None else _aware(as_of)
    if as_of > now:
        raise Invalid("as_of cannot be in the future", errors=[{"field": "as_of", "message": "not after now"}])
    chosen: list[RecordDue] = []
    if records:
        for cls, rid in dict.fromkeys(records):
            due = record_due(db, retention=retention, record_class=cls, record_id=rid)
            _refuse_held(db, cls, rid)
            _refuse_not_due(due, as_of)
            chosen.append(due)
    else:
        held = {(h.record_class, h.record_id) for h in repository.active_holds(db, record_class=record_class)}
        chosen = [
            d for d in due_records(db, retention=retention, as_of=as_of, record_class=record_class)
            if (d.record_class, d.record_id) not in held
        ]  # fmt: skip
        if not chosen:
            raise Conflict("no record is due for disposal (held records are left out)")
    items = [
        {**d.as_dict(), "retention_from": d.retention_from.isoformat() if d.retention_from else None,
         "due_at": d.due_at.isoformat() if d.due_at else None}
        for d in chosen
    ]  # fmt: skip
    listing = DisposalList(as_of=as_of, items=items, status=PROPOSED, created_at=now, created_by=who.subject)
    db.add(listing)
    db.flush()
    audit.record(
        db, actor=who, action="archive.disposal.propose", object_type="archive_disposal", object_id=listing.id,
        detail={"records": len(items)},
    )  # fmt: skip
    return listing


def get_disposal(db: Session, list_id: str) -> DisposalList:
    listing = repository.disposal_list(db, list_id)
    if listing is None:
        raise NotFound(f"disposal list {list_id} not found")
    return listing


def approve_disposal(
    db: Session, *, who: Principal, storage: ObjectStore, retention: dict[str, int], list_id: str
) -> list[ArchiveTombstone]:
    """Approve a proposed list (the platform): each record is checked again (a hold placed since, a retention
    lengthened since: 409 and nothing is disposed of), then its packages' zips are destroyed, each leaving a
    tombstone, and the disposal is in the audit trail."""
    _require_platform(who, "approving a disposal list")
    listing = get_disposal(db, list_id)
    if listing.status != PROPOSED:
        raise Conflict(f"disposal list {list_id} is {listing.status}, not awaiting approval")
    now = utcnow()
    planned: list[tuple[RecordDue, list[ArchivePackage]]] = []
    for item in listing.items:
        cls, rid = str(item["record_class"]), str(item["record_id"])
        _refuse_held(db, cls, rid)
        due = record_due(db, retention=retention, record_class=cls, record_id=rid)
        _refuse_not_due(due, now)
        wanted = set(item["packages"])
        planned.append((due, [p for p in due.packages if p.id in wanted]))
    stones: list[ArchiveTombstone] = []
    doomed: set[str] = set()
    for due, packages in planned:
        for package in packages:
            package.disposed_at = now
            stone = ArchiveTombstone(
                record_class=due.record_class,
                record_id=due.record_id,
                package_id=package.id,
                package_sha256=package.object_key,
                package_sm3=package.sm3,
                package_size=package.size,
                retention_from=due.retention_from,
                retention_years=due.years or 0,
                disposal_list_id=listing.id,
                proposed_by=listing.created_by,
                approved_by=who.subject,
                disposed_at=now,
            )
            db.add(stone)
            stones.append(stone)
            doomed.add(package.object_key)
        audit.record(
            db, actor=who, action="archive.dispose", object_type="archive_record",
            object_id=f"{due.record_class}/{due.record_id}", purpose="电子档案销毁",
            detail={"disposal_list": listing.id, "packages": [p.id for p in packages],
                    "sha256": [p.object_key for p in packages]},
        )  # fmt: skip
    listing.status, listing.approved_by, listing.approved_at = DISPOSED, who.subject, now
    db.flush()
    # Last, once every row is written: the zips go (a key another kept package shares stays).
    for key in sorted(doomed):
        if not repository.key_still_used(db, key) and storage.exists(key):
            storage.delete(key)
    return stones


def tombstones(db: Session, *, record_class: str | None = None, record_id: str | None = None) -> list[ArchiveTombstone]:
    return repository.tombstones(db, record_class=record_class, record_id=record_id)
