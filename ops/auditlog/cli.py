"""`govhub audit ...`: verify the log, sequence, sign checkpoints, rotate the log key."""

from __future__ import annotations

import argparse
import json

from sqlalchemy.orm import Session

from ops import timestamping
from ops.auditlog import service
from ops.cli import with_db
from ops.config import Settings
from ops.crypto import KeyVault
from ops.storage import make_store


def verify(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    report = service.verify(db, store=make_store(settings), grace_seconds=args.grace)
    print(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    if not report.ok:
        raise SystemExit(1)


def sequence(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    print(f"appended {service.sequence(db, grace_seconds=args.grace)} record(s)")


def checkpoint(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    signed = service.checkpoint_now(
        db, vault=KeyVault.from_settings(settings), store=make_store(settings), force=True, grace_seconds=0
    )
    assert signed is not None
    print(signed.body, end="")
    print(f"signature {signed.signature}")
    run = service.stamp_awaiting(db, stamper=timestamping.current_stamper())
    print(f"time stamp: {signed.timestamp_state}" + (f" ({run.failure}; `govhub audit timestamp` later)" if run.failure else ""))


def timestamp(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    run = service.stamp_awaiting(db, stamper=timestamping.current_stamper())
    print(f"time-stamped {run.stamped} checkpoint(s); {run.awaiting} still awaiting a time stamp")
    if run.awaiting:
        db.commit()  # keep what was stamped
        raise SystemExit(f"the time-stamp authority gave no token: {run.failure}")


def rotate_key(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    key = service.rotate_log_key(db, vault=KeyVault.from_settings(settings))
    print(f"checkpoints are now signed with {key.key_id}; earlier keys stay published")


def rewrap(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    print(f"re-wrapped {service.rewrap_log_keys(db, vault=KeyVault.from_settings(settings))} log key(s)")


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `govhub audit` commands."""
    group = commands.add_parser("audit", help="the tamper-evident audit log").add_subparsers(dest="sub", required=True)
    v = group.add_parser(
        "verify",
        help="rebuild the Merkle tree from the records and check it against every signed checkpoint, "
        "in the database and in object storage; exit 1 on any problem",
    )
    v.add_argument("--grace", type=float, default=60.0, help="seconds a record may wait to be logged (default 60)")
    v.set_defaults(func=with_db(verify, writes=False))
    s = group.add_parser("sequence", help="append committed records to the log now")
    s.add_argument(
        "--grace",
        type=float,
        default=service.DEFAULT_GRACE_SECONDS,
        help=f"leave records younger than this many seconds for later (default {service.DEFAULT_GRACE_SECONDS:g})",
    )
    s.set_defaults(func=with_db(sequence))
    group.add_parser("checkpoint", help="sign a checkpoint now").set_defaults(func=with_db(checkpoint))
    group.add_parser(
        "timestamp", help="time-stamp the checkpoints awaiting one now; exit 1 if some still wait (TSA unreachable)"
    ).set_defaults(func=with_db(timestamp))
    group.add_parser("rotate-key", help="sign checkpoints with a new key").set_defaults(func=with_db(rotate_key))
    group.add_parser("rewrap", help="re-wrap log keys under the current master key").set_defaults(func=with_db(rewrap))
