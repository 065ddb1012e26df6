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
    check.add_argument(
        "--trust",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="keys known from outside the package (repeatable): the hub's /certhub/.well-known/jwks.json and the page "
        "of /audit/log/keys; the package's keys must then be among them",
    )

    def run(args: argparse.Namespace) -> None:
        if not args.package.exists():
            raise SystemExit(f"govhub: {args.package} does not exist")
        trust = None
        if args.trust:
            try:
                trust = service.Trust.from_documents([json.loads(p.read_text(encoding="utf-8")) for p in args.trust])
            except (OSError, ValueError) as exc:
                raise SystemExit(f"govhub: cannot read the trust files: {exc}") from None
        try:
            report = service.check_path(args.package, profiles, trust)
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
