"""Detached seal signatures stamped later: when the TSA does not answer at signing, the signature is made without
its timeStamp member and its use waits "awaiting"; the `seal.stamp_pending` job (once across processes) asks the
TSA again for a token over the same signature value and keeps it with the use. The stamped form is the DER as
returned with the token placed in its timeStamp member, which lies outside TBS_Sign and the signed value, so
nothing signed changes."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import cms, core, parser
from pyhanko.sign.timestamps import TimeStamper
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ops import audit
from ops.auth import Principal
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import NotFound
from ops.metrics import SEAL_TIMESTAMP_EVENTS, SEAL_USES_AWAITING_TIMESTAMP
from ops.timestamping import StampUnavailable
from seal import ltv, sesder, timestamps
from seal.models import SealUse

STAMPED = "stamped"  # the token was had at signing, inside the signature
AWAITING = "awaiting"  # made without it; waits for the job
STAMPED_LATER = "stamped_later"  # the job added it
# What a TSA that does not answer raises: pyHanko's TimestampRequestError and network errors are OSErrors
# (timeouts too), a garbled reply a ValueError.
TSA_ERRORS: tuple[type[Exception], ...] = (OSError, ValueError, asyncio.TimeoutError, StampUnavailable)
JOB = audit.SystemActor(subject="seal.stamp_pending", primary_role="system")


def reason(exc: BaseException) -> str:
    """Why the TSA gave no token, short (kept with the use, shown in the answer)."""
    return f"the time-stamp authority did not answer: {str(exc)[:200] or type(exc).__name__}"


def token_time(token: bytes, signature_value: bytes) -> datetime:
    """The genTime of a token over the SHA-256 of `signature_value`; ValueError if it is over other data."""
    tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    imprint = tst["message_imprint"]
    algorithm = imprint["hash_algorithm"]["algorithm"].native
    if hashlib.new(algorithm, signature_value).digest() != imprint["hashed_message"].native:
        raise ValueError("the time-stamp authority answered with a token over other data")
    at: datetime = tst["gen_time"].native
    return at


def with_token(signature_der: bytes, token: bytes) -> bytes:
    """The DER SES_Signature with `token` as its timeStamp member ([0] EXPLICIT BIT STRING, the last member); the
    bytes before it are kept as they are (TBS_Sign, the certificate, the signature value)."""
    class_, method, tag, _header, contents, _trailer = parser.parse(signature_der, strict=True)
    if sesder.parse_signature(signature_der).timestamp is not None:
        raise ValueError("the signature already carries a time stamp")
    member = core.OctetBitString(token, explicit=0).dump()
    return bytes(parser.emit(class_, method, tag, contents + member))


@dataclass
class StampRun:
    stamped: list[str] = field(default_factory=list)  # use ids
    failed: dict[str, str] = field(default_factory=dict)  # use id: why
    awaiting: int = 0  # still awaiting after the run


def count_awaiting(db: Session) -> int:
    return db.scalar(select(func.count()).select_from(SealUse).where(SealUse.timestamp_state == AWAITING)) or 0


def stamp_pending(
    db: Session, *, vault: KeyVault, settings: Settings, limit: int = 200, timestamper: TimeStamper | None = None
) -> StampRun:
    """Ask the TSA for the token of every use awaiting one (oldest first, at most `limit`), keep each with its use
    and audit it. The rows are locked (PostgreSQL: FOR UPDATE SKIP LOCKED), so two runners never stamp one use
    twice. The first use the TSA still fails ends the run (the others would wait for it in turn); its error is
    kept with the use. Only flushes: the caller commits."""
    run = StampRun()
    query = (
        select(SealUse)
        .where(SealUse.timestamp_state == AWAITING)
        .order_by(SealUse.at, SealUse.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    uses = list(db.scalars(query))
    stamper = (timestamper or ltv.timestamper_for(db, vault, settings)) if uses else None
    for use in uses:
        assert stamper is not None and use.signature_der is not None
        value = sesder.parse_signature(use.signature_der).signature
        use.timestamp_attempts += 1
        try:
            token = timestamps.stamp(value, stamper)
            at = token_time(token, value)
        except TSA_ERRORS as exc:
            use.timestamp_error = reason(exc)
            run.failed[use.id] = use.timestamp_error
            SEAL_TIMESTAMP_EVENTS.labels(event="failed").inc()
            break
        use.timestamp_token, use.stamped_at = token, at
        use.timestamp_state, use.timestamp_error = STAMPED_LATER, None
        run.stamped.append(use.id)
        SEAL_TIMESTAMP_EVENTS.labels(event="stamped_later").inc()
        audit.record(
            db, actor=JOB, action="seal.use.stamped_later", object_type="seal", object_id=use.seal_id,
            detail={"use_id": use.id, "signed_at": use.at.isoformat(), "stamped_at": at.isoformat()},
        )  # fmt: skip
    db.flush()
    run.awaiting = count_awaiting(db)
    SEAL_USES_AWAITING_TIMESTAMP.set(run.awaiting)
    return run


@dataclass(frozen=True)
class UseSignature:
    use: SealUse
    der: bytes  # with the late token inside, once it is had


def use_signature(db: Session, *, who: Principal, use_id: str) -> UseSignature:
    """The signature of a use that was made awaiting its time stamp: the stamped DER once the job stamped it,
    the DER as returned until then. Another department's use, and one whose signature the hub did not keep
    (it was stamped at signing), is not found."""
    query = select(SealUse).where(SealUse.id == use_id)
    if not who.is_platform_admin:
        query = query.where(SealUse.department_id == (who.department_id or ""))
    use = db.scalars(query).first()
    if use is None:
        raise NotFound(f"no seal use {use_id} of your department")
    if use.signature_der is None:
        raise NotFound(
            f"the hub keeps no signature of use {use_id}: only signatures made while the time-stamp authority was "
            "unreachable are kept (the others were returned with their time stamp inside)"
        )
    der = with_token(use.signature_der, use.timestamp_token) if use.timestamp_token is not None else use.signature_der
    return UseSignature(use=use, der=der)
