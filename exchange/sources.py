"""The catalogue as the exchange sees it: published entry versions and their dataset rows.

Everything goes through `catalog_registry.service` (the catalogue's public surface; the contract with the
exchange is its module `sharing.py`). The shapes the exchange relies on are written down here as protocols;
mypy checks that the catalogue's service meets them. Tests that exercise the exchange without a
catalogue put another implementation in its place with :func:`substituted`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

from catalog_registry import service as catalog_service
from catalog_registry.service import ChangeSetView, ChangeView, RowQuery, Rows
from ops.errors import HubError

__all__ = [
    "ChangeSetView",
    "ChangeView",
    "RowQuery",
    "Rows",
    "catalogue",
    "region_scope",
    "rows_within",
    "substituted",
    "withheld",
]


class Item(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def sensitivity(self) -> str: ...
    @property
    def personal(self) -> bool: ...


class ControlParam(Protocol):
    @property
    def item(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def max_rows(self) -> int | None: ...


class ApiDistribution(Protocol):
    @property
    def url(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def timeout_seconds(self) -> float: ...


class Sharing(Protocol):
    """What the exchange needs of a published catalogue entry version."""

    @property
    def resource_id(self) -> str: ...
    @property
    def version_id(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def provider_department_id(self) -> str: ...
    @property
    def sharing_type(self) -> str: ...
    @property
    def conditions(self) -> str | None: ...
    @property
    def legal_basis(self) -> str | None: ...
    @property
    def items(self) -> list[Any]: ...
    @property
    def control_parameters(self) -> list[Any]: ...
    @property
    def allows_export(self) -> bool: ...
    @property
    def has_dataset(self) -> bool: ...
    @property
    def api(self) -> Any: ...


class Catalogue(Protocol):
    def get_published_for_sharing(self, db: Session, *, resource_id: str) -> Sharing: ...
    def get_version_for_sharing(self, db: Session, *, version_id: str) -> Sharing: ...
    def lookup_many(self, db: Session, queries: Sequence[RowQuery]) -> Sequence[list[dict[str, Any]] | HubError]: ...
    def export_rows(
        self,
        db: Session,
        *,
        resource_id: str,
        fields: list[str],
        cursor: str | None,
        limit: int,
        region: str | None = None,
        version: int | None = None,
        since: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of rows; `region`: only those within a grant's division scope; `version`: a dataset version
        by number, covered by a grant issued at `since` (each passed only when the grant has one)."""

    def ensure_shareable(self, view: Any) -> None:
        """Refuse (403) an entry version that holds classified (涉密) items: the catalogue's rule."""

    # Dataset versions' change sets (catalog_registry.versions), which the outbox takes.
    def pending_change_sets(self, db: Session, *, limit: int = 20) -> list[ChangeSetView]: ...
    def take_change_set(self, db: Session, *, dataset_id: str) -> None: ...
    def changes(self, db: Session, *, dataset_id: str, after: int, upto: int, limit: int) -> list[ChangeView]: ...


_catalogue: Catalogue = catalog_service
StandIn = TypeVar("StandIn", bound=Catalogue)


def catalogue() -> Catalogue:
    """The catalogue service (catalog_registry.service), or what a test put in its place."""
    return _catalogue


@contextmanager
def substituted(stand_in: StandIn) -> Iterator[StandIn]:
    """Serve the exchange from `stand_in` instead of the catalogue until the block ends (for tests)."""
    global _catalogue
    before, _catalogue = _catalogue, stand_in
    try:
        yield stand_in
    finally:
        _catalogue = before


def items_of(view: Sharing) -> list[Item]:
    return list(view.items)


def control_parameters_of(view: Sharing) -> list[ControlParam]:
    return list(view.control_parameters)


def region_scope(db: Session, view: Any, consumer_department_id: str) -> str | None:
    """The division a grant on `view` to the consumer is scoped to (数据回流), by the catalogue's rule
    (`grant_region_scope`); None for an entry that is not region-scoped."""
    if not getattr(view, "region_scoped", False):
        return None
    return catalog_service.grant_region_scope(db, view=view, consumer_department_id=consumer_department_id)


def rows_within(rows: list[dict[str, Any]], *, division_item: str | None, region: str | None) -> tuple[list[dict[str, Any]], int]:
    """A provider API's answer kept to a grant's division scope, by the catalogue's rule: (kept, withheld)."""
    return catalog_service.rows_within(rows, division_item=division_item, region=region)


def withheld(rows: Sequence[Any]) -> int:
    """How many rows a lookup withheld as outside the grant's division scope (0 from a catalogue that never scopes)."""
    return int(getattr(rows, "withheld", 0))
