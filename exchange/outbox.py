"""The database outbox of the exchange: the source of truth for every event a subscriber or the broker gets.

A dataset version's change set becomes events for every active grant on the entry (:func:`take_change_sets`,
a scheduled job: the catalogue writes the change set in the upload's transaction, this takes it in one
transaction of its own); a supervision event (双推送) is written in the transaction of the step that
caused it (:func:`record_supervision_event`). Each event gets a delivery for every webhook subscribed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange import sources
from exchange.models import DeliveryState, OutboxEvent, Subscription
from ops.db import table_of, utcnow

EVENT_ROWS = 1000  # changes per event: a version's change set is cut into events of at most this many
SUPERVISION_EVENTS = ("request.filed", "request.accepted", "request.decided", "request.overdue", "grant.revoked")
# The departments' feed kinds (exchange.states.publish_event) that are supervision events, by their name here.
SUPERVISED_KINDS = {
    "request.submitted": "request.filed",
    "request.provisioning": "request.accepted",
    "request.provider_review": "request.accepted",
    "request.refused": "request.decided",
    "request.granted": "request.decided",
    "request.rejected": "request.decided",
    "request.closed": "request.decided",
    "grant.revoked": "grant.revoked",
}


def take_change_sets(db: Session, *, now: datetime | None = None) -> int:
    """Turn the catalogue's new change sets into outbox events, for every active grant on each entry (a
    version's changes cut in events of EVENT_ROWS), with a delivery for every webhook subscribed; the
    change set is marked taken in the same transaction. Returns the events written."""
    now = now or utcnow()
    catalogue = sources.catalogue()
    written = 0
    for change_set in catalogue.pending_change_sets(db):
        grant_ids = repo.active_grant_ids(db, change_set.resource_id)
        events: list[OutboxEvent] = []
        for grant_id in grant_ids:
            for first in range(1, change_set.size + 1, EVENT_ROWS):
                events.append(
                    OutboxEvent(
                        event_id=str(uuid.uuid4()),
                        kind="dataset.changed",
                        grant_id=grant_id,
                        resource_id=change_set.resource_id,
                        dataset_id=change_set.dataset_id,
                        dataset_number=change_set.number,
                        first_seq=first,
                        last_seq=min(first + EVENT_ROWS - 1, change_set.size),
                        payload={},
                        created_at=now,
                    )
                )
        db.add_all(events)
        db.flush()
        hooks: dict[str, list[Subscription]] = {}
        for sub in repo.active_webhooks(db, grant_ids) if events else []:
            hooks.setdefault(str(sub.grant_id), []).append(sub)
        repo.insert_deliveries(
            db,
            [
                {
                    "subscription_id": sub.id,
                    "event_pk": e.id,
                    "state": DeliveryState.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "rows": 0,
                }
                for e in events
                for sub in hooks.get(str(e.grant_id), [])
            ],
        )
        catalogue.take_change_set(db, dataset_id=change_set.dataset_id)
        written += len(events)
    return written


def record_supervision_event(db: Session, *, kind: str, department_ids: Sequence[str], payload: dict[str, Any]) -> None:
    """Write a supervision event (双推送) into the outbox: one for the platform and one for each department
    concerned, each with a delivery for every webhook subscribed to its kind there."""
    if kind not in SUPERVISION_EVENTS:
        return
    now = utcnow()
    hooks = [s for s in repo.supervision_webhooks(db) if kind in s.event_types]
    departments = [None, *dict.fromkeys(department_ids)]
    rows = [
        {"event_id": str(uuid.uuid4()), "kind": kind, "department_id": d, "payload": payload, "created_at": now}
        for d in departments
    ]
    if not hooks:  # nothing to deliver: the events alone, in one statement
        repo.insert_rows(db, OutboxEvent, rows)
        return
    table = table_of(OutboxEvent)
    ids = db.connection().execute(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows).scalars().all()
    repo.insert_deliveries(
        db,
        [
            {
                "subscription_id": s.id,
                "event_pk": event_pk,
                "state": DeliveryState.PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "rows": 0,
            }
            for department_id, event_pk in zip(departments, ids, strict=True)
            for s in hooks
            if s.department_id == department_id
        ],
    )
