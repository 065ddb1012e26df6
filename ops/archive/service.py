"""Archive packages' one surface: BagIt bags (`bagit.py`), 四性检测 (`checks.py`), writing packages with their
audit-log evidence and reading them back (`packages.py`); `repository.py` holds every query.

A record class (certificate versions in certhub) builds its `Contents` and its `Profile` of checks; the
composition root passes the profiles to the check command and endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ops.archive.bagit import ALGORITHMS, MAX_PACKAGE_BYTES, Bag, digest, read_dir, read_zip, write_bag
from ops.archive.checks import PACKAGE_METADATA, Finding, Profile, Property, Report, Trust, check_bag, load_json
from ops.archive.models import ArchivePackage
from ops.archive.packages import Contents, audit_evidence, build, package_bytes, packages, store_package

__all__ = [
    "ALGORITHMS",
    "MAX_PACKAGE_BYTES",
    "PACKAGE_METADATA",
    "ArchivePackage",
    "Bag",
    "Contents",
    "Finding",
    "Profile",
    "Property",
    "Report",
    "Trust",
    "audit_evidence",
    "build",
    "check_bag",
    "check_bytes",
    "check_path",
    "digest",
    "load_json",
    "package_bytes",
    "packages",
    "read_dir",
    "read_zip",
    "store_package",
    "write_bag",
]


def check_bytes(data: bytes, profiles: Mapping[str, Profile], trust: Trust | None = None) -> Report:
    """四性检测 of a zipped package."""
    return check_bag(read_zip(data), profiles, trust)


def check_path(path: Path, profiles: Mapping[str, Profile], trust: Trust | None = None) -> Report:
    """四性检测 of a package file (.zip) or an unpacked bag directory."""
    if path.is_dir():
        return check_bag(read_dir(path), profiles, trust)
    return check_bytes(path.read_bytes(), profiles, trust)
