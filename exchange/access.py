"""Data access through a grant: granted lookups (batched: the hot path), paged exports, calls to the
provider's API; each query counted against its grant's limit and recorded, refused ones too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources, upstream
from exchange.models import DataAccess, GrantState
from exchange.repository import GrantTerms
from exchange.states import end_of_day
from ops import audit, metrics
from ops.auth import Principal
from ops.db import utcnow
from ops.errors import Conflict, Forbidden, HubError, Invalid, NotFound, TooManyRequests
from ops.groupcommit import GroupCommit

DEFAULT_LOOKUP_ROWS = 100
MAX_EXPORT_PAGE = 1000


class GrantNotUsable(HubError):
    status, code, title = 403, "grant_not_usable", "Grant not usable"


class FieldsNotGranted(HubError):
    status, code, title = 403, "fields_not_granted", "Fields not granted"


def mask(value: Any) -> Any:
    """Mask a sensitive value, keeping its first third and last quarter (110105********002X)."""
    if value is None:
        return None
    text = str(value)
    n = len(text)
    if n <= 1:
        return "*"
    head = max(1, n // 3)
    tail = n // 4
    return text[:head] + "*" * (n - head - tail) + text[n - tail :] if tail else text[:head] + "*" * (n - head)


def _usable_grant(
    db: Session, who: Principal, grant_id: str, now: datetime, read: dict[tuple[str, str | None], GrantTerms | None] | None = None
) -> GrantTerms:
    """The caller's grant if it can be used now; `read`: grants already read in this transaction."""
    who.require_department()
    if read is None:
        grant = repo.consumer_grant(db, who, grant_id)
    else:
        key = (grant_id, who.department_id)
        if key not in read:
            read[key] = repo.consumer_grant(db, who, grant_id)
        grant = read[key]
    if grant is None:
        raise NotFound(f"no grant {grant_id} held by your department")
    if grant.state == GrantState.REVOKED:
        raise GrantNotUsable(f"the grant was revoked on {grant.revoked_at}: {grant.revoke_reason}", extra={"state": "revoked"})
    if grant.state == GrantState.EXPIRED or now >= grant.expires_at:
        raise GrantNotUsable(f"the grant expired at the end of {grant.valid_until}", extra={"state": "expired"})
    if now < end_of_day(grant.valid_from) - timedelta(days=1):
        raise GrantNotUsable(f"the grant is valid from {grant.valid_from}", extra={"state": "not_yet_valid"})
    return grant


def _rate_limited(grant: GrantTerms, now: datetime) -> TooManyRequests:
    metrics.DATA_ACCESSES.labels(kind="any", outcome="rate_limited").inc()
    return TooManyRequests(
        f"the grant allows {grant.rate_limit_per_minute} queries a minute; retry in the next minute",
        headers={"Retry-After": str(60 - now.second)},
    )


def _fields(grant: GrantTerms, wanted: list[str] | None) -> list[str]:
    if wanted is None:
        return list(grant.fields)
    wanted = list(dict.fromkeys(wanted))
    extra = [f for f in wanted if f not in grant.fields]
    if extra:
        raise FieldsNotGranted(
            f"fields not granted: {', '.join(extra)}; granted: {', '.join(grant.fields)}",
            errors=[{"field": "fields", "message": f"'{f}' is not granted"} for f in extra],
        )
    if not wanted:
        raise Invalid("ask for at least one field", errors=[{"field": "fields", "message": "empty"}])
    return wanted


def _check_params(grant: GrantTerms, params: dict[str, str]) -> int:
    """Validate control parameters; returns the most rows the query may return."""
    controls = {c["item"]: c for c in grant.control_parameters}
    if not controls:
        raise Invalid(
            "this resource has no control parameters to look up by; use the paged export",
            errors=[{"field": "params", "message": "no control parameters defined"}],
        )
    errors = [{"field": f"params.{k}", "message": f"'{k}' is not a control parameter"} for k in params if k not in controls]
    errors += [{"field": f"params.{k}", "message": "must not be empty"} for k, v in params.items() if not v.strip()]
    missing = [k for k, c in controls.items() if c["required"] and k not in params]
    errors += [{"field": f"params.{k}", "message": "required control parameter is missing"} for k in missing]
    if not params and not missing:
        errors.append({"field": "params", "message": f"give at least one of: {', '.join(controls)}"})
    if errors:
        names = ", ".join(controls)
        raise Invalid(
            "the query's control parameters are wrong ("
            + "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
            + f"); control parameters: {names}",
            errors=errors,
        )
    limits = [int(controls[k]["max_rows"]) for k in params if controls[k].get("max_rows")]
    return min(limits) if limits else DEFAULT_LOOKUP_ROWS


def _shape(grant: GrantTerms, rows: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """Only the asked fields, sensitive ones masked unless the grant names them for clear text."""
    masked = set(grant.masked_fields) & set(fields)
    out = []
    for row in rows:
        shaped = {f: row.get(f) for f in fields}
        for f in masked:
            shaped[f] = mask(shaped[f])
        out.append(shaped)
    return out


@dataclass(frozen=True)
class PendingAccess:
    """A data query that has run, waiting for its write: its count against the grant's limit, and its trail."""

    grant_id: str
    limit_per_minute: int
    window: datetime  # the minute it counts in
    access: dict[str, Any]  # the DataAccess row
    trail: dict[str, Any]  # the audit record
    kind: str


AccessJournal = GroupCommit[PendingAccess, bool]


def pending_access(
    grant: GrantTerms,
    who: Principal,
    *,
    kind: str,
    params: dict[str, str],
    rows: int,
    fields: list[str],
    use_cause: str | None,
    now: datetime,
) -> PendingAccess:
    personal = set(grant.personal_fields)
    logged = {k: ("sha256:" + audit.subject_ref(v) if k in personal else v) for k, v in params.items()}
    subject = next((v for k, v in params.items() if k in personal), None)
    purpose = (grant.purpose if not use_cause else f"{grant.purpose} / {use_cause}")[:500]
    access = {
        "at": now,
        "grant_id": grant.id,
        "consumer_department_id": grant.consumer_department_id,
        "provider_department_id": grant.provider_department_id,
        "resource_id": grant.resource_id,
        "actor": who.subject,
        "kind": kind,
        "purpose": purpose,
        "parameters": logged,
        "subject_ref": audit.subject_ref(subject) if subject else None,
        "rows": rows,
        "fields": fields,
        "outcome": "success",
    }
    trail = audit.entry(
        actor=who,
        action=f"data.{kind}",
        object_type="grant",
        object_id=grant.id,
        purpose=purpose,
        subject=subject,
        detail={"parameters": logged, "rows": rows, "fields": fields},
    )
    window = now.replace(second=0, microsecond=0)
    return PendingAccess(grant.id, grant.rate_limit_per_minute, window, access, trail, kind)


def settle_accesses(db: Session, items: Sequence[PendingAccess]) -> list[bool]:
    """Count and record many data queries at once (a few statements for the whole batch).

    True where a query is within its grant's per-minute limit: counted, its access row and audit
    record written. False where it is over: nothing written, the caller refuses it with 429.
    """
    groups: dict[tuple[str, datetime], list[int]] = {}
    for index, item in enumerate(items):
        groups.setdefault((item.grant_id, item.window), []).append(index)
    allowed = [False] * len(items)
    # In a fixed order (minute, then grant), so that two batches settled at once never wait for each other in a cycle.
    for (grant_id, window), indexes in sorted(groups.items(), key=lambda g: (g[0][1], g[0][0])):
        wanted = len(indexes)
        before = repo.count_uses(db, grant_id, window, wanted) - wanted
        room = max(0, min(wanted, items[indexes[0]].limit_per_minute - before))
        if room < wanted:
            repo.give_back_uses(db, grant_id, wanted - room)
        for index in indexes[:room]:
            allowed[index] = True
    admitted = [item for item, ok in zip(items, allowed, strict=True) if ok]
    if admitted:
        repo.insert_accesses(db, [item.access for item in admitted])
        audit.append(db, [item.trail for item in admitted])
    return allowed


def _settle_query(pending: PendingAccess, grant: GrantTerms, journal: AccessJournal) -> None:
    """Count the query and write its trail, with other queries' in one commit of the journal (a group commit,
    which owns that transaction: the request's own only reads); 429 over the limit."""
    ok = journal.run(pending)
    if not ok:
        raise _rate_limited(grant, pending.access["at"])
    metrics.DATA_ACCESSES.labels(kind=pending.kind, outcome="success").inc()


@dataclass(frozen=True)
class LookupAsk:
    """A granted lookup waiting for its batch (see :func:`run_lookups`)."""

    who: Principal
    grant_id: str
    params: dict[str, str]
    fields: list[str] | None
    use_cause: str | None
    version: int | None = None  # a dataset version by number (one the grant covers); None: the current one


class LookupResult(NamedTuple):
    """A granted lookup's answer: the grant it went through, the fields returned, the rows (masked where due)."""

    grant: GrantTerms
    fields: list[str]
    rows: list[dict[str, Any]]


class _LookupRead(NamedTuple):
    """A lookup's answer before its count: and the access waiting to be counted."""

    grant: GrantTerms
    fields: list[str]
    rows: list[dict[str, Any]]
    pending: PendingAccess


Lookups = GroupCommit[LookupAsk, LookupResult | HubError]


def run_lookups(db: Session, asks: Sequence[LookupAsk]) -> list[LookupResult | HubError]:
    """Many granted lookups in one transaction: their checks (each grant read once), their rows (the
    catalogue's `lookup_many`: each entry's dataset read once, its rows ahead in one statement), then their
    counts and trails together (:func:`settle_accesses`). A refused lookup is recorded too, and its error
    is its own result: one department's bad query never touches another's."""
    grants: dict[tuple[str, str | None], GrantTerms | None] = {}
    checked: list[_CheckedLookup | HubError] = []
    for ask in asks:
        try:
            checked.append(_check_lookup(db, ask, grants))
        except HubError as exc:
            checked.append(exc)
    passed = [check for check in checked if not isinstance(check, HubError)]
    queries = [
        sources.RowQuery(
            c.grant.resource_id,
            c.ask.params,
            c.fields,
            c.limit,
            region=c.grant.region_scope,
            version=c.ask.version,
            since=None if c.ask.version is None else c.grant.created_at,
        )
        for c in passed
    ]
    answers = iter(sources.catalogue().lookup_many(db, queries))
    results: list[_LookupRead | HubError] = []
    out_of_scope: list[dict[str, Any]] = []
    for check in checked:
        if isinstance(check, HubError):
            results.append(check)
        elif isinstance(rows := next(answers), HubError):
            results.append(rows)
        else:
            results.append(_lookup_read(check, rows))
            if withheld := sources.withheld(rows):
                out_of_scope.append(_withheld_trail(check, withheld))
    audit.append(db, out_of_scope)  # the caller sees "no such row", the trail keeps what was withheld
    found = [(index, result) for index, result in enumerate(results) if not isinstance(result, HubError)]
    allowed = settle_accesses(db, [result.pending for _, result in found])
    for (index, (grant, _, _, pending)), ok in zip(found, allowed, strict=True):
        if not ok:
            results[index] = _rate_limited(grant, pending.access["at"])
    out: list[LookupResult | HubError] = []
    for ask, result in zip(asks, results, strict=True):
        if isinstance(result, HubError):
            if result.status < 500:
                refused = partial(
                    record_refused_access,
                    who=ask.who,
                    grant_id=ask.grant_id,
                    kind="lookup",
                    code=result.code,
                    detail=result.detail,
                )
                audit.record_refusal(db, refused, in_batch=True)
            out.append(result)
        else:
            metrics.DATA_ACCESSES.labels(kind="lookup", outcome="success").inc()
            out.append(LookupResult(result.grant, result.fields, result.rows))
    return out


async def lookup(ask: LookupAsk, *, lookups: Lookups) -> LookupResult:
    """Look up granted dataset rows by control parameters; only granted fields, sensitive ones masked.
    The lookup waits on the event loop, without a thread, for the next batch of :func:`run_lookups`."""
    result = await lookups.run_async(ask)
    if isinstance(result, HubError):
        raise result
    return result


@dataclass(frozen=True)
class _CheckedLookup:
    """A lookup whose grant, fields and parameters passed: what reading its rows needs."""

    ask: LookupAsk
    grant: GrantTerms
    fields: list[str]
    limit: int
    now: datetime


def _check_lookup(db: Session, ask: LookupAsk, grants: dict[tuple[str, str | None], GrantTerms | None]) -> _CheckedLookup:
    """The checks of a lookup before its rows: a usable grant of the caller's, granted fields, valid parameters."""
    now = utcnow()
    try:
        grant = _usable_grant(db, ask.who, ask.grant_id, now, grants)
        chosen = _fields(grant, ask.fields)
        limit = _check_params(grant, {k.strip(): v.strip() for k, v in ask.params.items()})
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="lookup", outcome=exc.code).inc()
        raise
    return _CheckedLookup(ask, grant, chosen, limit, now)


def _withheld_trail(check: _CheckedLookup, withheld: int) -> dict[str, Any]:
    """The audit record of rows a lookup matched but its grant's division scope withheld (数据回流): the
    consumer is answered as if they did not exist; the refusal stays on the trail, for the provider and the
    platform."""
    grant, ask = check.grant, check.ask
    personal = set(grant.personal_fields)
    logged = {k: ("sha256:" + audit.subject_ref(v) if k in personal else v) for k, v in ask.params.items()}
    metrics.DATA_ACCESSES.labels(kind="lookup", outcome="out_of_scope").inc()
    return audit.entry(
        actor=ask.who,
        action="data.lookup",
        object_type="grant",
        object_id=grant.id,
        purpose=grant.purpose,
        outcome="out_of_scope",
        detail={"parameters": logged, "withheld_rows": withheld, "region_scope": grant.region_scope},
    )


def _lookup_read(check: _CheckedLookup, rows: list[dict[str, Any]]) -> _LookupRead:
    """The rows of a checked lookup, shaped; and the access waiting to be counted."""
    grant, ask = check.grant, check.ask
    shaped = _shape(grant, rows, check.fields)
    pending = pending_access(
        grant, ask.who, kind="lookup", params=ask.params, rows=len(shaped), fields=check.fields, use_cause=ask.use_cause,
        now=check.now,
    )  # fmt: skip
    return _LookupRead(grant, check.fields, shaped, pending)


def export(
    db: Session,
    *,
    who: Principal,
    grant_id: str,
    fields: list[str] | None,
    cursor: str | None,
    limit: int,
    use_cause: str | None = None,
    journal: AccessJournal,
    version: int | None = None,
) -> tuple[GrantTerms, list[str], list[dict[str, Any]], str | None]:
    """A page of the granted dataset (its current version, or `version`, one the grant covers), where the
    catalogue entry allows export."""
    now = utcnow()
    try:
        grant = _usable_grant(db, who, grant_id, now)
        if not grant.allows_export:
            raise Forbidden("this resource is shared by lookup on its control parameters only; export is not allowed")
        if not 1 <= limit <= MAX_EXPORT_PAGE:
            raise Invalid(f"limit must be 1 to {MAX_EXPORT_PAGE}", errors=[{"field": "limit", "message": "out of range"}])
        chosen = _fields(grant, fields)
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="export", outcome=exc.code).inc()
        raise
    # Only what a grant's terms add is passed (数据回流: its division scope; a dataset version by number).
    options: dict[str, Any] = {}
    if grant.region_scope is not None:  # 数据回流: only the rows of the consumer's division
        options["region"] = grant.region_scope
    if version is not None:
        options.update(version=version, since=grant.created_at)
    rows, next_cursor = sources.catalogue().export_rows(
        db, resource_id=grant.resource_id, fields=chosen, cursor=cursor, limit=limit, **options
    )
    shaped = _shape(grant, rows, chosen)
    logged = {"cursor": cursor or ""} if version is None else {"cursor": cursor or "", "version": str(version)}
    pending = pending_access(
        grant, who, kind="export", params=logged, rows=len(shaped), fields=chosen, use_cause=use_cause, now=now
    )
    _settle_query(pending, grant, journal)
    return grant, chosen, shaped, next_cursor


def call_api(
    db: Session,
    *,
    who: Principal,
    grant_id: str,
    params: dict[str, str],
    fields: list[str] | None,
    use_cause: str | None = None,
    journal: AccessJournal,
) -> tuple[GrantTerms, list[str], list[dict[str, Any]]]:
    """Query the provider's API through the hub; the answer is filtered to the granted fields and masked."""
    now = utcnow()
    try:
        grant = _usable_grant(db, who, grant_id, now)
        chosen = _fields(grant, fields)
        if grant.control_parameters:
            _check_params(grant, params)
        view = sources.catalogue().get_version_for_sharing(db, version_id=grant.version_id)
        sources.catalogue().ensure_shareable(view)
        if view.api is None:
            raise Conflict("this resource has no API distribution; use the lookup")
        # Checked before the call too: the provider's service is what the limit protects.
        if repo.current_use(db, grant.id, now.replace(second=0, microsecond=0)) >= grant.rate_limit_per_minute:
            raise _rate_limited(grant, now)
        rows = upstream.call(view.api, params)
    except HubError as exc:
        metrics.DATA_ACCESSES.labels(kind="api", outcome=exc.code).inc()
        raise
    withheld = 0
    if grant.region_scope is not None:  # 数据回流: the provider's answer kept to the consumer's division
        rows, withheld = sources.rows_within(rows, division_item=getattr(view, "division_item", None), region=grant.region_scope)
    shaped = _shape(grant, rows, chosen)
    pending = pending_access(grant, who, kind="api", params=params, rows=len(shaped), fields=chosen, use_cause=use_cause, now=now)
    if withheld:  # on the trail, never in the answer
        pending.trail["detail"].update({"withheld_rows": withheld, "region_scope": grant.region_scope})
    _settle_query(pending, grant, journal)  # counted after the call: no write waits on the provider
    return grant, chosen, shaped


@dataclass(frozen=True)
class SubjectAccess:
    """One query of records about a holder, as the holder reads it: which department, which resource, why."""

    access: DataAccess
    consumer_name: str
    resource_name: str


def accesses_about_holder(
    db: Session, *, who: Principal, cursor: str | None, limit: int
) -> tuple[list[SubjectAccess], str | None]:
    """A citizen or enterprise sees which departments queried records about them, and why (newest first)."""
    if who.holder_code is None:
        raise Forbidden("this list is for citizens and enterprises (holders)")
    rows, next_cursor = repo.accesses_about(db, subject_ref=audit.subject_ref(who.holder_code), cursor=cursor, limit=limit)
    resources = repo.resource_names(db, {r.grant_id for r in rows})
    departments = repo.department_names(db, {r.consumer_department_id for r in rows})
    items = [
        SubjectAccess(
            access=r,
            consumer_name=departments.get(r.consumer_department_id, r.consumer_department_id),
            resource_name=resources.get(r.grant_id, r.resource_id),
        )
        for r in rows
    ]
    return items, next_cursor


def record_refused_access(db: Session, *, who: Principal, grant_id: str, kind: str, code: str, detail: str) -> None:
    """What the exchange keeps of a refused query: its access row (on the grant's usage trail, when the
    grant is the caller's) and its audit record. Written through :func:`ops.audit.record_refusal`."""
    grant = repo.consumer_grant(db, who, grant_id)
    if grant is not None:
        db.add(
            DataAccess(
                at=utcnow(),
                grant_id=grant.id,
                consumer_department_id=grant.consumer_department_id,
                provider_department_id=grant.provider_department_id,
                resource_id=grant.resource_id,
                actor=who.subject,
                kind=kind,
                purpose=grant.purpose,
                parameters={},
                subject_ref=None,
                rows=0,
                fields=[],
                outcome=code,
            )
        )
    audit.record(
        db,
        actor=who,
        action=f"data.{kind}",
        object_type="grant",
        object_id=grant_id,
        outcome=code,
        detail={"refused": detail[:500]},
    )
