"""How a system proves it is a client, besides its current secret: keys it registered for
`private_key_jwt` (RFC 7523 client assertions, each `jti` used once) and secrets rotated without downtime
(the former secret stays valid until a chosen moment, at most `MAX_OVERLAP_DAYS` days)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ops import audit
from ops.auth import Principal, Role
from ops.crypto import hash_secret, new_secret, verify_secret
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated
from ops.identity import repository
from ops.identity.models import ApiClient, ClientKey, RetiringSecret, UsedAssertion

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Algorithms a client may sign its assertions with (never "none" or HMAC: the hub keeps no shared key).
ASSERTION_ALGORITHMS = ("ES256", "ES384", "RS256", "PS256", "EdDSA")
MAX_ASSERTION_SECONDS = 300  # an assertion is made for one token request: it lives 5 minutes at most
LEEWAY_SECONDS = 30
MAX_KEYS = 5  # active keys per client: room for a rotation, not a key ring
MAX_OVERLAP_DAYS = 30  # how long a rotated secret may stay valid beside its successor
MIN_RSA_BITS = 2048

_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


def _managed_client(db: Session, who: Principal, client_id: str) -> ApiClient:
    client = repository.get_client(db, who, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    if Role.PLATFORM_ADMIN in client.roles and not who.is_platform_admin:
        raise Forbidden("only a platform administrator may change a platform administrator's credentials")
    if client.revoked_at is not None:
        raise Conflict(f"client {client_id} is revoked; its credentials cannot change")
    return client


# ---------------------------------------------------------------- registered keys


def thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of a public JWK (base64url SHA-256), the key id when the JWK has none."""
    members = _THUMBPRINT_MEMBERS[str(jwk["kty"])]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def _public_jwk(jwk: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The checked public JWK to store and its algorithm; Invalid saying what is wrong."""

    def bad(message: str) -> Invalid:
        return Invalid(f"the key cannot be registered: {message}", errors=[{"field": "jwk", "message": message}])

    private = [m for m in _PRIVATE_MEMBERS if m in jwk]
    if private:
        raise bad(
            "it contains private key material (" + ", ".join(private) + "); send only the public key, and since the "
            "private key has left your system, generate a new key pair"
        )
    kty = jwk.get("kty")
    if kty not in _THUMBPRINT_MEMBERS:
        raise bad(f"key type {kty!r} is not accepted; use an EC P-256/P-384, RSA (2048 bits or more) or Ed25519 key")
    missing = [m for m in _THUMBPRINT_MEMBERS[str(kty)] if not isinstance(jwk.get(m), str) or not jwk.get(m)]
    if missing:
        raise bad(f"a {kty} key needs the members {', '.join(missing)}")
    if jwk.get("use") not in (None, "sig"):
        raise bad(f"use is {jwk.get('use')!r}; a key that signs client assertions has use 'sig' (or none)")
    if jwk.get("alg") is not None and jwk.get("alg") not in ASSERTION_ALGORITHMS:
        raise bad(f"alg {jwk.get('alg')!r} is not accepted; use one of {', '.join(ASSERTION_ALGORITHMS)}")
    try:
        parsed = jwt.PyJWK(dict(jwk))
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise bad(f"it is not a valid public key ({exc})") from exc
    alg = str(jwk.get("alg") or parsed.algorithm_name)
    if alg not in ASSERTION_ALGORITHMS:
        raise bad(f"keys of this kind sign with {alg}, which is not accepted; use one of {', '.join(ASSERTION_ALGORITHMS)}")
    if isinstance(parsed.key, RSAPublicKey) and parsed.key.key_size < MIN_RSA_BITS:
        raise bad(f"the RSA key has {parsed.key.key_size} bits; at least {MIN_RSA_BITS} are required")
    if kty == "OKP" and jwk.get("crv") != "Ed25519":
        raise bad(f"curve {jwk.get('crv')!r} is not accepted; use Ed25519")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not 1 <= len(kid) <= 128):
        raise bad("kid must be a string of 1..128 characters")
    public = {m: jwk[m] for m in _THUMBPRINT_MEMBERS[str(kty)]}
    public.update({"kid": kid or thumbprint(jwk), "alg": alg, "use": "sig"})
    return public, alg


def register_key(db: Session, *, who: Principal, client_id: str, jwk: dict[str, Any]) -> ClientKey:
    """Register a public key the client will sign its assertions with."""
    client = _managed_client(db, who, client_id)
    public, alg = _public_jwk(jwk)
    active = repository.client_keys(db, client.client_id)
    if any(k.kid == public["kid"] for k in repository.client_keys(db, client.client_id, include_removed=True)):
        raise Conflict(
            f"client {client_id} already has a key with kid {public['kid']!r}; give the new key another kid",
            errors=[{"field": "jwk.kid", "message": "duplicate"}],
        )
    if len(active) >= MAX_KEYS:
        raise Conflict(f"client {client_id} has {len(active)} keys, the most it may have; remove one first")
    key = ClientKey(client_id=client.client_id, kid=public["kid"], alg=alg, public_jwk=public, created_by=who.subject)
    db.add(key)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="client.key.register",
        object_type="api_client",
        object_id=client.client_id,
        detail={"kid": key.kid, "alg": alg, "thumbprint": thumbprint(public)},
    )
    return key


def list_keys(db: Session, *, who: Principal, client_id: str) -> list[ClientKey]:
    """A client's keys, removed ones included (they show when they stopped)."""
    client = repository.get_client(db, who, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    return repository.client_keys(db, client.client_id, include_removed=True)


def remove_key(db: Session, *, who: Principal, client_id: str, kid: str) -> ClientKey:
    """Remove a key: assertions it signs are refused from now on."""
    client = _managed_client(db, who, client_id)
    key = next((k for k in repository.client_keys(db, client.client_id) if k.kid == kid), None)
    if key is None:
        raise NotFound(f"client {client_id} has no active key {kid!r}")
    key.revoked_at = utcnow()
    db.flush()
    audit.record(
        db, actor=who, action="client.key.remove", object_type="api_client", object_id=client.client_id, detail={"kid": kid}
    )
    return key


# ---------------------------------------------------------------- secret rotation


@dataclass(frozen=True)
class RotatedSecret:
    client: ApiClient
    secret: str
    retiring: RetiringSecret | None


def rotate_secret(db: Session, *, who: Principal, client_id: str, old_secret_valid_hours: int) -> RotatedSecret:
    """Issue a new secret; the current one stays valid for `old_secret_valid_hours` (0: it stops at once)."""
    if not 0 <= old_secret_valid_hours <= MAX_OVERLAP_DAYS * 24:
        raise Invalid(
            f"old_secret_valid_hours must be between 0 and {MAX_OVERLAP_DAYS * 24} ({MAX_OVERLAP_DAYS} days)",
            errors=[{"field": "old_secret_valid_hours", "message": f"0..{MAX_OVERLAP_DAYS * 24}"}],
        )
    secret = new_secret()
    secret_hash = hash_secret(secret)  # before the first statement: a writer holds the database from there
    client = _managed_client(db, who, client_id)
    now = utcnow()
    still_valid = repository.retiring_secrets(db, client.client_id, at=now)
    if still_valid:
        raise Conflict(
            f"the secret rotated before is still valid until {still_valid[0].expires_at:%Y-%m-%d %H:%M} UTC; "
            "revoke it first (POST /clients/{client_id}/secrets/{id}/revoke) or wait until it expires"
        )
    retiring = None
    if old_secret_valid_hours > 0:
        retiring = RetiringSecret(
            client_id=client.client_id,
            secret_hash=client.secret_hash,
            retired_at=now,
            expires_at=now + timedelta(hours=old_secret_valid_hours),
            created_by=who.subject,
        )
        db.add(retiring)
    client.secret_hash = secret_hash
    db.flush()
    audit.record(
        db,
        actor=who,
        action="client.secret.rotate",
        object_type="api_client",
        object_id=client.client_id,
        detail={
            "old_secret": "valid until " + retiring.expires_at.isoformat() if retiring else "revoked at once",
            "retiring_secret_id": retiring.id if retiring else None,
        },
    )
    return RotatedSecret(client, secret, retiring)


def list_retiring_secrets(db: Session, *, who: Principal, client_id: str) -> list[RetiringSecret]:
    """A client's former secrets, newest first: which still work, and until when."""
    client = repository.get_client(db, who, client_id)
    if client is None:
        raise NotFound(f"client {client_id} not found")
    return repository.retiring_secrets(db, client.client_id, at=None)


def revoke_retiring_secret(db: Session, *, who: Principal, client_id: str, secret_id: str) -> RetiringSecret:
    """End a former secret's overlap now (e.g. it leaked, or every system has moved to the new one)."""
    client = _managed_client(db, who, client_id)
    retiring = next((s for s in repository.retiring_secrets(db, client.client_id, at=None) if s.id == secret_id), None)
    if retiring is None:
        raise NotFound(f"client {client_id} has no former secret {secret_id}")
    now = utcnow()
    if retiring.revoked_at is not None or retiring.expires_at <= now:
        raise Conflict(f"former secret {secret_id} no longer works (revoked or expired)")
    retiring.revoked_at = now
    db.flush()
    audit.record(
        db, actor=who, action="client.secret.revoke", object_type="api_client", object_id=client.client_id,
        detail={"retiring_secret_id": secret_id},
    )  # fmt: skip
    return retiring


def retiring_secret_matches(db: Session, client: ApiClient, secret: str) -> bool:
    """Whether `secret` is one of the client's former secrets still in their overlap."""
    return any(verify_secret(secret, s.secret_hash) for s in repository.retiring_secrets(db, client.client_id, at=utcnow()))


# ---------------------------------------------------------------- private_key_jwt


def _refuse(message: str) -> Unauthenticated:
    return Unauthenticated(message, extra={"error": "invalid_client"})


def authenticate_assertion(db: Session, *, assertion: str, client_id: str | None, audiences: list[str]) -> ApiClient:
    """Check a `private_key_jwt` client assertion (RFC 7523 §3) and use up its `jti`; the client it proves.

    `audiences` are the values `aud` may take: the token endpoint's URL and the hub's issuer."""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.DecodeError as exc:
        raise _refuse(f"the client_assertion is not a well-formed JWT: {exc}") from exc
    iss, sub = unverified.get("iss"), unverified.get("sub")
    if not isinstance(iss, str) or not iss:
        raise _refuse("the client assertion has no iss claim; iss and sub must both be your client id")
    if sub != iss:
        raise _refuse("the client assertion's sub must equal its iss: both are your client id")
    if client_id and client_id != iss:
        raise _refuse(f"the client assertion was made for client {iss}, not for client_id {client_id}")
    alg = header.get("alg")
    if alg not in ASSERTION_ALGORITHMS:
        raise _refuse(f"the client assertion is signed with {alg!r}; sign with one of {', '.join(ASSERTION_ALGORITHMS)}")
    client = repository.client_by_client_id(db, iss)
    keys = repository.client_keys(db, client.client_id) if client is not None and client.revoked_at is None else []
    if client is None or not keys:
        # One answer whether the client is unknown, revoked or has no key: client ids are not revealed.
        raise _refuse(f"there is no active client {iss} with a registered key; register its public key first, or use its secret")
    kid = header.get("kid")
    candidates = keys if kid is None else [k for k in keys if k.kid == kid]
    if not candidates:
        raise _refuse(f"the key id {kid!r} is not a registered key of client {iss} (removed, or never registered)")
    candidates = [k for k in candidates if k.alg == alg]
    if not candidates:
        raise _refuse(f"the client assertion is signed with {alg}, but the client's key is registered for another algorithm")
    claims = _verified_claims(assertion, candidates, alg=alg, issuer=iss, audiences=audiences)
    _use_jti(db, client=client, claims=claims)
    return client


def _verified_claims(assertion: str, keys: list[ClientKey], *, alg: str, issuer: str, audiences: list[str]) -> dict[str, Any]:
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                assertion,
                jwt.PyJWK(key.public_jwk).key,
                algorithms=[alg],
                audience=audiences,
                issuer=issuer,
                options={"require": ["iss", "sub", "aud", "exp", "iat", "jti"]},
                leeway=LEEWAY_SECONDS,
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise _refuse("the client assertion has expired; make a fresh one for each token request") from exc
        except jwt.InvalidAudienceError as exc:
            raise _refuse(
                f"the client assertion's aud must be the token endpoint {audiences[0]} (or the issuer {audiences[1]})"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise _refuse(f"the client assertion lacks the {exc.claim} claim") from exc
        except jwt.ImmatureSignatureError as exc:
            raise _refuse("the client assertion is not valid yet (iat or nbf lies in the future); check your clock") from exc
        except jwt.InvalidTokenError as exc:
            raise _refuse(f"the client assertion is invalid: {exc}") from exc
        lifetime = int(claims["exp"]) - int(claims["iat"])
        if lifetime > MAX_ASSERTION_SECONDS:
            raise _refuse(f"the client assertion lives {lifetime} s (exp - iat); at most {MAX_ASSERTION_SECONDS} s are accepted")
        return claims
    raise _refuse("the client assertion's signature does not verify with the client's registered key")


def _use_jti(db: Session, *, client: ApiClient, claims: dict[str, Any]) -> None:
    """Record the assertion's `jti` until it expires; a second use is a replay, refused (in every hub process)."""
    jti = claims["jti"]
    if not isinstance(jti, str) or not 1 <= len(jti) <= 200:
        raise _refuse("the client assertion's jti must be a unique string of 1..200 characters")
    now = utcnow()
    db.execute(delete(UsedAssertion).where(UsedAssertion.client_id == client.client_id, UsedAssertion.expires_at < now))
    expires_at = now + timedelta(seconds=MAX_ASSERTION_SECONDS + 2 * LEEWAY_SECONDS)
    try:
        with db.begin_nested():
            db.add(UsedAssertion(client_id=client.client_id, jti=jti, expires_at=expires_at))
    except IntegrityError as exc:
        raise _refuse("this client assertion was already used (its jti is spent); make a fresh one for each request") from exc
