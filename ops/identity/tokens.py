"""Access tokens: JWTs signed by the hub (EdDSA, with `kid`), verified against the hub's JWKS."""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from jwt import PyJWKClient
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import reading, utcnow
from ops.errors import Unauthenticated
from ops.identity.models import SigningKey

ALGORITHM = "EdDSA"
# Algorithms an external holder identity provider may use. Never "none" or HMAC.
EXTERNAL_ALGORITHMS = ["EdDSA", "ES256", "ES384", "RS256", "PS256"]


def _purpose(kid: str) -> str:
    return f"hub-signing-key:{kid}"


def create_signing_key(db: Session, vault: KeyVault, *, note: str | None = None) -> SigningKey:
    """Generate a new Ed25519 token-signing key, stored with its private half encrypted."""
    private = Ed25519PrivateKey.generate()
    kid = f"hub-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "alg": ALGORITHM, "use": "sig"})
    key = SigningKey(
        kid=kid,
        alg=ALGORITHM,
        public_jwk=jwk,
        private_key=vault.wrap(pem, purpose=_purpose(kid)).as_dict(),
        note=note,
    )
    db.add(key)
    db.flush()
    return key


def rotate_signing_key(db: Session, vault: KeyVault, settings: Settings) -> SigningKey:
    """Start signing with a new key; old keys stay in the JWKS until their tokens have expired."""
    now = utcnow()
    grace = timedelta(seconds=settings.token_ttl_seconds + 60)
    for old in db.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None))):
        old.retired_at = now
        old.verify_until = now + grace
    return create_signing_key(db, vault, note="rotation")


def ensure_signing_key(db: Session, vault: KeyVault) -> SigningKey:
    """The active signing key, created on first start."""
    active = db.scalars(select(SigningKey).where(SigningKey.retired_at.is_(None)).order_by(SigningKey.created_at.desc())).first()
    return active or create_signing_key(db, vault, note="first start")


def rewrap_signing_keys(db: Session, vault: KeyVault) -> int:
    """Re-wrap every stored private key under the current master key; returns how many changed."""
    changed = 0
    for key in db.scalars(select(SigningKey)):
        wrapped = WrappedSecret.from_dict(key.private_key)
        rewrapped = vault.rewrap(wrapped, purpose=_purpose(key.kid))
        if rewrapped != wrapped:
            key.private_key = rewrapped.as_dict()
            changed += 1
    db.flush()
    return changed


@dataclass(frozen=True)
class _Loaded:
    kid: str
    public: Ed25519PublicKey
    jwk: dict[str, Any]


class KeyRing:
    """The hub's keys as this process sees them: cached, refreshed on an unknown `kid`."""

    REFRESH_SECONDS = 30.0

    def __init__(self, factory: sessionmaker[Session], vault: KeyVault, settings: Settings) -> None:
        self._factory = factory
        self._vault = vault
        self._settings = settings
        self._lock = threading.Lock()
        self._public: dict[str, _Loaded] = {}
        self._signer: tuple[str, Ed25519PrivateKey] | None = None
        self._loaded_at = 0.0
        self._external: PyJWKClient | None = None

    def _refresh(self, *, force: bool = False) -> None:
        with self._lock:
            if not force and time.monotonic() - self._loaded_at < self.REFRESH_SECONDS:
                return
            now = utcnow()
            with reading(), self._factory() as db:
                rows = list(
                    db.scalars(select(SigningKey).where(or_(SigningKey.verify_until.is_(None), SigningKey.verify_until > now)))
                )
                active = sorted((r for r in rows if r.retired_at is None), key=lambda r: r.created_at)
                if active and (self._signer is None or self._signer[0] != active[-1].kid):
                    newest = active[-1]
                    pem = self._vault.unwrap(WrappedSecret.from_dict(newest.private_key), purpose=_purpose(newest.kid))
                    private = serialization.load_pem_private_key(pem, password=None)
                    assert isinstance(private, Ed25519PrivateKey)
                    self._signer = (newest.kid, private)
                elif not active:
                    self._signer = None
            self._public = {r.kid: _Loaded(r.kid, _public_from_jwk(r.public_jwk), r.public_jwk) for r in rows}
            self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        """Forget the cache (after a rotation in this process)."""
        with self._lock:
            self._loaded_at = 0.0

    def jwks(self) -> dict[str, Any]:
        """The public keys that may still verify a token, as a JWK set."""
        self._refresh()
        return {"keys": [k.jwk for k in self._public.values()]}

    def sign(self, claims: dict[str, Any]) -> str:
        """Sign claims with the active key."""
        self._refresh()
        if self._signer is None:
            self._refresh(force=True)
        if self._signer is None:
            raise RuntimeError("the hub has no active signing key; run `govhub db upgrade`")
        kid, private = self._signer
        return jwt.encode(claims, private, algorithm=ALGORITHM, headers={"kid": kid})

    def issue(self, *, subject: str, audience: str, issuer: str, ttl: int, **extra: Any) -> str:
        """Issue a token for `subject` lasting `ttl` seconds."""
        now = int(time.time())
        claims = {
            "iss": issuer,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": secrets.token_urlsafe(12),
            **extra,
        }
        return self.sign(claims)

    def verify(self, token: str, *, issuers: list[str], audience: str) -> dict[str, Any]:
        """Verify a hub-signed token; raise Unauthenticated saying why it is refused."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthenticated(f"the token is not a well-formed JWT: {exc}") from exc
        alg = header.get("alg")
        if alg != ALGORITHM:
            raise Unauthenticated(f"token algorithm {alg!r} is not accepted; the hub signs with EdDSA")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token has no key id (kid) in its header")
        self._refresh()
        loaded = self._public.get(kid)
        if loaded is None:
            self._refresh(force=True)
            loaded = self._public.get(kid)
        if loaded is None:
            raise Unauthenticated(f"the token's key id {kid!r} is not one of the hub's keys")
        return _decode(token, loaded.public, [ALGORITHM], issuers=issuers, audience=audience)

    def verify_external(self, token: str, *, issuer: str, jwks_url: str, audience: str) -> dict[str, Any]:
        """Verify a token from the external holder identity provider against its JWKS."""
        if self._external is None:
            self._external = PyJWKClient(jwks_url, cache_keys=True, lifespan=300, timeout=5)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise Unauthenticated(f"the token is not a well-formed JWT: {exc}") from exc
        if header.get("alg") not in EXTERNAL_ALGORITHMS:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted")
        try:
            signing_key = self._external.get_signing_key_from_jwt(token)
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated(f"the identity provider's key was not found: {exc}") from exc
        return _decode(token, signing_key.key, EXTERNAL_ALGORITHMS, issuers=[issuer], audience=audience)


def _public_from_jwk(jwk: dict[str, Any]) -> Ed25519PublicKey:
    key = OKPAlgorithm.from_jwk(json.dumps(jwk))
    assert isinstance(key, Ed25519PublicKey)
    return key


def _decode(token: str, key: Any, algorithms: list[str], *, issuers: list[str], audience: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=audience,
            issuer=issuers,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthenticated("the token has expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise Unauthenticated(f"the token is not meant for this hub (audience must be {audience!r})") from exc
    except jwt.InvalidIssuerError as exc:
        raise Unauthenticated("the token was issued by an issuer this hub does not trust") from exc
    except jwt.MissingRequiredClaimError as exc:
        raise Unauthenticated(f"the token lacks a required claim: {exc.claim}") from exc
    except jwt.InvalidSignatureError as exc:
        raise Unauthenticated("the token's signature does not verify") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"the token is invalid: {exc}") from exc
    return claims
