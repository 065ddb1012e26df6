"""The division hierarchy (GB/T 2260): reading a division file, replacing the table, and the code structure
(which level a code is, which codes lie within a division) that scoping rows by division relies on."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from ops import audit
from ops.audit import Actor
from ops.codes import region_code_problem
from ops.divisions.models import Division
from ops.errors import Invalid, NotFound
from ops.identity.models import Department

PACKAGED_FILE = Path(__file__).with_name("gb2260.csv")
PACKAGED_SOURCE = "GB/T 2260 codes as published by 民政部 (县级以上行政区划代码), packaged subset"
MAX_REPORTED_ERRORS = 50


class Level(StrEnum):
    """The level of a division, from its code: 省级 / 地级 / 县级."""

    PROVINCE = "province"
    PREFECTURE = "prefecture"
    COUNTY = "county"


DEPTH = {Level.PROVINCE: 1, Level.PREFECTURE: 2, Level.COUNTY: 3}
_LEVEL_LABELS = {"省": "province", "省级": "province", "地级": "prefecture", "市": "prefecture", "县级": "county", "县": "county"}


def level_of(code: str) -> Level:
    """The level a well-formed code stands for: xx0000 a province, xxxx00 a prefecture, any other a county."""
    if code[2:] == "0000":
        return Level.PROVINCE
    if code[4:] == "00":
        return Level.PREFECTURE
    return Level.COUNTY


def prefix_of(code: str) -> str:
    """The digits a division shares with everything within it: 2 for a province, 4 for a prefecture, 6 for a county."""
    return code[: 2 * DEPTH[level_of(code)]]


def within(code: str, scope: str) -> bool:
    """Whether division `code` is `scope` or lies below it (by the code structure)."""
    return code.startswith(prefix_of(scope))


def scope_bounds(scope: str) -> tuple[str, str]:
    """The codes within a division as a half-open range [low, high) of 6-digit strings: an index range scan.
    330000 → [330000, 340000); 330100 → [330100, 330200); 330106 → [330106, 330107)."""
    prefix = prefix_of(scope)
    upper = str(int(prefix) + 1).zfill(len(prefix))
    return prefix.ljust(6, "0"), upper.ljust(6, "0")


def is_lower_level(code: str, than: str) -> bool:
    """Whether `code` is a division of a lower level (deeper) than `than`."""
    return DEPTH[level_of(code)] > DEPTH[level_of(than)]


@dataclass(frozen=True)
class DivisionRow:
    code: str
    name: str
    level: Level
    parent_code: str | None


def _error(errors: list[dict[str, object]], line: int, column: str, message: str) -> None:
    errors.append({"field": f"line {line}: {column}", "line": line, "column": column, "message": message})


def parse_divisions(text: Iterable[str]) -> list[DivisionRow]:
    """Read a division file: CSV with a header `code,name` and optional `level` and `parent` columns (the
    parent, where not given, is derived from the code: a county's prefecture if listed, else its province).
    Every line is checked; Invalid naming each wrong line (at most 50) if any is wrong."""
    reader = csv.reader(text)
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise Invalid("the division file is empty: a header `code,name[,level,parent]` is required",
                      errors=[{"field": "file", "message": "empty"}]) from None  # fmt: skip
    missing = [c for c in ("code", "name") if c not in header]
    unknown = [c for c in header if c not in ("code", "name", "level", "parent")]
    if missing or unknown:
        raise Invalid(
            "the division file's header must be code,name and optionally level,parent"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not known: {', '.join(unknown)}" if unknown else ""),
            errors=[{"field": "header", "message": f"missing column {m}"} for m in missing]
            + [{"field": "header", "message": f"unknown column {u}"} for u in unknown],
        )
    errors: list[dict[str, object]] = []
    read: dict[str, tuple[int, str, str, str]] = {}  # code -> (line, name, level given, parent given)
    for line, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            _error(errors, line, "*", f"has {len(row)} fields, the header has {len(header)}")
            continue
        cells = dict(zip(header, [c.strip() for c in row] + [""] * (len(header) - len(row)), strict=True))
        code, name = cells["code"], cells["name"]
        problem = region_code_problem(code)
        if problem:
            _error(errors, line, "code", f"{code!r} is not a GB/T 2260 code: {problem}")
        elif code in read:
            _error(errors, line, "code", f"{code} is listed twice (first on line {read[code][0]})")
        if not name or len(name) > 100:
            _error(errors, line, "name", "a name of 1 to 100 characters is required")
        if not problem and code not in read:
            read[code] = (line, name, cells.get("level", ""), cells.get("parent", ""))
        if len(errors) >= MAX_REPORTED_ERRORS:
            break
    rows: list[DivisionRow] = []
    for code, (line, name, given_level, given_parent) in read.items():
        level = level_of(code)
        if given_level and _LEVEL_LABELS.get(given_level, given_level.lower()) != level.value:
            _error(
                errors,
                line,
                "level",
                f"{code} is a {level.value} code (digits 1-2 province, 3-4 prefecture, 5-6 county), not {given_level}",
            )
        parent = given_parent or _derived_parent(code, read)
        if given_parent:
            problem = region_code_problem(given_parent)
            if problem or given_parent not in read:
                _error(errors, line, "parent", f"parent {given_parent} is not a division of this file")
            elif not (is_lower_level(code, given_parent) and within(code, given_parent)):
                _error(
                    errors, line, "parent", f"{code} does not lie within {given_parent} (its code must begin with the parent's)"
                )
        elif level != Level.PROVINCE and parent is None:
            _error(errors, line, "parent", f"{code}'s province {code[:2]}0000 is not in the file")
        rows.append(DivisionRow(code, name, level, parent))
    if errors:
        errors.sort(key=lambda e: int(str(e["line"])))
        first = errors[0]
        raise Invalid(
            f"{len(errors)} problem(s) in the division file; nothing was loaded. First: {first['field']}: {first['message']}",
            errors=errors[:MAX_REPORTED_ERRORS],
        )
    if not rows:
        raise Invalid("the division file lists no division", errors=[{"field": "file", "message": "no rows"}])
    return rows


def _derived_parent(code: str, read: dict[str, tuple[int, str, str, str]]) -> str | None:
    level = level_of(code)
    if level == Level.PROVINCE:
        return None
    province = code[:2] + "0000"
    if level == Level.COUNTY and (prefecture := code[:4] + "00") in read:
        return prefecture  # else a county under the province directly (省直辖县级行政区划)
    return province if province in read else None


def packaged_divisions() -> list[DivisionRow]:
    """The divisions of the file shipped with the hub."""
    with PACKAGED_FILE.open(encoding="utf-8-sig", newline="") as text:
        return parse_divisions(text)


@dataclass(frozen=True)
class DivisionsLoaded:
    """What a replacement of the division table did."""

    source: str
    divisions: int
    provinces: int
    prefectures: int
    counties: int
    departments_unknown: list[tuple[str, str, str]]  # (id, name, region code) of departments no longer matched


def replace_divisions(db: Session, *, who: Actor, rows: Sequence[DivisionRow], source: str) -> DivisionsLoaded:
    """Replace the whole division table with `rows` (in the caller's transaction); recorded in the audit trail.
    Departments whose region code the new table does not hold are reported (their grants on region-scoped
    entries cannot be issued until the platform corrects them)."""
    db.execute(delete(Division))
    db.execute(
        insert(Division), [{"code": r.code, "name": r.name, "level": r.level.value, "parent_code": r.parent_code} for r in rows]
    )
    counts = {level: sum(1 for r in rows if r.level == level) for level in Level}
    codes = select(Division.code)
    unknown = [
        (i, n, c)
        for i, n, c in db.execute(
            select(Department.id, Department.name, Department.region_code)
            .where(Department.region_code.not_in(codes))
            .order_by(Department.region_code, Department.name)
        )
    ]
    audit.record(
        db,
        actor=who,
        action="divisions.replace",
        object_type="divisions",
        object_id="gb2260",
        detail={"source": source[:200], "divisions": len(rows), "departments_unknown": len(unknown)},
    )
    return DivisionsLoaded(source, len(rows), counts[Level.PROVINCE], counts[Level.PREFECTURE], counts[Level.COUNTY], unknown)


def read_division_file(data: bytes) -> list[DivisionRow]:
    """Parse an uploaded division file (UTF-8 CSV, a BOM allowed)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise Invalid("the division file is not UTF-8 text; save it as CSV UTF-8",
                      errors=[{"field": "file", "message": "not UTF-8"}]) from None  # fmt: skip
    try:
        return parse_divisions(io.StringIO(text, newline=""))
    except csv.Error as exc:
        raise Invalid(f"the division file cannot be read: {exc}", errors=[{"field": "file", "message": str(exc)}]) from None


def known_codes(db: Session, codes: Iterable[str]) -> set[str]:
    """Those of `codes` that are divisions of the table."""
    wanted = sorted(set(codes))
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        found.update(db.scalars(select(Division.code).where(Division.code.in_(wanted[start : start + 500]))))
    return found


def all_codes(db: Session) -> set[str]:
    """Every code of the table (a few thousand at most: the national list is about 3,200)."""
    return set(db.scalars(select(Division.code)))


def division_problem(db: Session, code: str) -> str | None:
    """Why `code` is not a division the platform knows (malformed, or not in the table), or None."""
    problem = region_code_problem(code)
    if problem:
        return f"{code!r} is not a GB/T 2260 code: {problem}"
    if db.get(Division, code) is None:
        return f"{code} is not an administrative division the platform knows (GB/T 2260 table)"
    return None


def get_division(db: Session, code: str) -> Division:
    division = db.get(Division, code)
    if division is None:
        raise NotFound(f"no administrative division {code}")
    return division


def names_of(db: Session, codes: Iterable[str]) -> dict[str, str]:
    """The names of the divisions among `codes`."""
    wanted = sorted(set(codes))
    if not wanted:
        return {}
    return {code: name for code, name in db.execute(select(Division.code, Division.name).where(Division.code.in_(wanted)))}


def path_of(db: Session, code: str) -> list[Division]:
    """A division and its ancestors, province first."""
    found: list[Division] = []
    current: str | None = code
    while current is not None and len(found) < 3:
        division = db.get(Division, current)
        if division is None:
            break
        found.append(division)
        current = division.parent_code
    return list(reversed(found))


def list_divisions(db: Session, *, parent: str | None, level: str | None) -> list[Division]:
    """Divisions by code: the children of `parent` (the provinces when neither is given), or those of a level."""
    query = select(Division).order_by(Division.code)
    if parent:
        query = query.where(Division.parent_code == parent)
    if level:
        query = query.where(Division.level == level)
    if not parent and not level:
        query = query.where(Division.parent_code.is_(None))
    return list(db.scalars(query))


def count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Division)) or 0)
