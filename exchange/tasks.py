"""Scheduled jobs of the exchange domain: deadline supervision, grant expiry, webhook delivery, and the flow of
changes (the outbox taking new versions' change sets, deliveries to subscribers, publishing to the broker)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import service
from exchange.models import Notification
from ops.config import Settings
from ops.crypto import KeyVault
from ops.db import reading, utcnow
from ops.scheduler import Job
from ops.workdays.service import CalendarListener

WEBHOOK_BATCH = 200
WEBHOOK_TIMEOUT_SECONDS = 5.0


def sweep_overdue(db: Session) -> int:
    """Mark past-due steps overdue, record breaches, notify the responsible departments."""
    return service.sweep_overdue(db)


def expire_grants(db: Session) -> int:
    """Expire grants whose end date has passed."""
    return service.expire_grants(db)


def deliver_webhooks(db: Session, *, max_attempts: int, now: datetime | None = None) -> int:
    """Push pending notifications to the departments' webhooks (signed; at most `max_attempts` tries each,
    with back-off)."""
    now = now or utcnow()
    # Read in a short transaction of its own, ended before calling out: no transaction (on SQLite, no
    # write lock) is held while the webhooks answer. The outcomes are written in the job's transaction,
    # which the scheduler commits.
    with reading(), Session(bind=db.get_bind(), expire_on_commit=False) as read:
        due = repo.webhook_deliveries_due(read, now=now, max_attempts=max_attempts, limit=WEBHOOK_BATCH)
    outcomes: list[tuple[int, str | None]] = []  # (notification, error or None when delivered)
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        for note, hook in due:
            body = json.dumps(
                {
                    "id": note.id,
                    "kind": note.kind,
                    "request_id": note.request_id,
                    "message": note.message,
                    "created_at": note.created_at.isoformat(),
                },
                ensure_ascii=False,
            ).encode()
            stamp = str(int(now.timestamp()))
            headers = {
                "Content-Type": "application/json",
                "X-Govhub-Timestamp": stamp,
                "X-Govhub-Signature": service.sign(hook.secret, stamp, body),
                "X-Govhub-Delivery": str(note.id),
            }
            try:
                response = client.post(hook.url, content=body, headers=headers)
                error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            outcomes.append((note.id, error))
    delivered = 0
    for note_id, error in outcomes:  # written once every webhook has answered
        sent = db.get(Notification, note_id)
        if sent is None:
            continue
        sent.attempts += 1
        if error is None:
            sent.delivered, sent.last_error, sent.next_attempt_at = True, None, None
            delivered += 1
        else:
            sent.last_error = error
            sent.next_attempt_at = now + timedelta(seconds=30 * 2 ** (sent.attempts - 1))
    db.flush()
    return delivered


def take_changes(db: Session) -> int:
    """Turn new dataset versions' change sets into outbox events for the grants on their entries."""
    return service.take_change_sets(db)


def publish_gauges(db: Session) -> object:
    """Refresh the exchange's state gauges (once per cluster, so every process reports the same)."""
    return service.publish_gauges(db)


def jobs(settings: Settings) -> list[Job]:
    """This domain's periodic jobs."""

    def webhooks(db: Session) -> int:
        return deliver_webhooks(db, max_attempts=settings.exchange_webhook_max_attempts)

    vaults: list[KeyVault] = []  # made on the first delivery, not when the jobs are listed

    def deliver_subscriptions(db: Session) -> int:
        if not vaults:
            vaults.append(KeyVault.from_settings(settings))
        return service.deliver_subscriptions(
            db,
            vault=vaults[0],
            allow_private=settings.webhook_allow_private,
            max_attempts=settings.subscription_max_attempts,
            timeout=settings.subscription_timeout_seconds,
        )

    def publish_to_broker(db: Session) -> int:
        return service.publish_outbox(db, url=settings.nats_url) if settings.nats_url else 0

    return [
        Job(name="exchange.take_changes", interval_seconds=2, run=take_changes),
        Job(name="exchange.deliver_subscriptions", interval_seconds=2, run=deliver_subscriptions),
        Job(name="exchange.publish_outbox", interval_seconds=2, run=publish_to_broker),
        Job(name="exchange.sweep_overdue", interval_seconds=300, run=sweep_overdue),
        Job(name="exchange.expire_grants", interval_seconds=600, run=expire_grants),
        Job(name="exchange.deliver_webhooks", interval_seconds=60, run=webhooks),
        Job(name="exchange.gauges", interval_seconds=60, run=publish_gauges),
    ]


# Called when a year's working-day calendar is loaded, to recompute open deadlines of this domain.
CALENDAR_LISTENERS: list[CalendarListener] = [service.recompute_deadlines]
