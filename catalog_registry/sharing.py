"""The catalogue's contract with the exchange: what the sharing exchange builds on.

- the view of a published entry version (`SharingView`: its items `ItemView`, control parameters
  `ControlParameter`, API distribution `ApiDistributionView`), read by `get_published_for_sharing` and
  `get_version_for_sharing`;
- the classified rule (涉密: `classified_items`, `classified_problems`, `ensure_shareable`), its one home,
  which entries (`entries.py`) and datasets (`datasets.py`) apply too;
- the data paths: lookups (`lookup_rows`; a batch of them, `lookup_many`, reads each entry's rows ahead
  in one statement with `prefetch_rows` into a `ReadAhead`) and exports (`export_rows`), and the lookup
  key a dataset row is indexed by (`lookup_key`, `row_key`); each kept to a grant's division scope
  (数据回流, `region`: the filter is `regions.region_predicate`; an API's answer: `rows_within`).

Other packages reach it through `catalog_registry.service`, which re-exports it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import CatalogEntry, EntryState, EntryVersion, OpenAttribute, Sensitivity, SharingType, VersionState
from catalog_registry.regions import division_code, in_scope, region_predicate, scope_bounds
from catalog_registry.schemas import LABELS
from catalog_registry.versions import served_version
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound
from ops.pagination import decode_cursor, encode_cursor


@dataclass(frozen=True)
class ItemView:
    """An information item (信息项)."""

    name: str
    data_type: str
    length: int | None
    sensitivity: str  # public / internal / sensitive / secret
    personal: bool


@dataclass(frozen=True)
class ControlParameter:
    """A control parameter (管控参数): an item a consumer filters on, and the row limit per query."""

    item: str
    required: bool
    max_rows: int | None


@dataclass(frozen=True)
class ApiDistributionView:
    url: str
    method: str
    timeout_seconds: float
    parameter_schema: dict[str, Any]


@dataclass(frozen=True)
class SharingView:
    """What the exchange needs to know of a published entry version."""

    resource_id: str
    version_id: str
    version: int
    code: str
    name: str
    provider_department_id: str
    sharing_type: str  # "unconditional" | "conditional" | "not_shared"
    conditions: str | None
    legal_basis: str | None
    items: list[ItemView]
    control_parameters: list[ControlParameter]
    allows_export: bool
    has_dataset: bool
    api: ApiDistributionView | None
    entry_state: str = "published"  # "published" | "retired"
    is_current: bool = True  # False for a version a newer one has replaced
    division_item: str | None = None  # the item holding each row's division code (数据回流)
    region_scoped: bool = False  # grants to lower-level governments are scoped to their division


def _sharing_view(entry: CatalogEntry, version: EntryVersion) -> SharingView:
    return _view(
        resource_id=entry.id,
        version_id=version.id,
        version=version.number,
        code=entry.code,
        name=version.name,
        provider_department_id=entry.provider_department_id,
        sharing_type=version.sharing_type,
        conditions=version.conditions,
        legal_basis=version.legal_basis,
        items=version.items,
        control_parameters=version.control_parameters,
        allows_export=version.allows_export,
        has_dataset=entry.current_dataset_id is not None,
        api=version.api,
        entry_state=entry.state,
        is_current=entry.current_version_id == version.id,
        division_item=version.division_item,
        region_scoped=bool(version.region_scoped),
    )


def _view(
    *,
    items: list[Any],
    control_parameters: list[Any],
    api: dict[str, Any] | None,
    **columns: Any,
) -> SharingView:
    """The view from an entry's and a version's columns (the items, control parameters and API as stored)."""
    return SharingView(
        items=[
            ItemView(
                name=i["name"],
                data_type=i["data_type"],
                length=i.get("length"),
                sensitivity=i["sensitivity"],
                personal=bool(i.get("personal")),
            )
            for i in items
        ],
        control_parameters=[
            ControlParameter(item=p["item"], required=bool(p["required"]), max_rows=p.get("max_rows")) for p in control_parameters
        ],
        api=ApiDistributionView(
            url=api["url"],
            method=api["method"],
            timeout_seconds=float(api["timeout_seconds"]),
            parameter_schema=dict(api.get("parameter_schema") or {}),
        )
        if api
        else None,
        **columns,
    )


# -- Classified data (涉密) --------------------------------------------------------------------------
# Classified data never enters a sharing platform (seed 001 §(四), seed 004 §(三): 分级分类). An
# information item may be graded secret (涉密) so that the catalogue is complete, but an entry that
# holds one is never shared: it can only be 不予共享 with its legal basis, and not opened. This is
# the one home of the rule: the entry validation below, the catalogue's data paths (datasets,
# lookups, exports) and the exchange (requests, grants, API calls, through ensure_shareable) use it.


class ClassifiedNotShared(HubError):
    status, code, title = 403, "classified", "Classified data is never shared"


def _grade(item: Any) -> str:
    """An item's sensitivity grade as its English value, whatever form it was stored in (涉密, SECRET, secret)."""
    value = item.get("sensitivity") if isinstance(item, dict) else getattr(item, "sensitivity", None)
    text = str(value or "").strip()
    return LABELS[Sensitivity].get(text, text).lower()


def classified_items(items: Iterable[Any]) -> list[str]:
    """Names of the information items graded secret (涉密); items as stored, as views or as submitted."""
    return [str(item["name"] if isinstance(item, dict) else item.name) for item in items if _grade(item) == Sensitivity.SECRET]


def classified_problems(*, sharing_type: str, open_attribute: str, items: Iterable[Any]) -> list[tuple[str, str]]:
    """Why an entry holding classified items breaks the rule, as (field, message) pairs; none if it does not."""
    secret = classified_items(items)
    if not secret:
        return []
    names = ", ".join(secret)
    problems: list[tuple[str, str]] = []
    if sharing_type != SharingType.NOT_SHARED:
        problems.append(
            (
                "sharing_type",
                f"items graded 涉密 (secret) are never shared: {names}; an entry that holds one is "
                "not_shared (不予共享) with its legal basis",
            )
        )
    if open_attribute != OpenAttribute.NOT_OPEN:
        problems.append(("open_attribute", f"items graded 涉密 (secret) are never opened: {names}; use not_open (不予开放)"))
    return problems


def _version_problems(version: EntryVersion) -> list[tuple[str, str]]:
    return classified_problems(sharing_type=version.sharing_type, open_attribute=version.open_attribute, items=version.items)


def _refuse_classified(code: str, secret: list[str], what: str) -> ClassifiedNotShared:
    return ClassifiedNotShared(
        f"catalogue entry {code} holds information items graded 涉密 (secret): {', '.join(secret)}; {what}. "
        "Its provider must publish a version that is not shared (不予共享) or holds no secret item",
        extra={"classified_items": secret},
    )


def ensure_shareable(view: Any) -> None:
    """Refuse (403 `classified`) to share anything of an entry version that holds a secret item.

    Entries published before the rule existed may hold one: they stay in the catalogue, but no
    request, grant, lookup, export or API call goes through them."""
    secret = classified_items(view.items)
    if secret:
        raise _refuse_classified(view.code, secret, "it cannot be shared")


def shared_entries_holding_classified(db: Session) -> list[dict[str, Any]]:
    """Published entries that are shared although they hold a secret item (published before the rule):
    every access through them is refused until their provider publishes a corrected version."""
    found = []
    for entry, version in repository.published_entries_of(db, None):
        if _version_problems(version):
            found.append(
                {
                    "id": entry.id,
                    "code": entry.code,
                    "name": version.name,
                    "provider_department_id": entry.provider_department_id,
                    "sharing_type": version.sharing_type,
                    "open_attribute": version.open_attribute,
                    "classified_items": classified_items(version.items),
                }
            )
    return found


def get_published_for_sharing(db: Session, *, resource_id: str) -> SharingView:
    """The current published version of an entry (NotFound if none is published; retired → Conflict)."""
    row = repository.current_sharing_row(db, resource_id)  # one statement: the entry and its version's columns
    if row is None or row.current_version_id is None:
        raise NotFound(f"no published catalogue entry {resource_id}")
    if row.entry_state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {row.code} is retired and can no longer be shared")
    return _view(
        resource_id=row.resource_id,
        version_id=row.version_id,
        version=row.number,
        code=row.code,
        name=row.name,
        provider_department_id=row.provider_department_id,
        sharing_type=row.sharing_type,
        conditions=row.conditions,
        legal_basis=row.legal_basis,
        items=row.items,
        control_parameters=row.control_parameters,
        allows_export=bool(row.allows_export),
        has_dataset=row.current_dataset_id is not None,
        api=row.api,
        entry_state=row.entry_state,
        is_current=True,
        division_item=row.division_item,
        region_scoped=bool(row.region_scoped),
    )


def get_version_for_sharing(db: Session, *, version_id: str) -> SharingView:
    """A specific published version (grants point at the version published when the request was filed)."""
    version = repository.version_by_id(db, version_id)
    if version is None or version.state not in (VersionState.PUBLISHED, VersionState.SUPERSEDED):
        raise NotFound(f"no published catalogue version {version_id}")
    entry = repository.entry_by_id(db, version.entry_id)
    assert entry is not None
    return _sharing_view(entry, version)


@dataclass(frozen=True)
class ReadAhead:
    """What one transaction's batch of lookups has read of the catalogue, so that it reads each thing once:
    each entry's served dataset, and rows read ahead by lookup key (:func:`prefetch_rows`). The exchange
    makes one per batch and drops it with the batch's transaction."""

    datasets: dict[str, repository.ServedDataset | None] = field(default_factory=dict)  # by resource id
    rows: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = field(default_factory=dict)  # by dataset id
    # For grants scoped to a division: by (dataset id, scope), each row None where it lies outside the scope.
    scoped: dict[tuple[str, str], dict[str, list[tuple[int, dict[str, Any] | None]]]] = field(default_factory=dict)

    def served_dataset(self, db: Session, resource_id: str) -> repository.ServedDataset | None:
        """The entry's served dataset, read on first use."""
        if resource_id not in self.datasets:
            self.datasets[resource_id] = repository.served_dataset(db, resource_id)
        return self.datasets[resource_id]

    def rows_of(self, dataset_id: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
        """The rows read ahead for a dataset, by lookup key."""
        return self.rows.setdefault(dataset_id, {})

    def scoped_rows_of(self, dataset_id: str, region: str) -> dict[str, list[tuple[int, dict[str, Any] | None]]]:
        """The rows read ahead for a dataset and a division scope, by lookup key."""
        return self.scoped.setdefault((dataset_id, region), {})


class Rows(list[dict[str, Any]]):
    """The rows a lookup returns; `withheld`: how many more rows matched its lookup key but lie outside the
    caller's division scope (数据回流). The caller never sees them: the count is for the trail."""

    withheld: int = 0


def _served_dataset(db: Session, resource_id: str, read: ReadAhead | None = None) -> repository.ServedDataset:
    served = repository.served_dataset(db, resource_id) if read is None else read.served_dataset(db, resource_id)
    if served is None or served.version_id is None:
        raise NotFound(f"no published catalogue entry {resource_id}")
    if served.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {served.code} is retired and can no longer be shared")
    if served.dataset_id is None:
        raise NotFound(f"catalogue entry {served.code} has no loaded dataset")
    secret = classified_items(served.items)
    if secret:
        raise _refuse_classified(served.code, secret, "no row of its dataset is returned")
    return served


def _check_fields(items: list[dict[str, Any]], fields: list[str]) -> list[str]:
    names = [i["name"] for i in items]
    if not fields:
        raise Invalid("name at least one information item to return", errors=[{"field": "fields", "message": "empty"}])
    unknown = [f for f in fields if f not in names]
    if unknown:
        raise Invalid(
            f"not information items of this entry: {', '.join(unknown)}",
            errors=[{"field": "fields", "message": f"unknown item {u}"} for u in unknown],
        )
    return fields


def lookup_key(values: Iterable[str]) -> str:
    """The indexed key of a row: a hash of its control-parameter values, in key order."""
    return hashlib.sha256("\x1f".join(v.strip() for v in values).encode()).hexdigest()


def row_key(key_items: Sequence[str], data: dict[str, Any]) -> str | None:
    """The lookup key a dataset row is indexed by: its key items' values as text; None if the entry has none."""
    return lookup_key(_text(data.get(k)) for k in key_items) if key_items else None


def _params_key(key_items: list[str], params: dict[str, str]) -> str | None:
    """The lookup key a query's parameters give, when they name every key item; None otherwise."""
    return lookup_key(str(params[k]) for k in key_items) if key_items and all(k in params for k in key_items) else None


# Rows read ahead per lookup key for a batch of lookups (see prefetch_rows); a lookup that may return
# more reads the rest itself.
PREFETCH_ROWS = 100


def prefetch_rows(
    db: Session, *, resource_id: str, params: Sequence[dict[str, str]], read_ahead: ReadAhead, region: str | None = None
) -> None:
    """Read ahead, in one statement, the rows that a batch of lookups on one entry will ask for (by
    their lookup keys), so that :func:`lookup_rows` serves each from `read_ahead` instead of a query
    of its own. Lookups that do not give every key parameter, or are wrong, are left to lookup_rows.
    `region`: the division scope of the lookups' grants (None: unscoped)."""
    try:
        served = _served_dataset(db, resource_id, read_ahead)
    except HubError:
        return  # lookup_rows says what is wrong, to each lookup
    key_items = list(served.key_items)
    if not key_items or served.dataset_id is None:
        return
    wanted = {key for p in params if (key := _params_key(key_items, p)) is not None}
    if region is not None:
        scoped = read_ahead.scoped_rows_of(served.dataset_id, region)
        if keys := wanted - scoped.keys():
            found_scoped = repository.scoped_rows_by_key(
                db, served.dataset_id, sorted(keys), bounds=scope_bounds(region), after=0, limit=PREFETCH_ROWS
            )
            scoped.update({key: found_scoped.get(key, []) for key in keys})
        return
    ahead = read_ahead.rows_of(served.dataset_id)
    keys = wanted - ahead.keys()
    if keys:
        found = repository.rows_by_keys(db, served.dataset_id, sorted(keys), limit=PREFETCH_ROWS)
        ahead.update({key: found.get(key, []) for key in keys})


def lookup_rows(
    db: Session,
    *,
    resource_id: str,
    params: dict[str, str],
    fields: list[str],
    limit: int,
    read_ahead: ReadAhead | None = None,
    region: str | None = None,
    version: int | None = None,
    since: datetime | None = None,
) -> Rows:
    """Rows of the current dataset version matching every given control parameter exactly (indexed lookup),
    only `fields` returned, at most `limit` rows. `read_ahead`: what this transaction already read of the
    catalogue (many lookups in one read transaction read each entry once, and their rows ahead together:
    :func:`prefetch_rows`). `region`: the division the caller's grant is scoped to (数据回流): only rows
    within it are returned, as if the others did not exist; how many were withheld is in `Rows.withheld`.
    `version`: a dataset version by number instead of the current one, covered by a grant issued at `since`
    (:func:`catalog_registry.versions.served_version`)."""
    served = _served_dataset(db, resource_id, read_ahead)
    if version is not None:
        served = served_version(db, served, resource_id=resource_id, number=version, since=since)
    _check_fields(served.items, fields)
    declared = {p["item"]: p for p in served.control_parameters}
    unknown = [k for k in params if k not in declared]
    if unknown:
        raise Invalid(
            f"not control parameters of this entry: {', '.join(unknown)}",
            errors=[{"field": f"params.{k}", "message": "not a control parameter"} for k in unknown],
        )
    missing = [name for name, p in declared.items() if p["required"] and not str(params.get(name, "")).strip()]
    if missing:
        raise Invalid(
            f"required control parameters missing: {', '.join(missing)}",
            errors=[{"field": f"params.{m}", "message": "required"} for m in missing],
        )
    if limit < 1:
        raise Invalid("limit must be at least 1", errors=[{"field": "limit", "message": "out of range"}])
    caps = [declared[k]["max_rows"] for k in params if declared[k].get("max_rows")]
    limit = min([limit, *caps])
    key_items: list[str] = list(served.key_items)
    key = _params_key(key_items, params)
    rest = {k: str(v).strip() for k, v in params.items() if k not in key_items or key is None}
    if region is not None and key is not None:
        return _scoped_lookup(db, str(served.dataset_id), key, rest, fields, limit, region, read_ahead)
    found = Rows()
    after = 0
    size = max(limit * 2, 100)
    ahead = read_ahead.rows_of(str(served.dataset_id)) if read_ahead is not None and region is None else {}
    predicate = region_predicate(region) if region is not None else None
    while len(found) < limit:
        if after == 0 and key is not None and key in ahead:
            batch, asked = ahead[key], PREFETCH_ROWS
        else:
            batch = repository.rows_by_key(db, str(served.dataset_id), key, after=after, limit=size, region=predicate)
            asked = size
        for _number, data in batch:
            if all(_text(data.get(k)) == v for k, v in rest.items()):
                found.append({f: data.get(f) for f in fields})
                if len(found) >= limit:
                    break
        if len(batch) < asked:
            break  # that was the last of them
        after = batch[-1][0]
    return found


def _scoped_lookup(
    db: Session,
    dataset_id: str,
    key: str,
    rest: dict[str, str],
    fields: list[str],
    limit: int,
    region: str,
    read_ahead: ReadAhead | None,
) -> Rows:
    """A lookup by key through a grant scoped to a division: the key's rows within the scope, and the count of
    those outside it (withheld, for the trail)."""
    found = Rows()
    after = 0
    size = max(limit * 2, 100)
    ahead = read_ahead.scoped_rows_of(dataset_id, region) if read_ahead is not None else {}
    bounds = scope_bounds(region)
    while len(found) < limit:
        if after == 0 and key in ahead:
            batch, asked = ahead[key], PREFETCH_ROWS
        else:
            batch = repository.scoped_rows_by_key(db, dataset_id, [key], bounds=bounds, after=after, limit=size).get(key, [])
            asked = size
        for _number, data in batch:
            if data is None:
                found.withheld += 1
            elif all(_text(data.get(k)) == v for k, v in rest.items()):
                found.append({f: data.get(f) for f in fields})
                if len(found) >= limit:
                    break
        if len(batch) < asked:
            break
        after = batch[-1][0]
    return found


@dataclass(frozen=True)
class RowQuery:
    """One lookup of a batch (:func:`lookup_many`): rows of an entry's dataset by control parameters."""

    resource_id: str
    params: dict[str, str]
    fields: list[str]
    limit: int
    region: str | None = None  # the division scope of the grant it goes through (数据回流)
    version: int | None = None  # a dataset version by number; None: the current one
    since: datetime | None = None  # when the grant asking was issued (it covers versions from then on)


def lookup_many(db: Session, queries: Sequence[RowQuery]) -> list[Rows | HubError]:
    """A batch of lookups in one transaction, each answered as :func:`lookup_rows` answers it (or with its
    own error): each entry's dataset is read once, and its lookups' rows ahead in one statement
    (:func:`prefetch_rows`)."""
    read_ahead = ReadAhead()
    wanted: dict[tuple[str, str | None], list[dict[str, str]]] = {}
    for query in queries:
        wanted.setdefault((query.resource_id, query.region), []).append(query.params)
    for (resource_id, region), params in wanted.items():
        prefetch_rows(db, resource_id=resource_id, params=params, read_ahead=read_ahead, region=region)
    answers: list[Rows | HubError] = []
    for query in queries:
        try:
            answers.append(
                lookup_rows(
                    db,
                    resource_id=query.resource_id,
                    params=query.params,
                    fields=query.fields,
                    limit=query.limit,
                    read_ahead=read_ahead,
                    region=query.region,
                    version=query.version,
                    since=query.since,
                )
            )
        except HubError as exc:
            answers.append(exc)
    return answers


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def export_rows(
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
    """A page of the current dataset version (or of version `version`, covered by a grant issued at
    `since`) in a stable order, with the next cursor. `region`: the division the caller's grant is scoped
    to: only rows within it, in (division, row) order."""
    served = _served_dataset(db, resource_id)
    if version is not None:
        served = served_version(db, served, resource_id=resource_id, number=version, since=since)
    if not served.allows_export:
        raise Forbidden(f"catalogue entry {served.code} allows lookups by control parameters only, not export")
    _check_fields(served.items, fields)
    if limit < 1 or limit > 10000:
        raise Invalid("limit must be between 1 and 10000", errors=[{"field": "limit", "message": "out of range"}])
    if region is not None:
        return _scoped_export(db, served, fields=fields, cursor=cursor, limit=limit, region=region)
    after = 0
    if cursor:
        dataset_id, after_raw = decode_cursor(cursor, 2)
        if not isinstance(after_raw, int):
            raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
        if dataset_id != served.dataset_id:
            raise Conflict("the dataset was replaced by a newer version since this export began; start again")
        after = int(after_raw)
    rows = repository.rows_page(db, str(served.dataset_id), after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor([served.dataset_id, page[-1].row_number]) if len(rows) > limit else None
    return [{f: r.data.get(f) for f in fields} for r in page], next_cursor


def _scoped_export(
    db: Session, served: repository.ServedDataset, *, fields: list[str], cursor: str | None, limit: int, region: str
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the rows within a division scope, in (division code, row) order: the region index's range."""
    after: tuple[str, int] | None = None
    if cursor:
        dataset_id, code, number = decode_cursor(cursor, 3)
        if not isinstance(code, str) or not isinstance(number, int):
            raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
        if dataset_id != served.dataset_id:
            raise Conflict("the dataset was replaced by a newer version since this export began; start again")
        after = (code, number)
    predicate = region_predicate(region)
    rows = repository.scoped_rows_page(db, str(served.dataset_id), region=predicate, after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor([served.dataset_id, page[-1].region_code, page[-1].row_number]) if len(rows) > limit else None
    return [{f: r.data.get(f) for f in fields} for r in page], next_cursor


def rows_within(rows: list[dict[str, Any]], *, division_item: str | None, region: str | None) -> tuple[list[dict[str, Any]], int]:
    """Rows answered by a provider's own API, kept to a grant's division scope by the division item's value:
    (the rows within it, how many were withheld). Unscoped: all of them; scoped but the entry names no
    division item: none (a row whose division is unknown lies within no scope)."""
    if region is None:
        return rows, 0
    if division_item is None:
        return [], len(rows)
    kept = [row for row in rows if in_scope(division_code(row.get(division_item)), region)]
    return kept, len(rows) - len(kept)
