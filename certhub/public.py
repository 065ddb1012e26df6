"""Public 验真: the QR code on a certificate copy opens a page, for anyone, that says whether it is valid now.

The copy's code carries an unguessable token (only its hash is stored, on the certificate version), not only
the identifier. The answer names the type, the issuer and the validity, and only the face fields the type
lists as public (``public_fields``, default none): no other personal data. Each client address may check a
limited number of times a minute (``public_verification_per_minute``; 429 with Retry-After beyond it).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from certhub import caches, repository
from certhub.common import SHANGHAI
from certhub.models import CertificateStatus
from ops import audit
from ops.db import utcnow
from ops.errors import NotFound, TooManyRequests
from ops.identity import repository as departments

# Where the copy's QR code points: a console page that needs no sign-in (its JSON form: PUBLIC_API_PATH).
PUBLIC_PAGE_PATH = "/console/public/verify"
PUBLIC_API_PATH = "/certhub/public/verifications"

# What each state tells whoever checks the copy (Chinese, for the page; the JSON carries `state` too).
STATE_MESSAGES = {
    "valid": "该证照现行有效",
    "suspended": "该证照暂停使用（异议处理中）",
    "superseded": "该证照已变更，此副本已不是现行版本",
    "revoked": "该证照已注销",
    "expired": "该证照已超过有效期",
    "not_yet_valid": "该证照尚未生效",
}


def new_public_token() -> tuple[str, str]:
    """A token for a copy's QR code and the hash stored in its place."""
    token = secrets.token_urlsafe(18)
    return token, public_token_hash(token)


def public_token_hash(token: str) -> str:
    return hashlib.sha256(b"govhub-public-verify:" + token.encode()).hexdigest()


def public_link(public_url: str, token: str) -> str:
    return f"{public_url}{PUBLIC_PAGE_PATH}/{token}"


@dataclass(frozen=True)
class PublicActor:
    """Whoever opens the public page: anonymous, known only by a hash of the address it came from."""

    subject: str
    primary_role: str = "public"
    department_id: str | None = None


@dataclass(frozen=True)
class PublicCheck:
    """What the public page says: validity now, type, issuer, dates, and the public fields only."""

    valid: bool
    state: str
    message: str
    type_name: str
    issuer_name: str
    issuer_code: str
    valid_from: date
    valid_until: date | None
    checked_at: datetime
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (name, label, value)


def _state(status: str, valid_from: date, valid_until: date | None, today: date) -> str:
    if status != CertificateStatus.ACTIVE.value:
        return status
    if valid_from > today:
        return "not_yet_valid"
    if valid_until is not None and valid_until < today:
        return "expired"
    return "valid"


def rate_limit(client: str, *, per_minute: int) -> None:
    """Count a public check from `client`; TooManyRequests (429, Retry-After) past `per_minute`."""
    wait = caches.public_checks.hit(client, limit=per_minute)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"too many checks from your address: at most {per_minute} a minute; try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )


def check_public(db: Session, *, token: str, client: str, per_minute: int) -> PublicCheck:
    """Public 验真 of the copy whose QR code carries `token`, for the client address `client` (rate limited)."""
    rate_limit(client, per_minute=per_minute)
    certificate = repository.certificate_by_public_token(db, public_token_hash(token.strip()))
    if certificate is None:
        raise NotFound("no certificate copy carries this code: it may be mistyped or not a genuine copy")
    ctype = repository.type_by_id(db, certificate.type_id)
    issuer = departments.department_by_id(db, certificate.issuer_department_id)
    now = utcnow()
    state = _state(certificate.status, certificate.valid_from, certificate.valid_until, now.astimezone(SHANGHAI).date())
    properties = ctype.face_schema.get("properties", {}) if ctype else {}
    shown = []
    for name in ctype.public_fields if ctype else []:
        if name in certificate.face:
            spec = properties.get(name, {})
            label = str(spec.get("title", name)) if isinstance(spec, dict) else name
            shown.append((name, label, str(certificate.face[name])))
    audit.record(
        db,
        actor=PublicActor(subject="public:" + hashlib.sha256(client.encode()).hexdigest()[:16]),
        action="certificate.public_check",
        object_type="certificate",
        object_id=certificate.identifier,
        subject=certificate.holder_code,
        detail={"state": state, "fields": [name for name, _, _ in shown]},
    )
    return PublicCheck(
        valid=state == "valid",
        state=state,
        message=STATE_MESSAGES.get(state, state),
        type_name=ctype.name if ctype else certificate.type_code,
        issuer_name=issuer.name if issuer else certificate.issuer_code,
        issuer_code=certificate.issuer_code,
        valid_from=certificate.valid_from,
        valid_until=certificate.valid_until,
        checked_at=now,
        fields=shown,
    )
