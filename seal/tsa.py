"""The hub's own time-stamp authority (RFC 3161), the embedded default beside an external TSA in production.

The TSA key is ECDSA P-256, certified by the hub's P-256 issuing CA (`seal.authority`) with
extendedKeyUsage id-kp-timeStamping (critical, the only purpose, as RFC 3161 §2.3 asks), and kept in
`seal_authority_keys` (role ``tsa``) with its private half wrapped under the master key like the other
authority keys. A new TSA certificate is made when the issuing CA changes or the current one has less than
`RENEW_DAYS` left.

`respond` answers a DER TimeStampReq with a DER TimeStampResp: granted (a SignedData token over a TSTInfo
with the request's imprint and nonce, signing-certificate-v2 naming the TSA certificate, which is embedded
with the issuing CA's when the request asks for them) or rejection with the RFC's failInfo (badAlg, badRequest, badDataFormat,
unacceptedPolicy, unacceptedExtension) and a statusString saying what was wrong. `HubTimeStamper` is a pyHanko
`TimeStamper` that asks the hub's TSA in process; `timestamper` chooses the hub's TSA or the external one
(`GOVHUB_SEAL_TSA_URL`).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import ClassVar

from asn1crypto import cms, core, tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.sign.timestamps import HTTPTimeStamper, TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.config import DEFAULT_PUBLIC_URL, Settings
from ops.crypto import KeyVault, WrappedSecret
from ops.db import utcnow
from ops.timestamping import Stamper, Trust, TrustSource, http_stamper, token_for
from seal import authority, caches, keys, sm2ca
from seal.derwrite import integer, tlv
from seal.models import AuthorityKey

ROLE = "tsa"
TSA_YEARS, RENEW_DAYS = 5, 90
# The hub TSA's policy (TSTInfo.policy): "the hub's clock (UTC, disciplined by the host's NTP), accuracy one
# second, no ordering". The hub has no registered OID arc, so the OID is a UUID-derived one (2.25, ITU-T X.667).
POLICY = "2.25.135530653933421860055506746660853396886"
MAX_REQUEST_BYTES = 16 * 1024
# Imprint algorithms accepted, by OID, with their digest lengths. SHA-1 is refused (RFC 8933 era).
_DIGESTS = {
    "2.16.840.1.101.3.4.2.1": ("sha256", 32),
    "2.16.840.1.101.3.4.2.2": ("sha384", 48),
    "2.16.840.1.101.3.4.2.3": ("sha512", 64),
    "1.2.156.10197.1.401": ("sm3", 32),
}
_SERVICE_NAME = "govhub 时间戳服务"


class TsaRequestError(ValueError):
    """A time-stamp request the TSA refuses; `fail_info` names the RFC 3161 PKIFailureInfo bit."""

    def __init__(self, fail_info: str, message: str) -> None:
        super().__init__(message)
        self.fail_info = fail_info


@dataclass(frozen=True)
class HubTsa:
    """The loaded TSA key with its certificate and the issuing CA certificate above it."""

    key_id: str
    certificate: x509.Certificate
    private: ec.EllipticCurvePrivateKey
    issuer: x509.Certificate

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _purpose(key_id: str) -> str:
    return f"seal-authority-key:{key_id}"


def _certify(issuing: authority.AuthorityMember, private: ec.EllipticCurvePrivateKey, public_url: str) -> x509.Certificate:
    now = utcnow()
    not_after = min(now + timedelta(days=365 * TSA_YEARS), issuing.certificate.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "govhub 电子印章平台"),
                    x509.NameAttribute(NameOID.COMMON_NAME, _SERVICE_NAME),
                ]
            )
        )
        .issuer_name(issuing.certificate.subject)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuing.private.public_key()), critical=False)
        .add_extension(
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([x509.UniformResourceIdentifier(sm2ca.crl_url_p256(public_url))], None, None, None)]
            ),
            critical=False,
        )
        .add_extension(authority.access_extension(*sm2ca.authority_access(public_url, "p256")), critical=False)
        .sign(issuing.private, hashes.SHA256())
    )


@lru_cache(maxsize=64)
def _issued_by(cert_pem: str, issuing_pem: str) -> datetime | None:
    """The certificate's notAfter when the issuing CA signed it, else None (remembered: checked on every stamp)."""
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    issuing = x509.load_pem_x509_certificate(issuing_pem.encode())
    if cert.issuer != issuing.subject:
        return None
    try:
        cert.verify_directly_issued_by(issuing)
    except (InvalidSignature, ValueError, TypeError):
        return None
    return cert.not_valid_after_utc


def _usable(row: AuthorityKey, issuing_pem: str) -> bool:
    not_after = _issued_by(row.certificate_pem, issuing_pem)
    return not_after is not None and not_after > utcnow() + timedelta(days=RENEW_DAYS)


# Loaded TSA keys by key id: each request to the hub's TSA would otherwise unwrap the key again.
_LOADED: dict[str, HubTsa] = {}


def ensure_tsa(db: Session, vault: KeyVault, *, public_url: str = DEFAULT_PUBLIC_URL) -> HubTsa:
    """The hub's TSA key and certificate under the current issuing CA, made (and flushed) on first use; its
    certificate names the P-256 CRL and OCSP responder at `public_url`."""
    return _ensure_tsa(db, vault, public_url=public_url)[0]


def _ensure_tsa(db: Session, vault: KeyVault, *, public_url: str) -> tuple[HubTsa, bool]:
    """(the TSA, whether its key was there already: not made in this transaction)."""
    made = False
    active = authority.active_rows(db)
    if not active:
        authority.ensure_authority(db, vault, public_url=public_url)
        active = authority.active_rows(db)
    issuing_pem = active[authority.ISSUING].certificate_pem
    rows = db.scalars(
        select(AuthorityKey)
        .where(AuthorityKey.role == ROLE, AuthorityKey.retired_at.is_(None))
        .order_by(AuthorityKey.created_at.desc(), AuthorityKey.id.desc())
    ).all()
    row = next((r for r in rows if _usable(r, issuing_pem)), None)
    if row is None:
        issuing = authority.ensure_authority(db, vault, public_url=public_url).issuing
        private = ec.generate_private_key(ec.SECP256R1())
        cert = _certify(issuing, private, public_url)
        key_id = f"tsa-{utcnow():%Y%m%d%H%M%S}-{secrets.token_hex(4)}.{ROLE}"
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        row = AuthorityKey(
            id=key_id,
            role=ROLE,
            alg=keys.ES256,
            certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
            private_key=vault.wrap(pem, purpose=_purpose(key_id)).as_dict(),
        )
        db.add(row)
        db.flush()
        made = True
    loaded = _LOADED.get(row.id)
    if loaded is None:
        private_pem = vault.unwrap(WrappedSecret.from_dict(row.private_key), purpose=_purpose(row.id))
        private_key = serialization.load_pem_private_key(private_pem, password=None)
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
        issuer = x509.load_pem_x509_certificate(issuing_pem.encode())
        loaded = _LOADED[row.id] = HubTsa(key_id=row.id, certificate=cert, private=private_key, issuer=issuer)
    return loaded, not made


def tsa_certificates(db: Session) -> list[x509.Certificate]:
    """Every TSA certificate the hub has used (a token's verifier may want the one that signed it)."""
    rows = db.scalars(select(AuthorityKey).where(AuthorityKey.role == ROLE).order_by(AuthorityKey.created_at))
    return [x509.load_pem_x509_certificate(row.certificate_pem.encode()) for row in rows]


# ---------------------------------------------------------------- answering a request


def _parse(request_der: bytes) -> tsp.TimeStampReq:
    if not request_der:
        raise TsaRequestError("bad_data_format", "the request is empty; send a DER TimeStampReq")
    if len(request_der) > MAX_REQUEST_BYTES:
        raise TsaRequestError("bad_data_format", f"the request is {len(request_der)} bytes; at most {MAX_REQUEST_BYTES}")
    try:
        req = tsp.TimeStampReq.load(request_der, strict=True)
        req.native  # noqa: B018 (parses every field now: a malformed one fails here, not later)
    except Exception as exc:  # untrusted input: whatever asn1crypto raises on it is a malformed request
        raise TsaRequestError("bad_data_format", f"the request is not a DER TimeStampReq: {str(exc)[:160]}") from exc
    if req["version"].native not in ("v1", 1):
        raise TsaRequestError("bad_request", f"TimeStampReq version {req['version'].native} is not 1")
    imprint = req["message_imprint"]
    oid = imprint["hash_algorithm"]["algorithm"].dotted
    if oid not in _DIGESTS:
        name = imprint["hash_algorithm"]["algorithm"].native
        raise TsaRequestError("bad_alg", f"the imprint's hash algorithm {name} is not accepted (SHA-256/384/512, SM3)")
    name, size = _DIGESTS[oid]
    if len(imprint["hashed_message"].native) != size:
        raise TsaRequestError(
            "bad_data_format", f"the imprint is {len(imprint['hashed_message'].native)} bytes; a {name} digest has {size}"
        )
    policy = req["req_policy"]
    if policy.native is not None and policy.dotted != POLICY:
        raise TsaRequestError("unaccepted_policy", f"policy {policy.dotted} is not this TSA's ({POLICY})")
    for extension in req["extensions"] if req["extensions"].native else []:
        if extension["critical"].native:
            raise TsaRequestError("unaccepted_extension", f"critical extension {extension['extn_id'].dotted} is not supported")
    return req


# ---------------------------------------------------------------- the token, assembled from bytes
#
# A token is a CMS SignedData (RFC 5652) over a TSTInfo (RFC 3161 §2.4.2). Building it with asn1crypto costs
# some forty times the P-256 signature, so it is assembled from DER: what every token repeats is encoded once
# (by asn1crypto, below and in :func:`_parts`), what changes (the imprint, serial, time, nonce, digest and
# signature) is encoded here. tests/seal/test_tsa.py checks the bytes are those asn1crypto builds.


_OID = core.ObjectIdentifier
_SIGNED_DATA_OID = _OID("1.2.840.113549.1.7.2").dump()
_TST_INFO_OID = _OID("1.2.840.113549.1.9.16.1.4").dump()
_HEAD = core.Integer(1).dump() + _OID(POLICY).dump()  # TSTInfo: version v1, policy
_ACCURACY = tsp.Accuracy({"seconds": 1}).dump()
_SHA256 = cms.DigestAlgorithm({"algorithm": "sha256"}).dump()
_ECDSA_SHA256 = cms.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}).dump()
_CONTENT_TYPE = cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}).dump()
_SIGNING_TIME_OID = _OID("1.2.840.113549.1.9.5").dump()
_MESSAGE_DIGEST_OID = _OID("1.2.840.113549.1.9.4").dump()
_SIGNED_DATA_HEAD = core.Integer(3).dump() + tlv(0x31, _SHA256)  # version v3, digestAlgorithms
_SIGNER_VERSION = core.Integer(1).dump()
# the MessageImprint of a SHA-256 digest, less the digest's 32 bytes
_SHA256_IMPRINT = tsp.MessageImprint({"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": bytes(32)}).dump()[:-32]


@dataclass(frozen=True)
class _Parts:
    """What every token of one TSA key repeats, encoded once."""

    tsa: bytes  # TSTInfo's tsa [0]: the TSA's GeneralName
    signing_certificate: bytes  # the signed attribute naming the TSA certificate (ESSCertIDv2)
    sid: bytes  # SignerIdentifier
    certificates: bytes  # SignedData's certificates [0]: the TSA's certificate and the issuing CA's


_PARTS: dict[str, _Parts] = {}


def _parts(tsa: HubTsa) -> _Parts:
    parts = _PARTS.get(tsa.key_id)
    if parts is None:
        cert = asn1_x509.Certificate.load(tsa.certificate_der)
        attribute = cms.CMSAttribute(
            {
                "type": "signing_certificate_v2",
                "values": [
                    {
                        "certs": [
                            {
                                "hash_algorithm": {"algorithm": "sha256"},
                                "cert_hash": hashlib.sha256(tsa.certificate_der).digest(),
                                "issuer_serial": {
                                    "issuer": [asn1_x509.GeneralName(name="directory_name", value=cert.issuer)],
                                    "serial_number": cert.serial_number,
                                },
                            }
                        ]
                    }
                ],
            }
        )
        sid = cms.SignerIdentifier(
            name="issuer_and_serial_number", value={"issuer": cert.issuer, "serial_number": cert.serial_number}
        )
        name = asn1_x509.GeneralName(name="directory_name", value=cert.subject).dump()
        parts = _PARTS[tsa.key_id] = _Parts(
            tsa=tlv(0xA0, name),
            signing_certificate=attribute.dump(),
            sid=sid.dump(),
            # a DER SET OF: its members in the order of their encodings (X.690 §11.6), as asn1crypto writes it
            certificates=tlv(0xA0, b"".join(sorted([tsa.certificate_der, tsa.issuer.public_bytes(serialization.Encoding.DER)]))),
        )
    return parts


def token_der(
    tsa: HubTsa, *, imprint: bytes, nonce: int | None, with_certificates: bool, now: datetime, serial: int | None = None
) -> bytes:
    """A time-stamp token (DER ContentInfo) over `imprint` (a DER MessageImprint), at `now` (UTC, whole seconds),
    with `nonce` when given and, if `with_certificates`, the TSA's certificate and the issuing CA's."""
    parts = _parts(tsa)
    if serial is None:
        serial = secrets.randbits(127) | 1 << 126
    tst_der = tlv(
        0x30,
        _HEAD
        + imprint
        + integer(serial)
        + tlv(0x18, now.strftime("%Y%m%d%H%M%SZ").encode())
        + _ACCURACY
        + (integer(nonce) if nonce is not None else b"")
        + parts.tsa,
    )
    attributes = (
        _CONTENT_TYPE
        + tlv(0x30, _SIGNING_TIME_OID + tlv(0x31, tlv(0x17, now.strftime("%y%m%d%H%M%SZ").encode())))
        + tlv(0x30, _MESSAGE_DIGEST_OID + tlv(0x31, tlv(0x04, hashlib.sha256(tst_der).digest())))
        + parts.signing_certificate
    )
    signature = tsa.private.sign(tlv(0x31, attributes), ec.ECDSA(hashes.SHA256()))  # signed as a SET (RFC 5652 §5.4)
    signer_info = tlv(
        0x30,
        _SIGNER_VERSION + parts.sid + _SHA256 + tlv(0xA0, attributes) + _ECDSA_SHA256 + tlv(0x04, signature),
    )
    signed_data = tlv(
        0x30,
        _SIGNED_DATA_HEAD
        + tlv(0x30, _TST_INFO_OID + tlv(0xA0, tlv(0x04, tst_der)))
        + (parts.certificates if with_certificates else b"")
        + tlv(0x31, signer_info),
    )
    return tlv(0x30, _SIGNED_DATA_OID + tlv(0xA0, signed_data))


def _token(tsa: HubTsa, req: tsp.TimeStampReq, now: datetime) -> cms.ContentInfo:
    der = token_der(
        tsa,
        imprint=req["message_imprint"].dump(),
        nonce=req["nonce"].native,
        with_certificates=bool(req["cert_req"].native),
        now=now,
    )
    return cms.ContentInfo.load(der)


class _StatusOnly(core.Sequence):  # type: ignore[misc]
    """A TimeStampResp without a token (asn1crypto's own class does not let the optional token be left out)."""

    _fields: ClassVar[list[tuple[str, type]]] = [("status", tsp.PKIStatusInfo)]


def _rejection(error: TsaRequestError) -> bytes:
    """A DER TimeStampResp with status rejection, the failInfo bit and the reason."""
    only = _StatusOnly(
        {
            "status": {
                "status": "rejection",
                "status_string": [str(error)],
                "fail_info": tsp.PKIFailureInfo({error.fail_info}),
            }
        }
    )
    return bytes(only.dump())


def answer(tsa: HubTsa, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
    """A granted TimeStampResp for a request already checked."""
    now = utcnow().replace(microsecond=0, tzinfo=UTC)
    return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": _token(tsa, req, now)})


def respond(db: Session, vault: KeyVault, request_der: bytes, *, public_url: str = DEFAULT_PUBLIC_URL) -> tuple[bytes, bool]:
    """(DER TimeStampResp, granted) for a DER TimeStampReq; a refused request gets a rejection saying why."""
    try:
        req = _parse(request_der)
    except TsaRequestError as error:
        return _rejection(error), False
    return bytes(answer(ensure_tsa(db, vault, public_url=public_url), req).dump()), True


# ---------------------------------------------------------------- clients


class HubTimeStamper(TimeStamper):
    """A pyHanko `TimeStamper` answered by the hub's own TSA in this process (no HTTP round trip)."""

    def __init__(self, tsa: HubTsa) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        try:
            checked = _parse(req.dump())
        except TsaRequestError as error:
            raise TimestampRequestError(f"the hub's time-stamp authority refused the request: {error}") from error
        return answer(self.tsa, checked)

    def stamp_sha256(self, digest: bytes) -> bytes:
        """A token (DER ContentInfo) over a SHA-256 `digest`, as pyHanko's request would get it (a random nonce,
        the certificates included), made directly: no request to encode and parse, no event loop."""
        if len(digest) != 32:
            raise TimestampRequestError(f"a SHA-256 digest has 32 bytes, not {len(digest)}")
        now = utcnow().replace(microsecond=0, tzinfo=UTC)
        return token_der(
            self.tsa, imprint=_SHA256_IMPRINT + digest, nonce=secrets.randbits(63) | 1 << 62, with_certificates=True, now=now
        )


def hub_timestamper(db: Session, vault: KeyVault, *, public_url: str = DEFAULT_PUBLIC_URL) -> HubTimeStamper:
    """The hub's own TSA as a pyHanko time stamper, in process."""
    return HubTimeStamper(ensure_tsa(db, vault, public_url=public_url))


def timestamper(db: Session, vault: KeyVault, settings: Settings) -> TimeStamper:
    """The time stamper the settings choose: the external TSA at `GOVHUB_SEAL_TSA_URL`, else the hub's own (its key
    and certificate remembered for ``seal_status_cache_seconds``, see ``seal/caches.py``: a TSA certificate is
    renewed 90 days before it ends, and a new chain made in this process is seen at once)."""
    if settings.seal_tsa_url:
        return HTTPTimeStamper(settings.seal_tsa_url, timeout=10)
    url = settings.public_url
    hub_tsa = caches.hub_tsa(db, url, settings.seal_status_cache_seconds, lambda: _ensure_tsa(db, vault, public_url=url))
    return HubTimeStamper(hub_tsa)


def stamper(vault: KeyVault, settings: Settings) -> Stamper:
    """The platform's stamper (`ops.timestamping`): the external TSA at `GOVHUB_SEAL_TSA_URL`, else the hub's own."""
    if settings.seal_tsa_url:
        return http_stamper(settings.seal_tsa_url)

    def stamp(db: Session, digest: bytes) -> bytes:
        return token_for(hub_timestamper(db, vault, public_url=settings.public_url), digest)

    return stamp


def trust_source(settings: Settings) -> TrustSource:
    """What a token's TSA must chain to: the hub's roots (its own TSA is under the P-256 issuing CA) and the
    roots of `GOVHUB_SEAL_TRUSTED_ROOTS_FILE` (where an external TSA's root goes)."""

    def trusted(db: Session) -> Trust:
        roots, intermediates = authority.trusted_certificates(db)
        if settings.seal_trusted_roots_file is not None and settings.seal_trusted_roots_file.exists():
            for cert in x509.load_pem_x509_certificates(settings.seal_trusted_roots_file.read_bytes()):
                (roots if cert.issuer == cert.subject else intermediates).append(cert)
        return roots, intermediates

    return trusted
