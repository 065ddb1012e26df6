"""电子档案: archive packages of certificate versions, and the checks of 四性检测 that are particular to them.

A package (a BagIt bag, see `ops.archive`) holds the certificate as issued (`original/credential.jws`, the
JWS over the whole certificate; `original/credential.sd-jwt`, the SD-JWT VC), its sealed PDF copy when one
was made (`original/copy.pdf`), the descriptive metadata (`metadata/dat46.json`, DA/T 46 elements; see
docs/certhub.md for the mapping), the GB/T 36903 metadata (`metadata/gbt36903.json`), the issuer's public key
(`signature/issuer-key.json`), and the audit-log evidence the platform adds.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy.orm import Session

from certhub import repository, sdjwt, sealing
from certhub.common import not_found
from certhub.hubkey import hub_jwks
from certhub.models import Certificate, CertificateStatus
from ops.archive import service as archive
from ops.auth import Principal, Role
from ops.config import Settings
from ops.crypto import KeyVault
from ops.storage import ObjectStore, get_bytes

RECORD_CLASS = "certificate_version"
JWS_FILE = "original/credential.jws"
SD_JWT_FILE = "original/credential.sd-jwt"
PDF_FILE = "original/copy.pdf"
OFD_FILE = "original/copy.ofd"
DAT46_FILE = "metadata/dat46.json"
GBT36903_FILE = "metadata/gbt36903.json"
KEY_FILE = "signature/issuer-key.json"
SEAL_CA_FILE = "signature/seal-ca.json"
# 保管期限 of a class the retention schedule (GOVHUB_ARCHIVE_RETENTION_YEARS) does not name: permanent (永久).
RETENTION = "永久"
# The DA/T 46 elements every certificate package must fill (the rest are named in docs/certhub.md).
REQUIRED_ELEMENTS = ("聚合层次", "电子文件号", "题名", "责任者", "日期", "保管期限", "密级", "计算机文件", "电子签名", "业务行为")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()


def archivable(db: Session, who: Principal, identifier: str) -> Certificate:
    """A certificate version the caller may archive: its issuer's staff, or the platform."""
    if Role.PLATFORM_ADMIN in who.roles:
        certificate = repository.certificate_by_identifier(db, identifier)
    elif who.department_id is not None and who.roles & {Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM}:
        certificate = repository.issued_certificate(db, who.department_id, identifier)
    else:
        certificate = None
    if certificate is None:
        raise not_found(identifier)
    return certificate


def retention_from(certificate: Certificate) -> datetime | None:
    """When a version's retention starts: its revocation (注销) or supersession, else the end of its validity;
    None for a version in force with no end date (its retention has not started)."""
    if certificate.status in (CertificateStatus.REVOKED, CertificateStatus.SUPERSEDED):
        return certificate.status_changed_at
    if certificate.valid_until is not None:
        return datetime.combine(certificate.valid_until, time.min, UTC) + timedelta(days=1)
    return None


def certificate_contents(
    db: Session, certificate: Certificate, *, storage: ObjectStore, vault: KeyVault, retention_years: int | None = None
) -> archive.Contents:
    """The files and metadata of one certificate version's package (保管期限: `retention_years`, else permanent)."""
    files: dict[str, bytes] = {
        JWS_FILE: certificate.jws.encode(),
        SD_JWT_FILE: certificate.sd_jwt.encode(),
        GBT36903_FILE: _json(certificate.meta),
    }
    if certificate.pdf_key:
        files[PDF_FILE] = get_bytes(storage, certificate.pdf_key)
        chain = sealing.authority_chain(db, vault=vault)
        files[SEAL_CA_FILE] = _json({"roots": [chain["root"], *chain["roots"]], "intermediates": [chain["issuing"]]})
    if certificate.ofd_key:  # the sealed OFD copy, its seal on the SM2 chain (both chains' CAs in the CA file)
        files[OFD_FILE] = get_bytes(storage, certificate.ofd_key)
        files[SEAL_CA_FILE] = _json(sealing.archive_trust(db))
    jwk = next((k for k in hub_jwks(db)["keys"] if k.get("kid") == certificate.kid), None)
    files[KEY_FILE] = _json({"alg": certificate.alg, "kid": certificate.kid, "jwk": jwk})
    computer_files = [
        {
            "计算机文件名": name,
            "计算机文件大小": len(data),
            "格式名称": _format_name(name),
            "SHA-256": archive.digest("sha256", data),
            "SM3": archive.digest("sm3", data),
        }
        for name, data in sorted(files.items())
        if name.startswith("original/")
    ]
    meta = certificate.meta
    dat46 = {
        "聚合层次": "件",
        "来源": {"立档单位名称": meta.get("ZZBFJG"), "立档单位代码": meta.get("ZZBFJGDM")},
        "电子文件号": certificate.identifier,
        "题名": f"{meta.get('ZZMC')}（{certificate.holder_name}）第{certificate.cert_version}版",
        "文号": certificate.number,
        "责任者": meta.get("ZZBFJG"),
        "日期": certificate.issued_at.astimezone(UTC).isoformat(),
        "保管期限": f"{retention_years}年" if retention_years else RETENTION,
        "密级": "非密",
        "语种": "汉语",
        "计算机文件": computer_files,
        "电子签名": {
            "签名规则": "JWS (RFC 7515) 对整张证照签名; SD-JWT VC 对选择性披露摘要签名",
            "签名时间": certificate.issued_at.astimezone(UTC).isoformat(),
            "签名人": meta.get("ZZBFJG"),
            "签名算法标识": certificate.alg,
            "证书引证": certificate.kid,
        },
        "业务行为": {
            "业务状态": certificate.status,
            "行为": "签发" if certificate.previous_id is None else "变更",
            "行为时间": certificate.issued_at.astimezone(UTC).isoformat(),
            "行为依据": meta.get("ZZLXDM"),
        },
        "关联": {"前一版本": certificate.previous_id, "被替代为": certificate.superseded_by},
    }
    files[DAT46_FILE] = _json(dat46)
    return archive.Contents(
        record_class=RECORD_CLASS,
        identifier=certificate.identifier,
        department_id=certificate.issuer_department_id,
        files=files,
        info={"Internal-Sender-Description": f"电子证照 {meta.get('ZZMC')} {certificate.identifier}"},
        audit_object=("certificate", certificate.identifier),
        retention_from=retention_from(certificate),
    )


def _format_name(name: str) -> str:
    if name.endswith(".pdf"):
        return "PDF"
    if name.endswith(".ofd"):
        return "OFD (GB/T 33190-2016), 电子签章 GB/T 38540-2020"
    if name.endswith(".jws"):
        return "JWS compact serialisation (RFC 7515)"
    return "SD-JWT VC (RFC 9901)"


def archive_certificate(
    db: Session, *, who: Principal, storage: ObjectStore, settings: Settings, vault: KeyVault, identifier: str
) -> archive.ArchivePackage:
    """Write the archive package of one certificate version to object storage (its issuer or the platform)."""
    certificate = archivable(db, who, identifier)
    years = settings.archive_retention.get(RECORD_CLASS)
    contents = certificate_contents(db, certificate, storage=storage, vault=vault, retention_years=years)
    return archive.store_package(db, who=who, storage=storage, contents=contents, organisation=settings.public_url)


def archive_range(
    db: Session, *, who: Principal, storage: ObjectStore, settings: Settings, vault: KeyVault, since: datetime, until: datetime
) -> tuple[list[archive.ArchivePackage], list[tuple[str, str]]]:
    """Archive every certificate version issued in [since, until) that the caller may archive; returns the
    packages and, for each version left out, why (its audit records not yet in a signed checkpoint)."""
    department = None if Role.PLATFORM_ADMIN in who.roles else who.require_department()
    return archive.store_each(
        repository.issued_between(db, since=since, until=until, department_id=department),
        lambda identifier: archive_certificate(
            db, who=who, storage=storage, settings=settings, vault=vault, identifier=identifier
        ),
    )


def archive_packages(db: Session, *, who: Principal, identifier: str) -> list[archive.ArchivePackage]:
    """The packages written for one certificate version."""
    archivable(db, who, identifier)
    return archive.packages(db, record_class=RECORD_CLASS, record_id=identifier)


def archive_package(
    db: Session, *, who: Principal, storage: ObjectStore, identifier: str, package_id: str
) -> tuple[archive.ArchivePackage, bytes]:
    """One package's zip, for download."""
    archivable(db, who, identifier)
    return archive.package_bytes(
        db, who=who, storage=storage, record_class=RECORD_CLASS, record_id=identifier, package_id=package_id
    )


# ---- 四性检测: the checks particular to a certificate version ------------------------------------------


def check_certificate_package(bag: archive.Bag, report: archive.Report) -> None:
    """Metadata complete and consistent with the files; the credential's signature under the key in the package;
    the audit records are about this certificate."""
    integrity = archive.Property.INTEGRITY
    payload = bag.payload()
    dat46 = archive.load_json(bag, DAT46_FILE)
    meta = archive.load_json(bag, GBT36903_FILE)
    for name, value in ((DAT46_FILE, dat46), (GBT36903_FILE, meta)):
        if not isinstance(value, dict):
            report.add(integrity, "metadata", False, f"data/{name} is missing or not a JSON object", f"data/{name}")
    if not isinstance(dat46, dict) or not isinstance(meta, dict):
        return
    missing = [e for e in REQUIRED_ELEMENTS if not dat46.get(e)]
    report.add(
        integrity,
        "metadata complete",
        not missing,
        f"DA/T 46 elements missing: {', '.join(missing)}" if missing else "every required DA/T 46 element is filled",
        f"data/{DAT46_FILE}",
    )
    identifier = report.identifier
    for label, value, file in (
        ("电子文件号 (DA/T 46)", dat46.get("电子文件号"), DAT46_FILE),
        ("ZZBS (GB/T 36903)", meta.get("ZZBS"), GBT36903_FILE),
    ):
        report.add(
            integrity,
            "metadata identifier",
            value == identifier,
            f"{label} is {value}, the package is of {identifier}"
            if value != identifier
            else f"{label} names the package's record",
            f"data/{file}",
        )
    described = dat46.get("计算机文件")
    listed: dict[str, dict[str, Any]] = {
        str(f.get("计算机文件名")): f for f in (described if isinstance(described, list) else []) if isinstance(f, dict)
    }
    originals = {n for n in payload if n.startswith("original/")}
    for name in sorted(originals | listed.keys()):
        entry, data = listed.get(name), payload.get(name)
        if entry is None or data is None:
            where = "not described in the metadata" if entry is None else "described in the metadata but absent"
            report.add(integrity, "metadata files", False, f"{name} is {where}", f"data/{DAT46_FILE}")
            continue
        wrong = [
            k
            for k, v in (
                ("计算机文件大小", len(data)),
                ("SHA-256", archive.digest("sha256", data)),
                ("SM3", archive.digest("sm3", data)),
            )
            if entry.get(k) != v
        ]
        report.add(
            integrity,
            "metadata files",
            not wrong,
            f"the metadata's {', '.join(wrong)} of {name} do not match the file" if wrong else f"{name} matches its metadata",
            f"data/{DAT46_FILE}",
        )
    _check_signature(payload, meta, identifier, report)
    if PDF_FILE in payload:
        archive.check_pdf_seals(payload, PDF_FILE, SEAL_CA_FILE, report)
    if OFD_FILE in payload:
        sealing.check_ofd_copy(payload, OFD_FILE, SEAL_CA_FILE, report)
    _check_audit_subject(bag, identifier, report)


def _check_signature(payload: dict[str, bytes], meta: dict[str, Any], identifier: str | None, report: archive.Report) -> None:
    authenticity = archive.Property.AUTHENTICITY
    try:
        key_doc = json.loads(payload[KEY_FILE]) if KEY_FILE in payload else None
    except ValueError:  # not JSON, or not UTF-8
        key_doc = None
    jwk = key_doc.get("jwk") if isinstance(key_doc, dict) else None
    if not isinstance(jwk, dict) or not isinstance(key_doc, dict):
        report.add(authenticity, "credential signature", False, f"data/{KEY_FILE} holds no public key", f"data/{KEY_FILE}")
        return
    trust = report.trust
    if trust is not None and trust.issuer_keys:
        members = ("kid", "kty", "crv", "x", "y")
        known = any(all(k.get(m) == jwk.get(m) for m in members) for k in trust.issuer_keys)
        report.add(
            authenticity,
            "issuer key trusted",
            known,
            f"the issuer key {key_doc.get('kid')} is one of the hub's published keys"
            if known
            else f"the issuer key {key_doc.get('kid')} in the package is not among the published keys given",
            f"data/{KEY_FILE}",
        )
    for name in (JWS_FILE, SD_JWT_FILE):
        raw = payload.get(name)
        if raw is None:
            report.add(authenticity, "credential signature", False, f"{name} is absent", f"data/{name}")
            continue
        try:
            token = raw.decode("ascii").strip()
            parsed = sdjwt.parse_jws(token.split("~")[0] if name == SD_JWT_FILE else token, what=name)
            alg = str(parsed.header.get("alg"))
            kid_ok = parsed.header.get("kid") == key_doc.get("kid")
            valid = kid_ok and sdjwt.default_signature_check(
                alg=alg, jwk=jwk, data=parsed.signing_input, signature=parsed.signature
            )
        except (sdjwt.Rejected, ValueError, KeyError, TypeError, AttributeError) as exc:
            report.add(authenticity, "credential signature", False, f"{name} cannot be read: {exc}", f"data/{name}")
            continue
        if not valid:
            report.add(
                authenticity,
                "credential signature",
                False,
                f"the signature of {name} does not verify with the key in the package",
                f"data/{name}",
            )
            continue
        report.add(
            authenticity, "credential signature", True, f"{name} verifies ({alg}, key {key_doc.get('kid')})", f"data/{name}"
        )
        if name == JWS_FILE:
            consistent = parsed.payload.get("jti") == identifier and parsed.payload.get("meta") == meta
            report.add(
                archive.Property.INTEGRITY,
                "metadata signed",
                consistent,
                "the GB/T 36903 metadata is what the issuer signed"
                if consistent
                else f"data/{GBT36903_FILE} differs from the metadata signed in {name}",
                f"data/{GBT36903_FILE}",
            )


def _check_audit_subject(bag: archive.Bag, identifier: str | None, report: archive.Report) -> None:
    items = archive.load_json(bag, "evidence/audit-inclusion.json")
    if not isinstance(items, list):
        return
    others = []
    for item in items:
        try:
            record = json.loads(item["record"])
        except (TypeError, KeyError, ValueError):
            continue
        if not isinstance(record, dict):
            continue
        if record.get("object_type") != "certificate" or record.get("object_id") != identifier:
            others.append(str(record.get("id")))
    report.add(
        archive.Property.AUTHENTICITY,
        "audit records concern the record",
        not others,
        f"audit records {', '.join(others)} are about another object" if others else f"every audit record is about {identifier}",
        "data/evidence/audit-inclusion.json",
    )


PROFILES: dict[str, archive.Profile] = {RECORD_CLASS: check_certificate_package}
