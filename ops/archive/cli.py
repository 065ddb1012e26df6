"""`govhub archive check`: 四性检测 of a package from the package alone (no database, no settings needed)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

from ops.archive import service
from ops.errors import HubError


def register(commands: argparse._SubParsersAction, profiles: Mapping[str, service.Profile]) -> None:  # type: ignore[type-arg]
    """Add `govhub archive` to the command line; `profiles` are the record classes' own checks."""
    archive = commands.add_parser("archive", help="electronic archives (电子档案): archive packages")
    sub = archive.add_subparsers(dest="sub", required=True)
    check = sub.add_parser(
        "check",
        help="四性检测 of a package (zip or unpacked directory): authenticity, integrity, usability, security",
        description="Checks the package on its own, without the hub's database. Prints one JSON report; "
        "the exit status is 0 when every check passes, 1 otherwise.",
    )
    check.add_argument("package", type=Path, help="PACKAGE.zip or the bag's directory")
    check.add_argument("--summary", action="store_true", help="print only the failing checks, one a line")

    def run(args: argparse.Namespace) -> None:
        if not args.package.exists():
            raise SystemExit(f"govhub: {args.package} does not exist")
        try:
            report = service.check_path(args.package, profiles)
        except HubError as exc:
            raise SystemExit(f"govhub: {exc.detail}") from None
        if args.summary:
            for finding in report.failures():
                print(f"FAIL {finding.property} {finding.check}: {finding.reason}")
            print("PASS" if report.ok else f"FAILED: {len(report.failures())} check(s)")
        else:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        if not report.ok:
            raise SystemExit(1)

    check.set_defaults(func=run)
