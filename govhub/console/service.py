"""Sign-in, sessions and CSRF of the console."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from govhub.console.models import ConsoleSession
from ops import audit
from ops.auth import Principal, Role
from ops.db import utcnow
from ops.errors import Forbidden, Unauthenticated
from ops.identity import repository as identity_repo
from ops.identity import service as identity

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    token: str  # the cookie value: shown to the browser only
    session: ConsoleSession


def sign_in_client(db: Session, *, client_id: str, client_secret: str) -> SignedIn:
    """Sign in staff with their client credentials."""
    client = identity.authenticate_client(db, client_id=client_id.strip(), client_secret=client_secret)
    identity.token_claims(db, client)  # refuses a deactivated department
    return _open(db, kind="client", subject=client.client_id, holder_kind=None, name=client.name)


def sign_in_holder(db: Session, *, code: str, kind: str, name: str) -> SignedIn:
    """Sign in a holder (already authenticated by the identity provider)."""
    return _open(db, kind="holder", subject=code, holder_kind=kind, name=name)


def _open(db: Session, *, kind: str, subject: str, holder_kind: str | None, name: str) -> SignedIn:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    row = ConsoleSession(
        token_hash=_hash(token),
        kind=kind,
        subject=subject,
        holder_kind=holder_kind,
        display_name=name,
        csrf=secrets.token_urlsafe(24),
        created_at=now,
        last_seen_at=now,
        expires_at=now + ABSOLUTE,
    )
    db.add(row)
    db.flush()
    actor = Principal(subject=subject, roles=frozenset({Role.HOLDER}) if kind == "holder" else frozenset())
    audit.record(
        db,
        actor=actor,
        action="console.sign_in",
        object_type="console_session",
        object_id=row.token_hash[:16],
        subject=subject if kind == "holder" else None,
    )
    return SignedIn(token, row)


def resume(db: Session, token: str | None) -> tuple[ConsoleSession, Principal] | None:
    """The session and principal behind a cookie, or None if it is unknown or expired."""
    if not token:
        return None
    row = db.get(ConsoleSession, _hash(token))
    now = utcnow()
    if row is None or row.expires_at <= now or row.last_seen_at + IDLE <= now:
        return None
    if row.kind == "holder":
        principal = identity.holder_principal({"sub": row.subject, "holder_kind": row.holder_kind, "name": row.display_name})
    else:
        client = identity_repo.client_by_client_id(db, row.subject)
        if client is None or client.revoked_at is not None:
            return None
        try:
            claims = identity.token_claims(db, client)
        except Unauthenticated:
            return None
        principal = identity.client_principal(db, {**claims, "sub": client.client_id})
    row.last_seen_at = now
    return row, principal


def sign_out(db: Session, token: str | None) -> None:
    """End a session (the cookie stops working at once)."""
    if token:
        db.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == _hash(token)))


def check_csrf(session: ConsoleSession, submitted: str | None) -> None:
    """Refuse a form that does not carry the session's CSRF token."""
    if not submitted or not hmac.compare_digest(session.csrf, submitted):
        raise Forbidden("the form is stale or was not sent from this console (CSRF check failed); reload the page")


def purge_expired(db: Session) -> int:
    """Delete expired sessions; returns how many."""
    now = utcnow()
    result = db.execute(
        delete(ConsoleSession).where((ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - IDLE))
    )
    return int(getattr(result, "rowcount", 0) or 0)
