"""Sign-in, sessions and CSRF of the console: the development sign-in (client secret, built-in holder) and
OpenID Connect sign-in at the identity provider (统一身份认证) through ``ops.identity.oidc``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from govhub.console.models import ConsoleSession, PendingSignIn
from ops import audit
from ops.auth import Principal, Role, has_second_factor
from ops.codes import citizen_id_problem
from ops.config import Settings
from ops.db import utcnow
from ops.errors import Forbidden, HubError, Invalid, Unauthenticated
from ops.identity import repository as identity_repo
from ops.identity import service as identity
from ops.identity.oidc import RelyingParty, SignInRefused, VerifiedSignIn

IDLE = timedelta(minutes=30)
ABSOLUTE = timedelta(hours=8)
PENDING = timedelta(minutes=10)  # how long the identity provider may take to send the browser back
AUDIENCES = ("staff", "holder")
STEP_UP_FRESH = 600  # seconds: a step-up's sign-in at the provider (its auth_time) is at most this old


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


def _open(
    db: Session,
    *,
    kind: str,
    subject: str,
    holder_kind: str | None,
    name: str,
    acr: str | None = None,
    amr: tuple[str, ...] = (),
    actor: Principal | None = None,
) -> SignedIn:
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
        acr=acr,
        amr=" ".join(amr) or None,
    )
    db.add(row)
    db.flush()
    if actor is None:
        holder = kind == "holder"
        actor = Principal(
            subject=subject, roles=frozenset({Role.HOLDER} if holder else ()), display_name=name if holder else None
        )
    audit.record(
        db,
        actor=actor,
        action="console.sign_in",
        object_type="console_session",
        object_id=row.token_hash[:16],
        subject=subject if kind == "holder" else None,
        detail={"acr": acr, "amr": list(amr)} if acr or amr else None,
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
    amr = tuple((row.amr or "").split())
    if row.kind == "holder":
        principal = identity.holder_principal({"sub": row.subject, "holder_kind": row.holder_kind, "name": row.display_name})
        principal = replace(principal, display_name=row.display_name, acr=row.acr, amr=amr)
    elif row.kind == "person":
        person = identity_repo.person_by_id(db, row.subject)
        if person is None:
            return None
        try:
            principal = identity.person_principal(db, person, acr=row.acr, amr=amr)
        except HubError:  # withdrawn, moved out of every department, or the department deactivated
            return None
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
    """Delete expired sessions and sign-ins the provider never answered; returns how many."""
    now = utcnow()
    result = db.execute(
        delete(ConsoleSession).where((ConsoleSession.expires_at <= now) | (ConsoleSession.last_seen_at <= now - IDLE))
    )
    return int(getattr(result, "rowcount", 0) or 0) + purge_pending(db)


# -- OpenID Connect sign-in ------------------------------------------------------------------------------


def start_sign_in(
    db: Session, rp: RelyingParty, settings: Settings, *, audience: str, next_url: str, step_up: bool = False
) -> tuple[str, str]:
    """Begin a sign-in at the identity provider: the URL to send the browser to and the `state` (kept in a
    cookie too, so that only the browser that began it can finish it). A step-up asks for a second factor
    (``acr_values``) and a fresh login (``prompt=login``)."""
    if audience not in AUDIENCES:
        raise Invalid(f"sign in as staff or holder, not {audience!r}", errors=[{"field": "as", "message": "staff or holder"}])
    wanted = settings.step_up_acr_wanted if step_up else None
    request = rp.authorization_request(acr_values=wanted or None, prompt="login" if step_up else None)
    db.add(
        PendingSignIn(
            state_hash=_hash(request.state),
            nonce=request.nonce,
            code_verifier=request.code_verifier,
            audience=audience,
            next_url=next_url if next_url.startswith("/console/") else "",
            step_up=step_up,
            created_at=utcnow(),
        )
    )
    db.flush()
    return request.url, request.state


@dataclass(frozen=True)
class Pending:
    nonce: str
    code_verifier: str
    audience: str
    next_url: str
    step_up: bool


def claim_pending(db: Session, *, state: str, browser_state: str | None) -> Pending:
    """The sign-in this answer belongs to, taken out so that it is used once. Refused when the browser did
    not begin it (its cookie), when it is unknown or used, or when it is too old."""
    if not state or not browser_state or not hmac.compare_digest(state, browser_state):
        raise SignInRefused(
            "the identity provider's answer does not belong to the sign-in this browser began (state); start the sign-in again"
        )
    row = db.get(PendingSignIn, _hash(state))
    if row is None:
        raise SignInRefused("this sign-in answer was already used or is unknown; start the sign-in again")
    pending = Pending(row.nonce, row.code_verifier, row.audience, row.next_url, row.step_up)
    created_at = row.created_at
    db.delete(row)
    db.flush()
    if created_at + PENDING <= utcnow():
        raise SignInRefused("the sign-in took too long (more than 10 minutes); start the sign-in again")
    return pending


def verified_sign_in(rp: RelyingParty, pending: Pending, *, code: str) -> VerifiedSignIn:
    """Trade the code (with the PKCE verifier) for the ID token and check it against the nonce. No database."""
    if not code:
        raise SignInRefused("the identity provider sent no authorization code; start the sign-in again")
    token = rp.exchange_code(code=code, code_verifier=pending.code_verifier)
    return rp.verify_id_token(token, nonce=pending.nonce)


def finish_sign_in(db: Session, settings: Settings, pending: Pending, verified: VerifiedSignIn) -> SignedIn:
    """Open the console session of the person the provider vouched for: staff as a person of ``people``
    (NoDepartment until placed in one), a holder by the 公民身份号码 of the verified claim."""
    if pending.audience == "holder":
        return _holder_from_claims(db, settings, verified)
    person = identity.signed_in_person(
        db,
        issuer=verified.issuer,
        subject=verified.subject,
        name=verified.name,
        id_number=identity.verified_id_number(verified.claims.get(settings.oidc_holder_id_claim)),
    )
    principal = identity.person_principal(db, person, acr=verified.acr, amr=verified.amr)
    if pending.step_up and not has_second_factor(principal, settings):
        raise Forbidden(
            "the identity provider did not confirm a second factor for this sign-in; sign in again and use your "
            "second factor (e.g. the dynamic password) when the provider asks"
        )
    auth_time = verified.claims.get("auth_time")
    if pending.step_up and not (isinstance(auth_time, int | float) and utcnow().timestamp() - auth_time <= STEP_UP_FRESH):
        raise Forbidden("the identity provider did not sign you in afresh (prompt=login, auth_time); sign in again")
    return _open(
        db,
        kind="person",
        subject=person.id,
        holder_kind=None,
        name=person.name,
        acr=verified.acr,
        amr=verified.amr,
        actor=principal,
    )


def _holder_from_claims(db: Session, settings: Settings, verified: VerifiedSignIn) -> SignedIn:
    claim = settings.oidc_holder_id_claim
    value = verified.claims.get(claim)
    if not isinstance(value, str) or not value.strip():
        raise Forbidden(
            f"the identity provider did not vouch for a 公民身份号码 (claim {claim!r}); holders sign in with a "
            "real-name verified account (实名认证): complete it at the provider, then sign in again"
        )
    code = value.strip().upper()
    problem = citizen_id_problem(code)
    if problem:
        raise Invalid(
            f"the 公民身份号码 the identity provider vouches for fails its check ({problem}); ask the provider to correct "
            "your real-name record, then sign in again (身份证号码校验未通过)",
            errors=[{"field": claim, "message": problem}],
        )
    return _open(db, kind="holder", subject=code, holder_kind="person", name=verified.name, acr=verified.acr, amr=verified.amr)


def purge_pending(db: Session) -> int:
    """Delete sign-ins the provider never answered; returns how many."""
    result = db.execute(delete(PendingSignIn).where(PendingSignIn.created_at <= utcnow() - PENDING))
    return int(getattr(result, "rowcount", 0) or 0)
