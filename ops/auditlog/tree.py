"""The audit log's Merkle tree (RFC 9162): the leaf of an audit record, and sequencing committed records into the tree."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.auditlog import merkle, repository
from ops.auditlog.models import LogEntry, LogNode
from ops.db import utcnow
from ops.metrics import AUDIT_LOG_SIZE, AUDIT_LOG_UNSEQUENCED

# A record is sequenced only once it is this old: enough for any transaction that wrote it to
# have committed, so that a smaller id becoming visible late is still taken in its turn.
DEFAULT_GRACE_SECONDS = 2.0
# The sequencer looks for missing records only this far back from the last logged one (an open
# transaction never lasts that long); `govhub audit verify` searches the whole table anyway.
SEQUENCE_LOOKBACK = timedelta(hours=1)
_SEQUENCER_LOCK = 0x60F4C


# -- leaves -------------------------------------------------------------------------------------


def iso_time(value: datetime) -> str:
    """A time as the log writes it (UTC, microseconds, Z): in leaves and checkpoint bodies."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_record(record: AuditRecord) -> bytes:
    """The leaf data of an audit record: every column, in a fixed JSON encoding."""
    data = {
        "id": record.id,
        "at": iso_time(record.at),
        "request_id": record.request_id,
        "actor": record.actor,
        "role": record.role,
        "department_id": record.department_id,
        "action": record.action,
        "object_type": record.object_type,
        "object_id": record.object_id,
        "purpose": record.purpose,
        "outcome": record.outcome,
        "subject_ref": record.subject_ref,
        "detail": record.detail,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def record_leaf_hash(record: AuditRecord) -> bytes:
    return merkle.leaf_hash(canonical_record(record))


# -- sequencing ---------------------------------------------------------------------------------


def lock_log(db: Session) -> None:
    """Serialise sequencers and signers: an advisory lock on PostgreSQL (SQLite serialises writers itself)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SEQUENCER_LOCK})


def sequence(db: Session, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, limit: int = 10_000) -> int:
    """Append committed audit records older than the grace period to the log; returns how many."""
    lock_log(db)
    size = repository.tree_size(db)
    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    fresh: dict[merkle.Node, bytes] = {}
    for record in repository.unsequenced(db, older_than=cutoff, limit=limit, lookback=SEQUENCE_LOOKBACK):
        leaf = record_leaf_hash(record)
        fresh[(0, size + len(fresh))] = leaf
        db.add(LogEntry(index=size + len(fresh) - 1, audit_id=record.id, leaf_hash=leaf.hex()))
    appended = len(fresh)
    db.flush()
    _complete_nodes(db, size, size + appended, fresh)
    AUDIT_LOG_SIZE.set(size + appended)
    AUDIT_LOG_UNSEQUENCED.set(repository.count_unsequenced(db, lookback=SEQUENCE_LOOKBACK))
    return appended


def _complete_nodes(db: Session, old_size: int, new_size: int, known: dict[merkle.Node, bytes]) -> None:
    """Store every perfect subtree completed by growing the log from old_size to new_size."""
    level = 1
    while (1 << level) <= new_size:
        first, last = old_size >> level, (new_size >> level) - 1
        if first <= last:
            children = {(level - 1, 2 * p + c) for p in range(first, last + 1) for c in (0, 1)}
            missing = children - known.keys()
            if missing:
                known.update(repository.nodes(db, missing))
            for p in range(first, last + 1):
                value = merkle.node_hash(known[(level - 1, 2 * p)], known[(level - 1, 2 * p + 1)])
                known[(level, p)] = value
                db.add(LogNode(level=level, position=p, hash=value.hex()))
        level += 1
    db.flush()


def subtree_hashes(db: Session, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The tree hashes of the given leaf ranges, from O(log n) stored nodes each."""
    wanted = {n for a, b in ranges for n in merkle.decompose(a, b)}
    found = repository.nodes(db, wanted)
    return [merkle.range_hash(a, b, found) for a, b in ranges]


def tree_root(db: Session, size: int) -> bytes:
    """MTH of the first `size` leaves."""
    return subtree_hashes(db, [(0, size)])[0] if size else merkle.EMPTY_ROOT
