"""OCSP (RFC 6960) for the hub's two issuing CAs: is a certificate they issued good, revoked or unknown?

`POST /seal/ocsp/{chain}` (application/ocsp-request) and `GET /seal/ocsp/{chain}/{base64 request}` answer for
the SM2 issuing CA (`chain="sm2"`, responses signed SM2-with-SM3 by that CA) or the P-256 one (`"p256"`,
ECDSA with SHA-256). The issuing CA signs its answers itself (RFC 6960 §4.2.2.2: the CA that issued the
certificate), with its certificate in the response; the responder is named by its key hash.

For each CertID the responder finds the issuing CA (of any generation of the chain) by its name and key
hashes (SHA-1, SHA-256/384/512 or SM3), then the serial among the certificates that CA issued (seals, the
seal maker, the time-stamp authority). A revoked seal's certificate is revoked with its revocation time and
reason cessationOfOperation; a suspended seal's is revoked with reason certificateHold (as the CRLs say). A
serial the CA never issued is unknown. A CertID of a CA this chain does not have (the other chain's, or
another hub's) gets `unauthorized`; a request that cannot be read gets `malformedRequest`. The request's nonce
is echoed; thisUpdate is now and nextUpdate an hour later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import core, ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from sqlalchemy.orm import Session

from ops.crypto import KeyVault
from ops.db import utcnow
from seal import authority, keys, sm2ca
from seal.models import AuthorityKey, Seal, SealStatus

CHAINS = ("sm2", "p256")
MAX_REQUEST_BYTES = 64 * 1024
MAX_CERT_IDS = 100
VALIDITY = timedelta(hours=1)
_HASHES = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
    "1.2.156.10197.1.401": "sm3",
}
_ISSUING_ROLE = {"sm2": sm2ca.ISSUING, "p256": authority.ISSUING}


def issuing_certificate_der(db: Session, vault: KeyVault, *, chain: str, public_url: str) -> bytes:
    """The current issuing CA certificate of the chain, DER."""
    if chain == "sm2":
        return sm2ca.ensure(db, vault, public_url=public_url).issuing.certificate_der
    return authority.ensure_authority(db, vault, public_url=public_url).issuing.certificate_der


class Malformed(ValueError):
    """A request that is not an OCSP request this responder can read."""


@dataclass(frozen=True)
class Answer:
    """A DER OCSPResponse, its response status and, per CertID, the certificate status given."""

    der: bytes
    status: str
    cert_statuses: tuple[str, ...] = ()


def _hash(name: str, data: bytes) -> bytes:
    if name == "sm3":
        return keys.digest(keys.SM2, data)
    return hashlib.new(name, data).digest()


def _aware(moment: datetime) -> datetime:
    return moment.replace(microsecond=0, tzinfo=UTC)


def parse_request(request_der: bytes) -> ocsp.OCSPRequest:
    """The OCSP request, every field read; `Malformed` says what is wrong."""
    if not request_der:
        raise Malformed("the request is empty")
    if len(request_der) > MAX_REQUEST_BYTES:
        raise Malformed(f"the request is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        req = ocsp.OCSPRequest.load(request_der, strict=True)
        req.native  # noqa: B018 (parses every field now: a malformed one fails here, not later)
    except Exception as exc:  # untrusted input: whatever asn1crypto raises on it is a malformed request
        raise Malformed(f"not a DER OCSPRequest: {str(exc)[:160]}") from exc
    items = req["tbs_request"]["request_list"]
    if len(items) == 0:
        raise Malformed("the request names no certificate")
    if len(items) > MAX_CERT_IDS:
        raise Malformed(f"the request names {len(items)} certificates; at most {MAX_CERT_IDS}")
    for item in items:
        if item["req_cert"]["hash_algorithm"]["algorithm"].dotted not in _HASHES:
            raise Malformed(f"CertID hash algorithm {item['req_cert']['hash_algorithm']['algorithm'].native} is not supported")
    return req


def decode_get(encoded: str) -> bytes:
    """The DER request of `GET .../{base64}` (RFC 6960 A.1: base64 of the DER, URL-encoded)."""
    try:
        return base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Malformed("the GET request's path is not base64 of a DER OCSPRequest") from exc


@dataclass(frozen=True)
class _Issuer:
    row: AuthorityKey
    cert: asn1_x509.Certificate

    def matches(self, cert_id: ocsp.CertId) -> bool:
        name = _HASHES[cert_id["hash_algorithm"]["algorithm"].dotted]
        key_bits = self.cert.public_key["public_key"].contents[1:]
        return bool(
            cert_id["issuer_name_hash"].native == _hash(name, self.cert.subject.dump())
            and cert_id["issuer_key_hash"].native == _hash(name, key_bits)
        )


def _issuers(db: Session, chain: str) -> list[_Issuer]:
    rows = db.scalars(
        select(AuthorityKey).where(AuthorityKey.role == _ISSUING_ROLE[chain]).order_by(AuthorityKey.created_at.desc())
    ).all()
    return [_Issuer(row, asn1_x509.Certificate.load(_der(row.certificate_pem))) for row in rows]


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def _status(db: Session, issuer: _Issuer, serial: int) -> tuple[str, datetime | None, str | None]:
    """(good | revoked | unknown, revocation time, reason) of `serial` as issued by `issuer`."""
    issuer_name = x509.load_pem_x509_certificate(issuer.row.certificate_pem.encode()).subject
    seal = db.scalars(select(Seal).where(Seal.certificate_serial == format(serial, "x"))).first()
    if seal is not None and x509.load_pem_x509_certificate(seal.certificate_pem.encode()).issuer == issuer_name:
        if seal.status == SealStatus.REVOKED.value:
            return "revoked", seal.revoked_at or seal.updated_at, "cessation_of_operation"
        if seal.status == SealStatus.SUSPENDED.value:
            return "revoked", seal.updated_at, "certificate_hold"
        return "good", None, None
    for row in db.scalars(select(AuthorityKey).where(AuthorityKey.role.not_in(("root", sm2ca.ROOT)))):
        cert = x509.load_pem_x509_certificate(row.certificate_pem.encode())
        if cert.serial_number == serial and cert.issuer == issuer_name and row.id != issuer.row.id:
            return "good", None, None
    return "unknown", None, None


def _single(cert_id: ocsp.CertId, status: tuple[str, datetime | None, str | None], now: datetime) -> dict[str, Any]:
    state, since, reason = status
    if state == "revoked":
        assert since is not None
        cert_status = ocsp.CertStatus(name="revoked", value={"revocation_time": _aware(since), "revocation_reason": reason})
    else:
        cert_status = ocsp.CertStatus(name=state, value=core.Null())
    return {"cert_id": cert_id, "cert_status": cert_status, "this_update": now, "next_update": now + VALIDITY}


def _status_only(status: str) -> Answer:
    return Answer(bytes(ocsp.OCSPResponse({"response_status": status}).dump()), status)


def respond(db: Session, vault: KeyVault, *, chain: str, request_der: bytes, public_url: str) -> Answer:
    """The OCSP response of the `chain` issuing CA to a DER request."""
    try:
        req = parse_request(request_der)
    except Malformed:
        return _status_only("malformed_request")
    if chain == "sm2":
        sm2ca.ensure(db, vault, public_url=public_url)
    else:
        authority.ensure_authority(db, vault, public_url=public_url)
    issuers = _issuers(db, chain)
    items = list(req["tbs_request"]["request_list"])
    found: list[_Issuer] = []
    for item in items:
        issuer = next((i for i in issuers if i.matches(item["req_cert"])), None)
        if issuer is None:
            return _status_only("unauthorized")  # not a CA this responder answers for
        found.append(issuer)
    if len({i.row.id for i in found}) > 1:
        return _status_only("unauthorized")  # one response is signed by one CA: ask each generation apart
    signer = found[0]
    now = _aware(utcnow())
    statuses = [_status(db, signer, item["req_cert"]["serial_number"].native) for item in items]
    data: dict[str, Any] = {
        "responder_id": ocsp.ResponderId(name="by_key", value=signer.cert.public_key.sha1),
        "produced_at": now,
        "responses": [_single(item["req_cert"], s, now) for item, s in zip(items, statuses, strict=True)],
    }
    nonce = req.nonce_value
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce.native}]
    tbs = ocsp.ResponseData(data)
    tbs_der = tbs.dump()
    if chain == "sm2":
        member = sm2ca.load_member(vault, signer.row)
        signature, algorithm = member.sign(tbs_der), sm2ca.SM2_SM3
    else:
        private = authority.load_member(vault, signer.row).private
        assert isinstance(private, ec.EllipticCurvePrivateKey)
        signature, algorithm = private.sign(tbs_der, ec.ECDSA(hashes.SHA256())), "sha256_ecdsa"
    basic = ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": ocsp.ResponseData.load(tbs_der),
            "signature_algorithm": {"algorithm": algorithm},
            "signature": signature,
            "certs": [signer.cert],
        }
    )
    response = ocsp.OCSPResponse(
        {
            "response_status": "successful",
            "response_bytes": {"response_type": "basic_ocsp_response", "response": basic},
        }
    )
    return Answer(bytes(response.dump()), "successful", tuple(s[0] for s in statuses))
