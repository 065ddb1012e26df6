"""Scheduled jobs of the exchange domain: deadline supervision, grant expiry, webhook delivery."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from exchange import service
from exchange.models import Notification, Webhook
from ops.config import Settings
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
    with reading():
        rows = db.execute(
            select(Notification, Webhook)
            .join(Webhook, Webhook.department_id == Notification.department_id)
            .where(
                Notification.delivered.is_(False),
                Notification.attempts < max_attempts,
                Notification.next_attempt_at <= now,
            )
            .order_by(Notification.id)
            .limit(WEBHOOK_BATCH)
        ).all()
    # End the read before calling out: no transaction (on SQLite, no write lock) is held while the
    # webhooks answer; the outcomes are written by a transaction of their own, begun by the flush below.
    db.commit()
    delivered = 0
    with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False) as client:
        for note, hook in rows:
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
            note.attempts += 1
            try:
                response = client.post(hook.url, content=body, headers=headers)
                ok = 200 <= response.status_code < 300
                error = None if ok else f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, error = False, f"{type(exc).__name__}: {exc}"
            if ok:
                note.delivered, note.last_error, note.next_attempt_at = True, None, None
                delivered += 1
            else:
                note.last_error = error
                note.next_attempt_at = now + timedelta(seconds=30 * 2 ** (note.attempts - 1))
    db.flush()
    return delivered


def publish_gauges(db: Session) -> object:
    """Refresh the exchange's state gauges (once per cluster, so every process reports the same)."""
    return service.publish_gauges(db)


def jobs(settings: Settings) -> list[Job]:
    """This domain's periodic jobs."""

    def webhooks(db: Session) -> int:
        return deliver_webhooks(db, max_attempts=settings.exchange_webhook_max_attempts)

    return [
        Job(name="exchange.sweep_overdue", interval_seconds=300, run=sweep_overdue),
        Job(name="exchange.expire_grants", interval_seconds=600, run=expire_grants),
        Job(name="exchange.deliver_webhooks", interval_seconds=60, run=webhooks),
        Job(name="exchange.gauges", interval_seconds=60, run=publish_gauges),
    ]


# Called when a year's working-day calendar is loaded, to recompute open deadlines of this domain.
CALENDAR_LISTENERS: list[CalendarListener] = [service.recompute_deadlines]
