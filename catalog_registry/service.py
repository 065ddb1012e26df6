"""Rules of the catalogue: entries and their review, datasets, search, demands, reports, import and export.

The functions under "Contract with the exchange" are what the sharing exchange builds on.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.models import (
    CatalogEntry,
    Classification,
    Dataset,
    DatasetState,
    Demand,
    DemandState,
    EntryState,
    EntryVersion,
    OpenAttribute,
    SearchDoc,
    Sensitivity,
    SharingType,
    UpdateCycle,
    VersionState,
)
from catalog_registry.schemas import (
    LABELS,
    DatasetRead,
    DemandAnswer,
    DemandCreate,
    EntryCreate,
    EntryFields,
    EntryRead,
    ResponsibilityEntry,
    ResponsibilityList,
    SearchHit,
    VersionRead,
    entry_problems,
    enum_value,
)
from catalog_registry.text import bigrams, join_fields, normalise, query_terms
from ops import audit, spreadsheet
from ops.auth import Principal
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound
from ops.metrics import CATALOGUE_EVENTS
from ops.pagination import MAX_LIMIT, decode_cursor, encode_cursor
from ops.storage import ObjectStore

OPEN_STATES = (VersionState.DRAFT, VersionState.RETURNED)
ROW_BATCH = 2000
MAX_REPORTED_ERRORS = 50

# ==========================================================================================
# Contract with the exchange
# ==========================================================================================


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


def _sharing_view(entry: CatalogEntry, version: EntryVersion) -> SharingView:
    api = version.api
    return SharingView(
        resource_id=entry.id,
        version_id=version.id,
        version=version.number,
        code=entry.code,
        name=version.name,
        provider_department_id=entry.provider_department_id,
        sharing_type=version.sharing_type,
        conditions=version.conditions,
        legal_basis=version.legal_basis,
        items=[
            ItemView(
                name=i["name"],
                data_type=i["data_type"],
                length=i.get("length"),
                sensitivity=i["sensitivity"],
                personal=bool(i.get("personal")),
            )
            for i in version.items
        ],
        control_parameters=[
            ControlParameter(item=p["item"], required=bool(p["required"]), max_rows=p.get("max_rows"))
            for p in version.control_parameters
        ],
        allows_export=version.allows_export,
        has_dataset=entry.current_dataset_id is not None,
        api=ApiDistributionView(
            url=api["url"],
            method=api["method"],
            timeout_seconds=float(api["timeout_seconds"]),
            parameter_schema=dict(api.get("parameter_schema") or {}),
        )
        if api
        else None,
        entry_state=entry.state,
        is_current=entry.current_version_id == version.id,
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
    entry = repository.entry_by_id(db, resource_id)
    if entry is None or entry.current_version_id is None:
        raise NotFound(f"no published catalogue entry {resource_id}")
    if entry.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {entry.code} is retired and can no longer be shared")
    version = repository.version_by_id(db, entry.current_version_id)
    assert version is not None
    return _sharing_view(entry, version)


def get_version_for_sharing(db: Session, *, version_id: str) -> SharingView:
    """A specific published version (grants point at the version published when the request was filed)."""
    version = repository.version_by_id(db, version_id)
    if version is None or version.state not in (VersionState.PUBLISHED, VersionState.SUPERSEDED):
        raise NotFound(f"no published catalogue version {version_id}")
    entry = repository.entry_by_id(db, version.entry_id)
    assert entry is not None
    return _sharing_view(entry, version)


def _served_dataset(
    db: Session, resource_id: str, read: dict[str, repository.ServedDataset | None] | None = None
) -> repository.ServedDataset:
    if read is None:
        served = repository.served_dataset(db, resource_id)
    else:
        if resource_id not in read:
            read[resource_id] = repository.served_dataset(db, resource_id)
        served = read[resource_id]
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


def _params_key(key_items: list[str], params: dict[str, str]) -> str | None:
    """The lookup key a query's parameters give, when they name every key item; None otherwise."""
    return lookup_key(str(params[k]) for k in key_items) if key_items and all(k in params for k in key_items) else None


# Rows read ahead per lookup key for a batch of lookups (see prefetch_rows); a lookup that may return
# more reads the rest itself.
PREFETCH_ROWS = 100


def _read_ahead(served_read: dict[str, Any], dataset_id: str) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """The rows read ahead for a dataset in this transaction, by lookup key (kept beside the entries read)."""
    ahead: dict[str, list[tuple[int, dict[str, Any]]]] = served_read.setdefault(f"rows:{dataset_id}", {})
    return ahead


def prefetch_rows(db: Session, *, resource_id: str, params: Sequence[dict[str, str]], served_read: dict[str, Any]) -> None:
    """Read ahead, in one statement, the rows that a batch of lookups on one entry will ask for (by
    their lookup keys), so that :func:`lookup_rows` serves each from `served_read` instead of a query
    of its own. Lookups that do not give every key parameter, or are wrong, are left to lookup_rows."""
    try:
        served = _served_dataset(db, resource_id, served_read)
    except HubError:
        return  # lookup_rows says what is wrong, to each lookup
    key_items = list(served.key_items)
    if not key_items or served.dataset_id is None:
        return
    ahead = _read_ahead(served_read, served.dataset_id)
    keys = {key for p in params if (key := _params_key(key_items, p)) is not None} - ahead.keys()
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
    served_read: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Rows of the current dataset version matching every given control parameter exactly (indexed lookup),
    only `fields` returned, at most `limit` rows. `served_read`: what this transaction already read of the
    catalogue (many lookups in one read transaction read each entry once, and their rows ahead together:
    :func:`prefetch_rows`)."""
    served = _served_dataset(db, resource_id, served_read)
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
    found: list[dict[str, Any]] = []
    after = 0
    size = max(limit * 2, 100)
    ahead = _read_ahead(served_read, str(served.dataset_id)) if served_read is not None else {}
    while len(found) < limit:
        if after == 0 and key is not None and key in ahead:
            batch, asked = ahead[key], PREFETCH_ROWS
        else:
            batch, asked = repository.rows_by_key(db, str(served.dataset_id), key, after=after, limit=size), size
        for _number, data in batch:
            if all(_text(data.get(k)) == v for k, v in rest.items()):
                found.append({f: data.get(f) for f in fields})
                if len(found) >= limit:
                    break
        if len(batch) < asked:
            break  # that was the last of them
        after = batch[-1][0]
    return found


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def export_rows(
    db: Session, *, resource_id: str, fields: list[str], cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the current dataset version in a stable order, with the next cursor."""
    served = _served_dataset(db, resource_id)
    if not served.allows_export:
        raise Forbidden(f"catalogue entry {served.code} allows lookups by control parameters only, not export")
    _check_fields(served.items, fields)
    if limit < 1 or limit > 10000:
        raise Invalid("limit must be between 1 and 10000", errors=[{"field": "limit", "message": "out of range"}])
    after = 0
    if cursor:
        dataset_id, after_raw = decode_cursor(cursor, 2)
        if dataset_id != served.dataset_id:
            raise Conflict("the dataset was replaced by a newer version since this export began; start again")
        after = int(after_raw)
    rows = repository.rows_page(db, str(served.dataset_id), after=after, limit=limit + 1)
    page = rows[:limit]
    next_cursor = encode_cursor([served.dataset_id, page[-1].row_number]) if len(rows) > limit else None
    return [{f: r.data.get(f) for f in fields} for r in page], next_cursor


# ==========================================================================================
# Entries and their lifecycle
# ==========================================================================================


def _problems_to_invalid(problems: list[tuple[str, str]]) -> Invalid:
    summary = "; ".join(f"{f}: {m}" for f, m in problems)
    return Invalid(summary, errors=[{"field": f, "message": m} for f, m in problems])


def entry_rules(data: EntryFields) -> list[tuple[str, str]]:
    """Every cross-field rule of an entry: conditions, legal basis, items, control parameters, classified items."""
    return [
        *entry_problems(data),
        *classified_problems(sharing_type=data.sharing_type, open_attribute=data.open_attribute, items=data.items),
    ]


def check_fields(data: EntryFields) -> None:
    """Refuse an entry that breaks a cross-field rule (conditions, legal basis, items, control parameters, 涉密)."""
    problems = entry_rules(data)
    if problems:
        raise _problems_to_invalid(problems)


def _check_version(version: EntryVersion) -> None:
    """Refuse to submit or publish a version that breaks the classified rule (a draft older than the rule)."""
    problems = _version_problems(version)
    if problems:
        raise _problems_to_invalid(problems)


def _version_values(data: EntryFields) -> dict[str, Any]:
    values = data.model_dump(mode="json", exclude={"code", "provider_department_id"})
    values["name"] = values["name"].strip()
    if data.sharing_type != SharingType.CONDITIONAL:
        values["conditions"] = values["conditions"] or None
    return values


def _provider_for(db: Session, who: Principal, requested: str | None) -> str:
    if who.is_platform_admin:
        if not requested:
            raise Invalid(
                "a platform administrator must name the provider department",
                errors=[{"field": "provider_department_id", "message": "required"}],
            )
        department = repository.department(db, requested)
        if department is None:
            raise Invalid(
                f"department {requested} does not exist",
                errors=[{"field": "provider_department_id", "message": "unknown department"}],
            )
        return department.id
    own = who.require_department()
    if requested not in (None, own):
        raise Forbidden("a department registers only its own resources")
    return own


def full_code(provider_code: str, code: str) -> str:
    """The catalogue code: the provider's 统一社会信用代码, a dash, and the provider's own code."""
    if re.match(r"^[0-9A-Z]{18}-", code):
        if not code.startswith(provider_code + "-"):
            raise Invalid(
                f"code {code} does not begin with the provider's code {provider_code}",
                errors=[{"field": "code", "message": "must begin with the provider's code"}],
            )
        return code
    return f"{provider_code}-{code}"


def create_entry(db: Session, *, who: Principal, data: EntryCreate) -> CatalogEntry:
    """Register a catalogue entry as a draft (version 1) of the provider department."""
    check_fields(data)
    provider_id = _provider_for(db, who, data.provider_department_id)
    provider = repository.department(db, provider_id)
    assert provider is not None
    code = full_code(provider.code, data.code)
    if repository.entry_by_code(db, code):
        raise Conflict(f"a catalogue entry with code {code} already exists", errors=[{"field": "code", "message": "duplicate"}])
    entry = CatalogEntry(code=code, provider_department_id=provider_id, state=EntryState.DRAFT)
    db.add(entry)
    db.flush()
    version = EntryVersion(entry_id=entry.id, number=1, state=VersionState.DRAFT, created_by=who.subject, **_version_values(data))
    db.add(version)
    db.flush()
    audit.record(
        db, actor=who, action="catalog.entry.create", object_type="catalog_entry", object_id=entry.id, detail={"code": code}
    )
    CATALOGUE_EVENTS.labels(event="created").inc()
    return entry


def _own(db: Session, who: Principal, entry_id: str) -> CatalogEntry:
    entry = repository.own_entry(db, who, entry_id)
    if entry is None:
        if repository.get_entry(db, who, entry_id) is not None:
            raise Forbidden("only the provider department may change its catalogue entry")
        raise NotFound(f"catalogue entry {entry_id} not found")
    return entry


def _open_version(db: Session, entry: CatalogEntry) -> EntryVersion | None:
    latest = repository.latest_version(db, entry.id)
    if latest is not None and latest.state in (*OPEN_STATES, VersionState.SUBMITTED):
        return latest
    return None


def update_draft(db: Session, *, who: Principal, entry_id: str, data: EntryFields, if_match: str | None) -> CatalogEntry:
    """Replace the metadata of the entry's draft or returned version."""
    check_fields(data)
    entry = _own(db, who, entry_id)
    version = _open_version(db, entry)
    if version is None or version.state not in OPEN_STATES:
        state = version.state if version else "published"
        raise Conflict(
            f"the entry has no draft to edit (its latest version is {state}); "
            "a published version is immutable: start a new version instead"
        )
    check_if_match(if_match, version.version)
    for key, value in _version_values(data).items():
        setattr(version, key, value)
    version.state = VersionState.DRAFT
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.version.update",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={"version": version.number},
    )
    return entry


def new_version(db: Session, *, who: Principal, entry_id: str, data: EntryFields) -> CatalogEntry:
    """Start a new version of a published entry; it goes through review before it replaces the current one."""
    check_fields(data)
    entry = _own(db, who, entry_id)
    if entry.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {entry.code} is retired")
    if entry.state != EntryState.PUBLISHED:
        raise Conflict("the entry has not been published yet: edit its draft instead")
    if _open_version(db, entry) is not None:
        raise Conflict("the entry already has a version in progress; edit or finish it first")
    latest = repository.latest_version(db, entry.id)
    number = (latest.number if latest else 0) + 1
    version = EntryVersion(
        entry_id=entry.id, number=number, state=VersionState.DRAFT, created_by=who.subject, **_version_values(data)
    )
    db.add(version)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.version.create",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={"version": number},
    )
    return entry


def submit(db: Session, *, who: Principal, entry_id: str, if_match: str | None = None) -> CatalogEntry:
    """The provider submits its draft for the platform's review."""
    entry = _own(db, who, entry_id)
    version = _open_version(db, entry)
    if version is None or version.state not in OPEN_STATES:
        raise Conflict("there is no draft to submit" if version is None else f"the version is already {version.state}")
    check_if_match(if_match, version.version)
    _check_version(version)
    if version.sharing_type != SharingType.NOT_SHARED and not (version.serves_dataset or version.api):
        raise Invalid(
            "a shared entry must be served from a dataset, an API, or both",
            errors=[{"field": "serves_dataset", "message": "no distribution"}, {"field": "api", "message": "no distribution"}],
        )
    version.state = VersionState.SUBMITTED
    version.submitted_at = utcnow()
    version.return_reason = None
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.version.submit",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={"version": version.number},
    )
    CATALOGUE_EVENTS.labels(event="submitted").inc()
    return entry


def review(
    db: Session, *, who: Principal, entry_id: str, decision: str, reason: str | None, if_match: str | None = None
) -> CatalogEntry:
    """The platform publishes a submitted version, or returns it to the provider with a reason."""
    if not who.is_platform_admin:
        raise Forbidden("only the platform reviews catalogue entries")
    entry = repository.entry_by_id(db, entry_id, lock=True)
    if entry is None:
        raise NotFound(f"catalogue entry {entry_id} not found")
    version = _open_version(db, entry)
    if version is None or version.state != VersionState.SUBMITTED:
        raise Conflict("the entry has no version waiting for review")
    check_if_match(if_match, version.version)
    now = utcnow()
    version.reviewed_at = now
    version.reviewed_by = who.subject
    if decision == "return":
        if not (reason or "").strip():
            raise Invalid("a returned entry must carry the reason", errors=[{"field": "reason", "message": "required"}])
        version.state = VersionState.RETURNED
        version.return_reason = (reason or "").strip()
        db.flush()
        audit.record(
            db,
            actor=who,
            action="catalog.version.return",
            object_type="catalog_entry",
            object_id=entry.id,
            purpose=version.return_reason,
            detail={"version": version.number},
        )
        CATALOGUE_EVENTS.labels(event="returned").inc()
        return entry
    if decision != "publish":
        raise Invalid("decision must be publish or return", errors=[{"field": "decision", "message": "unknown"}])
    _check_version(version)
    _publish(db, entry, version, now)
    audit.record(
        db,
        actor=who,
        action="catalog.version.publish",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={"version": version.number, "version_id": version.id},
    )
    CATALOGUE_EVENTS.labels(event="published").inc()
    return entry


def _publish(db: Session, entry: CatalogEntry, version: EntryVersion, now: datetime) -> None:
    if entry.current_version_id:
        previous = repository.version_by_id(db, entry.current_version_id)
        if previous is not None:
            previous.state = VersionState.SUPERSEDED
    version.state = VersionState.PUBLISHED
    version.published_at = now
    entry.current_version_id = version.id
    entry.state = EntryState.PUBLISHED
    db.flush()
    provider = repository.department(db, entry.provider_department_id)
    index_entry(db, entry=entry, version=version, provider_name=provider.name if provider else "")
    if entry.current_dataset_id:
        _rekey(db, entry.current_dataset_id, _key_items(version))


def retire(db: Session, *, who: Principal, entry_id: str, reason: str) -> CatalogEntry:
    """Retire an entry: it can no longer be shared, and stays readable for history."""
    entry = _own(db, who, entry_id)
    if entry.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {entry.code} is already retired")
    open_version = _open_version(db, entry)
    if open_version is not None:
        open_version.state = VersionState.WITHDRAWN
    entry.state = EntryState.RETIRED
    entry.retired_at = utcnow()
    entry.retired_reason = reason
    repository.remove_doc(db, entry.id)
    db.flush()
    audit.record(db, actor=who, action="catalog.entry.retire", object_type="catalog_entry", object_id=entry.id, purpose=reason)
    CATALOGUE_EVENTS.labels(event="retired").inc()
    return entry


def get_entry(db: Session, *, who: Principal, entry_id: str) -> CatalogEntry:
    """An entry the caller may see, or NotFound."""
    entry = repository.get_entry(db, who, entry_id)
    if entry is None:
        raise NotFound(f"catalogue entry {entry_id} not found")
    return entry


def _sees_drafts(who: Principal, entry: CatalogEntry) -> bool:
    return who.is_platform_admin or entry.provider_department_id == who.department_id


def shown_version(db: Session, *, who: Principal, entry: CatalogEntry) -> EntryVersion:
    """The version a caller sees: the latest for the provider and the platform, else the published one."""
    if _sees_drafts(who, entry):
        latest = repository.latest_version(db, entry.id)
        assert latest is not None
        return latest
    assert entry.current_version_id is not None
    version = repository.version_by_id(db, entry.current_version_id)
    assert version is not None
    return version


def entry_read(db: Session, *, who: Principal, entry: CatalogEntry) -> EntryRead:
    """The response view of an entry for this caller."""
    version = shown_version(db, who=who, entry=entry)
    provider = repository.department(db, entry.provider_department_id)
    return EntryRead(
        id=entry.id,
        code=entry.code,
        provider_department_id=entry.provider_department_id,
        provider_name=provider.name if provider else "",
        state=entry.state,
        current_version_id=entry.current_version_id,
        has_dataset=entry.current_dataset_id is not None,
        retired_at=entry.retired_at,
        retired_reason=entry.retired_reason,
        created_at=entry.created_at,
        version=VersionRead.model_validate(version),
    )


def list_entries(
    db: Session,
    *,
    who: Principal,
    provider_department_id: str | None = None,
    state: str | None = None,
    version_state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[EntryRead], str | None]:
    """Entries the caller may see, newest first (state / version_state filters: e.g. submitted ones to review)."""
    if state is not None:
        _enum_param("state", EntryState, state)
    if version_state is not None:
        _enum_param("version_state", VersionState, version_state)
    rows, next_cursor = repository.list_entries(
        db,
        who,
        provider_department_id=provider_department_id,
        state=state,
        version_state=version_state,
        cursor=cursor,
        limit=limit,
    )
    return [entry_read(db, who=who, entry=e) for e in rows], next_cursor


def list_versions(db: Session, *, who: Principal, entry_id: str) -> list[EntryVersion]:
    """The versions of an entry: every one for its provider and the platform, published ones for others."""
    entry = get_entry(db, who=who, entry_id=entry_id)
    return repository.versions_of(db, entry.id, published_only=not _sees_drafts(who, entry))


def _enum_param(name: str, enum: Any, value: str) -> str:
    try:
        return str(enum_value(enum, value).value)
    except ValueError as exc:
        raise Invalid(f"{name}: {exc}", errors=[{"field": name, "message": str(exc)}]) from None


# ==========================================================================================
# Datasets
# ==========================================================================================


class _ChunkReader(io.RawIOBase):
    """A readable binary stream over an iterator of byte chunks (no copy of the whole object)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._view = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._view:
            try:
                self._view = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(buffer), len(self._view))
        buffer[:n] = self._view[:n]
        self._view = self._view[n:]
        return n


def text_lines(chunks: Iterable[bytes]) -> io.TextIOWrapper:
    """A UTF-8 text stream (BOM dropped) over byte chunks, read lazily."""
    return _text_stream(iter(chunks))


def _text_stream(chunks: Iterator[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BufferedReader(_ChunkReader(chunks), buffer_size=256 * 1024), encoding="utf-8-sig", newline="")


_INTEGER = re.compile(r"^[+-]?\d+$")
_TRUE = {"true", "1", "是", "yes", "y"}
_FALSE = {"false", "0", "否", "no", "n"}


def _convert(item: dict[str, Any], raw: Any) -> tuple[Any, str | None]:
    """A cell's value in the item's type, or an error message."""
    if raw is None:
        return None, None
    if not isinstance(raw, str):
        if isinstance(raw, (dict, list)):
            return None, "must be a single value"
        raw_text = _text(raw)
    else:
        raw_text = raw.strip()
        if raw_text == "":
            return None, None
    kind = item["data_type"]
    length = item.get("length")
    if length and len(raw_text) > length:
        return None, f"longer than {length} characters"
    try:
        if kind == "integer":
            if isinstance(raw, bool) or not _INTEGER.match(raw_text):
                return None, f"{raw_text!r} is not an integer"
            return int(raw_text), None
        if kind == "decimal":
            float(raw_text)
            return raw if isinstance(raw, (int, float)) else raw_text, None
        if kind == "date":
            date.fromisoformat(raw_text)
        elif kind == "datetime":
            datetime.fromisoformat(raw_text)
        elif kind == "boolean":
            if raw_text.lower() in _TRUE:
                return True, None
            if raw_text.lower() in _FALSE:
                return False, None
            return None, f"{raw_text!r} is not a yes/no value"
    except ValueError:
        return None, f"{raw_text!r} is not a valid {kind}"
    return raw_text if isinstance(raw, str) else raw, None


def _key_items(version: EntryVersion) -> list[str]:
    return [p["item"] for p in version.control_parameters if p.get("required")]


@dataclass
class _Loader:
    db: Session
    dataset_id: str
    items: dict[str, dict[str, Any]]
    key_items: list[str]
    errors: list[dict[str, Any]] = field(default_factory=list)
    batch: list[tuple[str, int, str | None, str]] = field(default_factory=list)
    count: int = 0

    def error(self, line: int, column: str, message: str) -> None:
        self.errors.append({"field": f"line {line}: {column}", "line": line, "column": column, "message": message})

    def add(self, line: int, record: dict[str, Any]) -> None:
        data: dict[str, Any] = {}
        for name, item in self.items.items():
            value, problem = _convert(item, record.get(name))
            if problem:
                self.error(line, name, problem)
            data[name] = value
        for name in self.key_items:
            if data.get(name) in (None, ""):
                self.error(line, name, "a control parameter's value is required in every row")
        if self.errors:
            return
        self.count += 1
        key = lookup_key(_text(data[k]) for k in self.key_items) if self.key_items else None
        self.batch.append((self.dataset_id, self.count, key, json.dumps(data, ensure_ascii=False)))
        if len(self.batch) >= ROW_BATCH:
            self.flush()

    def flush(self) -> None:
        repository.insert_rows(self.db, self.batch)
        self.batch = []

    @property
    def full(self) -> bool:
        return len(self.errors) >= MAX_REPORTED_ERRORS


def _columns_problem(columns: list[str], items: list[str]) -> Invalid | None:
    missing = [i for i in items if i not in columns]
    unexpected = [c for c in columns if c not in items]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if not (missing or unexpected or duplicated):
        return None
    errors = [{"field": "columns", "message": f"missing item column {m}"} for m in missing]
    errors += [{"field": "columns", "message": f"column {u} is not an information item"} for u in unexpected]
    errors += [{"field": "columns", "message": f"column {d} appears twice"} for d in duplicated]
    parts = []
    if missing:
        parts.append("missing: " + ", ".join(missing))
    if unexpected:
        parts.append("not items: " + ", ".join(unexpected))
    if duplicated:
        parts.append("repeated: " + ", ".join(duplicated))
    return Invalid(
        "the dataset's columns do not match the entry's information items (" + "; ".join(parts) + ")",
        errors=errors,
        extra={"missing": missing, "unexpected": unexpected, "duplicated": duplicated},
    )


def _load_csv(loader: _Loader, text: io.TextIOWrapper, item_names: list[str]) -> list[str]:
    reader = csv.reader(text)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise Invalid(
            "the dataset is empty: a header line naming the items is required", errors=[{"field": "file", "message": "empty"}]
        ) from None
    problem = _columns_problem(header, item_names)
    if problem:
        raise problem
    for line, row in enumerate(reader, start=2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            loader.error(line, "*", f"has {len(row)} fields, the header has {len(header)}")
        else:
            loader.add(line, dict(zip(header, row, strict=True)))
        if loader.full:
            break
    return header


def _load_jsonl(loader: _Loader, text: io.TextIOWrapper, item_names: list[str]) -> list[str]:
    for line, raw in enumerate(text, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as exc:
            loader.error(line, "*", f"not valid JSON: {exc.msg}")
            record = None
        if record is not None and not isinstance(record, dict):
            loader.error(line, "*", "each line must be a JSON object")
        elif isinstance(record, dict):
            keys = list(record)
            if set(keys) != set(item_names):
                problem = _columns_problem(keys, item_names)
                assert problem is not None
                if line == 1:
                    raise problem
                loader.error(line, "*", problem.detail)
            else:
                loader.add(line, record)
        if loader.full:
            break
    return item_names


def media_type_of(content_type: str | None, filename: str | None) -> str:
    """text/csv or application/x-ndjson, from the declared type or the file name."""
    declared = (content_type or "").split(";")[0].strip().lower()
    name = (filename or "").lower()
    if declared in ("text/csv", "application/csv") or name.endswith(".csv"):
        return "text/csv"
    if declared in ("application/x-ndjson", "application/jsonl", "application/jsonlines") or name.endswith((".jsonl", ".ndjson")):
        return "application/x-ndjson"
    raise Invalid(
        "upload a CSV (.csv, text/csv) or JSON Lines (.jsonl, application/x-ndjson) file",
        errors=[{"field": "file", "message": "unsupported format"}],
    )


def upload_dataset(
    db: Session,
    *,
    who: Principal,
    storage: ObjectStore,
    entry_id: str,
    chunks: Iterable[bytes],
    media_type: str,
    max_bytes: int | None = None,
) -> Dataset:
    """Store a new dataset version of an entry and load its rows (streamed, in batches); the previous one is replaced."""
    entry = _own(db, who, entry_id)
    if entry.state == EntryState.RETIRED:
        raise Conflict(f"catalogue entry {entry.code} is retired")
    version = repository.latest_version(db, entry.id)
    assert version is not None
    if not version.serves_dataset:
        raise Conflict("the entry is not served from datasets (serves_dataset is false in its latest version)")
    current = repository.version_by_id(db, entry.current_version_id) if entry.current_version_id else None
    secret = list(dict.fromkeys(classified_items([*version.items, *(current.items if current else [])])))
    if secret:
        raise _refuse_classified(entry.code, secret, "classified data never enters the sharing platform, so no dataset is loaded")
    stored = storage.put(chunks, max_bytes=max_bytes)
    dataset = Dataset(
        entry_id=entry.id,
        number=repository.next_dataset_number(db, entry.id),
        state=DatasetState.LOADED,
        media_type=media_type,
        object_key=stored.key,
        size=stored.size,
        columns=[],
        key_items=_key_items(version),
        uploaded_by=who.subject,
    )
    db.add(dataset)
    db.flush()
    items = {i["name"]: i for i in version.items}
    loader = _Loader(db, dataset.id, items, list(dataset.key_items))
    text = _text_stream(iter(storage.open(stored.key)))
    try:
        load = _load_csv if media_type == "text/csv" else _load_jsonl
        columns = load(loader, text, list(items))
    except UnicodeDecodeError:
        raise Invalid(
            "the file is not UTF-8 text; save it as CSV UTF-8", errors=[{"field": "file", "message": "not UTF-8"}]
        ) from None
    except csv.Error as exc:
        raise Invalid(f"the CSV cannot be read: {exc}", errors=[{"field": "file", "message": str(exc)}]) from None
    if loader.errors:
        more = " (first errors only)" if loader.full else ""
        raise Invalid(
            f"{len(loader.errors)} problem(s) in the dataset{more}; nothing was loaded. First: "
            f"{loader.errors[0]['field']}: {loader.errors[0]['message']}",
            errors=loader.errors,
        )
    loader.flush()
    dataset.columns = columns
    dataset.row_count = loader.count
    if entry.current_dataset_id:
        previous = repository.dataset_by_id(db, entry.current_dataset_id)
        if previous is not None:
            previous.state = DatasetState.REPLACED
            repository.delete_rows(db, previous.id)  # its file stays in object storage
    entry.current_dataset_id = dataset.id
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.dataset.upload",
        object_type="catalog_entry",
        object_id=entry.id,
        detail={"dataset_id": dataset.id, "number": dataset.number, "rows": dataset.row_count, "sha256": stored.key},
    )
    CATALOGUE_EVENTS.labels(event="dataset_loaded").inc()
    return dataset


def _rekey(db: Session, dataset_id: str, key_items: list[str]) -> None:
    """Recompute the lookup keys of a dataset when the published control parameters changed."""
    dataset = repository.dataset_by_id(db, dataset_id)
    if dataset is None or list(dataset.key_items) == key_items:
        return
    after = 0
    while True:
        rows = repository.rows_page(db, dataset_id, after=after, limit=ROW_BATCH)
        if not rows:
            break
        keys = [
            {"b_row": r.row_number, "b_key": lookup_key(_text(r.data.get(k)) for k in key_items) if key_items else None}
            for r in rows
        ]
        repository.set_lookup_keys(db, dataset_id, keys)
        after = rows[-1].row_number
    dataset.key_items = key_items
    db.flush()


def list_datasets(db: Session, *, who: Principal, entry_id: str) -> list[DatasetRead]:
    """The dataset versions of an entry (provider and platform only)."""
    entry = _own(db, who, entry_id)
    return [DatasetRead.model_validate(d) for d in repository.datasets_of(db, entry.id)]


# ==========================================================================================
# Search
# ==========================================================================================


def index_entry(db: Session, *, entry: CatalogEntry, version: EntryVersion, provider_name: str) -> None:
    """(Re)build the search document of an entry's published version."""
    repository.remove_doc(db, entry.id)
    name = normalise(version.name)
    item_names = " ".join(i["name"] for i in version.items)
    text = join_fields([version.name, version.abstract, item_names, provider_name, entry.code])
    values = {
        "entry_id": entry.id,
        "version_id": version.id,
        "name_norm": name,
        "text_norm": text,
        "provider_department_id": entry.provider_department_id,
        "sharing_type": version.sharing_type,
        "classification": version.classification,
        "update_cycle": version.update_cycle,
        "is_certificate": version.is_certificate,
    }
    repository.insert_doc(db, values, bigrams(name), bigrams(text))


def search(
    db: Session,
    *,
    who: Principal,
    q: str | None = None,
    provider_department_id: str | None = None,
    sharing_type: str | None = None,
    classification: str | None = None,
    update_cycle: str | None = None,
    is_certificate: bool | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[SearchHit], str | None]:
    """Published entries matching every query term, name matches first, then newest first."""
    if limit < 1 or limit > MAX_LIMIT:
        raise Invalid(f"limit must be between 1 and {MAX_LIMIT}", errors=[{"field": "limit", "message": "out of range"}])
    if q is not None and len(q) > 100:
        raise Invalid("q is at most 100 characters", errors=[{"field": "q", "message": "too long"}])
    filters = repository.search_filters(
        provider_department_id=provider_department_id,
        sharing_type=_enum_param("sharing_type", SharingType, sharing_type) if sharing_type else None,
        classification=_enum_param("classification", Classification, classification) if classification else None,
        update_cycle=_enum_param("update_cycle", UpdateCycle, update_cycle) if update_cycle else None,
        is_certificate=is_certificate,
    )
    terms = query_terms(q or "")
    phase, after = (1 if terms else 3), None
    if cursor:
        phase_raw, after_raw = decode_cursor(cursor, 2)
        if phase_raw not in (1, 2, 3) or not isinstance(after_raw, int):
            raise Invalid("cursor is not one this hub returned", errors=[{"field": "cursor", "message": "malformed"}])
        phase, after = phase_raw, after_raw
    plan = _search_plan(db, terms, provider_department_id)
    hits: list[tuple[Any, bool]] = []
    next_cursor: str | None = None
    while phase <= 3:
        want = limit - len(hits)
        docs = _search_phase(db, plan, phase, filters, after, want + 1)
        hits.extend((d, phase == 1) for d in docs[:want])
        if len(docs) > want:
            next_cursor = encode_cursor([phase, docs[want - 1].id])
            break
        phase, after = phase + 1, None
    return _hits(db, hits), next_cursor


def providers(db: Session) -> list[tuple[str, str]]:
    """(id, name) of the departments that provide published entries: the choices of the search's provider filter."""
    return repository.published_providers(db)


@dataclass(frozen=True)
class _Plan:
    """How to find the docs of a query: through a bigram's posting, or by scanning the docs."""

    terms: list[str]
    gram: int | None  # the query's rarest bigram, whose posting drives every phase; None: scan the docs
    nothing: bool = False  # a bigram of the query occurs nowhere: no result
    simple: bool = False  # one two-character word: the posting alone answers


def _search_plan(db: Session, terms: list[str], provider_id: str | None) -> _Plan:
    grams = sorted({g for t in terms for g in bigrams(t)})
    simple = len(terms) == 1 and len(terms[0]) == 2
    if not grams or any(len(t) < 2 for t in terms):
        return _Plan(terms, None)  # a one-character word: scan the docs
    provider = repository.provider_size(db, provider_id) if provider_id else None
    if len(grams) == 1 and provider is None:
        return _Plan(terms, grams[0], simple=simple)
    # The rarest bigram drives every phase: a name match has it in the name (its posting's scope 1).
    size, gram = min((repository.posting_size(db, g, (0, 1)), g) for g in grams)
    if size == 0:
        return _Plan(terms, None, nothing=True)
    driver = None if provider is not None and provider < size else gram
    return _Plan(terms, driver, simple=simple)


def _search_phase(db: Session, plan: _Plan, phase: int, filters: list[Any], after: int | None, want: int) -> list[SearchDoc]:
    """Phase 1: every word in the name. Then docs with the words elsewhere: 2, whose bigram is in the
    name; 3, whose bigram is only elsewhere. Newest first within each phase."""
    if plan.nothing or (not plan.terms and phase < 3) or (phase == 2 and plan.simple):
        return []
    words = [] if plan.simple else repository.term_conditions(plan.terms, in_name=phase == 1)
    gram = plan.gram
    if gram is None:
        if phase == 2:
            return []  # scanning the docs finds phases 2 and 3 together, in phase 3
        conditions = [*filters, *repository.term_conditions(plan.terms, in_name=phase == 1)]
        return repository.docs_scan(db, conditions, before=after, limit=want)
    scope = 1 if phase in (1, 2) else 0
    found: list[int] = []
    chunk, before = (want if plan.simple else max(want, 64)), after
    while len(found) < want:
        if filters:
            ids = repository.posting_filtered(db, gram, scope, filters, before=before, limit=chunk)
        else:
            ids = repository.posting(db, gram, scope, before=before, limit=chunk)
        found += repository.matching_ids(db, ids, words)
        if len(ids) < chunk:
            break
        before, chunk = ids[-1], min(chunk * 4, 8000)
    return repository.docs_by_ids(db, found[:want])


def _hits(db: Session, found: list[tuple[Any, bool]]) -> list[SearchHit]:
    entries = repository.entries_by_ids(db, [d.entry_id for d, _ in found])
    versions = repository.versions_by_ids(db, [d.version_id for d, _ in found])
    departments = repository.department_names(db, [d.provider_department_id for d, _ in found])
    hits = []
    for doc, name_match in found:
        entry, version = entries[doc.entry_id], versions[doc.version_id]
        provider = departments.get(entry.provider_department_id)
        hits.append(
            SearchHit(
                id=entry.id,
                code=entry.code,
                name=version.name,
                abstract=version.abstract,
                provider_department_id=entry.provider_department_id,
                provider_name=provider.name if provider else "",
                sharing_type=version.sharing_type,
                classification=version.classification,
                update_cycle=version.update_cycle,
                is_certificate=version.is_certificate,
                version_id=version.id,
                published_at=version.published_at,
                name_match=name_match,
            )
        )
    return hits


# ==========================================================================================
# Supply and demand (供需对接)
# ==========================================================================================


def post_demand(db: Session, *, who: Principal, data: DemandCreate) -> Demand:
    """A consumer department posts a data demand, optionally naming the department it believes holds it."""
    own = who.require_department()
    if data.target_department_id is not None:
        if repository.department(db, data.target_department_id) is None:
            raise Invalid(
                f"department {data.target_department_id} does not exist",
                errors=[{"field": "target_department_id", "message": "unknown department"}],
            )
        if data.target_department_id == own:
            raise Invalid(
                "a department does not post a demand to itself",
                errors=[{"field": "target_department_id", "message": "own department"}],
            )
    demand = Demand(
        consumer_department_id=own,
        target_department_id=data.target_department_id,
        title=data.title.strip(),
        description=data.description,
        purpose=data.purpose.strip(),
        items_wanted=[i.strip() for i in data.items_wanted if i.strip()],
        state=DemandState.OPEN,
    )
    db.add(demand)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.demand.post",
        object_type="catalog_demand",
        object_id=demand.id,
        purpose=demand.purpose,
        detail={"target_department_id": demand.target_department_id},
    )
    CATALOGUE_EVENTS.labels(event="demand_posted").inc()
    return demand


def get_demand(db: Session, *, who: Principal, demand_id: str) -> Demand:
    """A demand the caller may see, or NotFound."""
    demand = repository.get_demand(db, who, demand_id)
    if demand is None:
        raise NotFound(f"demand {demand_id} not found")
    return demand


def _open_demand(db: Session, who: Principal, demand_id: str, if_match: str | None) -> Demand:
    demand = get_demand(db, who=who, demand_id=demand_id)
    check_if_match(if_match, demand.version)
    if demand.state != DemandState.OPEN:
        raise Conflict(f"the demand is already {demand.state}")
    return demand


def answer_demand(db: Session, *, who: Principal, demand_id: str, data: DemandAnswer, if_match: str | None = None) -> Demand:
    """The named provider (or any provider, if none was named) answers with one of its entries."""
    own = who.require_department()
    demand = _open_demand(db, who, demand_id, if_match)
    if demand.target_department_id not in (None, own):
        raise Forbidden("the demand is addressed to another department")
    if demand.consumer_department_id == own:
        raise Forbidden("a department does not answer its own demand")
    entry = repository.own_entry(db, who, data.entry_id)
    if entry is None:
        raise Invalid(
            f"catalogue entry {data.entry_id} is not one of your department's entries",
            errors=[{"field": "entry_id", "message": "not your entry"}],
        )
    if entry.state == EntryState.RETIRED:
        raise Invalid("a retired entry cannot answer a demand", errors=[{"field": "entry_id", "message": "retired"}])
    demand.state = DemandState.ANSWERED
    demand.answered_by_department_id = own
    demand.entry_id = entry.id
    demand.answer_note = data.note
    demand.answered_at = utcnow()
    db.flush()
    audit.record(
        db,
        actor=who,
        action="catalog.demand.answer",
        object_type="catalog_demand",
        object_id=demand.id,
        detail={"entry_id": entry.id, "entry_state": entry.state},
    )
    CATALOGUE_EVENTS.labels(event="demand_answered").inc()
    return demand


def decline_demand(db: Session, *, who: Principal, demand_id: str, reason: str, if_match: str | None = None) -> Demand:
    """The named department (or the platform) declines a demand, with the reason."""
    demand = _open_demand(db, who, demand_id, if_match)
    if not who.is_platform_admin and (demand.target_department_id is None or demand.target_department_id != who.department_id):
        raise Forbidden("only the department the demand names, or the platform, may decline it")
    demand.state = DemandState.DECLINED
    demand.decline_reason = reason.strip()
    demand.answered_by_department_id = who.department_id
    demand.answered_at = utcnow()
    db.flush()
    audit.record(
        db, actor=who, action="catalog.demand.decline", object_type="catalog_demand", object_id=demand.id, purpose=reason
    )
    CATALOGUE_EVENTS.labels(event="demand_declined").inc()
    return demand


def withdraw_demand(db: Session, *, who: Principal, demand_id: str, if_match: str | None = None) -> Demand:
    """The consumer withdraws its open demand."""
    demand = _open_demand(db, who, demand_id, if_match)
    if demand.consumer_department_id != who.department_id:
        raise Forbidden("only the department that posted the demand may withdraw it")
    demand.state = DemandState.WITHDRAWN
    db.flush()
    audit.record(db, actor=who, action="catalog.demand.withdraw", object_type="catalog_demand", object_id=demand.id)
    return demand


def list_demands(
    db: Session,
    *,
    who: Principal,
    box: str | None = None,
    department_id: str | None = None,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Demand], str | None]:
    """Demands per department: `posted` by it, `incoming` to it (named, or open to any), or both."""
    if box not in (None, "posted", "incoming"):
        raise Invalid("box is posted or incoming", errors=[{"field": "box", "message": "unknown"}])
    if state is not None:
        _enum_param("state", DemandState, state)
    if not who.is_platform_admin:
        department_id = who.department_id
    return repository.list_demands(db, who, role=box, department_id=department_id, state=state, cursor=cursor, limit=limit)


# ==========================================================================================
# Responsibility list (共享责任清单)
# ==========================================================================================


def responsibility_list(db: Session, *, who: Principal, department_id: str) -> ResponsibilityList:
    """The published resources a department is responsible for providing, with their sharing type."""
    department = repository.department(db, department_id)
    if department is None:
        raise NotFound(f"department {department_id} not found")
    rows = repository.published_entries_of(db, department.id)
    totals = {t.value: 0 for t in SharingType}
    entries = []
    for entry, version in rows:
        totals[version.sharing_type] += 1
        entries.append(
            ResponsibilityEntry(
                id=entry.id,
                code=entry.code,
                name=version.name,
                sharing_type=version.sharing_type,
                conditions=version.conditions,
                legal_basis=version.legal_basis,
                update_cycle=version.update_cycle,
                is_certificate=version.is_certificate,
                published_at=version.published_at,
            )
        )
    totals["total"] = len(entries)
    audit.record(db, actor=who, action="catalog.responsibility_list.read", object_type="department", object_id=department.id)
    return ResponsibilityList(
        department_id=department.id,
        department_name=department.name,
        department_code=department.code,
        totals=totals,
        entries=entries,
    )


SHARING_LABELS = {"unconditional": "无条件共享", "conditional": "有条件共享", "not_shared": "不予共享"}


def responsibility_csv(report: ResponsibilityList) -> str:
    """The responsibility list as a spreadsheet (CSV, UTF-8 with BOM for Excel; no cell can run as a formula)."""
    header = ["提供部门", "资源代码", "资源名称", "共享类型", "共享条件", "不予共享依据", "更新周期", "电子证照"]
    rows = (
        [
            report.department_name,
            e.code,
            e.name,
            SHARING_LABELS[e.sharing_type],
            e.conditions or "",
            e.legal_basis or "",
            e.update_cycle,
            "是" if e.is_certificate else "否",
        ]
        for e in report.entries
    )
    return spreadsheet.csv_text(header, rows)


# ==========================================================================================
# Import from the departments' spreadsheet template
# ==========================================================================================

# Column of the template (as departments keep it) → field of an entry. English field names work too.
IMPORT_COLUMNS: dict[str, str] = {
    "资源代码": "code",
    "资源名称": "name",
    "资源分类": "classification",
    "资源摘要": "abstract",
    "资源格式": "format",
    "信息项": "items",
    "共享类型": "sharing_type",
    "共享条件": "conditions",
    "不予共享依据": "legal_basis",
    "共享方式": "sharing_method",
    "管控参数": "control_parameters",
    "开放属性": "open_attribute",
    "更新周期": "update_cycle",
    "关联资源": "related_codes",
    "是否电子证照": "is_certificate",
    "允许导出": "allows_export",
    "数据集提供": "serves_dataset",
    "接口地址": "api_url",
    "接口方法": "api_method",
    "接口超时秒": "api_timeout_seconds",
    "提供部门代码": "provider_code",
}
REQUIRED_IMPORT_FIELDS = ("code", "name", "classification", "abstract", "items", "sharing_type", "update_cycle")
_LIST_SPLIT = re.compile(r"[;；\n]")
IMPORT_BATCH = 500


@dataclass
class ImportReport:
    created: int
    entry_ids: list[str]


def _yes(value: str, column: str, problems: list[tuple[str, str]]) -> bool:
    text = value.strip().lower()
    if text in ("", *_FALSE):
        return False
    if text in _TRUE:
        return True
    problems.append((column, f"{value!r} is not 是 or 否"))
    return False


def _parse_items(cell: str, column: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """信息项: `名称|类型|长度|分级|是否个人信息` separated by semicolons."""
    items = []
    for n, part in enumerate(p.strip() for p in _LIST_SPLIT.split(cell)):
        if not part:
            continue
        fields = [f.strip() for f in part.split("|")]
        if len(fields) > 5:
            problems.append((column, f"item {n + 1} ({part}) has more than 5 parts: 名称|类型|长度|分级|是否个人信息"))
            continue
        fields += [""] * (5 - len(fields))
        name, data_type, length, sensitivity, personal = fields
        item: dict[str, Any] = {"name": name, "data_type": data_type or "string"}
        if length:
            if not length.isdigit():
                problems.append((column, f"item {name}: length {length!r} is not a number"))
                continue
            item["length"] = int(length)
        if sensitivity:
            item["sensitivity"] = sensitivity
        item["personal"] = _yes(personal, column, problems)
        items.append(item)
    return items


def _parse_params(cell: str, column: str, problems: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """管控参数: `信息项|必填或选填|每次最多行数` separated by semicolons."""
    params = []
    for part in (p.strip() for p in _LIST_SPLIT.split(cell)):
        if not part:
            continue
        fields = [f.strip() for f in part.split("|")] + ["", ""]
        name, required, max_rows = fields[0], fields[1], fields[2]
        if required not in ("", "必填", "选填", "required", "optional"):
            problems.append((column, f"{name}: {required!r} is not 必填 or 选填"))
            continue
        param: dict[str, Any] = {"item": name, "required": required in ("", "必填", "required")}
        if max_rows:
            if not max_rows.isdigit():
                problems.append((column, f"{name}: maximum rows {max_rows!r} is not a number"))
                continue
            param["max_rows"] = int(max_rows)
        params.append(param)
    return params


def _row_body(row: dict[str, str], columns: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """An entry body from one template row, and the problems met (column, message)."""
    problems: list[tuple[str, str]] = []
    value = {field: (row.get(header) or "").strip() for header, field in columns.items()}
    label = {field: header for header, field in columns.items()}
    for name in REQUIRED_IMPORT_FIELDS:
        if not value.get(name):
            problems.append((label.get(name, name), "required"))
    body: dict[str, Any] = {
        k: v
        for k, v in value.items()
        if v
        and k
        not in (
            "items",
            "control_parameters",
            "related_codes",
            "is_certificate",
            "allows_export",
            "serves_dataset",
            "api_url",
            "api_method",
            "api_timeout_seconds",
            "provider_code",
        )
    }
    body["items"] = _parse_items(value.get("items", ""), label.get("items", "items"), problems)
    body["control_parameters"] = _parse_params(
        value.get("control_parameters", ""), label.get("control_parameters", "control_parameters"), problems
    )
    body["related_codes"] = [c.strip() for c in _LIST_SPLIT.split(value.get("related_codes", "")) if c.strip()]
    for flag in ("is_certificate", "allows_export", "serves_dataset"):
        body[flag] = _yes(value.get(flag, ""), label.get(flag, flag), problems)
    if value.get("api_url"):
        api: dict[str, Any] = {"url": value["api_url"], "method": value.get("api_method") or "GET"}
        if value.get("api_timeout_seconds"):
            api["timeout_seconds"] = value["api_timeout_seconds"]
        body["api"] = api
    return body, problems


def _field_column(loc: tuple[Any, ...], label: dict[str, str]) -> str:
    root = str(loc[0]) if loc else "row"
    if root == "api" and len(loc) > 1:
        return label.get(f"api_{loc[1]}", f"api.{loc[1]}")
    return label.get(root, root)


def _template_columns(header: list[str]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    fields = set(IMPORT_COLUMNS.values())
    columns: dict[str, str] = {}
    problems: list[tuple[str, str]] = []
    for name in header:
        name = name.strip()
        if name in IMPORT_COLUMNS:
            columns[name] = IMPORT_COLUMNS[name]
        elif name in fields:
            columns[name] = name
        elif name:
            problems.append((name, "not a column of the catalogue template"))
    present = set(columns.values())
    reverse = {v: k for k, v in IMPORT_COLUMNS.items()}
    for field_name in REQUIRED_IMPORT_FIELDS:
        if field_name not in present:
            problems.append((reverse[field_name], "required column is missing"))
    return columns, problems


@dataclass
class _Validated:
    row: int
    provider_id: str
    data: EntryCreate


def _validate_rows(
    db: Session,
    who: Principal,
    rows: Iterable[dict[str, str]],
    columns: dict[str, str],
    on_row: Callable[[_Validated], None],
    progress: Callable[[int], None] | None,
) -> list[dict[str, Any]]:
    """Check every row; hand each valid one to `on_row`; return the problems as {row, field, message}."""
    label = {field: header for header, field in columns.items()}
    errors: list[dict[str, Any]] = []
    providers: dict[str, Any] = {}
    seen: dict[str, int] = {}
    pending: list[tuple[int, str]] = []
    own = None if who.is_platform_admin else repository.department(db, who.require_department())

    def check_existing() -> None:
        taken = repository.existing_codes(db, [c for _, c in pending])
        errors.extend(
            {"row": r, "field": label.get("code", "code"), "message": f"code {c} is already in the catalogue"}
            for r, c in pending
            if c in taken
        )
        pending.clear()

    for number, row in enumerate(rows, start=2):
        body, problems = _row_body(row, columns)
        provider_code = (row.get(label.get("provider_code", "")) or "").strip().upper() if "provider_code" in label else ""
        provider = own
        if who.is_platform_admin:
            if not provider_code:
                problems.append((label.get("provider_code", "提供部门代码"), "required when the platform imports"))
            else:
                if provider_code not in providers:
                    providers[provider_code] = repository.department_by_code(db, provider_code)
                provider = providers[provider_code]
                if provider is None:
                    problems.append((label["provider_code"], f"no department with code {provider_code}"))
        elif provider_code and own is not None and provider_code != own.code:
            problems.append((label["provider_code"], "a department imports only its own catalogue"))
        data: EntryCreate | None = None
        if not any(p[1] == "required" for p in problems):
            try:
                data = EntryCreate.model_validate(body)
            except ValidationError as exc:
                for err in exc.errors():
                    message = str(err.get("msg", "invalid")).removeprefix("Value error, ")
                    where = ".".join(str(p) for p in err.get("loc", ()))
                    problems.append((_field_column(tuple(err.get("loc", ())), label), f"{where}: {message}"))
            if data is not None:
                problems += [(label.get(f, f), m) for f, m in entry_rules(data)]
        if data is not None and provider is not None and not problems:
            try:
                code = full_code(provider.code, data.code)
            except Invalid as exc:
                problems.append((label.get("code", "code"), exc.detail))
            else:
                if code in seen:
                    problems.append((label.get("code", "code"), f"code {code} is repeated (first on row {seen[code]})"))
                seen[code] = number
                pending.append((number, code))
                if not problems:
                    on_row(_Validated(number, provider.id, data))
        errors.extend({"row": number, "field": f, "message": m} for f, m in problems)
        if len(pending) >= IMPORT_BATCH:
            check_existing()
        if progress:
            progress(number - 1)
    check_existing()
    errors.sort(key=lambda e: e["row"])
    return errors


def import_entries(
    db: Session,
    *,
    who: Principal,
    open_text: Callable[[], Iterable[str]],
    mode: str = "draft",
    progress: Callable[[str, int], None] | None = None,
) -> ImportReport:
    """Import entries from the CSV template: every row is checked first; any problem → nothing is imported.

    `open_text` opens the file (it is read twice: check, then import). `mode`: draft, submit, or publish
    (publish: the platform loading an already reviewed catalogue).
    """
    if mode not in ("draft", "submit", "publish"):
        raise Invalid("mode is draft, submit or publish", errors=[{"field": "mode", "message": "unknown"}])
    if mode == "publish" and not who.is_platform_admin:
        raise Forbidden("only the platform publishes entries without review")

    def rows() -> tuple[dict[str, str], Iterator[dict[str, str]]]:
        reader = csv.DictReader(iter(open_text()))
        header = list(reader.fieldnames or [])
        columns, problems = _template_columns(header)
        if problems:
            raise Invalid(
                "the file does not follow the catalogue template: " + "; ".join(f"{c}: {m}" for c, m in problems),
                errors=[{"row": 1, "field": c, "message": m} for c, m in problems],
            )
        return columns, iter(reader)

    try:
        columns, first_pass = rows()
        errors = _validate_rows(
            db, who, first_pass, columns, lambda _v: None, (lambda n: progress("checking", n)) if progress else None
        )
    except UnicodeDecodeError:
        raise Invalid(
            "the file is not UTF-8 text; save it as CSV UTF-8", errors=[{"row": 0, "field": "file", "message": "not UTF-8"}]
        ) from None
    except csv.Error as exc:
        raise Invalid(f"the CSV cannot be read: {exc}", errors=[{"row": 0, "field": "file", "message": str(exc)}]) from None
    if errors:
        shown = "; ".join(f"row {e['row']} {e['field']}: {e['message']}" for e in errors[:3])
        raise Invalid(f"{len(errors)} problem(s) in the file; nothing was imported. {shown}", errors=errors[:1000])

    created: list[str] = []
    batch: list[_Validated] = []

    def flush_batch() -> None:
        created.extend(_create_batch(db, who, batch, mode))
        batch.clear()
        if progress:
            progress("importing", len(created))

    def on_row(valid: _Validated) -> None:
        batch.append(valid)
        if len(batch) >= IMPORT_BATCH:
            flush_batch()

    columns, second_pass = rows()
    _validate_rows(db, who, second_pass, columns, on_row, None)
    flush_batch()
    audit.record(
        db,
        actor=who,
        action="catalog.import",
        object_type="catalog_import",
        object_id=f"{len(created)} entries",
        detail={"created": len(created), "mode": mode},
    )
    return ImportReport(created=len(created), entry_ids=created)


def _create_batch(db: Session, who: Principal, batch: list[_Validated], mode: str) -> list[str]:
    from ops.audit import AuditRecord
    from ops.context import current_request_id
    from ops.db import new_id

    if not batch:
        return []
    now = utcnow()
    providers = repository.department_names(db, [v.provider_id for v in batch])
    pairs: list[tuple[CatalogEntry, EntryVersion]] = []
    for valid in batch:
        provider = providers[valid.provider_id]
        entry = CatalogEntry(id=new_id(), code=full_code(provider.code, valid.data.code), provider_department_id=provider.id)
        version = EntryVersion(id=new_id(), entry_id=entry.id, number=1, created_by=who.subject, **_version_values(valid.data))
        version.state = {"draft": VersionState.DRAFT, "submit": VersionState.SUBMITTED, "publish": VersionState.PUBLISHED}[mode]
        entry.state = EntryState.PUBLISHED if mode == "publish" else EntryState.DRAFT
        if mode != "draft":
            version.submitted_at = now
        if mode == "publish":
            version.reviewed_at, version.reviewed_by, version.published_at = now, who.subject, now
            entry.current_version_id = version.id
        pairs.append((entry, version))
    db.add_all([e for e, _ in pairs])
    db.flush()
    db.add_all([v for _, v in pairs])
    db.flush()
    if mode == "publish":
        index_many(db, [(e, v, providers[e.provider_department_id].name) for e, v in pairs])
    request_id = current_request_id()
    action = {"draft": "catalog.entry.import", "submit": "catalog.entry.import_submit", "publish": "catalog.entry.import_publish"}
    repository.insert_audit(
        db,
        [
            {
                "at": now,
                "request_id": request_id,
                "actor": who.subject,
                "role": who.primary_role,
                "department_id": who.department_id,
                "action": action[mode],
                "object_type": "catalog_entry",
                "object_id": e.id,
                "outcome": "success",
                "detail": {"code": e.code},
            }
            for e, _ in pairs
        ],
        AuditRecord,
    )
    CATALOGUE_EVENTS.labels(event="created").inc(len(pairs))
    return [e.id for e, _ in pairs]


def index_many(db: Session, triples: list[tuple[CatalogEntry, EntryVersion, str]]) -> None:
    """Index many newly published entries at once (bulk import)."""
    docs = []
    grams: list[tuple[set[int], set[int]]] = []
    for entry, version, provider_name in triples:
        name = normalise(version.name)
        item_names = " ".join(i["name"] for i in version.items)
        text = join_fields([version.name, version.abstract, item_names, provider_name, entry.code])
        docs.append(
            {
                "entry_id": entry.id,
                "version_id": version.id,
                "name_norm": name,
                "text_norm": text,
                "provider_department_id": entry.provider_department_id,
                "sharing_type": version.sharing_type,
                "classification": version.classification,
                "update_cycle": version.update_cycle,
                "is_certificate": version.is_certificate,
            }
        )
        grams.append((bigrams(name), bigrams(text)))
    repository.insert_docs(db, docs, grams)


# ==========================================================================================
# DCAT-AP export
# ==========================================================================================

EU_FREQUENCY = "http://publications.europa.eu/resource/authority/frequency/"
EU_ACCESS = "http://publications.europa.eu/resource/authority/access-right/"
FREQUENCIES = {
    "realtime": "UPDATE_CONT",
    "daily": "DAILY",
    "weekly": "WEEKLY",
    "monthly": "MONTHLY",
    "quarterly": "QUARTERLY",
    "semiannual": "ANNUAL_2",
    "annual": "ANNUAL",
}
ACCESS_RIGHTS = {"open": "PUBLIC", "conditional": "RESTRICTED", "not_open": "NON_PUBLIC"}
MEDIA_TYPES = "http://www.iana.org/assignments/media-types/"
DCAT_PAGE = 500


def dcat_context(base_url: str) -> dict[str, Any]:
    return {
        "dcat": "http://www.w3.org/ns/dcat#",
        "dct": "http://purl.org/dc/terms/",
        "foaf": "http://xmlns.com/foaf/0.1/",
        "xsd": "http://www.w3.org/2001/XMLSchema#",
        "hydra": "http://www.w3.org/ns/hydra/core#",
        "govhub": f"{base_url}/ns/catalog#",
        "dct:issued": {"@type": "xsd:dateTime"},
        "dct:modified": {"@type": "xsd:dateTime"},
    }


def _zh(text: str) -> dict[str, str]:
    return {"@value": text, "@language": "zh"}


def dcat_catalog(db: Session, *, who: Principal, base_url: str, cursor: str | None, limit: int = DCAT_PAGE) -> dict[str, Any]:
    """The published catalogue as DCAT-AP JSON-LD (Catalog, Dataset, Distribution, DataService), a page at a time."""
    if limit < 1 or limit > 2000:
        raise Invalid("limit must be between 1 and 2000", errors=[{"field": "limit", "message": "out of range"}])
    after = decode_cursor(cursor, 1)[0] if cursor else None
    rows = repository.published_page(db, after_code=after, limit=limit + 1)
    page = rows[:limit]
    departments = repository.department_names(db, [e.provider_department_id for e, _ in page])
    datasets = {
        d.id: d for d in (repository.dataset_by_id(db, e.current_dataset_id) for e, _ in page if e.current_dataset_id) if d
    }
    self_url = f"{base_url}/catalog/dcat.jsonld"
    dataset_nodes, service_nodes = [], []
    for entry, version in page:
        provider = departments[entry.provider_department_id]
        entry_url = f"{base_url}/catalog/entries/{entry.id}"
        node: dict[str, Any] = {
            "@id": entry_url,
            "@type": "dcat:Dataset",
            "dct:identifier": entry.code,
            "dct:title": _zh(version.name),
            "dct:description": _zh(version.abstract),
            "dct:publisher": {
                "@id": f"{base_url}/departments/{provider.id}",
                "@type": "foaf:Agent",
                "foaf:name": _zh(provider.name),
                "dct:identifier": provider.code,
            },
            "dct:issued": (version.published_at or entry.created_at).isoformat(),
            "dct:modified": (version.published_at or entry.updated_at).isoformat(),
            "dct:accrualPeriodicity": {"@id": EU_FREQUENCY + FREQUENCIES[version.update_cycle]},
            "dct:accessRights": {"@id": EU_ACCESS + ACCESS_RIGHTS[version.open_attribute]},
            "dcat:keyword": [_zh(i["name"]) for i in version.items],
            "dcat:landingPage": {"@id": entry_url},
            "dcat:version": str(version.number),
            "govhub:sharingType": version.sharing_type,
            "govhub:classification": version.classification,
            "govhub:electronicCertificate": version.is_certificate,
        }
        if version.conditions:
            node["govhub:sharingConditions"] = _zh(version.conditions)
        if version.legal_basis:
            node["govhub:legalBasis"] = _zh(version.legal_basis)
        distributions = []
        if version.serves_dataset:
            current = datasets.get(entry.current_dataset_id or "")
            media = current.media_type if current else "text/csv"
            distributions.append(
                {
                    "@id": f"{entry_url}#dataset",
                    "@type": "dcat:Distribution",
                    "dct:title": _zh(f"{version.name}（数据集）"),
                    "dcat:accessURL": {"@id": entry_url},
                    "dcat:mediaType": {"@id": MEDIA_TYPES + media},
                }
            )
        if version.api:
            service_id = f"{entry_url}#api"
            distributions.append(
                {
                    "@id": f"{entry_url}#api-distribution",
                    "@type": "dcat:Distribution",
                    "dct:title": _zh(f"{version.name}（接口）"),
                    "dcat:accessURL": {"@id": entry_url},
                    "dcat:accessService": {"@id": service_id},
                }
            )
            service_nodes.append(
                {
                    "@id": service_id,
                    "@type": "dcat:DataService",
                    "dct:title": _zh(f"{version.name}接口"),
                    "dcat:endpointURL": {"@id": entry_url},
                    "dcat:servesDataset": {"@id": entry_url},
                    "dct:publisher": {"@id": f"{base_url}/departments/{provider.id}"},
                }
            )
        if distributions:
            node["dcat:distribution"] = distributions
        dataset_nodes.append(node)
    document: dict[str, Any] = {
        "@context": dcat_context(base_url),
        "@id": self_url,
        "@type": "dcat:Catalog",
        "dct:title": _zh("政务数据资源目录"),
        "dct:description": _zh("政务数据共享交换平台已发布的数据资源目录。"),
        "dct:publisher": {"@id": f"{base_url}/#platform", "@type": "foaf:Agent", "foaf:name": _zh("政务数据共享交换平台")},
        "dcat:dataset": dataset_nodes,
        "dcat:service": service_nodes,
    }
    if len(rows) > limit:
        next_cursor = encode_cursor([page[-1][0].code])
        document["hydra:view"] = {
            "@id": f"{self_url}?cursor={cursor}" if cursor else self_url,
            "@type": "hydra:PartialCollectionView",
            "hydra:next": {"@id": f"{self_url}?cursor={next_cursor}&limit={limit}"},
        }
    audit.record(
        db, actor=who, action="catalog.dcat.export", object_type="catalog", object_id="dcat", detail={"datasets": len(page)}
    )
    return document


# ---------------------------------------------------------------------------------------------
# The catalogue as the console sees it (issue 16: the console is a thin client and imports this
# module only): who searches it, what a viewer may do on an entry, and the names its pages use.
# Kept as one block at the end; a name is listed even when imported above, for when the imports move.

from catalog_registry.models import Classification as Classification  # noqa: E402, F811
from catalog_registry.models import SharingType as SharingType  # noqa: E402, F811
from catalog_registry.models import UpdateCycle as UpdateCycle  # noqa: E402, F811
from catalog_registry.models import VersionState as VersionState  # noqa: E402
from catalog_registry.schemas import EntryRead as EntryRead  # noqa: E402, F811
from catalog_registry.schemas import ReviewDecision as ReviewDecision  # noqa: E402
from ops.auth import STAFF_ROLES, Principal, Role  # noqa: E402, F811

# Anyone acting for the government side reads the catalogue: departments, the platform, window
# systems (not holders). The API's `ClientCaller` and the console's menu.
SEARCHER_ROLES = (Role.PLATFORM_ADMIN, Role.DEPARTMENT_ADMIN, Role.DEPARTMENT_SYSTEM, Role.WINDOW)


def entry_actions(who: Principal, entry: EntryRead) -> dict[str, bool]:
    """What `who` may do on `entry` now: the buttons the console shows. Each action checks again when sent.

    "request": file a sharing request (申请共享): department staff, a published and shared entry
    of another department. "review": publish or return the submitted version (the platform)."""
    return {
        "request": who.has(*STAFF_ROLES)
        and entry.state == "published"
        and entry.version.sharing_type != SharingType.NOT_SHARED
        and entry.provider_department_id != who.department_id,
        "review": who.is_platform_admin and entry.version.state == VersionState.SUBMITTED,
    }
