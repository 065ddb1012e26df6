"""Rules of the audit log: sequencing records into the Merkle tree, signing checkpoints, proofs, verification."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import text
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import AuditRecord
from ops.auditlog import merkle, repository
from ops.auditlog.models import LogCheckpoint, LogEntry, LogKey, LogNode
from ops.auth import Principal
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from ops.errors import Conflict, Invalid, NotFound
from ops.metrics import AUDIT_LOG_CHECKPOINTS, AUDIT_LOG_SIZE, AUDIT_LOG_UNSEQUENCED
from ops.storage import ObjectStore

LOG_NAME = "govhub audit log"
# A record is sequenced only once it is this old: enough for any transaction that wrote it to
# have committed, so that a smaller id becoming visible late is still taken in its turn.
DEFAULT_GRACE_SECONDS = 2.0
# Refresh the signed checkpoint at least this often even when nothing was appended.
CHECKPOINT_MAX_AGE = timedelta(hours=1)
# The sequencer looks for missing records only this far back from the last logged one (an open
# transaction never lasts that long); `govhub audit verify` searches the whole table anyway.
SEQUENCE_LOOKBACK = timedelta(hours=1)
_SEQUENCER_LOCK = 0x60F4C


# -- leaves -------------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_record(record: AuditRecord) -> bytes:
    """The leaf data of an audit record: every column, in a fixed JSON encoding."""
    data = {
        "id": record.id,
        "at": _iso(record.at),
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


# -- sequencing ---------------------------------------------------------------------------------


def _lock(db: Session) -> None:
    """Serialise sequencers: an advisory lock on PostgreSQL (SQLite serialises writers itself)."""
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SEQUENCER_LOCK})


def sequence(db: Session, *, grace_seconds: float = DEFAULT_GRACE_SECONDS, limit: int = 10_000) -> int:
    """Append committed audit records older than the grace period to the log; returns how many."""
    _lock(db)
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


def _hashes(db: Session, ranges: list[tuple[int, int]]) -> list[bytes]:
    """The tree hashes of the given leaf ranges, from O(log n) stored nodes each."""
    wanted = {n for a, b in ranges for n in merkle.decompose(a, b)}
    found = repository.nodes(db, wanted)
    return [merkle.range_hash(a, b, found) for a, b in ranges]


def tree_root(db: Session, size: int) -> bytes:
    """MTH of the first `size` leaves."""
    return _hashes(db, [(0, size)])[0] if size else merkle.EMPTY_ROOT


# -- keys and checkpoints -----------------------------------------------------------------------


def _purpose(key_id: str) -> str:
    return f"audit-log-key:{key_id}"


def create_log_key(db: Session, vault: KeyVault) -> LogKey:
    """Generate a new Ed25519 checkpoint-signing key, its private half wrapped by the vault."""
    private = Ed25519PrivateKey.generate()
    public_raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    key_id = f"log-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    key = LogKey(
        key_id=key_id,
        public_key=base64.b64encode(public_raw).decode(),
        private_key=vault.wrap(pem, purpose=_purpose(key_id)).as_dict(),
    )
    db.add(key)
    db.flush()
    return key


def ensure_log_key(db: Session, vault: KeyVault) -> LogKey:
    """The active checkpoint-signing key, created on first use."""
    return repository.active_key(db) or create_log_key(db, vault)


def rotate_log_key(db: Session, *, vault: KeyVault) -> LogKey:
    """Sign future checkpoints with a new key; old keys stay published to verify old checkpoints."""
    now = utcnow()
    for key in repository.all_keys(db):
        if key.retired_at is None:
            key.retired_at = now
    key = create_log_key(db, vault)
    audit.record(db, actor=audit.SYSTEM, action="audit_log_key.rotate", object_type="audit_log_key", object_id=key.key_id)
    return key


def rewrap_log_keys(db: Session, *, vault: KeyVault) -> int:
    """Re-wrap every log key under the current master key; returns how many changed."""
    changed = 0
    for key in repository.all_keys(db):
        wrapped = WrappedSecret.from_dict(key.private_key)
        rewrapped = vault.rewrap(wrapped, purpose=_purpose(key.key_id))
        if rewrapped != wrapped:
            key.private_key = rewrapped.as_dict()
            changed += 1
    db.flush()
    return changed


def checkpoint_body(*, size: int, root_hash: bytes, signed_at: datetime, key_id: str) -> str:
    """The signed text of a checkpoint (one field a line, in the spirit of the C2SP checkpoint format)."""
    return f"{LOG_NAME}\n{size}\n{base64.b64encode(root_hash).decode()}\n{_iso(signed_at)}\n{key_id}\n"


# Signed checkpoints are also kept in object storage, one named object each, outside the database.
PUBLISHED_PREFIX = "audit-log/checkpoints"


def published_name(size: int, signed_at: datetime) -> str:
    """The object name of a published checkpoint: names sort by tree size, then signing time."""
    return f"{PUBLISHED_PREFIX}/{size:020d}-{signed_at.astimezone(UTC):%Y%m%dT%H%M%S%fZ}.json"


def sign_checkpoint(
    db: Session, *, vault: KeyVault, store: ObjectStore | None = None, force: bool = False
) -> LogCheckpoint | None:
    """Sign the current size and root, when the log grew or the last checkpoint is old (or `force`).

    With `store`, the signed checkpoint is also published to object storage first, so a checkpoint
    row never exists without its published copy (an unreachable store fails the whole step). The
    published copy outlives this transaction: sign only leaves already committed
    (:func:`checkpoint_now`), or a rolled-back sequencing would leave a copy no log can match.
    """
    _lock(db)
    size = repository.tree_size(db)
    latest = repository.latest_checkpoint(db)
    now = utcnow()
    if latest and not force and latest.tree_size == size and now - latest.signed_at < CHECKPOINT_MAX_AGE:
        return None
    key = ensure_log_key(db, vault)
    private = serialization.load_pem_private_key(
        vault.unwrap(WrappedSecret.from_dict(key.private_key), purpose=_purpose(key.key_id)), password=None
    )
    assert isinstance(private, Ed25519PrivateKey)
    root_hash = tree_root(db, size)
    body = checkpoint_body(size=size, root_hash=root_hash, signed_at=now, key_id=key.key_id)
    signature = base64.b64encode(private.sign(body.encode())).decode()
    if store is not None:
        document = json.dumps({"body": body, "signature": signature, "key_id": key.key_id, "public_key": key.public_key})
        store.put_named(published_name(size, now), document.encode())
    checkpoint = LogCheckpoint(
        tree_size=size, root_hash=root_hash.hex(), signed_at=now, key_id=key.key_id, body=body, signature=signature
    )
    db.add(checkpoint)
    db.flush()
    AUDIT_LOG_CHECKPOINTS.inc()
    return checkpoint


def checkpoint_now(
    db: Session, *, vault: KeyVault, store: ObjectStore | None, force: bool = False, grace_seconds: float = DEFAULT_GRACE_SECONDS
) -> LogCheckpoint | None:
    """Sequence pending records and commit them, then sign (and publish) a checkpoint of the committed log.

    The one place in the platform that commits inside a unit of work: the copy published to object
    storage cannot be taken back, so the leaves it signs (and the key that signs it) must be
    committed before it is written.
    """
    ensure_log_key(db, vault)
    sequence(db, grace_seconds=grace_seconds)
    db.commit()
    return sign_checkpoint(db, vault=vault, store=store, force=force)


def checkpoint_signature_valid(checkpoint: LogCheckpoint, key: LogKey | None) -> bool:
    """Does the checkpoint's signature verify under its key, and does its body say what its columns say?"""
    if key is None or not _signature_ok(key.public_key, checkpoint.signature, checkpoint.body):
        return False
    expected = checkpoint_body(
        size=checkpoint.tree_size,
        root_hash=bytes.fromhex(checkpoint.root_hash),
        signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id,
    )
    return expected == checkpoint.body


# -- proofs -------------------------------------------------------------------------------------


def latest_checkpoint(db: Session) -> LogCheckpoint:
    """The latest signed checkpoint, or NotFound before the first one."""
    checkpoint = repository.latest_checkpoint(db)
    if checkpoint is None:
        raise NotFound("no checkpoint has been signed yet; the hub signs one within a minute of start")
    return checkpoint


@dataclass(frozen=True)
class Inclusion:
    record: AuditRecord
    leaf_index: int
    leaf_hash: bytes
    checkpoint: LogCheckpoint
    proof: list[bytes]


def inclusion(db: Session, *, who: Principal, audit_id: int, tree_size: int | None = None) -> Inclusion:
    """An inclusion proof of an audit record the caller may see, against a signed checkpoint."""
    record = repository.readable_record(db, who, audit_id)
    if record is None:
        raise NotFound(f"audit record {audit_id} not found")
    entry = repository.entry_for(db, audit_id)
    if entry is None:
        raise Conflict(
            f"audit record {audit_id} is not in the log yet; it is added within seconds, retry shortly",
            headers={"Retry-After": "5"},
        )
    if tree_size is None:
        checkpoint = latest_checkpoint(db)
    else:
        found = repository.checkpoint_covering(db, tree_size)
        if found is None:
            raise NotFound(f"no signed checkpoint has tree size {tree_size}")
        checkpoint = found
    if entry.index >= checkpoint.tree_size:
        raise Conflict(
            f"audit record {audit_id} is at leaf {entry.index}, after the checkpoint of size {checkpoint.tree_size}; "
            "the next checkpoint will include it, retry shortly",
            headers={"Retry-After": "60"},
        )
    return Inclusion(
        record=record,
        leaf_index=entry.index,
        leaf_hash=bytes.fromhex(entry.leaf_hash),
        checkpoint=checkpoint,
        proof=_hashes(db, merkle.inclusion_ranges(entry.index, 0, checkpoint.tree_size)),
    )


def consistency(db: Session, *, first: int, second: int) -> list[bytes]:
    """A consistency proof between two tree sizes of the log."""
    size = repository.tree_size(db)
    errors = []
    if first < 1:
        errors.append({"field": "first", "message": "must be at least 1"})
    if second < first:
        errors.append({"field": "second", "message": f"must not be smaller than first ({first})"})
    if second > size:
        errors.append({"field": "second", "message": f"the log has only {size} entries"})
    if errors:
        raise Invalid("cannot prove consistency between these sizes", errors=errors)
    return _hashes(db, merkle.consistency_ranges(first, 0, second))


# -- verification -------------------------------------------------------------------------------

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


def _signature_ok(public_key: str | None, signature: str, body: str) -> bool:
    if not public_key:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature), body.encode())
    except (InvalidSignature, ValueError):
        return False
    return True


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
        if not _signature_ok(known or str(document.get("public_key") or ""), signature, body):
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
                "detail": f"audit record {record.id} ({_iso(record.at)}) was never added to the log",
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
    times = [_iso(r.at) for r in (before[1] if before else None, after[1]) if r is not None]
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


def _check_signature(keys: dict[str, LogKey], report: VerifyReport, cp: LogCheckpoint) -> None:
    if not checkpoint_signature_valid(cp, keys.get(cp.key_id)):
        report.problems.append(
            {"kind": "bad_signature", "checkpoint_id": cp.id, "detail": f"checkpoint {cp.id} has an invalid signature"}
        )
