"""RFC 3161 time stamps over detached seal signatures (the GB/T 38540 SES_Signature timeStamp member)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import CertificateValidator, ValidationContext

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


# How long a TSA certificate's path to the trusted roots, once validated, is taken as valid by this process.
TSA_PATH_SECONDS = 300.0
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_paths: dict[tuple[bytes, bytes], tuple[float, bool]] = {}
_paths_lock = threading.Lock()


class _Unsupported(Exception):
    """A token the direct check does not handle (another signature scheme, an unusual layout): pyHanko checks it."""


def _tsa_path_ok(cert_der: bytes, roots: list[x509.Certificate], intermediates: list[x509.Certificate]) -> bool:
    """Whether the TSA certificate chains to a trusted root, for time stamping: validated by pyHanko's path
    validator, remembered for TSA_PATH_SECONDS (a TSA signs many tokens with one certificate)."""
    trust = hashlib.sha256(b"".join(c.fingerprint(hashes.SHA256()) for c in [*roots, None, *intermediates] if c)).digest()
    key = (hashlib.sha256(cert_der).digest(), trust)
    now = time.monotonic()
    with _paths_lock:
        known = _paths.get(key)
    if known is not None and now - known[0] < TSA_PATH_SECONDS:
        return known[1]
    context = ValidationContext(
        trust_roots=[pades.asn1_cert(c) for c in roots],
        other_certs=[pades.asn1_cert(c) for c in intermediates],
        allow_fetching=False,
    )
    validator = CertificateValidator(pades.asn1_cert(x509.load_der_x509_certificate(cert_der)), validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage(set(), extended_key_usage={"time_stamping"}))  # type: ignore[no-untyped-call]
        ok = True
    except Exception:  # any path or usage problem: not trusted (the token may still be intact)
        ok = False
    with _paths_lock:
        if len(_paths) > 1024:
            _paths.clear()
        _paths[key] = (now, ok)
    return ok


def _direct_check(
    token_der: bytes, signature_value: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> StampCheck:
    """The token checked without pyHanko's CMS machinery (RFC 3161 §2.4.2, RFC 5652 §5.4): the imprint is the
    signature value's hash, the signed attributes name a TSTInfo whose digest they carry and the TSA certificate
    they commit to (ESSCertIDv2), the TSA's key signed them, its certificate is for time stamping only, and its
    path to a trusted root (validated by pyHanko, remembered per certificate). Raises _Unsupported for tokens
    outside what it handles."""
    content = cms.ContentInfo.load(token_der)
    if content["content_type"].native != "signed_data":
        return StampCheck(False, None, "the time stamp is not a CMS SignedData token")
    signed_data = content["content"]
    infos = signed_data["signer_infos"]
    if len(infos) != 1:
        raise _Unsupported("signer count")
    info = infos[0]
    # The bytes that were signed and hashed, taken before any field below is read: asn1crypto re-encodes a
    # structure once an algorithm identifier inside it has been read, which costs more than the whole check.
    attrs_der = info["signed_attrs"].dump()
    certificates = [
        x509.load_der_x509_certificate(c.chosen.dump()) for c in signed_data["certificates"] or [] if c.name == "certificate"
    ]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].native != "tst_info":
        return StampCheck(False, None, "the time stamp's content is not a TSTInfo")
    tst_der = encap["content"].contents
    tst = encap["content"].parsed
    at = tst["gen_time"].native
    imprint = tst["message_imprint"]
    imprint_alg = imprint["hash_algorithm"]["algorithm"].native
    if imprint_alg not in _HASHES:
        raise _Unsupported(imprint_alg)
    if hashlib.new(imprint_alg, signature_value).digest() != imprint["hashed_message"].native:
        return StampCheck(False, at, "the time stamp does not match this signature or its own signature is broken")
    digest_alg = info["digest_algorithm"]["algorithm"].native
    if digest_alg not in _HASHES or not attrs_der:
        raise _Unsupported(digest_alg)
    attrs = {a["type"].native: a["values"] for a in info["signed_attrs"]}
    sid = info["sid"]
    if sid.name != "issuer_and_serial_number":
        raise _Unsupported("sid")
    serial = sid.chosen["serial_number"].native
    wanted_issuer = sid.chosen["issuer"].dump()
    signer = next((c for c in certificates if c.serial_number == serial and c.issuer.public_bytes() == wanted_issuer), None)
    if signer is None:
        raise _Unsupported("signer certificate not in the token")
    broken = StampCheck(False, at, "the time stamp does not match this signature or its own signature is broken")
    content_types = attrs.get("content_type")
    digests = attrs.get("message_digest")
    if not content_types or content_types[0].native != "tst_info" or not digests:
        return broken
    if digests[0].native != hashlib.new(digest_alg, tst_der).digest():
        return broken
    cert_der = signer.public_bytes(serialization.Encoding.DER)
    ess = attrs.get("signing_certificate_v2")
    if ess is None:
        raise _Unsupported("no ESSCertIDv2")
    first = ess[0]["certs"][0]
    ess_alg = first["hash_algorithm"]["algorithm"].native
    if ess_alg not in _HASHES or hashlib.new(ess_alg, cert_der).digest() != first["cert_hash"].native:
        return broken
    certificate = signer
    to_verify = b"\x31" + attrs_der[1:]  # the attributes as a SET, as they were signed
    value = info["signature"].native
    key = certificate.public_key()
    scheme = info["signature_algorithm"].signature_algo
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and scheme == "ecdsa":
            key.verify(value, to_verify, ec.ECDSA(_HASHES[digest_alg]()))
        elif isinstance(key, rsa.RSAPublicKey) and scheme == "rsassa_pkcs1v15":
            key.verify(value, to_verify, padding.PKCS1v15(), _HASHES[digest_alg]())
        elif isinstance(key, ed25519.Ed25519PublicKey) and scheme == "ed25519":
            key.verify(value, to_verify)
        else:
            raise _Unsupported(scheme)
    except InvalidSignature:
        return broken
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        usage = None
    if usage is None or not usage.critical or list(usage.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
        return StampCheck(False, at, "the time stamp's signer is not a time-stamp authority (extendedKeyUsage)", True)
    if not _tsa_path_ok(cert_der, roots, intermediates):
        return StampCheck(False, at, "the time-stamp authority is not trusted (no valid path to a trusted root)", True)
    return StampCheck(True, at, f"RFC 3161 time stamp at {at:%Y-%m-%dT%H:%M:%SZ} over the signature value")


def check(
    token_der: bytes, signature_value: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> StampCheck:
    """Verify a time-stamp token: its imprint is the signature value's hash, and its TSA chains to a trusted root.

    Tokens of the usual layout (one signer, ECDSA, RSA PKCS#1 v1.5 or Ed25519, ESSCertIDv2) are checked directly
    (`_direct_check`), with the TSA certificate's path validated once per certificate; any other token, and any
    token the direct check cannot read, goes through pyHanko's validation of the whole token."""
    with contextlib.suppress(Exception):  # _Unsupported, or an unusual encoding: the full validation decides
        return _direct_check(token_der, signature_value, roots=roots, intermediates=intermediates)
    return _pyhanko_check(token_der, signature_value, roots=roots, intermediates=intermediates)


def _pyhanko_check(
    token_der: bytes, signature_value: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> StampCheck:
    """The whole token validated by pyHanko (CMS, the TSA certificate's path and usage)."""
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
