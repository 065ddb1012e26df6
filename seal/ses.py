"""GB/T 38540 seal (SES_Seal) and seal signature (SES_Signature) structures, in the hub's JSON encoding.

The standard defines them in ASN.1. The hub keeps the same members and order of meaning and encodes
them as JSON: binary values are standard base64, times are UTC ISO 8601 ("2026-11-24T07:00:00Z"), and
whatever is signed is the *canonical* JSON of the to-be-signed member (UTF-8, keys sorted, no spaces).
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


def seal_info(
    *,
    vendor_id: str,
    es_id: str,
    type_name: str,
    name: str,
    certificates: list[x509.Certificate],
    created: datetime,
    valid_from: datetime,
    valid_to: datetime,
    picture_type: str,
    picture: bytes,
    width_mm: float,
    height_mm: float,
    extensions: list[dict[str, Any]],
) -> dict[str, Any]:
    """The to-be-signed seal information (SES_SealInfo)."""
    return {
        "header": {"id": HEADER_ID, "version": VERSION, "vid": vendor_id},
        "esID": es_id,
        "property": {
            "type": SEAL_TYPE_ORGANISATION,
            "typeName": type_name,
            "name": name,
            "certListType": CERT_LIST_CERTIFICATES,
            "certList": [b64(der(c)) for c in certificates],
            "createDate": timestamp(created),
            "validStart": timestamp(valid_from),
            "validEnd": timestamp(valid_to),
        },
        "picture": {"type": picture_type, "data": b64(picture), "width": width_mm, "height": height_mm},
        "extDatas": extensions,
    }


def sign_seal(info: dict[str, Any], *, maker_cert: x509.Certificate, maker_sign: Any) -> dict[str, Any]:
    """The seal signed by the seal maker (制章人): SES_Seal."""
    return {
        "eSealInfo": info,
        "signInfo": {
            "cert": b64(der(maker_cert)),
            "signatureAlgorithm": keys.SIGNATURE_OID[keys.ES256],
            "signData": b64(maker_sign(canonical(info))),
        },
    }


def to_sign(
    *, eseal: dict[str, Any], at: datetime, data_hash: bytes, property_info: str, extensions: list[dict[str, Any]]
) -> dict[str, Any]:
    """The to-be-signed part of a seal signature (TBS_Sign)."""
    return {
        "version": VERSION,
        "eseal": eseal,
        "timeInfo": timestamp(at),
        "dataHash": b64(data_hash),
        "propertyInfo": property_info,
        "extDatas": extensions,
    }


def signature(tbs: dict[str, Any], *, cert: x509.Certificate, alg: str, value: bytes) -> dict[str, Any]:
    """A complete seal signature (SES_Signature)."""
    return {
        "toSign": tbs,
        "cert": b64(der(cert)),
        "signatureAlgorithm": keys.SIGNATURE_OID[alg],
        "signature": b64(value),
        "timeStamp": None,
    }


def alg_for_oid(oid: Any) -> str | None:
    """The hub's algorithm name for a signature algorithm OID, or None if unknown."""
    return next((alg for alg, known in keys.SIGNATURE_OID.items() if known == oid), None)
