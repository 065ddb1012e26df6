"""W3C Bitstring Status List v1.0: encoding, decoding and the status list credential.

Bit i (counted from the most significant bit of the first byte) is the status of the credential with
`statusListIndex` i; the list is GZIP-compressed and multibase base64url-encoded ("u" prefix). The
minimum length is 131,072 bits (16 KiB), so that an index reveals little about its holder.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterable
from typing import Any

from certhub.sdjwt import Rejected, SignatureCheck, b64u, default_signature_check, parse_jws, unb64u

MIN_BITS = 131_072
PURPOSES = ("revocation", "suspension")
CONTEXTS = ["https://www.w3.org/ns/credentials/v2"]


def encode(indices: Iterable[int], *, length: int | None = None) -> str:
    """The encodedList with the bits of `indices` set."""
    wanted = sorted(set(indices))
    bits = max(MIN_BITS, length or 0)
    if wanted and wanted[-1] >= bits:
        bits = ((wanted[-1] // MIN_BITS) + 1) * MIN_BITS
    raw = bytearray(bits // 8)
    for index in wanted:
        raw[index // 8] |= 0x80 >> (index % 8)
    return "u" + b64u(gzip.compress(bytes(raw), compresslevel=6, mtime=0))


def decode(encoded_list: str) -> bytes:
    """The raw bitstring of an encodedList; ValueError if it is not one."""
    if not encoded_list.startswith("u"):
        raise ValueError("encodedList must be multibase base64url (prefix 'u')")
    try:
        return gzip.decompress(unb64u(encoded_list[1:]))
    except (OSError, EOFError) as exc:
        raise ValueError("encodedList is not GZIP-compressed") from exc


def bit(raw: bytes, index: int) -> bool:
    """Whether bit `index` is set; an index past the end is an error, not "unset"."""
    if index < 0 or index // 8 >= len(raw):
        raise ValueError(f"status index {index} is outside the status list")
    return bool(raw[index // 8] & (0x80 >> (index % 8)))


def credential(*, hub: str, url: str, purpose: str, encoded_list: str, issued_at: int, ttl_seconds: int) -> dict[str, Any]:
    """The BitstringStatusListCredential (VC 2.0 data model, secured as a JWT by the caller)."""
    from datetime import UTC, datetime

    def iso(stamp: int) -> str:
        return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return {
        "@context": CONTEXTS,
        "id": url,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": hub,
        "validFrom": iso(issued_at),
        "validUntil": iso(issued_at + ttl_seconds),
        "credentialSubject": {
            "id": f"{url}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "ttl": ttl_seconds * 1000,
            "encodedList": encoded_list,
        },
        "iss": hub,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
    }


def entries(*, base_url: str, index: int) -> list[dict[str, Any]]:
    """The credentialStatus entries of a certificate (one per purpose, same index)."""
    return [
        {
            "id": f"{base_url}/{purpose}#{index}",
            "type": "BitstringStatusListEntry",
            "statusPurpose": purpose,
            "statusListIndex": str(index),
            "statusListCredential": f"{base_url}/{purpose}",
        }
        for purpose in PURPOSES
    ]


def status_bit(
    token: str,
    entry: dict[str, Any],
    *,
    jwks: dict[str, Any],
    hub: str,
    check: SignatureCheck = default_signature_check,
) -> bool:
    """Whether a status entry's bit is set in a signed status list credential (checked against `jwks`)."""
    parsed = parse_jws(token, what="status list")
    kid = parsed.header.get("kid")
    jwk = next((k for k in jwks.get("keys", []) if k.get("kid") == kid and not k.get("dept_code")), None)
    if jwk is None:
        raise Rejected("status_unavailable", f"the status list of {hub} is signed by a key not in its key set")
    if not check(alg=str(jwk.get("alg")), jwk=jwk, data=parsed.signing_input, signature=parsed.signature):
        raise Rejected("status_unavailable", f"the status list of {hub} has a bad signature")
    subject = parsed.payload.get("credentialSubject", {})
    if parsed.payload.get("issuer") != hub or subject.get("statusPurpose") != entry.get("statusPurpose"):
        raise Rejected("status_unavailable", "the status list is not the one the certificate names")
    exp = parsed.payload.get("exp")
    if isinstance(exp, int) and exp < time.time() - 86400:
        raise Rejected("status_unavailable", "the cached status list is more than a day out of date")
    try:
        raw = decode(str(subject.get("encodedList", "")))
        return bit(raw, int(entry.get("statusListIndex", -1)))
    except ValueError as exc:
        raise Rejected("status_unavailable", f"the status list cannot be read: {exc}") from exc
