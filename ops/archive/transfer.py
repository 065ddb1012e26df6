"""Transfer (移交): a set of packages exported as one BagIt bag for an archive system, and its check on receipt.

The transfer is a bag whose payload is the packages' zips (`data/packages/<class>/<name>.zip`) and a manifest
(`data/transfer-manifest.json`) listing each package with its record, its size, SHA-256 and SM3. The receiver
checks the outer bag's fixity (bagit-python does too), that the manifest and the zips agree, and every package
with 四性检测 on its own (`govhub archive check-transfer`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from ops import audit
from ops.archive import repository
from ops.archive.bagit import MAX_PACKAGE_BYTES, Bag, digest, read_zip, write_bag
from ops.archive.checks import Profile, Property, Report, Trust, check_bag, check_fixity
from ops.archive.models import ArchivePackage
from ops.auth import Principal, Role
from ops.errors import Forbidden, HubError, Invalid, NotFound
from ops.storage import ObjectStore, get_bytes

MANIFEST = "transfer-manifest.json"
TRANSFER_CLASS = "transfer"
MAX_TRANSFER_PACKAGES = 10_000


@dataclass(frozen=True)
class Transfer:
    data: bytes  # the zipped bag
    file_name: str
    packages: list[ArchivePackage]


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d")


def build_transfer(
    db: Session, *, who: Principal, storage: ObjectStore, record_class: str, since: datetime, until: datetime, organisation: str
) -> Transfer:
    """The packages of `record_class` written in [since, until) (not disposed of), as one bag (the platform)."""
    if Role.PLATFORM_ADMIN not in who.roles:
        raise Forbidden("a transfer needs the platform administrator role")
    if until <= since:
        raise Invalid("until must be after since", errors=[{"field": "until", "message": "after since"}])
    packages = repository.packages_between(db, record_class=record_class, since=since, until=until)
    if not packages:
        raise NotFound(f"no archive package of {record_class} was written between {since.date()} and {until.date()}")
    if len(packages) > MAX_TRANSFER_PACKAGES:
        raise Invalid(f"{len(packages)} packages: a transfer holds at most {MAX_TRANSFER_PACKAGES}; choose a shorter period")
    payload: dict[str, bytes] = {}
    listed = []
    total = sum(p.size for p in packages)
    if total > MAX_PACKAGE_BYTES:
        raise Invalid(
            f"the {len(packages)} packages come to {total} bytes: a transfer holds at most {MAX_PACKAGE_BYTES} "
            "(what a receiver reads whole); choose a shorter period"
        )
    for package in packages:
        data = get_bytes(storage, package.object_key)
        name = f"packages/{record_class}/{package.file_name.removesuffix('.zip')}-{package.id[:8]}.zip"
        payload[name] = data
        listed.append(
            {
                "file": name,
                "package_id": package.id,
                "record_class": package.record_class,
                "record_id": package.record_id,
                "size": len(data),
                "sha256": digest("sha256", data),
                "sm3": digest("sm3", data),
                "written_at": package.created_at.astimezone(UTC).isoformat(),
            }
        )
    manifest = {
        "record_class": record_class,
        "since": since.astimezone(UTC).isoformat(),
        "until": until.astimezone(UTC).isoformat(),
        "source": organisation,
        "packages": listed,
    }
    payload[MANIFEST] = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
    root = f"transfer-{record_class}-{_day(since)}-{_day(until)}"
    info = {
        "Source-Organization": organisation,
        "External-Description": f"电子档案移交: {len(packages)} {record_class} package(s)",
        "Bag-Count": "1 of 1",
    }
    data = write_bag(payload, info=info, root=root)
    audit.record(
        db, actor=who, action="archive.transfer", object_type="archive_transfer", object_id=root,
        purpose="电子档案移交", detail={"packages": len(packages), "sha256": digest("sha256", data)},
    )  # fmt: skip
    return Transfer(data=data, file_name=f"{root}.zip", packages=packages)


@dataclass
class TransferReport:
    """The outer bag's checks, the manifest against the zips, and each package's own report."""

    transfer: Report = field(default_factory=Report)
    packages: list[tuple[str, Report | None, str | None]] = field(default_factory=list)  # (file, report, refusal)

    @property
    def ok(self) -> bool:
        return self.transfer.ok and all(r is not None and r.ok for _, r, _ in self.packages)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "findings": [f.as_dict() for f in self.transfer.findings],
            "packages": [
                {"file": name, "ok": bool(r and r.ok), "refused": refusal, "report": r.as_dict() if r else None}
                for name, r, refusal in self.packages
            ],
        }


def check_transfer_bag(bag: Bag, profiles: Mapping[str, Profile], trust: Trust | None = None) -> TransferReport:
    report = TransferReport()
    outer = report.transfer
    outer.record_class = TRANSFER_CLASS
    check_fixity(bag, outer)
    raw = bag.files.get(f"data/{MANIFEST}")
    try:
        manifest = json.loads(raw) if raw is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        manifest = None
    entries = manifest.get("packages") if isinstance(manifest, dict) else None
    if not isinstance(entries, list):
        outer.add(Property.INTEGRITY, "transfer manifest", False, f"data/{MANIFEST} is missing or lists no packages")
        return report
    payload = bag.payload()
    zips = {name for name in payload if name.startswith("packages/")}
    listed: set[str] = set()
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            outer.add(Property.INTEGRITY, "transfer manifest", False, f"an entry of data/{MANIFEST} names no file")
            continue
        name = entry["file"]
        listed.add(name)
        data = payload.get(name)
        path = f"data/{name}"
        if data is None:
            outer.add(Property.INTEGRITY, "transfer manifest", False, f"{MANIFEST} lists {name}, absent from the transfer", path)
            continue
        wrong = [
            k
            for k, v in (("size", len(data)), ("sha256", digest("sha256", data)), ("sm3", digest("sm3", data)))
            if entry.get(k) != v
        ]
        outer.add(
            Property.INTEGRITY,
            "transfer manifest",
            not wrong,
            f"the manifest's {', '.join(wrong)} of {name} do not match the file" if wrong else f"{name} matches the manifest",
            path,
        )
        try:
            inner = check_bag(read_zip(data), profiles, trust)
        except HubError as exc:
            report.packages.append((name, None, exc.detail))
            continue
        if inner.identifier != entry.get("record_id"):
            inner.add(
                Property.INTEGRITY, "transfer manifest", False,
                f"the manifest says {entry.get('record_id')}, the package is of {inner.identifier}", path,
            )  # fmt: skip
        report.packages.append((name, inner, None))
    for name in sorted(zips - listed):
        outer.add(
            Property.INTEGRITY, "transfer manifest", False, f"{name} is in the transfer but not in {MANIFEST}", f"data/{name}"
        )
    return report


def check_transfer_bytes(data: bytes, profiles: Mapping[str, Profile], trust: Trust | None = None) -> TransferReport:
    return check_transfer_bag(read_zip(data), profiles, trust)
