"""`govhub exchange`: run the supervision jobs now, and print the departments' report."""

from __future__ import annotations

import argparse
import json
from datetime import date

from sqlalchemy.orm import Session

from exchange import service, tasks
from ops.archive import cli as archive_cli
from ops.cli import with_db
from ops.config import Settings
from ops.crypto import KeyVault


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this domain's commands to `govhub`."""
    exchange = commands.add_parser("exchange", help="sharing exchange: deadline sweep, grant expiry, report")
    sub = exchange.add_subparsers(dest="sub", required=True)
    sweep = sub.add_parser("sweep", help="mark past-due steps overdue, record breaches, notify (as the scheduler does)")
    sweep.set_defaults(func=with_db(_sweep))
    expire = sub.add_parser("expire", help="expire grants past their end date (as the scheduler does)")
    expire.set_defaults(func=with_db(_expire))
    deliver = sub.add_parser("deliver", help="push pending notifications to the departments' webhooks now")
    deliver.set_defaults(func=with_db(_deliver))
    flow = sub.add_parser(
        "flow", help="take new dataset versions' changes into the outbox, push due events to subscribers, publish to NATS"
    )
    flow.set_defaults(func=with_db(_flow))
    report = sub.add_parser("report", help="on-time rate, average handling time and ratings per department")
    report.add_argument("--start", type=_date, required=True, help="first day, YYYY-MM-DD")
    report.add_argument("--end", type=_date, required=True, help="last day, YYYY-MM-DD")
    report.add_argument("--json", action="store_true", help="print JSON instead of a table")
    report.set_defaults(func=with_db(_report, writes=False))
    archive = sub.add_parser(
        "archive",
        help="归档: write the dossiers of the decided requests filed in a period",
        description="Signs an audit-log checkpoint, then archives the dossier of every decided request filed in the "
        "period, printing `request id, sha256, size` for each. Check a package with `govhub archive check`.",
    )
    archive_cli.add_range_arguments(archive)
    archive.set_defaults(func=with_db(_archive))


def _archive(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    archive_cli.run_range(db, settings, args, service.archive_requests_between)


def _sweep(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    print(f"{tasks.sweep_overdue(db)} step(s) newly overdue")


def _expire(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    print(f"{tasks.expire_grants(db)} grant(s) expired")


def _deliver(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    print(f"{tasks.deliver_webhooks(db, max_attempts=settings.exchange_webhook_max_attempts)} notification(s) delivered")


def _flow(db: Session, settings: Settings, _args: argparse.Namespace) -> None:
    print(f"{service.take_change_sets(db)} event(s) taken into the outbox")
    delivered = service.deliver_subscriptions(
        db,
        vault=KeyVault.from_settings(settings),
        allow_private=settings.webhook_allow_private,
        max_attempts=settings.subscription_max_attempts,
        timeout=settings.subscription_timeout_seconds,
    )
    print(f"{delivered} event(s) delivered to webhooks")
    if settings.nats_url:
        print(f"{service.publish_outbox(db, url=settings.nats_url)} event(s) published to {settings.nats_url}")


def _report(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    result = service.report(db, start=args.start, end=args.end)
    if args.json:
        print(json.dumps(result.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    print(f"{'department':38} {'done':>5} {'on time':>8} {'late open':>9} {'rate':>6} {'avg days':>8}  ratings")
    for row in result.departments:
        rate = "-" if row.on_time_rate is None else f"{row.on_time_rate:.0%}"
        avg = "-" if row.average_working_days is None else f"{row.average_working_days:.1f}"
        ratings = ", ".join(f"{k} {v}" for k, v in sorted(row.ratings.items())) or "-"
        print(
            f"{row.department_id:38} {row.steps_completed:>5} {row.steps_on_time:>8} {row.steps_overdue_open:>9} "
            f"{rate:>6} {avg:>8}  {ratings}"
        )
