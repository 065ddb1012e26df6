"""Command-line commands of the seal domain (registered by govhub.cli)."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.orm import Session

from ops.archive import cli as archive_cli
from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings
from ops.crypto import KeyVault


def _department_id(db: Session, ref: str) -> str:
    from ops.identity import repository

    department = repository.department_by_id(db, ref) or repository.department_by_code(db, ref.upper())
    if department is None:
        raise SystemExit(f"govhub: no department with id or code {ref}")
    return department.id


def seals_issue(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service
    from seal.schemas import SealCreate

    picture = Path(args.picture)
    if not picture.is_file():
        raise SystemExit(f"govhub: no picture file {picture}")
    kind = "svg" if picture.suffix.lower() == ".svg" else "png"
    data = SealCreate(
        department_id=_department_id(db, args.department),
        name=args.name,
        seal_type=args.type,
        algorithm=args.algorithm,
        picture={
            "type": kind,
            "data_base64": base64.b64encode(picture.read_bytes()).decode(),
            "width_mm": args.size_mm,
            "height_mm": args.size_mm,
        },
        valid_to=datetime.now(UTC) + timedelta(days=365 * args.years),
    )
    seal = service.issue_seal(db, who=CLI_ADMIN, vault=KeyVault.from_settings(settings), data=data, settings=settings)
    print(json.dumps({"id": seal.id, "code": seal.code, "kid": seal.kid, "algorithm": seal.alg}, ensure_ascii=False))


def seals_list(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from sqlalchemy import select

    from seal.models import Seal

    query = select(Seal).order_by(Seal.created_at)
    if args.department:
        query = query.where(Seal.department_id == _department_id(db, args.department))
    for s in db.scalars(query):
        print(f"{s.id}  {s.status:<9} {s.alg:<5} {s.seal_type:<8} {s.valid_to:%Y-%m-%d}  {s.department_code}  {s.name}")


def seals_revoke(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service

    seal = service.change_status(
        db,
        who=CLI_ADMIN,
        seal_id=args.seal_id,
        action=args.action,
        reason=args.reason,
        vault=KeyVault.from_settings(settings),
        public_url=settings.public_url,
    )
    print(f"{seal.id} is now {seal.status}")


def seals_rewrap(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from seal import service

    changed = service.rewrap_keys(db, vault=KeyVault.from_settings(settings))
    print(f"re-wrapped {changed} seal and authority key(s) under the current master key")


def seals_expire(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    from seal import service

    print(f"{service.expire_seals(db)} seal(s) marked expired")


def seals_renew_lta(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from seal import service

    done = service.renew_due(db, vault=KeyVault.from_settings(settings), settings=settings)
    print(json.dumps({"renewed": done.renewed, "failed": done.failed}, ensure_ascii=False))  # failures stay due


def seals_stamp_pending(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service

    done = service.stamp_pending(db, vault=KeyVault.from_settings(settings), settings=settings, limit=args.limit)
    print(json.dumps({"stamped": done.stamped, "failed": done.failed, "awaiting": done.awaiting}, ensure_ascii=False))


def seals_migrate_der(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    from seal import service

    count = service.migrate_der(db, vault=KeyVault.from_settings(settings), settings=settings)
    print(f"{count} seal(s) given their GB/T 38540 v4 DER structure (signed by the SM2 seal maker)")


def seals_verify(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"govhub: no file {path}")
    if args.signature:
        raw = Path(args.signature).read_bytes()
        signature = raw if raw[:1] == b"\x30" else json.loads(raw)
        report = service.verify_detached(db, signature=signature, data=path.read_bytes(), settings=settings)
        print(report.model_dump_json(indent=2))
    else:
        print(service.verify_pdf(db, pdf_bytes=path.read_bytes(), settings=settings).model_dump_json(indent=2))


def seals_verify_ofd(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"govhub: no file {path}")
    data = path.read_bytes()
    report = service.verify_ofd(db, ofd_bytes=data, settings=settings)
    service.record_verification(
        db, who=CLI_ADMIN, kind="ofd", verdict=report.verdict, document_hash=hashlib.sha256(data).hexdigest()
    )
    print(report.model_dump_json(indent=2))


def seals_archive(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from seal import service

    archive_cli.run_range(db, settings, args, service.archive_uses_between)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this domain's commands to `govhub`."""
    from seal.schemas import SEAL_TYPES

    seals = commands.add_parser("seals", help="electronic seals (电子印章)").add_subparsers(dest="sub", required=True)
    issue = seals.add_parser("issue", help="make and issue a seal for a department (制发)")
    issue.add_argument("--department", required=True, help="department id or 统一社会信用代码")
    issue.add_argument("--name", required=True, help="the text of the seal")
    issue.add_argument("--type", required=True, choices=SEAL_TYPES, help="the kind of seal")
    issue.add_argument("--algorithm", default="SM2", choices=["SM2", "ES256", "EdDSA"], help="signature algorithm (default SM2)")
    issue.add_argument("--picture", required=True, help="PNG or SVG file")
    issue.add_argument("--size-mm", type=float, default=42.0, help="printed diameter / side in mm (default 42)")
    issue.add_argument("--years", type=int, default=3, help="validity in years (default 3)")
    issue.set_defaults(func=with_db(seals_issue))
    listing = seals.add_parser("list", help="list seals")
    listing.add_argument("--department", help="department id or code")
    listing.set_defaults(func=with_db(seals_list))
    for action, text in (("suspend", "suspend a seal"), ("resume", "resume a suspended seal"), ("revoke", "revoke a seal")):
        change = seals.add_parser(action, help=text)
        change.add_argument("seal_id", help="the seal (see `govhub seals list`)")
        change.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        change.set_defaults(func=with_db(seals_revoke), action=action)
    seals.add_parser("rewrap", help="re-wrap seal keys under the current master key").set_defaults(func=with_db(seals_rewrap))
    seals.add_parser("expire", help="mark seals past their validity as expired").set_defaults(func=with_db(seals_expire))
    seals.add_parser(
        "renew-lta", help="add a document time stamp to every kept PAdES B-LTA PDF whose time stamp chain is due"
    ).set_defaults(func=with_db(seals_renew_lta))
    pending = seals.add_parser(
        "stamp-pending",
        help="time-stamp the seal signatures made while the time-stamp authority was unreachable (awaiting)",
    )
    pending.add_argument("--limit", type=int, default=200, help="at most this many uses, oldest first (default 200)")
    pending.set_defaults(func=with_db(seals_stamp_pending))
    seals.add_parser("migrate-der", help="give seals made before the DER form their GB/T 38540 v4 DER structure").set_defaults(
        func=with_db(seals_migrate_der)
    )
    verify = seals.add_parser("verify", help="verify a sealed PDF, or data with --signature FILE")
    verify.add_argument("file", help="the sealed PDF, or the signed data with --signature")
    verify.add_argument("--signature", help="detached seal signature of FILE: DER (SignedValue.dat) or the earlier JSON")
    verify.set_defaults(func=with_db(seals_verify))
    archive = seals.add_parser(
        "archive",
        help="归档: write the archive packages of the sealed documents of a period",
        description="Signs an audit-log checkpoint, then archives every sealing of the period whose sealed output the "
        "hub kept, printing `use id, sha256, size` for each. Check a package with `govhub archive check`.",
    )
    archive_cli.add_range_arguments(archive)
    archive.set_defaults(func=with_db(seals_archive))
    verify_ofd = seals.add_parser("verify-ofd", help="verify every seal signature of a sealed OFD document")
    verify_ofd.add_argument("file", help="the sealed OFD")
    verify_ofd.set_defaults(func=with_db(seals_verify_ofd))
