"""`govhub audit verify`: the whole log checked against the audit trail, its stored nodes and its signed checkpoints."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from ops import timestamping
from ops.audit import AuditRecord
from ops.auditlog import merkle, repository
from ops.auditlog.checkpoints import LOG_NAME, PUBLISHED_PREFIX, checkpoint_signature_valid, signature_ok, stamped_bytes
from ops.auditlog.models import LogCheckpoint, LogEntry, LogKey
from ops.auditlog.tree import iso_time, record_leaf_hash
from ops.db import utcnow
from ops.storage import ObjectStore

# A run of missing leaves longer than this is not rebuilt leaf by leaf (a forged index could be huge).
_MAX_GAP = 1_000_000
# Ids searched for the records of missing leaves, between the records logged on either side.
_MAX_ID_SEARCH = 10_000
_MAX_NAMED = 20


@dataclass
class VerifyReport:
    """What `govhub audit verify` found."""

    entries: int = 0
    checkpoints: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)
    unsequenced: int = 0
    published_checkpoints: int = 0
    timestamped: int = 0
    awaiting_timestamp: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "published_checkpoints": self.published_checkpoints,
            "unsequenced": self.unsequenced,
            "timestamped": self.timestamped,
            "awaiting_timestamp": self.awaiting_timestamp,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class PublishedCheckpoint:
    """A signed checkpoint as kept in object storage (whose signature verified)."""

    name: str
    tree_size: int
    root_hash: str  # hex
    signed_at: str
    key_id: str
    body: str


def _parse_body(body: str, key_id: str) -> tuple[int, str, str]:
    """Size, root (hex) and signing time of a checkpoint body; ValueError if it is not one."""
    lines = body.split("\n")
    if len(lines) != 6 or lines[0] != LOG_NAME or lines[4] != key_id or lines[5] != "":
        raise ValueError("not a checkpoint body")
    size = int(lines[1])
    root = base64.b64decode(lines[2], validate=True)
    if size < 0 or len(root) != 32:
        raise ValueError("not a checkpoint body")
    return size, root.hex(), lines[3]


def published_checkpoints(
    db: Session, store: ObjectStore, report: VerifyReport, *, in_database: Collection[tuple[str, str]] = ()
) -> list[PublishedCheckpoint]:
    """Every checkpoint kept in object storage whose signature verifies; the others are reported.

    A copy identical to a checkpoint row (`in_database`: body and signature) is not verified twice:
    the row's own check covers the same bytes."""
    keys = {k.key_id: k.public_key for k in repository.all_keys(db)}
    found: list[PublishedCheckpoint] = []
    for name in store.list_named(PUBLISHED_PREFIX):
        try:
            document = json.loads(store.get_named(name))
            body, signature, key_id = str(document["body"]), str(document["signature"]), str(document["key_id"])
            size, root, signed_at = _parse_body(body, key_id)
        except (ValueError, KeyError, TypeError):
            report.problems.append(
                {
                    "kind": "bad_published_checkpoint",
                    "object": name,
                    "detail": f"{name} in object storage is not a signed checkpoint",
                }
            )
            continue
        if (body, signature) in in_database:
            found.append(PublishedCheckpoint(name, size, root, signed_at, key_id, body))
            continue
        known = keys.get(key_id)
        if not signature_ok(known or str(document.get("public_key") or ""), signature, body):
            report.problems.append(
                {
                    "kind": "bad_signature",
                    "object": name,
                    "detail": f"the checkpoint kept in object storage as {name} has an invalid signature",
                }
            )
            continue
        if known is None:
            # log keys are never deleted: one missing from the database was removed behind the hub's back
            report.problems.append(
                {
                    "kind": "unknown_key",
                    "object": name,
                    "key_id": key_id,
                    "detail": f"the checkpoint kept in object storage as {name} is signed by log key {key_id}, "
                    "which the database no longer holds",
                }
            )
        found.append(PublishedCheckpoint(name, size, root, signed_at, key_id, body))
    return found


def verify(db: Session, *, store: ObjectStore | None = None, grace_seconds: float = 60.0) -> VerifyReport:
    """Rebuild the tree from the stored records; report altered, removed or reordered records, bad
    checkpoints, and (given the object store) a log cut back below a checkpoint kept outside the database."""
    report = VerifyReport()
    checkpoints = repository.checkpoints(db)
    report.checkpoints = len(checkpoints)
    _check_timestamps(db, report, checkpoints)
    keys = {key.key_id: key for key in repository.all_keys(db)}
    in_database = {(cp.body, cp.signature) for cp in checkpoints}
    published = published_checkpoints(db, store, report, in_database=in_database) if store is not None else []
    report.published_checkpoints = len(published)
    bodies = {body for body, _ in in_database}
    due: dict[int, list[LogCheckpoint | PublishedCheckpoint]] = {}
    for cp in checkpoints:
        due.setdefault(cp.tree_size, []).append(cp)
    for pc in published:
        if pc.body not in bodies:  # the database's own copy of the same checkpoint is checked already
            due.setdefault(pc.tree_size, []).append(pc)

    stored_positions: dict[str, int] = {}
    rebuilt: list[tuple[LogEntry, bytes, AuditRecord | None]] = []
    for entry, record in repository.entries_with_records(db):
        stored_positions[entry.leaf_hash] = entry.index
        rebuilt.append((entry, record_leaf_hash(record) if record is not None else b"", record))
    report.entries = len(rebuilt)

    tree = _CompactRange(lambda level, position: repository.node(db, level, position))
    unverifiable: list[int] = []

    def check(size: int) -> None:
        root = tree.root()
        for cp in due.pop(size, []):
            if isinstance(cp, LogCheckpoint):
                _check_signature(keys, report, cp)
            if root is None:
                unverifiable.append(size)
            elif cp.root_hash != root.hex():
                report.problems.append(_root_mismatch(cp))

    check(0)
    previous: tuple[LogEntry, AuditRecord | None] | None = None
    for entry, actual, record in rebuilt:
        if entry.index > tree.size:
            _report_missing(db, report, tree.size, previous, (entry, record))
            if entry.index - tree.size > _MAX_GAP:
                start = tree.size
                tree.lose(entry.index - start)
                for size in sorted(s for s in due if start < s <= entry.index):
                    check(size)
            while tree.size < entry.index:
                tree.append(None)
                check(tree.size)
        stored = bytes.fromhex(entry.leaf_hash)
        if record is None:
            report.problems.append(
                {
                    "kind": "removed",
                    "leaf_index": entry.index,
                    "audit_id": entry.audit_id,
                    "detail": f"audit record {entry.audit_id} was removed (its log entry, leaf {entry.index}, remains)",
                }
            )
        elif actual != stored:
            elsewhere = stored_positions.get(actual.hex())
            if elsewhere is not None and elsewhere != entry.index:
                report.problems.append(
                    {
                        "kind": "reordered",
                        "leaf_index": entry.index,
                        "audit_id": entry.audit_id,
                        "detail": f"audit record {entry.audit_id} now holds what was logged at leaf {elsewhere}",
                    }
                )
            else:
                report.problems.append(
                    {
                        "kind": "altered",
                        "leaf_index": entry.index,
                        "audit_id": entry.audit_id,
                        "detail": f"audit record {entry.audit_id} differs from what was logged at leaf {entry.index}",
                    }
                )
        # The tree is rebuilt from the records themselves, so a stored leaf hash rewritten to
        # match an altered record still disagrees with every checkpoint signed before.
        tree.append(actual if record is not None else stored)
        check(tree.size)
        previous = (entry, record)

    if unverifiable:
        report.problems.append(
            {
                "kind": "unverifiable",
                "checkpoints": len(unverifiable),
                "detail": f"{len(unverifiable)} checkpoint(s) (sizes {min(unverifiable)} to {max(unverifiable)}) cover "
                "missing leaves that no stored subtree hash stands in for; they cannot be checked against the records",
            }
        )
    beyond = sorted((signed for listed in due.values() for signed in listed), key=lambda signed: signed.tree_size)
    for signed in beyond:
        if isinstance(signed, LogCheckpoint):
            _check_signature(keys, report, signed)
            report.problems.append(
                {
                    "kind": "checkpoint_beyond_log",
                    "checkpoint_id": signed.id,
                    "detail": f"checkpoint {signed.id} signs size {signed.tree_size} but the log has {tree.size} entries",
                }
            )
    outside = [signed for signed in beyond if isinstance(signed, PublishedCheckpoint)]
    if outside:
        newest = outside[-1]
        report.problems.append(
            {
                "kind": "truncated",
                "published_size": newest.tree_size,
                "database_size": tree.size,
                "object": newest.name,
                "detail": f"the log was cut off: the newest checkpoint kept in object storage ({newest.name}, signed "
                f"{newest.signed_at}) covers {newest.tree_size} entries, but the database holds {tree.size}; "
                f"{newest.tree_size - tree.size} entries from leaf {tree.size} on are missing, "
                f"with {len(outside)} checkpoint(s) signed over them",
            }
        )

    cutoff = utcnow() - timedelta(seconds=grace_seconds)
    late = repository.unsequenced(db, older_than=cutoff, limit=1000)
    report.unsequenced = repository.count_unsequenced(db)
    for record in late:
        report.problems.append(
            {
                "kind": "not_in_log",
                "audit_id": record.id,
                "detail": f"audit record {record.id} ({iso_time(record.at)}) was never added to the log",
            }
        )
    return report


def _report_missing(
    db: Session,
    report: VerifyReport,
    start: int,
    before: tuple[LogEntry, AuditRecord | None] | None,
    after: tuple[LogEntry, AuditRecord | None],
) -> None:
    """Log entries start.. up to `after` are gone with their records: name the records, from the ids and
    times of the records logged on either side."""
    end = after[0].index
    count = end - start
    low = before[0].audit_id if before else 0
    high = after[0].audit_id
    candidates: list[int] = []
    if 0 < high - low - 1 <= _MAX_ID_SEARCH:
        taken = repository.audit_ids_between(db, low, high)
        candidates = [i for i in range(low + 1, high) if i not in taken]
    times = [iso_time(r.at) for r in (before[1] if before else None, after[1]) if r is not None]
    when = f", written between {times[0]} and {times[1]}" if len(times) == 2 else ""
    if 0 <= high - low - 1 <= _MAX_ID_SEARCH and not candidates:
        report.problems.append(
            {
                "kind": "gap",
                "leaf_index": start,
                "leaves": count,
                "detail": f"leaves {start} to {end - 1} are missing, yet no audit record between records {low} and {high} "
                f"is: the log entries from leaf {end} on were renumbered",
            }
        )
        return
    if count == 1:
        leaf = f"leaf {start}"
        if len(candidates) == 1:
            detail = f"audit record {candidates[0]} was removed together with its log entry ({leaf}{when})"
        elif candidates and len(candidates) <= _MAX_NAMED:
            detail = (
                f"the audit record at {leaf} was removed together with its log entry: one of records "
                f"{', '.join(map(str, candidates))}{when}"
            )
        else:
            detail = (
                f"the audit record at {leaf} was removed together with its log entry "
                f"(logged between records {low} and {high}{when})"
            )
        report.problems.append(
            {
                "kind": "removed",
                "leaf_index": start,
                "audit_id": candidates[0] if len(candidates) == 1 else None,
                "detail": detail,
            }
        )
        return
    named = candidates if len(candidates) == count and count <= _MAX_NAMED else None
    which = f"audit records {', '.join(map(str, named))}" if named else f"the records logged between records {low} and {high}"
    report.problems.append(
        {
            "kind": "removed",
            "leaf_index": start,
            "leaves": count,
            "audit_ids": named,
            "detail": f"{count} log entries (leaves {start} to {end - 1}) were removed together with {which}{when}",
        }
    )


def _root_mismatch(cp: LogCheckpoint | PublishedCheckpoint) -> dict[str, Any]:
    if isinstance(cp, LogCheckpoint):
        return {
            "kind": "root_mismatch",
            "checkpoint_id": cp.id,
            "tree_size": cp.tree_size,
            "detail": f"the records no longer give the root signed in checkpoint {cp.id} (size {cp.tree_size})",
        }
    return {
        "kind": "root_mismatch",
        "object": cp.name,
        "tree_size": cp.tree_size,
        "detail": f"the records no longer give the root signed in the checkpoint kept in object storage as {cp.name} "
        f"(size {cp.tree_size}), which the database does not hold",
    }


def _check_timestamps(db: Session, report: VerifyReport, checkpoints: list[LogCheckpoint]) -> None:
    """Each checkpoint's RFC 3161 token covers its signed bytes and chains to a trusted TSA; one awaiting a time
    stamp is counted (the TSA was unreachable, the audit-log job stamps it later), not a problem."""
    trusted = timestamping.trust(db) if any(cp.timestamp_token is not None for cp in checkpoints) else None
    for cp in checkpoints:
        if cp.timestamp_token is None:
            report.awaiting_timestamp += 1
            continue
        checked = timestamping.check_token(cp.timestamp_token, stamped_bytes(cp), trusted=trusted)
        if checked.ok:
            report.timestamped += 1
        else:
            report.problems.append(
                {"kind": "bad_timestamp", "checkpoint_id": cp.id, "detail": f"checkpoint {cp.id}: {checked.message}"}
            )


def _check_signature(keys: dict[str, LogKey], report: VerifyReport, cp: LogCheckpoint) -> None:
    if not checkpoint_signature_valid(cp, keys.get(cp.key_id)):
        report.problems.append(
            {"kind": "bad_signature", "checkpoint_id": cp.id, "detail": f"checkpoint {cp.id} has an invalid signature"}
        )


class _CompactRange:
    """The roots of the perfect subtrees covering a prefix of the log (RFC 9162's tree, incrementally).

    A leaf may be unknown (None: its log entry is gone). A complete subtree holding one takes the
    hash stored for it when it was complete (`stored(level, position)`), if there is one; the roots
    of sizes that still hold an unknown part are unknown (None).
    """

    def __init__(self, stored: Callable[[int, int], bytes | None] | None = None) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes | None]] = []  # (height, hash), left to right
        self._stored = stored
        self._lost = False

    def append(self, leaf: bytes | None) -> None:
        self.size += 1
        if self._lost:
            return
        height, node = 0, leaf
        while self._stack and self._stack[-1][0] == height:
            _, left = self._stack.pop()
            height += 1
            node = merkle.node_hash(left, node) if left is not None and node is not None else None
            if node is None and self._stored is not None:
                node = self._stored(height, (self.size >> height) - 1)
        self._stack.append((height, node))

    def lose(self, count: int) -> None:
        """Skip `count` unknown leaves without rebuilding them: no later root is known."""
        self.size += count
        self._lost = True

    def root(self) -> bytes | None:
        if self._lost or any(node is None for _, node in self._stack):
            return None
        if not self._stack:
            return merkle.EMPTY_ROOT
        node = self._stack[-1][1]
        assert node is not None
        for _, left in reversed(self._stack[:-1]):
            assert left is not None
            node = merkle.node_hash(left, node)
        return node
