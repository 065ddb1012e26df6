"""`govhub divisions`: show a division, or replace the table from a CSV file (the packaged one by default)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.orm import Session

from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings
from ops.divisions import service


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    divisions = commands.add_parser("divisions", help="administrative divisions (GB/T 2260)")
    sub = divisions.add_subparsers(dest="sub", required=True)
    show = sub.add_parser("show", help="show a division and those it lies in, or the provinces")
    show.add_argument("code", nargs="?", help="a 6-digit code, e.g. 330106")
    show.set_defaults(func=with_db(_show, writes=False))
    load = sub.add_parser(
        "load",
        help="replace the division table from a CSV file",
        description="CSV (UTF-8) with a header code,name and optionally level,parent; a missing parent is "
        "derived from the code. Without a file, the list shipped with the hub is loaded again.",
    )
    load.add_argument("file", type=Path, nargs="?", help="the division list (CSV)")
    load.add_argument("--source", help="where the list comes from (default: the file's name)")
    load.set_defaults(func=with_db(_load))


def _load(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    if args.file is None:
        rows, source = service.packaged_divisions(), args.source or service.PACKAGED_SOURCE
    else:
        try:
            data = args.file.read_bytes()
        except OSError as exc:
            raise SystemExit(f"govhub: cannot read {args.file}: {exc}") from None
        rows, source = service.read_division_file(data), args.source or args.file.name
    loaded = service.replace_divisions(db, who=CLI_ADMIN, rows=rows, source=source)
    print(
        f"loaded {loaded.divisions} divisions ({loaded.provinces} provinces, {loaded.prefectures} prefectures, "
        f"{loaded.counties} counties) from {source}"
    )
    for department_id, name, code in loaded.departments_unknown:
        print(f"  department {name} ({department_id}) has region code {code}, not in the table: correct it")


def _show(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    if args.code is None:
        for division in service.list_divisions(db, parent=None, level=None):
            print(f"{division.code} {division.name}")
        return
    service.get_division(db, args.code)
    for depth, division in enumerate(service.path_of(db, args.code)):
        print(f"{'  ' * depth}{division.code} {division.name} ({division.level})")
    for child in service.list_divisions(db, parent=args.code, level=None):
        print(f"{'  ' * 3}{child.code} {child.name}")
