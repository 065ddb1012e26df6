"""Archive packages' one surface: BagIt bags (`bagit.py`), 四性检测 (`checks.py`), writing packages with their
audit-log evidence and reading them back (`packages.py`), retention, legal holds, disposal lists and tombstones
(`retention.py`), transfers to an archive system and their check on receipt (`transfer.py`); `repository.py`
holds every query.

A record class (certificate versions in certhub) builds its `Contents` and its `Profile` of checks; the
composition root passes the profiles to the check command and endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from ops.archive.bagit import (
    ALGORITHMS,
    MAX_PACKAGE_BYTES,
    TIMESTAMP,
    Bag,
    digest,
    read_dir,
    read_zip,
    stamped_digest,
    with_timestamp,
    write_bag,
)
from ops.archive.checks import (
    PACKAGE_METADATA,
    Finding,
    Profile,
    Property,
    Report,
    Trust,
    audit_records,
    check_bag,
    check_described_files,
    check_pdf_seals,
    check_required_elements,
    load_json,
    parse_as_of,
)
from ops.archive.models import ArchiveHold, ArchivePackage, ArchiveTombstone, DisposalList
from ops.archive.packages import (
    Contents,
    StampRun,
    audit_evidence,
    build,
    package_bytes,
    packages,
    stamp_awaiting,
    store_each,
    store_package,
)
from ops.archive.retention import (
    RecordDue,
    add_years,
    approve_disposal,
    due_records,
    get_disposal,
    holds,
    place_hold,
    propose_disposal,
    record_due,
    release_hold,
    tombstones,
)
from ops.archive.transfer import Transfer, TransferReport, build_transfer, check_transfer_bag, check_transfer_bytes

__all__ = [
    "ALGORITHMS",
    "MAX_PACKAGE_BYTES",
    "PACKAGE_METADATA",
    "TIMESTAMP",
    "ArchiveHold",
    "ArchivePackage",
    "ArchiveTombstone",
    "Bag",
    "Contents",
    "DisposalList",
    "Finding",
    "Profile",
    "Property",
    "RecordDue",
    "Report",
    "StampRun",
    "Transfer",
    "TransferReport",
    "Trust",
    "add_years",
    "approve_disposal",
    "audit_evidence",
    "audit_records",
    "build",
    "build_transfer",
    "check_bag",
    "check_bytes",
    "check_described_files",
    "check_path",
    "check_pdf_seals",
    "check_required_elements",
    "check_transfer_bag",
    "check_transfer_bytes",
    "check_transfer_path",
    "digest",
    "due_records",
    "get_disposal",
    "holds",
    "load_json",
    "package_bytes",
    "packages",
    "parse_as_of",
    "place_hold",
    "propose_disposal",
    "read_dir",
    "read_zip",
    "record_due",
    "release_hold",
    "stamp_awaiting",
    "stamped_digest",
    "store_each",
    "store_package",
    "tombstones",
    "with_timestamp",
    "write_bag",
]


def check_bytes(
    data: bytes, profiles: Mapping[str, Profile], trust: Trust | None = None, as_of: datetime | None = None
) -> Report:
    """四性检测 of a zipped package (with `as_of`: whether its time-stamp evidence held then, and which stamp)."""
    return check_bag(read_zip(data), profiles, trust, as_of)


def check_path(path: Path, profiles: Mapping[str, Profile], trust: Trust | None = None, as_of: datetime | None = None) -> Report:
    """四性检测 of a package file (.zip) or an unpacked bag directory."""
    if path.is_dir():
        return check_bag(read_dir(path), profiles, trust, as_of)
    return check_bytes(path.read_bytes(), profiles, trust, as_of)


def check_transfer_path(path: Path, profiles: Mapping[str, Profile], trust: Trust | None = None) -> TransferReport:
    """A transfer's checks, from its zip or its unpacked directory."""
    if path.is_dir():
        return check_transfer_bag(read_dir(path), profiles, trust)
    return check_transfer_bytes(path.read_bytes(), profiles, trust)
