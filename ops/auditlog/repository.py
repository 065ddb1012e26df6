"""Every query of the audit log, scoped to what the caller may see."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from ops.audit import AuditRecord, subject_ref
from ops.auditlog.merkle import Node
from ops.auditlog.models import LogCheckpoint, LogEntry, LogKey, LogNode, LogTimestamp
from ops.auth import Principal, Role
from ops.db import utcnow

# An audit record of an access to shared data names the providing department under this key of
# `detail`, so that the provider may see (and prove) who used its data.
PROVIDER_KEY = "provider_department_id"


def readable_records(who: Principal) -> Select[AuditRecord]:
    """Audit records the caller may see: all for an admin, its department's, or the holder's own."""
    query = select(AuditRecord)
    if who.is_platform_admin:
        return query
    if who.has(Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM) and who.department_id:
        # its own actions, and accesses by others to the data it provides
        provider = AuditRecord.detail[PROVIDER_KEY].as_string()
        return query.where(or_(AuditRecord.department_id == who.department_id, provider == who.department_id))
    if who.has(Role.HOLDER) and who.holder_code:
        return query.where(AuditRecord.subject_ref == subject_ref(who.holder_code))
    return query.where(AuditRecord.id.is_(None))  # sees nothing


def readable_record(db: Session, who: Principal, audit_id: int) -> AuditRecord | None:
    return db.scalars(readable_records(who).where(AuditRecord.id == audit_id)).first()


def list_records(
    db: Session,
    who: Principal,
    *,
    after_id: int | None,
    limit: int,
    action: str | None = None,
    object_type: str | None = None,
    object_id: str | None = None,
) -> list[AuditRecord]:
    """Newest first, continuing below `after_id`; `limit + 1` rows so the caller knows if more follow."""
    query = readable_records(who).order_by(AuditRecord.id.desc()).limit(limit + 1)
    if after_id is not None:
        query = query.where(AuditRecord.id < after_id)
    if action:
        query = query.where(AuditRecord.action == action)
    if object_type:
        query = query.where(AuditRecord.object_type == object_type)
    if object_id:
        query = query.where(AuditRecord.object_id == object_id)
    return list(db.scalars(query))


def tree_size(db: Session) -> int:
    last = db.scalar(select(func.max(LogEntry.index)))
    return 0 if last is None else int(last) + 1


def nodes(db: Session, wanted: set[Node]) -> dict[Node, bytes]:
    """Hashes of the named perfect subtrees (level 0 = leaves)."""
    found: dict[Node, bytes] = {}
    leaves = sorted(i for level, i in wanted if level == 0)
    upper = sorted(n for n in wanted if n[0] > 0)
    for chunk in range(0, len(leaves), 500):
        part = leaves[chunk : chunk + 500]
        for index, value in db.execute(select(LogEntry.index, LogEntry.leaf_hash).where(LogEntry.index.in_(part))):
            found[(0, int(index))] = bytes.fromhex(value)
    by_level: dict[int, list[int]] = {}
    for level, position in upper:
        by_level.setdefault(level, []).append(position)
    if by_level:
        # one primary-key probe per level (a row-value IN is not an index lookup on every database)
        where = or_(*(and_(LogNode.level == level, LogNode.position.in_(ps)) for level, ps in by_level.items()))
        for level, position, value in db.execute(select(LogNode.level, LogNode.position, LogNode.hash).where(where)):
            found[(int(level), int(position))] = bytes.fromhex(value)
    return found


def node(db: Session, level: int, position: int) -> bytes | None:
    """The stored hash of one perfect subtree, if it is stored."""
    return nodes(db, {(level, position)}).get((level, position))


def audit_ids_between(db: Session, low: int, high: int) -> set[int]:
    """Ids strictly between low and high held by an audit record or by a log entry."""
    records = select(AuditRecord.id).where(AuditRecord.id > low, AuditRecord.id < high)
    logged = select(LogEntry.audit_id).where(LogEntry.audit_id > low, LogEntry.audit_id < high)
    return {int(i) for i in db.scalars(records)} | {int(i) for i in db.scalars(logged)}


def entry_for(db: Session, audit_id: int) -> LogEntry | None:
    return db.scalars(select(LogEntry).where(LogEntry.audit_id == audit_id)).first()


def _since(db: Session, lookback: timedelta | None) -> datetime | None:
    """Only records written after (time of the last logged record - lookback) can still be missing."""
    if lookback is None:
        return None
    last = select(LogEntry.audit_id).order_by(LogEntry.index.desc()).limit(1).scalar_subquery()
    newest = db.scalar(select(AuditRecord.at).where(AuditRecord.id == last))
    # a record stamped in the future by a skewed clock must not hide the ones written since
    return None if newest is None else min(newest, utcnow()) - lookback


def unsequenced(db: Session, *, older_than: datetime, limit: int, lookback: timedelta | None = None) -> list[AuditRecord]:
    """Committed audit records not yet in the log and older than the grace period, by id.

    With `lookback`, only records written within that time before the last logged one are
    considered (the sequencer's cheap path); without it the whole table is searched (verify).
    """
    logged = select(LogEntry.audit_id).where(LogEntry.audit_id == AuditRecord.id).exists()
    query = select(AuditRecord).where(~logged, AuditRecord.at < older_than)
    since = _since(db, lookback)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    return list(db.scalars(query.order_by(AuditRecord.id).limit(limit)))


def count_unsequenced(db: Session, *, lookback: timedelta | None = None) -> int:
    logged = select(LogEntry.audit_id).where(LogEntry.audit_id == AuditRecord.id).exists()
    query = select(func.count()).select_from(AuditRecord).where(~logged)
    since = _since(db, lookback)
    if since is not None:
        query = query.where(AuditRecord.at >= since)
    return int(db.scalar(query) or 0)


def entries_with_records(db: Session, batch: int = 5000) -> Iterator[tuple[LogEntry, AuditRecord | None]]:
    """Every leaf in log order with the audit record it points at (None when that row is gone)."""
    last = -1
    while True:
        rows = db.execute(
            select(LogEntry, AuditRecord)
            .join(AuditRecord, AuditRecord.id == LogEntry.audit_id, isouter=True)
            .where(LogEntry.index > last)
            .order_by(LogEntry.index)
            .limit(batch)
        ).all()
        if not rows:
            return
        yield from ((entry, record) for entry, record in rows)
        last = rows[-1][0].index


def latest_checkpoint(db: Session) -> LogCheckpoint | None:
    return db.scalars(select(LogCheckpoint).order_by(LogCheckpoint.id.desc()).limit(1)).first()


def checkpoints(db: Session) -> list[LogCheckpoint]:
    return list(db.scalars(select(LogCheckpoint).order_by(LogCheckpoint.tree_size, LogCheckpoint.id)))


def checkpoint_covering(db: Session, size: int) -> LogCheckpoint | None:
    """The latest checkpoint of exactly this size."""
    query = select(LogCheckpoint).where(LogCheckpoint.tree_size == size).order_by(LogCheckpoint.id.desc()).limit(1)
    return db.scalars(query).first()


def active_key(db: Session) -> LogKey | None:
    query = select(LogKey).where(LogKey.retired_at.is_(None)).order_by(LogKey.created_at.desc()).limit(1)
    return db.scalars(query).first()


def all_keys(db: Session) -> list[LogKey]:
    return list(db.scalars(select(LogKey).order_by(LogKey.created_at)))


def awaiting_timestamp(db: Session, limit: int) -> list[LogCheckpoint]:
    """Checkpoints without a time stamp yet, oldest first."""
    stamped = select(LogTimestamp.checkpoint_id)
    query = select(LogCheckpoint).where(LogCheckpoint.id.not_in(stamped)).order_by(LogCheckpoint.id).limit(limit)
    return list(db.scalars(query))


def count_awaiting_timestamp(db: Session) -> int:
    stamped = select(LogTimestamp.checkpoint_id)
    query = select(func.count()).select_from(LogCheckpoint).where(LogCheckpoint.id.not_in(stamped))
    return int(db.scalar(query) or 0)
