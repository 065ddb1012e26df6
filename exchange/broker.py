"""The broker where one is deployed: every outbox event also published to NATS JetStream.

The database outbox stays the source of truth. An event is marked published only once JetStream has
acknowledged it; one the broker did not take (it was down, or stopped half-way) is published by a later run,
in outbox order. Each event goes out with its id as `Nats-Msg-Id`, so that JetStream drops a copy it already
holds (a run that stopped between the ack and marking it published). Subjects: a grant's changes on
`govhub.grants.<grant id>.changes`, supervision events on `govhub.supervision.<department id or platform>`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import datetime

from sqlalchemy.orm import Session

from exchange import repository as repo
from exchange.models import OutboxEvent
from exchange.subscriptions import SubscriberActor, record_delivery, render
from ops.db import reading, utcnow

log = logging.getLogger("govhub.exchange.broker")

STREAM = "GOVHUB_EXCHANGE"
SUBJECTS = ["govhub.grants.>", "govhub.supervision.>"]
PUBLISH_BATCH = 200
CONNECT_TIMEOUT_SECONDS = 2.0
ACK_TIMEOUT_SECONDS = 5.0
BROKER_ACTOR = SubscriberActor("broker:nats", None)


def subject_of(event: OutboxEvent) -> str:
    if event.grant_id:
        return f"govhub.grants.{event.grant_id}.changes"
    return f"govhub.supervision.{event.department_id or 'platform'}"


async def _publish(url: str, messages: list[tuple[int, str, str, bytes]]) -> list[int]:
    """Publish (outbox id, event id, subject, body) in order; the ids JetStream acknowledged, up to the first failure."""
    import nats
    from nats.js.errors import NotFoundError

    acked: list[int] = []

    async def quiet(exc: Exception) -> None:  # the caller logs the outcome once
        return None

    # One attempt (nats-py reads 0 attempts as "for ever"), bounded in time whatever the client does.
    nc = await asyncio.wait_for(
        nats.connect(
            url,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.1,
            error_cb=quiet,
        ),
        timeout=3 * CONNECT_TIMEOUT_SECONDS,
    )
    try:
        js = nc.jetstream(timeout=ACK_TIMEOUT_SECONDS)
        try:
            await js.stream_info(STREAM)
        except NotFoundError:
            await js.add_stream(name=STREAM, subjects=SUBJECTS)
        for pk, event_id, subject, body in messages:
            await js.publish(subject, body, headers={"Nats-Msg-Id": event_id}, timeout=ACK_TIMEOUT_SECONDS)
            acked.append(pk)
    except Exception as exc:  # the broker stopped half-way: what it acknowledged is published, the rest waits
        log.warning("NATS publish stopped after %d of %d events: %s", len(acked), len(messages), exc)
    finally:
        with contextlib.suppress(Exception):  # closing a connection the broker already dropped
            await nc.close()
    return acked


def publish_outbox(db: Session, *, url: str, now: datetime | None = None, limit: int = PUBLISH_BATCH) -> int:
    """Publish the outbox's unpublished events to JetStream, in order; returns how many were acknowledged.
    An event of a grant no longer active is marked published without being sent (nothing more flows through
    it). Each event published with rows is on the grant's trail (kind "broker")."""
    now = now or utcnow()
    with reading(), Session(bind=db.get_bind(), expire_on_commit=False) as read:
        events = repo.unpublished_events(read, limit=limit)
        grants = repo.grant_terms(read, {str(e.grant_id) for e in events if e.grant_id})
        messages: list[tuple[int, str, str, bytes]] = []
        skipped: list[int] = []
        rendered = {}
        for event in events:
            grant = grants.get(str(event.grant_id)) if event.grant_id else None
            if event.grant_id and (grant is None or grant.state != "active" or now >= grant.expires_at):
                skipped.append(event.id)
                continue
            out = render(read, event, grant)
            rendered[event.id] = (grant, out)
            body = json.dumps(out.body, ensure_ascii=False, default=str).encode()
            messages.append((event.id, event.event_id, subject_of(event), body))
    if not events:
        return 0
    try:
        acked = asyncio.run(_publish(url, messages)) if messages else []
    except Exception as exc:  # could not connect: everything waits for the next run
        log.warning("NATS at %s not reachable: %s", url, exc)
        acked = []
    repo.mark_published(db, [*skipped, *acked], now)
    for pk in acked:
        grant, out = rendered[pk]
        if grant is not None:
            record_delivery(db, grant=grant, actor=BROKER_ACTOR, kind="broker", rendered=out, now=now)
    db.flush()
    return len(acked)
