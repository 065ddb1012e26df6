"""`govhub calendar`: show a year, or load one from a JSON file."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.orm import Session

from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings
from ops.workdays import service
from ops.workdays.schemas import CalendarLoad


def register(commands: argparse._SubParsersAction, listeners: Callable[[Settings], Iterable[service.CalendarListener]]) -> None:  # type: ignore[type-arg]
    calendar = commands.add_parser("calendar", help="working-day calendar (holidays and 调休)")
    sub = calendar.add_subparsers(dest="sub", required=True)
    show = sub.add_parser("show", help="show a year's status and special days")
    show.add_argument("year", type=int, help="the year, e.g. 2026")
    show.set_defaults(func=with_db(_show, writes=False))
    load = sub.add_parser(
        "load",
        help="load a year's calendar from a JSON file",
        description='JSON: {"source": "国办发明电〔2026〕…", "holidays": [{"date": "2027-01-01", "name": "元旦"}, …], '
        '"workdays": [{"date": "2027-02-07", "name": "春节调休"}, …]}. Open deadlines are recomputed.',
    )
    load.add_argument("year", type=int, help="the year the file describes")
    load.add_argument("file", type=Path, help="the year's holidays and 调休 working days (JSON)")

    def _load(db: Session, settings: Settings, args: argparse.Namespace) -> None:
        try:
            body = CalendarLoad.model_validate(json.loads(args.file.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"govhub: cannot read {args.file}: {exc}") from None
        except ValidationError:
            raise
        _, changed = service.load_calendar(
            db,
            who=CLI_ADMIN,
            year=args.year,
            source=body.source,
            holidays=[service.DayEntry(d.date, d.name) for d in body.holidays],
            workdays=[service.DayEntry(d.date, d.name) for d in body.workdays],
            listeners=listeners(settings),
        )
        print(
            f"loaded {args.year}: {len(body.holidays)} holidays, {len(body.workdays)} working weekend days; "
            f"{changed} open deadline(s) recomputed"
        )

    load.set_defaults(func=with_db(_load))


def _show(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    print(f"{args.year}: {service.calendar_status(db, args.year)}")
    for day, kind, name in service.days_of_year(db, args.year):
        print(f"  {day.isoformat()} {date.strftime(day, '%a')} {kind:<8} {name}")
