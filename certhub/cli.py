"""Command-line commands of the certhub domain (registered by govhub.cli)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session

from certhub import repository, service
from ops.archive import cli as archive_cli
from ops.auth import Principal, Role
from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings
from ops.crypto import KeyVault
from ops.errors import NotFound
from ops.identity import repository as departments
from ops.storage import make_store


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this domain's commands to `govhub`."""
    certhub = commands.add_parser("certhub", help="electronic certificates (电子证照)")
    sub = certhub.add_subparsers(dest="sub", required=True)

    types = sub.add_parser("types", help="the certificate catalogue (证照目录)")
    types_sub = types.add_subparsers(dest="types_sub", required=True)
    listing = types_sub.add_parser("list", help="list the certificate types")
    listing.set_defaults(func=with_db(_list_types))
    examples = types_sub.add_parser("load-examples", help="load the shipped example types (居民身份证, 营业执照, …)")
    examples.add_argument(
        "--allow", action="append", default=[], metavar="TYPE=DEPT_CODE", help="let a department issue a type (repeatable)"
    )
    examples.set_defaults(func=with_db(_load_examples))
    load = types_sub.add_parser("load", help='load type definitions from a JSON file ({"types": [...]})')
    load.add_argument("file", type=Path, help="the JSON file of type definitions")
    load.set_defaults(func=with_db(_load_file))
    allow = types_sub.add_parser("allow", help="let a department issue a type")
    allow.add_argument("type_code", help="the certificate type's code (see `govhub certhub types list`)")
    allow.add_argument("department_code", help="the department's 统一社会信用代码")
    allow.set_defaults(func=with_db(_allow))

    bulk = sub.add_parser(
        "bulk-issue",
        help="归集: issue existing certificates from a CSV or JSON Lines file",
        description="Each valid row is issued; invalid rows are listed with the reason and leave nothing behind. "
        "CSV columns: holder_code, holder_kind, holder_name, number, valid_from, valid_until, idempotency_key, "
        "and one column per face field. JSON Lines: one issue request per line.",
    )
    bulk.add_argument("file", type=Path, help="the certificates to issue: CSV or JSON Lines, one per row")
    bulk.add_argument("--department", required=True, help="the issuing department's 统一社会信用代码")
    bulk.add_argument("--type", dest="type_code", help="the certificate type code (unless a column gives it)")
    bulk.add_argument("--format", choices=["csv", "jsonl"], help="default: from the file name")
    bulk.add_argument("--pdf", action="store_true", help="also render and seal the PDF copies")
    bulk.add_argument("--report", type=Path, help="write the per-row error report (JSON) here")
    bulk.add_argument("--quiet", action="store_true", help="no progress bar")
    bulk.set_defaults(func=with_db(_bulk))

    archive = sub.add_parser(
        "archive",
        help="归档: write the archive packages of the certificate versions issued in a period",
        description="Signs an audit-log checkpoint first, then writes one BagIt package per certificate version "
        "issued in [--since, --until) to object storage (and, with --out, a copy of each zip to a directory). "
        "Check a package with `govhub archive check`.",
    )
    archive_cli.add_range_arguments(archive, day="issue date", department="this issuing department's")
    archive.set_defaults(func=with_db(_archive))

    objections = sub.add_parser("objections", help="objection handling (异议处理)")
    objections_sub = objections.add_subparsers(dest="objections_sub", required=True)
    check = objections_sub.add_parser("check-deadlines", help="flag open objections past their deadline")
    check.set_defaults(func=with_db(_check_deadlines))


def _list_types(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    for row in repository.list_types(db, include_inactive=True):
        state = "" if row.active else "  (inactive)"
        print(f"{row.code}  {row.name}  holder={row.holder_kind}  issuers={','.join(row.issuer_codes) or '-'}{state}")


def _parse_allow(values: list[str]) -> dict[str, list[str]]:
    allowed: dict[str, list[str]] = {}
    for value in values:
        type_code, _, department = value.partition("=")
        if not department:
            raise SystemExit(f"govhub: --allow wants TYPE=DEPT_CODE, got {value!r}")
        allowed.setdefault(type_code.strip().upper(), []).append(department.strip().upper())
    return allowed


def _load_examples(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    loaded = service.load_types(db, who=CLI_ADMIN, definitions=service.example_types(), issuer_codes=_parse_allow(args.allow))
    for type_code, codes in _parse_allow(args.allow).items():
        for code in codes:
            service.allow_issuer(db, who=CLI_ADMIN, type_code=type_code, department_code=code)
    print(f"loaded {len(loaded)} example type(s): {', '.join(loaded) or 'none new'}")


def _load_file(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    try:
        definitions = json.loads(args.file.read_text(encoding="utf-8"))["types"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemExit(f'govhub: cannot read {args.file}: {exc} (expected {{"types": [...]}})') from None
    loaded = service.load_types(db, who=CLI_ADMIN, definitions=definitions)
    print(f"loaded {len(loaded)} type(s): {', '.join(loaded) or 'none new'}")


def _allow(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    row = service.allow_issuer(db, who=CLI_ADMIN, type_code=args.type_code, department_code=args.department_code.upper())
    print(f"{row.code} {row.name} may now be issued by: {', '.join(row.issuer_codes)}")


class ProgressBar:
    """A one-line progress bar on a terminal stream: done/total, issued, failed, rate."""

    def __init__(self, total: int, stream: TextIO, *, width: int = 30) -> None:
        self.total, self.stream, self.width = max(total, 1), stream, width
        self.started = time.monotonic()
        self.last = 0.0

    def update(self, done: int, issued: int) -> None:
        now = time.monotonic()
        if done < self.total and now - self.last < 0.1:
            return
        self.last = now
        filled = int(self.width * done / self.total)
        rate = done / max(now - self.started, 1e-6)
        bar = "#" * filled + "-" * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} issued {issued} failed {done - issued} ({rate:.0f} rows/s)")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _archive(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    archive_cli.run_range(db, settings, args, service.archive_range)


def _bulk(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    department = departments.department_by_code(db, args.department.strip().upper())
    if department is None:
        raise NotFound(f"no department with code {args.department}")
    fmt = args.format or ("jsonl" if args.file.suffix in (".jsonl", ".ndjson", ".json") else "csv")
    try:
        lines = args.file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SystemExit(f"govhub: cannot read {args.file}: {exc}") from None
    who = Principal(
        subject="cli",
        roles=frozenset({Role.DEPARTMENT_SYSTEM}),
        department_id=department.id,
        department_code=department.code,
    )
    total = sum(1 for line in lines if line.strip()) - (1 if fmt == "csv" else 0)
    bar = None if args.quiet else ProgressBar(total, sys.stderr)
    ctx = service.IssueContext(vault=KeyVault.from_settings(settings), settings=settings, storage=make_store(settings))
    report = service.bulk_issue(
        db,
        who=who,
        ctx=ctx,
        rows=service.parse_rows(iter(lines), fmt=fmt, type_code=args.type_code, render_pdf=args.pdf),
        progress=bar.update if bar else None,
    )
    if bar:
        bar.close()
    print(
        f"{report.total} row(s): {report.issued} issued, {report.replayed} replayed "
        f"(idempotency key seen before: the earlier certificate), {report.failed} failed"
    )
    for error in report.errors[:20]:
        print(f"  row {error.row}: {error.message}")
    if report.failed > 20:
        print(f"  … and {report.failed - 20} more (see --report)")
    if args.report:
        args.report.write_text(report.model_dump_json(indent=1), encoding="utf-8")
        print(f"report written to {args.report}")


def _check_deadlines(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    print(f"{service.mark_overdue_objections(db)} objection(s) newly overdue")
