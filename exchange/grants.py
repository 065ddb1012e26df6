"""Grants (授权): issued when a request is granted, revoked by the provider or the platform, expired at their end."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.models import Grant, GrantState, SharingRequest
from exchange.states import Policy, close_step, end_of_day, is_sensitive, notify, publish_event, require_reason, transition
from ops import audit, metrics
from ops.audit import Actor
from ops.auth import Principal
from ops.db import check_version, utcnow
from ops.errors import Conflict, Forbidden, NotFound
from ops.ratings import service as ratings


def issue_grant(
    db: Session,
    req: SharingRequest,
    *,
    who: Actor,
    policy: Policy,
    action: str,
    fields: list[str],
    clear: list[str],
    valid_until: date,
    view: sources.Sharing,
    reason: str | None = None,
) -> Grant:
    sources.catalogue().ensure_shareable(view)  # no grant ever opens an entry holding classified items
    region_scope = sources.region_scope(db, view, req.consumer_department_id)  # 数据回流: before any write
    transition(db, req, who=who, action=action, reason=reason, detail={"fields": fields})
    now = utcnow()
    close_step(db, req, outcome="granted", at=now)
    items = {item.name: item for item in sources.items_of(view)}
    sensitive = [f for f in fields if f in items and is_sensitive(items[f])]
    grant = Grant(
        request_id=req.id,
        consumer_department_id=req.consumer_department_id,
        provider_department_id=req.provider_department_id,
        resource_id=req.resource_id,
        version_id=req.version_id,
        resource_name=req.resource_name,
        fields=fields,
        clear_fields=[f for f in clear if f in fields],
        personal_fields=[f for f in fields if f in items and items[f].personal],
        masked_fields=[f for f in sensitive if f not in clear],
        purpose=req.purpose,
        valid_from=req.valid_from,
        valid_until=valid_until,
        expires_at=end_of_day(valid_until),
        rate_limit_per_minute=policy.rate_limit_per_minute,
        control_parameters=[
            {"item": p.item, "required": p.required, "max_rows": p.max_rows} for p in sources.control_parameters_of(view)
        ],
        allows_export=bool(view.allows_export),
        region_scope=region_scope,
        state=GrantState.ACTIVE.value,
    )
    db.add(grant)
    db.flush()
    req.grant_id = grant.id
    req.decided_at = now
    publish_event(db, req, "grant.active", object_type="grant", object_id=grant.id, state=grant.state)
    notify(
        db,
        req.consumer_department_id,
        "grant.issued",
        req,
        f"access granted to {req.resource_code} {req.resource_name} until {valid_until}",
    )
    audit.record(
        db,
        actor=who,
        action="grant.issue",
        object_type="grant",
        object_id=grant.id,
        purpose=req.purpose,
        detail={"request_id": req.id, "fields": fields, "valid_until": valid_until.isoformat(), "region_scope": region_scope},
    )
    return grant


# ---------------------------------------------------------------------------------------------
# Reading, revoking and expiring grants


def get_grant(db: Session, *, who: Principal, grant_id: str) -> Grant:
    grant = repo.get_grant(db, who, grant_id)
    if grant is None:
        raise NotFound(f"no grant {grant_id}")
    return grant


def delivery_event(db: Session, *, who: Principal, grant_id: str) -> ratings.RatableEvent:
    """The data a provider delivers through a grant, as the consumer may rate it (a rating token names it)."""
    grant = get_grant(db, who=who, grant_id=grant_id)
    if grant.consumer_department_id != who.department_id:
        raise Forbidden("only the consumer department rates the data delivered through a grant")
    return ratings.RatableEvent(
        kind="data.delivery",
        event_id=grant.id,
        department_id=grant.provider_department_id,
        rater_ref=grant.consumer_department_id,
    )


def revoke_grant(db: Session, *, who: Principal, grant_id: str, reason: str, expected_version: int | None = None) -> Grant:
    """The provider or the platform revokes a grant, with a reason."""
    grant = get_grant(db, who=who, grant_id=grant_id)
    if not who.is_platform_admin and who.department_id != grant.provider_department_id:
        raise Forbidden("only the provider department or the platform revokes a grant")
    check_version(expected_version, grant.version, what="grant")
    reason = require_reason(reason, "a revocation")
    if grant.state != GrantState.ACTIVE:
        raise Conflict(f"the grant is already {grant.state}")
    now = utcnow()
    grant.state, grant.revoked_at, grant.revoked_by, grant.revoke_reason = GrantState.REVOKED.value, now, who.subject, reason
    db.flush()
    req = db.get(SharingRequest, grant.request_id)
    assert req is not None
    publish_event(db, req, "grant.revoked", object_type="grant", object_id=grant.id, state=grant.state, data={"reason": reason})
    notify(db, grant.consumer_department_id, "grant.revoked", req, f"grant revoked: {reason}")
    audit.record(db, actor=who, action="grant.revoke", object_type="grant", object_id=grant.id, purpose=reason)
    metrics.SHARING_REQUEST_EVENTS.labels(event="grant_revoked").inc()
    return grant


def expire_grants(db: Session, *, now: datetime | None = None) -> int:
    """Mark every active grant past its end date as expired (set-based); returns how many."""
    now = now or utcnow()
    count = repo.expire_grants_due(db, now)
    if count:
        audit.record(db, actor=audit.SYSTEM, action="grant.expire", object_type="grant", object_id="*", detail={"expired": count})
    return count


def usable_grant_on(db: Session, *, who: Principal, resource_id: str) -> str | None:
    """The id of a grant the caller's department can use now on a catalogue entry (None: it holds none):
    for another domain that reads granted data for a purpose of its own (a service's form filled from it)."""
    grant = repo.usable_grant_on(db, who, resource_id, utcnow())
    return grant.id if grant is not None else None
