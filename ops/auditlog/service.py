"""The audit log's one surface: the rest of the platform (endpoints, jobs, the CLI) imports it.

Where each concern lives:

- `tree.py`: the leaf of an audit record, sequencing committed records into the Merkle tree, the root of
  a tree size;
- `checkpoints.py`: the log's signing keys (create, rotate, rewrap) and its signed checkpoints, kept in
  the database and published to object storage, and their RFC 3161 time stamps (stamped later when the
  TSA is unreachable);
- `proofs.py`: an audit record's inclusion proof, and the consistency proof of two tree sizes;
- `verification.py`: `govhub audit verify`, the whole log checked against the audit trail, its stored
  nodes and its signed checkpoints;
- `merkle.py`: the tree's arithmetic (RFC 9162), no database; `repository.py`: every query.
"""

from __future__ import annotations

from ops.auditlog.checkpoints import (
    CHECKPOINT_MAX_AGE,
    LOG_NAME,
    PUBLISHED_PREFIX,
    StampRun,
    checkpoint_body,
    checkpoint_now,
    checkpoint_signature_valid,
    create_log_key,
    ensure_log_key,
    published_name,
    rewrap_log_keys,
    rotate_log_key,
    sign_checkpoint,
    stamp_awaiting,
    stamped_bytes,
)
from ops.auditlog.proofs import Evidence, Inclusion, consistency, evidence, inclusion, latest_checkpoint
from ops.auditlog.tree import DEFAULT_GRACE_SECONDS, SEQUENCE_LOOKBACK, canonical_record, record_leaf_hash, sequence, tree_root
from ops.auditlog.verification import PublishedCheckpoint, VerifyReport, published_checkpoints, verify

__all__ = [
    "CHECKPOINT_MAX_AGE",
    "DEFAULT_GRACE_SECONDS",
    "LOG_NAME",
    "PUBLISHED_PREFIX",
    "SEQUENCE_LOOKBACK",
    "Evidence",
    "Inclusion",
    "PublishedCheckpoint",
    "StampRun",
    "VerifyReport",
    "canonical_record",
    "checkpoint_body",
    "checkpoint_now",
    "checkpoint_signature_valid",
    "consistency",
    "create_log_key",
    "ensure_log_key",
    "evidence",
    "inclusion",
    "latest_checkpoint",
    "published_checkpoints",
    "published_name",
    "record_leaf_hash",
    "rewrap_log_keys",
    "rotate_log_key",
    "sequence",
    "sign_checkpoint",
    "stamp_awaiting",
    "stamped_bytes",
    "tree_root",
    "verify",
]
