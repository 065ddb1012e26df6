"""Subscriptions: changes of a granted dataset, and supervision events (双推送), reaching those who need them.

- A consumer subscribes to its grant: pushed to a webhook (HMAC-signed, each event with an id so that it is
  applied once, retried with exponential backoff, parked after a bounded number of failures, replayable)
  or pulled from a change feed with a hub-signed cursor.
- A supervising department (the platform, or a department for its own requests) subscribes to event
  types: a request filed, accepted, decided, overdue; a grant revoked.
- The database outbox (`exchange.outbox`) is the source of truth; deliveries (:func:`deliver`), the
  feed (:func:`read_feed`) and the broker (`exchange.broker`) read it.
- What a subscriber receives of a change is what a lookup would return: the rows within the grant's row
  scope (:func:`rows_for_grant`, the one place a grant's rows are selected), the granted fields only,
  sensitive ones masked; every delivery is a data access on the grant's trail, and on the holders' trail
  for the rows that concern them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.access import _shape, _usable_grant
from exchange.models import Delivery, DeliveryState, OutboxEvent, Subscription, SubscriptionKind
from exchange.outbox import SUPERVISION_EVENTS
from exchange.repository import GrantTerms
from ops import audit
from ops.auth import Principal
from ops.config import Settings
from ops.crypto import KeyVault, WrappedSecret, new_secret
from ops.db import reading, utcnow
from ops.errors import Forbidden, HubError, Invalid, NotFound

log = logging.getLogger("govhub.exchange.subscriptions")

FEED_EVENTS = 20  # events per page of a change feed
DELIVERY_BATCH = 50  # deliveries tried per run of the job
BACKOFF_SECONDS = 5  # the first retry's wait; doubled each failure
MAX_BACKOFF_SECONDS = 3600


class WebhookAddressRefused(HubError):
    status, code, title = 422, "webhook_address_refused", "Webhook address refused"


class BadCursor(HubError):
    status, code, title = 400, "bad_cursor", "Cursor not issued by this hub"


# -- webhook addresses -------------------------------------------------------------------------------


def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse a webhook URL that is not http(s), does not resolve, or reaches a loopback, private or
    link-local address (unless the deployment allows them); multicast and unspecified always."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookAddressRefused(
            "the webhook must be an http:// or https:// URL with a host", errors=[_url_error("not http(s)")]
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise WebhookAddressRefused(
            f"the webhook's host {parts.hostname} cannot be resolved", errors=[_url_error(str(exc))]
        ) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if address.is_multicast or address.is_unspecified:
            raise WebhookAddressRefused(
                f"the webhook's address {address} cannot receive deliveries", errors=[_url_error("refused")]
            )
        if not allow_private and (address.is_loopback or address.is_private or address.is_link_local or address.is_reserved):
            raise WebhookAddressRefused(
                f"the webhook's host {parts.hostname} resolves to {address}, a loopback, private or link-local "
                "address; this deployment delivers only to public addresses (GOVHUB_WEBHOOK_ALLOW_PRIVATE)",
                errors=[_url_error(f"{address} is not public")],
            )


def _url_error(message: str) -> dict[str, str]:
    return {"field": "url", "message": message}


# -- the hub-signed feed cursor -------------------------------------------------------------------------


def cursor_key(settings: Settings) -> bytes:
    """The key the hub signs feed cursors with (derived from its master key)."""
    return hmac.new(settings.master_keys()[0], b"govhub exchange feed cursor", hashlib.sha256).digest()


def _encode_cursor(key: bytes, subscription_id: str, position: int) -> str:
    body = base64.urlsafe_b64encode(json.dumps([subscription_id, position]).encode()).decode().rstrip("=")
    tag = base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]).decode().rstrip("=")
    return f"{body}.{tag}"


def _decode_cursor(key: bytes, subscription_id: str, cursor: str) -> int:
    refused = BadCursor(
        "the cursor was not issued by this hub for this subscription; pass the next_cursor of a page, or none to start",
        errors=[{"field": "cursor", "message": "not this hub's cursor"}],
    )
    body, _, tag = cursor.partition(".")
    expected = base64.urlsafe_b64encode(hmac.new(key, body.encode(), hashlib.sha256).digest()[:16]).decode().rstrip("=")
    if not tag or not hmac.compare_digest(tag, expected):
        raise refused
    try:
        sub, position = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error, TypeError):
        raise refused from None
    if sub != subscription_id or not isinstance(position, int):
        raise refused
    return position


# -- subscribing ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subscribed:
    subscription: Subscription
    secret: str | None  # the webhook's signing secret, shown once


def _wrap(vault: KeyVault, subscription_id: str, secret: str) -> dict[str, str]:
    return vault.wrap(secret.encode(), purpose=f"subscription:{subscription_id}").as_dict()


def _unwrap(vault: KeyVault, sub: Subscription) -> str:
    assert sub.signing_secret is not None
    return vault.unwrap(WrappedSecret.from_dict(sub.signing_secret), purpose=f"subscription:{sub.id}").decode()


def subscribe(
    db: Session, *, who: Principal, grant_id: str, kind: str, url: str | None, vault: KeyVault, allow_private: bool
) -> Subscribed:
    """Subscribe the caller's department to the changes of its grant, pushed to `url` or read from a feed."""
    grant = _usable_grant(db, who, grant_id, utcnow())
    return _create(db, who=who, grant_id=grant.id, kind=kind, url=url, vault=vault, allow_private=allow_private, types=[])


def subscribe_supervision(
    db: Session, *, who: Principal, event_types: list[str], kind: str, url: str | None, vault: KeyVault, allow_private: bool
) -> Subscribed:
    """Subscribe to supervision events (双推送): the platform to all, a department to its own requests'."""
    if not who.is_platform_admin:
        who.require_department()
    wrong = [t for t in event_types if t not in SUPERVISION_EVENTS]
    if wrong or not event_types:
        raise Invalid(
            f"event types are some of: {', '.join(SUPERVISION_EVENTS)}",
            errors=[{"field": "event_types", "message": f"unknown: {t}"} for t in wrong]
            or [{"field": "event_types", "message": "empty"}],
        )
    return _create(
        db,
        who=who,
        grant_id=None,
        kind=kind,
        url=url,
        vault=vault,
        allow_private=allow_private,
        types=list(dict.fromkeys(event_types)),
    )


def _create(
    db: Session,
    *,
    who: Principal,
    grant_id: str | None,
    kind: str,
    url: str | None,
    vault: KeyVault,
    allow_private: bool,
    types: list[str],
) -> Subscribed:
    if kind not in (SubscriptionKind.WEBHOOK, SubscriptionKind.FEED):
        raise Invalid("kind is webhook or feed", errors=[{"field": "kind", "message": "webhook or feed"}])
    secret = None
    if kind == SubscriptionKind.WEBHOOK:
        if not url:
            raise Invalid("a webhook subscription needs its url", errors=[_url_error("required")])
        check_webhook_url(url, allow_private=allow_private)
        secret = new_secret()
    elif url:
        raise Invalid("a feed subscription has no url: it is read from its feed", errors=[_url_error("not for a feed")])
    sub = Subscription(
        id=str(uuid.uuid4()),
        grant_id=grant_id,
        department_id=None if who.is_platform_admin and grant_id is None else who.department_id,
        kind=kind,
        url=url,
        event_types=types,
        active=True,
        start_after=repo.last_outbox_id(db),
        created_by=who.subject,
        created_at=utcnow(),
    )
    if secret is not None:
        sub.signing_secret = _wrap(vault, sub.id, secret)
    db.add(sub)
    db.flush()
    audit.record(
        db,
        actor=who,
        action="subscription.create",
        object_type="grant" if grant_id else "subscription",
        object_id=grant_id or sub.id,
        detail={"subscription_id": sub.id, "kind": kind, "url": url, "event_types": types},
    )
    return Subscribed(sub, secret)


def get_subscription(db: Session, *, who: Principal, subscription_id: str) -> Subscription:
    sub = repo.get_subscription(db, who, subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id} of your department")
    return sub


def end_subscription(db: Session, *, who: Principal, subscription_id: str) -> Subscription:
    """Stop a subscription: nothing more is delivered to it (pending deliveries are dropped)."""
    sub = get_subscription(db, who=who, subscription_id=subscription_id)
    if sub.active:
        sub.active, sub.ended_at = False, utcnow()
        db.flush()
        audit.record(db, actor=who, action="subscription.end", object_type="subscription", object_id=sub.id)
    return sub


@dataclass(frozen=True)
class SubscriptionSummary:
    subscription: Subscription
    pending: int
    delivered: int
    parked: int


def subscriptions_of_grant(db: Session, *, who: Principal, grant_id: str) -> list[SubscriptionSummary]:
    """A grant's subscriptions with their delivery counts (its consumer, its provider, the platform)."""
    if repo.get_grant(db, who, grant_id) is None:
        raise NotFound(f"no grant {grant_id} of your department")
    subs = repo.subscriptions_of_grant(db, grant_id)
    counts = repo.delivery_counts(db, [s.id for s in subs])
    return [
        SubscriptionSummary(
            s,
            counts.get((s.id, DeliveryState.PENDING), 0),
            counts.get((s.id, DeliveryState.DELIVERED), 0),
            counts.get((s.id, DeliveryState.PARKED), 0),
        )
        for s in subs
    ]


def deliveries(db: Session, *, who: Principal, subscription_id: str, state: str | None, limit: int = 100) -> list[Delivery]:
    sub = get_subscription(db, who=who, subscription_id=subscription_id)
    return repo.deliveries_of(db, [sub.id], state=state, limit=limit)


def parked_of_grant(db: Session, *, who: Principal, grant_id: str, limit: int = 100) -> list[Delivery]:
    """The parked deliveries of a grant's subscriptions (for its page)."""
    subs = [s.subscription.id for s in subscriptions_of_grant(db, who=who, grant_id=grant_id)]
    return repo.deliveries_of(db, subs, state=DeliveryState.PARKED, limit=limit) if subs else []


def replay(db: Session, *, who: Principal, subscription_id: str, delivery_ids: list[int] | None = None) -> int:
    """Put parked deliveries of a subscription back in line (all of them, or those named); how many."""
    sub = repo.get_subscription(db, who, subscription_id)
    if sub is None:
        raise NotFound(f"no subscription {subscription_id} of your department")
    if not sub.active:
        raise Forbidden("the subscription has ended; subscribe again")
    now = utcnow()
    parked = repo.deliveries_of(db, [sub.id], state=DeliveryState.PARKED, limit=10_000)
    if delivery_ids is not None:
        unknown = set(delivery_ids) - {d.id for d in parked}
        if unknown:
            raise Invalid(
                f"not parked deliveries of this subscription: {', '.join(map(str, sorted(unknown)))}",
                errors=[{"field": "delivery_ids", "message": f"{i} is not parked here"} for i in sorted(unknown)],
            )
        parked = [d for d in parked if d.id in set(delivery_ids)]
    for d in parked:
        d.state, d.attempts, d.next_attempt_at = DeliveryState.PENDING, 0, now
    db.flush()
    audit.record(
        db,
        actor=who,
        action="subscription.replay",
        object_type="subscription",
        object_id=sub.id,
        detail={"deliveries": len(parked)},
    )
    return len(parked)


# -- what a subscriber receives -------------------------------------------------------------------------


def rows_for_grant(db: Session, grant: GrantTerms, changes: Sequence[Any]) -> list[Any]:
    """The changes whose rows are within the grant's row scope: the one place a grant's row scope is applied
    to what it receives. A grant scoped to a division (数据回流) keeps the rows whose division item lies
    within it, by the catalogue's rule (as a provider API's answer is kept); every row otherwise."""
    if grant.region_scope is None:
        return list(changes)
    view = sources.catalogue().get_version_for_sharing(db, version_id=grant.version_id)
    kept, _ = sources.rows_within(
        [c.data for c in changes], division_item=getattr(view, "division_item", None), region=grant.region_scope
    )
    within = {id(row) for row in kept}
    return [c for c in changes if id(c.data) in within]


@dataclass(frozen=True)
class Rendered:
    """An event as a subscriber receives it, and what its trail needs."""

    body: dict[str, Any]
    rows: int
    subjects: list[str]  # holders (personal identifiers) the rows concern


def _holder_field(grant: GrantTerms) -> list[str]:
    """The granted field naming the holder a row concerns: a personal control parameter (an identity
    number), else the first personal field; none when the grant has no personal field."""
    personal = [f for f in grant.personal_fields if f in grant.fields]
    keys = {str(p["item"]) for p in grant.control_parameters}
    return ([f for f in personal if f in keys] or personal)[:1]


def render(db: Session, event: OutboxEvent, grant: GrantTerms | None) -> Rendered:
    """The event's content for its subscriber: the version's changes it covers, scoped, granted fields only,
    sensitive ones masked; or a supervision event's payload."""
    head = {"id": event.event_id, "type": event.kind, "created_at": event.created_at.isoformat()}
    if event.kind != "dataset.changed":
        return Rendered({**head, **event.payload}, 0, [])
    assert grant is not None and event.dataset_id is not None
    found = sources.catalogue().changes(
        db,
        dataset_id=event.dataset_id,
        after=event.first_seq - 1,
        upto=event.last_seq,
        limit=event.last_seq - event.first_seq + 1,
    )
    scoped = rows_for_grant(db, grant, found)
    shaped = _shape(grant, [c.data for c in scoped], list(grant.fields))
    subjects = sorted({str(v) for c in scoped for f in _holder_field(grant) if (v := c.data.get(f)) not in (None, "")})
    body = {
        **head,
        "grant_id": grant.id,
        "resource_id": event.resource_id,
        "dataset_version": event.dataset_number,
        "sequence": [event.first_seq, event.last_seq],
        "fields": list(grant.fields),
        "masked_fields": list(grant.masked_fields),
        "changes": [{"seq": c.seq, "op": c.op, "row": row} for c, row in zip(scoped, shaped, strict=True)],
    }
    return Rendered(body, len(shaped), subjects)


def record_delivery(db: Session, *, grant: GrantTerms, actor: audit.Actor, kind: str, rendered: Rendered, now: datetime) -> None:
    """A delivery on the trail: one data access of the grant (the rows delivered), and one for each holder
    whose rows it carried (their "who used my data"), with the audit records."""
    base = {
        "at": now,
        "grant_id": grant.id,
        "consumer_department_id": grant.consumer_department_id,
        "provider_department_id": grant.provider_department_id,
        "resource_id": grant.resource_id,
        "actor": actor.subject,
        "kind": kind,
        "purpose": grant.purpose,
        "fields": list(grant.fields),
        "outcome": "success",
    }
    event_id = rendered.body["id"]
    accesses = [{**base, "parameters": {"event_id": event_id}, "subject_ref": None, "rows": rendered.rows}]
    accesses += [
        {**base, "parameters": {"event_id": event_id}, "subject_ref": audit.subject_ref(s), "rows": 1} for s in rendered.subjects
    ]
    repo.insert_accesses(db, accesses)
    audit.append(
        db,
        [
            audit.entry(
                actor=actor,
                action=f"data.{kind}",
                object_type="grant",
                object_id=grant.id,
                purpose=grant.purpose,
                detail={"event_id": event_id, "rows": rendered.rows, "holders": len(rendered.subjects)},
            )
        ],
    )


@dataclass(frozen=True)
class SubscriberActor:
    """A subscription as the actor of its deliveries on the trail."""

    subject: str
    department_id: str | None
    primary_role: str = "subscription"


# -- the change feed -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next_cursor: str


def read_feed(db: Session, *, who: Principal, subscription_id: str, cursor: str | None, limit: int, key: bytes) -> FeedPage:
    """The next events of a feed subscription after the cursor (from its start without one), and the cursor
    to pass next; each page read is recorded on the trail like a delivery."""
    sub = get_subscription(db, who=who, subscription_id=subscription_id)
    if sub.kind != SubscriptionKind.FEED:
        raise Invalid(
            "this subscription is pushed to its webhook; it has no feed", errors=[{"field": "subscription", "message": "webhook"}]
        )
    if not sub.active:
        raise Forbidden("the subscription has ended")
    position = sub.start_after if cursor is None else _decode_cursor(key, sub.id, cursor)
    if not 1 <= limit <= FEED_EVENTS:
        raise Invalid(f"limit must be 1 to {FEED_EVENTS}", errors=[{"field": "limit", "message": "out of range"}])
    now = utcnow()
    if sub.grant_id is None:
        events = repo.supervision_outbox(
            db, after=position, kinds=list(sub.event_types), department_id=sub.department_id, limit=limit
        )
        bodies = [render(db, e, None).body for e in events]
    else:
        grant = _usable_grant(db, who, sub.grant_id, now)
        events = repo.outbox_of_grant(db, grant.id, after=position, limit=limit)
        bodies = []
        for event in events:
            rendered = render(db, event, grant)
            record_delivery(db, grant=grant, actor=who, kind="feed", rendered=rendered, now=now)
            bodies.append(rendered.body)
    last = events[-1].id if events else position
    return FeedPage(bodies, _encode_cursor(key, sub.id, last))


# -- pushing ---------------------------------------------------------------------------------------------


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header of a delivery: HMAC-SHA256 over "<timestamp>.<body>" (as the department webhooks)."""
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    """The wait before the next try after `attempts` failures: 5 s, 10 s, 20 s, … at most an hour."""
    return timedelta(seconds=min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class _Outgoing:
    delivery_id: int
    url: str
    secret: str
    body: bytes
    rendered: Rendered | None
    grant: GrantTerms | None
    subscription: SubscriberActor
    refused: str | None  # why it is not sent (the grant ended, the address is no longer allowed)


def deliver(
    db: Session,
    *,
    vault: KeyVault,
    allow_private: bool,
    max_attempts: int,
    timeout: float,
    now: datetime | None = None,
    budget_seconds: float = 25.0,
    limit: int = DELIVERY_BATCH,
) -> int:
    """Push due deliveries to their webhooks; returns how many were delivered. Read and rendered in a short
    read transaction, sent with none open (a slow subscriber holds no lock; each call times out), the
    outcomes then written in the job's transaction: delivered (and on the trail), or retried after a backoff,
    or parked after `max_attempts` failures. The job lease makes one process run it at a time."""
    now = now or utcnow()
    started = time.monotonic()
    outgoing: list[_Outgoing] = []
    with reading(), Session(bind=db.get_bind(), expire_on_commit=False) as read:
        due = repo.deliveries_due(read, now=now, limit=limit)
        grants = repo.grant_terms(read, {str(e.grant_id) for _, _, e in due if e.grant_id})
        for delivery, sub, event in due:
            actor = SubscriberActor(f"subscription:{sub.id}", sub.department_id)
            grant = grants.get(str(event.grant_id)) if event.grant_id else None
            refused = None
            if not sub.active:
                refused = "the subscription has ended"
            elif event.grant_id and (grant is None or grant.state != "active" or now >= grant.expires_at):
                refused = "the grant is no longer active: nothing more is delivered through it"
            rendered, body, secret = None, b"", ""
            try:
                if refused is None:
                    rendered = render(read, event, grant)
                    body = json.dumps(rendered.body, ensure_ascii=False, default=str).encode()
                    secret = _unwrap(vault, sub) if sub.signing_secret else ""
            except (HubError, ValueError) as exc:  # one subscription's problem holds up no other
                log.warning("delivery %s cannot be prepared: %s", delivery.id, exc)
                refused = f"the event cannot be prepared: {exc}"[:500]
            outgoing.append(_Outgoing(delivery.id, str(sub.url), secret, body, rendered, grant, actor, refused))
    outcomes: list[tuple[_Outgoing, str | None]] = []
    with httpx.Client(timeout=timeout, follow_redirects=False) as client:
        for item in outgoing:
            if item.refused is not None:
                outcomes.append((item, item.refused))
                continue
            if time.monotonic() - started > budget_seconds:
                break  # the rest wait for the next run (the lease is not held for ever)
            try:
                check_webhook_url(item.url, allow_private=allow_private)  # again: names may point elsewhere now
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-Govhub-Event-Id": str(item.rendered.body["id"]) if item.rendered else "",
                    "X-Govhub-Timestamp": stamp,
                    "X-Govhub-Signature": sign(item.secret, stamp, item.body),
                }
                response = client.post(item.url, content=item.body, headers=headers)
                error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            except WebhookAddressRefused as exc:
                error = exc.detail
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            outcomes.append((item, error))
    delivered = 0
    for item, error in outcomes:
        row = db.get(Delivery, item.delivery_id)
        if row is None or row.state != DeliveryState.PENDING:
            continue
        row.attempts += 1
        if error is None:
            row.state, row.delivered_at, row.last_error = DeliveryState.DELIVERED, now, None
            row.rows = item.rendered.rows if item.rendered else 0
            if item.grant is not None and item.rendered is not None:
                record_delivery(db, grant=item.grant, actor=item.subscription, kind="push", rendered=item.rendered, now=now)
            delivered += 1
        elif item.refused is not None or row.attempts >= max_attempts:
            row.state, row.last_error = DeliveryState.PARKED, error
        else:
            row.last_error, row.next_attempt_at = error, now + backoff(row.attempts)
    db.flush()
    return delivered
