"""电子档案: the archive package of a sharing-request dossier (共享申请案卷), and the checks of 四性检测 particular to it.

A package (a BagIt bag, see `ops.archive`) holds the request as filed (`original/request.json`), every step of
its handling with the decision, its reason and the person or system who took it (`original/decisions.json`), the
grant it led to (`original/grant.json`, when one was issued), a summary of the grant's data accesses (counts and
rows per day, purpose, kind and outcome: never the data; `original/access-summary.json`), the DA/T 46 metadata
(`metadata/dat46.json`) and the audit-log evidence of the request that the platform adds.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy.orm import Session

from exchange import repository
from exchange.models import OPEN_STATES, Grant, SharingRequest
from ops.archive import service as archive
from ops.auth import Principal, Role
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import Conflict, NotFound
from ops.storage import ObjectStore

RECORD_CLASS = "sharing_dossier"
REQUEST_FILE = "original/request.json"
DECISIONS_FILE = "original/decisions.json"
GRANT_FILE = "original/grant.json"
ACCESS_FILE = "original/access-summary.json"
DAT46_FILE = "metadata/dat46.json"
REQUIRED_ELEMENTS = ("聚合层次", "电子文件号", "题名", "责任者", "日期", "保管期限", "密级", "计算机文件", "业务行为")
# The step that decided the request: the platform's review, the provider's decision, coordination.
DECISIONS = {
    "accept_direct", "accept_to_provider", "refuse", "provide", "approve", "reject", "withdraw", "escalate",
    "coordinate_uphold", "coordinate_grant",
}  # fmt: skip


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=2, sort_keys=True, default=_plain).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).isoformat()


def archivable(db: Session, who: Principal, request_id: str) -> SharingRequest:
    """A decided request the caller may archive: the consumer's or provider's staff or system, or the platform."""
    if Role.PLATFORM_ADMIN in who.roles or (
        who.department_id is not None and who.roles & {Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM}
    ):
        req = repository.archivable_request(db, who, request_id)
    else:
        req = None
    if req is None:
        raise NotFound(f"sharing request {request_id} not found")
    return req


def retention_from(req: SharingRequest, grant: Grant | None) -> datetime | None:
    """When the dossier's retention starts: the grant's end (revocation or expiry), else the final decision."""
    if grant is not None:
        return grant.revoked_at or grant.expires_at
    return req.decided_at or req.updated_at


def dossier_contents(db: Session, req: SharingRequest, *, settings: Settings) -> archive.Contents:
    """The files and metadata of one request's dossier."""
    if req.state in OPEN_STATES:
        raise Conflict(f"sharing request {req.id} is still open ({req.state}): archive its dossier once it is decided")
    grant = repository.grant_of_request(db, req.id)
    names = repository.department_names(db, {req.consumer_department_id, req.provider_department_id})
    request_doc = {
        "id": req.id,
        "consumer": {"id": req.consumer_department_id, "name": names.get(req.consumer_department_id)},
        "provider": {"id": req.provider_department_id, "name": names.get(req.provider_department_id)},
        "resource": {
            "id": req.resource_id,
            "code": req.resource_code,
            "name": req.resource_name,
            "version": req.resource_version,
        },
        "sharing_type": req.sharing_type,
        "items": req.items,
        "clear_items": req.clear_items,
        "purpose": req.purpose,
        "scenario": req.scenario,
        "legal_basis": req.legal_basis,
        "valid_from": req.valid_from,
        "valid_until": req.valid_until,
        "state": req.state,
        "route": req.route,
        "filed_by": req.filed_by,
        "filed_at": req.filed_at,
        "decided_at": req.decided_at,
        "reason": req.reason,
        "grant_id": req.grant_id,
    }
    decisions = [
        {
            "at": t.at,
            "action": t.action,
            "from_state": t.from_state,
            "to_state": t.to_state,
            "by": t.actor,
            "role": t.actor_role,
            "department_id": t.actor_department_id,
            "reason": t.reason,
            "detail": t.detail,
        }
        for t in repository.history(db, req.id)
    ]
    files: dict[str, bytes] = {REQUEST_FILE: _json(request_doc), DECISIONS_FILE: _json(decisions)}
    if grant is not None:
        files[GRANT_FILE] = _json(
            {
                "id": grant.id,
                "request_id": grant.request_id,
                "resource_name": grant.resource_name,
                "fields": grant.fields,
                "clear_fields": grant.clear_fields,
                "masked_fields": grant.masked_fields,
                "purpose": grant.purpose,
                "valid_from": grant.valid_from,
                "valid_until": grant.valid_until,
                "expires_at": grant.expires_at,
                "rate_limit_per_minute": grant.rate_limit_per_minute,
                "allows_export": grant.allows_export,
                "region_scope": grant.region_scope,
                "state": grant.state,
                "revoked_at": grant.revoked_at,
                "revoked_by": grant.revoked_by,
                "revoke_reason": grant.revoke_reason,
            }
        )
        summary = repository.access_summary(db, grant.id)
        files[ACCESS_FILE] = _json(
            {
                "grant_id": grant.id,
                "note": "counts of the grant's data accesses per day (UTC), purpose, kind and outcome; never the data",
                "days": [
                    {"day": d, "purpose": p, "kind": k, "outcome": o, "accesses": n, "rows": r} for d, p, k, o, n, r in summary
                ],
                "total_accesses": sum(row[4] for row in summary),
            }
        )
    computer_files = [
        {
            "计算机文件名": name,
            "计算机文件大小": len(data),
            "格式名称": "JSON (RFC 8259)",
            "SHA-256": archive.digest("sha256", data),
            "SM3": archive.digest("sm3", data),
        }
        for name, data in sorted(files.items())
    ]
    years = settings.archive_retention.get(RECORD_CLASS)
    final = next((d for d in reversed(decisions) if d["action"] in DECISIONS), None)
    dat46 = {
        "聚合层次": "卷",
        "来源": {"立档单位名称": names.get(req.provider_department_id), "立档单位代码": req.provider_department_id},
        "电子文件号": req.id,
        "题名": f"{names.get(req.consumer_department_id)}申请共享{req.resource_name}",
        "责任者": names.get(req.consumer_department_id),
        "日期": _iso(req.filed_at),
        "保管期限": f"{years}年" if years else "永久",
        "密级": "非密",
        "语种": "汉语",
        "计算机文件": computer_files,
        "业务行为": {
            "业务状态": req.state,
            "行为": final["action"] if final else req.state,
            "行为时间": _iso(final["at"]) if final else _iso(req.decided_at),
            "行为依据": req.legal_basis,
            "行为描述": final["reason"] if final and final["reason"] else req.purpose,
        },
        "关联": {"数据资源": req.resource_code, "授权": req.grant_id},
    }
    files[DAT46_FILE] = _json(dat46)
    return archive.Contents(
        record_class=RECORD_CLASS,
        identifier=req.id,
        department_id=req.provider_department_id,
        files=files,
        info={"Internal-Sender-Description": f"共享申请案卷 {req.resource_name} {req.id}"},
        audit_object=("sharing_request", req.id),
        retention_from=retention_from(req, grant),
    )


def archive_request(
    db: Session, *, who: Principal, storage: ObjectStore, settings: Settings, request_id: str
) -> archive.ArchivePackage:
    """Write the archive package of one request's dossier to object storage."""
    req = archivable(db, who, request_id)
    contents = dossier_contents(db, req, settings=settings)
    return archive.store_package(db, who=who, storage=storage, contents=contents, organisation=settings.public_url)


def archive_requests_between(
    db: Session,
    *,
    who: Principal,
    storage: ObjectStore,
    settings: Settings,
    vault: KeyVault,  # unused: the range command passes it to every record class
    since: datetime,
    until: datetime,
) -> tuple[list[archive.ArchivePackage], list[tuple[str, str]]]:
    """Archive the dossier of every decided request filed in [since, until) the caller reads; those left out, with why."""
    del vault
    return archive.store_each(
        repository.requests_filed_between(db, who, since=since, until=until),
        lambda request_id: archive_request(db, who=who, storage=storage, settings=settings, request_id=request_id),
    )


def request_packages(db: Session, *, who: Principal, request_id: str) -> list[archive.ArchivePackage]:
    archivable(db, who, request_id)
    return archive.packages(db, record_class=RECORD_CLASS, record_id=request_id)


def request_package(
    db: Session, *, who: Principal, storage: ObjectStore, request_id: str, package_id: str
) -> tuple[archive.ArchivePackage, bytes]:
    archivable(db, who, request_id)
    return archive.package_bytes(
        db, who=who, storage=storage, record_class=RECORD_CLASS, record_id=request_id, package_id=package_id
    )


# ---- 四性检测: the checks particular to a dossier ----------------------------------------------------


def check_dossier(bag: archive.Bag, report: archive.Report) -> None:
    """Metadata complete and consistent with the files; the request, its decisions and its grant agree with one
    another and with the package's record; the audit records are about this request."""
    integrity, authenticity = archive.Property.INTEGRITY, archive.Property.AUTHENTICITY
    archive.check_required_elements(bag, report, metadata=DAT46_FILE, required=REQUIRED_ELEMENTS)
    archive.check_described_files(bag, report, metadata=DAT46_FILE)
    req = archive.load_json(bag, REQUEST_FILE)
    decisions = archive.load_json(bag, DECISIONS_FILE)
    if not isinstance(req, dict) or not isinstance(decisions, list):
        report.add(integrity, "dossier", False, f"data/{REQUEST_FILE} or data/{DECISIONS_FILE} is missing or malformed")
        return
    same = req.get("id") == report.identifier
    report.add(
        integrity,
        "dossier identifier",
        same,
        "the request names the package's record"
        if same
        else f"the request is {req.get('id')}, the package is of {report.identifier}",
        f"data/{REQUEST_FILE}",
    )
    last = decisions[-1].get("to_state") if decisions and isinstance(decisions[-1], dict) else None
    report.add(
        integrity,
        "dossier decisions",
        last == req.get("state"),
        f"the last step leads to the request's state {req.get('state')}"
        if last == req.get("state")
        else f"the last step leads to {last}, the request says {req.get('state')}",
        f"data/{DECISIONS_FILE}",
    )
    grant = archive.load_json(bag, GRANT_FILE)
    if req.get("grant_id") is not None or grant is not None:
        agree = isinstance(grant, dict) and grant.get("id") == req.get("grant_id") and grant.get("request_id") == req.get("id")
        report.add(
            integrity,
            "dossier grant",
            agree,
            "the grant is the request's" if agree else "the grant in the package is not the one the request names",
            f"data/{GRANT_FILE}",
        )
    others = [
        str(r.get("id"))
        for r in archive.audit_records(bag)
        if r.get("object_type") != "sharing_request" or r.get("object_id") != report.identifier
    ]
    report.add(
        authenticity,
        "audit records concern the record",
        not others,
        f"audit records {', '.join(others)} are about another object"
        if others
        else f"every audit record is about request {report.identifier}",
        "data/evidence/audit-inclusion.json",
    )


PROFILES: dict[str, archive.Profile] = {RECORD_CLASS: check_dossier}
