"""RFC 3161 time stamps over detached seal signatures (the GB/T 38540 SES_Signature timeStamp member)."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from cryptography import x509
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import ValidationContext

from seal import pdf as pades


def stamp(signature_value: bytes, timestamper: TimeStamper) -> bytes:
    """A time-stamp token (DER ContentInfo) over the SHA-256 of a signature value."""
    digest = hashlib.sha256(signature_value).digest()
    token = asyncio.run(timestamper.async_timestamp(digest, "sha256"))
    return bytes(token.dump())


@dataclass(frozen=True)
class StampCheck:
    ok: bool
    at: datetime | None
    message: str
    untrusted: bool = False  # intact and well signed, but its TSA does not chain to a trusted root


def check(
    token_der: bytes, signature_value: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> StampCheck:
    """Verify a time-stamp token: its imprint is the signature value's hash, and its TSA chains to a trusted root."""
    try:
        content = cms.ContentInfo.load(token_der)
        signed_data = content["content"]
        if content["content_type"].native != "signed_data":
            return StampCheck(False, None, "the time stamp is not a CMS SignedData token")
        context = ValidationContext(
            trust_roots=[pades.asn1_cert(c) for c in roots],
            other_certs=[pades.asn1_cert(c) for c in intermediates],
            allow_fetching=False,
        )
        status = asyncio.run(
            validate_tst_signed_data(signed_data, context, lambda algorithm: hashlib.new(algorithm, signature_value).digest())
        )
    except Exception as exc:  # untrusted input: a malformed token is a failed check, not a crash
        return StampCheck(False, None, f"the time stamp cannot be read: {str(exc)[:200] or type(exc).__name__}")
    at = status.get("timestamp")
    if not (status.get("intact") and status.get("valid")):
        return StampCheck(False, at, "the time stamp does not match this signature or its own signature is broken")
    if status.get("trust_problem_indic") is not None:
        return StampCheck(False, at, f"the time-stamp authority is not trusted ({status['trust_problem_indic']})", True)
    return StampCheck(True, at, f"RFC 3161 time stamp at {at:%Y-%m-%dT%H:%M:%SZ} over the signature value")
