"""Secrets at rest: envelope encryption of private keys, and password hashing for client secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ops.config import Settings

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


def key_id(kek: bytes) -> str:
    """A short public fingerprint of a master key (never the key itself)."""
    return hashlib.sha256(b"govhub-kek-id" + kek).hexdigest()[:16]


@dataclass(frozen=True)
class WrappedSecret:
    """A secret sealed under a fresh data key, the data key itself wrapped by the master key."""

    kek_id: str
    wrapped_dek: str  # base64(nonce || AESGCM(kek, dek))
    ciphertext: str  # base64(nonce || AESGCM(dek, plaintext))

    def as_dict(self) -> dict[str, str]:
        return {"kek_id": self.kek_id, "wrapped_dek": self.wrapped_dek, "ciphertext": self.ciphertext}

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> WrappedSecret:
        return cls(data["kek_id"], data["wrapped_dek"], data["ciphertext"])


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, plaintext, aad)).decode()


def _open(key: bytes, blob: str, aad: bytes) -> bytes:
    raw = base64.b64decode(blob)
    return AESGCM(key).decrypt(raw[:12], raw[12:], aad)


class KeyVault:
    """Envelope encryption under the configured master key (AES-256-GCM, bound to a purpose)."""

    def __init__(self, master_keys: list[bytes]) -> None:
        if not master_keys:
            raise ValueError("at least one master key is needed")
        self._current = master_keys[0]
        self._by_id = {key_id(k): k for k in master_keys}

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyVault:
        return cls(settings.master_keys())

    @property
    def current_kek_id(self) -> str:
        return key_id(self._current)

    def wrap(self, plaintext: bytes, *, purpose: str) -> WrappedSecret:
        """Encrypt a secret; `purpose` (e.g. "jwt-key:<kid>") is bound as associated data."""
        dek = AESGCM.generate_key(bit_length=256)
        aad = purpose.encode()
        return WrappedSecret(
            kek_id=self.current_kek_id,
            wrapped_dek=_seal(self._current, dek, aad),
            ciphertext=_seal(dek, plaintext, aad),
        )

    def unwrap(self, secret: WrappedSecret, *, purpose: str) -> bytes:
        """Decrypt a secret sealed by `wrap` under the current or a previous master key."""
        kek = self._by_id.get(secret.kek_id)
        if kek is None:
            raise ValueError(f"secret is wrapped under master key {secret.kek_id}, which is not configured")
        aad = purpose.encode()
        try:
            dek = _open(kek, secret.wrapped_dek, aad)
            return _open(dek, secret.ciphertext, aad)
        except InvalidTag as exc:
            raise ValueError("secret failed its integrity check (wrong purpose or altered)") from exc

    def rewrap(self, secret: WrappedSecret, *, purpose: str) -> WrappedSecret:
        """Re-wrap the data key under the current master key; the secret itself is unchanged."""
        if secret.kek_id == self.current_kek_id:
            return secret
        kek = self._by_id.get(secret.kek_id)
        if kek is None:
            raise ValueError(f"master key {secret.kek_id} is not configured")
        aad = purpose.encode()
        dek = _open(kek, secret.wrapped_dek, aad)
        return WrappedSecret(self.current_kek_id, _seal(self._current, dek, aad), secret.ciphertext)


def hash_secret(secret: str) -> str:
    """Hash a client secret with scrypt (a memory-hard password KDF)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Check a client secret against its stored scrypt hash in constant time."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest_b64)
    actual = hashlib.scrypt(secret.encode(), salt=base64.b64decode(salt_b64), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(expected, actual)


def new_secret() -> str:
    """A fresh random client secret (shown to its owner once)."""
    return secrets.token_urlsafe(32)
