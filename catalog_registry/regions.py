"""数据回流 (data flowing back down): rows carry the administrative division they concern, and a grant to a
department of a lower-level government is scoped to its own division and those below it.

- An entry names its **division item** (`division_item`): the information item holding each row's GB/T 2260
  code. An upload checks every row's code against the platform's division table (`ops.divisions`) and keeps
  it in the indexed column `catalog_dataset_rows.region_code`.
- An entry marked **region-scoped** (`region_scoped`) scopes its grants: `grant_region_scope` decides a
  grant's scope when it is issued (the consumer's division when it lies at a lower level than the
  provider's; none otherwise).
- **One filter**, :func:`region_predicate`: the SQL condition "this row's division lies within the scope",
  a range on the code (an index range scan, no loop over rows). Every data path that returns rows applies it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, true
from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import DatasetRow
from catalog_registry.repository import within_bounds
from ops.codes import region_code_problem
from ops.divisions import service as divisions
from ops.errors import HubError


class RegionUnknown(HubError):
    status, code, title = 409, "region_unknown", "Department's administrative division unknown"


def region_predicate(scope: str | None, column: Any = DatasetRow.region_code) -> ColumnElement[bool]:
    """The SQL condition that a row's division code (`column`) lies within the division `scope` (the scope
    itself or below it), for a grant scoped to `scope`; true for an unscoped grant (None).

    330000 → 330000 <= code < 340000; 330100 → 330100 <= code < 330200; 330106 → 330106 <= code < 330107.
    A row without a division code is within no scope."""
    if scope is None:
        return true()
    return within_bounds(column, *divisions.scope_bounds(scope))


def scope_bounds(scope: str) -> tuple[str, str]:
    """The division codes within `scope` as [low, high) (for the statements built once, which bind them)."""
    return divisions.scope_bounds(scope)


def in_scope(code: str | None, scope: str | None) -> bool:
    """The same rule for a value in hand (an API's answer): whether `code` lies within `scope`."""
    if scope is None:
        return True
    if not code:
        return False
    low, high = divisions.scope_bounds(scope)
    return low <= code < high


def division_code(value: Any) -> str:
    """A division item's value as a code: its text, trimmed (an integer item's 330106 → "330106")."""
    if value is None or isinstance(value, bool):
        return ""
    return str(value).strip()


class DivisionCheck:
    """Checks the division codes of one upload's rows against the platform's table (read once)."""

    def __init__(self, db: Session) -> None:
        self._db = db
        self._known: set[str] | None = None

    def problem(self, code: str) -> str | None:
        """Why `code` is not a division the platform knows, or None."""
        if not code:
            return "a division code (GB/T 2260) is required in every row: this entry names it as its division item"
        problem = region_code_problem(code)
        if problem:
            return f"{code!r} is not an administrative division code (GB/T 2260): {problem}"
        if self._known is None:
            self._known = divisions.all_codes(self._db)
        if code not in self._known:
            return f"{code} is not an administrative division the platform knows (GB/T 2260 table)"
        return None


def grant_region_scope(db: Session, *, view: Any, consumer_department_id: str) -> str | None:
    """The division a grant on entry version `view` to the consumer is scoped to (数据回流): the consumer's own
    division when the entry is region-scoped and the consumer belongs to a lower-level government than the
    provider; None (every row) otherwise. RegionUnknown (409) when the consumer's region code is not a
    division the platform knows: its scope could not be trusted."""
    if not getattr(view, "region_scoped", False):
        return None
    consumer = repository.department(db, consumer_department_id)
    provider = repository.department(db, view.provider_department_id)
    if consumer is None or provider is None:
        return None
    problem = divisions.division_problem(db, consumer.region_code)
    if problem:
        raise RegionUnknown(
            f"catalogue entry {view.code} is shared by administrative division (数据回流), and department "
            f"{consumer.name}'s region code is not usable: {problem}. The platform corrects the department's "
            "region code (or loads the division table) first",
            extra={"department_id": consumer.id, "region_code": consumer.region_code},
        )
    if divisions.is_lower_level(consumer.region_code, provider.region_code):
        return consumer.region_code
    return None
