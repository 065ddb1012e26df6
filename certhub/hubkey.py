"""The hub's own Ed25519 key, and what the hub publishes for other hubs: its keys and issuer metadata."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from certhub import caches, repository, sdjwt, sealing, statuslist
from certhub.common import ROOT, status_base
from certhub.models import (
    HubKey,
)
from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow


@dataclass(frozen=True)
class HubSigner:
    """The hub's Ed25519 key (status lists, presentations)."""

    kid: str
    _private: Ed25519PrivateKey = field(repr=False)
    alg: str = "EdDSA"

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)


def _hub_purpose(kid: str) -> str:
    return f"certhub-hub-key:{kid}"


def hub_signer(db: Session, *, vault: KeyVault) -> HubSigner:
    """The hub's active signing key, made on first use."""
    key = repository.active_hub_key(db)
    if key is None:
        private = Ed25519PrivateKey.generate()
        kid = f"certhub-{utcnow():%Y%m%d}-{secrets.token_hex(4)}"
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        key = HubKey(
            kid=kid,
            alg="EdDSA",
            public_jwk={"kty": "OKP", "crv": "Ed25519", "x": sdjwt.b64u(raw), "kid": kid, "alg": "EdDSA", "use": "sig"},
            private_key=vault.wrap(pem, purpose=_hub_purpose(kid)).as_dict(),
        )
        db.add(key)
        db.flush()
    signer = caches.hub_signers.get(key.kid)
    if signer is None:
        pem = vault.unwrap(WrappedSecret.from_dict(key.private_key), purpose=_hub_purpose(key.kid))
        loaded = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(loaded, Ed25519PrivateKey)
        signer = HubSigner(kid=key.kid, _private=loaded)
        caches.hub_signers[key.kid] = signer
    return signer


def hub_jwks(db: Session) -> dict[str, Any]:
    """The hub's keys and every department seal key: what another hub needs to verify ours."""
    keys = [dict(k.public_jwk, use="presentation") for k in repository.hub_keys(db)]
    seals = sealing.department_jwks(db).get("keys", [])
    return {"keys": [*keys, *seals]}


def issuer_metadata(db: Session, *, settings: Settings) -> dict[str, Any]:
    """What this hub publishes for mutual recognition (互通互认)."""
    base = settings.public_url
    return {
        "issuer": base,
        "jwks_uri": f"{base}/certhub/.well-known/jwks.json",
        "status_list_uris": [f"{status_base(settings)}/{p}" for p in statuslist.PURPOSES],
        "credential_formats": [sdjwt.SD_JWT_TYP, sdjwt.VC_JWT_TYP],
        "identifier_root": ROOT,
        "certificate_types": [{"code": t.code, "name": t.name} for t in repository.list_types(db, include_inactive=False)],
    }
