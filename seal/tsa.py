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
from seal import authority, keys, sm2ca
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
    loaded = _LOADED.get(row.id)
    if loaded is None:
        private_pem = vault.unwrap(WrappedSecret.from_dict(row.private_key), purpose=_purpose(row.id))
        private_key = serialization.load_pem_private_key(private_pem, password=None)
        assert isinstance(private_key, ec.EllipticCurvePrivateKey)
        cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
        issuer = x509.load_pem_x509_certificate(issuing_pem.encode())
        loaded = _LOADED[row.id] = HubTsa(key_id=row.id, certificate=cert, private=private_key, issuer=issuer)
    return loaded


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


@dataclass(frozen=True)
class _Parts:
    """What every token of one TSA key repeats, encoded once (building them anew each time costs more than
    the signature)."""

    name: bytes  # GeneralName of the TSA
    signing_certificate: bytes  # the signed attribute naming the TSA certificate (ESSCertIDv2)
    sid: bytes  # SignerIdentifier
    certificates: tuple[bytes, bytes]  # the TSA's certificate and the issuing CA's


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
        parts = _PARTS[tsa.key_id] = _Parts(
            name=asn1_x509.GeneralName(name="directory_name", value=cert.subject).dump(),
            signing_certificate=attribute.dump(),
            sid=sid.dump(),
            certificates=(tsa.certificate_der, tsa.issuer.public_bytes(serialization.Encoding.DER)),
        )
    return parts


def _token(tsa: HubTsa, req: tsp.TimeStampReq, now: datetime) -> cms.ContentInfo:
    parts = _parts(tsa)
    info: dict[str, object] = {
        "version": "v1",
        "policy": POLICY,
        "message_imprint": tsp.MessageImprint.load(req["message_imprint"].dump()),
        "serial_number": secrets.randbits(127) | 1 << 126,
        "gen_time": core.GeneralizedTime(now),
        "accuracy": {"seconds": 1},
        "tsa": asn1_x509.GeneralName.load(parts.name),
    }
    if req["nonce"].native is not None:
        info["nonce"] = req["nonce"].native
    tst_der = tsp.TSTInfo(info).dump()
    signed_attrs = cms.CMSAttributes(
        [
            {"type": "content_type", "values": ["tst_info"]},
            {"type": "signing_time", "values": [cms.Time(name="utc_time", value=now)]},
            {"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]},
            cms.CMSAttribute.load(parts.signing_certificate),
        ]
    )
    signature = tsa.private.sign(signed_attrs.dump(), ec.ECDSA(hashes.SHA256()))
    signed_data: dict[str, object] = {
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "tst_info", "content": cms.ParsableOctetString(tst_der)},
        "signer_infos": [
            {
                "version": "v1",
                "sid": cms.SignerIdentifier.load(parts.sid),
                "digest_algorithm": {"algorithm": "sha256"},
                "signed_attrs": signed_attrs,
                "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                "signature": signature,
            }
        ],
    }
    if req["cert_req"].native:
        # the TSA certificate and the issuing CA above it: a verifier who trusts the hub's root needs no more
        signed_data["certificates"] = [asn1_x509.Certificate.load(der) for der in parts.certificates]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


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


def hub_timestamper(db: Session, vault: KeyVault, *, public_url: str = DEFAULT_PUBLIC_URL) -> HubTimeStamper:
    """The hub's own TSA as a pyHanko time stamper, in process."""
    return HubTimeStamper(ensure_tsa(db, vault, public_url=public_url))


def timestamper(db: Session, vault: KeyVault, settings: Settings) -> TimeStamper:
    """The time stamper the settings choose: the external TSA at `GOVHUB_SEAL_TSA_URL`, else the hub's own."""
    if settings.seal_tsa_url:
        return HTTPTimeStamper(settings.seal_tsa_url, timeout=10)
    return hub_timestamper(db, vault, public_url=settings.public_url)


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
