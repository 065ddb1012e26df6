"""电子档案: the archive package of a sealed document (one seal use), and the checks of 四性检测 particular to it.

A package (a BagIt bag, see `ops.archive`) holds the sealed output as the hub returned it and kept it in object
storage (`original/sealed.pdf`, the PAdES-sealed PDF; or `original/seal-signature.der`, the detached GB/T 38540
SES_Signature), the seal (`signature/seal.der`, its SES_Seal; `signature/seal-certificate.json`, the seal's
certificate; `signature/seal-ca.json`, the hub CA certificates it chains to), the use record with the person or
system who sealed and the approval it used (`record/use.json`), the DA/T 46 metadata (`metadata/dat46.json`) and
the audit-log evidence of the use that the platform adds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy.orm import Session

from ops.archive import service as archive
from ops.audit import AuditRecord
from ops.auth import Principal, Role
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import Conflict, NotFound
from ops.storage import ObjectStore, get_bytes
from seal import authority, keys, ofd, repository, sesder, timestamps
from seal.custody import chain_pem
from seal.issuance import make_seal_der
from seal.models import Seal, SealUse
from seal.verification import Trust, _der_seal_check, _der_signature_check, chain_check

RECORD_CLASS = "sealed_document"
PDF_FILE = "original/sealed.pdf"
DER_FILE = "original/seal-signature.der"
OFD_FILE = "original/sealed.ofd"
SEAL_FILE = "signature/seal.der"
CERT_FILE = "signature/seal-certificate.json"
CA_FILE = "signature/seal-ca.json"
USE_FILE = "record/use.json"
DAT46_FILE = "metadata/dat46.json"
REQUIRED_ELEMENTS = ("聚合层次", "电子文件号", "题名", "责任者", "日期", "保管期限", "密级", "计算机文件", "电子签名", "业务行为")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True).encode()


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def archivable(db: Session, who: Principal, use_id: str) -> tuple[SealUse, Seal]:
    """A seal use the caller may archive: the seal's department's staff or system, or the platform."""
    if Role.PLATFORM_ADMIN in who.roles:
        found = repository.archivable_use(db, use_id=use_id, department_id=None)
    elif who.department_id is not None and who.roles & {Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM}:
        found = repository.archivable_use(db, use_id=use_id, department_id=who.department_id)
    else:
        found = None
    if found is None:
        raise NotFound(f"seal use {use_id} not found")
    return found


def _audit_of_use(use_id: str) -> Callable[[AuditRecord], bool]:
    def keep(record: AuditRecord) -> bool:
        detail = record.detail if isinstance(record.detail, dict) else {}
        return detail.get("use_id") == use_id

    return keep


_FORMAT_NAMES = {
    PDF_FILE: "PDF (PAdES)",
    DER_FILE: "GB/T 38540-2020 SES_Signature (DER)",
    OFD_FILE: "OFD (GB/T 33190-2016), 电子签章 GB/T 38540-2020",
}
_SIGNATURE_RULES = {
    "pdf": "PAdES (ETSI EN 319 142) 对整个PDF签章",
    "ofd": "GB/T 38540-2020 电子签章 (OFD 签名, GB/T 33190 Signature.xml)",
}


def use_contents(
    db: Session, use: SealUse, seal: Seal, *, storage: ObjectStore, vault: KeyVault, settings: Settings
) -> archive.Contents:
    """The files and metadata of one sealed document's package."""
    if use.object_key is None:
        raise Conflict(
            f"seal use {use.id} kept no sealed output (it was made before the hub kept them, or through a path that "
            "returns only a signature value): there is nothing to archive"
        )
    if not storage.exists(use.object_key):
        raise Conflict(f"the sealed output of seal use {use.id} is missing from object storage (object {use.object_key})")
    output = get_bytes(storage, use.object_key)
    original = {"pdf": PDF_FILE, "ofd": OFD_FILE}.get(use.kind, DER_FILE)
    approval = repository.use_request_by_id(db, use.request_id) if use.request_id else None
    files: dict[str, bytes] = {
        original: output,
        SEAL_FILE: seal.structure_der or make_seal_der(db, vault=vault, seal=seal, settings=settings),
        CERT_FILE: _json({"certificate": seal.certificate_pem, "chain": chain_pem(db, seal)[1:]}),
        CA_FILE: _json(trusted_ca_pem(db)),
        USE_FILE: _json(
            {
                "use_id": use.id,
                "at": _iso(use.at),
                "kind": use.kind,
                "used_by": use.actor,
                "document_hash": use.document_hash,
                "hash_alg": use.hash_alg,
                "signature_hash": use.signature_hash,
                "purpose": use.purpose,
                "seal": {"id": seal.id, "code": seal.code, "name": seal.name, "type": seal.seal_type, "alg": seal.alg},
                "department": {"id": seal.department_id, "code": seal.department_code, "name": seal.department_name},
                "approval": None
                if approval is None
                else {
                    "id": approval.id,
                    "requested_by": approval.requested_by,
                    "document_name": approval.document_name,
                    "document_hash": approval.document_hash,
                    "purpose": approval.purpose,
                    "requested_at": _iso(approval.created_at),
                    "decided_by": approval.decided_by,
                    "decided_at": _iso(approval.decided_at),
                    "decision_reason": approval.decision_reason,
                },
            }
        ),
    }
    computer_files = [
        {
            "计算机文件名": name,
            "计算机文件大小": len(data),
            "格式名称": _FORMAT_NAMES[name],
            "SHA-256": archive.digest("sha256", data),
            "SM3": archive.digest("sm3", data),
        }
        for name, data in sorted(files.items())
        if name.startswith("original/")
    ]
    title = approval.document_name if approval is not None else f"{seal.name}用印文件"
    dat46 = {
        "聚合层次": "件",
        "来源": {"立档单位名称": seal.department_name, "立档单位代码": seal.department_code},
        "电子文件号": use.id,
        "题名": f"{title}（{seal.name}用印）",
        "责任者": seal.department_name,
        "日期": _iso(use.at),
        "保管期限": "",  # filled below from the retention schedule
        "密级": "非密",
        "语种": "汉语",
        "计算机文件": computer_files,
        "电子签名": {
            "签名规则": _SIGNATURE_RULES.get(use.kind, "GB/T 38540-2020 电子签章 (分离式)"),
            "签名时间": _iso(use.at),
            "签名人": f"{seal.department_name} {seal.name}",
            "签名算法标识": seal.alg,
            "证书引证": seal.certificate_serial,
            "签章": {"印章标识": seal.code, "印章名称": seal.name},
        },
        "业务行为": {
            "行为": "用印",
            "行为时间": _iso(use.at),
            "行为依据": use.purpose,
            "行为描述": f"{use.actor} 用印" + (f"，经 {approval.decided_by} 审批" if approval is not None else ""),
        },
        "授权": None
        if approval is None
        else {"授权对象": approval.requested_by, "授权行为": "用印审批", "审批人": approval.decided_by},
    }
    years = settings.archive_retention.get(RECORD_CLASS)
    dat46["保管期限"] = f"{years}年" if years else "永久"
    files[DAT46_FILE] = _json(dat46)
    return archive.Contents(
        record_class=RECORD_CLASS,
        identifier=use.id,
        department_id=use.department_id,
        files=files,
        info={"Internal-Sender-Description": f"用印文件 {seal.department_name} {seal.name} {use.id}"},
        audit_object=("seal", seal.id),
        audit_filter=_audit_of_use(use.id),
        # The use's record is written in the sealing's own transaction: a minute either side finds it among the
        # seal's other uses, however many.
        audit_window=(use.at - timedelta(minutes=1), use.at + timedelta(minutes=1)),
        retention_from=use.at,
    )


def archive_use(
    db: Session, *, who: Principal, storage: ObjectStore, settings: Settings, vault: KeyVault, use_id: str
) -> archive.ArchivePackage:
    """Write the archive package of one sealed document to object storage (the seal's department or the platform)."""
    use, seal = archivable(db, who, use_id)
    contents = use_contents(db, use, seal, storage=storage, vault=vault, settings=settings)
    package = archive.store_package(db, who=who, storage=storage, contents=contents, organisation=settings.public_url)
    return package


def archive_uses_between(
    db: Session, *, who: Principal, storage: ObjectStore, settings: Settings, vault: KeyVault, since: datetime, until: datetime
) -> tuple[list[archive.ArchivePackage], list[tuple[str, str]]]:
    """Archive every sealed document of [since, until) the caller may archive; the uses left out, with why."""
    department = None if Role.PLATFORM_ADMIN in who.roles else who.require_department()
    return archive.store_each(
        repository.uses_kept_between(db, since=since, until=until, department_id=department),
        lambda use_id: archive_use(db, who=who, storage=storage, settings=settings, vault=vault, use_id=use_id),
    )


def use_packages(db: Session, *, who: Principal, use_id: str) -> list[archive.ArchivePackage]:
    archivable(db, who, use_id)
    return archive.packages(db, record_class=RECORD_CLASS, record_id=use_id)


def use_package(
    db: Session, *, who: Principal, storage: ObjectStore, use_id: str, package_id: str
) -> tuple[archive.ArchivePackage, bytes]:
    archivable(db, who, use_id)
    return archive.package_bytes(db, who=who, storage=storage, record_class=RECORD_CLASS, record_id=use_id, package_id=package_id)


# ---- 四性检测: the checks particular to a sealed document --------------------------------------------


def check_sealed_document(bag: archive.Bag, report: archive.Report) -> None:
    """Metadata complete and consistent with the files; the use record's hashes are those of the sealed output;
    the seal signature verifies and chains to the CA in the package; the audit records are about this use."""
    integrity, authenticity = archive.Property.INTEGRITY, archive.Property.AUTHENTICITY
    payload = bag.payload()
    archive.check_required_elements(bag, report, metadata=DAT46_FILE, required=REQUIRED_ELEMENTS)
    archive.check_described_files(bag, report, metadata=DAT46_FILE)
    use = archive.load_json(bag, USE_FILE)
    if not isinstance(use, dict):
        report.add(integrity, "use record", False, f"data/{USE_FILE} is missing or not a JSON object", f"data/{USE_FILE}")
        return
    report.add(
        integrity,
        "use record identifier",
        use.get("use_id") == report.identifier,
        "the use record names the package's record"
        if use.get("use_id") == report.identifier
        else f"the use record is of {use.get('use_id')}, the package is of {report.identifier}",
        f"data/{USE_FILE}",
    )
    if PDF_FILE in payload:
        pdf = payload[PDF_FILE]
        same = use.get("document_hash") == hashlib.sha256(pdf).hexdigest()
        report.add(
            integrity,
            "use record hash",
            same,
            f"the use record's document_hash is the SHA-256 of {PDF_FILE}"
            if same
            else f"the use record's document_hash is not the SHA-256 of {PDF_FILE}",
            f"data/{USE_FILE}",
        )
        archive.check_pdf_seals(payload, PDF_FILE, CA_FILE, report)
    elif DER_FILE in payload:
        _check_detached(payload, use, report)
    elif OFD_FILE in payload:
        _check_ofd(payload, use, report)
    else:
        report.add(
            authenticity, "seal", False, f"none of {PDF_FILE}, {DER_FILE}, {OFD_FILE} is in the package", f"data/{PDF_FILE}"
        )
    _check_ca_trusted(payload, report)
    others = [
        str(r.get("id"))
        for r in archive.audit_records(bag)
        if not isinstance(r.get("detail"), dict) or r["detail"].get("use_id") != report.identifier
    ]
    report.add(
        authenticity,
        "audit records concern the record",
        not others,
        f"audit records {', '.join(others)} are about another use"
        if others
        else f"every audit record is about use {report.identifier}",
        "data/evidence/audit-inclusion.json",
    )


def _der(pem: str) -> bytes:
    return x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)


def _check_ca_trusted(payload: dict[str, bytes], report: archive.Report) -> None:
    """With the hub's published CA certificates (`/seal/ca`) given as trust: every root in the package is one."""
    trust = report.trust
    if trust is None or not trust.ca_roots:
        return
    try:
        known = {_der(p) for p in trust.ca_roots}
        roots = [_der(p) for p in json.loads(payload[CA_FILE])["roots"]]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(
            archive.Property.AUTHENTICITY,
            "seal CA trusted",
            False,
            f"the CA certificates cannot be read: {exc}",
            f"data/{CA_FILE}",
        )
        return
    strangers = [r for r in roots if r not in known]
    report.add(
        archive.Property.AUTHENTICITY,
        "seal CA trusted",
        bool(roots) and not strangers,
        "every CA root in the package is one the hub publishes"
        if roots and not strangers
        else f"{len(strangers)} CA root(s) in the package are not among the published ones given",
        f"data/{CA_FILE}",
    )


def _package_trust(payload: dict[str, bytes]) -> tuple[Trust, x509.Certificate]:
    """The CA certificates in the package and the seal's certificate it holds (KeyError, ValueError... if unreadable)."""
    ca = json.loads(payload[CA_FILE])
    trusted = Trust(
        roots=[x509.load_pem_x509_certificate(p.encode()) for p in ca["roots"]],
        intermediates=[x509.load_pem_x509_certificate(p.encode()) for p in ca["intermediates"]],
    )
    held = x509.load_pem_x509_certificate(str(json.loads(payload[CERT_FILE])["certificate"]).encode())
    return trusted, held


def _check_detached(payload: dict[str, bytes], use: dict[str, Any], report: archive.Report) -> None:
    integrity = archive.Property.INTEGRITY
    path = f"data/{DER_FILE}"
    try:
        parsed = sesder.parse_signature(payload[DER_FILE])
        trusted, held = _package_trust(payload)
        cert = x509.load_der_x509_certificate(parsed.signer_cert)
    except (sesder.DerError, KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(
            archive.Property.AUTHENTICITY,
            "seal signature",
            False,
            f"the seal signature or its certificates cannot be read: {exc}",
            path,
        )
        return
    same_hash = use.get("document_hash") == parsed.data_hash.hex()
    report.add(
        integrity,
        "use record hash",
        same_hash,
        "the use record's document_hash is the signature's dataHash"
        if same_hash
        else "the use record's document_hash differs from the signature's dataHash",
        f"data/{USE_FILE}",
    )
    _check_use_signature_hash(parsed, use, report)
    _check_seal_signature(parsed, cert, held, trusted, payload, report, path)


def _check_use_signature_hash(parsed: sesder.ParsedSignature, use: dict[str, Any], report: archive.Report) -> None:
    same_sig = use.get("signature_hash") == hashlib.sha256(parsed.signature).hexdigest()
    report.add(
        archive.Property.INTEGRITY,
        "use record signature",
        same_sig,
        "the use record's signature_hash is the SHA-256 of the signature value"
        if same_sig
        else "the use record's signature_hash differs from the signature value's SHA-256",
        f"data/{USE_FILE}",
    )


def _check_seal_signature(
    parsed: sesder.ParsedSignature,
    cert: x509.Certificate,
    held: x509.Certificate | None,
    trusted: Trust,
    payload: dict[str, bytes],
    report: archive.Report,
    path: str,
    ca_file: str = CA_FILE,
) -> None:
    """A GB/T 38540 seal signature from the package alone: its value under its signer certificate, the seal's
    maker signature, its time stamp, its chain to the package's CA (`ca_file`); and, for a package of a seal use
    (`held`: the seal certificate it holds), the seal inside it being the package's seal file and its certificate
    the one the package holds."""
    integrity, authenticity = archive.Property.INTEGRITY, archive.Property.AUTHENTICITY
    alg = keys.ALG_FOR_OID.get(parsed.alg)
    try:
        spki: bytes | None = authority.spki_der(cert)
    except ValueError:
        spki = None
    signature = _der_signature_check(parsed, alg, spki)
    report.add(authenticity, "seal signature", signature.status == "passed", signature.message, path)
    structure = _der_seal_check(parsed, trusted, parsed.signer_cert)
    report.add(authenticity, "seal structure", structure.status == "passed", structure.message, path)
    if parsed.timestamp is not None:  # the RFC 3161 stamp over the signature value, checked against the package's CA
        stamp = timestamps.check(parsed.timestamp, parsed.signature, roots=trusted.roots, intermediates=trusted.intermediates)
        report.add(authenticity, "seal signature time stamp", stamp.ok, stamp.message, path)
    at = parsed.time_info or cert.not_valid_before_utc
    chain, _ = chain_check(cert, trusted, at)
    report.add(authenticity, "seal chain", chain.status == "passed", chain.message, f"data/{ca_file}")
    if held is None:
        return
    own_seal = parsed.seal.der == payload.get(SEAL_FILE)
    report.add(
        integrity,
        "seal",
        own_seal,
        f"the seal inside the signature is {SEAL_FILE}" if own_seal else f"the seal inside the signature is not {SEAL_FILE}",
        f"data/{SEAL_FILE}",
    )
    own_cert = cert == held
    report.add(
        integrity,
        "seal certificate",
        own_cert,
        f"the signer's certificate is the one in {CERT_FILE}"
        if own_cert
        else f"the signer's certificate is not the one in {CERT_FILE}",
        f"data/{CERT_FILE}",
    )


def _check_ofd(payload: dict[str, bytes], use: dict[str, Any], report: archive.Report) -> None:
    """A sealed OFD from the package alone: the use record's hash is the OFD's; each seal signature's references
    (their SM3 CheckValues), the DER seal signature over its Signature.xml, the seal file beside it, and the checks
    of a detached seal signature (its value, its seal, its chain to the package's CA)."""
    integrity, authenticity = archive.Property.INTEGRITY, archive.Property.AUTHENTICITY
    path = f"data/{OFD_FILE}"
    data = payload[OFD_FILE]
    same = use.get("document_hash") == hashlib.sha256(data).hexdigest()
    report.add(
        integrity,
        "use record hash",
        same,
        f"the use record's document_hash is the SHA-256 of {OFD_FILE}"
        if same
        else f"the use record's document_hash is not the SHA-256 of {OFD_FILE}",
        f"data/{USE_FILE}",
    )
    try:
        trusted, held = _package_trust(payload)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(authenticity, "seal", False, f"the package's certificates cannot be read: {exc}", path)
        return
    _check_ofd_signatures(payload, OFD_FILE, trusted, held, report, use=use)


def trusted_ca_pem(db: Session) -> dict[str, list[str]]:
    """The hub CA certificates of both chains, current and retired (PEM): what a package's seals chain to."""
    roots, intermediates = authority.trusted_certificates(db)
    return {"roots": [_pem(c) for c in roots], "intermediates": [_pem(c) for c in intermediates]}


def check_ofd_copy(payload: dict[str, bytes], ofd_file: str, ca_file: str, report: archive.Report) -> None:
    """A sealed OFD that another record's package holds (a certificate version's copy), from the package alone:
    each seal signature's references, its DER over Signature.xml, its seal file, the signature value, the seal's
    maker, its time stamp and its chain to the CA certificates in `ca_file` ({"roots": [PEM], "intermediates": [PEM]})."""
    try:
        ca = json.loads(payload[ca_file])
        trusted = Trust(
            roots=[x509.load_pem_x509_certificate(p.encode()) for p in ca["roots"]],
            intermediates=[x509.load_pem_x509_certificate(p.encode()) for p in ca["intermediates"]],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        report.add(archive.Property.AUTHENTICITY, "seal", False, f"{ca_file} cannot be read: {exc}", f"data/{ca_file}")
        return
    _check_ofd_signatures(payload, ofd_file, trusted, None, report, use=None, ca_file=ca_file)


def _check_ofd_signatures(
    payload: dict[str, bytes],
    ofd_file: str,
    trusted: Trust,
    held: x509.Certificate | None,
    report: archive.Report,
    *,
    use: dict[str, Any] | None,
    ca_file: str = CA_FILE,
) -> None:
    integrity, authenticity = archive.Property.INTEGRITY, archive.Property.AUTHENTICITY
    path = f"data/{ofd_file}"
    try:
        package = ofd.Package(payload[ofd_file])
        document = ofd.read_document(package)
    except (ofd.OfdError, KeyError) as exc:
        report.add(authenticity, "seal", False, f"{ofd_file} cannot be read: {exc}", path)
        return
    if not document.signatures:
        report.add(authenticity, "seal", False, f"{ofd_file} carries no seal signature", path)
        return
    for sig in document.signatures:
        where = f"{ofd_file} {sig.path or sig.id}"
        if sig.problem is not None or sig.signed_value is None:
            report.add(authenticity, "seal", False, f"{where}: {sig.problem or 'no seal signature'}", path)
            continue
        status, message, _ = ofd.reference_findings(package, sig)
        report.add(integrity, "ofd references", status == "passed", f"{where}: {message}", path)
        try:
            parsed = sesder.parse_signature(sig.signed_value)
            cert = x509.load_der_x509_certificate(parsed.signer_cert)
        except (sesder.DerError, ValueError) as exc:
            report.add(authenticity, "seal signature", False, f"{where}: the seal signature cannot be read: {exc}", path)
            continue
        alg = keys.ALG_FOR_OID.get(parsed.alg) or keys.SM2
        over_xml = parsed.data_hash == keys.digest(alg, sig.xml)
        report.add(
            integrity,
            "ofd signature file",
            over_xml,
            f"{where}: the seal signature's dataHash is the {keys.HASH_NAME[alg]} of Signature.xml"
            if over_xml
            else f"{where}: Signature.xml was changed after sealing (its hash differs from the seal signature's dataHash)",
            path,
        )
        seal_file_ok, seal_file_message = _ofd_seal_file(package, sig, parsed)
        report.add(integrity, "ofd seal file", seal_file_ok, f"{where}: {seal_file_message}", path)
        if sig is document.signatures[0] and use is not None:
            _check_use_signature_hash(parsed, use, report)
        _check_seal_signature(parsed, cert, held, trusted, payload, report, path, ca_file)


def _ofd_seal_file(package: ofd.Package, sig: ofd.OfdSignature, parsed: sesder.ParsedSignature) -> tuple[bool, str]:
    """The seal file Signature.xml names (e.g. Seal.esl), when it names one, is the seal inside the seal signature."""
    if sig.seal_path is None:
        return True, "Signature.xml names no seal file; the seal is the one inside the seal signature"
    if not package.has(sig.seal_path):
        return False, f"the seal file {sig.seal_path} that Signature.xml names is not in the OFD"
    try:
        same = package.read(sig.seal_path) == parsed.seal.der
    except ofd.OfdError as exc:
        return False, f"the seal file {sig.seal_path} cannot be read: {exc}"
    if not same:
        return False, f"the seal file {sig.seal_path} is not the seal inside the seal signature"
    return True, f"the seal file {sig.seal_path} is the seal inside the seal signature"


PROFILES: dict[str, archive.Profile] = {RECORD_CLASS: check_sealed_document}
