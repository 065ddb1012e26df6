"""Seal keys: generation, the one signer interface, and verification for Ed25519, ECDSA P-256 and SM2.

Ed25519 and P-256 come from `cryptography`; SM2 (with SM3 and the signer's Z value computed with the
default user ID "1234567812345678", GB/T 32918 / GM/T 0009) comes from `tongsuopy`, since `cryptography`
has no SM2. Signatures use the JOSE encoding for every algorithm: Ed25519 64 bytes, ES256 and SM2 raw
r||s (2 x 32 bytes, big-endian).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol, runtime_checkable

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from tongsuopy.crypto import hashes as sm_hashes
from tongsuopy.crypto import serialization as sm_serialization
from tongsuopy.crypto.asymciphers import ec as sm_ec
from tongsuopy.crypto.exceptions import InternalError as SmInternalError
from tongsuopy.crypto.exceptions import InvalidSignature as SmInvalidSignature

EDDSA, ES256, SM2 = "EdDSA", "ES256", "SM2"
ALGORITHMS = (EDDSA, ES256, SM2)

# Names used in the seal structures and certificates (OIDs of the signature algorithms).
SIGNATURE_OID = {EDDSA: "1.3.101.112", ES256: "1.2.840.10045.4.3.2", SM2: "1.2.156.10197.1.501"}
HASH_NAME = {EDDSA: "SHA-256", ES256: "SHA-256", SM2: "SM3"}
SM2_CURVE_OID = "1.2.156.10197.1.301"


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def digest(alg: str, data: bytes) -> bytes:
    """The hash the seal structures use for `alg` (SM3 for SM2, SHA-256 otherwise)."""
    if alg == SM2:
        h = hashes.Hash(hashes.SM3())
        h.update(data)
        return h.finalize()
    return hashlib.sha256(data).digest()


@runtime_checkable
class Signer(Protocol):
    """One interface for every algorithm, and for a future PKCS#11 HSM backend."""

    alg: str  # JOSE name: "EdDSA", "ES256" or "SM2" (SM2 with SM3, a private JOSE name)
    kid: str  # stable key id, published in the department's JWK set
    seal_id: str

    def sign(self, data: bytes) -> bytes: ...
    def public_jwk(self) -> dict[str, Any]: ...
    def certificate_chain_pem(self) -> list[str]: ...


@dataclass(frozen=True)
class KeyPair:
    """A freshly generated key: its private half as PKCS#8 PEM (to be wrapped at once) and public JWK."""

    alg: str
    private_pem: bytes
    public_jwk: dict[str, Any]
    spki_der: bytes


def _ec_jwk(crv: str, x: int, y: int) -> dict[str, Any]:
    return {"kty": "EC", "crv": crv, "x": b64u(x.to_bytes(32, "big")), "y": b64u(y.to_bytes(32, "big"))}


def generate(alg: str) -> KeyPair:
    """Generate a key pair for `alg`."""
    pkcs8 = serialization.PrivateFormat.PKCS8
    if alg == EDDSA:
        ed = ed25519.Ed25519PrivateKey.generate()
        pem = ed.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
        raw = ed.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        spki = ed.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return KeyPair(alg, pem, {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}, spki)
    if alg == ES256:
        p256 = ec.generate_private_key(ec.SECP256R1())
        pem = p256.private_bytes(serialization.Encoding.PEM, pkcs8, serialization.NoEncryption())
        numbers = p256.public_key().public_numbers()
        spki = p256.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return KeyPair(alg, pem, _ec_jwk("P-256", numbers.x, numbers.y), spki)
    if alg == SM2:
        sm = sm_ec.generate_private_key(sm_ec.SM2())
        pem = sm.private_bytes(
            sm_serialization.Encoding.PEM, sm_serialization.PrivateFormat.PKCS8, sm_serialization.NoEncryption()
        )
        point = sm.public_key().public_numbers()
        spki = sm.public_key().public_bytes(sm_serialization.Encoding.DER, sm_serialization.PublicFormat.SubjectPublicKeyInfo)
        return KeyPair(alg, pem, _ec_jwk("SM2", point.x, point.y), spki)
    raise ValueError(f"unknown algorithm {alg!r}; use one of {', '.join(ALGORITHMS)}")


def load_private(alg: str, pem: bytes) -> Any:
    """Load a private key (PKCS#8 PEM) of `alg` into the library that implements it."""
    if alg == SM2:
        return sm_serialization.load_pem_private_key(pem, password=None)
    return serialization.load_pem_private_key(pem, password=None)


def sign_with(alg: str, private: Any, data: bytes) -> bytes:
    """Sign `data`, returning the JOSE encoding of the signature."""
    if alg == EDDSA:
        return bytes(private.sign(data))
    if alg == ES256:
        r, s = decode_dss_signature(private.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == SM2:
        r, s = decode_dss_signature(bytes(private.sign(data, sm_ec.ECDSA(sm_hashes.SM3()))))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise ValueError(f"unknown algorithm {alg!r}")


def _coordinate(jwk: dict[str, Any], name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str):
        raise ValueError(f"the JWK has no {name!r}")
    raw = unb64u(value)
    if len(raw) != 32:
        raise ValueError(f"the JWK's {name!r} is not 32 bytes")
    return int.from_bytes(raw, "big")


def public_from_jwk(alg: str, jwk: dict[str, Any]) -> Any:
    """The public key object for a JWK of `alg` (ValueError if it does not fit the algorithm)."""
    members = tuple(str(jwk.get(k)) for k in ("kty", "crv", "x", "y"))
    return _public_from_members(alg, members)


@lru_cache(maxsize=2048)
def _public_from_members(alg: str, members: tuple[str, ...]) -> Any:
    jwk = dict(zip(("kty", "crv", "x", "y"), members, strict=True))
    if alg == EDDSA:
        if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            raise ValueError("an EdDSA key must be an OKP JWK on Ed25519")
        return ed25519.Ed25519PublicKey.from_public_bytes(unb64u(str(jwk.get("x", ""))))
    if alg == ES256:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
            raise ValueError("an ES256 key must be an EC JWK on P-256")
        return ec.EllipticCurvePublicNumbers(_coordinate(jwk, "x"), _coordinate(jwk, "y"), ec.SECP256R1()).public_key()
    if alg == SM2:
        if jwk.get("kty") != "EC" or jwk.get("crv") != "SM2":
            raise ValueError("an SM2 key must be an EC JWK on the SM2 curve")
        return sm_ec.EllipticCurvePublicNumbers(_coordinate(jwk, "x"), _coordinate(jwk, "y"), sm_ec.SM2()).public_key()
    raise ValueError(f"unknown algorithm {alg!r}")


def public_from_spki(alg: str, spki_der: bytes) -> Any:
    """The public key object from a DER SubjectPublicKeyInfo (as found in a certificate)."""
    if alg == SM2:
        return sm_serialization.load_der_public_key(spki_der)
    return serialization.load_der_public_key(spki_der)


def verify_with(alg: str, public: Any, data: bytes, signature: bytes) -> bool:
    """True when `signature` (JOSE encoding) is a valid signature of `data` by `public`."""
    try:
        if alg == EDDSA:
            public.verify(signature, data)
            return True
        if len(signature) != 64:
            return False
        der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
        if alg == ES256:
            public.verify(der, data, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == SM2:
            public.verify(der, data, sm_ec.ECDSA(sm_hashes.SM3()))
            return True
    except (InvalidSignature, SmInvalidSignature, ValueError):
        return False
    return False


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint of a public JWK (the stable key id)."""
    import json

    members = ("crv", "kty", "x") if jwk.get("kty") == "OKP" else ("crv", "kty", "x", "y")
    canonical = json.dumps({k: jwk[k] for k in members}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(canonical.encode()).digest())


@dataclass
class SoftwareSigner:
    """A signer whose private key is held (decrypted) in this hub process only."""

    alg: str
    kid: str
    seal_id: str
    _private: Any = field(repr=False)
    _jwk: dict[str, Any]
    _chain: list[str]

    def sign(self, data: bytes) -> bytes:
        return sign_with(self.alg, self._private, data)

    def public_jwk(self) -> dict[str, Any]:
        return dict(self._jwk)

    def certificate_chain_pem(self) -> list[str]:
        return list(self._chain)


# ---------------------------------------------------------------- signatures in DER (GB/T 38540, X.509)

# Signature algorithm OIDs of the seal structures, and the DER form of their values: SM2 and ECDSA values are
# the DER SEQUENCE { r, s } (GM/T 0009, RFC 3279); Ed25519 values are the 64 raw bytes (RFC 8410).
ALG_FOR_OID = {oid: alg for alg, oid in SIGNATURE_OID.items()}


def raw_to_der(alg: str, signature: bytes) -> bytes:
    """The DER form of a JOSE-encoded signature (r||s becomes SEQUENCE { r, s }; Ed25519 stays as it is)."""
    if alg == EDDSA:
        return signature
    return encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))


def well_formed_ecdsa_der(signature: bytes) -> bool:
    """A DER SEQUENCE { r, s } of two positive integers and nothing else (checked before a library sees it)."""
    try:
        r, s = decode_dss_signature(signature)
        return r > 0 and s > 0 and encode_dss_signature(r, s) == signature
    except (ValueError, TypeError):
        return False


@lru_cache(maxsize=1024)  # a pure function of the key's bytes: a seal's key verifies many signatures
def _public_key(alg: str, spki_der: bytes) -> Any:
    return public_from_spki(alg, spki_der)


_ES256_SCHEME = ec.ECDSA(hashes.SHA256())  # stateless: one instance serves every verification
_SM2_SCHEME = sm_ec.ECDSA(sm_hashes.SM3())


def verify_der(alg: str, spki_der: bytes, data: bytes, signature: bytes) -> bool:
    """True when `signature` (DER form) is `alg`'s signature of `data` by the key in `spki_der`."""
    if alg in (ES256, SM2) and not well_formed_ecdsa_der(signature):
        return False
    try:
        public = _public_key(alg, spki_der)
        if alg == EDDSA:
            public.verify(signature, data)
        elif alg == ES256:
            public.verify(signature, data, _ES256_SCHEME)
        elif alg == SM2:
            public.verify(signature, data, _SM2_SCHEME)
        else:
            return False
    except (InvalidSignature, SmInvalidSignature, SmInternalError, UnsupportedAlgorithm, ValueError, TypeError, AttributeError):
        return False
    return True


_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_SM2_A = _SM2_P - 3
_SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
_SM2_G = (
    0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
)
_Point = tuple[int, int] | None


def _add(p: _Point, q: _Point) -> _Point:
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % _SM2_P == 0:
        return None
    if p == q:
        slope = (3 * p[0] * p[0] + _SM2_A) * pow(2 * p[1], -1, _SM2_P) % _SM2_P
    else:
        slope = (q[1] - p[1]) * pow(q[0] - p[0], -1, _SM2_P) % _SM2_P
    x = (slope * slope - p[0] - q[0]) % _SM2_P
    return x, (slope * (p[0] - x) - p[1]) % _SM2_P


def _mul(k: int, p: _Point) -> _Point:
    out: _Point = None
    while k:
        if k & 1:
            out = _add(out, p)
        p = _add(p, p)
        k >>= 1
    return out


def sm2_verify_digest(spki_der: bytes, digest_e: bytes, signature: bytes) -> bool:
    """SM2 verification of a given digest e (no Z, no hashing): the form some GM/T 0031 (version 1) producers
    used, signing the data hash directly. Only the legacy reader uses it."""
    try:
        numbers = sm_serialization.load_der_public_key(spki_der).public_numbers()
        r, s = decode_dss_signature(signature)
    except (ValueError, TypeError, AttributeError):
        return False
    if not (0 < r < _SM2_N and 0 < s < _SM2_N):
        return False
    t = (r + s) % _SM2_N
    if t == 0:
        return False
    point = _add(_mul(s, _SM2_G), _mul(t, (numbers.x, numbers.y)))
    if point is None:
        return False
    return (int.from_bytes(digest_e, "big") + point[0]) % _SM2_N == r
