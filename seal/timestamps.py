"""RFC 3161 time stamps over detached seal signatures (the GB/T 38540 SES_Signature timeStamp member)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from seal import derread
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
_ECDSA = {name: ec.ECDSA(make()) for name, make in _HASHES.items()}  # stateless: one instance per hash serves all
_paths: dict[tuple[bytes, bytes], tuple[float, bool]] = {}  # (TSA certificate DER, trust key) -> (when, ok)
_paths_lock = threading.Lock()


class _Unsupported(Exception):
    """A token the direct check does not handle (another signature scheme, an unusual layout): pyHanko checks it."""


_trust_keys: dict[tuple[int, ...], tuple[tuple[x509.Certificate | None, ...], bytes]] = {}


def _trust_key(roots: list[x509.Certificate], intermediates: list[x509.Certificate]) -> bytes:
    """A digest of the trusted certificates, remembered by their identity: the same certificate objects come back
    on every call (the verification's trust is itself remembered), and hashing them each time costs more than the
    rest of the check. The memo holds the certificates it names, so an identity in it cannot be taken by another
    object; it is bounded (emptied past 64 trust lists)."""
    members = (*roots, None, *intermediates)
    ids = tuple(map(id, members))
    held = _trust_keys.get(ids)
    if held is not None:
        return held[1]
    key = hashlib.sha256(b"".join(c.fingerprint(hashes.SHA256()) for c in members if c is not None)).digest()
    with _paths_lock:
        if len(_trust_keys) >= 64:
            _trust_keys.clear()
        _trust_keys[ids] = (members, key)
    return key


def _tsa_path_ok(cert_der: bytes, roots: list[x509.Certificate], intermediates: list[x509.Certificate]) -> bool:
    """Whether the TSA certificate chains to a trusted root, for time stamping: validated by pyHanko's path
    validator, remembered for TSA_PATH_SECONDS (a TSA signs many tokens with one certificate)."""
    key = (cert_der, _trust_key(roots, intermediates))
    now = time.monotonic()
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


# ---------------------------------------------------------------- the token read by a small DER reader
#
# A hub token has one layout: ContentInfo → SignedData {version, digestAlgorithms, encapContentInfo (TSTInfo),
# certificates, signerInfos {one SignerInfo}}. `_fast_check` walks that layout over the token's bytes (definite
# lengths, minimal length octets, every child ending where its parent ends) and reads only what the check needs;
# anything else raises _Unsupported and `_direct_check` (asn1crypto), then pyHanko, decide as before.


_SIGNED_DATA = derread.oid_contents("1.2.840.113549.1.7.2")
_TST_INFO = derread.oid_contents("1.2.840.113549.1.9.16.1.4")
_CONTENT_TYPE = derread.oid_contents("1.2.840.113549.1.9.3")
_MESSAGE_DIGEST = derread.oid_contents("1.2.840.113549.1.9.4")
_SIGNING_CERTIFICATE_V2 = derread.oid_contents("1.2.840.113549.1.9.16.2.47")
_DIGESTS = {
    derread.oid_contents("2.16.840.1.101.3.4.2.1"): "sha256",
    derread.oid_contents("2.16.840.1.101.3.4.2.2"): "sha384",
    derread.oid_contents("2.16.840.1.101.3.4.2.3"): "sha512",
}
_SCHEMES = {
    **{derread.oid_contents(f"1.2.840.10045.4.3.{n}"): "ecdsa" for n in (2, 3, 4)},
    derread.oid_contents("1.2.840.10045.4"): "ecdsa",
    **{derread.oid_contents(f"1.2.840.113549.1.1.{n}"): "rsassa_pkcs1v15" for n in (1, 11, 12, 13)},
    derread.oid_contents("1.3.101.112"): "ed25519",
}
_GEN_TIME = re.compile(rb"(\d{14})(?:\.(\d{1,6}))?Z")
_TST_TAIL = (0x30, 0x01, 0x02, 0xA0, 0xA1)  # accuracy, ordering, nonce, tsa, extensions: in this order, each optional


@lru_cache(maxsize=256)  # a pure function of the bytes: a TSA signs many tokens with one certificate
def _token_certificate(der: bytes) -> tuple[x509.Certificate, int, bytes]:
    """A certificate carried in a token, with its serial number and its issuer's DER (how a signer names it)."""
    certificate = x509.load_der_x509_certificate(der)
    return certificate, certificate.serial_number, certificate.issuer.public_bytes()


@lru_cache(maxsize=256)  # a pure function of the bytes: a TSA signs many tokens with one certificate
def _signer_key(der: bytes) -> tuple[Any, bool]:
    """The public key of a token's signer certificate, and whether the certificate is for time stamping only."""
    certificate = _token_certificate(der)[0]
    return _public_key(certificate), _for_time_stamping_only(certificate)


@lru_cache(maxsize=256)  # a pure function of the certificate
def _for_time_stamping_only(certificate: x509.Certificate) -> bool:
    try:
        usage = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    except x509.ExtensionNotFound:
        return False
    return usage.critical and list(usage.value) == [ExtendedKeyUsageOID.TIME_STAMPING]


@lru_cache(maxsize=256)  # a pure function of the certificate
def _public_key(certificate: x509.Certificate) -> Any:
    return certificate.public_key()


def _gen_time(raw: bytes) -> datetime:
    match = _GEN_TIME.fullmatch(raw)
    if match is None:
        raise _Unsupported("genTime")
    whole, fraction = match.group(1), match.group(2)
    month, day, hour, minute, second = (int(whole[a : a + 2]) for a in (4, 6, 8, 10, 12))
    year = int(whole[:4])
    return datetime(year, month, day, hour, minute, second, int(fraction.ljust(6, b"0")) if fraction else 0, tzinfo=UTC)


def _fast_check(
    token_der: bytes, signature_value: bytes, *, roots: list[x509.Certificate], intermediates: list[x509.Certificate]
) -> StampCheck:
    """`_direct_check`'s checks, in its order and with its verdicts, over the token's bytes read in place."""
    buf = token_der
    content_type, explicit = derread.inside(buf, derread.whole(buf, 0x30), (0x06, 0xA0))[:2]
    if derread.body(buf, content_type) != _SIGNED_DATA:
        raise _Unsupported("not SignedData")
    signed_data = derread.only(buf, explicit, 0x30)
    parts = derread.inside(buf, signed_data, (0x02, 0x31, 0x30))
    certificates_at = parts[3] if len(parts) > 4 and parts[3].tag == 0xA0 else None
    if [p.tag for p in parts[3:]] not in ([0x31], [0xA0, 0x31]):
        raise _Unsupported("SignedData layout")
    econtent_type, econtent = derread.inside(buf, parts[2], (0x06, 0xA0))[:2]
    if derread.body(buf, econtent_type) != _TST_INFO:
        raise _Unsupported("not TSTInfo")
    tst_item = derread.only(buf, econtent, 0x04)
    tst_der = derread.body(buf, tst_item)
    tst = derread.inside(buf, derread.only(buf, tst_item, 0x30), (0x02, 0x06, 0x30, 0x02, 0x18))
    tail = [t.tag for t in tst[5:]]
    if tail != [tag for tag in _TST_TAIL if tag in tail]:
        raise _Unsupported("TSTInfo layout")
    at = _gen_time(derread.body(buf, tst[4]))
    imprint_alg_id, imprint_value = derread.inside(buf, tst[2], (0x30, 0x04))[:2]
    imprint_alg = _DIGESTS.get(derread.body(buf, derread.inside(buf, imprint_alg_id, (0x06,))[0]))
    if imprint_alg is None:
        raise _Unsupported("imprint algorithm")
    infos = derread.children(buf, parts[-1].body, parts[-1].end)
    if len(infos) != 1 or infos[0].tag != 0x30:
        raise _Unsupported("signer count")
    _version, sid, digest_alg_id, attrs_item, signature_alg_id, value_item = derread.inside(
        buf, infos[0], (0x02, 0x30, 0x30, 0xA0, 0x30, 0x04)
    )[:6]
    issuer, serial_item = derread.inside(buf, sid, (0x30, 0x02))[:2]
    wanted = (int.from_bytes(derread.body(buf, serial_item), "big", signed=True), buf[issuer.start : issuer.end])
    digest_alg = _DIGESTS.get(derread.body(buf, derread.inside(buf, digest_alg_id, (0x06,))[0]))
    scheme = _SCHEMES.get(derread.body(buf, derread.inside(buf, signature_alg_id, (0x06,))[0]))
    if digest_alg is None or scheme is None or attrs_item.end == attrs_item.body:
        raise _Unsupported("algorithm")
    signer = None
    for item in derread.children(buf, certificates_at.body, certificates_at.end) if certificates_at else []:
        if item.tag == 0x30:
            certificate, serial, issuer_der = _token_certificate(buf[item.start : item.end])
            if signer is None and (serial, issuer_der) == wanted:
                signer = certificate, buf[item.start : item.end]
    if signer is None:
        raise _Unsupported("signer certificate not in the token")
    attrs: dict[bytes, list[derread.Tlv]] = {}
    for attr in derread.children(buf, attrs_item.body, attrs_item.end):
        kind, values = derread.inside(buf, attr, (0x06, 0x31))[:2]
        if attr.tag != 0x30 or derread.body(buf, kind) in attrs:
            raise _Unsupported("signed attributes")
        attrs[derread.body(buf, kind)] = derread.children(buf, values.body, values.end)
    content_types, digests = attrs.get(_CONTENT_TYPE), attrs.get(_MESSAGE_DIGEST)
    if (content_types and content_types[0].tag != 0x06) or (digests and digests[0].tag != 0x04):
        raise _Unsupported("signed attribute values")
    ess = attrs.get(_SIGNING_CERTIFICATE_V2)
    if not ess or ess[0].tag != 0x30:
        raise _Unsupported("no ESSCertIDv2")
    first = derread.inside(buf, derread.inside(buf, ess[0], (0x30,))[0], (0x30,))[0]
    ess_parts = derread.children(buf, first.body, first.end)
    if ess_parts and ess_parts[0].tag == 0x04:  # hashAlgorithm DEFAULT sha256 (RFC 5035)
        ess_alg: str | None = "sha256"
        ess_hash = ess_parts[0]
    elif len(ess_parts) >= 2 and ess_parts[0].tag == 0x30 and ess_parts[1].tag == 0x04:
        ess_alg = _DIGESTS.get(derread.body(buf, derread.inside(buf, ess_parts[0], (0x06,))[0]), "other")
        ess_hash = ess_parts[1]
    else:
        raise _Unsupported("ESSCertIDv2")
    certificate, cert_der = signer
    key, time_stamping_only = _signer_key(cert_der)
    if not (
        (isinstance(key, ec.EllipticCurvePublicKey) and scheme == "ecdsa")
        or (isinstance(key, rsa.RSAPublicKey) and scheme == "rsassa_pkcs1v15")
        or (isinstance(key, ed25519.Ed25519PublicKey) and scheme == "ed25519")
    ):
        raise _Unsupported(scheme)
    broken = StampCheck(False, at, "the time stamp does not match this signature or its own signature is broken")
    if hashlib.new(imprint_alg, signature_value).digest() != derread.body(buf, imprint_value):
        return broken
    if not content_types or derread.body(buf, content_types[0]) != _TST_INFO or not digests:
        return broken
    if derread.body(buf, digests[0]) != hashlib.new(digest_alg, tst_der).digest():
        return broken
    if ess_alg not in _HASHES or hashlib.new(ess_alg, cert_der).digest() != derread.body(buf, ess_hash):
        return broken
    to_verify = b"\x31" + buf[attrs_item.start + 1 : attrs_item.end]  # the attributes as a SET, as they were signed
    value = derread.body(buf, value_item)
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(value, to_verify, _ECDSA[digest_alg])
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(value, to_verify, padding.PKCS1v15(), _HASHES[digest_alg]())
        else:
            key.verify(value, to_verify)
    except InvalidSignature:
        return broken
    if not time_stamping_only:
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
    with contextlib.suppress(Exception):  # _Unsupported, or a layout the reader does not walk: asn1crypto reads it
        return _fast_check(token_der, signature_value, roots=roots, intermediates=intermediates)
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
