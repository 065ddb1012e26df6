"""Proofs from the audit log: an audit record's inclusion in a checkpoint, and the consistency of two tree sizes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ops.audit import AuditRecord
from ops.auditlog import merkle, repository
from ops.auditlog.models import LogCheckpoint
from ops.auditlog.tree import subtree_hashes
from ops.auth import Principal
from ops.errors import Conflict, Invalid, NotFound


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
        proof=subtree_hashes(db, merkle.inclusion_ranges(entry.index, 0, checkpoint.tree_size)),
    )


@dataclass(frozen=True)
class Evidence:
    """Audit records with their inclusion proofs against one signed checkpoint (for an archive package)."""

    checkpoint: LogCheckpoint
    public_key: str | None  # the checkpoint key's Ed25519 public key, base64
    proofs: list[tuple[AuditRecord, int, list[bytes]]]  # (record, leaf index, proof)


def evidence(db: Session, records: list[AuditRecord]) -> Evidence | None:
    """The inclusion proofs of `records` against the latest checkpoint (records logged after it are left out),
    or None before the first checkpoint."""
    checkpoint = repository.latest_checkpoint(db)
    if checkpoint is None:
        return None
    key = next((k for k in repository.all_keys(db) if k.key_id == checkpoint.key_id), None)
    proofs = []
    for record in sorted(records, key=lambda r: r.id):
        entry = repository.entry_for(db, record.id)
        if entry is None or entry.index >= checkpoint.tree_size:
            continue  # logged after the checkpoint: a later package will carry it
        path = subtree_hashes(db, merkle.inclusion_ranges(entry.index, 0, checkpoint.tree_size))
        proofs.append((record, entry.index, path))
    return Evidence(checkpoint=checkpoint, public_key=key.public_key if key else None, proofs=proofs)


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
    return subtree_hashes(db, merkle.consistency_ranges(first, 0, second))
