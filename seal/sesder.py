"""GB/T 38540-2020 seal (SESeal) and seal signature (SES_Signature) in DER, and the older version-1 layout
(GM/T 0031-2014) read for verification.

The classes below are written from the standard's ASN.1 module (EXPLICIT TAGS) with `asn1crypto`:

    SESeal        ::= SEQUENCE { eSealInfo SES_SealInfo, cert OCTET STRING, signAlgID OID, signedValue BIT STRING }
    SES_SealInfo  ::= SEQUENCE { header SES_Header, esID IA5String, property SES_ESPropertyInfo,
                                 picture SES_ESPictrueInfo, extDatas ExtensionDatas OPTIONAL }
    SES_Signature ::= SEQUENCE { toSign TBS_Sign, cert OCTET STRING, signatureAlgID OID, signature BIT STRING,
                                 timeStamp [0] BIT STRING OPTIONAL }
    TBS_Sign      ::= SEQUENCE { version INTEGER, eseal SESeal, timeInfo GeneralizedTime, dataHash BIT STRING,
                                 propertyInfo IA5String, extDatas ExtensionDatas OPTIONAL }

Version 1 (GM/T 0031): the seal is { esealInfo, signInfo { cert, signatureAlgorithm, signData } }, the property's
certList has no certListType and its dates may be UTCTime, and the signature is { toSign { version, eseal,
timeInfo BIT STRING, dataHash, propertyInfo, cert, signatureAlgorithm }, signature }.

What is signed: the seal maker signs the DER of SES_SealInfo; the signer signs the DER of TBS_Sign (both as
they appear in the bytes, so a foreign producer's encoding is verified as it was signed). SM2 signature values
are the DER SEQUENCE { r, s } (GM/T 0009) inside the BIT STRING.
"""

# ruff: noqa: RUF012 (asn1crypto describes a structure with class attributes: _fields, _child_spec)

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypedDict

from asn1crypto import core, parser
from asn1crypto import x509 as asn1_x509

from seal import derread
from seal.derwrite import tlv

VERSION = 4
HEADER_ID = "ES"
CERT_LIST_CERTIFICATES, CERT_LIST_DIGESTS = 1, 2
SM2_SM3 = "1.2.156.10197.1.501"
MAX_DER_BYTES = 4 * 1024 * 1024

# The hub's own extension ids (ExtData.extnID) under a UUID arc (ITU-T X.667, no registration needed).
HUB_ARC = "2.25.20314467151613817185454540426410802989"
EXT_DEPARTMENT_CODE = f"{HUB_ARC}.1"  # 统一社会信用代码 of the seal's department (UTF-8)
EXT_DEPARTMENT_NAME = f"{HUB_ARC}.2"  # the department's name (UTF-8)
EXT_SEAL_TYPE = f"{HUB_ARC}.3"  # the seal's kind: 公章, 合同专用章... (UTF-8)
EXT_PURPOSE = f"{HUB_ARC}.4"  # 用印事由 of a seal signature (UTF-8)
EXTENSION_NAMES = {
    EXT_DEPARTMENT_CODE: "department_code",
    EXT_DEPARTMENT_NAME: "department_name",
    EXT_SEAL_TYPE: "seal_type",
    EXT_PURPOSE: "purpose",
}


class DerError(ValueError):
    """The bytes are not a GB/T 38540 structure (malformed, truncated, or another layout)."""


# ---------------------------------------------------------------- version 4 (GB/T 38540-2020)


class ExtData(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("extnID", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extnValue", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):  # type: ignore[misc]
    _child_spec = ExtData


class Header(core.Sequence):  # type: ignore[misc]
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class CertList(core.SequenceOf):  # type: ignore[misc]
    """certListType 1: SEQUENCE OF OCTET STRING (certificates); 2: SEQUENCE OF CertDigestObj. Read as Any."""

    _child_spec = core.Any


class CertDigestObj(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.PrintableString), ("value", core.OctetString)]


class PropertyInfo(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("certListType", core.Integer),
        ("certList", CertList),
        ("createDate", core.GeneralizedTime),
        ("validStart", core.GeneralizedTime),
        ("validEnd", core.GeneralizedTime),
    ]


class PictureInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("type", core.IA5String), ("data", core.OctetString), ("width", core.Integer), ("height", core.Integer)]


class SealInfo(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("header", Header),
        ("esID", core.IA5String),
        ("property", PropertyInfo),
        ("picture", PictureInfo),
        ("extDatas", ExtensionDatas, {"optional": True}),
    ]


class SESeal(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("eSealInfo", SealInfo),
        ("cert", core.OctetString),
        ("signAlgID", core.ObjectIdentifier),
        ("signedValue", core.OctetBitString),
    ]


class TBSSign(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("version", core.Integer),
        ("eseal", SESeal),
        ("timeInfo", core.GeneralizedTime),
        ("dataHash", core.OctetBitString),
        ("propertyInfo", core.IA5String),
        ("extDatas", ExtensionDatas, {"optional": True}),
    ]


class SESSignature(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("toSign", TBSSign),
        ("cert", core.OctetString),
        ("signatureAlgID", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("timeStamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


# ---------------------------------------------------------------- version 1 (GM/T 0031-2014)


class V1PropertyInfo(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("certList", CertList),
        ("createDate", asn1_x509.Time),
        ("validStart", asn1_x509.Time),
        ("validEnd", asn1_x509.Time),
    ]


class V1SealInfo(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("header", Header),
        ("esID", core.IA5String),
        ("property", V1PropertyInfo),
        ("picture", PictureInfo),
        ("extDatas", ExtensionDatas, {"optional": True}),
    ]


class V1SignInfo(core.Sequence):  # type: ignore[misc]
    _fields = [("cert", core.OctetString), ("signatureAlgorithm", core.ObjectIdentifier), ("signData", core.OctetBitString)]


class V1SESeal(core.Sequence):  # type: ignore[misc]
    _fields = [("esealInfo", V1SealInfo), ("signInfo", V1SignInfo)]


class V1TBSSign(core.Sequence):  # type: ignore[misc]
    _fields = [
        ("version", core.Integer),
        ("eseal", V1SESeal),
        ("timeInfo", core.OctetBitString),
        ("dataHash", core.OctetBitString),
        ("propertyInfo", core.IA5String),
        ("cert", core.OctetString),
        ("signatureAlgorithm", core.ObjectIdentifier),
    ]


class V1Signature(core.Sequence):  # type: ignore[misc]
    _fields = [("toSign", V1TBSSign), ("signature", core.OctetBitString)]


# ---------------------------------------------------------------- what a reader gets


@dataclass(frozen=True)
class Extension:
    oid: str
    critical: bool
    value: bytes


@dataclass(frozen=True)
class ParsedSeal:
    """An electronic seal as read from DER (either version)."""

    version: int
    vendor_id: str
    es_id: str
    type: int
    name: str
    cert_list_type: int
    certificates: list[bytes]  # DER certificates (certListType 1) or digests (2)
    created: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture: bytes
    width: int
    height: int
    extensions: list[Extension]
    maker_cert: bytes
    maker_alg: str
    maker_signed: bytes  # the bytes the seal maker signed (DER of SES_SealInfo as encoded)
    maker_signature: bytes  # DER SEQUENCE { r, s } for SM2
    der: bytes


@dataclass(frozen=True)
class ParsedSignature:
    """A seal signature as read from DER (either version)."""

    version: int
    seal: ParsedSeal
    time_info: datetime | None
    time_text: str
    data_hash: bytes
    property_info: str
    extensions: list[Extension]
    signer_cert: bytes
    alg: str
    signed: bytes  # the bytes the signer signed (DER of TBS_Sign as encoded)
    signature: bytes
    timestamp: bytes | None
    der: bytes = field(repr=False)


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _extensions(value: Any) -> list[Extension]:
    if not isinstance(value, ExtensionDatas):
        return []
    return list(_extensions_of(value.dump()))


@lru_cache(maxsize=1024)  # a pure function of the bytes: a seal's signatures often carry the same extensions
def _extensions_of(der: bytes) -> tuple[Extension, ...]:
    value = ExtensionDatas.load(der)
    return tuple(Extension(e["extnID"].dotted, bool(e["critical"].native), bytes(e["extnValue"].native)) for e in value)


def _cert_list(certs: CertList, list_type: int) -> list[bytes]:
    out: list[bytes] = []
    for item in certs:
        if list_type == CERT_LIST_DIGESTS:
            out.append(bytes(item.parse(CertDigestObj)["value"].native))
        else:
            parsed = item.parse(core.OctetString)
            out.append(bytes(parsed.native))
    return out


def _seal_v4(seal: SESeal) -> ParsedSeal:
    return _seal_v4_of(seal.dump())


@lru_cache(maxsize=512)  # every signature of a seal carries the same seal: read it once
def _seal_v4_of(der: bytes) -> ParsedSeal:
    seal = SESeal.load(der)
    info = seal["eSealInfo"]
    list_type = int(info["property"]["certListType"].native)
    return ParsedSeal(
        **_seal_info_fields(info),
        cert_list_type=list_type,
        certificates=_cert_list(info["property"]["certList"], list_type),
        maker_cert=bytes(seal["cert"].native),
        maker_alg=seal["signAlgID"].dotted,
        maker_signature=bytes(seal["signedValue"].native),
        der=seal.dump(),
    )


def _seal_v1(seal: V1SESeal) -> ParsedSeal:
    info = seal["esealInfo"]
    sign_info = seal["signInfo"]
    return ParsedSeal(
        **_seal_info_fields(info),
        cert_list_type=CERT_LIST_CERTIFICATES,
        certificates=[_v1_cert(item) for item in info["property"]["certList"]],
        maker_cert=bytes(sign_info["cert"].native),
        maker_alg=sign_info["signatureAlgorithm"].dotted,
        maker_signature=bytes(sign_info["signData"].native),
        der=seal.dump(),
    )


class _SealInfoFields(TypedDict):
    version: int
    vendor_id: str
    es_id: str
    type: int
    name: str
    created: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture: bytes
    width: int
    height: int
    extensions: list[Extension]
    maker_signed: bytes


def _seal_info_fields(info: core.Sequence) -> _SealInfoFields:
    """The fields both seal layouts keep alike in their seal information (header, property, picture, extensions)."""
    prop = info["property"]
    header = info["header"]
    picture = info["picture"]
    return _SealInfoFields(
        version=int(header["version"].native),
        vendor_id=str(header["vid"].native),
        es_id=str(info["esID"].native),
        type=int(prop["type"].native),
        name=str(prop["name"].native),
        created=_utc(prop["createDate"].native),
        valid_start=_utc(prop["validStart"].native),
        valid_end=_utc(prop["validEnd"].native),
        picture_type=str(picture["type"].native),
        picture=bytes(picture["data"].native),
        width=int(picture["width"].native),
        height=int(picture["height"].native),
        extensions=_extensions(info["extDatas"]),
        maker_signed=info.dump(),
    )


def _v1_cert(item: core.Any) -> bytes:
    # GM/T 0031 lists certificates as OCTET STRINGs; some producers put other strings (kept as their bytes).
    tag = item.parse().tag
    if tag == 4:
        return bytes(item.parse(core.OctetString).native)
    return bytes(item.parse().contents or b"")


def _v1_time(raw: bytes) -> tuple[datetime | None, str]:
    text = raw.decode("ascii", errors="replace").strip("\x00 ")
    patterns = ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ", "%Y%m%d%H%M%SZ", "%y%m%d%H%M%SZ", "%Y-%m-%d %H:%M:%S")
    for pattern in patterns:
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC), text
        except ValueError:
            continue
    return None, text


def _check_size(data: bytes) -> None:
    if not data:
        raise DerError("the seal signature is empty")
    if len(data) > MAX_DER_BYTES:
        raise DerError(f"the seal signature is {len(data)} bytes; at most {MAX_DER_BYTES} are read")
    if data[0] != 0x30:
        raise DerError(f"the data does not start with a DER SEQUENCE (first byte 0x{data[0]:02x})")


_SEQUENCE, _INTEGER = (0, 1, 16), (0, 0, 2)  # (class, constructed, tag) of a universal SEQUENCE and INTEGER


def _version_of(data: bytes) -> int:
    """The version at the head of TBS_Sign, read from the headers alone (the structure is parsed once, after)."""
    try:
        cls, method, tag, _, content, _ = parser.parse(data, strict=True)
        tbs = parser.parse(content) if (cls, method, tag) == _SEQUENCE and content else None
        first = parser.parse(tbs[4]) if tbs is not None and tbs[:3] == _SEQUENCE and tbs[4] else None
        if first is None or first[:3] != _INTEGER or not first[4]:
            raise DerError("the data is not a seal signature (no TBS_Sign with a version first)")
        return int.from_bytes(first[4], "big", signed=True)
    except DerError:
        raise
    except Exception as exc:  # asn1crypto raises ValueError, TypeError, IndexError... on bad bytes
        raise DerError(f"not DER: {exc}") from exc


_GENERALIZED_TIME_UTC = re.compile(rb"(\d{14})Z")


def _read_v4(data: bytes) -> ParsedSignature:
    """A version-4 signature read in place by the small DER reader (the layout this hub and most producers write);
    raises derread.Unreadable for anything else, which asn1crypto then reads."""
    signature = derread.whole(data, 0x30)
    parts = derread.inside(data, signature, (0x30, 0x04, 0x06, 0x03))
    if len(parts) > 5 or (len(parts) == 5 and parts[4].tag != 0xA0):
        raise derread.Unreadable("SES_Signature layout")
    tbs = parts[0]
    fields = derread.inside(data, tbs, (0x02, 0x30, 0x18, 0x03, 0x16))
    if len(fields) > 6 or (len(fields) == 6 and fields[5].tag != 0x30):
        raise derread.Unreadable("TBS_Sign layout")
    time_raw = _GENERALIZED_TIME_UTC.fullmatch(derread.body(data, fields[2]))
    if time_raw is None:
        raise derread.Unreadable("timeInfo")
    digits = time_raw.group(1)
    month, day, hour, minute, second = (int(digits[a : a + 2]) for a in (4, 6, 8, 10, 12))
    time_info = datetime(int(digits[:4]), month, day, hour, minute, second, tzinfo=UTC)
    stamp = derread.bits(data, derread.only(data, parts[4], 0x03)) if len(parts) == 5 else None
    return ParsedSignature(
        version=int.from_bytes(derread.body(data, fields[0]), "big", signed=True),
        seal=_seal_v4_of(data[fields[1].start : fields[1].end]),
        time_info=time_info,
        time_text=str(time_info),
        data_hash=derread.bits(data, fields[3]),
        property_info=derread.body(data, fields[4]).decode("ascii"),
        extensions=list(_extensions_of(data[fields[5].start : fields[5].end])) if len(fields) == 6 else [],
        signer_cert=derread.body(data, parts[1]),
        alg=derread.dotted(derread.body(data, parts[2])),
        signed=data[tbs.start : tbs.end],
        signature=derread.bits(data, parts[3]),
        timestamp=stamp,
        der=data,
    )


def parse_signature(data: bytes) -> ParsedSignature:
    """Read a DER SES_Signature (version 4, or the version-1 layout); DerError says what is wrong."""
    _check_size(data)
    with contextlib.suppress(Exception):  # not the usual layout, or not DER: read the version, then asn1crypto
        parsed = _read_v4(data)
        if parsed.version >= 4:  # the version as _version_of reads it: TBS_Sign's first INTEGER
            return parsed
    version = _version_of(data)
    if version >= 4:
        with contextlib.suppress(Exception):  # not the usual layout, or not DER: asn1crypto reads it
            return _read_v4(data)
    return _read_with_asn1crypto(data, version)


def _read_with_asn1crypto(data: bytes, version: int) -> ParsedSignature:
    """Either version read with the classes above (BER, unusual layouts, version 1)."""
    try:
        if version >= 4:
            sig = SESSignature.load(data, strict=True)
            tbs = sig["toSign"]
            stamp = sig["timeStamp"]
            parsed = ParsedSignature(
                version=int(tbs["version"].native),
                seal=_seal_v4(tbs["eseal"]),
                time_info=_utc(tbs["timeInfo"].native),
                time_text=str(tbs["timeInfo"].native),
                data_hash=bytes(tbs["dataHash"].native),
                property_info=str(tbs["propertyInfo"].native),
                extensions=_extensions(tbs["extDatas"]),
                signer_cert=bytes(sig["cert"].native),
                alg=sig["signatureAlgID"].dotted,
                signed=tbs.dump(),
                signature=bytes(sig["signature"].native),
                timestamp=None if isinstance(stamp, core.Void) else bytes(stamp.native),
                der=data,
            )
        else:
            v1 = V1Signature.load(data, strict=True)
            tbs1 = v1["toSign"]
            when, text = _v1_time(bytes(tbs1["timeInfo"].native))
            parsed = ParsedSignature(
                version=int(tbs1["version"].native),
                seal=_seal_v1(tbs1["eseal"]),
                time_info=when,
                time_text=text,
                data_hash=bytes(tbs1["dataHash"].native),
                property_info=str(tbs1["propertyInfo"].native),
                extensions=[],
                signer_cert=bytes(tbs1["cert"].native),
                alg=tbs1["signatureAlgorithm"].dotted,
                signed=tbs1.dump(),
                signature=bytes(v1["signature"].native),
                timestamp=None,
                der=data,
            )
    except DerError:
        raise
    except Exception as exc:
        raise DerError(f"the version-{version} seal signature does not follow GB/T 38540's structure: {exc}") from exc
    return parsed


def parse_seal(data: bytes) -> ParsedSeal:
    """Read a DER SESeal (version 4, or the version-1 layout, e.g. an OFD's Seal.esl)."""
    _check_size(data)
    try:
        outer = core.load(data, strict=True)
        version = int(outer[0][0][1].native)
        if version >= 4:
            return _seal_v4(SESeal.load(data, strict=True))
        return _seal_v1(V1SESeal.load(data, strict=True))
    except Exception as exc:
        raise DerError(f"the seal does not follow GB/T 38540's structure: {exc}") from exc


# ---------------------------------------------------------------- making them (version 4)


def _ext_datas(extensions: list[Extension]) -> ExtensionDatas:
    return ExtensionDatas([{"extnID": e.oid, "critical": e.critical, "extnValue": e.value} for e in extensions])


def seal_info(
    *,
    vendor_id: str,
    es_id: str,
    seal_type: int,
    name: str,
    certificates: list[bytes],
    created: datetime,
    valid_start: datetime,
    valid_end: datetime,
    picture_type: str,
    picture: bytes,
    width_mm: int,
    height_mm: int,
    extensions: list[Extension],
) -> SealInfo:
    """SES_SealInfo (version 4), to be signed by the seal maker."""
    values: dict[str, Any] = {
        "header": {"id": HEADER_ID, "version": VERSION, "vid": vendor_id},
        "esID": es_id,
        "property": {
            "type": seal_type,
            "name": name,
            "certListType": CERT_LIST_CERTIFICATES,
            "certList": CertList([core.OctetString(c) for c in certificates]),
            "createDate": _utc(created).replace(microsecond=0),
            "validStart": _utc(valid_start).replace(microsecond=0),
            "validEnd": _utc(valid_end).replace(microsecond=0),
        },
        "picture": {"type": picture_type, "data": picture, "width": width_mm, "height": height_mm},
    }
    if extensions:
        values["extDatas"] = _ext_datas(extensions)
    return SealInfo(values)


def seal(info: SealInfo, *, maker_cert: bytes, alg: str, signed_value: bytes) -> bytes:
    """The DER SESeal: the seal information with the seal maker's certificate and signature."""
    return bytes(SESeal({"eSealInfo": info, "cert": maker_cert, "signAlgID": alg, "signedValue": signed_value}).dump(force=True))


def to_sign(*, seal_der: bytes, at: datetime, data_hash: bytes, property_info: str, extensions: list[Extension]) -> TBSSign:
    """TBS_Sign (version 4), to be signed by the seal's key."""
    values: dict[str, Any] = {
        "version": VERSION,
        "eseal": SESeal.load(seal_der),
        "timeInfo": _utc(at).replace(microsecond=0),
        "dataHash": data_hash,
        "propertyInfo": property_info,
    }
    if extensions:
        values["extDatas"] = _ext_datas(extensions)
    return TBSSign(values)


def signature(tbs: TBSSign, *, cert: bytes, alg: str, value: bytes, timestamp: bytes | None = None) -> bytes:
    """The DER SES_Signature."""
    values: dict[str, Any] = {"toSign": tbs, "cert": cert, "signatureAlgID": alg, "signature": value}
    if timestamp is not None:
        values["timeStamp"] = timestamp
    # Not dump(force=True): the seal inside keeps the very bytes its maker signed, and TBS_Sign those the signer did.
    return bytes(SESSignature(values).dump())


# The same two structures assembled from DER, for the sealing path (asn1crypto builds them in some ten times the
# signature's time); tests/seal/test_der.py checks they are the bytes :func:`to_sign` and :func:`signature` make.


@lru_cache(maxsize=64)
def _oid(dotted: str) -> bytes:
    return bytes(core.ObjectIdentifier(dotted).dump())


_VERSION_DER = bytes(core.Integer(VERSION).dump())


def to_sign_der(*, seal_der: bytes, at: datetime, data_hash: bytes, property_info: str, extensions: list[Extension]) -> bytes:
    """The DER of :func:`to_sign`'s TBS_Sign, assembled directly (`seal_der` kept as it is)."""
    if not property_info.isascii():  # not an IA5String: as asn1crypto answers it
        return bytes(
            to_sign(seal_der=seal_der, at=at, data_hash=data_hash, property_info=property_info, extensions=extensions).dump()
        )
    body = (
        _VERSION_DER
        + seal_der
        + tlv(0x18, _utc(at).strftime("%Y%m%d%H%M%SZ").encode())
        + tlv(0x03, b"\x00" + data_hash)
        + tlv(0x16, property_info.encode())
    )
    if extensions:
        items = b"".join(
            tlv(0x30, _oid(e.oid) + (b"\x01\x01\xff" if e.critical else b"") + tlv(0x04, e.value)) for e in extensions
        )
        body += tlv(0x30, items)
    return tlv(0x30, body)


def signature_der(tbs_der: bytes, *, cert: bytes, alg: str, value: bytes, timestamp: bytes | None = None) -> bytes:
    """The DER of :func:`signature`'s SES_Signature over a TBS_Sign given as DER, assembled directly."""
    body = tbs_der + tlv(0x04, cert) + _oid(alg) + tlv(0x03, b"\x00" + value)
    if timestamp is not None:
        body += tlv(0xA0, tlv(0x03, b"\x00" + timestamp))
    return tlv(0x30, body)


# ---------------------------------------------------------------- the readable view (JSON)


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.hex()


def seal_view(parsed: ParsedSeal) -> dict[str, Any]:
    """A readable JSON view of a DER seal (what was signed is the DER, never this view)."""
    import base64

    return {
        "header": {"id": HEADER_ID, "version": parsed.version, "vid": parsed.vendor_id},
        "esID": parsed.es_id,
        "property": {
            "type": parsed.type,
            "name": parsed.name,
            "certListType": parsed.cert_list_type,
            "certList": [base64.b64encode(c).decode() for c in parsed.certificates],
            "createDate": parsed.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validStart": parsed.valid_start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "validEnd": parsed.valid_end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "picture": {"type": parsed.picture_type, "bytes": len(parsed.picture), "width": parsed.width, "height": parsed.height},
        "extDatas": [{"extnID": e.oid, "critical": e.critical, "extnValue": _text(e.value)} for e in parsed.extensions],
        "cert": base64.b64encode(parsed.maker_cert).decode(),
        "signAlgID": parsed.maker_alg,
        "signedValue": base64.b64encode(parsed.maker_signature).decode(),
    }


def signature_view(parsed: ParsedSignature) -> dict[str, Any]:
    """A readable JSON view of a DER seal signature."""
    import base64

    return {
        "toSign": {
            "version": parsed.version,
            "eseal": seal_view(parsed.seal),
            "timeInfo": parsed.time_info.strftime("%Y-%m-%dT%H:%M:%SZ") if parsed.time_info else parsed.time_text,
            "dataHash": base64.b64encode(parsed.data_hash).decode(),
            "propertyInfo": parsed.property_info,
            "extDatas": [{"extnID": e.oid, "critical": e.critical, "extnValue": _text(e.value)} for e in parsed.extensions],
        },
        "cert": base64.b64encode(parsed.signer_cert).decode(),
        "signatureAlgID": parsed.alg,
        "signature": base64.b64encode(parsed.signature).decode(),
        "timeStamp": base64.b64encode(parsed.timestamp).decode() if parsed.timestamp else None,
    }
