"""The hub's earlier JSON encoding of GB/T 38540 seals and seal signatures, still read by the verifier (seal
signatures made before the DER form), and small helpers the seal modules share (base64, UTC times, DER of a
certificate). The hub now makes seals and seal signatures in DER: `seal/sesder.py`.

The earlier encoding kept the standard's members and encoded them as JSON: binary values are standard base64,
times are UTC ISO 8601 ("2026-11-24T07:00:00Z"), and whatever is signed is the *canonical* JSON of the to-be-
signed member (UTF-8, keys sorted, no spaces).
Signature values use the JOSE encoding (Ed25519 64 bytes; ES256 and SM2 raw r||s, 64 bytes).

    SES_Seal      = {"eSealInfo": SES_SealInfo, "signInfo": {"cert", "signatureAlgorithm", "signData"}}
    SES_SealInfo  = {"header": {"id": "ES", "version": 4, "vid"}, "esID",
                     "property": {"type", "typeName", "name", "certListType": 1, "certList": [DER b64],
                                  "createDate", "validStart", "validEnd"},
                     "picture": {"type", "data", "width", "height"}, "extDatas": [...]}
    SES_Signature = {"toSign": {"version": 4, "eseal": SES_Seal, "timeInfo", "dataHash", "propertyInfo",
                                "extDatas": [...]},
                     "cert", "signatureAlgorithm", "signature", "timeStamp"}
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from seal import keys

VERSION = 4
HEADER_ID = "ES"
SEAL_TYPE_ORGANISATION = 1  # GB/T 38540 印章类型: 1 单位印章 (every department seal)
CERT_LIST_CERTIFICATES = 1


def canonical(value: Any) -> bytes:
    """The bytes that are signed: UTF-8 JSON with sorted keys and no insignificant whitespace."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise ValueError(f"{what} is not valid base64") from exc


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: Any, what: str) -> datetime:
    if not isinstance(text, str):
        raise ValueError(f"{what} must be a UTC time like 2026-11-24T07:00:00Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"{what} must be a UTC time like 2026-11-24T07:00:00Z") from exc


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def alg_for_oid(oid: Any) -> str | None:
    """The hub's algorithm name for a signature algorithm OID, or None if unknown."""
    return next((alg for alg, known in keys.SIGNATURE_OID.items() if known == oid), None)
