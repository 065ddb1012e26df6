"""Every query of the catalogue, scoped to what the caller may see."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal,
    not_,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.orm import Session, aliased

from catalog_registry.models import (
    CatalogEntry,
    Dataset,
    DatasetChange,
    DatasetRow,
    Demand,
    DemandState,
    EntryState,
    EntryVersion,
    SearchDoc,
    SearchGram,
    VersionState,
)
from ops.auth import Principal
from ops.identity.models import Department
from ops.pagination import keyset, page_of

# Bigram postings are counted up to this many when choosing the rarest one to drive a search.
_COUNT_CAP = 4000


def readable_entries(who: Principal) -> Select[CatalogEntry]:
    """Entries the caller may read: all for the platform; published or retired ones plus its own for others."""
    query = select(CatalogEntry)
    if who.is_platform_admin:
        return query
    # Published entries, and retired ones that were once published (their history stays readable).
    visible = and_(CatalogEntry.state != EntryState.DRAFT, CatalogEntry.current_version_id.is_not(None))
    if who.department_id:
        visible = or_(visible, CatalogEntry.provider_department_id == who.department_id)
    return query.where(visible)


def get_entry(db: Session, who: Principal, entry_id: str) -> CatalogEntry | None:
    return db.scalars(readable_entries(who).where(CatalogEntry.id == entry_id)).first()


def own_entry(db: Session, who: Principal, entry_id: str) -> CatalogEntry | None:
    """An entry the caller provides (any entry for the platform)."""
    query = select(CatalogEntry).where(CatalogEntry.id == entry_id)
    if not who.is_platform_admin:
        query = query.where(CatalogEntry.provider_department_id == (who.department_id or ""))
    return db.scalars(query).first()


def entry_by_id(db: Session, entry_id: str, *, lock: bool = False) -> CatalogEntry | None:
    query = select(CatalogEntry).where(CatalogEntry.id == entry_id)
    if lock:
        query = query.with_for_update()
    return db.scalars(query).first()


def current_sharing_row(db: Session, entry_id: str) -> Any:
    """An entry with the columns of its current version the exchange's view is made of (`sharing.SharingView`),
    in one Core statement built once (a filing reads it every time); None if there is no such entry. The
    version's columns are None when the entry has no current version."""
    return db.connection().execute(_CURRENT_SHARING_ROW, {"entry_id": entry_id}).first()


_CURRENT_SHARING_ROW = (
    select(
        CatalogEntry.id.label("resource_id"),
        CatalogEntry.code,
        CatalogEntry.provider_department_id,
        CatalogEntry.state.label("entry_state"),
        CatalogEntry.current_version_id,
        CatalogEntry.current_dataset_id,
        EntryVersion.id.label("version_id"),
        EntryVersion.number,
        EntryVersion.name,
        EntryVersion.sharing_type,
        EntryVersion.conditions,
        EntryVersion.legal_basis,
        EntryVersion.items,
        EntryVersion.control_parameters,
        EntryVersion.allows_export,
        EntryVersion.api,
        EntryVersion.division_item,
        EntryVersion.region_scoped,
    )
    .outerjoin(EntryVersion, EntryVersion.id == CatalogEntry.current_version_id)
    .where(CatalogEntry.id == bindparam("entry_id"))
)


def entry_by_code(db: Session, code: str) -> CatalogEntry | None:
    return db.scalars(select(CatalogEntry).where(CatalogEntry.code == code)).first()


def existing_codes(db: Session, codes: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(codes), 500):
        chunk = list(codes[start : start + 500])
        found.update(db.scalars(select(CatalogEntry.code).where(CatalogEntry.code.in_(chunk))))
    return found


def list_entries(
    db: Session,
    who: Principal,
    *,
    provider_department_id: str | None,
    state: str | None,
    version_state: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[CatalogEntry], str | None]:
    query = readable_entries(who)
    if provider_department_id:
        query = query.where(CatalogEntry.provider_department_id == provider_department_id)
    if state:
        query = query.where(CatalogEntry.state == state)
    if version_state:
        query = query.where(
            select(EntryVersion.id).where(EntryVersion.entry_id == CatalogEntry.id, EntryVersion.state == version_state).exists()
        )
    rows = list(db.scalars(keyset(query, created=CatalogEntry.created_at, ident=CatalogEntry.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def versions_of(db: Session, entry_id: str, *, published_only: bool) -> list[EntryVersion]:
    query = select(EntryVersion).where(EntryVersion.entry_id == entry_id).order_by(EntryVersion.number.desc())
    if published_only:
        query = query.where(EntryVersion.state.in_([VersionState.PUBLISHED, VersionState.SUPERSEDED]))
    return list(db.scalars(query))


def latest_version(db: Session, entry_id: str) -> EntryVersion | None:
    return db.scalars(
        select(EntryVersion).where(EntryVersion.entry_id == entry_id).order_by(EntryVersion.number.desc()).limit(1)
    ).first()


def version_by_id(db: Session, version_id: str) -> EntryVersion | None:
    return db.get(EntryVersion, version_id)


def versions_by_ids(db: Session, ids: Sequence[str]) -> dict[str, EntryVersion]:
    if not ids:
        return {}
    return {v.id: v for v in db.scalars(select(EntryVersion).where(EntryVersion.id.in_(list(ids))))}


def entries_by_ids(db: Session, ids: Sequence[str]) -> dict[str, CatalogEntry]:
    if not ids:
        return {}
    return {e.id: e for e in db.scalars(select(CatalogEntry).where(CatalogEntry.id.in_(list(ids))))}


def department_names(db: Session, ids: Sequence[str]) -> dict[str, Department]:
    if not ids:
        return {}
    return {d.id: d for d in db.scalars(select(Department).where(Department.id.in_(list(set(ids)))))}


def department(db: Session, department_id: str) -> Department | None:
    return db.get(Department, department_id)


def published_providers(db: Session) -> list[tuple[str, str]]:
    """(id, name) of every department with a published entry, by name."""
    providers = select(SearchDoc.provider_department_id).distinct()
    return [
        (i, n)
        for i, n in db.execute(
            select(Department.id, Department.name).where(Department.id.in_(providers)).order_by(Department.name)
        )
    ]


# --- datasets -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedDataset:
    """What serving data from an entry needs: its state, its current version's items and its dataset."""

    code: str
    state: str
    version_id: str | None
    items: list[dict[str, Any]]
    control_parameters: list[dict[str, Any]]
    allows_export: bool
    dataset_id: str | None
    key_items: list[str]


_SERVED = (
    select(
        CatalogEntry.code,
        CatalogEntry.state,
        EntryVersion.id,
        EntryVersion.items,
        EntryVersion.control_parameters,
        EntryVersion.allows_export,
        Dataset.id,
        Dataset.key_items,
    )
    .select_from(CatalogEntry)
    .outerjoin(EntryVersion, EntryVersion.id == CatalogEntry.current_version_id)
    .outerjoin(Dataset, Dataset.id == CatalogEntry.current_dataset_id)
    .where(CatalogEntry.id == bindparam("entry_id"))
)


def served_dataset(db: Session, entry_id: str) -> ServedDataset | None:
    """An entry's current version and dataset, in one query (every lookup through a grant reads it)."""
    row = db.execute(_SERVED, {"entry_id": entry_id}).first()
    if row is None:
        return None
    code, state, version_id, items, controls, allows_export, dataset_id, key_items = row
    return ServedDataset(
        code, state, version_id, items or [], controls or [], bool(allows_export), dataset_id, list(key_items or [])
    )


def dataset_by_id(db: Session, dataset_id: str) -> Dataset | None:
    return db.get(Dataset, dataset_id)


def datasets_of(db: Session, entry_id: str) -> list[Dataset]:
    return list(db.scalars(select(Dataset).where(Dataset.entry_id == entry_id).order_by(Dataset.number.desc())))


def next_dataset_number(db: Session, entry_id: str) -> int:
    return int(db.scalar(select(func.coalesce(func.max(Dataset.number), 0)).where(Dataset.entry_id == entry_id)) or 0) + 1


def bulk_insert(db: Session, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert many rows fast: COPY on PostgreSQL, one executemany on SQLite (inside the session's transaction).

    Values must already be in their stored form (JSON as text)."""
    if not rows:
        return
    connection = db.connection()
    names = ", ".join(columns)
    if connection.dialect.name == "postgresql":
        raw = connection.connection.driver_connection
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
    else:
        marks = ", ".join("?" for _ in columns)
        connection.exec_driver_sql(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(rows))  # noqa: S608 (fixed names)


def insert_rows(db: Session, rows: list[tuple[str, int, str | None, str | None, str]]) -> None:
    """Insert dataset rows: (dataset id, row number, lookup key, division code, row as JSON text)."""
    bulk_insert(db, "catalog_dataset_rows", ("dataset_id", "row_number", "lookup_key", "region_code", "data"), rows)


def delete_rows(db: Session, dataset_id: str) -> None:
    db.execute(delete(DatasetRow).where(DatasetRow.dataset_id == dataset_id))


# Built once: the lookups through a grant are the hub's busiest query.
_ROW_NUMBERS = (
    select(DatasetRow.row_number)
    .where(
        DatasetRow.dataset_id == bindparam("dataset_id"),
        DatasetRow.lookup_key == bindparam("lookup_key"),
        DatasetRow.row_number > bindparam("after"),
    )
    .order_by(DatasetRow.row_number)
    .limit(bindparam("limit"))
    .scalar_subquery()
)
_ROWS_BY_KEY = (
    select(DatasetRow.row_number, DatasetRow.data)
    .where(DatasetRow.dataset_id == bindparam("dataset_id"), DatasetRow.row_number.in_(_ROW_NUMBERS))
    .order_by(DatasetRow.row_number)
)


def rows_by_key(
    db: Session, dataset_id: str, lookup_key: str | None, *, after: int, limit: int, region: ColumnElement[bool] | None = None
) -> list[tuple[int, dict[str, Any]]]:
    """(row number, row) of the rows with a lookup key (or any rows, without one), in row order after `after`.
    `region`: the division scope's condition (catalog_registry.regions.region_predicate); see scoped_rows_by_key."""
    if lookup_key is None:
        return [(row.row_number, row.data) for row in rows_page(db, dataset_id, after=after, limit=limit, region=region)]
    # The row numbers come from the covering (dataset, key, row) index; written as a subquery so that
    # no planner prefers walking the primary key in row order.
    params = {"dataset_id": dataset_id, "lookup_key": lookup_key, "after": after, "limit": limit}
    return [(int(number), data) for number, data in db.connection().execute(_ROWS_BY_KEY, params)]


# The rows of several lookup keys at once, at most `limit` each (a batch of lookups reads them in one
# statement instead of one each): the first rows of each key by the covering index, then the rows.
_KEYED = (
    select(
        DatasetRow.lookup_key,
        DatasetRow.row_number,
        func.row_number().over(partition_by=DatasetRow.lookup_key, order_by=DatasetRow.row_number).label("n"),
    )
    .where(DatasetRow.dataset_id == bindparam("dataset_id"), DatasetRow.lookup_key.in_(bindparam("keys", expanding=True)))
    .subquery()
)
_ROWS_BY_KEYS = (
    select(_KEYED.c.lookup_key, DatasetRow.row_number, DatasetRow.data)
    .join(DatasetRow, and_(DatasetRow.dataset_id == bindparam("dataset_id"), DatasetRow.row_number == _KEYED.c.row_number))
    .where(_KEYED.c.n <= bindparam("limit"))
    .order_by(_KEYED.c.lookup_key, DatasetRow.row_number)
)


def rows_by_keys(db: Session, dataset_id: str, keys: Sequence[str], *, limit: int) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """(row number, row) of the first `limit` rows of each lookup key, in row order; keys without rows absent."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    params = {"dataset_id": dataset_id, "keys": sorted(set(keys)), "limit": limit}
    for key, number, data in db.connection().execute(_ROWS_BY_KEYS, params):
        found.setdefault(key, []).append((int(number), data))
    return found


def within_bounds(column: Any, low: Any, high: Any) -> ColumnElement[bool]:
    """A division code column lies in [low, high): the form of every division scope's condition
    (catalog_registry.regions.region_predicate builds it from a scope)."""
    return and_(column >= low, column < high)


# The rows of several lookup keys with, for each, whether it lies within a division scope ([low, high) on
# its code): built once, as _ROWS_BY_KEYS, since scoped lookups are on the same busy path.
_SCOPED_KEYED = (
    select(
        DatasetRow.lookup_key,
        DatasetRow.row_number,
        func.row_number().over(partition_by=DatasetRow.lookup_key, order_by=DatasetRow.row_number).label("n"),
    )
    .where(
        DatasetRow.dataset_id == bindparam("dataset_id"),
        DatasetRow.lookup_key.in_(bindparam("keys", expanding=True)),
        DatasetRow.row_number > bindparam("after"),
    )
    .subquery()
)
_SCOPED_ROWS_BY_KEYS = (
    select(
        _SCOPED_KEYED.c.lookup_key,
        DatasetRow.row_number,
        DatasetRow.data,
        within_bounds(DatasetRow.region_code, bindparam("low"), bindparam("high")).label("in_scope"),
    )
    .join(DatasetRow, and_(DatasetRow.dataset_id == bindparam("dataset_id"), DatasetRow.row_number == _SCOPED_KEYED.c.row_number))
    .where(_SCOPED_KEYED.c.n <= bindparam("limit"))
    .order_by(_SCOPED_KEYED.c.lookup_key, DatasetRow.row_number)
)


def scoped_rows_by_key(
    db: Session, dataset_id: str, lookup_keys: Sequence[str], *, bounds: tuple[str, str], after: int, limit: int
) -> dict[str, list[tuple[int, dict[str, Any] | None]]]:
    """The rows of the lookup keys, at most `limit` each after row `after`, in row order, each with its row when
    its division code lies within the scope's `bounds` ([low, high), regions.scope_bounds) and None when it does
    not: a scoped lookup returns the first and records how many of the second it withheld. One statement, by
    the lookup index."""
    params = {
        "dataset_id": dataset_id,
        "keys": sorted(set(lookup_keys)),
        "after": after,
        "limit": limit,
        "low": bounds[0],
        "high": bounds[1],
    }
    found: dict[str, list[tuple[int, dict[str, Any] | None]]] = {}
    for key, number, data, inside in db.connection().execute(_SCOPED_ROWS_BY_KEYS, params):
        found.setdefault(key, []).append((int(number), data if inside else None))
    return found


def rows_page(
    db: Session, dataset_id: str, *, after: int, limit: int, region: ColumnElement[bool] | None = None
) -> list[DatasetRow]:
    """Rows in row order after `after`; `region`: only those within a division scope (its condition)."""
    query = select(DatasetRow).where(DatasetRow.dataset_id == dataset_id, DatasetRow.row_number > after)
    if region is not None:
        query = query.where(region)
    return list(db.scalars(query.order_by(DatasetRow.row_number).limit(limit)))


def scoped_rows_page(
    db: Session, dataset_id: str, *, region: ColumnElement[bool], after: tuple[str, int] | None, limit: int
) -> list[DatasetRow]:
    """Rows within a division scope in (division code, row number) order after `after`: a range scan of the
    (dataset, region_code, row_number) index, however few of the dataset's rows the scope holds."""
    query = select(DatasetRow).where(DatasetRow.dataset_id == dataset_id, region)
    if after is not None:
        code, number = after
        # A row-value comparison: both databases seek the index to it (an OR of the two would rescan the range).
        query = query.where(tuple_(DatasetRow.region_code, DatasetRow.row_number) > tuple_(code, number))
    return list(db.scalars(query.order_by(DatasetRow.region_code, DatasetRow.row_number).limit(limit)))


def set_region_codes(db: Session, dataset_id: str, codes: list[dict[str, Any]]) -> None:
    """Rewrite division codes of rows, given as {"b_row": row number, "b_code": code or None}."""
    if codes:
        statement = (
            update(DatasetRow)
            .where(DatasetRow.dataset_id == dataset_id, DatasetRow.row_number == bindparam("b_row"))
            .values(region_code=bindparam("b_code"))
        )
        db.connection().execute(statement, codes)


def set_lookup_keys(db: Session, dataset_id: str, keys: list[dict[str, Any]]) -> None:
    """Rewrite lookup keys of rows, given as {"b_row": row number, "b_key": key}."""
    if keys:
        statement = (
            update(DatasetRow)
            .where(DatasetRow.dataset_id == dataset_id, DatasetRow.row_number == bindparam("b_row"))
            .values(lookup_key=bindparam("b_key"))
        )
        db.connection().execute(statement, keys)


# --- search index ---------------------------------------------------------------------------


def doc_for_entry(db: Session, entry_id: str) -> SearchDoc | None:
    return db.scalars(select(SearchDoc).where(SearchDoc.entry_id == entry_id)).first()


def remove_doc(db: Session, entry_id: str) -> None:
    doc = doc_for_entry(db, entry_id)
    if doc is not None:
        db.execute(delete(SearchGram).where(SearchGram.doc_id == doc.id))
        db.execute(delete(SearchDoc).where(SearchDoc.id == doc.id))


def insert_doc(db: Session, values: dict[str, Any], name_grams: set[int], all_grams: set[int]) -> int:
    doc_id = int(db.execute(insert(SearchDoc).values(**values).returning(SearchDoc.id)).scalar_one())
    rows = [(g, 1, doc_id) for g in name_grams] + [(g, 0, doc_id) for g in all_grams - name_grams]
    bulk_insert(db, "catalog_search_grams", ("gram", "scope", "doc_id"), rows)
    return doc_id


def posting_size(db: Session, gram: int, scopes: Sequence[int]) -> int:
    """How many docs hold a bigram in the given scopes (counted up to a cap: only the smallest matters)."""
    inner = (
        select(SearchGram.doc_id).where(SearchGram.gram == gram, SearchGram.scope.in_(list(scopes))).limit(_COUNT_CAP).subquery()
    )
    return int(db.scalar(select(func.count()).select_from(inner)) or 0)


def provider_size(db: Session, provider_id: str) -> int:
    inner = select(SearchDoc.id).where(SearchDoc.provider_department_id == provider_id).limit(_COUNT_CAP).subquery()
    return int(db.scalar(select(func.count()).select_from(inner)) or 0)


def posting(db: Session, gram: int, scope: int, *, before: int | None, limit: int) -> list[int]:
    """Doc ids of a bigram's posting in one scope, newest first (an index range scan)."""
    query = select(SearchGram.doc_id).where(SearchGram.gram == gram, SearchGram.scope == scope)
    if before is not None:
        query = query.where(SearchGram.doc_id < before)
    return [int(i) for i in db.scalars(query.order_by(SearchGram.doc_id.desc()).limit(limit))]


def posting_filtered(
    db: Session, gram: int, scope: int, filters: list[ColumnElement[bool]], *, before: int | None, limit: int
) -> list[int]:
    """Doc ids of a bigram's posting whose docs pass the (equality) filters, newest first, in one statement."""
    query = (
        select(SearchGram.doc_id)
        .join(SearchDoc, SearchDoc.id == SearchGram.doc_id)
        .where(SearchGram.gram == gram, SearchGram.scope == scope, *filters)
    )
    if before is not None:
        query = query.where(SearchGram.doc_id < before)
    return [int(i) for i in db.scalars(query.order_by(SearchGram.doc_id.desc()).limit(limit))]


def term_conditions(terms: list[str], *, in_name: bool) -> list[ColumnElement[bool]]:
    """Every term in the name; or every term in the text but not every one in the name."""
    if not terms:
        return []
    name_match = and_(*[SearchDoc.name_norm.contains(t, autoescape=True) for t in terms])
    if in_name:
        return [name_match]
    return [and_(*[SearchDoc.text_norm.contains(t, autoescape=True) for t in terms]), not_(name_match)]


def matching_ids(db: Session, ids: list[int], conditions: list[ColumnElement[bool]]) -> list[int]:
    """Those of `ids` whose docs meet the conditions, newest first (primary-key lookups, ids only)."""
    if not ids:
        return []
    if not conditions:
        return ids
    query = select(SearchDoc.id).where(SearchDoc.id.in_(ids), *conditions).order_by(SearchDoc.id.desc())
    return [int(i) for i in db.scalars(query)]


def docs_by_ids(db: Session, ids: list[int]) -> list[SearchDoc]:
    """The docs of `ids`, in the order given."""
    if not ids:
        return []
    found = {d.id: d for d in db.scalars(select(SearchDoc).where(SearchDoc.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def docs_scan(db: Session, conditions: list[ColumnElement[bool]], *, before: int | None, limit: int) -> list[SearchDoc]:
    """Docs meeting the conditions, newest first, without the bigram index (filters only, one-character words)."""
    query = select(SearchDoc).where(*conditions)
    if before is not None:
        query = query.where(SearchDoc.id < before)
    return list(db.scalars(query.order_by(SearchDoc.id.desc()).limit(limit)))


def search_filters(
    *,
    provider_department_id: str | None,
    sharing_type: str | None,
    classification: str | None,
    update_cycle: str | None,
    is_certificate: bool | None,
) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    if provider_department_id:
        filters.append(SearchDoc.provider_department_id == provider_department_id)
    if sharing_type:
        filters.append(SearchDoc.sharing_type == sharing_type)
    if classification:
        filters.append(SearchDoc.classification == classification)
    if update_cycle:
        filters.append(SearchDoc.update_cycle == update_cycle)
    if is_certificate is not None:
        filters.append(SearchDoc.is_certificate == is_certificate)
    return filters


def published_entries_of(db: Session, department_id: str | None) -> list[tuple[CatalogEntry, EntryVersion]]:
    query = (
        select(CatalogEntry, EntryVersion)
        .join(EntryVersion, EntryVersion.id == CatalogEntry.current_version_id)
        .where(CatalogEntry.state == EntryState.PUBLISHED)
        .order_by(CatalogEntry.code)
    )
    if department_id:
        query = query.where(CatalogEntry.provider_department_id == department_id)
    return [(e, v) for e, v in db.execute(query)]


def published_page(db: Session, *, after_code: str | None, limit: int) -> list[tuple[CatalogEntry, EntryVersion]]:
    query = (
        select(CatalogEntry, EntryVersion)
        .join(EntryVersion, EntryVersion.id == CatalogEntry.current_version_id)
        .where(CatalogEntry.state == EntryState.PUBLISHED)
        .order_by(CatalogEntry.code)
        .limit(limit)
    )
    if after_code:
        query = query.where(CatalogEntry.code > after_code)
    return [(e, v) for e, v in db.execute(query)]


# --- demands --------------------------------------------------------------------------------


def readable_demands(who: Principal) -> Select[Demand]:
    """Demands the caller may read: all for the platform; for a department, those it posted, those
    addressed to it, and open ones addressed to nobody in particular."""
    query = select(Demand)
    if who.is_platform_admin:
        return query
    own = who.department_id or ""
    return query.where(
        or_(
            Demand.consumer_department_id == own,
            Demand.target_department_id == own,
            Demand.answered_by_department_id == own,
            and_(Demand.target_department_id.is_(None), Demand.state == DemandState.OPEN),
        )
    )


def get_demand(db: Session, who: Principal, demand_id: str) -> Demand | None:
    return db.scalars(readable_demands(who).where(Demand.id == demand_id)).first()


def list_demands(
    db: Session,
    who: Principal,
    *,
    role: str | None,
    department_id: str | None,
    state: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Demand], str | None]:
    query = readable_demands(who)
    if department_id:
        posted = Demand.consumer_department_id == department_id
        incoming = or_(
            Demand.target_department_id == department_id,
            Demand.answered_by_department_id == department_id,
            and_(
                Demand.target_department_id.is_(None),
                Demand.state == DemandState.OPEN,
                Demand.consumer_department_id != department_id,
            ),
        )
        query = query.where({"posted": posted, "incoming": incoming}.get(role or "", or_(posted, incoming)))
    if state:
        query = query.where(Demand.state == state)
    rows = list(db.scalars(keyset(query, created=Demand.created_at, ident=Demand.id, cursor=cursor, limit=limit)))
    return page_of(rows, limit)


def department_by_code(db: Session, code: str) -> Department | None:
    return db.scalars(select(Department).where(Department.code == code)).first()


def insert_docs(db: Session, docs: list[dict[str, Any]], grams: list[tuple[set[int], set[int]]]) -> None:
    """Insert many search docs and their bigrams at once."""
    if not docs:
        return
    ids = list(db.scalars(insert(SearchDoc).returning(SearchDoc.id, sort_by_parameter_order=True), docs))
    rows: list[tuple[int, int, int]] = []
    for doc_id, (name_grams, all_grams) in zip(ids, grams, strict=True):
        rows += [(g, 1, doc_id) for g in name_grams]
        rows += [(g, 0, doc_id) for g in all_grams - name_grams]
    bulk_insert(db, "catalog_search_grams", ("gram", "scope", "doc_id"), rows)


# --- dataset versions and change sets ------------------------------------------------------------


def keyed_rows_text(db: Session, dataset_id: str, *, after: tuple[str, int] | None, limit: int) -> list[tuple[str, int, str]]:
    """(lookup key, row number, row as JSON text) in key order after `after`, by the (dataset, key, row) index."""
    query = select(DatasetRow.lookup_key, DatasetRow.row_number, cast(DatasetRow.data, Text)).where(
        DatasetRow.dataset_id == dataset_id, DatasetRow.lookup_key.is_not(None)
    )
    if after is not None:
        query = query.where(tuple_(DatasetRow.lookup_key, DatasetRow.row_number) > tuple_(literal(after[0]), literal(after[1])))
    query = query.order_by(DatasetRow.lookup_key, DatasetRow.row_number).limit(limit)
    return [(str(k), int(n), str(t)) for k, n, t in db.execute(query)]


def rows_text(db: Session, dataset_id: str, *, after: int, limit: int) -> list[tuple[int, str | None, str]]:
    """(row number, lookup key, row as JSON text) in row order after `after`."""
    query = (
        select(DatasetRow.row_number, DatasetRow.lookup_key, cast(DatasetRow.data, Text))
        .where(DatasetRow.dataset_id == dataset_id, DatasetRow.row_number > after)
        .order_by(DatasetRow.row_number)
        .limit(limit)
    )
    return [(int(n), k, str(t)) for n, k, t in db.execute(query)]


def insert_changes(db: Session, rows: list[tuple[str, int, str, str | None, str]]) -> None:
    """Insert change-set rows: (dataset id, seq, op, lookup key, row as JSON text)."""
    bulk_insert(db, "catalog_dataset_changes", ("dataset_id", "seq", "op", "lookup_key", "data"), rows)


def changes_page(db: Session, dataset_id: str, *, after: int, upto: int, limit: int) -> list[DatasetChange]:
    """A version's changes with after < seq <= upto, in order."""
    query = (
        select(DatasetChange)
        .where(DatasetChange.dataset_id == dataset_id, DatasetChange.seq > after, DatasetChange.seq <= upto)
        .order_by(DatasetChange.seq)
        .limit(limit)
    )
    return list(db.scalars(query))


def datasets_with_pending_changes(db: Session, *, limit: int) -> list[Dataset]:
    query = select(Dataset).where(Dataset.changes_state == "pending").order_by(Dataset.created_at, Dataset.id).limit(limit)
    return list(db.scalars(query))


def dataset_by_number(db: Session, entry_id: str, number: int) -> Dataset | None:
    return db.scalars(select(Dataset).where(Dataset.entry_id == entry_id, Dataset.number == number)).first()


def dataset_current_at(db: Session, entry_id: str, moment: datetime) -> Dataset | None:
    """The entry's newest dataset version loaded at or before `moment`."""
    query = (
        select(Dataset).where(Dataset.entry_id == entry_id, Dataset.created_at <= moment).order_by(Dataset.number.desc()).limit(1)
    )
    return db.scalars(query).first()


def versions_beyond(db: Session, *, kept: int, limit: int) -> list[Dataset]:
    """Replaced dataset versions older than their entry's newest `kept` ones, whose rows are still stored."""
    newer = aliased(Dataset)
    count = (
        select(func.count())
        .select_from(newer)
        .where(newer.entry_id == Dataset.entry_id, newer.number > Dataset.number)
        .scalar_subquery()
    )
    query = select(Dataset).where(Dataset.state == "replaced", count >= kept).order_by(Dataset.created_at).limit(limit)
    return list(db.scalars(query))


def delete_rows_batch(db: Session, dataset_id: str, *, limit: int) -> int:
    """Delete up to `limit` rows of a dataset (the first by row number); how many went."""
    numbers = (
        select(DatasetRow.row_number).where(DatasetRow.dataset_id == dataset_id).order_by(DatasetRow.row_number).limit(limit)
    )
    last = db.scalar(select(func.max(numbers.subquery().c.row_number)))
    if last is None:
        return 0
    result = db.execute(delete(DatasetRow).where(DatasetRow.dataset_id == dataset_id, DatasetRow.row_number <= last))
    return int(getattr(result, "rowcount", 0) or 0)
