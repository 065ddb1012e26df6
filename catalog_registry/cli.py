"""Command-line commands of the catalogue: import the spreadsheet template, export DCAT, reports."""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy.orm import Session

from ops.auth import Principal, Role
from ops.cli import CLI_ADMIN, with_db
from ops.config import Settings


class ProgressBar:
    """A one-line progress bar on stderr (plain lines when stderr is not a terminal)."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._last = 0.0
        self._phase = ""

    def __call__(self, phase: str, done: int) -> None:
        now = time.monotonic()
        finished = done >= self.total
        if phase == self._phase and not finished and now - self._last < (0.2 if self.tty else 2.0):
            return
        self._phase, self._last = phase, now
        share = min(done / self.total, 1.0)
        filled = int(share * self.width)
        line = f"{phase:<10} [{'#' * filled}{'-' * (self.width - filled)}] {share:6.1%}  {done}/{self.total} rows"
        self.stream.write(("\r" + line) if self.tty else (line + "\n"))
        if self.tty and finished:
            self.stream.write("\n")
        self.stream.flush()


def _count_rows(path: Path) -> int:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return max(sum(1 for _ in csv.reader(handle)) - 1, 0)


def _principal(db: Session, department: str | None) -> Principal:
    if not department:
        return CLI_ADMIN
    from catalog_registry import repository

    found = repository.department_by_code(db, department.upper()) or repository.department(db, department)
    if found is None:
        raise SystemExit(f"govhub: no department with id or code {department}")
    return Principal(subject="cli", roles=frozenset({Role.DEPARTMENT_ADMIN}), department_id=found.id, department_code=found.code)


PUBLISH_ALONE = (
    "govhub: --mode publish cannot be combined with --department: a department's import goes to review "
    "(draft or submit); only the platform publishes without review, with 提供部门代码 on each row"
)


def import_command(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from catalog_registry import service
    from ops.errors import Invalid

    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"govhub: no such file {path}")
    if args.mode == "publish" and args.department:
        raise SystemExit(PUBLISH_ALONE)
    who = _principal(db, args.department)
    bar = ProgressBar(_count_rows(path)) if not args.quiet else None

    def open_text() -> Any:
        return path.open(encoding="utf-8-sig", newline="")

    try:
        report = service.import_entries(db, who=who, open_text=open_text, mode=args.mode, progress=bar)
    except Invalid as exc:
        lines = [f"  row {e.get('row')}: {e.get('field')}: {e.get('message')}" for e in exc.errors[:200]]
        more = f"\n  ... and {len(exc.errors) - 200} more" if len(exc.errors) > 200 else ""
        raise SystemExit(f"govhub: {exc.detail.split('. ')[0]}\n" + "\n".join(lines) + more) from None
    print(json.dumps({"created": report.created, "mode": args.mode}, ensure_ascii=False))


def dcat_command(db: Session, settings: Settings, args: argparse.Namespace) -> None:
    from catalog_registry import service

    base = str(settings.public_url).rstrip("/")
    out = Path(args.out) if args.out else None
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = service.dcat_catalog(db, who=CLI_ADMIN, base_url=base, cursor=cursor, limit=2000)
        pages.append(page)
        next_url = page.get("hydra:view", {}).get("hydra:next", {}).get("@id")
        if not next_url:
            break
        cursor = next_url.split("cursor=")[1].split("&")[0]
    document = pages[0]
    document.pop("hydra:view", None)
    for page in pages[1:]:
        document["dcat:dataset"] += page["dcat:dataset"]
        document["dcat:service"] += page["dcat:service"]
    text = json.dumps(document, ensure_ascii=False, indent=1)
    if out:
        out.write_text(text, encoding="utf-8")
        print(f"wrote {len(document['dcat:dataset'])} datasets to {out}")
    else:
        print(text)


def responsibility_command(db: Session, _settings: Settings, args: argparse.Namespace) -> None:
    from catalog_registry import service

    who = CLI_ADMIN
    department = _principal(db, args.department).department_id or ""
    report = service.responsibility_list(db, who=who, department_id=department)
    sys.stdout.write(service.responsibility_csv(report).lstrip("\ufeff"))


def classified_command(db: Session, _settings: Settings, _args: argparse.Namespace) -> None:
    from catalog_registry import service

    found = service.shared_entries_holding_classified(db)
    print(json.dumps(found, ensure_ascii=False, indent=1))
    if found:
        raise SystemExit(1)


def register(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this domain's commands to `govhub`."""
    catalog = commands.add_parser("catalog", help="data-resource catalogue (政务数据资源目录)").add_subparsers(
        dest="sub", required=True
    )
    imp = catalog.add_parser(
        "import",
        help="import entries from the catalogue template (CSV)",
        description="Check every row of the CSV, then import all of it, or nothing if any row is wrong "
        "(each problem is listed with its row and column). Columns: 资源代码, 资源名称, 资源分类, 资源摘要, "
        "信息项 (名称|类型|长度|分级|是否个人信息; ...), 共享类型, 共享条件, 不予共享依据, 共享方式, "
        "管控参数 (信息项|必填|每次最多行数; ...), 开放属性, 更新周期, 关联资源, 是否电子证照, 允许导出, "
        "数据集提供, 接口地址, 接口方法, 接口超时秒, 提供部门代码. "
        "--mode publish cannot be combined with --department.",
    )
    imp.add_argument("file", help="CSV file (UTF-8)")
    imp.add_argument(
        "--department",
        help="import as this provider department (id or code), for review: not with --mode publish; "
        "without it the platform imports, each row naming its 提供部门代码",
    )
    imp.add_argument(
        "--mode",
        default="draft",
        choices=["draft", "submit", "publish"],
        help="draft (default), submit for review, or publish at once (a catalogue already reviewed; only without --department)",
    )
    imp.add_argument("--quiet", action="store_true", help="no progress bar")
    imp.set_defaults(func=with_db(import_command))

    dcat = catalog.add_parser("export-dcat", help="write the published catalogue as DCAT-AP JSON-LD")
    dcat.add_argument("--out", help="file to write (default: standard output)")
    dcat.set_defaults(func=with_db(dcat_command))

    classified = catalog.add_parser(
        "classified",
        help="list published entries that are shared or open although they hold a 涉密 item; exit 1 if any",
        description="Such entries were published before the hub refused them: nothing is shared through them "
        "(every request, grant, lookup, export and API call is refused) until their provider publishes a version "
        "that is 不予共享 or holds no secret item.",
    )
    classified.set_defaults(func=with_db(classified_command))

    resp = catalog.add_parser("responsibility", help="print a department's sharing responsibility list (CSV)")
    resp.add_argument("department", help="department id or code")
    resp.set_defaults(func=with_db(responsibility_command))
