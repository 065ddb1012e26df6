"""The audit log's signing keys and its signed checkpoints (kept in the database and published to object storage)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.orm import Session

from ops import audit
from ops.auditlog import repository
from ops.auditlog.models import LogCheckpoint, LogKey, LogTimestamp
from ops.auditlog.tree import DEFAULT_GRACE_SECONDS, iso_time, lock_log, sequence, tree_root
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from ops.metrics import AUDIT_LOG_AWAITING_TIMESTAMP, AUDIT_LOG_CHECKPOINTS
from ops.storage import ObjectStore
from ops.timestamping import Stamper, StampUnavailable

log = logging.getLogger("govhub.auditlog")

LOG_NAME = "govhub audit log"
# Refresh the signed checkpoint at least this often even when nothing was appended.
CHECKPOINT_MAX_AGE = timedelta(hours=1)


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
    return f"{LOG_NAME}\n{size}\n{base64.b64encode(root_hash).decode()}\n{iso_time(signed_at)}\n{key_id}\n"


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
    lock_log(db)
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


# Checkpoints stamped in one go at most (the job comes back for the rest).
STAMP_BATCH = 50


def stamped_bytes(checkpoint: LogCheckpoint) -> bytes:
    """What a checkpoint's RFC 3161 time stamp covers (SHA-256 imprint): its signed text, then its signature."""
    return checkpoint.body.encode() + checkpoint.signature.encode()


def _gen_time(token: bytes, digest: bytes) -> datetime:
    """The token's genTime, after checking its imprint is `digest` (a TSA answering for other data is refused)."""
    from asn1crypto import cms

    try:
        info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        imprint = info["message_imprint"]["hashed_message"].native
        at = info["gen_time"].native
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise StampUnavailable(f"the time-stamp authority answered with no readable token: {exc}") from exc
    if imprint != digest:
        raise StampUnavailable("the time-stamp authority answered with a token over other data")
    if not isinstance(at, datetime):
        raise StampUnavailable("the time-stamp authority's token has no genTime")
    return at.astimezone(UTC)


@dataclass(frozen=True)
class StampRun:
    """What one pass over the checkpoints awaiting a time stamp did."""

    stamped: int
    awaiting: int
    failure: str | None  # why the TSA gave no token, when it did not


def stamp_awaiting(db: Session, *, stamper: Stamper | None, limit: int = STAMP_BATCH) -> StampRun:
    """Time-stamp the checkpoints awaiting one, oldest first.

    When the TSA does not answer (or none is configured), the checkpoints keep waiting, the failure is logged
    and returned, and the number awaiting is published as a metric: never skipped silently, a checkpoint is
    either stamped or visibly awaiting."""
    stamped, failure = 0, None
    if stamper is None:
        failure = "no time-stamp authority is configured"
    else:
        for checkpoint in repository.awaiting_timestamp(db, limit):
            digest = hashlib.sha256(stamped_bytes(checkpoint)).digest()
            try:
                token = stamper(db, digest)
                at = _gen_time(token, digest)
            except StampUnavailable as exc:
                failure = str(exc)
                break
            db.add(LogTimestamp(checkpoint_id=checkpoint.id, token=token, gen_time=at))
            stamped += 1
        db.flush()
    awaiting = repository.count_awaiting_timestamp(db)
    AUDIT_LOG_AWAITING_TIMESTAMP.set(awaiting)
    if failure is not None and awaiting:
        log.warning("%d audit checkpoint(s) await a time stamp: %s", awaiting, failure, extra={"awaiting": awaiting})
    return StampRun(stamped=stamped, awaiting=awaiting, failure=failure)


def checkpoint_signature_valid(checkpoint: LogCheckpoint, key: LogKey | None) -> bool:
    """Does the checkpoint's signature verify under its key, and does its body say what its columns say?"""
    if key is None or not signature_ok(key.public_key, checkpoint.signature, checkpoint.body):
        return False
    expected = checkpoint_body(
        size=checkpoint.tree_size,
        root_hash=bytes.fromhex(checkpoint.root_hash),
        signed_at=checkpoint.signed_at,
        key_id=checkpoint.key_id,
    )
    return expected == checkpoint.body


def signature_ok(public_key: str | None, signature: str, body: str) -> bool:
    """Does `signature` (base64) verify `body` under the Ed25519 `public_key` (base64)?"""
    if not public_key:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key)).verify(base64.b64decode(signature), body.encode())
    except (InvalidSignature, ValueError):
        return False
    return True
