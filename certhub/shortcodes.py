"""亮证码: a short code for the holder's QR (version 10 or lower) that the window redeems online.

The holder makes a presentation for the window's nonce and audience as for 亮证 (:func:`certhub.holders.show`);
instead of the whole presentation (a QR code of about version 40) the QR code carries a short random code.
The window redeems it once (:func:`redeem`), within minutes, with its own nonce, and gets the verdict a
verification of the full presentation gives (:func:`certhub.verification.verify` runs on it). Only a hash
of the code is stored; the presentation is stored encrypted under a key derived from the code, so the
table alone holds neither. The full presentation stays what a window verifies offline.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy.orm import Session

from certhub import repository, sdjwt
from certhub.holders import show
from certhub.issuance import IssueContext
from certhub.models import ShortCode
from certhub.schemas import ShowRequest
from certhub.verification import verify
from ops import audit
from ops.auth import Principal
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound

# Crockford's base32: no I, L, O, U, so that a code read aloud or typed is not misread; and every character
# is in the QR alphanumeric set, the densest mode for text.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "LZ1"  # 亮证码, format 1
RANDOM_LENGTH = 22  # 110 bits
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0"})


class ShortCodeExpired(HubError):
    status, code, title = 410, "short_code_expired", "Short code expired"


class ShortCodeUsed(Conflict):
    code = "short_code_used"


class ShortCodeElsewhere(Forbidden):
    code = "short_code_other_window"


class ShortCodeUnknown(NotFound):
    code = "short_code_unknown"


def _new_code() -> str:
    return PREFIX + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def normalise(code: str) -> str:
    """The code as issued: upper case, without spaces or hyphens, I/L read as 1 and O as 0 after the prefix."""
    text = "".join(code.split()).replace("-", "").upper()
    if text.startswith(PREFIX):
        return PREFIX + text[len(PREFIX) :].translate(_READ_AS)
    return text


def is_short_code(text: str) -> bool:
    """Whether scanned text is a 亮证码 (not a full presentation)."""
    value = normalise(text)
    return value.startswith(PREFIX) and len(value) == len(PREFIX) + RANDOM_LENGTH


def code_hash(code: str) -> str:
    return hashlib.sha256(b"govhub-short-code:" + code.encode()).hexdigest()


def _cipher(code: str) -> AESGCM:
    return AESGCM(hashlib.sha256(b"govhub-short-code-key:" + code.encode()).digest())


def _seal(code: str, token: str, aad: bytes) -> str:
    iv = secrets.token_bytes(12)
    return base64.b64encode(iv + _cipher(code).encrypt(iv, token.encode(), aad)).decode()


def _open(code: str, sealed: str, aad: bytes) -> str:
    raw = base64.b64decode(sealed)
    return _cipher(code).decrypt(raw[:12], raw[12:], aad).decode()


@dataclass(frozen=True)
class MadeShortCode:
    code: str
    audience: str
    nonce: str
    fields: list[str]
    expires_at: datetime


def make_short_code(
    db: Session, *, who: Principal, ctx: IssueContext, identifier: str, data: ShowRequest, on_behalf_of: str | None = None
) -> MadeShortCode:
    """亮证码: present the chosen fields to the window's nonce and audience, and keep it behind a short code."""
    if not data.nonce:
        raise Invalid(
            "a 亮证码 is bound to the window's nonce: scan the window's code and send its nonce",
            errors=[{"field": "nonce", "message": "required for a 亮证码"}],
        )
    ttl = ctx.settings.short_code_ttl_seconds
    token, nonce, _ = show(
        db, who=who, ctx=ctx, identifier=identifier, data=data.model_copy(update={"ttl_seconds": ttl}), on_behalf_of=on_behalf_of
    )
    code = _new_code()
    digest = code_hash(code)
    expires_at = utcnow() + timedelta(seconds=ttl)
    db.add(
        ShortCode(
            code_hash=digest,
            certificate_identifier=identifier,
            holder_code=(on_behalf_of or who.holder_code or "").strip().upper(),
            audience=data.audience,
            nonce=nonce,
            sealed=_seal(code, token, digest.encode()),
            expires_at=expires_at,
        )
    )
    db.flush()
    audit.record(
        db,
        actor=who,
        action="certificate.short_code",
        object_type="certificate",
        object_id=identifier,
        subject=(on_behalf_of or who.holder_code or "").strip().upper() or None,
        detail={"audience": data.audience, "code": digest[:16]},
    )
    return MadeShortCode(code=code, audience=data.audience, nonce=nonce, fields=list(data.fields), expires_at=expires_at)


def redeem(
    db: Session, *, who: Principal, settings: Settings, code: str, nonce: str, now: datetime | None = None
) -> sdjwt.Verdict:
    """The window redeems a 亮证码 once, with its nonce: the verdict of verifying the presentation behind it.

    Refusals (each a :class:`HubError`, 4xx): an unknown code (404), one made for another window (403), one
    already redeemed (409), one expired (410), a nonce other than the one it was made for (403)."""
    if who.department_code is None:
        raise Forbidden("a verifier must belong to a department")
    now = now or utcnow()
    text = normalise(code)
    digest = code_hash(text)
    row = repository.short_code(db, digest)
    if row is None:
        raise ShortCodeUnknown("no such 亮证码: check the code, or ask the holder to make a new one")
    if row.audience != who.department_code:
        raise ShortCodeElsewhere("this 亮证码 was made for another window; ask the holder to make one for yours")
    if row.redeemed_at is not None:
        raise ShortCodeUsed("this 亮证码 was already redeemed; ask the holder to make a new one")
    if row.expires_at <= now:
        raise ShortCodeExpired("this 亮证码 has expired; ask the holder to make a new one")
    if not secrets.compare_digest(row.nonce.encode(), nonce.encode()):
        raise ShortCodeElsewhere("this 亮证码 was made for another nonce: use the nonce your window showed the holder")
    if not repository.claim_short_code(db, digest, now=now, by=who.subject):
        raise ShortCodeUsed("this 亮证码 was already redeemed; ask the holder to make a new one")
    try:
        token = _open(text, row.sealed, digest.encode())
    except (InvalidTag, ValueError) as exc:  # the stored row does not open with this code: treat as unknown
        raise ShortCodeUnknown("no such 亮证码: check the code, or ask the holder to make a new one") from exc
    return verify(db, who=who, settings=settings, token=token, nonce=nonce, now=now)


def record_refused_redeem(db: Session, *, who: Principal, code: str, reason: HubError) -> None:
    """A refused redemption is recorded (in a transaction of its own: the request's is rolled back)."""
    audit.record(
        db,
        actor=who,
        action="certificate.short_code_redeem",
        object_type="short_code",
        object_id=code_hash(normalise(code))[:16],
        outcome="denied",
        detail={"code": reason.code, "reason": reason.detail},
    )
