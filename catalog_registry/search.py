"""Search of the published catalogue: each entry's search document and bigrams, and the query that walks
them (name matches first)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from catalog_registry import repository
from catalog_registry.common import _enum_param
from catalog_registry.models import CatalogEntry, Classification, EntryVersion, SearchDoc, SharingType, UpdateCycle
from catalog_registry.schemas import SearchHit
from catalog_registry.text import bigrams, join_fields, normalise, query_terms
from ops.auth import Principal
from ops.errors import Invalid
from ops.pagination import MAX_LIMIT, decode_cursor, encode_cursor


def _search_doc(entry: CatalogEntry, version: EntryVersion, provider_name: str) -> dict[str, Any]:
    """The search document of an entry's published version (its name and text normalised for matching)."""
    item_names = " ".join(i["name"] for i in version.items)
    return {
        "entry_id": entry.id,
        "version_id": version.id,
        "name_norm": normalise(version.name),
        "text_norm": join_fields([version.name, version.abstract, item_names, provider_name, entry.code]),
        "provider_department_id": entry.provider_department_id,
        "sharing_type": version.sharing_type,
        "classification": version.classification,
        "update_cycle": version.update_cycle,
        "is_certificate": version.is_certificate,
    }


def index_entry(db: Session, *, entry: CatalogEntry, version: EntryVersion, provider_name: str) -> None:
    """(Re)build the search document of an entry's published version."""
    repository.remove_doc(db, entry.id)
    values = _search_doc(entry, version, provider_name)
    repository.insert_doc(db, values, bigrams(values["name_norm"]), bigrams(values["text_norm"]))


def index_many(db: Session, triples: list[tuple[CatalogEntry, EntryVersion, str]]) -> None:
    """Index many newly published entries at once (bulk import)."""
    docs = [_search_doc(entry, version, provider_name) for entry, version, provider_name in triples]
    repository.insert_docs(db, docs, [(bigrams(d["name_norm"]), bigrams(d["text_norm"])) for d in docs])


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
