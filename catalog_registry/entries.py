"""Catalogue entries and their lifecycle: registration, drafts and versions, review and publication, retirement, reading."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.common import _enum_param, _own
from catalog_registry.datasets import _key_items, _rekey
from catalog_registry.models import CatalogEntry, EntryState, EntryVersion, SharingType, VersionState
from catalog_registry.schemas import EntryCreate, EntryFields, EntryRead, VersionRead, entry_problems
from catalog_registry.search import index_entry
from catalog_registry.sharing import _version_problems, classified_problems
from ops import audit
from ops.auth import STAFF_ROLES, Principal, Role
from ops.db import check_if_match, utcnow
from ops.errors import Conflict, Forbidden, Invalid, NotFound
from ops.metrics import CATALOGUE_EVENTS

OPEN_STATES = (VersionState.DRAFT, VersionState.RETURNED)


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
        _rekey(db, entry.current_dataset_id, _key_items(version), version.division_item)


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
