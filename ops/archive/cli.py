"""`govhub archive`: 四性检测 of a package or a transfer from the package alone (no database, no settings
needed); retention, legal holds, disposal lists, tombstones and transfers (the platform, on the database); and the
helper each record class's `archive --since --until` command uses."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from ops.archive import service
from ops.auth import Principal, Role
from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import utcnow
from ops.errors import HubError, NotFound
from ops.storage import copy_to, make_store

# A record class's range archiver: (db, who, storage, settings, vault, since, until) -> (written, skipped).
RangeArchiver = Callable[..., tuple[list[service.ArchivePackage], list[tuple[str, str]]]]


def add_range_arguments(
    parser: argparse.ArgumentParser, *, day: str = "day", department: str = "this department's records"
) -> None:
    """`--since`, `--until`, `--department`, `--out` of a record class's `archive` command; `day` and `department`
    word their help (a certificate's "issue date", "this issuing department's")."""
    parser.add_argument("--since", required=True, type=date.fromisoformat, help=f"first {day} (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", required=True, type=date.fromisoformat, help=f"day after the last {day} (YYYY-MM-DD)")
    parser.add_argument("--department", help=f"only {department} (统一社会信用代码)")
    parser.add_argument("--out", type=Path, help="also copy each package's zip into this directory")


def _day(value: date) -> datetime:
    return datetime.combine(value, datetime.min.time(), UTC)


def run_range(db: Session, settings: Settings, args: argparse.Namespace, archiver: RangeArchiver) -> None:
    """Sign an audit-log checkpoint (the packages carry inclusion proofs against it), archive every record of the
    period, print `record, sha256, size` for each, copy the zips with `--out`."""
    from ops.auditlog import service as auditlog
    from ops.identity import repository as departments

    if args.until <= args.since:
        raise SystemExit("govhub: --until must be after --since")
    who = CLI_ADMIN
    if args.department:
        department = departments.department_by_code(db, args.department.strip().upper())
        if department is None:
            raise NotFound(f"no department with code {args.department}")
        who = Principal(
            subject="cli", roles=frozenset({Role.DEPARTMENT_SYSTEM}), department_id=department.id, department_code=department.code
        )
    storage = make_store(settings)
    vault = KeyVault.from_settings(settings)
    auditlog.checkpoint_now(db, vault=vault, store=storage, force=True, grace_seconds=0)
    written, skipped = archiver(
        db, who=who, storage=storage, settings=settings, vault=vault, since=_day(args.since), until=_day(args.until)
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for package in written:
            with (args.out / package.file_name).open("wb") as out:
                copy_to(storage, package.object_key, out)
    for package in written:
        print(f"{package.record_id}\t{package.object_key}\t{package.size}")
    for identifier, reason in skipped:
        print(f"{identifier}\tskipped: {reason}", file=sys.stderr)
    print(f"{len(written)} package(s) written, {len(skipped)} skipped", file=sys.stderr)


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

    check.add_argument(
        "--as-of",
        metavar="TIME",
        help="a past time (ISO 8601 with a zone): also say whether the time-stamp evidence held then, and which "
        "stamp of the chain carried it",
    )

    def run(args: argparse.Namespace) -> None:
        if not args.package.exists():
            raise SystemExit(f"govhub: {args.package} does not exist")
        as_of = None
        if args.as_of is not None:
            try:
                as_of = service.parse_as_of(args.as_of, now=utcnow())
            except HubError as exc:
                raise SystemExit(f"govhub: {exc.detail}") from None
        trust = _trust(args.trust)
        try:
            report = service.check_path(args.package, profiles, trust, as_of)
        except HubError as exc:
            raise SystemExit(f"govhub: {exc.detail}") from None
        if args.summary:
            for finding in report.failures():
                print(f"FAIL {finding.property} {finding.check}: {finding.reason}")
            if report.as_of_result is not None and report.as_of_result["proven"]:
                print(f"AS OF {report.as_of_result['reason']}")
            print("PASS" if report.ok else f"FAILED: {len(report.failures())} check(s)")
        else:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        if not report.ok:
            raise SystemExit(1)

    check.set_defaults(func=run)

    transfer_check = sub.add_parser(
        "check-transfer",
        help="check a transfer (移交) on receipt: its fixity, its manifest, and 四性检测 of every package",
        description="Checks the transfer on its own, without the hub's database. Prints one JSON report; "
        "the exit status is 0 when every check passes, 1 otherwise.",
    )
    transfer_check.add_argument("transfer", type=Path, help="TRANSFER.zip or the bag's directory")
    transfer_check.add_argument("--summary", action="store_true", help="print only the failing checks, one a line")
    transfer_check.add_argument("--trust", action="append", type=Path, default=[], metavar="FILE", help="as for check")

    def run_transfer_check(args: argparse.Namespace) -> None:
        if not args.transfer.exists():
            raise SystemExit(f"govhub: {args.transfer} does not exist")
        trust = _trust(args.trust)
        try:
            report = service.check_transfer_path(args.transfer, profiles, trust)
        except HubError as exc:
            raise SystemExit(f"govhub: {exc.detail}") from None
        if args.summary:
            for finding in report.transfer.failures():
                print(f"FAIL transfer {finding.check}: {finding.reason}")
            for name, inner, refusal in report.packages:
                if refusal is not None:
                    print(f"FAIL {name}: {refusal}")
                for finding in inner.failures() if inner is not None else []:
                    print(f"FAIL {name} {finding.property} {finding.check}: {finding.reason}")
            print("PASS" if report.ok else "FAILED")
        else:
            print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
        if not report.ok:
            raise SystemExit(1)

    transfer_check.set_defaults(func=run_transfer_check)

    transfer = sub.add_parser(
        "transfer", help="export a transfer (移交): the packages of a record class written in a period, as one BagIt bag"
    )
    transfer.add_argument("--class", dest="record_class", required=True, help="certificate_version, sealed_document, ...")
    transfer.add_argument("--since", required=True, type=date.fromisoformat, help="first day (YYYY-MM-DD, UTC)")
    transfer.add_argument("--until", required=True, type=date.fromisoformat, help="day after the last day (YYYY-MM-DD)")
    transfer.add_argument("--out", required=True, type=Path, help="the transfer's zip (a file) or a directory for it")
    transfer.set_defaults(func=with_db(_transfer))

    stamp = sub.add_parser(
        "timestamp", help="time-stamp the packages awaiting one now; exit 1 if some still wait (TSA unreachable)"
    )
    stamp.set_defaults(func=with_db(_timestamp))

    renew = sub.add_parser(
        "renew-stamps",
        help="renew now the stamp chains due (the last stamp's TSA certificate expires within "
        "GOVHUB_SEAL_LTA_RENEWAL_MARGIN_DAYS, or its digest is in GOVHUB_SEAL_LTA_WEAKENED_DIGESTS); exit 1 on a failure",
    )
    renew.set_defaults(func=with_db(_renew_stamps))

    retention = sub.add_parser("retention", help="the retention period (保管期限) of each record class")
    retention.set_defaults(func=_retention)

    due = sub.add_parser("due", help="the records due for disposal (held ones marked)")
    due.add_argument("--class", dest="record_class", help="only this record class")
    due.set_defaults(func=with_db(_due, writes=False))

    hold = sub.add_parser("hold", help="put a record under legal hold (冻结): it is not disposed of until released")
    hold.add_argument("record_class", help="certificate_version, sealed_document or sharing_dossier")
    hold.add_argument("record_id", help="the record's identifier (a certificate's 证照标识, a seal use's or request's id)")
    hold.add_argument("--reason", required=True, help="why the record must be kept (kept in the audit trail)")
    hold.set_defaults(func=with_db(_hold))

    release = sub.add_parser("release", help="release a legal hold")
    release.add_argument("hold_id", help="the hold (see `govhub archive due` or GET /archive/holds)")
    release.add_argument("--reason", required=True, help="why the hold ends (kept in the audit trail)")
    release.set_defaults(func=with_db(_release))

    dispose = sub.add_parser(
        "dispose",
        help="propose a disposal list (销毁清单) of due records; approve it with `govhub archive approve`",
        description="Without RECORD arguments, every due record (of --class) not under hold. A RECORD is CLASS/ID.",
    )
    dispose.add_argument("records", nargs="*", metavar="RECORD", help="CLASS/ID of a record to dispose of")
    dispose.add_argument("--class", dest="record_class", help="every due record of this class")
    dispose.set_defaults(func=with_db(_dispose))

    approve = sub.add_parser("approve", help="approve a disposal list: the packages are destroyed, tombstones remain")
    approve.add_argument("list_id", help="the disposal list `govhub archive dispose` printed")
    approve.add_argument("--as", dest="approver", required=True, help="who approves (recorded on each tombstone)")
    approve.set_defaults(func=with_db(_approve))

    stones = sub.add_parser("tombstones", help="what was disposed of, when, by whose approval, its digests")
    stones.add_argument("--class", dest="record_class", help="only this record class")
    stones.add_argument("--record", help="only this record's identifier")
    stones.set_defaults(func=with_db(_tombstones, writes=False))


def _trust(paths: list[Path]) -> service.Trust | None:
    """The keys of `--trust FILE` (repeatable), or None without one."""
    if not paths:
        return None
    try:
        return service.Trust.from_documents([json.loads(p.read_text(encoding="utf-8")) for p in paths])
    except (OSError, ValueError) as exc:
        raise SystemExit(f"govhub: cannot read the trust files: {exc}") from None


def _print(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _transfer(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    made = service.build_transfer(
        db, who=CLI_ADMIN, storage=make_store(settings), record_class=args.record_class, since=_day(args.since),
        until=_day(args.until), organisation=settings.public_url,
    )  # fmt: skip
    target = args.out / made.file_name if args.out.is_dir() else args.out
    target.write_bytes(made.data)
    print(f"{target}\t{service.digest('sha256', made.data)}\t{len(made.packages)} package(s)")


def _timestamp(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from ops.archive.tasks import stamp_and_clean

    run = stamp_and_clean(db, make_store(settings))
    print(f"stamped {run.stamped}, awaiting {run.awaiting}" + (f" ({run.failure})" if run.failure and run.awaiting else ""))
    if run.awaiting:
        sys.exit(1)


def _renew_stamps(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from ops.archive.tasks import renew_and_clean

    run = renew_and_clean(db, make_store(settings), settings)
    print(f"renewed {run.renewed}, recorded {run.noted}, failed {run.failed}" + (f" ({run.failure})" if run.failure else ""))
    if run.failure or run.failed:
        sys.exit(1)


def _retention(_args: argparse.Namespace) -> None:
    from ops.cli import load_settings

    _print(load_settings().archive_retention)


def _due(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    held = {(h.record_class, h.record_id): h.id for h in service.holds(db, record_class=args.record_class)}
    found = service.due_records(db, retention=settings.archive_retention, as_of=utcnow(), record_class=args.record_class)
    _print([{**d.as_dict(), "hold": held.get((d.record_class, d.record_id))} for d in found])


def _hold(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    hold = service.place_hold(db, who=CLI_ADMIN, record_class=args.record_class, record_id=args.record_id, reason=args.reason)
    print(hold.id)


def _release(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    hold = service.release_hold(db, who=CLI_ADMIN, hold_id=args.hold_id, reason=args.reason)
    print(f"{hold.id} released")


def _dispose(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    records = []
    for ref in args.records:
        cls, sep, rid = ref.partition("/")
        if not sep or not cls or not rid:
            raise SystemExit(f"govhub: {ref!r} is not CLASS/ID")
        records.append((cls, rid))
    if not records and not args.record_class:
        raise SystemExit("govhub: name the records (CLASS/ID) or a --class")
    listing = service.propose_disposal(
        db, who=CLI_ADMIN, retention=settings.archive_retention, records=records or None, record_class=args.record_class
    )
    _print({"id": listing.id, "items": listing.items})


def _approve(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    who = Principal(subject=f"cli:{args.approver}", roles=frozenset({Role.PLATFORM_ADMIN}))
    stones = service.approve_disposal(
        db, who=who, storage=make_store(settings), retention=settings.archive_retention, list_id=args.list_id
    )
    for stone in stones:
        print(f"{stone.record_class}/{stone.record_id}\t{stone.package_sha256}\tdisposed")


def _tombstones(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    stones = service.tombstones(db, record_class=args.record_class, record_id=args.record)
    _print(
        [
            {c: getattr(s, c) for c in ("record_class", "record_id", "package_id", "package_sha256", "package_sm3",
                                        "disposed_at", "approved_by", "proposed_by", "disposal_list_id")}
            for s in stones
        ]
    )  # fmt: skip
