"""RFC 3161 time stamps as the platform uses them: the stamper (whatever TSA the deployment chose), the HTTP
client of an external TSA, and the check of a token.

A `Stamper` turns a SHA-256 digest into a DER time-stamp token (a CMS ContentInfo), given the caller's session
(the hub's own TSA reads its key there; an external TSA ignores it); it raises `StampUnavailable` when no token
can be had now (the TSA unreachable, or refusing), and the work that wanted one waits "awaiting time stamp" for
a later try. The composition root chooses the stamper (`GOVHUB_SEAL_TSA_URL`: an external TSA; empty: the hub's
own, which lives with the hub's CA in the seal domain) and the certificates a token's TSA must chain to
(`configure`), so that the platform imports no domain.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

Stamper = Callable[[Session, bytes], bytes]
# (roots, intermediates) a time-stamp authority's certificate must chain to.
Trust = tuple[list[x509.Certificate], list[x509.Certificate]]
TrustSource = Callable[[Session], Trust]


class StampUnavailable(Exception):
    """No time stamp could be had now; the message says why (kept with the work that waits)."""


def token_for(timestamper: object, digest: bytes) -> bytes:
    """A token (DER) from a pyHanko `TimeStamper` over a SHA-256 digest; `StampUnavailable` if it fails."""
    from pyhanko.sign.timestamps import TimeStamper

    assert isinstance(timestamper, TimeStamper)
    try:
        token = asyncio.run(timestamper.async_timestamp(digest, "sha256"))
    except (OSError, ValueError) as exc:  # TimestampRequestError and network errors are OSErrors
        raise StampUnavailable(f"the time-stamp authority did not answer: {str(exc)[:200] or type(exc).__name__}") from exc
    return bytes(token.dump())


def http_stamper(url: str, *, timeout: float = 10.0) -> Stamper:
    """The stamper of an external TSA at `url` (RFC 3161 over HTTP)."""

    def stamp(_db: Session, digest: bytes) -> bytes:
        from pyhanko.sign.timestamps import HTTPTimeStamper

        return token_for(HTTPTimeStamper(url, timeout=int(timeout)), digest)

    return stamp


_stamper: Stamper | None = None
_trust: TrustSource | None = None


def configure(*, stamper: Stamper | None, trust: TrustSource | None) -> None:
    """Name the stamper the platform's work uses and where the certificates a token's TSA must chain to come
    from (the composition root does, from the settings)."""
    global _stamper, _trust
    _stamper, _trust = stamper, trust


def current_stamper() -> Stamper | None:
    """The configured stamper, or None when none was named (the work then waits, awaiting a time stamp)."""
    return _stamper


def trust(db: Session) -> Trust | None:
    """The trusted TSA roots and intermediates, or None when nothing was named."""
    return _trust(db) if _trust is not None else None


@dataclass(frozen=True)
class TokenCheck:
    ok: bool
    at: datetime | None
    message: str


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def check_token(token_der: bytes, data: bytes, *, trusted: Trust | None, moment: datetime | None = None) -> TokenCheck:
    """Verify a time-stamp token over `data`: its imprint is the data's hash, its signature holds, and (with
    `trusted`) its TSA certificate chains to one of the roots, at `moment` (default now: a renewed stamp is checked
    at the time its successor was made). An unreadable token is a failed check."""
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    try:
        content = cms.ContentInfo.load(token_der)
        if content["content_type"].native != "signed_data":
            return TokenCheck(False, None, "the time stamp is not a CMS SignedData token")
        roots, intermediates = trusted if trusted is not None else ([], [])
        context = ValidationContext(
            trust_roots=[_asn1(c) for c in roots],
            other_certs=[_asn1(c) for c in intermediates],
            allow_fetching=False,
            moment=moment,
        )
        status = asyncio.run(
            validate_tst_signed_data(content["content"], context, lambda algorithm: hashlib.new(algorithm, data).digest())
        )
    except Exception as exc:  # untrusted input: a malformed token is a failed check, not a crash
        return TokenCheck(False, None, f"the time stamp cannot be read: {str(exc)[:200] or type(exc).__name__}")
    at = status.get("timestamp")
    if not (status.get("intact") and status.get("valid")):
        return TokenCheck(False, at, "the time stamp is over other data, or its own signature is broken")
    if trusted is not None and status.get("trust_problem_indic") is not None:
        return TokenCheck(False, at, f"the time-stamp authority is not trusted ({status['trust_problem_indic']})")
    where = "" if trusted is not None else " (its authority's chain not checked: no trust named)"
    return TokenCheck(True, at, f"RFC 3161 time stamp at {at:%Y-%m-%dT%H:%M:%SZ}{where}")


def gen_time(token_der: bytes) -> datetime | None:
    """The genTime a token states (read, not verified), or None when the token cannot be read."""
    try:
        info = cms.ContentInfo.load(token_der)["content"]["encap_content_info"]["content"].parsed
        at = info["gen_time"].native
    except Exception:  # untrusted input
        return None
    return at if isinstance(at, datetime) else None


@dataclass(frozen=True)
class TokenFacts:
    """What a token states about itself (read, not verified): its time, the digest algorithm of its imprint and
    its signer certificate's validity."""

    at: datetime | None
    digest_algorithm: str | None
    signer_not_before: datetime | None
    signer_not_after: datetime | None


def token_facts(token_der: bytes) -> TokenFacts:
    """The facts of a token; what cannot be read is None (untrusted input never raises here)."""
    algorithm, not_before, not_after = None, None, None
    try:
        algorithm = str(
            cms.ContentInfo.load(token_der)["content"]["encap_content_info"]["content"]
            .parsed["message_imprint"]["hash_algorithm"]["algorithm"]
            .native
        )
    except Exception:  # untrusted input
        algorithm = None
    signer = _signer(token_der)
    if signer is not None:
        validity = signer["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
    return TokenFacts(gen_time(token_der), algorithm, not_before, not_after)


def _signer(token_der: bytes) -> asn1_x509.Certificate | None:
    try:
        signed = cms.ContentInfo.load(token_der)["content"]
        sid = signed["signer_infos"][0]["sid"]
        certs = [c.chosen for c in signed["certificates"] if isinstance(c.chosen, asn1_x509.Certificate)]
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            return next(c for c in certs if c.issuer == wanted["issuer"] and c.serial_number == wanted["serial_number"].native)
        return next(c for c in certs if c.key_identifier == sid.chosen.native)
    except Exception:  # untrusted input
        return None


def signer_is_time_stamping(token_der: bytes) -> str | None:
    """None when the token's signer certificate (in the token) has the critical extended key usage timeStamping
    alone (RFC 3161 §2.3); else what is wrong."""
    try:
        signed = cms.ContentInfo.load(token_der)["content"]
        sid = signed["signer_infos"][0]["sid"]
        certs = [c.chosen for c in signed["certificates"] if isinstance(c.chosen, asn1_x509.Certificate)]
        if sid.name == "issuer_and_serial_number":
            wanted = sid.chosen
            signer = next(c for c in certs if c.issuer == wanted["issuer"] and c.serial_number == wanted["serial_number"].native)
        else:
            signer = next(c for c in certs if c.key_identifier == sid.chosen.native)
    except (StopIteration, KeyError, IndexError, TypeError, ValueError):
        return "the token does not carry its signer's certificate"
    except Exception as exc:  # untrusted input
        return f"the token cannot be read: {str(exc)[:200] or type(exc).__name__}"
    usage = signer.extended_key_usage_value
    if usage is None or usage.native != ["time_stamping"]:
        return "its signer's certificate is not for time stamping (extended key usage timeStamping)"
    if "extended_key_usage" not in signer.critical_extensions:
        return "its signer's extended key usage timeStamping is not critical (RFC 3161 §2.3)"
    return None
